"""t-SOT: label serialization and its inverse, cpWER, mixture simulation, the `<cc>` token, and a multi-talker bundle
served end to end (results carry `speakers` and a `speaker` on every word)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.data.manifest import Word, read_manifest
from models.data.mixtures import MixConfig, plan_mixtures, simulate
from models.data.tsot import assign_channels, serialize
from models.eval.evaluate_tsot import cpwer, cpwer_counts, overlap_bucket, score_mixtures
from models.train.tokenizer import Tokenizer
from parley.audio import read_wav
from parley.contract import CHANNEL_CHANGE as CC
from parley.contract import CHANNEL_CHANGE_ID as CC_ID
from server.tsot import split_channels, strip_channel_changes

ROOT = Path(__file__).resolve().parents[1]


def _words(spec: str, offset: float = 0.0) -> list[Word]:
    """'hello:0-0.4 there:0.5-0.9' -> Words, shifted by `offset` seconds."""
    out = []
    for item in spec.split():
        w, span = item.split(":")
        a, b = span.split("-")
        out.append(Word(w, float(a) + offset, float(b) + offset))
    return out


# ---- Serialization and its inverse ----


def test_words_sorted_by_end_time_with_cc_at_channel_changes() -> None:
    a = _words("set:0.0-0.3 a:0.35-0.4 timer:0.5-0.9 please:1.0-1.4")
    b = _words("yes:0.2-0.45 ok:1.1-1.2")
    s = serialize([("alice", a), ("bob", b)])
    assert s.text == "set a <cc> yes <cc> timer <cc> ok <cc> please"
    assert [w.end for w in s.words] == sorted(w.end for w in s.words)
    assert [(w.word, w.channel, w.speaker) for w in s.words[1:3]] == [("a", 0, "alice"), ("yes", 1, "bob")]
    assert s.channel_texts() == ["set a timer please", "yes ok"]


def test_channels_are_reused_and_limited_to_two() -> None:
    # The second talker starts after the first ended: both on channel 0, no <cc>.
    s = serialize([("alice", _words("hi:0.0-0.3")), ("bob", _words("yes:0.5-0.8"))])
    assert s.text == "hi yes" and {w.channel for w in s.words} == {0}
    # Three utterances: the third starts when the first has ended and takes its channel back.
    assert assign_channels([(0.0, 1.0), (0.5, 2.0), (1.2, 3.0)]) == [0, 1, 0]
    with pytest.raises(ValueError, match="overlap"):
        assign_channels([(0.0, 2.0), (0.5, 2.0), (1.0, 3.0)])
    # An utterance whose first word ends after the overlapping talker's: the stream opens with a <cc>.
    s = serialize([("alice", _words("looong:0.0-1.0")), ("bob", _words("hi:0.1-0.3"))])
    assert s.text == "<cc> hi <cc> looong"


def test_split_inverts_serialization() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        spans = []
        for spk in ("a", "b"):
            t = float(rng.uniform(0, 2))
            ws = []
            for i in range(int(rng.integers(1, 8))):
                d = float(rng.uniform(0.1, 0.5))
                ws.append(Word(f"{spk}{i}", t, t + d))
                t += d + float(rng.uniform(0, 0.2))
            spans.append((spk, ws))
        s = serialize(spans)
        channels = split_channels(s.text)
        by_channel = [[w.word for w in s.words if w.channel == c] for c in (0, 1)]
        assert channels == by_channel, (s.text, by_channel)
        assert sorted(channels[0] + channels[1]) == sorted(w.word for _, ws in spans for w in ws)
        assert strip_channel_changes(s.text) == " ".join(w.word for w in s.words)
        glued = s.text.replace(" <cc> ", "<cc> ")  # as sherpa-onnx writes it
        assert split_channels(glued) == channels and strip_channel_changes(glued) == strip_channel_changes(s.text)


def test_tokenizer_encodes_cc_as_one_piece() -> None:
    tok = Tokenizer(ROOT / "models" / "lang" / "en" / "bpe.model")
    assert tok.id_to_piece(CC_ID) == CC == "<cc>" and CC_ID == 1
    text = "set a timer <cc> yes <cc> please"
    ids = tok.encode(text)
    assert ids.count(CC_ID) == 2
    parts = [tok.encode(t) for t in ("set a timer", "yes", "please")]
    assert ids == [*parts[0], CC_ID, *parts[1], CC_ID, *parts[2]], "each side encoded on its own, no stray pieces"
    assert tok.decode(ids) == text


# ---- cpWER ----


def test_cpwer_known_cases() -> None:
    refs = ["set a timer", "yes please"]
    assert cpwer([refs], [["set a timer", "yes please"]]) == 0.0
    assert cpwer([refs], [["yes please", "set a timer"]]) == 0.0, "swapped channels cost nothing"
    c = cpwer_counts(refs, ["yes please", "set the timer"])
    assert (c.errors, c.substitutions, c.reference_words) == (1, 1, 5)
    # Everything on one channel: 2 insertions there, 2 deletions on the other.
    assert cpwer([refs], [["set a timer yes please"]]) == pytest.approx(4 / 5)
    assert cpwer([["hello", ""]], [["hello", "there"]]) == 1.0  # one insertion over one reference word
    assert [overlap_bucket(x) for x in (0.0, 0.1, 0.2, 0.3, 0.5)] == ["0", "0-20", "0-20", "20-40", "40+"]
    lines = [{"text": "a b <cc> c", "channels": ["a b", "c"], "overlap": 0.3}, {"text": "x y", "overlap": 0.0}]
    rows = score_mixtures(lines, ["c <cc> a b", "x z"])
    assert rows["20-40"]["cpwer"] == 0.0 and rows["0"]["errors"] == 1 and rows["all"]["words"] == 5


# ---- Mixture simulation ----


def test_mixture_plans_are_deterministic_with_librispeechmix_overlap() -> None:
    rng = np.random.default_rng(1)
    durations = rng.uniform(2.0, 6.0, 100).tolist()
    voices = [f"v{i % 7}" for i in range(100)]
    cfg = MixConfig(p_single=0.1, p_sequential=0.1)
    plans = plan_mixtures(durations, voices, 1000, seed=3, cfg=cfg)
    assert plans == plan_mixtures(durations, voices, 1000, seed=3, cfg=cfg)
    assert plans[:10] != plan_mixtures(durations, voices, 10, seed=4, cfg=cfg)
    kinds = [p.kind for p in plans]
    assert 0.06 < kinds.count("single") / 1000 < 0.14 and 0.06 < kinds.count("sequential") / 1000 < 0.14
    for p in plans:
        assert p.second is None or voices[p.first] != voices[p.second]
        assert -5 <= p.gain_db <= 5
        if p.kind != "overlap":
            assert p.overlap == 0.0
    overlaps = [p.overlap for p in plans if p.kind == "overlap"][:200]
    mean = float(np.mean(overlaps))
    assert 0.25 < mean < 0.45, f"mean overlap {mean:.3f} (LibriSpeechMix: about 0.3-0.4 for similar durations)"
    assert all(0 < x <= 1 for x in overlaps)


def test_simulate_writes_audio_and_tsot_labels(tiny_corpus: Path, tmp_path: Path) -> None:
    src = tiny_corpus / "en" / "dev.jsonl"
    cfg = MixConfig(p_single=0.2, p_sequential=0.2)
    path = simulate(src, tmp_path / "a", 8, seed=5, cfg=cfg, jobs=1)
    again = simulate(src, tmp_path / "b", 8, seed=5, cfg=cfg, jobs=2)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines == [json.loads(x) for x in again.read_text().splitlines()], "same seed, same mixtures"
    assert not list((tmp_path / "a" / "wav").rglob("*.json")), "sidecars are gone once mix.jsonl is written"
    # An interrupted run: no mix.jsonl, some mixtures finished (WAV + sidecar). The rerun keeps those and makes
    # the rest; here a finished sidecar is marked to show it is read back, not recomputed.
    (tmp_path / "b" / "mix.jsonl").unlink()
    wavs = sorted((tmp_path / "b" / "wav").rglob("*.wav"))
    for wav in wavs[3:]:
        wav.unlink()
    for i, wav in enumerate(wavs[:3]):
        wav.with_suffix(".json").write_text(json.dumps({**lines[i], "gain_db": 99.0 + i}))
    path_b = simulate(src, tmp_path / "b", 8, seed=5, cfg=cfg, jobs=2)
    resumed = [json.loads(x) for x in path_b.read_text().splitlines()]
    assert [x["gain_db"] for x in resumed[:3]] == [99.0, 100.0, 101.0]
    assert resumed[3:] == lines[3:]
    utts = read_manifest(path)
    assert len(utts) == 8
    for line, utt in zip(lines, utts, strict=True):
        x, sr = read_wav(utt.audio)
        assert sr == 16000 and abs(x.size / sr - utt.duration) < 1e-3 and np.abs(x).max() <= 1.0
        assert line["channels"] == [" ".join(ws) for ws in split_channels(utt.text)]
        ends = [w["end"] for w in line["tsot_words"]]
        assert ends == sorted(ends) and max(ends) <= utt.duration + 1e-3
        assert len(line["sources"]) == (1 if line["kind"] == "single" else 2)
        if line["kind"] != "overlap":
            assert "<cc>" not in utt.text and line["overlap"] == 0.0
    # `parley train` takes the manifest as is: its data path encodes the label text, <cc> included.
    from export.bundle import infer_post_processing
    from models.train.dataset import UtteranceDataset

    tok = Tokenizer(ROOT / "models" / "lang" / "en" / "bpe.model")
    ds = UtteranceDataset(utts, tok.encode, None, None)
    assert [t.tolist().count(CC_ID) for t in ds.tokens] == [u.text.split().count(CC) for u in utts]
    expected = "tsot" if any(CC in u.text for u in utts) else "none"
    assert infer_post_processing({"train_config": {"train": [str(path)]}}) == expected
    assert infer_post_processing({"train_config": {"train": [str(src)]}}) == "none"


# ---- A multi-talker bundle served end to end ----


@pytest.fixture(scope="module")
def tsot_bundles(tmp_path_factory) -> Path:
    """A tiny random bundle exported with --post-processing tsot, its joiner nudged to emit <cc> now and then."""
    import torch

    from export.bundle import main as export_main
    from models.nn.checkpoint import load_model
    from parley.contract import BLANK_ID
    from parley.features import compute_fbank
    from tests.test_export import EN_BPE, SETTINGS, SR, make_tiny_checkpoint, synthetic_audio

    root = tmp_path_factory.mktemp("tsot")
    ck_path = make_tiny_checkpoint(root / "tiny.pt", seed=1)
    model, ck = load_model(ck_path)
    with torch.no_grad():
        feats = torch.from_numpy(compute_fbank(synthetic_audio(2.0, 0), SR))
        enc, _ = model.encoder(feats[None], torch.tensor([feats.shape[0]]), SETTINGS.chunk, SETTINGS.left_chunks)
        dec = model.joiner.decoder_proj(model.decoder(torch.full((1, model.cfg.context_size), BLANK_ID)))
        logits = model.joiner(model.joiner.encoder_proj(enc[0]), dec)  # (T, V)
        others = torch.cat([logits[:, BLANK_ID + 1 : CC_ID], logits[:, CC_ID + 1 :]], dim=-1).max(-1).values
        model.joiner.output.bias[CC_ID] += (others - logits[:, CC_ID]).quantile(0.6)
    ck["model"] = model.state_dict()
    torch.save(ck, ck_path)
    out = root / "bundles" / "tiny-tsot"
    args = ["--checkpoint", str(ck_path), "--tokenizer", str(EN_BPE), "--name", "tiny-tsot", "--out", str(out)]
    args += ["--chunk-ms", str(SETTINGS.chunk_ms), "--history-ms", str(SETTINGS.history_ms)]
    assert export_main([*args, "--post-processing", "tsot"]) == 0
    return out.parent


def test_tsot_bundle_json(tsot_bundles: Path) -> None:
    from server.bundle import load_bundle

    meta = json.loads((tsot_bundles / "tiny-tsot" / "bundle.json").read_text())
    assert meta["kind"] == "tsot" and meta["heads"][0]["post_processing"] == "tsot"
    bundle = load_bundle(tsot_bundles / "tiny-tsot", providers="cpu", threads=1)
    assert bundle.heads[0].post_processing == "tsot"


def test_sherpa_onnx_loads_the_tsot_bundle_like_any_other(tsot_bundles: Path) -> None:
    """sherpa-onnx decodes a t-SOT bundle as a plain transducer: the same tokens as Parley at one symbol per frame,
    <cc> included, and they split into the same channels."""
    from server.transducer import transcribe
    from tests.test_export import SR, _padded_audio, _recognizer, _sherpa, _sherpa_ids

    folder = tsot_bundles / "tiny-tsot"
    rec = _recognizer(folder)
    x, _ = _padded_audio(3.0, 0)
    ours = transcribe(rec, x, SR, tail_padding_ms=0, max_symbols_per_frame=1)
    sherpa = _sherpa(folder, x)
    assert CC_ID in ours.tokens, "the nudged joiner emits <cc>"
    assert _sherpa_ids(sherpa, rec.heads[0].head.tokens) == ours.tokens
    joined = "".join(sherpa.tokens)  # its text lacks a first character when the first token is <cc>
    assert split_channels(joined) == split_channels(ours.text) and all(split_channels(ours.text))


def _check_result(msg: dict) -> None:
    """`speakers` and each word's `speaker` agree with the text."""
    speakers = msg["speakers"]
    assert [s["speaker"] for s in speakers] == [0, 1], speakers
    assert "<cc>" not in msg["text"]
    words = msg["words"]  # partials and finals alike
    assert " ".join(w["word"] for w in words) == msg["text"]
    for c in (0, 1):
        assert " ".join(w["word"] for w in words if w["speaker"] == c) == speakers[c]["text"], msg
    assert all(0 <= w["start"] <= w["end"] <= msg["end"] for w in words), msg


def test_server_results_carry_speakers(tsot_bundles: Path) -> None:
    from tests.test_server import audio, running, stream

    with running(tsot_bundles, endpointing=False) as server:
        r = stream(server.url, audio(3.0, 0), chunk_ms=100)
    assert r.ok and r.close_code == 1000, r.error
    results = [m.message for m in r.received if m.message["type"] in ("partial", "final")]
    assert results and any(m["type"] == "partial" for m in results) and len(r.finals) == 1
    for m in results:
        _check_result(m)
    (final,) = r.finals
    assert final["speakers"][0]["text"] and final["speakers"][1]["text"], f"the nudged joiner emits <cc>: {final}"


def test_single_talker_results_unchanged(tiny_bundles: Path) -> None:
    from tests.test_server import audio, running, stream

    folder = tiny_bundles.parent / "single-only"
    if not folder.exists():
        shutil.copytree(tiny_bundles, folder)
    with running(folder, endpointing=False) as server:
        r = stream(server.url, audio(2.0, 1), chunk_ms=100)
    assert r.ok, r.error
    for m in r.received:
        assert "speakers" not in m.message
        assert all("speaker" not in w for w in m.message.get("words", []))


def test_mix_and_eval_tsot_commands(tiny_corpus: Path, tsot_bundles: Path, tmp_path: Path, capsys) -> None:
    from models.data.mixtures import main as mix_main
    from models.eval.evaluate_tsot import main as eval_main
    from tests.test_export import EN_BPE

    src = tiny_corpus / "en" / "test.jsonl"
    assert mix_main(["--manifest", str(src), "--out", str(tmp_path / "mix"), "--n", "4", "--seed", "0"]) == 0
    ck = tsot_bundles.parent / "tiny.pt"
    args = ["--checkpoint", str(ck), "--tokenizer", str(EN_BPE), "--mixtures", str(tmp_path / "mix" / "mix.jsonl")]
    args += ["--single", str(src), "--limit", "3", "--chunk-ms", "160", "--out", str(tmp_path / "eval")]
    assert eval_main(args) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert set(report["cpwer"]) == {"0", "0-20", "20-40", "40+", "all"} and report["cpwer"]["all"]["mixtures"] == 3
    assert report["single"]["words"] > 0 and "cpWER overlap" in capsys.readouterr().out
    # the report goes into the multi-talker bundle's card and bundle.json
    from export.bundle import main as export_main

    out = tmp_path / "bundle"
    exp = ["--checkpoint", str(ck), "--tokenizer", str(EN_BPE), "--name", "t", "--out", str(out), "--chunk-ms", "160"]
    exp += ["--post-processing", "tsot", "--eval-report", str(tmp_path / "eval" / "report.json")]
    assert export_main(exp) == 0
    assert json.loads((out / "bundle.json").read_text())["measured"]["tsot"] == report
    card = (out / "README.md").read_text()
    all_row = f"| all | 3 | {report['cpwer']['all']['words']} | {100 * report['cpwer']['all']['cpwer']:.2f}% |"
    assert all_row in card and "Single-talker audio `test.jsonl`" in card, card


def test_token_bias_moves_one_logit_and_eval_sweeps_it(
    tiny_corpus: Path, tsot_bundles: Path, tmp_path: Path, capsys
) -> None:
    import torch

    from models.data.mixtures import main as mix_main
    from models.eval.evaluate_tsot import main as eval_main
    from models.nn.checkpoint import load_model
    from models.train.token_bias import main as bias_main
    from models.train.token_bias import shift_token_logit
    from parley.contract import BLANK_ID, CHANNEL_CHANGE_ID
    from tests.test_export import EN_BPE

    ck = tsot_bundles.parent / "tiny.pt"
    model, _ = load_model(ck)
    _, joiner, _ = model.head(None)
    x = torch.randn(5, joiner.output.in_features)
    before = joiner(x, torch.zeros_like(x))
    shift_token_logit(model, CHANNEL_CHANGE_ID, -1.5)
    diff = joiner(x, torch.zeros_like(x)) - before
    assert torch.allclose(diff[:, CHANNEL_CHANGE_ID], torch.full((5,), -1.5), atol=1e-5)
    assert diff[:, [i for i in range(diff.shape[1]) if i != CHANNEL_CHANGE_ID]].abs().max() == 0
    with pytest.raises(ValueError, match="blank_penalty"):
        shift_token_logit(model, BLANK_ID, 1.0)
    with pytest.raises(ValueError, match="vocabulary"):
        shift_token_logit(model, diff.shape[1], 1.0)

    # the command bakes the shift into a checkpoint that loads, evaluates and exports like any other
    out = tmp_path / "cc.pt"
    assert bias_main(["--checkpoint", str(ck), "--out", str(out), "--delta", "-1.5"]) == 0
    baked, baked_ck = load_model(out)
    assert baked_ck["token_bias"] == [{"token_id": CHANNEL_CHANGE_ID, "delta": -1.5, "head": None}]
    assert torch.allclose(baked.head(None).joiner(x, torch.zeros_like(x)), before + diff, atol=1e-6)
    with pytest.raises(SystemExit):
        bias_main(["--checkpoint", str(ck), "--out", str(ck), "--delta", "1"])

    # eval-tsot's sweep: a large negative bias removes every channel change, a large positive one adds them
    src = tiny_corpus / "en" / "test.jsonl"
    assert mix_main(["--manifest", str(src), "--out", str(tmp_path / "mix"), "--n", "3", "--seed", "1"]) == 0
    args = ["--checkpoint", str(ck), "--tokenizer", str(EN_BPE), "--mixtures", str(tmp_path / "mix" / "mix.jsonl")]
    args += ["--chunk-ms", "160", "--cc-bias", "0", "-100", "100", "--out", str(tmp_path / "eval")]
    assert eval_main(args) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    sweep = {row["cc_bias"]: row["channel_changes"]["hypotheses"] for row in report["cc_bias_sweep"]}
    assert sweep[-100.0] == 0 and sweep[100.0] > sweep[0.0], sweep
    assert report["cc_bias"] == 0.0 and report["channel_changes"]["hypotheses"] == sweep[0.0]
    assert "cc bias -100: 0 channel changes" in capsys.readouterr().out

    # the export's card says the weights carry the shift
    from export.bundle import main as export_main

    exp = ["--checkpoint", str(out), "--tokenizer", str(EN_BPE), "--name", "t", "--out", str(tmp_path / "bundle")]
    assert export_main([*exp, "--chunk-ms", "160", "--post-processing", "tsot"]) == 0
    assert "token 1's logit shifted by -1.5 after training" in (tmp_path / "bundle" / "README.md").read_text()
