"""The stream and load-test clients against a fake server (the `websockets` package) that speaks protocol version 1:
a partial after every audio message (after a set delay), a final every few messages, and on stop a final and end."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from clients import loadtest
from clients.stream import CaptionPrinter, ChunkSent, Received, StreamResult, run_stream
from clients.stream import main as stream_main
from parley.audio import write_wav
from parley.textnorm import normalize_text, words
from parley.wer import align_counts

TEXT = "hello world"


@dataclass
class Fake:
    """How the fake server behaves; tests change it between calls."""

    delay: float = 0.0  # s before answering each audio message
    final_every: int = 0  # audio messages per final (0: finals only at stop)
    error_after: int | None = None  # send an error after this many audio messages
    send_end: bool = True  # False: close after stop without end (the client should report it)
    refuse: str | None = None  # refuse every stream with this error code right after the handshake, as a server does


class FakeServer:
    """A protocol-1 server in a thread of its own, so that clients can run their own event loops (asyncio.run)."""

    def __init__(self) -> None:
        self.fake = Fake()
        self.starts: list[dict] = []
        self.headers: list[dict] = []
        self.chunk_bytes: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(5), "the fake server did not start"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        self._stop = self._loop.create_future()
        async with serve(self._handler, "127.0.0.1", 0) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(5)

    async def _handler(self, ws) -> None:
        fake = self.fake
        self.headers.append(dict(ws.request.headers))
        if fake.refuse is not None:  # before reading start, as the real server refuses (server_full, unauthorized)
            await ws.send(json.dumps({"type": "error", "code": fake.refuse, "message": f"fake {fake.refuse}"}))
            await ws.close(1013 if fake.refuse == "server_full" else 1008)
            return
        start = json.loads(await ws.recv())
        self.starts.append(start)
        rate = start["sample_rate"]
        await ws.send(json.dumps({"type": "ready", "session": "s", "model": "fake", "chunk_ms": 100}))
        samples = segment = seg_start = chunks = 0
        async for msg in ws:
            if isinstance(msg, bytes):
                self.chunk_bytes.append(len(msg))
                samples += len(msg) // 2
                chunks += 1
                if fake.delay:
                    await asyncio.sleep(fake.delay)
                if fake.error_after is not None and chunks > fake.error_after:
                    await ws.send(json.dumps({"type": "error", "code": "bad_audio", "message": "fake"}))
                    await ws.close(1003)
                    return
                end = samples / rate
                await ws.send(json.dumps({"type": "partial", "segment": segment, "text": "hel", "end": end}))
                if fake.final_every and chunks % fake.final_every == 0:
                    await ws.send(json.dumps(_final(segment, "hello", seg_start, end)))
                    segment, seg_start = segment + 1, end
            elif json.loads(msg)["type"] == "stop":
                await ws.send(json.dumps(_final(segment, TEXT, seg_start, samples / rate)))
                if fake.send_end:
                    await ws.send(json.dumps({"type": "end"}))
                await ws.close(1000)
                return


def _final(segment: int, text: str, start: float, end: float) -> dict:
    return {"type": "final", "segment": segment, "text": text, "start": start, "end": end, "words": []}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    s = FakeServer()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _reset(request) -> None:
    if "server" in request.fixturenames:
        request.getfixturevalue("server").fake = Fake()


def tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_real_time_pacing_and_messages(server: FakeServer) -> None:
    began = time.monotonic()
    r = asyncio.run(run_stream(server.url, tone(0.5), 16000, chunk_ms=100, speed=1.0, model="fake", api_key="k"))
    assert r.ok, r.error
    assert len(r.chunks) == 5 and server.chunk_bytes[-5:] == [3200] * 5
    assert [c.audio_end for c in r.chunks] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    # Chunk k never leaves before its last sample would have been recorded (a loaded machine may send it later,
    # so only the lower bound is asserted: a pacer that sent at once would fail it).
    for c in r.chunks:
        assert c.sent_at - began >= c.audio_end - 0.005, (c.sent_at - began, c.audio_end)
    assert r.text == TEXT and r.close_code == 1000
    assert server.starts[-1] == {
        "type": "start",
        "sample_rate": 16000,
        "encoding": "s16le",
        "partials": True,
        "model": "fake",
    }
    assert server.headers[-1]["authorization"] == "Bearer k"
    assert r.finalization_latency is not None and r.finalization_latency < 1.0


def test_speed_zero_sends_at_once(server: FakeServer) -> None:
    began = time.monotonic()
    r = asyncio.run(run_stream(server.url, tone(8.0, 8000), 8000, chunk_ms=200, speed=0))
    assert r.ok and len(r.chunks) == 40
    # Paced, the last chunk could not leave before 8 s; unpaced it leaves as soon as the connection takes it.
    assert r.chunks[-1].sent_at - began < 4.0
    assert server.starts[-1]["sample_rate"] == 8000


def test_server_error_and_missing_end_are_reported(server: FakeServer) -> None:
    server.fake.error_after = 2
    r = asyncio.run(run_stream(server.url, tone(0.5), 16000, chunk_ms=100, speed=0))
    assert r.error == {"type": "error", "code": "bad_audio", "message": "fake"} and r.close_code == 1003
    server.fake = Fake(send_end=False)
    r = asyncio.run(run_stream(server.url, tone(0.2), 16000, speed=0))
    assert r.error["code"] == "closed" and r.text == TEXT


def test_connect_failure() -> None:
    r = asyncio.run(run_stream("ws://127.0.0.1:9/v1/stream", tone(0.1), 16000, speed=0, open_timeout=2))
    assert r.error["code"] == "connect_failed"


def test_chunk_latency_definition() -> None:
    r = StreamResult(
        chunks=[ChunkSent(10.0, 0.1), ChunkSent(10.1, 0.2), ChunkSent(10.2, 0.3), ChunkSent(10.3, 0.4)],
        received=[
            Received(10.05, {"type": "ready"}),
            Received(10.15, {"type": "partial", "end": 0.1}),  # covers chunk 0 only: 150 ms
            Received(10.22, {"type": "partial", "end": 0.32}),  # chunks 1 and 2 (sent by then): 120, 20 ms
            Received(10.5, {"type": "final", "end": 0.4}),  # chunk 3: 200 ms
        ],
    )
    lat, uncovered = loadtest.chunk_latencies(r)
    assert lat == pytest.approx([0.15, 0.12, 0.02, 0.2]) and uncovered == 0
    # Without "end", the first message after a chunk covers it; nothing after the last chunk leaves it uncovered.
    r.received = [Received(10.12, {"type": "partial"}), Received(10.25, {"type": "partial"})]
    lat, uncovered = loadtest.chunk_latencies(r)
    assert lat == pytest.approx([0.12, 0.02, 0.05]) and uncovered == 1


def test_latency_reflects_server_delay(server: FakeServer) -> None:
    server.fake.delay = 0.05
    r = asyncio.run(run_stream(server.url, tone(0.6), 16000, chunk_ms=100))
    lat, uncovered = loadtest.chunk_latencies(r)
    assert uncovered == 0 and len(lat) == 6
    assert 0.045 < float(np.median(lat)) < 0.3, lat


def test_wer() -> None:
    """loadtest scores with `parley eval`'s normalization (parley.textnorm) and alignment (parley.wer)."""
    assert words(normalize_text("Hello, World! It's well-known.", ""), "") == ["hello", "world", "it's", "well-known"]
    assert words(normalize_text("你好，世界", "zh"), "zh") == ["你", "好", "世", "界"]
    assert align_counts(["a", "b", "c", "d"], ["a", "x", "c"]).errors == 2
    assert align_counts([], ["a", "b"]).errors == 2


def _files(tmp_path: Path) -> tuple[list[str], Path]:
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    write_wav(a, tone(0.3), 16000)
    write_wav(b, tone(0.3, 8000), 8000)
    refs = tmp_path / "refs.jsonl"
    refs.write_text(
        json.dumps({"id": "x1", "audio": "a.wav", "text": "Hello, world.", "language": "en"})
        + "\n"
        + json.dumps({"file": str(b), "text": "good morning"})
        + "\n"
    )
    return [str(a), str(b)], refs


def test_loadtest_json_output(server: FakeServer, tmp_path: Path, capsys) -> None:
    files, refs = _files(tmp_path)
    out = tmp_path / "load.json"
    rc = loadtest.main(
        ["--url", server.url, "--streams", "2", "--files", *files, "--refs", str(refs), "--json", str(out)]
    )
    assert rc == 0
    report = json.loads(out.read_text())
    (level,) = report["levels"]
    assert level["streams"] == 2 and level["files_streamed"] == 2 and level["error_count"] == 0
    assert level["chunks"] == 6 and level["chunks_uncovered"] == 0 and level["audio_seconds"] == pytest.approx(0.6)
    # a.wav is right (2 words), b.wav has both words wrong: 2 errors in 4 words.
    assert level["wer"] == {"rate": 0.5, "errors": 2, "reference_words": 4, "files": 2}
    assert level["latency_ms"]["n"] == 6 and level["latency_ms"]["p50"] <= level["latency_ms"]["p99"]
    assert level["server_cpu_seconds"] is None  # the fake has no /metrics
    assert "streams    2:" in capsys.readouterr().out


def test_loadtest_duration_cycles_files(server: FakeServer, tmp_path: Path) -> None:
    files, _ = _files(tmp_path)
    clips = loadtest.load_clips(files, None)
    opts = loadtest.Options(url=server.url, chunk_ms=100, speed=0, duration=0.3)
    level = asyncio.run(loadtest.run_level(clips, 1, opts))
    assert level["files_streamed"] >= 2 and level["error_count"] == 0 and level["wer"] is None


def test_loadtest_sends_telephone_audio(server: FakeServer, tmp_path: Path) -> None:
    """--encoding mulaw: every stream starts with it and sends one byte a sample (100 ms at 8 kHz: 800 bytes)."""
    files, _ = _files(tmp_path)
    before = len(server.starts)
    assert loadtest.main(["--url", server.url, "--files", files[1], "--speed", "0", "--encoding", "mulaw"]) == 0
    assert [s["encoding"] for s in server.starts[before:]] == ["mulaw"] and server.starts[-1]["sample_rate"] == 8000
    assert server.chunk_bytes[-3:] == [800, 800, 800]


def test_loadtest_streams_ask_for_hotwords(server: FakeServer, tmp_path: Path) -> None:
    """--hotwords: every stream's start carries them (the load of beam search with a hotword graph)."""
    files, _ = _files(tmp_path)
    before = len(server.starts)
    args = ["--url", server.url, "--files", *files, "--speed", "0", "--streams", "2", "--hotwords", "kowalczyk", "a b"]
    assert loadtest.main(args) == 0
    assert [s["hotwords"] for s in server.starts[before:]] == [["kowalczyk", "a b"]] * len(server.starts[before:])
    assert len(server.starts) - before == len(files)
    assert loadtest.main(["--url", server.url, "--files", files[0], "--speed", "0"]) == 0
    assert "hotwords" not in server.starts[-1]


def test_loadtest_sends_stereo_calls(server: FakeServer, tmp_path: Path, capsys) -> None:
    """--channels 2: every stream starts with channels 2 and sends frames of both (100 ms at 8 kHz: 3200 bytes); the
    second channel is the clip rotated by half its length; WER is scored on channel 0."""
    files, _ = _files(tmp_path)
    before = len(server.starts)
    assert loadtest.main(["--url", server.url, "--files", files[1], "--speed", "0", "--channels", "2"]) == 0
    assert [s.get("channels") for s in server.starts[before:]] == [2]
    assert server.chunk_bytes[-2:] == [3200, 3200]
    x = np.arange(6, dtype=np.float32)
    assert loadtest.channel_audio(x, 1) is x
    assert loadtest.channel_audio(x, 2).tolist() == [[0, 1, 2, 3, 4, 5], [3, 4, 5, 0, 1, 2]]
    with pytest.raises(SystemExit):
        loadtest.main(["--url", server.url, "--files", files[1], "--channels", "9"])
    assert "--channels must be 1-8" in capsys.readouterr().err


def test_loadtest_missing_reference(tmp_path: Path, capsys) -> None:
    files, refs = _files(tmp_path)
    other = tmp_path / "c.wav"
    write_wav(other, tone(0.1), 16000)
    assert loadtest.main(["--files", *files, str(other), "--refs", str(refs)]) == 2
    assert "no reference for" in capsys.readouterr().err


def test_ramp_finds_the_most_streams_within_target() -> None:
    ran = []

    async def run(n: int) -> dict:
        ran.append(n)
        return {"streams": n, "error_count": 0, "latency_ms": {"p95": 100.0 * n}}

    levels, best = asyncio.run(loadtest.ramp(run, target_p95_ms=550, max_streams=64))
    assert best == 5 and ran == [1, 2, 4, 8, 6, 5] and [lv["streams"] for lv in levels] == [1, 2, 4, 5, 6, 8]
    ran.clear()
    _, best = asyncio.run(loadtest.ramp(run, target_p95_ms=10_000, max_streams=12))
    assert best == 12 and ran == [1, 2, 4, 8, 12]
    _, best = asyncio.run(loadtest.ramp(run, target_p95_ms=50))
    assert best == 0


def test_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    levels = [{"streams": n, "latency_ms": {"p50": 10.0 * n, "p95": 20.0 * n, "p99": 30.0 * n}} for n in (1, 2, 4)]
    loadtest.plot(levels, str(tmp_path / "p.png"), 50)
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stream_command(server: FakeServer, tmp_path: Path, capsys) -> None:
    files, _ = _files(tmp_path)
    assert stream_main([files[0], "--url", server.url, "--speed", "0", "--json"]) == 0
    kinds = [json.loads(line)["type"] for line in capsys.readouterr().out.splitlines()]
    assert kinds[0] == "ready" and kinds[-2:] == ["final", "end"] and "partial" in kinds
    assert stream_main([str(tmp_path / "missing.wav"), "--url", server.url]) == 2


def test_caption_printer_rewrites_partials_in_place() -> None:
    out = io.StringIO()
    show = CaptionPrinter(out, live=True)
    for msg in ({"type": "partial", "text": "hel"}, {"type": "partial", "text": "hello"}, _final(0, "hello.", 0, 1)):
        show(msg)
    assert out.getvalue() == "\r\x1b[Khel\r\x1b[Khello\r\x1b[Khello.\n"
    quiet = io.StringIO()
    show = CaptionPrinter(quiet, live=False)
    show({"type": "partial", "text": "hel"})
    show(_final(0, "hello.", 0, 1))
    assert quiet.getvalue() == "hello.\n"
    # a final with display (punctuated, numbers in digits) is printed as the display
    shown = io.StringIO()
    CaptionPrinter(shown, live=False)({**_final(0, "it costs five dollars", 0, 1), "display": "It costs $5."})
    assert shown.getvalue() == "It costs $5.\n"


def test_server_side_latency_percentiles_come_from_histogram_deltas() -> None:
    def scrape(counts: dict[str, int]) -> str:
        lines = ["# TYPE parley_chunk_latency_seconds histogram"]
        for model in ("a", "b"):
            lines += [
                f'parley_chunk_latency_seconds_bucket{{model="{model}",le="{le}"}} {c}' for le, c in counts.items()
            ]
        return "\n".join(lines)

    before = loadtest.parse_histogram(scrape({"0.1": 10, "0.2": 10, "+Inf": 10}), loadtest.SERVER_LATENCY)
    assert before == {0.1: 20.0, 0.2: 20.0, float("inf"): 20.0}
    # 100 new observations per model: 50 in (0, 0.1], 50 in (0.1, 0.2].
    after = loadtest.parse_histogram(scrape({"0.1": 60, "0.2": 110, "+Inf": 110}), loadtest.SERVER_LATENCY)
    p = loadtest.histogram_percentiles_ms(before, after)
    assert p["n"] == 200 and p["p50"] == pytest.approx(100.0) and p["p95"] == pytest.approx(190.0)
    assert loadtest.histogram_percentiles_ms(after, after) is None


@pytest.fixture
def start_after_close(monkeypatch) -> None:
    """The client's start goes out only once the server has closed: the race a refusing server usually wins (it
    sends its error and closes as soon as it accepts), made certain."""
    from websockets.asyncio.client import ClientConnection

    send = ClientConnection.send

    async def late(self, message, *args, **kwargs):
        if isinstance(message, str) and json.loads(message).get("type") == "start":
            await asyncio.wait_for(self.wait_closed(), 5)
        return await send(self, message, *args, **kwargs)

    monkeypatch.setattr(ClientConnection, "send", late)


def test_refused_stream_reports_the_servers_error(
    server: FakeServer, start_after_close: None, tmp_path: Path, capsys
) -> None:
    server.fake.refuse = "server_full"
    r = asyncio.run(run_stream(server.url, tone(0.2), 16000, speed=0))
    assert r.error == {"type": "error", "code": "server_full", "message": "fake server_full"}, r.error
    assert r.close_code == 1013 and r.ready is None and not r.chunks
    files, _ = _files(tmp_path)
    assert stream_main([files[0], "--url", server.url, "--speed", "0"]) == 1
    assert "error server_full: fake server_full" in capsys.readouterr().err


def test_loadtest_stops_on_a_refusal_and_backs_off_when_full(server: FakeServer, tmp_path: Path) -> None:
    """With --duration, a refused stream is not retried in a tight loop: a refusal that would only repeat
    (unauthorized) ends the stream's worker, server_full is retried with exponential backoff; both are counted."""
    files, _ = _files(tmp_path)
    clips = loadtest.load_clips(files, None)
    opts = loadtest.Options(url=server.url, chunk_ms=100, speed=0, duration=1.0)
    server.fake.refuse = "unauthorized"
    level = asyncio.run(loadtest.run_level(clips, 2, opts))
    # One try per worker: a worker that retried until --duration ran out would have streamed hundreds.
    assert level["errors"] == {"unauthorized": 2} and level["files_streamed"] == 2, level
    server.fake.refuse = "server_full"
    level = asyncio.run(loadtest.run_level(clips, 1, opts))
    # 0.1 + 0.2 + 0.4 s of backoff fit in 1 s: 4 or 5 tries, not hundreds.
    assert level["errors"] == {"server_full": level["files_streamed"]} and 3 <= level["files_streamed"] <= 6, level


def test_ramp_exit_status(server: FakeServer, tmp_path: Path) -> None:
    """--ramp fails (1) when no level passed, or when a level could not connect or was not authorized."""
    files, _ = _files(tmp_path)
    ramp = ["--files", files[0], "--ramp", "--duration", "0.2", "--speed", "0", "--max-streams", "2"]
    assert loadtest.main(["--url", "ws://127.0.0.1:9/v1/stream", *ramp]) == 1  # nothing listening
    server.fake.refuse = "unauthorized"
    assert loadtest.main(["--url", server.url, *ramp]) == 1
    server.fake = Fake()
    assert loadtest.main(["--url", server.url, *ramp, "--target-p95-ms", "60000"]) == 0


def test_server_latency_beyond_the_last_bucket_is_unbounded_and_fails_the_level() -> None:
    def scrape(le_counts: dict[str, int]) -> dict[float, float]:
        text = "\n".join(f'parley_chunk_latency_seconds_bucket{{le="{le}"}} {c}' for le, c in le_counts.items())
        return loadtest.parse_histogram(text, loadtest.SERVER_LATENCY)

    before = scrape({"1.0": 0, "5.0": 0, "+Inf": 0})
    after = scrape({"1.0": 90, "5.0": 90, "+Inf": 100})  # 10 observations over 5 s
    p = loadtest.histogram_percentiles_ms(before, after)
    assert p["p50"] == pytest.approx(555.6, abs=0.1) and p["p95"] == float("inf") and p["p99"] == float("inf"), p
    assert p["beyond_ms"] == 5000.0
    level = {
        "streams": 1,
        "latency_ms": {"p50": 100.0, "p95": 200.0, "p99": 300.0},
        "server_latency_ms": p,
        "finalization_ms": None,
        "wer": None,
        "errors": {},
        "error_count": 0,
        "server_cpu_cores": None,
    }
    assert not loadtest.level_ok(level, target_p95_ms=6000), "a p95 over 5 s cannot pass a 6 s target"
    assert "server-side p50 556 p95 > 5000 p99 > 5000 ms" in loadtest.describe(level)
    # The JSON report stays strict JSON: an unbounded percentile is null there, next to the bound it lies beyond.
    written = json.loads(json.dumps(loadtest.json_ready({"levels": [level]}), allow_nan=False))
    assert written["levels"][0]["server_latency_ms"]["p95"] is None
    assert written["levels"][0]["server_latency_ms"]["beyond_ms"] == 5000.0
