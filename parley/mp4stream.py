"""MP4 audio streamed as MediaRecorder writes it with `audio/mp4` (fragmented: a moov, then a moof and an mdat every
chunk): Safari's AAC, Chrome's Opus. Decoded as it arrives into samples at the rate asked for (48 kHz unless told,
the server's), as a WebM or Ogg Opus stream is (parley/opusstream.py), so a stream's rate is the same whatever the
codec (a start message's `"encoding": "mp4"`).

    decoder = Mp4StreamDecoder()
    samples = decoder.feed(chunk)      # (T,) float32 at 48 kHz: the audio of the packets `chunk` completed

AAC goes to one libfaad2 decoder for the stream (parley/aac.py) and, where its rate is not `rate` (Safari records at
the microphone's, often 44.1 kHz), through one streaming resampler; Opus to parley/opusstream.py's decoder (libopus,
or libsndfile with a pre-roll). A stream's last few milliseconds stay in the resampler.
"""

from __future__ import annotations

import numpy as np

from parley.aac import AacDecoder
from parley.mp4 import Mp4Reader
from parley.ogg import OPUS_RATE
from parley.opusstream import CONTAINERS, MAX_PENDING, OpusStreamDecoder
from parley.resample import Resampler


class Mp4StreamDecoder:
    """One stream's fragmented MP4 (AAC or Opus), fed in chunks cut anywhere; its channels averaged.

    Args:
        backend: Opus's ("libopus", "libsndfile", or None: libopus where the system has it).
        rate: the rate of the samples `feed` returns, in Hz (8000-48000).

    Raises (from `feed`):
        ValueError: bytes that are not fragmented MP4, a codec other than AAC or Opus, a packet that cannot be
            decoded, AAC on a system without libfaad2.
    """

    def __init__(self, backend: str | None = None, rate: int = OPUS_RATE) -> None:
        if not 8000 <= rate <= OPUS_RATE:
            raise ValueError(f"rate {rate} Hz: MP4 streams decode to 8000-48000 Hz")
        self.rate = rate
        self._reader = Mp4Reader(max_pending=MAX_PENDING)
        self._backend = backend
        self._opus: OpusStreamDecoder | None = None
        self._aac: AacDecoder | None = None
        self._resampler: Resampler | None = None
        self._resampled_from = 0

    def feed(self, data: bytes) -> np.ndarray:
        packets = self._reader.feed(data)
        track = self._reader.track
        if not packets or track is None:
            return np.zeros(0, dtype=np.float32)
        if track.codec == "opus":
            if self._opus is None:
                self._opus = OpusStreamDecoder(None, self._backend, self.rate)
                self._opus.begin(track.config)
            return self._opus.decode(packets)
        if track.codec != "aac":
            raise ValueError(f"{track.codec.upper()} in an MP4 stream: Parley streams AAC and Opus in MP4")
        if self._aac is None:
            try:
                self._aac = AacDecoder(track.config)
            except OSError as e:
                raise ValueError(f"AAC needs libfaad2, which this server lacks ({e})") from None
        decoded = [self._aac.decode(p) for p in packets]
        x = np.concatenate([d.mean(axis=1, dtype=np.float32) if d.shape[1] > 1 else d[:, 0] for d in decoded])
        if self._aac.rate == self.rate:
            return x
        if self._resampler is None or self._resampled_from != self._aac.rate:
            self._resampler, self._resampled_from = Resampler(self._aac.rate, self.rate), self._aac.rate
        return self._resampler.process(x)


# Every container a stream may name as its encoding, each decoded to samples as it arrives.
STREAM_CONTAINERS = (*CONTAINERS, "mp4")


def stream_decoder(container: str, rate: int = OPUS_RATE) -> OpusStreamDecoder | Mp4StreamDecoder:
    """A new stream's decoder for `container`, one of STREAM_CONTAINERS, returning samples at `rate` Hz."""
    return Mp4StreamDecoder(rate=rate) if container == "mp4" else OpusStreamDecoder(container, rate=rate)
