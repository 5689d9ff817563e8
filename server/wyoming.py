"""Home Assistant's and Rhasspy's Wyoming protocol (docs/wyoming.md) on a TCP port of its own (`--wyoming-port`):
a voice pipeline's speech-to-text over the same engines, batched with every other stream.

An event is a JSON header line (`type`, optional `data`, `data_length` and `payload_length`), then `data_length`
bytes of JSON merged over `data`, then `payload_length` bytes of payload (PCM audio). One connection:

    -> describe                                  <- info: one ASR program "parley", a model per bundle
    -> transcribe {name, language, transcript_names, transcript_terms}   (optional; names and terms are hotwords)
    -> audio-start {rate, width, channels}       <- transcript-start {language}
    -> audio-chunk {rate, width, channels} + PCM <- transcript-chunk {text}: each final as it closes (a part of the
                                                    transcript, never revised: the chunks joined are the transcript)
    -> audio-stop                                <- transcript {text, language}, then transcript-stop
    -> ping {text}                               <- pong {text}

Anything wrong (an unknown model, audio that is not PCM, a full or draining server, a header or payload over the
limits) is answered by an `error` event {text, code} with Parley's error code, and the connection closes. Events of
other domains (tts, wake, select-program, ...) are dropped, as the protocol asks of a server.

A transcription holds one of the server's stream slots from audio-start to its transcript (a describe holds none);
a draining server ends it with what was decoded, its transcript, then `error` shutting_down. The PCM may be any rate
of 8-192 kHz, 1, 2 or 4 bytes a sample (unsigned 8-bit, signed 16- or 32-bit little-endian), any number of channels
(mixed to one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from parley.audio import decode_pcm
from server.protocol import (
    BAD_AUDIO,
    BAD_MESSAGE,
    IDLE_TIMEOUT,
    INTERNAL,
    INVALID_VALUE,
    NOT_STARTED,
    TOO_BIG,
    UNKNOWN_MODEL,
    UNSUPPORTED_OPTION,
    ProtocolError,
    start_from_dict,
)
from server.recognizer import Final
from server.session import FLUSH_TIMEOUT_S, open_engine_stream, resolve_start, start_adaptation, writable_hotwords
from server.tcp import TcpListener, TcpSession

if TYPE_CHECKING:
    from server.engine import Engine
    from server.service import Service

log = logging.getLogger("parley.wyoming")

VERSION = "1.10.2"  # the Wyoming protocol's version whose events this speaks (each event's header says it)
PROGRAM = "parley"  # the ASR program's name in info
ATTRIBUTION = {"name": "Parley", "url": "https://pypi.org/project/parley/"}  # required by info; no home page yet
MAX_HEADER_BYTES = 64 << 10  # an event's JSON header line
MAX_DATA_BYTES = 64 << 10  # its additional JSON data
WIDTHS = {1: "unsigned 8-bit", 2: "signed 16-bit", 4: "signed 32-bit"}


class Event:
    """One Wyoming event: its type, its data (header `data` with the additional data merged over it), its payload."""

    __slots__ = ("data", "payload", "type")

    def __init__(self, type: str, data: Mapping[str, Any] | None = None, payload: bytes = b"") -> None:
        self.type = type
        self.data: dict[str, Any] = dict(data or {})
        self.payload = payload

    def encode(self) -> bytes:
        """The event's bytes: header line, data, payload."""
        header: dict[str, Any] = {"type": self.type, "version": VERSION}
        data = json.dumps(self.data, ensure_ascii=False).encode() if self.data else b""
        if data:
            header["data_length"] = len(data)
        if self.payload:
            header["payload_length"] = len(self.payload)
        return json.dumps(header, ensure_ascii=False).encode() + b"\n" + data + self.payload


async def read_event(reader: asyncio.StreamReader, max_payload: int) -> Event | None:
    """The next event, or None at the end of the stream (the client closed).

    Raises:
        ProtocolError: bad_message for a header that is not a JSON object with a type, or data that is not one;
            too_big for a header, data or payload over the limits.
    """
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as e:
        if e.partial.strip():
            raise ProtocolError(BAD_MESSAGE, "the connection closed in the middle of an event's header") from None
        return None
    except asyncio.LimitOverrunError:
        raise ProtocolError(TOO_BIG, f"an event header over {MAX_HEADER_BYTES} bytes") from None
    header = _json_object(line, "an event header")
    kind = header.get("type")
    if not isinstance(kind, str) or not kind:
        raise ProtocolError(BAD_MESSAGE, 'an event header without a "type"')
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise ProtocolError(BAD_MESSAGE, f'{kind}: "data" must be a JSON object')
    data_length = _length(header, "data_length", kind, MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", kind, max_payload)
    try:
        if data_length:
            data = {**data, **_json_object(await reader.readexactly(data_length), f"{kind}'s data")}
        payload = await reader.readexactly(payload_length) if payload_length else b""
    except asyncio.IncompleteReadError:
        raise ProtocolError(BAD_MESSAGE, f"the connection closed in the middle of a {kind} event") from None
    return Event(kind, data, payload)


def _json_object(raw: bytes, what: str) -> dict:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ProtocolError(BAD_MESSAGE, f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise ProtocolError(BAD_MESSAGE, f"{what} is not a JSON object")
    return value


def _length(header: Mapping[str, Any], name: str, kind: str, limit: int) -> int:
    n = header.get(name) or 0
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ProtocolError(BAD_MESSAGE, f"{kind}: {name} must be a whole number of bytes")
    if n > limit:
        raise ProtocolError(TOO_BIG, f"{kind}: {name} {n} is over the limit of {limit} bytes")
    return n


def pcm_format(data: Mapping[str, Any], kind: str) -> tuple[int, int, int]:
    """(rate, width, channels) of an audio-start or audio-chunk.

    Raises:
        ProtocolError: invalid_value for a missing or impossible field, bad_audio for a width Parley does not read.
    """
    out = []
    for name in ("rate", "width", "channels"):
        v = data.get(name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ProtocolError(INVALID_VALUE, f"{kind}: {name} must be a positive whole number, got {v!r}")
        out.append(v)
    rate, width, channels = out
    if width not in WIDTHS:
        raise ProtocolError(BAD_AUDIO, f"{kind}: width {width}: PCM of 1, 2 or 4 bytes a sample only")
    if channels > 64:
        raise ProtocolError(INVALID_VALUE, f"{kind}: {channels} channels is over 64")
    return rate, width, channels


def pcm_samples(payload: bytes, width: int, channels: int) -> np.ndarray:
    """Float32 mono samples in [-1, 1) of little-endian PCM (`width` bytes a sample, `channels` interleaved, mixed).

    Raises:
        ProtocolError: bad_audio for a payload that is not whole frames.
    """
    frame = width * channels
    if len(payload) % frame:
        raise ProtocolError(BAD_AUDIO, f"{len(payload)} bytes are not whole frames of {channels} x {width} bytes")
    if width == 1:
        x = (np.frombuffer(payload, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = decode_pcm(payload, "s16le")
    else:
        x = (np.frombuffer(payload, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return x


def info(service: Service) -> Event:
    """The answer to describe: one ASR program, a model per loaded bundle with the languages it captions."""
    models = []
    for name, engine in sorted(service.engines.items()):
        models.append(
            {
                "name": name,
                "languages": list(engine.languages),
                "attribution": ATTRIBUTION,
                "installed": True,
                "description": f"Parley {name}" + (" (the default)" if name == service.default_model else ""),
                "version": None,
            }
        )
    program = {
        "name": PROGRAM,
        "attribution": ATTRIBUTION,
        "installed": True,
        "description": "Parley: streaming speech recognition",
        "version": None,
        "models": models,
        "supports_transcript_streaming": True,
    }
    return Event("info", {"asr": [program]})


def choose_model(service: Service, name: str | None, language: str | None) -> str | None:
    """The bundle a transcribe asks for: the one it names; else, for a `language`, the default model if it speaks
    it, else the first (by name) that does; else the default (None: the service's default).

    Raises:
        ProtocolError: unknown_model for a name that is neither a loaded bundle nor the program's.
    """
    if name and name != PROGRAM:
        if name not in service.engines:
            known = ", ".join(sorted(service.engines)) or "none"
            raise ProtocolError(UNKNOWN_MODEL, f"no model named {name!r} (loaded: {known})")
        return name
    if language:
        speaks = [n for n, e in sorted(service.engines.items()) if language_of(e, language) is not None]
        if service.default_model in speaks:
            return service.default_model
        if speaks:
            return speaks[0]
    return None


def language_of(engine: Engine, language: str) -> str | None:
    """The engine's language for a pipeline's `language` ("en", "en-US", "en_GB"), or None where it has none such."""
    languages = list(engine.languages)
    for candidate in (language, language.replace("_", "-").split("-")[0].lower()):
        if candidate in languages:
            return candidate
    return None


class WyomingSession(TcpSession):
    """One Wyoming connection: describes, pings, and transcribes one request after another (see the module). A
    drain's abort ends the open transcription: its transcript so far, then the error."""

    kind = "wyoming"
    logger = log

    def __init__(self, service: Service, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(service, reader, writer, service.settings.wyoming_api_key)
        self.model: str | None = None
        self._request: dict[str, Any] = {}  # the last transcribe's data
        self._format: tuple[int, int, int] | None = None  # (rate, width, channels) of the open transcription
        self._language: str | None = None
        self._texts: list[str] = []

    async def _serve(self) -> None:
        settings = self.service.settings
        while True:
            event = await self._next(read_event(self.reader, settings.max_message_bytes), settings.idle_timeout_s)
            if event is None:
                if self._abort_error is not None:
                    await self._finish()
                    raise self._abort_error
                return
            if event.type == "describe":
                await self._send(info(self.service))
            elif event.type == "ping":
                await self._send(Event("pong", {"text": event.data.get("text")} if "text" in event.data else {}))
            elif event.type == "transcribe":
                if self.stream is not None:
                    raise ProtocolError(BAD_MESSAGE, "transcribe during a transcription: send audio-stop first")
                self._request = event.data
            elif event.type in ("audio-start", "audio-chunk"):
                fmt = pcm_format(event.data, event.type)
                if self.stream is None:
                    await self._begin(fmt)
                elif fmt != self._format and (event.type == "audio-start" or fmt[0] != self._format[0]):  # type: ignore[index]
                    raise ProtocolError(BAD_AUDIO, f"{event.type}: the audio's format changed within a transcription")
                if event.type == "audio-chunk" and event.payload:
                    await self._audio(pcm_samples(event.payload, fmt[1], fmt[2]), fmt[0])
            elif event.type == "audio-stop":
                if self.stream is None:
                    raise ProtocolError(NOT_STARTED, "audio-stop without audio-start")
                await self._finish()
            # other events are dropped (other domains, later protocol versions)

    def _idle(self, timeout: float) -> None:
        raise ProtocolError(IDLE_TIMEOUT, f"no event for {timeout:g} s")

    async def _begin(self, fmt: tuple[int, int, int]) -> None:
        """Opens the transcription's engine stream (a stream slot, the transcribe's model, language and hotwords)."""
        svc = self.service
        self._take_slot()
        rate, _, _ = fmt
        req = self._request
        language = req.get("language") if isinstance(req.get("language"), str) else None
        name = req.get("name") if isinstance(req.get("name"), str) else None
        model = choose_model(svc, name, language)
        engine = svc.engines.get(model or svc.default_model or "")
        if engine is not None and language and language_of(engine, language) is None:
            raise ProtocolError(
                UNSUPPORTED_OPTION,
                f"no model speaks {language!r}: {engine.name} speaks {', '.join(engine.languages)}",
            )
        fields: dict[str, Any] = {"type": "start", "sample_rate": rate, "encoding": "f32le", "partials": False}
        if model is not None:
            fields["model"] = model
        if engine is not None and language and len(engine.languages) > 1:
            fields["language"] = language_of(engine, language)
        # Names first, then terms: a Home Assistant install may name hundreds of entities, more than a stream takes,
        # and a name the tokenizer cannot write must not cost the command its transcript, so the model's share of
        # them is kept (as for Vosk's phrase_list) rather than the request refused.
        phrases = [w for k in ("transcript_names", "transcript_terms") for w in _phrases(req.get(k), k)]
        fields, dropped = writable_hotwords(svc, {**fields, "hotwords": phrases})
        if dropped:
            log.info("%s %s: %d names and terms left out of the hotwords", self.kind, self.id, dropped)
        start = svc.policy(start_from_dict(fields), self.key)
        adaptation = start_adaptation(start)
        engine, search, plan = resolve_start(svc, start, adaptation)
        self.stream = open_engine_stream(engine, start, search, plan, adaptation, partials=False)
        self.model = engine.name
        self._format = fmt
        self._texts = []
        self._language = fields.get("language") or (engine.languages[0] if engine.languages else None)
        svc.metrics.streams.labels(engine.name, "wyoming").inc()
        svc.metrics.stream_encodings.labels({1: "u8", 2: "s16le", 4: "s32le"}[fmt[1]]).inc()
        log.info("%s %s: %s, %d Hz, %s search", self.kind, self.id, engine.name, rate, search)
        await self._send(Event("transcript-start", {"language": self._language} if self._language else {}))
        self._writer_task = asyncio.create_task(self._write(), name=f"parley-wyoming-write-{self.id}")

    async def _audio(self, x: np.ndarray, rate: int) -> None:
        assert self.stream is not None
        self.service.count_audio(x.size / rate, self.key)
        if self._writer_task is not None and self._writer_task.done():
            self._writer_task.result()  # the engine failed: its error
        await self.stream.push(x, time.monotonic())

    async def _write(self) -> None:
        """Each final's text as a transcript-chunk, as it closes, until the stream ends."""
        assert self.stream is not None
        while True:
            update = await self.stream.next_update()
            if update.error:
                raise ProtocolError(INTERNAL, f"the stream cannot continue: {update.error}")
            for r in update.results:
                if isinstance(r, Final):
                    text = (r.display or r.text).strip()
                    if text:
                        await self._send(Event("transcript-chunk", {"text": (" " if self._texts else "") + text}))
                        self._texts.append(text)
            if update.end:
                return

    async def _finish(self) -> None:
        """audio-stop: the last finals, the transcript and transcript-stop; the stream and its slot let go."""
        task = self._writer_task
        if self.stream is None or task is None:
            return
        await self._stop_stream(FLUSH_TIMEOUT_S if self._abort_error else None)
        if task.done():
            task.result()  # an engine failure is the connection's error
        data: dict[str, Any] = {"text": " ".join(self._texts)}
        if self._language:
            data["language"] = self._language
        await self._send(Event("transcript", data))
        await self._send(Event("transcript-stop"))
        await self._release()
        self._request = {}

    async def _send(self, event: Event) -> None:
        self.writer.write(event.encode())
        async with asyncio.timeout(self.service.settings.idle_timeout_s):
            await self.writer.drain()

    async def _fail(self, error: ProtocolError) -> None:
        await super()._fail(error)
        with contextlib.suppress(Exception):
            await self._send(Event("error", {"text": error.message, "code": error.code}))

    async def _release(self) -> None:
        """Lets the open transcription go: its stream, its writer, its slot."""
        await self._let_go()
        self._format = None


def _phrases(value: Any, name: str) -> list[str]:
    """transcript_names / transcript_terms: a list of phrases (hotwords).

    Raises:
        ProtocolError: invalid_value for anything but a list of strings.
    """
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProtocolError(INVALID_VALUE, f"transcribe: {name} must be a list of strings")
    return [v.strip() for v in value if v.strip()]


class WyomingListener(TcpListener):
    """The Wyoming TCP server of a `Service` (`TcpListener`)."""

    name = "wyoming"
    key_setting = "wyoming_api_key"

    def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> WyomingSession:
        return WyomingSession(self.service, reader, writer)

    async def start(self, host: str, port: int, limit: int = MAX_HEADER_BYTES) -> None:
        await super().start(host, port, limit)
