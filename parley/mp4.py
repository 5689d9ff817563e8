"""MP4 audio (ISO base media: .m4a, .mp4, .mov): what Safari's MediaRecorder writes (AAC, fragmented), what phones'
voice memos are (AAC), and Chrome's `audio/mp4` recordings (Opus, fragmented). Only the container is read here: the
first audio track's packets and what its decoder needs; parley/aac.py decodes AAC, libopus or libsndfile Opus.

    track, packets = read_mp4(data)          # a whole file: progressive (sample tables) or fragmented
    reader = Mp4Reader(); packets = reader.feed(chunk)   # a fragmented stream's packets as its bytes come

The boxes read are ISO/IEC 14496-12's: moov/trak/mdia (mdhd, hdlr) /minf/stbl (stsd, stsz, stsc, stco, co64) for a
progressive file, and mvex/trex with moof/traf (tfhd, trun) + mdat for a fragmented one; the codec's configuration from
stsd's entry: `mp4a`'s esds (the AAC AudioSpecificConfig, ISO/IEC 14496-1 descriptors; or MP3 by its object type) or
`Opus`'s dOps (https://opus-codec.org/docs/opus_in_isobmff.html), turned into the OpusHead an Ogg stream carries. Edit
lists are not applied: an encoder's priming (about 20-50 ms of silence at the start) stays in the samples.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

# Boxes whose children are boxes (no header fields of their own), on the paths to what is read.
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"edts", b"dinf"}
# MPEG-4 object types of esds's DecoderConfigDescriptor (ISO/IEC 14496-1 table 5): AAC (MPEG-4, MPEG-2 profiles)
_AAC_OBJECTS = {0x40, 0x66, 0x67, 0x68}
_MP3_OBJECTS = {0x69, 0x6B}
_STREAM_HINT = "stream a fragmented MP4 (as MediaRecorder writes), or upload the whole file"


@dataclass
class Mp4Track:
    """The first audio track: its codec ("aac", "opus" or "mp3"), what its decoder needs (`config`: AAC's
    AudioSpecificConfig, or an OpusHead), its channels and rate as the sample entry says, and (progressive files) where
    its samples lie."""

    track_id: int = 0
    codec: str = ""
    config: bytes = b""
    channels: int = 0
    rate: int = 0
    timescale: int = 0
    default_size: int = 0  # trex's, for fragments whose runs give no sizes
    sizes: list[int] = field(default_factory=list)  # progressive: every sample's size, in order
    chunk_offsets: list[int] = field(default_factory=list)
    samples_per_chunk: list[tuple[int, int]] = field(default_factory=list)  # stsc: (first chunk, 1-based; samples)

    def sample_offsets(self) -> list[int]:
        """A progressive file's samples' byte offsets, from its chunk offsets and sample-to-chunk table."""
        out: list[int] = []
        table = self.samples_per_chunk
        i = 0  # the next sample
        for c, offset in enumerate(self.chunk_offsets, start=1):
            per = next((n for first, n in reversed(table) if first <= c), 0)
            for _ in range(per):
                if i >= len(self.sizes):
                    return out
                out.append(offset)
                offset += self.sizes[i]
                i += 1
        return out


def _boxes(data: bytes | bytearray | memoryview, start: int, end: int, parent: str = "its parent"):
    """(type, payload start, box end, box start) of each whole box in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            if pos + 16 > end:
                raise ValueError("MP4 box cut inside its 64-bit size")
            size, head = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise ValueError(f"MP4 box {kind.decode('latin-1')!r} of {size} bytes runs past {parent}")
        yield bytes(kind), pos + head, pos + size, pos
        pos += size


def _find(data, start: int, end: int, path: list[bytes]) -> list[tuple[int, int]]:
    """The (payload start, end) of every box at `path` below data[start:end]."""
    if not path:
        return [(start, end)]
    out = []
    for kind, s, e, _ in _boxes(data, start, end):
        if kind == path[0]:
            out += _find(data, s, e, path[1:])
    return out


def _descriptor(data: bytes, pos: int) -> tuple[int, int, int]:
    """An ISO/IEC 14496-1 descriptor at `pos`: (tag, payload start, payload end)."""
    tag, pos = data[pos], pos + 1
    size = 0
    for _ in range(4):
        b, pos = data[pos], pos + 1
        size = (size << 7) | (b & 0x7F)
        if not b & 0x80:
            break
    return tag, pos, pos + size


def _esds(data: bytes) -> tuple[str, bytes]:
    """An esds box's payload -> ("aac", AudioSpecificConfig) or ("mp3", b"")."""
    tag, s, e = _descriptor(data, 4)  # after the FullBox's version and flags
    if tag != 0x03:
        raise ValueError("an MP4 esds without an ES descriptor")
    flags = data[s + 2]
    pos = s + 3
    if flags & 0x80:
        pos += 2
    if flags & 0x40:
        pos += 1 + data[pos]
    if flags & 0x20:
        pos += 2
    while pos < e:
        tag, ds, de = _descriptor(data, pos)
        if tag == 0x04:  # DecoderConfigDescriptor
            object_type = data[ds]
            if object_type in _MP3_OBJECTS:
                return "mp3", b""
            if object_type not in _AAC_OBJECTS:
                raise ValueError(f"MP4 audio of object type 0x{object_type:02X}: Parley reads AAC, Opus and MP3")
            pos = ds + 13
            while pos < de:
                tag, ss, se = _descriptor(data, pos)
                if tag == 0x05:  # DecoderSpecificInfo: the AudioSpecificConfig
                    return "aac", bytes(data[ss:se])
                pos = se
            raise ValueError("MP4 AAC audio without its AudioSpecificConfig")
        pos = de
    raise ValueError("an MP4 esds without a decoder configuration")


def _dops_to_opus_head(dops: bytes) -> bytes:
    """ISO BMFF's dOps (big-endian, version 0) -> Ogg's OpusHead (little-endian, version 1)."""
    if len(dops) < 11:
        raise ValueError("an MP4 dOps box too short")
    channels, pre_skip, rate, gain, family = struct.unpack_from(">BHIhB", dops, 1)
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, rate, gain, family) + bytes(dops[11:])


def _sample_entry(data: bytes, s: int, e: int) -> Mp4Track:
    """stsd's payload -> the codec of its first entry."""
    entries = list(_boxes(data, s + 8, e))  # after version/flags and entry_count
    if not entries:
        raise ValueError("an MP4 audio track without a sample description")
    kind, es, ee, _ = entries[0]
    version = struct.unpack_from(">H", data, es + 8)[0]
    channels, _, _, _, rate = struct.unpack_from(">HHHHI", data, es + 16)
    children = es + 28 + {0: 0, 1: 16, 2: 36}.get(version, 0)  # QuickTime's sound description v1 / v2 add fields
    track = Mp4Track(channels=channels, rate=rate >> 16)
    inner = {k: bytes(data[cs:ce]) for k, cs, ce, _ in _boxes(data, children, ee)}
    if kind == b"mp4a":
        if b"esds" not in inner:
            raise ValueError("MP4 mp4a audio without an esds box")
        track.codec, track.config = _esds(inner[b"esds"])
    elif kind == b"Opus":
        if b"dOps" not in inner:
            raise ValueError("MP4 Opus audio without a dOps box")
        track.codec, track.config = "opus", _dops_to_opus_head(inner[b"dOps"])
    elif kind in (b".mp3", b"mp3 "):
        track.codec = "mp3"
    else:
        raise ValueError(f"MP4 audio of codec {kind.decode('latin-1')!r}: Parley reads AAC, Opus and MP3")
    return track


def _u32s(data: bytes, pos: int, n: int, wide: bool = False) -> list[int]:
    return list(struct.unpack_from(f">{n}{'Q' if wide else 'I'}", data, pos))


def _movie(data, start: int, end: int) -> Mp4Track:
    """A moov box's payload -> its first audio track."""
    for s, e in _find(data, start, end, [b"trak"]):
        handlers = _find(data, s, e, [b"mdia", b"hdlr"])
        if not handlers or bytes(data[handlers[0][0] + 8 : handlers[0][0] + 12]) != b"soun":
            continue
        tkhd, mdhd = _find(data, s, e, [b"tkhd"]), _find(data, s, e, [b"mdia", b"mdhd"])
        if not tkhd or not mdhd:
            raise ValueError("an MP4 audio track without its tkhd or mdhd box")
        ts, ms = tkhd[0][0], mdhd[0][0]
        track_id = struct.unpack_from(">I", data, ts + (20 if data[ts] == 1 else 12))[0]
        timescale = struct.unpack_from(">I", data, ms + (20 if data[ms] == 1 else 12))[0]
        stbl = _find(data, s, e, [b"mdia", b"minf", b"stbl"])
        if not stbl:
            raise ValueError("an MP4 audio track without a sample table")
        bs, be = stbl[0]
        stsd = _find(data, bs, be, [b"stsd"])
        if not stsd:
            raise ValueError("an MP4 audio track without a sample description")
        track = _sample_entry(data, *stsd[0])
        track.track_id, track.timescale = track_id, timescale
        for ss, _ in _find(data, bs, be, [b"stsz"]):
            size, count = struct.unpack_from(">II", data, ss + 4)
            track.sizes = [size] * count if size else _u32s(data, ss + 12, count)
        for ss, _ in _find(data, bs, be, [b"stsc"]):
            count = struct.unpack_from(">I", data, ss + 4)[0]
            flat = _u32s(data, ss + 8, 3 * count)
            track.samples_per_chunk = [(flat[3 * i], flat[3 * i + 1]) for i in range(count)]
        for kind, wide in ((b"stco", False), (b"co64", True)):
            for ss, _ in _find(data, bs, be, [kind]):
                count = struct.unpack_from(">I", data, ss + 4)[0]
                track.chunk_offsets = _u32s(data, ss + 8, count, wide)
        for ss, _ in _find(data, start, end, [b"mvex", b"trex"]):
            trex_id, _, _, size = struct.unpack_from(">IIII", data, ss + 4)
            if trex_id == track_id:
                track.default_size = size
        return track
    raise ValueError("no audio track")


def _fragment(data, start: int, end: int, moof_at: int, track: Mp4Track) -> list[tuple[int, int]]:
    """A moof box's payload (the box itself at absolute `moof_at`) -> (absolute offset, size) of the track's samples."""
    out = []
    for ts, te in _find(data, start, end, [b"traf"]):
        tfhd = _find(data, ts, te, [b"tfhd"])
        if not tfhd:
            continue
        hs = tfhd[0][0]
        flags = int.from_bytes(data[hs + 1 : hs + 4], "big")
        if struct.unpack_from(">I", data, hs + 4)[0] != track.track_id:
            continue
        pos, base, default_size = hs + 8, moof_at, track.default_size
        if flags & 0x01:
            base = struct.unpack_from(">Q", data, pos)[0]
            pos += 8
        pos += 4 if flags & 0x02 else 0
        pos += 4 if flags & 0x08 else 0
        if flags & 0x10:
            default_size = struct.unpack_from(">I", data, pos)[0]
        cursor = base
        for rs, _ in _find(data, ts, te, [b"trun"]):
            rflags = int.from_bytes(data[rs + 1 : rs + 4], "big")
            count = struct.unpack_from(">I", data, rs + 4)[0]
            pos = rs + 8
            if rflags & 0x01:
                cursor = base + struct.unpack_from(">i", data, pos)[0]
                pos += 4
            pos += 4 if rflags & 0x04 else 0
            fields = [rflags & bit for bit in (0x100, 0x200, 0x400, 0x800)]
            stride = 4 * sum(1 for f in fields if f)
            size_at = 4 if fields[0] else 0
            for i in range(count):
                size = struct.unpack_from(">I", data, pos + i * stride + size_at)[0] if fields[1] else default_size
                out.append((cursor, size))
                cursor += size
    return out


def read_mp4(data: bytes) -> tuple[Mp4Track, list[bytes]]:
    """A whole MP4 file -> its first audio track and that track's packets (a progressive file's sample tables, or a
    fragmented file's runs).

    Raises:
        ValueError: not MP4, no audio track, a codec Parley does not read, broken boxes or tables.
    """
    try:
        top = list(_boxes(data, 0, len(data), "the end of the file (cut short?)"))
        moov = [(s, e) for kind, s, e, _ in top if kind == b"moov"]
        if not moov:
            raise ValueError("no moov box (a recording cut short?)")
        track = _movie(data, *moov[0])
        if track.sizes and track.chunk_offsets:
            offsets = track.sample_offsets()
            if len(offsets) != len(track.sizes):
                raise ValueError(f"MP4 sample tables that disagree ({len(track.sizes)} sizes, {len(offsets)} places)")
            spans = list(zip(offsets, track.sizes, strict=True))
        else:
            spans = []
            for kind, s, e, at in top:
                if kind == b"moof":
                    spans += _fragment(data, s, e, at, track)
    except (struct.error, IndexError) as e:
        raise ValueError(f"a broken MP4 file ({e})") from None
    if any(o + n > len(data) for o, n in spans):
        raise ValueError("samples past the end of the file (cut short?)")
    return track, [data[o : o + n] for o, n in spans]


@dataclass
class Mp4Reader:
    """The audio packets of a fragmented MP4 stream (MediaRecorder's `audio/mp4` chunks, cut anywhere), read as its
    top-level boxes complete: the moov first (the track), then each moof and the mdat after it.

    Raises (from `feed`):
        ValueError: bytes that are not MP4, a top-level box larger than `max_pending` not yet whole (a progressive
            file's mdat: stream a fragmented recording instead), the errors of `read_mp4`.
    """

    max_pending: int | None = None
    track: Mp4Track | None = None
    _buffer: bytearray = field(default_factory=bytearray)
    _at: int = 0  # the absolute offset of _buffer[0]
    _spans: list[tuple[int, int]] = field(default_factory=list)  # samples announced by moofs, not yet read

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        packets: list[bytes] = []
        buf, pos = self._buffer, 0
        try:
            while len(buf) - pos >= 8:
                size, kind = struct.unpack_from(">I4s", buf, pos)
                head = 8
                if size == 1:
                    if len(buf) - pos < 16:
                        break
                    size, head = struct.unpack_from(">Q", buf, pos + 8)[0], 16
                if size == 0:
                    raise ValueError(f"an MP4 {kind!r} box of unknown size: stream a fragmented MP4")
                if size < head:
                    raise ValueError(f"an MP4 box {kind!r} of {size} bytes")
                if self.track is None and pos == 0 and self._at == 0 and kind not in (b"ftyp", b"styp", b"moov"):
                    raise ValueError("not an MP4 stream (it starts with no ftyp or moov box)")
                if len(buf) - pos < size:
                    if self.max_pending is not None and size > self.max_pending:
                        raise ValueError(
                            f"an MP4 {kind.decode('latin-1')!r} box of {size} bytes: over the {self.max_pending} a "
                            "stream may buffer (send a fragmented MP4, as MediaRecorder writes)"
                        )
                    break
                start, end = pos + head, pos + size
                if kind == b"moov":
                    self.track = _movie(buf, start, end)
                    if self.track.sizes:
                        raise ValueError(f"a progressive MP4 (its moov lists the samples): {_STREAM_HINT}")
                elif kind == b"moof":
                    if self.track is None:
                        raise ValueError("an MP4 fragment before the moov box")
                    self._spans += _fragment(buf, start, end, self._at + pos, self.track)
                elif kind == b"mdat":
                    if self.track is None:
                        raise ValueError(f"media data before the moov box: {_STREAM_HINT}")
                    first, last = self._at + start, self._at + end
                    keep = []
                    for offset, n in self._spans:
                        if first <= offset and offset + n <= last:
                            packets.append(bytes(buf[offset - self._at : offset - self._at + n]))
                        elif offset >= last:
                            keep.append((offset, n))
                    self._spans = keep
                pos = end
        except (struct.error, IndexError) as e:
            raise ValueError(f"a broken MP4 stream ({e})") from None
        del buf[:pos]
        self._at += pos
        return packets
