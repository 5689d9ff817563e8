"""Streaming transducer recognition on onnxruntime, many streams at once: encoder steps and transducer search.

Dimension letters: N streams, T fbank frames one step reads (the window), F fbank bins, C encoder frames per chunk,
L layers, K cached encoder frames, D encoder dim, J joiner dim, E encoder output width (J, projected, for a one-head
bundle; D for a multi-head one, whose joiners project it), V vocabulary, H hypotheses.

    model = StreamingTransducer(load_bundle("bundles/en-small"))
    states = [model.init_state(1) for _ in streams]              # one per stream, kept by its session
    searches = [GreedyState.new(model.heads[0]) for _ in streams]
    batch = stack_states([states[i] for i in ready])             # the streams that have a chunk now
    enc, batch = model.encode(x, batch)                          # x (N, T, F) -> enc (N, C, E)
    greedy_search(model.heads[0], enc, [searches[i] for i in ready])
    for i, s in zip(ready, unstack_states(batch)): states[i] = s

    for live, enc in model.encode_streams(feats):                # whole fbank sequences, batched step by step
        greedy_search(model.heads[0], enc, [searches[i] for i in live])

Each step reads `spec.window` fbank frames and advances `spec.shift` (T = shift + lookahead). The search state of a
stream (its tokens and decoder context) lives in a `GreedyState` or `BeamState` and carries over from chunk to
chunk. The algorithms are models/nn/search.py's, checked against them in tests/test_export.py: greedy emits up to
`max_symbols_per_frame` tokens per frame (sherpa-onnx's greedy search emits one and reads <unk> as blank); modified
beam search emits at most one per frame per hypothesis and merges equal token sequences. `transcribe` runs a whole
waveform through the fbank frontend chunk by chunk.

A `BeamState` may carry a stream's adaptation, which modified beam search adds to every non-blank emission before it
chooses: the bonus of its hotwords' `ContextGraph` (server/biasing.py), and shallow fusion with an external LM with
internal-LM estimation (`LmFusion`):

    score(v) = log P_transducer(v) + lm_scale * log P_LM(v | tokens)
               - ilm_scale * log P_ILM(v | tokens) - lodr_scale * log P_source(v | tokens)

where P_ILM is the transducer's own idea of the next token without acoustics: the joiner on the prediction network's
output and a zero encoder output (the encoder's contribution removed), renormalized over the non-blank tokens; and
P_source an LM of the transducer's training transcripts (the bundle's source LM): a bigram gives LODR (low-order
density ratio), one of the domain LM's order the density-ratio method.

Hypotheses of equal tokens have equal LM histories, but not always equal hotword-graph nodes: with the graph's
acoustic floor, the frame a token was emitted at decides whether it continued a phrase (its bonus pending) or left the
graph. What the graph adds from then on depends on the node alone, so a stream with hotwords merges hypotheses of
equal tokens and equal node only (exact: merging on the tokens alone would let a later failed match take back a bonus
from the share of the sum that never got it), and `BeamState.best` adds up those of equal tokens once their pending
bonuses are taken back, when their nodes no longer matter. A stream without hotwords merges on the tokens.

A `BeamState` with `settle` frames settles its beam after every chunk (`settle_beam`): the best hypothesis's tokens
emitted at least `settle` frames before the chunk's end become every hypothesis's, those that disagree are dropped.
Beam search otherwise keeps a word open as long as any of its hypotheses spells it otherwise, which with an LM fused
can be seconds; settling bounds how long a partial's words may still change (their `stable` prefix,
server/recognizer.py) at the cost of what a later frame could have corrected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from parley.contract import BEAM, CHANNEL_CHANGE, complete_steps, tail_padding_samples
from parley.features import StreamingFbank
from server.biasing import ContextGraph
from server.bundle import Bundle, EncoderSpec, Head
from server.encoders import EncoderState, init_state, stack_states, unstack_states
from server.lid import LanguageIdentifier
from server.lm import NgramLM
from server.lm_rnn import RnnLM

__all__ = ["EncoderState", "stack_states", "unstack_states"]  # the encoder state lives in server/encoders.py


# Decoder contexts a head remembers the outputs of (`HeadRunner.decoder_rows`): beam search reuses the few of its
# live hypotheses frame after frame; en-open meets about 4,000 distinct ones in 100 test utterances, and 4,096 of
# them hold 13 MB (a 320-wide decoder row and a 500-token internal-LM row each), emptied when full.
CONTEXT_CACHE = 4096


@dataclass
class Hypothesis:
    tokens: list[int] = field(default_factory=list)  # emitted token ids (no blanks)
    frames: list[int] = field(default_factory=list)  # encoder frame (from the stream's start) of each token
    log_prob: float = 0.0
    # The joiner's softmax probability of each emitted token where it was emitted (word confidences come from them).
    probs: list[float] = field(default_factory=list)
    node: int = ContextGraph.ROOT  # the hotword graph's node after these tokens (beam search with hotwords)


class HeadRunner:
    """One head's prediction network and joiner on onnxruntime, and its tokens-to-text."""

    def __init__(self, head: Head) -> None:
        self.head = head
        self.blank_id = head.blank_id
        self.blank_penalty = head.blank_penalty
        self.max_symbols_per_frame = head.max_symbols_per_frame
        self.context_size = head.context_size
        self.start_context = list(head.start_context)  # the decoder context before the first token
        self._cc = head.tokens.index(CHANNEL_CHANGE) if CHANNEL_CHANGE in head.tokens else None

    def decoder(self, y: np.ndarray) -> np.ndarray:
        """Token contexts `(N, context_size)` int64 -> projected decoder output `(N, J)`."""
        return self.head.decoder.run(None, {"y": y.astype(np.int64, copy=False)})[0]

    def decoder_rows(self, contexts: Sequence[tuple[int, ...]]) -> np.ndarray:
        """`decoder` of each context `(H, J)`: a context's output never changes, so each is computed once, in one run
        for those not seen before, and remembered (up to `CONTEXT_CACHE` contexts a head; beam search asks for the
        same few every frame)."""
        return self._rows("_dec_cache", contexts, lambda new: self.decoder(self._array(new)))

    def internal_lm_rows(self, contexts: Sequence[tuple[int, ...]]) -> np.ndarray:
        """`internal_lm` after each context `(H, V)`, remembered as `decoder_rows` is."""
        return self._rows("_ilm_cache", contexts, lambda new: self.internal_lm(self.decoder_rows(new)))

    def _array(self, contexts: Sequence[tuple[int, ...]]) -> np.ndarray:
        return np.array(contexts, dtype=np.int64).reshape(len(contexts), self.context_size)

    def _rows(
        self,
        name: str,
        contexts: Sequence[tuple[int, ...]],
        compute: Callable[[list[tuple[int, ...]]], np.ndarray],
    ) -> np.ndarray:
        """The rows of `contexts` from the cache `name` (made on first use: test heads skip `__init__`), `compute`
        run once on the contexts it lacks."""
        cache: dict[tuple[int, ...], np.ndarray] = self.__dict__.setdefault(name, {})
        rows: dict[tuple[int, ...], np.ndarray | None] = {}
        missing = []
        for c in contexts:
            if c not in rows:
                rows[c] = r = cache.get(c)
                if r is None:
                    missing.append(c)
        if missing:
            new = compute(missing)
            if len(cache) + len(missing) > CONTEXT_CACHE:
                cache.clear()  # another thread's lookups already hold their rows
            for c, r in zip(missing, new, strict=True):
                rows[c] = cache[c] = r
        return np.stack([rows[c] for c in contexts])

    def joiner(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        """Encoder `(N, E)` and projected decoder `(N, J)` outputs -> logits `(N, V)`, the bundle's blank penalty
        already subtracted from the blank's (what both searches decide on, as sherpa-onnx's `blank_penalty`)."""
        logits = self.head.joiner.run(None, {"encoder_out": encoder_out, "decoder_out": decoder_out})[0]
        if self.blank_penalty:
            logits[:, self.blank_id] -= self.blank_penalty
        return logits

    def internal_lm(self, decoder_out: np.ndarray) -> np.ndarray:
        """The internal LM's log-probabilities `(N, V)` after each projected decoder output `(N, J)`: the joiner with a
        zero encoder output, log-softmax over the non-blank tokens; the blank's column is 0 (it is never scored)."""
        E = next(i.shape[-1] for i in self.head.joiner.get_inputs() if i.name == "encoder_out")
        zeros = np.zeros((decoder_out.shape[0], E), dtype=np.float32)
        logits = self.head.joiner.run(None, {"encoder_out": zeros, "decoder_out": decoder_out})[0]
        logits[:, self.blank_id] = -np.inf
        out = _log_softmax(logits)
        out[:, self.blank_id] = 0.0
        return out

    def text(self, tokens: Sequence[int]) -> str:
        """Detokenized text: blanks dropped, channel changes written as " <cc> "."""
        parts: list[list[int]] = [[]]
        for t in tokens:
            if t == self._cc:
                parts.append([])
            elif t != self.blank_id:
                parts[-1].append(int(t))
        return f" {CHANNEL_CHANGE} ".join(self.head.sp.decode(p) for p in parts).strip()


class StreamingTransducer:
    """The bundle's encoder step, its heads and its language identifier (if any); no per-stream state inside (it is
    passed in and handed back)."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.spec: EncoderSpec = bundle.spec
        self.heads = [HeadRunner(h) for h in bundle.heads]
        self.lid = LanguageIdentifier(bundle.lid) if bundle.lid is not None else None

    def head_index(self, language: str) -> int | None:
        """The head that writes `language`, or None."""
        return next((i for i, h in enumerate(self.heads) if h.head.language == language), None)

    def language_mask(self, languages: Sequence[str] = ()) -> np.ndarray | None:
        """A CMM encoder's `(Lang,)` float32 selection of `languages` (empty: all); None for another encoder.

        Raises:
            ValueError: a language the encoder has no expert for.
        """
        cmm = self.spec.cmm_languages
        if not cmm:
            return None
        if bad := [x for x in languages if x not in cmm]:
            raise ValueError(f"no encoder experts for {bad}; the encoder has {list(cmm)}")
        return np.array([1.0 if not languages or x in languages else 0.0 for x in cmm], dtype=np.float32)

    def init_state(self, n: int = 1, languages: Sequence[str] = ()) -> EncoderState:
        """The zero state of `n` new streams; a CMM encoder's streams select `languages` (empty: all)."""
        return init_state(self.spec.states, n, self.language_mask(languages))

    def encode(self, x: np.ndarray, state: EncoderState) -> tuple[np.ndarray, EncoderState]:
        """One step for N streams.

        Args:
            x: `(N, T, F)` float32 fbank frames, T = `spec.window`.
            state: the streams' stacked state.

        Returns:
            encoder_out `(N, C, E)` (what the heads' joiners take) and the new state.
        """
        assert x.shape[0] == state.batch and x.shape[1] == self.spec.window, (x.shape, state.batch, self.spec.window)
        feeds = {"x": x.astype(np.float32, copy=False)}
        feeds.update((s.input, t) for s, t in zip(state.specs, state.tensors, strict=True))
        if self.spec.feeds_processed_lens:
            feeds["processed_lens"] = state.processed
        mask = state.language_mask
        if self.spec.cmm_languages:
            assert mask is not None and mask.shape == (state.batch, len(self.spec.cmm_languages)), "no language_mask"
            feeds["language_mask"] = mask
        out, *tensors = self.bundle.encoder.run(["encoder_out", *(s.output for s in state.specs)], feeds)
        return out, EncoderState(state.specs, tensors, state.processed + self.spec.shift, mask)

    def encode_streams(
        self, feats: Sequence[np.ndarray], languages: Sequence[Sequence[str]] | None = None
    ) -> Iterator[tuple[list[int], np.ndarray]]:
        """Whole fbank sequences of N streams through the encoder step by step, batched, as the server runs them:
        every complete window of `spec.window` frames, `spec.shift` after the last (`parley.contract.complete_steps`);
        a stream leaves the batch after its last step.

        Args:
            feats: `(T_i, F)` float32 fbank frames of each stream.
            languages: a CMM encoder's language selection of each stream (None: all languages for every stream).

        Yields:
            per step, the streams in it (indices into `feats`) and their encoder output `(N', C, E)`.
        """
        spec = self.spec
        steps = [complete_steps(len(f), spec.window, spec.shift) for f in feats]
        states = [self.init_state(1, languages[i] if languages else ()) for i in range(len(feats))]
        for c in range(max(steps, default=0)):
            live = [i for i, n in enumerate(steps) if c < n]
            x = np.stack([feats[i][c * spec.shift : c * spec.shift + spec.window] for i in live])  # (N', T, F)
            enc, batch = self.encode(x, stack_states([states[i] for i in live]))
            for i, s in zip(live, unstack_states(batch), strict=True):
                states[i] = s
            yield live, enc


@dataclass
class GreedyState:
    """One stream's greedy search: its hypothesis, decoder context and the decoder output for that context."""

    hyp: Hypothesis
    context: np.ndarray  # (context_size,) int64, the last tokens, padded on the left with the head's start context
    decoder_out: np.ndarray | None = None  # (J,), computed on first use
    frames_done: int = 0  # encoder frames searched so far

    @classmethod
    def new(cls, head: HeadRunner) -> GreedyState:
        return cls(Hypothesis(), np.array(head.start_context, dtype=np.int64))


def greedy_search(
    head: HeadRunner,
    encoder_out: np.ndarray,
    states: Sequence[GreedyState],
    max_symbols_per_frame: int | None = None,
) -> None:
    """Batched greedy search over one chunk; updates `states` (one per row of `encoder_out`) in place.

    Args:
        head: the head to search with.
        encoder_out: `(N, C, E)` encoder output of one step.
        states: the streams' search states, carried over from the previous chunk.
        max_symbols_per_frame: tokens one frame may emit before the search moves to the next frame (default: the
            head's, from its bundle: 1 for a model trained with the modified topology).
    """
    if max_symbols_per_frame is None:
        max_symbols_per_frame = head.max_symbols_per_frame
    N, C, _ = encoder_out.shape
    assert len(states) == N, (len(states), N)
    fresh = [i for i, s in enumerate(states) if s.decoder_out is None]
    if fresh:
        outs = head.decoder(np.stack([states[i].context for i in fresh]))
        for i, o in zip(fresh, outs, strict=True):
            states[i].decoder_out = o
    context = np.stack([s.context for s in states])  # (N, context_size)
    dec = np.stack([s.decoder_out for s in states])  # (N, J)
    for t in range(C):
        for _ in range(max_symbols_per_frame):
            logits = head.joiner(encoder_out[:, t], dec)  # (N, V)
            tok = logits.argmax(-1)  # (N,)
            emit = np.flatnonzero(tok != head.blank_id)
            if emit.size == 0:
                break
            probs = token_probs(logits[emit], tok[emit])
            for i, p in zip(emit, probs, strict=True):
                states[i].hyp.tokens.append(int(tok[i]))
                states[i].hyp.frames.append(states[i].frames_done + t)
                states[i].hyp.probs.append(float(p))
            context[emit] = np.concatenate([context[emit, 1:], tok[emit, None]], axis=1)
            dec[emit] = head.decoder(context[emit])
    for i, s in enumerate(states):
        s.context, s.decoder_out, s.frames_done = context[i], dec[i], s.frames_done + C


@dataclass(frozen=True)
class LmFusion:
    """Shallow fusion of an external LM for one stream's beam search, with the training data's LM taken out either
    by internal-LM estimation (`ilm_scale`), by a source LM (`source`, `lodr_scale`), or both."""

    lm: NgramLM | RnnLM
    lm_scale: float
    ilm_scale: float = 0.0
    source: NgramLM | RnnLM | None = None
    lodr_scale: float = 0.0


@dataclass
class BeamState:
    """One stream's modified beam search: its hypotheses (at most `beam`) and the frames searched so far, and what
    biases it: a hotword graph and an LM to fuse (None: none)."""

    hyps: list[Hypothesis] = field(default_factory=lambda: [Hypothesis()])
    frames_done: int = 0
    hotwords: ContextGraph | None = None
    fusion: LmFusion | None = None
    beam: int = BEAM  # hypotheses kept (`modified_beam_search` uses it unless told otherwise)
    settle: int = 0  # encoder frames after which the best hypothesis's tokens are settled (`settle_beam`; 0: never)

    @property
    def best(self) -> Hypothesis:
        """The best hypothesis. With hotwords, ranked as if the stream ended here: without the bonus of hotwords begun
        but not finished (which a later token could still take back), and hypotheses of equal tokens at different
        graph nodes (see the module docstring) by their probabilities added up, the likeliest of them (its frames,
        token probabilities and own `log_prob`) standing for the token sequence."""
        if self.hotwords is None:
            return max(self.hyps, key=lambda h: h.log_prob)
        return self.ranked()[0][1]

    def ranked(self) -> list[tuple[float, Hypothesis]]:
        """The distinct token sequences of the beam, the likeliest first: each with its log-probability (with hotwords:
        without the bonus of hotwords begun but not finished, summed over the hypotheses of those tokens at different
        graph nodes) and its likeliest hypothesis."""
        graph = self.hotwords
        totals: dict[tuple[int, ...], float] = {}  # tokens -> their log-probability, summed over the graph nodes
        tops: dict[tuple[int, ...], tuple[float, Hypothesis]] = {}  # tokens -> their likeliest hypothesis
        for h in self.hyps:
            score, key = h.log_prob - (graph.pending(h.node) if graph is not None else 0.0), tuple(h.tokens)
            totals[key] = float(np.logaddexp(totals[key], score)) if key in totals else score
            if key not in tops or score > tops[key][0]:
                tops[key] = (score, h)
        return sorted(((totals[k], tops[k][1]) for k in totals), key=lambda t: -t[0])


def token_probs(logits: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """The softmax probability of `tokens` `(N,)` under `logits` `(N, V)`: `(N,)` float."""
    x = logits - logits.max(axis=-1, keepdims=True)
    return np.exp(x[np.arange(len(tokens)), tokens]) / np.exp(x).sum(axis=-1)


def word_confidence(probs: Sequence[float]) -> float:
    """A word's confidence from its tokens' probabilities: the smallest.

    The minimum rather than the product or geometric mean: a word is right only if every piece of it is, so one
    doubtful piece makes the word doubtful however sure the others are (a geometric mean would average it away), and
    unlike the product it does not make long words of many pieces look worse than short ones.
    """
    return min(probs) if probs else 0.0


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def modified_beam_search(
    head: HeadRunner, encoder_out: np.ndarray, states: Sequence[BeamState], beam: int | None = None
) -> None:
    """Batched modified beam search over one chunk; updates `states` (one per row of `encoder_out`) in place.

    Every frame, each hypothesis of each stream is extended by blank or one token; a stream keeps its `beam`
    best, hypotheses with equal tokens (and, with hotwords, equal graph node: see the module docstring) merged
    (probabilities added). Scores are float32 as in models/nn/search.py.
    A stream's hotword bonuses and LM fusion (its `BeamState`'s) are added to its non-blank scores before it
    chooses (see the module docstring).

    Args:
        head: the head to search with.
        encoder_out: `(N, C, E)` encoder output of one step.
        states: the streams' search states, carried over from the previous chunk.
        beam: hypotheses kept per stream (None: each state's own `beam`).
    """
    N, C, _ = encoder_out.shape
    assert len(states) == N, (len(states), N)
    ctx, blank, first = head.context_size, head.blank_id, head.start_context
    for t in range(C):
        rows = [i for i, s in enumerate(states) for _ in s.hyps]  # (H,) stream of each hypothesis
        hyps = [h for s in states for h in s.hyps]
        contexts = [tuple((first + h.tokens[-ctx:])[-ctx:]) for h in hyps]  # (H,) of ctx tokens
        dec = head.decoder_rows(contexts)  # (H, J)
        log_probs = _log_softmax(head.joiner(encoder_out[rows, t], dec))  # (H, V)
        scores = log_probs + np.array([h.log_prob for h in hyps], dtype=np.float32)[:, None]
        if any(s.hotwords is not None or s.fusion is not None for s in states):
            scores += _adaptation_scores(head, states, hyps, contexts, log_probs)
        V = scores.shape[1]
        start = 0
        for s in states:
            n = len(s.hyps)
            flat = scores[start : start + n].reshape(-1)
            k = min(beam or s.beam, flat.size)
            top = np.argpartition(-flat, k - 1)[:k]
            top = top[np.argsort(-flat[top], kind="stable")]
            merged: dict[tuple, Hypothesis] = {}
            for j in top:
                h, tok, score = s.hyps[j // V], int(j % V), float(flat[j])
                if tok == blank:
                    cand = Hypothesis(h.tokens, h.frames, score, h.probs, h.node)
                else:
                    lp = float(log_probs[start + j // V, tok])
                    p = float(np.exp(lp))
                    node = s.hotwords.step(h.node, tok, lp)[0] if s.hotwords is not None else h.node
                    cand = Hypothesis([*h.tokens, tok], [*h.frames, s.frames_done + t], score, [*h.probs, p], node)
                # with hotwords, equal tokens may sit at different graph nodes (the acoustic floor): kept apart
                key = tuple(cand.tokens) if s.hotwords is None else (tuple(cand.tokens), cand.node)
                if key in merged:  # the better path (seen first) keeps its frames and token probabilities
                    old = merged[key]
                    merged[key] = Hypothesis(
                        old.tokens,
                        old.frames,
                        float(np.logaddexp(np.float32(old.log_prob), np.float32(score))),
                        old.probs,
                        old.node,
                    )
                else:
                    merged[key] = cand
            s.hyps = list(merged.values())
            start += n
    for s in states:
        s.frames_done += C
        if s.settle:
            settle_beam(s)


def settle_beam(state: BeamState) -> int:
    """Settles `state`'s beam: the tokens its best hypothesis emitted at least `state.settle` frames before the frames
    searched so far become every hypothesis's; the hypotheses that do not begin with them are dropped (the best one
    always stays). Returns how many tokens are settled."""
    best = state.best
    cutoff = state.frames_done - state.settle
    n = next((k for k, f in enumerate(best.frames) if f >= cutoff), len(best.frames))
    if n:
        prefix = best.tokens[:n]
        state.hyps = [h for h in state.hyps if h.tokens[:n] == prefix]
    return n


def _adaptation_scores(
    head: HeadRunner,
    states: Sequence[BeamState],
    hyps: Sequence[Hypothesis],
    contexts: Sequence[tuple[int, ...]],
    log_probs: np.ndarray,
) -> np.ndarray:
    """`(H, V)` float32 what each stream's adaptation adds to its hypotheses' scores, given the joiner's `(H, V)`
    log-probabilities at this frame (the hotword graph's acoustic floor reads them) and each hypothesis's decoder
    context (`contexts`: the internal LM's input): hotword bonuses and `lm_scale * log P_LM - ilm_scale * log P_ILM -
    lodr_scale * log P_source`, on non-blank tokens only (the blank's column stays 0)."""
    extra = np.zeros(log_probs.shape, dtype=np.float32)
    # Each term of each fused stream's rows; an LM that several streams share (the general LM) is asked once for all
    # of their hypotheses. Per row, the terms are added in the formula's order.
    lm_terms: dict[int, tuple[NgramLM | RnnLM, list[int], list[float]]] = {}  # id(LM) -> (LM, rows, scales)
    src_terms: dict[int, tuple[NgramLM | RnnLM, list[int], list[float]]] = {}
    ilm_rows: list[int] = []
    ilm_scales: list[float] = []
    start = 0
    for s in states:
        rows = range(start, start + len(s.hyps))
        start = rows.stop
        if s.hotwords is not None:
            lp = log_probs[rows.start : rows.stop]
            extra[rows.start : rows.stop] += np.stack([s.hotwords.bonuses(h.node, lp[k]) for k, h in enumerate(s.hyps)])
        f = s.fusion
        if f is not None:
            _add_rows(lm_terms, f.lm, rows, f.lm_scale)
            if f.ilm_scale:
                ilm_rows += rows
                ilm_scales += [f.ilm_scale] * len(rows)
            if f.source is not None and f.lodr_scale:
                _add_rows(src_terms, f.source, rows, f.lodr_scale)
    for lm, rows, scales in lm_terms.values():
        extra[rows] += np.float32(scales)[:, None] * lm.log_probs_batch([hyps[r].tokens for r in rows])
    if ilm_rows:  # one joiner run for the contexts not seen before (`HeadRunner.internal_lm_rows`)
        extra[ilm_rows] -= np.float32(ilm_scales)[:, None] * head.internal_lm_rows([contexts[r] for r in ilm_rows])
    for lm, rows, scales in src_terms.values():
        extra[rows] -= np.float32(scales)[:, None] * lm.log_probs_batch([hyps[r].tokens for r in rows])
    extra[:, head.blank_id] = 0.0
    return extra


def _add_rows(terms: dict, lm: NgramLM | RnnLM, rows: range, scale: float) -> None:
    """`rows` of the batch scored by `lm` at `scale`: added to `terms` (id of the LM -> (LM, rows, scales))."""
    _, at, scales = terms.setdefault(id(lm), (lm, [], []))
    at += rows
    scales += [scale] * len(rows)


def forced_log_probs(
    head: HeadRunner, encoder_out: np.ndarray, sequences: Sequence[Sequence[int]], context: Sequence[int] = ()
) -> np.ndarray:
    """How likely each token sequence is on a window of encoder frames: log P(tokens | encoder_out), summed over every
    alignment of the modified topology (each frame emits blank or one token, and moves on), from the window's first
    frame to past its last, the decoder starting after `context` (the tokens before the window; the head's start
    context fills what is missing). The joiner's blank penalty counts as in the searches.

    Args:
        head: the head to score with.
        encoder_out: `(T, E)` the window's encoder output.
        sequences: token ids of each sequence (no blanks).
        context: the tokens emitted before the window.

    Returns:
        `(N,)` float64 log-probabilities; -inf for a sequence with more tokens than the window has frames.
    """
    T = encoder_out.shape[0]
    ctx, start = head.context_size, [*head.start_context, *context]
    out = np.full(len(sequences), -np.inf)
    live = [i for i, seq in enumerate(sequences) if len(seq) <= T]
    if not live or T == 0:
        return out
    # every sequence's decoder contexts (U_i + 1 of them); the decoder and the joiner run once on the Q unique ones
    contexts = [[*start, *sequences[i][:u]][-ctx:] for i in live for u in range(len(sequences[i]) + 1)]
    unique, inverse = np.unique(
        np.array(contexts, dtype=np.int64).reshape(len(contexts), ctx), axis=0, return_inverse=True
    )
    inverse = inverse.reshape(-1)
    dec = head.decoder(unique)  # (Q, J)
    Q = len(unique)
    lp = _log_softmax(head.joiner(np.repeat(encoder_out, Q, axis=0), np.tile(dec, (T, 1)))).reshape(T, Q, -1)
    first = 0
    for i in live:
        seq = np.asarray(sequences[i], dtype=np.int64)
        U = len(seq)
        part = lp[:, inverse[first : first + U + 1]]  # (T, U + 1, V)
        first += U + 1
        blank = part[:, :, head.blank_id].astype(np.float64)  # (T, U + 1)
        emit = part[:, np.arange(U), seq].astype(np.float64)  # (T, U)
        alpha = np.full(U + 1, -np.inf)
        alpha[0] = 0.0
        for t in range(T):
            nxt = alpha + blank[t]
            nxt[1:] = np.logaddexp(nxt[1:], alpha[:-1] + emit[t])
            alpha = nxt
        out[i] = alpha[U]
    return out


@dataclass
class Transcript:
    text: str
    tokens: list[int]
    frames: list[int]  # encoder frame of each token
    chunks: int  # encoder steps run
    probs: list[float] = field(default_factory=list)  # the joiner's probability of each token where it was emitted
    encoder_out: np.ndarray | None = None  # (T, E) every step's encoder output, with `keep_encoder`


def transcribe_many(
    model: StreamingTransducer,
    waveforms: Sequence[np.ndarray],
    sample_rate: int,
    head: int = 0,
    search: str = "greedy",
    tail_padding_ms: float | None = None,
    max_symbols_per_frame: int | None = None,
    beam: int = BEAM,
    hotwords: ContextGraph | None = None,
    fusion: LmFusion | None = None,
    keep_encoder: bool = False,
    parallel: int = 1,
    fbank: str = "numpy",
    settle: int = 0,
) -> list[Transcript]:
    """Recognizes whole waveforms as streams batched together, chunk by chunk, as the server would.

    Each waveform is followed by `tail_padding_ms` of silence (default: `parley.contract.tail_padding_ms`, one
    window, so the last real frame is inside a complete step), its fbank computed by `StreamingFbank`, and every
    complete window run through the encoder (`StreamingTransducer.encode_streams`); streams drop out of the batch as
    they end.

    Args:
        model: the recognizer.
        waveforms: float32 samples `(T_samples,)` in [-1, 1], one per stream.
        sample_rate: their rate (resampled to the model's).
        head: which head to search with.
        search: "greedy" or "beam" (modified beam search).
        tail_padding_ms: silence appended to each waveform (default: the tail padding rule).
        max_symbols_per_frame: greedy search's limit per frame (default: the head's).
        beam: modified beam search's beam.
        hotwords: hotwords for beam search (every stream's).
        fusion: an LM to fuse in beam search (every stream's).
        keep_encoder: whether each transcript keeps its encoder output (`encoder_out`, for `AcousticCheck`).
        parallel: the streams are split into this many groups (every parallel-th), decoded side by side in threads,
            as the server's `--parallel-steps` runs batches (give the model one onnxruntime thread per run).
        fbank: what computes the frames (`parley.features.FBANK_BACKENDS`; the server's `--fbank`).
        settle: beam search settles tokens this many encoder frames old (`settle_beam`; 0: never).

    Raises:
        ValueError: an unknown search, or hotwords or an LM with greedy search.
    """
    if search not in ("greedy", "beam"):
        raise ValueError(f"unknown search {search!r}; use greedy or beam")
    if search == "greedy" and (hotwords is not None or fusion is not None):
        raise ValueError("hotwords and LM fusion need search='beam'")
    if parallel > 1 and len(waveforms) > 1:
        groups = [list(range(k, len(waveforms), parallel)) for k in range(min(parallel, len(waveforms)))]
        args = (
            head,
            search,
            tail_padding_ms,
            max_symbols_per_frame,
            beam,
            hotwords,
            fusion,
            keep_encoder,
            1,
            fbank,
            settle,
        )
        with ThreadPoolExecutor(len(groups)) as pool:
            parts = pool.map(lambda g: transcribe_many(model, [waveforms[i] for i in g], sample_rate, *args), groups)
            by_index = {i: t for g, part in zip(groups, parts, strict=True) for i, t in zip(g, part, strict=True)}
        return [by_index[i] for i in range(len(waveforms))]
    spec, runner = model.spec, model.heads[head]
    if tail_padding_ms is None:
        pad = tail_padding_samples(spec.window, sample_rate, spec.features.frame_shift_ms)
    else:
        pad = round(sample_rate * tail_padding_ms / 1000)
    feats = []
    for w in waveforms:
        fb = StreamingFbank(spec.features, sample_rate, fbank)
        fb.accept(np.asarray(w, dtype=np.float32))
        fb.accept(np.zeros(pad, dtype=np.float32))
        fb.finish()
        feats.append(fb.pop_frames())  # (T_i, F)
    n_chunks = [complete_steps(len(f), spec.window, spec.shift) for f in feats]
    searches: list = [
        GreedyState.new(runner) if search == "greedy" else BeamState(hotwords=hotwords, fusion=fusion, settle=settle)
        for _ in feats
    ]
    kept: list[list[np.ndarray]] = [[] for _ in feats]
    for live, enc in model.encode_streams(feats):
        if search == "greedy":
            greedy_search(runner, enc, [searches[i] for i in live], max_symbols_per_frame)
        else:
            modified_beam_search(runner, enc, [searches[i] for i in live], beam)
        if keep_encoder:
            for k, i in enumerate(live):
                kept[i].append(enc[k])
    hyps = [s.hyp if search == "greedy" else s.best for s in searches]
    return [
        Transcript(
            runner.text(h.tokens),
            h.tokens,
            h.frames,
            n,
            h.probs,
            np.concatenate(k) if keep_encoder and k else None,
        )
        for h, n, k in zip(hyps, n_chunks, kept, strict=True)
    ]


def transcribe(model: StreamingTransducer, samples: np.ndarray, sample_rate: int, **kwargs) -> Transcript:
    """`transcribe_many` for one waveform."""
    return transcribe_many(model, [samples], sample_rate, **kwargs)[0]
