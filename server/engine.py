"""The batching engine: one loop per bundle runs the encoder for every stream that has a chunk ready, in one call.

Dimension letters: N streams in a batch, T fbank frames one step reads (the window), F fbank bins, C encoder frames
per chunk, J joiner dim.

    engine = Engine(bundle, EngineConfig.from_settings(settings), metrics)
    await engine.start()
    stream = engine.open_stream(sample_rate=48000, search="greedy")
    await stream.push(samples)           # float32 (T_samples,) at 48 kHz; waits while the stream's queue is full
    update = await stream.next_update()  # Update(messages=[partial/final dicts], ...)
    await stream.stop()                  # flush: the last finals, then an Update with end=True

A session turns audio into fbank frames as it arrives (`StreamingFbank`, resampling inside) and cuts them into
encoder windows of `spec.window` frames advancing by `spec.shift`: the chunks. A stream holds at most `queue_chunks`
chunks that are waiting, being decoded, or decoded but not yet taken by its session; beyond that `push` waits, so
the connection stops reading its socket instead of buffering without bound. The loop takes at most one chunk per
stream (a stream's chunks depend on each other through the encoder state), gathers up to `max_batch` streams,
waiting at most `max_wait_ms` after the first (less when every open stream is already in), stacks their states, and
in a worker thread runs the encoder once and the search of each head (greedy and modified beam search separately),
then endpointing and the messages. The event loop never runs a model.

A stream's text lives in segments: an endpoint (server/endpoint.py) closes the open segment with a final and starts
a new one with a fresh search state; the encoder state carries on. On stop the stream's audio is padded with one
window of silence (as `server.transducer.transcribe` pads), so every received sample is decoded, and the open
segment gets its final unless it holds no audio. Finals are never empty at endpoints.

A stream runs the heads its `HeadPlan` names on the one encoder output (multilingual "sm2" bundles): a captioning
head and one head per requested translation, each with its own search, all reset at the caption's endpoints; the
messages carry "translations" {language: text} for the same segment. With "auto" the captioning head is the one of
the language the streaming identifier (server/lid.py) currently finds most likely among the plan's candidates;
when that decision changes, the new head decodes the open segment's encoder output kept so far (at most
`MAX_REDECODE_S` seconds) and captions from then on, so the caption is the new head's whole segment, not a splice.

A multi-talker head (bundle kind "tsot", head post_processing "tsot") emits `<cc>` where the talker changes: its
messages' `text` drops the marks, `speakers` holds the text of each of the two channels (server/tsot.py), and each
word carries its channel as `speaker`; partials carry their `words` too, so a live caption shows each talker's
words while they stream. Other heads' messages are unchanged.

A stream may ask for adaptation (`Adaptation`): hotwords, tokenized with each captioning head's tokenizer into a
`ContextGraph` (server/biasing.py), and a language model of the bundle to fuse into the search of the head it serves
(`LmFusion`). Both live in the stream's beam search states, which the endpoint resets rebuild with them, so each
segment starts at the graph's root and the LM's sentence start; such a stream searches with modified beam search.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parley.features import StreamingFbank
from server.biasing import MAX_HOTWORD_BOOST, ContextGraph, phrase_tokens
from server.bundle import Bundle
from server.endpoint import EndpointConfig, EndpointDetector
from server.lid import LidState
from server.lm import MAX_FUSION_SCALE
from server.metrics import ServerMetrics
from server.protocol import SEARCH_METHODS, Word, final_message, partial_message, preview
from server.transducer import (
    CHANNEL_CHANGE,
    BeamState,
    EncoderState,
    GreedyState,
    HeadRunner,
    Hypothesis,
    LmFusion,
    StreamingTransducer,
    greedy_search,
    modified_beam_search,
    stack_states,
    unstack_states,
    word_confidence,
)
from server.tsot import speakers_field, strip_channel_changes

log = logging.getLogger("parley.engine")

DEFAULT_SEARCH = "greedy"  # what a stream gets when its start names no search
WORD_START = "▁"  # sentencepiece's word-boundary marker: a piece starting with it begins a new word
# Audio pushes longer than this (seconds) are turned into fbank frames in a worker thread rather than on the event
# loop: 100 ms of audio takes well under a millisecond, a 1 MiB message (up to 32 s) takes tens.
_FBANK_INLINE_S = 1.0
# A transcription pushes its audio in pieces of this many seconds, so backpressure applies to it as to a stream.
_TRANSCRIBE_PIECE_S = 10.0
# An "auto" stream keeps this much of its open segment's encoder output, for a head that takes over the caption.
MAX_REDECODE_S = 30.0


@dataclass(frozen=True)
class HeadPlan:
    """Which heads one stream runs (see `Engine.plan`).

    Attributes:
        caption: the captioning head; None: chosen by the language identifier among `candidates` ("auto").
        candidates: "auto": (LID language index, head index) of each language it may choose.
        translate: (language, head index) of each translation asked for, in the order asked.
        multilingual: results say which language is captioned (and carry translations when asked).
    """

    caption: int | None = 0
    candidates: tuple[tuple[int, int], ...] = ()
    translate: tuple[tuple[str, int], ...] = ()
    multilingual: bool = False

    @property
    def auto(self) -> bool:
        return self.caption is None


class UnsupportedOptionError(ValueError):
    """A language, translation or restriction the bundle cannot serve (protocol error unsupported_option)."""


class InvalidOptionError(ValueError):
    """Hotwords or fusion settings that no model could serve: too many, too long, untokenizable, a search that
    cannot use them (protocol error invalid_value)."""


@dataclass(frozen=True)
class Adaptation:
    """What a stream asks of the search beyond the audio.

    Attributes:
        hotwords: (phrase, boost per token) of each hotword; boost None: the engine's default.
        lm: the name of one of the bundle's LMs to fuse, or None.
        lm_scale: its weight (None: the bundle's default for it).
        ilm_scale: the internal LM's subtracted weight (None: the bundle's default).
    """

    hotwords: tuple[tuple[str, float | None], ...] = ()
    lm: str | None = None
    lm_scale: float | None = None
    ilm_scale: float | None = None

    @property
    def active(self) -> bool:
        return bool(self.hotwords) or self.lm is not None


# A stream's adaptation, resolved per head: (hotword graph, LM fusion), either None.
HeadAdaptation = dict[int, tuple[ContextGraph | None, LmFusion | None]]


class StreamClosedError(Exception):
    """The stream was closed (its client left, or the engine stopped) while a call waited on it."""


@dataclass(frozen=True)
class EngineConfig:
    """How the loop batches, and the endpoint rules every stream uses."""

    max_batch: int = 32
    max_wait_ms: float = 10.0
    queue_chunks: int = 8
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    intra_op_threads: int = 0  # informative: the sessions were opened with it
    max_hotwords: int = 100  # hotwords one stream may ask for
    max_hotword_chars: int = 64  # characters in one hotword
    max_hotword_tokens: int = 32  # tokens of one hotword under a head's tokenizer
    hotword_boost: float = 1.5  # the bonus per token of a hotword that names no boost

    @classmethod
    def from_settings(cls, settings: Any) -> EngineConfig:
        """From a `server.settings.Settings`."""
        return cls(
            max_batch=settings.max_batch,
            max_wait_ms=settings.max_wait_ms,
            queue_chunks=settings.queue_chunks,
            endpoint=settings.endpoint_config(),
            intra_op_threads=settings.intra_op_threads,
            max_hotwords=settings.max_hotwords,
            max_hotword_chars=settings.max_hotword_chars,
            max_hotword_tokens=settings.max_hotword_tokens,
            hotword_boost=settings.hotword_boost,
        )


@dataclass
class Update:
    """What one engine step (or the stream's end) produced for a stream.

    Attributes:
        messages: partial and final messages to send, in order (may be empty: the text did not change).
        arrived: `time.monotonic()` when the last sample of each chunk this update answers arrived.
        end: the stream is flushed; every final was in this or an earlier update.
        error: the engine failed on this stream; nothing more will come.
    """

    messages: list[dict] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)
    end: bool = False
    error: str | None = None


@dataclass
class _Chunk:
    x: np.ndarray  # (T, F) float32 fbank frames, one encoder window
    arrived: float  # time.monotonic() of the audio that completed it
    flush: bool = False  # made by stop(): its partials are not sent, the final follows at once


_STOP = object()  # the queue's last item after stop: emit the open segment's final and end


class _Decoder:
    """One stream's recognition state: encoder cache, searches (one per head the plan runs), language identification,
    endpointing and segments.

    Touched by one engine step at a time (in the worker thread), or on the event loop when no step holds it.
    """

    def __init__(
        self,
        model: StreamingTransducer,
        plan: HeadPlan,
        search: str,
        partials: bool,
        endpoint: EndpointConfig,
        adaptation: HeadAdaptation | None = None,
    ) -> None:
        spec = model.spec
        self.model = model
        self.plan = plan
        self.search = search
        self.adaptation = adaptation or {}
        self.partials = partials
        # Seconds per encoder frame: fbank shift times subsampling (0.04 s).
        self.frame_s = spec.features.frame_shift_ms / 1000.0 * spec.subsampling
        self.encoder: EncoderState = model.init_state(1)
        self.detector = EndpointDetector(endpoint, self.frame_s)
        self.caption = plan.caption if plan.caption is not None else plan.candidates[0][1]
        self.lid: LidState | None = None
        if plan.auto:
            assert model.lid is not None, "an auto plan needs a language identifier"
            self.lid = LidState.new(model.lid.num_languages)
        self.searchers: dict[int, GreedyState | BeamState] = {}
        self._reset_searches(0)
        self.segment_enc: list[np.ndarray] = []  # auto: the open segment's encoder output chunks (C, E)
        self.segment = 0
        self.segment_start_frame = 0  # where the open segment began (the previous final's end)
        self.last_sent = self._empty()
        self.audio_s = 0.0  # seconds of audio received: no time in a message goes past it

    @property
    def runner(self) -> HeadRunner:
        """The captioning head."""
        return self.model.heads[self.caption]

    def _heads(self) -> list[int]:
        """The heads this stream searches: the caption's, then the translations' (each once)."""
        return list(dict.fromkeys([self.caption, *(h for _, h in self.plan.translate)]))

    def _new_search(self, head: int, frames_done: int) -> GreedyState | BeamState:
        """A fresh search whose token frames count from the stream's start."""
        runner = self.model.heads[head]
        s: GreedyState | BeamState
        if self.search == "greedy":
            s = GreedyState.new(runner)
        else:
            hotwords, fusion = self.adaptation.get(head, (None, None))
            s = BeamState(hotwords=hotwords, fusion=fusion)
        s.frames_done = frames_done
        return s

    def _reset_searches(self, frames_done: int) -> None:
        self.searchers = {h: self._new_search(h, frames_done) for h in self._heads()}

    def _hyp(self, head: int) -> Hypothesis:
        s = self.searchers[head]
        return s.hyp if isinstance(s, GreedyState) else s.best

    @property
    def hyp(self) -> Hypothesis:
        return self._hyp(self.caption)

    def _t(self, frame: int) -> float:
        return min(frame * self.frame_s, self.audio_s)

    def accept_lid(self, logits: np.ndarray) -> None:
        """An auto stream's language evidence for one chunk: frame logits `(C, L)`; may hand the caption to another
        head, which then decodes the open segment kept so far."""
        assert self.lid is not None
        self.lid.accept(logits)
        choice = self.lid.decide([lang for lang, _ in self.plan.candidates])
        head = dict(self.plan.candidates)[choice]
        if head == self.caption:
            return
        old, self.caption = self.caption, head
        if head not in self.searchers:
            kept = sum(len(e) for e in self.segment_enc)
            s = self._new_search(head, self.detector.frames_total - kept)
            if kept:
                enc = np.concatenate(self.segment_enc)[None]  # (1, kept, E)
                if isinstance(s, GreedyState):
                    greedy_search(self.runner, enc, [s])
                else:
                    modified_beam_search(self.runner, enc, [s])
            self.searchers[head] = s
        if old not in self._heads():
            del self.searchers[old]

    def keep_encoder_output(self, enc: np.ndarray) -> None:
        """An auto stream keeps its open segment's encoder output `(C, E)` (the last `MAX_REDECODE_S` seconds)."""
        self.segment_enc.append(enc.copy())  # a view would keep the whole batch's output alive
        limit = MAX_REDECODE_S / self.frame_s
        while sum(len(e) for e in self.segment_enc) - len(self.segment_enc[0]) >= limit:
            self.segment_enc.pop(0)

    def words(self, hyp: Hypothesis) -> list[Word]:
        """The hypothesis's words with times: a word is the pieces from one starting with '▁' to the next; it
        starts at its first token's frame and ends after its last token's frame. Several tokens may come out of one
        frame, so a word starts no earlier than the end of the word before it on its channel (words emitted within one
        frame get that frame's instant): times never overlap, never go backwards, never pass the emitting frame.
        A word's `conf` is `word_confidence` of its tokens' probabilities."""
        groups: list[list[tuple[int, int, float]]] = []
        tokens = self.runner.head.tokens
        cc = tokens.index(CHANNEL_CHANGE) if CHANNEL_CHANGE in tokens else None
        channels: list[int] = []  # of each group: t-SOT heads toggle between channels 0 and 1 at each <cc>
        channel = 0
        new_word = True
        for tok, frame, prob in zip(hyp.tokens, hyp.frames, hyp.probs, strict=True):
            if tok == cc or tok == self.runner.blank_id:
                new_word = True
                if tok == cc:
                    channel = 1 - channel
                continue
            if new_word or tokens[tok].startswith(WORD_START):
                groups.append([])
                channels.append(channel)
                new_word = False
            groups[-1].append((tok, frame, prob))
        out = []
        ends: dict[int, int] = {}  # channel -> frame where its last word ended
        for g, c in zip(groups, channels, strict=True):
            text = self.runner.head.sp.decode([t for t, _, _ in g]).strip()
            if text:
                end = g[-1][1] + 1
                start = min(max(g[0][1], ends.get(c, 0)), end)
                ends[c] = end
                conf = word_confidence([p for _, _, p in g])
                out.append(Word(text, self._t(start), self._t(end), c if self.tsot else None, conf))
        return out

    @property
    def tsot(self) -> bool:
        """The captioning head is multi-talker: its text carries <cc> channel changes (server/tsot.py)."""
        return self.runner.head.post_processing == "tsot"

    def _shown(self, text: str) -> str:
        """A message's `text`: a t-SOT head's words of all channels in emission order, without <cc> marks."""
        return strip_channel_changes(text) if self.tsot else text

    def _translations(self) -> dict[str, str]:
        return {lang: self.model.heads[h].text(self._hyp(h).tokens) for lang, h in self.plan.translate}

    def _empty(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return "", tuple((lang, "") for lang, _ in self.plan.translate)

    def _extra(self, translations: dict[str, str], text: str) -> dict[str, Any]:
        """A message's optional fields: the captioned language and the translations asked for (multilingual
        bundles); the text of each channel, "speakers" (multi-talker bundles)."""
        extra: dict[str, Any] = {}
        if self.tsot:
            extra["speakers"] = speakers_field(text)
        if not self.plan.multilingual:
            return extra
        extra["language"] = self.runner.head.language
        if self.plan.translate:
            extra["translations"] = translations
        return extra

    def _final(self, hyp: Hypothesis, text: str, translations: dict[str, str], end_frame: int) -> dict:
        return final_message(
            self.segment,
            self._shown(text),
            self._t(self.segment_start_frame),
            self._t(end_frame),
            self.words(hyp),
            **self._extra(translations, text),
        )

    def after_chunk(self, frames: int, flushing: bool) -> list[dict]:
        """Endpointing and messages after the searches decoded `frames` more encoder frames."""
        hyp = self.hyp
        first = self.detector.frames_total
        emitted = np.zeros(frames, dtype=bool)  # (C,)
        for f in hyp.frames:
            if first <= f < first + frames:
                emitted[f - first] = True
        messages = []
        text = self.runner.text(hyp.tokens)
        translations = self._translations()
        if self.detector.accept(emitted):
            end = self.detector.frames_total
            if text or any(translations.values()):  # no empty finals at endpoints
                messages.append(self._final(hyp, text, translations, end))
                self.segment += 1
                self.segment_start_frame = end
            self.detector.reset()
            self._reset_searches(end)
            self.segment_enc = []
            self.last_sent = self._empty()
            return messages
        sent = (text, tuple(translations.items()))
        if sent != self.last_sent:
            if self.partials and not flushing:
                end_s = self._t(self.detector.frames_total)
                extra = self._extra(translations, text)
                if self.tsot:  # a live caption colours each word by its talker before the segment closes
                    extra["words"] = [w.to_dict() for w in self.words(hyp)]
                messages.append(
                    partial_message(self.segment, self._shown(text), self._t(self.segment_start_frame), end_s, **extra)
                )
            self.last_sent = sent
        return messages

    def finish(self) -> list[dict]:
        """The open segment's final after the flush, unless it is empty and holds no audio."""
        hyp = self.hyp
        text = self.runner.text(hyp.tokens)
        translations = self._translations()
        if not text and not any(translations.values()) and self.segment_start_frame * self.frame_s >= self.audio_s:
            return []
        final = self._final(hyp, text, translations, self.detector.frames_total)
        final["end"] = round(self.audio_s, 3)  # the audio's end, not the padding's
        self.segment += 1
        return [final]


class Stream:
    """One stream in the engine: its frontend, its queue of chunks and its updates. Created by `Engine.open_stream`.

    Args:
        engine: the engine that decodes it.
        sample_rate: the rate of the audio `push` receives (8-48 kHz).
        search: "greedy" or "beam".
        partials: whether to produce partial messages.
        plan: the heads to run.
        adaptation: hotwords and LM fusion of each head that has them (beam search only).
    """

    def __init__(
        self,
        engine: Engine,
        sample_rate: int,
        search: str,
        partials: bool,
        plan: HeadPlan,
        adaptation: HeadAdaptation | None = None,
    ) -> None:
        spec = engine.model.spec
        self.engine = engine
        self.sample_rate = int(sample_rate)
        self.search = search
        self.plan = plan
        self.decoder = _Decoder(engine.model, plan, search, partials, engine.config.endpoint, adaptation)
        self._fbank = StreamingFbank(spec.features, self.sample_rate)
        self._frames = np.zeros((0, spec.features.num_bins), dtype=np.float32)  # (T_buf, F) not yet in a chunk
        self._pending: deque[_Chunk | object] = deque()
        self._updates: asyncio.Queue[Update] = asyncio.Queue()
        self._room = asyncio.Event()  # set when the queue may have room
        self.queued = False  # in the engine's ready queue
        self._outstanding = 0  # chunks queued whose update has not been taken yet: at most queue_chunks
        self.samples_received = 0
        self._accepting: asyncio.Future | None = None  # a long push's frontend work in a thread
        self.stopped = False
        self.closed = False
        self.failure: str | None = None  # why the engine gave up on the stream

    @property
    def seconds_received(self) -> float:
        return self.samples_received / self.sample_rate

    @property
    def unanswered(self) -> int:
        """Chunks queued whose update has not been taken yet (`next_update`): 0 once every chunk of the audio pushed
        so far is decoded and its messages taken (audio short of a whole chunk waits for more)."""
        return self._outstanding

    @property
    def pending_chunks(self) -> int:
        return sum(1 for c in self._pending if c is not _STOP)

    async def _wait_room(self) -> None:
        while self._outstanding >= self.engine.config.queue_chunks:
            if self.closed:
                raise StreamClosedError("stream closed")
            self._room.clear()
            await self._room.wait()
        if self.closed:
            raise StreamClosedError("stream closed")

    async def push(self, samples: np.ndarray, arrived: float | None = None) -> None:
        """Adds audio: float32 samples `(T_samples,)` at `sample_rate`. Returns once its chunks are queued, which
        waits while the stream's queue is full (backpressure).

        Raises:
            StreamClosedError: the stream was closed meanwhile.
            RuntimeError: push after stop.
        """
        if self.stopped:
            raise RuntimeError("push after stop")
        arrived = time.monotonic() if arrived is None else arrived
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.samples_received += int(samples.size)
        self.decoder.audio_s = self.seconds_received
        self.engine.metrics_audio(samples.size / self.sample_rate)
        if samples.size > _FBANK_INLINE_S * self.sample_rate:
            # Shielded: a cancelled push must not leave the thread feeding the frontend while stop() feeds it too.
            self._accepting = asyncio.ensure_future(asyncio.to_thread(self._fbank.accept, samples))
            await asyncio.shield(self._accepting)
        else:
            self._fbank.accept(samples)
        await self._queue_frames(self._fbank.pop_frames(), arrived)

    async def _queue_frames(self, frames: np.ndarray, arrived: float, flush: bool = False) -> None:
        spec = self.engine.model.spec
        self._frames = np.concatenate([self._frames, frames]) if self._frames.size else frames
        while len(self._frames) >= spec.window:
            await self._wait_room()
            self._outstanding += 1
            self._pending.append(_Chunk(self._frames[: spec.window].copy(), arrived, flush))  # (T, F)
            self._frames = self._frames[spec.shift :]
            self.engine._schedule(self)

    async def stop(self) -> None:
        """No more audio: pads the tail with one window of silence so every sample is decoded, then queues the end.
        The updates that follow hold the last finals, the last with `end` set."""
        if self.stopped:
            return
        self.stopped = True
        if self._accepting is not None and not self._accepting.done():
            await asyncio.wait({self._accepting})
        spec = self.engine.model.spec
        pad = np.zeros(round(self.sample_rate * spec.window * spec.features.frame_shift_ms / 1000), dtype=np.float32)
        self._fbank.accept(pad)
        self._fbank.finish()
        await self._queue_frames(self._fbank.pop_frames(), time.monotonic(), flush=True)
        self._pending.append(_STOP)
        self.engine._schedule(self)

    async def next_update(self) -> Update:
        """The next update, in order; waits for it."""
        update = await self._updates.get()
        self._outstanding -= len(update.arrived)
        self._room.set()
        return update

    def _deliver(self, update: Update) -> None:
        if update.error and self.failure is None:
            self.failure = update.error
        if not self.closed:
            self._updates.put_nowait(update)

    def _take(self) -> _Chunk | object:
        return self._pending.popleft()

    def close(self) -> None:
        """Abandons the stream (its client left): the engine forgets it, waiting calls raise `StreamClosedError`."""
        if self.closed:
            return
        self.closed = True
        self._pending.clear()
        self._room.set()
        self.engine._forget(self)


class Engine:
    """One bundle's batching loop.

    Args:
        bundle: the loaded bundle.
        config: batching limits and endpoint rules.
        metrics: where batch sizes and audio seconds go (None: nowhere).
    """

    def __init__(self, bundle: Bundle, config: EngineConfig | None = None, metrics: ServerMetrics | None = None):
        self.bundle = bundle
        self.name = bundle.name
        self.model = StreamingTransducer(bundle)
        self.config = config or EngineConfig()
        self.metrics = metrics
        self._streams: set[Stream] = set()
        self._ready: deque[Stream] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    # ---- What the app asks ----

    @property
    def chunk_ms(self) -> int:
        return self.model.spec.chunk_ms

    @property
    def languages(self) -> list[str]:
        return list(self.bundle.languages)

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    @property
    def multilingual(self) -> bool:
        """A bundle of several output languages (kind "sm2"): any head translates, results name the language."""
        return self.bundle.kind == "sm2"

    @property
    def multi_talker(self) -> bool:
        """A multi-talker bundle (kind "tsot"): results carry `speakers` and each word's `speaker`."""
        return any(h.post_processing == "tsot" for h in self.bundle.heads)

    @property
    def lms(self) -> list[dict]:
        """The bundle's language models, as GET /v1/models lists them."""
        return [lm.describe() for lm in self.bundle.lms.values()]

    @property
    def translate_languages(self) -> list[str]:
        """What `translate` may ask for: every head's language in a multilingual bundle, nothing otherwise."""
        return list(self.bundle.languages) if self.multilingual else []

    @property
    def auto_languages(self) -> list[str]:
        """The languages "auto" can tell apart and caption: the identifier's languages that have a head."""
        lid = self.model.lid
        if lid is None:
            return []
        return [lang for lang in lid.languages if self.model.head_index(lang) is not None]

    def head_for(self, language: str | None) -> int | None:
        """The head that captions `language` (None or "auto" on a one-head bundle: that head); None if none."""
        if language is None or (language == "auto" and len(self.model.heads) == 1):
            return 0
        return self.model.head_index(language)

    def plan(
        self, language: str | None = None, translate: Sequence[str] = (), languages: Sequence[str] = ()
    ) -> HeadPlan:
        """The heads a stream runs for a start's `language`, `translate` and `languages` (the restriction of "auto").

        `language` None means "auto" on a bundle with a language identifier, else its first head.

        Raises:
            UnsupportedOptionError: a language, translation or restriction this bundle cannot serve.
        """
        lid = self.model.lid
        if language is None and (lid is not None or languages):
            language = "auto"
        if languages and language != "auto":
            raise UnsupportedOptionError(
                f"languages {preview(list(languages))} restrict auto, but language is {preview(language)}"
            )
        if language == "auto" and (lid is not None or languages):
            if lid is None:
                raise UnsupportedOptionError("has no language identifier: name the language instead of auto")
            if bad := [x for x in languages if x not in self.auto_languages]:
                raise UnsupportedOptionError(f"cannot detect {preview(bad)}: auto knows {self.auto_languages}")
            allowed = list(languages) or self.auto_languages
            if not allowed:
                raise UnsupportedOptionError("has no head for any language its identifier knows")
            candidates = tuple((lid.languages.index(x), self.model.head_index(x)) for x in allowed)
            caption: int | None = None
        else:
            caption = self.head_for(language)
            if caption is None:
                raise UnsupportedOptionError(f"cannot recognize language {preview(language)}: {self.languages}")
            candidates = ()
        if translate and not self.multilingual:
            raise UnsupportedOptionError("has no translation heads")
        if bad := [t for t in translate if t not in self.translate_languages]:
            raise UnsupportedOptionError(f"cannot translate into {preview(bad)}: {self.translate_languages}")
        pairs = tuple((t, self.model.head_index(t)) for t in translate)
        return HeadPlan(caption, candidates, pairs, self.multilingual)  # type: ignore[arg-type]

    def search_for(self, search: str | None, adaptation: Adaptation | None) -> str:
        """The search a stream gets: the one asked for, else beam search for an adapted stream, else the default.

        Raises:
            InvalidOptionError: greedy search asked for together with hotwords or an LM.
        """
        if adaptation is not None and adaptation.active:
            if search not in (None, "beam"):
                raise InvalidOptionError(f"hotwords and lm need beam search, not {preview(search)}: omit search")
            return "beam"
        return search or DEFAULT_SEARCH

    def adapt(self, plan: HeadPlan, adaptation: Adaptation) -> HeadAdaptation:
        """The hotword graph and LM fusion of each head `plan` may caption with.

        Hotwords are checked against the engine's limits and tokenized with each captioning head's tokenizer (a
        translation head gets none: its words are not the speaker's); the LM goes to the head whose tokens it
        predicts, which must be one of them.

        Raises:
            InvalidOptionError: too many hotwords, one too long or untokenizable, a boost or scale out of range.
            UnsupportedOptionError: an LM the bundle does not have, or one for a language the plan does not caption.
        """
        cfg = self.config
        if len(adaptation.hotwords) > cfg.max_hotwords:
            raise InvalidOptionError(f"{len(adaptation.hotwords)} hotwords: at most {cfg.max_hotwords} per stream")
        for phrase, boost in adaptation.hotwords:
            if len(phrase) > cfg.max_hotword_chars:
                raise InvalidOptionError(
                    f"hotword {preview(phrase, 40)} has {len(phrase)} characters: at most {cfg.max_hotword_chars}"
                )
            if boost is not None and not 0 < boost <= MAX_HOTWORD_BOOST:
                raise InvalidOptionError(f"hotword boost {boost!r}: use a number in (0, {MAX_HOTWORD_BOOST:g}]")
        captions = [plan.caption] if plan.caption is not None else [h for _, h in plan.candidates]
        out: HeadAdaptation = {}
        for h in captions:
            head = self.model.heads[h].head
            graph = None
            if adaptation.hotwords:
                phrases = []
                for phrase, boost in adaptation.hotwords:
                    try:
                        ids = phrase_tokens(head.sp, phrase)
                    except ValueError as e:
                        raise InvalidOptionError(str(e)) from None
                    if len(ids) > cfg.max_hotword_tokens:
                        raise InvalidOptionError(
                            f"hotword {preview(phrase, 40)} is {len(ids)} tokens long: at most {cfg.max_hotword_tokens}"
                        )
                    phrases.append((ids, cfg.hotword_boost if boost is None else boost))
                graph = ContextGraph(phrases, head.vocab_size)
            out[h] = (graph, None)
        if adaptation.lm is not None:
            lm = self.bundle.lms.get(adaptation.lm)
            if lm is None:
                raise UnsupportedOptionError(f"has no lm {preview(adaptation.lm)}: it has {sorted(self.bundle.lms)}")
            h = self.model.head_index(lm.language)
            if h not in out:
                raise UnsupportedOptionError(
                    f"lm {preview(lm.name)} is for {lm.language}, which this stream does not caption"
                )
            scales = (adaptation.lm_scale, adaptation.ilm_scale)
            for x in scales:
                if x is not None and not 0 <= x <= MAX_FUSION_SCALE:
                    raise InvalidOptionError(f"lm_scale and ilm_scale must be in [0, {MAX_FUSION_SCALE:g}], got {x!r}")
            lm_scale = lm.lm_scale if adaptation.lm_scale is None else adaptation.lm_scale
            ilm_scale = lm.ilm_scale if adaptation.ilm_scale is None else adaptation.ilm_scale
            out[h] = (out[h][0], LmFusion(lm.lm, lm_scale, ilm_scale))
        return {h: a for h, a in out.items() if a != (None, None)}

    async def start(self) -> None:
        """Starts the loop on the running event loop."""
        if self._task is not None:
            return
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"parley-{self.name}")
        self._task = asyncio.create_task(self._run(), name=f"parley-engine-{self.name}")

    async def close(self) -> None:
        """Stops the loop; open streams are closed."""
        for s in list(self._streams):
            s._deliver(Update(error="the engine stopped"))
            s.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def open_stream(
        self,
        sample_rate: int,
        search: str | None = None,
        partials: bool = True,
        head: int | HeadPlan = 0,
        adaptation: Adaptation | None = None,
    ) -> Stream:
        """A new stream of audio at `sample_rate` (8-48 kHz), captioned by head `head` or run as `plan(...)` says,
        with the hotwords and LM of `adaptation` (which make beam search the default).

        Raises:
            ValueError: an unknown search or head, a rate out of range; InvalidOptionError and
                UnsupportedOptionError (both ValueErrors): see `adapt`.
            RuntimeError: the engine is not running.
        """
        if self._task is None:
            raise RuntimeError(f"engine {self.name} is not running")
        search = self.search_for(search, adaptation)
        if search not in SEARCH_METHODS:
            raise ValueError(f"unknown search {search!r}; use one of {SEARCH_METHODS}")
        plan = head if isinstance(head, HeadPlan) else HeadPlan(head, multilingual=self.multilingual)
        used = [plan.caption] if plan.caption is not None else [h for _, h in plan.candidates]
        for h in [*used, *(h for _, h in plan.translate)]:
            if h is None or not 0 <= h < len(self.model.heads):
                raise ValueError(f"head {h} out of range: the bundle has {len(self.model.heads)}")
        if plan.auto and self.model.lid is None:
            raise ValueError("an auto plan needs a bundle with a language identifier")
        adapted = self.adapt(plan, adaptation) if adaptation is not None and adaptation.active else None
        stream = Stream(self, sample_rate, search, partials, plan, adapted)
        self._streams.add(stream)
        return stream

    async def transcribe(
        self,
        samples: np.ndarray,
        sample_rate: int,
        search: str | None = None,
        head: int | HeadPlan = 0,
        adaptation: Adaptation | None = None,
    ) -> list[dict]:
        """A whole recording through the same loop as the streams: the final messages a stream would produce.

        Args:
            samples: float32 `(T_samples,)` in [-1, 1].
            sample_rate: their rate, 8-48 kHz.
            search: "greedy" or "beam" (None: the default).
            head: the head to search with, or the plan of heads.
            adaptation: hotwords and an LM to fuse.

        Raises:
            RuntimeError: the engine failed on it.
        """
        stream = self.open_stream(sample_rate, search, partials=False, head=head, adaptation=adaptation)
        finals: list[dict] = []

        async def collect() -> None:
            while True:
                update = await stream.next_update()
                if update.error:
                    raise RuntimeError(update.error)
                finals.extend(m for m in update.messages if m["type"] == "final")
                if update.end:
                    return

        collector = asyncio.create_task(collect())
        try:
            step = max(1, round(_TRANSCRIBE_PIECE_S * sample_rate))
            for i in range(0, len(samples), step):
                if collector.done():
                    break
                await stream.push(samples[i : i + step])
            if not collector.done():
                await stream.stop()
            await collector
        finally:
            collector.cancel()
            stream.close()
        return finals

    def metrics_audio(self, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.audio_seconds.labels(self.name).inc(seconds)

    # ---- The loop ----

    def _schedule(self, stream: Stream) -> None:
        if not stream.queued and not stream.closed and stream._pending:
            stream.queued = True
            self._ready.append(stream)
            if self._wake is not None:
                self._wake.set()

    def _forget(self, stream: Stream) -> None:
        self._streams.discard(stream)

    async def _gather(self) -> list[tuple[Stream, Any]]:
        """Waits for the first ready stream, then up to `max_wait_ms` for more; takes one item from each."""
        assert self._wake is not None
        while not self._ready:
            self._wake.clear()
            await self._wake.wait()
        loop = asyncio.get_running_loop()
        cfg = self.config
        deadline = loop.time() + cfg.max_wait_ms / 1000.0
        # Waiting is pointless once every open stream is in: nobody else can join.
        while len(self._ready) < min(cfg.max_batch, len(self._streams)):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                break
        batch = []
        while self._ready and len(batch) < cfg.max_batch:
            s = self._ready.popleft()
            s.queued = False
            if s.closed or not s._pending:
                continue
            batch.append((s, s._take()))
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            chunks = [(s, c) for s, c in batch if isinstance(c, _Chunk)]
            if chunks:
                try:
                    results = await loop.run_in_executor(self._executor, self._step, chunks)
                except Exception as e:
                    log.exception("engine %s: a batch of %d streams failed", self.name, len(chunks))
                    for s, _ in chunks:
                        s._deliver(Update(error=f"the model failed: {type(e).__name__}"))
                        s.close()
                    continue
                if self.metrics is not None:
                    self.metrics.batch_size.labels(self.name).observe(len(chunks))
                for (s, c), messages in zip(chunks, results, strict=True):
                    s._deliver(Update(messages, [c.arrived]))
                    self._schedule(s)
            for s, item in batch:
                if item is _STOP:
                    s._deliver(Update(s.decoder.finish(), end=True))

    def _step(self, chunks: Sequence[tuple[Stream, _Chunk]]) -> list[list[dict]]:
        """One encoder run and the searches for a batch; in the worker thread. Returns each stream's messages."""
        decoders = [s.decoder for s, _ in chunks]
        x = np.stack([c.x for _, c in chunks])  # (N, T, F)
        enc, state = self.model.encode(x, stack_states([d.encoder for d in decoders]))  # enc (N, C, E)
        for d, s in zip(decoders, unstack_states(state), strict=True):
            d.encoder = s
        auto = [i for i, d in enumerate(decoders) if d.lid is not None]
        if auto:
            assert self.model.lid is not None
            logits = self.model.lid.frame_logits(enc[auto])  # (n, C, L)
            for k, i in enumerate(auto):
                decoders[i].accept_lid(logits[k])
        # Every (head, search) pair runs once for all the streams that need it, whatever role it has for them.
        groups: dict[tuple[int, str], list[tuple[int, GreedyState | BeamState]]] = {}
        for i, d in enumerate(decoders):
            for head, searcher in d.searchers.items():
                groups.setdefault((head, d.search), []).append((i, searcher))
        for (head, search), members in groups.items():
            runner = self.model.heads[head]
            rows = [i for i, _ in members]
            states = [s for _, s in members]
            if search == "greedy":
                greedy_search(runner, enc[rows], states)  # type: ignore[arg-type]
            else:
                modified_beam_search(runner, enc[rows], states)  # type: ignore[arg-type]
        for i in auto:
            decoders[i].keep_encoder_output(enc[i])
        C = enc.shape[1]
        return [d.after_chunk(C, c.flush) for d, (_, c) in zip(decoders, chunks, strict=True)]
