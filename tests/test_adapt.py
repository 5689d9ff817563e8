"""`parley adapt` (models/train/adapt.py): a bundle fine-tuned on synthesized speech of a domain's text.

One real run on a copy of bundles/en-small (with an n-gram LM added, to be carried over): three sentences, two
training steps, a three-utterance --mix; then its resume, and the errors a user can cause.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.data.engines import HELD_OUT_ENGINES, VOICES
from models.data.manifest import Utterance, read_manifest, write_manifest
from models.data.voices import TEST_VARIANTS
from models.train.adapt import main as adapt_main
from models.train.adapt import normalize_lines, stage_synth
from models.train.lm_ngram import main as lm_main
from models.train.tokenizer import Tokenizer
from models.train.warmstart import tensors_from_onnx
from parley.audio import write_wav
from server.bundle import load_bundle
from server.transducer import StreamingTransducer, transcribe_many
from tests._speech import spoken

EN_SMALL = Path(__file__).resolve().parents[1] / "bundles" / "en-small"
DOMAIN = "Book 2 tickets to Zanzibar, please.\n\nbook two tickets to zanzibar please\nCancel the Marlow booking!\n"
MIX = ("set a timer for ten minutes", "lock the back door", "call noah now")


def _mix_manifest(folder: Path) -> Path:
    """Three utterances standing in for the bundle's training data."""
    rng = random.Random(0)
    utts = []
    for i, text in enumerate(MIX):
        x = spoken("en", text, rng)
        write_wav(folder / f"mix-{i}.wav", x, 16000)
        utts.append(Utterance(f"en-train-{i:07d}", str(folder / f"mix-{i}.wav"), x.size / 16000, "en", text))
    write_manifest(folder / "mix.jsonl", utts)
    return folder / "mix.jsonl"


def _args(root: Path, **over: str) -> list[str]:
    args = {
        "--text": str(root / "domain.txt"),
        "--bundle": str(root / "en-small"),
        "--out": str(root / "en-small-domain"),
        "--work": str(root / "work"),
        "--mix": str(root / "mix.jsonl"),
        "--steps": "2",
        "--engines": "espeak",
        "--jobs": "1",
        "--threads": "2",
        "--num-workers": "0",
        "--max-seconds": "8",
        **over,
    }
    return [x for k, v in args.items() for x in (k, v)]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """The folder of one finished `parley adapt` run (source bundle copy, text, mix, work, output)."""
    root = tmp_path_factory.mktemp("adapt")
    shutil.copytree(EN_SMALL, root / "en-small")
    (root / "lm.txt").write_text("book two tickets\ncancel the booking\n")
    assert lm_main(["train", "--bundle", str(root / "en-small"), "--text", str(root / "lm.txt"), "--name", "dom",
                    "--type", "ngram", "--order", "2"]) == 0  # fmt: skip
    (root / "domain.txt").write_text(DOMAIN)
    _mix_manifest(root)
    cwd = os.getcwd()
    os.chdir(root)  # relative paths, as typed on a command line
    try:
        assert adapt_main(_args(Path("."))) == 0
    finally:
        os.chdir(cwd)
    return root


def test_adapted_bundle_loads_decodes_and_differs_from_the_source(run: Path) -> None:
    out = run / "en-small-domain"
    bundle = load_bundle(out, threads=1)  # every file's size and sha256 checked
    assert bundle.lms["dom"].language == "en" and "en" in bundle.punctuators
    model = StreamingTransducer(bundle)
    (text,) = transcribe_many(model, [spoken("en", "lock the back door", random.Random(3))], 16000)
    assert isinstance(text.text, str) and text.chunks > 0, text
    meta = json.loads((out / "bundle.json").read_text())
    src = json.loads((run / "en-small" / "bundle.json").read_text())
    assert meta["precisions"] == src["precisions"] == ["int8"] and meta["streaming"] == src["streaming"]
    assert meta["heads"][0]["blank_penalty"] == src["heads"][0]["blank_penalty"]
    enc, src_enc = meta["model"]["config"]["encoder"], src["model"]["config"]["encoder"]
    assert {k: enc[k] for k in src_enc} == src_enc  # the same architecture (later fields at their defaults)
    for f in ("bpe.model", "tokens.txt", "punct-en.onnx", src["lms"][0]["file"]):
        assert meta["files"][f] == src["files"][f], f  # carried over unchanged, listed with their size and hash
    old = tensors_from_onnx(EN_SMALL / "encoder.int8.onnx", "encoder")
    new = tensors_from_onnx(out / "encoder.int8.onnx", "encoder")
    assert old.keys() == new.keys()
    diff = max(float(np.abs(old[k] - new[k]).max()) for k in old)
    assert diff > 0, "fine-tuning left every encoder weight as it was"
    record = meta["adaptation"]
    assert record["source_bundle"] == "en-small" and record["steps"] == 2
    assert record["text"]["sentences"] == 2  # "2" verbalized makes line 1 a repeat of line 3; the empty line skipped
    assert record["synthesized"]["utterances"] == 2 and record["synthesized"]["hours"] > 0
    assert record["mix"]["utterances"] == 2 and record["mix"]["train"]["utterances"] == 4
    assert meta["training"]["data"]["utterances"] == 4  # the manifest once, however many passes training made


def test_stages_write_their_outputs_and_a_second_run_skips_them(run: Path, capsys) -> None:
    work = run / "work"
    synth = read_manifest(work / "synth" / "train.jsonl")
    assert [u.text for u in synth] == ["book two tickets to zanzibar please", "cancel the marlow booking"]
    assert all(u.id.startswith("adapt-en-") and Path(u.audio).is_file() for u in synth)
    mixed = read_manifest(work / "train.jsonl")
    assert {u.text for u in mixed[2:]} <= set(MIX) and len(mixed) == 4
    outputs = [work / "init.pt", work / "train" / "last.pt", run / "en-small-domain" / "encoder.int8.onnx"]
    before = {p: p.stat().st_mtime_ns for p in outputs}
    assert adapt_main(_args(run)) == 0
    out = capsys.readouterr().out
    assert sum("(done)" in line for line in out.splitlines()) == 6, out
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_another_text_in_the_same_work_folder_is_refused(run: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text("turn on the lights\n")
    work = tmp_path / "work"
    shutil.copytree(run / "work", work, ignore=shutil.ignore_patterns("*.pt", "wav"))
    (work / "sentences.jsonl").unlink()
    with pytest.raises(SystemExit, match="other text_sha256"):
        adapt_main(_args(run, **{"--text": str(other), "--work": str(work), "--out": str(tmp_path / "o")}))


def test_missing_or_empty_text_and_unadaptable_bundles_are_refused(tmp_path: Path) -> None:
    base = {"--bundle": str(EN_SMALL), "--out": str(tmp_path / "out"), "--work": str(tmp_path / "work")}
    with pytest.raises(SystemExit, match=r"text file .* not found"):
        adapt_main(_args(tmp_path, **base, **{"--text": str(tmp_path / "nope.txt")}))
    (tmp_path / "empty.txt").write_text("\n  \n!!!\n")
    with pytest.raises(SystemExit, match="no sentences"):
        adapt_main(_args(tmp_path, **base, **{"--text": str(tmp_path / "empty.txt")}))
    assert not (tmp_path / "work").exists()
    with pytest.raises(SystemExit, match="new folder"):
        adapt_main(_args(tmp_path, **{**base, "--out": str(EN_SMALL), "--text": str(tmp_path / "empty.txt")}))
    imported = tmp_path / "imported"
    imported.mkdir()
    meta = json.loads((EN_SMALL / "bundle.json").read_text())
    del meta["model"]
    (imported / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(SystemExit, match=r"no model\.config"):
        adapt_main(_args(tmp_path, **{**base, "--bundle": str(imported), "--text": str(tmp_path / "empty.txt")}))
    with pytest.raises(SystemExit, match="no bundle"):
        adapt_main(_args(tmp_path, **{**base, "--bundle": str(tmp_path), "--text": str(tmp_path / "empty.txt")}))


def test_text_is_verbalized_normalized_and_deduplicated() -> None:
    tok = Tokenizer(EN_SMALL / "bpe.model")
    kept, dropped = normalize_lines(["Meet me at 5 p.m.!", "", "meet me at five p m", "Grüße ☃ x", "  "], "en", tok)
    assert [s["text"] for s in kept] == ["meet me at five p m"] and kept[0]["display"] == "Meet me at five p m!"
    assert dropped == ["Grüße ☃ x"]  # characters the bundle's tokenizer has no piece for


def test_synthesis_uses_training_engines_and_voices_only(tmp_path: Path) -> None:
    sentences = [{"text": t, "display": t, "language": "en"} for t in ("open the window", "close the door")]
    utts = stage_synth(sentences, tmp_path, "en", 3, ("espeak", "pico", "festival", "mbrola"), 0, 1, augment=False)
    assert len(utts) == 6 and [u.text for u in utts[:3]] == ["open the window"] * 3
    assert len({u.engine for u in utts}) > 1, [u.voice for u in utts]  # seed 0 draws pico, mbrola and espeak
    for u in utts:
        assert u.engine not in HELD_OUT_ENGINES, u.voice
        name = u.voice.split(":", 1)[1].split("/")[0]
        if u.engine == "espeak":
            assert name.split("+")[-1] not in TEST_VARIANTS, u.voice
        else:
            assert name not in VOICES[u.engine]["en"][1], u.voice  # not one of the engine's test voices
