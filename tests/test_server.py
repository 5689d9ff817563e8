"""The server end to end: a real uvicorn on a free local port serving a tiny random bundle, real WebSocket clients.

The tiny model is untrained, so its "transcripts" are whatever tokens it emits; what matters is that the server
produces exactly the tokens onnxruntime produces offline (`server.transducer.transcribe`) for the same samples, with
any number of concurrent streams, at any rate, while bad clients are refused with their documented codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import math
import shutil
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from clients.stream import StreamResult, encode_audio, run_stream
from clients.stream import main as stream_main
from parley.audio import decode_pcm, write_wav
from parley.resample import resample
from server.bundle import load_bundle
from server.engine import Engine, EngineConfig
from server.keys import key_id
from server.serve import make_server
from server.settings import Settings
from server.transducer import StreamingTransducer, transcribe
from tests.test_export import SR, synthetic_audio

MAX_MESSAGE = 65536  # bytes: small, so that oversized messages are cheap to send
START = {"type": "start", "sample_rate": SR, "encoding": "s16le"}
STOP = json.dumps({"type": "stop"})
TIMEOUT = 30.0  # s: no single client exchange may take longer


# ---- Fixtures: a bundle folder, servers in threads, the offline reference ----


@pytest.fixture(scope="module")
def bundles(tiny_bundles: Path) -> Path:
    """The session's tiny bundle folder (tests/conftest.py); tests that break bundles work on copies."""
    return tiny_bundles


@pytest.fixture(scope="module")
def model(bundles: Path) -> StreamingTransducer:
    return StreamingTransducer(load_bundle(bundles / "tiny-en", providers="cpu", threads=1))


class Running:
    """A `parley serve` server (make_server) running in a thread of its own on a free port."""

    def __init__(self, settings: Settings) -> None:
        self.server = make_server(settings)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/v1/stream"
        self.http = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        assert not self.thread.is_alive(), "the server did not stop"

    def metric(self, name: str, headers: dict | None = None) -> float | None:
        text = httpx.get(self.http + "/metrics", headers=headers).text
        for line in text.splitlines():
            if line.split(" ")[0] == name:
                return float(line.split(" ")[1])
        return None


@contextlib.contextmanager
def running(bundles: Path, **kw) -> Iterator[Running]:
    settings = Settings(bundles=bundles, port=0, intra_op_threads=1, log_level="warning", **kw)
    r = Running(settings)
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def server(bundles: Path) -> Iterator[Running]:
    """One segment per stream (no endpointing): its final is the offline transcript."""
    with running(bundles, endpointing=False, max_message_bytes=MAX_MESSAGE) as r:
        yield r


KEY = "s3cret"


@pytest.fixture(scope="module")
def secure(bundles: Path) -> Iterator[Running]:
    """API key, allowed origin, 2 connections, 1 s idle timeout, 1 s segments (endpoint rule 3), small uploads."""
    with running(
        bundles,
        api_keys=(KEY,),
        allowed_origins=("https://ok.example",),
        max_connections=2,
        idle_timeout_s=1.0,
        rule3_min_utterance_length=1.0,
        max_upload_bytes=200_000,
    ) as r:
        yield r


def audio(seconds: float, seed: int, rate: int = SR) -> np.ndarray:
    """Deterministic test audio at `rate`: float32 `(T,)`."""
    x = synthetic_audio(seconds, seed)
    return x if rate == SR else resample(x, SR, rate)


def wire(x: np.ndarray) -> np.ndarray:
    """The samples the server decodes from `x` sent as s16le (the client scales by 32767, the server by 32768)."""
    return np.frombuffer(encode_audio(x, "s16le"), dtype="<i2").astype(np.float32) / 32768.0


def offline(model: StreamingTransducer, x: np.ndarray, rate: int = SR, **kw) -> str:
    return transcribe(model, x, rate, **kw).text


def stream(url: str, x: np.ndarray, rate: int = SR, **kw) -> StreamResult:
    kw.setdefault("speed", 0)
    return asyncio.run(run_stream(url, x, rate, **kw))


async def exchange(
    url: str, sends: list[str | bytes | dict], headers: dict | None = None, origin: str | None = None
) -> tuple[list[dict], int | None]:
    """Sends messages in order (dicts as JSON) and reads until the server closes: (messages, close code)."""

    async def go() -> tuple[list[dict], int | None]:
        async with connect(url, additional_headers=headers, origin=origin, max_size=None, close_timeout=5) as ws:
            for m in sends:
                try:
                    await ws.send(json.dumps(m) if isinstance(m, dict) else m)
                except ConnectionClosed:
                    break
            msgs = []
            with contextlib.suppress(ConnectionClosed):
                async for raw in ws:
                    msgs.append(json.loads(raw))
        return msgs, ws.close_code

    return await asyncio.wait_for(go(), TIMEOUT)


def _errors(msgs: list[dict]) -> list[str]:
    return [m["code"] for m in msgs if m["type"] == "error"]


# ---- Streams ----


def test_ready_message(server: Running) -> None:
    msgs, code = asyncio.run(exchange(server.url, [{**START, "partials": False, "search": "beam"}, STOP]))
    ready = msgs[0]
    assert isinstance(ready.pop("session"), str)
    assert ready == {
        "type": "ready",
        "protocol": 1,
        "model": "tiny-en",
        "chunk_ms": 160,
        "sample_rate": SR,
        "encoding": "s16le",
        "partials": False,
        "search": "beam",
        "max_message_bytes": MAX_MESSAGE,
    }
    # No audio at all: only the padding is decoded (the random model may "hear" something in it), then end.
    assert msgs[-1] == {"type": "end"} and code == 1000
    assert all(m["type"] == "final" and m["start"] == m["end"] == 0 for m in msgs[1:-1]), msgs


def test_stream_gives_partials_then_the_offline_transcript(server: Running, model: StreamingTransducer) -> None:
    x = audio(3.0, 0)
    r = stream(server.url, x, chunk_ms=100)
    assert r.ok and r.close_code == 1000, r.error
    kinds = [m.message["type"] for m in r.received]
    assert kinds[0] == "ready" and kinds[-2:] == ["final", "end"] and kinds.count("final") == 1
    partials = [m.message for m in r.received if m.message["type"] == "partial"]
    assert len(partials) >= 3, "the text should change on most chunks"
    ends = [p["end"] for p in partials]
    assert ends == sorted(ends) and all(p["segment"] == 0 and p["start"] == 0 for p in partials)
    (final,) = r.finals
    expected = offline(model, wire(x))
    assert expected and final["text"] == expected
    assert (final["segment"], final["start"], final["end"]) == (0, 0.0, 3.0)
    assert partials[-1]["text"] == expected[: len(partials[-1]["text"])], "a partial is a prefix of the final here"
    words = final["words"]
    assert " ".join(w["word"] for w in words) == final["text"]
    assert all(0 <= w["start"] <= w["end"] <= 3.0 for w in words)
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(words)), "words overlap"


def test_concurrent_streams_equal_one_at_a_time(server: Running, model: StreamingTransducer) -> None:
    clips = [audio(1.5, seed) for seed in range(8)]
    searches = ["greedy"] * 6 + ["beam"] * 2
    alone = [stream(server.url, x, search=s).text for x, s in zip(clips, searches, strict=True)]

    async def together() -> list[StreamResult]:
        return await asyncio.gather(
            *(run_stream(server.url, x, SR, speed=0, search=s) for x, s in zip(clips, searches, strict=True))
        )

    results = asyncio.run(together())
    assert all(r.ok for r in results), [r.error for r in results]
    assert [r.text for r in results] == alone
    assert alone[0] == offline(model, wire(clips[0]))
    assert alone[7] == offline(model, wire(clips[7]), search="beam")
    assert len(set(alone)) == 8, "different audio should give different token strings"


@pytest.mark.parametrize("rate", [8000, 44100])
def test_other_sample_rates(server: Running, model: StreamingTransducer, rate: int) -> None:
    x = audio(2.0, 3, rate)
    r = stream(server.url, x, rate, chunk_ms=50)
    assert r.ok and r.ready["sample_rate"] == rate
    assert r.text == offline(model, wire(x), rate)


def test_f32le_at_48k(server: Running, model: StreamingTransducer) -> None:
    x = audio(2.0, 4, 48000)
    r = stream(server.url, x, 48000, encoding="f32le")
    assert r.ok and r.text == offline(model, x, 48000)


FINALIZE = json.dumps({"type": "finalize"})


def _pieces(x: np.ndarray, ms: int = 100) -> list[bytes]:
    step = SR * ms // 1000
    return [encode_audio(x[i : i + step], "s16le") for i in range(0, len(x), step)]


def test_finalize_closes_the_segment_and_the_stream_goes_on(server: Running, model: StreamingTransducer) -> None:
    """finalize: the open segment's final at once, marked, ending where the audio so far ends; the audio that follows
    is a new segment on the stream's own clock (the silence the flush decoded is not in it); a second finalize with
    no audio between is answered with an empty final; stop still ends the stream."""
    a, b = audio(2.0, 21), audio(1.5, 22)
    alone = stream(server.url, a)
    msgs, code = asyncio.run(exchange(server.url, [START, *_pieces(a), FINALIZE, FINALIZE, *_pieces(b), STOP]))
    assert code == 1000 and msgs[0]["type"] == "ready" and msgs[-1]["type"] == "end", msgs[-3:]
    finals = [m for m in msgs if m["type"] == "final"]
    marked = [i for i, m in enumerate(finals) if m.get("finalized")]
    assert len(marked) == 2 and marked[1] == marked[0] + 1, finals
    first, second = finals[marked[0]], finals[marked[1]]
    assert first["end"] == 2.0 and second == {**second, "text": "", "words": [], "start": 2.0, "end": 2.0}
    # up to the finalize, what a stream of `a` alone says (its stop pads less silence: the same words)
    assert [m["text"] for m in finals[: marked[0] + 1]] == [m["text"] for m in alone.finals]
    assert " ".join(m["text"] for m in finals[: marked[0] + 1]).split() == alone.text.split()
    after = finals[marked[1] + 1 :]
    assert [m["segment"] for m in finals] == list(range(len(finals)))
    assert after and all(2.0 <= m["start"] <= m["end"] <= 3.5 for m in after), after
    assert all(2.0 <= w["start"] <= w["end"] <= 3.5 for m in after for w in m["words"]), after
    assert server.metric('parley_finalizes_total{model="tiny-en"}') >= 2
    assert server.metric('parley_stream_encodings_total{encoding="s16le"}') >= 2
    assert not any(m.get("finalized") for m in after) and all(
        m["start"] >= 2.0 for m in msgs if m["type"] == "partial" and m["segment"] > first["segment"]
    )


@pytest.mark.parametrize("encoding", ["mulaw", "alaw"])
def test_telephone_audio(server: Running, model: StreamingTransducer, encoding: str) -> None:
    """G.711 at 8 kHz, as a telephone gateway sends it, in 20 ms messages (160 bytes): the transcript of the samples
    the codes stand for, streamed and POSTed raw or as a G.711 WAV file."""
    x8 = audio(2.0, 9, 8000)
    heard = decode_pcm(encode_audio(x8, encoding), encoding)  # what the server decodes
    r = stream(server.url, x8, 8000, encoding=encoding, chunk_ms=20)
    assert r.ok and r.ready["encoding"] == encoding and r.ready["sample_rate"] == 8000
    assert r.text == offline(model, heard, 8000)
    raw = httpx.post(
        server.http + f"/v1/transcribe?sample_rate=8000&encoding={encoding}",
        content=encode_audio(x8, encoding),
        headers={"content-type": "application/octet-stream"},
    )
    assert raw.status_code == 200 and raw.json()["segments"] == r.finals, raw.text
    tag = {"mulaw": 7, "alaw": 6}[encoding]
    codes = encode_audio(x8, encoding)
    fmt = struct.pack("<HHIIHH", tag, 1, 8000, 8000, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(codes)) + codes
    wav = httpx.post(
        server.http + "/v1/transcribe",
        content=b"RIFF" + struct.pack("<I", len(body)) + body,
        headers={"content-type": "audio/wav"},
    )
    assert wav.status_code == 200 and wav.json()["segments"] == r.finals, wav.text


_F32 = {**START, "encoding": "f32le"}
BAD_INPUTS = [
    ("binary before start", [b"\0\0"], "not_started", 1008),
    ("malformed JSON", ["{not json"], "bad_json", 1003),
    ("JSON but not an object", ["[1, 2]"], "bad_json", 1003),
    ("unknown type", [{"type": "hello"}], "bad_message", 1008),
    ("unknown field", [{**START, "speaker": 2}], "unknown_field", 1008),
    ("bad value", [{**START, "sample_rate": "fast"}], "invalid_value", 1008),
    ("missing field", [{"type": "start", "sample_rate": SR}], "invalid_value", 1008),
    ("unsupported rate", [{**START, "sample_rate": 384000}], "unsupported_rate", 1003),
    ("unsupported encoding", [{**START, "encoding": "opus"}], "unsupported_encoding", 1003),
    ("unknown model", [{**START, "model": "nope"}], "unknown_model", 1008),
    ("unsupported language", [{**START, "language": "xx"}], "unsupported_option", 1008),
    ("translation", [{**START, "translate": ["de"]}], "unsupported_option", 1008),
    ("second start", [START, START], "already_started", 1008),
    ("stop before start", [STOP], "not_started", 1008),
    ("finalize before start", [FINALIZE], "not_started", 1008),
    ("greedy alternatives", [{**START, "alternatives": 2, "search": "greedy"}], "invalid_value", 1008),
    ("finalize with a field", [START, {"type": "finalize", "now": True}], "unknown_field", 1008),
    ("finalize after stop", [START, STOP, FINALIZE], "after_stop", 1008),
    ("odd byte count", [START, b"\0" * 3201], "bad_audio", 1003),
    ("f32le not whole samples", [_F32, b"\0" * 6], "bad_audio", 1003),
    ("NaN in f32le", [_F32, np.array([0.1, math.nan], dtype="<f4").tobytes()], "bad_audio", 1003),
    ("infinite f32le", [_F32, np.array([math.inf], dtype="<f4").tobytes()], "bad_audio", 1003),
    ("oversize audio", [START, b"\0" * (MAX_MESSAGE + 2)], "too_big", 1009),
    ("oversize text", [" " * (MAX_MESSAGE + 1)], "too_big", 1009),
    ("audio after stop", [START, STOP, b"\0\0"], "after_stop", 1008),
]


def test_bad_inputs_get_their_error_and_close_while_a_good_stream_goes_on(
    server: Running, model: StreamingTransducer
) -> None:
    x = audio(2.0, 5)

    async def both() -> tuple[StreamResult, list]:
        good = asyncio.create_task(run_stream(server.url, x, SR, chunk_ms=100, speed=4))
        bad = await asyncio.gather(*(exchange(server.url, sends) for _, sends, _, _ in BAD_INPUTS))
        far_too_big = await exchange(server.url, [START, b"\0" * (3 * MAX_MESSAGE)])
        return await good, [*bad, far_too_big]

    good, answers = asyncio.run(both())
    for (what, _, code, close), (msgs, got_close) in zip(BAD_INPUTS, answers, strict=False):
        assert _errors(msgs) == [code] and msgs[-1]["type"] == "error", f"{what}: {msgs}"
        assert got_close == close, f"{what}: close {got_close}, expected {close}"
        assert "Traceback" not in msgs[-1]["message"]
    msgs, got_close = answers[-1]
    assert got_close == 1009 and not _errors(msgs), "far larger messages are cut off by the transport"
    assert good.ok and good.text == offline(model, wire(x))
    assert server.metric('parley_errors_total{code="bad_audio"}') >= 4


def test_abrupt_disconnect_disturbs_nobody(server: Running, model: StreamingTransducer) -> None:
    x = audio(2.0, 6)

    async def rude() -> None:
        ws = await connect(server.url)
        await ws.send(json.dumps(START))
        await ws.recv()
        for i in range(5):
            await ws.send(encode_audio(x[i * 1600 : (i + 1) * 1600], "s16le"))
        ws.transport.abort()  # no close handshake, no stop: the TCP connection just drops

    async def both() -> StreamResult:
        good = asyncio.create_task(run_stream(server.url, x, SR, chunk_ms=100, speed=4))
        await asyncio.gather(*(rude() for _ in range(3)))
        return await good

    good = asyncio.run(both())
    assert good.ok and good.text == offline(model, wire(x))
    deadline = time.monotonic() + 5
    while server.metric("parley_active_streams") != 0:
        assert time.monotonic() < deadline, "the dropped connections still hold their slots"
        time.sleep(0.05)


def test_backpressure_bounds_the_queue(bundles: Path) -> None:
    """A stream whose updates nobody reads: push waits once queue_chunks updates are waiting, and resumes."""

    async def go() -> None:
        engine = Engine(load_bundle(bundles / "tiny-en", providers="cpu", threads=1), EngineConfig(queue_chunks=2))
        await engine.start()
        try:
            s = engine.open_stream(SR)
            push = asyncio.create_task(s.push(audio(3.0, 0)))  # 18 chunks
            await asyncio.sleep(0.5)
            assert not push.done() and s.pending_chunks + s._updates.qsize() == 2
            updates = 0
            while not push.done():
                await asyncio.wait_for(s.next_update(), 5)
                updates += 1
            assert updates >= 10
            await push
        finally:
            await engine.close()

    asyncio.run(go())


# ---- HTTP ----


def test_health_models_and_metrics(server: Running) -> None:
    assert stream(server.url, audio(1.0, 1)).ok
    assert httpx.get(server.http + "/healthz").json() == {"status": "ok"}
    r = httpx.get(server.http + "/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    models = httpx.get(server.http + "/v1/models").json()
    assert models.pop("object") == "list" and [m["id"] for m in models.pop("data")] == ["tiny-en"]
    assert models == {
        "default": "tiny-en",
        "models": [
            {
                "name": "tiny-en",
                "languages": ["en"],
                "translate": [],
                "chunk_ms": 160,
                "search": ["greedy", "beam"],
                "decoding": {"search": "greedy"},
                "lms": [],
            }
        ],
    }
    r = httpx.get(server.http + "/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    for name in (
        "parley_active_streams 0",
        'parley_streams_total{model="tiny-en",protocol="parley"}',
        'parley_audio_seconds_total{model="tiny-en"}',
        'parley_chunk_latency_seconds_bucket{model="tiny-en",le="+Inf"}',
        'parley_batch_size_count{model="tiny-en"}',
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ):
        assert name in text, name
    assert server.metric('parley_streams_total{model="tiny-en",protocol="parley"}') >= 1
    assert server.metric('parley_audio_seconds_total{model="tiny-en"}') >= 1.0 - 1e-9  # a sum of chunk lengths


def _wav(x: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    import wave

    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(encode_audio(x, "s16le"))
    return buf.getvalue()


def test_transcribe_returns_the_streams_finals(server: Running, model: StreamingTransducer) -> None:
    x = audio(2.0, 7)
    finals = stream(server.url, x).finals
    r = httpx.post(server.http + "/v1/transcribe", content=_wav(x, SR), headers={"content-type": "audio/wav"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "tiny-en" and body["duration"] == 2.0 and body["segments"] == finals
    assert body["text"] == offline(model, wire(x))
    raw = httpx.post(
        server.http + "/v1/transcribe?sample_rate=16000&encoding=s16le&search=greedy",
        content=encode_audio(x, "s16le"),
        headers={"content-type": "application/octet-stream"},
    )
    assert raw.status_code == 200 and raw.json()["segments"] == finals
    x8 = audio(1.0, 8, 8000)
    f32 = httpx.post(
        server.http + "/v1/transcribe?sample_rate=8000&encoding=f32le",
        content=encode_audio(x8, "f32le"),
        headers={"content-type": "application/octet-stream"},
    )
    assert f32.status_code == 200 and f32.json()["text"] == offline(model, x8, 8000)


@pytest.mark.parametrize(
    "query, content_type, body, status, code",
    [
        ("", "text/plain", b"hello", 415, "unsupported_encoding"),
        ("", "application/octet-stream", b"\0\0", 400, "invalid_value"),
        ("?sample_rate=384000", "application/octet-stream", b"\0\0", 400, "unsupported_rate"),
        ("?sample_rate=16000&encoding=opus", "application/octet-stream", b"\0\0", 415, "unsupported_encoding"),
        ("?sample_rate=16000", "application/octet-stream", b"\0\0\0", 400, "bad_audio"),
        ("?model=nope", "audio/wav", None, 404, "unknown_model"),
        ("?search=viterbi", "audio/wav", None, 400, "invalid_value"),
        ("", "audio/wav", b"RIFF....not a wav", 400, "bad_audio"),
    ],
)
def test_transcribe_errors(server: Running, query: str, content_type: str, body: bytes, status: int, code: str) -> None:
    body = _wav(audio(0.2, 0), SR) if body is None else body
    r = httpx.post(server.http + "/v1/transcribe" + query, content=body, headers={"content-type": content_type})
    assert r.status_code == status and r.json()["code"] == code and r.json()["type"] == "error", r.text


def test_stream_command_against_the_server(server: Running, model: StreamingTransducer, tmp_path: Path, capsys):
    x = audio(1.5, 9)
    write_wav(tmp_path / "a.wav", x, SR)
    assert stream_main([str(tmp_path / "a.wav"), "--url", server.url, "--speed", "0", "--json"]) == 0
    msgs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [m["type"] for m in msgs][-2:] == ["final", "end"]
    assert msgs[-2]["text"] == offline(model, wire(x))
    # the start's further fields from the command line, and the printer's alternatives under the final
    args = [str(tmp_path / "a.wav"), "--url", server.url, "--speed", "0", "--alternatives", "3", "--no-endpointing"]
    assert stream_main([*args, "--json"]) == 0
    msgs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert msgs[0]["alternatives"] == 3 and msgs[0]["endpointing"] is False and msgs[0]["search"] == "beam"
    final = msgs[-2]
    assert stream_main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == final["text"] and len(lines) == len(final["alternatives"])
    assert all(line.startswith(f"    #{i} (") for i, line in enumerate(lines[1:], 2)), lines
    with pytest.raises(SystemExit):
        stream_main([*args, "--silence-after-speech", "0.5"])


# ---- Access, limits, segments (the secured server) ----


def test_api_keys(secure: Running) -> None:
    start = [{**START}, STOP]
    msgs, code = asyncio.run(exchange(secure.url, start))
    assert _errors(msgs) == ["unauthorized"] and code == 1008
    msgs, code = asyncio.run(exchange(secure.url, start, headers={"Authorization": "Bearer wrong"}))
    assert _errors(msgs) == ["unauthorized"] and code == 1008
    for url, headers in (
        (secure.url + f"?api_key={KEY}", None),
        (secure.url, {"X-API-Key": KEY}),
        (secure.url, {"Authorization": f"Bearer {KEY}"}),
    ):
        msgs, code = asyncio.run(exchange(url, start, headers=headers))
        assert msgs[0]["type"] == "ready" and code == 1000, msgs
    assert httpx.get(secure.http + "/healthz").status_code == 200
    assert httpx.get(secure.http + "/readyz").status_code == 200
    for path in ("/v1/models", "/metrics"):
        r = httpx.get(secure.http + path)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
        assert httpx.get(secure.http + path, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    r = httpx.post(secure.http + "/v1/transcribe", content=_wav(audio(0.2, 0), SR))
    assert r.status_code == 401


def test_origins(secure: Running) -> None:
    auth = {"X-API-Key": KEY}
    msgs, code = asyncio.run(exchange(secure.url, [START, STOP], headers=auth, origin="https://evil.example"))
    assert _errors(msgs) == ["forbidden_origin"] and code == 1008
    msgs, code = asyncio.run(exchange(secure.url, [START, STOP], headers=auth, origin="https://ok.example"))
    assert msgs[0]["type"] == "ready" and code == 1000


def test_max_connections_and_idle_timeout(secure: Running) -> None:
    auth = {"X-API-Key": KEY}

    deadline = time.monotonic() + 5
    while secure.metric("parley_active_streams", auth) != 0:  # earlier tests' connections are being cleaned up
        assert time.monotonic() < deadline
        time.sleep(0.05)

    async def go() -> None:
        t = time.monotonic()
        held = [await connect(secure.url, additional_headers=auth) for _ in range(2)]
        for ws in held:
            await ws.send(json.dumps(START))
            assert json.loads(await ws.recv())["type"] == "ready"
        msgs, code = await exchange(secure.url, [START], headers=auth)
        assert _errors(msgs) == ["server_full"] and code == 1013
        # The held streams say nothing: each gets idle_timeout 1 s after its start, which frees its slot.
        for ws in held:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert msg["code"] == "idle_timeout", msg
            with contextlib.suppress(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1008
        assert 1.0 <= time.monotonic() - t < 5
        msgs, code = await exchange(secure.url, [START, STOP], headers=auth)
        assert msgs[0]["type"] == "ready" and code == 1000

    asyncio.run(go())


def test_endpoints_close_segments_and_transcribe_agrees(secure: Running) -> None:
    x = audio(3.0, 10)
    r = stream(secure.url, x, api_key=KEY)
    assert r.ok, r.error
    finals = r.finals
    assert len(finals) >= 2, "rule 3 (1 s segments) should have closed segments"
    assert [f["segment"] for f in finals] == list(range(len(finals)))
    assert finals[0]["start"] == 0.0 and finals[-1]["end"] == 3.0
    for a, b in itertools.pairwise(finals):
        assert b["start"] == a["end"] and a["text"], (a, b)
        assert a["end"] - a["start"] >= 1.0
    partial_segments = [m.message["segment"] for m in r.received if m.message["type"] == "partial"]
    assert partial_segments == sorted(partial_segments) and len(set(partial_segments)) >= 2
    body = httpx.post(
        secure.http + "/v1/transcribe",
        content=_wav(x, SR),
        headers={"content-type": "audio/wav", "Authorization": f"Bearer {KEY}"},
    )
    assert body.status_code == 200 and body.json()["segments"] == finals
    r = httpx.post(
        secure.http + f"/v1/transcribe?api_key={KEY}",
        content=_wav(audio(8.0, 0), SR),
        headers={"content-type": "audio/wav"},
    )
    assert r.status_code == 413 and r.json()["code"] == "too_big"


def test_a_stream_sets_its_own_endpointing(server: Running, secure: Running) -> None:
    """start's "endpointing": a stream's own times on the server's rules (here rule 3: 1 s segments on a server of
    20 s ones), or off (one segment on a server of 1 s ones); the ready message says the rules in use; POST
    /v1/transcribe takes the same as query parameters."""
    x = audio(3.0, 10)
    auth = {"Authorization": f"Bearer {KEY}"}

    def finals_of(url: str, start: dict, headers: dict | None = None) -> tuple[dict, list[dict]]:
        msgs, code = asyncio.run(exchange(url, [start, *_pieces(x), STOP], headers=headers))
        assert code == 1000 and msgs[0]["type"] == "ready", msgs[:2]
        return msgs[0], [m for m in msgs if m["type"] == "final"]

    ready, finals = finals_of(server.url, {**START, "endpointing": {"max_segment_s": 1.0}})
    assert ready["endpointing"] == {"silence_s": 2.4, "silence_after_speech_s": 1.2, "max_segment_s": 1.0}
    assert len(finals) >= 2 and all(f["end"] - f["start"] >= 1.0 for f in finals[:-1]), finals
    default_ready, default_finals = finals_of(server.url, START)
    assert "endpointing" not in default_ready and len(default_finals) == 1
    ready, off = finals_of(secure.url, {**START, "endpointing": False}, auth)
    assert ready["endpointing"] is False and len(off) == 1 and (off[0]["start"], off[0]["end"]) == (0.0, 3.0)
    assert off[0]["text"].split() == " ".join(f["text"] for f in default_finals).split()

    def post(url: str, query: str, headers: dict | None = None) -> httpx.Response:
        return httpx.post(
            url + "/v1/transcribe" + query,
            content=_wav(x, SR),
            headers={"content-type": "audio/wav", **(headers or {})},
        )

    assert post(server.http, "?max_segment_s=1").json()["segments"] == finals
    assert post(secure.http, "?endpointing=false", auth).json()["segments"] == off
    for query in ("?endpointing=false&max_segment_s=2", "?silence_s=soon", "?endpointing=maybe", "?max_segment_s=0.5"):
        r = post(server.http, query)
        assert r.status_code == 400 and r.json()["code"] == "invalid_value", (query, r.text)


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_partials_say_how_much_of_their_text_is_stable(server: Running, search: str) -> None:
    """A partial's "stable" characters begin every later partial and the final of its segment (an untrained model's
    beam changes its mind often: what it has not settled is left out)."""
    x = audio(4.0, 41)
    r = stream(server.url, x, search=search)
    assert r.ok, r.error
    msgs = [m.message for m in r.received if m.message["type"] in ("partial", "final")]
    partials = [m for m in msgs if m["type"] == "partial"]
    assert partials and all(0 <= m["stable"] <= len(m["text"]) for m in partials)
    changed = 0  # partials whose text a later one of the segment does not begin with: where "stable" matters
    for k, p in enumerate(msgs):
        if p["type"] != "partial":
            continue
        later = [m for m in msgs[k + 1 :] if m["segment"] == p["segment"]]
        assert all(m["text"][: p["stable"]] == p["text"][: p["stable"]] for m in later), (p, later)
        changed += any(not m["text"].startswith(p["text"]) for m in later)
    assert changed > 0 if search == "beam" else changed == 0, changed


def test_alternatives_come_with_beam_search(server: Running) -> None:
    """start's "alternatives": beam search where search is omitted, the ready message says how many, every final
    lists the beam's likeliest transcripts (its own text first); POST /v1/transcribe?alternatives= gives the same."""
    x = audio(2.0, 31)
    msgs, code = asyncio.run(exchange(server.url, [{**START, "alternatives": 2}, *_pieces(x), STOP]))
    assert code == 1000 and msgs[0]["search"] == "beam" and msgs[0]["alternatives"] == 2, msgs[0]
    finals = [m for m in msgs if m["type"] == "final"]
    assert finals
    for f in finals:
        alts = f["alternatives"]
        assert 1 <= len(alts) <= 2 and alts[0]["text"] == f["text"], f
        assert abs(sum(a["confidence"] for a in alts) - 1) <= 0.002 and len({a["text"] for a in alts}) == len(alts)
    assert all("alternatives" not in m for m in msgs if m["type"] == "partial")
    r = httpx.post(
        server.http + "/v1/transcribe?alternatives=2", content=_wav(x, SR), headers={"content-type": "audio/wav"}
    )
    assert r.status_code == 200 and r.json()["segments"] == finals, r.text
    plain = httpx.post(server.http + "/v1/transcribe", content=_wav(x, SR), headers={"content-type": "audio/wav"})
    assert all("alternatives" not in f for f in plain.json()["segments"])


# ---- Loading and shutdown ----


def test_bad_bundles_are_skipped(bundles: Path, tmp_path: Path) -> None:
    good, bad = tmp_path / "a-good", tmp_path / "b-bad"
    shutil.copytree(bundles / "tiny-en", good)
    shutil.copytree(bundles / "tiny-en", bad)
    (bad / "encoder.onnx").write_bytes(b"broken")
    with running(tmp_path) as r:
        assert httpx.get(r.http + "/readyz").status_code == 200
        assert [m["name"] for m in httpx.get(r.http + "/v1/models").json()["models"]] == ["tiny-en"]
    shutil.rmtree(good)
    with running(tmp_path) as r:
        ready = httpx.get(r.http + "/readyz")
        assert ready.status_code == 503 and ready.json() == {"status": "no model loaded"}
        assert httpx.get(r.http + "/healthz").status_code == 200
        msgs, code = asyncio.run(exchange(r.url, [START]))
        assert _errors(msgs) == ["unknown_model"] and code == 1008


def test_shutdown_drains_open_streams(bundles: Path, model: StreamingTransducer) -> None:
    x = audio(1.5, 11)
    r = Running(Settings(bundles=bundles, port=0, intra_op_threads=1, log_level="warning", endpointing=False))

    async def go() -> tuple[StreamResult, tuple[list[dict], int | None], int]:
        open_stream = asyncio.create_task(run_stream(r.url, x, SR, chunk_ms=100, speed=1))
        await asyncio.sleep(0.5)
        r.server.should_exit = True
        deadline = time.monotonic() + 5
        while (ready := await asyncio.to_thread(lambda: httpx.get(r.http + "/readyz").status_code)) != 503:
            assert time.monotonic() < deadline, "/readyz should turn 503 while draining"
            await asyncio.sleep(0.05)
        refused = await exchange(r.url, [START])
        return await open_stream, refused, ready

    try:
        result, (msgs, code), ready = asyncio.run(go())
    finally:
        r.stop()
    assert _errors(msgs) == ["shutting_down"] and code == 1001
    assert ready == 503
    assert result.ok and result.close_code == 1000 and result.text == offline(model, wire(x))


def shut_down_while_streaming(bundles: Path, seconds: float, after: float, **kw) -> StreamResult:
    """A `seconds` long stream, sent in real time to a server over `bundles` (settings `kw`) that is told to shut
    down `after` seconds in: the stream's result."""
    with running(bundles, **kw) as r:

        async def go() -> StreamResult:
            long = asyncio.create_task(run_stream(r.url, audio(seconds, 12), SR, chunk_ms=100, speed=1))
            await asyncio.sleep(after)
            r.server.should_exit = True
            return await long

        return asyncio.run(go())


def test_drain_timeout_ends_streams_with_1001(bundles: Path) -> None:
    result = shut_down_while_streaming(bundles, 5.0, 0.5, drain_timeout_s=0.3)
    assert result.error["code"] == "shutting_down" and result.close_code == 1001


@pytest.mark.parametrize("compression", [False, True])
def test_websocket_compression_only_when_turned_on(bundles: Path, compression: bool) -> None:
    """A client offering permessage-deflate (as browsers and the websockets library do) gets it only from a server
    started with --ws-compression: by default the server does not inflate every audio message."""

    async def extensions(url: str) -> str | None:
        async with connect(url, close_timeout=5) as ws:  # offers permessage-deflate by default
            await ws.send(json.dumps(START))
            assert json.loads(await ws.recv())["type"] == "ready"
            return ws.response.headers.get("Sec-WebSocket-Extensions")

    with running(bundles, ws_compression=compression) as r:
        got = asyncio.run(asyncio.wait_for(extensions(r.url), TIMEOUT))
    assert (got is not None and "permessage-deflate" in got) == compression, got


# ---- Phone calls through the Twilio bridge (clients/twilio.py) ----


def _twilio_call(tracks: dict[str, np.ndarray], call: str = "CA1") -> list[str]:
    """Twilio's events for a call: start, each track's audio as mu-law in 20 ms media events (interleaved as Twilio
    sends them), noise around them (bad JSON, a mark) and stop."""
    import base64

    codes = {t: encode_audio(x, "mulaw") for t, x in tracks.items()}
    events = [
        json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
        json.dumps({
            "event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
            "start": {"callSid": call, "streamSid": "MZ1", "tracks": list(tracks),
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
        }),
        "not json",
    ]  # fmt: skip
    for i in range(0, max(len(c) for c in codes.values()), 160):
        for track, data in codes.items():
            payload = base64.b64encode(data[i : i + 160]).decode()
            events.append(
                json.dumps({"event": "media", "streamSid": "MZ1", "media": {"track": track, "payload": payload}})
            )
        if i == 3200:
            events.append(json.dumps({"event": "mark", "streamSid": "MZ1", "mark": {"name": "x"}}))
    events.append(json.dumps({"event": "stop", "streamSid": "MZ1", "stop": {"callSid": call}}))
    return events


async def _feed(events: list[str], pace_s: float = 0.0):
    """The events as Twilio's socket gives them, each media event `pace_s` after the last (0: at once)."""
    for e in events:
        yield e
        await asyncio.sleep(pace_s if '"media"' in e else 0)


def test_the_twilio_bridge_captions_each_track_of_a_call(server: Running) -> None:
    """Twilio's events for a call of two tracks (caller and callee), through the bridge to the server: each track's
    finals come out with the call's ids, the same text as the track's audio streamed as mu-law directly; noise around
    the events (marks, dtmf, bad JSON) is ignored."""
    from clients import twilio

    caller, callee = audio(1.5, 51, 8000), audio(1.5, 52, 8000)
    events = _twilio_call({"inbound": caller, "outbound": callee})
    out: list[dict] = []
    opts = twilio.Options(url=server.url)
    asyncio.run(asyncio.wait_for(twilio.bridge_call(_feed(events), opts, out.append), TIMEOUT))
    assert out and all(m["call"] == "CA1" and m["stream"] == "MZ1" and m["type"] == "final" for m in out), out
    for track, x in (("inbound", caller), ("outbound", callee)):
        direct = stream(server.url, x, 8000, encoding="mulaw", chunk_ms=20)
        assert [m["text"] for m in out if m["track"] == track] == [f["text"] for f in direct.finals], (track, out)
    bad = twilio.Options(url="ws://127.0.0.1:9/v1/stream", retry=False)
    errors: list[dict] = []
    asyncio.run(asyncio.wait_for(twilio.bridge_call(_feed(events), bad, errors.append), TIMEOUT))
    assert {(m["track"], m["type"], m["code"]) for m in errors} == {
        ("inbound", "error", "connect_failed"),
        ("outbound", "error", "connect_failed"),
    }


def test_the_twilio_bridge_waits_out_a_full_server_and_loses_no_audio(bundles: Path) -> None:
    """The server is full when the call starts: the bridge keeps the call's audio, tries again with backoff, and
    once a slot frees the track's finals are those of the whole track streamed directly."""
    from clients import twilio

    x = audio(1.5, 53, 8000)
    with running(bundles, endpointing=False, max_connections=1) as r:
        direct = stream(r.url, x, 8000, encoding="mulaw", chunk_ms=20)

        async def go() -> list[dict]:
            out: list[dict] = []
            async with connect(r.url) as held:
                await held.send(json.dumps(START))
                assert json.loads(await held.recv())["type"] == "ready"
                call = asyncio.create_task(
                    twilio.bridge_call(_feed(_twilio_call({"inbound": x})), twilio.Options(url=r.url), out.append)
                )
                await asyncio.sleep(0.8)  # the bridge's first tries are refused (server_full)
                assert not call.done()
            await asyncio.wait_for(call, TIMEOUT)
            return out

        out = asyncio.run(go())
    assert [m["type"] for m in out] == ["final"] * len(direct.finals), out
    assert [m["text"] for m in out] == [f["text"] for f in direct.finals] and out[-1]["end"] == pytest.approx(
        1.5, abs=0.05
    )


def test_the_twilio_bridge_carries_a_call_across_a_server_restart(bundles: Path) -> None:
    """A rolling restart in the middle of a call: the server drains (the open segment's final, shutting_down), is down
    for a moment and comes back on the same port. The bridge reopens the stream and resends what the drained
    server's final did not cover, so the finals cover the call end to end on the call's clock, numbered on."""
    from clients import twilio

    x = audio(3.0, 54, 8000)
    settings = {"bundles": bundles, "intra_op_threads": 1, "log_level": "warning", "endpointing": False}
    first = Running(Settings(port=0, drain_timeout_s=0.2, **settings))
    port = first.port
    out: list[dict] = []

    async def go() -> None:
        call = asyncio.create_task(
            twilio.bridge_call(_feed(_twilio_call({"inbound": x}), 0.02), twilio.Options(url=first.url), out.append)
        )
        await asyncio.sleep(1.2)
        await asyncio.to_thread(first.stop)
        await asyncio.sleep(0.5)  # down: the bridge's reconnects fail (connect_failed) and it keeps the audio
        second = await asyncio.to_thread(Running, Settings(port=port, **settings))
        try:
            await asyncio.wait_for(call, TIMEOUT)
        finally:
            await asyncio.to_thread(second.stop)

    asyncio.run(go())
    assert [m["type"] for m in out] == ["final"] * len(out) and len(out) >= 2, out
    assert [m["segment"] for m in out] == list(range(len(out))), out
    assert out[0]["start"] == 0.0 and 0.0 < out[0]["end"] < 2.9, out  # drained mid-call (a loaded machine sends later)
    for a, b in itertools.pairwise(out):
        assert b["start"] == pytest.approx(a["end"], abs=0.001), out  # resumed where the last final ended
    assert out[-1]["end"] == pytest.approx(3.0, abs=0.05), out


# ---- Multichannel streams (start's "channels"; server/multichannel.py) ----


def test_a_stereo_stream_recognizes_each_channel_as_it_would_be_alone(server: Running) -> None:
    """Two talkers, one a channel, interleaved frame by frame: each channel's finals (and partials) come marked with
    their channel, with the text each channel's audio gets as a stream of its own; a finalize closes both channels'
    segments (two finals marked finalized); one end."""
    left, right = audio(1.6, 71), np.concatenate([np.zeros(SR // 4, np.float32), audio(1.35, 72)])
    frames = encode_audio(np.stack([left, right], axis=1).reshape(-1), "s16le")
    half = len(frames) // 2 // 4 * 4  # a whole number of stereo frames
    start = {**START, "channels": 2}
    msgs, code = asyncio.run(exchange(server.url, [start, frames[:half], {"type": "finalize"}, frames[half:], STOP]))
    assert code == 1000 and msgs[0]["type"] == "ready" and msgs[0]["channels"] == 2, msgs[:1]
    assert [m["type"] for m in msgs].count("end") == 1 and msgs[-1]["type"] == "end"
    results = [m for m in msgs if m["type"] in ("partial", "final")]
    assert results and all(m["channel"] in (0, 1) for m in results)
    assert sorted(m["channel"] for m in msgs if m.get("finalized")) == [0, 1]
    for c, x in ((0, left), (1, right)):
        wire_x = encode_audio(x, "s16le")
        sends = [START, wire_x[: half // 2], {"type": "finalize"}, wire_x[half // 2 :], STOP]
        alone, _ = asyncio.run(exchange(server.url, sends))  # the same channel alone, finalized at the same sample
        mine = [m["text"] for m in msgs if m["type"] == "final" and m["channel"] == c]
        assert mine == [m["text"] for m in alone if m["type"] == "final"], c
    mono, _ = asyncio.run(exchange(server.url, [START, frames[:half], STOP]))
    assert all("channel" not in m for m in mono) and "channels" not in mono[0]
    # The client: (C, T) samples go out interleaved with start's channels; `parley stream --multichannel` does it
    # from a stereo WAV file and prints each final with its channel.
    pieces = [frames[i : i + 6400] for i in range(0, len(frames), 6400)]  # 100 ms of stereo s16le each
    plain, _ = asyncio.run(exchange(server.url, [start, *pieces, STOP]))
    want = [(m["channel"], m["text"]) for m in plain if m["type"] == "final"]
    got = stream(server.url, np.stack([left, right]), SR, speed=0)
    assert got.ready["channels"] == 2 and [(m["channel"], m["text"]) for m in got.finals] == want


def test_multichannel_streams_errors_and_slots(secure: Running) -> None:
    """Frames cut inside (an odd sample count in stereo), too many channels; and each channel holds a stream slot:
    on a server of 2 slots a stereo stream leaves none, a 3-channel one does not fit."""
    auth = {"Authorization": f"Bearer {KEY}"}
    stereo = {**START, "channels": 2}
    msgs, code = asyncio.run(exchange(secure.url, [stereo, b"\0\0" * 3], headers=auth))
    assert _errors(msgs) == ["bad_audio"] and "frames of 2" in msgs[-1]["message"] and code == 1003
    msgs, code = asyncio.run(exchange(secure.url, [{**START, "channels": 9}], headers=auth))
    assert _errors(msgs) == ["invalid_value"] and code == 1008
    msgs, code = asyncio.run(exchange(secure.url, [{**START, "channels": 3}], headers=auth))
    assert _errors(msgs) == ["server_full"] and code == 1013, msgs

    async def go() -> tuple[list[dict], int | None]:
        async with connect(secure.url, additional_headers=auth) as held:
            await held.send(json.dumps(stereo))
            assert json.loads(await held.recv())["channels"] == 2
            assert await asyncio.to_thread(secure.metric, "parley_active_streams", auth) == 2  # a stream per channel
            return await exchange(secure.url, [START], headers=auth)

    msgs, code = asyncio.run(go())
    assert _errors(msgs) == ["server_full"] and code == 1013
    deadline = time.monotonic() + 5
    while secure.metric("parley_active_streams", headers=auth) != 0:  # the stereo stream's slots are given back
        assert time.monotonic() < deadline
        time.sleep(0.05)
    msgs, code = asyncio.run(exchange(secure.url, [stereo, STOP], headers=auth))
    assert msgs[0]["type"] == "ready" and code == 1000, msgs
    # POST ?multichannel=true holds a slot per channel too: 3 channels do not fit 2 slots, 2 do.
    for channels, status in ((3, 503), (2, 200)):
        r = httpx.post(
            secure.http + f"/v1/transcribe?sample_rate=16000&encoding=s16le&channels={channels}&multichannel=true",
            content=b"\0\0" * channels * 1600,
            headers={**auth, "content-type": "application/octet-stream"},
        )
        assert r.status_code == status, r.text
        assert status == 200 or r.json()["code"] == "server_full"


def test_each_api_key_has_its_share_of_streams(bundles: Path) -> None:
    """`max_streams_per_key`: a key's open streams (a stereo stream counts twice, an upload once) are refused past
    its share with too_many_streams (1013; HTTP 429) while another key still gets in, and a closed stream frees its
    key's slot."""
    a, b = {"X-API-Key": "tenant-a"}, {"Authorization": "Bearer tenant-b"}
    with running(bundles, api_keys=("tenant-a", "tenant-b"), max_streams_per_key=2, max_connections=10) as srv:
        held = srv.server.service.by_key

        async def settle(n: int) -> None:
            deadline = time.monotonic() + 5
            while held[key_id("tenant-a")] != n:  # a closed stream's slot is given back as its session ends
                assert time.monotonic() < deadline, dict(held)
                await asyncio.sleep(0.02)

        async def go() -> dict:
            seen: dict = {}
            async with connect(srv.url, additional_headers=a) as first:
                await first.send(json.dumps(START))
                assert json.loads(await first.recv())["type"] == "ready"
                async with connect(srv.url + "?api_key=tenant-a") as second:  # the same key, from the query string
                    await second.send(json.dumps(START))
                    assert json.loads(await second.recv())["type"] == "ready"
                    seen["third"] = await exchange(srv.url, [START], headers=a)
                    said = encode_audio(audio(0.5, 1), "s16le")
                    seen["other key"] = await exchange(srv.url, [START, said, STOP], headers=b)
                    seen["streams of a"] = await asyncio.to_thread(
                        srv.metric, f'parley_key_active_streams{{key="{ida}"}}', a
                    )
                    seen["upload"] = await asyncio.to_thread(
                        httpx.post, srv.http + "/v1/transcribe", content=_wav(audio(0.2, 0), SR), headers=a
                    )
                await settle(1)
                seen["stereo, one free"] = await exchange(srv.url, [{**START, "channels": 2}], headers=a)
            await settle(0)
            seen["stereo, two free"] = await exchange(srv.url, [{**START, "channels": 2}, STOP], headers=a)
            return seen

        ida, idb = key_id("tenant-a"), key_id("tenant-b")
        seen = asyncio.run(go())
        audio_b = srv.metric(f'parley_key_audio_seconds_total{{key="{idb}"}}', a)
        exposition = httpx.get(srv.http + "/metrics", headers=a).text
    # usage per key, under a hash of the key (never the key itself)
    assert seen["streams of a"] == 2 and audio_b == pytest.approx(0.5, abs=0.01)
    assert "tenant-a" not in exposition and "tenant-b" not in exposition
    msgs, code = seen["third"]
    assert _errors(msgs) == ["too_many_streams"] and code == 1013 and "2 streams open" in msgs[-1]["message"]
    msgs, code = seen["other key"]
    assert msgs[0]["type"] == "ready" and code == 1000
    assert seen["upload"].status_code == 429 and seen["upload"].json()["code"] == "too_many_streams"
    msgs, code = seen["stereo, one free"]
    assert _errors(msgs) == ["too_many_streams"] and code == 1013 and "2 channels" in msgs[-1]["message"], msgs
    msgs, code = seen["stereo, two free"]
    assert msgs[0]["type"] == "ready" and msgs[0]["channels"] == 2 and code == 1000, msgs


def test_parley_stream_multichannel_sends_a_stereo_file(server: Running, tmp_path: Path, capsys) -> None:
    import wave

    left, right = audio(1.0, 73), audio(1.0, 74)
    with wave.open(str(tmp_path / "call.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(encode_audio(np.stack([left, right], axis=1).reshape(-1), "s16le"))
    assert stream_main([str(tmp_path / "call.wav"), "--url", server.url, "--speed", "0", "--multichannel"]) == 0
    lines = capsys.readouterr().out.splitlines()
    finals = stream(server.url, np.stack([left, right]), SR, speed=0).finals
    assert lines == [f"[C{m['channel'] + 1}] {m['text']}" for m in finals] and {line[:4] for line in lines} == {
        "[C1]",
        "[C2]",
    }
