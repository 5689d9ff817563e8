"""The one log-mel filterbank frontend, shared by training and serving.

kaldi-native-fbank with sherpa-onnx's defaults: 16 kHz, 25 ms Povey window, 10 ms shift, 80 bins, dither 0,
snip_edges false (frame t is centred on sample t * shift), samples scaled to [-1, 1]. Training calls
`compute_fbank` on whole utterances; the server feeds `StreamingFbank` with pieces of any size and any rate. Both run
the same code, so a model never sees features the other path would not produce (tests/test_features.py checks it).

    >>> fb = StreamingFbank(input_rate=48000)
    >>> fb.accept(piece)          # float32 samples in [-1, 1], any length
    >>> frames = fb.pop_frames()  # (T, 80) the frames that became ready
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import kaldi_native_fbank as knf
import numpy as np

from parley.contract import FBANK_SHIFT_MS
from parley.resample import Resampler

SAMPLE_RATE = 16000  # Hz: every model works at this rate; other input rates are resampled first.
MIN_INPUT_RATE = 8000  # Hz: the lowest input rate accepted (narrow-band telephony).
MAX_INPUT_RATE = 48000  # Hz: the highest input rate accepted.


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

    def knf_options(self) -> knf.FbankOptions:
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


class StreamingFbank:
    """Incremental fbank: accepts audio pieces, hands out frames as soon as they are final.

    Args:
        config: the frontend settings (the model's).
        input_rate: the rate of the audio that will be passed to `accept`, 8-48 kHz; resampled to
            `config.sample_rate` inside.

    Raises:
        ValueError: `input_rate` outside 8-48 kHz.
    """

    def __init__(self, config: FbankConfig = FbankConfig(), input_rate: int = SAMPLE_RATE) -> None:
        if not MIN_INPUT_RATE <= input_rate <= MAX_INPUT_RATE:
            raise ValueError(f"sample rate {input_rate} Hz not supported: {MIN_INPUT_RATE}-{MAX_INPUT_RATE} Hz")
        self.config = config
        self.input_rate = int(input_rate)
        self._resampler = Resampler(self.input_rate, config.sample_rate)
        self._fbank = knf.OnlineFbank(config.knf_options())
        self._next = 0  # index of the next frame to hand out
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
        self._feed(self._resampler.flush())
        self._fbank.input_finished()
        self.finished = True

    def _feed(self, x: np.ndarray) -> None:
        if x.size:
            self._fbank.accept_waveform(self.config.sample_rate, x.astype(np.float32, copy=False))

    @property
    def num_frames_ready(self) -> int:
        """Frames computed so far, handed out or not."""
        return self._fbank.num_frames_ready

    def pop_frames(self, max_frames: int | None = None) -> np.ndarray:
        """Returns the ready frames not yet handed out, `(T, num_bins)` float32, and forgets them."""
        end = self._fbank.num_frames_ready
        if max_frames is not None:
            end = min(end, self._next + max_frames)
        frames = np.empty((end - self._next, self.config.num_bins), dtype=np.float32)
        for i in range(self._next, end):
            frames[i - self._next] = self._fbank.get_frame(i)
        if end > self._next:
            self._fbank.pop(end - self._next)
            self._next = end
        return frames


def compute_fbank(samples: np.ndarray, sample_rate: int, config: FbankConfig = FbankConfig()) -> np.ndarray:
    """Fbank of a whole utterance: `(T_samples,)` float in [-1, 1] -> `(T, num_bins)` float32."""
    fb = StreamingFbank(config, sample_rate)
    fb.accept(samples)
    fb.finish()
    return fb.pop_frames()
