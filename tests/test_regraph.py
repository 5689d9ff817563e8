"""export/regraph.py: a bundle's encoder exported again from the bundle's own weights."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from export.bundle import main as export_main
from export.regraph import SECTION, _encoder_outputs, regraph_bundle
from server.bundle import sha256_of
from tests.test_export import EN_BPE, SETTINGS, make_tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def _int8_bundle(tmp_path: Path) -> Path:
    """An int8-only bundle of a tiny model whose tensors all differ (the exporter shares equal constants, as an
    untrained model's LayerNorms are, and a bundle's weights then do not come back by name)."""
    ck = make_tiny_checkpoint(tmp_path / "tiny.pt")
    state = torch.load(ck, weights_only=False)
    torch.manual_seed(1)
    state["model"] = {
        k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v for k, v in state["model"].items()
    }
    torch.save(state, ck)
    out = tmp_path / "bundle"
    args = ["--checkpoint", str(ck), "--tokenizer", str(EN_BPE), "--name", "tiny", "--out", str(out)]
    args += ["--precisions", "int8", "--chunk-ms", str(SETTINGS.chunk_ms), "--history-ms", str(SETTINGS.history_ms)]
    assert export_main(args) == 0
    return out


def test_regraph_rebuilds_the_encoder_from_the_bundle_and_records_it(tmp_path: Path) -> None:
    folder = _int8_bundle(tmp_path)
    before = _encoder_outputs(folder / "encoder.int8.onnx")
    report = regraph_bundle(folder)
    # Already today's graph: the recovered weights quantize to the same integers, so the encoder computes the same.
    assert report["relative_difference"] < 1e-3, report
    assert np.allclose(_encoder_outputs(folder / "encoder.int8.onnx"), before, atol=1e-4)
    meta = json.loads((folder / "bundle.json").read_text())
    entry = meta["files"]["encoder.int8.onnx"]
    assert entry["sha256"] == sha256_of(folder / "encoder.int8.onnx") and entry["bytes"] == report["new_bytes"]
    card = (folder / "README.md").read_text()
    assert f"## {SECTION}" in card and card.index(f"## {SECTION}") < card.index("## Files")
    assert entry["sha256"] in card  # the file table follows bundle.json


def test_regraph_refuses_an_encoder_whose_weights_do_not_come_back(tmp_path: Path) -> None:
    folder = tmp_path / "small"
    shutil.copytree(ROOT / "bundles" / "en-small", folder)
    meta = json.loads((folder / "bundle.json").read_text())
    meta["model"]["config"]["encoder"]["num_layers"] += 1  # a layer the file does not have
    (folder / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="weights missing"):
        regraph_bundle(folder)
