"""Text normalization: the one caption form every training target, tokenizer and score uses.

Space-delimited languages (en, de, es, fr, it, ...)::

    >>> normalize_text("Hello, World! It’s a well-known fact.", "en")
    "hello world it's a well-known fact"

Lowercase (German nouns too), Unicode NFC, words made of letters, marks and digits, apostrophes and
hyphens kept only between two word characters, every other character a word break, single spaces, stripped.
Digits stay digits: the synthetic grammar never writes them and verbalizing real corpora's numbers is out of
scope.

Chinese ("zh", "cmn", "zh-CN", ...) is written without spaces::

    >>> normalize_text("你好，世界！ Hello 2024。", "zh")
    '你好世界hello2024'

Full-width ASCII forms (Ａ, １, ！) are folded to ASCII first in every language, so they behave like their
narrow twins. Normalization is idempotent: normalizing normalized text changes nothing.
"""

from __future__ import annotations

import unicodedata

# Characters that join two word characters into one word; the typographic apostrophes become "'".
_APOSTROPHES = {"'": "'", "\u2019": "'", "\u2018": "'", "\u02bc": "'"}
_HYPHENS = {"-": "-", "\u2010": "-", "\u2011": "-"}
_JOINERS = {**_APOSTROPHES, **_HYPHENS}

# Full-width ASCII block U+FF01..U+FF5E sits at a fixed offset from ASCII 0x21..0x7E.
_FULLWIDTH_OFFSET = 0xFEE0
_FULLWIDTH = {c: c - _FULLWIDTH_OFFSET for c in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = 0x20  # ideographic space


def is_chinese(language: str) -> bool:
    """True for language tags written without spaces between words: zh, cmn and their regional variants."""
    base = language.strip().lower().replace("_", "-").split("-", 1)[0]
    return base in ("zh", "cmn")


def _is_word_char(c: str) -> bool:
    # Letters, combining marks and digits of any script; "_" is not a word character here, unlike regex \w.
    return unicodedata.category(c)[0] in "LMN"


def normalize_text(text: str, language: str) -> str:
    """Returns `text` in Parley's normalized caption form for `language` (see the module docstring)."""
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


def words(text: str, language: str) -> list[str]:
    """Splits normalized text into the units that error rates count.

    Space-delimited languages split on whitespace (units are words, for WER). Chinese splits into single
    characters, whitespace dropped (units are characters, for CER); a Latin word inside Chinese text counts
    letter by letter.
    """
    if is_chinese(language):
        return [c for c in text if not c.isspace()]
    return text.split()
