"""The streaming WebSockets: Parley's protocol at `WS /v1/stream` (docs/protocol.md, server/session.py), OpenAI's
Realtime transcription at `WS /v1/realtime` (server/realtime.py), Deepgram's live transcription at `WS /v1/listen`
(server/deepgram.py), and Vosk-server's and WhisperLive's at `WS /` (docs/vosk.md, server/vosk.py; docs/whisperlive.md,
server/whisperlive.py), told apart by their first message.

Both take the key and the Origin through `require_stream_access`; a connection it refuses is answered by `refuse`,
as its protocol answers any error. Draining and the connection limit are the session's admission (`Service.admit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, Depends, WebSocket

from server.deepgram import LISTEN_PATH, DeepgramSession
from server.deepgram import close_reason as deepgram_close_reason
from server.deepgram import error_message as deepgram_error
from server.deps import ServiceDep, require_stream_access
from server.metrics import ServerMetrics
from server.protocol import IDLE_TIMEOUT, STREAM_PATH, ProtocolError, dumps
from server.realtime import REALTIME_PATH, RealtimeSession, error_details
from server.session import Session
from server.vosk import VOSK_PATH, VoskSession, close_reason
from server.whisperlive import FirstMessage, WhisperLiveSession, first_message, is_whisperlive_options

log = logging.getLogger("parley.app")

# Seconds a refusal may take to reach a client (the accept, the error, the close) before the server gives up on it.
_REFUSAL_S = 1.0

router = APIRouter(dependencies=[Depends(require_stream_access)])


@router.websocket(STREAM_PATH)
async def stream(websocket: WebSocket, service: ServiceDep) -> None:
    await Session(service, websocket).run()


@router.websocket(REALTIME_PATH)
async def realtime(websocket: WebSocket, service: ServiceDep) -> None:
    await RealtimeSession(service, websocket).run()


@router.websocket(LISTEN_PATH)
async def listen(websocket: WebSocket, service: ServiceDep) -> None:
    await DeepgramSession(service, websocket).run()


# Vosk-server's and WhisperLive's protocols share `/` with the page: Starlette routes the WebSocket upgrade here, a
# plain GET there. The first message tells them apart: WhisperLive's options carry a "uid"; Vosk's is a config, audio
# or eof.
@router.websocket(VOSK_PATH)
async def root(websocket: WebSocket, service: ServiceDep) -> None:
    try:
        first = await first_message(websocket, service.settings.idle_timeout_s)
    except TimeoutError:
        error = ProtocolError(IDLE_TIMEOUT, f"no message for {service.settings.idle_timeout_s:g} s")
        service.count_error(error.code)
        with contextlib.suppress(Exception):
            await websocket.close(error.close_code, close_reason(error))
        return
    except Exception:  # the client left during the handshake
        return
    if first is None:
        return
    socket = FirstMessage(websocket, first)
    if is_whisperlive_options(first.get("text")):
        await WhisperLiveSession(service, socket, first["text"]).run()  # type: ignore[arg-type]
    else:
        await VoskSession(service, socket).run()  # type: ignore[arg-type]


async def refuse(websocket: WebSocket, error: ProtocolError, metrics: ServerMetrics) -> None:
    """Answers a connection the dependencies refused as its protocol answers errors: accepted, then on /v1/stream
    the error message and the close with its code (on /v1/realtime, OpenAI's error event; on /v1/listen,
    Deepgram's Error message); on Vosk's `/` the close
    alone, the error as its reason (Vosk clients know no error message). Quietly, if the client is gone. Counted as
    an error sent."""
    metrics.errors.labels(error.code).inc()
    log.info("refused %s: %s: %s", websocket.url.path, error.code, error.message)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_REFUSAL_S):
            path = websocket.url.path
            asked = websocket.headers.get("sec-websocket-protocol", "").split(",")[0].strip()
            # Deepgram's browsers send their key as the subprotocols "token, KEY": the accept must name "token".
            await websocket.accept(subprotocol="token" if path == LISTEN_PATH and asked == "token" else None)
            if path == VOSK_PATH:
                await websocket.close(error.close_code, close_reason(error))
            elif path == LISTEN_PATH:  # Deepgram's Error message
                await websocket.send_text(dumps(deepgram_error(error)))
                await websocket.close(error.close_code, deepgram_close_reason(error))
            elif path == REALTIME_PATH:  # OpenAI's error event
                await websocket.send_text(
                    dumps({"type": "error", "event_id": "event_0", "error": error_details(error)})
                )
                await websocket.close(error.close_code)
            else:
                await websocket.send_text(dumps(error.to_message()))
                await websocket.close(error.close_code)
