"""One WebSocket connection speaking protocol version 1 (docs/protocol.md): start, audio, stop; ready, partials,
finals, end; and one error message then a close for anything wrong.

Two tasks share the connection. The reader takes client messages in order (`ProtocolState` checks them) and pushes
audio into the engine stream; when the stream's queue is full, `push` waits and the reader stops reading the socket
(uvicorn then stops reading TCP: backpressure reaches the client). The writer sends what the engine produces, and
after stop the last finals, `end` and close 1000. Whichever ends first decides how the connection ends:

    reader: client error (ProtocolError)  -> error message, close with the documented code
    reader: client went away              -> nothing to send; the stream is dropped from the engine
    writer: end sent                      -> done (close 1000 was sent)
    writer: engine failure                -> error "internal", close 1011
    drain timeout (server shutting down)  -> error "shutting_down", close 1001
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket, WebSocketDisconnect

from server.engine import Engine, HeadPlan, Stream, StreamClosedError
from server.protocol import (
    CLOSE_NORMAL,
    IDLE_TIMEOUT,
    INTERNAL,
    ProtocolError,
    ProtocolState,
    StartRequest,
    dumps,
    end_message,
    ready_message,
)

if TYPE_CHECKING:
    from server.app import Service

log = logging.getLogger("parley.session")


class _GoneError(Exception):
    """The client is no longer there to send to."""


class _EngineFailureError(Exception):
    """The engine could not decode this stream."""


def _multilingual_fields(engine: Engine, plan: HeadPlan) -> dict:
    """What a multilingual stream's ready message adds: the language ("auto" or the one named), the translations
    that will come, and the languages auto chooses from."""
    if not plan.multilingual:
        return {}
    heads = engine.model.heads
    fields: dict = {
        "language": "auto" if plan.auto else heads[plan.caption].head.language,  # type: ignore[index]
        "translate": [lang for lang, _ in plan.translate],
    }
    if plan.auto:
        fields["languages"] = [heads[h].head.language for _, h in plan.candidates]
    return fields


class Session:
    """One `/v1/stream` connection.

    Args:
        service: the app's state (engines, settings, metrics, connection accounting).
        ws: the connection, not yet accepted.
    """

    def __init__(self, service: Service, ws: WebSocket) -> None:
        self.service = service
        self.ws = ws
        self.id = secrets.token_hex(4)
        self.state = ProtocolState(service.settings.max_message_bytes)
        self.stream: Stream | None = None
        self.model: str | None = None
        self._opened = asyncio.Event()
        self._closed = False
        self._abort_error: ProtocolError | None = None
        self._abort = asyncio.Event()

    async def run(self) -> None:
        """Serves the connection to its end. Never raises."""
        svc = self.service
        refusal = svc.admit(self.ws.headers, self.ws.query_params, self.ws.headers.get("origin"))
        if refusal is None:
            svc.session_opened(self)
        try:
            try:
                await self.ws.accept()
            except Exception:  # the client left during the handshake
                return
            if refusal is not None:
                await self._fail(refusal)
                return
            await self._serve()
        except Exception:
            log.exception("session %s failed", self.id)
            await self._fail(ProtocolError(INTERNAL, "internal server error"))
        finally:
            if self.stream is not None:
                self.stream.close()
            if refusal is None:
                svc.session_closed(self)

    def abort(self, error: ProtocolError) -> None:
        """Ends the session from outside (the server is draining): `error` is sent, then the close."""
        if self._abort_error is None:
            self._abort_error = error
            self._abort.set()

    async def _serve(self) -> None:
        reader = asyncio.create_task(self._read(), name=f"parley-read-{self.id}")
        writer = asyncio.create_task(self._write(), name=f"parley-write-{self.id}")
        aborted = asyncio.create_task(self._abort.wait())
        tasks = {reader, writer, aborted}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        def failure(t: asyncio.Task) -> BaseException | None:
            return t.exception() if t in done and not t.cancelled() else None

        r, w = failure(reader), failure(writer)
        if writer in done and w is None:
            return  # end and close 1000 were sent
        error: ProtocolError | None = None
        if aborted in done:
            error = self._abort_error
        elif isinstance(w, _EngineFailureError) or (self.stream is not None and self.stream.failure):
            reason = self.stream.failure if self.stream is not None and self.stream.failure else str(w)
            error = ProtocolError(INTERNAL, f"the stream cannot continue: {reason}")
        elif isinstance(r, ProtocolError):
            error = r
        else:
            for exc in (r, w):
                if exc is not None and not isinstance(exc, _GoneError | StreamClosedError):
                    log.error("session %s failed", self.id, exc_info=exc)
                    error = ProtocolError(INTERNAL, "internal server error")
        if error is not None:
            await self._fail(error)

    async def _read(self) -> None:
        """Client messages until the client leaves; raises ProtocolError for the first bad one."""
        idle = self.service.settings.idle_timeout_s
        while True:
            try:
                # After stop the client has nothing more to say: it waits for the finals, however long they take.
                msg = await asyncio.wait_for(self.ws.receive(), None if self.state.stopped else idle)
            except TimeoutError:
                raise ProtocolError(IDLE_TIMEOUT, f"no message for {idle:g} s") from None
            if msg["type"] == "websocket.disconnect":
                return
            arrived = time.monotonic()
            text, data = msg.get("text"), msg.get("bytes")
            if text is not None:
                parsed = self.state.on_text(text)
                if isinstance(parsed, StartRequest):
                    await self._start(parsed)
                else:
                    assert self.stream is not None
                    await self.stream.stop()
            elif data is not None:
                samples = self.state.on_binary(data)
                assert self.stream is not None
                await self.stream.push(samples, arrived)

    async def _start(self, start: StartRequest) -> None:
        svc = self.service
        engine, search, plan = svc.resolve(start.model, start.search, start.language, start.translate, start.languages)
        self.stream = engine.open_stream(start.sample_rate, search, start.partials, plan)
        self.model = engine.name
        svc.metrics.streams.labels(engine.name).inc()
        log.info("session %s: %s, %d Hz %s, %s search", self.id, engine.name, start.sample_rate, start.encoding, search)
        await self._send(
            ready_message(
                self.id,
                engine.name,
                engine.chunk_ms,
                start.sample_rate,
                start.encoding,
                start.partials,
                search,
                max_message_bytes=svc.settings.max_message_bytes,
                **_multilingual_fields(engine, plan),
            )
        )
        self._opened.set()

    async def _write(self) -> None:
        """Engine updates to the client, then end and close 1000."""
        await self._opened.wait()
        assert self.stream is not None and self.model is not None
        latency = self.service.metrics.chunk_latency.labels(self.model)
        while True:
            update = await self.stream.next_update()
            if update.error:
                raise _EngineFailureError(update.error)
            for m in update.messages:
                await self._send(m)
            now = time.monotonic()
            for t in update.arrived:
                latency.observe(now - t)
            if update.end:
                await self._send(end_message())
                await self._close(CLOSE_NORMAL)
                log.info("session %s: ended after %.2f s of audio", self.id, self.state.seconds_received)
                return

    async def _send(self, msg: dict) -> None:
        if self._closed:
            raise _GoneError()
        try:
            await self.ws.send_text(dumps(msg))
        except (WebSocketDisconnect, OSError, RuntimeError) as e:
            raise _GoneError() from e

    async def _close(self, code: int) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self.ws.close(code)

    async def _fail(self, error: ProtocolError) -> None:
        """Sends the error message and closes with its code (quietly, if the client is already gone)."""
        self.service.count_error(error.code)
        level = logging.ERROR if error.code == INTERNAL else logging.INFO
        log.log(level, "session %s: %s: %s", self.id, error.code, error.message)
        with contextlib.suppress(_GoneError):
            await self._send(error.to_message())
        await self._close(error.close_code)
