"""Word timings for engines that give none (pico, RHVoice): transferred from espeak-ng by dynamic time warping.

    words = transfer_timings("set a timer for ten minutes", "en", x, sr)   # [WordTiming(word, start, end), ...]

espeak-ng speaks the same text with exact word timings (its WORD events); both renderings become 80-bin log-mel
frames with per-utterance mean and variance normalized per bin (which removes most of the voice and channel), and
a DTW path between them maps each reference word boundary onto the target's time axis. The step pattern lets the
reference advance 0, 1 or 2 frames per target frame, so the target may be anywhere from much slower to twice as
fast as the reference; every row depends only on the one before, so the recursion is vectorized over the reference.

How good it is (`python benchmarks/bench_align.py --n 100`): against exact timings of espeak-ng speakers of other
accents, variants and speeds, and of festival's voices (a different synthesizer), with the naive answer beside it
(the duration shared among words by length). Measured on 100 grammar dev sentences: see docs/data.md.

Dimension letters: T target frames, R reference frames, F fbank bins.
"""

from __future__ import annotations

import itertools

import numpy as np

from models.data.espeak import WordTiming, synthesize
from parley.features import SAMPLE_RATE, compute_fbank
from parley.resample import resample

_REFERENCE_VOICE = {"en": "en-us", "de": "de", "es": "es", "fr": "fr", "it": "it", "zh": "cmn-latn-pinyin"}
_SHIFT_S = 0.01  # fbank frame shift
_STRIDE = 2  # DTW on every second frame (20 ms): 4x less work, timing error about the same


def _features(x: np.ndarray, sr: int) -> np.ndarray:
    """(T, F) log-mel frames of `x`, mean and variance normalized per bin, rows scaled to unit length."""
    x = x.astype(np.float32)
    f = compute_fbank(x if sr == SAMPLE_RATE else resample(x, sr, SAMPLE_RATE), SAMPLE_RATE)
    f = f[: f.shape[0] - f.shape[0] % _STRIDE].reshape(-1, _STRIDE, f.shape[1]).mean(axis=1)  # (T / 2, F)
    f = (f - f.mean(axis=0)) / (f.std(axis=0) + 1e-5)
    return f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-8)


def dtw_path(target: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The reference frame matched to each target frame along the cheapest monotone path.

    Args:
        target: (T, F) unit-length rows.
        reference: (R, F) unit-length rows.

    Returns:
        (T,) int: non-decreasing reference frame indices, starting at 0 and ending at R - 1 when reachable.
    """
    T, R = target.shape[0], reference.shape[0]
    cost = 1.0 - target @ reference.T  # (T, R) cosine distance
    inf = np.float64(1e18)
    D = np.full(R, inf)
    D[0] = cost[0, 0]
    back = np.zeros((T, R), np.int8)  # how far the reference moved into (i, j): 0, 1 or 2
    for i in range(1, T):
        stay = D
        one = np.concatenate(([inf], D[:-1]))
        two = np.concatenate(([inf, inf], D[:-2]))
        moves = np.stack([stay, one, two])  # (3, R)
        k = moves.argmin(axis=0)
        D = moves[k, np.arange(R)] + cost[i]
        back[i] = k
    j = R - 1 if D[R - 1] < inf else int(D.argmin())
    path = np.empty(T, np.int64)
    for i in range(T - 1, -1, -1):
        path[i] = j
        j -= int(back[i, j])
    return np.maximum(path, 0)


def transfer_timings(text: str, language: str, x: np.ndarray, sr: int) -> list[WordTiming]:
    """One timing per whitespace token of `text` in `x` (any rate), from an espeak-ng rendering of the same text.

    Raises:
        ValueError: no reference voice for `language`, or empty text.
    """
    if language not in _REFERENCE_VOICE:
        raise ValueError(f"no reference voice for {language!r}; known: {', '.join(_REFERENCE_VOICE)}")
    ref = synthesize(text, voice=_REFERENCE_VOICE[language])
    path = np.repeat(dtw_path(_features(x, sr), _features(ref.samples, ref.sample_rate)) * _STRIDE, _STRIDE)
    T = path.size
    duration = x.size / sr
    words = []
    for w in ref.words:
        js, je = round(w.start / _SHIFT_S), max(round(w.start / _SHIFT_S) + 1, round(w.end / _SHIFT_S))
        inside = np.flatnonzero((path >= js) & (path < je))
        if inside.size:
            s, e = int(inside[0]), int(inside[-1]) + 1
        else:  # the path jumped over a very short word: give it the frame where it jumped
            s = int(np.searchsorted(path, js))
            e = s + 1
        words.append(WordTiming(w.word, min(s * _SHIFT_S, duration), min(max(e, s + 1) * _SHIFT_S, duration)))
    for prev, cur in itertools.pairwise(words):  # starts never go back
        cur.start = max(cur.start, prev.start)
        cur.end = max(cur.end, cur.start)
    assert len(words) == len(text.split()), f"{len(words)} timings for {len(text.split())} words"
    assert T > 0
    return words
