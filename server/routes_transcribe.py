"""`POST /v1/transcribe`: a whole recording in the body, its transcript back as JSON (the finals a stream would
have sent), SubRip or WebVTT (`?format=json|srt|vtt`).

    curl -H "Content-Type: audio/wav" --data-binary @talk.wav "http://localhost:8000/v1/transcribe?format=srt"

The body is a WAV file (`audio/wav`) or raw PCM (`application/octet-stream` with `?sample_rate=` and `?encoding=`);
the other query parameters are a start message's (docs/protocol.md): model, search, language, languages,
translate, hotwords, lm, lm_scale, ilm_scale, lodr_scale, talkers, alternatives, punctuate, numerals, redact,
profanity_filter, endpointing and the endpoint times (silence_s, silence_after_speech_s, max_segment_s). A
recording of several channels is mixed down to one, unless `?multichannel=true`: then each channel is transcribed on
its own (a call recorded with the caller on one channel and the agent on the other), its finals marked with their
`channel`, all in order of start time (raw PCM says how many channels it interleaves with `?channels=`). Errors are
JSON error messages with the status `HTTP_STATUS` gives, and every answer is counted by status in
`parley_transcribe_requests_total`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from parley.audio import ENCODINGS, mix_down
from parley.features import MAX_INPUT_RATE
from parley.formats import read_audio_channels
from parley.resample import at_most
from server.deps import ServiceDep, SettingsDep, error_response, require_api_key
from server.engine import Engine
from server.messages import multichannel_transcript, result_message
from server.metrics import ServerMetrics
from server.protocol import (
    BAD_AUDIO,
    ENDPOINT_BOUNDS,
    IDLE_TIMEOUT,
    INTERNAL,
    INVALID_VALUE,
    MAX_CHANNELS,
    TOO_BIG,
    UNSUPPORTED_ENCODING,
    ProtocolError,
    StartRequest,
    api_key_from_request,
    decode_audio_message,
    dumps,
    end_message,
    error_message,
    preview,
    start_from_dict,
    transcript_response,
)
from server.recognizer import Final
from server.service import Service
from server.session import resolve_start, start_adaptation, stream_endpoint
from server.subtitles import FORMATS
from server.subtitles import MEDIA_TYPES as SUBTITLE_TYPES
from server.subtitles import render as render_subtitles

log = logging.getLogger("parley.app")

# A body of any audio/* type is a file whose format its bytes say (parley/formats.py: WAV, FLAC, Ogg, MP3, ...).
FILE_TYPE_PREFIX = "audio/"
RAW_TYPES = ("application/octet-stream",)
MAX_SUBTYPE = 127  # RFC 6838's longest subtype name: a longer "audio/..." is no media type
# The status a request is counted under when its client disconnects before sending its whole body (nginx's 499):
# no answer reaches anyone, and it is not the server's fault, so it is neither a 4xx the client saw nor a 500.
CLIENT_CLOSED_REQUEST = 499
NDJSON = "ndjson"  # ?format=ndjson: the finals as they are decoded, a JSON object a line
NDJSON_TYPE = "application/x-ndjson"


class TranscribeRoute(APIRoute):
    """POST /v1/transcribe's route: every answer is counted by status in `parley_transcribe_requests_total`, the
    key dependency's refusals included; a `ProtocolError` is answered with `error_response`, a client that
    disconnects during its upload is counted as `CLIENT_CLOSED_REQUEST`, anything else is answered with `internal`
    (logged: the client gets no traceback)."""

    def refuse(self, metrics: ServerMetrics, error: ProtocolError) -> Response:
        """The answer to a request refused with `error` (a subclass may answer in another API's shape)."""
        return error_response(metrics, error)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def counted(request: Request) -> Response:
            metrics: ServerMetrics = request.app.state.metrics
            try:
                response = await handle(request)
            except ProtocolError as e:
                response = self.refuse(metrics, e)
            except ClientDisconnect:  # the client gave up before its body was read: nobody to answer, no fault here
                log.info("POST %s: the client disconnected before sending its whole body", request.url.path)
                response = Response(status_code=CLIENT_CLOSED_REQUEST)
            except Exception:
                log.exception("POST %s failed", request.url.path)
                response = self.refuse(metrics, ProtocolError(INTERNAL, "internal server error"))
            metrics.transcribe_requests.labels(str(response.status_code)).inc()
            return response

        return counted


router = APIRouter(route_class=TranscribeRoute)


@router.post("/v1/transcribe", dependencies=[Depends(require_api_key)])
async def transcribe(request: Request, service: ServiceDep, settings: SettingsDep) -> Response:
    """A recording's transcript: JSON, SubRip or WebVTT, or its finals as they are decoded (`?format=`)."""
    fmt = request.query_params.get("format") or "json"
    if fmt not in (*FORMATS, NDJSON):
        raise ProtocolError(INVALID_VALUE, f"format {preview(fmt)} is not one of {[*FORMATS, NDJSON]}")
    key = api_key_from_request(request.headers, request.query_params)
    refusal = service.admit(key)
    if refusal is not None:
        raise refusal
    held = 1
    service.take(held, key)
    streamed = False  # the slots went to the streamed answer, which gives them back when it ends
    try:
        multichannel = (
            _query_value(request.query_params, "multichannel", "true or false", _boolean)
            if request.query_params.get("multichannel")
            else False
        )
        channels, rate, start = await read_request(
            request, settings.max_upload_bytes, settings.idle_timeout_s, settings.min_upload_bytes_per_s
        )
        start = service.policy(start, key)  # the account's rules (redaction, masking) over the request's choice
        if not multichannel:
            channels = mix_down(channels)[None]
        elif len(channels) > MAX_CHANNELS:
            raise ProtocolError(
                INVALID_VALUE, f"{len(channels)} channels: multichannel transcribes at most {MAX_CHANNELS}"
            )
        service.hold_channels(len(channels), key)  # each channel is decoded as a stream of its own
        held = len(channels)
        engine, decode = recording_decoder(service, start, rate)
        duration = channels.shape[1] / rate
        if fmt == NDJSON:
            lines = _finals_as_decoded(channels, decode, multichannel, lambda: service.give(held, key))
            streamed = True
            service.count_audio(duration * len(channels), key)
            return StreamingResponse(lines, media_type=NDJSON_TYPE, headers={"X-Parley-Model": engine.name})
        decoded = await asyncio.gather(*(decode(samples) for samples in channels))
        service.count_audio(duration * len(channels), key)
        if multichannel:
            body = multichannel_transcript(engine.name, duration, decoded)
        else:
            body = transcript_response(engine.name, duration, [result_message(f) for f in decoded[0]])
        if fmt == "json":
            return JSONResponse(body)
        return Response(render_subtitles(body["segments"], fmt), media_type=SUBTITLE_TYPES[fmt])
    finally:
        if not streamed:
            service.give(held, key)


Decode = Callable[[np.ndarray, Callable[[Final], None] | None], Awaitable[list[Final]]]


def recording_decoder(service: Service, start: StartRequest, rate: int) -> tuple[Engine, Decode]:
    """The engine a recording's request asks for, and a function that decodes one channel of it, `(T,)` samples at
    `rate`, into its finals as a stream started with `start` would (its search, heads, hotwords and LM, endpoint
    rules and what its finals carry), calling `on_final` with each as it is decoded when one is given.

    Raises:
        ProtocolError: what `resolve_start` raises.
    """
    adaptation = start_adaptation(start)
    engine, search, plan = resolve_start(service, start, adaptation)
    endpoint = stream_endpoint(engine, start)

    def decode(samples: np.ndarray, on_final: Callable[[Final], None] | None = None) -> Awaitable[list[Final]]:
        return engine.recognize(
            samples,
            rate,
            search,
            plan,
            adaptation,
            punctuate=start.punctuate,
            talkers=start.talkers,
            endpoint=endpoint,
            alternatives=start.alternatives,
            numerals=start.numerals,
            redact=start.redact,
            profanity_filter=start.profanity_filter,
            on_final=on_final,
        )

    return engine, decode


async def decoded_finals(
    channels: np.ndarray, decode: Decode, done: Callable[[], None]
) -> AsyncIterator[tuple[int, Final]]:
    """Each channel's finals as they are decoded, `(channel, final)`, the channels of `channels` `(C, T)` side by
    side; the decoding's exception, if it fails, after the finals that came before it. `done` is called when it ends,
    however (a consumer that leaves, or closes it, cancels the decoding)."""
    queue: asyncio.Queue[tuple[int, Final] | None] = asyncio.Queue()

    def sink(channel: int) -> Callable[[Final], None]:
        return lambda final: queue.put_nowait((channel, final))

    async def run() -> None:
        try:
            await asyncio.gather(*(decode(x, sink(c)) for c, x in enumerate(channels)))
        finally:
            queue.put_nowait(None)

    task = asyncio.create_task(run())
    try:
        while (item := await queue.get()) is not None:
            yield item
        await task
    finally:
        task.cancel()
        done()


async def _finals_as_decoded(
    channels: np.ndarray, decode: Decode, multichannel: bool, done: Callable[[], None]
) -> AsyncIterator[str]:
    """`?format=ndjson`: a line of JSON per final, as each channel's are decoded (a multichannel one's with its
    `channel`), then `{"type": "end"}`: the messages a stream would send, so a client that reads streams reads this.
    A failure after the first line is answered by an error line (`internal`) in place of the end. `done` is called
    when it ends, however (a client that leaves cancels the decoding)."""
    try:
        async with contextlib.aclosing(decoded_finals(channels, decode, done)) as finals:
            async for c, final in finals:
                msg = result_message(final)
                if multichannel:
                    msg["channel"] = c
                yield dumps(msg) + "\n"
    except Exception:
        log.exception("POST /v1/transcribe?format=ndjson failed while decoding")
        yield dumps(error_message(INTERNAL, "internal server error: the transcription stopped here")) + "\n"
        return
    yield dumps(end_message()) + "\n"


def _boolean(text: str) -> bool:
    return {"true": True, "false": False}[text]


async def read_request(
    request: Request, limit: int, idle_s: float, min_rate: int
) -> tuple[np.ndarray, int, StartRequest]:
    """A transcription request's audio and choices, checked as a stream's start message is.

    Args:
        request: the POST, its body not yet read.
        limit: the largest body accepted, in bytes.
        idle_s, min_rate: the body must keep arriving (`read_body`).

    Returns:
        The samples, float32 `(C, T)` in [-1, 1] (a row per channel); their rate; the start message the query
        parameters make.

    Raises:
        ProtocolError: too_big, idle_timeout, unsupported_encoding, bad_audio, invalid_value, or what
            `start_from_dict` raises.
    """
    q = request.query_params
    length = request.headers.get("content-length")
    # isascii: str.isdigit() takes "²", which int() refuses; the length check keeps int() off huge numbers.
    if length is not None and length.isascii() and length.isdigit() and (len(length) > 18 or int(length) > limit):
        raise ProtocolError(TOO_BIG, f"body of {preview(length, 20)} bytes is over the limit of {limit} bytes")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_file = kind.startswith(FILE_TYPE_PREFIX) and len(kind) <= len(FILE_TYPE_PREFIX) + MAX_SUBTYPE
    if not is_file and kind not in RAW_TYPES:
        raise ProtocolError(
            UNSUPPORTED_ENCODING,
            f"Content-Type {preview(kind or 'missing')}: send a file as audio/wav (or audio/flac, audio/mpeg, "
            "audio/ogg, ...) or raw samples as application/octet-stream",
        )
    body = await read_body(request, limit, idle_s, min_rate)
    if is_file:
        try:
            samples, rate = await asyncio.to_thread(read_audio_channels, io.BytesIO(bytes(body)))
        except ValueError as e:
            raise ProtocolError(BAD_AUDIO, f"the body: {e}") from None
        # A file above what the frontend takes (a 96 kHz recording) is brought down to it, as `parley transcribe` does.
        samples, rate = await asyncio.to_thread(at_most, samples, rate, MAX_INPUT_RATE)
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
        samples = np.zeros((1, 0), dtype=np.float32)  # decoded below, once the start's fields are checked
        interleaved = _query_value(q, "channels", "an integer", int) if q.get("channels") else 1
        if not 1 <= interleaved <= 64:
            raise ProtocolError(INVALID_VALUE, f"channels must be an integer from 1 to 64, got {interleaved}")
    start = start_from_params(q, rate, encoding)
    if kind in RAW_TYPES:
        x = await asyncio.to_thread(decode_audio_message, bytes(body), encoding)
        if x.size % interleaved:
            raise ProtocolError(
                BAD_AUDIO, f"{x.size} samples do not make whole frames of {interleaved} interleaved channels"
            )
        samples = np.ascontiguousarray(x.reshape(-1, interleaved).T)
    return samples, rate, start


# The parameters `start_from_params` reads: a start message's fields, lists comma-separated.
_FLAGS = ("talkers", "endpointing", "punctuate", "numerals", "redact", "profanity_filter")
START_PARAMS = (
    *("model", "search", "language", "languages", "translate", "hotwords", "lm", "alternatives"),
    *_FLAGS,
    *ENDPOINT_BOUNDS,
    *("lm_scale", "ilm_scale", "lodr_scale"),
)


def start_from_params(q: Mapping[str, str], rate: int, encoding: str) -> StartRequest:
    """The start message a request's parameters make (the query's of POST /v1/transcribe, the form's of the
    OpenAI-compatible routes): the fields of docs/protocol.md, lists comma-separated.

    Raises:
        ProtocolError: invalid_value for a value of the wrong kind; what `start_from_dict` raises.
    """
    translate = [t for t in q.get("translate", "").split(",") if t]
    fields: dict[str, Any] = {"type": "start", "sample_rate": rate, "encoding": encoding, "translate": translate}
    fields.update({k: q[k] for k in ("model", "search", "language") if q.get(k)})
    if q.get("languages"):
        fields["languages"] = [x for x in q["languages"].split(",") if x]
    if q.get("hotwords"):
        fields["hotwords"] = [x for x in q["hotwords"].split(",") if x.strip()]
    if q.get("lm"):
        fields["lm"] = q["lm"]
    for key in _FLAGS:
        if q.get(key):
            fields[key] = _query_value(q, key, "true or false", _boolean)
    if q.get("alternatives"):
        fields["alternatives"] = _query_value(q, "alternatives", "an integer", int)
    times = {key: _query_value(q, key, "a number", float) for key in ENDPOINT_BOUNDS if q.get(key)}
    if times:  # the times of a stream's own rules, which turn endpointing on
        if fields.get("endpointing") is False:
            raise ProtocolError(INVALID_VALUE, f"endpointing=false with {sorted(times)}: give one or the other")
        fields["endpointing"] = times
    fields.update({key: _query_value(q, key, "a number", float) for key in FUSION_SCALES if q.get(key)})
    return start_from_dict(fields)  # the rate range, search and names, checked as a start message is


FUSION_SCALES = ("lm_scale", "ilm_scale", "lodr_scale")


def _query_value(q: Mapping[str, str], key: str, expected: str, parse: Callable[[str], Any]) -> Any:
    """Query parameter `key` parsed by `parse` (which raises ValueError or KeyError for a bad value).

    Raises:
        ProtocolError: invalid_value, saying what `key` must be.
    """
    try:
        return parse(q[key])
    except (ValueError, KeyError):
        raise ProtocolError(INVALID_VALUE, f"{key} must be {expected}, got {preview(q[key])}") from None


async def read_body(request: Request, limit: int, idle_s: float, min_rate: int) -> bytearray:
    """A POST's body, read as it arrives, from a client that keeps sending it.

    A connection slot is held while the body arrives, so a client that trickles it (a byte every few seconds) could
    hold slots for ever: the body must keep coming, with no pause longer than `idle_s` and, once `idle_s` has
    passed, at least `min_rate` bytes a second on average (the first `idle_s` seconds are free). A 64 MiB upload at
    the default 4000 B/s takes 4.7 hours; a client on a slow line is not refused for being slow, only for stopping.

    Raises:
        ProtocolError: too_big (over `limit` bytes) or idle_timeout (the body stopped or crawled).
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    body = bytearray()
    pieces = request.stream().__aiter__()
    while True:
        # By when the bytes received so far must be followed by more: the pause allowed, or the average rate's due.
        due = min(loop.time() + idle_s, start + idle_s + len(body) / min_rate)
        try:
            async with asyncio.timeout_at(due):
                piece = await anext(pieces)
        except StopAsyncIteration:
            return body
        except TimeoutError:
            raise ProtocolError(
                IDLE_TIMEOUT,
                f"the body stopped arriving: {len(body)} bytes in {loop.time() - start:.1f} s (send it without "
                f"pauses over {idle_s:g} s, at {min_rate} bytes/s or more on average)",
            ) from None
        body += piece
        if len(body) > limit:
            raise ProtocolError(TOO_BIG, f"body over the limit of {limit} bytes")
