"""A stream's results do not depend on the streams batched beside it.

The engine runs every stream that has a chunk ready through one encoder call, and the heads' searches batch their
rows too. With onnxruntime's dynamic quantization one activation scale covered the whole batch, so a neighbour at
full scale changed another stream's captions; the int8 files now quantize each row on its own (export/quantize.py).
Here target streams run alone, then in crowds of neighbours (noise at full scale, silence, other speech), through the
real engine on the committed bundle, and every message they get must be byte for byte the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.quantize import ACTIVATION_KEY, PER_ROW, batch_dependent, per_row_activations
from server.bundle import load_bundle
from server.engine import Engine, EngineConfig
from server.messages import result_message
from server.protocol import dumps
from server.transducer import EncoderState

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "en-small"
SR = 16000
PIECE = 1600  # samples per push: 100 ms, as a live client sends


# ---- The rewrite on a small graph ----


def _quantized_matmul(tmp_path: Path, K: int = 48, E: int = 32) -> Path:
    """A float MatMul + bias `(N, T, K) -> (N, T, E)`, dynamically quantized the way export/onnx_export.py does
    (before the per-row rewrite)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((K, E)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(E).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "T", E])],
        [w, b],
    )
    # IR version 8 (opset 17's): onnx 1.23 writes 14 by default, which onnxruntime-gpu 1.31 refuses.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    src, dst = tmp_path / "mm.onnx", tmp_path / "mm.int8.onnx"
    onnx.save(model, str(src))
    quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
    return dst


def _run(model: onnx.ModelProto, x: np.ndarray, level: ort.GraphOptimizationLevel) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = level
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_per_row_rewrite_makes_rows_independent(tmp_path: Path) -> None:
    model = onnx.load(str(_quantized_matmul(tmp_path)))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5, 48)).astype(np.float32)
    x[1] *= 1000.0  # a loud neighbour
    x[2] = 0.0  # a silent one
    full = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

    before = _run(model, x, full)
    assert np.abs(before[0] - _run(model, x[:1], full)[0]).max() > 0, "per-tensor scales should couple the rows"

    assert per_row_activations(model) == 1 and batch_dependent(model) == 0
    assert {p.key: p.value for p in model.metadata_props}[ACTIVATION_KEY] == PER_ROW
    assert per_row_activations(model) == 0, "a second rewrite finds nothing to do"
    y = _run(model, x, full)
    for i in range(len(x)):
        alone = _run(model, x[i : i + 1], full)[0]
        assert np.array_equal(alone, y[i]), f"row {i}: max |alone - batched| {np.abs(alone - y[i]).max()}"
    # onnxruntime's fusions (MatMulIntegerToFloat) must compute what the plain graph does.
    plain = _run(model, x, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    assert np.allclose(y, plain, rtol=1e-5, atol=1e-5), f"fused vs plain: {np.abs(y - plain).max()}"
    # And both what per-row int8 arithmetic gives: close to the float product.
    w = numpy_helper.to_array(next(t for t in onnx.load(str(tmp_path / "mm.onnx")).graph.initializer if t.name == "w"))
    b = numpy_helper.to_array(next(t for t in onnx.load(str(tmp_path / "mm.onnx")).graph.initializer if t.name == "b"))
    exact = x @ w + b
    err = np.abs(y - exact).max(axis=-1) / (np.abs(exact).max(axis=-1) + 1e-6)  # (N, T) relative, per row
    assert err[[0, 1, 3]].max() < 0.05, f"largest relative error per row {err.max()}"
    assert np.allclose(y[2], b, atol=1e-6), "a zero row gives the bias"


def test_requantize_bundle_refreshes_bundle_json_and_the_card_files_table(tmp_path: Path) -> None:
    """`python -m export.quantize` rewrites an int8 file in place: bundle.json and the model card's Files table get
    its new size and hash (the card kept the old ones), the rest of the card stays as it was."""
    import json
    import shutil

    from export.quantize import main as quantize_main
    from server.bundle import sha256_of

    folder = tmp_path / "bundle"
    folder.mkdir()
    before = _quantized_matmul(tmp_path)
    old = Path(shutil.copyfile(before, folder / "encoder.int8.onnx"))
    (folder / "tokens.txt").write_text("<blk> 0\n")
    files = {p.name: {"bytes": p.stat().st_size, "sha256": sha256_of(p)} for p in (old, folder / "tokens.txt")}
    (folder / "bundle.json").write_text(json.dumps({"name": "q", "files": files}))
    rows = [f"| {n} | {e['bytes']:,} | `{e['sha256']}` |" for n, e in sorted(files.items())]
    intro = "# q\n\nA card.\n\n## Use\n\nsome text\n\n"
    table = "## Files\n\n| file | bytes | sha256 |\n| --- | ---: | --- |\n"
    (folder / "README.md").write_text(intro + table + "\n".join(rows) + "\n")
    assert quantize_main([str(folder)]) == 0
    files = json.loads((folder / "bundle.json").read_text())["files"]
    new = files["encoder.int8.onnx"]
    assert (new["sha256"], new["bytes"]) == (sha256_of(old), old.stat().st_size) and new["sha256"] != sha256_of(before)
    card = (folder / "README.md").read_text()
    rows = [f"| {n} | {e['bytes']:,} | `{e['sha256']}` |" for n, e in sorted(files.items())]
    assert card == intro + table + "\n".join(rows) + "\n", card


def test_committed_bundles_have_no_batch_wide_quantization() -> None:
    files = sorted((ROOT / "bundles").glob("*/*.int8.onnx"))
    assert files
    bad = [str(f.relative_to(ROOT)) for f in files if batch_dependent(onnx.load(str(f), load_external_data=False))]
    assert not bad, f"DynamicQuantizeLinear (one scale per batch) left in {bad}"


def _row(feeds: dict[str, np.ndarray], session: ort.InferenceSession, rows: list[int]) -> dict[str, np.ndarray]:
    """`feeds` cut to `rows` along each input's batch axis (its one named, dynamic dimension)."""
    out = {}
    for i in session.get_inputs():
        axis = [k for k, d in enumerate(i.shape) if isinstance(d, str) or d is None]
        out[i.name] = np.take(feeds[i.name], rows, axis=axis[0]) if axis else feeds[i.name]
    return out


@pytest.mark.parametrize("path", sorted((ROOT / "bundles").glob("*/encoder*.int8.onnx")), ids=lambda p: p.parent.name)
def test_committed_encoders_give_a_row_the_same_bits_at_every_batch_size(path: Path) -> None:
    """Each row of a batch of 5, run alone and beside one other row, with the server's session options (all graph
    optimizations): the same bits. onnxruntime's transpose optimizer once moved a Transpose into a LayerNorm of
    en-open's encoder, whose reductions then ran over a middle axis, a kernel that sums in another order for a batch
    of one (models/nn/encoder.py's ConvModule): a stream alone got other encoder outputs than in company."""
    from export.regraph import random_feeds

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feeds = random_feeds(session, 5, seed=3)
    batch = session.run(None, feeds)
    for r in range(5):
        for rows in ([r], [r, (r + 2) % 5]):
            got = session.run(None, _row(feeds, session, rows))
            for name, a, b in zip((o.name for o in session.get_outputs()), batch, got, strict=True):
                axis = [k for k, d in enumerate(a.shape) if a.shape[k] == 5 and b.shape[k] == len(rows)]
                want = np.take(a, [r], axis=axis[0]) if axis else a
                assert np.array_equal(want, np.take(b, [0], axis=axis[0]) if axis else b), (
                    f"{path.parent.name}: output {name} of row {r} differs with batch {rows}"
                )


# ---- Streams alone and in crowds ----


@pytest.fixture(scope="module")
def targets() -> list[np.ndarray]:
    """Two sentences spoken by test-split voices (16 kHz, silence on both sides)."""
    from models.data import grammar
    from tests._speech import spoken

    rng = random.Random(19)
    return [spoken("en", s.text["en"], rng) for s in grammar.generate("test", 3, seed=19)]


def _noise(seconds: float, seed: int) -> np.ndarray:
    """White noise at full scale: every sample at +-1 or near it."""
    rng = np.random.default_rng(seed)
    return np.sign(rng.standard_normal(int(seconds * SR))).astype(np.float32) * rng.uniform(0.9, 1.0, int(seconds * SR))


async def _streams(engine: Engine, audio: list[np.ndarray], searches: list[str]) -> list[list[str]]:
    """Runs the streams side by side (100 ms pushes, interleaved) and returns each one's messages as JSON text."""
    streams = [engine.open_stream(SR, search) for search in searches]
    out: list[list[str]] = [[] for _ in streams]

    async def collect(i: int) -> None:
        while True:
            update = await asyncio.wait_for(streams[i].next_update(), 60)
            assert update.error is None, update.error
            out[i] += [dumps(result_message(r)) for r in update.results]
            if update.end:
                return

    async def feed(i: int) -> None:
        x = audio[i]
        for k in range(0, len(x), PIECE):
            await streams[i].push(x[k : k + PIECE])
            await asyncio.sleep(0)  # let the others push: their chunks then meet in the same batches
        await streams[i].stop()

    await asyncio.gather(*(collect(i) for i in range(len(streams))), *(feed(i) for i in range(len(streams))))
    for s in streams:
        s.close()
    return out


def test_results_are_byte_identical_alone_and_in_crowds(targets: list[np.ndarray]) -> None:
    """Every message, and (more sensitive: a changed scale rarely flips a token) every encoder output row."""
    bundle = load_bundle(BUNDLE, providers="cpu", threads=1)
    batches: list[int] = []
    rows: list[tuple[bytes, bytes]] = []  # (hash of one stream's encoder input and state, its output row)

    async def go() -> None:
        # Endpointing on (several finals per stream); a long wait so that the crowd really shares encoder calls.
        engine = Engine(bundle, EngineConfig(max_batch=16, max_wait_ms=50.0))
        encode = engine.model.encode

        def recording(x: np.ndarray, state: EncoderState) -> tuple[np.ndarray, EncoderState]:
            enc, new = encode(x, state)  # x (N, T, F), enc (N, C, E)
            batches.append(len(x))
            for i in range(len(x)):
                h = hashlib.sha256(x[i].tobytes())
                for cache in (state.cached_attn, state.cached_conv):  # (L, K, N, D): the stream is axis 2
                    h.update(np.ascontiguousarray(cache[:, :, i]).tobytes())
                rows.append((h.digest() + state.processed[i].tobytes(), enc[i].tobytes()))
            return enc, new

        engine.model.encode = recording  # type: ignore[method-assign]
        await engine.start()
        try:
            searches = ["greedy", "beam"]
            alone = [(await _streams(engine, [t], [s]))[0] for t in targets[:2] for s in searches]
            assert all(any('"type":"final"' in m for m in msgs) for msgs in alone), "every target has finals"
            reference = dict(rows)
            longest = max(len(t) for t in targets) / SR + 1.0
            crowds = {
                "noise": [_noise(longest, seed) for seed in range(6)],
                "silence": [np.zeros(int(longest * SR), dtype=np.float32) for _ in range(6)],
                "speech": [targets[2], targets[2][::-1].copy(), *(t * 0.3 for t in targets[:2])],
                "mixed": [_noise(longest, 9), np.zeros(SR, dtype=np.float32), targets[2], _noise(0.5, 10)],
            }
            for name, neighbours in crowds.items():
                batches.clear()
                rows.clear()
                audio = [t for t in targets[:2] for _ in searches] + neighbours
                kinds = searches * 2 + ["greedy"] * len(neighbours)
                got = await _streams(engine, audio, kinds)
                assert max(batches) >= 4, f"{name}: the streams never shared an encoder call ({max(batches)})"
                same = [reference[k] == out for k, out in rows if k in reference]
                assert all(same), f"crowd {name!r}: {same.count(False)} of {len(same)} encoder rows changed"
                # Every target chunk is compared (only while the inputs agree, which they do while outputs agree).
                assert len(same) >= sum(len(t) for t in targets[:2]) // SR * 2, f"{name}: {len(same)} rows compared"
                for i, (a, b) in enumerate(zip(alone, got, strict=False)):
                    assert a == b, f"crowd {name!r}, target {i}: alone {a[-1]} vs crowded {b[-1] if b else None}"
        finally:
            await engine.close()

    asyncio.run(go())
