"""Configurable multilingual model (models/nn/cmm.py) bundles: export with a language_mask input and an
every-language encoder for sherpa-onnx, PyTorch vs onnxruntime under different selections, and the server feeding
each stream its own selection in a shared batch.

The model is tests/test_sm2_bundle.py's tiny random two-head model with a CMM encoder over en, de, zh whose experts
are randomized, so that a selection changes the encoder output.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from export.onnx_export import CMM_DEFAULT_ENCODER, read_metadata
from export.sherpa import decode_whole
from models.nn.checkpoint import load_model
from models.nn.cmm import language_mask
from models.nn.transducer import Transducer
from parley.features import compute_fbank
from server.bundle import load_bundle
from server.engine import Engine
from server.frontend import Chunk
from server.recognizer import Recognizer, StreamRecognizer
from server.transducer import StreamingTransducer, transcribe
from tests._tiny import TINY_ENCODER
from tests.test_export import SETTINGS, SR, _padded_audio, _sherpa_ids
from tests.test_sm2_bundle import HEADS, export_tiny_sm2_bundle

CMM = ("en", "de", "zh")
ENCODER = replace(TINY_ENCODER, cmm_languages=list(CMM), cmm_rank=4, cmm_every=1)


@pytest.fixture(scope="module")
def cmm(tmp_path_factory) -> tuple[Transducer, StreamingTransducer, Path]:
    root = tmp_path_factory.mktemp("cmm-bundles")
    folder = export_tiny_sm2_bundle(root, "tiny-cmm", ENCODER)
    model, _ = load_model(root / "tiny-cmm.pt")
    return model, StreamingTransducer(load_bundle(folder, providers="cpu", threads=1)), folder


def test_bundle_layout_and_metadata(cmm) -> None:
    _, rec, folder = cmm
    meta = json.loads((folder / "bundle.json").read_text())
    all_files = {"fp32": CMM_DEFAULT_ENCODER, "int8": "encoder-all.int8.onnx"}
    assert meta["cmm"] == {"languages": list(CMM), "rank": 4, "every": 1, "encoder_all_languages": all_files}
    assert set(all_files.values()) <= set(meta["files"]), "the every-language encoder is not listed in files"
    enc = ort.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"])
    mask_input = next(i for i in enc.get_inputs() if i.name == "language_mask")
    assert mask_input.type == "tensor(float)" and mask_input.shape[1] == len(CMM)
    assert read_metadata(folder / "encoder.onnx")["cmm_languages"] == "en,de,zh"
    default = ort.InferenceSession(str(folder / CMM_DEFAULT_ENCODER), providers=["CPUExecutionProvider"])
    assert [i.name for i in default.get_inputs()] == ["x", "cached_attn", "cached_conv", "processed_lens"]
    default_meta = read_metadata(folder / CMM_DEFAULT_ENCODER)
    assert "cmm_languages" not in default_meta and default_meta["cmm_selected"] == "en,de,zh"
    card = (folder / "README.md").read_text()
    assert f'encoder="{CMM_DEFAULT_ENCODER}"' in card, "the card's sherpa-onnx example must use the default encoder"
    assert rec.spec.cmm_languages == CMM
    int8 = StreamingTransducer(load_bundle(folder, "int8", providers="cpu", threads=1))
    assert int8.spec.cmm_languages == CMM


def _streamed(rec: StreamingTransducer, feats: np.ndarray, languages: tuple[str, ...]) -> np.ndarray:
    return np.concatenate([out for _, out in rec.encode_streams([feats], [languages])], axis=1)  # (1, T, D)


def test_pytorch_and_onnxruntime_agree_under_two_selections(cmm) -> None:
    model, rec, folder = cmm
    x, n_chunks = _padded_audio(3.0, 0)
    fbank = compute_fbank(x, SR)
    feats = torch.from_numpy(fbank)[
        : n_chunks * SETTINGS.decode_chunk_len + SETTINGS.window - SETTINGS.decode_chunk_len
    ]
    outs = {}
    for sel in (("de",), ("en", "zh"), ()):
        mask = language_mask(sel, CMM)[None]  # (1, Lang)
        with torch.no_grad():
            ref, _ = model.encoder(
                feats[None], torch.tensor([feats.shape[0]]), SETTINGS.chunk, SETTINGS.left_chunks, mask
            )
        ours = _streamed(rec, fbank, sel)
        assert ours.shape == ref.shape, (ours.shape, ref.shape)
        diff = float(np.abs(ours - ref.numpy()).max())
        assert diff < 1e-4, f"selection {sel}: onnxruntime differs from PyTorch by {diff}"
        outs[sel] = ours
    moved = float(np.abs(outs[("de",)] - outs[("en", "zh")]).max())
    assert moved > 1e-3, f"the selection changed the encoder output by only {moved}"
    # encoder-all.onnx (no mask input) computes encoder.onnx with every language selected.
    bundle = replace(
        rec.bundle, encoder=_session(folder / CMM_DEFAULT_ENCODER), spec=replace(rec.spec, cmm_languages=())
    )
    default = StreamingTransducer(bundle)
    diff = float(np.abs(_streamed(default, fbank, ()) - outs[()]).max())
    assert diff < 1e-5, f"encoder-all.onnx vs encoder.onnx with every language: {diff}"


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def test_sherpa_onnx_runs_each_head_on_the_every_language_encoder(cmm) -> None:
    sherpa_onnx = pytest.importorskip("sherpa_onnx")
    _, rec, folder = cmm
    x, _ = _padded_audio(3.0, 1)
    for i, h in enumerate(HEADS):
        r = sherpa_onnx.OnlineRecognizer.from_transducer(
            tokens=str(folder / f"tokens-{h}.txt"),
            encoder=str(folder / CMM_DEFAULT_ENCODER),
            decoder=str(folder / f"decoder-{h}.onnx"),
            joiner=str(folder / f"joiner-{h}.onnx"),
            num_threads=1,
            sample_rate=SR,
            feature_dim=80,
            high_freq=0.0,
            decoding_method="greedy_search",
        )
        theirs = r.get_result_all(decode_whole(r, x, SR))
        ours = transcribe(rec, x, SR, head=i, tail_padding_ms=0, max_symbols_per_frame=1)  # every language
        assert ours.tokens, f"head {h} emitted nothing: the comparison would prove little"
        assert _sherpa_ids(theirs, rec.heads[i].head.tokens) == ours.tokens, f"head {h}"


def test_evaluate_bundles_sherpa_recognizer_takes_the_every_language_encoder(cmm) -> None:
    """`parley evaluate-bundle --parity` on a CMM bundle: sherpa-onnx cannot feed encoder.onnx's language_mask, so
    export/sherpa.py's recognizer must load the every-language encoder and decode as Parley does."""
    pytest.importorskip("sherpa_onnx")
    from export.sherpa import result_token_ids, sherpa_recognizer

    _, rec, folder = cmm
    x, _ = _padded_audio(3.0, 1)
    r = sherpa_recognizer(folder, "fp32", threads=1)
    theirs = r.get_result_all(decode_whole(r, x, SR)).tokens
    ours = transcribe(rec, x, SR, head=0, tail_padding_ms=0, max_symbols_per_frame=1)
    assert ours.tokens, "the first head emitted nothing: the comparison would prove little"
    assert result_token_ids(theirs, rec.heads[0].head.tokens) == ours.tokens


def test_plans_carry_the_spoken_languages(cmm) -> None:
    _, rec, _ = cmm
    engine = Engine(rec.bundle)
    assert engine.plan("de").spoken == ("de",)
    assert engine.plan("auto", (), ["de", "en"]).spoken == ("en", "de")  # in the encoder's order
    assert engine.plan("auto").spoken == () and engine.plan(None, ["en"]).spoken == ()
    with pytest.raises(ValueError, match="no encoder experts"):
        rec.init_state(1, ["fr"])


def _run(recognizer: Recognizer, streams: list[StreamRecognizer], windows: list[np.ndarray], batched: bool) -> None:
    for k, w in enumerate(windows):
        chunk = Chunk(w, audio_s=(k + 1) * SETTINGS.chunk_ms / 1000)
        if batched:
            recognizer.step([(s, chunk) for s in streams])
        else:
            for s in streams:
                recognizer.step([(s, chunk)])


def test_streams_with_different_selections_batch_as_they_run_alone(cmm) -> None:
    _, rec, _ = cmm
    engine = Engine(rec.bundle)
    recognizer = Recognizer(rec)
    plans = [engine.plan("de", ["en"]), engine.plan("auto", (), ["en", "de"]), engine.plan("auto")]
    assert [p.spoken for p in plans] == [("de",), ("en", "de"), ()]
    x, n_chunks = _padded_audio(3.0, 2)
    fbank = compute_fbank(x, SR)
    spec = rec.spec
    windows = [fbank[k * spec.shift : k * spec.shift + spec.window] for k in range(n_chunks)]
    together = [recognizer.open(p, "greedy") for p in plans]
    alone = [recognizer.open(p, "greedy") for p in plans]
    _run(recognizer, together, windows, batched=True)
    _run(recognizer, alone, windows, batched=False)
    for i, (a, b) in enumerate(zip(together, alone, strict=True)):
        assert a.encoder.language_mask is not None and a.encoder.language_mask.shape == (1, len(CMM))
        diff = float(np.abs(a.encoder.cached_attn - b.encoder.cached_attn).max())
        assert diff < 1e-5, f"stream {i}: batched vs alone encoder state differ by {diff}"
        for h in a.searchers:
            assert a._hyp(h).tokens == b._hyp(h).tokens, f"stream {i} head {h}"
    # Same audio, different selections: the streams' encoder states differ.
    moved = float(np.abs(together[0].encoder.cached_attn - together[1].encoder.cached_attn).max())
    assert moved > 1e-3, f"the selections changed nothing ({moved})"
    np.testing.assert_array_equal(together[0].encoder.language_mask, [[0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(together[2].encoder.language_mask, [[1.0, 1.0, 1.0]])
