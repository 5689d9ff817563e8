"""Export parity: PyTorch vs the ONNX files on onnxruntime vs sherpa-onnx, on a tiny random model.

The tiny model is not trained: parity is about the same computation, and a random joiner (its blank logit nudged
so frames emit some tokens and not others) exercises every path of the search. Its <unk> logit is pushed down
because sherpa-onnx reads <unk> as blank, which PyTorch's search does not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from export.bundle import main as export_main
from export.onnx_export import StreamingSettings, read_metadata
from export.sherpa import decode_whole, result_token_ids, sherpa_recognizer
from models.nn.checkpoint import load_model
from models.nn.encoder import PAD_LENGTH
from models.nn.search import greedy_search, modified_beam_search
from models.nn.transducer import ModelConfig, Transducer
from models.train.train import TrainConfig
from parley.contract import BLANK_ID, UNK_ID
from parley.features import compute_fbank
from server.bundle import BundleError, load_bundle
from server.transducer import StreamingTransducer, stack_states, transcribe, unstack_states
from tests._tiny import TINY_ENCODER, save_untrained_checkpoint

ROOT = Path(__file__).resolve().parents[1]
EN_BPE = ROOT / "models" / "lang" / "en" / "bpe.model"
SR = 16000
SETTINGS = StreamingSettings(chunk_ms=160, history_ms=640)  # C = 4, K = 16: 3 s of audio wraps the history cache


def synthetic_audio(seconds: float, seed: int) -> np.ndarray:
    """A gliding, amplitude-modulated tone in noise: float32 samples at 16 kHz, deterministic."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SR)) / SR
    f0 = 180 + 40 * seed + 300 * np.sin(2 * np.pi * (0.5 + 0.2 * seed) * t)
    tone = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / SR) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (tone + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def make_tiny_checkpoint(path: Path, seed: int = 0, **model_kw) -> Path:
    """A checkpoint in `models.train.train`'s format holding a random tiny model for the English tokenizer; `model_kw`
    are more `ModelConfig` settings."""
    from models.train.tokenizer import Tokenizer

    torch.manual_seed(seed)
    model = Transducer(
        ModelConfig(
            vocab_size=Tokenizer(EN_BPE).vocab_size, encoder=TINY_ENCODER, decoder_dim=32, joiner_dim=32, **model_kw
        )
    )
    feats = torch.from_numpy(compute_fbank(synthetic_audio(2.0, 0), SR))
    model.encoder.subsampling.set_feature_stats(feats.mean(0), feats.std(0))
    with torch.no_grad():
        # Raise blank until it wins on 30% of the frames from the start context: some frames emit, some do not.
        enc, _ = model.encoder(feats[None], torch.tensor([feats.shape[0]]), SETTINGS.chunk, SETTINGS.left_chunks)
        dec = model.joiner.decoder_proj(model.decoder(torch.full((1, model.cfg.context_size), BLANK_ID)))
        logits = model.joiner(model.joiner.encoder_proj(enc[0]), dec)  # (T, V)
        gap = logits[:, BLANK_ID + 1 :].max(-1).values - logits[:, BLANK_ID]  # (T,) best other token over blank
        model.joiner.output.bias[BLANK_ID] += gap.quantile(0.3)
        model.joiner.output.bias[UNK_ID] -= 10.0
    cfg = TrainConfig(train=[], dev=[], tokenizer=str(EN_BPE), exp_dir=str(path.parent), encoder=TINY_ENCODER)
    return save_untrained_checkpoint(path, model, cfg, str(EN_BPE))


def export_tiny_bundle(folder: Path, seed: int = 0, **model_kw) -> Path:
    """Checkpoint + `parley export --int8` into `folder`/bundle; returns the bundle folder."""
    ck = make_tiny_checkpoint(folder / "tiny.pt", seed, **model_kw)
    out = folder / "bundle"
    args = ["--checkpoint", str(ck), "--tokenizer", str(EN_BPE), "--name", "tiny-en", "--out", str(out), "--int8"]
    args += ["--chunk-ms", str(SETTINGS.chunk_ms), "--history-ms", str(SETTINGS.history_ms), "--hardware", "pytest"]
    assert export_main(args) == 0
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Transducer, Path]:
    folder = export_tiny_bundle(tmp_path_factory.mktemp("export"))
    model, _ = load_model(folder.parent / "tiny.pt")
    return model, folder


def _recognizer(folder: Path, precision: str = "fp32") -> StreamingTransducer:
    return StreamingTransducer(load_bundle(folder, precision, providers="cpu", threads=1))


def test_metadata_has_sherpa_onnx_keys_and_parley_settings(tiny) -> None:
    _, folder = tiny
    enc = read_metadata(folder / "encoder.onnx")
    C, K = SETTINGS.chunk, SETTINGS.left_context
    expected = {
        "model_type": "conformer",
        "num_encoder_layers": str(TINY_ENCODER.num_layers),
        "T": str(4 * C + 3),
        "decode_chunk_len": str(4 * C),
        "left_context": str(K),
        "encoder_dim": str(TINY_ENCODER.d_model),
        "pad_length": str(PAD_LENGTH),
        "cnn_module_kernel": str(TINY_ENCODER.conv_kernel),
        "chunk_ms": "160",
        "history_ms": "640",
        "sample_rate": "16000",
        "num_bins": "80",
        "joiner_dim": "32",
    }
    assert {k: enc.get(k) for k in expected} == expected
    dec = read_metadata(folder / "decoder.onnx")
    assert dec["context_size"] == "2" and dec["vocab_size"] == "256" and dec["language"] == "en"
    for name in ("encoder", "decoder", "joiner"):  # quantization keeps the metadata (and adds a key of its own)
        fp32, int8 = read_metadata(folder / f"{name}.onnx"), read_metadata(folder / f"{name}.int8.onnx")
        assert {k: int8.get(k) for k in fp32} == fp32
    for name in ("decoder", "joiner"):  # a standard-topology model: the runtime's usual greedy limit
        meta = read_metadata(folder / f"{name}.onnx")
        assert (meta["rnnt_type"], meta["max_symbols_per_frame"]) == ("standard", "4"), meta


def test_modified_topology_pruned_model_exports_its_one_symbol_limit(tmp_path) -> None:
    folder = export_tiny_bundle(tmp_path, rnnt_type="modified", loss="pruned", prune_range=4)
    for name in ("decoder", "joiner", "decoder.int8", "joiner.int8"):
        meta = read_metadata(folder / f"{name}.onnx")
        assert (meta["rnnt_type"], meta["max_symbols_per_frame"]) == ("modified", "1"), (name, meta)
    bundle = json.loads((folder / "bundle.json").read_text())
    head = bundle["heads"][0]
    assert (head["rnnt_type"], head["max_symbols_per_frame"]) == ("modified", 1)
    assert (
        bundle["model"]["config"]["rnnt_type"] == "modified"
        and "topology: modified" in (folder / "README.md").read_text()
    )
    # The simple joiner is training-only: the runtime loads the bundle, and with the bundle's limit PyTorch (the
    # model's own limit), onnxruntime and sherpa-onnx find the same tokens.
    model, _ = load_model(tmp_path / "tiny.pt")
    rec = _recognizer(folder)
    x, n_chunks = _padded_audio(3.0, 0)
    enc = _pytorch_encoder_out(model, x, n_chunks)
    theirs = greedy_search(model, enc, torch.tensor([enc.shape[1]]))[0]
    ours = transcribe(rec, x, SR, tail_padding_ms=0, max_symbols_per_frame=head["max_symbols_per_frame"])
    assert ours.tokens == theirs.tokens and len(set(ours.frames)) == len(ours.frames) > 0, (ours.tokens, theirs)
    assert _sherpa_ids(_sherpa(folder, x), rec.heads[0].head.tokens) == ours.tokens


def test_onnx_encoder_chunk_by_chunk_equals_the_full_masked_forward(tiny) -> None:
    model, folder = tiny
    rec = _recognizer(folder)
    C, T, shift = SETTINGS.chunk, SETTINGS.window, SETTINGS.decode_chunk_len
    n_chunks = 9  # 36 encoder frames through a cache of 16
    x = torch.randn(3, n_chunks * shift + PAD_LENGTH, 80) * 3 - 8
    with torch.no_grad():
        full, _ = model.encoder(x, torch.full((3,), x.shape[1]), C, SETTINGS.left_chunks)
        full = model.joiner.encoder_proj(full).numpy()  # (3, n_chunks * C, J)
    # Stream 2 joins two chunks late, batched with the others: its own processed count must mask its history.
    late = 2
    states = [rec.init_state(1) for _ in range(3)]
    outs: list[list[np.ndarray]] = [[], [], []]
    xs = x.numpy()
    for c in range(n_chunks + late):
        live = [i for i in range(3) if (c - late if i == 2 else c) in range(n_chunks)]
        window = [xs[i, (c - (late if i == 2 else 0)) * shift :][:T] for i in live]
        enc, batch = rec.encode(np.stack(window), stack_states([states[i] for i in live]))
        for k, (i, s) in enumerate(zip(live, unstack_states(batch), strict=True)):
            states[i] = s
            outs[i].append(enc[k])
    streamed = np.stack([np.concatenate(o) for o in outs])
    assert streamed.shape == full.shape
    diff = float(np.abs(streamed - full).max())
    print(f"max abs diff ONNX chunk-by-chunk vs PyTorch full masked forward: {diff:.2e}")
    assert diff < 1e-4, f"max abs diff {diff}"

    int8 = _recognizer(folder, "int8")
    q, _ = int8.encode(xs[:, :T], int8.init_state(3))
    f, _ = rec.encode(xs[:, :T], rec.init_state(3))
    rel = float(np.abs(q - f).max() / np.abs(f).max())
    print(f"int8 vs fp32 encoder: max abs diff {float(np.abs(q - f).max()):.3e}, relative {rel:.3f}")
    assert rel < 0.05, f"int8 encoder output off by {rel:.3f} of its range"
    sizes = {
        p: sum((folder / f"{n}{p}").stat().st_size for n in ("encoder", "decoder", "joiner"))
        for p in (".onnx", ".int8.onnx")
    }
    print(f"tiny model size: fp32 {sizes['.onnx']:,} bytes, int8 {sizes['.int8.onnx']:,} bytes")


def test_int8_decoder_and_joiner_are_close_to_fp32(tiny) -> None:
    _, folder = tiny
    fp32, int8 = _recognizer(folder).heads[0], _recognizer(folder, "int8").heads[0]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 256, size=(8, 2))
    enc = rng.standard_normal((8, 32)).astype(np.float32)
    for what, a, b in (
        ("decoder", fp32.decoder(y), int8.decoder(y)),
        ("joiner", fp32.joiner(enc, fp32.decoder(y)), int8.joiner(enc, fp32.decoder(y))),
    ):
        rel = float(np.abs(a - b).max() / np.abs(a).max())
        print(f"int8 vs fp32 {what}: relative max abs diff {rel:.3f}")
        assert rel < 0.05, f"int8 {what} off by {rel:.3f} of its range"


def _padded_audio(seconds: float, seed: int) -> tuple[np.ndarray, int]:
    """Audio plus silence such that sherpa-onnx (needs T+1 frames for a step) runs as many steps as we do."""
    audio = synthetic_audio(seconds, seed)
    for pad_frames in range(30, 30 + SETTINGS.decode_chunk_len):
        x = np.concatenate([audio, np.zeros(pad_frames * SR // 100, dtype=np.float32)])
        F = compute_fbank(x, SR).shape[0]
        if (F - SETTINGS.window) % SETTINGS.decode_chunk_len:
            return x, (F - SETTINGS.window) // SETTINGS.decode_chunk_len + 1
    raise AssertionError("unreachable")


def _pytorch_encoder_out(model: Transducer, x: np.ndarray, n_chunks: int) -> torch.Tensor:
    """PyTorch's chunk-masked forward over exactly the frames the streaming runs read: `(1, n_chunks * C, D)`."""
    feats = torch.from_numpy(compute_fbank(x, SR))[: n_chunks * SETTINGS.decode_chunk_len + PAD_LENGTH][None]
    with torch.no_grad():
        enc, lens = model.encoder(feats, torch.tensor([feats.shape[1]]), SETTINGS.chunk, SETTINGS.left_chunks)
    assert int(lens) == n_chunks * SETTINGS.chunk
    return enc


def _sherpa(folder: Path, x: np.ndarray, precision: str = "fp32", method: str = "greedy_search"):
    pytest.importorskip("sherpa_onnx")
    rec = sherpa_recognizer(folder, precision, method=method)
    return rec.get_result_all(decode_whole(rec, x, SR))


def _sherpa_ids(result, tokens: list[str]) -> list[int]:
    return result_token_ids(result.tokens, tokens)  # sherpa-onnx writes the word marker as a space


@pytest.mark.parametrize("seed", [0, 1])
def test_greedy_tokens_agree_pytorch_onnxruntime_sherpa_onnx(tiny, seed: int) -> None:
    model, folder = tiny
    rec = _recognizer(folder)
    x, n_chunks = _padded_audio(3.0, seed)
    enc = _pytorch_encoder_out(model, x, n_chunks)
    lens = torch.tensor([enc.shape[1]])
    for max_symbols in (1, 4):
        ours = transcribe(rec, x, SR, tail_padding_ms=0, max_symbols_per_frame=max_symbols)
        torch_hyp = greedy_search(model, enc, lens, max_symbols_per_frame=max_symbols)[0]
        assert ours.chunks == n_chunks
        assert 0 < len(ours.tokens) < max_symbols * enc.shape[1], "the random model should emit on some frames only"
        assert ours.tokens == torch_hyp.tokens, f"max_symbols {max_symbols}: onnxruntime vs PyTorch greedy"
        assert ours.frames == torch_hyp.frames
    # sherpa-onnx's greedy search emits at most one token per frame.
    sherpa = _sherpa(folder, x)
    one = transcribe(rec, x, SR, tail_padding_ms=0, max_symbols_per_frame=1)
    print(f"seed {seed}: {len(one.tokens)} tokens; sherpa-onnx text {sherpa.text!r}")
    assert _sherpa_ids(sherpa, rec.heads[0].head.tokens) == one.tokens
    assert sherpa.text.strip() == one.text
    frame_s = SETTINGS.decode_chunk_len / SETTINGS.chunk / 100
    assert np.allclose(sherpa.timestamps, np.array(one.frames) * frame_s)


def test_int8_bundle_runs_in_sherpa_onnx_like_in_onnxruntime(tiny) -> None:
    """Same frames in, same tokens out. The frames must be the same to the bit: int8 activations round to steps of
    max|x| / 127 per row, so the numpy fbank's float32-rounding differences from kaldi-native-fbank (< 2e-3,
    tests/test_features.py) flip some roundings, and this tiny untrained model's near-tied tokens with them (adding
    1e-3 noise to Parley's own frames changes its int8 tokens too): the frames come from the kaldi-native-fbank
    backend (the server's --fbank); the fp32 tests above compare the frontends."""
    _, folder = tiny
    rec = _recognizer(folder, "int8")
    x, _ = _padded_audio(3.0, 0)
    ours = transcribe(rec, x, SR, tail_padding_ms=0, max_symbols_per_frame=1, fbank="kaldi-native-fbank")
    sherpa = _sherpa(folder, x, "int8")
    print(f"int8: {len(ours.tokens)} tokens, sherpa-onnx {len(sherpa.tokens)}")
    assert _sherpa_ids(sherpa, rec.heads[0].head.tokens) == ours.tokens


def test_modified_beam_search_agrees_with_pytorch(tiny) -> None:
    model, folder = tiny
    rec = _recognizer(folder)
    x, n_chunks = _padded_audio(2.0, 2)
    enc = _pytorch_encoder_out(model, x, n_chunks)
    torch_hyp = modified_beam_search(model, enc, torch.tensor([enc.shape[1]]), beam=4)[0]
    ours = transcribe(rec, x, SR, tail_padding_ms=0, search="beam", beam=4)
    assert ours.tokens and ours.tokens == torch_hyp.tokens
    assert ours.frames == torch_hyp.frames


def test_blank_penalty_from_export_is_applied_alike_by_pytorch_onnxruntime_and_sherpa_onnx(tiny, tmp_path) -> None:
    model, folder = tiny
    penalty = 0.7
    out = tmp_path / "penalized"
    ck = folder.parent / "tiny.pt"  # the checkpoint the fixture exported
    args = ["--checkpoint", str(ck), "--tokenizer", str(EN_BPE), "--name", "tiny-bp", "--out", str(out)]
    args += ["--chunk-ms", str(SETTINGS.chunk_ms), "--history-ms", str(SETTINGS.history_ms)]
    reports = []
    for i, pad in enumerate((0, 500)):  # two parley eval reports: their rows are merged into the card
        row = {"manifest": "x/test.jsonl", "chunk_ms": "160", "history_ms": 640, "search": "greedy", "wer": 0.1 + i}
        reports.append(tmp_path / f"report{i}.json")
        reports[-1].write_text(json.dumps({"results": [{**row, "blank_penalty": penalty, "pad_ms": pad}]}))
    assert export_main([*args, "--blank-penalty", str(penalty), "--eval-report", *map(str, reports)]) == 0
    card = (out / "README.md").read_text()
    assert "blank_penalty=0.7" in card and "| greedy | 0.7 | 500 |" in card and "| greedy | 0.7 | 0 |" in card
    assert [r["pad_ms"] for r in json.loads((out / "bundle.json").read_text())["measured"]["wer"]] == [0, 500]
    rec = _recognizer(out)
    assert rec.heads[0].blank_penalty == penalty
    x, n_chunks = _padded_audio(3.0, 1)
    enc = _pytorch_encoder_out(model, x, n_chunks)
    lens = torch.tensor([enc.shape[1]])
    plain = greedy_search(model, enc, lens, max_symbols_per_frame=1)[0]
    penalized = greedy_search(model, enc, lens, max_symbols_per_frame=1, blank_penalty=penalty)[0]
    print(f"tokens without penalty {len(plain.tokens)}, with {len(penalized.tokens)}")
    assert len(penalized.tokens) > len(plain.tokens), "a blank penalty makes the search emit more"
    ours = transcribe(rec, x, SR, tail_padding_ms=0, max_symbols_per_frame=1)
    assert ours.tokens == penalized.tokens
    assert _sherpa_ids(_sherpa(out, x), rec.heads[0].head.tokens) == ours.tokens
    beam = modified_beam_search(model, enc, lens, beam=4, blank_penalty=penalty)[0]
    assert transcribe(rec, x, SR, tail_padding_ms=0, search="beam", beam=4).tokens == beam.tokens
    with pytest.raises(SystemExit):
        export_main([*args, "--blank-penalty", "x"])
    assert export_main([*args, "--blank-penalty", "-1"]) == 2


def test_the_blank_penalty_travels_in_the_joiner_metadata(tiny, tmp_path) -> None:
    """`parley export --blank-penalty` writes the penalty into every joiner file's metadata, and the runtime reads it
    from there: without bundle.json's copy too, a disagreeing copy is refused, and an older bundle (no key in its
    joiner) falls back to bundle.json's."""
    _, folder = tiny
    out = tmp_path / "penalized"
    args = ["--checkpoint", str(folder.parent / "tiny.pt"), "--tokenizer", str(EN_BPE), "--name", "tiny-bp"]
    args += ["--out", str(out), "--int8", "--chunk-ms", str(SETTINGS.chunk_ms)]
    args += ["--history-ms", str(SETTINGS.history_ms)]
    assert export_main([*args, "--blank-penalty", "0.7"]) == 0
    for name in ("joiner.onnx", "joiner.int8.onnx"):
        assert read_metadata(out / name)["blank_penalty"] == "0.7", name
    assert read_metadata(folder / "joiner.onnx")["blank_penalty"] == "0.0"  # exported without one: 0, said so
    manifest = json.loads((out / "bundle.json").read_text())
    del manifest["heads"][0]["blank_penalty"]
    (out / "bundle.json").write_text(json.dumps(manifest))
    for precision in ("fp32", "int8"):
        assert _recognizer(out, precision).heads[0].blank_penalty == 0.7, precision
    manifest["heads"][0]["blank_penalty"] = 0.2
    (out / "bundle.json").write_text(json.dumps(manifest))
    disagree = r"^joiner\.onnx: metadata blank_penalty 0\.7, bundle\.json heads\[0\] says 0\.2"
    with pytest.raises(BundleError, match=disagree):
        _recognizer(out)
    older = ROOT / "bundles" / "en-small"  # exported before the key: bundle.json's 1.0 applies
    assert "blank_penalty" not in read_metadata(older / "joiner.int8.onnx")
    assert load_bundle(older, providers="cpu", threads=1).heads[0].blank_penalty == 1.0


def test_bad_streaming_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="multiple of 40"):
        StreamingSettings(chunk_ms=100, history_ms=400)
    with pytest.raises(ValueError, match="multiple of chunk_ms"):
        StreamingSettings(chunk_ms=320, history_ms=1000)


@pytest.mark.slow
@pytest.mark.skipif("PARLEY_TEST_CHECKPOINT" not in os.environ, reason="set PARLEY_TEST_CHECKPOINT (and _MANIFEST)")
def test_trained_model_transcripts_match_sherpa_onnx(tmp_path) -> None:
    """A real checkpoint: Parley's runtime and sherpa-onnx must write the same text for every test utterance."""
    from models.data.manifest import read_manifest
    from parley.audio import read_wav

    out = tmp_path / "bundle"
    ck = os.environ["PARLEY_TEST_CHECKPOINT"]
    assert export_main(["--checkpoint", ck, "--name", "check", "--out", str(out), "--chunk-ms", "320"]) == 0
    rec = _recognizer(out)
    utts = read_manifest(os.environ["PARLEY_TEST_MANIFEST"])[:20]
    for u in utts:
        audio, rate = read_wav(u.audio)
        assert rate == SR, f"{u.audio}: {rate} Hz"
        x = np.concatenate([audio, np.zeros(SR // 2, dtype=np.float32)])
        ours = transcribe(rec, x, SR, tail_padding_ms=0, max_symbols_per_frame=1)
        assert _sherpa(out, x).text.strip() == ours.text, u.id


def test_bundle_eval_reports_wer_speed_size_and_parity(tiny, tiny_corpus, tmp_path) -> None:
    from export.evaluate_bundle import main as bundle_eval
    from models.data.manifest import load_audio, read_manifest
    from parley.features import SAMPLE_RATE
    from parley.wer import error_counts
    from server.transducer import transcribe_many

    _, folder = tiny
    manifest = tiny_corpus / "en" / "test.jsonl"
    out = tmp_path / "report.json"
    args = ["--bundle", str(folder), "--manifest", str(manifest), "--rtf-utts", "2", "--out", str(out)]
    assert bundle_eval([*args, "--checkpoint", str(folder.parent / "tiny.pt"), "--parity", "3"]) == 0
    report = json.loads(out.read_text())
    utts = read_manifest(manifest)
    assert report["utterances"] == len(utts) and set(report["precisions"]) == {"fp32", "int8"}
    for precision, row in report["precisions"].items():
        assert row["single_stream_rtf"] > 0 and row["total_mb"] > 0
        # The one-symbol-per-frame WER is that of Parley's runtime decoding as sherpa-onnx does.
        hyps = transcribe_many(
            _recognizer(folder, precision), [load_audio(u.audio) for u in utts], SAMPLE_RATE, max_symbols_per_frame=1
        )
        expected = error_counts([u.text for u in utts], [h.text for h in hyps], "en").rate
        assert row["wer_one_symbol_per_frame"] == pytest.approx(expected), precision
        # Streams split into groups decoded side by side (the server's parallel steps): the same transcripts, in order.
        side = transcribe_many(
            _recognizer(folder, precision),
            [load_audio(u.audio) for u in utts],
            SAMPLE_RATE,
            max_symbols_per_frame=1,
            parallel=2,
        )
        assert [(h.tokens, h.frames) for h in side] == [(h.tokens, h.frames) for h in hyps], precision
    # The side-by-side groups compute their frames with the backend asked for, as one group does.
    waves = [load_audio(u.audio) for u in utts]
    knf = {"max_symbols_per_frame": 1, "fbank": "kaldi-native-fbank", "keep_encoder": True}
    rec = _recognizer(folder, "int8")
    one = transcribe_many(rec, waves, SAMPLE_RATE, **knf)
    two = transcribe_many(rec, waves, SAMPLE_RATE, parallel=2, **knf)
    assert all(np.array_equal(a.encoder_out, b.encoder_out) for a, b in zip(one, two, strict=True))
    q = report["parity"]
    assert q["parley_vs_sherpa_identical"] == q["pytorch_vs_parley_identical"] == 3
    # The noise floor: each runtime again at one more thread; the tiny model's transcripts do not flip on rounding.
    assert q["threads"] == [1, 2] and q["parley_vs_itself_identical"] == q["sherpa_vs_itself_identical"] == 3
    assert q["stable"] == 3 and q["parley_vs_sherpa_identical_on_stable"] == 3
    # Parley's frames from kaldi-native-fbank (the server's --fbank): the same parity, and the report says so.
    assert bundle_eval([*args, "--parity", "3", "--fbank", "kaldi-native-fbank", "--limit", "3"]) == 0
    q = json.loads(out.read_text())["parity"]
    assert q["fbank"] == "kaldi-native-fbank" and q["parley_vs_sherpa_identical"] == 3


def test_card_sections_are_replaced_and_the_files_table_follows_bundle_json(tmp_path) -> None:
    from export.bundle import update_card_section
    from export.evaluate_bundle import record_on_card
    from server.bundle import sha256_of

    folder = export_tiny_bundle(tmp_path)
    (folder / "extra.txt").write_text("x")
    meta = json.loads((folder / "bundle.json").read_text())
    meta["files"]["extra.txt"] = {"bytes": 1, "sha256": sha256_of(folder / "extra.txt")}
    (folder / "bundle.json").write_text(json.dumps(meta))
    update_card_section(folder, "Notes", "first")
    update_card_section(folder, "Notes", "second")
    card = (folder / "README.md").read_text()
    assert card.count("## Notes") == 1 and "second" in card and "first" not in card
    assert card.index("## Notes") < card.index("## Files") and "| extra.txt | 1 |" in card

    def report(wer: float) -> dict:
        by = {"engine": {"espeak": {"utterances": 3, "wer": wer}}, "augment": {"noise": {"utterances": 3, "wer": wer}}}
        return {"utterances": 3, "precisions": {"int8": {"wer": wer, "wer_one_symbol_per_frame": wer, "by": by}}}

    record_on_card(folder, Path("/d/corpus/en/test.jsonl"), report(0.5))
    record_on_card(folder, Path("/d/other/en/dev.jsonl"), report(0.25))
    record_on_card(folder, Path("/d/corpus/en/test.jsonl"), report(0.125))  # measured again: replaces its row
    runtime = json.loads((folder / "bundle.json").read_text())["measured"]["runtime"]
    assert [(r["test"], r["wer"]) for r in runtime] == [("other/en/dev.jsonl", 0.25), ("corpus/en/test.jsonl", 0.125)]
    parity = {"utterances": 2, "precision": "int8", "parley_wer": 0.375, "sherpa_onnx_wer": 0.25, "threads": [1, 2],
              "parley_vs_itself_identical": 2, "sherpa_vs_itself_identical": 1, "stable": 1,
              "parley_vs_sherpa_identical_on_stable": 1}  # fmt: skip
    record_on_card(folder, Path("/d/corpus/en/test.jsonl"), {**report(0.9), "parity": {**parity,
                   "parley_vs_sherpa_identical": 1}}, wer_rows=False)  # fmt: skip
    runtime = json.loads((folder / "bundle.json").read_text())["measured"]["runtime"]
    assert [(r["test"], r["wer"]) for r in runtime] == [("other/en/dev.jsonl", 0.25), ("corpus/en/test.jsonl", 0.125)]
    card = (folder / "README.md").read_text()
    assert "| corpus/en/test.jsonl | int8 | 3 | 12.50 % | 12.50 % | espeak 12.5 % | noise 12.5 % |" in card
    assert "50.00 %" not in card
    assert "decodes 1 of 2 utterances of corpus/en/test.jsonl to the same text" in card
    assert "Parley 2, sherpa-onnx 1 identical; on the 1 utterances where both agree" in card
    load_bundle(folder, precision="fp32")  # what the card added leaves the bundle loadable
    # A card that links to another bundle's (tests link committed bundles' files) is replaced, not written through.
    other = tmp_path / "other.md"
    other.write_text("# other\n\n## Files\n")
    (folder / "README.md").unlink()
    (folder / "README.md").symlink_to(other)
    update_card_section(folder, "Notes", "third")
    assert other.read_text() == "# other\n\n## Files\n" and "third" in (folder / "README.md").read_text()


def test_card_notes_become_a_section_of_the_model_card(tmp_path) -> None:
    ck = make_tiny_checkpoint(tmp_path / "tiny.pt")
    notes = tmp_path / "notes.md"
    notes.write_text("A preview: far from its targets.\n")
    out = tmp_path / "bundle"
    args = ["--checkpoint", str(ck), "--tokenizer", str(EN_BPE), "--name", "tiny-en", "--out", str(out)]
    assert export_main([*args, "--card-notes", str(notes)]) == 0
    card = (out / "README.md").read_text()
    assert "## Notes\n\nA preview: far from its targets." in card and card.index("## Notes") < card.index("## Files")
    assert export_main([*args, "--card-notes", str(tmp_path / "missing.md")]) == 2


def test_int8_encoder_quantizes_every_weight_matmul_and_runs_the_depthwise_conv_in_2d(tiny) -> None:
    """The exported int8 encoder leaves no float MatMul with a constant weight (the attention's query and key-value
    projections were such MatMuls, their weights split from `attn.qkv` at every run), no grouped 1-D Conv
    (onnxruntime's CPU kernel for it is ten times slower than for the same (1, k) Conv2d) and no LayerNormalization
    (its kernel's rounding differs between onnxruntime releases: models/nn/norm.py)."""
    import onnx
    from onnx import numpy_helper

    _, folder = tiny
    model = onnx.load(str(folder / "encoder.int8.onnx"))
    consts = {t.name for t in model.graph.initializer}
    consts |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    produced_by = {o: n for n in model.graph.node for o in n.output}
    float_weight_matmuls = []
    for n in model.graph.node:
        if n.op_type in ("MatMul", "Gemm"):
            src = n.input[1]
            while src in produced_by and produced_by[src].op_type in ("Transpose", "Split", "Slice", "Squeeze"):
                src = produced_by[src].input[0]  # a weight reshaped at run time is still a constant weight
            if src in consts:
                float_weight_matmuls.append(n.name)
    assert float_weight_matmuls == []
    assert not [n.name for n in model.graph.node if n.op_type == "LayerNormalization"]
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    grouped = [
        n for n in model.graph.node if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)
    ]
    assert grouped, "the depthwise convolutions"
    assert all(weights[n.input[1]].ndim == 4 and weights[n.input[1]].shape[2] == 1 for n in grouped)
    n_quantized = sum(n.op_type == "MatMulInteger" for n in model.graph.node)
    # per layer ff1 x2, q, kv, out, pw1, pw2, ff2 x2; subsampling.out and the joiner's encoder projection
    assert n_quantized == TINY_ENCODER.num_layers * 9 + 2


def test_bench_encoder_times_and_profiles_an_encoder(tiny, tmp_path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_encoder", ROOT / "benchmarks" / "bench_encoder.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    _, folder = tiny
    out = tmp_path / "enc.json"
    args = [str(folder / "encoder.int8.onnx"), "--batch", "1", "4", "--runs", "2", "--repeats", "1", "--profile"]
    assert bench.main([*args, "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["encoders"].values()
    assert set(row["ms_per_stream_chunk"]) == {"1", "4"} and min(row["ms_per_stream_chunk"].values()) > 0
    assert "MatMulInteger" in row["profile"]["by_op"] and abs(sum(row["profile"]["by_op"].values()) - 1) < 0.01
    assert bench.main([str(tmp_path / "missing.onnx")]) == 2
