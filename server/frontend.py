"""One stream's frontend: audio pieces of any size and rate in, encoder windows (`Chunk`s) out.

Dimension letters: T fbank frames one encoder step reads (the window), F fbank bins.

    frontend = Frontend(model.spec, sample_rate=48000)
    frontend.accept(samples)                  # float32 (T_samples,) at 48 kHz
    while (chunk := frontend.pop_chunk()) is not None:
        ...                                   # chunk.x (T, F): spec.window frames, advancing spec.shift
    frontend.finish()                         # end of audio: tail padding; the chunks that follow are flush chunks

The fbank frames (`StreamingFbank`, resampling inside) are cut into windows of `spec.window` frames advancing by
`spec.shift`, the input of one encoder step each. At the end of the audio one window of silence is appended
(parley.contract's tail padding rule), so the last real frame lies inside a complete step and every received sample
is decoded; the chunks cut after `finish` are marked `flush`. Synchronous and free of asyncio: the batcher's streams
and the recognizer's tests use it alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parley.contract import tail_padding_samples
from parley.features import StreamingFbank
from server.bundle import EncoderSpec


@dataclass
class Chunk:
    """One encoder window of one stream.

    Attributes:
        x: `(T, F)` float32 fbank frames.
        audio_s: seconds of audio the stream had received when the chunk was cut: no time in a result passes it
            (the tail padding is not audio).
        flush: cut after the end of the audio: its results are finals only (no partials).
    """

    x: np.ndarray
    audio_s: float
    flush: bool = False


class Frontend:
    """Audio to encoder windows for one stream.

    Args:
        spec: the encoder's window, shift and fbank settings.
        sample_rate: the rate of the audio `accept` receives (8-48 kHz; resampled to the model's).
    """

    def __init__(self, spec: EncoderSpec, sample_rate: int) -> None:
        self.window = spec.window
        self.shift = spec.shift
        self.sample_rate = int(sample_rate)
        self._frame_shift_ms = spec.features.frame_shift_ms
        self._fbank = StreamingFbank(spec.features, self.sample_rate)
        self._frames = np.zeros((0, spec.features.num_bins), dtype=np.float32)  # (T_buf, F) not yet in a chunk
        self.samples_received = 0
        self.finished = False

    @property
    def seconds_received(self) -> float:
        return self.samples_received / self.sample_rate

    def accept(self, samples: np.ndarray) -> None:
        """Adds audio: float32 samples `(T_samples,)` in [-1, 1] at `sample_rate`.

        Raises:
            RuntimeError: audio after `finish`.
        """
        if self.finished:
            raise RuntimeError("audio after the end of the stream")
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.samples_received += int(samples.size)
        self._fbank.accept(samples)

    def finish(self) -> None:
        """No more audio: appends the tail padding (`parley.contract.tail_padding_ms`: one window of silence) and
        lets the last frames out. Idempotent."""
        if self.finished:
            return
        self.finished = True
        pad = tail_padding_samples(self.window, self.sample_rate, self._frame_shift_ms)
        self._fbank.accept(np.zeros(pad, dtype=np.float32))
        self._fbank.finish()

    def ready(self) -> bool:
        """Whether a whole window is ready (`pop_chunk` returns a chunk)."""
        frames = self._fbank.pop_frames()  # (T_new, F)
        if len(frames):
            self._frames = np.concatenate([self._frames, frames]) if self._frames.size else frames
        return len(self._frames) >= self.window

    def pop_chunk(self) -> Chunk | None:
        """The next whole window, or None until more audio (or `finish`) completes one."""
        if not self.ready():
            return None
        x = self._frames[: self.window].copy()  # (T, F)
        self._frames = self._frames[self.shift :]
        return Chunk(x, self.seconds_received, flush=self.finished)
