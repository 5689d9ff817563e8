"""Finalize latency: how long a client waits for its caption after saying the turn is over.

    python benchmarks/bench_finalize.py bundles/ --manifest data/corpus-v2/en/test.jsonl --n 40 --model en-open

Starts `parley serve` on a bundle folder (benchmarks/bench_server.py's `ServerProcess`) and streams each utterance
once at real-time pace in 100 ms messages, one stream at a time, in two ways: followed at once by finalize (the
protocol's `{"type": "finalize"}`, then stop), and followed by stop alone. It prints, over the utterances:

- finalize latency p50 / p95 / max: from sending finalize to receiving the final marked `finalized`;
- stop latency p50 / p95 / max: from sending stop to receiving end (the final comes just before it);
- the WER of each way's finals against the manifest's texts, which must agree: a finalize decodes what a stop does.

This is a script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_server import ServerProcess, manifest_clips  # noqa: E402
from clients.stream import FINALIZE, converse, encode_audio, start_message  # noqa: E402
from parley.wer import error_counts  # noqa: E402

CHUNK_S = 0.1


async def _paced(pcm: bytes, rate: int, finalize: bool, sent: dict) -> AsyncIterator[tuple[bytes | dict, float]]:
    """The utterance's s16le bytes in 100 ms messages at real time, then FINALIZE (noting when it went)."""
    step = round(CHUNK_S * rate) * 2
    t0 = time.monotonic()
    for i in range(0, len(pcm), step):
        end = min(i + step, len(pcm)) / 2 / rate
        delay = t0 + end - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        yield pcm[i : i + step], end
    if finalize:
        sent["finalize"] = time.monotonic()
        yield FINALIZE, len(pcm) / 2 / rate


async def one(url: str, samples: np.ndarray, rate: int, model: str | None, finalize: bool) -> tuple[float, str]:
    """(latency in s, the finals' text) of one utterance streamed with or without finalize."""
    sent: dict[str, float] = {}
    got: dict[str, float] = {}

    def seen(msg: dict) -> None:
        if msg.get("type") == "final" and msg.get("finalized"):
            got["finalized"] = time.monotonic()

    pcm = encode_audio(samples, "s16le")
    r = await converse(url, start_message(rate, model=model), _paced(pcm, rate, finalize, sent), on_message=seen)
    if not r.ok:
        raise RuntimeError(f"stream failed: {r.error}")
    if finalize:
        return got["finalized"] - sent["finalize"], r.text
    assert r.finalization_latency is not None
    return r.finalization_latency, r.text


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundles", type=Path, help="the bundle folder to serve")
    p.add_argument("--manifest", type=Path, required=True, help="utterances (a Parley manifest with texts)")
    p.add_argument("--n", type=int, default=40, help="utterances (default: 40)")
    p.add_argument("--model", help="bundle name (default: the server's default)")
    a = p.parse_args()
    clips = manifest_clips(a.manifest, a.n)
    server = ServerProcess(a.bundles, [])
    try:
        rows = {}
        for finalize in (True, False):
            out = [asyncio.run(one(server.url, c.samples, c.rate, a.model, finalize)) for c in clips]
            lat = np.array([x for x, _ in out]) * 1000
            counts = error_counts([c.ref or "" for c in clips], [t for _, t in out])
            rows["finalize" if finalize else "stop"] = (lat, counts)
    finally:
        server.stop()
    audio_s = sum(len(c.samples) / c.rate for c in clips)
    print(f"{len(clips)} utterances, {audio_s:.1f} s, one stream at a time, 100 ms messages at real time")
    for name, (lat, counts) in rows.items():
        print(
            f"{name:>8}: latency p50 {np.percentile(lat, 50):.0f} ms, p95 {np.percentile(lat, 95):.0f} ms, "
            f"max {lat.max():.0f} ms; WER {100 * counts.rate:.2f} % ({counts.errors}/{counts.reference_words})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
