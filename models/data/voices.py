"""Speaker variety for synthesis: espeak-ng voices, variants and prosody per language, with test-only speakers.

    rng = random.Random(0)
    voice = sample_voice("en", rng, "train")   # Voice(language="en", espeak_voice="en-gb-x-gbcwmd", variant="max", ...)
    voice.name                                # "en-gb-x-gbcwmd+max/p32/pr62/r173/g0"
    synthesize(text, **voice.synth_kwargs())  # models/data/espeak.py

A speaker is an accent (the espeak voice), a variant (espeak-ng-data/voices/!v: formants, pitch band, voicing,
synthesis engine) and prosody (pitch, pitch range, speed, pause between words). Two male and two female variants are
reserved for the test splits, so test speakers are never heard in training.

The variants kept were screened (all 101 of espeak-ng 1.51 synthesized; spectral flatness and centroid, clipping):
whispering, robotic (heavy echo or flat tone), croaking, child-pitched and clipping-prone ones are left out, as are
variants that duplicate another's settings, so a reserved speaker has no twin in training.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# espeak-ng voices (accents) per Parley language; `espeak-ng --voices` lists them. espeak_SetVoiceByName knows a
# voice by its file name, so British English is "en" and French of France "fr" (not "en-gb", "fr-fr").
VOICES: dict[str, tuple[str, ...]] = {
    "en": ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
           "en-us-nyc"),
    "de": ("de",),
    "es": ("es", "es-419"),
    "fr": ("fr", "fr-be", "fr-ch"),
    "it": ("it",),
    "zh": ("cmn-latn-pinyin",),  # not "cmn": it reads hanzi as English-spelled pinyin (see models/data/espeak.py)
}  # fmt: skip

# Variants by the register they give; None is the voice's own (male) speaker.
MALE_VARIANTS: tuple[str | None, ...] = (
    None, "m1", "m2", "m3", "m4", "m5", "m6", "m7", "klatt", "klatt2", "klatt3", "adam", "david", "edward2",
    "Andy", "Gene", "Mario", "gustave", "marcelo", "rob", "quincy", "michel", "Denis", "victor", "travis",
    "grandpa", "john", "norbert", "max", "boris",
)  # fmt: skip
FEMALE_VARIANTS: tuple[str, ...] = (
    "f1", "f2", "f3", "f4", "f5", "Andrea", "Annie", "linda", "aunty", "anika", "steph", "shelby", "grandma",
)  # fmt: skip

# Heard only in the test splits: two male, two female.
TEST_VARIANTS: tuple[str, ...] = ("m7", "klatt3", "f4", "Annie")
TEST_SPLITS = ("test", "test_unseen")
SPLITS = ("train", "dev", *TEST_SPLITS)

# Prosody ranges, inclusive (espeak_SetParameter units).
PITCH = (30, 70)  # base pitch, 0..100 around the variant's own
PITCH_RANGE = (30, 80)  # intonation swing, 0 = monotone
RATE = (140, 210)  # words per minute
WORD_GAPS = (0, 1, 2)  # extra pause between words, 10 ms units ...
WORD_GAP_WEIGHTS = (6, 3, 1)  # ... mostly none


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: what `models.data.espeak.synthesize` needs besides the text."""

    language: str  # Parley's language code: en, de, es, fr, it, zh
    espeak_voice: str  # "en-us", "cmn"
    variant: str | None  # "m3", or None for the voice's own
    pitch: int
    rate: int
    pitch_range: int
    word_gap: int

    @property
    def name(self) -> str:
        """Compact and unique, for manifests: "en-us+m3/p55/pr60/r170/g1"."""
        voice = self.espeak_voice if self.variant is None else f"{self.espeak_voice}+{self.variant}"
        return f"{voice}/p{self.pitch}/pr{self.pitch_range}/r{self.rate}/g{self.word_gap}"

    def synth_kwargs(self) -> dict[str, object]:
        """Keyword arguments for `models.data.espeak.synthesize`."""
        return {
            "voice": self.espeak_voice,
            "variant": self.variant,
            "rate": self.rate,
            "pitch": self.pitch,
            "pitch_range": self.pitch_range,
            "word_gap": self.word_gap,
        }


def train_variants() -> tuple[str | None, ...]:
    """The variants of the train and dev splits: all but `TEST_VARIANTS`."""
    return tuple(v for v in (*MALE_VARIANTS, *FEMALE_VARIANTS) if v not in TEST_VARIANTS)


def sample_voice(language: str, rng: random.Random, split: str) -> Voice:
    """Draws a speaker for one utterance; the same rng state gives the same voice.

    Args:
        language: one of `VOICES`.
        rng: the source of every choice.
        split: one of `SPLITS`; test splits draw only from `TEST_VARIANTS`, the others never do.
    """
    if language not in VOICES:
        raise ValueError(f"no voices for language {language!r}; known: {', '.join(VOICES)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    variants = TEST_VARIANTS if split in TEST_SPLITS else train_variants()
    return Voice(
        language=language,
        espeak_voice=rng.choice(VOICES[language]),
        variant=rng.choice(variants),
        pitch=rng.randint(*PITCH),
        rate=rng.randint(*RATE),
        pitch_range=rng.randint(*PITCH_RANGE),
        word_gap=rng.choices(WORD_GAPS, weights=WORD_GAP_WEIGHTS)[0],
    )
