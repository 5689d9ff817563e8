"""Word error rate (character error rate for Chinese), with the counts that make it up.

python -m parley.wer REF.txt HYP.txt        # lines "<id> <text>" in both files

Both files' texts are normalized first (`parley.textnorm`: lower case, punctuation dropped; t-SOT's " <cc> " marks
kept), so LibriSpeech-style references score against a recognizer's output; `--no-normalize` compares them as written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from parley.textnorm import normalize_keeping_channel_changes, words


@dataclass
class ErrorCounts:
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_words: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """Errors / reference words (0 when there are no reference words and no errors)."""
        return self.errors / self.reference_words if self.reference_words else float(self.errors > 0)

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.reference_words + other.reference_words,
        )


def align_counts(ref: Sequence[str], hyp: Sequence[str]) -> ErrorCounts:
    """Levenshtein alignment of two token lists; returns substitution, deletion and insertion counts (`align`'s
    pairs counted: ties prefer substitutions, as sclite does)."""
    subs = dels = ins = 0
    for i, j in align(ref, hyp):
        if i is None:
            ins += 1
        elif j is None:
            dels += 1
        elif ref[i] != hyp[j]:
            subs += 1
    return ErrorCounts(subs, dels, ins, len(ref))


def align(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[int | None, int | None]]:
    """The word-level alignment behind `align_counts`: pairs (reference index, hypothesis index) in order, None on
    the side a word is missing from (a deletion has no hypothesis word, an insertion no reference word).

    A pair of two indices is a match when the words are equal, else a substitution; the counts of this alignment
    are what `align_counts(ref, hyp)` reports. Each cell holds (errors, subs, dels, ins); ties prefer substitutions.
    """
    table = [[(j, 0, 0, j) for j in range(len(hyp) + 1)]]
    for i in range(1, len(ref) + 1):
        prev, cur = table[-1], [(i, 0, i, 0)]
        for j in range(1, len(hyp) + 1):
            if ref[i - 1] == hyp[j - 1]:
                best = prev[j - 1]
            else:
                s, d, n = prev[j - 1], prev[j], cur[j - 1]
                best = min(
                    (s[0] + 1, s[1] + 1, s[2], s[3]), (d[0] + 1, d[1], d[2] + 1, d[3]), (n[0] + 1, n[1], n[2], n[3] + 1)
                )
            cur.append(best)
        table.append(cur)
    pairs: list[tuple[int | None, int | None]] = []
    i, j = len(ref), len(hyp)
    while i or j:
        cell = table[i][j]
        if i and j and ref[i - 1] == hyp[j - 1] and cell == table[i - 1][j - 1]:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
            continue
        s = table[i - 1][j - 1] if i and j else None
        d = table[i - 1][j] if i else None
        if s is not None and ref[i - 1] != hyp[j - 1] and cell == (s[0] + 1, s[1] + 1, s[2], s[3]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif d is not None and cell == (d[0] + 1, d[1], d[2] + 1, d[3]):
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    return pairs[::-1]


def hypothesis_correct(ref: Sequence[str], hyp: Sequence[str]) -> list[bool]:
    """For each hypothesis word, whether `align` matches it to an equal reference word."""
    correct = [False] * len(hyp)
    for i, j in align(ref, hyp):
        if i is not None and j is not None and ref[i] == hyp[j]:
            correct[j] = True
    return correct


def error_counts(refs: Iterable[str], hyps: Iterable[str], language: str = "en") -> ErrorCounts:
    """Summed counts over pairs of normalized texts (words; characters for Chinese)."""
    total = ErrorCounts()
    for r, h in zip(refs, hyps, strict=True):
        total = total + align_counts(words(r, language), words(h, language))
    return total


def wer(refs: Iterable[str], hyps: Iterable[str], language: str = "en") -> float:
    """WER (CER for Chinese) over pairs of normalized texts."""
    return error_counts(refs, hyps, language).rate


def _read(path: str) -> dict[str, str]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                k, _, v = line.rstrip("\n").partition(" ")
                out[k] = v.strip()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m parley.wer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("ref", help="reference file: lines '<id> <text>'")
    p.add_argument("hyp", help="hypothesis file: lines '<id> <text>'")
    p.add_argument("--language", default="en", help="zh scores characters (default: en)")
    p.add_argument(
        "--no-normalize",
        action="store_true",
        help="score the texts as written (default: both sides normalized as Parley's training text is)",
    )
    a = p.parse_args(argv)
    ref, hyp = _read(a.ref), _read(a.hyp)
    if not a.no_normalize:
        ref = {k: normalize_keeping_channel_changes(v, a.language) for k, v in ref.items()}
        hyp = {k: normalize_keeping_channel_changes(v, a.language) for k, v in hyp.items()}
    missing = sorted(set(ref) - set(hyp))
    c = error_counts([ref[k] for k in ref], [hyp.get(k, "") for k in ref], a.language)
    print(
        f"WER {100 * c.rate:.2f}% [{c.errors} / {c.reference_words}, {c.substitutions} sub, "
        f"{c.deletions} del, {c.insertions} ins] ({len(missing)} utterances without hypothesis)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
