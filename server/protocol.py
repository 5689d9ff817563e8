"""Parley's streaming protocol, version 1: what clients may send, what the server answers, and how errors close.

The wire format is documented for client authors in docs/protocol.md (with docs/protocol.schema.json); this module is
its one implementation on the server side. Everything here is pure: no sockets, no model. The app turns each
`ProtocolError` into an `error` message and a close with `close_code`.

    >>> state = ProtocolState(max_message_bytes=1 << 20)
    >>> start = state.on_text('{"type": "start", "sample_rate": 48000, "encoding": "s16le"}')
    >>> samples = state.on_binary(chunk)          # float32 (T,) at start.sample_rate
    >>> stop = state.on_text('{"type": "stop"}')  # StopRequest: flush, send "end", close 1000
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parley.audio import BYTES_PER_SAMPLE, ENCODINGS, decode_pcm
from parley.features import MAX_INPUT_RATE, MIN_INPUT_RATE
from parley.mp4stream import STREAM_CONTAINERS as CONTAINERS
from parley.mp4stream import Mp4StreamDecoder, stream_decoder
from parley.ogg import OPUS_RATE
from parley.opusstream import OpusStreamDecoder
from server.biasing import MAX_HOTWORD_BOOST
from server.lm import MAX_FUSION_SCALE

PROTOCOL_VERSION = 1
STREAM_PATH = "/v1/stream"
SEARCH_METHODS = ("greedy", "beam")
# The server's choice for streams that name no search (`parley serve --search`): "auto" is beam search with the
# model's general LM where its bundle has one (server/plan.py, `Planner.defaulted`), greedy elsewhere.
DEFAULT_SEARCHES = ("auto", *SEARCH_METHODS)
NO_LM = "none"  # a start's "lm": "none": no LM, not even the model's general one
MAX_BEAM = 16  # `parley serve --beam` at most
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20  # 1 MiB: 32 s of 16 kHz s16le, 5.4 s of 48 kHz f32le per binary message

# WebSocket close codes (RFC 6455, section 7.4.1).
CLOSE_NORMAL = 1000  # the stream ended after "stop" and "end"
CLOSE_GOING_AWAY = 1001  # the server is shutting down (draining)
CLOSE_UNSUPPORTED_DATA = 1003  # data the server cannot interpret: not JSON, audio that is not whole samples
CLOSE_POLICY = 1008  # a message the protocol does not allow here: bad fields, wrong order, no API key
CLOSE_TOO_BIG = 1009  # a message over the size limit
CLOSE_INTERNAL = 1011  # the server failed
CLOSE_TRY_AGAIN = 1013  # the server is full; try again later (or another replica)

# Error codes sent in {"type": "error", "code": ...}, with the close code each one ends the connection with.
BAD_JSON = "bad_json"  # a text message that is not a JSON object
BAD_MESSAGE = "bad_message"  # a JSON object whose "type" is missing or not a client message type
UNKNOWN_FIELD = "unknown_field"  # a start message with a field protocol version 1 does not define
INVALID_VALUE = "invalid_value"  # a field with a wrong type or value, or a required field missing
UNSUPPORTED_RATE = "unsupported_rate"  # sample_rate outside 8000-192000 Hz
UNSUPPORTED_ENCODING = "unsupported_encoding"  # encoding other than s16le / f32le / mulaw / alaw / webm / ogg / mp4
UNKNOWN_MODEL = "unknown_model"  # no bundle of that name is loaded
UNKNOWN_CALL = "unknown_call"  # no AudioSocket call of that UUID (GET or WS /v1/calls/{uuid}; server/audiosocket.py)
UNSUPPORTED_OPTION = "unsupported_option"  # the model cannot do what was asked (language, translate, search)
NOT_STARTED = "not_started"  # audio or stop before start
ALREADY_STARTED = "already_started"  # a second start
AFTER_STOP = "after_stop"  # a message after stop
BAD_AUDIO = "bad_audio"  # a byte count that is not whole samples, or NaN / infinite f32le samples
TOO_BIG = "too_big"  # a message over max_message_bytes
UNAUTHORIZED = "unauthorized"  # missing or unknown API key
FORBIDDEN_ORIGIN = "forbidden_origin"  # a browser page from an origin not in allowed_origins
IDLE_TIMEOUT = "idle_timeout"  # no message for idle_timeout_s
SERVER_FULL = "server_full"  # max_connections streams are open
TOO_MANY_STREAMS = "too_many_streams"  # the request's API key has max_streams_per_key streams open
SHUTTING_DOWN = "shutting_down"  # the server is draining
INTERNAL = "internal"  # a server bug or model failure

ERROR_CLOSE_CODES: dict[str, int] = {
    BAD_JSON: CLOSE_UNSUPPORTED_DATA,
    BAD_MESSAGE: CLOSE_POLICY,
    UNKNOWN_FIELD: CLOSE_POLICY,
    INVALID_VALUE: CLOSE_POLICY,
    UNSUPPORTED_RATE: CLOSE_UNSUPPORTED_DATA,
    UNSUPPORTED_ENCODING: CLOSE_UNSUPPORTED_DATA,
    UNKNOWN_MODEL: CLOSE_POLICY,
    UNKNOWN_CALL: CLOSE_POLICY,
    UNSUPPORTED_OPTION: CLOSE_POLICY,
    NOT_STARTED: CLOSE_POLICY,
    ALREADY_STARTED: CLOSE_POLICY,
    AFTER_STOP: CLOSE_POLICY,
    BAD_AUDIO: CLOSE_UNSUPPORTED_DATA,
    TOO_BIG: CLOSE_TOO_BIG,
    UNAUTHORIZED: CLOSE_POLICY,
    FORBIDDEN_ORIGIN: CLOSE_POLICY,
    IDLE_TIMEOUT: CLOSE_POLICY,
    SERVER_FULL: CLOSE_TRY_AGAIN,
    TOO_MANY_STREAMS: CLOSE_TRY_AGAIN,
    SHUTTING_DOWN: CLOSE_GOING_AWAY,
    INTERNAL: CLOSE_INTERNAL,
}

# A stream's encodings: the PCM ones (a message: whole samples), and compressed audio in a container as browsers'
# MediaRecorder (webm: Opus; mp4: Safari's AAC, Chrome's Opus) or Ogg Opus encoders (ogg) write it, decoded as it
# arrives (parley/opusstream.py, parley/mp4stream.py) at CONTAINER_RATE, Opus's own 48 kHz; the frontend resamples.
# libopus could write the models' 16 kHz itself, which saves little now that resampling is cheap (benchmarks/
# bench_opus.py) and costs en-open half a point of WER against the resampler that made its training audio (Ogg Opus of
# the open-domain test: 57.08 % from 48 kHz, 57.27 % from 24 kHz, 57.56 % from 16 kHz; RHVoice's 53.27 / 53.22 / 53.81).
STREAM_ENCODINGS = (*ENCODINGS, *CONTAINERS)
CONTAINER_RATE = OPUS_RATE

# The start message's fields: name -> required. Later protocol versions may add fields; version 1 refuses unknown
# ones so that a client relying on a newer feature learns at once that this server lacks it.
START_FIELDS: dict[str, bool] = {
    "type": True,
    "sample_rate": False,  # required for the PCM encodings; a container decodes at CONTAINER_RATE
    "encoding": True,
    "model": False,
    "partials": False,
    "punctuate": False,
    "numerals": False,
    "redact": False,
    "profanity_filter": False,
    "talkers": False,
    "endpointing": False,
    "alternatives": False,
    "channels": False,
    "search": False,
    "language": False,
    "translate": False,
    "languages": False,
    "hotwords": False,
    "respell": False,
    "lm": False,
    "lm_scale": False,
    "ilm_scale": False,
    "lodr_scale": False,
}
_MAX_NAME = 128  # characters in a model or language name
# An error's message is at most this many characters, and a client's value shown in it at most _MAX_SHOWN: a
# rejected 50,000-entry list must not come back (or go into the logs) whole.
MAX_ERROR_CHARS = 300
_MAX_SHOWN = 80


def clip_text(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, the cut marked with "…", and sendable: a lone surrogate (JSON
    allows "\\ud800", UTF-8 does not) becomes its escape."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def preview(value: Any, limit: int = _MAX_SHOWN) -> str:
    """A client's value as JSON for an error message, at most `limit` characters (values nested too deeply for
    the encoder are named by their type)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (RecursionError, ValueError, TypeError):
        text = f"a deeply nested {type(value).__name__}"
    return clip_text(text, limit)


class ProtocolError(Exception):
    """A client broke the protocol: answer `error_message(code, message)` and close with `close_code`.

    Args:
        code: one of the error code constants above.
        message: a sentence for the client's developer.
        close_code: the WebSocket close code; by default the one `ERROR_CLOSE_CODES` gives for `code`.
    """

    def __init__(self, code: str, message: str, close_code: int | None = None) -> None:
        message = clip_text(message, MAX_ERROR_CHARS)
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code if close_code is not None else ERROR_CLOSE_CODES.get(code, CLOSE_POLICY)

    def to_message(self) -> dict:
        """The `error` message to send before closing."""
        return error_message(self.code, self.message)

    def __repr__(self) -> str:
        return f"ProtocolError({self.code!r}, {self.message!r}, {self.close_code})"


@dataclass(frozen=True)
class StartRequest:
    """A validated start message.

    `model` None means the server's default bundle; `search` None the bundle's default method; `language` None
    the bundle's default language ("auto" asks a multilingual bundle to detect it); `translate` the target
    languages whose translations the client wants next to the captions; `languages` the languages "auto" may
    choose from (the ones the speaker uses; empty: all the bundle knows). `hotwords` are (phrase, boost per token)
    pairs, boost None for the server's default, and `respell` lets the server write doubtful words that sound like one
    of them as it; `lm` names a language model of the bundle to fuse, with its
    `lm_scale`, `ilm_scale` and `lodr_scale` (None: the bundle's defaults). The server checks them against its limits
    and the model (their count, length and tokens; whether the LM exists).
    """

    sample_rate: int
    encoding: str
    model: str | None = None
    partials: bool = True
    search: str | None = None
    language: str | None = None
    translate: tuple[str, ...] = field(default_factory=tuple)
    languages: tuple[str, ...] = field(default_factory=tuple)
    hotwords: tuple[tuple[str, float | None], ...] = field(default_factory=tuple)  # (phrase, boost or None)
    sounds_like: tuple[tuple[str, tuple[str, ...]], ...] = field(default_factory=tuple)  # (phrase, how it is heard)
    respell: bool = True  # doubtful words that sound like a hotword are written as it (server/respell.py)
    lm: str | None = None
    lm_scale: float | None = None
    ilm_scale: float | None = None
    lodr_scale: float | None = None
    punctuate: bool = True  # finals carry "display" where the bundle has a punctuation model (docs/protocol.md)
    numerals: bool = True  # "display" writes number phrases in digits: "$5.50", "10:30 a.m." (server/itn.py)
    redact: bool = False  # spoken digit strings (card numbers, PINs) sent as "[redacted]" (server/redact.py)
    profanity_filter: bool = False  # listed profanity sent masked, "d***" (server/profanity.py)
    talkers: bool = False  # finals carry "talkers" and their words a "talker": who speaks, across segments
    endpointing: Endpointing | None = None  # this stream's endpoint rules; None: the server's
    alternatives: int = 0  # finals list this many of the segment's likeliest transcripts (beam search); 0: none
    channels: int = 1  # audio channels interleaved in each message, each recognized on its own (server/multichannel.py)

    @property
    def bytes_per_sample(self) -> int:
        """Bytes of one sample of a PCM encoding (0 for Opus in a container, whose packets vary)."""
        return BYTES_PER_SAMPLE.get(self.encoding, 0)


MAX_SOUNDS_LIKE = 16  # a hotword's "sounds_like" at most (each a run of words respelling compares, server/respell.py)
MAX_SOUNDS_LIKE_CHARS = 64  # characters in one of them
MAX_ALTERNATIVES = 10  # start's "alternatives" at most (the beam keeps parley.contract.BEAM hypotheses)
MAX_CHANNELS = 8  # channels a stream (start's "channels") or a multichannel transcription may have: each a stream

# A stream's own endpoint rules (start's "endpointing" object): the bounds of each, in seconds.
ENDPOINT_BOUNDS = {"silence_s": (0.1, 600.0), "silence_after_speech_s": (0.1, 60.0), "max_segment_s": (1.0, 3600.0)}


@dataclass(frozen=True)
class Endpointing:
    """What a start asked of endpointing: off (`enabled` false: segments end only at finalize and stop), or the
    server's rules with some of their times replaced (None: the server's). Times in seconds: rule 1's trailing
    silence (`silence_s`), rule 2's silence after speech, rule 3's longest segment (server/endpoint.py)."""

    enabled: bool = True
    silence_s: float | None = None
    silence_after_speech_s: float | None = None
    max_segment_s: float | None = None


@dataclass(frozen=True)
class StopRequest:
    """The stop message: no more audio will come."""


@dataclass(frozen=True)
class FinalizeRequest:
    """The finalize message: close the open segment now (its final comes marked `finalized`); audio may follow."""


@dataclass(frozen=True)
class ContextRequest:
    """The context message: the stream's hotwords from now on (a voice bot's next turn: the names it expects). They
    take effect at the open segment's end, or at once while it has no words yet; `()` clears the stream's own."""

    hotwords: tuple[tuple[str, float | None], ...] = ()
    sounds_like: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _invalid(name: str, expected: str, value: Any) -> ProtocolError:
    return ProtocolError(INVALID_VALUE, f'"{name}" must be {expected}, got {preview(value)}')


def _flag(d: dict, key: str, default: bool) -> bool:
    """A true-or-false field of a start message (`default` when omitted)."""
    value = d.get(key, default)
    if not isinstance(value, bool):
        raise _invalid(key, "true or false", value)
    return value


def _name(d: dict, key: str) -> str | None:
    """An optional non-empty string field (model, language)."""
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip() or len(v) > _MAX_NAME:
        raise _invalid(key, f"a non-empty string of at most {_MAX_NAME} characters", v)
    return v


def _names(d: dict, key: str) -> tuple[str, ...]:
    """An optional list of distinct language names (translate, languages); null or missing: empty."""
    v = d.get(key)
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(t, str) and t.strip() for t in v):
        raise _invalid(key, "a list of language names", v)
    if len(set(v)) != len(v):
        raise _invalid(key, "a list without repeats", v)
    if any(len(t) > _MAX_NAME for t in v):
        raise _invalid(key, f"language names of at most {_MAX_NAME} characters", v)
    return tuple(v)


def _number(d: dict, key: str, lo: float, hi: float, open_low: bool = False) -> float | None:
    """An optional finite number in [lo, hi] (or (lo, hi]); null or missing: None."""
    v = d.get(key)
    if v is None:
        return None
    span = f"{'(' if open_low else '['}{lo:g}, {hi:g}]"
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _invalid(key, f"a number in {span}", v)
    x = float(v) if isinstance(v, float) or abs(v) < 10**6 else math.inf
    if not (math.isfinite(x) and (lo < x if open_low else lo <= x) and x <= hi):
        raise _invalid(key, f"a number in {span}", v)
    return x


def _endpointing(d: dict) -> Endpointing | None:
    """The optional "endpointing": true (the server's rules: None), false, or an object of times in seconds."""
    v = d.get("endpointing")
    if v is None or v is True:
        return None
    if v is False:
        return Endpointing(enabled=False)
    expected = f"true, false or an object of {sorted(ENDPOINT_BOUNDS)} (seconds)"
    if not isinstance(v, dict):
        raise _invalid("endpointing", expected, v)
    unknown = sorted(set(v) - set(ENDPOINT_BOUNDS))
    if unknown:
        raise ProtocolError(UNKNOWN_FIELD, f"unknown field(s) {preview(unknown)} in endpointing: {expected}")
    times = {k: _number(v, k, *bounds) for k, bounds in ENDPOINT_BOUNDS.items()}
    return Endpointing(True, **times)


def _hotwords(d: dict) -> tuple[tuple[str, float | None], ...]:
    """The optional hotwords: a list of phrases, each a string or {"phrase": str, "boost": number, "sounds_like":
    [str, ...]} (`_sounds_like` reads the last)."""
    v = d.get("hotwords")
    if v is None:
        return ()
    expected = 'a list of phrases, each a string or {"phrase": "...", "boost": number, "sounds_like": ["...", ...]}'
    if not isinstance(v, list):
        raise _invalid("hotwords", expected, v)
    out: list[tuple[str, float | None]] = []
    for item in v:
        if isinstance(item, dict):
            if set(item) - {"phrase", "boost", "sounds_like"} or not isinstance(item.get("phrase"), str):
                raise _invalid("hotwords", expected, item)
            boost = _number(item, "boost", 0.0, MAX_HOTWORD_BOOST, open_low=True)
            phrase = item["phrase"]
        elif isinstance(item, str):
            phrase, boost = item, None
        else:
            raise _invalid("hotwords", expected, item)
        if not phrase.strip():
            raise _invalid("hotwords", "non-empty phrases", item)
        out.append((phrase, boost))
    return tuple(out)


Hotwords = tuple[tuple[str, float | None], ...]  # (phrase, boost per token or None)
SoundsLike = tuple[tuple[str, tuple[str, ...]], ...]  # (phrase, how the model writes it when it hears it)


def parse_hotword_list(items: Any) -> tuple[Hotwords, SoundsLike]:
    """A list of hotwords as a start message's "hotwords" gives them: its (phrase, boost) pairs and sounds_like.

    Raises:
        ProtocolError: invalid_value for anything a start message's "hotwords" could not be.
    """
    d = {"hotwords": items}
    if not isinstance(items, list):
        raise _invalid("hotwords", "a list", items)
    return _hotwords(d), _sounds_like(d)


def _sounds_like(d: dict) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The hotwords' optional "sounds_like": how the model writes a hotword when it hears it (`parley hotwords
    learn`), at most MAX_SOUNDS_LIKE non-empty strings a hotword, for respelling (server/respell.py)."""
    out = []
    for item in d.get("hotwords") or ():
        if not isinstance(item, dict) or item.get("sounds_like") is None:
            continue
        v = item["sounds_like"]
        if (
            not isinstance(v, list)
            or len(v) > MAX_SOUNDS_LIKE
            or not all(isinstance(w, str) and w.strip() and len(w) <= MAX_SOUNDS_LIKE_CHARS for w in v)
        ):
            expected = f"a list of at most {MAX_SOUNDS_LIKE} non-empty strings of {MAX_SOUNDS_LIKE_CHARS} characters"
            raise _invalid("sounds_like", expected, v)
        if v:
            out.append((item["phrase"], tuple(v)))
    return tuple(out)


def _object(text: str | bytes) -> dict:
    try:
        d = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:  # ValueError: also integers of over 4300 digits
        raise ProtocolError(BAD_JSON, f"text message is not valid JSON: {clip_text(str(e), _MAX_SHOWN)}") from None
    except RecursionError:
        raise ProtocolError(BAD_JSON, "text message is nested too deeply") from None
    if not isinstance(d, dict):
        raise ProtocolError(BAD_JSON, f"text message must be a JSON object, got {type(d).__name__}")
    return d


def start_from_dict(d: dict) -> StartRequest:
    """Validates a decoded start message (a dict with "type": "start") into a `StartRequest`.

    Raises:
        ProtocolError: unknown fields, missing fields, wrong types or values.
    """
    unknown = sorted(set(d) - set(START_FIELDS))
    if unknown:
        raise ProtocolError(
            UNKNOWN_FIELD,
            f"unknown field(s) {preview(unknown)} in start; protocol version {PROTOCOL_VERSION} knows "
            f"{sorted(START_FIELDS)}",
        )
    missing = [k for k, required in START_FIELDS.items() if required and k not in d]
    if missing:
        raise ProtocolError(INVALID_VALUE, f"start lacks required field(s) {missing}")
    if d["type"] != "start":
        raise _invalid("type", '"start"', d["type"])

    encoding = d["encoding"]
    if not isinstance(encoding, str):
        raise _invalid("encoding", f"one of {list(STREAM_ENCODINGS)}", encoding)
    if encoding not in STREAM_ENCODINGS:
        raise ProtocolError(
            UNSUPPORTED_ENCODING, f"encoding {preview(encoding)} not supported: use one of {list(STREAM_ENCODINGS)}"
        )
    if encoding in CONTAINERS:  # decoded to CONTAINER_RATE whatever the microphone's rate was: a given rate is ignored
        d = {**d, "sample_rate": CONTAINER_RATE}
    elif "sample_rate" not in d:
        raise ProtocolError(INVALID_VALUE, f"start lacks required field(s) ['sample_rate'] (encoding {encoding})")
    rate = d["sample_rate"]
    # bool is an int in Python; JSON true is not a rate. 16000.0 is accepted: some JSON writers only have floats.
    # An int is checked as it is: math.isfinite() of a 400-digit integer overflows.
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        raise _invalid("sample_rate", "an integer number of Hz", rate)
    if isinstance(rate, float):
        if not (math.isfinite(rate) and rate.is_integer()):
            raise _invalid("sample_rate", "an integer number of Hz", rate)
        rate = int(rate)
    if not MIN_INPUT_RATE <= rate <= MAX_INPUT_RATE:
        raise ProtocolError(
            UNSUPPORTED_RATE,
            f"sample_rate {preview(rate, 20)} Hz not supported: use {MIN_INPUT_RATE}-{MAX_INPUT_RATE} Hz",
        )

    partials = _flag(d, "partials", True)
    punctuate = _flag(d, "punctuate", True)
    numerals = _flag(d, "numerals", True)
    redact = _flag(d, "redact", False)
    profanity_filter = _flag(d, "profanity_filter", False)
    respell = _flag(d, "respell", True)
    talkers = _flag(d, "talkers", False)
    endpointing = _endpointing(d)

    search = d.get("search")
    if search is not None and search not in SEARCH_METHODS:
        raise _invalid("search", f"one of {list(SEARCH_METHODS)}", search)

    translate = _names(d, "translate")
    languages = _names(d, "languages")
    language = _name(d, "language")
    if languages and language not in (None, "auto"):
        raise _invalid("languages", f'omitted when "language" names one ({language!r}); it restricts "auto"', languages)

    lm = _name(d, "lm")
    lm_scale = _number(d, "lm_scale", 0.0, MAX_FUSION_SCALE)
    ilm_scale = _number(d, "ilm_scale", 0.0, MAX_FUSION_SCALE)
    lodr_scale = _number(d, "lodr_scale", 0.0, MAX_FUSION_SCALE)
    if lm in (None, NO_LM) and (lm_scale is not None or ilm_scale is not None or lodr_scale is not None):
        raise _invalid("lm", 'the name of an LM when "lm_scale", "ilm_scale" or "lodr_scale" is given', lm)
    hotwords = _hotwords(d)
    if (hotwords or lm not in (None, NO_LM)) and search not in (None, "beam"):
        raise _invalid("search", '"beam" or omitted when hotwords or an lm are asked for', search)
    alternatives = d.get("alternatives", 0)
    if isinstance(alternatives, bool) or not isinstance(alternatives, int) or not 0 <= alternatives <= MAX_ALTERNATIVES:
        raise _invalid("alternatives", f"an integer from 0 to {MAX_ALTERNATIVES}", alternatives)
    if alternatives and search not in (None, "beam"):
        raise _invalid("search", '"beam" or omitted when alternatives are asked for', search)
    channels = d.get("channels", 1)
    if isinstance(channels, bool) or not isinstance(channels, int) or not 1 <= channels <= MAX_CHANNELS:
        raise _invalid("channels", f"an integer from 1 to {MAX_CHANNELS}", channels)
    if channels > 1 and encoding in CONTAINERS:
        raise _invalid("channels", f"1 with encoding {encoding} (its channels are averaged)", channels)

    return StartRequest(
        sample_rate=rate,
        encoding=encoding,
        model=_name(d, "model"),
        partials=partials,
        punctuate=punctuate,
        numerals=numerals,
        redact=redact,
        profanity_filter=profanity_filter,
        talkers=talkers,
        endpointing=endpointing,
        alternatives=alternatives,
        channels=channels,
        search=search,
        language=language,
        translate=translate,
        languages=languages,
        hotwords=hotwords,
        sounds_like=_sounds_like(d),
        respell=respell,
        lm=lm,
        lm_scale=lm_scale,
        ilm_scale=ilm_scale,
        lodr_scale=lodr_scale,
    )


ClientMessage = StartRequest | StopRequest | FinalizeRequest | ContextRequest


def parse_text_message(text: str | bytes) -> ClientMessage:
    """Parses a client text message: a start, a finalize, a context or a stop.

    Raises:
        ProtocolError: not a JSON object (bad_json), a type other than these (bad_message), a stop, finalize or
            context with fields it does not have (unknown_field), a context without hotwords or an invalid start or
            context (invalid_value).
    """
    d = _object(text)
    kind = d.get("type")
    if kind == "start":
        return start_from_dict(d)
    if kind in ("stop", "finalize", "context"):
        extra = sorted(set(d) - ({"type", "hotwords"} if kind == "context" else {"type"}))
        if extra:
            raise ProtocolError(UNKNOWN_FIELD, f"unknown field(s) {preview(extra)} in {kind}")
        if kind == "context":
            if "hotwords" not in d:
                raise _invalid("hotwords", "given in a context message (a list; [] clears them)", None)
            return ContextRequest(_hotwords(d), _sounds_like(d))
        return StopRequest() if kind == "stop" else FinalizeRequest()
    raise ProtocolError(
        BAD_MESSAGE, f'text messages must have "type" "start", "finalize", "context" or "stop", got {preview(kind)}'
    )


def parse_start(text: str | bytes) -> StartRequest:
    """Parses the first message of a stream, which must be a start.

    Raises:
        ProtocolError: anything else, or an invalid start (see `start_from_dict`).
    """
    msg = parse_text_message(text)
    if not isinstance(msg, StartRequest):
        raise ProtocolError(NOT_STARTED, "the first message must be a start message")
    return msg


def check_audio_size(data: bytes, max_bytes: int | None) -> None:
    """Raises ProtocolError too_big for an audio message over `max_bytes` (None: no limit)."""
    if max_bytes is not None and len(data) > max_bytes:
        raise ProtocolError(TOO_BIG, f"audio message of {len(data)} bytes is over the limit of {max_bytes} bytes")


def decode_audio_message(data: bytes, encoding: str, max_bytes: int | None = None) -> np.ndarray:
    """A binary audio message -> float32 samples `(T,)` (at the stream's sample rate; not clipped).

    Raises:
        ProtocolError: over `max_bytes` (too_big), not whole samples or non-finite floats (bad_audio).
    """
    check_audio_size(data, max_bytes)
    if encoding not in ENCODINGS:
        raise ProtocolError(UNSUPPORTED_ENCODING, f"encoding {preview(encoding)} not supported")
    try:
        return decode_pcm(bytes(data), encoding)
    except ValueError as e:
        raise ProtocolError(BAD_AUDIO, str(e)) from None


class ProtocolState:
    """The order of one connection's client messages: start, audio..., stop. Pure; one per connection.

    Args:
        max_message_bytes: the largest binary or text message accepted.
    """

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.max_message_bytes = max_message_bytes
        self.start: StartRequest | None = None
        self.stopped = False
        self.samples_received = 0  # at start.sample_rate
        self.decoder: OpusStreamDecoder | Mp4StreamDecoder | None = None  # a container encoding's, made at start

    @property
    def seconds_received(self) -> float:
        return self.samples_received / self.start.sample_rate if self.start else 0.0

    def on_text(self, text: str | bytes) -> ClientMessage:
        """Validates a text message in this connection's state.

        Raises:
            ProtocolError: too big, invalid, a second start, a stop, finalize or context before start, anything after
                stop.
        """
        size = len(text.encode()) if isinstance(text, str) else len(text)
        if size > self.max_message_bytes:
            raise ProtocolError(TOO_BIG, f"text message over the limit of {self.max_message_bytes} bytes")
        if self.stopped:
            raise ProtocolError(AFTER_STOP, "no message may follow stop")
        msg = parse_text_message(text)
        if isinstance(msg, StartRequest):
            if self.start is not None:
                raise ProtocolError(ALREADY_STARTED, "start was already sent on this connection")
            self.start = msg
            if msg.encoding in CONTAINERS:
                self.decoder = stream_decoder(msg.encoding, CONTAINER_RATE)
        else:
            kind = {StopRequest: "stop", FinalizeRequest: "finalize", ContextRequest: "context"}[type(msg)]
            if self.start is None:
                raise ProtocolError(NOT_STARTED, f"{kind} before start")
            self.stopped = isinstance(msg, StopRequest)
        return msg

    def on_binary(self, data: bytes) -> np.ndarray:
        """Decodes an audio message in this connection's state: float32 samples `(T,)` at start.sample_rate.

        Raises:
            ProtocolError: audio before start or after stop, too big, not whole samples, NaN or infinite floats.
        """
        if self.start is None:
            raise ProtocolError(NOT_STARTED, "audio before start: send the start message first")
        if self.stopped:
            raise ProtocolError(AFTER_STOP, "audio after stop")
        if self.decoder is not None:  # a container (WebM, Ogg, MP4): the samples of the packets this message completed
            check_audio_size(data, self.max_message_bytes)
            try:
                x = self.decoder.feed(bytes(data))
            except ValueError as e:
                raise ProtocolError(BAD_AUDIO, f"{self.start.encoding} audio: {e}") from None
            self.samples_received += int(x.size)
            return x
        x = decode_audio_message(data, self.start.encoding, self.max_message_bytes)
        channels = self.start.channels
        if x.size % channels:
            raise ProtocolError(
                BAD_AUDIO,
                f"{x.size} samples are not whole frames of {channels} interleaved channels (start's channels)",
            )
        self.samples_received += int(x.size) // channels
        return x


# ---- Server messages ----


def _seconds(t: float) -> float:
    """Times go out rounded to the millisecond: finer digits are noise at a 10 ms frame shift."""
    return round(float(t), 3)


def _confidence(p: float) -> float:
    """Confidences go out in [0, 1] with three decimals, like times."""
    return round(min(max(float(p), 0.0), 1.0), 3)


@dataclass(frozen=True)
class Word:
    """One recognized word, its time span in seconds from the start of the stream, and its confidence in [0, 1]
    (server.transducer.word_confidence; None: not known, and not sent)."""

    word: str
    start: float
    end: float
    speaker: int | None = None  # multi-talker (t-SOT) bundles: the virtual channel the word was emitted on
    conf: float | None = None
    talker: int | None = None  # finals of streams with "talkers": the stream-wide number of who said it

    def to_dict(self) -> dict:
        d: dict = {"word": self.word, "start": _seconds(self.start), "end": _seconds(self.end)}
        if self.conf is not None:
            d["conf"] = _confidence(self.conf)
        if self.speaker is not None:
            d["speaker"] = self.speaker
        if self.talker is not None:
            d["talker"] = self.talker
        return d


def ready_message(
    session: str,
    model: str,
    chunk_ms: float,
    sample_rate: int,
    encoding: str,
    partials: bool = True,
    search: str = "greedy",
    **extra: Any,
) -> dict:
    """The answer to a valid start.

    Args:
        session: the server's id for this stream (for logs and support).
        model: the bundle that serves the stream.
        chunk_ms: the encoder's chunk: the granularity at which results can change.
        sample_rate: the client's audio rate, as accepted.
        encoding: the client's audio encoding, as accepted.
        partials: whether partial messages will be sent.
        search: the search method in use.
        **extra: further fields (e.g. language, translate, max_message_bytes).
    """
    msg = {
        "type": "ready",
        "protocol": PROTOCOL_VERSION,
        "session": session,
        "model": model,
        "chunk_ms": chunk_ms,
        "sample_rate": int(sample_rate),
        "encoding": encoding,
        "partials": bool(partials),
        "search": search,
    }
    msg.update(extra)
    return msg


def partial_message(segment: int, text: str, start: float, end: float, **extra: Any) -> dict:
    """The open segment's text changed.

    Args:
        segment: the segment's index, counting from 0 in each stream.
        text: the whole segment's text so far (not a delta).
        start: the segment's start, in seconds from the stream's start.
        end: how far the server has decoded, in seconds from the stream's start: this text accounts for all audio
            up to `end` (clients measure latency with it).
        **extra: further fields: the captioned `language` and `translations` {language: text} of multilingual
            models; `speakers` [{speaker, text}] and `words` (each with its `speaker`) of multi-talker (t-SOT)
            models.
    """
    msg = {"type": "partial", "segment": int(segment), "text": text, "start": _seconds(start), "end": _seconds(end)}
    msg.update(extra)
    return msg


def final_message(
    segment: int, text: str, start: float, end: float, words: Iterable[Word | Mapping[str, Any]] = (), **extra: Any
) -> dict:
    """A segment closed (endpoint or end of stream); its text will not change again.

    Args:
        segment: the segment's index; the next segment is `segment + 1`.
        text: the segment's final text.
        start: the segment's start, in seconds from the stream's start.
        end: the segment's end (where the endpoint fired, or the end of the audio).
        words: the words with their times.
        **extra: further fields.
    """
    ws = [
        w.to_dict()
        if isinstance(w, Word)
        else Word(str(w["word"]), w["start"], w["end"], w.get("speaker"), w.get("conf"), w.get("talker")).to_dict()
        for w in words
    ]
    msg = {
        "type": "final",
        "segment": int(segment),
        "text": text,
        "start": _seconds(start),
        "end": _seconds(end),
        "words": ws,
    }
    msg.update(extra)
    return msg


def end_message(**extra: Any) -> dict:
    """All finals were sent after stop; the server closes with 1000 next. Extra fields, e.g. audio_seconds."""
    msg = {"type": "end"}
    msg.update(extra)
    return msg


def error_message(code: str, message: str) -> dict:
    """An error; the server closes the connection right after it."""
    return {"type": "error", "code": code, "message": message}


def transcript_response(model: str, duration: float, finals: Sequence[dict], **extra: Any) -> dict:
    """The body `POST /v1/transcribe` answers: the same final messages a stream would have produced.

    Args:
        model: the bundle used.
        duration: the audio's duration in seconds.
        finals: the `final_message` dicts, in order.
    """
    msg = {
        "model": model,
        "duration": _seconds(duration),
        "text": " ".join(f["text"] for f in finals if f["text"]),
        "segments": list(finals),
    }
    if any("display" in f for f in finals):  # the punctuated, cased transcript (docs/protocol.md)
        msg["display"] = " ".join(f.get("display", f["text"]) for f in finals if f["text"])
    msg.update(extra)
    return msg


def dumps(msg: dict) -> str:
    """A message as compact JSON text (UTF-8 characters left as they are)."""
    return json.dumps(msg, ensure_ascii=False, separators=(",", ":"))


# ---- Authentication ----


def api_key_from_request(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The API key a request carries: `Authorization: Bearer KEY` (or Deepgram's `Token KEY`), `X-API-Key: KEY`,
    `?api_key=KEY`, or Deepgram's browser form, the WebSocket subprotocols `token, KEY`.

    The query parameter and the subprotocols exist for browsers, whose WebSocket API cannot set headers. `headers`
    must be case-insensitive (Starlette's are) or use lowercase names.
    """
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() in ("bearer", "token") and token.strip():
            return token.strip()
    key = headers.get("x-api-key") or query.get("api_key")
    if not key:
        protocols = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
        if len(protocols) == 2 and protocols[0] == "token" and protocols[1]:
            key = protocols[1]
    return key or None
