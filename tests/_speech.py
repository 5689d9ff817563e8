"""Real words for the tests that need a trained model to hear them: sentences spoken by espeak-ng in held-out
(test-split) voices."""

from __future__ import annotations

import random

import numpy as np

from parley.resample import resample


def spoken(language: str, text: str, rng: random.Random) -> np.ndarray:
    """`text` spoken by a test-split voice of `language` drawn from `rng`: `(T,)` at 16 kHz, 0.3 s of silence on
    both sides."""
    from models.data.espeak import synthesize
    from models.data.voices import sample_voice

    voice = sample_voice(language, rng, "test")
    syn = synthesize(text, **voice.synth_kwargs())
    pad = np.zeros(4800, dtype=np.float32)
    return np.concatenate([pad, resample(syn.samples, syn.sample_rate, 16000), pad])
