"""One WebSocket connection speaking protocol version 1 (docs/protocol.md): start, audio, finalize, stop; ready,
partials, finals, end; and one error message then a close for anything wrong.

Two tasks share the connection. The reader takes client messages in order (`ProtocolState` checks them) and pushes
audio into the engine stream; when the stream's queue is full, `push` waits and the reader stops reading the socket
(uvicorn then stops reading TCP: backpressure reaches the client). The writer sends what the engine produces, and
after stop the last finals, `end` and close 1000. Whichever ends first decides how the connection ends:

    reader: client error (ProtocolError)  -> error message, close with the documented code
    reader: client went away              -> nothing to send; the stream is dropped from the engine
    writer: end sent                      -> done (close 1000 was sent)
    writer: engine failure                -> error "internal", close 1011
    drain timeout (server shutting down)  -> the open segment's final, then error "shutting_down", close 1001

Nothing a client does can hold its slot: the idle timeout counts seconds of audio, not messages (`IdleClock`), a
send that a client does not read for `idle_timeout_s` ends the session, and the session closes its stream before it
waits for its tasks, so a task blocked on the stream's queue cannot outlive the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from server.batcher import Stream, StreamClosedError, Update
from server.endpoint import EndpointConfig
from server.messages import result_message
from server.multichannel import StreamGroup
from server.plan import Adaptation, HeadPlan, InvalidOptionError, UnsupportedOptionError
from server.protocol import (
    CLOSE_NORMAL,
    IDLE_TIMEOUT,
    INTERNAL,
    INVALID_VALUE,
    NO_LM,
    UNSUPPORTED_OPTION,
    ContextRequest,
    FinalizeRequest,
    ProtocolError,
    ProtocolState,
    StartRequest,
    api_key_from_request,
    dumps,
    end_message,
    ready_message,
    start_from_dict,
)

if TYPE_CHECKING:
    from server.engine import Engine
    from server.service import Service

log = logging.getLogger("parley.session")

# On shutdown, seconds a session may take to decode what it has received and send its open segment's final.
FLUSH_TIMEOUT_S = 5.0
# Seconds the session waits for its cancelled tasks, and for the close handshake, before it gives up on them.
_SETTLE_S = 1.0


class IdleClock:
    """The idle timeout, counted in audio: waiting for the client uses the allowance up, and every second of audio
    received gives a second back, up to `timeout` seconds in all.

    A client that sends audio at least as fast as real time never runs out; one that sends nothing, empty
    messages or a trickle of samples does after about `timeout` seconds. Only the time spent waiting for the client
    counts: time the server spends applying backpressure does not.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.left = timeout

    def waited(self, seconds: float) -> None:
        self.left -= seconds

    def audio(self, seconds: float) -> None:
        self.left = min(self.timeout, self.left + seconds)


class GoneError(Exception):
    """The client is no longer there to send to."""


class EngineFailureError(Exception):
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


def resolve_start(service: Service, start: StartRequest, adaptation: Adaptation | None) -> tuple[Engine, str, HeadPlan]:
    """The engine, search and heads of a start (`Service.resolve`).

    Raises:
        ProtocolError: see `Service.resolve`.
    """
    return service.resolve(
        start.model,
        start.search,
        start.language,
        start.translate,
        start.languages,
        adaptation,
        start.talkers,
        start.alternatives,
        start.redact,
    )


def writable_hotwords(service: Service, fields: dict) -> tuple[dict, int]:
    """A start's `fields` (a start message's dict) with only the hotwords its model can take, in order, at most the
    server's `max_hotwords`, and how many were left out: for protocols whose clients send phrases without knowing the
    model (Home Assistant's entity names, faster-whisper's hotwords), which are better kept in part than refused.

    Raises:
        ProtocolError: what `start_from_dict` and `resolve_start` raise for the fields without their hotwords.
    """
    phrases = list(fields.get("hotwords") or ())
    if not phrases:
        return fields, 0
    plain = {k: v for k, v in fields.items() if k != "hotwords"}
    engine, _, plan = resolve_start(service, start_from_dict(plain), None)
    kept = engine.planner.writable_hotwords(plan, phrases)
    return ({**plain, "hotwords": kept} if kept else plain), len(set(phrases)) - len(kept)


def with_prompt(service: Service, start: StartRequest, prompt: str | None) -> StartRequest:
    """`start` with the names and terms of a free-text `prompt` (OpenAI's transcription prompt: server/prompt.py)
    added to its hotwords at the server's default boost: those its model can write, within the server's
    `max_hotwords` with the start's own. A start that would have had the model's general LM (no hotwords or LM of its
    own) keeps it: a prompt adds names, it does not take away what the rest of the speech is decoded with. Unchanged
    without a prompt, or for a start that asked for greedy search (hotwords need beam search, and the client chose).

    Raises:
        ProtocolError: what `resolve_start` raises for the start itself.
    """
    if not prompt or not prompt.strip() or start.search == "greedy":
        return start
    engine, _, plan = resolve_start(service, start, None)
    terms = engine.planner.prompt_hotwords(plan, prompt, [phrase for phrase, _ in start.hotwords])
    if not terms:
        return start
    lm = start.lm
    if lm is None and not start.hotwords:  # what the start alone gets (`Planner.defaulted`), the prompt's names aside
        plain = engine.planner.defaulted(plan, "beam", None)
        lm = plain.lm if plain is not None else None
    return replace(start, hotwords=start.hotwords + tuple((t, None) for t in terms), lm=lm)


def replace_hotwords(
    engine: Engine,
    stream: Stream | StreamGroup,
    start: StartRequest,
    plan: HeadPlan,
    hotwords: tuple,
    sounds_like: tuple = (),
) -> None:
    """A stream's own hotwords (and their `sounds_like`) replaced mid-stream (a context message, a realtime session's
    new keywords), its LM and respelling kept (`Engine.set_context`).

    Raises:
        ProtocolError: invalid_value for hotwords the server refuses; unsupported_option where the model cannot
            take them.
    """
    adaptation = replace(
        start_adaptation(start) or Adaptation(respell=start.respell), hotwords=hotwords, sounds_like=sounds_like
    )
    if start.search == "greedy" and adaptation.lm is None:  # no general LM for a stream that asked for greedy search
        adaptation = replace(adaptation, lm=NO_LM)
    try:
        engine.set_context(stream, plan, adaptation)
    except UnsupportedOptionError as e:
        raise ProtocolError(UNSUPPORTED_OPTION, f"model {engine.name} {e}") from None
    except InvalidOptionError as e:
        raise ProtocolError(INVALID_VALUE, str(e)) from None


def stream_endpoint(engine: Engine, start: StartRequest) -> EndpointConfig | None:
    """The endpoint rules a start asks for, on the engine's (None: it asked for none of its own)."""
    e = start.endpointing
    if e is None:
        return None
    return engine.config.endpoint.replaced(e.enabled, e.silence_s, e.silence_after_speech_s, e.max_segment_s)


def open_engine_stream(
    engine: Engine,
    start: StartRequest,
    search: str,
    plan: HeadPlan,
    adaptation: Adaptation | None,
    partials: bool = True,
    alternatives: int = 0,
    respell_from: bool = False,
) -> Stream:
    """The engine stream (of one channel) of a start: what it asks of punctuation, talkers, endpointing, numerals,
    redaction and masking, with `partials`, `alternatives` and `respell_from` as the protocol uses them."""
    return engine.open_stream(
        start.sample_rate,
        search,
        partials,
        plan,
        adaptation,
        start.punctuate,
        start.talkers,
        stream_endpoint(engine, start),
        alternatives,
        start.numerals,
        start.redact,
        start.profanity_filter,
        respell_from=respell_from,
    )


def start_adaptation(start: StartRequest) -> Adaptation | None:
    """The hotwords and LM a start asks for, as the engine takes them (None: neither)."""
    if not start.hotwords and start.lm is None:
        return None
    return Adaptation(
        start.hotwords, start.lm, start.lm_scale, start.ilm_scale, start.lodr_scale, start.respell, start.sounds_like
    )


def _adaptation_fields(engine: Engine, adaptation: Adaptation | None) -> dict:
    """What an adapted stream's ready message adds: how many hotwords, and the LM with the scales in use."""
    if adaptation is None:
        return {}
    fields: dict = {}
    if adaptation.hotwords:
        fields["hotwords"] = len(adaptation.hotwords)
    lm = engine.bundle.lms.get(adaptation.lm) if adaptation.lm is not None else None
    if lm is not None:
        fields["lm"] = lm.name
        fields["lm_scale"] = lm.lm_scale if adaptation.lm_scale is None else adaptation.lm_scale
        fields["ilm_scale"] = lm.ilm_scale if adaptation.ilm_scale is None else adaptation.ilm_scale
        fields["lodr_scale"] = lm.lodr_scale if adaptation.lodr_scale is None else adaptation.lodr_scale
    return fields


class Connection:
    """What every WebSocket protocol's session shares: admission (keys, origins, limits), the accept, serving,
    failure as an `internal` error, the server's connection accounting, `abort` from outside (draining), and the
    socket itself: `_receive` on the idle clock, `_send` (a client that does not read is gone) and `_close`.

    Subclasses serve one protocol: `_serve` (the conversation), `_fail` (send an error and close) and `_release`
    (let go of the engine stream).

    Args:
        service: the app's state (engines, settings, metrics, connection accounting).
        ws: the connection, not yet accepted.
    """

    kind = "session"  # for logs
    logger = log  # each protocol's module logger

    def __init__(self, service: Service, ws: WebSocket) -> None:
        self.service = service
        self.ws = ws
        self.id = secrets.token_hex(4)
        self.stream: Stream | StreamGroup | None = None
        self.model: str | None = None
        self.extra_slots = 0  # connection slots held beyond this connection's one (a multichannel stream's channels)
        self.key = api_key_from_request(ws.headers, ws.query_params)  # whose slots they are (max_streams_per_key)
        self._closed = False
        self._abort_error: ProtocolError | None = None
        self._abort = asyncio.Event()

    async def run(self) -> None:
        """Serves the connection to its end. Never raises."""
        svc = self.service
        refusal = svc.admit(self.key)
        if refusal is None:
            svc.session_opened(self, self.key)
        try:
            try:
                await self.ws.accept(subprotocol=self.subprotocol())
            except Exception:  # the client left during the handshake
                return
            if refusal is not None:
                await self._fail(refusal)
                return
            await self._serve()
        except Exception:
            log.exception("%s %s failed", self.kind, self.id)
            await self._fail(ProtocolError(INTERNAL, "internal server error"))
        finally:
            self._release()
            if refusal is None:
                svc.session_closed(self, self.key)

    def subprotocol(self) -> str | None:
        """The WebSocket subprotocol the accept names (None: none; a protocol whose browsers send one overrides)."""
        return None

    def abort(self, error: ProtocolError) -> None:
        """Ends the session from outside (the server is draining): the open segment's final, `error`, the close."""
        if self._abort_error is None:
            self._abort_error = error
            self._abort.set()

    async def _serve(self) -> None:
        raise NotImplementedError

    async def _fail(self, error: ProtocolError) -> None:
        raise NotImplementedError

    def _count_failure(self, error: ProtocolError) -> None:
        """What every protocol's `_fail` does first: the error counted, and logged (an `internal` one as an error)."""
        self.service.count_error(error.code)
        level = logging.ERROR if error.code == INTERNAL else logging.INFO
        self.logger.log(level, "%s %s: %s: %s", self.kind, self.id, error.code, error.message)

    def _release(self) -> None:
        if self.stream is not None:
            self.stream.close()
        self.service.give(self.extra_slots, self.key)
        self.service.metrics.active_streams.dec(self.extra_slots)
        self.extra_slots = 0

    async def _reader_writer(
        self,
        read: Coroutine[Any, Any, Any],
        write: Coroutine[Any, Any, Any],
        flush: Callable[[asyncio.Task, asyncio.Task], Awaitable[set[asyncio.Task]]],
    ) -> tuple[set[asyncio.Task], asyncio.Task, asyncio.Task, asyncio.Task]:
        """Runs a protocol's reader (client messages) and writer (engine results) side by side until one ends or
        the session is aborted; on an abort that ended neither, `flush(reader, writer)` lets the writer send what
        the audio so far gives (it returns the tasks that ended). The stream is closed and every task settled.

        Returns:
            The tasks that ended (their exceptions are the caller's to read), and the reader, writer and abort wait.
        """
        kind = self.kind.replace(" ", "-")
        reader = asyncio.create_task(read, name=f"parley-{kind}-read-{self.id}")
        writer = asyncio.create_task(write, name=f"parley-{kind}-write-{self.id}")
        aborted = asyncio.create_task(self._abort.wait())
        tasks = {reader, writer, aborted}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if aborted in done and not done & {reader, writer}:
                done |= await flush(reader, writer)
        finally:
            # The stream first: a task waiting on its queue then raises instead of waiting for room forever.
            if self.stream is not None:
                self.stream.close()
            await settle(tasks)
        return done, reader, writer, aborted

    def _open_stream(
        self, start: StartRequest, protocol: str, respell_from: bool = False
    ) -> tuple[StartRequest, Engine, HeadPlan]:
        """A protocol that speaks for Parley's start (OpenAI's Realtime, Deepgram's) opens its engine stream: the
        account's rules over `start` (redaction, masking), the stream as `open_engine_stream` opens it (a stream group
        of one per channel, each holding a connection slot, for a start of several `channels`), counted under
        `protocol` and logged (`respell_from`: see `Engine.open_stream`). Returns the start as applied, the engine and
        the heads.

        Raises:
            ProtocolError: what `resolve_start` raises.
        """
        svc = self.service
        start = svc.policy(start, self.key)
        adaptation = start_adaptation(start)
        engine, search, plan = resolve_start(svc, start, adaptation)
        self._open_channels(engine, start, search, plan, adaptation, respell_from=respell_from)
        self.model = engine.name
        svc.metrics.streams.labels(engine.name, protocol).inc()
        svc.metrics.stream_encodings.labels(start.encoding).inc()
        self.logger.info(
            "%s %s: %s, %d Hz %s, %s search", self.kind, self.id, engine.name, start.sample_rate, start.encoding, search
        )
        return start, engine, plan

    def _open_channels(
        self,
        engine: Engine,
        start: StartRequest,
        search: str,
        plan: HeadPlan,
        adaptation: Adaptation | None,
        partials: bool = True,
        alternatives: int = 0,
        respell_from: bool = False,
    ) -> None:
        """`self.stream`: the engine stream of `start`, or for several `channels` a stream group of one per channel,
        each channel holding a connection slot (as that many streams would) that `_release` gives back.

        Raises:
            ProtocolError: server_full or too_many_streams, when the slots are not there.
        """
        if start.channels > 1:
            self.service.hold_channels(start.channels, self.key)
            self.service.metrics.active_streams.inc(start.channels - 1)  # the load a balancer or autoscaler sees
            self.extra_slots = start.channels - 1
        streams = [
            open_engine_stream(engine, start, search, plan, adaptation, partials, alternatives, respell_from)
            for _ in range(start.channels)
        ]
        self.stream = streams[0] if start.channels == 1 else StreamGroup(streams)

    def _ended_with(
        self, done: set[asyncio.Task], reader: asyncio.Task, writer: asyncio.Task, aborted: asyncio.Task
    ) -> ProtocolError | None:
        """The error a conversation of independent events (OpenAI's Realtime, Deepgram's) ends with: the abort's,
        else the first of the reader's and writer's failures (a client's error as it is, an engine failure as
        `internal`, anything unexpected logged and `internal`); None when both ended cleanly or the client left."""
        if aborted in done:
            return self._abort_error
        for task in (reader, writer):
            exc = task.exception() if task in done and not task.cancelled() else None
            if exc is None or isinstance(exc, GoneError | StreamClosedError):
                continue
            if isinstance(exc, ProtocolError):
                return exc
            if isinstance(exc, EngineFailureError):
                return ProtocolError(INTERNAL, f"the stream cannot continue: {exc}")
            self.logger.error("%s %s failed", self.kind, self.id, exc_info=exc)
            return ProtocolError(INTERNAL, "internal server error")
        return None

    async def _flush_stream(self, reader: asyncio.Task, writer: asyncio.Task) -> set[asyncio.Task]:
        """The server is going away (an `_reader_writer` flush): the reader settled, the audio received so far
        decoded and the writer given `FLUSH_TIMEOUT_S` to send its last results, before the abort's error and close.
        Returns the tasks that ended."""
        await settle({reader})
        if self.stream is None or self.stream.failure or self.stream.closed:
            return set()
        try:
            async with asyncio.timeout(FLUSH_TIMEOUT_S):
                await self.stream.stop()
                await asyncio.wait({writer})
        except (TimeoutError, StreamClosedError):
            self.logger.warning("%s %s: no final within %g s of the shutdown", self.kind, self.id, FLUSH_TIMEOUT_S)
        return {writer} if writer.done() else set()

    async def _updates(self) -> AsyncIterator[Update]:
        """The open engine stream's updates, to its end (the update with `end`, handled, is the last); each
        chunk's latency is observed once the update that answers it has been handled (sent).

        Raises:
            EngineFailureError: the engine failed on the stream.
        """
        assert self.stream is not None and self.model is not None
        latency = self.service.metrics.chunk_latency.labels(self.model)
        while True:
            update = await self.stream.next_update()
            if update.error:
                raise EngineFailureError(update.error)
            yield update
            now = time.monotonic()
            for t in update.arrived:
                latency.observe(now - t)
            if update.end:
                return

    async def _receive(self, clock: IdleClock, timed: bool = True) -> tuple[str | None, bytes | None, float] | None:
        """The client's next message as (text, bytes, arrival time.monotonic()), or None when the client has gone.
        The wait counts against `clock`; `timed=False` waits however long it takes.

        Raises:
            ProtocolError: idle_timeout, when the clock's allowance runs out first.
        """
        # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancellation that arrives as the
        # message does, and the reader would then outlive its session.
        waiting = time.monotonic()
        try:
            async with asyncio.timeout(max(clock.left, 0.0) if timed else None):
                msg = await self.ws.receive()
        except TimeoutError:
            raise ProtocolError(IDLE_TIMEOUT, f"no audio for {clock.timeout:g} s") from None
        arrived = time.monotonic()
        clock.waited(arrived - waiting)
        if msg["type"] == "websocket.disconnect":
            return None
        return msg.get("text"), msg.get("bytes"), arrived

    async def _send(self, msg: dict) -> None:
        """Sends a message; a client that does not take it within idle_timeout_s is treated as gone."""
        if self._closed:
            raise GoneError()
        try:
            async with asyncio.timeout(self.service.settings.idle_timeout_s):
                await self.ws.send_text(dumps(msg))
        except (WebSocketDisconnect, OSError, RuntimeError, TimeoutError) as e:
            self._closed = self._closed or isinstance(e, TimeoutError)  # a close would wait behind the same buffer
            raise GoneError() from e

    async def _close(self, code: int, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_SETTLE_S):
                await self.ws.close(code, reason)


class Session(Connection):
    """One `/v1/stream` connection (see `Connection`)."""

    def __init__(self, service: Service, ws: WebSocket) -> None:
        super().__init__(service, ws)
        self.state = ProtocolState(service.settings.max_message_bytes)
        self._opened = asyncio.Event()
        self._flushing = False  # the server is shutting down: the stream is being flushed for its last final
        self.opened: tuple[StartRequest, Engine, HeadPlan] | None = None  # the start as served, its engine and heads

    async def _serve(self) -> None:
        done, reader, writer, aborted = await self._reader_writer(self._read(), self._write(), self._flush)

        def failure(t: asyncio.Task) -> BaseException | None:
            return t.exception() if t in done and not t.cancelled() else None

        r, w = failure(reader), failure(writer)
        if writer in done and not writer.cancelled() and w is None and writer.result():
            return  # end and close 1000 were sent
        error: ProtocolError | None = None
        if aborted in done:
            error = self._abort_error
        elif isinstance(w, EngineFailureError) or (self.stream is not None and self.stream.failure):
            reason = self.stream.failure if self.stream is not None and self.stream.failure else str(w)
            error = ProtocolError(INTERNAL, f"the stream cannot continue: {reason}")
        elif isinstance(r, ProtocolError):
            error = r
        else:
            for exc in (r, w):
                if exc is not None and not isinstance(exc, GoneError | StreamClosedError):
                    log.error("session %s failed", self.id, exc_info=exc)
                    error = ProtocolError(INTERNAL, "internal server error")
        if error is not None:
            await self._fail(error)

    async def _flush(self, reader: asyncio.Task, writer: asyncio.Task) -> set[asyncio.Task]:
        """The server is going away: decodes the audio received so far and lets the writer send the open segment's
        final (at most `FLUSH_TIMEOUT_S` seconds), before the abort's error and close. Returns the tasks that ended."""
        stream = self.stream
        # Not opened: the drain came while the reader sent ready, before any audio; the writer never starts.
        if stream is None or stream.failure or stream.closed or not self._opened.is_set():
            return set()
        self._flushing = True
        await settle({reader})
        try:
            async with asyncio.timeout(FLUSH_TIMEOUT_S):
                await stream.stop()
                await asyncio.wait({writer})
        except (TimeoutError, StreamClosedError):
            log.warning("session %s: no final within %g s of the shutdown", self.id, FLUSH_TIMEOUT_S)
        return {writer} if writer.done() else set()

    async def _read(self) -> None:
        """Client messages until the client leaves; raises ProtocolError for the first bad one."""
        clock = IdleClock(self.service.settings.idle_timeout_s)
        # After stop the client has nothing more to say: it waits for the finals, however long they take.
        while (received := await self._receive(clock, timed=not self.state.stopped)) is not None:
            text, data, arrived = received
            if text is not None:
                parsed = self.state.on_text(text)
                if isinstance(parsed, StartRequest):
                    await self._start(parsed)
                elif isinstance(parsed, ContextRequest):
                    self._context(parsed)
                elif isinstance(parsed, FinalizeRequest):
                    assert self.stream is not None and self.model is not None
                    self.service.metrics.finalizes.labels(self.model).inc()
                    await self.stream.finalize()
                else:
                    assert self.stream is not None
                    await self.stream.stop()
            elif data is not None:
                samples = self.state.on_binary(data)
                assert self.stream is not None and self.state.start is not None
                seconds = samples.size / self.state.start.channels / self.state.start.sample_rate
                clock.audio(seconds)
                self.service.count_audio(seconds * self.state.start.channels, self.key)  # every channel is audio
                await self.stream.push(samples, arrived)

    def _context(self, context: ContextRequest) -> None:
        """A context message: the stream's own hotwords replaced (its LM and respelling kept).

        Raises:
            ProtocolError: invalid_value for hotwords the server refuses, or for any on a stream that asked for
                greedy search; unsupported_option where the model cannot take them.
        """
        assert self.opened is not None and self.stream is not None
        start, engine, plan = self.opened
        if context.hotwords and start.search == "greedy":
            raise ProtocolError(INVALID_VALUE, 'hotwords need beam search: this stream asked for "search": "greedy"')
        replace_hotwords(engine, self.stream, start, plan, context.hotwords, context.sounds_like)
        log.info("session %s: context of %d hotwords", self.id, len(context.hotwords))

    async def _start(self, start: StartRequest) -> None:
        svc = self.service
        start = svc.policy(start, self.key)  # the account's rules (redaction, masking) over the stream's choice
        adaptation = start_adaptation(start)
        engine, search, plan = resolve_start(svc, start, adaptation)
        self.opened = (start, engine, plan)
        endpoint = stream_endpoint(engine, start)
        self._open_channels(engine, start, search, plan, adaptation, start.partials, start.alternatives)
        self.model = engine.name
        svc.metrics.streams.labels(engine.name, "parley").inc()
        svc.metrics.stream_encodings.labels(start.encoding).inc()
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
                **_adaptation_fields(engine, engine.defaulted(plan, search, adaptation)),
                **({"talkers": True} if start.talkers else {}),
                **({"endpointing": endpoint.describe()} if endpoint is not None else {}),
                **({"alternatives": start.alternatives} if start.alternatives else {}),
                **({"channels": start.channels} if start.channels > 1 else {}),
            )
        )
        self._opened.set()

    async def _write(self) -> bool:
        """Engine updates to the client, then end and close 1000. Returns whether it sent them: at a shutdown's
        flush the stream ends without them (the abort's error and close follow)."""
        await self._opened.wait()
        async for update in self._updates():
            for r in update.results:
                msg = result_message(r)
                if update.channel is not None:  # a multichannel stream's (server/multichannel.py)
                    msg["channel"] = update.channel
                if update.finalized:  # the answer to the client's finalize
                    msg["finalized"] = True
                await self._send(msg)
        if self._flushing and not self.state.stopped:
            return False
        await self._send(end_message())
        await self._close(CLOSE_NORMAL)
        log.info("session %s: ended after %.2f s of audio", self.id, self.state.seconds_received)
        return True

    async def _fail(self, error: ProtocolError) -> None:
        """Sends the error message and closes with its code (quietly, if the client is already gone)."""
        self._count_failure(error)
        with contextlib.suppress(GoneError):
            await self._send(error.to_message())
        await self._close(error.close_code)


async def settle(tasks: set[asyncio.Task]) -> None:
    """Cancels `tasks` and waits for them to end, cancelling again the ones that take more than `_SETTLE_S`."""
    pending = {t for t in tasks if not t.done()}
    for _ in range(3):
        for t in pending:
            t.cancel()
        if not pending:
            break
        _, pending = await asyncio.wait(pending, timeout=_SETTLE_S)
    if pending:
        log.error("tasks %s ignored their cancellation", sorted(t.get_name() for t in pending))
    for t in tasks:  # their exceptions are read by the caller, or deliberately dropped here
        if t.done() and not t.cancelled():
            t.exception()
