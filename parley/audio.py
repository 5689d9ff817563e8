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


def read_wav(path: str | os.PathLike | BinaryIO) -> tuple[np.ndarray, int]:
    """Reads a PCM WAV file (8/16/32-bit integer, any channel count; channels are averaged): a path, or a binary
    file object (`io.BytesIO(body)` for an upload).

    Returns:
        samples `(T,)` float32 in [-1, 1], and the sample rate in Hz.

    Raises:
        ValueError: the file is not a PCM WAV file Parley can read.
    """
    # A file object is named by nothing: its repr (an object address) means nothing to whoever sent the bytes.
    where = "" if hasattr(path, "read") else f"{path}: "
    try:
        with wave.open(path if hasattr(path, "read") else str(path), "rb") as w:
            channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError, struct.error) as e:
        raise ValueError(f"{where}not a PCM WAV file ({str(e)[:100]})") from e
    if channels < 1 or rate < 1:
        raise ValueError(f"{where}a WAV file of {channels} channel(s) at {rate} Hz")
    if width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 4:
        x = (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    elif width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        raise ValueError(f"{where}unsupported sample width {width * 8} bits")
    if channels > 1:
        x = x[: x.size - x.size % channels].reshape(-1, channels).mean(axis=1)
    return x, rate


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
