"""A committed bundle's encoder exported again, from the bundle's own weights, with today's encoder graph.

    python -m export.regraph bundles/en-small bundles/en-tsot-small

The exported encoder graph changed on 2026-12-05 (docs/bundles.md "The encoder graph": the attention's query and
key-value projections int8 with folded weights, the depthwise conv as a (1, k) Conv2d), which makes the int8 encoder
about a quarter cheaper per stream and its results independent of the number of onnxruntime threads; and again
later that day (LayerNorm as elementary ops, models/nn/norm.py), which makes them independent of the onnxruntime
release, so that sherpa-onnx's build computes the same encoder output as Parley's; and on 2026-12-05's third
session (a Reshape after the depthwise conv, models/nn/encoder.py's ConvModule), which keeps onnxruntime's transpose
optimizer from moving a Transpose into a LayerNorm and so makes a stream's results the same alone as in a batch
(tests/test_isolation.py). A bundle whose
training checkpoint is gone gets the new graph here: the weights come back from its ONNX files
(models/train/warmstart.py; int8 weights dequantized, which quantizes again to the same integers), the encoder is
exported and quantized as `parley export` does, with the old file's metadata, and replaces the old file; bundle.json's
sizes and hashes and the card's file table follow, and the card gets an "Encoder graph" section saying so. Decoder
and joiner graphs have neither layer and stay as they are, so a multi-head (SM²) bundle's heads are untouched too.
Not for a configurable multilingual encoder (its second, all-languages file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from export.card import update_card_section
from export.onnx_export import CMM_DEFAULT_ENCODER, StreamingSettings, export_encoder, quantize_int8, read_metadata
from server.bundle import BUNDLE_JSON, sha256_of

SECTION = "Encoder graph"


def random_feeds(session, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs for an encoder session at its own fixed sizes, `batch` streams: float inputs random, integer inputs
    (the processed lengths) at 10,000 frames, a stream whose history is full; boolean inputs true."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for i in session.get_inputs():
        shape = [batch if isinstance(d, str) or d is None else d for d in i.shape]
        if i.type == "tensor(float)":
            feeds[i.name] = (0.5 * rng.standard_normal(shape)).astype(np.float32)
        elif i.type == "tensor(int64)":
            feeds[i.name] = np.full(shape, 10_000, dtype=np.int64)
        elif i.type == "tensor(bool)":
            feeds[i.name] = np.ones(shape, dtype=bool)
        else:
            raise ValueError(f"{i.name}: input type {i.type} is not one an encoder takes")
    return feeds


def _encoder_outputs(path: Path, batch: int = 4) -> np.ndarray:
    """The encoder's output `(B, C, J)` for `random_feeds`: a check that two graphs compute alike."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return session.run(None, random_feeds(session, batch))[0]


def regraph_bundle(folder: Path) -> dict[str, float]:
    """Replaces `folder`'s int8 encoder with one exported from its own weights by today's code.

    Returns:
        Old and new encoder file sizes and the new encoder's output difference from the old one on random inputs,
        relative to the output's mean magnitude (int8 rounding of the newly quantized projections: about 1e-2).

    Raises:
        ValueError: a bundle without an int8 encoder, a CMM encoder, or weights that do not fill the encoder.
    """
    import torch

    from models.nn.transducer import ModelConfig, Transducer
    from models.train.warmstart import encoder_state

    folder = Path(folder)
    meta = json.loads((folder / BUNDLE_JSON).read_text(encoding="utf-8"))
    name = meta["encoder"].get("int8")
    if not name:
        raise ValueError(f"{folder}: no int8 encoder")
    if CMM_DEFAULT_ENCODER in meta.get("files", {}):
        raise ValueError(f"{folder}: a configurable multilingual encoder (two encoder files) is not re-exported here")
    model = Transducer(ModelConfig.from_dict(meta["model"]["config"])).eval()
    # The encoder file holds the encoder and, for a single-head model, the joiner's encoder projection: all the
    # export of an encoder needs; the heads' own files stay as they are.
    state = encoder_state(folder / name)
    own = {k: v for k, v in model.state_dict().items() if k.startswith(("encoder.", "joiner.encoder_proj."))}
    if model.cfg.multi_head:
        own = {k: v for k, v in own.items() if k.startswith("encoder.")}
    missing = sorted(k for k in own if k not in state)
    wrong = sorted(k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or wrong:
        raise ValueError(f"{folder}: weights missing {missing[:5]} or of another shape {wrong[:5]}")
    model.load_state_dict({k: state[k] for k in own}, strict=False)
    old = folder / name
    stream = meta["streaming"]
    settings = StreamingSettings(int(stream["chunk_ms"]), int(stream["history_ms"]))
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "encoder.onnx", Path(tmp) / name
        with torch.no_grad():
            export_encoder(model, settings, fp32, read_metadata(old))
        quantize_int8(fp32, int8)
        before, after = _encoder_outputs(old), _encoder_outputs(int8)
        if before.shape != after.shape:
            raise ValueError(f"{folder}: the new encoder's output is {after.shape}, the old one's {before.shape}")
        diff = float(np.abs(after - before).mean() / (np.abs(before).mean() + 1e-9))
        old_bytes = old.stat().st_size
        int8.replace(old)
    meta["files"][name] = {"bytes": old.stat().st_size, "sha256": sha256_of(old)}
    (folder / BUNDLE_JSON).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    report = {"old_bytes": old_bytes, "new_bytes": old.stat().st_size, "relative_difference": diff}
    update_card_section(
        folder,
        SECTION,
        f"`{name}` was exported again on {dt.date.today().isoformat()} from this bundle's own weights with the "
        'encoder graph of that day (`python -m export.regraph`; docs/bundles.md "The encoder graph"): the '
        "attention's query and key-value projections as int8 MatMuls, the depthwise convolution as a (1, k) Conv2d, "
        "every LayerNorm as elementary ops, whose rounding is the same in every onnxruntime release, and a Reshape "
        "after the depthwise convolution that keeps every LayerNorm's reductions on the last axis, whose rounding is "
        "the same for a stream alone as in a batch. "
        f"{old_bytes:,} -> {report['new_bytes']:,} bytes; on random inputs its output differs from the old file's by "
        f"{100 * diff:.2f} % of the output's mean magnitude (float and int8 rounding). The figures above were "
        "measured on the old graph unless a section says otherwise.",
    )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m export.regraph", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("bundles", nargs="+", type=Path, help="bundle folders to update in place")
    a = p.parse_args(argv)
    for folder in a.bundles:
        try:
            r = regraph_bundle(folder)
        except (FileNotFoundError, ValueError) as e:
            print(f"python -m export.regraph: {e}", file=sys.stderr)
            return 2
        print(
            f"{folder}: encoder {r['old_bytes']:,} -> {r['new_bytes']:,} bytes, output difference "
            f"{100 * r['relative_difference']:.2f} % of its mean magnitude"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
