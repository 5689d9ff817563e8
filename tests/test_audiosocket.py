"""Asterisk's AudioSocket (server/audiosocket.py) and the calls' captions (server/routes_calls.py): frames, then
`parley serve --audiosocket-port` fed as Asterisk feeds it (the UUID, 20 ms frames of 8 kHz audio, a DTMF digit, the
hangup), watched live at `WS /v1/calls/{uuid}` by a watcher that came first and one that came late, read back with
`GET /v1/calls/{uuid}`; a 16 kHz call; the refusals; and a drain that still ends the call's captions."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect

from parley.resample import resample
from server.audiosocket import DTMF, HANGUP, UUID, frame, read_frame
from server.protocol import ProtocolError
from server.settings import Settings
from tests.test_server import Running

ROOT = Path(__file__).resolve().parents[1]


def test_frames_are_read_as_asterisk_writes_them() -> None:
    async def go() -> None:
        r = asyncio.StreamReader()
        r.feed_data(frame(UUID, b"\x01" * 16) + frame(0x10, b"\x00\x01" * 160) + frame(HANGUP))
        r.feed_eof()
        assert await read_frame(r) == (UUID, b"\x01" * 16)
        kind, payload = await read_frame(r)  # type: ignore[misc]
        assert kind == 0x10 and len(payload) == 320
        assert await read_frame(r) == (HANGUP, b"")
        assert await read_frame(r) is None
        cut = asyncio.StreamReader()
        cut.feed_data(frame(0x10, b"\x00" * 320)[:100])
        cut.feed_eof()
        with pytest.raises(ProtocolError):
            await read_frame(cut)

    asyncio.run(go())
    assert frame(HANGUP) == b"\x00\x00\x00"  # the protocol's own example
    with pytest.raises(ValueError):
        frame(0x10, b"\x00" * 70000)


def _en_open_with_audiosocket(**settings: object) -> Running:
    """`parley serve` on en-open with --audiosocket-port (any free port) and `settings`."""
    defaults = {"port": 0, "audiosocket_port": 0, "intra_op_threads": 1, "log_level": "warning"}
    return Running(Settings(bundles=ROOT / "bundles" / "en-open", **{**defaults, **settings}))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Running, int]]:
    r = _en_open_with_audiosocket(drain_timeout_s=0.5)
    try:
        yield r, r.server.config.app.state.audiosocket.port
    finally:
        r.stop()


async def _call(port: int, call: str, x: np.ndarray, rate: int, kind: int = 0x10, hangup: bool = True) -> None:
    """Asterisk's side of a call: the UUID, 20 ms frames of `x` at `rate`, a DTMF 5 in the middle, the hangup."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(frame(UUID, uuid.UUID(call).bytes))
    pcm = (x * 32767).clip(-32768, 32767).astype("<i2").tobytes()
    step = rate // 50 * 2
    for i in range(0, len(pcm), step):
        writer.write(frame(kind, pcm[i : i + step]))
        if i == step * 50:
            writer.write(frame(DTMF, b"5"))
        await writer.drain()
    if hangup:
        writer.write(frame(HANGUP))
        await writer.drain()
    writer.close()


async def _watch(server: Running, call: str) -> list[dict]:
    async with connect(f"ws://127.0.0.1:{server.port}/v1/calls/{call}") as ws:
        return [json.loads(m) async for m in ws]


def test_a_call_is_captioned_for_its_watchers(served: tuple[Running, int], code_speech) -> None:
    r, port = served
    x, rate = code_speech
    phone = resample(np.concatenate([x, np.zeros(rate // 2, np.float32), x]), rate, 8000)
    call = str(uuid.uuid4())

    async def go() -> tuple[list[dict], list[dict]]:
        early = asyncio.create_task(_watch(r, call))  # watching before the call begins
        await asyncio.sleep(0.3)
        await _call(port, call, phone, 8000)
        watched = await asyncio.wait_for(early, 60)
        late = await _watch(r, call)  # after the hangup: the whole call again
        return watched, late

    watched, late = asyncio.run(go())
    assert watched[0] == {"type": "ready", "uuid": call, "model": "en-open", "sample_rate": 8000}
    assert watched[-1] == {"type": "end", "uuid": call}
    finals = [m for m in watched if m["type"] == "final" and m["text"]]
    assert finals and all("123456" in (m.get("display") or m["text"]).replace(" ", "") for m in finals), finals
    assert any(m["type"] == "partial" for m in watched)
    (dtmf,) = [m for m in watched if m["type"] == "dtmf"]
    assert dtmf["digit"] == "5" and dtmf["time"] == pytest.approx(1.0, abs=0.05)  # after 50 frames of 20 ms
    assert [m for m in late if m["type"] == "final" and m["text"]] == finals and late[-1]["type"] == "end"
    state = httpx.get(f"{r.http}/v1/calls/{call}").json()
    assert state["uuid"] == call and not state["ongoing"] and state["finals"] == finals and state["dtmf"] == [dtmf]
    assert "123456" in state["text"].replace(" ", "")
    listed = httpx.get(f"{r.http}/v1/calls").json()["calls"]
    (entry,) = [c for c in listed if c["uuid"] == call]
    assert entry["model"] == "en-open" and not entry["ongoing"] and entry["finals"] >= len(finals)
    assert r.metric('parley_streams_total{model="en-open",protocol="audiosocket"}') >= 1
    assert r.metric("parley_active_streams") == 0


def test_a_wideband_call_and_the_refusals(served: tuple[Running, int], code_speech) -> None:
    r, port = served
    x, rate = code_speech
    x96 = resample(x, rate, 96000)

    async def go(call: str, x: np.ndarray, rate: int, kind: int) -> list[dict]:
        watcher = asyncio.create_task(_watch(r, call))
        await asyncio.sleep(0.3)
        await _call(port, call, x, rate, kind=kind, hangup=False)  # the socket's close is the hangup
        return await asyncio.wait_for(watcher, 60)

    for x_, rate_, kind in ((x, 16000, 0x12), (x96, 96000, 0x17)):  # slin16, slin96
        watched = asyncio.run(go(str(uuid.uuid4()), x_, rate_, kind))
        assert watched[0]["sample_rate"] == rate_ and watched[-1]["type"] == "end"
        assert any("123456" in (m.get("display") or "").replace(" ", "") for m in watched if m["type"] == "final")

    unknown = httpx.get(f"{r.http}/v1/calls/{uuid.uuid4()}")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_call"

    async def audio_first() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(0x10, b"\x00" * 320))  # audio before the UUID: the connection is closed
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)

    assert asyncio.run(audio_first()) == b""  # closed, nothing said back

    async def rate_changes() -> bytes:  # slin8, then slin96 in the same call
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(UUID, uuid.uuid4().bytes) + frame(0x10, b"\x00" * 320) + frame(0x17, b"\x00" * 3840))
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)

    before = r.metric('parley_errors_total{code="bad_audio"}') or 0
    assert asyncio.run(rate_changes()) == b""
    assert r.metric('parley_errors_total{code="bad_audio"}') == before + 1
    assert r.metric("parley_active_streams") == 0


def test_a_draining_server_ends_the_calls_captions(code_speech) -> None:
    x, rate = code_speech
    r = _en_open_with_audiosocket(drain_timeout_s=0.3)
    port = r.server.config.app.state.audiosocket.port
    call = str(uuid.uuid4())
    phone = resample(x, rate, 8000)
    stopped = False
    try:

        async def go() -> tuple[list[dict], bytes]:
            nonlocal stopped
            watcher = asyncio.create_task(_watch(r, call))
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(frame(UUID, uuid.UUID(call).bytes))
            writer.write(frame(0x10, (phone * 32767).astype("<i2").tobytes()[: 320 * 100]))  # 2 s, no hangup
            await writer.drain()
            await asyncio.sleep(0.5)
            await asyncio.to_thread(r.stop)  # SIGTERM's drain
            stopped = True
            return await asyncio.wait_for(watcher, 30), await asyncio.wait_for(reader.read(), 10)

        watched, left = asyncio.run(go())
    finally:
        if not stopped:
            r.stop()
    assert watched[-1]["type"] == "end" and left == b""  # the watcher got the end; Asterisk's socket was closed
    assert [m for m in watched if m["type"] == "final"], watched


def test_a_server_with_keys_needs_the_audiosocket_key() -> None:
    from server.audiosocket import AudioSocketListener, Calls
    from server.service import Service

    async def go() -> None:
        with pytest.raises(ValueError, match="audiosocket_api_key"):
            await AudioSocketListener(Service(Settings(api_keys=("k1",))), Calls()).start("127.0.0.1", 0)
        listener = AudioSocketListener(Service(Settings(api_keys=("k1",), audiosocket_api_key="k1")), Calls())
        await listener.start("127.0.0.1", 0)
        assert listener.port > 0
        await listener.close()

    asyncio.run(go())
    with pytest.raises(ValueError, match="must differ"):
        Settings(port=8000, wyoming_port=9000, audiosocket_port=9000)


def test_a_finished_calls_captions_are_posted_to_the_webhook(code_speech) -> None:
    """--calls-webhook: at the hangup the call's captions are POSTed, signed with --calls-webhook-secret; a receiver
    that fails once (503) gets them on the next try."""
    import hashlib
    import hmac
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got: list[tuple[dict, str, bytes]] = []
    statuses = [503, 200]

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = statuses.pop(0) if statuses else 200
            if status == 200:
                got.append((dict(self.headers), self.headers.get("X-Parley-Signature", ""), body))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    x, rate = code_speech
    r = _en_open_with_audiosocket(
        calls_webhook=f"http://127.0.0.1:{receiver.server_address[1]}/calls", calls_webhook_secret="s3cret"
    )
    call = str(uuid.uuid4())
    try:
        asyncio.run(_call(r.server.config.app.state.audiosocket.port, call, resample(x, rate, 8000), 8000))
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        r.stop()
        receiver.shutdown()
    ((headers, signature, body),) = got
    assert signature == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    posted = json.loads(body)
    assert (
        posted["type"] == "call"
        and posted["uuid"] == call
        and not posted["ongoing"]
        and headers["X-Parley-Call"] == call
    )
    assert "123456" in posted["text"].replace(" ", "") and posted["seconds"] == pytest.approx(len(x) / rate, abs=0.05)


def test_the_page_shows_a_calls_captions(served: tuple[Running, int], code_speech) -> None:
    """`/?call=UUID`: the live-caption page watches an Asterisk call (the screen beside an agent's phone): waiting
    for it, its captions as they come, and the call's end."""
    from tests._chromium import Chromium
    from tests.test_web import FINALS, _require_chromium

    _require_chromium()
    r, port = served
    x, rate = code_speech
    call = str(uuid.uuid4())

    async def go() -> tuple[str, list[str], str]:
        async with Chromium.launch() as browser:
            page = await browser.page()
            await page.navigate(f"{r.http}/?call={call}")
            await page.wait_for("document.body.dataset.state === 'watching'", 15, "the watching")
            waiting = await page.evaluate("document.getElementById('status').textContent")
            await _call(port, call, resample(x, rate, 8000), 8000)
            await page.wait_for("document.body.dataset.state === 'idle'", 30, "the call's end")
            return (
                waiting,
                await page.evaluate(FINALS),
                await page.evaluate("document.getElementById('status').textContent"),
            )

    waiting, finals, status = asyncio.run(go())
    assert waiting == f"Waiting for call {call}…"
    assert any("123456" in f.replace(" ", "") for f in finals), finals
    assert status == f"Call {call} ended."


def test_watchers_waiting_for_a_call_are_all_woken_and_leave_nothing_behind() -> None:
    from server.audiosocket import Calls

    async def go() -> None:
        calls = Calls()
        first = asyncio.create_task(calls.wait("a", 5))
        second = asyncio.create_task(calls.wait("a", 5))
        await asyncio.sleep(0.05)
        opened = calls.open("a")
        assert await asyncio.wait_for(first, 1) is opened and await asyncio.wait_for(second, 1) is opened
        assert await calls.wait("b", 0.05) is None  # timed out
        assert calls._waiting == {}  # no waiter left for either

    asyncio.run(go())


WATCH = """(async () => {
  const { ParleyCall, ParleyError } = await import('/sdk/parley.mjs');
  const partials = [], dtmf = [];
  let ready = null;
  const call = ParleyCall.watch(URL_, {onReady: r => ready = r, onPartial: p => partials.push(p.text),
                                       onDtmf: d => dtmf.push(d.digit)});
  window.parleyWatching = true;
  const finals = await call.ended;
  let refused = null;
  try {
    await ParleyCall.watch(UNKNOWN_).ended;
  } catch (e) {
    refused = {name: e.name, code: e.code, closeCode: e.closeCode, isError: e instanceof ParleyError};
  }
  return {ready, partials: partials.length, dtmf, finals: finals.map(f => f.display || f.text), refused};
})()"""


def test_the_js_client_watches_a_call(code_speech) -> None:
    """clients/js's ParleyCall: watching from before the call begins to its end (ready, partials, DTMF, finals), and
    a call that never comes refused with unknown_call."""
    from tests._chromium import Chromium
    from tests.test_web import _require_chromium

    _require_chromium()
    x, rate = code_speech
    r = _en_open_with_audiosocket(idle_timeout_s=2.0)
    call = str(uuid.uuid4())
    base = f"ws://127.0.0.1:{r.port}/v1/calls/"
    script = WATCH.replace("URL_", json.dumps(base + call)).replace("UNKNOWN_", json.dumps(base + str(uuid.uuid4())))

    async def go() -> dict:
        async with Chromium.launch() as browser:
            page = await browser.page()
            await page.navigate(r.http + "/")
            watching = asyncio.create_task(page.evaluate(script))
            await page.wait_for("window.parleyWatching === true", 15, "the watch")
            await _call(r.server.config.app.state.audiosocket.port, call, resample(x, rate, 8000), 8000)
            return await asyncio.wait_for(watching, 60)

    try:
        out = asyncio.run(go())
    finally:
        r.stop()
    assert out["ready"] == {"type": "ready", "uuid": call, "model": "en-open", "sample_rate": 8000}
    assert out["partials"] > 0 and out["dtmf"] == ["5"]
    assert any("123456" in f.replace(" ", "") for f in out["finals"]), out["finals"]
    assert out["refused"] == {"name": "ParleyError", "code": "unknown_call", "closeCode": 1008, "isError": True}


def test_parley_calls_watches_lists_and_shows(served: tuple[Running, int], code_speech, capsys) -> None:
    """`parley calls watch UUID` (from before the call to its end), `list` and `show`, and a refusal's exit status."""
    import io

    from clients.calls import main, watch

    r, port = served
    x, rate = code_speech
    call = str(uuid.uuid4())
    out = io.StringIO()

    async def go() -> int:
        watching = asyncio.create_task(watch(r.http, call, None, False, out))
        await asyncio.sleep(0.3)
        await _call(port, call, resample(x, rate, 8000), 8000)
        return await asyncio.wait_for(watching, 60)

    assert asyncio.run(go()) == 0
    lines = out.getvalue().splitlines()
    assert "[key 5 at 1.0 s]" in lines and any("123456" in line.replace(" ", "") for line in lines), lines
    capsys.readouterr()
    assert main(["show", call, "--server", r.http]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["uuid"] == call and "123456" in shown["text"].replace(" ", "")
    assert main(["list", "--server", r.http]) == 0 and call in capsys.readouterr().out
    assert main(["show", str(uuid.uuid4()), "--server", r.http]) == 1
    assert "(unknown_call)" in capsys.readouterr().err
