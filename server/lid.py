"""The streaming language identifier at run time: lid.onnx's per-frame logits and each stream's running mean.

Dimension letters: N streams, C encoder frames per chunk, D encoder output width, L languages.

    lid = LanguageIdentifier(bundle.lid)
    logits = lid.frame_logits(encoder_out)              # (N, C, D) -> (N, C, L)
    state = LidState.new(lid.num_languages)
    state.accept(logits[i])                              # one stream's chunk
    state.decide(allowed=[0, 2])                         # index of the most likely language among those allowed

The decision after t frames is the argmax of the mean of the frame logits 0..t-1 (models/nn/lid.py trains exactly
that), so it only ever uses audio that has arrived. Restricting it to the languages a user speaks masks the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from server.bundle import LidModel


class LanguageIdentifier:
    """lid.onnx of a bundle, with its languages."""

    def __init__(self, model: LidModel) -> None:
        self.model = model
        self.languages = list(model.languages)

    @property
    def num_languages(self) -> int:
        return len(self.languages)

    def frame_logits(self, encoder_out: np.ndarray) -> np.ndarray:
        """Encoder output `(N, C, D)` -> per-frame language logits `(N, C, L)`."""
        return self.model.session.run(None, {"encoder_out": encoder_out.astype(np.float32, copy=False)})[0]


@dataclass
class LidState:
    """One stream's running sum of frame logits."""

    sums: np.ndarray  # (L,) float64
    frames: int = 0

    @classmethod
    def new(cls, languages: int) -> LidState:
        return cls(np.zeros(languages, dtype=np.float64))

    def accept(self, logits: np.ndarray) -> None:
        """Adds one chunk's frame logits `(C, L)`."""
        self.sums += logits.sum(axis=0)
        self.frames += int(logits.shape[0])

    def scores(self) -> np.ndarray:
        """The mean frame logits so far `(L,)` (zeros before the first frame)."""
        return self.sums / max(self.frames, 1)

    def decide(self, allowed: Sequence[int] | None = None) -> int:
        """The most likely language index among `allowed` (None: all); ties go to the first."""
        s = self.scores()
        if allowed is None:
            return int(np.argmax(s))
        allowed = list(allowed)
        return allowed[int(np.argmax(s[allowed]))]
