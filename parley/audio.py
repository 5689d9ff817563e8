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

ENCODINGS = ("s16le", "f32le")


# WAV format tags (the fmt chunk's first field); an extensible file says its format in the GUID of its fmt extension
WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# The last 14 bytes of every KSDATAFORMAT_SUBTYPE_* GUID; its first 2 bytes are the format tag it stands for.
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def read_wav(path: str | os.PathLike | BinaryIO) -> tuple[np.ndarray, int]:
    """Reads a PCM WAV file (8/16/24/32-bit integer, any channel count; channels are averaged): a path, or a binary
    file object (`io.BytesIO(body)` for an upload). WAVE_FORMAT_EXTENSIBLE files of integer PCM (what ffmpeg and sox
    write for more than 2 channels or 16 bits) read like plain ones; data cut off inside a frame is dropped to the
    last whole frame, and data sizes past the end of the file or 0 (a WAV written to a pipe) read to the end.

    Returns:
        samples `(T,)` float32 in [-1, 1], and the sample rate in Hz.

    Raises:
        ValueError: the file is not a PCM WAV file Parley can read (the message says why).
    """
    # A file object is named by nothing: its repr (an object address) means nothing to whoever sent the bytes.
    where = "" if hasattr(path, "read") else f"{path}: "
    data = path.read() if hasattr(path, "read") else Path(path).read_bytes()
    try:
        channels, width, rate, raw = _parse_wav(data)
    except ValueError as e:
        raise ValueError(f"{where}not a PCM WAV file ({e})") from None
    if channels < 1 or rate < 1:
        raise ValueError(f"{where}a WAV file of {channels} channel(s) at {rate} Hz")
    if width not in (1, 2, 3, 4):
        raise ValueError(f"{where}unsupported sample width {width * 8} bits")
    raw = raw[: len(raw) - len(raw) % (width * channels)]  # data cut off inside a frame: up to the last whole one
    if width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 4:
        x = (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    elif width == 3:  # little-endian 24-bit: each sample into the top 3 bytes of an int32
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        x = (((b[:, 0] << 8) | (b[:, 1] << 16) | (b[:, 2] << 24)).astype(np.float64) / 2147483648.0).astype(np.float32)
    else:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    return x, rate


def _parse_wav(data: bytes) -> tuple[int, int, int, bytes]:
    """A RIFF WAVE file's channels, sample width in bytes, rate and data chunk (up to the end of `data` where the
    chunk says it is longer).

    Raises:
        ValueError: not a RIFF WAVE file, a header cut short, no fmt or data chunk, or a format other than integer
            PCM (the message says which; the caller adds the file).
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


def _parse_fmt(body: bytes) -> tuple[int, int, int]:
    """A fmt chunk's channels, sample width in bytes and rate, for integer PCM (plain or extensible)."""
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
    if tag != WAVE_FORMAT_PCM:
        kind = "floating-point samples" if tag == WAVE_FORMAT_IEEE_FLOAT else f"format tag {tag:#06x}"
        raise ValueError(f"{kind}; Parley reads integer PCM only (ffmpeg -i IN -c:a pcm_s16le OUT.wav)")
    return channels, (bits + 7) // 8, rate


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


def decode_pcm(data: bytes, encoding: str) -> np.ndarray:
    """Raw little-endian PCM bytes -> float32 samples `(T,)` in [-1, 1] (f32le samples beyond it are clipped: the
    frontend's arithmetic overflows near the float32 limit).

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
    raise ValueError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")
