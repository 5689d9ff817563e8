"""Decoding throughput of one bundle: Parley's batched onnxruntime runtime vs sherpa-onnx's own batched recognizer.

    python benchmarks/bench_throughput.py --bundle bundles/en-small --manifest data/corpus-en/en/test.jsonl \
        --streams 1 8 32 100 --threads 2

Both decode the same utterances as N concurrent streams, chunk by chunk, as fast as they can (no real-time pacing):
Parley with `server/transducer.transcribe_many` (one encoder call for all ready streams per step, batched greedy
search: what the server's engine runs), sherpa-onnx with `OnlineRecognizer.decode_streams` over all ready streams.
Both get the same thread count and the same precision. Printed per N: audio seconds decoded per wall second
(x real time), the Parley / sherpa-onnx ratio, and whether the transcripts agree (sherpa-onnx emits at most one token
per frame; Parley is run the same way here so the comparison is like for like).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from export.sherpa import settling_silence, sherpa_recognizer
from parley.audio import read_wav
from parley.resample import resample
from server.bundle import load_bundle
from server.transducer import StreamingTransducer, transcribe_many

SR = 16000


def load_waves(manifest: Path, n: int) -> tuple[list[np.ndarray], list[str]]:
    """The first `n` utterances of a manifest (cycled if it has fewer): 16 kHz float32 and their texts."""
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    waves, texts = [], []
    for i in range(n):
        r = rows[i % len(rows)]
        audio = Path(r["audio"]) if Path(r["audio"]).is_absolute() else manifest.parent / r["audio"]
        x, rate = read_wav(audio)
        waves.append(x if rate == SR else resample(x, rate, SR))
        texts.append(r["text"])
    return waves, texts


def parley_run(bundle: Path, precision: str, waves: Sequence[np.ndarray], threads: int) -> tuple[float, list[str]]:
    model = StreamingTransducer(load_bundle(bundle, precision, providers="cpu", threads=threads))
    transcribe_many(model, waves[:1], SR)  # warm-up
    t0 = time.perf_counter()
    out = transcribe_many(model, waves, SR, tail_padding_ms=0, max_symbols_per_frame=1)
    return time.perf_counter() - t0, [t.text for t in out]


def sherpa_run(bundle: Path, precision: str, waves: Sequence[np.ndarray], threads: int) -> tuple[float, list[str]]:
    rec = sherpa_recognizer(bundle, precision, threads)
    t0 = time.perf_counter()
    streams = []
    for w in waves:
        s = rec.create_stream()
        s.accept_waveform(SR, w)
        s.input_finished()
        streams.append(s)
    while True:
        ready = [s for s in streams if rec.is_ready(s)]
        if not ready:
            break
        rec.decode_streams(ready)
    texts = [rec.get_result(s).strip() for s in streams]
    return time.perf_counter() - t0, texts


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", type=Path, default=Path("bundles/en-small"))
    p.add_argument("--manifest", type=Path, required=True, help="utterances to decode (JSONL manifest)")
    p.add_argument("--streams", type=int, nargs="+", default=[1, 8, 32, 100])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", default=None, help="fp32 or int8 (default: the bundle's first)")
    p.add_argument("--json", type=Path, help="write the figures here")
    a = p.parse_args(argv)
    meta = json.loads((a.bundle / "bundle.json").read_text())
    precision = a.precision or meta["precisions"][0]
    rows = []
    for n in a.streams:
        waves, _ = load_waves(a.manifest, n)
        audio_s = sum(len(w) for w in waves) / SR
        silence = settling_silence(meta["streaming"], SR)  # both runtimes decode the same audio
        waves = [np.concatenate([w, silence]) for w in waves]
        t_parley, ours = parley_run(a.bundle, precision, waves, a.threads)
        t_sherpa, theirs = sherpa_run(a.bundle, precision, waves, a.threads)
        same = sum(x == y for x, y in zip(ours, theirs, strict=True))
        row = {
            "streams": n,
            "audio_seconds": audio_s,
            "parley_x_realtime": audio_s / t_parley,
            "sherpa_onnx_x_realtime": audio_s / t_sherpa,
            "ratio": t_sherpa / t_parley,
            "identical_transcripts": same,
        }
        rows.append(row)
        print(
            f"{n:>4} streams, {audio_s:7.1f} s audio: Parley {row['parley_x_realtime']:7.1f}x real time, "
            f"sherpa-onnx {row['sherpa_onnx_x_realtime']:7.1f}x, ratio {row['ratio']:.2f}, "
            f"identical transcripts {same}/{n}",
            flush=True,
        )
    if a.json:
        a.json.write_text(json.dumps({"bundle": str(a.bundle), "precision": precision, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
