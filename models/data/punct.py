"""Training labels for punctuation and casing, read from the text corpus's `display` field.

Each sentence of `parley text build` has `text` (lowercase, no punctuation, numbers written out: what a recognizer
outputs and the WER scorer compares) and `display` (the source's own punctuation and case). Here the two are aligned
word by word: every word of `text` gets the mark that follows it in `display` and the case it had there.

    >>> word_labels("Hello, Mr. Smith! It's 3 pm.", "hello mister smith it's three pm", "en")  # doctest: +SKIP

Marks are {none, comma, period, question} (`MARKS`): "!" and ";" end sentences like ".", ":" pauses like ",".
Cases are {lower, Capitalized, UPPER, MiXed} (`CASES`). A display word that the normalizer expands into several words
("3" -> "three") gives its mark to the last of them and "lower" to all. Chinese is labelled per character (its
`text` has no spaces) and has no case. Sentences whose words cannot be aligned are skipped (None).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.data.verbalize import verbalize
from parley.textnorm import normalize_text

MARKS = ("", ",", ".", "?")  # the mark after a word: none, comma, period, question
CASES = ("lower", "capitalized", "upper", "mixed")

# Each punctuation character and the mark it stands for after a word.
_MARK_OF = {
    ",": ",", "，": ",", "、": ",", ":": ",", "：": ",", ";": ".", "；": ".",
    ".": ".", "。": ".", "!": ".", "！": ".", "…": ".",
    "?": "?", "？": "?",
}  # fmt: skip
_EDGE = re.compile(r"^[^\w]+|[^\w]+$")


@dataclass(frozen=True)
class WordLabel:
    word: str  # as in `text`
    mark: int  # index into MARKS
    case: int  # index into CASES


def case_of(token: str) -> int:
    """The case class of a written word: its letters all lower, first upper then lower, all upper, or mixed."""
    letters = [c for c in token if c.isalpha()]
    if not letters or all(c.islower() or not c.isupper() for c in letters):
        return 0
    if letters[0].isupper() and all(not c.isupper() for c in letters[1:]):
        return 1
    if len(letters) > 1 and all(c.isupper() or not c.islower() for c in letters):
        return 2
    return 3


def mark_of(trailing: str) -> int:
    """The mark index of the punctuation after a word (the strongest: ? over . over ,)."""
    marks = {_MARK_OF[c] for c in trailing if c in _MARK_OF}
    for m in ("?", ".", ","):
        if m in marks:
            return MARKS.index(m)
    return 0


def word_labels(display: str, text: str, language: str) -> list[WordLabel] | None:
    """The words of `text`, each with the mark after it and its case in `display`; None when they don't align."""
    if language == "zh":
        return _char_labels(display, text)
    target = text.split()
    out: list[WordLabel] = []
    for token in display.split():
        core = _EDGE.sub("", token)
        trailing = token[len(token.rstrip("".join(_MARK_OF) + "\"'”’»)]")) :]
        words = normalize_text(verbalize(core, language), language).split() if core else []
        if not words:
            if out and mark_of(token):  # a free-standing mark ("wait ... what") belongs to the word before it
                last = out[-1]
                out[-1] = WordLabel(last.word, max(last.mark, mark_of(token)), last.case)
            continue
        case = case_of(core) if len(words) == 1 else 0
        for i, w in enumerate(words):
            out.append(WordLabel(w, mark_of(trailing) if i == len(words) - 1 else 0, case))
    if [w.word for w in out] != target:
        return None
    return out


def _is_han(c: str) -> bool:
    return "\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf" or "\uf900" <= c <= "\ufaff"


def _char_labels(display: str, text: str) -> list[WordLabel] | None:
    out: list[WordLabel] = []
    for c in display:
        if _is_han(c):
            out.append(WordLabel(c, 0, 0))
        elif c in _MARK_OF and out:
            last = out[-1]
            out[-1] = WordLabel(last.word, max(last.mark, mark_of(c)), 0)
        elif c.isalnum():
            return None  # Latin letters or digits inside Chinese: normalized differently, not aligned here
    if "".join(w.word for w in out) != text.replace(" ", ""):
        return None
    return out
