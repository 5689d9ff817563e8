"""Opus audio streamed in a container, decoded as it arrives: what a browser's MediaRecorder sends every few hundred
milliseconds (WebM), or an app's Ogg Opus encoder (a start message's `"encoding": "webm"` or `"ogg"`).

    decoder = OpusStreamDecoder("webm")
    samples = decoder.feed(chunk)      # (T,) float32 at 48 kHz: the audio of the packets `chunk` completed

The packets go to one libopus decoder for the whole stream (through ctypes, where the system has libopus: Debian's
libopus0, which the Docker image installs), so each is decoded once with the state of the packets before it, as a
player would. Without libopus each chunk's new packets are decoded by libsndfile (the `soundfile` package) as a short
Ogg Opus stream of their own, after the last 400 ms or more of packets before them (a pre-roll, which brings a fresh
decoder's state to what it would be mid-stream), whose samples are dropped: the cost is the chunk's plus a constant,
not the stream's so far. RFC 7845 asks for 80 ms of pre-roll when seeking; on tonal audio that leaves an error of
about 1 % of the signal, 160 ms a tenth of that, 400 ms none that float32 shows (tests/test_opusstream.py). What
either costs: benchmarks/bench_opus.py.

`rate` is the rate the samples come out at (default 48 kHz, Opus's own). libopus decodes at 8, 12, 16, 24 or 48 kHz
itself, and at the models' 16 kHz it skips the bands above 8 kHz rather than synthesizing them for a resampler to
remove (benchmarks/bench_opus.py); the server still decodes at 48 kHz, which en-open hears better (server/protocol.py
CONTAINER_RATE). Other rates, and libsndfile's decoding (always 48 kHz), go through parley/resample.py's resampler.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import io

import numpy as np

from parley.ogg import OPUS_RATE, OggPacketReader, head_channels, head_pre_skip, opus_head, opus_samples, write_ogg_opus
from parley.resample import Resampler
from parley.webm import WebmReader

CONTAINERS = ("webm", "ogg")
BACKENDS = ("libopus", "libsndfile")
# The most bytes a stream's WebM element may hold buffered before it is whole: MediaRecorder's blocks are a few
# kilobytes; a client that announces a huge element and trickles it is refused instead of filling memory.
MAX_PENDING = 1 << 20
PRE_ROLL = 19200  # samples at 48 kHz (400 ms) decoded before a chunk's packets and dropped
LIBOPUS_RATES = (8000, 12000, 16000, 24000, 48000)  # the rates libopus's decoder writes itself


class LibOpus:
    """A libopus decoder of one stream (mono or stereo), through ctypes, writing `rate` Hz (one of LIBOPUS_RATES).

    Raises (from the constructor):
        OSError: no libopus on this system.
        ValueError: a channel count libopus's plain decoder does not take, a rate it does not write.
    """

    _lib: ctypes.CDLL | None = None
    MAX_SAMPLES = 5760  # 120 ms at 48 kHz, the longest packet

    def __init__(self, channels: int, rate: int = OPUS_RATE) -> None:
        lib = self.library()
        if channels not in (1, 2):
            raise ValueError(f"{channels} channels: libopus's plain decoder takes 1 or 2")
        if rate not in LIBOPUS_RATES:
            raise ValueError(f"{rate} Hz: libopus decodes at {LIBOPUS_RATES}")
        error = ctypes.c_int()
        self._decoder = lib.opus_decoder_create(rate, channels, ctypes.byref(error))
        if error.value != 0 or not self._decoder:
            raise ValueError(f"opus_decoder_create failed ({error.value})")
        self.channels = channels
        self._out = np.empty(self.MAX_SAMPLES * channels, dtype=np.float32)

    @classmethod
    def library(cls) -> ctypes.CDLL:
        """libopus, loaded once.

        Raises:
            OSError: not found.
        """
        if cls._lib is None:
            name = ctypes.util.find_library("opus")
            if name is None:
                raise OSError("libopus not found (Debian: apt install libopus0)")
            lib = ctypes.CDLL(name)
            lib.opus_decoder_create.restype = ctypes.c_void_p
            lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
            lib.opus_decode_float.restype = ctypes.c_int
            lib.opus_decode_float.argtypes = [
                ctypes.c_void_p,
                ctypes.c_char_p,
                ctypes.c_int32,
                ctypes.POINTER(ctypes.c_float),
                ctypes.c_int,
                ctypes.c_int,
            ]
            lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
            lib.opus_strerror.restype = ctypes.c_char_p
            cls._lib = lib
        return cls._lib

    def decode(self, packet: bytes) -> np.ndarray:
        """One packet's samples, `(T,)` float32, channels averaged.

        Raises:
            ValueError: a packet libopus cannot decode.
        """
        lib = self.library()
        out = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        n = lib.opus_decode_float(self._decoder, packet, len(packet), out, self.MAX_SAMPLES, 0)
        if n < 0:
            raise ValueError(f"an Opus packet libopus cannot decode: {lib.opus_strerror(n).decode()}")
        x = self._out[: n * self.channels].reshape(n, self.channels)
        return x[:, 0].copy() if self.channels == 1 else x.mean(axis=1, dtype=np.float32)

    def __del__(self) -> None:
        decoder = getattr(self, "_decoder", None)
        if decoder and self._lib is not None:
            self._lib.opus_decoder_destroy(decoder)


def libopus_available() -> bool:
    """Whether this system has libopus (else streams decode through libsndfile with a pre-roll)."""
    try:
        LibOpus.library()
    except OSError:
        return False
    return True


class OpusStreamDecoder:
    """One stream's Opus in WebM or Ogg, fed in chunks cut anywhere; its channels averaged.

    Args:
        container: "webm" or "ogg"; or None: packets without a container (parley/mp4stream.py's), given to `decode`
            after `begin` has the stream's OpusHead.
        backend: "libopus" (one decoder for the stream; needs libopus), "libsndfile" (each chunk after a pre-roll),
            or None: libopus where the system has it.
        rate: the rate of the samples `feed` and `decode` return, in Hz (8000-48000).

    Raises:
        ValueError (from the constructor): an unknown container or backend, a rate outside 8000-48000.
        ValueError (from `feed`): bytes that are not the container, an audio codec other than Opus, a packet libsndfile
            cannot decode.
    """

    def __init__(self, container: str | None, backend: str | None = None, rate: int = OPUS_RATE) -> None:
        if container is not None and container not in CONTAINERS:
            raise ValueError(f"container {container!r}: use one of {CONTAINERS}")
        if backend not in (None, *BACKENDS):
            raise ValueError(f"backend {backend!r}: use one of {BACKENDS}")
        if not 8000 <= rate <= OPUS_RATE:
            raise ValueError(f"rate {rate} Hz: Opus streams decode to 8000-48000 Hz")
        self.container = container
        self.backend = backend or ("libopus" if libopus_available() else "libsndfile")
        self.rate = rate
        self._native = OPUS_RATE  # the rate the packets are decoded at (set by `begin`); resampled to `rate` after
        self._resampler: Resampler | None = None
        self._libopus: LibOpus | None = None
        self._webm = WebmReader(max_pending=MAX_PENDING) if container == "webm" else None
        self._ogg = OggPacketReader() if container == "ogg" else None
        self._head: bytes | None = None  # the stream's OpusHead (Ogg: its first packet)
        self._tags_seen = False
        # The last packets (each with its samples), >= PRE_ROLL samples in all, and their sum.
        self._history: collections.deque[tuple[bytes, int]] = collections.deque()
        self._history_samples = 0
        self._skip = 0  # samples still to drop at the stream's start (its pre-skip)

    def feed(self, data: bytes) -> np.ndarray:
        return self.decode(self._packets(data))

    def begin(self, head: bytes) -> None:
        """The stream's OpusHead, before its first packet (what a container's header carries)."""
        self._head = head
        libopus = self.backend == "libopus" and head_channels(head) <= 2
        self._native = self.rate if libopus and self.rate in LIBOPUS_RATES else OPUS_RATE
        # The pre-skip counts 48 kHz samples; dropped at the rate the packets decode to.
        self._skip = round(head_pre_skip(head) * self._native / OPUS_RATE)
        if self._native != self.rate:
            self._resampler = Resampler(self._native, self.rate)

    def decode(self, packets: list[bytes]) -> np.ndarray:
        """`packets`' samples, `(T,)` float32 at `rate`, decoded after those before them (resampled: but for the
        resampler's last few milliseconds, which the next packets bring out)."""
        if not packets:
            return np.zeros(0, dtype=np.float32)
        assert self._head is not None
        if self.backend == "libopus" and head_channels(self._head) <= 2:
            if self._libopus is None:
                self._libopus = LibOpus(head_channels(self._head), self._native)
            x = np.concatenate([self._libopus.decode(p) for p in packets])
        else:
            x = self._pre_rolled(packets)
        if self._skip:
            dropped = min(self._skip, len(x))
            x, self._skip = x[dropped:], self._skip - dropped
        return x if self._resampler is None else self._resampler.process(x)

    def _pre_rolled(self, packets: list[bytes]) -> np.ndarray:
        """`packets` decoded by libsndfile after the pre-roll, whose samples are dropped."""
        assert self._head is not None
        x = _decode(opus_head(head_channels(self._head)), [p for p, _ in self._history] + packets)
        x = x[self._history_samples :]
        for packet in packets:
            n = opus_samples(packet)
            self._history.append((packet, n))
            self._history_samples += n
        # Drop the oldest while the rest still covers the pre-roll.
        while len(self._history) > 1 and self._history_samples - self._history[0][1] >= PRE_ROLL:
            self._history_samples -= self._history.popleft()[1]
        return x

    def _packets(self, data: bytes) -> list[bytes]:
        if self._webm is not None:
            packets = self._webm.feed(data)
            if packets and self._head is None:
                self.begin(self._webm.head())
            return packets
        if self._ogg is None:
            raise ValueError("a decoder without a container takes packets through decode(), not bytes")
        out = []
        for packet in self._ogg.feed(data):
            if self._head is None:
                if not packet.startswith(b"OpusHead"):
                    raise ValueError("an Ogg stream that is not Opus (its first packet is no OpusHead)")
                self.begin(packet)
            elif not self._tags_seen:
                self._tags_seen = True  # OpusTags
            else:
                out.append(packet)
        return out


def _decode(head: bytes, packets: list[bytes]) -> np.ndarray:
    """`packets` decoded from a fresh decoder: `(T,)` float32 at 48 kHz, channels averaged."""
    import soundfile

    try:
        x, _ = soundfile.read(io.BytesIO(write_ogg_opus(head, packets)), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile's LibsndfileError (a RuntimeError)
        raise ValueError(f"Opus packets libsndfile cannot decode ({str(e)[:100]})") from None
    return x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]
