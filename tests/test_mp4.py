"""MP4 audio (parley/mp4.py, parley/aac.py, parley/mp4stream.py): files written by FFmpeg's muxer (through PyAV, a
dev dependency) as phones and Safari write them: progressive with the moov after or before the mdat, fragmented as
MediaRecorder writes; AAC, Opus and MP3. The packets read here are PyAV's, AAC decodes to the signal, a fragmented
stream cut anywhere to the whole file's samples; the refusals say why; en-open captions an AAC stream and transcribes
a voice memo; and Chromium's own `audio/mp4` MediaRecorder (Opus) streams to it."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
from websockets.asyncio.client import connect

import server.protocol as P
from parley.aac import AacDecoder, libfaad_available
from parley.formats import read_audio_channels
from parley.mp4 import Mp4Reader, read_mp4
from parley.mp4stream import Mp4StreamDecoder
from parley.resample import resample
from tests.test_opusstream import _chunks, record_and_stream, said_in_order
from tests.test_server import Running

FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "250000"}  # as MediaRecorder
PROGRESSIVE = {}  # FFmpeg's default: the moov after the mdat, as a phone's voice memo
FASTSTART = {"movflags": "faststart"}  # the moov first


def _tones(rate: int, channels: int, seconds: float = 1.5) -> np.ndarray:
    """`(C, T)` float32: a different pair of tones in each channel."""
    t = np.arange(int(rate * seconds)) / rate
    return np.stack(
        [
            0.3 * np.sin(2 * np.pi * (440 + 300 * c) * t) + 0.2 * np.sin(2 * np.pi * (1234 - 400 * c) * t)
            for c in range(channels)
        ]
    ).astype(np.float32)


def _mp4(x: np.ndarray, rate: int, codec: str = "aac", options: dict | None = None, tmp: Path | None = None) -> bytes:
    """`x` `(C, T)` encoded by FFmpeg's `codec` into an MP4 file with the muxer's `options`."""
    import tempfile

    layout = "stereo" if x.shape[0] == 2 else "mono"
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a.m4a"
        with av.open(str(path), "w", format="mp4", options=options or {}) as out:
            stream = out.add_stream(codec, rate=rate, layout=layout)
            for i in range(0, x.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(x[:, i : i + 1024]), format="fltp", layout=layout
                )
                frame.sample_rate, frame.pts = rate, i
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        return path.read_bytes()


def _pyav_packets(data: bytes) -> list[bytes]:
    with av.open(io.BytesIO(data)) as f:
        return [bytes(p) for p in f.demux(audio=0) if p.size]


def test_libfaad_is_there() -> None:
    """AAC needs Debian's libfaad2 (.ci/system-deps and the Dockerfile install it): without it, AAC is refused."""
    assert libfaad_available(), "apt install libfaad2"


@pytest.mark.parametrize(
    ("codec", "rate", "channels", "options", "want"),
    [
        ("aac", 44100, 1, PROGRESSIVE, "aac"),
        ("aac", 48000, 2, FASTSTART, "aac"),
        ("aac", 44100, 1, FRAGMENTED, "aac"),
        ("libopus", 48000, 1, FRAGMENTED, "opus"),
        ("libmp3lame", 44100, 1, PROGRESSIVE, "mp3"),
    ],
)
def test_the_packets_are_ffmpegs(codec: str, rate: int, channels: int, options: dict, want: str) -> None:
    """Progressive (sample tables, the moov after or before the mdat) and fragmented (moof runs) files give the packets
    FFmpeg's own demuxer gives, and the codec, channels and rate of the track; a fragmented one cut anywhere, the same
    packets from the streaming reader."""
    data = _mp4(_tones(rate, channels), rate, codec, options)
    track, packets = read_mp4(data)
    assert (track.codec, track.channels, track.rate) == (want, channels, rate)
    assert packets == _pyav_packets(data) and len(packets) > 40
    if options is FRAGMENTED:
        reader = Mp4Reader(max_pending=1 << 20)
        assert [p for chunk in _chunks(data, 1) for p in reader.feed(chunk)] == packets


@pytest.mark.parametrize(("rate", "channels", "options"), [(44100, 1, PROGRESSIVE), (48000, 2, FASTSTART)])
def test_aac_decodes_to_the_signal(rate: int, channels: int, options: dict) -> None:
    """libfaad2 gives back the tones (AAC at FFmpeg's default bit rate is 2-6 % off the signal), each channel its own;
    a mono track comes back as one channel (libfaad2 writes two)."""
    x = _tones(rate, channels)
    y, got_rate = read_audio_channels(io.BytesIO(_mp4(x, rate, "aac", options)))
    assert got_rate == rate and y.shape[0] == channels and abs(y.shape[1] - x.shape[1]) <= 2048
    n = min(x.shape[1], y.shape[1]) - 2048
    for c in range(channels):
        error = np.sqrt(np.mean((y[c, :n] - x[c, :n]) ** 2)) / np.sqrt(np.mean(x[c, :n] ** 2))
        other = np.sqrt(np.mean((y[c, :n] - x[1 - c, :n]) ** 2)) if channels == 2 else 1.0
        assert error < 0.1 and other > 0.2, (c, error, other)


@pytest.mark.parametrize(("codec", "rate"), [("aac", 44100), ("aac", 48000), ("libopus", 48000)])
def test_a_fragmented_stream_in_chunks_decodes_as_the_whole_file(codec: str, rate: int) -> None:
    """A stream's decoder (48 kHz out, whatever the AAC rate) fed the file cut anywhere gives the whole file's samples,
    resampled to 48 kHz: one decoder and one resampler for the stream, nothing lost between chunks."""
    data = _mp4(_tones(rate, 1), rate, codec, FRAGMENTED)
    decoder = Mp4StreamDecoder()
    y = np.concatenate([decoder.feed(chunk) for chunk in _chunks(data, 7)])
    x, whole_rate = read_audio_channels(io.BytesIO(data))
    want = resample(x[0], whole_rate, 48000)
    n = len(want) - 240  # the resampler holds back its last few milliseconds until a flush a stream never sends
    assert len(y) >= n and np.abs(y[:n] - want[:n]).max() < 1e-6


def test_refusals_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    aac = _mp4(_tones(44100, 1), 44100, "aac", FASTSTART)
    with pytest.raises(ValueError, match=r"an MP4 file Parley cannot read \(no moov box"):
        read_audio_channels(io.BytesIO(aac[:30] + b"\0\0\0\x10mdat" + b"\0" * 8))
    with pytest.raises(ValueError, match="no audio track"):
        read_mp4(aac.replace(b"soun", b"vide", 1))
    with pytest.raises(ValueError, match="codec 'alac'"):
        read_mp4(aac.replace(b"mp4a", b"alac", 1))
    with pytest.raises(ValueError, match="cut short"):
        read_mp4(aac[: len(aac) // 2])
    with pytest.raises(ValueError, match="not an MP4 stream"):
        Mp4Reader().feed(b"\0\0\0\x10mdat" + b"\0" * 8)
    # A progressive file streamed: its moov first (refused at once), or its mdat first (too big to wait for).
    with pytest.raises(ValueError, match=r"a progressive MP4 .* stream a fragmented MP4"):
        Mp4Reader().feed(aac)
    reader = Mp4Reader(max_pending=4096)
    with pytest.raises(ValueError, match="over the 4096 a stream may buffer"):
        for chunk in _chunks(_mp4(_tones(44100, 1, seconds=3.0), 44100, "aac", PROGRESSIVE), 2, most=1000):
            reader.feed(chunk)
    # A server without libfaad2: the upload says what to install, a stream refuses AAC (Opus still streams).
    monkeypatch.setattr(AacDecoder, "_lib", None)
    monkeypatch.setattr(AacDecoder, "library", classmethod(lambda cls: (_ for _ in ()).throw(OSError("no libfaad"))))
    with pytest.raises(ValueError, match=r"needs libfaad2 on the server \(Debian: apt install libfaad2\).*ffmpeg"):
        read_audio_channels(io.BytesIO(aac))
    with pytest.raises(ValueError, match="AAC needs libfaad2"):
        Mp4StreamDecoder().feed(_mp4(_tones(44100, 1), 44100, "aac", FRAGMENTED))


def test_the_start_message_of_an_mp4_stream() -> None:
    start = P.start_from_dict({"type": "start", "encoding": "mp4", "sample_rate": 44100})
    assert (start.sample_rate, start.encoding) == (48000, "mp4")
    state = P.ProtocolState()
    state.on_text(json.dumps({"type": "start", "encoding": "mp4"}))
    with pytest.raises(P.ProtocolError, match="mp4 audio: not an MP4 stream") as e:
        state.on_binary(b"\0\0\0\x10mdat" + b"\0" * 8)
    assert e.value.code == "bad_audio"


def test_en_open_captions_safaris_aac_stream_and_a_voice_memo(
    en_open_server: Running, code_speech: tuple[np.ndarray, int]
) -> None:
    """Safari records AAC in fragmented MP4 at the microphone's rate (44.1 kHz here): streamed with `"encoding":
    "mp4"` in pieces, it is captioned as PCM is; the same speech as a phone's voice memo (progressive M4A) uploaded to
    OpenAI's route is transcribed."""
    x, rate = code_speech
    speech = resample(np.concatenate([x, np.zeros(rate // 2, np.float32)]), rate, 44100)[None]
    stream = _mp4(speech, 44100, "aac", FRAGMENTED)

    async def go() -> tuple[dict, list[dict]]:
        async with connect(en_open_server.url) as ws:
            await ws.send(json.dumps({"type": "start", "encoding": "mp4"}))
            ready = json.loads(await ws.recv())
            for chunk in _chunks(stream, 3, most=2000):
                await ws.send(chunk)
            await ws.send(json.dumps({"type": "stop"}))
            return ready, [json.loads(m) async for m in ws]

    ready, messages = asyncio.run(go())
    assert (ready["type"], ready["sample_rate"], ready["encoding"]) == ("ready", 48000, "mp4")
    finals = " ".join(m["text"] for m in messages if m["type"] == "final" and m["text"])
    assert finals == "the code is one two three four five six", messages[-3:]
    assert any(m["type"] == "partial" for m in messages) and messages[-1] == {"type": "end"}

    import httpx

    memo = _mp4(speech, 44100, "aac", PROGRESSIVE)
    r = httpx.post(
        en_open_server.http + "/v1/audio/transcriptions",
        files={"file": ("memo.m4a", memo, "audio/mp4")},
        data={"model": "whisper-1"},
        timeout=60,
    )
    assert r.status_code == 200 and "123456" in r.json()["text"].replace(" ", ""), r.text


def test_a_browser_streams_its_mp4_recording(
    en_open_server: Running, code_speech: tuple[np.ndarray, int], tmp_path: Path
) -> None:
    """Chromium's MediaRecorder with `audio/mp4` (Opus in fragmented MP4; Safari's is AAC, above) sends a chunk every
    250 ms over /v1/stream: partials while it records, the sentence in the finals."""
    mime, messages = record_and_stream(en_open_server, code_speech, tmp_path, "mp4", "audio/mp4")
    assert mime.startswith("audio/mp4"), mime
    assert messages[0]["type"] == "ready" and messages[-1] == {"type": "end"}, messages[:2]
    finals = " ".join(m["text"] for m in messages if m["type"] == "final" and m["text"])
    assert said_in_order("one two three four five six", finals), finals
    assert sum(m["type"] == "partial" for m in messages) >= 3
