"""On-the-fly training augmentation: speed perturbation, background padding, a mel-axis warp and SpecAugment.

Dimension letters: T samples or frames, F fbank bins.

`UtteranceDataset` (dataset.py) applies them to every training item; the feature cache (feature_cache.py) computes the
speed-perturbed fbank ahead of time and pads in the feature domain with the same draws. Corpus-time effects baked into
the audio files (reverberation, noise, codecs) are models/data/augment.py's.
"""

from __future__ import annotations

import functools
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
    # Vocal tract length perturbation in the feature domain (`mel_warp`), drawn afresh for every item, so that one
    # recording is heard as a speaker with a longer or shorter tract each time it comes round; 0: off.
    warp_prob: float = 0.0
    warp_alpha: tuple[float, float] = (0.85, 1.15)

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


_WARP_BOUNDARY = 0.6  # VTLP's boundary frequency as a fraction of the band (4.8 kHz of 8 in Jaitly and Hinton)


def _mel(hz: np.ndarray | float) -> np.ndarray | float:
    """Kaldi's mel scale."""
    return 1127.0 * np.log1p(np.asarray(hz) / 700.0)


@functools.lru_cache(maxsize=8)
def _mel_centres(num_bins: int, low_hz: float, high_hz: float) -> np.ndarray:
    """`(F,)` the centre frequencies in Hz of a Kaldi filterbank's bins: evenly spaced in mel between the edges."""
    lo, hi = _mel(low_hz), _mel(high_hz)
    return 700.0 * np.expm1((lo + (hi - lo) * np.arange(1, num_bins + 1) / (num_bins + 1)) / 1127.0)


def mel_warp(feats: torch.Tensor, alpha: float, low_hz: float = 20.0, high_hz: float = SAMPLE_RATE / 2) -> torch.Tensor:
    """`(T, F)` log-mel features as if the speaker's vocal tract were `1 / alpha` times as long (VTLP, Jaitly and
    Hinton 2013, applied to the filterbank's outputs instead of the spectrum).

    The warp moves frequency f to alpha * f below a knee (0.6 of the band, times min(alpha, 1) / alpha) and maps the
    rest linearly so that the band's upper edge stays put (the corpus's `vtlp` in models/data/augment.py warps the
    spectrum of the audio instead, once per file): output bin k takes the input's value at the frequency
    that the warp sends to its centre, linearly interpolated between the two nearest input bins, so every output lies
    between two inputs of its frame. Formants move up for alpha > 1 and down below 1. `alpha` 1 returns the features
    as they are.

    Args:
        feats: `(T, F)` log-mel energies of F bins evenly spaced on the mel scale from `low_hz` to `high_hz`
            (Kaldi's filterbank: Parley's features).
        alpha: the warp factor (0.85-1.15 for a plausible speaker).
        low_hz, high_hz: the filterbank's edges.
    """
    if alpha == 1.0:
        return feats
    F = feats.shape[1]
    centres = _mel_centres(F, low_hz, high_hz)
    knee = _WARP_BOUNDARY * high_hz * min(alpha, 1.0) / alpha  # below it f -> alpha f; above, a line to high_hz
    src = np.where(  # the frequency whose energy lands on each centre: the warp's inverse
        centres <= alpha * knee,
        centres / alpha,
        knee + (centres - alpha * knee) * (high_hz - knee) / (high_hz - alpha * knee),
    )
    lo, hi = _mel(low_hz), _mel(high_hz)
    pos = np.clip((_mel(src) - lo) / (hi - lo) * (F + 1) - 1, 0, F - 1)  # fractional input bin
    i0 = np.floor(pos).astype(np.int64)
    w = torch.from_numpy((pos - i0).astype(np.float32)).to(feats.dtype)
    lower, upper = torch.from_numpy(i0), torch.from_numpy(np.minimum(i0 + 1, F - 1))
    return feats[:, lower] * (1 - w) + feats[:, upper] * w


def spec_augment(feats: torch.Tensor, cfg: AugmentSettings, rng: random.Random) -> torch.Tensor:
    """With probability `cfg.warp_prob` a `mel_warp` by a factor drawn from `cfg.warp_alpha`, then frequency and time
    masks (filled with the utterance mean) on `(T, F)` features."""
    if cfg.warp_prob > 0 and rng.random() < cfg.warp_prob:
        feats = mel_warp(feats, rng.uniform(*cfg.warp_alpha))
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
