"""Translation lag: how long after a source word is spoken the translated text that covers it appears.

Dimension letters: C chunk (encoder frames).

The exact answer needs a word alignment between source and translation, which the corpus does not have. The
practical approximation used here, in the spirit of the "Average Lagging" family of simultaneous-translation
metrics, assumes the translation advances in proportion to the source:

- the source words w_1..w_n end at e_1..e_n (seconds, from the manifest's word timings);
- the streamed translation has m output units (words; characters for Chinese), unit k *appears* at a_k: the time
  the audio of the chunk that emitted the unit's last token has fully arrived (`emission_time`; computation time
  is not counted, so this is the algorithmic lag of the chunked model);
- source word i is covered by unit k(i) = ceil(i * m / n), and its lag is a_k(i) - e_i.

An utterance's lag is the mean over its source words; a corpus's, the mean over all its source words (utterances
without output or without word timings are left out and counted). Negative values mean the model wrote a word
before its (proportional) source word ended, which a translation into a language with another word order can do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from models.nn.encoder import PAD_LENGTH
from parley.contract import FBANK_SHIFT_MS, SUBSAMPLING, WORD_START
from parley.textnorm import is_chinese


def emission_time(frame: int, chunk: int) -> float:
    """Seconds of audio that must have arrived before a token emitted at encoder frame `frame` can be shown:
    the end of its chunk of `chunk` encoder frames, plus the subsampling's lookahead (`chunk` <= 0: full context,
    so only the frame itself is counted, a lower bound)."""
    end_frame = (frame // chunk + 1) * chunk if chunk > 0 else frame + 1
    return (end_frame * SUBSAMPLING + PAD_LENGTH) * FBANK_SHIFT_MS / 1000


def output_units(tokens: Sequence[int], frames: Sequence[int], pieces: Sequence[str], language: str) -> list[int]:
    """The encoder frame at which each output unit is complete: one entry per word (a piece starting with "▁"
    starts a word; a word is complete at its last piece), or per character for Chinese.

    Args:
        tokens: emitted token ids; frames: the frame of each.
        pieces: the tokenizer's piece of every id.
        language: the output language.
    """
    units: list[int] = []
    chinese = is_chinese(language)
    for tok, frame in zip(tokens, frames, strict=True):
        piece = pieces[tok]
        text = piece.replace(WORD_START, "")
        if piece.startswith("<") and piece.endswith(">"):  # <unk>, <cc>: no text
            continue
        if chinese:
            units += [frame] * len(text)
        elif piece.startswith(WORD_START) or not units:
            units.append(frame)
        else:
            units[-1] = frame
    return units


def word_lags(source_ends: Sequence[float], unit_times: Sequence[float]) -> list[float]:
    """Lag of every source word (see the module docstring); [] when either side is empty."""
    n, m = len(source_ends), len(unit_times)
    if n == 0 or m == 0:
        return []
    return [unit_times[math.ceil((i + 1) * m / n) - 1] - e for i, e in enumerate(source_ends)]


@dataclass
class LagStats:
    """Translation lag over a corpus."""

    lags: list[float] = field(default_factory=list)  # every source word's lag, seconds
    skipped: int = 0  # utterances without output or without word timings

    def add(self, source_ends: Sequence[float], unit_times: Sequence[float]) -> None:
        lags = word_lags(source_ends, unit_times)
        if lags:
            self.lags += lags
        else:
            self.skipped += 1

    @property
    def mean(self) -> float | None:
        return sum(self.lags) / len(self.lags) if self.lags else None

    @property
    def median(self) -> float | None:
        if not self.lags:
            return None
        s = sorted(self.lags)
        mid = len(s) // 2
        return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
