"""Home Assistant's Wyoming protocol (server/wyoming.py): the event framing and PCM reading, then `parley serve
--wyoming-port` spoken to by the `wyoming` package's own client (the one Home Assistant uses): describe, streamed
transcripts of en-open, names as hotwords, a language routed to the bundle that speaks it, the refusals, two
transcriptions on one connection, the slots given back, and a drain that still sends the transcript."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event as WyEvent
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong

from server.protocol import ProtocolError
from server.service import Service
from server.settings import Settings
from server.wyoming import Event, WyomingListener, pcm_format, pcm_samples, read_event
from tests.test_context import NAME, SENTENCE
from tests.test_server import Running

ROOT = Path(__file__).resolve().parents[1]


# ---- Events and PCM ----


def _reader(raw: bytes) -> asyncio.StreamReader:
    r = asyncio.StreamReader(limit=64 << 10)
    r.feed_data(raw)
    r.feed_eof()
    return r


def test_events_are_framed_as_the_protocol_says() -> None:
    async def go() -> None:
        # data in the header and in the additional data (merged over it), then the payload
        raw = b'{"type": "audio-chunk", "data": {"rate": 8000, "width": 2}, "data_length": 15, "payload_length": 4}\n'
        raw += b'{"channels": 1}' + b"\x01\x00\xff\xff"
        e = await read_event(_reader(raw), 1024)
        assert e is not None and (e.type, e.data, e.payload) == (
            "audio-chunk",
            {"rate": 8000, "width": 2, "channels": 1},
            b"\x01\x00\xff\xff",
        )
        assert await read_event(_reader(b""), 1024) is None  # the client closed between events
        # what Parley writes, the wyoming package reads back
        out = Event("transcript", {"text": "hello", "language": "en"}, b"").encode()
        header = json.loads(out.split(b"\n", 1)[0])
        assert header["type"] == "transcript" and header["data_length"] == len(out.split(b"\n", 1)[1])
        back = await read_event(_reader(out), 1024)
        assert back is not None and back.data == {"text": "hello", "language": "en"}
        for raw, code in [
            (b"not json\n", "bad_message"),
            (b'["a list"]\n', "bad_message"),
            (b'{"data": {}}\n', "bad_message"),
            (b'{"type": "x", "data_length": -1}\n', "bad_message"),
            (b'{"type": "x", "payload_length": 2048}\n', "too_big"),
            (b'{"type": "x", "data_length": 5}\n{"a"', "bad_message"),
            (b'{"type": "x", "payload_length": 4}\nab', "bad_message"),
            (b'{"type": "x"' + b" " * (70 << 10) + b"}\n", "too_big"),
            (b'{"type": "x"', "bad_message"),
        ]:
            with pytest.raises(ProtocolError) as err:
                await read_event(_reader(raw), 1024)
            assert err.value.code == code, raw[:40]

    asyncio.run(go())


def test_pcm_of_every_width_and_channel_count_becomes_mono_float() -> None:
    x = np.array([0.5, -0.25, 0.0, -1.0], np.float32)
    s16 = (x * 32768).clip(-32768, 32767).astype("<i2").tobytes()
    assert np.allclose(pcm_samples(s16, 2, 1), x, atol=1e-4)
    s32 = (x.astype(np.float64) * 2**31).clip(-(2**31), 2**31 - 1).astype("<i4").tobytes()
    assert np.allclose(pcm_samples(s32, 4, 1), x, atol=1e-6)
    u8 = (x * 128 + 128).clip(0, 255).astype(np.uint8).tobytes()
    assert np.allclose(pcm_samples(u8, 1, 1), x, atol=1 / 128)
    stereo = np.stack([x, -x], axis=1).reshape(-1)  # left and right cancel: the mix is silence
    assert np.allclose(pcm_samples((stereo * 16384).astype("<i2").tobytes(), 2, 2), 0.0)
    with pytest.raises(ProtocolError) as e:
        pcm_samples(s16[:-1], 2, 1)
    assert e.value.code == "bad_audio"
    assert pcm_format({"rate": 16000, "width": 2, "channels": 1}, "audio-start") == (16000, 2, 1)
    for data, code in [
        ({"rate": 16000, "width": 3, "channels": 1}, "bad_audio"),
        ({"rate": 16000, "width": 2}, "invalid_value"),
        ({"rate": "16000", "width": 2, "channels": 1}, "invalid_value"),
        ({"rate": 16000, "width": 2, "channels": 0}, "invalid_value"),
    ]:
        with pytest.raises(ProtocolError) as e:
            pcm_format(data, "audio-start")
        assert e.value.code == code, data


def test_a_server_with_keys_needs_the_wyoming_key() -> None:
    """Wyoming carries no key: a server that has keys serves it only under one of them, named at start-up."""

    async def go() -> None:
        with pytest.raises(ValueError, match="wyoming_api_key"):
            await WyomingListener(Service(Settings(api_keys=("k1",), wyoming_port=0))).start("127.0.0.1", 0)
        with pytest.raises(ValueError, match="wyoming_api_key"):
            s = Settings(api_keys=("k1",), wyoming_port=0, wyoming_api_key="other")
            await WyomingListener(Service(s)).start("127.0.0.1", 0)
        listener = WyomingListener(Service(Settings(api_keys=("k1",), wyoming_port=0, wyoming_api_key="k1")))
        await listener.start("127.0.0.1", 0)
        assert listener.port > 0
        await listener.close()

    asyncio.run(go())
    with pytest.raises(ValueError, match="wyoming_port"):
        Settings(port=8000, wyoming_port=8000)


# ---- Served ----


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Running, int]]:
    """`parley serve` on the committed bundles, en-open the default, with --wyoming-port (any free port)."""
    settings = Settings(
        bundles=ROOT / "bundles", default_model="en-open", port=0, wyoming_port=0, intra_op_threads=1,
        log_level="warning",
    )  # fmt: skip
    r = Running(settings)
    try:
        yield r, r.server.config.app.state.wyoming.port
    finally:
        r.stop()


def _pcm(x: np.ndarray, width: int = 2, channels: int = 1) -> bytes:
    y = np.repeat(x[:, None], channels, axis=1).reshape(-1)
    if width == 2:
        return (y * 32767).clip(-32768, 32767).astype("<i2").tobytes()
    return (y.astype(np.float64) * 2**31).clip(-(2**31), 2**31 - 1).astype("<i4").tobytes()


async def _transcribe(
    client: AsyncTcpClient,
    audio: bytes,
    rate: int,
    width: int = 2,
    channels: int = 1,
    transcribe: Transcribe | None = None,
) -> list[WyEvent]:
    """One request as Home Assistant makes it: the answer's events up to transcript-stop (or an error)."""
    if transcribe is not None:
        await client.write_event(transcribe.event())
    await client.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
    step = rate * width * channels // 10  # 100 ms chunks
    for i in range(0, len(audio), step):
        await client.write_event(
            AudioChunk(rate=rate, width=width, channels=channels, audio=audio[i : i + step]).event()
        )
    await client.write_event(AudioStop().event())
    return await _until_stop(client)


async def _until_stop(client: AsyncTcpClient) -> list[WyEvent]:
    events = []
    while True:
        e = await asyncio.wait_for(client.read_event(), 60)
        assert e is not None, f"the server closed after {[x.type for x in events]}"
        events.append(e)
        if TranscriptStop.is_type(e.type) or Error.is_type(e.type):
            return events


def _digits(text: str) -> str:
    return "".join(text.lower().replace(".", " ").replace(",", " ").split())


def test_home_assistants_client_describes_and_transcribes(served: tuple[Running, int], code_speech) -> None:
    r, port = served
    x, rate = code_speech

    async def go() -> None:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            info = Info.from_event(await client.read_event())
            await client.write_event(Ping(text="hi").event())
            pong = await client.read_event()
            # the same connection then transcribes twice: 16 kHz mono s16, then 22.05 kHz stereo s32
            first = await _transcribe(client, _pcm(x), rate, transcribe=Transcribe(language="en-US"))
            from parley.resample import resample

            y = resample(x, rate, 22050)
            second = await _transcribe(client, _pcm(y, 4, 2), 22050, 4, 2)
        assert Pong.is_type(pong.type) and pong.data.get("text") == "hi"
        (program,) = info.asr
        assert program.name == "parley" and program.supports_transcript_streaming
        models = {m.name: m.languages for m in program.models}
        assert models["en-open"] == ["en"] and set(models["sm2-mini"]) >= {"en", "de", "zh"}
        for events in (first, second):
            types = [e.type for e in events]
            assert types[0] == "transcript-start" and types[-2:] == ["transcript", "transcript-stop"], types
            assert set(types[1:-2]) == {"transcript-chunk"}, types
            transcript = Transcript.from_event(events[-2])
            chunks = "".join(TranscriptChunk.from_event(e).text for e in events[1:-2])
            assert transcript.text == chunks and transcript.language == "en"  # the chunks are the transcript's parts
            assert TranscriptStart.from_event(events[0]).language == "en"
            assert "123456" in _digits(transcript.text), transcript.text

    asyncio.run(go())
    assert r.metric('parley_streams_total{model="en-open",protocol="wyoming"}') == 2
    assert r.metric("parley_active_streams") == 0  # each transcription's slot given back


def test_names_are_hotwords_and_a_language_finds_its_model(served: tuple[Running, int]) -> None:
    r, port = served
    from models.data.espeak import synthesize
    from parley.resample import resample

    syn = synthesize(SENTENCE, voice="en-us", variant="m3", rate=160)
    x = np.concatenate([resample(syn.samples, syn.sample_rate, 16000), np.zeros(8000, np.float32)])
    before = r.metric('parley_streams_total{model="sm2-mini",protocol="wyoming"}') or 0

    async def go() -> tuple[str, str, list[WyEvent]]:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            plain = await _transcribe(client, _pcm(x), 16000)
        # a home's hundreds of entity names, one the tokenizer cannot write: the model's share is kept, names first
        rooms = ["kitchen", "porch", "garage", "attic", "hall", "study", "den", "pantry", "nursery", "office"]
        things = ["lamp", "fan", "heater", "blind", "speaker", "plug", "sensor", "light", "lock", "camera", "vent"]
        names = [NAME, "日本語の名前", *(f"{r} {t}" for r in rooms for t in things * 3)]  # 110 distinct, repeated
        async with AsyncTcpClient("127.0.0.1", port) as client:
            named = await _transcribe(client, _pcm(x), 16000, transcribe=Transcribe(transcript_names=names))
        async with AsyncTcpClient("127.0.0.1", port) as client:
            german = await _transcribe(client, _pcm(x[:16000]), 16000, transcribe=Transcribe(language="de"))
        return Transcript.from_event(plain[-2]).text, Transcript.from_event(named[-2]).text, german

    plain, named, german = asyncio.run(go())
    assert NAME not in plain.lower() and NAME in named.lower(), (plain, named)
    assert TranscriptStart.from_event(german[0]).language == "de" and german[-1].type == "transcript-stop"
    assert r.metric('parley_streams_total{model="sm2-mini",protocol="wyoming"}') == before + 1


def test_what_cannot_be_transcribed_gets_an_error_event(served: tuple[Running, int], code_speech) -> None:
    _, port = served
    x, rate = code_speech
    pcm = _pcm(x[:8000])

    async def answer(*events: WyEvent) -> WyEvent | None:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            for e in events:
                await client.write_event(e)
            while True:
                e = await asyncio.wait_for(client.read_event(), 30)
                if e is None or Error.is_type(e.type):
                    return e

    start = AudioStart(rate=16000, width=2, channels=1).event()
    cases = [
        ([Transcribe(name="whisper-large").event(), start], "unknown_model"),
        ([Transcribe(language="ja").event(), start], "unsupported_option"),
        ([AudioStart(rate=16000, width=3, channels=1).event()], "bad_audio"),
        ([AudioStart(rate=384000, width=2, channels=1).event()], "unsupported_rate"),
        ([AudioStop().event()], "not_started"),
        ([start, AudioChunk(rate=16000, width=2, channels=1, audio=pcm[:-1]).event()], "bad_audio"),
        ([start, AudioStart(rate=8000, width=2, channels=1).event()], "bad_audio"),
        ([Transcribe(transcript_names="kowalczyk").event(), start], "invalid_value"),  # type: ignore[arg-type]
    ]

    async def go() -> list[tuple[str | None, str | None]]:
        out = []
        for events, _ in cases:
            e = await answer(*events)
            out.append((Error.from_event(e).code if e else None, Error.from_event(e).text if e else None))
        return out

    got = asyncio.run(go())
    for (_, code), (got_code, text) in zip(cases, got, strict=True):
        assert got_code == code, (code, got_code, text)
        assert text

    # events of other domains are dropped, and the connection goes on
    async def other() -> list[WyEvent]:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(WyEvent(type="synthesize", data={"text": "hello"}))
            await client.write_event(WyEvent(type="select-program", data={"name": "parley"}))
            return await _transcribe(client, _pcm(x), rate)

    assert asyncio.run(other())[-1].type == "transcript-stop"


def test_a_draining_server_sends_the_transcript_then_shutting_down(code_speech) -> None:
    x, rate = code_speech
    settings = Settings(
        bundles=ROOT / "bundles" / "en-open", port=0, wyoming_port=0, intra_op_threads=1, log_level="warning",
        drain_timeout_s=0.5,
    )  # fmt: skip
    r = Running(settings)
    port = r.server.config.app.state.wyoming.port
    stopper: threading.Thread | None = None
    try:

        async def go() -> list[WyEvent]:
            nonlocal stopper
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
                await client.write_event(AudioChunk(rate=rate, width=2, channels=1, audio=_pcm(x)).event())
                await asyncio.sleep(0.5)
                stopper = threading.Thread(target=r.stop)  # SIGTERM's drain, without audio-stop from the client
                stopper.start()
                return await _until_stop(client) + [await asyncio.wait_for(client.read_event(), 30)]

        events = asyncio.run(go())
    finally:
        if stopper is not None:
            stopper.join(30)
        else:
            r.stop()
    types = [e.type for e in events]
    assert types[-3:-1] == ["transcript", "transcript-stop"] and Error.is_type(events[-1].type), types
    assert "123456" in _digits(Transcript.from_event(events[-3]).text)
    assert Error.from_event(events[-1]).code == "shutting_down"
