"""A training checkpoint recovered from a committed bundle's ONNX files (models/train/warmstart.py)."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from models.nn.checkpoint import init_from
from models.nn.encoder import EncoderConfig
from models.nn.transducer import ModelConfig, Transducer
from models.train.warmstart import _module_name, checkpoint_from_bundle

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "en-small"


def _model(vocab: int) -> Transducer:
    c = json.loads((BUNDLE / "bundle.json").read_text())["model"]["config"]
    enc = EncoderConfig(**c["encoder"])
    cfg = ModelConfig(vocab_size=vocab, encoder=enc, decoder_dim=c["decoder_dim"], context_size=c["context_size"],
                      joiner_dim=c["joiner_dim"], ctc_weight=0.3)  # fmt: skip
    return Transducer(cfg)


def test_module_names_from_node_names() -> None:
    assert _module_name("/layers.0/ff1/net/net.0/MatMul_quant", "encoder") == "encoder.layers.0.ff1.net.0"
    assert _module_name("/subsampling/out/MatMul_quant", "encoder") == "encoder.subsampling.out"


def test_every_exported_tensor_comes_back_and_the_joiner_computes_the_same(tmp_path: Path) -> None:
    ckpt = checkpoint_from_bundle(BUNDLE)
    path = tmp_path / "init.pt"
    torch.save(ckpt, path)
    model = _model(256).eval()
    n, left = init_from(model, path)
    assert left == ["ctc_output.bias", "ctc_output.weight"], left  # CTC is not exported
    assert n == len(model.state_dict()) - 2
    # a new vocabulary keeps the encoder and the projections, re-initializes what depends on V
    _, left500 = init_from(_model(500), path)
    assert set(left500) == {"ctc_output.bias", "ctc_output.weight", "decoder.embedding.weight", "joiner.output.bias",
                            "joiner.output.weight"}, left500  # fmt: skip
    sess = ort.InferenceSession(str(BUNDLE / "joiner.int8.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    e, d = rng.standard_normal((4, 320)).astype(np.float32), rng.standard_normal((4, 320)).astype(np.float32)
    onnx_out = sess.run(None, {"encoder_out": e, "decoder_out": d})[0]
    with torch.no_grad():
        torch_out = model.joiner.output(torch.tanh(torch.from_numpy(e + d))).numpy()
    diff = np.abs(onnx_out - torch_out).max()
    assert diff < 0.02 * np.abs(onnx_out).max(), f"max difference {diff} (int8 activations in the ONNX joiner)"


def test_a_run_from_a_bundle_carries_the_bundles_training_history(tmp_path: Path) -> None:
    from export.bundle import training_summary

    open_bundle = BUNDLE.parent / "en-open"
    ckpt = checkpoint_from_bundle(open_bundle)
    own = json.loads((open_bundle / "bundle.json").read_text())["training"]
    assert ckpt["bundle_training"] == own
    init = tmp_path / "init.pt"
    torch.save(ckpt, init)
    run = {"train_config": {"init": str(init), "train": []}, "state": {"step": 30, "epoch": 0, "train_seconds": 36.0}}
    stages = training_summary(run, "here")["started_from"]
    assert stages[0]["from_bundle"] == "en-open"
    assert stages[1]["steps"] == own["steps"] and stages[1]["train_hours"] == own["train_hours"]
    assert stages[2:] == own["started_from"]  # and, through it, the runs that bundle came from
    assert sum(s["steps"] or 0 for s in stages) == own["steps"] + sum(s["steps"] or 0 for s in own["started_from"])


def test_a_fresh_int8_export_comes_back_whole(tmp_path: Path) -> None:
    """Every parameter of a model exported today comes back from its int8 bundle: the attention's folded query and
    key-value projections as one `attn.qkv`, the depthwise conv (run as a (1, k) Conv2d) under its own name; float
    tensors exactly, int8 weights within half a quantization step."""
    from export.bundle import main as export_main
    from models.train.train import TrainConfig
    from tests._tiny import TINY_ENCODER, save_untrained_checkpoint
    from tests.test_export import EN_BPE, SETTINGS

    torch.manual_seed(0)
    model = Transducer(ModelConfig(vocab_size=256, encoder=TINY_ENCODER, decoder_dim=32, joiner_dim=32))
    with torch.no_grad():  # no two tensors alike (the exporter shares equal constants, as untrained LayerNorms are)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    cfg = TrainConfig(train=[], dev=[], tokenizer=str(EN_BPE), exp_dir=str(tmp_path), encoder=TINY_ENCODER)
    ck = save_untrained_checkpoint(tmp_path / "tiny.pt", model, cfg, str(EN_BPE))
    out = tmp_path / "bundle"
    args = ["--checkpoint", str(ck), "--tokenizer", str(EN_BPE), "--name", "tiny", "--out", str(out)]
    args += ["--precisions", "int8", "--chunk-ms", str(SETTINGS.chunk_ms), "--history-ms", str(SETTINGS.history_ms)]
    assert export_main(args) == 0
    state = checkpoint_from_bundle(out)["model"]
    want = {k: v for k, v in model.state_dict().items() if not k.startswith("ctc_output.")}
    assert sorted(k for k in want if k not in state) == []
    for k, v in want.items():
        got = state[k].reshape(v.shape)
        tol = 0.0 if v.dtype != torch.float32 or v.dim() < 2 or "rel_bias" in k or ".dw." in k else v.abs().max() / 127
        assert (got - v).abs().max() <= tol + 1e-6, k
