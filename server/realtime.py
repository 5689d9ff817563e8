"""OpenAI's Realtime API for transcription at `WS /v1/realtime`, so that an app written for OpenAI's live transcription
(its SDKs' `client.realtime.connect(extra_query={"intent": "transcription"})`, or any client of the protocol) streams
to a Parley server unchanged (docs/protocol.md "OpenAI's Realtime transcription").

    client                                                          server
      │                                     ◄── session.created        │  the defaults: 24 kHz PCM, server VAD
      │── session.update {"session": {"type": "transcription", ...}} ─►│  optional: format, model, language,
      │                                     ◄── session.updated        │  keywords, turn detection
      │── input_audio_buffer.append {"audio": base64} ───────────────►│  no answer
      │         ◄── input_audio_buffer.speech_started {item_id, audio_start_ms}
      │         ◄── conversation.item.input_audio_transcription.delta {item_id, delta}   while the person speaks
      │         ◄── input_audio_buffer.speech_stopped, input_audio_buffer.committed    at the endpoint
      │         ◄── conversation.item.added, conversation.item.done {item}   the turn's user message
      │         ◄── conversation.item.input_audio_transcription.completed {item_id, transcript}
      │── input_audio_buffer.commit ────────────────────────────────►│  closes the turn now (no VAD: the only way)
      │── input_audio_buffer.clear ─────────────────────────────────►│  drops the open turn: cleared, no transcript

Underneath it is a stream of the same engine as `/v1/stream` (batching, endpointing, limits, keys and account rules,
draining, metrics counted with `protocol="realtime"`): an item is a Parley segment, OpenAI's server VAD is Parley's
endpointing (`silence_duration_ms` its silence after speech), a commit is a finalize, `keywords` are hotwords, and so
are the names and terms of the transcription's `prompt` (server/prompt.py; both may change mid-stream, as a context
message changes hotwords). Unlike OpenAI's transcription models, which start on a commit,
Parley sends each item's deltas while it is spoken: the words a partial promises not to change (`stable`), then the
rest with the item's end; `completed` carries the final transcript, punctuated and cased where the model can
(`display`), which replaces what the deltas spelled. A client that sends the `OpenAI-Beta: realtime=v1` header (the
beta API) gets the beta's names for the session events (`transcription_session.created` / `.updated`), and its
`transcription_session.update` with the beta's fields is read too.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket

from parley.features import MAX_INPUT_RATE, MIN_INPUT_RATE
from server.messages import result_message, word_logprobs
from server.protocol import (
    BAD_JSON,
    BAD_MESSAGE,
    INTERNAL,
    INVALID_VALUE,
    TOO_BIG,
    UNSUPPORTED_OPTION,
    UNSUPPORTED_RATE,
    ProtocolError,
    StartRequest,
    decode_audio_message,
    preview,
    start_from_dict,
)
from server.recognizer import Final, Partial
from server.session import (
    Connection,
    GoneError,
    IdleClock,
    replace_hotwords,
    resolve_start,
    start_adaptation,
    with_prompt,
)

if TYPE_CHECKING:
    from server.engine import Engine
    from server.plan import HeadPlan
    from server.service import Service

log = logging.getLogger("parley.realtime")

REALTIME_PATH = "/v1/realtime"
# OpenAI's audio formats: 24 kHz 16-bit PCM, and G.711 at 8 kHz. Parley also takes a PCM "rate" of 8-192 kHz.
FORMATS = {"audio/pcm": "s16le", "audio/pcmu": "mulaw", "audio/pcma": "alaw"}
FORMAT_RATES = {"audio/pcm": 24000, "audio/pcmu": 8000, "audio/pcma": 8000}
BETA_FORMATS = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}
DEFAULT_SILENCE_MS = 500  # OpenAI's server VAD default
# semantic_vad's eagerness, as the silence after speech that closes a turn (Parley has no semantic turn model).
EAGERNESS_SILENCE_MS = {"low": 1200, "medium": 700, "auto": 700, "high": 400}
DEFAULT_TURN_DETECTION: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": DEFAULT_SILENCE_MS,
}
BETA_HEADER = "openai-beta"
LOGPROBS = "item.input_audio_transcription.logprobs"  # include: each completed's words with their log probabilities
# Client events of a conversation session, which a transcription session does not serve.
_CONVERSATION_EVENTS = ("response.", "conversation.", "output_audio_buffer.")


@dataclass(frozen=True)
class RealtimeConfig:
    """A transcription session's configuration: what `session.created` shows and `session.update` changes.

    `turn_detection` None: no VAD, the client commits each turn. `extra` keeps the fields Parley accepts and does
    not use (the session's `prompt`, `noise_reduction`, `include`, ...), to show them back as the client set them,
    and the transcription's `prompt` (`RealtimeConfig.prompt`), whose names and terms become hotwords.
    """

    format: str = "audio/pcm"
    rate: int = FORMAT_RATES["audio/pcm"]
    model: str | None = None
    language: str | None = None
    keywords: tuple[str, ...] = ()
    turn_detection: Mapping[str, Any] | None = field(default_factory=lambda: dict(DEFAULT_TURN_DETECTION))
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def encoding(self) -> str:
        return FORMATS[self.format]

    @property
    def prompt(self) -> str | None:
        """The transcription's prompt, whose names and terms are hotwords beside the keywords (server/prompt.py)."""
        prompt = self.extra.get("transcription.prompt")
        return prompt if isinstance(prompt, str) else None

    def silence_ms(self) -> int | None:
        """The silence after speech that closes a turn; None without VAD."""
        t = self.turn_detection
        if t is None:
            return None
        if t.get("type") == "semantic_vad":
            return EAGERNESS_SILENCE_MS[t.get("eagerness") or "auto"]
        return int(t.get("silence_duration_ms") or DEFAULT_SILENCE_MS)


def _invalid(name: str, expected: str, value: Any) -> ProtocolError:
    return ProtocolError(INVALID_VALUE, f"{name} must be {expected}, got {preview(value)}")


def _object(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(name, "an object", value)
    return value


def parse_session(session: Mapping[str, Any], base: RealtimeConfig, beta: bool) -> RealtimeConfig:
    """`session.update`'s `session` (GA: `{"type": "transcription", "audio": {"input": {"format", "transcription",
    "turn_detection", ...}}}`) or `transcription_session.update`'s (beta: `input_audio_format`,
    `input_audio_transcription`, `turn_detection`) over `base`: only the fields present change.

    Raises:
        ProtocolError: invalid_value (a field of the wrong kind), unsupported_rate.
    """
    cfg = base
    extra = dict(base.extra)
    if beta:
        audio_in = {
            k: session[v]
            for k, v in (("format", "input_audio_format"), ("transcription", "input_audio_transcription"))
            if v in session
        }
        if "turn_detection" in session:
            audio_in["turn_detection"] = session["turn_detection"]
        if "input_audio_noise_reduction" in session:
            extra["noise_reduction"] = session["input_audio_noise_reduction"]
    else:
        if session.get("type", "transcription") != "transcription":
            raise ProtocolError(
                UNSUPPORTED_OPTION,
                f'session type {preview(session.get("type"))}: Parley serves transcription sessions ("type": '
                '"transcription"), not conversations',
            )
        audio = _object(session.get("audio", {}), "session.audio")
        audio_in = dict(_object(audio.get("input", {}), "session.audio.input"))
    if "include" in session:
        include = session["include"] or []
        if not isinstance(include, list) or any(i != LOGPROBS for i in include):
            raise _invalid("include", f'a list of "{LOGPROBS}"', include)
        extra["include"] = include
    if "prompt" in session:
        extra["prompt"] = session["prompt"]
    if "noise_reduction" in audio_in:
        extra["noise_reduction"] = audio_in["noise_reduction"]
    if "format" in audio_in:
        cfg = _format(audio_in["format"], cfg, beta)
    if "transcription" in audio_in:
        cfg = _transcription(audio_in["transcription"], cfg, extra)
    if "turn_detection" in audio_in:
        cfg = replace(cfg, turn_detection=_turn_detection(audio_in["turn_detection"]))
    return replace(cfg, extra=extra)


def _format(value: Any, cfg: RealtimeConfig, beta: bool) -> RealtimeConfig:
    if beta and isinstance(value, str):
        if value not in BETA_FORMATS:
            raise _invalid("input_audio_format", f"one of {list(BETA_FORMATS)}", value)
        kind = BETA_FORMATS[value]
        return replace(cfg, format=kind, rate=FORMAT_RATES[kind])
    fmt = _object(value, "audio.input.format")
    kind = fmt.get("type", "audio/pcm")
    if kind not in FORMATS:
        raise _invalid("audio.input.format.type", f"one of {list(FORMATS)}", kind)
    rate = fmt.get("rate", FORMAT_RATES[kind])
    if isinstance(rate, bool) or not isinstance(rate, int):
        raise _invalid("audio.input.format.rate", "an integer of Hz", rate)
    if kind != "audio/pcm" and rate != FORMAT_RATES[kind]:
        raise _invalid("audio.input.format.rate", f"{FORMAT_RATES[kind]} for {kind}", rate)
    if not MIN_INPUT_RATE <= rate <= MAX_INPUT_RATE:
        raise ProtocolError(UNSUPPORTED_RATE, f"rate {rate} Hz: use {MIN_INPUT_RATE}-{MAX_INPUT_RATE} Hz")
    return replace(cfg, format=kind, rate=rate)


def _transcription(value: Any, cfg: RealtimeConfig, extra: dict[str, Any]) -> RealtimeConfig:
    if value is None:  # transcription off: a transcription session has nothing else to do
        raise _invalid("audio.input.transcription", "an object (this session only transcribes)", value)
    t = _object(value, "audio.input.transcription")
    if "model" in t:
        model = t["model"]
        if model is not None and not isinstance(model, str):
            raise _invalid("transcription.model", "a model name", model)
        # OpenAI's model names (whisper-1, gpt-4o-transcribe, ...) mean the server's default model.
        cfg = replace(cfg, model=None if model is None or model.startswith(("whisper-", "gpt-")) else model)
    if "language" in t:
        language = t["language"]
        if language is not None and not isinstance(language, str):
            raise _invalid("transcription.language", "an ISO-639-1 code", language)
        cfg = replace(cfg, language=language or None)
    if "keywords" in t:
        words = t["keywords"] or []
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise _invalid("transcription.keywords", "a list of strings", words)
        cfg = replace(cfg, keywords=tuple(w for w in words if w.strip()))
    for key in ("prompt", "delay", "languages"):
        if key in t:
            extra[f"transcription.{key}"] = t[key]
    return cfg


def _turn_detection(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    t = dict(_object(value, "turn_detection"))
    kind = t.get("type", "server_vad")
    if kind not in ("server_vad", "semantic_vad"):
        raise _invalid("turn_detection.type", "server_vad, semantic_vad or null", kind)
    t["type"] = kind
    if kind == "server_vad":
        silence = t.get("silence_duration_ms", DEFAULT_SILENCE_MS)
        if isinstance(silence, bool) or not isinstance(silence, int) or not 100 <= silence <= 60_000:
            raise _invalid("turn_detection.silence_duration_ms", "an integer from 100 to 60000", silence)
        t = {**DEFAULT_TURN_DETECTION, **t}
    elif (t.get("eagerness") or "auto") not in EAGERNESS_SILENCE_MS:
        raise _invalid("turn_detection.eagerness", f"one of {list(EAGERNESS_SILENCE_MS)}", t.get("eagerness"))
    return t


def session_object(cfg: RealtimeConfig, session_id: str, beta: bool) -> dict:
    """The session as `session.created` / `session.updated` show it (the beta's flat fields for a beta client)."""
    transcription: dict[str, Any] = {"model": cfg.model or "parley", "language": cfg.language}
    if cfg.keywords:
        transcription["keywords"] = list(cfg.keywords)
    for key, value in cfg.extra.items():
        if key.startswith("transcription."):
            transcription[key.removeprefix("transcription.")] = value
    noise = cfg.extra.get("noise_reduction")
    if beta:
        beta_formats = {v: k for k, v in BETA_FORMATS.items()}
        return {
            "id": session_id,
            "object": "realtime.transcription_session",
            "input_audio_format": beta_formats[cfg.format],
            "input_audio_transcription": transcription,
            "turn_detection": None if cfg.turn_detection is None else dict(cfg.turn_detection),
            "input_audio_noise_reduction": noise,
            "include": cfg.extra.get("include", []),
        }
    fmt: dict[str, Any] = {"type": cfg.format}
    if cfg.format == "audio/pcm":
        fmt["rate"] = cfg.rate
    return {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": session_id,
        "audio": {
            "input": {
                "format": fmt,
                "transcription": transcription,
                "turn_detection": None if cfg.turn_detection is None else dict(cfg.turn_detection),
                "noise_reduction": noise,
            }
        },
        "include": cfg.extra.get("include", []),
    }


def start_request(cfg: RealtimeConfig) -> StartRequest:
    """The Parley start message a session's configuration makes (checked as a start message is).

    Raises:
        ProtocolError: what `start_from_dict` raises (hotwords the server refuses, ...).
    """
    silence = cfg.silence_ms()
    fields: dict[str, Any] = {
        "type": "start",
        "sample_rate": cfg.rate,
        "encoding": cfg.encoding,
        "endpointing": False if silence is None else {"silence_after_speech_s": silence / 1000},
    }
    if cfg.model:
        fields["model"] = cfg.model
    if cfg.language:
        fields["language"] = cfg.language
    if cfg.keywords:
        fields["hotwords"] = list(cfg.keywords)
    return start_from_dict(fields)


def error_details(error: ProtocolError, client_event_id: str | None = None) -> dict:
    """An `error` event's `error`, OpenAI's shape, with Parley's code (and the client event that caused it)."""
    kind = "server_error" if error.code == INTERNAL else "invalid_request_error"
    return {"type": kind, "code": error.code, "message": error.message, "param": None, "event_id": client_event_id}


@dataclass
class _Item:
    """The open item (a segment with words): its id, and the text its deltas have spelled so far."""

    id: str
    sent: str = ""
    spelling: bool = True  # False once a partial no longer extends what the deltas spelled


class RealtimeSession(Connection):
    """One connection at `WS /v1/realtime` (see `Connection`)."""

    kind = "realtime session"
    logger = log

    def __init__(self, service: Service, ws: WebSocket) -> None:
        super().__init__(service, ws)
        self.beta = BETA_HEADER in ws.headers and "realtime=v1" in ws.headers[BETA_HEADER]
        self.session_id = "sess_" + secrets.token_hex(8)
        self.config = RealtimeConfig()
        self.opened: tuple[StartRequest, Engine, HeadPlan] | None = None
        self._opened = asyncio.Event()
        self._item: _Item | None = None
        self._previous_item: str | None = None
        self._intents: collections.deque[str] = collections.deque()  # "commit" / "clear", as their finals come
        self._appended = False  # audio since the last commit or clear
        self._send_lock = asyncio.Lock()

    async def _serve(self) -> None:
        await self._event("transcription_session.created" if self.beta else "session.created", session=self._shown())
        done, reader, writer, aborted = await self._reader_writer(self._read(), self._write(), self._flush_stream)
        error = self._ended_with(done, reader, writer, aborted)
        if error is not None:
            await self._fail(error)
        else:
            await self._close(1000)

    # ---- Client events ----

    async def _read(self) -> None:
        """Client events until the client leaves. A bad event is answered by an error event and the session goes
        on, as OpenAI's does; the idle timeout, an oversized event and an engine failure end it."""
        limit = self.service.settings.max_message_bytes
        clock = IdleClock(self.service.settings.idle_timeout_s)
        while (received := await self._receive(clock)) is not None:
            text, data, arrived = received
            if text is None:
                if data:
                    await self._event("error", error=error_details(ProtocolError(BAD_MESSAGE, _BINARY)))
                continue
            if len(text) > 2 * limit:  # base64's 4/3 of the audio, and the JSON around it
                raise ProtocolError(TOO_BIG, f"event over the limit of {2 * limit} characters")
            client_event_id = None
            try:
                event = _parse_event(text)
                client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
                await self._on_event(event, arrived, clock)
            except ProtocolError as e:
                if e.code in (TOO_BIG, INTERNAL):
                    raise
                self.service.count_error(e.code)
                await self._event("error", error=error_details(e, client_event_id))

    async def _on_event(self, event: Mapping[str, Any], arrived: float, clock: IdleClock) -> None:
        kind = event["type"]
        if kind in ("session.update", "transcription_session.update"):
            await self._update(_object(event.get("session"), "session"), beta=kind.startswith("transcription_"))
        elif kind == "input_audio_buffer.append":
            await self._append(event.get("audio"), arrived, clock)
        elif kind == "input_audio_buffer.commit":
            if self.stream is None or not self._appended:
                raise ProtocolError("input_audio_buffer_commit_empty", "no audio appended since the last commit")
            self._appended = False
            self._intents.append("commit")
            await self.stream.finalize()
        elif kind == "input_audio_buffer.clear":
            if self.stream is not None:
                self._intents.append("clear")
                await self.stream.finalize()
            self._appended = False
            await self._event("input_audio_buffer.cleared")
        elif kind.startswith(_CONVERSATION_EVENTS) or kind == "session.close":
            raise ProtocolError(UNSUPPORTED_OPTION, f"{kind}: this is a transcription session (Parley answers none)")
        else:
            raise ProtocolError(BAD_MESSAGE, f"unknown event type {preview(kind)}")

    async def _update(self, session: Mapping[str, Any], beta: bool) -> None:
        cfg = parse_session(session, self.config, beta)
        if self.opened is not None:
            changed = {
                name
                for name in ("format", "rate", "model", "language", "turn_detection")
                if getattr(cfg, name) != getattr(self.config, name)
            }
            if changed:
                raise ProtocolError(
                    INVALID_VALUE, f"{sorted(changed)} cannot change once audio has come (keywords can)"
                )
            if (cfg.keywords, cfg.prompt) != (self.config.keywords, self.config.prompt):
                self._keywords(cfg)
        else:  # checked now (the model, its language, the hotwords), so that the update's error answers it
            start = self.service.policy(self._start(cfg), self.key)
            resolve_start(self.service, start, start_adaptation(start))
        self.config = cfg
        await self._event(
            "transcription_session.updated" if self.beta or beta else "session.updated", session=self._shown()
        )

    def _start(self, cfg: RealtimeConfig) -> StartRequest:
        """The start message of a session configured `cfg`: its keywords and its prompt's terms as hotwords."""
        return with_prompt(self.service, start_request(cfg), cfg.prompt)

    def _keywords(self, cfg: RealtimeConfig) -> None:
        """New keywords or a new prompt mid-stream: the stream's hotwords, as a context message replaces them, and
        its LM as a session configured so from the start would have it (a prompt's names keep the general LM)."""
        assert self.opened is not None and self.stream is not None
        start, engine, plan = self.opened
        new = self._start(cfg)  # checked as a start's are
        replace_hotwords(engine, self.stream, replace(start, lm=new.lm), plan, new.hotwords)

    async def _append(self, audio: Any, arrived: float, clock: IdleClock) -> None:
        if not isinstance(audio, str):
            raise _invalid("audio", "base64 text", audio)
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError(INVALID_VALUE, "audio is not valid base64") from None
        samples = decode_audio_message(data, self.config.encoding, self.service.settings.max_message_bytes)
        if self.stream is None:
            self._open()
        assert self.stream is not None
        seconds = samples.size / self.config.rate
        clock.audio(seconds)
        self.service.count_audio(seconds, self.key)
        self._appended = self._appended or samples.size > 0
        await self.stream.push(samples, arrived)

    def _open(self) -> None:
        self.opened = self._open_stream(self._start(self.config), "realtime", respell_from=True)
        self._opened.set()

    # ---- Server events ----

    async def _write(self) -> None:
        """The engine's results as transcription events, until the stream ends."""
        await self._opened.wait()
        async for update in self._updates():
            for r in update.results:
                if isinstance(r, Final):
                    intent = self._intents.popleft() if update.finalized and self._intents else None
                    await self._final(r, intent)
                elif isinstance(r, Partial):
                    await self._partial(r)

    async def _begin(self, r: Partial | Final) -> _Item:
        """The open item, begun (and its speech_started sent, with VAD) at `r`'s first word if none is open."""
        if self._item is None:
            start = r.words[0].start if r.words else r.start  # where the speech began, not the segment
            self._item = _Item("item_" + secrets.token_hex(8))
            if self.config.turn_detection is not None:
                await self._event(
                    "input_audio_buffer.speech_started", audio_start_ms=round(start * 1000), item_id=self._item.id
                )
        return self._item

    async def _partial(self, p: Partial) -> None:
        if not p.text:
            return
        item = await self._begin(p)
        if not item.spelling:
            return
        if not p.text.startswith(item.sent):  # the words changed under what was spelled: the rest waits for the end
            item.spelling = False
            return
        # What will not change: `stable`, or where the search cannot promise it, the words it has settled.
        settled = p.text[: p.stable] if p.stable is not None else self._settled(p)
        if len(settled) > len(item.sent):
            await self._delta(item, settled[len(item.sent) :])

    def _settled(self, p: Partial) -> str:
        """A partial's words that its beam search has settled, where the partial promises none (a stream with
        hotwords: its final may respell a word): those followed by a word that began at least the engine's
        `settle_ms` (and an encoder frame) before what was decoded, whose tokens no hypothesis spells otherwise any
        more, and none from the first word the final may still respell (`Partial.respell_from`: the finals' acoustic
        check may write a hotword where the partial has other words). Without settling, every word but the last, as
        before settling was."""
        words = [w.text for w in p.words]
        engine = self.opened[1] if self.opened is not None else None
        if engine is None or engine.config.settle_ms <= 0 or " ".join(words) != p.text:
            return p.text.rsplit(" ", 1)[0] if " " in p.text else ""
        spec = engine.model.spec
        frame_s = spec.features.frame_shift_ms / 1000.0 * spec.subsampling
        cutoff = p.end - engine.config.settle_ms / 1000.0 - frame_s
        n = 0
        for k in range(1, len(p.words)):
            if p.words[k].start > cutoff:
                break
            n = k
        if p.respell_from is not None:
            n = min(n, next((k for k, w in enumerate(p.words) if w.end > p.respell_from), len(p.words)))
        return " ".join(words[:n])

    async def _delta(self, item: _Item, delta: str) -> None:
        await self._event(
            "conversation.item.input_audio_transcription.delta", item_id=item.id, content_index=0, delta=delta
        )
        item.sent += delta

    async def _final(self, f: Final, intent: str | None) -> None:
        if intent == "clear":  # the client dropped this turn: no transcript
            self._item = None
            return
        if not f.text and self._item is None and intent != "commit":
            return  # a segment of silence closed by the endpoint: no turn
        item = await self._begin(f)
        if self.config.turn_detection is not None:
            await self._event("input_audio_buffer.speech_stopped", audio_end_ms=round(f.end * 1000), item_id=item.id)
        await self._event("input_audio_buffer.committed", item_id=item.id, previous_item_id=self._previous_item)
        # The user message the commit made, as OpenAI announces it (its transcript comes in completed).
        message = {
            "id": item.id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        added = "conversation.item.created" if self.beta else "conversation.item.added"
        await self._event(added, previous_item_id=self._previous_item, item=message)
        if not self.beta:
            await self._event("conversation.item.done", previous_item_id=self._previous_item, item=message)
        if item.spelling and f.text.startswith(item.sent) and len(f.text) > len(item.sent):
            await self._delta(item, f.text[len(item.sent) :])
        await self._event(
            "conversation.item.input_audio_transcription.completed",
            item_id=item.id,
            content_index=0,
            transcript=f.display if f.display is not None else f.text,
            usage={"type": "duration", "seconds": round(max(f.end - f.start, 0.0), 3)},  # the item's audio
            **({"logprobs": word_logprobs(result_message(f)["words"])} if self._logprobs() else {}),
        )
        self._previous_item, self._item = item.id, None

    def _logprobs(self) -> bool:
        """Whether the session's `include` asks for the words' log probabilities (in each completed)."""
        include = self.config.extra.get("include") or []
        return isinstance(include, list) and LOGPROBS in include

    def _shown(self) -> dict:
        return session_object(self.config, self.session_id, self.beta)

    async def _event(self, kind: str, **fields: Any) -> None:
        async with self._send_lock:  # the reader (session events, errors) and the writer (results) both send
            await self._send({"type": kind, "event_id": "event_" + secrets.token_hex(8), **fields})

    async def _fail(self, error: ProtocolError) -> None:
        """Sends the error event and closes with the error's code (quietly, if the client is already gone)."""
        self._count_failure(error)
        with contextlib.suppress(GoneError):
            await self._event("error", error=error_details(error))
        await self._close(error.close_code)


_BINARY = "binary messages are not events: send input_audio_buffer.append with the audio in base64"


def _parse_event(text: str) -> Mapping[str, Any]:
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(BAD_JSON, "the event is not valid JSON") from None
    if not isinstance(event, dict):
        raise ProtocolError(BAD_JSON, f"an event must be a JSON object, got {type(event).__name__}")
    if not isinstance(event.get("type"), str):
        raise ProtocolError(BAD_MESSAGE, f"an event needs a type, got {preview(event.get('type'))}")
    return event
