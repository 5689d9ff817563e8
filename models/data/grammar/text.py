"""The grammar's languages and the one written form its sentences take.

Every sentence is lowercase, without digits and without punctuation, except apostrophes and hyphens inside a word
(en "what's", fr "l'alarme", "vingt-trois", "est-ce", it "un'ora"). Words are separated by single spaces. Chinese is
written in Chinese characters only, segmented into words by single spaces ("打开 厨房 的 灯"), so that word-level
tools work on every language alike; `display_text` removes those spaces for showing or scoring the text.
"""

from __future__ import annotations

import re

LANGUAGES = ("en", "de", "es", "fr", "it", "zh")

# Lowercase Latin letters with the accented ones the five Latin-script languages use (à-ö, ø-ÿ, œ, æ).
_LETTER = "a-zß-öø-ÿœæ"
_LATIN_WORD = rf"[{_LETTER}]+(?:['-][{_LETTER}]+)*"
# CJK Unified Ideographs: the Chinese text uses nothing else.
_HAN_WORD = r"[\u4e00-\u9fff]+"

PATTERNS: dict[str, re.Pattern[str]] = {
    lang: re.compile(rf"{_HAN_WORD if lang == 'zh' else _LATIN_WORD}(?: {_HAN_WORD if lang == 'zh' else _LATIN_WORD})*")
    for lang in LANGUAGES
}


def normalize(text: str) -> str:
    """Lowercases `text` and collapses its whitespace to single spaces (the grammar writes no punctuation)."""
    return " ".join(text.lower().split())


def display_text(lang: str, text: str) -> str:
    """The text as a reader expects it: Chinese without the word-separating spaces, other languages unchanged."""
    return text.replace(" ", "") if lang == "zh" else text
