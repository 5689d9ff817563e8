"""Encoder benchmark: one streaming encoder step, in onnxruntime, per stream and chunk, and where its time goes.

    python benchmarks/bench_encoder.py bundles/en-open/encoder.int8.onnx /tmp/old/encoder.int8.onnx --batch 1 8 32
    python benchmarks/bench_encoder.py bundles/en-open/encoder.int8.onnx --batch 32 --profile

Feeds every input of the encoder at the file's own shapes (the batch axis set to each `--batch`; float inputs random,
`processed_lens` at the full history), runs `--runs` steps after warm-up, and prints the median time of a step
divided by the batch: milliseconds of `--threads` onnxruntime threads per stream and chunk, what the server's
batches cost. The best of `--repeats` medians is kept (other processes on the machine only ever add time). With
`--profile`, onnxruntime's profiler splits one batch size's time by operator type and names the costliest nodes.

This is a script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from export.regraph import random_feeds


def _session(path: Path, threads: int, profile_dir: str | None = None) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    if profile_dir:
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(profile_dir, "encoder")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def step_ms(path: Path, batch: int, threads: int = 1, runs: int = 40, repeats: int = 3) -> float:
    """Milliseconds of one step per stream: the best of `repeats` medians over `runs` steps, divided by `batch`."""
    session = _session(path, threads)
    feeds = random_feeds(session, batch)
    for _ in range(3):
        session.run(None, feeds)
    best = float("inf")
    for _ in range(repeats):
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            session.run(None, feeds)
            times.append(time.perf_counter() - t)
        best = min(best, float(np.median(times)))
    return 1000.0 * best / batch


def profile(path: Path, batch: int, threads: int = 1, runs: int = 20) -> dict:
    """Share of the kernels' time by operator type, and the ten costliest nodes, over `runs` steps."""
    with tempfile.TemporaryDirectory() as tmp:
        session = _session(path, threads, tmp)
        feeds = random_feeds(session, batch)
        for _ in range(runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op: Counter[str] = Counter()
    by_node: Counter[str] = Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
            by_node[e["name"][: -len("_kernel_time")]] += e["dur"]
    total = sum(by_op.values()) or 1
    return {
        "by_op": {k: round(v / total, 4) for k, v in by_op.most_common()},
        "top_nodes": {k: round(v / total, 4) for k, v in by_node.most_common(10)},
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("encoders", type=Path, nargs="+", help="encoder ONNX files (a bundle's encoder.int8.onnx, ...)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32], help="streams per step (default: 1 8 32)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (the server's default: 1)")
    p.add_argument("--runs", type=int, default=40, help="timed steps per median")
    p.add_argument("--repeats", type=int, default=3, help="medians per figure; the best is kept")
    p.add_argument("--profile", action="store_true", help="also split the time of the largest batch by operator")
    p.add_argument("--json", type=Path, help="write the figures here")
    a = p.parse_args(argv)
    for f in a.encoders:
        if not f.is_file():
            print(f"bench_encoder: {f} is not a file", file=sys.stderr)
            return 2
    results: dict = {"threads": a.threads, "onnxruntime": ort.__version__, "encoders": {}}
    for f in a.encoders:
        row = {"bytes": f.stat().st_size, "ms_per_stream_chunk": {}}
        for b in a.batch:
            row["ms_per_stream_chunk"][str(b)] = round(step_ms(f, b, a.threads, a.runs, a.repeats), 4)
        figures = "  ".join(f"batch {b}: {v:.3f} ms" for b, v in row["ms_per_stream_chunk"].items())
        print(f"{f} ({row['bytes'] / 1e6:.2f} MB)  {figures}  (per stream and chunk, {a.threads} thread(s))")
        if a.profile:
            row["profile"] = profile(f, max(a.batch), a.threads)
            ops = ", ".join(f"{k} {100 * v:.1f}%" for k, v in list(row["profile"]["by_op"].items())[:10])
            print(f"  by operator at batch {max(a.batch)}: {ops}")
            nodes = ", ".join(f"{k} {100 * v:.1f}%" for k, v in list(row["profile"]["top_nodes"].items())[:5])
            print(f"  costliest nodes: {nodes}")
        results["encoders"][str(f)] = row
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
