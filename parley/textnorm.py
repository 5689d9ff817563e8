"""Text normalization: the one caption form every training target, tokenizer and score uses.

Space-delimited languages (en, de, es, fr, it, ...)::

    >>> normalize_text("Hello, World! It’s a well-known fact.", "en")
    "hello world it's a well-known fact"

Lowercase (German nouns too), Unicode NFC, words made of letters, marks and digits, apostrophes and
hyphens kept only between two word characters, invisible format characters (soft hyphen, zero-width joiners, bidi
marks: Unicode category Cf) deleted, every other character a word break, single spaces, stripped.
Digits stay digits: numbers are written as words before normalizing, by the corpus builders and the importers of
real recordings (`models/data/verbalize.py`).

Chinese ("zh", "cmn", "zh-CN", ...) is written without spaces::

    >>> normalize_text("你好，世界！ Hello 2024。", "zh")
    '你好世界hello2024'

Full-width ASCII forms (Ａ, １, ！) are folded to ASCII first in every language, so they behave like their
narrow twins. Normalization is idempotent: normalizing normalized text changes nothing.
"""

from __future__ import annotations

import unicodedata

from parley.contract import CHANNEL_CHANGE

# Characters that join two word characters into one word; the typographic apostrophes become "'".
_APOSTROPHES = {"'": "'", "\u2019": "'", "\u2018": "'", "\u02bc": "'"}
_HYPHENS = {"-": "-", "\u2010": "-", "\u2011": "-"}
_JOINERS = {**_APOSTROPHES, **_HYPHENS}

# Full-width ASCII block U+FF01..U+FF5E sits at a fixed offset from ASCII 0x21..0x7E.
_FULLWIDTH_OFFSET = 0xFEE0
_FULLWIDTH = {c: c - _FULLWIDTH_OFFSET for c in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = 0x20  # ideographic space

# Format characters (Cf: soft hyphen, zero-width (non-)joiner, bidi marks) are invisible and sit inside words, as in
# "co\u00adoperate": deleted, not word breaks. The zero-width space is the exception: it marks a word boundary where
# no visible space is written.
_ZERO_WIDTH_SPACE = "\u200b"


def is_chinese(language: str) -> bool:
    """True for language tags written without spaces between words: zh, cmn and their regional variants."""
    base = language.strip().lower().replace("_", "-").split("-", 1)[0]
    return base in ("zh", "cmn")


def _is_word_char(c: str) -> bool:
    # Letters, combining marks and digits of any script; "_" is not a word character here, unlike regex \w.
    return unicodedata.category(c)[0] in "LMN"


def normalize_text(text: str, language: str) -> str:
    """Returns `text` in Parley's normalized caption form for `language` (see the module docstring)."""
    text = "".join(c for c in text if c == _ZERO_WIDTH_SPACE or unicodedata.category(c) != "Cf")
    text = unicodedata.normalize("NFC", text.translate(_FULLWIDTH).lower())
    chinese = is_chinese(language)
    out: list[str] = []
    n = len(text)
    for i, c in enumerate(text):
        if _is_word_char(c):
            out.append(c)
        elif (
            not chinese
            and c in _JOINERS
            and i > 0
            and i + 1 < n
            and _is_word_char(text[i - 1])
            and _is_word_char(text[i + 1])
        ):
            out.append(_JOINERS[c])
        elif not chinese:
            out.append(" ")
    return "".join(out) if chinese else " ".join("".join(out).split())


def normalize_keeping_channel_changes(text: str, language: str) -> str:
    """`normalize_text` of each stretch of `text` between t-SOT channel changes, the marks kept and written
    " <cc> " as a t-SOT label writes them (models/data/tsot.py). Text without marks is normalized as by
    `normalize_text`; idempotent too.

        >>> normalize_keeping_channel_changes("Hi,<cc> Yes! <cc> there", "en")
        'hi <cc> yes <cc> there'
    """
    out: list[str] = []
    for i, part in enumerate(text.split(CHANNEL_CHANGE)):
        if i:
            out.append(CHANNEL_CHANGE)
        if normalized := normalize_text(part, language):
            out.append(normalized)
    return " ".join(out)


def words(text: str, language: str) -> list[str]:
    """Splits normalized text into the units that error rates count.

    Space-delimited languages split on whitespace (units are words, for WER). Chinese splits into single
    characters, whitespace dropped (units are characters, for CER); a Latin word inside Chinese text counts
    letter by letter.
    """
    if is_chinese(language):
        return [c for c in text if not c.isspace()]
    return text.split()
