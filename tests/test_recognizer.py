"""The synchronous recognizer (server/recognizer.py) on the committed bundles, without a server or an event loop:
feature chunks in, typed partials and finals out; a stream's results are the same alone and batched with others."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from parley.resample import resample
from server.biasing import ContextGraph
from server.bundle import load_bundle
from server.endpoint import EndpointConfig
from server.frontend import Frontend
from server.plan import HeadPlan
from server.recognizer import Final, Partial, Recognizer, Result, StreamRecognizer
from server.transducer import BeamState, Hypothesis, StreamingTransducer, settle_beam, transcribe

ROOT = Path(__file__).resolve().parents[1]
SR = 16000
SENTENCE = "set a timer for ten minutes"
OTHER = "what is one thousand plus forty"
NO_ENDPOINTS = EndpointConfig(enabled=False)


def _speech(text: str, pad_s: float = 0.3) -> np.ndarray:
    """`text` spoken by espeak-ng: `(T,)` float32 at 16 kHz, `pad_s` of silence on both sides."""
    from models.data.espeak import synthesize

    syn = synthesize(text, voice="en-us")
    pad = np.zeros(round(pad_s * SR), dtype=np.float32)
    return np.concatenate([pad, resample(syn.samples, syn.sample_rate, SR), pad])


@pytest.fixture(scope="module")
def model() -> StreamingTransducer:
    return StreamingTransducer(load_bundle(ROOT / "bundles" / "en-small", providers="cpu", threads=1))


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, np.ndarray]:
    return _speech(SENTENCE), _speech(OTHER)


def _run(
    recognizer: Recognizer, streams: Sequence[tuple[StreamRecognizer, np.ndarray, int]], piece_s: float = 0.1
) -> list[list[Result]]:
    """Feeds each stream's audio in `piece_s` pieces and steps every stream that has a chunk, all in one batch, as
    the batcher does; then the tail padding and the end. Returns each stream's results in order."""
    frontends = [Frontend(recognizer.spec, rate) for _, _, rate in streams]
    out: list[list[Result]] = [[] for _ in streams]
    offsets = [0] * len(streams)
    while True:
        for i, (_, x, rate) in enumerate(streams):
            n = round(piece_s * rate)
            if offsets[i] < len(x):
                frontends[i].accept(x[offsets[i] : offsets[i] + n])
                offsets[i] += n
            elif not frontends[i].finished:
                frontends[i].finish()
        ready = [i for i, f in enumerate(frontends) if f.ready()]
        if not ready and all(f.finished for f in frontends):
            break
        while ready:
            batch = [(streams[i][0], frontends[i].pop_chunk()) for i in ready]
            for i, rs in zip(ready, recognizer.step(batch), strict=True):  # type: ignore[arg-type]
                out[i] += rs
            ready = [i for i in ready if frontends[i].ready()]
    for i, (state, _, _) in enumerate(streams):
        out[i] += recognizer.finish(state, frontends[i].seconds_received)
    return out


def test_partials_then_one_final_with_words(model: StreamingTransducer, speech) -> None:
    x = speech[0]
    recognizer = Recognizer(model, NO_ENDPOINTS)
    (results,) = _run(recognizer, [(recognizer.open(), x, SR)])
    partials = [r for r in results if isinstance(r, Partial)]
    finals = [r for r in results if isinstance(r, Final)]
    assert len(finals) == 1 and results[-1] is finals[0], results
    final = finals[0]
    # The same words as the offline reference (whole waveform, the same tail padding), and the words the speaker said.
    assert final.text == transcribe(model, x, SR).text == SENTENCE, final.text
    assert (final.segment, final.start) == (0, 0.0)
    assert final.end == pytest.approx(len(x) / SR), "a final ends at the audio's end, not the padding's"
    assert [w.text for w in final.words] == SENTENCE.split()
    for a, b in itertools.pairwise(final.words):
        assert a.start <= a.end <= b.start <= b.end, (a, b)
    assert all(0.0 <= w.conf <= 1.0 and w.speaker is None for w in final.words)
    assert final.language is None and final.translations is None and final.speakers is None
    # Partials: several, each a prefix of the next text (greedy never takes a token back), time moving forward.
    assert len(partials) >= 3, partials
    texts = [p.text for p in partials] + [final.text]
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts)), texts
    ends = [p.end for p in partials]
    assert ends == sorted(ends) and ends[-1] <= final.end
    assert all(p.segment == 0 and p.start == 0.0 for p in partials)


def test_batched_results_equal_alone(model: StreamingTransducer, speech) -> None:
    """Three streams of different audio, rates and searches: each one's results batched are those it gets alone."""
    recognizer = Recognizer(model, EndpointConfig.from_seconds(rule2_silence=0.4))
    a, b = speech
    b48 = resample(b, SR, 48000)
    kinds = [("greedy", a, SR), ("beam", b48, 48000), ("greedy", np.concatenate([b, a]), SR)]
    alone = [_run(recognizer, [(recognizer.open(search=s), x, r)])[0] for s, x, r in kinds]
    together = _run(recognizer, [(recognizer.open(search=s), x, r) for s, x, r in kinds])
    for i, (one, many) in enumerate(zip(alone, together, strict=True)):
        assert one == many, (i, one, many)
    # Endpoints at 0.4 s of silence cut the two sentences apart: searches are reset and rebuilt within the batch.
    assert all(any(isinstance(r, Partial) for r in rs) for rs in alone)
    assert sum(isinstance(r, Final) for r in alone[2]) >= 2, alone[2]


def test_endpoints_close_segments(model: StreamingTransducer, speech) -> None:
    a, b = speech
    x = np.concatenate([a, np.zeros(3 * SR // 2, dtype=np.float32), b])
    recognizer = Recognizer(model, EndpointConfig.from_seconds(rule2_silence=0.8))
    (results,) = _run(recognizer, [(recognizer.open(), x, SR)])
    finals = [r for r in results if isinstance(r, Final)]
    assert [f.text for f in finals] == [SENTENCE, OTHER], finals
    assert [f.segment for f in finals] == [0, 1]
    assert finals[1].start == finals[0].end and finals[0].end < finals[1].words[0].start
    # After the endpoint the partials belong to the new segment and start where the first final ended.
    later = [r for r in results[results.index(finals[0]) + 1 :] if isinstance(r, Partial)]
    assert later and all(p.segment == 1 and p.start == finals[0].end for p in later)


def test_no_partials_when_not_asked_and_silence_gives_no_final(model: StreamingTransducer, speech) -> None:
    recognizer = Recognizer(model, NO_ENDPOINTS)
    quiet = np.zeros(SR, dtype=np.float32)
    finals_only, silent = _run(
        recognizer, [(recognizer.open(partials=False), speech[0], SR), (recognizer.open(), quiet, SR)]
    )
    assert [type(r) for r in finals_only] == [Final] and finals_only[0].text == SENTENCE
    # A stream of audio that says nothing still closes its segment: an empty final that covers the audio.
    assert len(silent) == 1 and isinstance(silent[0], Final) and silent[0].text == "" and silent[0].end == 1.0


def test_open_checks_the_plan(model: StreamingTransducer) -> None:
    recognizer = Recognizer(model)
    with pytest.raises(ValueError, match="unknown search"):
        recognizer.open(search="viterbi")
    with pytest.raises(ValueError, match="out of range"):
        recognizer.open(HeadPlan(caption=3))
    with pytest.raises(ValueError, match="language identifier"):
        recognizer.open(HeadPlan(caption=None, candidates=((0, 0),)))


def test_multi_talker_results_carry_speakers(speech) -> None:
    tsot = StreamingTransducer(load_bundle(ROOT / "bundles" / "en-tsot-small", providers="cpu", threads=1))
    recognizer = Recognizer(tsot, NO_ENDPOINTS)
    (results,) = _run(recognizer, [(recognizer.open(), speech[0], SR)])
    final = results[-1]
    assert isinstance(final, Final) and final.text, results
    assert final.speakers is not None and len(final.speakers) == 2
    assert "<cc>" not in final.text and all(w.speaker in (0, 1) for w in final.words)
    by_channel = [" ".join(w.text for w in final.words if w.speaker == c) for c in (0, 1)]
    assert list(final.speakers) == by_channel
    assert all(p.speakers is not None for p in results if isinstance(p, Partial))


def test_a_finalize_cuts_the_segment_and_keeps_the_streams_clock(model: StreamingTransducer, speech) -> None:
    """The protocol's finalize (Frontend.flush, then Recognizer.cut) between two sentences with no pause between them:
    each sentence is its own final, the first ending where its audio ends; the second's words sit where they are in
    the audio that was sent (the silence the flush decoded is not on the stream's clock): within two encoder frames of
    where they are when the second sentence is streamed alone, shifted by the first's length."""
    a, b = speech
    recognizer = Recognizer(model, NO_ENDPOINTS)
    state = recognizer.open()
    frontend = Frontend(recognizer.spec, SR)
    results: list[Result] = []

    def feed(x: np.ndarray) -> None:
        for i in range(0, len(x), SR // 10):
            frontend.accept(x[i : i + SR // 10])
            while (chunk := frontend.pop_chunk()) is not None:
                results.extend(recognizer.step([(state, chunk)])[0])

    feed(a)
    silence_s = frontend.flush()
    assert silence_s > 0 and frontend.seconds_received == len(a) / SR
    feed(np.zeros(0, dtype=np.float32))
    cut = recognizer.cut(state, frontend.seconds_received, silence_s)
    results += cut
    assert frontend.flush() == 0.0  # nothing since: nothing to add
    feed(b)
    frontend.finish()
    feed(np.zeros(0, dtype=np.float32))
    results += recognizer.finish(state, frontend.seconds_received)
    finals = [r for r in results if isinstance(r, Final)]
    assert len(cut) == 1 and cut[0] in finals
    assert [f.text for f in finals] == [SENTENCE, OTHER], finals
    assert [f.segment for f in finals] == [0, 1]
    assert finals[0].end == pytest.approx(len(a) / SR) == finals[1].start
    assert finals[1].end == pytest.approx((len(a) + len(b)) / SR)
    (alone,) = _run(recognizer, [(recognizer.open(), b, SR)])
    frame_s = state.frame_s
    for w, ref in zip(finals[1].words, alone[-1].words, strict=True):
        assert abs(w.start - (len(a) / SR + ref.start)) <= 2 * frame_s + 1e-9, (w, ref)
    later = [r for r in results[results.index(finals[0]) + 1 :] if isinstance(r, Partial)]
    assert later and all(p.segment == 1 and p.start == finals[0].end and p.end >= p.start for p in later)


def test_beam_finals_list_alternatives(model: StreamingTransducer, speech) -> None:
    """alternatives: the beam's likeliest distinct transcripts, the final's own text first, with shares of their
    probability that add up to 1 and do not increase; a greedy stream asking for them gets none."""
    recognizer = Recognizer(model, NO_ENDPOINTS)
    (beam,) = _run(recognizer, [(recognizer.open(search="beam", alternatives=3), speech[1], SR)])
    (plain,) = _run(recognizer, [(recognizer.open(search="beam"), speech[1], SR)])
    (greedy,) = _run(recognizer, [(recognizer.open(alternatives=3), speech[1], SR)])
    final = beam[-1]
    assert isinstance(final, Final) and final.alternatives is not None
    texts = [t for t, _ in final.alternatives]
    shares = [p for _, p in final.alternatives]
    assert 2 <= len(texts) <= 3 and len(set(texts)) == len(texts), final.alternatives
    assert texts[0] == final.text == plain[-1].text == OTHER
    assert sum(shares) == pytest.approx(1.0) and shares == sorted(shares, reverse=True) and shares[0] > 0.5
    assert plain[-1].alternatives is None and greedy[-1].alternatives is None
    assert all(isinstance(r, Partial) for r in beam[:-1])  # partials carry no alternatives (no such field)


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_the_stable_part_of_a_partial_never_changes(model: StreamingTransducer, speech, search: str) -> None:
    """Partial.stable: the leading characters of a partial's text that every later partial and the final of its
    segment begin with; greedy search holds every word but the last, beam search the beam's common words."""
    a, b = speech
    x = np.concatenate([a, np.zeros(SR, dtype=np.float32), b])
    recognizer = Recognizer(model, EndpointConfig.from_seconds(rule2_silence=0.6))
    (results,) = _run(recognizer, [(recognizer.open(search=search), x, SR)])
    partials = [r for r in results if isinstance(r, Partial)]
    assert sum(isinstance(r, Final) for r in results) == 2 and partials
    _assert_stable_holds(results)
    for p in partials:
        if search == "greedy":  # every word but the last
            assert p.stable == len(p.text.rsplit(" ", 1)[0]) if " " in p.text else p.stable == 0, p
    settled = "set a timer for ten" if search == "greedy" else "set a timer"  # the beam agrees on fewer words
    assert max(p.stable for p in partials) >= len(settled), partials


def _assert_stable_holds(results: Sequence[Result]) -> None:
    """Every partial's `stable` characters begin every later partial and the final of its segment."""
    for k, p in enumerate(results):
        if not isinstance(p, Partial):
            continue
        assert p.stable is not None and 0 <= p.stable <= len(p.text)
        for later in results[k + 1 :]:
            if later.segment != p.segment:
                break
            assert later.text[: p.stable] == p.text[: p.stable], (p, later)


def test_settling_drops_the_hypotheses_that_disagree_with_the_best_ones_old_tokens() -> None:
    """settle_beam: the best hypothesis's tokens emitted `settle` frames or more before the searched frames become
    every hypothesis's; the others go, the best stays, and nothing newer is settled."""
    best = Hypothesis([1, 2, 3], [0, 4, 9], -1.0)
    agrees = Hypothesis([1, 2, 5], [0, 5, 8], -2.0)  # differs only in a token newer than the cutoff
    differs = Hypothesis([1, 4, 3], [0, 3, 9], -1.5)  # differs in the second, old token
    shorter = Hypothesis([1], [0], -3.0)
    state = BeamState([differs, best, agrees, shorter], frames_done=10, settle=4)  # cutoff: frame 6
    assert settle_beam(state) == 2
    assert state.hyps == [best, agrees]
    assert state.best is best
    young = BeamState([differs, best], frames_done=10, settle=20)  # nothing old enough: all stay
    assert settle_beam(young) == 0 and young.hyps == [differs, best]


def test_a_settled_beam_promises_words_sooner(model: StreamingTransducer, speech) -> None:
    """`settle_ms`: a beam search stream settles its best words that old, so its partials' stable prefix holds more
    of them while the segment goes on (and still never changes); a stream with alternatives keeps its whole beam,
    one with hotwords settles too."""
    a, b = speech
    x = np.concatenate([a, np.zeros(SR, dtype=np.float32), b])
    runs = {}
    for ms in (0, 320):
        recognizer = Recognizer(model, EndpointConfig.from_seconds(rule2_silence=0.6), settle_ms=ms)
        (runs[ms],) = _run(recognizer, [(recognizer.open(search="beam"), x, SR)])
        _assert_stable_holds(runs[ms])
        assert [r.text for r in runs[ms] if isinstance(r, Final)] == [SENTENCE, OTHER]
        assert recognizer.open(search="beam", alternatives=2).settle == 0
        assert recognizer.open(search="beam").searchers[0].settle == ms // 40  # 40 ms encoder frames
        hot = recognizer.open(search="beam", adaptation={0: (ContextGraph([([5, 6], 2.0)]), None, None)})
        assert hot.searchers[0].settle == ms // 40  # hotword streams settle as the others do
    held = {
        ms: max(len(r.text[: r.stable]) for r in rs if isinstance(r, Partial) and r.segment == 1)
        for ms, rs in runs.items()
    }
    assert held[320] >= len("what is one thousand") > held[0], held
