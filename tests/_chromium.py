"""Headless Chromium driven through the DevTools protocol over the `websockets` package (no browser download, no
Playwright): launch, evaluate JavaScript, click like a user, watch WebSocket frames, take screenshots.

    async with Chromium.launch(fake_audio=Path("talk.wav")) as browser:
        page = await browser.page()
        await page.navigate("http://127.0.0.1:8000/")
        await page.click("#toggle")
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install Debian's chromium package (bash .ci/system-deps does, as CI does)"


def find_chromium() -> str | None:
    """The Chromium executable: $CHROMIUM, else the first of CANDIDATES on PATH."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class DevToolsError(RuntimeError):
    pass


class Page:
    """One page target's DevTools session: commands, and the events they produce (kept in `events`)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict] = []
        self._next_id = 0
        self._pending: dict[int, asyncio.Future] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg:
                future = self._pending.pop(msg["id"], None)
                if future is not None and not future.done():
                    future.set_result(msg)
            else:
                self.events.append(msg)

    async def call(self, method: str, timeout: float = 20.0, **params: Any) -> dict:
        self._next_id += 1
        future = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        await self.ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        msg = await asyncio.wait_for(future, timeout)
        if "error" in msg:
            raise DevToolsError(f"{method}: {msg['error']}")
        return msg.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises are awaited); page exceptions raise DevToolsError."""
        r = await self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            details = r["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise DevToolsError(f"{expression[:80]!r} threw: {text}")
        return r["result"].get("value")

    async def wait_for(self, expression: str, timeout: float, what: str, interval: float = 0.1) -> Any:
        """Polls until `expression` is truthy; returns its value. Fails with `what` and the page's status line."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                status = await self.evaluate(
                    "document.body.dataset.state + ': ' + document.getElementById('status')?.textContent"
                    " + ' | ' + document.getElementById('error')?.textContent"
                )
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; page: {status}")
            await asyncio.sleep(interval)

    async def navigate(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'", 15, f"{url} to load")

    async def click(self, selector: str) -> None:
        """A real mouse click (a user gesture, which AudioContext and getUserMedia may require) on the element."""
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            await self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    async def screenshot(self, path: Path) -> Path:
        data = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def websocket_frames(self, sent: bool) -> list[dict]:
        """WebSocket frames the page sent (or received), in order: {"opcode", "payloadData"} (binary: base64)."""
        kind = "Network.webSocketFrameSent" if sent else "Network.webSocketFrameReceived"
        return [e["params"]["response"] for e in self.events if e["method"] == kind]

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await self.ws.close()


class Chromium:
    """A headless Chromium process with remote debugging on a free port."""

    def __init__(self, process: subprocess.Popen, devtools_url: str, profile: Path) -> None:
        self.process = process
        self.devtools_url = devtools_url
        self.http = "http://" + devtools_url.split("/")[2]
        self.profile = profile
        self.pages: list[Page] = []
        self.stderr: list[str] = []  # Chromium's log lines, for failure messages

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(
        cls, fake_audio: Path | None = None, size: tuple[int, int] = (1200, 800)
    ) -> AsyncIterator[Chromium]:
        """Starts Chromium; with `fake_audio`, getUserMedia is granted without asking and gets a fake microphone
        that plays the WAV file once (then silence), from the moment the page opens it.

        Raises:
            FileNotFoundError: Chromium is not installed (the message says how to install it).
        """
        exe = find_chromium()
        if exe is None:
            raise FileNotFoundError(f"no Chromium executable ({', '.join(CANDIDATES)}): {INSTALL_HINT}")
        profile = Path(tempfile.mkdtemp(prefix="parley-chromium-"))
        args = [
            exe,
            "--headless=new",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--mute-audio",
            "--autoplay-policy=no-user-gesture-required",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            f"--window-size={size[0]},{size[1]}",
        ]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium's sandbox refuses to run as root (CI containers)
        if fake_audio is not None:
            args += [
                "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
                "--use-fake-device-for-media-stream",  # fake capture devices instead of real ones
                f"--use-file-for-fake-audio-capture={fake_audio}%noloop",  # the fake microphone plays this, once
            ]
        args.append("about:blank")
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        lines: list[str] = []
        found = threading.Event()
        url: list[str] = []

        def read_stderr() -> None:
            for raw in process.stderr:
                line = raw.decode(errors="replace").rstrip()
                lines.append(line)
                m = re.search(r"DevTools listening on (ws://\S+)", line)
                if m and not url:
                    url.append(m.group(1))
                    found.set()

        threading.Thread(target=read_stderr, daemon=True).start()
        browser = None
        try:
            if not await asyncio.to_thread(found.wait, 30):
                raise RuntimeError("Chromium did not start:\n" + "\n".join(lines[-30:]))
            browser = cls(process, url[0], profile)
            browser.stderr = lines
            yield browser
        finally:
            if browser is not None:
                for page in browser.pages:
                    await page.close()
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 10)
            shutil.rmtree(profile, ignore_errors=True)

    async def page(self, on_event: Callable[[dict], None] | None = None) -> Page:
        """The first page target, with the Page, Runtime and Network domains enabled."""
        targets = (await asyncio.to_thread(httpx.get, self.http + "/json/list", timeout=10)).json()
        target = next(t for t in targets if t["type"] == "page")
        ws = await connect(target["webSocketDebuggerUrl"], max_size=None, ping_interval=None)
        page = Page(ws)
        self.pages.append(page)
        for domain in ("Page", "Runtime", "Network"):
            await page.call(f"{domain}.enable")
        return page
