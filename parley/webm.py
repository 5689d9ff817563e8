"""WebM audio, what browsers' MediaRecorder writes (Chrome, Edge and Firefox: Opus in WebM), turned into the Ogg Opus
stream that libsndfile decodes: the same Opus packets, repackaged, nothing decoded or re-encoded here. So a web app
uploads its recording as it is, without ffmpeg on either side.

    ogg = webm_to_ogg(blob)          # bytes of an Ogg Opus file (RFC 7845)
    samples, rate = soundfile.read(io.BytesIO(ogg), dtype="float32", always_2d=True)
    reader = WebmReader(); packets = reader.feed(chunk)    # a stream's packets as its bytes come
    webm, ends = write_webm(head, packets)                  # and the other way: what a MediaRecorder sends

The Matroska side (an EBML tree: https://www.matroska.org/technical/elements.html) is read as MediaRecorder writes
it: a Segment and Clusters of unknown size, SimpleBlocks (or Blocks in BlockGroups) of one audio track, with or
without lacing. Only Opus is taken (`A_OPUS`); a recording of another codec (Vorbis, or video) is a ValueError that
names it. `write_webm` lays packets out as MediaRecorder does (a SimpleBlock each in one Cluster of unknown size), for
load generators and benchmarks that stream what a browser would (`parley loadtest --encoding webm`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from parley.ogg import OPUS_RATE, opus_head, write_ogg_opus

# Element IDs (with their length-marker bits, as written).
_SEGMENT, _CLUSTER, _TRACKS, _TRACK_ENTRY, _BLOCK_GROUP, _AUDIO = (
    0x18538067,
    0x1F43B675,
    0x1654AE6B,
    0xAE,
    0xA0,
    0xE1,
)
_TRACK_NUMBER, _TRACK_TYPE, _CODEC_ID, _CODEC_PRIVATE, _CODEC_DELAY = 0xD7, 0x83, 0x86, 0x63A2, 0x56AA
_CHANNELS, _SIMPLE_BLOCK, _BLOCK = 0x9F, 0xA3, 0xA1
# Masters whose children are read in line (their size, often "unknown" in a recording, does not matter then).
_MASTERS = {_SEGMENT, _CLUSTER, _TRACKS, _TRACK_ENTRY, _BLOCK_GROUP, _AUDIO}
_AUDIO_TRACK = 2


@dataclass
class _Track:
    number: int = 0
    kind: int = 0
    codec: str = ""
    private: bytes = b""
    delay_ns: int = 0
    channels: int = 1


@dataclass
class WebmReader:
    """The Opus packets of a WebM recording's first audio track, from bytes fed as they arrive (MediaRecorder's
    chunks, cut anywhere): an element is read once it is whole (a stream's reader bounds what an element may make it
    buffer: `max_pending`).

    Raises (from `feed` and `head`):
        ValueError: bytes that are not EBML, an audio codec other than Opus, a block before the tracks.
    """

    max_pending: int | None = None  # the most bytes an element not yet whole may hold buffered (None: no limit)
    tracks: list[_Track] = field(default_factory=list)
    _buffer: bytearray = field(default_factory=bytearray)
    _audio: _Track | None = None

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        packets: list[bytes] = []
        pos, end = 0, len(self._buffer)
        while pos < end:
            start = pos
            try:
                element, pos = _vint(self._buffer, pos, keep_marker=True)
                size, pos = _vint(self._buffer, pos, keep_marker=False)
            except IndexError:  # cut inside an element's header: the rest comes with the next bytes
                pos = start
                break
            if element in _MASTERS:
                if element == _TRACK_ENTRY:
                    self.tracks.append(_Track())
                continue  # read the children in line
            if size == -1:
                raise ValueError(f"WebM element 0x{element:X} of unknown size")
            if pos + size > end:  # cut inside this element: wait for the rest
                if self.max_pending is not None and pos - start + size > self.max_pending:
                    raise ValueError(f"a WebM element of {size} bytes, over the {self.max_pending} a stream may buffer")
                pos = start
                break
            body = bytes(self._buffer[pos : pos + size])
            pos += size
            if element in (_SIMPLE_BLOCK, _BLOCK):
                number, frames = _block(body)
                if number == self.audio().number:
                    packets += [f for f in frames if f]
            elif self.tracks:
                self._track_field(self.tracks[-1], element, body)
        del self._buffer[:pos]
        return packets

    def audio(self) -> _Track:
        """The audio track (the first).

        Raises:
            ValueError: none yet, or not Opus.
        """
        if self._audio is None:
            audio = [t for t in self.tracks if t.kind == _AUDIO_TRACK or t.codec.startswith("A_")]
            if not audio:
                raise ValueError("a WebM file with no audio track" if not self.tracks else "WebM with no audio track")
            if audio[0].codec != "A_OPUS":
                raise ValueError(f"WebM audio in {audio[0].codec or 'an unnamed codec'}, not Opus")
            self._audio = audio[0]
        return self._audio

    def head(self) -> bytes:
        """The audio track's OpusHead: its CodecPrivate, or one made from its channels and CodecDelay."""
        track = self.audio()
        if track.private.startswith(b"OpusHead"):
            return track.private
        return opus_head(track.channels, round(track.delay_ns * OPUS_RATE / 1e9))

    @staticmethod
    def _track_field(track: _Track, element: int, body: bytes) -> None:
        if element == _TRACK_NUMBER:
            track.number = int.from_bytes(body, "big")
        elif element == _TRACK_TYPE:
            track.kind = int.from_bytes(body, "big")
        elif element == _CODEC_ID:
            track.codec = body.decode("ascii", "replace").rstrip("\0")
        elif element == _CODEC_PRIVATE:
            track.private = body
        elif element == _CODEC_DELAY:
            track.delay_ns = int.from_bytes(body, "big")
        elif element == _CHANNELS:
            track.channels = int.from_bytes(body, "big")


def webm_to_ogg(data: bytes) -> bytes:
    """An Ogg Opus file of a WebM (Matroska) recording's first audio track (a recording cut off inside an element
    keeps what came before).

    Raises:
        ValueError: not a WebM file, no audio track, an audio codec other than Opus, or no audio in it.
    """
    reader = WebmReader()
    packets = reader.feed(data)
    head = reader.head()
    if not packets:
        raise ValueError("a WebM file whose audio track has no blocks")
    return write_ogg_opus(head, packets)


def write_webm(head: bytes, packets: Sequence[bytes]) -> tuple[bytes, list[int]]:
    """A WebM recording of Opus `packets` (one track; `head`: its OpusHead, channels and pre-skip), as MediaRecorder
    writes one: the Segment and the Cluster of unknown size, one unlaced SimpleBlock a packet. Returns the bytes and
    each packet's end offset in them (where a recorder's chunk holding it could end)."""

    def element(eid: int, body: bytes) -> bytes:
        return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + (len(body) | (1 << 56)).to_bytes(8, "big") + body

    unknown = b"\x01\xff\xff\xff\xff\xff\xff\xff"
    entry = (
        element(_TRACK_NUMBER, b"\x01") + element(_TRACK_TYPE, bytes([_AUDIO_TRACK])) + element(_CODEC_ID, b"A_OPUS")
    )
    entry += element(_CODEC_PRIVATE, head)
    out = element(0x1A45DFA3, element(0x4282, b"webm"))  # the EBML header, DocType webm
    out += _SEGMENT.to_bytes(4, "big") + unknown + element(_TRACKS, element(_TRACK_ENTRY, entry))
    out += _CLUSTER.to_bytes(4, "big") + unknown
    parts, ends, size = [out], [], len(out)
    for packet in packets:  # track 1 (a one-byte vint), timecode 0, flags 0x80 (keyframe)
        parts.append(element(_SIMPLE_BLOCK, b"\x81\x00\x00\x80" + packet))
        size += len(parts[-1])
        ends.append(size)
    return b"".join(parts), ends


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer at `pos`: an element ID (`keep_marker`) or a size (-1: unknown), and the
    position after it.

    Raises:
        IndexError: the data ends inside it.
        ValueError: a first byte of 0 (no length marker in 8 bytes).
    """
    first = data[pos]
    if first == 0:
        raise ValueError(f"not an EBML number at byte {pos}")
    length = 9 - first.bit_length()
    if pos + length > len(data):
        raise IndexError(pos)
    value = int.from_bytes(data[pos : pos + length], "big")
    if keep_marker:
        return value, pos + length
    value &= (1 << (7 * length)) - 1
    return (-1 if value == (1 << (7 * length)) - 1 else value), pos + length


def _block(body: bytes) -> tuple[int, list[bytes]]:
    """A (Simple)Block's track number and frames: unlaced, or Xiph, fixed-size or EBML laced."""
    number, pos = _vint(body, 0, keep_marker=False)
    flags = body[pos + 2]
    pos += 3
    lacing = (flags >> 1) & 3
    if lacing == 0:
        return number, [body[pos:]]
    count = body[pos] + 1
    pos += 1
    sizes: list[int] = []
    if lacing == 1:  # Xiph: each size as a run of 255s and a last byte
        for _ in range(count - 1):
            size = 0
            while body[pos] == 255:
                size, pos = size + 255, pos + 1
            sizes.append(size + body[pos])
            pos += 1
    elif lacing == 3:  # EBML: the first size, then signed differences
        size, pos = _vint(body, pos, keep_marker=False)
        sizes.append(size)
        for _ in range(count - 2):
            start = pos
            raw, pos = _vint(body, pos, keep_marker=False)
            length = pos - start
            size += raw - ((1 << (7 * length - 1)) - 1)
            sizes.append(size)
    rest = len(body) - pos
    if lacing == 2:  # fixed: equal sizes
        sizes = [rest // count] * (count - 1)
    sizes.append(rest - sum(sizes))
    frames = []
    for size in sizes:
        frames.append(body[pos : pos + size])
        pos += size
    return number, frames
