"""WebM audio, what browsers' MediaRecorder writes (Chrome, Edge and Firefox: Opus in WebM), turned into the Ogg Opus
stream that libsndfile decodes: the same Opus packets, repackaged, nothing decoded or re-encoded here. So a web app
uploads its recording as it is, without ffmpeg on either side.

    ogg = webm_to_ogg(blob)          # bytes of an Ogg Opus file (RFC 7845)
    samples, rate = soundfile.read(io.BytesIO(ogg), dtype="float32", always_2d=True)

The Matroska side (an EBML tree: https://www.matroska.org/technical/elements.html) is read as MediaRecorder writes
it: a Segment and Clusters of unknown size, SimpleBlocks (or Blocks in BlockGroups) of one audio track, with or
without lacing. Only Opus is taken (`A_OPUS`); a recording of another codec (Vorbis, or video) is a ValueError that
names it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

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
OPUS_RATE = 48000  # Opus's granule positions count 48 kHz samples, whatever the input's rate
_VENDOR = b"parley"


@dataclass
class _Track:
    number: int = 0
    kind: int = 0
    codec: str = ""
    private: bytes = b""
    delay_ns: int = 0
    channels: int = 1


@dataclass
class _Parsed:
    tracks: list[_Track] = field(default_factory=list)
    blocks: list[tuple[int, bytes]] = field(default_factory=list)  # (track number, frame), in file order


def webm_to_ogg(data: bytes) -> bytes:
    """An Ogg Opus file of a WebM (Matroska) recording's first audio track.

    Raises:
        ValueError: not a WebM file, no audio track, an audio codec other than Opus, or no audio in it.
    """
    parsed = _parse(data)
    audio = [t for t in parsed.tracks if t.kind == _AUDIO_TRACK or t.codec.startswith("A_")]
    if not audio:
        raise ValueError("a WebM file with no audio track")
    track = audio[0]
    if track.codec != "A_OPUS":
        raise ValueError(f"WebM audio in {track.codec or 'an unnamed codec'}, not Opus")
    packets = [frame for number, frame in parsed.blocks if number == track.number and frame]
    if not packets:
        raise ValueError("a WebM file whose audio track has no blocks")
    head = track.private if track.private.startswith(b"OpusHead") else _opus_head(track)
    return _ogg(head, packets)


def _parse(data: bytes) -> _Parsed:
    parsed = _Parsed()
    pos, end = 0, len(data)
    while pos < end:
        try:
            element, pos = _vint(data, pos, keep_marker=True)
            size, pos = _vint(data, pos, keep_marker=False)
        except IndexError:  # cut off inside an element's header: what came before is the recording
            break
        unknown = size == -1
        if element in _MASTERS:
            if element == _TRACK_ENTRY:
                parsed.tracks.append(_Track())
            continue  # read the children in line
        if unknown:
            raise ValueError(f"WebM element 0x{element:X} of unknown size")
        if pos + size > end:  # cut off inside this element (a recording stopped mid-write): keep what came before
            break
        body = data[pos : pos + size]
        pos += size
        track = parsed.tracks[-1] if parsed.tracks else None
        if element in (_SIMPLE_BLOCK, _BLOCK):
            number, frames = _block(body)
            parsed.blocks += [(number, f) for f in frames]
        elif track is not None and element == _TRACK_NUMBER:
            track.number = int.from_bytes(body, "big")
        elif track is not None and element == _TRACK_TYPE:
            track.kind = int.from_bytes(body, "big")
        elif track is not None and element == _CODEC_ID:
            track.codec = body.decode("ascii", "replace").rstrip("\0")
        elif track is not None and element == _CODEC_PRIVATE:
            track.private = body
        elif track is not None and element == _CODEC_DELAY:
            track.delay_ns = int.from_bytes(body, "big")
        elif track is not None and element == _CHANNELS:
            track.channels = int.from_bytes(body, "big")
    return parsed


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


def _opus_head(track: _Track) -> bytes:
    """The OpusHead of a track that has no CodecPrivate (RFC 7845 5.1): its channels, and its CodecDelay as the
    pre-skip."""
    pre_skip = round(track.delay_ns * OPUS_RATE / 1e9)
    return b"OpusHead" + struct.pack("<BBHIhB", 1, track.channels, pre_skip, OPUS_RATE, 0, 0)


def opus_samples(packet: bytes) -> int:
    """The 48 kHz samples an Opus packet decodes to, from its TOC byte (RFC 6716 3.1)."""
    toc = packet[0]
    config = toc >> 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        per_frame = (480, 960, 1920, 2880)[config % 4]
    elif config < 16:  # hybrid: 10, 20 ms
        per_frame = (480, 960)[config % 2]
    else:  # CELT: 2.5, 5, 10, 20 ms
        per_frame = (120, 240, 480, 960)[config % 4]
    code = toc & 3
    frames = 1 if code == 0 else 2 if code in (1, 2) else (packet[1] & 0x3F if len(packet) > 1 else 0)
    return per_frame * frames


def _ogg(head: bytes, packets: list[bytes]) -> bytes:
    """An Ogg stream (RFC 3533) of the Opus header, a tags packet and the audio packets, one packet a page."""
    serial = 0x5061726C  # "Parl"
    tags = b"OpusTags" + struct.pack("<I", len(_VENDOR)) + _VENDOR + struct.pack("<I", 0)
    pages = [_page(head, 0, serial, 0, 0x02), _page(tags, 0, serial, 1, 0)]
    granule = 0
    for i, packet in enumerate(packets):
        granule += opus_samples(packet)
        pages.append(_page(packet, granule, serial, i + 2, 0x04 if i == len(packets) - 1 else 0))
    return b"".join(pages)


def _page(packet: bytes, granule: int, serial: int, sequence: int, flags: int) -> bytes:
    lacing = [255] * (len(packet) // 255) + [len(packet) % 255]
    if len(lacing) > 255:
        raise ValueError(f"an Opus packet of {len(packet)} bytes, over one Ogg page")
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, sequence, 0, len(lacing)) + bytes(lacing)
    page = header + packet
    return page[:22] + struct.pack("<I", ogg_crc(page)) + page[26:]


# Ogg's CRC-32 is the unreflected one (polynomial 0x04C11DB7, initial value and final XOR 0); zlib computes the
# reflected one, so the bytes go in bit-reversed and the register comes out bit-reversed (zlib's own initial value and
# final XOR cancelled by starting it at 0xFFFFFFFF and XOR-ing the result).
_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def ogg_crc(data: bytes) -> int:
    """The CRC an Ogg page carries, of the page with its CRC field zeroed."""
    register = zlib.crc32(data.translate(_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{register:032b}"[::-1], 2)
