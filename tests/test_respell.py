"""Hotword respelling (server/respell.py): the sound key, the choice of runs, and a stream whose final comes out with
the hotword the model could not spell."""

import asyncio
import itertools
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from server.biasing import SOUNDS_LIKE_BOOST
from server.engine import Engine, EngineConfig
from server.frontend import Frontend
from server.plan import Adaptation, HeadPlan, Planner
from server.recognizer import Final, Recognizer, Result
from server.respell import (
    RESPELL_THRESHOLD,
    RESPELL_VERIFY_THRESHOLD,
    AcousticCheck,
    Respeller,
    closeness,
    edit_distance_within,
    sound_key,
)
from server.transducer import StreamingTransducer, _log_softmax, forced_log_probs, transcribe_many

ROOT = Path(__file__).resolve().parents[1]


def test_sound_key_folds_spellings_of_the_same_sounds() -> None:
    assert sound_key("zimmerman") == sound_key("Zimerman") == "samarman"
    assert sound_key("more no") == sound_key("moreno")
    assert sound_key("phillips") == sound_key("filips")
    assert sound_key("maddox") == sound_key("madox")
    assert sound_key("") == ""
    assert sound_key("kowalczyk") != sound_key("kitchen")


def test_closeness_is_one_minus_the_normalized_edit_distance() -> None:
    assert closeness("samarman", "samarman") == 1.0
    assert closeness("abc", "abd") == pytest.approx(2 / 3)
    assert closeness("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert closeness("", "abc") == 0.0 and closeness("", "") == 0.0


def test_the_banded_edit_distance_is_the_full_one_within_its_bound() -> None:
    rng = random.Random(0)
    for _ in range(2000):
        a, b = ("".join(rng.choice("abc") for _ in range(rng.randint(0, 8))) for _ in range(2))
        bound = rng.randint(0, 4)
        full = round((1 - closeness(a, b)) * max(len(a), len(b))) if a and b else max(len(a), len(b))
        assert edit_distance_within(a, b, bound) == (full if full <= bound else None), (a, b, bound)


def test_a_doubtful_run_that_sounds_like_a_hotword_is_replaced() -> None:
    speller = Respeller(["McAllister", "zentrix  labs"])
    assert speller.phrases == ["mcallister", "zentrix labs"]
    words = ["the", "letter", "from", "macalister", "arrived"]
    assert speller.apply(words, [0.99, 0.97, 0.9, 0.3, 0.95]) == ["the", "letter", "from", "mcallister", "arrived"]
    # the same words said confidently stay: the model did not doubt them
    assert speller.apply(words, [0.99, 0.97, 0.9, 0.8, 0.95]) == words
    # a multi-word hotword from a run of several words, and a split name joined back
    found = speller.find(["call", "zen", "tricks", "labs", "now"], [0.9, 0.2, 0.4, 0.9, 0.9])
    assert [(r.start, r.end, r.phrase) for r in found] == [(1, 4, "zentrix labs")]
    joined = Respeller(["moreno"]).apply(["from", "more", "no", "today"], [0.9, 0.5, 0.4, 0.9])
    assert joined == ["from", "moreno", "today"]
    # words that sound nothing like it, and the hotword itself, are left alone
    assert speller.find(["lock", "the", "back", "door"], [0.1, 0.1, 0.1, 0.1]) == []
    assert speller.find(["mcallister"], [0.1]) == []


def test_runs_the_model_was_surer_of_need_the_check() -> None:
    """`verify_max_confidence`: with a check, a run whose least confident word is below it but not below
    `max_confidence` is a candidate however close it sounds, and replaced only where the check accepts it."""
    words = ["the", "letter", "from", "macalister", "arrived"]
    sure = [0.99, 0.97, 0.9, 0.8, 0.95]  # "macalister" at 0.8: not doubted by the 0.6 gate
    asked: list[list[str]] = []

    def check(answer: bool):
        def verify(runs):
            asked.append([r.phrase for r in runs])
            return [answer] * len(runs)

        return verify

    plain = Respeller(["mcallister"])
    assert plain.apply(words, sure, check(True)) == words and asked == []  # never a candidate
    surer = Respeller(["mcallister"], verify_max_confidence=0.9)
    assert surer.apply(words, sure, check(True)) == ["the", "letter", "from", "mcallister", "arrived"]
    assert surer.apply(words, sure, check(False)) == words  # close as it sounds, the check decides
    assert len(asked) == 2 and all(set(runs) == {"mcallister"} for runs in asked)
    assert surer.apply(words, sure) == words  # no check (a partial): the gate as before
    assert Respeller(["mcallister"], verify_max_confidence=0.7).apply(words, sure, check(True)) == words  # 0.8 >= 0.7
    doubted = [0.99, 0.97, 0.9, 0.3, 0.95]
    assert surer.apply(words, doubted, check(False))[3] == "mcallister"  # a doubted close run needs no check


def test_words_in_capitals_are_compared_whatever_their_case() -> None:
    """A model that writes capitals (icefall's LibriSpeech-trained ones): its words meet the hotwords, which are kept
    lowercased, and a run it wrote in capitals gets the hotword in capitals; a hotword it wrote already stays."""
    speller = Respeller(["Moreno", "henderson"])
    assert speller.apply(["FROM", "MORE", "NO", "TODAY"], [0.9, 0.5, 0.4, 0.9]) == ["FROM", "MORENO", "TODAY"]
    assert speller.find(["MORENO"], [0.1]) == [] and speller.find(["Moreno"], [0.1]) == []
    # "henderson" said already is no run for another hotword, however it is written
    assert Respeller(["henderson", "andersen"]).find(["HENDERSON"], [0.1]) == []


def test_the_hotwords_case_follows_the_vocabulary_when_it_is_known() -> None:
    """Left to the run, a one-letter "I" replaced on a cased vocabulary gave the hotword in capitals; the planner
    passes the vocabulary's case (`writes_capitals`), which decides whatever the run."""
    words, confidences = ["I", "talked", "to", "more", "no"], [0.3, 0.9, 0.9, 0.5, 0.4]
    assert Respeller(["aye"]).apply(words[:2], confidences[:2]) == ["AYE", "talked"]  # the run's case
    assert Respeller(["aye"], capitals=False).apply(words[:2], confidences[:2]) == ["aye", "talked"]
    assert Respeller(["moreno"], capitals=True).apply(words, confidences)[-1] == "MORENO"


def test_first_open_is_where_a_finals_check_could_still_respell() -> None:
    """What a partial's settled words may not pass (OpenAI Realtime's deltas): the first run a final's acoustic check
    could replace, a looser range than what the partial itself respells."""
    speller = Respeller(["mcallister"])
    words = ["the", "letter", "from", "macallter", "arrived"]  # 0.67 close: too far for a partial, not for a final
    assert speller.find(words, [0.9, 0.9, 0.9, 0.5, 0.9]) == []
    assert speller.first_open(words, [0.9, 0.9, 0.9, 0.5, 0.9]) == 3
    assert speller.first_open(words, [0.9] * 5) == 5, "nothing doubted: nothing the final may change"
    assert speller.first_open(["mcallister", "arrived"], [0.3, 0.9]) == 2, "a hotword already written stays"
    assert Respeller(["mcallister"], verify_threshold=0.9).first_open(words, [0.9, 0.9, 0.9, 0.5, 0.9]) == 5
    assert speller.first_open(["macalister", "arrived"], [0.3, 0.9]) == 2, "respelled by the partial too: not open"

    class Check:  # an AcousticCheck's answers: one token a word; the runs it accepts
        def __init__(self, accepts: bool, tokens: int) -> None:
            self.accepts, self.tokens = accepts, list(range(tokens))

        def window(self, r):
            return r.start, r.end, r.start, r.end

        def __call__(self, runs):
            return [self.accepts] * len(runs)

    doubted = [0.9, 0.9, 0.9, 0.5, 0.9]
    rejects, accepts = (lambda: Check(False, 5)), (lambda: Check(True, 5))
    assert speller.first_open(words, doubted, rejects) == 5, "the check rejects it: the final keeps the words"
    assert speller.first_open(words, doubted, accepts) == 3, "it accepts it: the final will respell"
    early = lambda: Check(False, 4)  # noqa: E731
    assert speller.first_open(words[:4], doubted[:4], early) == 3, "no token after the run: not scored yet"


def test_overlapping_candidates_keep_the_closest() -> None:
    speller = Respeller(["moreno", "morrow"], threshold=0.6)
    found = speller.find(["more", "no"], [0.3, 0.3])
    assert [(r.start, r.end, r.phrase) for r in found] == [(0, 2, "moreno")]


def test_a_run_may_sound_like_one_of_the_ways_the_model_hears_the_hotword() -> None:
    """`sounds_like`: "lambary" is far from "lombardi"'s own key but is how the model writes it; a run is as close to
    the hotword as to the nearest of its keys (from `threshold` on: the looser check's range is the spelling's)."""
    words, doubted = ["a", "letter", "from", "lambary", "today"], [0.9, 0.9, 0.9, 0.3, 0.9]
    assert closeness(sound_key("lambary"), sound_key("lombardi")) < RESPELL_THRESHOLD
    assert Respeller(["lombardi"]).apply(words, doubted) == words
    speller = Respeller(["Lombardi"], sounds_like={"LOMBARDI": ["lambary", "long bary"], "nobody": ["from"]})
    (r,) = speller.find(words, doubted)
    assert (r.start, r.end, r.phrase, r.closeness, r.heard) == (3, 4, "lombardi", 1.0, True)
    assert speller.apply(["long", "bary", "said"], [0.4, 0.5, 0.9]) == ["lombardi", "said"]
    sure = [0.9, 0.9, 0.9, 0.8, 0.9]
    (r,) = speller.find(words, sure)
    assert (r.start, r.end, r.phrase, r.exact) == (3, 4, "lombardi", True), "a sounds_like word for word: however sure"
    assert (
        Respeller(["lombardi"], sounds_like={"lombardi": ["lambary"]}, exact_sounds_like=False).apply(words, sure)
        == words
    )
    same_key = ["a", "letter", "from", "lambarry", "today"]  # "lambary"'s sound key, not its words
    assert speller.apply(same_key, sure) == same_key, "only as close as one: gated as the spelling"
    assert speller.apply(same_key, doubted)[3] == "lombardi"
    other = Respeller(["moreno", "lombardi"], sounds_like={"lombardi": ["moreno"]})
    assert other.apply(["moreno"], [0.9]) == ["moreno"], "another hotword's own words stay it"
    assert speller.find(["from"], [0.1]) == [], "a hotword not in the phrases brings no keys"
    # the spelling's own key, where it is as close, is what the run is matched by (heard False)
    assert not Respeller(["moreno"], sounds_like={"moreno": ["more no"]}).find(["more", "no"], [0.3, 0.3])[0].heard
    asked: list = []

    def check(runs):
        asked.extend(runs)
        return [True] * len(runs)

    near = Respeller(["lombardi"], sounds_like={"lombardi": ["lanbary"]})  # "lambary" is 6/7 close to "lanbary"
    assert closeness(sound_key("lambary"), sound_key("lanbary")) < RESPELL_THRESHOLD
    near.apply(words, doubted, check)
    assert asked and not any(r.heard for r in asked), "checked runs come from the spelling's key, not the near miss's"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Respeller([])
    with pytest.raises(ValueError, match="at least one"):
        Respeller(["  "])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        Respeller(["x"], threshold=0)
    with pytest.raises(ValueError, match="2 words but 1"):
        Respeller(["x"]).find(["a", "b"], [0.5])


def test_the_planner_gives_each_head_a_respeller_of_the_stream_s_and_the_server_s_hotwords(en_open) -> None:
    model = StreamingTransducer(en_open)
    cfg = EngineConfig(server_hotwords=(("zentrix labs", None),))
    _, _, speller = Planner(en_open, model, cfg.hotwords).adapt(HeadPlan(), Adaptation((("moreno", None),)))[0]
    assert speller is not None and speller.phrases == ["moreno", "zentrix labs"]
    assert speller.capitals is False, "en-open writes lowercase: its hotwords are lowercase whatever a run's case"
    assert speller.threshold == RESPELL_THRESHOLD
    off = EngineConfig(respell_threshold=0.0).hotwords
    assert Planner(en_open, model, off).adapt(HeadPlan(), Adaptation((("moreno", None),)))[0][2] is None
    # a stream may turn it off for itself (the start message's "respell": false)
    no = Adaptation((("moreno", None),), respell=False)
    assert Planner(en_open, model, cfg.hotwords).adapt(HeadPlan(), no)[0][2] is None
    # sounds_like of the stream's hotwords and of the server's
    heard = EngineConfig(
        server_hotwords=(("zentrix labs", None),), server_sounds_like=(("zentrix labs", ("centric labs",)),)
    )
    own = Adaptation((("Lombardi", 3.0),), sounds_like=(("Lombardi", ("lambary",)),))
    graph, _, speller = Planner(en_open, model, heard.hotwords).adapt(HeadPlan(), own)[0]
    assert speller is not None and graph is not None
    # the search is drawn to them too, at a share of their hotword's boost; not where respelling is off
    sp = en_open.heads[0].sp
    lambary, centric = sp.encode("lambary"), sp.encode("centric labs")
    assert graph.score(lambary) == pytest.approx(SOUNDS_LIKE_BOOST * 3.0 * len(lambary))
    assert graph.score(centric) == pytest.approx(SOUNDS_LIKE_BOOST * cfg.hotword_boost * len(centric))
    unspelled = Planner(en_open, model, heard.hotwords).adapt(HeadPlan(), replace(own, respell=False))[0][0]
    assert unspelled is not None and unspelled.score(lambary) == 0
    assert speller.apply(["centric", "labs", "and", "lambary"], [0.3, 0.9, 0.9, 0.2]) == [
        "zentrix labs",
        "and",
        "lombardi",
    ]


# A dev name of benchmarks/bench_hotwords.py that en-open spells "macalister" even with the default boost.
SENTENCE = "the letter from mcallister arrived after the storm"


def test_a_stream_s_final_carries_the_hotword_the_model_could_not_spell(en_open) -> None:
    from models.data.espeak import synthesize

    syn = synthesize(SENTENCE, voice="en-us", variant="m3", rate=160)

    def finals(respell_threshold: float) -> list[Final]:
        engine = Engine(en_open, EngineConfig(max_wait_ms=0, respell_threshold=respell_threshold))
        hotwords = Adaptation((("mcallister", None),))

        async def run() -> list[Final]:
            await engine.start()
            try:
                return await engine.recognize(syn.samples, syn.sample_rate, adaptation=hotwords)
            finally:
                await engine.close()

        return asyncio.run(run())

    without = " ".join(f.text for f in finals(0.0))
    assert "mcallister" not in without.split(), without
    (final,) = finals(RESPELL_THRESHOLD)
    assert "mcallister" in final.text.split(), (without, final.text)
    assert final.text == " ".join(w.text for w in final.words)
    word = next(w for w in final.words if w.text == "mcallister")
    assert 0 <= word.start < word.end <= final.end and word.conf < 1
    assert final.display is None or "mcallister" in final.display.lower()


def test_forced_log_probs_sum_every_alignment_of_one_symbol_per_frame(en_open) -> None:
    head = StreamingTransducer(en_open).heads[0]
    E = next(i.shape[-1] for i in head.head.joiner.get_inputs() if i.name == "encoder_out")
    enc = np.random.default_rng(0).normal(size=(5, E)).astype(np.float32)  # (T, E)
    context, seqs = [17], [[40, 7], [3], [], [5, 6, 7, 8, 9, 10]]

    def brute(seq: list[int]) -> float:
        """Every choice of the frames that emit (one token each, in order), the rest blank."""
        ctx, start = head.context_size, [*head.start_context, *context]
        dec = head.decoder(np.array([[*start, *seq[:u]][-ctx:] for u in range(len(seq) + 1)], dtype=np.int64))
        lp = np.stack([_log_softmax(head.joiner(np.repeat(enc[t : t + 1], len(dec), 0), dec)) for t in range(5)])
        total = -np.inf
        for emit in itertools.combinations(range(5), len(seq)):
            u, score = 0, 0.0
            for t in range(5):
                if t in emit:
                    score += lp[t, u, seq[u]]
                    u += 1
                else:
                    score += lp[t, u, head.blank_id]
            total = np.logaddexp(total, score)
        return float(total)

    got = forced_log_probs(head, enc, seqs, context)
    assert got[3] == -np.inf  # six tokens cannot come out of five frames
    np.testing.assert_allclose(got[:3], [brute(s) for s in seqs[:3]], rtol=1e-5)


# A dev name of benchmarks/bench_hotwords.py that en-open hears as "villa over" (sound-key closeness 0.62) even
# with the hotword boosted, and a name whose key is about as close to some run of that sentence.
CHECKED, CHECKED_VOICE, CHECKED_NAME, DECOY = "text villanueva that i'll bring bread", "m1", "villanueva", "novak"


def test_the_acoustic_check_takes_the_words_the_transducer_hears_not_any_that_sound_alike(en_open) -> None:
    """The finals' check (server/respell.py's `AcousticCheck`): on a dev name of benchmarks/bench_hotwords.py that
    en-open hears as other words, the name the speaker said passes and a name that sounds about as close does not."""
    from models.data.espeak import synthesize
    from parley.features import SAMPLE_RATE
    from parley.resample import resample

    syn = synthesize(CHECKED, voice="en-us", variant=CHECKED_VOICE, rate=160)
    model = StreamingTransducer(en_open)
    (t,) = transcribe_many(
        model, [resample(syn.samples, syn.sample_rate, SAMPLE_RATE)], SAMPLE_RATE, search="beam", keep_encoder=True
    )
    tokens = model.heads[0].head.tokens
    spans: list[list[int]] = []
    for k, tok in enumerate(t.tokens):
        if tokens[tok].startswith("\u2581") or not spans:
            spans.append([k, k])
        spans[-1][1] = k + 1
    words = [model.heads[0].head.sp.decode(t.tokens[i:j]).strip() for i, j in spans]
    assert CHECKED_NAME not in words, words
    speller = Respeller([CHECKED_NAME, DECOY])
    cands = speller.candidates(words, [0.0] * len(words), 0.5)
    said = [r for r in cands if r.phrase == CHECKED_NAME]
    decoys = [r for r in cands if r.phrase == DECOY]
    assert said and decoys and max(r.closeness for r in said) < RESPELL_THRESHOLD, cands
    check = AcousticCheck(model.heads[0], t.encoder_out, t.tokens, t.frames, [tuple(s) for s in spans])
    assert max(check.scores(said)) >= 0 > max(check.scores(decoys)), (said, decoys)
    assert CHECKED_NAME in speller.apply(words, [0.0] * len(words), check)
    assert CHECKED_NAME not in speller.apply(words, [0.0] * len(words))  # no check: only the close sound keys
    # more of the hotword's tokenizations: their probabilities add up (never less), the margin counts the usual one
    wide = AcousticCheck(model.heads[0], t.encoder_out, t.tokens, t.frames, [tuple(s) for s in spans], spellings=4)
    assert all(w >= n - 1e-9 for w, n in zip(wide.scores(said + decoys), check.scores(said + decoys), strict=True))
    assert max(w - n for w, n in zip(wide.scores(said), check.scores(said), strict=True)) > 0


def test_a_stream_s_final_checks_respellings_its_partials_do_not(en_open) -> None:
    """Through the recognizer as the server runs it: with the two hotwords the final gets the name from the acoustic
    check (turned off, respell_verify_threshold 1, it keeps the words heard), the partials never show a checked
    respelling, and the decoy stays out."""
    from models.data.espeak import synthesize

    syn = synthesize(CHECKED, voice="en-us", variant=CHECKED_VOICE, rate=160)
    model = StreamingTransducer(en_open)

    def results(verify_threshold: float) -> list[Result]:
        limits = EngineConfig(respell_verify_threshold=verify_threshold).hotwords
        adaptation = Planner(en_open, model, limits).adapt(
            HeadPlan(), Adaptation(((CHECKED_NAME, None), (DECOY, None)))
        )
        recognizer = Recognizer(model)
        stream = recognizer.open(search="beam", adaptation=adaptation, respell_from=True)
        assert stream.keeps_encoder_output == (verify_threshold < RESPELL_THRESHOLD)  # only for the check
        frontend = Frontend(recognizer.spec, syn.sample_rate)
        out: list[Result] = []

        def pump() -> None:
            while (chunk := frontend.pop_chunk()) is not None:
                out.extend(recognizer.step([(stream, chunk)])[0])

        frontend.accept(syn.samples)
        pump()
        frontend.finish()  # the end of the stream: the flush chunks
        pump()
        return out + recognizer.finish(stream, frontend.seconds_received)

    off = results(1.0)
    assert all(CHECKED_NAME not in r.text.split() for r in off), [r.text for r in off]
    on = results(RESPELL_VERIFY_THRESHOLD)
    finals = [r for r in on if isinstance(r, Final)]
    partials = [r for r in on if not isinstance(r, Final)]
    assert partials and all(CHECKED_NAME not in r.text.split() for r in partials)
    assert any(CHECKED_NAME in f.text.split() for f in finals), [f.text for f in finals]
    assert all(DECOY not in f.text.split() for f in finals)
    word = next(w for f in finals for w in f.words if w.text == CHECKED_NAME)
    assert 0 <= word.start < word.end and word.conf < 1
    # what settles a partial's words stops before the run the final respells (`Partial.respell_from`)
    final = next(f for f in finals if CHECKED_NAME in f.text.split())
    k = final.text.split().index(CHECKED_NAME)
    last = [r for r in partials if r.segment == final.segment][-1]
    run = [w for w in last.words if w.end > (last.respell_from or last.end)]
    assert last.respell_from is not None and len(last.words) - len(run) <= k, (last.text, last.respell_from, final.text)
