"""Server benchmark: starts `parley serve` on a bundle folder and drives it with the load tester at real-time pace.

    python benchmarks/bench_server.py bundles/ --manifest data/corpus/en/test.jsonl --streams 1 8 32
    python benchmarks/bench_server.py bundles/ --files a.wav b.wav --ramp --target-p95-ms 500 --duration 20
    python benchmarks/bench_server.py /tmp/tiny-bundles --streams 1 2 --duration 4 -- --max-batch 8

The server runs as a child process (`python -m parley.cli serve`, settings after `--` are passed to it), so its CPU
time, read from its /metrics, is its own. Audio comes from WAV files (--files), from a manifest's utterances (its
`audio` paths, with its texts as references for WER), or, when neither is given, from synthetic tones. For each
number of streams it prints:

- chunk latency p50/p95/p99: per audio message, from sending it until the first partial or final whose `end`
  covers it (`parley loadtest`'s definition; pessimistic across silences, where the text does not change);
- server-side chunk latency p50/p95/p99: from the server's /metrics histogram, arrival of the sample that completes a
  chunk (lookahead included) to that chunk's results being sent, for every chunk (the target's definition);
- finalization latency: stop to end;
- real-time factor: server CPU seconds per second of audio streamed, and the server's CPU cores in use;
- with --ramp: the most streams whose p95 chunk latency stays within --target-p95-ms without errors.

This is a script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from clients import loadtest  # noqa: E402
from parley.audio import read_wav  # noqa: E402

SYNTH_RATE = 16000  # Hz: synthetic clips


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def synthetic_clips(n: int, seconds: float) -> list[loadtest.Clip]:
    """Gliding, amplitude-modulated tones in noise: something for an untrained bundle to emit tokens on."""
    clips = []
    for seed in range(n):
        rng = np.random.default_rng(seed)
        t = np.arange(round(seconds * SYNTH_RATE)) / SYNTH_RATE
        f0 = 180 + 40 * seed + 300 * np.sin(2 * np.pi * (0.5 + 0.2 * seed) * t)
        x = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / SYNTH_RATE) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
        x = (x + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
        clips.append(loadtest.Clip(f"synthetic-{seed}", x, SYNTH_RATE))
    return clips


def manifest_clips(path: Path, limit: int) -> list[loadtest.Clip]:
    """The first `limit` utterances of a Parley manifest (JSONL: audio, text, language), with their references."""
    clips = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            audio = Path(d["audio"])
            audio = audio if audio.is_absolute() else path.parent / audio
            samples, rate = read_wav(audio)
            clips.append(loadtest.Clip(str(audio), samples, rate, d.get("text"), d.get("language") or ""))
            if len(clips) >= limit:
                break
    if not clips:
        raise ValueError(f"{path}: no utterances")
    return clips


class ServerProcess:
    """`parley serve` in a child process on a free port, ready when /readyz says so."""

    def __init__(self, bundles: Path, extra: Sequence[str], timeout: float = 120.0) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "parley.cli", "serve", "--bundles", str(bundles), "--port", str(self.port)]
        cmd += ["--log-level", "warning", *extra]
        self.proc = subprocess.Popen(cmd, cwd=ROOT)
        self.url = f"ws://127.0.0.1:{self.port}/v1/stream"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"parley serve exited with code {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"parley serve was not ready within {timeout:g} s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # drains: open streams finish first
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def report(level: dict) -> None:
    lat, fin = level["latency_ms"], level["finalization_ms"]
    audio, cpu = level["audio_seconds"], level["server_cpu_seconds"]
    parts = [f"streams {level['streams']:>4}"]
    if lat:
        parts.append(f"chunk latency p50 {lat['p50']:6.0f}  p95 {lat['p95']:6.0f}  p99 {lat['p99']:6.0f} ms")
    else:
        parts.append("chunk latency -")
    srv = level.get("server_latency_ms")
    if srv:
        parts.append(f"server-side p50 {srv['p50']:4.0f} p95 {srv['p95']:4.0f} p99 {srv['p99']:4.0f} ms")
    parts.append(f"final {fin['p50']:5.0f} ms (p95 {fin['p95']:.0f})" if fin else "final -")
    if cpu is not None and audio > 0:
        parts.append(f"RTF {cpu / audio:.4f} (server CPU {cpu:.1f} s for {audio:.1f} s audio)")
    if level["server_cpu_cores"] is not None:
        parts.append(f"{level['server_cpu_cores']:.2f} cores")
    if level["wer"]:
        parts.append(f"WER {100 * level['wer']['rate']:.2f}%")
    parts.append(f"uncovered {level['chunks_uncovered']}/{level['chunks']}")
    parts.append(f"errors {level['error_count']}" + (f" {level['errors']}" if level["errors"] else ""))
    print(" | ".join(parts), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    server_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, server_args = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundles", nargs="?", default=str(ROOT / "bundles"), help="bundle folder (default: bundles/)")
    p.add_argument("--files", nargs="+", metavar="WAV", help="audio files to stream")
    p.add_argument("--manifest", type=Path, help="a Parley manifest: stream its utterances, score WER on its texts")
    p.add_argument("--limit", type=int, default=64, help="utterances taken from --manifest (default: 64)")
    p.add_argument("--synthetic-seconds", type=float, default=5.0, help="length of synthetic clips (default: 5)")
    p.add_argument("--streams", type=int, nargs="+", default=[1, 4], help="stream counts to run (default: 1 4)")
    p.add_argument("--duration", type=float, help="seconds per level; streams cycle files until then")
    p.add_argument("--chunk-ms", type=float, default=100.0, help="audio per message (default: 100)")
    p.add_argument(
        "--encoding",
        default="s16le",
        help="the streams' wire format, as `parley loadtest --encoding` (default: s16le; webm: a browser's)",
    )
    p.add_argument("--search", choices=("greedy", "beam"), help="search method (default: the model's)")
    p.add_argument("--ramp", action="store_true", help="find the most streams within --target-p95-ms")
    p.add_argument("--target-p95-ms", type=float, default=500.0, help="ramp target for p95 chunk latency (ms)")
    p.add_argument("--max-streams", type=int, default=256, help="ramp upper bound (default: 256)")
    p.add_argument("--url", help="benchmark a server already running here (ws://.../v1/stream) instead")
    p.add_argument("--api-key", default=os.environ.get("PARLEY_API_KEY"), help="API key, with --url")
    p.add_argument("--json", type=Path, metavar="OUT", help="write every level's figures here")
    a = p.parse_args(argv)
    if a.files:
        clips = loadtest.load_clips(a.files, None)
    elif a.manifest:
        clips = manifest_clips(a.manifest, a.limit)
    else:
        clips = synthetic_clips(8, a.synthetic_seconds)
    print(
        f"{len(clips)} clip(s), {sum(c.duration for c in clips):.1f} s of audio; chunk {a.chunk_ms:g} ms, real time",
        flush=True,
    )

    server = None if a.url else ServerProcess(Path(a.bundles), server_args)
    url = a.url or server.url
    try:
        models = json.loads(
            urllib.request.urlopen(url.replace("ws", "http", 1).replace("/v1/stream", "/v1/models")).read()
        )
        print(f"server {url}: model {models['default']} ({models['models'][0]['chunk_ms']} ms chunks)", flush=True)
        opts = loadtest.Options(url, a.chunk_ms, 1.0, None, a.search, a.api_key, a.duration, encoding=a.encoding)
        levels: list[dict] = []
        best = None
        if a.ramp:
            if opts.duration is None:
                opts.duration = 20.0
            levels, best = asyncio.run(
                loadtest.ramp(lambda n: loadtest.run_level(clips, n, opts), a.target_p95_ms, a.max_streams, report)
            )
            print(f"most streams within p95 {a.target_p95_ms:g} ms: {best}", flush=True)
        else:
            for n in a.streams:
                level = asyncio.run(loadtest.run_level(clips, n, opts))
                report(level)
                levels.append(level)
    finally:
        if server is not None:
            server.stop()
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        out = {"url": url, "chunk_ms": a.chunk_ms, "target_p95_ms": a.target_p95_ms if a.ramp else None}
        out |= {"max_streams_within_target": best, "levels": levels}
        a.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
