"""WhisperLive's protocol (collabora/WhisperLive; docs/whisperlive.md) at `WS /`, beside Vosk-server's: a connection
whose first message is a JSON object with a "uid" speaks it, so WhisperLive's clients (its Python client, browser
extensions, apps) reach Parley by host and port alone.

    -> {"uid", "language", "task", "model", "send_last_n_segments", "audio_format", "hotwords", "enable_translation",
        "target_language", "word_timestamps", ...}            the options; the rest of WhisperLive's are taken, unused
    <- {"uid", "message": "SERVER_READY", "backend": "faster_whisper"}
    <- {"uid", "language", "language_prob"}                  when the options named no language
    -> binary: 16 kHz mono audio, float32 (or the options' "int16" / "uint8"); b"END_OF_AUDIO" ends it
    <- {"uid", "segments": [{"start", "end", "text", "completed"}, ...]}   the last N completed segments (finals)
                                                              and the open one (the partial, completed false)
    <- {"uid", "translated_segments": [...]}                  the same, translated (a multilingual bundle)
    <- {"uid", "message": "DISCONNECT"}                       after END_OF_AUDIO's last segments; then close 1000

"backend" says "faster_whisper" because WhisperLive's clients keep completed segments (their transcript, their SRT)
only from a server that says so; `"engine": "parley"` beside it says what answers. A refusal is WhisperLive's status
message: `{"uid", "status": "WAIT", "message": minutes}` when the server is full, `{"uid", "status": "ERROR",
"message"}` for anything else, then the close with Parley's close code. A draining server sends the last segments
and closes 1001 without DISCONNECT, which WhisperLive's client takes as a cue to reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from server.protocol import (
    BAD_JSON,
    CLOSE_NORMAL,
    INVALID_VALUE,
    SERVER_FULL,
    SHUTTING_DOWN,
    TOO_BIG,
    TOO_MANY_STREAMS,
    ProtocolError,
    decode_audio_message,
    start_from_dict,
)
from server.recognizer import Final, Partial, Result
from server.session import Connection, GoneError, IdleClock, with_prompt, writable_hotwords

log = logging.getLogger("parley.whisperlive")

RATE = 16000  # WhisperLive's audio is always 16 kHz mono
END_OF_AUDIO = b"END_OF_AUDIO"
FORMATS = ("float32", "int16", "uint8")
PCM_ENCODINGS = {"float32": "f32le", "int16": "s16le"}  # the formats Parley's own audio messages share
MAX_LAST_SEGMENTS = 1000


def is_whisperlive_options(text: str | None) -> bool:
    """Whether a connection's first message is WhisperLive's options (a JSON object with a "uid") rather than
    Vosk-server's (a config, audio or eof)."""
    if text is None or '"uid"' not in text:
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, dict) and "uid" in value


@dataclass(frozen=True)
class Options:
    """WhisperLive's options message, as Parley takes it."""

    uid: str
    fields: dict  # a Parley start (without sample_rate and encoding)
    audio_format: str = "float32"
    last_n: int = 10
    language: str | None = None  # None: the client asked for detection
    translate_to: str | None = None  # enable_translation's target, or "en" for task "translate"
    words: bool = False
    ignored: tuple[str, ...] = field(default_factory=tuple)
    prompt: str | None = None  # initial_prompt, whose names and terms are hotwords (server/prompt.py)


def parse_options(text: str, models: Mapping[str, Any]) -> Options:
    """WhisperLive's first message as Parley's start fields. Whisper's model sizes ("small", "large-v3") pick the
    default model; a bundle's name picks that bundle.

    Raises:
        ProtocolError: bad_json, invalid_value for a field of the wrong type or value.
    """
    try:
        d = json.loads(text)
    except ValueError:
        raise ProtocolError(BAD_JSON, "the options are not JSON") from None
    if not isinstance(d, dict):
        raise ProtocolError(BAD_JSON, "the options are not a JSON object")
    uid = d.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ProtocolError(INVALID_VALUE, '"uid" must be a non-empty string')

    def get(name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        v = d.get(name, default)
        if v is not None and (not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool)):
            raise ProtocolError(INVALID_VALUE, f'"{name}" has the wrong type: {v!r}')
        return v

    fields: dict[str, Any] = {"type": "start", "partials": True}
    model = get("model", str)
    if model in models:
        fields["model"] = model
    language = get("language", str)
    task = get("task", str, "transcribe")
    if task not in ("transcribe", "translate"):
        raise ProtocolError(INVALID_VALUE, f'"task" must be "transcribe" or "translate", not {task!r}')
    target = get("target_language", str) if get("enable_translation", bool, False) else None
    translate_to = "en" if task == "translate" else target
    if translate_to:
        fields["translate"] = [translate_to]
    if language:
        fields["language"] = language.replace("_", "-").split("-")[0].lower()
    hotwords = get("hotwords", (str, list))
    if isinstance(hotwords, str):  # faster-whisper's: a string of words
        hotwords = [w for w in hotwords.replace(",", " ").split() if w]
    if hotwords:
        if not all(isinstance(w, str) for w in hotwords):
            raise ProtocolError(INVALID_VALUE, '"hotwords" must be a string or a list of strings')
        fields["hotwords"] = list(dict.fromkeys(w.strip().lower() for w in hotwords if w.strip()))
    audio_format = get("audio_format", str, "float32")
    if audio_format not in FORMATS:
        raise ProtocolError(INVALID_VALUE, f'"audio_format" must be one of {", ".join(FORMATS)}, not {audio_format!r}')
    last_n = get("send_last_n_segments", int, 10)
    if not 1 <= last_n <= MAX_LAST_SEGMENTS:
        raise ProtocolError(INVALID_VALUE, f'"send_last_n_segments" must be 1-{MAX_LAST_SEGMENTS}')
    prompt = get("initial_prompt", str)
    taken = {"uid", "model", "language", "task", "enable_translation", "target_language", "hotwords"}
    taken |= {"audio_format", "send_last_n_segments", "word_timestamps", "initial_prompt"}
    ignored = tuple(sorted(k for k, v in d.items() if k not in taken and v not in (None, False)))
    return Options(
        uid, fields, audio_format, last_n, fields.get("language"), translate_to, bool(get("word_timestamps", bool)),
        ignored, prompt,
    )  # fmt: skip


def samples_of(data: bytes, audio_format: str) -> np.ndarray:
    """A binary message's samples as float32 in [-1, 1).

    Raises:
        ProtocolError: bad_audio for bytes that are not whole samples, or float32 samples that are not finite.
    """
    if audio_format in PCM_ENCODINGS:  # Parley's own f32le and s16le
        return decode_audio_message(data, PCM_ENCODINGS[audio_format])
    return (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0


def segment(r: Result, text: str, completed: bool, words: bool) -> dict:
    """A WhisperLive segment: times as strings of seconds with three decimals, as faster-whisper's server writes."""
    seg: dict[str, Any] = {"start": f"{r.start:.3f}", "end": f"{r.end:.3f}", "text": text, "completed": completed}
    if words:
        seg["words"] = [
            {"start": round(w.start, 3), "end": round(w.end, 3), "word": w.text, "probability": round(w.conf, 3)}
            for w in r.words
        ]
    return seg


class WhisperLiveSession(Connection):
    """One WhisperLive connection at `/` (its options message already read: `first`)."""

    kind = "whisperlive session"
    logger = log

    def __init__(self, service: Any, ws: Any, first: str) -> None:
        super().__init__(service, ws)
        self.first = first
        self.options: Options | None = None
        self._done: list[dict] = []  # the completed segments sent so far
        self._done_translated: list[dict] = []
        self._language_sent = False

    async def _serve(self) -> None:
        svc = self.service
        limit = svc.settings.max_message_bytes
        try:
            if len(self.first.encode()) > limit:
                raise ProtocolError(TOO_BIG, f"the options are over the limit of {limit} bytes")
            self.options = parse_options(self.first, svc.engines)
            # faster-whisper takes any hotwords; here what the model cannot write is left out, not refused
            fields, dropped = writable_hotwords(svc, {**self.options.fields, "sample_rate": RATE, "encoding": "f32le"})
            if dropped:
                log.info("%s %s: %d hotwords left out", self.kind, self.id, dropped)
            start = with_prompt(svc, start_from_dict(fields), self.options.prompt)
            _, _, plan = self._open_stream(start, "whisperlive")
        except ProtocolError as e:
            await self._fail(e)
            return
        o = self.options
        if o.ignored:
            log.info("%s %s: options taken but unused: %s", self.kind, self.id, ", ".join(o.ignored))
        await self._send({"uid": o.uid, "message": "SERVER_READY", "backend": "faster_whisper", "engine": "parley"})
        engine = svc.engines[self.model] if self.model else None
        if o.language is None and engine is not None and not plan.auto and engine.languages:
            await self._language(engine.languages[0], 1.0)
        done, reader, writer, aborted = await self._reader_writer(self._read(), self._write(), self._flush_stream)
        error = self._ended_with(done, reader, writer, aborted)
        if error is not None:
            await self._fail(error)
        elif writer in done:  # the last segments went out after END_OF_AUDIO
            with contextlib.suppress(GoneError):
                await self._send({"uid": o.uid, "message": "DISCONNECT"})
            await self._close(CLOSE_NORMAL)

    async def _read(self) -> None:
        """Audio until END_OF_AUDIO (then the stream's stop, and the wait for the writer's end) or the client
        leaves."""
        assert self.options is not None and self.stream is not None
        limit = self.service.settings.max_message_bytes
        clock = IdleClock(self.service.settings.idle_timeout_s)
        while (received := await self._receive(clock)) is not None:
            text, data, arrived = received
            if data == END_OF_AUDIO or text == END_OF_AUDIO.decode():
                await self.stream.stop()
                while await self._receive(clock, timed=False) is not None:
                    pass  # the writer sends the last segments and DISCONNECT; nothing the client sends counts now
                break
            if data is None:
                continue  # WhisperLive sends no other text; a later version's message is ignored
            if len(data) > limit:
                raise ProtocolError(TOO_BIG, f"a message over the limit of {limit} bytes")
            x = samples_of(data, self.options.audio_format)
            clock.audio(x.size / RATE)
            self.service.count_audio(x.size / RATE, self.key)
            await self.stream.push(x, arrived)
        raise GoneError()  # the client left

    async def _write(self) -> None:
        """Each update as WhisperLive's segments message: the last N completed segments and the open one."""
        assert self.options is not None
        async for update in self._updates():
            partial: Result | None = None
            changed = False
            for r in update.results:
                if isinstance(r, Final):
                    partial = None
                    if r.text:
                        await self._detected(r)
                        self._done.append(segment(r, (r.display or r.text).strip(), True, self.options.words))
                        for text in (r.translations or {}).values():
                            self._done_translated.append(segment(r, text, True, False))
                        changed = True
                elif isinstance(r, Partial):
                    partial, changed = r, True
            if changed:
                await self._segments(partial)

    async def _segments(self, partial: Result | None) -> None:
        o = self.options
        assert o is not None
        shown = self._done[-o.last_n :]
        if partial is not None and partial.text:
            shown = [*shown, segment(partial, partial.text, False, o.words)]
        if shown:
            await self._send({"uid": o.uid, "segments": shown})
        if o.translate_to and self._done_translated:
            translated = self._done_translated[-o.last_n :]
            if partial is not None and partial.translations:
                text = next(iter(partial.translations.values()), "")
                if text:
                    translated = [*translated, segment(partial, text, False, False)]
            await self._send({"uid": o.uid, "translated_segments": translated})

    async def _detected(self, r: Result) -> None:
        """The language of an automatically identified stream, once, as WhisperLive's detection message."""
        if not self._language_sent and r.language and self.options is not None and self.options.language is None:
            await self._language(r.language, 1.0)

    async def _language(self, language: str, probability: float) -> None:
        assert self.options is not None
        self._language_sent = True
        await self._send({"uid": self.options.uid, "language": language, "language_prob": probability})

    async def _fail(self, error: ProtocolError) -> None:
        """WhisperLive's status message (WAIT when the server or the key is full, else ERROR), then the close; a
        drain's shutting_down sends none, so that WhisperLive's client reconnects."""
        self._count_failure(error)
        uid = self.options.uid if self.options is not None else _uid_of(self.first)
        with contextlib.suppress(GoneError):
            if error.code in (SERVER_FULL, TOO_MANY_STREAMS):
                await self._send({"uid": uid, "status": "WAIT", "message": 1.0})
            elif error.code != SHUTTING_DOWN:
                await self._send({"uid": uid, "status": "ERROR", "message": f"{error.message} ({error.code})"})
        await self._close(error.close_code, error.message[:120])


def _uid_of(text: str) -> str | None:
    with contextlib.suppress(ValueError, AttributeError):
        uid = json.loads(text).get("uid")
        return uid if isinstance(uid, str) else None
    return None


class FirstMessage:
    """A WebSocket whose first message was read before its session began: `accept` is done, and the first
    `receive` gives that message back. Everything else is the socket's."""

    def __init__(self, ws: Any, first: dict) -> None:
        self._ws = ws
        self._first: dict | None = first

    async def accept(self, subprotocol: str | None = None) -> None:
        return None

    async def receive(self) -> dict:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return await self._ws.receive()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


async def first_message(ws: Any, timeout: float) -> dict | None:
    """Accepts `ws` and reads its first message (None: the client left).

    Raises:
        TimeoutError: nothing came within `timeout` seconds.
    """
    await ws.accept()
    async with asyncio.timeout(timeout):
        msg = await ws.receive()
    return None if msg["type"] == "websocket.disconnect" else msg
