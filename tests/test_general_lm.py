"""A bundle's general LM ("default": true in bundle.json's "lms"): chosen with `parley lm default` or `parley lm
train --default`, checked when the bundle loads, and fused with beam search into every stream that asks for no search,
LM or hotwords of its own, unless the server's `--search` is greedy (server/plan.py, `Planner.defaulted`).

The bundle is a copy of bundles/en-small (model files linked) with two n-gram LMs from `parley lm train`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from models.data.espeak import synthesize
from models.train.lm_ngram import main as lm_main
from server.bundle import BundleError, load_bundle
from server.engine import Engine, EngineConfig
from server.plan import Adaptation
from server.protocol import INVALID_VALUE, ProtocolError, start_from_dict

ROOT = Path(__file__).resolve().parents[1]
EN_SMALL = ROOT / "bundles" / "en-small"
SENTENCE = "set a timer for ten minutes"  # what the audio says
LM_SENTENCE = "send a message to ten minutes"  # what the general LM has seen, over and over
START = {"type": "start", "sample_rate": 16000, "encoding": "s16le"}


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.name == "bundle.json" or f.name.startswith("lm-"):
            shutil.copyfile(f, dst / f.name)
        else:
            (dst / f.name).symlink_to(f.resolve())
    return dst


@pytest.fixture(scope="module")
def general_bundle(tmp_path_factory) -> Path:
    """en-small with a general LM "gen" (the default, heavily weighted) and another domain LM "other"."""
    folder = _copy(EN_SMALL, tmp_path_factory.mktemp("general") / "en-small")
    text = folder.parent / "general.txt"
    text.write_text(f"{LM_SENTENCE}\n" * 20)
    base = ["train", "--bundle", str(folder), "--type", "ngram"]
    assert lm_main([*base, "--text", str(text), "--name", "other"]) == 0
    assert (
        lm_main([*base, "--text", str(text), "--name", "gen", "--lm-scale", "3", "--ilm-scale", "0", "--default"]) == 0
    )
    return folder


def test_lm_default_chooses_one_general_lm_per_language(general_bundle: Path, tmp_path: Path) -> None:
    folder = _copy(general_bundle, tmp_path / "b")
    assert {k: v.default for k, v in load_bundle(folder, threads=1).lms.items()} == {"other": False, "gen": True}
    assert lm_main(["default", "--bundle", str(folder), "--name", "other"]) == 0
    entries = json.loads((folder / "bundle.json").read_text())["lms"]
    assert [e["name"] for e in entries if e.get("default")] == ["other"], "one default per language"
    assert "| other (default) |" in (folder / "README.md").read_text()
    assert lm_main(["default", "--bundle", str(folder), "--name", "none"]) == 0
    assert not any(lm.default for lm in load_bundle(folder, threads=1).lms.values())
    assert lm_main(["default", "--bundle", str(folder), "--name", "missing"]) == 2


def test_bundle_refuses_two_general_lms_or_a_general_source_lm(general_bundle: Path, tmp_path: Path) -> None:
    folder = _copy(general_bundle, tmp_path / "b")
    meta = json.loads((folder / "bundle.json").read_text())
    for e in meta["lms"]:
        e["default"] = True
    (folder / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="a second default LM for 'en'"):
        load_bundle(folder, threads=1)
    meta["lms"][0] |= {"default": True, "role": "source"}
    meta["lms"][1]["default"] = False
    (folder / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"lms\[0\]\.default: True, expected true or false \(true only for a domain"):
        load_bundle(folder, threads=1)
    meta["lms"][0] |= {"default": "yes", "role": "domain"}
    (folder / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"lms\[0\]\.default: 'yes'"):
        load_bundle(folder, threads=1)


def test_a_plain_stream_gets_beam_search_and_the_general_lm(general_bundle: Path) -> None:
    engine = Engine(load_bundle(general_bundle, threads=1))
    plan = engine.plan()
    assert engine.decoding == {"search": "beam", "beam": 4, "settle_ms": 640.0, "lm": "gen"}
    assert engine.search_for(None, None, 0, plan) == "beam"
    assert engine.defaulted(plan, "beam", None) == Adaptation(lm="gen")
    assert engine.search_for(None, None, 2, plan) == "beam"  # alternatives: the beam's, with the LM too
    # opting out: greedy search (no LM), "lm": "none" (beam search without it)
    assert engine.search_for("greedy", None, 0, plan) == "greedy"
    assert engine.defaulted(plan, "greedy", None) is None
    none = Adaptation(lm="none")
    assert engine.search_for(None, none, 0, plan) == "beam" and engine.defaulted(plan, "beam", none) == none
    assert engine.adapt(plan, none) == {}
    # a stream's own LM or hotwords: what it asked for, no general LM beside them
    own = Adaptation(lm="other")
    assert engine.defaulted(plan, "beam", own) == own
    hot = Adaptation(hotwords=(("marlow", None),))
    assert engine.defaulted(plan, "beam", hot) == hot
    # the server's --search greedy: no LM unless asked for; beam search when asked, without the general LM
    greedy = Engine(engine.bundle, EngineConfig(search="greedy"))
    assert greedy.decoding == {"search": "greedy"}
    assert greedy.search_for(None, None, 0, plan) == "greedy" and greedy.defaulted(plan, "beam", None) is None
    # a bundle without a general LM: greedy unless the server says beam
    plain = load_bundle(EN_SMALL, threads=1)
    assert Engine(plain).decoding == {"search": "greedy"}
    assert Engine(plain, EngineConfig(search="beam", beam=8, settle_ms=0)).decoding == {
        "search": "beam",
        "beam": 8,
        "settle_ms": 0,
    }


def test_the_general_lm_is_fused_into_a_plain_streams_search(general_bundle: Path) -> None:
    syn = synthesize(SENTENCE, voice="en-us", variant="m3", rate=160)
    engine = Engine(load_bundle(general_bundle, threads=1), EngineConfig(max_wait_ms=0))
    no_lm = Engine(load_bundle(EN_SMALL, threads=1), EngineConfig(max_wait_ms=0))

    async def run(search: str | None, adaptation: Adaptation | None, on: Engine = engine) -> str:
        await on.start()
        try:
            finals = await on.recognize(syn.samples, syn.sample_rate, search, adaptation=adaptation)
        finally:
            await on.close()
        return " ".join(f.text for f in finals)

    plain = asyncio.run(run(None, None))
    assert plain == asyncio.run(run("beam", Adaptation(lm="gen"))), "the default is the general LM, at its scales"
    assert plain == asyncio.run(run("beam", None)), "beam search asked for: the general LM too"
    assert plain != SENTENCE, "a heavily weighted LM of another sentence moves what the stream hears"
    beam_alone = asyncio.run(run("beam", None, no_lm))
    assert asyncio.run(run(None, Adaptation(lm="none"))) == beam_alone != plain  # "lm": "none": beam search alone
    assert asyncio.run(run("greedy", None)) == asyncio.run(run(None, None, no_lm)) == SENTENCE


def test_lm_none_is_a_start_field() -> None:
    assert start_from_dict({**START, "lm": "none", "search": "greedy"}).lm == "none"
    with pytest.raises(ProtocolError) as e:
        start_from_dict({**START, "lm": "none", "lm_scale": 0.5})
    assert e.value.code == INVALID_VALUE and "lm" in e.value.message


def test_a_greedy_streams_empty_context_brings_no_general_lm() -> None:
    """A context message makes a stream's search beam search (its hotwords need it); one that clears the hotwords of
    a stream that asked for greedy search must not bring the general LM with it."""
    from server.plan import HeadPlan
    from server.session import replace_hotwords

    class Recorder:
        def set_context(self, stream: object, plan: HeadPlan, adaptation: Adaptation) -> None:
            self.adaptation = adaptation

    for fields, lm in (({"search": "greedy"}, "none"), ({}, None), ({"lm": "other"}, "other")):
        engine = Recorder()
        replace_hotwords(engine, None, start_from_dict({**START, **fields}), HeadPlan(), ())  # type: ignore[arg-type]
        assert engine.adaptation.lm == lm and not engine.adaptation.hotwords, fields


def test_the_servers_beam_reaches_every_streams_search() -> None:
    """`parley serve --beam N`: each stream's beam keeps N hypotheses, so a final lists up to N alternatives."""
    syn = synthesize("text marlow that i'll bring bread", voice="en-us", variant="f2", rate=190)
    bundle = load_bundle(EN_SMALL, threads=1)

    async def alternatives(beam: int) -> int:
        engine = Engine(bundle, EngineConfig(max_wait_ms=0, beam=beam))
        await engine.start()
        try:
            finals = await engine.recognize(syn.samples, syn.sample_rate, "beam", alternatives=10)
        finally:
            await engine.close()
        return max(len(f.alternatives or ()) for f in finals)

    assert asyncio.run(alternatives(4)) <= 4 < asyncio.run(alternatives(8)) <= 8
