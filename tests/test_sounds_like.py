"""`parley hotwords learn` (models/data/sounds_like.py): where a carrier sentence's hotword was in the recognized words,
which of what was heard is kept, and a learned hotword that a stream's final then carries."""

import asyncio
import json
from pathlib import Path

import pytest

from models.data.engines import MBROLA_PITCH, PITCH_TRAIN, RATE, EngineVoice
from models.data.sounds_like import (
    CARRIERS,
    Hotword,
    learn,
    learning_voices,
    main,
    read_hotwords,
    slot_words,
    ways_of_writing,
)
from models.data.voices import Voice
from server.engine import Engine, EngineConfig
from server.plan import Adaptation

ROOT = Path(__file__).resolve().parents[1]


def test_the_slot_is_what_lies_between_the_carrier_words_recognized() -> None:
    assert slot_words("i spoke with {}", ["i", "spoke", "with", "long", "bary"]) == ["long", "bary"]
    assert slot_words("{}", ["lambary"]) == ["lambary"]
    assert slot_words("this is {}", ["this", "his", "lambary"]) == ["his", "lambary"], "a carrier word misheard: kept"
    assert slot_words("hello {} today", ["hello", "lambary", "to", "day"]) == ["lambary", "to", "day"]
    assert slot_words("i spoke with {}", ["i", "spoke", "with"]) == []


def test_what_was_heard_is_kept_when_frequent_like_the_hotword_and_no_everyday_words() -> None:
    heard = ["lambary"] * 3 + ["long bary"] * 2 + ["lombardi"] * 4 + ["table"] * 3 + ["lemary", ""] + ["lam bar"] * 2
    heard += ["a b c d lambary"] * 2
    assert ways_of_writing("lombardi", heard) == ["lambary", "lam bar", "long bary"]
    assert ways_of_writing("lombardi", heard, min_count=1, limit=4) == ["lambary", "lam bar", "long bary", "lemary"]
    assert ways_of_writing("lombardi", heard, everyday=lambda w: w == "lam bar") == ["lambary", "long bary"]


def test_learning_voices_add_drawn_training_speeds_and_pitches_to_the_other_engines() -> None:
    engines = ("espeak", "pico", "festival", "mbrola", "flite")
    plain = learning_voices(engines, espeak_voices=3, seed=1)
    drawn = learning_voices(engines, espeak_voices=3, seed=1, prosody_draws=2)
    espeak = [v for v in plain if v.engine == "espeak"]
    others = [v for v in plain if v.engine != "espeak"]
    assert len(espeak) == 3 and [v for v in drawn if v.engine == "espeak"] == espeak, "espeak's draws unchanged"
    assert all(v.rate == 1.0 and v.pitch == 1.0 for v in others), "the other engines at their defaults"
    extra = [v for v in drawn if v.engine != "espeak" and v not in others]
    assert len(extra) == 2 * len(others), "two drawn speakers more for each voice"
    for v in extra:
        pitches = MBROLA_PITCH if v.engine == "mbrola" else PITCH_TRAIN
        assert RATE[0] <= v.rate <= RATE[1] and pitches[0] <= v.pitch <= pitches[1], v.name
    assert len({v.name for v in drawn}) == len(drawn), "every speaker differs"
    assert learning_voices(engines, 3, seed=1, prosody_draws=2) == drawn, "seeded"


def test_the_hotwords_file_is_text_or_json(tmp_path: Path) -> None:
    t = tmp_path / "names.txt"
    t.write_text("# contacts\nlombardi\nzentrix labs\t3\n\n")
    assert read_hotwords(t) == [Hotword("lombardi"), Hotword("zentrix labs", 3.0)]
    j = tmp_path / "names.json"
    j.write_text('["lombardi", {"phrase": "zentrix labs", "boost": 3}]')
    assert read_hotwords(j) == read_hotwords(t)
    j.write_text('[{"phrase": "lombardi", "boost": 99}]')
    with pytest.raises(ValueError, match="boost"):
        read_hotwords(j)


@pytest.fixture(scope="module")
def learned() -> tuple[dict, dict]:
    """en-open hears "delacroix" (a dev name of benchmarks/bench_hotwords.py) said by two espeak-ng speakers."""
    voices = [
        EngineVoice("espeak", "en", "en-us", espeak_voice=Voice("en", "en-us", variant, 50, 160, 50, 0))
        for variant in ("m2", "f1")
    ]
    return learn(ROOT / "bundles" / "en-open", ["Delacroix"], voices, min_count=1, progress=False)


def test_learning_hears_the_hotword_in_every_carrier(learned) -> None:
    ways, stats = learned
    assert stats["Delacroix"]["said"] == 2 * len(CARRIERS)
    assert sum(stats["Delacroix"]["heard"].values()) == 2 * len(CARRIERS)
    assert ways["Delacroix"], stats
    assert all(w != "delacroix" and w in stats["Delacroix"]["heard"] for w in ways["Delacroix"])


def test_a_final_carries_a_hotword_only_its_sounds_like_brought(learned) -> None:
    """A sentence whose name respelling alone misses (its run is too far from "delacroix"'s own key) comes out with
    it once the learned sounds_like are given, from a voice the learning did not use."""
    from models.data.espeak import synthesize
    from server.bundle import load_bundle

    ways, _ = learned
    bundle = load_bundle(ROOT / "bundles" / "en-open", providers="cpu", threads=1)
    syn = synthesize("do i have any new messages from delacroix", voice="en-us", variant="f2", rate=160)

    def final_text(sounds_like: tuple) -> str:
        engine = Engine(bundle, EngineConfig(max_wait_ms=0))
        adaptation = Adaptation((("delacroix", None),), sounds_like=sounds_like)

        async def run() -> str:
            await engine.start()
            try:
                finals = await engine.recognize(syn.samples, syn.sample_rate, adaptation=adaptation)
            finally:
                await engine.close()
            return " ".join(f.text for f in finals)

        return asyncio.run(run())

    without = final_text(())
    assert "delacroix" not in without.split(), without
    with_ways = final_text((("delacroix", tuple(ways["Delacroix"])),))
    assert "delacroix" in with_ways.split(), (without, with_ways, ways)


def test_the_command_writes_start_message_hotwords(tmp_path: Path, capsys) -> None:
    names = tmp_path / "names.txt"
    names.write_text("delacroix\t3\n")
    out = tmp_path / "names.json"
    rc = main(
        ["learn", "--hotwords", str(names), "--out", str(out), "--engines", "espeak", "--espeak-voices", "1",
         "--min-count", "1"]
    )  # fmt: skip
    assert rc == 0
    (item,) = json.loads(out.read_text())
    assert item["phrase"] == "delacroix" and item["boost"] == 3.0 and isinstance(item["sounds_like"], list)
    assert "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["learn", "--hotwords", str(tmp_path / "missing.txt"), "--out", str(out)])
    with pytest.raises(SystemExit):
        main(["learn", "--bundle", str(tmp_path), "--hotwords", str(names), "--out", str(out)])
    assert "bundle.json: missing" in capsys.readouterr().err


def test_a_stream_takes_sounds_like_in_its_start_its_context_and_the_server_s_file(learned, tmp_path: Path) -> None:
    """Over the WebSocket: the start's hotword objects carry sounds_like, a context message's too, and a JSON
    `--hotwords-file` gives them to every stream; a bad one is an invalid_value."""
    from fastapi.testclient import TestClient

    from models.data.espeak import synthesize
    from server.app import create_app
    from server.settings import Settings

    ways, _ = learned
    item = {"phrase": "delacroix", "sounds_like": ways["Delacroix"]}
    syn = synthesize("do i have any new messages from delacroix", voice="en-us", variant="f2", rate=160)
    pcm = (syn.samples * 32767).astype("<i2").tobytes()
    folder = tmp_path / "bundles"
    folder.mkdir()
    (folder / "en-open").symlink_to(ROOT / "bundles" / "en-open")

    def said(client, start: dict, context: dict | None = None) -> str:
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_json({"type": "start", "sample_rate": syn.sample_rate, "encoding": "s16le", **start})
            assert ws.receive_json()["type"] == "ready"
            if context is not None:
                ws.send_json(context)
            for i in range(0, len(pcm), 6400):
                ws.send_bytes(pcm[i : i + 6400])
            ws.send_json({"type": "stop"})
            texts = []
            while (msg := ws.receive_json())["type"] != "end":
                assert msg["type"] != "error", msg
                if msg["type"] == "final":
                    texts.append(msg["text"])
            return " ".join(texts)

    with TestClient(create_app(Settings(bundles=folder))) as client:
        assert "delacroix" not in said(client, {"hotwords": ["delacroix"]}).split()
        assert "delacroix" in said(client, {"hotwords": [item]}).split()
        context = {"type": "context", "hotwords": [item]}
        assert "delacroix" in said(client, {"hotwords": ["zentrix"]}, context).split()
        with client.websocket_connect("/v1/stream") as ws:
            bad = {**item, "sounds_like": "delawa"}
            ws.send_json({"type": "start", "sample_rate": 16000, "encoding": "s16le", "hotwords": [bad]})
            msg = ws.receive_json()
            assert msg["type"] == "error" and msg["code"] == "invalid_value" and "sounds_like" in msg["message"]
    names = tmp_path / "names.json"
    names.write_text(json.dumps([item]))
    with TestClient(create_app(Settings(bundles=folder, hotwords_file=names))) as client:
        assert "delacroix" in said(client, {}).split()


def test_the_clients_send_a_hotwords_file_as_start_message_items(tmp_path: Path) -> None:
    import argparse

    from clients.stream import add_hotwords_argument, read_hotwords_file, resolve_hotwords

    text = tmp_path / "names.txt"
    text.write_text("# contacts\nlombardi\nzentrix labs\t3\n")
    assert read_hotwords_file(str(text)) == ["lombardi", {"phrase": "zentrix labs", "boost": 3.0}]
    learned = tmp_path / "names.json"
    learned.write_text('[{"phrase": "lombardi", "sounds_like": ["lambary"]}]')
    p = argparse.ArgumentParser()
    add_hotwords_argument(p)
    a = p.parse_args(["--hotwords", "kowalczyk", "--hotwords-file", str(learned)])
    resolve_hotwords(p, a)
    assert a.hotwords == ["kowalczyk", {"phrase": "lombardi", "sounds_like": ["lambary"]}]
    for bad, why in (
        ("x.json", "No such file"),
        ("bad.json", "not JSON"),
        ("obj.json", "a JSON list"),
        ("b.txt", "line 1"),
    ):
        path = tmp_path / bad
        if bad != "x.json":
            path.write_text({"bad.json": "[1,", "obj.json": '{"phrase": "x"}', "b.txt": "x\tloud\n"}[bad])
        with pytest.raises(ValueError, match=why):
            read_hotwords_file(str(path))


def test_parley_transcribe_takes_a_learned_hotwords_file(learned, tmp_path: Path, capsys) -> None:
    from models.data.espeak import synthesize
    from parley.audio import write_wav
    from server.transcribe import main as transcribe_main

    ways, _ = learned
    syn = synthesize("do i have any new messages from delacroix", voice="en-us", variant="f2", rate=160)
    wav = tmp_path / "said.wav"
    write_wav(wav, syn.samples, syn.sample_rate)
    names = tmp_path / "names.json"
    names.write_text(json.dumps(["delacroix"]))
    bundles = ["--bundles", str(ROOT / "bundles"), "--model", "en-open", "--format", "vtt"]
    assert transcribe_main([str(wav), *bundles, "--hotwords-file", str(names)]) == 0
    assert "delacroix" not in capsys.readouterr().out.lower()
    names.write_text(json.dumps([{"phrase": "delacroix", "sounds_like": ways["Delacroix"]}]))
    assert transcribe_main([str(wav), *bundles, "--hotwords-file", str(names)]) == 0
    assert "delacroix" in capsys.readouterr().out.lower()
    assert transcribe_main([str(wav), *bundles, "--hotwords-file", str(tmp_path / "none.json")]) == 2
    assert "no such file" in capsys.readouterr().err
