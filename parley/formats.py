"""Audio files of any format Parley reads: WAV by its own parser (parley/audio.py: PCM, float, G.711), and FLAC, Ogg
(Vorbis, Opus), MP3, AIFF and CAF through libsndfile (the `soundfile` package, whose wheels carry it), and WebM Opus,
what browsers' MediaRecorder writes (parley/webm.py repackages its Opus packets as Ogg for libsndfile), as uploads
and `parley transcribe` / `parley stream` files arrive. The format is read from the bytes, not from a file name or a
Content-Type, which clients get wrong.

    samples, rate = read_audio_channels(io.BytesIO(body))   # (C, T) float32 in [-1, 1], and the rate

MP4 (M4A, MOV: Safari's recordings and phones' voice memos in AAC, Chrome's `audio/mp4` recordings in Opus):
parley/mp4.py reads the container; AAC is decoded by libfaad2 (parley/aac.py; Debian's libfaad2, which the Docker
image installs), Opus and MP3 by libsndfile. A system without libfaad2 refuses AAC with the package to install or the
ffmpeg command that converts it, as WebM of another codec than Opus is refused.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from parley.aac import INSTALL_HINT as AAC_INSTALL_HINT
from parley.aac import AacDecoder
from parley.audio import read_wav_channels
from parley.mp4 import read_mp4
from parley.ogg import write_ogg_opus
from parley.webm import webm_to_ogg

# The first bytes of each format, and its name in messages. A WAV file starts RIFF (or RF64, or BW64) ... WAVE.
_MAGIC = (
    (b"fLaC", "FLAC"),
    (b"OggS", "Ogg"),
    (b"ID3", "MP3"),
    (b"FORM", "AIFF"),
    (b"caff", "CAF"),
    (b"\x1aE\xdf\xa3", "WebM/Matroska"),
)
# What libsndfile decodes (the rest of `_MAGIC` it does not).
SOUNDFILE_FORMATS = ("FLAC", "Ogg", "MP3", "AIFF", "CAF")
ACCEPTED = "WAV, FLAC, Ogg Vorbis or Opus, WebM Opus, MP4/M4A (AAC, Opus, MP3), MP3, AIFF, CAF"
CONVERT_HINT = "convert it first, e.g. `ffmpeg -i talk.m4a -ac 1 -ar 16000 talk.wav`"


def sniff(data: bytes) -> str | None:
    """The format `data` (a file's first bytes, a dozen are enough) seems to be: "WAV", one of `_MAGIC`'s names,
    "MP4/M4A", or None (none Parley knows)."""
    if data[:4] in (b"RIFF", b"RF64", b"BW64") and data[8:12] == b"WAVE":
        return "WAV"
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[4:8] == b"ftyp":
        return "MP4/M4A"
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0 and data[1] & 0x06:  # an MPEG audio frame
        return "MP3"
    return None


def read_audio_channels(source: str | os.PathLike | BinaryIO) -> tuple[np.ndarray, int]:
    """Reads an audio file of any format Parley reads: a path, or a binary file object (`io.BytesIO(body)`).

    Returns:
        samples `(C, T)` float32 in [-1, 1], one row per channel, and the sample rate in Hz.

    Raises:
        ValueError: a format Parley does not read (the message names it and says how to convert it), or a file of
            a format it reads that is broken (the message says why).
    """
    where = "" if hasattr(source, "read") else f"{source}: "
    data = source.read() if hasattr(source, "read") else Path(source).read_bytes()
    kind = sniff(data[:16])
    if kind == "WAV":
        try:
            return read_wav_channels(io.BytesIO(data))
        except ValueError as e:
            raise ValueError(f"{where}{e}") from None
    if kind == "WebM/Matroska":  # a browser's recording: its Opus packets, repackaged as Ogg for libsndfile
        try:
            data, kind = webm_to_ogg(data), "Ogg"
        except (ValueError, IndexError) as e:
            raise ValueError(f"{where}a WebM file Parley cannot read ({e}): {CONVERT_HINT}") from None
    if kind == "MP4/M4A":
        try:
            track, packets = read_mp4(data)
        except ValueError as e:
            raise ValueError(f"{where}an MP4 file Parley cannot read ({e}): {CONVERT_HINT}") from None
        if track.codec == "aac":
            return _decode_aac(track.config, track.channels, packets, where)
        # Opus as an Ogg stream, MP3's frames as an MP3 file: libsndfile decodes them.
        data, kind = (
            (write_ogg_opus(track.config, packets), "Ogg") if track.codec == "opus" else (b"".join(packets), "MP3")
        )
    if kind is not None and kind not in SOUNDFILE_FORMATS:
        raise ValueError(f"{where}the file seems to be {kind}, which Parley does not read: {CONVERT_HINT}")
    # A format libsndfile decodes, or one not known by its first bytes (libsndfile knows a few more: AU, W64, ...).
    named = kind or "not WAV, FLAC, Ogg, MP3, AIFF or CAF"
    try:
        import soundfile
    except (ImportError, OSError) as e:  # no package, or a platform whose wheel carries no libsndfile
        raise ValueError(
            f"{where}the file is {named}: reading it needs the soundfile package and its libsndfile ({e}): "
            f"`pip install soundfile`, or {CONVERT_HINT}"
        ) from None
    try:
        x, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile's LibsndfileError (a RuntimeError), and TypeError for what it cannot open
        what = (
            f"{_article(kind)} {kind} file Parley cannot decode"
            if kind
            else f"not an audio file Parley reads ({ACCEPTED})"
        )
        raise ValueError(f"{where}{what} ({_reason(e)})") from None
    return np.ascontiguousarray(np.clip(x.T, -1.0, 1.0)), int(rate)


def _decode_aac(config: bytes, channels: int, packets: list[bytes], where: str) -> tuple[np.ndarray, int]:
    """An MP4 track's AAC packets -> `(C, T)` float32 and the rate (libfaad2 writes mono as two equal channels: a track
    that says it is mono comes back as one)."""
    try:
        decoder = AacDecoder(config)
        x = np.concatenate([decoder.decode(p) for p in packets]) if packets else np.zeros((0, 1), np.float32)
    except OSError:
        raise ValueError(
            f"{where}the file is AAC in MP4, which needs libfaad2 on the server ({AAC_INSTALL_HINT}), or {CONVERT_HINT}"
        ) from None
    except ValueError as e:
        raise ValueError(f"{where}an MP4 file Parley cannot decode ({e})") from None
    if channels == 1 and x.shape[1] > 1:
        x = x.mean(axis=1, keepdims=True, dtype=np.float32)
    return np.ascontiguousarray(np.clip(x.T, -1.0, 1.0)), decoder.rate


def _article(name: str) -> str:
    return "an" if name[0] in "AEFIMO" else "a"  # said as letters: "an MP3", "an AIFF", "a CAF"


def _reason(error: Exception) -> str:
    """libsndfile's reason, without the object it failed to open ("Error opening <_io.BytesIO ...>: ")."""
    text = str(error)
    return (text.split(">: ", 1)[1] if text.startswith("Error opening <") and ">: " in text else text)[:120]
