import numpy as np
import pytest

from parley.audio import decode_pcm, read_wav, to_int16, write_wav


def test_wav_round_trip(tmp_path) -> None:
    x = (0.5 * np.sin(np.arange(8000) / 7)).astype(np.float32)
    write_wav(tmp_path / "a.wav", x, 16000)
    y, rate = read_wav(tmp_path / "a.wav")
    assert rate == 16000 and y.dtype == np.float32 and y.shape == x.shape
    assert float(np.abs(x - y).max()) < 1.0 / 16000


def test_not_a_wav_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "b.wav").write_bytes(b"hello, not audio")
    with pytest.raises(ValueError, match="not a PCM WAV"):
        read_wav(tmp_path / "b.wav")


def test_decode_pcm() -> None:
    assert np.array_equal(
        decode_pcm(to_int16(np.array([0.0, 0.5, -1.0])).tobytes(), "s16le"),
        np.array([0.0, 16384 / 32768, -32767 / 32768], dtype=np.float32),
    )
    f = np.array([0.25, -0.75], dtype="<f4")
    assert np.array_equal(decode_pcm(f.tobytes(), "f32le"), f)
    with pytest.raises(ValueError, match="even number of bytes"):
        decode_pcm(b"\x00\x01\x02", "s16le")
    with pytest.raises(ValueError, match="multiple of 4"):
        decode_pcm(b"\x00" * 6, "f32le")
    with pytest.raises(ValueError, match="NaN or infinite"):
        decode_pcm(np.array([0.0, np.nan], dtype="<f4").tobytes(), "f32le")
    with pytest.raises(ValueError, match="unknown encoding"):
        decode_pcm(b"", "mp3")
