"""What the TCP protocols beside the HTTP server share (Home Assistant's Wyoming, server/wyoming.py; Asterisk's
AudioSocket, server/audiosocket.py): a listener started in the app's lifespan whose connections carry no credentials
(they use the account of the key a setting names), and a session's skeleton: serving to the end whatever happens,
reading with the idle timeout and the drain's abort, letting go of its stream and slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from server.batcher import StreamClosedError
from server.protocol import INTERNAL, ProtocolError

if TYPE_CHECKING:
    from server.batcher import Stream
    from server.service import Service

log = logging.getLogger("parley.tcp")

T = TypeVar("T")


class TcpSession:
    """One connection of a TCP protocol. Subclasses serve it (`_serve`), say what an idle connection means
    (`_idle`), answer a failure (`_fail`: counted and logged here) and let go of what they hold (`_release`)."""

    kind = "tcp"
    logger = log

    def __init__(self, service: Service, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str) -> None:
        self.service = service
        self.reader = reader
        self.writer = writer
        self.key = key or None
        self.id = secrets.token_hex(4)
        self._abort_error: ProtocolError | None = None
        self._abort = asyncio.Event()
        self._slot = False  # holding one of the server's stream slots
        self.stream: Stream | None = None  # the open engine stream, if any
        self._writer_task: asyncio.Task | None = None  # what sends its results

    def _take_slot(self) -> None:
        """Takes a stream slot for the stream about to open (and counts as a session a drain ends).

        Raises:
            ProtocolError: why the server takes no stream now (draining, full, the key's limit).
        """
        refusal = self.service.admit(self.key)
        if refusal is not None:
            raise refusal
        self.service.session_opened(self, self.key)
        self._slot = True

    def _give_slot(self) -> None:
        if self._slot:
            self._slot = False
            self.service.session_closed(self, self.key)

    async def _stop_stream(self, timeout: float | None) -> None:
        """The open stream's last results: its stop, and up to `timeout` seconds (None: however long) for the
        writer to send them."""
        stream, task = self.stream, self._writer_task
        if stream is None or task is None or task.done():
            return
        try:
            async with asyncio.timeout(timeout):
                await stream.stop()
                await asyncio.wait({task})
        except TimeoutError:
            self.logger.warning("%s %s: no last results within %g s of the shutdown", self.kind, self.id, timeout)

    async def _let_go(self) -> None:
        """The stream, its writer and its slot let go."""
        task, self._writer_task = self._writer_task, None
        if task is not None:
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        self._give_slot()

    def abort(self, error: ProtocolError) -> None:
        """Ends the session from outside (the server drains)."""
        if self._abort_error is None:
            self._abort_error = error
            self._abort.set()

    async def run(self) -> None:
        """Serves the connection to its end. Never raises."""
        try:
            await self._serve()
        except ProtocolError as e:
            await self._fail(e)
        except (ConnectionError, StreamClosedError, TimeoutError):
            pass  # the client left, or stopped reading
        except Exception:
            self.logger.exception("%s %s failed", self.kind, self.id)
            await self._fail(ProtocolError(INTERNAL, "internal server error"))
        finally:
            await self._release()
            self.writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self.writer.wait_closed()

    async def _next(self, read: Coroutine[Any, Any, T], timeout: float) -> T | None:
        """What `read` gives; None when the session is aborted (`_abort_error` says why) or, by `_idle`'s leave,
        when nothing came for `timeout` seconds."""
        reading = asyncio.ensure_future(read)
        aborted = asyncio.ensure_future(self._abort.wait())
        try:
            done, _ = await asyncio.wait({reading, aborted}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            aborted.cancel()
        if reading in done:
            return reading.result()
        reading.cancel()
        with contextlib.suppress(BaseException):
            await reading
        if aborted not in done:
            self._idle(timeout)
        return None

    async def _serve(self) -> None:
        raise NotImplementedError

    def _idle(self, timeout: float) -> None:
        """Nothing came for `timeout` seconds: raise the error that ends the session, or return to end it quietly."""
        raise NotImplementedError

    async def _fail(self, error: ProtocolError) -> None:
        self.service.count_error(error.code)
        level = logging.ERROR if error.code == INTERNAL else logging.INFO
        self.logger.log(level, "%s %s: %s: %s", self.kind, self.id, error.code, error.message)

    async def _release(self) -> None:
        raise NotImplementedError


class TcpListener:
    """A TCP server of a `Service` for one protocol: `await start(host, port)`, `port`, `await close()`. Subclasses
    make each connection's session (`session`) and name the setting of the key its connections use (`key_setting`).
    """

    name = "tcp"
    key_setting = ""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.server: asyncio.Server | None = None
        self.sessions: set[asyncio.Task] = set()

    @property
    def key(self) -> str:
        return getattr(self.service.settings, self.key_setting)

    def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> TcpSession:
        raise NotImplementedError

    async def start(self, host: str, port: int, limit: int = 1 << 16) -> None:
        """Listens on (host, port); `limit` bounds a line a session reads.

        Raises:
            ValueError: the server has API keys and the key setting names none of them.
        """
        keys = self.service.keys
        if keys.required and not keys.valid(self.key or None):
            flag = "--" + self.key_setting.replace("_", "-")
            raise ValueError(
                f"{self.key_setting}: the server has API keys and {self.name} carries none: give {flag}, one of the "
                f"server's keys (its account is used for every {self.name} connection)"
            )
        self.server = await asyncio.start_server(self._connected, host, port, limit=limit)
        log.info("%s: listening on %s:%d", self.name, host, self.port)

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.sockets
        return self.server.sockets[0].getsockname()[1]

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.sessions.add(task)
        try:
            await self.session(reader, writer).run()
        finally:
            self.sessions.discard(task)

    async def close(self) -> None:
        """Stops listening and ends every connection (a drain has ended their streams first)."""
        if self.server is None:
            return
        self.server.close()
        for task in list(self.sessions):
            task.cancel()
        if self.sessions:
            await asyncio.wait(set(self.sessions), timeout=2.0)
        self.server = None
