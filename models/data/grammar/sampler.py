"""Sentences, their deterministic splits, and sampling them from the templates.

A sentence's split is a pure function of what it says: the English text is hashed (blake2b, not Python's salted
`hash`) into 100 buckets, 90 for train, 5 for dev, 5 for test. Hashing the text rather than the slot keys means
that two slot combinations which happen to read the same can never land in different splits, so dev and test
never share a sentence with train. Whole template families in `UNSEEN_FAMILIES` form the test_unseen split and
never appear in the other three.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .templates import Template, all_templates
from .text import LANGUAGES
from .values import Value

SPLITS = ("train", "dev", "test", "test_unseen")

# Families held out entirely, one per domain, to measure generalization to unseen sentence patterns.
UNSEEN_FAMILIES = frozenset({"blinds", "email", "holiday", "hotel", "age", "language"})

_TRAIN_BUCKETS, _DEV_BUCKETS = 90, 5  # of 100; the rest is test
# Sampling gives up after this many consecutive draws without a new sentence: the split is exhausted.
_PATIENCE = 20_000


@dataclass(frozen=True)
class Sentence:
    """One sentence of the grammar in every language.

    id: deterministic and unique per (template, slot values), e.g. "timer_set.3f9c0e12a4b1".
    template, family, domain: where it comes from (see `templates.Template`).
    text: language -> normalized spoken-form text (zh segmented into words with spaces).
    """

    id: str
    template: str
    family: str
    domain: str
    text: dict[str, str]


def _digest(s: str) -> bytes:
    return hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest()


def sentence_id(template: Template, values: Mapping[str, Value]) -> str:
    """The id of the sentence `template` makes from `values`."""
    keys = "|".join(f"{name}={values[name].key}" for name in template.slots)
    return f"{template.name}.{_digest(f'{template.name}|{keys}').hex()[:12]}"


def _split(family: str, english: str) -> str:
    if family in UNSEEN_FAMILIES:
        return "test_unseen"
    bucket = int.from_bytes(_digest(english), "big") % 100
    return "train" if bucket < _TRAIN_BUCKETS else "dev" if bucket < _TRAIN_BUCKETS + _DEV_BUCKETS else "test"


def split_of(sentence: Sentence) -> str:
    """The split `sentence` belongs to: train, dev, test or test_unseen."""
    return _split(sentence.family, sentence.text["en"])


def generate(split: str, n: int, seed: int = 0) -> list[Sentence]:
    """Up to `n` distinct sentences of `split`, sampled deterministically from `seed`.

    Each draw picks a template uniformly (among those of the split), then each slot's value uniformly, and keeps
    the sentence if it belongs to `split` and is new. Fewer than `n` come back when the split runs out of
    sentences (no new one in many consecutive draws).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    unseen = split == "test_unseen"
    pool = [t for t in all_templates() if (t.family in UNSEEN_FAMILIES) == unseen]
    return sample(pool, split, n, seed)


def sample(pool: Sequence[Template], split: str, n: int, seed: int = 0) -> list[Sentence]:
    """`generate` over the given templates (exposed for tests and for restricting the grammar)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[Sentence] = []
    misses = 0
    while len(out) < n and misses < _PATIENCE:
        template = rng.choice(pool)
        values = {name: rng.choice(options) for name, options in template.slots.items()}
        misses += 1
        if template.check is not None and not template.check(values):
            continue
        sid = sentence_id(template, values)
        if sid in seen:
            continue
        seen.add(sid)
        english = template.render("en", values)
        if _split(template.family, english) != split:
            continue
        text = {lang: english if lang == "en" else template.render(lang, values) for lang in LANGUAGES}
        out.append(Sentence(sid, template.name, template.family, template.domain, text))
        misses = 0
    return out


def english_vocabulary() -> set[str]:
    """Every English word type the grammar can produce.

    Each template is rendered with every value of each slot in turn (the other slots drawn at random), which
    reaches every word: a slot value's words never depend on which values the other slots hold, except for
    agreement between the template's own words and a value, which iterating that value covers.
    """
    rng = random.Random(0)
    words: set[str] = set()
    for template in all_templates():
        for name, options in template.slots.items():
            for value in options:
                for _ in range(20):  # redraw the other slots until the template's constraint holds
                    values = {k: value if k == name else rng.choice(v) for k, v in template.slots.items()}
                    if template.check is None or template.check(values):
                        words.update(template.render("en", values).split())
                        break
    return words
