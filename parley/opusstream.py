"""Opus audio streamed in a container, decoded as it arrives: what a browser's MediaRecorder sends every few hundred
milliseconds (WebM), or an app's Ogg Opus encoder (a start message's `"encoding": "webm"` or `"ogg"`).

    decoder = OpusStreamDecoder("webm")
    samples = decoder.feed(chunk)      # (T,) float32 at 48 kHz: the audio of the packets `chunk` completed

Each chunk's new packets are decoded by libsndfile (the `soundfile` package) as a short Ogg Opus stream of their own,
after the last 400 ms or more of packets before them (a pre-roll, which brings a fresh decoder's state to what it
would be mid-stream), whose samples are dropped: the cost is the chunk's plus a constant, not the stream's so far.
RFC 7845 asks for 80 ms of pre-roll when seeking; on tonal audio that leaves an error of about 1 % of the signal,
160 ms a tenth of that, 400 ms none that float32 shows (tests/test_opusstream.py).
"""

from __future__ import annotations

import collections
import io

import numpy as np

from parley.ogg import OPUS_RATE, OggPacketReader, head_channels, head_pre_skip, opus_head, opus_samples, write_ogg_opus
from parley.webm import WebmReader

CONTAINERS = ("webm", "ogg")
PRE_ROLL = 19200  # samples at 48 kHz (400 ms) decoded before a chunk's packets and dropped


class OpusStreamDecoder:
    """One stream's Opus in WebM or Ogg, fed in chunks cut anywhere; its channels averaged.

    Args:
        container: "webm" or "ogg".

    Raises (from `feed`):
        ValueError: bytes that are not the container, an audio codec other than Opus, a packet libsndfile cannot
            decode.
    """

    rate = OPUS_RATE

    def __init__(self, container: str) -> None:
        if container not in CONTAINERS:
            raise ValueError(f"container {container!r}: use one of {CONTAINERS}")
        self.container = container
        self._webm = WebmReader() if container == "webm" else None
        self._ogg = OggPacketReader() if container == "ogg" else None
        self._head: bytes | None = None  # the stream's OpusHead (Ogg: its first packet)
        self._tags_seen = False
        self._history: collections.deque[bytes] = collections.deque()  # the last packets, >= PRE_ROLL samples
        self._skip = 0  # samples still to drop at the stream's start (its pre-skip)

    def feed(self, data: bytes) -> np.ndarray:
        packets = self._packets(data)
        if not packets:
            return np.zeros(0, dtype=np.float32)
        assert self._head is not None
        pre_roll = list(self._history)
        x = _decode(opus_head(head_channels(self._head)), pre_roll + packets)
        x = x[sum(map(opus_samples, pre_roll)) :]
        if self._skip:
            dropped = min(self._skip, len(x))
            x, self._skip = x[dropped:], self._skip - dropped
        self._history.extend(packets)
        while len(self._history) > 1 and sum(map(opus_samples, list(self._history)[1:])) >= PRE_ROLL:
            self._history.popleft()
        return x

    def _packets(self, data: bytes) -> list[bytes]:
        if self._webm is not None:
            packets = self._webm.feed(data)
            if packets and self._head is None:
                self._head = self._webm.head()
                self._skip = head_pre_skip(self._head)
            return packets
        assert self._ogg is not None
        out = []
        for packet in self._ogg.feed(data):
            if self._head is None:
                if not packet.startswith(b"OpusHead"):
                    raise ValueError("an Ogg stream that is not Opus (its first packet is no OpusHead)")
                self._head, self._skip = packet, head_pre_skip(packet)
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
