import hashlib
import io
import struct
import wave

import numpy as np
import pytest

from parley.audio import (
    ALAW_TABLE,
    ULAW_TABLE,
    decode_pcm,
    encode_pcm,
    read_wav,
    read_wav_channels,
    to_int16,
    write_wav,
)


def test_wav_round_trip(tmp_path) -> None:
    x = (0.5 * np.sin(np.arange(8000) / 7)).astype(np.float32)
    write_wav(tmp_path / "a.wav", x, 16000)
    y, rate = read_wav(tmp_path / "a.wav")
    assert rate == 16000 and y.dtype == np.float32 and y.shape == x.shape
    assert float(np.abs(x - y).max()) < 1.0 / 16000


def test_not_a_wav_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "b.wav").write_bytes(b"hello, not audio")
    with pytest.raises(ValueError, match="not a WAV file Parley can read"):
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


def _wav_bytes(fmt: bytes, data: bytes) -> bytes:
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _extensible_fmt(channels: int, bits: int, subformat: int) -> bytes:
    """A WAVE_FORMAT_EXTENSIBLE fmt chunk (as ffmpeg and sox write for > 2 channels or > 16 bits)."""
    width = bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE, channels, 16000, 16000 * channels * width, channels * width, bits)
    guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    return fmt + struct.pack("<HHIH", 22, bits, (1 << channels) - 1, subformat) + guid_tail


def test_an_empty_or_cut_off_wav_is_a_clear_error() -> None:
    whole = io.BytesIO()
    with wave.open(whole, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 100)
    for body in (b"", whole.getvalue()[:10], whole.getvalue()[:30]):
        with pytest.raises(ValueError, match=r"not a WAV file Parley can read \(.+(empty|cut off)") as e:
            read_wav(io.BytesIO(body))
        assert "()" not in str(e.value), str(e.value)


def test_data_cut_off_inside_a_frame_reads_the_whole_frames(tmp_path) -> None:
    x = (0.5 * np.sin(np.arange(800) / 7)).astype(np.float32)
    write_wav(tmp_path / "a.wav", x, 16000)
    cut = (tmp_path / "a.wav").read_bytes()[:-1]
    y, rate = read_wav(io.BytesIO(cut))
    assert rate == 16000 and y.shape == (799,) and float(np.abs(x[:799] - y).max()) < 1.0 / 16000
    stereo = np.stack([to_int16(x), to_int16(-x)], axis=1).tobytes()[:-3]  # 1.5 frames short
    y, _ = read_wav(io.BytesIO(_wav_bytes(struct.pack("<HHIIHH", 1, 2, 16000, 64000, 4, 16), stereo)))
    assert y.shape == (799,)


def test_an_extensible_pcm_wav_reads_like_a_plain_one() -> None:
    x = (0.5 * np.sin(np.arange(800) / 7)).astype(np.float32)
    pcm16 = np.repeat(to_int16(x)[:, None], 3, axis=1).tobytes()
    plain, rate = read_wav(io.BytesIO(_wav_bytes(struct.pack("<HHIIHH", 1, 3, 16000, 96000, 6, 16), pcm16)))
    y, rate = read_wav(io.BytesIO(_wav_bytes(_extensible_fmt(3, 16, 1), pcm16)))
    assert rate == 16000 and np.array_equal(y, plain) and float(np.abs(x - y).max()) < 1.0 / 16000
    pcm32 = (to_int16(x).astype("<i4") << 16).tobytes()
    y, _ = read_wav(io.BytesIO(_wav_bytes(_extensible_fmt(1, 32, 1), pcm32)))
    assert float(np.abs(x - y).max()) < 1.0 / 16000
    with pytest.raises(ValueError, match="Parley can read \\(format tag 0x0055"):  # MP3 in a WAV
        read_wav(io.BytesIO(_wav_bytes(_extensible_fmt(1, 16, 0x55), b"\0" * 16)))


def test_24_bit_and_pipe_written_wavs_read_to_the_end() -> None:
    x = (0.5 * np.sin(np.arange(800) / 7)).astype(np.float32)
    v = np.round(x.astype(np.float64) * 8388607).astype("<i4")
    pcm24 = np.stack([v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()
    y, rate = read_wav(io.BytesIO(_wav_bytes(_extensible_fmt(1, 24, 1), pcm24)))
    assert rate == 16000 and y.shape == (800,) and float(np.abs(x - y).max()) < 1e-6
    plain24 = struct.pack("<HHIIHH", 1, 1, 16000, 48000, 3, 24)
    assert np.array_equal(read_wav(io.BytesIO(_wav_bytes(plain24, pcm24)))[0], y)
    # sizes left 0 (a writer that could not seek back) or past the end of the file: the data runs to the end
    pcm16 = to_int16(x).tobytes()
    for size in (0, 0xFFFFFFFF):
        whole = bytearray(_wav_bytes(struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16), pcm16))
        struct.pack_into("<I", whole, 4, size)
        struct.pack_into("<I", whole, 40, size)
        y, _ = read_wav(io.BytesIO(bytes(whole)))
        assert y.shape == (800,) and float(np.abs(x - y).max()) < 1.0 / 16000


def test_g711_codes_are_the_itu_reference_ones() -> None:
    # ITU-T G.711's end points, and the codes nearest zero: mu-law 0xFF and 0x7F are +0 and -0, A-law has no zero
    assert (ULAW_TABLE[0x80], ULAW_TABLE[0x00], ULAW_TABLE[0xFF], ULAW_TABLE[0x7F]) == (32124, -32124, 0, 0)
    assert (ALAW_TABLE[0xAA], ALAW_TABLE[0x2A], ALAW_TABLE[0xD5], ALAW_TABLE[0x55]) == (32256, -32256, 8, -8)
    for table in (ULAW_TABLE, ALAW_TABLE):  # 128 levels a sign, each half strictly monotonic
        positive = np.sort(table[table > 0])
        assert positive.size == 127 + (table is ALAW_TABLE) and np.all(np.diff(positive) > 0)
        assert np.array_equal(np.sort(-table[table < 0]), positive)
    # Every 16-bit value encodes as the reference encoder (CPython 3.11's audioop.lin2ulaw / lin2alaw, which is Sun's
    # g711.c) encodes it: the digests of its 65,536 codes, value -32768 first.
    x = np.arange(-32768, 32768).astype(np.float64) / 32767.0  # to_int16 gives back exactly -32768..32767
    digests = {
        "mulaw": "81d633c9e6972a18c74a58720b96cb8ca0bdd096d4060b646dd708c3b846019a",
        "alaw": "38488f6fd710f4686360edc4d38639f96c491595ef93f8eb8d62d5e07ca6ce7b",
    }
    for encoding, digest in digests.items():
        assert hashlib.sha256(encode_pcm(x, encoding)).hexdigest() == digest, encoding


def test_g711_round_trips() -> None:
    codes = np.arange(256, dtype=np.uint8).tobytes()
    for encoding in ("mulaw", "alaw"):
        y = decode_pcm(codes, encoding)
        assert y.dtype == np.float32 and y.shape == (256,) and float(np.abs(y).max()) < 1.0
        back = np.frombuffer(encode_pcm(y, encoding), dtype=np.uint8)
        differ = np.nonzero(back != np.arange(256))[0].tolist()
        assert differ == ([0x7F] if encoding == "mulaw" else []), (encoding, differ)  # mu-law's -0 comes back +0
    # 8-bit companding keeps over 30 dB of signal to noise across speech levels (a linear 8 bits would not)
    rng = np.random.default_rng(0)
    for level in (0.5, 0.05, 0.01):  # about -9, -29 and -43 dBFS
        x = (level * np.sin(np.arange(8000) * 0.3) * (1 + 0.3 * rng.standard_normal(8000))).clip(-1, 1)
        for encoding in ("mulaw", "alaw"):
            y = decode_pcm(encode_pcm(x, encoding), encoding)
            snr = 10 * np.log10(np.sum(x**2) / np.sum((x - y) ** 2))
            assert snr > 30, (level, encoding, snr)


def test_float_and_g711_wavs() -> None:
    x = (0.5 * np.sin(np.arange(800) / 7)).astype(np.float32)
    stereo = np.stack([x, x], axis=1)
    f32 = struct.pack("<HHIIHH", 3, 2, 8000, 64000, 8, 32)
    y, rate = read_wav(io.BytesIO(_wav_bytes(f32, stereo.astype("<f4").tobytes())))
    assert rate == 8000 and y.dtype == np.float32 and np.array_equal(y, x)
    y, _ = read_wav(io.BytesIO(_wav_bytes(_extensible_fmt(1, 64, 3), (3 * x).astype("<f8").tobytes())))
    assert float(y.max()) == 1.0 and np.allclose(y, np.clip(3 * x, -1, 1))  # beyond full scale: clipped
    with pytest.raises(ValueError, match="NaN or infinite"):
        read_wav(io.BytesIO(_wav_bytes(_extensible_fmt(1, 32, 3), np.array([0, np.inf], "<f4").tobytes())))
    with pytest.raises(ValueError, match="16 bits for float"):
        read_wav(io.BytesIO(_wav_bytes(_extensible_fmt(1, 16, 3), b"\0" * 8)))
    for tag, encoding in ((7, "mulaw"), (6, "alaw")):
        codes = encode_pcm(x, encoding)
        fmt = struct.pack("<HHIIHH", tag, 1, 8000, 8000, 1, 8)
        y, rate = read_wav(io.BytesIO(_wav_bytes(fmt, codes)))
        assert rate == 8000 and np.array_equal(y, decode_pcm(codes, encoding))
        assert float(np.abs(y - x).max()) < 0.02
        y, _ = read_wav(io.BytesIO(_wav_bytes(_extensible_fmt(1, 8, tag), codes)))
        assert np.array_equal(y, decode_pcm(codes, encoding))


def test_channels_read_apart_or_averaged(tmp_path) -> None:
    frames = np.array([[1000, -2000], [3000, 4000], [-5000, 6000]], dtype="<i2")  # 3 frames of 2 channels
    with wave.open(str(tmp_path / "s.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(frames.tobytes())
    x, rate = read_wav_channels(tmp_path / "s.wav")
    assert rate == 8000 and x.shape == (2, 3) and x.dtype == np.float32
    assert np.array_equal(x * 32768, frames.T.astype(np.float32))
    mixed, _ = read_wav(tmp_path / "s.wav")
    assert np.allclose(mixed * 32768, frames.mean(axis=1))
    write_wav(tmp_path / "m.wav", np.zeros(5, np.float32), 8000)
    assert read_wav_channels(tmp_path / "m.wav")[0].shape == (1, 5)
