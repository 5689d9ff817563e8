"""What no client can do to the server: get a traceback (`internal`), make it echo a value in full, hold a slot or a
connection without sending audio or reading answers, lose another stream's last final at shutdown, or see API keys
in the logs.

Against the tiny random bundle (tests/conftest.py), on a real uvicorn in a thread (tests/test_server.py's `running`).
The fuzz test sends a fast subset of random messages by default and 10,000 under the `slow` marker, as does the
disconnect test (1,000 abrupt drops: the active-streams gauge back to 0, RSS and open files flat):

    .venv/bin/python -m pytest tests/test_hardening.py -m slow -s    # prints the figures
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import random
import socket
import struct
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from clients.stream import encode_audio, run_stream
from parley.audio import decode_pcm, read_wav
from server.batcher import Batcher, BatcherConfig, Stream
from server.frontend import Frontend
from server.plan import HeadPlan
from server.protocol import (
    ERROR_CLOSE_CODES,
    MAX_ERROR_CHARS,
    ProtocolError,
    ProtocolState,
    parse_text_message,
)
from server.serve import RedactingFilter, redact
from server.service import Service
from server.session import Session
from server.settings import Settings
from tests.test_batcher import SPEC as BATCHER_SPEC
from tests.test_batcher import Counter, GatedRecognizer
from tests.test_server import SR, START, STOP, Running, _errors, audio, exchange, running, shut_down_while_streaming

# ---- Pure: the protocol's answers to hostile values ----


def _error(text: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as e:
        ProtocolState().on_text(text) if text.startswith("{") else parse_text_message(text)
    return e.value


def test_deep_json_is_bad_json() -> None:
    for depth in (1000, 5000, 100_000):
        e = _error("[" * depth + "]" * depth)
        assert e.code == "bad_json" and len(e.message) <= MAX_ERROR_CHARS, e
    # Deep but parseable: the value shown in the error is not serialized in full (nor recursively without bound).
    deep = '{"type": "start", "sample_rate": ' + "[" * 900 + "]" * 900 + ', "encoding": "s16le"}'
    e = _error(deep)
    assert e.code == "invalid_value" and len(e.message) <= MAX_ERROR_CHARS, e


@pytest.mark.parametrize(
    ("rate", "code"),
    [("9" * 400, "unsupported_rate"), ("-" + "9" * 400, "unsupported_rate"), ("1e400", "invalid_value"),
     ("16000.5", "invalid_value"), ("9" * 5000, "bad_json"), ("NaN", "invalid_value"), ("true", "invalid_value")],
)  # fmt: skip
def test_absurd_sample_rates(rate: str, code: str) -> None:
    e = _error(f'{{"type": "start", "sample_rate": {rate}, "encoding": "s16le"}}')
    assert e.code == code and len(e.message) <= MAX_ERROR_CHARS, e


def test_errors_do_not_echo_values_in_full() -> None:
    big = [f"x{i}" for i in range(50_000)]
    cases = [
        {"type": "start", "sample_rate": SR, "encoding": "s16le", **{f"f{i}": 1 for i in range(50_000)}},
        {"type": "start", "sample_rate": SR, "encoding": "x" * 500_000},
        {"type": "start", "sample_rate": SR, "encoding": "s16le", "translate": big + big},
        {"type": "start", "sample_rate": SR, "encoding": "s16le", "search": big},
        {"type": "stop", **{f"f{i}": 1 for i in range(50_000)}},
        {"type": big},
        {"type": "start", "sample_rate": SR, "encoding": "\ud800" * 100},  # JSON's lone surrogates are not UTF-8
    ]
    for msg in cases:
        with pytest.raises(ProtocolError) as e:
            parse_text_message(json.dumps(msg))
        assert len(e.value.message) <= MAX_ERROR_CHARS, (e.value.code, len(e.value.message))
        e.value.message.encode("utf-8")  # sendable
    assert len(ProtocolError("invalid_value", "x" * 10**6).message) == MAX_ERROR_CHARS


def test_f32_samples_near_the_float_limit_are_clipped() -> None:
    x = np.array([3.4e38, -3.4e38, 1.5, -1.0, 0.25, 1e-45], dtype="<f4")
    y = decode_pcm(x.tobytes(), "f32le")
    assert y.dtype == np.float32 and np.array_equal(y, np.clip(x, -1, 1))


def test_bad_wav_messages_show_no_object_address() -> None:
    for body in (b"", b"RIFF", b"RIFF\x00\x00\x00\x00WAVE" + os.urandom(64), os.urandom(1000)):
        with pytest.raises(ValueError) as e:
            read_wav(io.BytesIO(body))
        assert "0x" not in str(e.value) and "object at" not in str(e.value), str(e.value)


def test_redact_hides_api_keys_and_cuts_long_paths() -> None:
    assert redact("/v1/stream?api_key=s3cret&model=x") == "/v1/stream?api_key=***&model=x"
    assert redact("/v1/models?a=1&api%5Fkey=s3cret") == "/v1/models?a=1&api%5Fkey=***"
    assert redact("/v1/models?%61pi_key=s3cret") == "/v1/models?%61pi_key=***"
    assert redact("/x?api_key") == "/x?api_key"
    assert len(redact("/" + "a" * 100_000)) == 512
    record = logging.LogRecord("uvicorn.access", 20, "", 0, '%s - "%s %s"', ("1.2.3.4", "GET", "/?api_key=k"), None)
    assert RedactingFilter().filter(record) and "k" not in record.getMessage().split("api_key=")[1]


# ---- Sessions that a client cannot hold open ----


class _DeafClient:
    """A WebSocket whose client sends `messages`, then nothing, and reads only the first `reads` messages: later
    sends, and the close, never complete (its TCP window is full)."""

    def __init__(self, messages: list[dict], reads: int) -> None:
        self.headers: dict[str, str] = {}
        self.query_params: dict[str, str] = {}
        self._messages = iter(messages)
        self._reads = reads

    async def accept(self, subprotocol: str | None = None) -> None:
        pass

    async def receive(self) -> dict:
        with contextlib.suppress(StopIteration):
            return next(self._messages)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send_text(self, text: str) -> None:
        if self._reads <= 0:
            await asyncio.Event().wait()
        self._reads -= 1

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        await asyncio.Event().wait()


@pytest.mark.parametrize("reads", [0, 3])
def test_a_client_that_stops_reading_frees_its_slot(tiny_bundles: Path, reads: int) -> None:
    """The reader waits for room in the stream's queue, the writer on a send the client never takes: the session
    still ends, within about idle_timeout_s, and gives its slot back."""
    settings = Settings(bundles=tiny_bundles, intra_op_threads=1, idle_timeout_s=0.5, queue_chunks=2)
    chunk = encode_audio(audio(0.1, 1), "s16le")
    messages = [{"type": "websocket.receive", "text": json.dumps(START)}]
    messages += [{"type": "websocket.receive", "bytes": chunk} for _ in range(100)]

    async def go() -> None:
        svc = Service(settings)
        await svc.start()
        try:
            session = Session(svc, _DeafClient(messages, reads))  # type: ignore[arg-type]
            await asyncio.wait_for(session.run(), 10)
            assert svc.connections == 0 and not svc.sessions
            assert sum(e.open_streams for e in svc.engines.values()) == 0
        finally:
            await svc.stop()

    asyncio.run(go())


def test_idle_timeout_counts_audio_not_messages(tiny_bundles: Path) -> None:
    """1 s idle timeout; a client sends one sample every 50 ms: 20 messages a second, 1/800 of real time."""
    with running(tiny_bundles, idle_timeout_s=1.0) as r:

        async def go() -> tuple[list[dict], float]:
            t = time.monotonic()
            msgs = []
            async with connect(r.url) as ws:
                await ws.send(json.dumps(START))
                msgs.append(json.loads(await ws.recv()))
                with contextlib.suppress(ConnectionClosed):
                    while time.monotonic() - t < 6:
                        await ws.send(b"\x01\x00")
                        with contextlib.suppress(TimeoutError):
                            msgs.append(json.loads(await asyncio.wait_for(ws.recv(), 0.05)))
            return msgs, time.monotonic() - t

        msgs, took = asyncio.run(go())
        assert _errors(msgs) == ["idle_timeout"] and took < 4, (msgs[-1], took)

        # Real-time audio, in 100 ms messages, keeps the stream open well past the timeout.
        x = audio(2.5, 3)
        result = asyncio.run(run_stream(r.url, x, SR, chunk_ms=100, speed=1))
        assert result.ok and result.close_code == 1000, result.error


def test_shutdown_gives_the_open_segment_its_final(tiny_bundles: Path) -> None:
    """A drain of 0 s, in the middle of a 6 s utterance (endpointing off: one open segment)."""
    result = shut_down_while_streaming(tiny_bundles, 6.0, 1.5, drain_timeout_s=0.0, endpointing=False)
    assert result.error is not None and result.error["code"] == "shutting_down" and result.close_code == 1001
    kinds = [m.message["type"] for m in result.received]
    assert kinds[-2:] == ["final", "error"], kinds
    final = result.finals[-1]
    assert final["segment"] == 0 and 1.0 <= final["end"] <= 3.0, final


class _GatedEngine:
    """An engine of tests/test_batcher.py's stand-in recognizer, whose steps wait for `gate`: what a session needs
    of `server.engine.Engine`, and nothing of a model."""

    name = "gated"
    chunk_ms = 100

    def __init__(self, queue_chunks: int) -> None:
        self.recognizer = GatedRecognizer()
        self.batcher = Batcher(self.recognizer, BatcherConfig(queue_chunks=queue_chunks), name=self.name)

    def plan(self, language: str | None, translate: Sequence[str], languages: Sequence[str]) -> HeadPlan:
        return HeadPlan()

    def search_for(self, search: str | None, adaptation: object, alternatives: int = 0, plan: object = None) -> str:
        return "greedy"

    def defaulted(self, plan: HeadPlan, search: str, adaptation: object) -> object:
        return adaptation

    def check_redaction(self, plan: HeadPlan, asked: bool = True) -> None:
        pass

    def open_stream(
        self, sample_rate: int, search: str, partials: bool, plan: HeadPlan, *_: object, **__: object
    ) -> Stream:
        return self.batcher.open(Counter("s"), Frontend(BATCHER_SPEC, sample_rate))

    async def close(self) -> None:
        await self.batcher.close()


class _Client:
    """A WebSocket whose client sends `messages`, then waits; it reads what is sent (`sent`), except that the
    first send never completes when `stall_first` (the client is slow to take `ready`)."""

    def __init__(self, messages: list[dict], stall_first: bool = False) -> None:
        self._messages: asyncio.Queue[dict] = asyncio.Queue()
        for m in messages:
            self._messages.put_nowait(m)
        self._stall = stall_first
        self.sent: list[dict] = []
        self.close_code: int | None = None
        self.headers: dict[str, str] = {}  # no API key
        self.query_params: dict[str, str] = {}

    async def accept(self, subprotocol: str | None = None) -> None:
        pass

    async def receive(self) -> dict:
        return await self._messages.get()

    async def send_text(self, text: str) -> None:
        if self._stall:
            self._stall = False
            await asyncio.Event().wait()
        self.sent.append(json.loads(text))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.close_code = code


async def _gated_service(tmp_path: Path, queue_chunks: int = 8) -> tuple[Service, _GatedEngine]:
    svc = Service(Settings(bundles=tmp_path))
    engine = _GatedEngine(queue_chunks)
    await engine.batcher.start()
    svc.engines[engine.name] = engine  # type: ignore[assignment]
    svc.default_model = engine.name
    return svc, engine


def test_a_drain_while_stop_waits_for_room_still_sends_the_final(tmp_path: Path) -> None:
    """The client sent its audio and stop; the reader waits inside `stop` for room in the stream's queue when the
    server drains (and cancels the reader): the rest of the audio is decoded, the final, end and close 1000 follow."""
    pcm = encode_audio(audio(0.2, 1), "s16le")  # 2 chunks fill the queue; stop's tail padding makes a third
    messages = [{"type": "websocket.receive", "text": json.dumps(START)}, {"type": "websocket.receive", "bytes": pcm}]
    messages.append({"type": "websocket.receive", "text": STOP})

    async def go() -> _Client:
        svc, engine = await _gated_service(tmp_path, queue_chunks=2)
        try:
            client = _Client(messages)
            session = Session(svc, client)  # type: ignore[arg-type]
            running = asyncio.create_task(session.run())
            async with asyncio.timeout(5):  # a session that failed to start would never get there
                while not (session.stream is not None and session.stream.stopped):
                    await asyncio.sleep(0.001)
            draining = asyncio.create_task(svc.drain(0.0))
            await asyncio.sleep(0.1)  # the drain cancels the reader, still waiting for room: the steps are held
            engine.recognizer.gate.set()
            await asyncio.wait_for(asyncio.gather(running, draining), 3)
            return client
        finally:
            await svc.stop()

    client = asyncio.run(go())
    kinds = [m["type"] for m in client.sent]
    assert kinds[-2:] == ["final", "end"] and client.close_code == 1000, (client.sent, client.close_code)
    assert client.sent[-2]["text"] == f"s:{kinds.count('partial')}" and client.sent[-2]["end"] == pytest.approx(0.2)


def test_a_drain_while_ready_is_sent_ends_at_once(tmp_path: Path) -> None:
    """The drain comes while the client is slow to take `ready`: no audio came, so there is no final to wait for."""
    messages = [{"type": "websocket.receive", "text": json.dumps(START)}]

    async def go() -> tuple[_Client, float]:
        svc, engine = await _gated_service(tmp_path)
        engine.recognizer.gate.set()  # nothing to hold here
        try:
            client = _Client(messages, stall_first=True)
            session = Session(svc, client)  # type: ignore[arg-type]
            running = asyncio.create_task(session.run())
            async with asyncio.timeout(5):  # a session that failed to start would never get there
                while session.stream is None:
                    await asyncio.sleep(0.001)
            t = time.monotonic()
            await asyncio.wait_for(asyncio.gather(running, svc.drain(0.0)), 10)
            return client, time.monotonic() - t
        finally:
            await svc.stop()

    client, took = asyncio.run(go())
    assert [m.get("code") for m in client.sent] == ["shutting_down"] and client.close_code == 1001, client.sent
    assert took < 3.0, f"the drain took {took:.1f} s"  # at once, not after a wait for audio that never comes


# ---- HTTP: headers, keys, status codes ----


@pytest.fixture(scope="module")
def strict(tiny_bundles: Path):
    """0.5 s to send the headers, 8 KiB of them at most; access logs on."""
    settings = Settings(bundles=tiny_bundles, port=0, intra_op_threads=1, log_level="info", header_timeout_s=0.5,
                        max_header_bytes=8192, max_message_bytes=65536)  # fmt: skip
    r = Running(settings)
    try:
        yield r
    finally:
        r.stop()


def _closed_within(port: int, seconds: float, send: bytes = b"", trickle: bytes = b"") -> float | None:
    """Opens a connection, sends `send`, then one byte of `trickle` every 0.1 s; seconds until the server closed
    it (None: still open after `seconds`)."""
    t = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(send)
        s.settimeout(0.1)
        rest = iter(trickle)
        while time.monotonic() - t < seconds:
            try:
                if not s.recv(65536):
                    return time.monotonic() - t
            except TimeoutError:
                byte = next(rest, None)
                with contextlib.suppress(OSError):
                    if byte is not None:
                        s.sendall(bytes([byte]))
            except OSError:
                return time.monotonic() - t
    return None


def test_header_deadline_and_size(strict: Running) -> None:
    silent = _closed_within(strict.port, 5)
    assert silent is not None and silent < 2, silent
    slow = _closed_within(strict.port, 5, b"GET /healthz HTTP/1.1\r\n", b"X-Slow: " + b"a" * 100)
    assert slow is not None and slow < 2, slow
    with socket.create_connection(("127.0.0.1", strict.port), timeout=5) as s:
        with contextlib.suppress(OSError):  # the server may close before it has read everything
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
        with contextlib.suppress(OSError):
            assert s.recv(100).split(b" ")[1].startswith(b"4")
    # Keep-alive: the second request's headers get their own deadline, and ordinary requests still work.
    with httpx.Client() as c:
        assert c.get(strict.http + "/healthz").status_code == 200
        time.sleep(0.2)
        assert c.get(strict.http + "/healthz").status_code == 200
    msgs, code = asyncio.run(exchange(strict.url, [START, STOP]))
    assert msgs[0]["type"] == "ready" and code == 1000, "a WebSocket outlives the header deadline"


@pytest.fixture(scope="module")
def uploads(tiny_bundles: Path):
    """POST bodies must keep arriving: no pause over 0.5 s, 1000 bytes a second on average after the first 0.5 s."""
    r = Running(
        Settings(bundles=tiny_bundles, port=0, intra_op_threads=1, idle_timeout_s=0.5, min_upload_bytes_per_s=1000)
    )
    try:
        yield r
    finally:
        r.stop()


def _post_paced(
    port: int, body: bytes, pieces: Sequence[tuple[int, float]], limit_s: float = 6.0
) -> tuple[int, dict, float]:
    """POSTs raw PCM to /v1/transcribe, its `body` sent as `pieces` of (bytes, seconds to wait after them); the rest
    never sent. Returns the response's status, its JSON and the seconds from the first byte to the response."""
    head = (
        "POST /v1/transcribe?sample_rate=16000&encoding=s16le HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    t = time.monotonic()
    reply = b""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head.encode())
        s.setblocking(False)
        sent, plan = 0, list(pieces)
        while time.monotonic() - t < limit_s:
            if plan and time.monotonic() >= t:
                n, wait = plan.pop(0)
                with contextlib.suppress(OSError):
                    s.sendall(body[sent : sent + n])
                sent += n
                t_next = time.monotonic() + wait
            else:
                t_next = time.monotonic() + 0.05
            while time.monotonic() < t_next:
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    time.sleep(0.01)
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                reply += chunk
            if reply and b"\r\n\r\n" in reply:
                head_part, _, rest = reply.partition(b"\r\n\r\n")
                length = int(
                    next(x.split(b":")[1] for x in head_part.split(b"\r\n") if x.lower().startswith(b"content-length"))
                )
                if len(rest) >= length:
                    return int(head_part.split(b" ")[1]), json.loads(rest[:length]), time.monotonic() - t
    raise AssertionError(f"no response within {limit_s} s: {reply[:200]!r}")


def test_an_upload_that_stops_or_crawls_is_answered_408_and_a_steady_slow_one_is_not(uploads: Running) -> None:
    body = (np.sin(np.arange(8000) / 9) * 8000).astype("<i2").tobytes()  # 0.5 s of audio, 16,000 bytes
    # Stops after 100 bytes: answered once the 0.5 s pause has passed.
    status, reply, took = _post_paced(uploads.port, body, [(100, 5.0)])
    assert (status, reply["code"]) == (408, "idle_timeout") and 0.4 < took < 2, (status, reply, took)
    assert "100 bytes" in reply["message"], reply
    # A byte every 0.1 s: never a long pause, but 10 bytes/s against the 1000 required.
    status, reply, took = _post_paced(uploads.port, body, [(1, 0.1)] * 60)
    assert (status, reply["code"]) == (408, "idle_timeout") and took < 2, (status, reply, took)
    # 2000 bytes/s in pieces 0.25 s apart for 8 s would pass; 8 s is long for a test: 4000 bytes/s for 4 s.
    status, reply, took = _post_paced(uploads.port, body, [(1000, 0.25)] * 16, limit_s=15)
    assert status == 200 and took > 3.5, (status, reply, took)
    assert reply["duration"] == pytest.approx(0.5), reply


def test_api_keys_in_queries_are_not_logged(strict: Running) -> None:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Keep()
    loggers = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        httpx.get(strict.http + "/v1/models?api_key=TOPSECRET1")
        asyncio.run(exchange(strict.url + "?api_key=TOPSECRET2", [START, STOP]))
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    text = "\n".join(lines)
    assert "/v1/models?api_key=***" in text and "/v1/stream?api_key=***" in text, text
    assert "TOPSECRET" not in text, text


@pytest.mark.parametrize(
    ("query", "content_type", "body", "status", "code"),
    [
        ("?sample_rate=" + "9" * 400, "application/octet-stream", b"\0\0", 400, "unsupported_rate"),
        ("?sample_rate=" + "9" * 5000, "application/octet-stream", b"\0\0", 400, "invalid_value"),
        ("?sample_rate=16000&encoding=f32le", "application/octet-stream", struct.pack("<4f", 3.4e38, -3.4e38, 1, 0),
         200, None),
        ("", "audio/wav", b"RIFF" + bytes(range(40)), 400, "bad_audio"),
        ("", "audio/" + "x" * 5000, b"", 415, "unsupported_encoding"),
    ],
)  # fmt: skip
def test_transcribe_hostile_requests(strict: Running, query, content_type, body, status, code) -> None:
    r = httpx.post(strict.http + "/v1/transcribe" + query, content=body, headers={"content-type": content_type})
    assert r.status_code == status, r.text
    if code is not None:
        msg = r.json()["message"]
        assert r.json()["code"] == code and len(msg) <= MAX_ERROR_CHARS and "0x" not in msg, msg


def test_huge_content_length_is_too_big_not_internal(strict: Running) -> None:
    with socket.create_connection(("127.0.0.1", strict.port), timeout=5) as s:
        s.sendall(
            b"POST /v1/transcribe HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: "
            + b"9" * 400
            + b"\r\n\r\n"
        )
        head = s.recv(200)
    assert head.split(b" ")[1] in (b"400", b"413"), head


def test_unsupported_options_are_not_echoed_in_full(strict: Running) -> None:
    names = [f"l{i}" for i in range(5000)]  # 40 KB of JSON, under the 64 KiB message limit
    for field in ("languages", "translate"):
        msgs, code = asyncio.run(exchange(strict.url, [{**START, field: names}]))
        assert _errors(msgs) == ["unsupported_option"] and code == 1008, msgs
        assert len(msgs[-1]["message"]) <= MAX_ERROR_CHARS, len(msgs[-1]["message"])


def test_stream_of_f32_samples_at_the_float_limit(strict: Running) -> None:
    x = np.tile(np.array([3.4e38, -3.4e38], dtype="<f4"), SR // 2)
    start = {**START, "encoding": "f32le"}
    msgs, code = asyncio.run(exchange(strict.url, [start, x.tobytes(), STOP]))
    assert code == 1000 and msgs[-1]["type"] == "end" and not _errors(msgs), msgs


# ---- Fuzz ----


def _random_json(rng: random.Random, depth: int = 0):
    r = rng.random()
    if depth > 3 or r < 0.35:
        return rng.choice([
            None, True, False, 0, -1, 16000, 48000.0, 16000.5, 10**400, -(10**400), 1e308, -0.0, float("nan"),
            float("inf"), "", "s16le", "f32le", "mulaw", "alaw", "start", "stop", "finalize", "auto", "greedy", "beam",
            "\u0000", "\ud800",
            "x" * rng.choice([1, 129, 100_000]), "é" * 300, rng.random(),
        ])  # fmt: skip
    if r < 0.45:
        return [_random_json(rng, depth + 1) for _ in range(rng.choice([0, 1, 3]))]
    if r < 0.5:  # long and flat
        return [rng.choice([0, "de", None, 1.5]) for _ in range(rng.choice([100, 3000]))]
    keys = ["type", "sample_rate", "encoding", "model", "partials", "search", "language", "translate", "languages"]
    keys += ["endpointing", "alternatives", "silence_s", "silence_after_speech_s", "max_segment_s"]
    return {rng.choice([*keys, "x", "", "é"]): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 6))}


def _text_message(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.25:
        start = dict(START)
        fields = [*start, "model", "search", "language", "translate", "languages", "endpointing", "alternatives", "x"]
        for _ in range(rng.randint(1, 3)):
            start[rng.choice(fields)] = _random_json(rng)
        return json.dumps(start)
    if r < 0.35:
        n = rng.choice([10, 999, 1001, 5000, 200_000])
        return rng.choice(["[", '{"a":', "[{"]) * n
    if r < 0.45:
        return rng.choice(
            [
                "",
                "{",
                "null",
                "[]",
                '"start"',
                "{}",
                '{"type": "stop", "x": 1}',
                "\x00" * 10,
                "é",
                '{"type": "finalize"}',
            ]
        )
    if r < 0.5:
        return json.dumps({"type": "start", "sample_rate": SR, "encoding": "s16le", **{str(i): i for i in range(9999)}})
    return json.dumps(_random_json(rng), allow_nan=True)


def _binary_message(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.3:
        return os.urandom(rng.choice([0, 1, 2, 3, 5, 640, 3200, 70_000]))
    if r < 0.6:
        values = [3.4e38, -3.4e38, 3.4028235e38, 1e-45, float("nan"), float("inf"), 0.0, 1.0, -1.0, 2.0]
        return np.array([rng.choice(values) for _ in range(rng.choice([1, 160, 1600]))], dtype="<f4").tobytes()
    return encode_audio(np.array([rng.uniform(-1, 1) for _ in range(rng.choice([1, 160, 1600]))]), "s16le")


async def _fuzz_connection(url: str, rng: random.Random) -> tuple[int, list[dict], int | None]:
    """One connection: maybe a start (valid or not), some random messages, maybe a stop; reads until the close."""
    sends: list[str | bytes] = []
    if rng.random() < 0.7:
        sends.append(json.dumps({**START, "encoding": rng.choice(["s16le", "f32le", "mulaw", "alaw"])}))
    for _ in range(rng.randint(0, 4)):
        r = rng.random()
        sends.append(FINALIZE if r < 0.15 else _text_message(rng) if r < 0.55 else _binary_message(rng))
    if rng.random() < 0.5:
        sends.append(STOP)
    msgs: list[dict] = []
    try:
        async with connect(url, max_size=None, close_timeout=2, open_timeout=10) as ws:
            for m in sends:
                try:
                    await ws.send(m)
                except ConnectionClosed:
                    break
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                while True:
                    msgs.append(json.loads(await asyncio.wait_for(ws.recv(), 0.5)))
        code = ws.close_code
    except (InvalidHandshake, InvalidStatus, OSError):
        code = None
    return len(sends), msgs, code


EXTRA_KEYS = ["alternatives", "endpointing", "silence_s", "max_segment_s", "talkers"]
FINALIZE = json.dumps({"type": "finalize"})


async def _fuzz_http(base: str, rng: random.Random, client: httpx.AsyncClient) -> int:
    keys = ["sample_rate", "encoding", "model", "search", "language", "languages", "translate", "x", *EXTRA_KEYS]
    values = ["16000", "9" * 400, "-1", "f32le", "s16le", "mulaw", "x" * 300, "", "auto", "de,de", "%00", "1e9"]
    query = "&".join(f"{rng.choice(keys)}={rng.choice(values)}" for _ in range(rng.randint(0, 4)))
    kind = rng.choice(["audio/wav", "application/octet-stream", "text/plain", "audio/wav; x=1", ""])
    r = await client.post(f"{base}/v1/transcribe?{query}", content=_binary_message(rng), headers={"content-type": kind})
    return r.status_code


def _fuzz(server: Running, messages: int, seed: int) -> dict:
    """Sends at least `messages` random WebSocket messages and HTTP requests; returns what came back."""
    rng = random.Random(seed)
    errors: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.append(record)

    keep = Keep(level=logging.ERROR)
    loggers = [logging.getLogger(n) for n in ("parley", "uvicorn.error")]
    for lg in loggers:
        lg.addHandler(keep)
    sent, codes, statuses, server_messages = 0, set(), set(), []

    async def go() -> None:
        nonlocal sent
        async with httpx.AsyncClient(timeout=30) as client:
            while sent < messages:
                jobs = [_fuzz_connection(server.url, random.Random(rng.random())) for _ in range(6)]
                for n, msgs, code in await asyncio.gather(*jobs):
                    sent += n
                    codes.add(code)
                    server_messages.extend(msgs)
                for status in await asyncio.gather(*(_fuzz_http(server.http, rng, client) for _ in range(2))):
                    sent += 1
                    statuses.add(status)

    try:
        asyncio.run(go())
    finally:
        for lg in loggers:
            lg.removeHandler(keep)
    bad = [m for m in server_messages if m.get("type") == "error" and (
        m["code"] not in ERROR_CLOSE_CODES or m["code"] == "internal" or len(m["message"]) > MAX_ERROR_CHARS
        or "0x" in m["message"] or "Traceback" in m["message"])]  # fmt: skip
    assert not bad, bad[:5]
    assert 500 not in statuses, statuses
    assert not errors, [(r.name, r.getMessage(), r.exc_info) for r in errors[:3]]
    assert server.metric('parley_errors_total{code="internal"}') in (None, 0.0)
    assert httpx.get(server.http + "/healthz").status_code == 200
    deadline = time.monotonic() + 10
    while server.metric("parley_active_streams") != 0:
        assert time.monotonic() < deadline, "fuzzed connections still hold slots"
        time.sleep(0.05)
    codes.discard(None)
    return {"sent": sent, "close_codes": sorted(codes), "http_statuses": sorted(statuses)}


@pytest.fixture(scope="module")
def fuzzed(tiny_bundles: Path):
    with running(tiny_bundles, max_message_bytes=65536, idle_timeout_s=2.0) as r:
        yield r


def test_fuzz_fast(fuzzed: Running) -> None:
    _fuzz(fuzzed, 200, seed=1)


@pytest.mark.slow
def test_fuzz_10000_messages(fuzzed: Running) -> None:
    t = time.monotonic()
    figures = _fuzz(fuzzed, 10_000, seed=2)
    print(f"fuzz: {figures} in {time.monotonic() - t:.0f} s")


# ---- 1,000 abrupt drops ----


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _drop(url: str, chunk: bytes) -> None:
    ws = await connect(url)
    await ws.send(json.dumps(START))
    await ws.recv()
    for _ in range(3):
        await ws.send(chunk)
    ws.transport.abort()  # no close handshake, no stop: the TCP connection just drops


def _drops(server: Running, n: int, chunk: bytes) -> None:
    async def go() -> None:
        for i in range(0, n, 20):
            await asyncio.gather(*(_drop(server.url, chunk) for _ in range(min(20, n - i))))

    asyncio.run(go())
    deadline = time.monotonic() + 20
    while server.metric("parley_active_streams") != 0:
        assert time.monotonic() < deadline, f"{server.metric('parley_active_streams')} dropped streams still open"
        time.sleep(0.05)


@pytest.mark.slow
def test_1000_abrupt_drops_leak_nothing(tiny_bundles: Path) -> None:
    chunk = encode_audio(audio(0.2, 5), "s16le")
    with running(tiny_bundles) as r:
        _drops(r, 100, chunk)  # warm-up: thread pools, allocator arenas, caches
        time.sleep(1.0)
        rss, files = _rss_kb(), _open_files()
        t = time.monotonic()
        _drops(r, 1000, chunk)
        took = time.monotonic() - t
        time.sleep(1.0)
        rss_after, files_after = _rss_kb(), _open_files()
        gauge = r.metric("parley_active_streams")
        print(
            f"1000 drops in {took:.1f} s: active streams {gauge:g}; RSS {rss / 1024:.1f} -> {rss_after / 1024:.1f} MiB;"
            f" open files {files} -> {files_after}"
        )
        assert gauge == 0
        assert files_after - files <= 5, (files, files_after)
        assert rss_after - rss < 40 * 1024, (rss, rss_after)
