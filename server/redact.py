"""Redaction of spoken digit strings: card numbers, account numbers, social security and phone numbers, PINs.

A contact centre that captions its calls must not store or show the card number a caller reads out. A stream that
asks for it (start's `"redact": true`, or every stream of a server started with `--redact`) gets every run of
`MIN_DIGITS` or more spoken digits replaced by one `REDACTED` word, in everything it is sent: partials and finals,
`text`, `words`, `display` and `alternatives`.

    >>> redact_text("my card is four one one one one one one one and it expires oh four")
    'my card is [redacted] and it expires oh four'

A digit is a word "zero", "oh" or "one" to "nine"; "double five" and "triple seven" are two and three of them. Numbers
said as numbers ("nineteen eighty-four", "twenty-five dollars") are not digit strings and stay; so does a run of
fewer digits ("oh four", "room three one two"). English captions only: the words are English number words.

Partials: a run at the end of a partial may still grow past `MIN_DIGITS`, so `stable_words` keeps it out of the
partial's stable prefix (docs/protocol.md): what a client has drawn as settled never changes when the run becomes a
redaction.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MIN_DIGITS", "REDACTED", "digit_runs", "redact_text", "stable_words"]

REDACTED = "[redacted]"
MIN_DIGITS = 4  # spoken digits in a row that make a run redacted: a PIN, a card's expiry, longer numbers

_DIGITS = frozenset(["zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
_REPEAT = {"double": 2, "triple": 3}


def digit_runs(words: Sequence[str]) -> list[tuple[int, int, int]]:
    """The runs of spoken digits in `words` (lower-case words): (first word, one past the last, digits), in order."""
    runs: list[tuple[int, int, int]] = []
    i = 0
    while i < len(words):
        j, digits = i, 0
        while j < len(words):
            w = words[j]
            if w in _DIGITS:
                j, digits = j + 1, digits + 1
            elif w in _REPEAT and j + 1 < len(words) and words[j + 1] in _DIGITS:
                j, digits = j + 2, digits + _REPEAT[w]
            else:
                break
        if j > i:
            runs.append((i, j, digits))
            i = j
        else:
            i += 1
    return runs


def redacted_runs(words: Sequence[str], min_digits: int = MIN_DIGITS) -> list[tuple[int, int]]:
    """The runs of `words` that redaction replaces: (first word, one past the last)."""
    return [(a, b) for a, b, n in digit_runs([w.lower() for w in words]) if n >= min_digits]


def redact_text(text: str, min_digits: int = MIN_DIGITS) -> str:
    """`text` with each run of `min_digits` or more spoken digits replaced by `REDACTED`."""
    words = text.split()
    out: list[str] = []
    i = 0
    for a, b in redacted_runs(words, min_digits):
        out += [*words[i:a], REDACTED]
        i = b
    return " ".join([*out, *words[i:]])


def stable_words(words: Sequence[str], stable: int) -> int:
    """How many of `words` (a partial's, before redaction) may stay in its stable prefix, of the first `stable`
    ones: no part of a run of digits that reaches the partial's end (it may still grow into a redacted run) or that
    the prefix would cut (the prefix alone would not have it redacted)."""
    for a, b, _ in digit_runs([w.lower() for w in words]):
        if a < stable and (b > stable or b == len(words)):
            return a
    return stable
