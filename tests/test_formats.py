"""Audio files beyond WAV (parley/formats.py): FLAC, Ogg, MP3, AIFF read through libsndfile, the format told by the
bytes, the formats that need ffmpeg refused with the command; and POST /v1/transcribe taking them by any audio/*
Content-Type."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile

from parley.formats import read_audio_channels, sniff
from server.settings import Settings
from tests.test_app import App

SR = 16000


def _tone(seconds: float = 1.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)]).astype(np.float32)


def _encoded(x: np.ndarray, fmt: str, subtype: str | None = None, rate: int = SR) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, x.T, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def _wav(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(x.shape[0])
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((x.T * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def _aligned_error(x: np.ndarray, y: np.ndarray) -> float:
    """The least RMS difference of `y` against `x` over small shifts (lossy codecs delay or pad the start)."""
    n = min(x.shape[-1], y.shape[-1]) - 2000
    return min(
        float(np.sqrt(np.mean((x[..., 1000 : 1000 + n] - y[..., 1000 + d : 1000 + d + n]) ** 2)))
        for d in range(-600, 601)
    )


@pytest.mark.parametrize(
    ("fmt", "subtype", "tolerance"),
    [("FLAC", None, 1e-4), ("AIFF", None, 1e-4), ("OGG", "VORBIS", 0.03), ("MP3", "MPEG_LAYER_III", 0.05)],
)
def test_formats_read_back_what_was_written(fmt: str, subtype: str | None, tolerance: float) -> None:
    x = _tone(channels=2)
    data = _encoded(x, fmt, subtype)
    y, rate = read_audio_channels(io.BytesIO(data))
    assert rate == SR and y.shape[0] == 2 and y.dtype == np.float32
    assert abs(y.shape[1] - x.shape[1]) < 0.1 * SR  # a codec's padding, no more
    assert _aligned_error(x, y) < tolerance, fmt


def test_opus_keeps_its_rate_and_a_path_reads_as_bytes_do(tmp_path: Path) -> None:
    x = _tone()
    path = tmp_path / "talk.opus"
    path.write_bytes(_encoded(np.repeat(x, 3, axis=1), "OGG", "OPUS", rate=48000))
    y, rate = read_audio_channels(path)
    assert rate == 48000 and y.shape[0] == 1
    same, _ = read_audio_channels(io.BytesIO(path.read_bytes()))
    assert np.array_equal(y, same)


def test_wav_stays_parleys_own_parser() -> None:
    x = _tone()
    y, rate = read_audio_channels(io.BytesIO(_wav(x)))
    assert rate == SR and np.abs(y - x).max() < 1e-4
    assert sniff(_wav(x)[:16]) == "WAV"


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"fLaC\x00\x00", "FLAC"),
        (b"OggS\x00\x02", "Ogg"),
        (b"ID3\x04\x00", "MP3"),
        (b"\xff\xfb\x90\x64", "MP3"),
        (b"\xff\xf1\x50\x80", None),  # an ADTS AAC frame is not MPEG audio layer I-III
        (b"FORM\x00\x00\x00\x00AIFF", "AIFF"),
        (b"\x1aE\xdf\xa3\x01", "WebM/Matroska"),
        (b"\x00\x00\x00\x20ftypM4A ", "MP4/M4A"),
        (b"RIFF\x00\x00\x00\x00AVI ", None),
        (b"hello", None),
    ],
)
def test_sniff(head: bytes, kind: str | None) -> None:
    assert sniff(head) == kind


def test_what_needs_ffmpeg_or_is_no_audio_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"an MP4 file Parley cannot read \(no moov box .*ffmpeg -i"):
        read_audio_channels(io.BytesIO(b"\x00\x00\x00\x20ftypM4A " + bytes(100)))
    with pytest.raises(ValueError, match=r"an MP3 file Parley cannot decode \(Format not recognised"):
        read_audio_channels(io.BytesIO(b"ID3\x04" + bytes(100)))
    junk = tmp_path / "notes.txt"
    junk.write_text("not audio at all")
    with pytest.raises(ValueError, match=rf"^{junk}: not an audio file Parley reads \(WAV, FLAC"):
        read_audio_channels(junk)
    with pytest.raises(ValueError, match="not a WAV file Parley can read"):
        read_audio_channels(io.BytesIO(b"RIFF\x10\x00\x00\x00WAVEfmt "))


def test_transcribe_takes_any_audio_type_and_reads_the_bytes(tmp_path: Path) -> None:
    """POST /v1/transcribe: the Content-Type only says "a file"; FLAC sent as audio/mpeg still reads as FLAC."""
    a = App(Settings(bundles=tmp_path))
    x = _tone(0.5)
    for kind, body in (
        ("audio/flac", _encoded(x, "FLAC")),
        ("audio/mpeg", _encoded(x, "FLAC")),
        ("audio/wav", _wav(x)),
    ):
        r = a.client.post("/v1/transcribe", content=body, headers={"content-type": kind})
        assert r.status_code == 200, (kind, r.text)
    assert [h[:2] for h in a.service.engines["fake"].heard] == [(8000, SR)] * 3
    r = a.client.post("/v1/transcribe", content=b"\x1aE\xdf\xa3" + bytes(64), headers={"content-type": "audio/webm"})
    assert r.status_code == 400 and r.json()["code"] == "bad_audio" and "ffmpeg" in r.json()["message"]
    r = a.client.post("/v1/transcribe", content=_wav(x), headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "audio/flac" in r.json()["message"]
