"""Ogg Opus (RFC 3533 pages, RFC 7845 Opus in them), as far as Parley needs it: writing a stream of Opus packets as
an Ogg file libsndfile decodes, reading packets out of Ogg bytes as they arrive, and the size of an Opus packet.

    ogg = write_ogg_opus(opus_head(channels=1), packets)     # bytes soundfile.read decodes
    reader = OggPacketReader(); packets = reader.feed(chunk)  # the packets completed by `chunk`
"""

from __future__ import annotations

import struct
import zlib

OPUS_RATE = 48000  # Opus decodes at 48 kHz, and its granule positions count 48 kHz samples
_VENDOR = b"parley"
_SERIAL = 0x5061726C  # "Parl"
_HEADER = struct.Struct("<4sBBqIIIB")  # capture pattern, version, flags, granule, serial, sequence, CRC, segments
_BOS, _EOS, _CONTINUED = 0x02, 0x04, 0x01


def opus_head(channels: int, pre_skip: int = 0) -> bytes:
    """An OpusHead packet (RFC 7845 5.1): version 1, `channels`, `pre_skip` samples, mapping family 0."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, OPUS_RATE, 0, 0)


def head_channels(head: bytes) -> int:
    """The channel count an OpusHead says."""
    return head[9]


def head_pre_skip(head: bytes) -> int:
    """The samples at 48 kHz an OpusHead says the decoder drops at the start."""
    return struct.unpack("<H", head[10:12])[0]


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


def write_ogg_opus(head: bytes, packets: list[bytes]) -> bytes:
    """An Ogg Opus file: `head`, a tags packet and the audio `packets`, a page each, their granule positions the
    samples decoded so far (so nothing is trimmed at the end).

    Raises:
        ValueError: a packet too long for one page.
    """
    tags = b"OpusTags" + struct.pack("<I", len(_VENDOR)) + _VENDOR + struct.pack("<I", 0)
    pages = [_page(head, 0, 0, _BOS), _page(tags, 0, 1, 0)]
    granule = 0
    for i, packet in enumerate(packets):
        granule += opus_samples(packet)
        pages.append(_page(packet, granule, i + 2, _EOS if i == len(packets) - 1 else 0))
    return b"".join(pages)


def _page(packet: bytes, granule: int, sequence: int, flags: int) -> bytes:
    lacing = [255] * (len(packet) // 255) + [len(packet) % 255]
    if len(lacing) > 255:
        raise ValueError(f"an Opus packet of {len(packet)} bytes, over one Ogg page")
    page = _HEADER.pack(b"OggS", 0, flags, granule, _SERIAL, sequence, 0, len(lacing)) + bytes(lacing) + packet
    return page[:22] + struct.pack("<I", ogg_crc(page)) + page[26:]


# Ogg's CRC-32 is the unreflected one (polynomial 0x04C11DB7, initial value and final XOR 0); zlib computes the
# reflected one, so the bytes go in bit-reversed and the register comes out bit-reversed (zlib's own initial value and
# final XOR cancelled by starting it at 0xFFFFFFFF and XOR-ing the result).
_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def ogg_crc(data: bytes) -> int:
    """The CRC an Ogg page carries, of the page with its CRC field zeroed."""
    register = zlib.crc32(data.translate(_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{register:032b}"[::-1], 2)


class OggPacketReader:
    """The packets of an Ogg stream (its first logical stream), from bytes fed as they arrive: a page is read once
    it is whole, a packet once its last segment is in.

    Raises (from `feed`):
        ValueError: bytes that are not Ogg pages.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._packet = bytearray()  # a packet continued on the next page
        self._serial: int | None = None

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        packets: list[bytes] = []
        pos = 0
        while len(self._buffer) - pos >= _HEADER.size:
            if self._buffer[pos : pos + 4] != b"OggS":
                raise ValueError(f"not an Ogg page at byte {pos} of what is buffered")
            n = self._buffer[pos + 26]
            table = self._buffer[pos + 27 : pos + 27 + n]
            if len(table) < n or len(self._buffer) - pos < 27 + n + sum(table):
                break  # the page is not whole yet
            serial = struct.unpack_from("<I", self._buffer, pos + 14)[0]
            body = pos + 27 + n
            if self._serial is None:
                self._serial = serial
            if serial == self._serial:
                for size in table:
                    self._packet += self._buffer[body : body + size]
                    body += size
                    if size < 255:
                        packets.append(bytes(self._packet))
                        self._packet.clear()
            pos += 27 + n + sum(table)
        del self._buffer[:pos]
        return packets
