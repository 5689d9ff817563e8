"""One stream's frontend: audio pieces of any size and rate in, encoder windows (`Chunk`s) out.

Dimension letters: T fbank frames one encoder step reads (the window), F fbank bins.

    frontend = Frontend(model.spec, sample_rate=48000)
    frontend.accept(samples)                  # float32 (T_samples,) at 48 kHz
    while (chunk := frontend.pop_chunk()) is not None:
        ...                                   # chunk.x (T, F): spec.window frames, advancing spec.shift
    frontend.flush()                          # finalize: silence so every sample so far is decoded; audio may follow
    frontend.finish()                         # end of audio: tail padding; the chunks that follow are flush chunks
    compute_features(chunks)                  # the fbank of many chunks (of many streams) in one call

The fbank frames (`StreamingFbank`, resampling inside) are cut into windows of `spec.window` frames advancing by
`spec.shift`, the input of one encoder step each. A chunk leaves the frontend as the samples of its frames' windows;
its fbank is computed when `x` is first read, or for a whole batch by `compute_features` (the recognizer's step, in
its worker thread: the event loop that receives the audio does no signal processing, and numpy computes the frames
of every stream in the batch at once). At the end of the audio one window of silence is appended
(parley.contract's tail padding rule), so the last real frame lies inside a complete step and every received sample
is decoded; the chunks cut after `finish` are marked `flush`. `flush` does the same in the middle of a stream (the
protocol's finalize): a window of silence and a little more goes in, which the audio that follows comes after, and
the seconds of silence it added are returned so the recognizer can take them out of the stream's clock.
Synchronous and free of asyncio: the batcher's streams and the recognizer's tests use it alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from parley.contract import tail_padding_samples
from parley.features import LogMel, StreamingFbank
from server.bundle import EncoderSpec

# Frames of silence `Frontend.flush` adds beyond the tail padding's window: without `finish` the fbank hands out a
# frame only once its 25 ms window has arrived, and the resampler holds back a few milliseconds.
FLUSH_EXTRA_FRAMES = 3


class Chunk:
    """One encoder window of one stream.

    Args:
        x: `(T, F)` float32 fbank frames; None to compute them from `samples` (`compute_features`).
        audio_s: seconds of audio the stream had received when the chunk was cut: no time in a result passes it
            (the tail padding is not audio).
        flush: cut after the end of the audio: its results are finals only (no partials).
        samples: `(S,)` float32, the samples of the T frames' windows (`StreamingFbank.span`), when `x` is None.
        logmel: what computes the frames from `samples`.
    """

    __slots__ = ("_x", "audio_s", "flush", "logmel", "samples")

    def __init__(
        self,
        x: np.ndarray | None,
        audio_s: float,
        flush: bool = False,
        samples: np.ndarray | None = None,
        logmel: LogMel | None = None,
    ) -> None:
        if x is None and (samples is None or logmel is None):
            raise ValueError("a chunk needs its frames or their samples and a LogMel")
        self._x, self.audio_s, self.flush, self.samples, self.logmel = x, audio_s, flush, samples, logmel

    @property
    def x(self) -> np.ndarray:
        """`(T, F)` float32 fbank frames."""
        if self._x is None:
            compute_features([self])
        assert self._x is not None
        return self._x


def compute_features(chunks: Sequence[Chunk]) -> None:
    """Computes the fbank frames of every chunk in `chunks` that has only its samples, one `LogMel` call for all of
    them (per frontend setting); a chunk's frames are the same whichever chunks share the call."""
    todo: dict[int, list[Chunk]] = {}
    for c in chunks:
        if c._x is None:
            todo.setdefault(id(c.logmel), []).append(c)
    for group in todo.values():
        logmel = group[0].logmel
        assert logmel is not None
        frames = logmel.of_spans([c.samples for c in group])
        i = 0
        for c in group:
            n = logmel.num_frames_of(len(c.samples))
            c._x, c.samples = frames[i : i + n], None
            i += n


class Frontend:
    """Audio to encoder windows for one stream.

    Args:
        spec: the encoder's window, shift and fbank settings.
        sample_rate: the rate of the audio `accept` receives (8-192 kHz; resampled to the model's).
        fbank: what computes the frames (`parley.features.FBANK_BACKENDS`; the server's `--fbank`).
    """

    def __init__(self, spec: EncoderSpec, sample_rate: int, fbank: str = "numpy") -> None:
        self.window = spec.window
        self.shift = spec.shift
        self.sample_rate = int(sample_rate)
        self._frame_shift_ms = spec.features.frame_shift_ms
        self._fbank = StreamingFbank(spec.features, self.sample_rate, fbank)
        self._first = 0  # the next chunk's first fbank frame
        self.samples_received = 0
        self.finished = False
        self._flushing = False  # flush() was called and no audio came since: the chunks cut now are flush chunks

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
        if samples.size:
            self._flushing = False
        self._fbank.accept(samples)

    def flush(self) -> float:
        """Decode everything so far, audio will follow: appends one window of silence and `FLUSH_EXTRA_FRAMES` frames
        more (the last real frame's window, the resampler's delay), so the chunk that holds the last real frame is
        complete; the chunks cut until more audio comes are flush chunks. The silence is not audio
        (`seconds_received` leaves it out).

        Returns:
            the seconds of silence added, which every later frame is shifted by (0 where no audio came since the last
            flush: nothing is added).

        Raises:
            RuntimeError: after `finish`.
        """
        if self.finished:
            raise RuntimeError("flush after the end of the stream")
        if self._flushing:  # no audio since the last flush: everything is decoded already
            return 0.0
        pad = tail_padding_samples(self.window, self.sample_rate, self._frame_shift_ms, FLUSH_EXTRA_FRAMES)
        self._fbank.accept(np.zeros(pad, dtype=np.float32))
        self._flushing = True
        return pad / self.sample_rate

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
        return self._fbank.num_frames_ready - self._first >= self.window

    def pop_chunk(self) -> Chunk | None:
        """The next whole window, or None until more audio (or `finish`) completes one."""
        if not self.ready():
            return None
        samples = np.array(self._fbank.span(self._first, self.window))  # (S,) a copy: the buffer moves on
        self._first += self.shift
        self._fbank.release(self._first)
        return Chunk(None, self.seconds_received, self.finished or self._flushing, samples, self._fbank.logmel)
