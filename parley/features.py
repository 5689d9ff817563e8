"""The one log-mel filterbank frontend, shared by training and serving.

Kaldi's fbank as kaldi-native-fbank computes it with sherpa-onnx's defaults: 16 kHz, 25 ms Povey window, 10 ms shift,
80 bins, dither 0, snip_edges false (frame t is centred on sample t * shift, the edges mirrored), samples scaled to
[-1, 1]. Training calls `compute_fbank` on whole utterances; the server feeds `StreamingFbank` with pieces of any
size and any rate. Both run the same code, so a model never sees features the other path would not produce
(tests/test_features.py checks it, and that the frames equal kaldi-native-fbank's to float32 rounding).

Computed in numpy, the frames of one call at once: per frame, the mean removed, pre-emphasis 0.97, the Povey window,
a zero-padded real FFT, the power spectrum, Kaldi's triangular mel filters (from `low_freq` 20 Hz), the log floored
at float32's epsilon. About three times cheaper than kaldi-native-fbank for the server's 100 ms messages (its time
went to the filterbank; here the filters are sparse sums), and numpy lets other threads run meanwhile. Every step
works on each frame alone, in a fixed order, so a frame's values do not depend on which frames share its call.

    >>> fb = StreamingFbank(input_rate=48000)
    >>> fb.accept(piece)          # float32 samples in [-1, 1], any length
    >>> frames = fb.pop_frames()  # (T, 80) the frames that became ready
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from parley.contract import FBANK_SHIFT_MS
from parley.resample import Resampler

if TYPE_CHECKING:
    import kaldi_native_fbank as knf

SAMPLE_RATE = 16000  # Hz: every model works at this rate; other input rates are resampled first.
LOW_FREQ = 20.0  # Hz: the mel filterbank's lower edge (Kaldi's default, which kaldi-native-fbank keeps)
PREEMPHASIS = 0.97
_FLOOR = float(np.finfo(np.float32).eps)  # the energy floor before the log
MIN_INPUT_RATE = 8000  # Hz: the lowest input rate accepted (narrow-band telephony).
MAX_INPUT_RATE = 192000  # Hz: the highest input rate accepted (96 and 192 kHz cost 1-1.5 ms a second to resample).


@dataclass(frozen=True)
class FbankConfig:
    """Frontend settings; stored in checkpoints and ONNX metadata so the runtime never repeats them."""

    sample_rate: int = SAMPLE_RATE
    num_bins: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = float(FBANK_SHIFT_MS)
    dither: float = 0.0
    snip_edges: bool = False
    # The mel filterbank's upper edge in Hz (<= 0: that far below Nyquist). Parley's models use the whole band (0);
    # icefall's (imported from sherpa-onnx) end 400 Hz below Nyquist (-400), lhotse's and sherpa-onnx's default.
    high_freq: float = 0.0

    @property
    def frame_shift(self) -> int:
        """Samples per frame shift at `sample_rate` (160 at 16 kHz)."""
        return round(self.sample_rate * self.frame_shift_ms / 1000)

    @property
    def frame_length(self) -> int:
        """Samples per frame at `sample_rate` (400 at 16 kHz)."""
        return round(self.sample_rate * self.frame_length_ms / 1000)

    def to_dict(self) -> dict:
        """The settings as a dict; `high_freq` only when it is not 0, so settings saved before it existed
        (checkpoints, feature caches) still compare equal."""
        d = asdict(self)
        if not d["high_freq"]:
            del d["high_freq"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FbankConfig:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    def mel_range(self) -> tuple[float, float]:
        """The mel filterbank's edges as Kaldi's options name them (what sherpa-onnx's metadata carries): `LOW_FREQ`
        and `high_freq` as set (0: the Nyquist frequency; negative: that far below it). kaldi-native-fbank's options
        give the same; this needs no kaldi-native-fbank, which the runtime does not install."""
        return LOW_FREQ, float(self.high_freq)

    def knf_options(self) -> knf.FbankOptions:
        """The same settings for kaldi-native-fbank (what sherpa-onnx computes; the tests' reference)."""
        import kaldi_native_fbank as knf

        opts = knf.FbankOptions()
        opts.frame_opts.samp_freq = float(self.sample_rate)
        opts.frame_opts.frame_length_ms = float(self.frame_length_ms)
        opts.frame_opts.frame_shift_ms = float(self.frame_shift_ms)
        opts.frame_opts.dither = float(self.dither)
        opts.frame_opts.snip_edges = bool(self.snip_edges)
        opts.mel_opts.num_bins = int(self.num_bins)
        opts.mel_opts.high_freq = float(self.high_freq)
        return opts


def num_frames(num_samples: int, config: FbankConfig = FbankConfig()) -> int:
    """Frames `compute_fbank` yields for `num_samples` samples at `config.sample_rate` (snip_edges false)."""
    assert not config.snip_edges, "only snip_edges=False is used in Parley"
    return (num_samples + config.frame_shift // 2) // config.frame_shift


class LogMel:
    """The log-mel filterbank of whole frames: `(N, frame_length)` float32 samples -> `(N, num_bins)` float32."""

    def __init__(self, config: FbankConfig) -> None:
        if config.dither or config.snip_edges:
            raise ValueError("Parley's fbank has dither 0 and snip_edges false")
        n = self.length = config.frame_length
        self.shift = config.frame_shift
        self.n_fft = 1 << (n - 1).bit_length()
        k = np.arange(n)
        self.window = ((0.5 - 0.5 * np.cos(2 * np.pi * k / (n - 1))) ** 0.85).astype(np.float32)  # Povey
        # Kaldi's mel filters over the FFT bins below Nyquist, as (bin, weight) runs, one per filter: `reduceat` sums
        # each run in order, whatever the number of frames.
        nyquist = config.sample_rate / 2
        high = config.high_freq if config.high_freq > 0 else nyquist + config.high_freq
        mel_low, mel_high = _mel(LOW_FREQ), _mel(high)
        delta = (mel_high - mel_low) / (config.num_bins + 1)
        mels = _mel(np.arange(self.n_fft // 2) * config.sample_rate / self.n_fft)
        cols: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for b in range(config.num_bins):
            left, centre, right = (mel_low + (b + i) * delta for i in range(3))
            inside = np.flatnonzero((mels > left) & (mels < right))
            m = mels[inside]
            w = np.where(m <= centre, (m - left) / (centre - left), (right - m) / (right - centre))
            if not inside.size:  # a filter narrower than an FFT bin: zero energy (floored), as in Kaldi
                inside, w = np.zeros(1, dtype=np.int64), np.zeros(1)
            cols.append(inside)
            weights.append(w)
        self.cols = np.concatenate(cols)
        self.weights = np.concatenate(weights).astype(np.float32)
        self.starts = np.cumsum([0] + [len(c) for c in cols[:-1]])

    def frames_of(self, span: np.ndarray) -> np.ndarray:
        """The frames' windows of a `StreamingFbank.span`: `(S,)` -> `(T, frame_length)`, a strided view."""
        span = np.ascontiguousarray(span, dtype=np.float32)
        count = self.num_frames_of(len(span))
        return np.lib.stride_tricks.as_strided(span, (count, self.length), (self.shift * 4, 4), writeable=False)

    def num_frames_of(self, num_samples: int) -> int:
        """Frames in a span of `num_samples` samples (`frames_of`'s count)."""
        return max(0, (num_samples - self.length) // self.shift + 1)

    def of_spans(self, spans: Sequence[np.ndarray]) -> np.ndarray:
        """The frames of several `StreamingFbank.span`s, in one call: `(S_i,)` each -> `(sum T_i, num_bins)`."""
        windows = [self.frames_of(s) for s in spans]
        return self(windows[0] if len(windows) == 1 else np.concatenate(windows))

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        if not len(frames):
            return np.zeros((0, len(self.starts)), dtype=np.float32)
        x = frames - frames.mean(axis=1, keepdims=True, dtype=np.float32)
        y = np.empty_like(x)
        y[:, 1:] = x[:, 1:] - PREEMPHASIS * x[:, :-1]
        y[:, 0] = x[:, 0] * np.float32(1 - PREEMPHASIS)
        y *= self.window
        spec = np.fft.rfft(y, n=self.n_fft, axis=1)
        power = spec.real**2 + spec.imag**2  # (N, n_fft / 2 + 1)
        mel = np.add.reduceat(power[:, self.cols] * self.weights, self.starts, axis=1)
        return np.log(np.maximum(mel, _FLOOR)).astype(np.float32, copy=False)


def _mel(hz: float | np.ndarray) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


class KnfLogMel(LogMel):
    """The same frames computed by kaldi-native-fbank, sherpa-onnx's frontend, to the bit (`FBANK_BACKENDS`).

    A frame depends only on its own window's samples (dither 0), so a span's frames are those of one snip-edges
    kaldi-native-fbank pass over it, edges mirrored as `StreamingFbank.span` mirrors them.
    """

    def __init__(self, config: FbankConfig) -> None:
        super().__init__(config)
        import kaldi_native_fbank as knf

        self._knf = knf
        self._opts = config.knf_options()
        self._opts.frame_opts.snip_edges = True
        self._rate = float(config.sample_rate)
        self._bins = config.num_bins

    def _span(self, span: np.ndarray) -> np.ndarray:
        fb = self._knf.OnlineFbank(self._opts)
        fb.accept_waveform(self._rate, np.ascontiguousarray(span, dtype=np.float32))
        fb.input_finished()
        n = fb.num_frames_ready
        return np.array([fb.get_frame(i) for i in range(n)], dtype=np.float32).reshape(n, self._bins)

    def of_spans(self, spans: Sequence[np.ndarray]) -> np.ndarray:
        out = [self._span(s) for s in spans]
        return np.concatenate(out) if out else np.zeros((0, self._bins), dtype=np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return self.of_spans(list(frames))


FBANK_BACKENDS = ("numpy", "kaldi-native-fbank")
"""What may compute the frames (`StreamingFbank`'s `backend`, the server's `--fbank`):

- "numpy" (the default): `LogMel`, equal to kaldi-native-fbank's to float32 rounding and cheaper;
- "kaldi-native-fbank": `KnfLogMel`, sherpa-onnx's own frames to the bit, so that an int8 bundle gives the same
  transcripts as in sherpa-onnx (int8 rounding turns last-bit input differences into different steps now and then);
  about 2.7x the numpy's time in a server batch of 200 streams (benchmarks/bench_fbank.py); needs
  `pip install kaldi-native-fbank`.
"""


def check_fbank_backend(name: str) -> str:
    """`name` if it is one of `FBANK_BACKENDS` and can run here.

    Raises:
        ValueError: an unknown name, or kaldi-native-fbank not installed.
    """
    if name not in FBANK_BACKENDS:
        raise ValueError(f"fbank backend {name!r} unknown: expected one of {', '.join(FBANK_BACKENDS)}")
    if name == "kaldi-native-fbank":
        try:
            import kaldi_native_fbank  # noqa: F401
        except ImportError:
            msg = "fbank backend kaldi-native-fbank not installed (pip install kaldi-native-fbank)"
            raise ValueError(msg) from None
    return name


@functools.lru_cache(maxsize=16)
def log_mel(config: FbankConfig, backend: str = "numpy") -> LogMel:
    """The `LogMel` of `config` computed by `backend` (one of `FBANK_BACKENDS`; one per config and backend, shared)."""
    return KnfLogMel(config) if check_fbank_backend(backend) == "kaldi-native-fbank" else LogMel(config)


class StreamingFbank:
    """Incremental fbank: accepts audio pieces, hands out frames as soon as they are final.

    A frame is ready once the samples of its window have all arrived (its first frames mirror the audio's start);
    after `finish` the last ones, whose windows pass the end, mirror the end (Kaldi's rule for snip_edges false).
    Frames are computed when asked for: `pop_frames` computes and hands them out; `span` gives a run of ready frames'
    samples instead, for a caller that computes the frames of many streams in one `LogMel` call (server/frontend.py),
    and `release` then says which samples are no longer needed.

    Args:
        config: the frontend settings (the model's).
        input_rate: the rate of the audio that will be passed to `accept`, 8-192 kHz; resampled to
            `config.sample_rate` inside.
        backend: what computes the frames, one of `FBANK_BACKENDS` (default "numpy").

    Raises:
        ValueError: `input_rate` outside 8-192 kHz; an unknown or uninstalled `backend`.
    """

    def __init__(
        self, config: FbankConfig = FbankConfig(), input_rate: int = SAMPLE_RATE, backend: str = "numpy"
    ) -> None:
        if not MIN_INPUT_RATE <= input_rate <= MAX_INPUT_RATE:
            raise ValueError(f"sample rate {input_rate} Hz not supported: {MIN_INPUT_RATE}-{MAX_INPUT_RATE} Hz")
        self.config = config
        self.input_rate = int(input_rate)
        self.logmel = log_mel(config, backend)
        self._resampler = Resampler(self.input_rate, config.sample_rate)
        self._length, self._shift = config.frame_length, config.frame_shift
        self._buf = np.zeros(0, dtype=np.float32)  # samples [_base, _received) at config.sample_rate
        self._base = 0
        self._received = 0
        self._ready = 0  # frames whose windows have arrived (every frame, after finish)
        self._next = 0  # the first frame `pop_frames` has not handed out
        self.finished = False

    def accept(self, samples: np.ndarray) -> None:
        """Accepts float samples `(T,)` in [-1, 1] at `input_rate`."""
        if self.finished:
            raise RuntimeError("StreamingFbank.accept() after finish()")
        self._feed(self._resampler.process(samples))

    def finish(self) -> None:
        """Marks the end of the input: the last frames (which need the right context) become ready."""
        if self.finished:
            return
        self.finished = True
        self._feed(self._resampler.flush())

    def _feed(self, x: np.ndarray) -> None:
        if x.size:
            self._buf = np.concatenate([self._buf, x.astype(np.float32, copy=False)])
            self._received += int(x.size)
        n = self._received
        total = num_frames(n, self.config)  # frames of the whole input
        if not self.finished:  # only frames whose window has fully arrived: start + frame length <= n
            total = min(total, max(0, (n - self._length - self._start(0)) // self._shift + 1))
        self._ready = max(self._ready, total)

    def _start(self, frame: int) -> int:
        """The first sample of `frame`'s window (frame t is centred on t * shift + shift / 2; negative at the start)."""
        return frame * self._shift + self._shift // 2 - self._length // 2

    @property
    def num_frames_ready(self) -> int:
        """Frames whose windows have arrived, handed out or not."""
        return self._ready

    def span(self, first: int, count: int) -> np.ndarray:
        """The samples of the windows of ready frames [first, first + count): `(S,)` float32, S = (count - 1) x shift
        + frame length, the input's edges mirrored; `LogMel.frames_of` cuts it into the frames' windows. A view of the
        buffer when no edge is mirrored: copy it to keep it past the next `accept`.

        Raises:
            ValueError: frames not ready yet, or released.
        """
        a = self._start(first)
        b = self._start(first + count - 1) + self._length
        if count < 1 or first + count > self._ready or max(a, 0) < self._base:
            raise ValueError(f"frames [{first}, {first + count}) are not available (ready: {self._ready})")
        n = self._received
        if a >= 0 and b <= n:
            return self._buf[a - self._base : b - self._base]
        idx = np.arange(a, b)
        while ((idx < 0) | (idx >= n)).any():  # mirror the edges (again and again for inputs shorter than a frame)
            idx = np.where(idx < 0, -idx - 1, np.where(idx >= n, 2 * n - 1 - idx, idx))
        return self._buf[idx - self._base]

    def release(self, frame: int) -> None:
        """Frames before `frame` will not be asked for again: their samples (those before its window) are dropped."""
        keep = min(max(self._start(frame), 0), self._received)
        if keep > self._base:
            self._buf = self._buf[keep - self._base :]
            self._base = keep

    def pop_frames(self, max_frames: int | None = None) -> np.ndarray:
        """Computes and returns the ready frames not yet handed out, `(T, num_bins)` float32, and forgets them."""
        end = self._ready if max_frames is None else min(self._ready, self._next + max_frames)
        if end <= self._next:
            return np.zeros((0, self.config.num_bins), dtype=np.float32)
        frames = self.logmel.of_spans([self.span(self._next, end - self._next)])
        self._next = end
        self.release(end)
        return frames


def compute_fbank(
    samples: np.ndarray, sample_rate: int, config: FbankConfig = FbankConfig(), backend: str = "numpy"
) -> np.ndarray:
    """Fbank of a whole utterance: `(T_samples,)` float in [-1, 1] -> `(T, num_bins)` float32 (`backend`: one of
    `FBANK_BACKENDS`)."""
    fb = StreamingFbank(config, sample_rate, backend)
    fb.accept(samples)
    fb.finish()
    return fb.pop_frames()
