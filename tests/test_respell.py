"""Hotword respelling (server/respell.py): the sound key, the choice of runs, and a stream whose final comes out with
the hotword the model could not spell."""

import asyncio
import random
from pathlib import Path

import pytest

from server.bundle import load_bundle
from server.engine import Engine, EngineConfig
from server.plan import Adaptation, HeadPlan, Planner
from server.recognizer import Final
from server.respell import RESPELL_THRESHOLD, Respeller, closeness, edit_distance_within, sound_key
from server.transducer import StreamingTransducer

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


def test_overlapping_candidates_keep_the_closest() -> None:
    speller = Respeller(["moreno", "morrow"], threshold=0.6)
    found = speller.find(["more", "no"], [0.3, 0.3])
    assert [(r.start, r.end, r.phrase) for r in found] == [(0, 2, "moreno")]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Respeller([])
    with pytest.raises(ValueError, match="at least one"):
        Respeller(["  "])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        Respeller(["x"], threshold=0)
    with pytest.raises(ValueError, match="2 words but 1"):
        Respeller(["x"]).find(["a", "b"], [0.5])


@pytest.fixture(scope="module")
def en_open():
    return load_bundle(ROOT / "bundles" / "en-open", providers="cpu", threads=1)


def test_the_planner_gives_each_head_a_respeller_of_the_stream_s_and_the_server_s_hotwords(en_open) -> None:
    model = StreamingTransducer(en_open)
    cfg = EngineConfig(server_hotwords=(("zentrix labs", None),))
    _, _, speller = Planner(en_open, model, cfg.hotwords).adapt(HeadPlan(), Adaptation((("moreno", None),)))[0]
    assert speller is not None and speller.phrases == ["moreno", "zentrix labs"]
    assert speller.threshold == RESPELL_THRESHOLD
    off = EngineConfig(respell_threshold=0.0).hotwords
    assert Planner(en_open, model, off).adapt(HeadPlan(), Adaptation((("moreno", None),)))[0][2] is None
    # a stream may turn it off for itself (the start message's "respell": false)
    no = Adaptation((("moreno", None),), respell=False)
    assert Planner(en_open, model, cfg.hotwords).adapt(HeadPlan(), no)[0][2] is None


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
