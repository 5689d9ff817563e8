"""Frontend benchmark: the fbank frames of one server batch, per backend (the server's `--fbank`).

    python benchmarks/bench_fbank.py --streams 1 32 200 --out benchmarks/results/fbank-2cpu.json

Cuts `--streams` streams of speech-like audio into the chunks the server's frontend cuts for en-open (320 ms: 36
fbank frames a window, 32 a shift) and computes one chunk of every stream in one `compute_features` call, as the
batching loop does, with each backend of `parley.features.FBANK_BACKENDS`. Prints the median over `--runs` calls of
the time per stream and chunk (best of `--repeats` medians: other processes only ever add time), and, for
comparison, what one int8 encoder step costs per stream and chunk (docs/bundles.md: 0.885 ms at batch 32 on these
cores). kaldi-native-fbank runs only where it is installed.

This is a script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parley.features import FBANK_BACKENDS, FbankConfig, check_fbank_backend
from server.bundle import EncoderSpec
from server.frontend import Chunk, Frontend, compute_features

WINDOW, SHIFT = 36, 32  # en-open's encoder step: fbank frames read and advanced (320 ms chunks)


def _spec() -> EncoderSpec:
    return EncoderSpec(1, 0, 1, 1, window=WINDOW, shift=SHIFT, chunk=8, subsampling=4, joiner_dim=1, out_dim=1,
                       chunk_ms=320, history_ms=1280, features=FbankConfig())  # fmt: skip


def time_batch(backend: str, streams: int, runs: int, repeats: int, seed: int = 0) -> float:
    """Median milliseconds per stream and chunk of `compute_features` over one chunk of each of `streams` streams."""
    rng = np.random.default_rng(seed)
    seconds = 0.32 * (runs + 2) + 0.1
    frontends = []
    for _ in range(streams):
        f = Frontend(_spec(), 16000, backend)
        t = np.arange(int(seconds * 16000)) / 16000
        f.accept(
            (0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + 0.05 * rng.standard_normal(t.size)).astype(
                np.float32
            )
        )
        frontends.append(f)
    batches = [[f.pop_chunk() for f in frontends] for _ in range(runs)]
    saved = [[(c.samples.copy(), c.logmel) for c in chunks] for chunks in batches]  # each run starts from samples
    best = float("inf")
    for _ in range(repeats):
        times = []
        for chunks in saved:
            fresh = [Chunk(None, 0.0, False, samples, logmel) for samples, logmel in chunks]
            t0 = time.perf_counter()
            compute_features(fresh)
            times.append(time.perf_counter() - t0)
        best = min(best, statistics.median(times))
    return 1000 * best / streams


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, nargs="+", default=[1, 32, 200])
    p.add_argument("--runs", type=int, default=10, help="batches timed per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, help="write the figures as JSON")
    a = p.parse_args(argv)
    results: dict = {"window": WINDOW, "shift": SHIFT, "ms_per_stream_chunk": {}}
    for backend in FBANK_BACKENDS:
        try:
            check_fbank_backend(backend)
        except ValueError as e:
            print(f"{backend}: skipped ({e})")
            continue
        row = {n: time_batch(backend, n, a.runs, a.repeats) for n in a.streams}
        results["ms_per_stream_chunk"][backend] = row
        print(f"{backend:>20}: " + ", ".join(f"{v:.3f} ms at {n} streams" for n, v in row.items()))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
