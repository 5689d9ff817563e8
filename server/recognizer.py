"""Synchronous streaming recognition of many streams at once: feature chunks in, typed results out.

Dimension letters: B streams in a batch, T fbank frames one step reads (the window), F fbank bins, C encoder frames
per chunk, E encoder output width, L languages of the identifier.

    recognizer = Recognizer(StreamingTransducer(bundle), EndpointConfig())
    a, b = recognizer.open(), recognizer.open(search="beam")
    fa, fb = Frontend(recognizer.spec, 16000), Frontend(recognizer.spec, 48000)
    fa.accept(samples_a); fb.accept(samples_b)
    results = recognizer.step([(a, fa.pop_chunk()), (b, fb.pop_chunk())])   # [[Partial | Final, ...], [...]]
    ...
    finals = recognizer.finish(a, fa.seconds_received)                      # after the flush chunks

No asyncio and no wire format here: server/batcher.py runs `step` in a worker thread for the streams that have a
chunk ready, and the sessions (server/session.py, server/vosk.py) turn the results into their protocol's messages.

One step runs the encoder once on the stacked chunks and states of its streams, then every (head, search) pair once
for all the streams that need it (greedy and modified beam search separately), then each stream's endpointing. A
stream's state (`StreamRecognizer`) holds its encoder cache, one search per head its plan runs, its language
identification, its endpointer and its segments; batching never changes a result (tests/test_isolation.py).

A stream's text lives in segments: an endpoint (server/endpoint.py) closes the open segment with a `Final` and starts
a new one with a fresh search state; the encoder state carries on. A `Partial` says the open segment's text changed.
Finals are never empty at endpoints; the end of the stream (`finish`) closes the open segment unless it is empty and
holds no audio.

A stream runs the heads its `HeadPlan` names on the one encoder output (multilingual "sm2" bundles): a captioning
head and one head per requested translation, each with its own search, all reset at the caption's endpoints; results
carry `translations` {language: text} for the same segment. With "auto" the captioning head is the one of the language
the streaming identifier (server/lid.py) currently finds most likely among the plan's candidates; when that decision
changes, the new head decodes the open segment's encoder output kept so far (at most `MAX_REDECODE_S` seconds) and
captions from then on, so the caption is the new head's whole segment, not a splice.

A multi-talker head (head post_processing "tsot") emits `<cc>` where the talker changes: its results' `text` drops
the marks, `speakers` holds the text of each virtual channel (server/tsot.py), and each word carries its channel.

Hotwords and LM fusion (server/plan.py's `HeadAdaptation`) live in the stream's beam search states, which the
endpoint resets rebuild with them, so each segment starts at the graph's root and the LM's sentence start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

from parley.contract import BEAM, CHANNEL_CHANGE, WORD_START
from server.bundle import EncoderSpec
from server.endpoint import EndpointConfig, EndpointDetector
from server.frontend import Chunk, compute_features
from server.itn import rewrite_text
from server.lid import LidState
from server.plan import HeadAdaptation, HeadPlan
from server.profanity import ProfanityFilter
from server.protocol import SEARCH_METHODS
from server.punctuation import Punctuator
from server.redact import REDACTED, redact_text, redacted_runs, stable_words
from server.respell import AcousticCheck, Respeller
from server.talkers import MAX_KEPT_S, TalkerModel, TalkerTracker, channel_masks
from server.transducer import (
    BeamState,
    EncoderState,
    GreedyState,
    HeadRunner,
    Hypothesis,
    StreamingTransducer,
    greedy_search,
    modified_beam_search,
    stack_states,
    unstack_states,
    word_confidence,
)
from server.tsot import split_channels, strip_channel_changes
from server.written import write_phrases

# An "auto" stream keeps this much of its open segment's encoder output, for a head that takes over the caption.
MAX_REDECODE_S = 30.0


# ---- Results ----


@dataclass(frozen=True)
class Word:
    """One recognized word.

    Attributes:
        text: the word.
        start: its start, seconds from the stream's start.
        end: its end (after its last token's frame).
        conf: `word_confidence` of its tokens' probabilities, in [0, 1].
        speaker: multi-talker heads: the virtual channel it was emitted on; None otherwise.
        talker: finals of streams that track talkers: the stream-wide number of who said it (server/talkers.py);
            None otherwise, or where the channel had too little speech to tell.
    """

    text: str
    start: float
    end: float
    conf: float
    speaker: int | None = None
    talker: int | None = None


@dataclass(frozen=True)
class Result:
    """What a stream's recognition says about one segment (see `Partial` and `Final`).

    Attributes:
        segment: the segment's index, counting from 0 in each stream.
        text: the captioning head's text (multi-talker: every channel's words in emission order, no `<cc>`).
        start: the segment's start, seconds from the stream's start (the previous final's end).
        end: how far the segment is decoded (a final: where the endpoint fired, or the end of the audio).
        words: the text's words with times.
        language: multilingual bundles: the captioning head's language; None otherwise.
        translations: multilingual streams that asked for translations: {language: text} of the same segment.
        speakers: multi-talker heads: the text of each virtual channel, by channel; None otherwise.
    """

    segment: int
    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()
    language: str | None = None
    translations: Mapping[str, str] | None = None
    speakers: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Partial(Result):
    """The open segment's text changed; it may change again.

    Attributes:
        stable: how many leading characters of `text` will not change (whole words whose every token every
            hypothesis of the search shares, and a token after them); None where that cannot be promised (hotword
            respelling, automatic language detection, multi-talker heads).
        respell_from: a stream with hotword respelling: where (seconds from the stream's start) the first word
            begins that the segment's final may still respell where the partial did not (a run that sounds enough
            like a hotword, which the finals' acoustic check accepts or cannot score yet); None if there is none.
            Not sent: what settles words (OpenAI Realtime's deltas, server/realtime.py) stops there.
    """

    stable: int | None = None
    respell_from: float | None = None


@dataclass(frozen=True)
class Final(Result):
    """A segment closed (an endpoint, or the end of the stream); its text will not change again.

    Attributes:
        display: the text punctuated and cased by the bundle's model of its language (server/punctuation.py), for
            streams that ask for it; None otherwise. `text` and `words` stay as recognized.
        talkers: streams that track talkers: the stream-wide talker number of each channel (one for single-talker
            heads, two for multi-talker ones; None where a channel had too little speech); None otherwise.
        alternatives: streams that asked for them (beam search): the segment's most likely distinct transcripts that
            the search kept, the likeliest first, each with its share of their probabilities (text, share in [0, 1]);
            None otherwise.
    """

    display: str | None = None
    talkers: tuple[int | None, ...] | None = None
    alternatives: tuple[tuple[str, float], ...] | None = None


_R = TypeVar("_R", bound=Result)


# ---- One stream ----


@dataclass
class _Text:
    """What the heads of a stream say about the open segment."""

    hyp: Hypothesis  # the captioning head's
    text: str  # the captioning head's, `<cc>` marks included
    translations: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.text and not any(self.translations.values())


class StreamRecognizer:
    """One stream's recognition state: encoder cache, searches (one per head the plan runs), language identification,
    endpointing and segments. Made by `Recognizer.open`; touched by one `Recognizer.step` at a time.

    Args:
        model: the bundle's encoder and heads.
        plan: the heads to run.
        search: "greedy" or "beam".
        partials: whether to produce `Partial`s.
        endpoint: the endpoint rules.
        adaptation: hotwords and LM fusion of each head that has them (beam search only).
        punctuators: the models that write finals' `display`, by language (none: finals have no `display`).
        talkers: the model that numbers talkers across segments (None: finals carry no `talkers`).
        alternatives: how many of the segment's likeliest transcripts finals list (beam search; 0: none).
        numerals: whether `display` writes number phrases in digits ("$5.50", "10:30 a.m."; server/itn.py).
        redact: whether runs of spoken digits are replaced by "[redacted]" in everything the stream is sent
            (server/redact.py).
        written: hotwords as their users wrote them, which `display` spells so (server/written.py).
        profanity: masks listed words in everything the stream is sent (server/profanity.py); None: nothing masked.
        beam: the hypotheses its beam search keeps.
        settle_ms: its beam search settles the best hypothesis's tokens this old (server/transducer.py
            `settle_beam`; 0: never); not with alternatives, which are the beam's own.
        respell_from: whether its partials with hotword respelling carry `Partial.respell_from`.
    """

    def __init__(
        self,
        model: StreamingTransducer,
        plan: HeadPlan,
        search: str,
        partials: bool,
        endpoint: EndpointConfig,
        adaptation: HeadAdaptation | None = None,
        punctuators: Mapping[str, Punctuator] | None = None,
        talkers: TalkerModel | None = None,
        alternatives: int = 0,
        numerals: bool = True,
        redact: bool = False,
        written: Mapping[tuple[str, ...], tuple[str, ...]] | None = None,
        profanity: ProfanityFilter | None = None,
        beam: int = BEAM,
        settle_ms: float = 0.0,
        respell_from: bool = False,
    ) -> None:
        spec = model.spec
        self.respell_from = respell_from
        self.beam = beam
        self.alternatives = alternatives if search == "beam" else 0
        self.punctuators = punctuators or {}
        self.numerals = numerals
        self.redact = redact
        self.written = written or {}
        self.profanity = profanity
        self.model = model
        self.plan = plan
        self.search = search
        self.adaptation = adaptation or {}
        self.partials = partials
        # Seconds per encoder frame: the bundle's fbank shift times its subsampling (parley.contract's 40 ms for
        # Parley's own bundles; imported ones say theirs).
        self.frame_s = spec.features.frame_shift_ms / 1000.0 * spec.subsampling
        self.settle = 0 if self.alternatives else max(0, round(settle_ms / 1000.0 / self.frame_s))  # encoder frames
        self.encoder: EncoderState = model.init_state(1, plan.spoken)
        self.detector = EndpointDetector(endpoint, self.frame_s)
        self.caption = plan.caption if plan.caption is not None else plan.candidates[0][1]
        self.lid: LidState | None = None
        if plan.auto:
            assert model.lid is not None, "an auto plan needs a language identifier"
            self.lid = LidState.new(model.lid.num_languages)
        self._set_keeps_encoder_output()
        # A context message's hotwords (`set_context`), until they take effect.
        self._context: tuple[HeadAdaptation | None, Mapping[tuple[str, ...], tuple[str, ...]]] | None = None
        self.searchers: dict[int, GreedyState | BeamState] = {}
        self._reset_searches(0)
        self.segment_enc: list[np.ndarray] = []  # the open segment's encoder output chunks (C, E), if it keeps them
        self.check_memo: dict[tuple, tuple[float, int]] = {}  # the open segment's acoustic check scores (`_check`)
        self.segment = 0
        self.segment_start_frame = 0  # where the open segment began (the previous final's end)
        self.last_sent = self._empty()
        self.audio_s = 0.0  # seconds of audio received: no time in a result goes past it
        # Finalize (`cut`): the seconds of silence the frontend added so far, which the stream's clock leaves out, and
        # the time of the last cut, which no later result goes before (frames of the added silence map before it).
        self.silence_s = 0.0
        self.cut_s = 0.0
        self._decoded: dict[int, tuple[tuple[int, ...], str]] = {}  # head -> its last tokens and their text
        # Talkers: the stream's tracker, its open segment's fbank frames (the new ones of each chunk, the last
        # `MAX_KEPT_S` seconds), the stream's frame index of the first one kept, and how many frames it has read.
        self.tracker = TalkerTracker(talkers) if talkers is not None else None
        self.segment_frames: list[np.ndarray] = []
        self.frames_first = 0
        self.frames_read = 0
        self._frames_kept = 0  # frames in segment_frames

    def _set_keeps_encoder_output(self) -> None:
        # Whether the stream keeps its open segment's encoder output (`segment_enc`): "auto" streams, for a head that
        # takes over the caption, and streams whose finals check hotword respellings on it (server/respell.py).
        spellers = [a[2] for a in self.adaptation.values() if a[2] is not None]
        self.keeps_encoder_output = self.lid is not None or (
            not self.tsot and any(s.verify_threshold < s.threshold for s in spellers)
        )

    # ---- Context: hotwords that change during the stream ----

    def set_context(
        self, adaptation: HeadAdaptation | None, written: Mapping[tuple[str, ...], tuple[str, ...]] | None = None
    ) -> None:
        """New hotwords for the stream (a context message, in its place among the audio: `Recognizer.context`):
        `adaptation` (`Planner.adapt`; None: none) and their `written` forms replace the stream's from the end of the
        open segment on, or from the next chunk while the open segment has no words yet. The search becomes beam
        search. A later call before they take effect replaces them."""
        self._context = (adaptation, written or {})

    def _take_context(self) -> bool:
        """Takes a pending context: True when there was one."""
        context, self._context = self._context, None
        if context is None:
            return False
        adaptation, self.written = context
        self.adaptation = adaptation or {}
        self.search = "beam"
        self._set_keeps_encoder_output()
        return True

    def _before_chunk(self) -> None:
        """A pending context takes effect now if the open segment has no words yet (a fresh search from here)."""
        empty = self._context is not None and all(not self._hyp(h).tokens for h in self.searchers)
        if empty and self._take_context():
            self._reset_searches(self.detector.frames_total)

    @property
    def runner(self) -> HeadRunner:
        """The captioning head."""
        return self.model.heads[self.caption]

    @property
    def tsot(self) -> bool:
        """The captioning head is multi-talker: its text carries <cc> channel changes (server/tsot.py)."""
        return self.runner.head.post_processing == "tsot"

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
            hotwords, fusion, _ = self.adaptation.get(head, (None, None, None))
            s = BeamState(hotwords=hotwords, fusion=fusion, beam=self.beam, settle=self.settle)
        s.frames_done = frames_done
        return s

    def _reset_searches(self, frames_done: int) -> None:
        self.searchers = {h: self._new_search(h, frames_done) for h in self._heads()}

    def _hyp(self, head: int) -> Hypothesis:
        s = self.searchers[head]
        return s.hyp if isinstance(s, GreedyState) else s.best

    def _t(self, frame: int) -> float:
        """Encoder frame -> seconds of the stream's audio (the silence added by finalizes taken out)."""
        return min(max(frame * self.frame_s - self.silence_s, self.cut_s), self.audio_s)

    def _accept_lid(self, logits: np.ndarray) -> None:
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

    def _keep_encoder_output(self, enc: np.ndarray) -> None:
        """The open segment's encoder output `(C, E)`, kept (the last `MAX_REDECODE_S` seconds): see
        `keeps_encoder_output`."""
        self.segment_enc.append(enc.copy())  # a view would keep the whole batch's output alive
        limit = MAX_REDECODE_S / self.frame_s
        while sum(len(e) for e in self.segment_enc) - len(self.segment_enc[0]) >= limit:
            self.segment_enc.pop(0)

    def _keep_frames(self, x: np.ndarray, new: int) -> None:
        """The first `new` frames of a chunk's window `(T, F)`: the ones no earlier chunk brought."""
        self.segment_frames.append(x[:new].copy())
        self.frames_read += new
        self._frames_kept += new
        while self._frames_kept - len(self.segment_frames[0]) >= MAX_KEPT_S * 100:
            dropped = len(self.segment_frames.pop(0))
            self.frames_first += dropped
            self._frames_kept -= dropped

    def _drop_frames(self) -> None:
        """A segment closed: its frames go."""
        self.segment_frames = []
        self.frames_first = self.frames_read
        self._frames_kept = 0

    def _with_talkers(self, words: tuple[Word, ...]) -> tuple[tuple[Word, ...], tuple[int | None, ...]]:
        """A final's words with their talkers, and the talker of each channel (see `Final.talkers`)."""
        assert self.tracker is not None
        channels = 2 if self.tsot else 1
        spans: list[list[tuple[float, float]]] = [[] for _ in range(channels)]
        for w in words:  # on the frames' clock, which counts the silence of finalizes
            spans[w.speaker or 0].append((w.start + self.silence_s, w.end + self.silence_s))
        frames = np.concatenate(self.segment_frames) if self.segment_frames else np.zeros((0, 0), np.float32)
        masks = channel_masks(len(frames), self.frames_first, spans)
        model = self.tracker.model
        talkers = tuple(self.tracker.assign([model.embed(frames[m]) if m.any() else None for m in masks]))
        return tuple(replace(w, talker=talkers[w.speaker or 0]) for w in words), talkers

    def words(self, hyp: Hypothesis, spans: list[tuple[str, tuple[int, int], int]] | None = None) -> tuple[Word, ...]:
        """The hypothesis's words with times: a word is the pieces from one starting with '▁' to the next; it
        starts at its first token's frame and ends after its last token's frame. Several tokens may come out of one
        frame, so a word starts no earlier than the end of the word before it on its channel (words emitted within one
        frame get that frame's instant): times never overlap, never go backwards, never pass the emitting frame.
        A word's `conf` is `word_confidence` of its tokens' probabilities. `spans`: `_word_spans(hyp)`, if the caller
        has it already."""
        out = []
        ends: dict[int, int] = {}  # channel -> frame where its last word ended
        for text, (i, j), c in self._word_spans(hyp) if spans is None else spans:
            end = hyp.frames[j - 1] + 1
            start = min(max(hyp.frames[i], ends.get(c, 0)), end)
            ends[c] = end
            conf = word_confidence(hyp.probs[i:j])
            out.append(Word(text, self._t(start), self._t(end), conf, c if self.tsot else None))
        return tuple(out)

    def _word_spans(self, hyp: Hypothesis) -> list[tuple[str, tuple[int, int], int]]:
        """Each word of the hypothesis (see `words`) as its text, the range [i, j) of its tokens in `hyp.tokens` and
        its channel (t-SOT heads toggle between channels 0 and 1 at each <cc>; 0 otherwise)."""
        tokens = self.runner.head.tokens
        cc = tokens.index(CHANNEL_CHANGE) if CHANNEL_CHANGE in tokens else None
        groups: list[list[int]] = []  # each word's token ids' indices
        channels: list[int] = []  # of each group
        channel = 0
        new_word = True
        for k, tok in enumerate(hyp.tokens):
            if tok == cc or tok == self.runner.blank_id:
                new_word = True
                if tok == cc:
                    channel = 1 - channel
                continue
            if new_word or tokens[tok].startswith(WORD_START):
                groups.append([])
                channels.append(channel)
                new_word = False
            groups[-1].append(k)
        out = []
        for g, c in zip(groups, channels, strict=True):
            text = self.runner.head.sp.decode([hyp.tokens[k] for k in g]).strip()
            if text:
                out.append((text, (g[0], g[-1] + 1), c))
        return out

    def _text(self) -> _Text:
        hyp = self._hyp(self.caption)
        translations = {lang: self._decode(h, self._hyp(h).tokens) for lang, h in self.plan.translate}
        return _Text(hyp, self._decode(self.caption, hyp.tokens), translations)

    def _stable(self, now: _Text, spans: list[tuple[str, tuple[int, int], int]]) -> int | None:
        """`Partial.stable` of the open segment's text: the characters of its words that end before a token that every
        hypothesis has (greedy search: every word but the last; beam search: those within the beam's common prefix,
        which every later hypothesis extends)."""
        if self.lid is not None or self.tsot or self._speller is not None:
            return None
        s = self.searchers[self.caption]
        tokens = now.hyp.tokens
        shared = len(tokens)
        if isinstance(s, BeamState):
            for h in s.hyps:
                n = min(shared, len(h.tokens))
                shared = next((k for k in range(n) if h.tokens[k] != tokens[k]), n)
        end = 0
        for _, (_, j), _ in spans:
            if j >= shared:
                break
            end = j
        if end == 0:
            return 0
        prefix = self.runner.text(tokens[:end])
        return len(prefix) if now.text.startswith(prefix) else 0

    def _alternatives(self) -> tuple[tuple[str, float], ...]:
        """The caption head's beam, its likeliest `alternatives` distinct transcripts (`BeamState.ranked`) with
        their share of the listed ones' probability."""
        s = self.searchers[self.caption]
        assert isinstance(s, BeamState)
        ranked = s.ranked()[: self.alternatives]
        scores = np.array([score for score, _ in ranked])
        shares = np.exp(scores - np.logaddexp.reduce(scores))
        texts = [self._shown(self.runner.text(h.tokens)) for _, h in ranked]
        return tuple(
            (strip_channel_changes(t) if self.tsot else t, float(p)) for t, p in zip(texts, shares, strict=True)
        )

    def _shown(self, text: str) -> str:
        """`text` as the stream may be sent it: redacted and its profanity masked, if it asked for that."""
        text = redact_text(text) if self.redact else text
        return self.profanity.mask_text(text) if self.profanity is not None else text

    def _decode(self, head: int, tokens: Sequence[int]) -> str:
        """`tokens` of `head` as text; the last decoding is remembered (most chunks add no token to a head)."""
        key = tuple(tokens)
        last = self._decoded.get(head)
        if last is None or last[0] != key:
            last = self._decoded[head] = (key, self.model.heads[head].text(key))
        return last[1]

    def _empty(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return "", tuple((lang, "") for lang, _ in self.plan.translate)

    @property
    def _speller(self) -> Respeller | None:
        """The caption head's hotword respeller (none for multi-talker heads)."""
        speller = self.adaptation.get(self.caption, (None, None, None))[2]
        return None if self.tsot else speller

    def _respelled(
        self, words: tuple[Word, ...], hyp: Hypothesis, spans: list[tuple[str, tuple[int, int], int]], final: bool
    ) -> tuple[Word, ...]:
        """`words` with the runs that sound like one of the caption head's hotwords replaced by it (server/respell.py):
        the new word spans the run's times and keeps its least confidence. A final also takes the runs that sound less
        like one when the transducer hears the hotword there (`AcousticCheck` on the segment's encoder output)."""
        speller = self._speller
        if speller is None or not words:
            return words
        check = self._check(hyp, spans) if final else None
        runs = speller.find([w.text for w in words], [w.conf for w in words], check)
        if not runs:
            return words
        out, i = [], 0
        for r in runs:
            run = words[r.start : r.end]
            out += [*words[i : r.start], Word(r.phrase, run[0].start, run[-1].end, min(w.conf for w in run))]
            i = r.end
        return (*out, *words[i:])

    def _check(self, hyp: Hypothesis, spans: list[tuple[str, tuple[int, int], int]]) -> AcousticCheck | None:
        """The acoustic check of `hyp`'s words (`spans`) on the open segment's kept encoder output, its scores kept
        for the segment (a partial's and the final's agree); None where the stream keeps none."""
        speller = self._speller
        if speller is None or not self.segment_enc:
            return None
        enc = np.concatenate(self.segment_enc)  # (kept, E)
        first = self.detector.frames_total - len(enc)
        tokens = [span for _, span, _ in spans]  # each word's tokens
        return AcousticCheck(
            self.runner, enc, hyp.tokens, hyp.frames, tokens, first, speller.verify_margin, memo=self.check_memo
        )

    def _result(self, kind: type[_R], now: _Text, end_s: float) -> _R:
        """The open segment as `kind`, ending at `end_s`."""
        multilingual = self.plan.multilingual
        spans = self._word_spans(now.hyp)
        words = heard = self.words(now.hyp, spans)
        text = now.text
        respelled = self._respelled(words, now.hyp, spans, kind is Final)
        if respelled is not words:
            words, text = respelled, " ".join(w.text for w in respelled)
        if self.redact:  # before anything is written from the words (server/redact.py)
            words, text = _redacted_words(words), redact_text(text)
        extra: dict = {}
        if kind is Partial and self.respell_from and (speller := self._speller) is not None and heard:
            texts, confs = [w.text for w in heard], [w.conf for w in heard]
            k = speller.first_open(texts, confs, lambda: self._check(now.hyp, spans))
            extra["respell_from"] = heard[k].start if k < len(heard) else None
        if kind is Final and not self.tsot and (p := self.punctuators.get(self.runner.head.language)) is not None:
            extra["display"] = p.punctuate_text(text)
            if self.numerals:
                extra["display"] = rewrite_text(extra["display"], p.language)
            extra["display"] = write_phrases(extra["display"], self.written)
        if kind is Final and self.tracker is not None:
            words, extra["talkers"] = self._with_talkers(words)
        if kind is Final and self.alternatives:
            extra["alternatives"] = self._alternatives()
        if kind is Partial and (stable := self._stable(now, spans)) is not None:
            extra["stable"] = _redacted_stable(now.text, stable, text) if self.redact else stable
        translations = now.translations if multilingual and self.plan.translate else None
        if self.profanity is not None:  # last: it keeps every length, so `stable` holds (server/profanity.py)
            mask = self.profanity.mask_text
            text, words = mask(text), tuple(replace(w, text=mask(w.text)) for w in words)
            if "display" in extra:
                extra["display"] = mask(extra["display"])
            translations = {k: mask(v) for k, v in translations.items()} if translations else translations
        return kind(
            segment=self.segment,
            text=strip_channel_changes(text) if self.tsot else text,
            start=self._t(self.segment_start_frame),
            end=end_s,
            words=words,
            language=self.runner.head.language if multilingual else None,
            translations=translations,
            speakers=tuple(self._shown(" ".join(ws)) for ws in split_channels(now.text)) if self.tsot else None,
            **extra,
        )

    def _after_chunk(self, frames: int, flushing: bool) -> list[Result]:
        """Endpointing and results after the searches decoded `frames` more encoder frames."""
        now = self._text()
        first = self.detector.frames_total
        emitted = np.zeros(frames, dtype=bool)  # (C,)
        for f in now.hyp.frames:
            if first <= f < first + frames:
                emitted[f - first] = True
        results: list[Result] = []
        if self.detector.accept(emitted):
            end = self.detector.frames_total
            if not now.empty:  # no empty finals at endpoints
                results.append(self._result(Final, now, self._t(end)))
                self.segment += 1
                self.segment_start_frame = end
            self._end_segment(end)
            return results
        sent = (self._shown(now.text), tuple(now.translations.items()))  # a partial only when what it shows changed
        if sent != self.last_sent:
            if self.partials and not flushing:
                results.append(self._result(Partial, now, self._t(self.detector.frames_total)))
            self.last_sent = sent
        return results

    def _end_segment(self, end: int) -> None:
        """The open segment closed after encoder frame `end` (its final sent, or none where it was empty): fresh
        searches from there."""
        self.detector.reset()
        self._take_context()  # the hotwords of a context message, from this segment on
        self._reset_searches(end)
        self.segment_enc = []
        self.check_memo = {}
        self._drop_frames()
        self.last_sent = self._empty()

    def _cut(self, audio_s: float, silence_s: float) -> list[Final]:
        """Finalize, after the flush chunks: the open segment's final, always (empty where it holds no words), ending
        at the audio's end; the stream goes on with a new segment, its clock `silence_s` seconds behind the frames'."""
        self.audio_s = audio_s
        final = self._result(Final, self._text(), audio_s)
        self.segment += 1
        self.segment_start_frame = self.detector.frames_total
        self._end_segment(self.segment_start_frame)
        self.silence_s += silence_s
        self.cut_s = audio_s
        return [final]

    def _finish(self, audio_s: float) -> list[Final]:
        """The open segment's final after the flush, unless it is empty and holds no audio."""
        self.audio_s = audio_s
        now = self._text()
        if now.empty and self._t(self.segment_start_frame) >= self.audio_s:
            return []
        final = self._result(Final, now, self.audio_s)  # the audio's end, not the padding's
        self.segment += 1
        return [final]


# ---- Many streams ----


def _redacted_words(words: Sequence[Word]) -> tuple[Word, ...]:
    """`words` with each run of spoken digits replaced by one `REDACTED` word spanning it (its least confidence)."""
    out: list[Word] = []
    i = 0
    for a, b in redacted_runs([w.text for w in words]):
        run = words[a:b]
        out += [*words[i:a], replace(run[0], text=REDACTED, end=run[-1].end, conf=min(w.conf for w in run))]
        i = b
    return (*out, *words[i:]) if out else tuple(words)


def _redacted_stable(text: str, stable: int, shown: str) -> int:
    """A partial's stable characters once redacted: `stable` characters of `text` (whole words) become those of
    the same words redacted, less any digits at their end that more words may still make a redaction of."""
    words = text.split()
    k = stable_words(words, len(text[:stable].split()))
    prefix = redact_text(" ".join(words[:k]))
    return len(prefix) if shown.startswith(prefix) else 0


class Recognizer:
    """One bundle's recognition of many streams, batched; synchronous (callers choose the thread).

    Args:
        model: the bundle's encoder, heads and language identifier.
        endpoint: the endpoint rules of every stream.
        punctuators: the bundle's punctuation-and-casing models, by language (server/punctuation.py).
        beam: the hypotheses every stream's beam search keeps (`parley serve --beam`).
        settle_ms: every beam search settles tokens this old (`parley serve --settle-ms`; `StreamRecognizer`).
    """

    def __init__(
        self,
        model: StreamingTransducer,
        endpoint: EndpointConfig | None = None,
        punctuators: Mapping[str, Punctuator] | None = None,
        talkers: TalkerModel | None = None,
        beam: int = BEAM,
        settle_ms: float = 0.0,
    ) -> None:
        self.beam = beam
        self.settle_ms = settle_ms
        self.punctuators = dict(punctuators or {})
        self.talkers = talkers
        self.model = model
        self.endpoint = endpoint or EndpointConfig()

    @property
    def spec(self) -> EncoderSpec:
        """The encoder's window, shift and frontend settings (what a `Frontend` needs)."""
        return self.model.spec

    def check(self, plan: HeadPlan, search: str) -> None:
        """Whether a stream of `plan` and `search` can run on this bundle.

        Raises:
            ValueError: an unknown search, a head out of range, "auto" without a language identifier.
        """
        if search not in SEARCH_METHODS:
            raise ValueError(f"unknown search {search!r}; use one of {SEARCH_METHODS}")
        for h in [*plan.captions, *(h for _, h in plan.translate)]:
            if h is None or not 0 <= h < len(self.model.heads):
                raise ValueError(f"head {h} out of range: the bundle has {len(self.model.heads)}")
        if plan.auto and self.model.lid is None:
            raise ValueError("an auto plan needs a bundle with a language identifier")

    def open(
        self,
        plan: HeadPlan | None = None,
        search: str = "greedy",
        partials: bool = True,
        adaptation: HeadAdaptation | None = None,
        punctuate: bool = True,
        talkers: bool = False,
        endpoint: EndpointConfig | None = None,
        alternatives: int = 0,
        numerals: bool = True,
        redact: bool = False,
        written: Mapping[tuple[str, ...], tuple[str, ...]] | None = None,
        profanity: ProfanityFilter | None = None,
        respell_from: bool = False,
    ) -> StreamRecognizer:
        """A new stream's state.

        Args:
            plan: the heads to run (None: the first head alone).
            search: "greedy" or "beam".
            partials: whether the stream gets `Partial`s, or finals only.
            adaptation: hotwords and LM fusion per head (`Planner.adapt`; beam search only).
            punctuate: whether finals carry `display` (where the bundle has a model for the caption's language).
            talkers: whether finals carry `talkers` and their words a `talker` (server/talkers.py).
            endpoint: this stream's endpoint rules (None: the recognizer's).
            alternatives: how many of each segment's likeliest transcripts its finals list (beam search only).
            numerals: whether `display` writes number phrases in digits (server/itn.py).
            redact: whether runs of spoken digits are replaced by "[redacted]" (server/redact.py).
            written: hotwords as their users wrote them, for `display` (`server.written.written_forms`).
            profanity: the filter that masks the stream's profanity (None: none is masked; server/profanity.py).
            respell_from: whether partials say where the final may still respell (`Partial.respell_from`).

        Raises:
            ValueError: see `check`; talkers asked of a bundle without a talker model.
        """
        plan = plan or HeadPlan()
        self.check(plan, search)
        if talkers and self.talkers is None:
            raise ValueError("this bundle has no talker model (parley talkers add)")
        punctuators = self.punctuators if punctuate else None
        model = self.talkers if talkers else None
        rules = endpoint or self.endpoint
        return StreamRecognizer(
            self.model,
            plan,
            search,
            partials,
            rules,
            adaptation,
            punctuators,
            model,
            alternatives,
            numerals,
            redact,
            written,
            profanity,
            self.beam,
            self.settle_ms,
            respell_from,
        )

    def step(self, batch: Sequence[tuple[StreamRecognizer, Chunk]]) -> list[list[Result]]:
        """One chunk of each of the streams in `batch` (each stream at most once): the encoder once for all of them,
        the searches, endpointing. Returns each stream's results, in order (often none)."""
        streams = [s for s, _ in batch]
        assert len({id(s) for s in streams}) == len(streams), "a stream's chunks depend on each other: one per step"
        for s, c in batch:
            s.audio_s = c.audio_s
            s._before_chunk()
        compute_features([c for _, c in batch])  # the fbank of the whole batch in one call
        x = np.stack([c.x for _, c in batch])  # (B, T, F)
        enc, state = self.model.encode(x, stack_states([s.encoder for s in streams]))  # enc (B, C, E)
        for s, new in zip(streams, unstack_states(state), strict=True):
            s.encoder = new
        auto = [i for i, s in enumerate(streams) if s.lid is not None]
        if auto:
            assert self.model.lid is not None
            logits = self.model.lid.frame_logits(enc[auto])  # (b, C, L)
            for k, i in enumerate(auto):
                streams[i]._accept_lid(logits[k])
        # Every (head, search) pair runs once for all the streams that need it, whatever role it has for them.
        groups: dict[tuple[int, str], list[tuple[int, GreedyState | BeamState]]] = {}
        for i, s in enumerate(streams):
            for head, searcher in s.searchers.items():
                groups.setdefault((head, s.search), []).append((i, searcher))
        for (head, search), members in groups.items():
            runner = self.model.heads[head]
            rows = [i for i, _ in members]
            states = [st for _, st in members]
            if search == "greedy":
                greedy_search(runner, enc[rows], states)  # type: ignore[arg-type]
            else:
                modified_beam_search(runner, enc[rows], states)  # type: ignore[arg-type]
        for i, s in enumerate(streams):
            if s.keeps_encoder_output:
                s._keep_encoder_output(enc[i])
            if s.tracker is not None:
                s._keep_frames(x[i], self.model.spec.shift)
        C = enc.shape[1]
        return [s._after_chunk(C, c.flush) for s, c in batch]

    def context(
        self,
        stream: StreamRecognizer,
        context: tuple[HeadAdaptation | None, Mapping[tuple[str, ...], tuple[str, ...]] | None],
    ) -> None:
        """A context message in its place among the stream's audio: (adaptation, written) replace the stream's
        hotwords (`StreamRecognizer.set_context`)."""
        stream.set_context(*context)

    def cut(self, stream: StreamRecognizer, audio_s: float, silence_s: float) -> list[Final]:
        """Finalize a stream's open segment, after the flush chunks of `Frontend.flush`: its final (empty where the
        segment holds no words: the client's finalize is always answered); the stream goes on.

        Args:
            stream: the stream.
            audio_s: seconds of audio it has received (the final ends there).
            silence_s: the seconds of silence `Frontend.flush` added, left out of every later time.
        """
        return stream._cut(audio_s, silence_s)

    def finish(self, stream: StreamRecognizer, audio_s: float) -> list[Final]:
        """The end of a stream, after its last (flush) chunks: the open segment's final, unless it is empty and holds
        no audio.

        Args:
            stream: the stream.
            audio_s: seconds of audio it received in all (the final ends there, not at the tail padding's end).
        """
        return stream._finish(audio_s)
