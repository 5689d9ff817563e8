"""Deepgram's live transcription API at `WS /v1/listen`, so that apps and agent frameworks written against Deepgram's
SDKs (Pipecat, LiveKit Agents, Vapi-style bots) use Parley by changing the base URL (docs/deepgram.md).

    client                                                           server
      │── GET /v1/listen?encoding=linear16&sample_rate=16000&interim_results=true&... (Authorization: Token KEY)
      │── binary: audio ─────────────────────────────────────────────────►│
      │         ◄── {"type": "SpeechStarted", "timestamp"}                 │  vad_events=true
      │         ◄── {"type": "Results", "is_final": false, ...}            │  interim_results=true: the segment so far
      │         ◄── {"type": "Results", "is_final": true, "speech_final": true, ...}   at an endpoint
      │         ◄── {"type": "UtteranceEnd", "last_word_end"}              │  utterance_end_ms=...
      │── {"type": "Finalize"} ──────────────────────────────────────────►│  the open segment now: from_finalize
      │── {"type": "Configure", "keyterms": [...]} ──────────────────────►│  new hotwords: ConfigureSuccess
      │── {"type": "KeepAlive"} ─────────────────────────────────────────►│  no audio for a while, and no timeout
      │── {"type": "CloseStream"} ───────────────────────────────────────►│  the last results, Metadata, close 1000

Underneath it is a stream of the same engine as `/v1/stream` (batching, endpointing, limits, API keys, draining,
metrics counted with `protocol="deepgram"`); this module reads Deepgram's query parameters into a start and turns
partials and finals into Results. Without `encoding` the audio is a container, told by its first bytes: WebM, Ogg
or MP4 (what browsers' MediaRecorder sends) or WAV (its header read, its samples streamed). Errors are an `Error`
message (Parley's code as `variant` and `code`) and the close code /v1/stream gives the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.websockets import WebSocket

from parley.audio import wav_stream_header
from parley.features import MAX_INPUT_RATE, MIN_INPUT_RATE
from parley.formats import sniff
from parley.mp4stream import Mp4StreamDecoder, stream_decoder
from parley.opusstream import OpusStreamDecoder
from server.protocol import (
    BAD_AUDIO,
    BAD_JSON,
    BAD_MESSAGE,
    CONTAINER_RATE,
    INVALID_VALUE,
    TOO_BIG,
    UNSUPPORTED_ENCODING,
    UNSUPPORTED_OPTION,
    ProtocolError,
    StartRequest,
    check_audio_size,
    decode_audio_message,
    preview,
    start_from_dict,
)
from server.recognizer import Final, Partial, Result
from server.session import (
    Connection,
    GoneError,
    IdleClock,
    replace_hotwords,
    resolve_start,
    start_adaptation,
)

if TYPE_CHECKING:
    from server.engine import Engine
    from server.plan import HeadPlan
    from server.service import Service

log = logging.getLogger("parley.deepgram")

LISTEN_PATH = "/v1/listen"
# Deepgram's encodings Parley streams as they come (opus and ogg-opus: Ogg Opus pages).
ENCODINGS = {"linear16": "s16le", "mulaw": "mulaw", "alaw": "alaw", "opus": "ogg", "ogg-opus": "ogg"}
# The parameters read; the rest of Deepgram's are accepted and change nothing (`IGNORED`), anything else is refused.
READ = {
    "encoding", "sample_rate", "channels", "multichannel", "interim_results", "punctuate", "smart_format", "numerals",
    "endpointing", "utterance_end_ms", "vad_events", "model", "language", "keywords", "keyterm", "redact",
    "profanity_filter", "diarize",
}  # fmt: skip
IGNORED = {
    "callback", "callback_method", "detect_entities", "diarize_model", "dictation", "extra", "filler_words",
    "language_hint", "mip_opt_out", "replace", "search", "tag", "version", "no_delay", "alternatives",
}  # fmt: skip
HEADER_LIMIT = 1 << 16  # the most bytes a WAV header may take before its samples
# parley/formats.py's names of the containers a stream without an encoding may be.
_CONTAINERS = {"WebM/Matroska": "webm", "Ogg": "ogg", "MP4/M4A": "mp4", "WAV": "wav"}


def query_flag(q: Mapping[str, str], name: str, default: bool = False) -> bool:
    """A true/false query parameter (absent: `default`)."""
    v = q.get(name)
    if v is None:
        return default
    if v.lower() not in ("true", "false"):
        raise ProtocolError(INVALID_VALUE, f"{name}={preview(v, 20)}: true or false")
    return v.lower() == "true"


def _int(q: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    v = q.get(name)
    if v is None:
        return None
    try:
        n = int(v)
    except ValueError:
        n = low - 1
    if not low <= n <= high:
        raise ProtocolError(INVALID_VALUE, f"{name}={preview(v, 20)}: an integer from {low} to {high}")
    return n


@dataclass(frozen=True)
class ListenConfig:
    """A connection's query parameters, read: `start`'s fields for Parley (audio format left to the first bytes when
    `encoding` is None) and how results are written."""

    fields: Mapping[str, Any]
    encoding: str | None  # Parley's encoding (or container); None: told by the audio's first bytes
    channels: int
    multichannel: bool  # the channels decoded apart (Results' channel_index), else averaged
    interim_results: bool
    formatted: bool  # punctuate or smart_format: transcripts from `display`
    vad_events: bool
    utterance_end_ms: int | None
    model_name: str | None  # as asked (Deepgram's names mean the default model)


def _hotwords(q: Any) -> list:
    """`keywords=name:boost` (Deepgram's intensifier as Parley's boost) and `keyterm=phrase`, as start's hotwords."""
    out: list = []
    for item in q.getlist("keywords"):
        phrase, _, boost = item.rpartition(":") if ":" in item else (item, "", "")
        try:
            value = float(boost) if boost else None
        except ValueError:
            phrase, value = item, None
        if value is not None and value <= 0:
            raise ProtocolError(UNSUPPORTED_OPTION, f"keywords={preview(item, 40)}: Parley cannot suppress words")
        out.append({"phrase": phrase.lower(), "boost": value} if value is not None else phrase.lower())
    out += [term.lower() for term in q.getlist("keyterm")]
    return out


def parse_query(q: Any, models: Sequence[str]) -> ListenConfig:
    """Deepgram's query parameters (a Starlette QueryParams) -> the configuration; `models`: Parley's model names
    (any other model name, Deepgram's "nova-3" and the like, means the server's default).

    Raises:
        ProtocolError: an unknown parameter, a value out of range, an encoding or option Parley cannot take.
    """
    unknown = sorted(set(q.keys()) - READ - IGNORED - {"api_key", "token"})
    if unknown:
        raise ProtocolError(INVALID_VALUE, f"unknown parameter(s) {preview(unknown)}")
    fields: dict[str, Any] = {"type": "start"}
    encoding = q.get("encoding")
    if encoding is not None:
        if encoding not in ENCODINGS:
            raise ProtocolError(
                UNSUPPORTED_ENCODING,
                f"encoding={preview(encoding, 20)}: Parley streams {sorted(ENCODINGS)}, or leave it out for "
                "containerized audio (WAV, WebM, Ogg, MP4)",
            )
        encoding = ENCODINGS[encoding]
        rate = _int(q, "sample_rate", MIN_INPUT_RATE, MAX_INPUT_RATE)
        if encoding != "ogg":
            if rate is None:
                raise ProtocolError(INVALID_VALUE, f"encoding={q['encoding']} needs sample_rate")
            fields["sample_rate"] = rate
    channels = _int(q, "channels", 1, 8) or 1
    multichannel = query_flag(q, "multichannel") and channels > 1
    if multichannel:
        if encoding is None or encoding == "ogg":
            raise ProtocolError(UNSUPPORTED_OPTION, "multichannel: give a PCM encoding (linear16, mulaw, alaw)")
        fields["channels"] = channels  # each channel decoded as a stream of its own (server/multichannel.py)
    smart = query_flag(q, "smart_format")
    formatted = smart or query_flag(q, "punctuate")
    fields["punctuate"] = formatted
    fields["numerals"] = smart or query_flag(q, "numerals")
    endpointing = q.get("endpointing")
    if endpointing is not None:
        if endpointing.lower() == "false":
            fields["endpointing"] = False
        else:
            ms = _int(q, "endpointing", 0, 60000)
            assert ms is not None
            fields["endpointing"] = {"silence_after_speech_s": max(ms, 100) / 1000}  # 100 ms: Parley's shortest
    model = q.get("model")
    if model in models:
        fields["model"] = model
    language = q.get("language")
    if language is not None and language != "multi":
        fields["language"] = language.split("-")[0].lower()  # "en-US": the model's English head
    elif language == "multi":
        fields["language"] = "auto"
    hotwords = _hotwords(q)
    if hotwords:
        fields["hotwords"] = hotwords
    redact = q.getlist("redact")
    fields["redact"] = any(r.lower() not in ("false", "") for r in redact)
    fields["profanity_filter"] = query_flag(q, "profanity_filter")
    fields["talkers"] = query_flag(q, "diarize")
    return ListenConfig(
        fields=fields,
        encoding=encoding,
        channels=channels,
        multichannel=multichannel,
        interim_results=query_flag(q, "interim_results"),
        formatted=formatted,
        vad_events=query_flag(q, "vad_events"),
        utterance_end_ms=_int(q, "utterance_end_ms", 0, 60000),
        model_name=model,
    )


def sniff_container(data: bytes) -> str | None:
    """What containerized audio's first bytes say: "webm", "ogg", "mp4", "wav", or None (not yet enough, or none)."""
    return _CONTAINERS.get(sniff(data) or "")


def wav_header(data: bytes) -> tuple[str, int, int, int] | None:
    """A WAV stream's header: (encoding, sample rate, channels, where its samples begin), or None while the header is
    not all there (parley/audio.py's `wav_stream_header`).

    Raises:
        ProtocolError: bad_audio, a WAV of another sample format or a broken header.
    """
    try:
        return wav_stream_header(data)
    except ValueError as e:
        raise ProtocolError(BAD_AUDIO, f"a WAV stream Parley cannot take: {e}") from None


def _seconds(t: float) -> float:
    return round(float(t), 3)


class DeepgramSession(Connection):
    """One connection at `WS /v1/listen` (see `Connection`)."""

    kind = "deepgram session"
    logger = log

    def __init__(self, service: Service, ws: WebSocket) -> None:
        super().__init__(service, ws)
        self.request_id = str(uuid.uuid4())
        self.config: ListenConfig | None = None
        self.opened: tuple[StartRequest, Engine, HeadPlan] | None = None
        self._opened = asyncio.Event()
        self._pending = bytearray()  # containerized audio before its kind (and a WAV's header) is known
        self._decoder: OpusStreamDecoder | Mp4StreamDecoder | None = None
        self._pcm: tuple[str, int] | None = None  # a PCM stream's encoding and channels
        self._seconds = 0.0  # audio received
        self._spoken: set[int] = set()  # the channels whose open segment's SpeechStarted was sent
        self._finalizes: dict[int, int] = {}  # by channel: Finalize messages whose final has not come
        self._closing = False  # CloseStream came: the finals that follow are the stream's last
        self._send_lock = asyncio.Lock()

    def subprotocol(self) -> str | None:
        """Browsers send their key as `Sec-WebSocket-Protocol: token, KEY`: the accept must name "token"."""
        asked = [p.strip() for p in self.ws.headers.get("sec-websocket-protocol", "").split(",")]
        return "token" if asked and asked[0] == "token" else None

    async def _serve(self) -> None:
        try:
            self.config = parse_query(self.ws.query_params, list(self.service.engines))
            if self.config.encoding is not None:
                self._open(self.config.encoding, self.config.fields.get("sample_rate"))
            else:  # checked now (the model, its language, the hotwords): the audio's format waits for its bytes
                start = self.service.policy(
                    start_from_dict({**self.config.fields, "sample_rate": 16000, "encoding": "s16le"}), self.key
                )
                resolve_start(self.service, start, start_adaptation(start))
        except ProtocolError as e:
            await self._fail(e)
            return
        done, reader, writer, aborted = await self._reader_writer(self._read(), self._write(), self._flush_stream)
        error = self._ended_with(done, reader, writer, aborted)
        if error is not None:
            await self._fail(error)
        else:
            with contextlib.suppress(GoneError):
                await self._message(self._metadata())
            await self._close(1000)

    # ---- The client's messages ----

    async def _read(self) -> None:
        assert self.config is not None
        clock = IdleClock(self.service.settings.idle_timeout_s)
        limit = self.service.settings.max_message_bytes
        while (received := await self._receive(clock)) is not None:
            text, data, arrived = received
            if text is None:
                check_audio_size(data or b"", limit)
                await self._audio(bytes(data or b""), arrived, clock)
                continue
            if len(text) > limit:
                raise ProtocolError(TOO_BIG, f"a message over the limit of {limit} bytes")
            msg = _parse(text)
            kind = msg["type"]
            if kind == "KeepAlive":
                clock.audio(clock.timeout)  # Deepgram's way to hold a connection without audio
            elif kind == "Finalize":
                if self.stream is not None:
                    for c in range(self._channels()):
                        self._finalizes[c] = self._finalizes.get(c, 0) + 1
                    await self.stream.finalize()
            elif kind == "CloseStream":
                self._closing = True
                if self.stream is None:  # no audio came: nothing to decode
                    self._opened.set()
                else:
                    await self.stream.stop()
                # The writer sends the last results and closes; until then only a client that leaves matters.
                while await self._receive(clock, timed=False) is not None:
                    pass
                return
            elif kind == "Configure":
                await self._configure(msg)
            else:
                raise ProtocolError(BAD_MESSAGE, f"unknown message type {preview(kind)}")
        if self.stream is not None:  # the client left: nothing more to send
            self.stream.close()

    async def _configure(self, msg: Mapping[str, Any]) -> None:
        """New keyterms mid-stream: the stream's hotwords (a context message's), answered ConfigureSuccess; a bad
        one, ConfigureFailure, and the stream goes on."""
        assert self.config is not None
        terms = msg.get("keyterms", [])
        try:
            if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
                raise ProtocolError(INVALID_VALUE, "keyterms: a list of phrases")
            fields = {**self.config.fields, "hotwords": [t.lower() for t in terms]}
            self.config = replace(self.config, fields=fields)
            if self.opened is not None:
                start, engine, plan = self.opened
                hotwords = start_from_dict({**fields, "sample_rate": 16000, "encoding": "s16le"}).hotwords
                assert self.stream is not None
                replace_hotwords(engine, self.stream, start, plan, hotwords)
        except ProtocolError as e:
            await self._message(
                {"type": "ConfigureFailure", "request_id": self.request_id, "code": e.code, "description": e.message}
            )
            return
        await self._message({"type": "ConfigureSuccess", "request_id": self.request_id, "keyterms": terms})

    async def _audio(self, data: bytes, arrived: float, clock: IdleClock) -> None:
        assert self.config is not None
        if self.stream is None:
            self._pending += data
            kind = sniff_container(bytes(self._pending[:16]))
            if kind is None:
                if len(self._pending) >= 16:
                    raise ProtocolError(
                        BAD_AUDIO, "audio without an encoding parameter must be WAV, WebM, Ogg or MP4 (give encoding=)"
                    )
                return
            if kind == "wav":
                header = wav_header(bytes(self._pending))
                if header is None:
                    if len(self._pending) > HEADER_LIMIT:
                        raise ProtocolError(BAD_AUDIO, "a WAV stream whose header never ends")
                    return
                encoding, rate, channels, begins = header
                self._open(encoding, rate, channels)
                data = bytes(self._pending[begins:])
            else:
                self._open(kind, None)
                data = bytes(self._pending)
            self._pending.clear()
        assert self.stream is not None and self.opened is not None
        if self._decoder is not None:
            try:
                x = self._decoder.feed(data)
            except ValueError as e:
                raise ProtocolError(BAD_AUDIO, f"{self.opened[0].encoding} audio: {e}") from None
        else:
            assert self._pcm is not None
            encoding, channels = self._pcm
            x = decode_audio_message(data, encoding, self.service.settings.max_message_bytes)
            if channels > 1:
                if x.size % channels:
                    raise ProtocolError(BAD_AUDIO, f"{x.size} samples are not whole frames of {channels} channels")
                if not self.config.multichannel:
                    x = x.reshape(-1, channels).mean(axis=1, dtype=np.float32)
        apart = self._channels()  # interleaved channels go to the stream group as they are
        seconds = x.size / apart / self.opened[0].sample_rate
        self._seconds += seconds
        clock.audio(seconds)
        self.service.count_audio(seconds * apart, self.key)
        await self.stream.push(x, arrived)

    def _open(self, encoding: str, rate: int | None, channels: int | None = None) -> None:
        """The engine stream, once the audio's format is known."""
        assert self.config is not None
        fields = {**self.config.fields, "encoding": encoding}
        if rate is not None:
            fields["sample_rate"] = rate
        self.opened = self._open_stream(start_from_dict(fields), "deepgram")
        if encoding in ("webm", "ogg", "mp4"):
            self._decoder = stream_decoder(encoding, CONTAINER_RATE)
        else:
            self._pcm = (encoding, channels or self.config.channels)
        self._opened.set()

    # ---- The server's messages ----

    async def _write(self) -> None:
        """The engine's results as Deepgram's messages, until the stream ends."""
        await self._opened.wait()
        if self.stream is None:  # closed before any audio
            return
        async for update in self._updates():
            for r in update.results:
                await self._result(r, update.finalized, update.channel or 0)

    def _channels(self) -> int:
        """How many channels are decoded apart (1 unless multichannel)."""
        assert self.config is not None
        return self.config.channels if self.config.multichannel else 1

    async def _result(self, r: Result, finalized: bool, c: int) -> None:
        assert self.config is not None
        where = [c, self._channels()]  # Deepgram's channel and channel_index: [this one, how many]
        if r.words and c not in self._spoken:
            self._spoken.add(c)
            if self.config.vad_events:
                await self._message(
                    {"type": "SpeechStarted", "channel": where, "timestamp": _seconds(r.words[0].start)}
                )
        if isinstance(r, Partial):
            if self.config.interim_results and r.text:
                await self._message(self._results(r, where, is_final=False, speech_final=False))
            return
        assert isinstance(r, Final)
        from_finalize = finalized and self._finalizes.get(c, 0) > 0
        if from_finalize:
            self._finalizes[c] -= 1
        self._spoken.discard(c)
        if not r.text and not from_finalize:
            return  # nothing said (Deepgram sends no empty final at an endpoint either)
        endpoint = not from_finalize and not self._closing
        await self._message(self._results(r, where, is_final=True, speech_final=endpoint, from_finalize=from_finalize))
        if self.config.utterance_end_ms is not None and r.words:
            await self._message({"type": "UtteranceEnd", "channel": where, "last_word_end": _seconds(r.words[-1].end)})

    def _results(
        self, r: Result, where: list[int], *, is_final: bool, speech_final: bool, from_finalize: bool = False
    ) -> dict:
        """A Results message of a partial (is_final false) or a final: the segment's transcript and words."""
        assert self.config is not None
        words = words_of(r, self.config.formatted)
        msg: dict[str, Any] = {
            "type": "Results",
            "channel_index": where,
            "duration": _seconds(max(r.end - r.start, 0.0)),
            "start": _seconds(r.start),
            "is_final": is_final,
            "speech_final": speech_final,
            "channel": {
                "alternatives": [
                    {
                        "transcript": transcript_of(r, self.config.formatted),
                        "confidence": confidence_of(words),
                        "words": words,
                    }
                ]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": model_info(self.model),
                "model_uuid": model_uuid(self.model),
            },
        }
        if is_final:
            msg["from_finalize"] = from_finalize
        return msg

    def _metadata(self) -> dict:
        channels = self.config.channels if self.config is not None else 1
        return {"type": "Metadata", **metadata(self.request_id, self.model, self._seconds, channels)}

    async def _message(self, msg: dict) -> None:
        async with self._send_lock:  # the reader (Configure's answers) and the writer (results) both send
            await self._send(msg)

    async def _fail(self, error: ProtocolError) -> None:
        """Deepgram's Error message, then the close with the error's code (quietly, if the client is gone)."""
        self._count_failure(error)
        with contextlib.suppress(GoneError):
            await self._message(error_message(error))
        await self._close(error.close_code, close_reason(error))


def model_uuid(model: str | None) -> str:
    """A Parley model's stand-in for Deepgram's model UUID (the same for every request to the model)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"parley:{model}"))


def model_info(model: str | None) -> dict:
    return {"name": model or "", "version": "parley", "arch": "transducer"}


def metadata(request_id: str, model: str | None, duration: float, channels: int) -> dict:
    """Deepgram's metadata of a request: the live API's Metadata message, the pre-recorded answer's `metadata`."""
    return {
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": "",
        "created": datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z"),
        "duration": _seconds(duration),
        "channels": channels,
        "models": [model_uuid(model)] if model else [],
        "model_info": {model_uuid(model): model_info(model)} if model else {},
    }


def words_of(r: Result, formatted: bool) -> list[dict]:
    """A result's words as Deepgram writes them: `confidence`, with `punctuated_word` where the transcript is
    formatted (the final's `display` word for word; a display that rewrote numbers spans words differently, and the
    words keep their own spelling), `speaker` where the stream tracks talkers."""
    display = r.display if isinstance(r, Final) else None
    shown = display.split() if formatted and display else None
    if shown is not None and len(shown) != len(r.words):
        shown = None
    out = []
    for i, w in enumerate(r.words):
        word: dict[str, Any] = {
            "word": w.text,
            "start": _seconds(w.start),
            "end": _seconds(w.end),
            "confidence": round(w.conf if w.conf is not None else 0.0, 3),
        }
        if formatted:
            word["punctuated_word"] = shown[i] if shown is not None else w.text
        if w.talker is not None:
            word["speaker"] = w.talker
        out.append(word)
    return out


def transcript_of(r: Result, formatted: bool) -> str:
    """The transcript: punctuated, cased, numbers in digits where asked for and the model can (`display`)."""
    display = r.display if isinstance(r, Final) else None
    return display if formatted and display else r.text


def confidence_of(words: Sequence[dict]) -> float:
    """An alternative's confidence: its words' mean (0 without words)."""
    return round(float(np.mean([w["confidence"] for w in words])), 3) if words else 0.0


def error_message(error: ProtocolError) -> dict:
    """An error as Deepgram's Error message, Parley's code in `variant` and `code`."""
    return {
        "type": "Error",
        "variant": error.code,
        "code": error.code,
        "description": error.message,
        "message": error.message,
    }


def close_reason(error: ProtocolError) -> str:
    """A close frame's reason (at most 123 bytes): the code and the start of the message."""
    return f"{error.code}: {error.message}".encode()[:123].decode(errors="ignore")


def _parse(text: str) -> Mapping[str, Any]:
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(BAD_JSON, "the message is not valid JSON") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError(BAD_MESSAGE, "a message is a JSON object with a type")
    return msg
