"""The FastAPI app, put together from its routers: the streaming WebSockets (server/routes_stream.py: `WS /v1/stream`,
OpenAI's `WS /v1/realtime`, Deepgram's `WS /v1/listen` and Vosk-server's `WS /`), transcription
(server/routes_transcribe.py: `POST /v1/transcribe`; server/routes_openai.py: OpenAI's `POST /v1/audio/transcriptions`
and `/v1/audio/translations`; server/routes_deepgram.py: Deepgram's `POST /v1/listen`) and operations
(server/routes_ops.py: `/healthz`, `/readyz`, `/v1/models`, `/metrics`, the live-caption page at `GET /`, the
JavaScript client at `/sdk`). With `--wyoming-port`, the lifespan also serves Home Assistant's Wyoming protocol on
that TCP port (server/wyoming.py; `app.state.wyoming` is its listener), and with `--audiosocket-port` Asterisk's
AudioSocket calls (server/audiosocket.py), whose captions server/routes_calls.py serves at `/v1/calls/{uuid}`.

    app = create_app(Settings(bundles="bundles/"))   # bundles load in the app's lifespan
    uvicorn.run(app, **settings.uvicorn_kwargs())     # `parley serve` does this, with draining (server/serve.py)

The app's state is its settings (`app.state.settings`), its `server.service.Service` (`app.state.parley`: engines,
admission, draining) and the metrics registry (`app.state.metrics`); routes get the first two through the
dependencies of server/deps.py, which also check API keys and origins. A `ProtocolError` a route or dependency raises
is answered here: a JSON error over HTTP, the stream protocol's error and close on a WebSocket.
"""

from __future__ import annotations

import contextlib
import mimetypes
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.requests import HTTPConnection
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from server import routes_calls, routes_deepgram, routes_openai, routes_ops, routes_stream, routes_transcribe
from server.audiosocket import AudioSocketListener, Calls
from server.deps import error_response
from server.metrics import ServerMetrics
from server.protocol import ProtocolError
from server.routes_ops import SDK_DIR, WEB_DIR
from server.service import Service
from server.settings import Settings
from server.wyoming import WyomingListener


async def _answer_protocol_error(conn: HTTPConnection, error: Exception) -> Response | None:
    """The answer to a `ProtocolError` a dependency or route raised (Starlette passes a Request or a WebSocket)."""
    assert isinstance(error, ProtocolError), error
    metrics: ServerMetrics = conn.app.state.metrics
    if isinstance(conn, WebSocket):
        await routes_stream.refuse(conn, error, metrics)
        return None
    assert isinstance(conn, Request), conn
    return error_response(metrics, error)


def create_app(settings: Settings, metrics: ServerMetrics | None = None) -> FastAPI:
    """The server as an ASGI app; `app.state.parley` is its `Service` (drain it before shutting down).

    Args:
        settings: the server settings, read once; routes get them through `server.deps.get_settings`.
        metrics: the registry /metrics serves (a fresh one by default).
    """
    service = Service(settings, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        wyoming: WyomingListener | None = None
        audiosocket: AudioSocketListener | None = None
        try:
            if settings.wyoming_port is not None:  # Home Assistant's protocol on a port of its own
                wyoming = WyomingListener(service)
                await wyoming.start(settings.host, settings.wyoming_port)
            if settings.audiosocket_port is not None:  # Asterisk's calls, captioned at /v1/calls/{uuid}
                audiosocket = AudioSocketListener(service, app.state.calls)
                await audiosocket.start(settings.host, settings.audiosocket_port)
            app.state.wyoming, app.state.audiosocket = wyoming, audiosocket
            yield
        finally:
            for listener in (wyoming, audiosocket):
                if listener is not None:
                    await listener.close()
            await app.state.calls.close()  # the finished calls' webhooks still being sent
            await service.stop()

    app = FastAPI(title="Parley", summary="streaming speech recognition", lifespan=lifespan)
    app.state.settings = settings
    app.state.parley = service
    app.state.metrics = service.metrics
    app.state.calls = Calls(settings.calls_webhook, settings.calls_webhook_secret)  # Asterisk's, by UUID
    app.add_exception_handler(ProtocolError, _answer_protocol_error)
    if settings.allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.allowed_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    app.include_router(routes_stream.router)
    app.include_router(routes_transcribe.router)
    app.include_router(routes_openai.router)
    app.include_router(routes_deepgram.router)
    app.include_router(routes_calls.router)
    app.include_router(routes_ops.router)
    if WEB_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
        app.include_router(routes_ops.page)
    if SDK_DIR.is_dir():  # `import { ParleyStream } from "/sdk/parley.mjs"` (clients/js)
        mimetypes.add_type("text/javascript", ".mjs")  # a module script must come as JavaScript, whatever the OS says
        app.mount("/sdk", StaticFiles(directory=SDK_DIR), name="sdk")
    return app
