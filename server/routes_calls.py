"""The captions of Asterisk's calls (server/audiosocket.py, docs/asterisk.md), by the call's UUID: `GET /v1/calls`
(the calls, live and recent), `GET /v1/calls/{uuid}` (one call as it stands: its finals, text, partial, DTMF) and
`WS /v1/calls/{uuid}` (watched live: ready, the finals so far, then partials, finals and DTMF as the call goes, and
end at its hangup). A watcher may connect before the call begins: it waits up to idle_timeout_s for it. API keys and
origins are checked as on every route."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.responses import JSONResponse

from server.audiosocket import Calls
from server.deps import ServiceDep, error_response, require_api_key, require_stream_access
from server.protocol import UNKNOWN_CALL, ProtocolError, dumps

CALLS_PATH = "/v1/calls"

router = APIRouter()


def _calls(conn: Request | WebSocket) -> Calls:
    return conn.app.state.calls


@router.get(CALLS_PATH, dependencies=[Depends(require_api_key)])
async def calls(request: Request) -> JSONResponse:
    everything = _calls(request)
    everything.prune()
    return JSONResponse(
        {
            "calls": [
                {"uuid": c.uuid, "model": c.model, "ongoing": c.ongoing, "finals": len(c.finals)}
                for c in everything.calls.values()
            ]
        }
    )


@router.get(CALLS_PATH + "/{uuid}", dependencies=[Depends(require_api_key)])
async def call(uuid: str, request: Request, service: ServiceDep) -> JSONResponse:
    c = _calls(request).get(uuid)
    if c is None:
        error = ProtocolError(UNKNOWN_CALL, f"no call {uuid} (or its captions are gone)")
        return error_response(service.metrics, error)
    return JSONResponse(c.state())


@router.websocket(CALLS_PATH + "/{uuid}", dependencies=[Depends(require_stream_access)])
async def watch(websocket: WebSocket, uuid: str, service: ServiceDep) -> None:
    await websocket.accept()
    timeout = service.settings.idle_timeout_s
    c = await _calls(websocket).wait(uuid, timeout)
    with contextlib.suppress(Exception):  # the watcher may leave at any time
        if c is None:
            error = ProtocolError(UNKNOWN_CALL, f"no call {uuid} began within {timeout:g} s")
            service.count_error(error.code)
            await websocket.send_text(dumps(error.to_message()))
            await websocket.close(error.close_code)
            return
        gone = asyncio.create_task(websocket.receive())  # a disconnect ends the watch
        try:
            async for msg in _calls(websocket).watch(c):
                if gone.done():
                    return
                await websocket.send_text(dumps(msg))
        finally:
            gone.cancel()
        await websocket.close(1000)
