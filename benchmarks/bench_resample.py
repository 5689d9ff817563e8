"""What bringing a stream to the models' 16 kHz costs (parley/resample.py, the frontend of every stream whose rate is
not 16 kHz): CPU milliseconds per second of audio, fed in 100 ms messages as a client sends them, for each input
rate, computed both ways the resampler knows (a period's outputs as one matrix over a strided window of the input,
and each output's taps gathered by index), and how far apart their samples are.

    python benchmarks/bench_resample.py --out benchmarks/results/resample-2cpu.json

One core (the process's own CPU time), the best of `--repeats` runs of `--seconds` of noise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parley.resample import Resampler

RATES = [8000, 11025, 22050, 24000, 32000, 44100, 48000, 96000, 192000]


def _run(x: np.ndarray, rate: int, out_rate: int, piece: int, gather: bool) -> tuple[np.ndarray, float]:
    r = Resampler(rate, out_rate)
    if gather:
        r._period = None
    t = time.process_time()
    y = [r.process(x[i : i + piece]) for i in range(0, x.size, piece)]
    spent = time.process_time() - t
    return np.concatenate([*y, r.flush()]), spent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", type=int, nargs="+", default=RATES)
    p.add_argument("--to", type=int, default=16000, help="output rate (default: 16000)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--message-ms", type=float, default=100.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    rows = []
    print(f"{'rate':>7} {'method':>7} {'period ms/s':>12} {'gather ms/s':>12} {'speed-up':>9} {'max diff':>9}")
    for rate in a.rates:
        x = (0.1 * np.random.default_rng(rate).standard_normal(int(rate * a.seconds))).astype(np.float32)
        piece = max(1, round(rate * a.message_ms / 1000))
        best = {}
        for gather in (False, True):
            runs = [_run(x, rate, a.to, piece, gather) for _ in range(a.repeats)]
            best[gather] = (runs[0][0], min(s for _, s in runs))
        diff = float(np.abs(best[False][0] - best[True][0]).max())
        method = "period" if Resampler(rate, a.to)._period is not None else "gather"
        period_ms, gather_ms = (1000 * best[g][1] / a.seconds for g in (False, True))
        rows.append(
            {
                "rate": rate,
                "to": a.to,
                "method": method,
                "period_ms_per_audio_second": round(period_ms, 3),
                "gather_ms_per_audio_second": round(gather_ms, 3),
                "max_abs_diff": diff,
            }
        )
        print(
            f"{rate:>7} {method:>7} {period_ms:>12.3f} {gather_ms:>12.3f} {gather_ms / period_ms:>8.1f}x {diff:>9.1e}"
        )
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"seconds": a.seconds, "message_ms": a.message_ms, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
