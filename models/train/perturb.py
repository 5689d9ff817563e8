"""On-the-fly training augmentation: speed perturbation, background padding and SpecAugment.

Dimension letters: T samples or frames, F fbank bins.

`UtteranceDataset` (dataset.py) applies them to every training item; the feature cache (feature_cache.py) computes the
speed-perturbed fbank ahead of time and pads in the feature domain with the same draws. Corpus-time effects baked into
the audio files (reverberation, noise, codecs) are models/data/augment.py's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from parley.features import SAMPLE_RATE
from parley.resample import resample


@dataclass
class AugmentSettings:
    """On-the-fly augmentation for training (all off for evaluation)."""

    speed_factors: tuple[float, ...] = (0.9, 1.0, 1.1)
    freq_masks: int = 2
    freq_mask_width: int = 15
    time_mask_ratio: float = 0.01  # time masks per frame (one per second)
    time_mask_width: int = 20  # frames; with one mask a second at most 20 % of the time is masked
    max_time_masks: int = 10
    # Silence padding: with this probability, up to pad_max_s of background before and (independently) after the
    # speech. espeak-ng starts speaking within 50 ms and the corpus keeps it that way; a model that never saw a
    # quiet lead-in hallucinates over one (0.3 s of silence took a 3-epoch model from 37 % to 65 % WER).
    pad_prob: float = 0.6
    pad_max_s: float = 1.0
    pad_floor_dbfs: tuple[float, float] = (-90.0, -50.0)  # level range of the padding where the speech has none

    @classmethod
    def off(cls) -> AugmentSettings:
        return cls(speed_factors=(1.0,), freq_masks=0, time_mask_ratio=0.0, pad_prob=0.0)


def speed_perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """Plays `x` `factor` times faster (pitch moves too, as in Kaldi's speed perturbation)."""
    if factor == 1.0:
        return x
    return resample(x, round(SAMPLE_RATE * factor), SAMPLE_RATE)


def noise_floor(x: np.ndarray) -> float:
    """RMS of the quietest 10 % of the 20 ms frames of `x` `(T,)`: the level of the recording's background."""
    frame = SAMPLE_RATE // 50
    n = x.size // frame
    return float(np.percentile(np.sqrt((x[: n * frame].reshape(n, frame) ** 2).mean(1)), 10)) if n else 0.0


def background_level(floor: float, floor_dbfs: tuple[float, float], rng: random.Random) -> float:
    """The padding's RMS level: the utterance's own floor times 0.5-1.5, never below a level drawn from
    `floor_dbfs` (synthetic speech can have no background at all)."""
    return max(floor * rng.uniform(0.5, 1.5), 10 ** (rng.uniform(*floor_dbfs) / 20))


def pad_with_background(x: np.ndarray, cfg: AugmentSettings, rng: random.Random) -> np.ndarray:
    """`(T,)` -> `(T',)`: with probability `cfg.pad_prob`, background noise before and after the speech.

    The background continues the utterance's own: Gaussian noise at the level of its quietest 10 % of 20 ms frames
    (its noise floor, from the corpus's noise augmentation) times 0.5-1.5, never below a level drawn from
    `cfg.pad_floor_dbfs`; one padding in five is digital silence, as some capture paths give.
    """
    if cfg.pad_prob <= 0 or rng.random() >= cfg.pad_prob:
        return x
    before = round(rng.uniform(0, cfg.pad_max_s) * SAMPLE_RATE)
    after = round(rng.uniform(0, cfg.pad_max_s) * SAMPLE_RATE)
    if rng.random() < 0.2:
        return np.concatenate([np.zeros(before, np.float32), x, np.zeros(after, np.float32)])
    level = background_level(noise_floor(x), cfg.pad_floor_dbfs, rng)
    noise = np.random.default_rng(rng.getrandbits(32)).standard_normal(before + after).astype(np.float32) * level
    return np.concatenate([noise[:before], x, noise[before:]])


def spec_augment(feats: torch.Tensor, cfg: AugmentSettings, rng: random.Random) -> torch.Tensor:
    """Frequency and time masks (filled with the utterance mean) on `(T, F)` features."""
    T, F = feats.shape
    out = feats.clone()
    fill = feats.mean()
    for _ in range(cfg.freq_masks):
        w = rng.randint(0, cfg.freq_mask_width)
        f0 = rng.randint(0, max(0, F - w))
        out[:, f0 : f0 + w] = fill
    n = min(cfg.max_time_masks, int(T * cfg.time_mask_ratio))
    for _ in range(n):
        w = rng.randint(0, min(cfg.time_mask_width, max(1, T // 10)))
        t0 = rng.randint(0, max(0, T - w))
        out[t0 : t0 + w] = fill
    return out
