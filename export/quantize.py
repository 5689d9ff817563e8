"""int8 models whose results for one row never depend on the other rows of the batch.

onnxruntime's dynamic quantization puts a `DynamicQuantizeLinear` before every quantized MatMul: one scale and zero
point for the whole input tensor, so in a batch of streams the loudest stream sets every other stream's precision
and a stream's transcript changes with its neighbours. `per_row_activations` rewrites each of them into a symmetric
per-row quantization: every row (the last axis, the one the MatMul contracts) gets its own scale max|x| / 127 and
the fixed zero point 128. The int8 weights, the `MatMulInteger` and everything after it stay as they are (the scale
now broadcasts as `(..., 1)`), so the file keeps its size and speed, and sherpa-onnx loads it like any other.

    python -m export.quantize bundles/en-small bundles/sm2-mini    # rewrites the bundles' int8 files in place

Rewriting in place refreshes the files' sizes and hashes in bundle.json and in the model card's Files table. Only
onnx and numpy are needed (no torch): a bundle whose float files were not kept can be converted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from export.card import refresh_files_table
from server.bundle import sha256_of

# The metadata key a rewritten file carries; its value names the activation quantization.
ACTIVATION_KEY = "activation_quantization"
PER_ROW = "per_row_symmetric"
# A row of zeros would divide by a zero scale; its scale becomes this (its values all quantize to the zero point).
_MIN_ABS = 1e-8


def per_row_activations(model: onnx.ModelProto) -> int:
    """Rewrites every `DynamicQuantizeLinear` of `model` (in place) into per-row symmetric quantization.

    For an input x `(..., K)`: scale `(..., 1)` = max(max|x|, 1e-8) / 127 along K; quantized = round(x / scale) +
    128 as uint8, within [1, 255] (halves round up); zero point the constant 128. Each row's result depends on
    that row alone.

    quantize_dynamic's graph multiplies the MatMulInteger's output by (activation scale x weight scale); the
    activation's factor becomes a Mul of its own after that product. onnxruntime fuses MatMulInteger, Cast and the
    scale Mul into MatMulIntegerToFloat, which mis-reads an activation scale that is not a scalar (measured with
    onnxruntime 1.32: every output column off by the same amount); with the weight scale alone it fuses correctly.

    Returns:
        How many were rewritten (0: the model had none, or was rewritten before).

    Raises:
        ValueError: a `DynamicQuantizeLinear` inside a subgraph, or whose scale is used other than by
            quantize_dynamic's (scale x weight scale) Mul feeding the output Mul.
    """
    g = model.graph
    for node in g.node:
        for attr in node.attribute:
            if attr.g.node and any(n.op_type == "DynamicQuantizeLinear" for n in attr.g.node):
                raise ValueError(f"node {node.name!r} has a DynamicQuantizeLinear in a subgraph")
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in g.node:
        for name in node.input:
            users.setdefault(name, []).append(node)

    row_scale: dict[str, str] = {}  # output of an output Mul -> the per-row scale it is to be multiplied by
    combines: dict[int, str] = {}  # id() of each (activation scale x weight scale) Mul -> the activation scale
    new_nodes: list[onnx.NodeProto] = []
    count = 0
    for node in g.node:
        if node.op_type != "DynamicQuantizeLinear":
            new_nodes.append(node)
            continue
        count += 1
        x = node.input[0]
        q, scale, zero = [*node.output, "", "", ""][:3]
        p = f"per_row_{count}"

        def op(kind: str, inputs: list[str], name: str, p: str = p, **attrs) -> str:
            out = f"{p}/{name}"
            new_nodes.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
            return out

        # Few and plain operators: at one stream the encoder's tensors are small, and each extra node costs about
        # as much as its arithmetic.
        amax = op("ReduceMax", [op("Abs", [x], "abs")], "max_abs", axes=[-1], keepdims=1)  # (..., 1)
        s = op("Div", [op("Max", [amax, "per_row_min_abs"], "max_abs_floor"), "per_row_127"], "scale")
        # x / s lies in [-127, 127]; + 128.5 then Cast's truncation rounds it to the nearest of [1, 255].
        shifted = op("Add", [op("Div", [x, s], "scaled"), "per_row_offset"], "shifted")
        new_nodes.append(helper.make_node("Cast", [shifted], [q], name=f"{p}/quantized", to=TensorProto.UINT8))
        if zero:
            zp = numpy_helper.from_array(np.array(128, dtype=np.uint8))
            new_nodes.append(helper.make_node("Constant", [], [zero], name=f"{p}/zero_point", value=zp))
        for combine in users.get(scale, []) if scale else []:
            applies = [u for n in combine.output for u in users.get(n, [])]
            if combine.op_type != "Mul" or not applies or any(a.op_type != "Mul" for a in applies):
                raise ValueError(f"{scale} is used by {combine.op_type} {combine.name!r}, not as quantize_dynamic does")
            combines[id(combine)] = scale
            for a in applies:
                row_scale[a.output[0]] = s
    if not count:
        return 0
    nodes: list[onnx.NodeProto] = []
    for node in new_nodes:
        if id(node) in combines:  # activation scale x weight scale -> 1 x weight scale
            node.input[list(node.input).index(combines[id(node)])] = "per_row_one"
        out = node.output[0] if node.output else None
        if out in row_scale:
            node.output[0] = f"{out}/per_tensor"
            nodes += [node, helper.make_node("Mul", [node.output[0], row_scale[out]], [out], name=f"{out}/per_row")]
        else:
            nodes.append(node)
    del g.node[:]
    g.node.extend(nodes)
    consts = {
        "per_row_127": np.array(127.0, dtype=np.float32),
        "per_row_min_abs": np.array(_MIN_ABS, dtype=np.float32),
        "per_row_offset": np.array(128.5, dtype=np.float32),
        "per_row_one": np.array(1.0, dtype=np.float32),
    }
    known = {t.name for t in g.initializer}
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items() if k not in known)
    # The scales' shapes changed from () to (..., 1): drop inferred shapes that said otherwise.
    keep = [v for v in g.value_info if not v.name.endswith(("_scale", "_zero_point", "quant_scales_mul:0"))]
    del g.value_info[:]
    g.value_info.extend(keep)
    meta = {m.key: m for m in model.metadata_props}
    if ACTIVATION_KEY in meta:
        meta[ACTIVATION_KEY].value = PER_ROW
    else:
        model.metadata_props.add(key=ACTIVATION_KEY, value=PER_ROW)
    onnx.checker.check_model(model)
    return count


def per_row_file(src: Path, dst: Path | None = None) -> int:
    """`per_row_activations` on an ONNX file, written to `dst` (default: in place). Returns the rewrite count."""
    model = onnx.load(str(src))
    n = per_row_activations(model)
    if n or (dst is not None and Path(dst) != Path(src)):
        onnx.save(model, str(dst or src))
    return n


def batch_dependent(model: onnx.ModelProto) -> int:
    """How many `DynamicQuantizeLinear` nodes (one scale over the whole batch) the model still has."""
    return sum(n.op_type == "DynamicQuantizeLinear" for n in model.graph.node)


def requantize_bundle(folder: Path) -> dict[str, int]:
    """Rewrites a bundle folder's int8 ONNX files in place and refreshes their sizes and hashes in bundle.json and
    in the model card's Files table.

    Returns:
        The number of rewritten nodes per file name (0 for files already per-row).
    """
    folder = Path(folder)
    meta_path = folder / "bundle.json"
    meta = json.loads(meta_path.read_text())
    files = meta.get("files", {})
    done = {}
    for path in sorted(folder.glob("*.int8.onnx")):
        done[path.name] = per_row_file(path)
        if path.name in files:
            files[path.name].update(bytes=path.stat().st_size, sha256=sha256_of(path))
    if any(done.values()):
        meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        refresh_files_table(folder)
    return done


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m export.quantize", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("bundles", nargs="+", type=Path, help="bundle folders whose *.int8.onnx files to rewrite in place")
    args = p.parse_args(argv)
    for folder in args.bundles:
        for name, n in requantize_bundle(folder).items():
            done = f"{n} DynamicQuantizeLinear rewritten to per-row" if n else "already per-row"
            print(f"{folder / name}: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
