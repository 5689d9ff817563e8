"""Parley's multilingual text grammar: voice-assistant and short-conversation sentences in six languages.

Every sentence comes with its exact translations in en, de, es, fr, it and zh (Simplified Chinese), written as
spoken (numbers, times and dates in words) and normalized (see `text`). Sentences are split deterministically into
train, dev and test by hashing, and whole template families are held out as test_unseen (see `sampler`).

    >>> from models import grammar
    >>> s = grammar.generate("train", 1, seed=0)[0]
    >>> sorted(s.text) == sorted(grammar.LANGUAGES)
    True

Modules: `numbers` (numbers, times, dates, quantities), `morphology` (articles, contractions, elision), `values`
(slot value types), `lexicon` (the slot words), `templates` (the sentence templates), `sampler` (splits and
sampling), `text` (languages and the written form).
"""

from __future__ import annotations

from .sampler import SPLITS, UNSEEN_FAMILIES, Sentence, english_vocabulary, generate, split_of
from .templates import Template, all_templates
from .text import LANGUAGES, display_text


def templates() -> list[Template]:
    """Every template (name, family, domain, slots, per-language text)."""
    return list(all_templates())


__all__ = [
    "LANGUAGES",
    "SPLITS",
    "UNSEEN_FAMILIES",
    "Sentence",
    "Template",
    "display_text",
    "english_vocabulary",
    "generate",
    "split_of",
    "templates",
]
