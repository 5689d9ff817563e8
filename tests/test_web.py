"""The live-caption page (clients/web) end to end: a real server, headless Chromium, a WAV file as the microphone.

Chromium's fake media stream plays the WAV file as the microphone, once (`--use-file-for-fake-audio-capture=FILE
%noloop`); the page captures it through its AudioWorklet (downsampled to 16 kHz there), streams it over
/v1/stream and shows the captions. With the committed English bundle (bundles/en-small) the file is a sentence
spoken by espeak-ng and the page must show its words. Without it, a tiny random bundle's captions are checked
against the server's own transcript, from POST /v1/transcribe, of exactly the audio the page sent (read from the
browser's WebSocket frames through the DevTools protocol). A screenshot of the page is saved as a PNG.

Chromium is Debian's `chromium` (bash .ci/system-deps installs it), driven by tests/_chromium.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import re
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI, WebSocket
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from parley.audio import write_wav
from server.routes_ops import WEB_DIR
from server.settings import Settings
from tests._chromium import INSTALL_HINT, Chromium, Page, find_chromium
from tests.test_export import SR, synthetic_audio
from tests.test_server import Running

ROOT = Path(__file__).resolve().parents[1]
EN_SMALL = ROOT / "bundles" / "en-small"
SENTENCE = "set a timer for ten minutes"  # from the grammar's timer_set template
LEAD_S, TAIL_S = 0.6, 1.2  # silence around the speech: capture starts a moment after the device opens

# Records every caption element the page ever shows, whatever happens to it later (partials are short-lived).
WATCH = """(() => {
  window.__seen = {partial: 0, final: 0, partialTexts: [], settled: []};
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) {
      if (!(n instanceof HTMLElement) || !n.classList.contains('caption')) continue;
      if (n.classList.contains('partial')) {
        __seen.partial++;
        __seen.partialTexts.push(n.textContent);
        __seen.settled.push([...n.querySelectorAll('.settled')].map((e) => e.textContent).join(' '));
      }
      if (n.classList.contains('final')) __seen.final++;
    }
  }).observe(document.getElementById('captions'), {childList: true});
  return true;
})()"""
FINALS = "[...document.querySelectorAll('#captions .caption.final .words')].map(e => e.textContent)"


def _require_chromium() -> None:
    if find_chromium() is None:
        pytest.fail(f"Chromium is needed for the page's end-to-end tests: {INSTALL_HINT}")


@pytest.fixture(scope="module")
def server(tiny_bundles: Path) -> Iterator[tuple[Running, bool]]:
    """The server the page talks to, and whether it runs the trained English bundle."""
    trained = (EN_SMALL / "bundle.json").is_file()
    bundles = EN_SMALL.parent if trained else tiny_bundles
    settings = Settings(
        bundles=bundles,
        default_model="en-small" if trained else None,
        port=0,
        intra_op_threads=1,
        log_level="warning",
    )
    r = Running(settings)
    try:
        yield r, trained
    finally:
        r.stop()


def _microphone_wav(folder: Path, trained: bool) -> tuple[Path, float]:
    """The fake microphone's recording (padded with silence) and its duration in seconds."""
    if trained:
        from models.data.espeak import synthesize

        speech = synthesize(SENTENCE, voice="en-us")
        x, rate = speech.samples, speech.sample_rate
    else:
        x, rate = synthetic_audio(3.0, 0), SR
    x = np.concatenate([np.zeros(round(LEAD_S * rate)), x, np.zeros(round(TAIL_S * rate))]).astype(np.float32)
    path = folder / "microphone.wav"
    write_wav(path, x, rate)
    return path, x.size / rate


def _sent_audio(page: Page) -> bytes:
    """The s16le audio the page sent over its WebSocket, in order (binary frames have opcode 2)."""
    return b"".join(base64.b64decode(f["payloadData"]) for f in page.websocket_frames(sent=True) if f["opcode"] == 2)


async def _listening(page: Page, url: str) -> None:
    """Opens the page at `url`, waits for its model list, presses Start and waits for the stream to be ready."""
    await page.navigate(url)
    await page.wait_for("document.body.dataset.state === 'idle'", 15, "the model list")
    await page.click("#toggle")
    await page.wait_for("document.body.dataset.state === 'listening'", 15, "the stream to be ready")


def _sent_json(page: Page) -> list[dict]:
    return [json.loads(f["payloadData"]) for f in page.websocket_frames(sent=True) if f["opcode"] == 1]


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w' ]", " ", text.lower()).split()


def test_page_and_assets_are_served_and_packaged(server: tuple[Running, bool]) -> None:
    r, _ = server
    page = httpx.get(r.http + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>Parley · live captions</title>" in page.text and 'role="log"' in page.text
    for name, kind in (("app.js", "javascript"), ("worklet.js", "javascript"), ("style.css", "text/css")):
        asset = httpx.get(f"{r.http}/static/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"], (name, asset.headers)
        assert asset.content == (WEB_DIR / name).read_bytes()
    assert httpx.get(r.http + "/static/nope.js").status_code == 404
    # Every file of the page ships in the package (pip install . copies only what package-data names).
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["clients"]
    shipped = {p.name for pattern in patterns for p in (ROOT / "clients").glob(pattern)}
    assert shipped == {p.name for p in WEB_DIR.iterdir()}, "pyproject's package-data misses files of clients/web"


def test_captions_from_a_fake_microphone(server: tuple[Running, bool], tmp_path: Path) -> None:
    """The whole path: fake microphone -> worklet -> WebSocket -> partial captions -> finals after Stop."""
    _require_chromium()
    r, trained = server
    wav, seconds = _microphone_wav(tmp_path, trained)

    async def go() -> tuple[dict, list[str], bytes, list[dict], Path, list[dict]]:
        async with Chromium.launch(fake_audio=wav) as browser:
            page = await browser.page()
            await page.navigate(r.http + "/")
            await page.wait_for("document.body.dataset.state === 'idle'", 15, "the model list")
            await page.evaluate(WATCH)
            await page.click("#toggle")
            await page.wait_for("document.body.dataset.state === 'listening'", 15, "the stream to be ready")
            # The whole recording (and the silence after it) goes out in real time; then the user stops.
            while len(_sent_audio(page)) < (seconds + 0.3) * 2 * SR:
                await asyncio.sleep(0.2)
                assert await page.evaluate("document.body.dataset.state") == "listening"
            await page.click("#toggle")
            await page.wait_for("document.body.dataset.state === 'idle'", 15, "the last finals after Stop")
            seen = await page.evaluate("window.__seen")
            finals = await page.evaluate(FINALS)
            shot = await page.screenshot(tmp_path / "parley-web-captions.png")
            received = [json.loads(f["payloadData"]) for f in page.websocket_frames(sent=False)]
            return seen, finals, _sent_audio(page), received, shot, _sent_json(page)

    seen, finals, sent, received, shot, sent_json = asyncio.run(go())
    print(f"\nscreenshot of the page: {shot}")
    assert shot.stat().st_size > 10_000
    start = sent_json[0]
    assert start["type"] == "start" and start["sample_rate"] == SR and start["encoding"] == "s16le", start
    assert sent_json[-1] == {"type": "stop"} and received[-1] == {"type": "end"}
    assert [m["type"] for m in received].count("error") == 0, received
    # The page shows each partial as it changes, then the final in its place.
    server_partials = [m for m in received if m["type"] == "partial"]
    server_finals = [m for m in received if m["type"] == "final" and m["text"]]
    assert server_partials and seen["partial"] >= 1, (seen, server_partials[:3])
    # each partial's settled words (its "stable" characters) are shown as plain text, the rest greyed
    assert seen["settled"] == [m["text"][: m["stable"]].strip() for m in server_partials], (seen, server_partials)
    assert any(seen["settled"]), seen
    # finals show the punctuated, cased display text where the model has a punctuation model (en-small does)
    assert finals == [m.get("display", m["text"]) for m in server_finals] and seen["final"] == len(finals)
    assert finals, "no caption at all"
    # The server's own transcript of the very audio the page sent matches the page.
    body = httpx.post(
        r.http + "/v1/transcribe?sample_rate=16000&encoding=s16le",
        content=sent,
        headers={"content-type": "application/octet-stream"},
    ).json()
    assert " ".join(finals) == body.get("display", body["text"]), (finals, body)
    # And the words on the page are the ones spoken (one error in six at most).
    if trained:
        from parley.wer import wer

        heard = " ".join(_words(" ".join(finals)))
        assert wer([SENTENCE], [heard]) <= 0.2, f"expected {SENTENCE!r} on the page, got {finals}"


def test_end_line_finalizes_the_open_caption(server: tuple[Running, bool], tmp_path: Path) -> None:
    """End line (the protocol's finalize) while listening: the page sends finalize between its audio frames, the
    server's final comes back marked finalized and the caption line is closed; the stream goes on to Stop. The
    button is off when nothing is listening."""
    _require_chromium()
    r, _ = server
    wav, _ = _microphone_wav(tmp_path, False)

    async def go() -> tuple[list[dict], list[dict], bool, bool]:
        async with Chromium.launch(fake_audio=wav) as browser:
            page = await browser.page()
            await page.navigate(r.http + "/")
            await page.wait_for("document.body.dataset.state === 'idle'", 15, "the model list")
            idle_off = await page.evaluate("document.getElementById('finalize').disabled")
            await page.click("#toggle")
            await page.wait_for("document.body.dataset.state === 'listening'", 15, "the stream to be ready")
            while len(_sent_audio(page)) < 1.0 * 2 * SR:
                await asyncio.sleep(0.1)
            await page.click("#finalize")
            while len(_sent_audio(page)) < 1.6 * 2 * SR:
                await asyncio.sleep(0.1)
            listening_on = not await page.evaluate("document.getElementById('finalize').disabled")
            await page.click("#toggle")
            await page.wait_for("document.body.dataset.state === 'idle'", 15, "the last finals after Stop")
            received = [json.loads(f["payloadData"]) for f in page.websocket_frames(sent=False)]
            return _sent_json(page), received, idle_off, listening_on

    sent, received, idle_off, listening_on = asyncio.run(go())
    assert idle_off and listening_on
    assert [m["type"] for m in sent] == ["start", "finalize", "stop"], sent
    finals = [m for m in received if m["type"] == "final"]
    marked = [m for m in finals if m.get("finalized")]
    assert len(marked) == 1 and 0.9 <= marked[0]["end"] <= 1.7, marked
    assert received[-1] == {"type": "end"} and not [m for m in received if m["type"] == "error"]
    assert finals[-1]["start"] >= marked[0]["end"] and finals[-1]["segment"] > marked[0]["segment"]


def test_worklet_resampler_filters_before_decimating(server: tuple[Running, bool]) -> None:
    """The worklet's resampler, run in the browser: speech band kept, everything that would alias removed."""
    _require_chromium()
    r, _ = server
    probe = """(async () => {
      const src = await (await fetch('static/worklet.js')).text();
      const make = new Function('AudioWorkletProcessor', 'registerProcessor', 'sampleRate',
                                src + '; return SincResampler;');
      const SincResampler = make(class {}, () => {}, 48000);
      const gain = (inRate, hz) => {
        const rs = new SincResampler(inRate, 16000), out = [];
        const n = inRate;  // 1 s, fed in render quanta of 128 samples
        for (let i = 0; i < n; i += 128) {
          const q = new Float32Array(Math.min(128, n - i));
          for (let j = 0; j < q.length; j++) q[j] = Math.sin(2 * Math.PI * hz * (i + j) / inRate);
          rs.push(q, (y) => out.push(y));
        }
        const mid = out.slice(2000, 14000);  // away from the edges
        return [out.length, Math.sqrt(mid.reduce((a, y) => a + y * y, 0) / mid.length) * Math.SQRT2];
      };
      const result = {};
      for (const inRate of [48000, 44100, 96000])
        result[inRate] = [300, 1000, 3000, 7000, 9000, 12000, 15000].map((hz) => [hz, ...gain(inRate, hz)]);
      return result;
    })()"""

    async def go() -> dict:
        async with Chromium.launch() as browser:
            page = await browser.page()
            await page.navigate(r.http + "/")
            return await page.evaluate(probe)

    result = asyncio.run(go())
    for rate, rows in result.items():
        for hz, n, gain in rows:
            assert abs(n - 16000) <= 80, f"{rate} Hz in: {n} samples out for 1 s"
            if hz <= 7000:
                assert abs(gain - 1) < 0.01, f"{rate} Hz in: {hz} Hz passes with gain {gain:.4f}, expected 1"
            else:  # 9 kHz and above would fold back into 0-8 kHz
                assert gain < 10 ** (-60 / 20), f"{rate} Hz in: {hz} Hz leaks through at {20 * np.log10(gain):.1f} dB"


def test_messages_for_a_denied_or_missing_microphone_and_server_errors(
    server: tuple[Running, bool], tmp_path: Path
) -> None:
    _require_chromium()
    r, _ = server
    wav, _ = _microphone_wav(tmp_path, False)
    deny = """navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('no', '%s')); true"""
    error_text = "document.getElementById('error').hidden ? '' : document.getElementById('error').textContent"

    async def go() -> dict[str, tuple[str, str]]:
        shown = {}
        async with Chromium.launch(fake_audio=wav) as browser:
            page = await browser.page()
            for name in ("NotAllowedError", "NotFoundError"):
                await page.navigate(r.http + "/")
                await page.wait_for("document.body.dataset.state === 'idle'", 15, "the model list")
                await page.evaluate(deny % name)
                await page.click("#toggle")
                shown[name] = (await page.wait_for(error_text, 5, f"the {name} message"), "")
            # A model the server does not have: the server's error message is shown and nothing reconnects.
            await page.navigate(r.http + "/")
            await page.wait_for("document.body.dataset.state === 'idle'", 15, "the model list")
            await page.evaluate("document.getElementById('model').add(new Option('nope', 'nope', true, true)); 1")
            await page.click("#toggle")
            text = await page.wait_for(error_text, 10, "the server's error")
            await page.wait_for("document.body.dataset.state === 'idle'", 5, "the page to stop")
            shown["unknown_model"] = (text, await page.evaluate("document.getElementById('status').textContent"))
        return shown

    shown = asyncio.run(go())
    assert "Microphone access was denied" in shown["NotAllowedError"][0], shown
    assert "No microphone was found" in shown["NotFoundError"][0], shown
    text, _ = shown["unknown_model"]
    assert "unknown_model" in text and "'nope'" in text, shown


def test_lost_connection_reconnects(tiny_bundles: Path, tmp_path: Path) -> None:
    """The server goes away mid-stream and comes back on the same port: the page says so, retries, resumes."""
    _require_chromium()
    wav, _ = _microphone_wav(tmp_path, False)
    settings = Settings(bundles=tiny_bundles, port=0, intra_op_threads=1, log_level="warning", drain_timeout_s=0)
    first = Running(settings)
    port = first.port
    second: list[Running] = []

    async def go() -> tuple[str, str, str]:
        async with Chromium.launch(fake_audio=wav) as browser:
            page = await browser.page()
            await _listening(page, first.http + "/")
            await asyncio.to_thread(first.stop)  # drains for 0 s: the stream ends with shutting_down (1001)
            lost = await page.wait_for(
                "document.body.dataset.state === 'reconnecting' && document.getElementById('status').textContent",
                10,
                "the page to notice",
            )
            error = await page.evaluate("document.getElementById('error').textContent")
            second.append(await asyncio.to_thread(Running, dataclasses.replace(settings, port=port)))
            await page.wait_for("document.body.dataset.state === 'listening'", 20, "the page to reconnect")
            await page.click("#toggle")
            await page.wait_for("document.body.dataset.state === 'idle'", 10, "the stop")
            return lost, error, await page.evaluate("document.getElementById('status').textContent")

    try:
        lost, error, stopped = asyncio.run(go())
    finally:
        for s in second:
            s.stop()
    assert "Connection lost" in lost and "Reconnecting in" in lost, lost
    assert "shutting down" in error, error
    assert stopped == "Stopped.", stopped


# ---- Fields of later protocol versions: translations and speakers, against a stand-in server ----

STUB_MODELS = {
    "default": "sm2",
    "models": [
        {"name": "en", "languages": ["en"], "translate": [], "chunk_ms": 320, "search": ["greedy"]},
        {"name": "sm2", "languages": ["en", "de", "fr"], "translate": ["en", "de", "fr"], "auto": ["en", "de", "fr"],
         "chunk_ms": 320, "search": ["greedy"], "talkers": True},
    ],
}  # fmt: skip
STUB_PARTIAL = {"type": "partial", "segment": 0, "text": "hallo wie", "start": 0.0, "end": 0.64, "language": "de",
                "translations": {"fr": "bonjour comment"}}  # fmt: skip
STUB_FINAL = {
    "type": "final", "segment": 0, "text": "hallo wie geht es", "start": 0.0, "end": 1.5,
    "words": [{"word": "hallo", "start": 0.1, "end": 0.4, "speaker": 0, "talker": 2},
              {"word": "wie", "start": 0.5, "end": 0.6, "speaker": 1, "talker": 0},
              {"word": "geht", "start": 0.7, "end": 0.9, "speaker": 1, "talker": 0},
              {"word": "es", "start": 1.0, "end": 1.1, "speaker": 1, "talker": 0}],
    "language": "de", "translations": {"fr": "bonjour comment ça va"}, "talkers": [2, 0],
}  # fmt: skip
# A segment whose caption is empty but whose translation is not (docs/protocol.md): the translation still shows.
STUB_FINAL_2 = {"type": "final", "segment": 1, "text": "", "start": 1.5, "end": 2.0, "words": [], "language": "de",
                "translations": {"fr": "oui"}}  # fmt: skip


def _page_app() -> FastAPI:
    """A stand-in server's page and model list (STUB_MODELS); each test adds its own /v1/stream."""
    app = FastAPI()
    app.mount("/static", StaticFiles(directory=WEB_DIR))

    @app.get("/")
    async def page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    @app.get("/v1/models")
    async def models() -> dict:
        return STUB_MODELS

    return app


def _serve(app: FastAPI) -> Iterator[str]:
    """Runs `app` on a free port in a thread; yields its http:// address."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def _stand_in(starts: list[dict], texts: list[dict] | None = None) -> Iterator[str]:
    """A server with the page and a multilingual, multi-talker model: STUB_PARTIAL answers the first audio,
    STUB_FINAL the stop; every text message after the start goes to `texts`."""
    app = _page_app()

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        starts.append(json.loads(await ws.receive_text()))
        await ws.send_json({"type": "ready", "protocol": 1, "session": "stub", "model": "sm2", "chunk_ms": 320})
        answered = False
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("bytes") and not answered:
                answered = True
                await ws.send_json(STUB_PARTIAL)
            elif msg.get("text"):
                if texts is not None:
                    texts.append(json.loads(msg["text"]))
                if json.loads(msg["text"]).get("type") != "stop":
                    continue
                await ws.send_json(STUB_FINAL)  # stop: the finals, then end
                await ws.send_json(STUB_FINAL_2)
                await ws.send_json({"type": "end"})
                await ws.close(1000)
                return

    yield from _serve(app)


def test_display_tokens_line_up_with_the_words_they_write(server: tuple[Running, bool]) -> None:
    """A final whose display writes several words as one ("$5.50", server/itn.py) keeps each token on its words,
    so talker colours and the like still apply; a display that is not of the words is not lined up."""
    _require_chromium()
    r, _ = server
    probe = """(async () => {
      const src = await (await fetch('static/app.js')).text();
      const align = new Function(src.match(/function alignDisplay[\\s\\S]*?\\n}\\n/)[0] + '; return alignDisplay;')();
      const words = (t) => t.split(' ').map((w, i) => ({word: w, talker: i}));
      const run = (shown, said) => {
        const out = align(shown.split(' '), words(said));
        return out && [out[0], out[1].map((w) => w.talker)];
      };
      return [
        run('It costs $5.50 at 10:30 a.m. today.', 'it costs five dollars and fifty cents at ten thirty a m today'),
        run('Hello there, how are you?', 'hello how are you'),
        run('The code is [redacted].', 'the code is [redacted]'),
      ];
    })()"""

    async def go() -> list:
        async with Chromium.launch() as browser:
            page = await browser.page()
            await page.navigate(r.http + "/")
            return await page.evaluate(probe)

    money, extra, redacted = asyncio.run(go())
    assert money == [["It", "costs", "$5.50", "at", "10:30", "a.m.", "today."], [0, 1, 2, 7, 8, 8, 12]]
    assert extra is None, "'there' is no recognized word: the display is shown whole"
    assert redacted == [["The", "code", "is", "[redacted]."], [0, 1, 2, 3]]


def test_translations_languages_and_speakers(tmp_path: Path) -> None:
    """The page's choices follow the model (GET /v1/models) and reach the start message; captions show their
    detected language, translations show in their column, words take their speaker's color."""
    _require_chromium()
    wav, _ = _microphone_wav(tmp_path, False)
    starts: list[dict] = []
    snapshot = """(() => ({
      languages: document.getElementById('language-field').hidden ? null
                 : [...document.getElementById('language').options].map(o => o.value),
      targets: document.getElementById('translate-field').hidden ? null
               : [...document.querySelectorAll('#translate input')].map(b => [b.value, b.checked]),
      column: !document.getElementById('translations-column').hidden,
      partialTranslation: document.querySelector('.translation.partial [lang=fr]')?.textContent,
      finalTranslations: [...document.querySelectorAll('.translation.final [lang=fr]')].map(p => p.textContent),
      captions: [...document.querySelectorAll('#captions .caption')].map(p => [p.lang, p.textContent]),
      speakers: [...document.querySelectorAll('#captions .caption.final .words span')].map(s => s.className),
      legend: [...document.querySelectorAll('#speakers span')].map(s => s.textContent),
      talkers: document.getElementById('talkers-field').hidden ? null : document.getElementById('talkers').checked,
    }))()"""
    retype = "(() => { const h = document.getElementById('hotwords'); h.value = ' okonkwo ,, zentrix labs';"
    retype += " h.dispatchEvent(new Event('change')); return true; })()"
    choose = "(() => { const m = document.getElementById('model'); m.value = '%s';"
    choose += " m.dispatchEvent(new Event('change')); return true; })()"

    async def go(http: str) -> tuple[dict, dict, dict, Path]:
        async with Chromium.launch(fake_audio=wav) as browser:
            page = await browser.page()
            await page.navigate(
                http + "/?translate=fr&languages=de,fr&talkers=1&redact=1&numerals=0&hotwords=kowalczyk,zentrix%20labs"
            )
            await page.wait_for("document.body.dataset.state === 'idle'", 15, "the model list")
            await page.evaluate(choose % "en")
            english = await page.evaluate(snapshot)
            await page.evaluate(choose % "sm2")
            await page.click("#toggle")
            await page.wait_for("!!document.querySelector('.translation.partial')", 10, "the partial translation")
            partial = await page.evaluate(snapshot)
            await page.evaluate(retype)  # the Hotwords field changed while captioning: a context message, then stop
            await page.click("#toggle")
            await page.wait_for("document.body.dataset.state === 'idle'", 10, "the stop")
            return english, partial, await page.evaluate(snapshot), await page.screenshot(tmp_path / "sm2.png")

    texts: list[dict] = []
    stand_in = contextlib.contextmanager(_stand_in)(starts, texts)
    with stand_in as http:
        english, partial, final, shot = asyncio.run(go(http))
    print(f"\nscreenshot of the page: {shot}")
    assert english["languages"] is None and english["targets"] is None, "one language, no translation: no choice"
    assert english["talkers"] is None and partial["talkers"] is True, "the box shows for a model with talkers"
    assert partial["languages"] == ["", "en", "de", "fr"], "Automatic (the model detects), then its languages"
    assert partial["targets"] == [["en", False], ["de", False], ["fr", True]]
    (start,) = starts
    assert "language" not in start and start["languages"] == ["de", "fr"] and start["translate"] == ["fr"], start
    assert start["model"] == "sm2" and start["talkers"] is True
    assert start["redact"] is True and start["numerals"] is False, "the query string's presets reach the start"
    assert start["hotwords"] == ["kowalczyk", "zentrix labs"]
    assert texts[0] == {"type": "context", "hotwords": ["okonkwo", "zentrix labs"]} and texts[-1] == {"type": "stop"}
    assert partial["column"] and partial["partialTranslation"] == "fr bonjour comment"
    assert final["finalTranslations"] == ["fr bonjour comment ça va", "fr oui"]
    assert partial["captions"] == [["de", "de hallo wie"]] and final["captions"] == [["de", "de hallo wie geht es"]]
    assert final["speakers"] == ["spk spk-0", "spk spk-1", "spk spk-1", "spk spk-1"]
    assert final["legend"] == ["Talker 3", "Talker 1"], "a final that numbers talkers colours words by talker"


def test_audio_is_kept_through_a_refused_connection(tmp_path: Path) -> None:
    """A full server accepts the connection and closes it at once with server_full: the audio captured meanwhile
    (here a tone, while the first connection takes 1.5 s to open) is kept and goes to the next connection, once it
    is ready; none of it goes to the refused one."""
    _require_chromium()
    rate = 16000
    t = np.arange(round(0.6 * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    wav = tmp_path / "microphone.wav"
    write_wav(wav, np.concatenate([np.zeros(round(0.3 * rate)), tone, np.zeros(4 * rate)]).astype(np.float32), rate)
    received: list[bytes] = []  # the audio of the connection that was ready
    refused = threading.Event()
    app = _page_app()

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        if not refused.is_set():
            refused.set()
            await asyncio.sleep(1.5)  # the page captures the tone while this connection opens
            await ws.accept()
            await ws.send_json({"type": "error", "code": "server_full", "message": "the server is full"})
            await ws.close(1013)
            return
        await ws.accept()
        await ws.receive_text()
        await ws.send_json({"type": "ready", "protocol": 1, "session": "stub", "model": "sm2", "chunk_ms": 320})
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("bytes"):
                received.append(msg["bytes"])
            elif msg.get("text"):  # stop
                await ws.send_json({"type": "end"})
                await ws.close(1000)
                return

    async def go(http: str) -> tuple[list[dict], list[dict], str]:
        async with Chromium.launch(fake_audio=wav) as browser:
            page = await browser.page()
            await page.navigate(http + "/")
            await page.wait_for("document.body.dataset.state === 'idle'", 15, "the model list")
            await page.click("#toggle")
            await page.wait_for("document.body.dataset.state === 'listening'", 20, "the second connection")
            deadline = time.monotonic() + 15
            while sum(map(len, received)) < 3 * 2 * rate:  # 3 s of s16le in all
                assert time.monotonic() < deadline, "the audio stopped coming"
                await asyncio.sleep(0.1)
            await page.click("#toggle")
            await page.wait_for("document.body.dataset.state === 'idle'", 10, "the stop")
            created = [e["params"] for e in page.events if e["method"] == "Network.webSocketCreated"]
            sent = [e["params"] for e in page.events if e["method"] == "Network.webSocketFrameSent"]
            return created, sent, await page.evaluate("document.getElementById('status').textContent")

    with contextlib.contextmanager(_serve)(app) as http:
        created, sent, status = asyncio.run(go(http))
    assert status == "Stopped.", status
    assert len(created) == 2, created
    first, second = (c["requestId"] for c in created)
    audio = {first: 0, second: 0}
    for f in sent:
        if f["response"]["opcode"] == 2:
            audio[f["requestId"]] += len(base64.b64decode(f["response"]["payloadData"]))
    assert audio[first] == 0, f"{audio[first]} bytes of audio went to the refused connection"
    pcm = np.frombuffer(b"".join(received), dtype="<i2")
    assert pcm.size * 2 == audio[second], (pcm.size * 2, audio[second])
    peak = np.abs(pcm[: 3 * rate]).max() / 32768
    assert peak > 0.25, f"the tone captured during the refused connection is missing (peak {peak:.3f})"


def test_stop_before_ready_sends_the_audio_then_stop(tmp_path: Path) -> None:
    """Stop pressed after start went out but before ready: the audio kept so far, then stop, go out once ready
    comes, and the page waits for end."""
    _require_chromium()
    wav, _ = _microphone_wav(tmp_path, False)
    started = threading.Event()
    messages: list[str | int] = []  # text messages as they are, audio as its byte count
    app = _page_app()

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_text()
        started.set()
        await asyncio.sleep(2.0)  # the user presses Stop meanwhile
        await ws.send_json({"type": "ready", "protocol": 1, "session": "stub", "model": "sm2", "chunk_ms": 320})
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            messages.append(len(msg["bytes"]) if msg.get("bytes") else msg["text"])
            if msg.get("text"):
                await ws.send_json({"type": "end"})
                await ws.close(1000)
                return

    async def go(http: str) -> str:
        async with Chromium.launch(fake_audio=wav) as browser:
            page = await browser.page()
            await page.navigate(http + "/")
            await page.wait_for("document.body.dataset.state === 'idle'", 15, "the model list")
            await page.click("#toggle")
            assert await asyncio.to_thread(started.wait, 15), "no start"
            await asyncio.sleep(0.5)
            await page.click("#toggle")
            await page.wait_for("document.body.dataset.state === 'idle'", 10, "the stop")
            return await page.evaluate("document.getElementById('status').textContent")

    with contextlib.contextmanager(_serve)(app) as http:
        status = asyncio.run(go(http))
    assert status == "Stopped.", status
    assert messages and json.loads(messages[-1]) == {"type": "stop"}, messages
    assert sum(m for m in messages[:-1]) >= 0.5 * 2 * SR, f"only {messages[:-1]} bytes of audio before stop"


CHOOSE_FILE = """(() => {
  const bytes = Uint8Array.from(atob(B64), (c) => c.charCodeAt(0));
  const list = new DataTransfer();
  list.items.add(new File([bytes], NAME, {type: TYPE}));
  const input = document.getElementById('file');
  input.files = list.files;
  input.dispatchEvent(new Event('change'));
  return true;
})()"""


def _choose(page_file: bytes, name: str, kind: str) -> str:
    b64 = base64.b64encode(page_file).decode()
    return (
        CHOOSE_FILE.replace("B64", json.dumps(b64)).replace("NAME", json.dumps(name)).replace("TYPE", json.dumps(kind))
    )


def test_transcribe_a_file_shows_its_captions(en_open_server: Running, code_speech: tuple[np.ndarray, int]) -> None:
    """ "Transcribe a file": a FLAC recording chosen on the page goes to POST /v1/transcribe?format=ndjson and its
    finals show as captions (punctuated, numerals); a file that is no audio shows the server's reason."""
    _require_chromium()
    import io

    import soundfile

    x, rate = code_speech
    buf = io.BytesIO()
    soundfile.write(buf, x, rate, format="FLAC")

    async def go() -> tuple[list[str], str, str, str, bool]:
        async with Chromium.launch() as browser:
            page = await browser.page()
            await page.navigate(en_open_server.http + "/")
            await page.wait_for("document.body.dataset.state === 'idle'", 15, "the model list")
            await page.evaluate(_choose(buf.getvalue(), "code.flac", "audio/flac"))
            await page.wait_for(
                "document.getElementById('status').textContent.startsWith('Transcribed')", 60, "the file"
            )
            finals = await page.evaluate(FINALS)
            status = await page.evaluate("document.getElementById('status').textContent")
            await page.evaluate(_choose(b"not audio at all", "notes.mp3", "audio/mpeg"))
            await page.wait_for("!document.getElementById('error').hidden", 30, "the refusal")
            error = await page.evaluate("document.getElementById('error').textContent")
            state = await page.evaluate("document.body.dataset.state")
            can_start = await page.evaluate("!document.getElementById('toggle').disabled")
            return finals, status, error, state, can_start

    finals, status, error, state, can_start = asyncio.run(go())
    (caption,) = finals  # one final: punctuated, cased, the digits as numerals
    assert "123456" in caption.replace(" ", "") and caption[0].isupper() and caption.endswith("."), finals
    assert status == f"Transcribed code.flac ({round(len(x) / rate)} s)."
    assert "notes.mp3" in error and "(bad_audio)" in error, error
    assert state == "idle" and can_start  # the page is ready for the microphone again


# The page's WebSocket, with the server's first message (ready) delivered 1.5 s late, as over a slow network.
SLOW_READY = """(() => {
  const Real = window.WebSocket;
  window.WebSocket = class extends Real {
    set onmessage(f) {
      let first = true;
      super.onmessage = (e) => {
        if (!first) return f(e);
        first = false;
        setTimeout(() => f(e), 1500);
      };
    }
  };
  return true;
})()"""


@pytest.mark.parametrize("container", ["webm", "mp4"])
def test_the_page_can_send_mediarecorders_recording(
    en_open_server: Running, code_speech, tmp_path: Path, container: str
) -> None:
    """`/?encoding=webm` (or `mp4`, what Safari records): the page streams MediaRecorder's recording in that container
    (start's "encoding") instead of PCM, and the captions are the sentence's; stop still brings the last final and
    end."""
    _require_chromium()
    x, rate = code_speech
    wav = tmp_path / "microphone.wav"
    write_wav(wav, x, rate)

    async def go() -> tuple[list[str], list[dict], bytes, list[dict]]:
        async with Chromium.launch(fake_audio=wav) as browser:
            page = await browser.page()
            await page.navigate(en_open_server.http + f"/?encoding={container}")
            await page.wait_for("document.body.dataset.state === 'idle'", 15, "the model list")
            await page.evaluate(SLOW_READY)  # a slow network: the sentence's start is said before ready
            await page.click("#toggle")
            await page.wait_for("document.body.dataset.state === 'listening'", 15, "the stream to be ready")
            await asyncio.sleep(len(x) / rate + 1.5)
            await page.click("#toggle")
            await page.wait_for("document.body.dataset.state === 'idle'", 15, "the last finals after Stop")
            finals = await page.evaluate(FINALS)
            received = [json.loads(f["payloadData"]) for f in page.websocket_frames(sent=False)]
            return finals, _sent_json(page), _sent_audio(page), received

    finals, sent_json, sent, received = asyncio.run(go())
    assert sent_json[0]["encoding"] == container and "sample_rate" not in sent_json[0], sent_json[0]
    assert sent_json[-1] == {"type": "stop"} and received[-1] == {"type": "end"}
    # WebM's EBML header, or MP4's ftyp box, as MediaRecorder writes them
    assert sent[:4] == b"\x1aE\xdf\xa3" if container == "webm" else sent[4:8] == b"ftyp"
    assert received[0]["type"] == "ready" and received[0]["encoding"] == container
    from tests.test_opusstream import numerals_in_order  # it imports this module

    # the sentence's first words too: said while the connection was still opening, held and sent at ready
    heard = " ".join(_words(" ".join(finals)))
    assert heard.startswith(("the code is", "a code is")) and numerals_in_order("123456", heard), finals
