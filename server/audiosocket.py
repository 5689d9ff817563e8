"""Asterisk's AudioSocket (docs/asterisk.md) on a TCP port of its own (`--audiosocket-port`): every call that the
dialplan hands over (`AudioSocket(UUID,HOST:PORT)`) is captioned as it is spoken, and the captions go to whoever
watches the call by its UUID: `WS /v1/calls/{uuid}` live, `GET /v1/calls/{uuid}` as it stands (server/routes_calls.py).

A frame is a kind byte, a 16-bit big-endian payload length and the payload:

    0x01 UUID (16 bytes, first)   0x10 audio: signed 16-bit little-endian mono PCM at 8 kHz (0x11-0x16: Asterisk's
    0x03 DTMF (1 ASCII byte)      slin12, slin16, slin24, slin32, slin44, slin48)   0x00 hangup   0xff an error

Each call is an engine stream of the `--audiosocket-model` (the server's default model unless named), batched with
every other stream, holding one of the server's stream slots from its first audio to its hangup. A call's watchers get
Parley's messages (docs/protocol.md): `ready` (with `uuid`), `partial` and `final` as the call goes, `dtmf` {digit,
time}, and `end` at the hangup. A call's captions are kept `CALL_KEPT_S` after it ends, for late readers. Parley sends
nothing back to Asterisk. A draining server ends each call with its last
final and `end`, and closes the socket (the dialplan goes on after AudioSocket()).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
import uuid as uuid_module
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from server.batcher import StreamClosedError
from server.messages import result_message
from server.protocol import BAD_AUDIO, BAD_MESSAGE, INTERNAL, ProtocolError, decode_audio_message, start_from_dict
from server.session import FLUSH_TIMEOUT_S, open_engine_stream, resolve_start
from server.tcp import TcpListener, TcpSession

if TYPE_CHECKING:
    from server.service import Service

log = logging.getLogger("parley.audiosocket")

HANGUP, UUID, DTMF, ERROR = 0x00, 0x01, 0x03, 0xFF
# Signed linear audio kinds: slin (8 kHz), slin12 ... slin48, slin96 and slin192.
RATES = {
    0x10: 8000,
    0x11: 12000,
    0x12: 16000,
    0x13: 24000,
    0x14: 32000,
    0x15: 44100,
    0x16: 48000,
    0x17: 96000,
    0x18: 192000,
}
CALL_KEPT_S = 300.0  # seconds a finished call's captions stay readable
WEBHOOK_TRIES = 3  # a finished call's POST to --calls-webhook, tried this many times
WEBHOOK_TIMEOUT_S = 10.0  # each try's timeout
MAX_CALLS_KEPT = 1000  # finished calls kept at most (the oldest go first)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """The next frame as (kind, payload), or None when Asterisk closed the socket.

    Raises:
        ProtocolError: bad_message for a frame cut short.
    """
    try:
        header = await reader.readexactly(3)
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise ProtocolError(BAD_MESSAGE, "the socket closed in the middle of a frame's header") from None
        return None
    kind, size = header[0], int.from_bytes(header[1:3], "big")
    try:
        payload = await reader.readexactly(size) if size else b""
    except asyncio.IncompleteReadError:
        raise ProtocolError(BAD_MESSAGE, f"the socket closed in the middle of a frame of kind {kind:#04x}") from None
    return kind, payload


def frame(kind: int, payload: bytes = b"") -> bytes:
    """A frame's bytes (what Asterisk sends; the tests' stand-in for it)."""
    if len(payload) > 0xFFFF:
        raise ValueError(f"a payload of {len(payload)} bytes is over 65535")
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


async def post_webhook(url: str, body: bytes, secret: str, call: str) -> bool:
    """POSTs a finished call's captions (JSON) to `url`, up to `WEBHOOK_TRIES` times (server errors, 429 and network
    failures are tried again, 1 s then 2 s later); with `secret`, signed as `X-Parley-Signature: sha256=HMAC`.
    Returns whether the receiver took it (2xx)."""
    headers = {"Content-Type": "application/json", "User-Agent": "parley", "X-Parley-Call": call}
    if secret:
        headers["X-Parley-Signature"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    def post() -> int:
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    for attempt in range(WEBHOOK_TRIES):
        try:
            status = await asyncio.to_thread(post)
        except (OSError, ValueError) as e:
            status, why = 0, str(e)
        else:
            why = f"HTTP {status}"
        if 200 <= status < 300:
            return True
        if 400 <= status < 500 and status != 429:
            break  # the receiver refuses it: trying again changes nothing
        if attempt + 1 < WEBHOOK_TRIES:
            await asyncio.sleep(2**attempt)
    log.warning("call %s: the webhook did not take its captions (%s)", call, why)
    return False


class Call:
    """One call's captions: the messages so far and the queues of those watching it live."""

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        self.model: str | None = None
        self.sample_rate: int | None = None
        self.finals: list[dict] = []
        self.partial: dict | None = None
        self.dtmf: list[dict] = []
        self.seconds = 0.0  # audio received
        self.ended_at: float | None = None  # time.monotonic() of the hangup
        self.watchers: set[asyncio.Queue[dict | None]] = set()
        self.began = asyncio.Event()  # the engine stream is open (ready can be sent)

    @property
    def ongoing(self) -> bool:
        return self.ended_at is None

    def publish(self, msg: dict) -> None:
        kind = msg.get("type")
        if kind == "final":
            self.finals.append(msg)
            self.partial = None
        elif kind == "partial":
            self.partial = msg
        elif kind == "dtmf":
            self.dtmf.append(msg)
        for q in self.watchers:
            q.put_nowait(msg)

    def end(self) -> None:
        if self.ended_at is None:
            self.ended_at = time.monotonic()
            self.began.set()  # a watcher waiting for a call that never began audio: its end
            for q in self.watchers:
                q.put_nowait(None)

    def ready(self) -> dict:
        return {"type": "ready", "uuid": self.uuid, "model": self.model, "sample_rate": self.sample_rate}

    def state(self) -> dict:
        """GET /v1/calls/{uuid}: the call as it stands."""
        finals = [m for m in self.finals if m.get("text")]
        return {
            "uuid": self.uuid,
            "model": self.model,
            "ongoing": self.ongoing,
            "seconds": round(self.seconds, 3),
            "text": " ".join(m.get("display") or m["text"] for m in finals),
            "finals": finals,
            "partial": self.partial,
            "dtmf": self.dtmf,
        }


class Calls:
    """The calls a server captions, by UUID (live ones and, for `CALL_KEPT_S`, finished ones); with a `webhook`,
    each call's captions are POSTed there when it ends (`ended`), signed with `secret` if one is given."""

    def __init__(self, webhook: str = "", secret: str = "") -> None:
        self.calls: dict[str, Call] = {}
        self.webhook = webhook
        self.secret = secret
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}  # watchers waiting for a call to begin
        self._posts: set[asyncio.Task] = set()

    def ended(self, call: Call) -> None:
        """A call hung up: its captions to the webhook, in the background (`close` waits for them)."""
        if not self.webhook:
            return
        body = json.dumps({"type": "call", **call.state()}, ensure_ascii=False).encode()
        task = asyncio.create_task(post_webhook(self.webhook, body, self.secret, call.uuid))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def close(self, timeout: float = WEBHOOK_TIMEOUT_S * WEBHOOK_TRIES) -> None:
        """Waits for the webhooks still being sent (a shutdown's)."""
        if self._posts:
            await asyncio.wait(set(self._posts), timeout=timeout)

    def open(self, uuid: str) -> Call:
        self.prune()
        call = Call(uuid)
        self.calls[uuid] = call
        for waiter in self._waiting.pop(uuid, ()):
            if not waiter.done():
                waiter.set_result(None)
        return call

    def get(self, uuid: str) -> Call | None:
        self.prune()
        return self.calls.get(uuid)

    async def wait(self, uuid: str, timeout: float) -> Call | None:
        """The call `uuid`, waiting up to `timeout` seconds for it to begin (None: it did not)."""
        call = self.get(uuid)
        if call is not None:
            return call
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiting.setdefault(uuid, set())
        waiters.add(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await waiter
        finally:
            waiters.discard(waiter)
            if not waiters and self._waiting.get(uuid) is waiters:
                del self._waiting[uuid]  # nobody waits for it any more
        return self.calls.get(uuid)

    def prune(self) -> None:
        now = time.monotonic()
        ended = sorted((c.ended_at, u) for u, c in self.calls.items() if c.ended_at is not None)
        for n, (at, u) in enumerate(ended):
            if now - at > CALL_KEPT_S or len(ended) - n > MAX_CALLS_KEPT:
                del self.calls[u]

    async def flushed(self, timeout: float) -> None:
        """Waits up to `timeout` seconds until no call that has ended has a watcher left: each has been sent the
        call's last messages and `end` (a drain's shutdown calls this before the server closes every WebSocket)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(c.watchers for c in self.calls.values() if not c.ongoing) and loop.time() < deadline:
            await asyncio.sleep(0.02)

    async def watch(self, call: Call) -> AsyncIterator[dict]:
        """A watcher's messages: ready, the finals so far (and the open partial), then the call live, to `end`."""
        queue: asyncio.Queue[dict | None] = asyncio.Queue()
        call.watchers.add(queue)
        try:
            await call.began.wait()
            yield call.ready()
            for msg in [*call.finals, *call.dtmf, *([call.partial] if call.partial else [])]:
                yield msg
            if call.ongoing:
                while (msg := await queue.get()) is not None:
                    yield msg
            yield {"type": "end", "uuid": call.uuid}
        finally:
            call.watchers.discard(queue)


class AudioSocketSession(TcpSession):
    """One AudioSocket connection: one call (see the module). A drain's abort ends its captions: the last final and
    end to the watchers."""

    kind = "audiosocket"
    logger = log

    def __init__(
        self, service: Service, calls: Calls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super().__init__(service, reader, writer, service.settings.audiosocket_api_key)
        self.calls = calls
        self.call: Call | None = None
        self.rate: int | None = None
        self.seconds = 0.0

    async def _serve(self) -> None:
        timeout = self.service.settings.idle_timeout_s
        while (got := await self._next(read_frame(self.reader), timeout)) is not None:
            kind, payload = got
            if self.call is None:
                if kind != UUID:
                    raise ProtocolError(BAD_MESSAGE, f"the first frame must be the call's UUID, not kind {kind:#04x}")
                if len(payload) != 16:
                    raise ProtocolError(BAD_MESSAGE, f"a UUID frame of {len(payload)} bytes (16 expected)")
                self.call = self.calls.open(str(uuid_module.UUID(bytes=payload)))
                log.info("%s %s: call %s", self.kind, self.id, self.call.uuid)
            elif kind in RATES:
                await self._audio(payload, RATES[kind])
            elif kind == DTMF:
                digit = payload[:1].decode("ascii", "replace")
                self.call.publish({"type": "dtmf", "digit": digit, "time": round(self.seconds, 3)})
            elif kind == HANGUP:
                return
            elif kind == ERROR:
                log.info("%s %s: Asterisk reports an error (%s)", self.kind, self.id, payload.hex() or "no code")
                return
            # other kinds (a later version's) are skipped

    def _idle(self, timeout: float) -> None:
        log.info("%s %s: no frame for %g s: the call is taken as over", self.kind, self.id, timeout)

    async def _audio(self, payload: bytes, rate: int) -> None:
        assert self.call is not None
        x = decode_audio_message(payload, "s16le", self.service.settings.max_message_bytes)
        if self.stream is None:
            self._open(rate)
        elif rate != self.rate:
            raise ProtocolError(BAD_AUDIO, f"the call's audio changed from {self.rate} to {rate} Hz")
        assert self.stream is not None
        self.seconds += x.size / rate
        self.call.seconds = self.seconds
        self.service.count_audio(x.size / rate, self.key)
        if self._writer_task is not None and self._writer_task.done():
            self._writer_task.result()  # the engine failed: its error
        await self.stream.push(x, time.monotonic())

    def _open(self, rate: int) -> None:
        """The call's engine stream, at its first audio (a stream slot, the configured model)."""
        assert self.call is not None
        svc = self.service
        self._take_slot()
        fields: dict[str, Any] = {"type": "start", "sample_rate": rate, "encoding": "s16le"}
        if svc.settings.audiosocket_model:
            fields["model"] = svc.settings.audiosocket_model
        start = svc.policy(start_from_dict(fields), self.key)
        engine, search, plan = resolve_start(svc, start, None)
        self.stream = open_engine_stream(engine, start, search, plan, None)
        self.rate = rate
        self.call.model, self.call.sample_rate = engine.name, rate
        self.call.began.set()
        svc.metrics.streams.labels(engine.name, "audiosocket").inc()
        svc.metrics.stream_encodings.labels("s16le").inc()
        log.info("%s %s: %s, %d Hz", self.kind, self.id, engine.name, rate)
        self._writer_task = asyncio.create_task(self._write(), name=f"parley-audiosocket-write-{self.id}")

    async def _write(self) -> None:
        """The engine's partials and finals to the call's watchers, until the stream ends."""
        assert self.stream is not None and self.call is not None
        while True:
            update = await self.stream.next_update()
            if update.error:
                raise ProtocolError(INTERNAL, f"the stream cannot continue: {update.error}")
            for r in update.results:
                self.call.publish(result_message(r))
            if update.end:
                return

    async def _release(self) -> None:
        """The hangup: the last final to the watchers, then end; the stream and its slot let go."""
        with contextlib.suppress(StreamClosedError):
            await self._stop_stream(FLUSH_TIMEOUT_S)
        await self._let_go()
        if self.call is not None:
            self.call.end()
            self.calls.ended(self.call)
            log.info("%s %s: call %s ended after %.2f s of audio", self.kind, self.id, self.call.uuid, self.seconds)


class AudioSocketListener(TcpListener):
    """The AudioSocket TCP server of a `Service` (`TcpListener`), and its calls."""

    name = "audiosocket"
    key_setting = "audiosocket_api_key"

    def __init__(self, service: Service, calls: Calls) -> None:
        super().__init__(service)
        self.calls = calls

    def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> AudioSocketSession:
        return AudioSocketSession(self.service, self.calls, reader, writer)
