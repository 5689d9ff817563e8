"""What the routes depend on (FastAPI's `Depends`): the app's settings and service, and the checks of API keys and
origins; and how an HTTP request they refuse is answered.

    @router.get("/v1/models", dependencies=[Depends(require_api_key)])
    async def models(service: ServiceDep) -> JSONResponse: ...

    app.dependency_overrides[get_service] = lambda: Service(Settings(api_keys=("k",)))   # in a test

A refusal is a `ProtocolError` raised from the dependency; the app's exception handler (server/app.py) answers it:
over HTTP with `error_response`, on a WebSocket as the stream's protocol answers errors (server/routes_stream.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.requests import HTTPConnection
from fastapi.responses import JSONResponse
from fastapi.websockets import WebSocket

from server.metrics import ServerMetrics
from server.protocol import (
    FORBIDDEN_ORIGIN,
    IDLE_TIMEOUT,
    INTERNAL,
    SERVER_FULL,
    SHUTTING_DOWN,
    TOO_BIG,
    TOO_MANY_STREAMS,
    UNAUTHORIZED,
    UNKNOWN_CALL,
    UNKNOWN_MODEL,
    UNSUPPORTED_ENCODING,
    ProtocolError,
    api_key_from_request,
    error_message,
    preview,
)
from server.service import Service
from server.settings import Settings

# HTTP status of each error code on the HTTP endpoints; codes not listed answer 400.
HTTP_STATUS = {
    UNAUTHORIZED: 401,
    FORBIDDEN_ORIGIN: 403,
    UNKNOWN_MODEL: 404,
    UNKNOWN_CALL: 404,
    IDLE_TIMEOUT: 408,
    TOO_BIG: 413,
    UNSUPPORTED_ENCODING: 415,
    INTERNAL: 500,
    SERVER_FULL: 503,
    SHUTTING_DOWN: 503,
    TOO_MANY_STREAMS: 429,
}


def get_settings(conn: HTTPConnection) -> Settings:
    """The settings the app was created with (read once, by `parley serve` or the caller of `create_app`)."""
    return conn.app.state.settings


def get_service(conn: HTTPConnection) -> Service:
    """The app's `Service`: engines, admission, draining, metrics."""
    return conn.app.state.parley


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[Service, Depends(get_service)]


def _has_valid_key(conn: HTTPConnection, service: Service) -> bool:
    # The service's KeyRing: the settings' keys, and the keys file's as it is now (server/keys.py).
    return service.keys.valid(api_key_from_request(conn.headers, conn.query_params))


def require_api_key(conn: HTTPConnection, service: ServiceDep) -> None:
    """An HTTP endpoint's key check (none when the server has no keys). Browsers' origins are CORS's business.

    Raises:
        ProtocolError: unauthorized (401).
    """
    if not _has_valid_key(conn, service):
        raise ProtocolError(UNAUTHORIZED, "a valid API key is required")


def require_stream_access(websocket: WebSocket, settings: SettingsDep, service: ServiceDep) -> None:
    """A new stream's key, then its Origin (a page on another site must not open streams with its visitor's key).

    Raises:
        ProtocolError: unauthorized or forbidden_origin (close 1008).
    """
    if not _has_valid_key(websocket, service):
        raise ProtocolError(UNAUTHORIZED, "a valid API key is required (Authorization: Bearer KEY)")
    origin = websocket.headers.get("origin")
    if not settings.origin_allowed(origin):
        raise ProtocolError(FORBIDDEN_ORIGIN, f"origin {preview(origin)} is not allowed")


def error_response(metrics: ServerMetrics, error: ProtocolError) -> JSONResponse:
    """An HTTP endpoint's answer to `error`: the error message, with `HTTP_STATUS`'s status; counted."""
    metrics.errors.labels(error.code).inc()
    return JSONResponse(error_message(error.code, error.message), status_code=HTTP_STATUS.get(error.code, 400))
