"""Vosk-server's WebSocket protocol at `/`, so that existing Vosk clients work with Parley unchanged (docs/vosk.md).

What a Vosk client does, and what it gets (as vosk-server's websocket/asr_server.py answers it):

    client                                             server
      │── {"config": {"sample_rate": 16000, ...}} ───────►│  optional, before the audio; no answer
      │── binary: s16le PCM ─────────────────────────────►│
      │◄────────────────────────── {"partial": "set a"}    │  exactly one answer per binary message
      │── binary ... ────────────────────────────────────►│
      │◄── {"result": [{"conf","end","start","word"}...], │  at an endpoint: the utterance's result
      │     "text": "set a timer"}                        │
      │── {"reset" : 1} ─────────────────────────────────►│  the open utterance's result; the stream goes on
      │◄────────────────────────── {"text": "..."}         │
      │── {"eof" : 1} ───────────────────────────────────►│  the last result, then close 1000
      │◄────────────────────────── {"result": ..., "text"} │

Underneath it is a stream of the same engine as `/v1/stream` (batching, endpointing, limits, API keys, draining and
metrics, counted with `protocol="vosk"`): this module only turns the recognizer's partials and finals into Vosk's
replies.
To answer every audio message once, the session waits after each push until the engine has decoded every whole chunk
of the audio so far (`Stream.unanswered`); the reply is the utterance's result when an endpoint closed one (several
closed by one long message are joined into one result), else the open utterance's partial. Vosk has no error
messages: a refused or broken stream is closed with the code docs/protocol.md gives its error and the error as the
close reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket

from parley.features import MAX_INPUT_RATE, MIN_INPUT_RATE
from server.batcher import Stream, StreamClosedError
from server.plan import Adaptation
from server.protocol import (
    BAD_JSON,
    BAD_MESSAGE,
    CLOSE_NORMAL,
    INTERNAL,
    INVALID_VALUE,
    TOO_BIG,
    UNSUPPORTED_RATE,
    ProtocolError,
    clip_text,
    decode_audio_message,
    preview,
)
from server.protocol import MAX_ALTERNATIVES as STREAM_MAX_ALTERNATIVES
from server.recognizer import Final, Word
from server.session import FLUSH_TIMEOUT_S, Connection, EngineFailureError, GoneError, IdleClock, settle

if TYPE_CHECKING:
    from server.service import Service

log = logging.getLogger("parley.vosk")

VOSK_PATH = "/"
# What vosk-server assumes of a client that sends no config: 8 kHz audio (VOSK_SAMPLE_RATE), words on
# (VOSK_SHOW_WORDS), one best result (VOSK_MAX_ALTERNATIVES 0).
DEFAULT_SAMPLE_RATE = 8000
DEFAULT_WORDS = True
MAX_ALTERNATIVES = 100  # a bound on the config value; Parley lists at most protocol.MAX_ALTERNATIVES (the beam's)
_MAX_PHRASES = 10_000  # phrase_list entries accepted; the first max_hotwords the model can write become hotwords
_MAX_REASON_BYTES = 123  # RFC 6455: a close frame's reason, in UTF-8


@dataclass(frozen=True)
class VoskConfig:
    """A Vosk client's configuration (its optional first text message).

    `phrase_list` becomes the stream's hotwords (biasing, not Vosk's grammar restriction; docs/vosk.md).
    """

    sample_rate: int = DEFAULT_SAMPLE_RATE
    words: bool = DEFAULT_WORDS
    max_alternatives: int = 0
    phrase_list: tuple[str, ...] = field(default_factory=tuple)
    model: str | None = None


@dataclass(frozen=True)
class Command:
    """`{"eof" : 1}` (the last result, then close) or `{"reset" : 1}` (a result, then go on)."""

    eof: bool


def _invalid(name: str, expected: str, value: Any) -> ProtocolError:
    return ProtocolError(INVALID_VALUE, f'config "{name}" must be {expected}, got {preview(value)}')


def parse_config(d: Mapping[str, Any], base: VoskConfig = VoskConfig()) -> VoskConfig:
    """The `config` object of a Vosk client's text message over `base`; keys vosk-server does not know are ignored,
    as it ignores them.

    Raises:
        ProtocolError: a value of the wrong type or out of range.
    """
    cfg = base
    if "sample_rate" in d:
        rate = d["sample_rate"]  # vosk-server takes float(...): 16000, 16000.0 and "16000" alike
        try:
            value = float(rate)
        except (TypeError, ValueError, OverflowError):
            raise _invalid("sample_rate", "a number of Hz", rate) from None
        if isinstance(rate, bool) or not math.isfinite(value):
            raise _invalid("sample_rate", "a number of Hz", rate)
        if not MIN_INPUT_RATE <= value <= MAX_INPUT_RATE:
            raise ProtocolError(
                UNSUPPORTED_RATE,
                f"sample_rate {preview(rate, 20)} Hz not supported: use {MIN_INPUT_RATE}-{MAX_INPUT_RATE} Hz",
            )
        cfg = replace(cfg, sample_rate=round(value))
    if "words" in d:
        if not isinstance(d["words"], bool | int):
            raise _invalid("words", "true or false", d["words"])
        cfg = replace(cfg, words=bool(d["words"]))
    if "max_alternatives" in d:
        n = d["max_alternatives"]
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_ALTERNATIVES:
            raise _invalid("max_alternatives", f"an integer from 0 to {MAX_ALTERNATIVES}", n)
        cfg = replace(cfg, max_alternatives=n)
    if "phrase_list" in d:
        phrases = d["phrase_list"]
        if phrases is None:
            phrases = []
        if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases) or len(phrases) > _MAX_PHRASES:
            raise _invalid("phrase_list", f"a list of at most {_MAX_PHRASES} strings", phrases)
        cfg = replace(cfg, phrase_list=tuple(phrases))
    if "model" in d:
        name = d["model"]
        if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 128):
            raise _invalid("model", "a model name from GET /v1/models", name)
        cfg = replace(cfg, model=name)
    return cfg


def parse_text(text: str | bytes, base: VoskConfig) -> VoskConfig | Command:
    """A Vosk client's text message: a config (merged over `base`), eof or reset.

    Raises:
        ProtocolError: not a JSON object (bad_json), none of the three (bad_message), a bad config value.
    """
    try:
        d = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ProtocolError(BAD_JSON, "text message is not valid JSON") from None
    if not isinstance(d, dict):
        raise ProtocolError(BAD_JSON, f"text message must be a JSON object, got {type(d).__name__}")
    if "config" in d:
        if not isinstance(d["config"], dict):
            raise _invalid("config", "an object", d["config"])
        return parse_config(d["config"], base)
    for key in ("eof", "reset"):
        if key in d and d[key] in (1, True):
            return Command(eof=key == "eof")
    expected = '{"config": {...}}, {"eof" : 1} or {"reset" : 1}'
    raise ProtocolError(BAD_MESSAGE, f"text messages are {expected}, got {preview(d)}")


# ---- Replies ----


def partial_reply(text: str) -> dict:
    """The answer to audio that closed no utterance: the open utterance's text so far."""
    return {"partial": text}


def result_reply(finals: Sequence[Final], config: VoskConfig, offset: float = 0.0) -> dict:
    """The result of one or more finals (joined), as vosk-server writes a recognizer's result.

    Args:
        finals: the recognizer's finals, in order.
        config: whether words and alternatives were asked for.
        offset: seconds added to every time (a reset starts a new engine stream, whose times start at 0).
    """
    text = " ".join(f.text for f in finals if f.text)
    words = [w for f in finals for w in f.words]
    if config.max_alternatives > 0:
        return {"alternatives": _alternatives(finals, config, offset, text, words)}
    out: dict[str, Any] = {}
    if config.words and words:  # vosk-server leaves "result" out when it has no word to list
        out["result"] = [_word(w, offset) for w in words]
    out["text"] = text
    return out


def _alternatives(
    finals: Sequence[Final], config: VoskConfig, offset: float, text: str, words: Sequence[Word]
) -> list[dict]:
    """Vosk's n-best list of one reply: the k-th alternative joins each final's k-th likeliest transcript (its best
    where it has fewer), its confidence the product of their shares of the beam's probability (vosk-server's is a
    lattice score; clients rank by it). The first is the reply's text with its words (no `conf`, as in Vosk); the
    others have no word times. Finals of a stream without alternatives (greedy) give one entry, its confidence the
    mean of its words'."""
    ranked = [f.alternatives or ((f.text, 1.0),) for f in finals]
    n = min(config.max_alternatives, max((len(r) for r in ranked), default=1))
    if not any(f.alternatives for f in finals):
        confidences = [sum(_conf(w) for w in words) / len(words) if words else 0.0]
    else:
        confidences = [math.prod(r[min(k, len(r) - 1)][1] for r in ranked) for k in range(n)]
    out = []
    for k, confidence in enumerate(confidences):
        alt: dict[str, Any] = {"confidence": round(confidence, 6)}
        if k == 0:
            if config.words and words:
                alt["result"] = [_word(w, offset, conf=False) for w in words]
            alt["text"] = text
        else:
            alt["text"] = " ".join(t for r in ranked if (t := r[min(k, len(r) - 1)][0]))
        out.append(alt)
    return out


def _conf(w: Word) -> float:
    """A word's confidence with /v1/stream's three decimals."""
    return round(min(max(w.conf, 0.0), 1.0), 3)


def _seconds(t: float, offset: float) -> float:
    """A time as /v1/stream sends it (to the millisecond), moved by `offset`."""
    return round(round(t, 3) + offset, 3)


def _word(w: Word, offset: float, conf: bool = True) -> dict:
    d: dict[str, Any] = {"conf": _conf(w)} if conf else {}
    d.update(end=_seconds(w.end, offset), start=_seconds(w.start, offset), word=w.text)
    return d


def close_reason(error: ProtocolError) -> str:
    """The close frame's reason for an error: "code: message", cut to the 123 bytes a close frame holds."""
    reason = clip_text(f"{error.code}: {error.message}", _MAX_REASON_BYTES)
    raw = reason.encode()
    if len(raw) <= _MAX_REASON_BYTES:
        return reason
    return raw[: _MAX_REASON_BYTES - 3].decode("utf-8", "ignore") + "…"  # "…" is 3 bytes in UTF-8


# ---- The connection ----


class VoskSession(Connection):
    """One Vosk-protocol connection at `/`.

    Args:
        service: the app's state (engines, settings, metrics, connection accounting).
        ws: the connection, not yet accepted.
    """

    kind = "vosk session"
    logger = log

    def __init__(self, service: Service, ws: WebSocket) -> None:
        super().__init__(service, ws)
        self.config = VoskConfig()
        self.offset = 0.0  # seconds of audio in the streams before the current one (resets)
        self.seconds = 0.0  # seconds of audio received in all
        self._collector: asyncio.Task | None = None
        self._progress = asyncio.Event()  # set whenever the collector took an update (or ended)
        self._finals: list[Final] = []  # finals not yet answered
        self._partial = ""  # the open utterance's text
        self._arrived: list[float] = []  # arrival times of the chunks answered since the last reply

    def _release(self) -> None:
        self._drop_stream()

    async def _serve(self) -> None:
        main = asyncio.create_task(self._read(), name=f"parley-vosk-{self.id}")
        aborted = asyncio.create_task(self._abort.wait())
        try:
            done, _ = await asyncio.wait({main, aborted}, return_when=asyncio.FIRST_COMPLETED)
            if main not in done:
                await settle({main})
                with contextlib.suppress(GoneError, EngineFailureError, StreamClosedError, TimeoutError):
                    async with asyncio.timeout(FLUSH_TIMEOUT_S):
                        result = await self._finish()
                    if result.get("text"):
                        await self._send(result)
                assert self._abort_error is not None
                await self._fail(self._abort_error)
                return
        finally:
            await settle({main, aborted})
        exc = main.exception()
        if exc is None or isinstance(exc, GoneError | StreamClosedError):
            return
        if isinstance(exc, ProtocolError):
            await self._fail(exc)
        elif isinstance(exc, EngineFailureError):
            await self._fail(ProtocolError(INTERNAL, f"the stream cannot continue: {exc}"))
        else:
            log.error("vosk session %s failed", self.id, exc_info=exc)
            await self._fail(ProtocolError(INTERNAL, "internal server error"))

    async def _read(self) -> None:
        """Client messages until eof or the client leaves; raises ProtocolError for the first bad one."""
        limit = self.service.settings.max_message_bytes
        clock = IdleClock(self.service.settings.idle_timeout_s)
        while (received := await self._receive(clock)) is not None:
            text, data, arrived = received
            if text is not None:
                if len(text.encode()) > limit:
                    raise ProtocolError(TOO_BIG, f"text message over the limit of {limit} bytes")
                parsed = parse_text(text, self.config)
                if isinstance(parsed, VoskConfig):
                    # As vosk-server: a config counts until the recognizer exists, and is ignored after.
                    if self.stream is None:
                        self.config = parsed
                    continue
                await self._send(await self._finish())
                if parsed.eof:
                    await self._close(CLOSE_NORMAL)
                    log.info("vosk session %s: ended after %.2f s of audio", self.id, self.seconds)
                    return
            elif data is not None:
                samples = decode_audio_message(data, "s16le", limit)
                if self.stream is None:
                    self._open()
                assert self.stream is not None
                seconds = samples.size / self.config.sample_rate
                clock.audio(seconds)
                self.service.count_audio(seconds, self.key)
                self.seconds += seconds
                await self.stream.push(samples, arrived)
                await self._answered()
                await self._reply()

    def _open(self) -> None:
        svc = self.service
        account = svc.keys.tenant(self.key) if self.key is not None else None  # its rules: redaction, masking
        redact = account is not None and account.redact
        masked = account is not None and account.profanity_filter
        engine, search, plan = svc.resolve(self.config.model, None, None, (), redact=redact)
        # phrase_list: hotwords, those the model can write (Vosk clients get no error for the others, and "[unk]"
        # is Vosk's grammar filler, not a phrase); max_alternatives: the beam's likeliest transcripts.
        phrases = [p for p in self.config.phrase_list if p.strip() and "[" not in p]
        hotwords = engine.planner.writable_hotwords(plan, phrases) if phrases else []
        adaptation = Adaptation(tuple((p, None) for p in hotwords)) if hotwords else None
        alternatives = min(self.config.max_alternatives, STREAM_MAX_ALTERNATIVES)
        if adaptation is not None or alternatives:
            engine, search, plan = svc.resolve(
                self.config.model, None, None, (), adaptation=adaptation, alternatives=alternatives, redact=redact
            )
        self.stream = engine.open_stream(
            self.config.sample_rate,
            search,
            True,
            plan,
            adaptation,
            alternatives=alternatives,
            redact=redact,
            profanity_filter=masked,
        )
        if self.model is None:  # a reset opens a new engine stream of the same client stream: counted once
            svc.metrics.streams.labels(engine.name, "vosk").inc()
            log.info("vosk session %s: %s, %d Hz, %s search", self.id, engine.name, self.config.sample_rate, search)
            if len(hotwords) < len(self.config.phrase_list):
                log.info(
                    "vosk session %s: %d of %d phrase_list entries as hotwords (the others: fillers, repeats, beyond "
                    "the limits or not writable by the model)",
                    self.id,
                    len(hotwords),
                    len(self.config.phrase_list),
                )
        self.model = engine.name
        self._progress.clear()
        self._collector = asyncio.create_task(self._collect(self.stream), name=f"parley-vosk-collect-{self.id}")

    async def _collect(self, stream: Stream) -> None:
        """Takes the stream's updates as the engine produces them (so `push` never waits on this session)."""
        try:
            while True:
                update = await stream.next_update()
                if update.error:
                    raise EngineFailureError(update.error)
                for r in update.results:
                    if isinstance(r, Final):
                        self._finals.append(r)
                        self._partial = ""
                    else:
                        self._partial = r.text
                self._arrived.extend(update.arrived)
                self._progress.set()
                if update.end:
                    return
        finally:
            self._progress.set()

    async def _answered(self) -> None:
        """Waits until every whole chunk of the audio pushed so far has been decoded and its results taken."""
        assert self.stream is not None and self._collector is not None
        while self.stream.unanswered and not self._collector.done():
            self._progress.clear()
            await self._progress.wait()
        if self._collector.done():
            self._collector.result()  # the engine's failure, if that is why it ended

    async def _reply(self) -> None:
        """One answer to one audio message: the closed utterances' result, or the open one's partial."""
        if self._finals:
            msg = result_reply(self._finals, self.config, self.offset)
            self._finals = []
        else:
            msg = partial_reply(self._partial)
        await self._send(msg)
        if self.model is not None:
            latency = self.service.metrics.chunk_latency.labels(self.model)
            now = time.monotonic()
            for t in self._arrived:
                latency.observe(now - t)
        self._arrived = []

    async def _finish(self) -> dict:
        """eof, reset or shutdown: decodes the rest of the audio and returns the result of all that is unanswered;
        the next audio opens a new engine stream, its times counted on from here."""
        if self.stream is None:
            return result_reply([], self.config)
        stream, collector = self.stream, self._collector
        assert collector is not None
        await stream.stop()  # idempotent, and a stop cancelled earlier (a shutdown) finishes queueing here
        await asyncio.wait({collector})
        collector.result()
        result = result_reply(self._finals, self.config, self.offset)
        self.offset += stream.seconds_received
        self._finals, self._partial, self._arrived = [], "", []
        self._drop_stream()
        return result

    def _drop_stream(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        if self._collector is not None and not self._collector.done():
            self._collector.cancel()
        self._collector = None

    async def _fail(self, error: ProtocolError) -> None:
        """Closes with the error's code and the error as the reason (Vosk clients know no error message)."""
        self._count_failure(error)
        await self._close(error.close_code, close_reason(error))
