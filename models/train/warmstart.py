"""A training checkpoint from a committed bundle's ONNX files: warm starts without the original checkpoint.

    python -m models.train.warmstart --bundle bundles/en-small --out exp/en-small-init.pt
    parley train ... --init exp/en-small-init.pt      # models.nn.checkpoint.init_from takes every tensor that fits

Bundles are committed, checkpoints are not (they live on the machine that trained them). The exported graphs keep
the PyTorch parameter names for every float initializer; int8 weights (dynamic quantization of MatMul) are stored
transposed as `(in, out)` int8 with a scale and zero point, and named after the module by the MatMul node that
reads them (``/layers.0/ff1/net/net.0/MatMul_quant`` -> ``encoder.layers.0.ff1.net.0.weight``). Dequantized,
they differ from the trained weights by at most half a quantization step, which fine-tuning absorbs.

The attention's input projection is one PyTorch parameter (``attn.qkv``) that the graph uses as two constant slices,
queries and keys+values (models/nn/encoder.py's `RelPosAttention`). Bundles exported since 2026-12-05 carry them
folded, as two MatMul weights without a PyTorch name (``/layers.0/attn/MatMul`` and ``MatMul_1``, int8 like the
others) and two bias initializers added to their outputs; they are put back together as ``attn.qkv.weight`` and
``attn.qkv.bias``. Older bundles keep ``attn.qkv`` as a float initializer. Likewise the depthwise conv's weight,
which the graph uses with an axis added (a (1, k) Conv2d), comes back under the name of its bias.

Only tensors are recovered: the result has a "model" state dict and no config, so it serves `--init` (names and
shapes must match the new model's, e.g. the same encoder size; a new vocabulary leaves the decoder embedding and
output layers as initialized), not `--resume`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _module_name(node_name: str, prefix: str) -> str:
    """``/layers.0/ff1/net/net.0/MatMul_quant`` -> ``encoder.layers.0.ff1.net.0``: the exporter writes a child of
    a Sequential as ``net/net.0``, so a segment that the next one starts with is dropped."""
    parts = [p for p in node_name.split("/")[:-1] if p]
    kept = [p for i, p in enumerate(parts) if not (i + 1 < len(parts) and parts[i + 1].startswith(p + "."))]
    return ".".join([prefix, *kept]) if prefix else ".".join(kept)


# The attention's query and key+value projections: slices of `attn.qkv`, folded by the exporter (fp32 "MatMul",
# int8 "MatMul_quant"); the attention's other MatMuls multiply activations.
_QKV_NODE = re.compile(r"(?P<module>.*/attn)/MatMul(?P<part>_1)?(_quant)?")


def _bias_after(model, output: str, inits: dict[str, np.ndarray], hops: int = 4) -> np.ndarray | None:
    """The float initializer that the first Add after `output` adds (int8 graphs put a Cast and scale Muls first)."""
    for _ in range(hops):
        users = [n for n in model.graph.node if output in n.input]
        if len(users) != 1:
            return None
        (user,) = users
        if user.op_type == "Add":
            consts = [inits[i] for i in user.input if i in inits]
            return consts[0] if len(consts) == 1 else None
        output = user.output[0]
    return None


def tensors_from_onnx(path: str | Path, prefix: str = "") -> dict[str, np.ndarray]:
    """Every weight of one exported graph under its PyTorch name, int8 MatMul weights dequantized to float32."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    out: dict[str, np.ndarray] = {}
    for name, value in inits.items():
        if name.endswith(("_quantized", "_scale", "_zero_point")) or name.startswith("onnx::"):
            continue
        if value.dtype == np.float32 and "." in name:
            out[name] = value
    qkv: dict[str, dict[str, tuple[np.ndarray, np.ndarray | None]]] = {}  # module -> "q"/"kv" -> (weight, bias)
    for node in model.graph.node:
        if node.op_type not in ("MatMulInteger", "MatMul") or node.input[1] not in inits:
            continue
        w = node.input[1]
        if node.op_type == "MatMul":
            weight = inits[w].T  # (in, out) -> (out, in), as nn.Linear keeps it
            base = w
        else:
            base = w[: -len("_quantized")]
            if base + "_scale" not in inits:
                continue
            q = inits[w].astype(np.float32) - inits[base + "_zero_point"].astype(np.float32)
            weight = (q * inits[base + "_scale"].astype(np.float32)).T
        if (m := _QKV_NODE.fullmatch(node.name)) and not base.endswith(".weight"):
            part = "kv" if m["part"] else "q"
            qkv.setdefault(m["module"], {})[part] = (weight, _bias_after(model, node.output[0], inits))
        elif node.op_type == "MatMulInteger":
            key = base if base.endswith(".weight") else _module_name(node.name, prefix) + ".weight"
            out[key] = np.ascontiguousarray(weight)
    for node in model.graph.node:
        # The depthwise conv runs as a (1, k) Conv2d (models/nn/encoder.py's `ConvModule`): its weight is the
        # Conv1d's with an axis added, folded without a name; the bias keeps the name the weight is recovered under.
        if node.op_type != "Conv" or len(node.input) < 3 or node.input[1] not in inits:
            continue
        w, b = node.input[1], node.input[2]
        if w.startswith("onnx::") and b.endswith(".bias") and inits[w].ndim == 4 and inits[w].shape[2] == 1:
            out[b[: -len(".bias")] + ".weight"] = np.ascontiguousarray(inits[w][:, :, 0, :])
    for node_module, parts in qkv.items():
        if set(parts) != {"q", "kv"} or parts["q"][1] is None or parts["kv"][1] is None:
            raise ValueError(f"{path}: {node_module} has query/key-value projections that do not pair up")
        module = _module_name(node_module + "/MatMul", prefix) + ".qkv"
        out[module + ".weight"] = np.ascontiguousarray(np.concatenate([parts["q"][0], parts["kv"][0]]))
        out[module + ".bias"] = np.concatenate([parts["q"][1], parts["kv"][1]]).astype(np.float32)
    return out


def encoder_state(path: str | Path) -> dict:
    """An exported encoder file's tensors under the PyTorch model's names, as torch tensors: the encoder's, and the
    joiner's encoder projection that a single-head model's encoder graph carries."""
    import torch

    state = {}
    for k, v in tensors_from_onnx(path, "encoder").items():
        if "encoder_proj." in k:
            k = "joiner.encoder_proj." + k.rsplit(".", 1)[1]
        state[k] = torch.from_numpy(np.array(v))
    return state


def checkpoint_from_bundle(bundle: str | Path) -> dict:
    """{"model": {name: tensor}} from a single-head bundle's int8 (or fp32) encoder, decoder and joiner.

    Also "from_bundle" (the folder) and "bundle_training" (bundle.json's "training": how those weights were trained),
    so that a bundle exported from a run that started here carries the whole history, even where the new bundle
    replaces the one it started from."""
    import torch

    bundle = Path(bundle)
    meta = json.loads((bundle / "bundle.json").read_text())
    head = meta["heads"][0]
    prec = "fp32" if "fp32" in meta["encoder"] else meta["precisions"][0]
    state: dict = encoder_state(bundle / meta["encoder"][prec])
    for name, prefix in ((head["decoder"][prec], ""), (head["joiner"][prec], "joiner")):
        for k, v in tensors_from_onnx(bundle / name, prefix).items():
            if prefix == "joiner" and not k.startswith("joiner."):
                k = f"joiner.{k}"
            if prefix == "" and k.startswith("decoder_proj."):
                k = f"joiner.{k}"  # the exported decoder graph carries the joiner's decoder projection
            state[k] = torch.from_numpy(np.array(v))
    return {"model": state, "from_bundle": str(bundle), "bundle_training": meta.get("training") or {}}


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    p = argparse.ArgumentParser(
        prog="python -m models.train.warmstart",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bundle", required=True, help="a bundle folder (bundle.json and its ONNX files)")
    p.add_argument("--out", required=True, help="the checkpoint to write, for `parley train --init`")
    a = p.parse_args(argv)
    ckpt = checkpoint_from_bundle(a.bundle)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, a.out)
    print(f"{len(ckpt['model'])} tensors from {a.bundle} -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
