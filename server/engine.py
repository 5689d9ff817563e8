"""One bundle served: its plans (server/plan.py), its recognizer (server/recognizer.py) and its batching loop
(server/batcher.py), behind the few calls the app makes.

    engine = Engine(bundle, EngineConfig.from_settings(settings), metrics)
    await engine.start()
    plan = engine.plan("auto", translate=["en"])             # raises UnsupportedOptionError
    stream = engine.open_stream(48000, "greedy", head=plan)   # a batcher Stream
    await stream.push(samples)                                # float32 (T_samples,) at 48 kHz
    update = await stream.next_update()                       # Update(results=[Partial | Final, ...])
    await stream.stop()
    finals = await engine.recognize(samples, 16000)           # a whole recording: [Final, ...]
    await engine.close()

The engine owns no model knowledge beyond the streaming contract, and no wire format: sessions turn its results into
their protocol's messages (server/messages.py for /v1/stream and POST /v1/transcribe, server/vosk.py for Vosk's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from parley.contract import BEAM, SETTLE_MS
from server.batcher import Batcher, BatcherConfig, Stream
from server.biasing import HOTWORD_BOOST, HOTWORD_FLOOR
from server.bundle import Bundle
from server.endpoint import EndpointConfig
from server.frontend import Frontend
from server.multichannel import StreamGroup
from server.plan import (
    Adaptation,
    HeadAdaptation,
    HeadPlan,
    HotwordLimits,
    Planner,
    UnsupportedOptionError,
)
from server.profanity import PROFANITY, ProfanityFilter
from server.recognizer import Final, Recognizer
from server.respell import RESPELL_THRESHOLD, RESPELL_VERIFY_MARGIN, RESPELL_VERIFY_THRESHOLD
from server.transducer import StreamingTransducer
from server.written import written_forms

if TYPE_CHECKING:
    from server.metrics import ServerMetrics

# A transcription pushes its audio in pieces of this many seconds, so backpressure applies to it as to a stream.
_TRANSCRIBE_PIECE_S = 10.0


@dataclass(frozen=True)
class EngineConfig:
    """How the loop batches, the endpoint rules every stream uses, and what a stream may ask for in hotwords."""

    max_batch: int = 32
    max_wait_ms: float = 10.0
    queue_chunks: int = 8
    parallel_steps: int = 2  # batches in the model at once (server/batcher.py)
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    max_hotwords: int = 100  # hotwords one stream may ask for
    max_hotword_chars: int = 64  # characters in one hotword
    max_hotword_tokens: int = 32  # tokens of one hotword under a head's tokenizer
    hotword_boost: float = HOTWORD_BOOST  # the bonus per token of a hotword that names no boost
    hotword_floor: float = HOTWORD_FLOOR  # the hotword graph's acoustic floor (server/biasing.py); 0: off
    server_hotwords: tuple[tuple[str, float | None], ...] = ()  # every beam-search stream's (--hotwords-file)
    server_sounds_like: tuple[tuple[str, tuple[str, ...]], ...] = ()  # how the model hears some of them (respelling)
    respell_threshold: float = RESPELL_THRESHOLD  # hotword respelling (server/respell.py); 0: off
    respell_verify_threshold: float = RESPELL_VERIFY_THRESHOLD  # finals' checked respelling; 1: off
    respell_verify_margin: float = RESPELL_VERIFY_MARGIN
    fbank: str = "numpy"  # what computes the streams' frames (parley.features.FBANK_BACKENDS)
    search: str = "auto"  # the search of streams that ask for none (server/plan.py, DEFAULT_SEARCHES)
    beam: int = BEAM  # hypotheses modified beam search keeps (`parley serve --beam`)
    settle_ms: float = SETTLE_MS  # beam search settles tokens this old (`parley serve --settle-ms`; 0: never)
    talker_threshold: float = 0.0  # "the same talker" at this cosine (server/talkers.py); 0: the bundle's own
    redact: bool = False  # every stream's spoken digit strings redacted, whatever it asks (server/redact.py)
    profanity_filter: bool = False  # every stream's profanity masked, whatever it asks (server/profanity.py)
    profanity_words: frozenset[str] = PROFANITY  # the words the filter masks

    @classmethod
    def from_settings(cls, settings: Any) -> EngineConfig:
        """From a `server.settings.Settings`."""
        return cls(
            max_batch=settings.max_batch,
            max_wait_ms=settings.max_wait_ms,
            queue_chunks=settings.queue_chunks,
            parallel_steps=settings.parallel_steps,
            endpoint=settings.endpoint_config(),
            max_hotwords=settings.max_hotwords,
            max_hotword_chars=settings.max_hotword_chars,
            max_hotword_tokens=settings.max_hotword_tokens,
            hotword_boost=settings.hotword_boost,
            hotword_floor=settings.hotword_floor,
            talker_threshold=settings.talker_threshold,
            server_hotwords=settings.server_hotwords(),
            server_sounds_like=settings.server_sounds_like(),
            respell_threshold=settings.respell_threshold,
            respell_verify_threshold=settings.respell_verify_threshold,
            respell_verify_margin=settings.respell_verify_margin,
            fbank=settings.fbank,
            search=settings.search,
            beam=settings.beam,
            settle_ms=settings.settle_ms,
            redact=settings.redact,
            profanity_filter=settings.profanity_filter,
            profanity_words=settings.profanity_list(),
        )

    @property
    def batcher(self) -> BatcherConfig:
        return BatcherConfig(self.max_batch, self.max_wait_ms, self.queue_chunks, self.parallel_steps)

    @property
    def hotwords(self) -> HotwordLimits:
        return HotwordLimits(
            self.max_hotwords,
            self.max_hotword_chars,
            self.max_hotword_tokens,
            self.hotword_boost,
            self.server_hotwords,
            self.respell_threshold,
            self.hotword_floor,
            self.respell_verify_threshold,
            self.respell_verify_margin,
            self.search,
            self.server_sounds_like,
        )


class Engine:
    """One bundle's planner, recognizer and batching loop.

    Args:
        bundle: the loaded bundle.
        config: batching limits, endpoint rules, hotword limits.
        metrics: where batch sizes and audio seconds go (None: nowhere).
    """

    def __init__(self, bundle: Bundle, config: EngineConfig | None = None, metrics: ServerMetrics | None = None):
        self.bundle = bundle
        self.name = bundle.name
        self.config = config or EngineConfig()
        self.model = StreamingTransducer(bundle)
        self.planner = Planner(bundle, self.model, self.config.hotwords)
        self._profanity = ProfanityFilter(self.config.profanity_words)  # shared by the streams that mask
        self.punctuators = bundle.punctuators
        talkers = bundle.talkers
        if talkers is not None and self.config.talker_threshold:
            talkers = replace(talkers, threshold=self.config.talker_threshold)
        self.recognizer = Recognizer(
            self.model, self.config.endpoint, self.punctuators, talkers, self.config.beam, self.config.settle_ms
        )
        self.batcher = Batcher(self.recognizer, self.config.batcher, self.name, metrics)

    # ---- What the app asks (server/plan.py answers) ----

    @property
    def chunk_ms(self) -> int:
        return self.model.spec.chunk_ms

    @property
    def languages(self) -> list[str]:
        return self.planner.languages

    @property
    def multilingual(self) -> bool:
        return self.planner.multilingual

    @property
    def multi_talker(self) -> bool:
        return self.planner.multi_talker

    @property
    def punctuation(self) -> list[str]:
        """The languages whose finals this bundle can punctuate and case."""
        return sorted(self.punctuators)

    @property
    def talkers(self) -> bool:
        """Whether streams can ask for talkers (the bundle has a talker model: server/talkers.py)."""
        return self.bundle.talkers is not None

    @property
    def lms(self) -> list[dict]:
        return self.planner.lms

    @property
    def decoding(self) -> dict:
        """What a stream that asks for nothing gets, as GET /v1/models says it: its search (with beam search, the
        beam and how old words get before it settles them) and its LM (the model's general LM, `Planner.defaulted`),
        if any."""
        plan = self.planner.plan()
        search = self.planner.search_for(None, None, 0, plan)
        adaptation = self.planner.defaulted(plan, search, None)
        lm = adaptation.lm if adaptation is not None else None
        beam = {"beam": self.config.beam, "settle_ms": self.config.settle_ms} if search == "beam" else {}
        return {"search": search, **beam, **({"lm": lm} if lm else {})}

    @property
    def translate_languages(self) -> list[str]:
        return self.planner.translate_languages

    @property
    def auto_languages(self) -> list[str]:
        return self.planner.auto_languages

    @property
    def open_streams(self) -> int:
        return self.batcher.open_streams

    def plan(
        self, language: str | None = None, translate: Sequence[str] = (), languages: Sequence[str] = ()
    ) -> HeadPlan:
        """See `Planner.plan`."""
        return self.planner.plan(language, translate, languages)

    def search_for(
        self, search: str | None, adaptation: Adaptation | None, alternatives: int = 0, plan: HeadPlan | None = None
    ) -> str:
        """See `Planner.search_for`."""
        return self.planner.search_for(search, adaptation, alternatives, plan)

    def defaulted(self, plan: HeadPlan, search: str, adaptation: Adaptation | None) -> Adaptation | None:
        """See `Planner.defaulted`: the adaptation a stream runs with, the model's general LM added where it gets it."""
        return self.planner.defaulted(plan, search, adaptation)

    def check_redaction(self, plan: HeadPlan, asked: bool = True) -> None:
        """Raises UnsupportedOptionError where a stream of `plan` that asked for redaction (`asked`), or any stream
        of an engine that redacts every stream, could send words redaction cannot see: redaction knows English digit
        words, so it takes English captions without translations."""
        if not (asked or self.config.redact):
            return
        languages = {self.model.heads[h].head.language for h in plan.captions}
        if plan.translate or languages - {"en"}:
            what = "translations" if plan.translate else f"captions in {sorted(languages - {'en'})}"
            raise UnsupportedOptionError(f"redaction covers English captions, not {what}")

    def adapt(self, plan: HeadPlan, adaptation: Adaptation) -> HeadAdaptation:
        """See `Planner.adapt`."""
        return self.planner.adapt(plan, adaptation)

    # ---- Streams ----

    async def start(self) -> None:
        """Starts the loop on the running event loop."""
        await self.batcher.start()

    async def close(self) -> None:
        """Stops the loop; open streams are closed."""
        await self.batcher.close()

    def open_stream(
        self,
        sample_rate: int,
        search: str | None = None,
        partials: bool = True,
        head: int | HeadPlan = 0,
        adaptation: Adaptation | None = None,
        punctuate: bool = True,
        talkers: bool = False,
        endpoint: EndpointConfig | None = None,
        alternatives: int = 0,
        numerals: bool = True,
        redact: bool = False,
        profanity_filter: bool = False,
        respell_from: bool = False,
    ) -> Stream:
        """A new stream of audio at `sample_rate` (8-192 kHz), captioned by head `head` or run as `plan(...)` says,
        with the hotwords and LM of `adaptation` (which make beam search the default); its finals carry `display`
        when `punctuate` and the bundle has a punctuation model of the caption's language, and `talkers` when
        `talkers` (the bundle must have a talker model); `endpoint`: its own endpoint rules (None: the engine's);
        `alternatives`: how many of each segment's likeliest transcripts its finals list (beam search); `numerals`:
        whether `display` writes number phrases in digits (server/itn.py); `redact` (or the engine's `redact`): spoken
        digit strings replaced by "[redacted]" (server/redact.py; English captions without translations);
        `profanity_filter` (or the engine's): listed words masked, "d***" (server/profanity.py); `respell_from`:
        partials say where the final may still respell a word (`Partial.respell_from`, for a protocol that spells
        settled words: a stream with hotwords then takes about a fifth more CPU).

        Raises:
            ValueError: an unknown search or head, a rate out of range; InvalidOptionError and
                UnsupportedOptionError (both ValueErrors): see `Planner.adapt`.
            RuntimeError: the engine is not running.
        """
        if not self.batcher.running:
            raise RuntimeError(f"engine {self.name} is not running")
        plan = head if isinstance(head, HeadPlan) else HeadPlan(head, multilingual=self.multilingual)
        search = self.planner.search_for(search, adaptation, alternatives, plan)
        adaptation = self.planner.defaulted(plan, search, adaptation)
        self.recognizer.check(plan, search)
        active = adaptation is not None and adaptation.active
        server = search == "beam" and bool(self.config.server_hotwords)  # the server's hotwords reach beam streams
        adapted = self.planner.adapt(plan, adaptation or Adaptation()) if active or server else None
        frontend = Frontend(self.model.spec, sample_rate, self.config.fbank)
        redact = redact or self.config.redact
        self.check_redaction(plan, redact)
        phrases = [p for p, _ in (adaptation.hotwords if adaptation else ())] + [
            p for p, _ in self.config.server_hotwords
        ]
        written = written_forms(phrases) if adapted is not None else None  # as their users spell them, in display
        masking = profanity_filter or self.config.profanity_filter
        stream = self.recognizer.open(
            plan,
            search,
            partials,
            adapted,
            punctuate=punctuate,
            talkers=talkers,
            endpoint=endpoint,
            alternatives=alternatives,
            numerals=numerals,
            redact=redact,
            written=written,
            profanity=self._profanity if masking else None,
            respell_from=respell_from,
        )
        return self.batcher.open(stream, frontend)

    def set_context(self, stream: Stream | StreamGroup, plan: HeadPlan, adaptation: Adaptation) -> None:
        """A context message: `adaptation` (the stream's LM and respelling, with the new hotwords) replaces the
        hotwords of `stream` (opened with `plan`, on this engine; every channel of a multichannel one), in its place
        among the audio sent so far: from the end of the segment open there on, or at once if that segment has no
        words yet (`StreamRecognizer.set_context`); the server's hotwords stay. The stream is searched with beam
        search from then on, with the model's general LM once it has no hotwords left (`Planner.defaulted`).

        Raises:
            InvalidOptionError, UnsupportedOptionError: see `Planner.adapt`.
        """
        server = bool(self.config.server_hotwords)
        adaptation = self.planner.defaulted(plan, "beam", adaptation) or adaptation  # no hotwords left: the general LM
        adapted = self.planner.adapt(plan, adaptation) if adaptation.active or server else None
        phrases = [p for p, _ in adaptation.hotwords] + [p for p, _ in self.config.server_hotwords]
        written = written_forms(phrases) if adapted is not None else None
        for s in stream.streams if isinstance(stream, StreamGroup) else [stream]:
            s.set_context((adapted, written))  # in its place among the audio (server/batcher.py)

    async def recognize(
        self,
        samples: np.ndarray,
        sample_rate: int,
        search: str | None = None,
        head: int | HeadPlan = 0,
        adaptation: Adaptation | None = None,
        punctuate: bool = True,
        talkers: bool = False,
        endpoint: EndpointConfig | None = None,
        alternatives: int = 0,
        numerals: bool = True,
        redact: bool = False,
        profanity_filter: bool = False,
        progress: Callable[[float], None] | None = None,
        on_final: Callable[[Final], None] | None = None,
    ) -> list[Final]:
        """A whole recording through the same loop as the streams: the finals a stream would produce.

        Args:
            samples: float32 `(T_samples,)` in [-1, 1].
            sample_rate: their rate, 8-192 kHz.
            search: "greedy" or "beam" (None: the default).
            head: the head to search with, or the plan of heads.
            adaptation: hotwords and an LM to fuse.
            punctuate: finals carry `display` where the bundle can write it.
            talkers: finals carry `talkers` (the bundle must have a talker model).
            endpoint: the recording's own endpoint rules (None: the engine's).
            alternatives: how many of each segment's likeliest transcripts the finals list (beam search).
            numerals: `display` writes number phrases in digits (server/itn.py).
            redact: spoken digit strings replaced by "[redacted]" (server/redact.py).
            profanity_filter: listed words masked (server/profanity.py).
            progress: called with the seconds of the recording decoded so far, as they are (a chunk at a time).
            on_final: called with each final as it comes, before the whole recording is decoded.

        Raises:
            RuntimeError: the engine failed on it.
        """
        stream = self.open_stream(
            sample_rate,
            search,
            partials=False,
            head=head,
            adaptation=adaptation,
            punctuate=punctuate,
            talkers=talkers,
            endpoint=endpoint,
            alternatives=alternatives,
            numerals=numerals,
            redact=redact,
            profanity_filter=profanity_filter,
        )
        finals: list[Final] = []
        duration, chunk_s, decoded = len(samples) / sample_rate, self.chunk_ms / 1000, 0

        async def collect() -> None:
            nonlocal decoded
            while True:
                update = await stream.next_update()
                if update.error:
                    raise RuntimeError(update.error)
                for r in update.results:
                    if isinstance(r, Final):
                        finals.append(r)
                        if on_final is not None:
                            on_final(r)
                if progress is not None:
                    decoded += len(update.arrived)
                    progress(duration if update.end else min(decoded * chunk_s, duration))
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
