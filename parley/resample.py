"""Streaming sample-rate conversion in numpy (no torch, no scipy).

A polyphase windowed-sinc resampler for any pair of integer rates. Output sample n lies at input position
x = n * rate_in / rate_out; it is the sum of the 2K nearest input samples weighted by a Kaiser-windowed sinc whose
cutoff sits just below the lower of the two Nyquist frequencies. With g = gcd(rate_in, rate_out) the fractional
part of x takes only `up = rate_out / g` values, so the filter for each phase is computed once.

Feeding audio in pieces of any size gives exactly the same samples as one call: every output sample is computed
by the same arithmetic from the same inputs, wherever the piece boundaries fall.

Two ways to compute the same sums. Every `up` outputs the taps move on by `down` inputs, so one period's outputs are
a matrix `(up, down + 2K - 1)` applied to a window of the input, and the windows of successive periods are a strided
view of the input: one einsum, no index arrays. Even where most of that matrix is zeros (44.1 -> 16 kHz: up 160, down
441, 94 taps in rows of 534) it takes half the time of gathering each output's taps by index, and a seventh to a
sixteenth where rates are multiples (48 -> 16 kHz: 0.4 against 6.5 ms of a core a second of audio;
benchmarks/bench_resample.py). Rates whose period matrix would pass PERIOD_MATRIX_MAX elements (11,025 Hz, coprime
rates such as 44,101 Hz) gather.

    >>> r = Resampler(48000, 16000)
    >>> y = np.concatenate([r.process(piece) for piece in pieces] + [r.flush()])
"""

from __future__ import annotations

import functools
import math

import numpy as np

# Zero crossings of the sinc on each side of the centre, at the lower of the two rates. 16 keeps the stop-band
# below about -80 dB with the Kaiser window below; more costs time and buys nothing audible to an ASR frontend.
HALF_WIDTH = 16
# Cutoff as a fraction of the lower Nyquist frequency: a little transition band below it.
ROLLOFF = 0.94
KAISER_BETA = 8.6
# Outputs computed per vectorized block: bounds the (block, 2K) gather to a few MB. Arithmetic is float32 (the
# filters sum 2K taps; float64 bought nothing measurable and took twice the time: 11 -> 5 ms per 2.4 s utterance).
_BLOCK = 8192
# Elements (1 MB of float32) of the largest period matrix: each rate pair's is kept (64 pairs at most), so a client
# cycling through odd rates holds at most 64 MB. 11,025 Hz's (640 x 476) is over it and gathers, as fast there.
PERIOD_MATRIX_MAX = 1 << 18


@functools.lru_cache(maxsize=64)
def _period_matrix(up: int, down: int) -> np.ndarray | None:
    """The filters of one period laid out against its input window: `(up, down + 2K - 1)` float32, row r the taps
    of output `p * up + r` over inputs `p * down - K + 1 ...`; None where it would be too large (use the gather)."""
    K, filters, offsets = _design(up, down)
    width = down + 2 * K - 1
    if up * width > PERIOD_MATRIX_MAX:
        return None
    m = np.zeros((up, width), dtype=np.float32)
    for r in range(up):
        m[r, (r * down) // up + offsets + K - 1] = filters[(r * down) % up]
    m.flags.writeable = False
    return m


@functools.lru_cache(maxsize=64)
def _design(up: int, down: int) -> tuple[int, np.ndarray, np.ndarray]:
    """The polyphase filters of a rate change by up / down (reduced): half-width K in input samples, the filters
    `(up, 2K)` float32 (read-only: every stream at these rates shares them) and their taps' offsets `(2K,)`. A new
    stream at a common rate costs no filter design (the Kaiser window's Bessel function was most of opening one)."""
    cutoff = ROLLOFF * min(1.0, up / down)  # in cycles per input sample * 2 (1.0 = input Nyquist)
    K = math.ceil(HALF_WIDTH / cutoff)
    offsets = np.arange(-K + 1, K + 1)  # (2K,) input taps relative to floor(x)
    t = np.arange(up)[:, None] / up - offsets[None, :]  # (up, 2K) distance x - i
    # Kaiser window evaluated at continuous t in [-K, K], zero outside.
    r = np.clip(1.0 - (t / K) ** 2, 0.0, None)
    w = np.i0(KAISER_BETA * np.sqrt(r)) / np.i0(KAISER_BETA) * (np.abs(t) <= K)
    filters = (cutoff * np.sinc(cutoff * t) * w).astype(np.float32)
    filters.flags.writeable = False
    offsets.flags.writeable = False
    return K, filters, offsets


class Resampler:
    """Converts a stream of float samples from `rate_in` to `rate_out`.

    Args:
        rate_in: input sample rate in Hz (positive integer).
        rate_out: output sample rate in Hz (positive integer).

    Raises:
        ValueError: a rate is not a positive integer.
    """

    def __init__(self, rate_in: int, rate_out: int) -> None:
        if int(rate_in) != rate_in or int(rate_out) != rate_out or rate_in <= 0 or rate_out <= 0:
            raise ValueError(f"sample rates must be positive integers, got {rate_in} -> {rate_out}")
        self.rate_in = int(rate_in)
        self.rate_out = int(rate_out)
        g = math.gcd(self.rate_in, self.rate_out)
        self.up = self.rate_out // g
        self.down = self.rate_in // g
        self.passthrough = self.up == self.down
        self.K, self._filters, self._offsets = _design(self.up, self.down)
        self._period = None if self.passthrough else _period_matrix(self.up, self.down)
        # Input samples before the stream's start count as zeros: the buffer begins K - 1 samples early.
        self._buf = np.zeros(self.K - 1, dtype=np.float32)
        self._buf_start = -(self.K - 1)  # absolute input index of _buf[0]
        self._n_in = 0  # input samples received
        self._n_out = 0  # output samples produced
        self._flushed = False

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Accepts input samples `(T,)` and returns the output samples `(T',)` that are now computable."""
        if self._flushed:
            raise RuntimeError("Resampler.process() after flush()")
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self.passthrough:
            return x.copy()
        self._buf = np.concatenate([self._buf, x])
        self._n_in += x.size
        # Output n needs inputs up to floor(n * down / up) + K, all of which must have arrived:
        # n < (n_in - K) * up / down.
        n_end = max(self._n_out, -(-(self._n_in - self.K) * self.up // self.down))
        return self._emit(n_end)

    def flush(self) -> np.ndarray:
        """Ends the stream: returns the remaining output samples, treating input after the end as zeros."""
        if self.passthrough or self._flushed:
            self._flushed = True
            return np.zeros(0, dtype=np.float32)
        self._flushed = True
        self._buf = np.concatenate([self._buf, np.zeros(self.K + 1, dtype=np.float32)])
        total = -(-self._n_in * self.up // self.down)  # ceil: outputs whose position lies inside the input
        return self._emit(total)

    def _emit(self, n_end: int) -> np.ndarray:
        if self._period is not None:
            return self._emit_periods(n_end)
        outs = []
        for n0 in range(self._n_out, n_end, _BLOCK):
            n = np.arange(n0, min(n0 + _BLOCK, n_end), dtype=np.int64)
            pos = n * self.down
            base, phase = pos // self.up, pos % self.up
            idx = base[:, None] + self._offsets[None, :] - self._buf_start  # (N, 2K)
            outs.append(np.einsum("nk,nk->n", self._buf[idx], self._filters[phase]))
        if n_end > self._n_out:
            self._n_out = n_end
            # Keep only what later outputs can still reach.
            keep_from = (self._n_out * self.down) // self.up - self.K + 1
            drop = max(0, keep_from - self._buf_start)
            self._buf = self._buf[drop:]
            self._buf_start += drop
        if not outs:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(outs).astype(np.float32)

    def _emit_periods(self, n_end: int) -> np.ndarray:
        """Outputs `_n_out ..< n_end` a period at a time (see the module's docstring): whole periods are computed and
        the outputs outside the range dropped; inputs not yet received count as zeros there."""
        if n_end <= self._n_out:
            return np.zeros(0, dtype=np.float32)
        up, down, K = self.up, self.down, self.K
        width = self._period.shape[1]
        p0, p1 = self._n_out // up, (n_end - 1) // up + 1
        start = p0 * down - K + 1 - self._buf_start  # window of period p0 in _buf
        need = (p1 - p0 - 1) * down + width
        window = self._buf[start : start + need]
        if window.size < need:
            window = np.concatenate([window, np.zeros(need - window.size, dtype=np.float32)])
        step = window.strides[0]
        periods = np.lib.stride_tricks.as_strided(window, (p1 - p0, width), (down * step, step), writeable=False)
        y = np.einsum("pc,rc->pr", periods, self._period).reshape(-1)[self._n_out - p0 * up : n_end - p0 * up]
        self._n_out = n_end
        keep_from = (n_end // up) * down - K + 1  # the window of the period of the next output
        drop = max(0, keep_from - self._buf_start)
        self._buf = self._buf[drop:]
        self._buf_start += drop
        return y.astype(np.float32, copy=True)


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resamples a whole signal `(T,)` -> `(T * rate_out / rate_in,)` (rounded up)."""
    r = Resampler(rate_in, rate_out)
    return np.concatenate([r.process(samples), r.flush()])


def at_most(samples: np.ndarray, rate: int, limit: int) -> tuple[np.ndarray, int]:
    """A recording `(T,)` or `(C, T)` brought down to `limit` Hz when its `rate` is above it (a 96 kHz studio file to
    what the frontend takes), else as it is: (samples, rate)."""
    if rate <= limit:
        return samples, rate
    if samples.ndim == 1:
        return resample(samples, rate, limit), limit
    return np.stack([resample(c, rate, limit) for c in samples]), limit
