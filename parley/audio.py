"""WAV files and raw PCM, in numpy only: what the server, the clients and the corpus builder read and write.

Samples are always float32 in [-1, 1] inside Parley; int16 exists only at the edges (files, the wire).
"""

from __future__ import annotations

import os
import struct
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np

ENCODINGS = ("s16le", "f32le", "mulaw", "alaw")
# Bytes per sample of each encoding: 16-bit integers, 32-bit floats, and ITU-T G.711's 8-bit mu-law and A-law (the
# telephone network's codecs: what Twilio's media streams, Asterisk and FreeSWITCH send at 8 kHz).
BYTES_PER_SAMPLE = {"s16le": 2, "f32le": 4, "mulaw": 1, "alaw": 1}


# WAV format tags (the fmt chunk's first field); an extensible file says its format in the GUID of its fmt extension
WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_ALAW = 0x0006
WAVE_FORMAT_MULAW = 0x0007
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_FORMAT_NAMES = {
    WAVE_FORMAT_PCM: "integer PCM",
    WAVE_FORMAT_IEEE_FLOAT: "float samples",
    WAVE_FORMAT_ALAW: "A-law",
    WAVE_FORMAT_MULAW: "mu-law",
}
# The last 14 bytes of every KSDATAFORMAT_SUBTYPE_* GUID; its first 2 bytes are the format tag it stands for.
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def read_wav(path: str | os.PathLike | BinaryIO) -> tuple[np.ndarray, int]:
    """A WAV file's samples `(T,)` float32 in [-1, 1], its channels averaged, and its rate in Hz: `read_wav_channels`
    mixed down to one channel.

    Raises:
        ValueError: see `read_wav_channels`.
    """
    x, rate = read_wav_channels(path)
    return mix_down(x), rate


def mix_down(channels: np.ndarray) -> np.ndarray:
    """Samples `(C, T)` -> `(T,)` float32: the channels averaged (one channel as it is)."""
    return channels[0] if channels.shape[0] == 1 else channels.mean(axis=0, dtype=np.float32)


def read_wav_channels(path: str | os.PathLike | BinaryIO) -> tuple[np.ndarray, int]:
    """Reads a WAV file (8/16/24/32-bit integer PCM, 32/64-bit float, or 8-bit G.711 mu-law / A-law as telephone
    systems record; any channel count): a path, or a binary file object (`io.BytesIO(body)` for an upload).
    WAVE_FORMAT_EXTENSIBLE files (what ffmpeg and sox write for more than 2 channels or 16 bits) read like plain
    ones; float samples are clipped to [-1, 1] (NaN or infinite ones are an error); data cut off inside a
    frame is dropped to the last whole frame, and data sizes past the end of the file or 0 (a WAV written to a pipe)
    read to the end.

    Returns:
        samples `(C, T)` float32 in [-1, 1], one row per channel, and the sample rate in Hz.

    Raises:
        ValueError: the file is not a PCM WAV file Parley can read (the message says why).
    """
    # A file object is named by nothing: its repr (an object address) means nothing to whoever sent the bytes.
    where = "" if hasattr(path, "read") else f"{path}: "
    data = path.read() if hasattr(path, "read") else Path(path).read_bytes()
    try:
        tag, channels, width, rate, raw = _parse_wav(data)
    except ValueError as e:
        raise ValueError(f"{where}not a WAV file Parley can read ({e})") from None
    if channels < 1 or rate < 1:
        raise ValueError(f"{where}a WAV file of {channels} channel(s) at {rate} Hz")
    widths = {WAVE_FORMAT_PCM: (1, 2, 3, 4), WAVE_FORMAT_IEEE_FLOAT: (4, 8)}.get(tag, (1,))
    if width not in widths:
        raise ValueError(f"{where}unsupported sample width {width * 8} bits for {_FORMAT_NAMES[tag]}")
    raw = raw[: len(raw) - len(raw) % (width * channels)]  # data cut off inside a frame: up to the last whole one
    if tag == WAVE_FORMAT_IEEE_FLOAT:
        x = np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8")
        if not np.isfinite(x).all():
            raise ValueError(f"{where}float samples that are NaN or infinite")
        x = np.clip(x, -1.0, 1.0).astype(np.float32)
    elif tag in (WAVE_FORMAT_MULAW, WAVE_FORMAT_ALAW):
        x = decode_pcm(raw, "mulaw" if tag == WAVE_FORMAT_MULAW else "alaw")
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 4:
        x = (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    elif width == 3:  # little-endian 24-bit: each sample into the top 3 bytes of an int32
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        x = (((b[:, 0] << 8) | (b[:, 1] << 16) | (b[:, 2] << 24)).astype(np.float64) / 2147483648.0).astype(np.float32)
    else:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    return np.ascontiguousarray(x.reshape(-1, channels).T), rate


def _parse_wav(data: bytes) -> tuple[int, int, int, int, bytes]:
    """A RIFF WAVE file's format tag, channels, sample width in bytes, rate and data chunk (up to the end of `data`
    where the chunk says it is longer).

    Raises:
        ValueError: not a RIFF WAVE file, a header cut short, no fmt or data chunk, or a format other than integer
            PCM, float or G.711 (the message says which; the caller adds the file).
    """
    if len(data) < 12:
        raise ValueError(f"{len(data)} bytes: too short for a WAV header, the file is empty or cut off")
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("no RIFF/WAVE header")
    fmt = None
    pos = 12
    while pos + 8 <= len(data):
        name, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8 : pos + 8 + size]
        if name == b"fmt ":
            fmt = _parse_fmt(body)
        elif name == b"data":
            if fmt is None:
                raise ValueError("data chunk before fmt chunk")
            if size == 0:  # a WAV written to a pipe may leave its sizes 0: its data runs to the end of the file
                body = data[pos + 8 :]
            return (*fmt, body)
        pos += 8 + size + size % 2  # chunks are padded to an even size
    raise ValueError(f"no {'data' if fmt else 'fmt'} chunk: the file is cut off or not audio")


# The stream encoding of each WAV sample format one carries as it is: (format tag, bytes a sample) -> encoding.
_STREAM_ENCODINGS = {
    (WAVE_FORMAT_PCM, 2): "s16le",
    (WAVE_FORMAT_IEEE_FLOAT, 4): "f32le",
    (WAVE_FORMAT_MULAW, 1): "mulaw",
    (WAVE_FORMAT_ALAW, 1): "alaw",
}


def wav_stream_header(data: bytes) -> tuple[str, int, int, int] | None:
    """The header of a WAV file sent as a stream (its first bytes, `data`): (its samples' encoding, one of
    ENCODINGS; rate; channels; where its samples begin), or None while the header is not all in `data`.

    Raises:
        ValueError: not RIFF/WAVE, samples before the format, or a sample format no stream encoding carries
            (8- or 24-bit PCM, 64-bit floats).
    """
    if data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        raise ValueError("no RIFF/WAVE header")
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        name, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if name == b"fmt ":
            if pos + 8 + size > len(data):
                return None
            tag, channels, width, rate = _parse_fmt(data[pos + 8 : pos + 8 + size])
            if (tag, width) not in _STREAM_ENCODINGS:
                raise ValueError(f"{_FORMAT_NAMES[tag]} of {8 * width} bits: stream 16-bit PCM, 32-bit floats or G.711")
            fmt = (_STREAM_ENCODINGS[tag, width], rate, channels)
        elif name == b"data":
            if fmt is None:
                raise ValueError("data chunk before fmt chunk")
            return (*fmt, pos + 8)
        pos += 8 + size + size % 2
    return None


def _parse_fmt(body: bytes) -> tuple[int, int, int, int]:
    """A fmt chunk's format tag, channels, sample width in bytes and rate, for the formats of `_FORMAT_NAMES` (plain
    or extensible)."""
    if len(body) < 16:
        raise ValueError(f"fmt chunk of {len(body)} bytes, cut off")
    tag, channels, rate, _byte_rate, _block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        # cbSize (2), valid bits per sample (2), channel mask (4), then the subformat GUID (16)
        if len(body) < 40:
            raise ValueError(f"extensible fmt chunk of {len(body)} bytes, cut off")
        if body[26:40] != _GUID_TAIL:
            raise ValueError("extensible format with an unknown subformat")
        tag = struct.unpack_from("<H", body, 24)[0]
    if tag not in _FORMAT_NAMES:
        raise ValueError(
            f"format tag {tag:#06x} (compressed audio?); Parley reads integer PCM, float and G.711 mu-law / A-law "
            "(ffmpeg -i IN -c:a pcm_s16le OUT.wav)"
        )
    return tag, channels, (bits + 7) // 8, rate


def to_int16(samples: np.ndarray) -> np.ndarray:
    """float `(T,)` in [-1, 1] -> int16 `(T,)`, clipped and rounded."""
    return np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32767.0), -32768, 32767).astype("<i2")


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> None:
    """Writes float samples `(T,)` in [-1, 1] as a 16-bit mono WAV, atomically (temporary file renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(to_int16(samples).tobytes())
    os.replace(tmp, path)


def _ulaw_table() -> np.ndarray:
    """The 256 mu-law codes' values on the 16-bit scale (ITU-T G.711; +-32124 at most; 0xFF and 0x7F are +0 and -0)."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_table() -> np.ndarray:
    """The 256 A-law codes' values on the 16-bit scale (ITU-T G.711; +-32256 at most, +-8 nearest zero)."""
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, np.where(seg == 1, t + 0x108, (t + 0x108) << np.maximum(seg - 1, 0)))
    return np.where(a & 0x80, t, -t).astype(np.int16)


ULAW_TABLE = _ulaw_table()  # (256,) int16: code -> sample
ALAW_TABLE = _alaw_table()
_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def encode_ulaw(samples: np.ndarray) -> np.ndarray:
    """float samples `(T,)` in [-1, 1] -> G.711 mu-law codes `(T,)` uint8, rounded as ITU-T G.711's reference
    (14-bit magnitudes, bias 33; the same codes as CPython's audioop and Sun's g711.c)."""
    x = to_int16(samples).astype(np.int32) >> 2  # 14-bit
    mask = np.where(x < 0, 0x7F, 0xFF)
    mag = np.minimum(np.where(x < 0, -x, x), 8159) + 0x21  # [33, 8192]: the bias puts the segments on powers of two
    seg = np.searchsorted(_ULAW_SEGMENT_ENDS, mag, side="left")  # the first segment whose end is >= mag
    code = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0x0F))
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def encode_alaw(samples: np.ndarray) -> np.ndarray:
    """float samples `(T,)` in [-1, 1] -> G.711 A-law codes `(T,)` uint8, rounded as ITU-T G.711's reference (13-bit
    magnitudes; the same codes as CPython's audioop and Sun's g711.c)."""
    x = to_int16(samples).astype(np.int32) >> 3  # 13-bit
    mask = np.where(x >= 0, 0xD5, 0x55)
    mag = np.where(x >= 0, x, -x - 1)
    seg = np.searchsorted(_ALAW_SEGMENT_ENDS, mag, side="left")  # the first segment whose end is >= mag
    quant = np.where(seg < 2, mag >> 1, mag >> np.maximum(seg, 1)) & 0x0F
    code = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | quant)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def encode_pcm(samples: np.ndarray, encoding: str) -> bytes:
    """float samples `(T,)` in [-1, 1] -> raw bytes in `encoding` (little-endian where it has an order).

    Raises:
        ValueError: unknown encoding.
    """
    if encoding == "s16le":
        return to_int16(samples).tobytes()
    if encoding == "f32le":
        return np.asarray(samples, dtype="<f4").tobytes()
    if encoding == "mulaw":
        return encode_ulaw(samples).tobytes()
    if encoding == "alaw":
        return encode_alaw(samples).tobytes()
    raise ValueError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")


def decode_pcm(data: bytes, encoding: str) -> np.ndarray:
    """Raw PCM bytes (little-endian; G.711 one byte a sample) -> float32 samples `(T,)` in [-1, 1] (f32le samples
    beyond it are clipped: the frontend's arithmetic overflows near the float32 limit).

    Raises:
        ValueError: unknown encoding, a byte count that is not a whole number of samples, or non-finite floats.
    """
    if encoding == "s16le":
        if len(data) % 2:
            raise ValueError(f"s16le audio needs an even number of bytes, got {len(data)}")
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    if encoding == "f32le":
        if len(data) % 4:
            raise ValueError(f"f32le audio needs a multiple of 4 bytes, got {len(data)}")
        x = np.frombuffer(data, dtype="<f4").astype(np.float32)
        if not np.isfinite(x).all():
            raise ValueError("f32le audio contains NaN or infinite samples")
        return np.clip(x, -1.0, 1.0)
    if encoding in ("mulaw", "alaw"):
        table = ULAW_TABLE if encoding == "mulaw" else ALAW_TABLE
        return table[np.frombuffer(data, dtype=np.uint8)].astype(np.float32) / 32768.0
    raise ValueError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")
