"""Corpus BLEU as sacreBLEU computes it by default (13a tokenization, exponential smoothing), without sacreBLEU.

    corpus_bleu(hyps, refs).score              # 0-100, one reference per hypothesis
    corpus_bleu(hyps, refs, tokenize="zh")     # Chinese: every CJK character is a token (sacreBLEU's "zh")
    tokenizer_for("zh")                         # "zh" for zh/cmn, else "13a"

Matches `sacrebleu.corpus_bleu(hyps, [refs])` (BLEU 2.x defaults: max order 4, smooth "exp", no effective order,
brevity penalty over the corpus). `tokenize="none"` splits on whitespace only.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from parley.textnorm import is_chinese

MAX_ORDER = 4

# sacreBLEU's 13a ("mteval-v13a") regular expressions, in order.
_13A = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),  # punctuation and symbols
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period and comma unless preceded by a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # period and comma unless followed by a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # dash after a digit
]

# The code points sacreBLEU's "zh" tokenizer separates character by character (its `_UCODE_RANGES`): CJK ideographs
# and their compatibility forms, radicals, strokes, CJK punctuation, full-width forms, some symbols. sacreBLEU writes
# two of its ranges as "\u20000"-"\u2a6d6" and "\u2f800"-"\u2fa1d", which Python reads as two-character strings, so
# what it really separates there is U+2001-U+2A6D and U+2F81-U+2FA1; they are kept so that scores agree.
_CJK = (
    (0x3400, 0x4DB5),
    (0x4E00, 0x9FA5),
    (0x9FA6, 0x9FBB),
    (0xF900, 0xFA2D),
    (0xFA30, 0xFA6A),
    (0xFA70, 0xFAD9),
    (0x2001, 0x2A6D),
    (0x2F81, 0x2FA1),
    (0xFF00, 0xFFEF),
    (0x2E80, 0x2EFF),
    (0x3000, 0x303F),
    (0x31C0, 0x31EF),
    (0x2F00, 0x2FDF),
    (0x2FF0, 0x2FFF),
    (0x3100, 0x312F),
    (0x31A0, 0x31BF),
    (0xFE10, 0xFE1F),
    (0xFE30, 0xFE4F),
    (0x2600, 0x26FF),
    (0x2700, 0x27BF),
    (0x3200, 0x32FF),
    (0x3300, 0x33FF),
)


def tokenize_13a(line: str) -> str:
    """sacreBLEU's default tokenizer: symbols and punctuation split off, single spaces."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for pattern, repl in _13A:
        line = pattern.sub(repl, line)
    return " ".join(line.split())


def _is_cjk(c: str) -> bool:
    o = ord(c)
    return any(lo <= o <= hi for lo, hi in _CJK)


def tokenize_zh(line: str) -> str:
    """sacreBLEU's "zh" tokenizer: spaces around every CJK character, then 13a for the rest."""
    return tokenize_13a("".join(f" {c} " if _is_cjk(c) else c for c in line.strip()))


TOKENIZERS = {"13a": tokenize_13a, "zh": tokenize_zh, "none": lambda s: " ".join(s.split())}


def tokenizer_for(language: str) -> str:
    """The tokenizer BLEU into `language` is reported with: "zh" for Chinese (character level), else "13a"."""
    return "zh" if is_chinese(language) else "13a"


@dataclass
class BleuScore:
    """Corpus BLEU and the statistics it is computed from."""

    score: float  # 0-100
    precisions: list[float]  # n-gram precisions in percent, n = 1..4 (smoothed where no n-gram matched)
    brevity_penalty: float
    hyp_len: int
    ref_len: int
    correct: list[int]  # matched n-grams, n = 1..4
    total: list[int]  # hypothesis n-grams, n = 1..4

    def __str__(self) -> str:
        p = "/".join(f"{x:.1f}" for x in self.precisions)
        return (
            f"BLEU = {self.score:.2f} {p} (BP = {self.brevity_penalty:.3f} ratio = "
            f"{self.hyp_len / max(self.ref_len, 1):.3f} hyp_len = {self.hyp_len} ref_len = {self.ref_len})"
        )


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def sentence_stats(hyp: str, ref: str, tokenize: str = "13a") -> tuple[list[int], list[int], int, int]:
    """(correct n-grams, hypothesis n-grams, hyp length, ref length) of one pair; n = 1..4."""
    tok = TOKENIZERS[tokenize]
    h, r = tok(hyp).split(), tok(ref).split()
    correct, total = [], []
    for n in range(1, MAX_ORDER + 1):
        hn, rn = _ngrams(h, n), _ngrams(r, n)
        correct.append(sum(min(c, rn[g]) for g, c in hn.items()))
        total.append(max(0, len(h) - n + 1))
    return correct, total, len(h), len(r)


def bleu_from_stats(correct: Sequence[int], total: Sequence[int], hyp_len: int, ref_len: int) -> BleuScore:
    """BLEU from summed statistics, with sacreBLEU's "exp" smoothing: the k-th n-gram order without any match
    counts as a precision of 1 / (2^k * total)."""
    precisions = [0.0] * MAX_ORDER
    bp = 1.0 if hyp_len >= ref_len else (math.exp(1 - ref_len / hyp_len) if hyp_len > 0 else 0.0)
    if not any(correct):
        return BleuScore(0.0, precisions, bp, hyp_len, ref_len, list(correct), list(total))
    smooth = 1.0
    for n in range(MAX_ORDER):
        if total[n] == 0:
            break
        if correct[n] == 0:
            smooth *= 2
            precisions[n] = 100.0 / (smooth * total[n])
        else:
            precisions[n] = 100.0 * correct[n] / total[n]
    if any(p == 0.0 for p in precisions):  # a hypothesis corpus too short for some order: sacreBLEU gives 0
        return BleuScore(0.0, precisions, bp, hyp_len, ref_len, list(correct), list(total))
    score = bp * math.exp(sum(math.log(p) for p in precisions) / MAX_ORDER)
    return BleuScore(score, precisions, bp, hyp_len, ref_len, list(correct), list(total))


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str], tokenize: str = "13a") -> BleuScore:
    """Corpus BLEU of hypotheses against one reference each.

    Raises:
        ValueError: different numbers of hypotheses and references, or an unknown tokenizer.
    """
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    if tokenize not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {tokenize!r}; use one of {sorted(TOKENIZERS)}")
    correct, total = [0] * MAX_ORDER, [0] * MAX_ORDER
    hyp_len = ref_len = 0
    for h, r in zip(hyps, refs, strict=True):
        c, t, hl, rl = sentence_stats(h, r, tokenize)
        correct = [a + b for a, b in zip(correct, c, strict=True)]
        total = [a + b for a, b in zip(total, t, strict=True)]
        hyp_len, ref_len = hyp_len + hl, ref_len + rl
    return bleu_from_stats(correct, total, hyp_len, ref_len)
