"""Decoding throughput of one bundle: Parley's batched onnxruntime runtime vs sherpa-onnx's own batched recognizer.

    python benchmarks/bench_throughput.py --bundle bundles/en-small --manifest data/corpus-en/en/test.jsonl \
        --streams 1 8 32 100 --threads 2

Both decode the same utterances as N concurrent streams, chunk by chunk, as fast as they can (no real-time pacing):
Parley with `server/transducer.transcribe_many` (one encoder call for all ready streams per step, batched greedy
search: what the server's engine runs; by default as the server runs it, the streams in `--threads` groups decoded
side by side, one onnxruntime thread each, its `--parallel-steps`; `--parley-steps 1` gives one group whose runs use
all the threads, the server's old way), sherpa-onnx with `OnlineRecognizer.decode_streams` over all ready streams.
Both get the same thread count and the same precision. Printed per N: audio seconds decoded per wall second
(x real time), the Parley / sherpa-onnx ratio, and whether the transcripts agree (sherpa-onnx emits at most one token
per frame; Parley is run the same way here so the comparison is like for like). Each N decodes rounds of N
consecutive utterances until at least `--min-audio` seconds (default 120): one 7 s utterance at N = 1 is over in a
tenth of a second, which timer noise and a cold cache decide. Both runtimes are warmed up first.
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


def load_rounds(manifest: Path, n: int, min_audio_s: float) -> list[list[np.ndarray]]:
    """Rounds of `n` consecutive utterances of a manifest (cycled), 16 kHz float32, until they hold at least
    `min_audio_s` seconds of audio (at least one round)."""
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    rounds: list[list[np.ndarray]] = []
    total, i = 0.0, 0
    while not rounds or total < min_audio_s:
        group = []
        for _ in range(n):
            r = rows[i % len(rows)]
            i += 1
            audio = Path(r["audio"]) if Path(r["audio"]).is_absolute() else manifest.parent / r["audio"]
            x, rate = read_wav(audio)
            group.append(x if rate == SR else resample(x, rate, SR))
        rounds.append(group)
        total += sum(len(w) for w in group) / SR
    return rounds


def parley_run(
    model: StreamingTransducer, rounds: Sequence[Sequence[np.ndarray]], steps: int = 1
) -> tuple[float, list[str]]:
    """Seconds to decode every round (each as len(round) concurrent streams, in `steps` groups side by side) and the
    transcripts."""
    elapsed, texts = 0.0, []
    for waves in rounds:
        t0 = time.perf_counter()
        out = transcribe_many(model, waves, SR, tail_padding_ms=0, max_symbols_per_frame=1, parallel=steps)
        elapsed += time.perf_counter() - t0
        texts += [t.text for t in out]
    return elapsed, texts


def sherpa_run(rec, rounds: Sequence[Sequence[np.ndarray]]) -> tuple[float, list[str]]:
    """The same for sherpa-onnx's recognizer `rec`: all ready streams of a round through `decode_streams`."""
    elapsed, texts = 0.0, []
    for waves in rounds:
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
        elapsed += time.perf_counter() - t0
        texts += [rec.get_result(s).strip() for s in streams]
    return elapsed, texts


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", type=Path, default=Path("bundles/en-small"))
    p.add_argument("--manifest", type=Path, required=True, help="utterances to decode (JSONL manifest)")
    p.add_argument("--streams", type=int, nargs="+", default=[1, 8, 32, 100])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--parley-steps",
        type=int,
        help="Parley's groups decoded side by side (default --threads, one onnxruntime thread each; 1: one group "
        "whose runs use --threads threads)",
    )
    p.add_argument("--precision", default=None, help="fp32 or int8 (default: the bundle's first)")
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--min-audio", type=float, default=120.0, help="seconds of audio decoded per N, at least")
    a = p.parse_args(argv)
    meta = json.loads((a.bundle / "bundle.json").read_text())
    precision = a.precision or meta["precisions"][0]
    steps = a.parley_steps or a.threads
    model = StreamingTransducer(load_bundle(a.bundle, precision, providers="cpu", threads=max(1, a.threads // steps)))
    rec = sherpa_recognizer(a.bundle, precision, a.threads)
    silence = settling_silence(meta["streaming"], SR)  # both runtimes decode the same audio
    warm = [[np.concatenate([w, silence]) for w in load_rounds(a.manifest, 1, 0)[0]]]
    parley_run(model, warm, steps)
    sherpa_run(rec, warm)
    rows = []
    for n in a.streams:
        rounds = load_rounds(a.manifest, n, a.min_audio)
        audio_s = sum(len(w) for r in rounds for w in r) / SR
        rounds = [[np.concatenate([w, silence]) for w in r] for r in rounds]
        t_parley, ours = parley_run(model, rounds, steps)
        t_sherpa, theirs = sherpa_run(rec, rounds)
        same = sum(x == y for x, y in zip(ours, theirs, strict=True))
        row = {
            "streams": n,
            "rounds": len(rounds),
            "audio_seconds": audio_s,
            "parley_x_realtime": audio_s / t_parley,
            "sherpa_onnx_x_realtime": audio_s / t_sherpa,
            "ratio": t_sherpa / t_parley,
            "identical_transcripts": same,
            "transcripts": len(ours),
        }
        rows.append(row)
        print(
            f"{n:>4} streams, {len(rounds):>3} rounds, {audio_s:7.1f} s audio: Parley {row['parley_x_realtime']:7.1f}x "
            f"real time, sherpa-onnx {row['sherpa_onnx_x_realtime']:7.1f}x, ratio {row['ratio']:.2f}, "
            f"identical transcripts {same}/{len(ours)}",
            flush=True,
        )
    if a.json:
        out = {
            "bundle": str(a.bundle),
            "precision": precision,
            "threads": a.threads,
            "parley_steps": steps,
            "rows": rows,
        }
        a.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
