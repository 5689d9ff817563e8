"""OpenAI's audio API on Parley's models: `POST /v1/audio/transcriptions` and `POST /v1/audio/translations`, so an
app written against OpenAI's SDK (or any client of that API: LangChain, LiteLLM, Open WebUI) points its base URL at a
Parley server and keeps its code.

    from openai import OpenAI
    client = OpenAI(base_url="http://localhost:8000/v1", api_key="KEY or anything")
    text = client.audio.transcriptions.create(model="whisper-1", file=open("talk.wav", "rb")).text

The request is a `multipart/form-data` form, as OpenAI's is: `file` (an audio file: the formats parley/formats.py
reads, WebM from browsers included), `model` (a Parley model's name; OpenAI's names, "whisper-1",
"gpt-4o-transcribe" and the like, mean the server's default model), `language` (ISO 639-1), `response_format`
(json, text, srt, vtt, verbose_json, or diarized_json: who speaks, from Parley's talkers on a model that has a
talker model), `prompt` (its names and terms, "Kowalczyk", "Zentrix Labs", "iPhone", become hotwords, spelled
with its capitals in `display`: server/prompt.py), `temperature` (accepted, not used: a transducer decodes without
sampling), `timestamp_granularities[]` (segment, word) and `stream` (true: the text as server-sent events while it
is decoded). Any field of a start message that POST /v1/transcribe takes as a query parameter may be added to the
form (`hotwords`, `punctuate`, `redact`, ...: the SDK's `extra_body`). Errors come in OpenAI's shape, `{"error":
{"message", "type", "param", "code"}}`, with Parley's error code as `code` and the status POST /v1/transcribe gives
it; every answer is counted with the other POSTs in `parley_transcribe_requests_total`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import logging
import math
import statistics
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from parley.audio import mix_down
from parley.features import MAX_INPUT_RATE
from parley.formats import read_audio_channels
from parley.resample import at_most
from server.deps import HTTP_STATUS, ServiceDep, SettingsDep, require_api_key
from server.messages import log_confidence, result_message, word_logprobs
from server.metrics import ServerMetrics
from server.protocol import (
    BAD_AUDIO,
    INTERNAL,
    INVALID_VALUE,
    UNKNOWN_FIELD,
    UNSUPPORTED_ENCODING,
    UNSUPPORTED_OPTION,
    ProtocolError,
    api_key_from_request,
    dumps,
    preview,
)
from server.routes_transcribe import (
    START_PARAMS,
    Decode,
    TranscribeRoute,
    decoded_finals,
    read_body,
    recording_decoder,
    start_from_params,
)
from server.session import with_prompt
from server.subtitles import MEDIA_TYPES as SUBTITLE_TYPES
from server.subtitles import render as render_subtitles

log = logging.getLogger("parley.app")

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json", "diarized_json")
DIARIZED = "diarized_json"  # who speaks: segments by talker (Parley's talkers, labelled A, B, ... as OpenAI labels)
GRANULARITIES = ("segment", "word")
# OpenAI's model names, which a client written for OpenAI sends as they are: they mean the server's default model.
OPENAI_MODEL_PREFIXES = ("whisper-", "gpt-")
# Form fields of OpenAI's that Parley reads itself; every other field is a start message's (`start_from_params`).
OPENAI_FIELDS = ("file", "model", "language", "prompt", "response_format", "temperature", "stream", "include")
# OpenAI's fields that Parley accepts and does not use (its endpointing cuts a recording; its talkers are numbered).
OPENAI_UNUSED = ("chunking_strategy", "known_speaker_names", "known_speaker_references")
INCLUDES = ("logprobs",)  # include[]: the words' log probabilities (their confidences' logs)
# verbose_json's `language` is a name, as Whisper's is.
LANGUAGE_NAMES = {"en": "english", "de": "german", "es": "spanish", "fr": "french", "it": "italian", "zh": "chinese"}
MAX_FORM_FIELDS = 100
_ERROR_TYPES = {INTERNAL: "server_error"}


class OpenAIRoute(TranscribeRoute):
    """The OpenAI-compatible routes: counted as POST /v1/transcribe's are, refusals in OpenAI's error shape."""

    def refuse(self, metrics: ServerMetrics, error: ProtocolError) -> Response:
        metrics.errors.labels(error.code).inc()
        return JSONResponse(openai_error(error), status_code=HTTP_STATUS.get(error.code, 400))


def openai_error(error: ProtocolError) -> dict:
    """`error` as OpenAI's API words one: its message, a type (invalid_request_error or server_error), and
    Parley's code as `code`."""
    kind = _ERROR_TYPES.get(error.code, "invalid_request_error")
    return {"error": {"message": error.message, "type": kind, "param": None, "code": error.code}}


router = APIRouter(route_class=OpenAIRoute)


@router.post("/v1/audio/transcriptions", dependencies=[Depends(require_api_key)])
async def transcriptions(request: Request, service: ServiceDep, settings: SettingsDep) -> Response:
    """A recording's transcript, as OpenAI's `audio.transcriptions.create` answers it."""
    return await _answer(request, service, settings, translate=False)


@router.post("/v1/audio/translations", dependencies=[Depends(require_api_key)])
async def translations(request: Request, service: ServiceDep, settings: SettingsDep) -> Response:
    """A recording's English translation, as OpenAI's `audio.translations.create` answers it: a multilingual
    model's English head (its translation into English, or its English captions of English speech), or an English
    model's transcript."""
    return await _answer(request, service, settings, translate=True)


async def _answer(request: Request, service: ServiceDep, settings: SettingsDep, translate: bool) -> Response:
    key = api_key_from_request(request.headers, request.query_params)
    refusal = service.admit(key)
    if refusal is not None:
        raise refusal
    service.take(1, key)
    streamed = False  # the slot went to the streamed answer, which gives it back when it ends
    try:
        form = await read_form(
            request, settings.max_upload_bytes, settings.idle_timeout_s, settings.min_upload_bytes_per_s
        )
        fmt = _choice(form, "response_format", RESPONSE_FORMATS, "json")
        granularities = _granularities(form)
        stream = _flag(form, "stream")
        logprobs = "logprobs" in _listed(form, "include", INCLUDES)
        _temperature(form)
        try:
            samples, rate = await _audio(form)
        finally:
            await form.close()  # the upload's spooled file, gone once its samples are read
        fields = _start_fields(form, service, translate)
        if fmt == DIARIZED:
            fields["talkers"] = "true"  # a model without a talker model refuses it (unsupported_option)
        start = with_prompt(service, start_from_params(fields, rate, "s16le"), _field(form, "prompt"))
        start = service.policy(start, key)
        engine, decode = recording_decoder(service, start, rate)
        english = _english(engine.translate_languages, engine.languages) if translate else None
        duration = samples.size / rate
        service.count_audio(duration, key)
        if stream:
            diarized = fmt == DIARIZED
            events = _text_events(samples, decode, english, duration, diarized, logprobs, lambda: service.give(1, key))
            streamed = True
            return StreamingResponse(events, media_type="text/event-stream", headers={"X-Parley-Model": engine.name})
        finals = [result_message(f) for f in await decode(samples, None)]
        task = "translate" if translate else "transcribe"
        return _render(finals, fmt, granularities, english, duration, task, logprobs)
    finally:
        if not streamed:
            service.give(1, key)


async def read_form(request: Request, limit: int, idle_s: float, min_rate: int) -> FormData:
    """A `multipart/form-data` request's form, its body read as POST /v1/transcribe reads one (`read_body`: the
    size limit, and a body that must keep arriving).

    Raises:
        ProtocolError: unsupported_encoding (another Content-Type), invalid_value (a form that does not parse);
            what `read_body` raises.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "multipart/form-data":
        raise ProtocolError(
            UNSUPPORTED_ENCODING,
            f"Content-Type {preview(kind or 'missing')}: send multipart/form-data with the audio as the field 'file'",
        )
    body = bytes(await read_body(request, limit, idle_s, min_rate))
    headers = request.headers

    async def parse() -> FormData:
        async def chunks() -> AsyncIterator[bytes]:
            yield body

        return await MultiPartParser(
            headers, chunks(), max_files=1, max_fields=MAX_FORM_FIELDS, max_part_size=limit
        ).parse()

    try:
        # In a worker thread (its own event loop): a 64 MiB form takes about 0.3 s of CPU to split, which the
        # server's event loop, serving every stream, must not wait on.
        return await asyncio.to_thread(asyncio.run, parse())
    except MultiPartException as e:
        raise ProtocolError(INVALID_VALUE, f"the form: {e.message}") from None


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(INVALID_VALUE, f"{name} must be a form field, not a file")
    return value


def _choice(form: FormData, name: str, allowed: Sequence[str], default: str) -> str:
    value = _field(form, name) or default
    if value not in allowed:
        raise ProtocolError(INVALID_VALUE, f"{name} {preview(value)} is not one of {list(allowed)}")
    return value


def _flag(form: FormData, name: str) -> bool:
    value = (_field(form, name) or "false").lower()
    if value not in ("true", "false"):
        raise ProtocolError(INVALID_VALUE, f"{name} must be true or false, got {preview(value)}")
    return value == "true"


def _temperature(form: FormData) -> None:
    """Checks `temperature` (0 to 1, as OpenAI takes it); a transducer decodes without sampling, so it changes
    nothing."""
    text = _field(form, "temperature")
    if text is None:
        return
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:
        raise ProtocolError(INVALID_VALUE, f"temperature must be a number from 0 to 1, got {preview(text)}")


def _listed(form: FormData, name: str, allowed: Sequence[str]) -> set[str]:
    """A list field's values (`name[]` or `name`, repeated), each one of `allowed`."""
    values = [v for key in (f"{name}[]", name) for v in form.getlist(key)]
    for value in values:
        if not isinstance(value, str) or value not in allowed:
            shown = value if isinstance(value, str) else "a file"
            raise ProtocolError(INVALID_VALUE, f"{name} {preview(shown)}: use {list(allowed)}")
    return {str(v) for v in values}


def _granularities(form: FormData) -> set[str]:
    return _listed(form, "timestamp_granularities", GRANULARITIES) or {"segment"}


async def _audio(form: FormData) -> tuple[np.ndarray, int]:
    """The form's `file`: its samples mixed down to one channel, `(T,)` float32, and their rate (at most what the
    frontend takes).

    Raises:
        ProtocolError: invalid_value (no file), bad_audio (not a file Parley reads: says what it seems to be).
    """
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ProtocolError(INVALID_VALUE, "the form has no file: send the audio as the field 'file'")
    data = await upload.read()
    try:
        channels, rate = await asyncio.to_thread(read_audio_channels, io.BytesIO(data))
    except ValueError as e:
        raise ProtocolError(BAD_AUDIO, f"file {preview(upload.filename or '')}: {e}") from None
    # Off the event loop, as POST /v1/transcribe does: a long file's parse and resampling take a while.
    channels, rate = await asyncio.to_thread(at_most, channels, rate, MAX_INPUT_RATE)
    return await asyncio.to_thread(mix_down, channels), rate


def _start_fields(form: FormData, service: ServiceDep, translate: bool) -> dict[str, str]:
    """The start message's fields the form gives: Parley's own fields as they are (a list's values repeated or
    comma-separated, with or without "[]"), OpenAI's model and language read as Parley's, and a translation's
    English head."""
    fields: dict[str, str] = {}
    names = {k.removesuffix("[]") for k in form} - {*OPENAI_FIELDS, *OPENAI_UNUSED, "timestamp_granularities"}
    unknown = sorted(names - set(START_PARAMS))
    if unknown:
        raise ProtocolError(
            UNKNOWN_FIELD,
            f"unknown form field(s) {preview(unknown)} (the audio's rate, encoding and channels come from the file); "
            f"OpenAI's fields are {list(OPENAI_FIELDS)} and timestamp_granularities[], Parley's {list(START_PARAMS)}",
        )
    for name in names:
        values = [v for k in (name, f"{name}[]") for v in form.getlist(k)]
        if any(not isinstance(v, str) for v in values):
            raise ProtocolError(INVALID_VALUE, f"{preview(name)} must be a form field, not a file")
        fields[name] = ",".join(str(v) for v in values)
    model = _field(form, "model")
    if model and not (model.startswith(OPENAI_MODEL_PREFIXES) and model not in service.engines):
        fields["model"] = model
    language = _field(form, "language")
    if language:
        fields["language"] = language
    if translate:  # the model's head into English, where it has one (else its English captions: `_english`)
        engine = service.engines.get(fields.get("model") or service.default_model or "")
        fields.pop("translate", None)
        if engine is not None and "en" in engine.translate_languages:
            fields["translate"] = "en"
    return fields


def _english(translate_languages: Sequence[str], languages: Sequence[str]) -> str | None:
    """Where a translation request's English comes from: "translation" (the model's head into English), None (its
    captions: an English model).

    Raises:
        ProtocolError: unsupported_option, a model that writes no English.
    """
    if "en" in translate_languages:
        return "translation"
    if list(languages) == ["en"]:
        return None
    raise ProtocolError(
        UNSUPPORTED_OPTION, f"this model cannot translate into English (its languages: {list(languages)})"
    )


def _final_text(final: Mapping[str, Any], english: str | None) -> str:
    if english == "translation":
        return str(final.get("translations", {}).get("en") or final.get("display") or final["text"])
    return str(final.get("display") or final["text"])


def _render(
    finals: list[dict],
    fmt: str,
    granularities: set[str],
    english: str | None,
    duration: float,
    task: str,
    logprobs: bool = False,
) -> Response:
    texts = [_final_text(f, english) for f in finals]
    spoken = [(f, t) for f, t in zip(finals, texts, strict=True) if t]
    text = " ".join(t for _, t in spoken)
    usage = {"type": "duration", "seconds": math.ceil(duration)}
    if fmt == "json":
        body: dict[str, Any] = {"text": text, "usage": usage}
        if logprobs and english != "translation":  # the recognized words' (a translation has none of its own)
            body["logprobs"] = word_logprobs([w for f, _ in spoken for w in f.get("words", ())])
        return JSONResponse(body)
    if fmt == "text":
        return PlainTextResponse(text + "\n")
    if fmt == DIARIZED:
        segments = [s for f, _ in spoken for s in _talker_runs(f)]
        for i, segment in enumerate(segments):
            segment["id"] = f"seg_{i}"
        diarized = {"task": "transcribe", "duration": round(duration, 3), "text": text, "segments": segments}
        return JSONResponse({**diarized, "usage": usage})
    if fmt in SUBTITLE_TYPES:
        cues = [{**f, "text": t, "display": t} for f, t in spoken]
        return Response(render_subtitles(cues, fmt), media_type=SUBTITLE_TYPES[fmt])
    language = next((f["language"] for f in finals if f.get("language")), "en")
    verbose: dict[str, Any] = {
        "task": task,
        "language": "english" if task == "translate" else LANGUAGE_NAMES.get(language, language),
        "duration": round(duration, 3),
        "text": text,
        "usage": usage,
    }
    if "segment" in granularities:
        verbose["segments"] = [_segment(i, f, t) for i, (f, t) in enumerate(spoken)]
    if "word" in granularities:
        verbose["words"] = [
            {"word": w["word"], "start": w["start"], "end": w["end"]} for f, _ in spoken for w in f.get("words", ())
        ]
    return JSONResponse(verbose)


def speaker_label(talker: int | None) -> str:
    """A talker's label as OpenAI's diarization writes it: A, B, ..., Z, then AA, AB, ...; "unknown" where Parley
    could not tell who spoke (under 0.25 s of voice)."""
    if talker is None:
        return "unknown"
    label = ""
    n = talker + 1
    while n:
        n, r = divmod(n - 1, 26)
        label = chr(ord("A") + r) + label
    return label


def _talker_runs(final: Mapping[str, Any]) -> list[dict]:
    """A final's words as diarized segments: each run of words of one talker, its text, start and end."""
    runs: list[dict] = []
    for w in final.get("words", ()):
        speaker = speaker_label(w.get("talker"))
        if runs and runs[-1]["speaker"] == speaker:
            runs[-1]["text"] += " " + w["word"]
            runs[-1]["end"] = w["end"]
        else:
            runs.append({"type": "transcript.text.segment", "speaker": speaker, "text": w["word"]})
            runs[-1].update(start=w["start"], end=w["end"])
    return runs


def _segment(i: int, final: Mapping[str, Any], text: str) -> dict:
    """A final as a verbose_json segment. What Whisper reports of its decoder and Parley's models lack is said as
    Parley measures it: `avg_logprob` is the mean log of the words' confidences, `compression_ratio` the text's
    gzip ratio (as Whisper computes it), `no_speech_prob` 0 (a final has words), `tokens` empty, `seek` the start in
    centiseconds."""
    confs = [w["conf"] for w in final.get("words", ()) if w.get("conf") is not None]
    raw = text.encode()
    return {
        "id": i,
        "seek": round(final["start"] * 100),
        "start": final["start"],
        "end": final["end"],
        "text": " " + text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": round(statistics.fmean(map(log_confidence, confs)), 4) if confs else 0.0,
        "compression_ratio": round(len(raw) / len(gzip.compress(raw)), 4),
        "no_speech_prob": 0.0,
    }


async def _text_events(
    samples: np.ndarray,
    decode: Decode,
    english: str | None,
    duration: float,
    diarized: bool,
    logprobs: bool,
    done: Callable[[], None],
) -> AsyncIterator[str]:
    """`stream=true`: server-sent events as OpenAI streams a transcription: `transcript.text.delta` with each
    final's text as it is decoded (diarized: `transcript.text.segment`, each talker's run of words), then
    `transcript.text.done` with the whole text (and the usage), or an `error` event if the decoding fails. `done` is
    called when it ends, however."""
    texts: list[str] = []
    segments = 0
    try:
        async with contextlib.aclosing(decoded_finals(samples[None], decode, done)) as finals:
            async for _, final in finals:
                msg = result_message(final)
                text = _final_text(msg, english)
                if not text:
                    continue
                if diarized:
                    for run in _talker_runs(msg):
                        yield _event({**run, "id": f"seg_{segments}"})
                        segments += 1
                else:
                    delta = {"type": "transcript.text.delta", "delta": (" " if texts else "") + text}
                    if logprobs and english != "translation":
                        delta["logprobs"] = word_logprobs(msg.get("words", ()), first=not texts)
                    yield _event(delta)
                texts.append(text)
    except Exception:
        log.exception("POST /v1/audio/...: the decoding failed while streaming")
        error = ProtocolError(INTERNAL, "internal server error: the transcription stopped here")
        yield _event(openai_error(error), "error")
        return
    usage = {"type": "duration", "seconds": math.ceil(duration)}
    yield _event({"type": "transcript.text.done", "text": " ".join(texts), "usage": usage})


def _event(data: dict, name: str | None = None) -> str:
    return (f"event: {name}\n" if name else "") + f"data: {dumps(data)}\n\n"
