"""Hotword respelling: a run of recognized words that sounds like one of a stream's hotwords becomes that hotword.

    speller = Respeller(["kowalczyk", "zentrix labs"])
    speller.find(["good", "evening", "colsic"], [0.98, 0.95, 0.31])   # [Respelling(2, 3, "kowalczyk", 0.86)]

Boosting (server/biasing.py) helps the search towards a hotword's tokens only where the model already finds them
plausible: a name it cannot spell from sound ("kowalczyk" heard as "colsic", "mcallister" as "macalister") stays out of
reach at any boost that does not also put names into sentences without them. Respelling works after the search, on
the words: each run of one to (words of the hotword + 2) words is compared with each hotword by a sound key, and a
close enough run in which the model was unsure of some word is replaced.

The sound key (`sound_key`) is a coarse English letter-to-sound folding, so that spellings of the same sounds meet:
letters only; ph, gh, ck, qu, x, th, sh and ch folded; c before e, i, y -> s, else k; voiced and voiceless pairs merged
(b p, d t, g k, v f, z s); h, w and y dropped after the first letter (y as a vowel); every vowel run -> "a"; doubled
letters single. "zimerman" and "zimmerman" both give "samarman"; "more no" and "moreno" give "marana". Closeness is
1 - the Levenshtein distance of the two keys / the longer key's length.

A run is replaced when (all of):
- its closeness to the hotword is at least `threshold` (and it is not the hotword already);
- its least confident word is below `max_confidence` (the model doubted it: a name it could not spell rarely comes out
  as words it is sure of, while a sentence without names mostly does);
- the run's key is not shorter than half or longer than twice the hotword's.

Overlapping candidates are resolved by closeness (the closest first, then the longer run). The defaults were tuned on
the dev names of benchmarks/bench_hotwords.py (docs/adaptation.md).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from parley.wer import align_counts

RESPELL_THRESHOLD = 0.9  # closeness of the sound keys
RESPELL_MAX_CONFIDENCE = 0.6  # the run's least confident word must be below this
RESPELL_EXTRA_WORDS = 2  # a run may have this many words more than the hotword

_FOLDS = (  # applied in order, on lowercase letters
    ("tch", "c"),
    ("sch", "sk"),
    ("ph", "f"),
    ("gh", "g"),
    ("ck", "k"),
    ("qu", "kw"),
    ("q", "k"),
    ("x", "ks"),
    ("th", "t"),
    ("sh", "s"),
    ("ch", "c"),
)
_VOICING = str.maketrans({"b": "p", "d": "t", "g": "k", "v": "f", "z": "s"})
_VOWELS = re.compile(r"[aeiouy]+")


def sound_key(text: str) -> str:
    """A coarse key of how English letters sound (see the module docstring): "zimmerman" -> "samarman"."""
    s = re.sub(r"[^a-z]", "", text.lower())
    for a, b in _FOLDS:
        s = s.replace(a, b)
    s = re.sub(r"c(?=[eiy])", "s", s).replace("c", "k")
    s = s.translate(_VOICING)
    if len(s) > 1:  # h, w and a consonant y carry little after the first letter
        s = s[0] + re.sub(r"[hw]", "", s[1:])
    s = _VOWELS.sub("a", s)
    return re.sub(r"(.)\1+", r"\1", s)


def closeness(a: str, b: str) -> float:
    """1 - Levenshtein(a, b) / max(len(a), len(b)): 1 for equal strings, 0 for nothing in common (or both empty)."""
    if not a or not b:
        return 0.0
    return 1.0 - align_counts(list(a), list(b)).errors / max(len(a), len(b))


def edit_distance_within(a: str, b: str, bound: int) -> int | None:
    """Levenshtein(a, b) if it is at most `bound`, else None: only the diagonal band |i - j| <= bound of the table is
    computed (a path outside it costs more than `bound`), and the rows stop once the band's minimum exceeds it."""
    if abs(len(a) - len(b)) > bound:
        return None
    big = bound + 1
    prev = [j if j <= bound else big for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        lo, hi = max(1, i - bound), min(len(b), i + bound)
        cur = [big] * (len(b) + 1)
        cur[0] = i if i <= bound else big
        for j in range(lo, hi + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]), big)
        if min(cur[max(0, lo - 1) : hi + 1]) > bound:
            return None
        prev = cur
    return prev[-1] if prev[-1] <= bound else None


@functools.lru_cache(maxsize=4096)
def _cached_key(text: str) -> str:
    """`sound_key`, remembered: a stream's partials repeat the same words chunk after chunk."""
    return sound_key(text)


@dataclass(frozen=True)
class Respelling:
    """Words [start, end) of a hypothesis are `phrase`; `closeness` of their sound keys."""

    start: int
    end: int
    phrase: str
    closeness: float


class Respeller:
    """Finds the runs of words to replace by a stream's hotwords.

    Args:
        phrases: the hotwords, as the stream gave them (lowercased and their white space collapsed here).
        threshold: the least closeness of the sound keys to replace a run.
        max_confidence: a run is replaced only if its least confident word is below this (1.0: any run).
        extra_words: a run may have this many words more than its hotword.

    Raises:
        ValueError: no phrases, an empty phrase, a threshold outside (0, 1] or a max_confidence outside (0, 1].
    """

    def __init__(
        self,
        phrases: Sequence[str],
        threshold: float = RESPELL_THRESHOLD,
        max_confidence: float = RESPELL_MAX_CONFIDENCE,
        extra_words: int = RESPELL_EXTRA_WORDS,
    ) -> None:
        if not 0 < threshold <= 1 or not 0 < max_confidence <= 1:
            raise ValueError(f"threshold and max_confidence must be in (0, 1], got {threshold}, {max_confidence}")
        self.phrases = list(dict.fromkeys(" ".join(p.lower().split()) for p in phrases))
        if not self.phrases or not all(self.phrases):
            raise ValueError("respelling needs at least one non-empty phrase")
        self.keys = [sound_key(p) for p in self.phrases]
        self.threshold, self.max_confidence, self.extra_words = threshold, max_confidence, extra_words
        self._words = [len(p.split()) for p in self.phrases]
        self._by_length: dict[int, list[int]] = {}  # key length -> the phrases with such keys
        for k, key in enumerate(self.keys):
            if key:
                self._by_length.setdefault(len(key), []).append(k)

    def find(self, words: Sequence[str], confidences: Sequence[float]) -> list[Respelling]:
        """The runs of `words` (with each word's confidence in [0, 1]) to replace, in order, not overlapping."""
        if len(words) != len(confidences):
            raise ValueError(f"{len(words)} words but {len(confidences)} confidences")
        longest = max(len(p.split()) for p in self.phrases) + self.extra_words
        runs = []  # (i, j, key) of every run with a doubtful word, each key computed once for all the phrases
        for i in range(len(words)):
            doubtful = False
            for j in range(i + 1, min(i + longest, len(words)) + 1):
                doubtful = doubtful or confidences[j - 1] < self.max_confidence
                if doubtful:
                    runs.append((i, j, _cached_key("".join(words[i:j]))))
        cands = []
        for i, j, rk in runs:
            for k in self._near_length(len(rk)):
                key, longest_k = self.keys[k], max(len(rk), len(self.keys[k]))
                if j - i > self._words[k] + self.extra_words:
                    continue
                d = edit_distance_within(rk, key, int((1 - self.threshold) * longest_k + 1e-9))
                if d is not None and " ".join(words[i:j]) != self.phrases[k]:
                    cands.append(Respelling(i, j, self.phrases[k], 1.0 - d / longest_k))
        chosen: list[Respelling] = []
        for r in sorted(cands, key=lambda r: (-r.closeness, -(r.end - r.start), r.start)):
            if all(r.end <= o.start or r.start >= o.end for o in chosen):
                chosen.append(r)
        return sorted(chosen, key=lambda r: r.start)

    def _near_length(self, n: int) -> list[int]:
        """The phrases whose keys could be close enough to a key of length n: the edit distance is at least the
        difference in length, so closeness >= threshold needs 1 - |n - m| / max(n, m) >= threshold (and m within a
        factor of two of n)."""
        out: list[int] = []
        for m, ks in self._by_length.items():
            if n and n / 2 <= m <= 2 * n and 1 - abs(n - m) / max(n, m) >= self.threshold:
                out += ks
        return out

    def apply(self, words: Sequence[str], confidences: Sequence[float]) -> list[str]:
        """`words` with the runs `find` returns replaced by their hotwords."""
        out, i = [], 0
        for r in self.find(words, confidences):
            out += [*words[i : r.start], r.phrase]
            i = r.end
        return out + list(words[i:])
