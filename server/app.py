"""The FastAPI app: `WS /v1/stream`, `POST /v1/transcribe` (JSON, SRT or WebVTT), `GET /v1/models`, `/healthz`,
`/readyz`, `/metrics`, the live-caption page at `GET /`, and Vosk-server's WebSocket protocol at `WS /`
(server/vosk.py).

    app = create_app(Settings(bundles="bundles/"))   # bundles load in the app's lifespan
    uvicorn.run(app, **settings.uvicorn_kwargs())     # `parley serve` does this, with draining (server/serve.py)

The wire protocol is docs/protocol.md; a connection is a `server.session.Session`, decoding is the bundle's
`server.engine.Engine`. Every sub-folder of `settings.bundles` with a bundle.json is loaded; one that fails to load is
logged and skipped, and /readyz answers 503 until at least one is loaded (and again while draining).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from parley.audio import ENCODINGS, read_wav
from server.bundle import BUNDLE_JSON, Bundle, BundleError, load_bundle
from server.engine import Adaptation, Engine, EngineConfig, HeadPlan, InvalidOptionError, UnsupportedOptionError
from server.metrics import CONTENT_TYPE, ServerMetrics
from server.protocol import (
    BAD_AUDIO,
    FORBIDDEN_ORIGIN,
    INTERNAL,
    INVALID_VALUE,
    SEARCH_METHODS,
    SERVER_FULL,
    SHUTTING_DOWN,
    STREAM_PATH,
    TOO_BIG,
    UNAUTHORIZED,
    UNKNOWN_MODEL,
    UNSUPPORTED_ENCODING,
    UNSUPPORTED_OPTION,
    ProtocolError,
    api_key_from_request,
    api_key_valid,
    decode_audio_message,
    error_message,
    preview,
    start_from_dict,
    transcript_response,
)
from server.session import FLUSH_TIMEOUT_S, Session, start_adaptation
from server.settings import DEFAULT_MODEL, Settings
from server.subtitles import FORMATS
from server.subtitles import MEDIA_TYPES as SUBTITLE_TYPES
from server.subtitles import render as render_subtitles
from server.tsot import NUM_CHANNELS
from server.vosk import VOSK_PATH, VoskSession

log = logging.getLogger("parley.app")

# The live-caption page (static files, no build step), served at / with its assets under /static/.
WEB_DIR = Path(__file__).resolve().parents[1] / "clients" / "web"

WAV_TYPES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")
RAW_TYPES = ("application/octet-stream",)
# HTTP status of each error code on the HTTP endpoints; codes not listed answer 400.
HTTP_STATUS = {
    UNAUTHORIZED: 401,
    FORBIDDEN_ORIGIN: 403,
    UNKNOWN_MODEL: 404,
    TOO_BIG: 413,
    UNSUPPORTED_ENCODING: 415,
    INTERNAL: 500,
    SERVER_FULL: 503,
    SHUTTING_DOWN: 503,
}


def bundle_folders(path: Path) -> list[Path]:
    """The bundle folders under `path`: its sub-folders with a bundle.json, sorted; or `path` itself if it is one."""
    if (path / BUNDLE_JSON).is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if (p / BUNDLE_JSON).is_file())


def load_bundles(settings: Settings) -> dict[str, Bundle]:
    """Loads every bundle `settings.bundles` holds, by name; a bundle that fails is logged and skipped."""
    bundles: dict[str, Bundle] = {}
    for folder in bundle_folders(settings.bundles):
        try:
            b = load_bundle(folder, providers=settings.providers, threads=settings.intra_op_threads)
        except (BundleError, ValueError, OSError) as e:
            log.error("skipping bundle %s: %s", folder, e)
            continue
        if b.name in bundles:
            log.error("skipping bundle %s: the name %r is taken by %s", folder, b.name, bundles[b.name].path)
            continue
        log.info("loaded bundle %s from %s (%s, %s)", b.name, folder, b.precision, b.encoder.get_providers()[0])
        bundles[b.name] = b
    if not bundles:
        log.error("no bundle loaded from %s: /readyz stays 503", settings.bundles)
    return bundles


class Service:
    """What the app holds: settings, metrics, one engine per bundle, the open connections, and whether it drains.

    Args:
        settings: the server settings.
        metrics: the registry /metrics serves (a fresh one by default).
    """

    def __init__(self, settings: Settings, metrics: ServerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or ServerMetrics()
        self.engines: dict[str, Engine] = {}
        self.default_model: str | None = None
        self.draining = False
        self.connections = 0  # open streams and running transcriptions
        self.sessions: set[Session | VoskSession] = set()

    # ---- Lifecycle ----

    async def start(self) -> None:
        """Loads the bundles (in a thread: it reads and hashes files) and starts their engines."""
        bundles = await asyncio.to_thread(load_bundles, self.settings)
        config = EngineConfig.from_settings(self.settings)
        for name, bundle in bundles.items():
            engine = Engine(bundle, config, self.metrics)
            await engine.start()
            self.engines[name] = engine
        wanted = self.settings.default_model
        if wanted is not None and wanted not in self.engines:
            log.error("default model %r is not loaded; using the first bundle by name", wanted)
            wanted = None
        if wanted is None and DEFAULT_MODEL in self.engines:
            wanted = DEFAULT_MODEL
        self.default_model = wanted or (min(self.engines) if self.engines else None)

    async def stop(self) -> None:
        for engine in self.engines.values():
            await engine.close()
        self.engines.clear()

    @property
    def ready(self) -> bool:
        return bool(self.engines) and not self.draining

    async def drain(self, timeout: float, force: Callable[[], bool] = lambda: False) -> None:
        """Stops taking new streams, lets open ones finish for up to `timeout` seconds, then ends the rest with
        their open segment's final (however short `timeout` is) and `shutting_down` (close 1001)."""
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self.connections:
            log.info("draining: waiting up to %g s for %d connection(s)", timeout, self.connections)
        while self.connections and loop.time() < deadline and not force():
            await asyncio.sleep(0.05)
        for s in list(self.sessions):
            s.abort(ProtocolError(SHUTTING_DOWN, "the server is shutting down: reconnect, to another replica"))
        deadline = loop.time() + FLUSH_TIMEOUT_S + 2.0
        while self.sessions and loop.time() < deadline:
            await asyncio.sleep(0.02)

    # ---- Connections ----

    def authorized(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        return api_key_valid(api_key_from_request(headers, query), self.settings.api_keys)

    def admit(self, headers: Mapping[str, str], query: Mapping[str, str], origin: str | None) -> ProtocolError | None:
        """Why a new stream may not open (in the order a client needs to hear it), or None."""
        if not self.authorized(headers, query):
            return ProtocolError(UNAUTHORIZED, "a valid API key is required (Authorization: Bearer KEY)")
        if not self.settings.origin_allowed(origin):
            return ProtocolError(FORBIDDEN_ORIGIN, f"origin {preview(origin)} is not allowed")
        if self.draining:
            return ProtocolError(SHUTTING_DOWN, "the server is shutting down: reconnect, to another replica")
        if self.connections >= self.settings.max_connections:
            return ProtocolError(
                SERVER_FULL, f"the server has {self.settings.max_connections} streams open: try again later"
            )
        return None

    def session_opened(self, session: Session | VoskSession) -> None:
        self.connections += 1
        self.sessions.add(session)
        self.metrics.active_streams.inc()

    def session_closed(self, session: Session | VoskSession) -> None:
        self.connections -= 1
        self.sessions.discard(session)
        self.metrics.active_streams.dec()

    def count_error(self, code: str) -> None:
        self.metrics.errors.labels(code).inc()

    def resolve(
        self,
        model: str | None,
        search: str | None,
        language: str | None,
        translate: Sequence[str],
        languages: Sequence[str] = (),
        adaptation: Adaptation | None = None,
    ) -> tuple[Engine, str, HeadPlan]:
        """The engine, search and heads for a start's (or a request's) choices; hotwords and an LM are checked
        against the server's limits and the model (`Engine.adapt`), and make beam search the default.

        Raises:
            ProtocolError: unknown_model; unsupported_option for a language, translation, restriction or LM the
                model lacks; invalid_value for hotwords the server refuses or greedy search with adaptation.
        """
        name = model or self.default_model
        engine = self.engines.get(name) if name is not None else None
        if engine is None:
            if not self.engines:
                raise ProtocolError(UNKNOWN_MODEL, "this server has no model loaded")
            raise ProtocolError(UNKNOWN_MODEL, f"no model {name!r}; this server has {sorted(self.engines)}")
        try:
            plan = engine.plan(language, translate, languages)
            search = engine.search_for(search, adaptation)
            if adaptation is not None and adaptation.active:
                engine.adapt(plan, adaptation)
        except UnsupportedOptionError as e:
            raise ProtocolError(UNSUPPORTED_OPTION, f"model {engine.name} {e}") from None
        except InvalidOptionError as e:
            raise ProtocolError(INVALID_VALUE, str(e)) from None
        return engine, search, plan

    def models(self) -> dict:
        """The body of GET /v1/models."""
        return {
            "default": self.default_model,
            "models": [
                {
                    "name": e.name,
                    "languages": e.languages,
                    "translate": e.translate_languages,
                    "chunk_ms": e.chunk_ms,
                    "search": list(SEARCH_METHODS),
                    "lms": e.lms,
                    **({"auto": e.auto_languages} if e.auto_languages else {}),
                    **({"speakers": NUM_CHANNELS} if e.multi_talker else {}),
                }
                for _, e in sorted(self.engines.items())
            ],
        }

    # ---- POST /v1/transcribe ----

    async def transcribe(self, request: Request) -> dict:
        """Decodes a request's audio through the engine.

        Raises:
            ProtocolError: anything wrong with the request (the HTTP status is `HTTP_STATUS`'s).
        """
        q = request.query_params
        limit = self.settings.max_upload_bytes
        length = request.headers.get("content-length")
        # isascii: str.isdigit() takes "²", which int() refuses; the length check keeps int() off huge numbers.
        if length is not None and length.isascii() and length.isdigit() and (len(length) > 18 or int(length) > limit):
            raise ProtocolError(TOO_BIG, f"body of {preview(length, 20)} bytes is over the limit of {limit} bytes")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in WAV_TYPES + RAW_TYPES:
            raise ProtocolError(
                UNSUPPORTED_ENCODING,
                f"Content-Type {preview(kind or 'missing')}: send audio/wav or application/octet-stream",
            )
        body = bytearray()
        async for piece in request.stream():
            body += piece
            if len(body) > limit:
                raise ProtocolError(TOO_BIG, f"body over the limit of {limit} bytes")
        if kind in WAV_TYPES:
            try:
                samples, rate = await asyncio.to_thread(read_wav, io.BytesIO(bytes(body)))
            except ValueError as e:
                raise ProtocolError(BAD_AUDIO, f"the body: {e}") from None
            encoding = "s16le"
        else:
            text = q.get("sample_rate")
            if text is None:
                raise ProtocolError(INVALID_VALUE, "raw PCM needs the query parameters sample_rate and encoding")
            try:
                rate = int(text)
            except ValueError:  # also integers of over 4300 digits
                raise ProtocolError(INVALID_VALUE, f"sample_rate must be an integer, got {preview(text)}") from None
            encoding = q.get("encoding", "s16le")
            if encoding not in ENCODINGS:
                raise ProtocolError(UNSUPPORTED_ENCODING, f"encoding {preview(encoding)}: use one of {list(ENCODINGS)}")
            samples = np.zeros(0, dtype=np.float32)
        translate = [t for t in q.get("translate", "").split(",") if t]
        fields = {"type": "start", "sample_rate": rate, "encoding": encoding, "translate": translate}
        fields.update({k: q[k] for k in ("model", "search", "language") if q.get(k)})
        if q.get("languages"):
            fields["languages"] = [x for x in q["languages"].split(",") if x]
        if q.get("hotwords"):
            fields["hotwords"] = [x for x in q["hotwords"].split(",") if x.strip()]
        if q.get("lm"):
            fields["lm"] = q["lm"]
        for key in ("lm_scale", "ilm_scale"):
            if q.get(key):
                try:
                    fields[key] = float(q[key])
                except ValueError:
                    raise ProtocolError(INVALID_VALUE, f"{key} must be a number, got {preview(q[key])}") from None
        start = start_from_dict(fields)  # the rate range, search and names, checked as a start message is
        if kind in RAW_TYPES:
            samples = await asyncio.to_thread(decode_audio_message, bytes(body), encoding)
        adaptation = start_adaptation(start)
        engine, search, plan = self.resolve(
            start.model, start.search, start.language, start.translate, start.languages, adaptation
        )
        finals = await engine.transcribe(samples, rate, search, plan, adaptation)
        return transcript_response(engine.name, samples.size / rate, finals)


def _error_response(service: Service, error: ProtocolError) -> JSONResponse:
    service.count_error(error.code)
    return JSONResponse(error_message(error.code, error.message), status_code=HTTP_STATUS.get(error.code, 400))


def create_app(settings: Settings, metrics: ServerMetrics | None = None) -> FastAPI:
    """The server as an ASGI app; `app.state.parley` is its `Service` (drain it before shutting down)."""
    service = Service(settings, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="Parley", summary="streaming speech recognition", lifespan=lifespan)
    app.state.parley = service
    if settings.allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.allowed_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )

    def unauthorized(request: Request) -> JSONResponse | None:
        if service.authorized(request.headers, request.query_params):
            return None
        return _error_response(service, ProtocolError(UNAUTHORIZED, "a valid API key is required"))

    @app.websocket(STREAM_PATH)
    async def stream(websocket: WebSocket) -> None:
        await Session(service, websocket).run()

    # Vosk-server's protocol shares `/` with the page: Starlette routes the WebSocket upgrade here, a plain GET there.
    @app.websocket(VOSK_PATH)
    async def vosk(websocket: WebSocket) -> None:
        await VoskSession(service, websocket).run()

    if WEB_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

        @app.get("/", include_in_schema=False)
        async def page() -> FileResponse:
            return FileResponse(WEB_DIR / "index.html")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if service.ready:
            return JSONResponse({"status": "ready"})
        status = "draining" if service.draining else "no model loaded"
        return JSONResponse({"status": status}, status_code=503)

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        return unauthorized(request) or JSONResponse(service.models())

    @app.get("/metrics")
    async def metrics_text(request: Request) -> Response:
        return unauthorized(request) or Response(service.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.post("/v1/transcribe")
    async def transcribe(request: Request) -> Response:
        response = unauthorized(request)
        if response is None:
            response = await _transcribe(request)
        service.metrics.transcribe_requests.labels(str(response.status_code)).inc()
        return response

    async def _transcribe(request: Request) -> Response:
        fmt = request.query_params.get("format") or "json"
        if fmt not in FORMATS:
            error = ProtocolError(INVALID_VALUE, f"format {preview(fmt)} is not one of {list(FORMATS)}")
            return _error_response(service, error)
        refusal = service.admit(request.headers, request.query_params, None)
        if refusal is not None:
            return _error_response(service, refusal)
        service.connections += 1
        try:
            body = await service.transcribe(request)
            if fmt == "json":
                return JSONResponse(body)
            return Response(render_subtitles(body["segments"], fmt), media_type=SUBTITLE_TYPES[fmt])
        except ProtocolError as e:
            return _error_response(service, e)
        except Exception:
            log.exception("POST /v1/transcribe failed")
            return _error_response(service, ProtocolError(INTERNAL, "internal server error"))
        finally:
            service.connections -= 1

    return app
