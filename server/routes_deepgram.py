"""Deepgram's pre-recorded API, `POST /v1/listen`: the body an audio file (any format parley/formats.py reads), the
query Deepgram's parameters (server/deepgram.py reads them as the live API does), the answer Deepgram's JSON: each
channel's transcript with its words, and `utterances=true`'s segments. Errors in Deepgram's shape, `{"err_code",
"err_msg", "request_id"}`, Parley's code as `err_code`. A body of JSON (Deepgram's `{"url": ...}`) is refused: the
server fetches nothing.

    curl -X POST -H "Authorization: Token KEY" -H "Content-Type: audio/wav" --data-binary @call.wav \\
        "localhost:8000/v1/listen?model=nova-3&smart_format=true&utterances=true"
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from parley.audio import mix_down
from parley.features import MAX_INPUT_RATE
from parley.formats import read_audio_channels
from parley.resample import at_most
from server.deepgram import IGNORED, confidence_of, metadata, parse_query, query_flag, transcript_of, words_of
from server.deps import HTTP_STATUS, ServiceDep, SettingsDep, require_api_key
from server.metrics import ServerMetrics
from server.protocol import (
    BAD_AUDIO,
    INVALID_VALUE,
    MAX_CHANNELS,
    UNSUPPORTED_ENCODING,
    ProtocolError,
    api_key_from_request,
    start_from_dict,
)
from server.recognizer import Final
from server.routes_transcribe import TranscribeRoute, read_body, recording_decoder

LISTEN_PATH = "/v1/listen"


class DeepgramRoute(TranscribeRoute):
    """POST /v1/listen: counted as POST /v1/transcribe is, refusals in Deepgram's error shape."""

    def refuse(self, metrics: ServerMetrics, error: ProtocolError) -> Response:
        metrics.errors.labels(error.code).inc()
        body = {"err_code": error.code, "err_msg": error.message, "request_id": str(uuid.uuid4())}
        return JSONResponse(body, status_code=HTTP_STATUS.get(error.code, 400))


router = APIRouter(route_class=DeepgramRoute)


@router.post(LISTEN_PATH, dependencies=[Depends(require_api_key)])
async def listen(request: Request, service: ServiceDep, settings: SettingsDep) -> Response:
    """A recording's transcript as Deepgram's pre-recorded API answers it."""
    q = request.query_params
    pre_recorded = {"multichannel", "utterances", "paragraphs", "summarize", "topics", "intents", "sentiment"}
    config = parse_query(_without(q, pre_recorded), list(service.engines))
    multichannel = query_flag(q, "multichannel")
    utterances = query_flag(q, "utterances")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json":
        raise ProtocolError(
            UNSUPPORTED_ENCODING, 'a JSON body ({"url": ...}): send the audio itself; Parley fetches nothing'
        )
    key = api_key_from_request(request.headers, q)
    refusal = service.admit(key)
    if refusal is not None:
        raise refusal
    service.take(1, key)
    held = 1
    try:
        body = await read_body(
            request, settings.max_upload_bytes, settings.idle_timeout_s, settings.min_upload_bytes_per_s
        )
        try:
            channels, rate = await asyncio.to_thread(read_audio_channels, io.BytesIO(bytes(body)))
        except ValueError as e:
            raise ProtocolError(BAD_AUDIO, str(e)) from None
        channels, rate = await asyncio.to_thread(at_most, channels, rate, MAX_INPUT_RATE)
        if not multichannel:
            channels = mix_down(channels)[None]
        elif len(channels) > MAX_CHANNELS:
            raise ProtocolError(
                INVALID_VALUE, f"{len(channels)} channels: multichannel transcribes at most {MAX_CHANNELS}"
            )
        fields = {**config.fields, "sample_rate": rate, "encoding": "s16le"}
        start = service.policy(start_from_dict(fields), key)
        service.hold_channels(len(channels), key)
        held = len(channels)
        engine, decode = recording_decoder(service, start, rate)
        decoded = await asyncio.gather(*(decode(x) for x in channels))
        duration = channels.shape[1] / rate
        service.count_audio(duration * len(channels), key)
        return JSONResponse(response_body(engine.name, duration, decoded, config.formatted, utterances))
    finally:
        service.give(held, key)


def _without(q: Any, names: set[str]) -> Any:
    """The query without the pre-recorded API's own parameters (what the live API's reader would refuse)."""
    from starlette.datastructures import QueryParams

    return QueryParams([(k, v) for k, v in q.multi_items() if k not in names and k not in IGNORED])


def response_body(
    model: str, duration: float, channels: Sequence[Sequence[Final]], formatted: bool, utterances: bool
) -> dict:
    """Deepgram's pre-recorded answer for each channel's finals: `results.channels[c].alternatives[0]` (transcript,
    confidence, words), and with `utterances` every non-empty final as an utterance of its channel."""
    results: dict[str, Any] = {"channels": []}
    for finals in channels:
        words = [w for f in finals for w in words_of(f, formatted)]
        text = " ".join(transcript_of(f, formatted) for f in finals if f.text)
        alternative = {"transcript": text, "confidence": confidence_of(words), "words": words}
        results["channels"].append({"alternatives": [alternative]})
    if utterances:
        results["utterances"] = [
            {
                "start": round(f.start, 3),
                "end": round(f.end, 3),
                "confidence": confidence_of(words_of(f, formatted)),
                "channel": c,
                "transcript": transcript_of(f, formatted),
                "words": words_of(f, formatted),
                "id": str(uuid.uuid4()),
                **({"speaker": f.words[0].talker} if f.words and f.words[0].talker is not None else {}),
            }
            for c, finals in enumerate(channels)
            for f in finals
            if f.text
        ]
        results["utterances"].sort(key=lambda u: (u["start"], u["channel"]))
    return {"metadata": metadata(str(uuid.uuid4()), model, duration, len(channels)), "results": results}
