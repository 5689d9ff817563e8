"""`parley serve`: starts the streaming recognition server on the bundles it finds.

    parley serve --host 0.0.0.0 --port 8000 --bundles bundles/
    PARLEY_API_KEYS=secret PARLEY_MAX_BATCH=64 parley serve --providers cuda
    parley serve --ssl-certfile cert.pem --ssl-keyfile key.pem     # wss:// and https://

Every setting is a flag and a `PARLEY_*` environment variable (server/settings.py); flags win. The app is
server/app.py, run by uvicorn. On SIGTERM or Ctrl-C the server drains: /readyz turns 503, new streams are refused
with `shutting_down`, open ones get up to --drain-timeout-s to finish, then each gets its open segment's final and
is closed (code 1001). A second Ctrl-C stops at once.

HTTP is served by h11, which bounds the request line and headers (--max-header-bytes); a connection that has not sent
its request's headers within --header-timeout-s is closed. Access logs show `?api_key=` values as `***`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from server.logs import configure as configure_logging
from server.settings import DEFAULT_BUNDLES, Settings, add_arguments

if TYPE_CHECKING:
    import uvicorn

    from server.audiosocket import Calls
    from server.service import Service

__all__ = ["DEFAULT_BUNDLES", "RedactingFilter", "main", "make_server", "redact"]

SECRET_PARAMS = ("api_key",)  # query parameters whose values never reach a log
_MAX_LOGGED_CHARS = 512  # a logged request path (up to --max-header-bytes long) is cut to this
WATCHERS_FLUSH_S = 5.0  # a shutdown waits this long at most for the ended calls' watchers to get their end


def redact(text: str) -> str:
    """A logged path with query: the values of `SECRET_PARAMS` replaced by "***" (whatever percent-encoding their
    names use: the app decodes them), and cut to `_MAX_LOGGED_CHARS` characters."""
    path, sep, query = text.partition("?")
    if sep:
        params = []
        for param in query.split("&"):
            name, eq, _ = param.partition("=")
            params.append(f"{name}=***" if eq and unquote_plus(name) in SECRET_PARAMS else param)
        text = f"{path}?{'&'.join(params)}"
    return text if len(text) <= _MAX_LOGGED_CHARS else text[: _MAX_LOGGED_CHARS - 1] + "…"


class RedactingFilter(logging.Filter):
    """For uvicorn's loggers, whose access and WebSocket lines carry the request's path and query as arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install_log_redaction() -> None:
    """Adds `RedactingFilter` to uvicorn's loggers (once)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


def route_uvicorn_logs_to_root() -> None:
    """uvicorn's loggers without handlers of their own, passing their records to the root's (server/logs.py)."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        for h in list(logger.handlers):
            logger.removeHandler(h)
        logger.propagate = True


def header_deadline_protocol(seconds: float) -> type:
    """uvicorn's h11 protocol, closing a connection whose request line and headers are not complete `seconds` after
    it opened (or after its previous response): uvicorn's own keep-alive timer restarts at every byte received, so
    a client sending a byte now and then, or nothing at all before its first request, would hold the connection."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:  # the headers are in (or the connection was upgraded)
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineH11Protocol


def make_server(settings: Settings) -> uvicorn.Server:
    """A uvicorn server running `create_app(settings)` that drains its streams before shutting down.

    `server.run()` blocks; `server.should_exit = True` (or a signal) starts the shutdown.
    """
    import uvicorn

    from server.app import create_app

    class DrainingServer(uvicorn.Server):
        """uvicorn closes every WebSocket (1012) as its shutdown begins; Parley first lets streams finish."""

        def __init__(self, config: uvicorn.Config, service: Service, calls: Calls) -> None:
            super().__init__(config)
            self.service, self.calls = service, calls

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await self.service.drain(self.service.settings.drain_timeout_s, lambda: self.force_exit)
            await self.calls.flushed(WATCHERS_FLUSH_S)  # the ended calls' watchers get their end before the 1012
            await super().shutdown(sockets)

    app = create_app(settings)
    kwargs = settings.uvicorn_kwargs()
    kwargs["http"] = header_deadline_protocol(settings.header_timeout_s)
    if settings.log_format == "json":
        kwargs["log_config"] = None  # uvicorn's loggers keep no handler of their own: the root's (server/logs.py)
    config = uvicorn.Config(app, lifespan="on", **kwargs)
    if settings.log_format == "json":
        route_uvicorn_logs_to_root()  # whatever configured them before in this process
    install_log_redaction()  # after Config, which configures uvicorn's logging
    return DrainingServer(config, app.state.parley, app.state.calls)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="parley serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        settings = Settings.from_env_and_args(args)
    except ValueError as e:
        p.error(str(e))
    from server.service import bundle_folders

    if not bundle_folders(settings.bundles):
        print(
            f"parley serve: no model yet: no bundle (*/bundle.json) in {settings.bundles}.\n"
            "The default English bundle is trained and committed by the model and export issues.",
            file=sys.stderr,
        )
        return 2
    level = logging.DEBUG if settings.log_level == "trace" else getattr(logging, settings.log_level.upper())
    configure_logging(level, settings.log_format)
    make_server(settings).run()
    return 0
