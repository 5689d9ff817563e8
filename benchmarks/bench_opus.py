"""What decoding streamed Opus costs the server (parley/opusstream.py, a start's "encoding": "webm" / "ogg"): CPU
milliseconds per second of audio, by the size of the client's chunks, against decoding the whole recording at once.

    python benchmarks/bench_opus.py --seconds 60 --chunks-ms 20 100 250 1000 --rates 48000 16000 \
        --out benchmarks/results/opus-2cpu.json

Both decoders: "libopus" (one decoder per stream, through ctypes) and "libsndfile" (each chunk after 400 ms of
pre-roll, where the system has no libopus); "file" is libsndfile decoding the whole recording at once. Each decoder
writes each of `--rates`: 48 kHz (Opus's own) is what the server decodes to, and its frontend then resamples the
stream to 16 kHz (parley/resample.py); 16 kHz is what libopus can write itself (not used: server/protocol.py
CONTAINER_RATE). `to_16k_ms_per_audio_second` counts the resampling too: the whole cost of bringing a stream to what
the fbank takes.

The audio is an Ogg Opus encoding (libsndfile's defaults) of band-limited noise with a syllable-rate envelope, remuxed
into WebM as MediaRecorder lays it out; a chunk is the bytes of `chunk_ms` of packets, as a recorder with that
timeslice sends them. One core (the process's own CPU time).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parley.ogg import OggPacketReader, opus_samples
from parley.opusstream import BACKENDS, OpusStreamDecoder
from parley.resample import Resampler
from parley.webm import write_webm

RATE = 48000
MODEL_RATE = 16000


def _audio(seconds: float) -> bytes:
    rng = np.random.default_rng(0)
    n = int(seconds * RATE)
    noise = np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same")
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(n) / RATE)
    buf = io.BytesIO()
    soundfile.write(buf, (0.2 * noise * envelope).astype(np.float32), RATE, format="OGG", subtype="OPUS")
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--chunks-ms", type=int, nargs="+", default=[20, 100, 250, 1000])
    p.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    p.add_argument("--rates", type=int, nargs="+", default=[RATE, MODEL_RATE], help="decoders' output rates")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    ogg = _audio(a.seconds)
    head, _, *packets = OggPacketReader().feed(ogg)
    webm, ends = write_webm(head, packets)
    rows = []
    t = time.process_time()
    whole, _ = soundfile.read(io.BytesIO(ogg), dtype="float32")
    once = time.process_time() - t
    rows.append({"backend": "file", "chunk_ms": None, "ms_per_audio_second": round(1000 * once / a.seconds, 3)})
    for backend, rate, chunk_ms in itertools.product(a.backends, a.rates, a.chunks_ms):
        per_chunk = max(1, round(chunk_ms * RATE / 1000 / opus_samples(packets[0])))
        cuts = [0] + [ends[i] for i in range(per_chunk - 1, len(ends), per_chunk)] + [len(webm)]
        decoder = OpusStreamDecoder("webm", backend, rate)
        pieces, spent = [], 0.0
        for i, j in itertools.pairwise(cuts):
            t = time.process_time()
            pieces.append(decoder.feed(webm[i:j]))
            spent += time.process_time() - t
        resampler = Resampler(rate, MODEL_RATE)  # the frontend's, where the stream is not at the models' rate
        t = time.process_time()
        for x in pieces:
            resampler.process(x)
        resampling = time.process_time() - t
        rows.append(
            {
                "backend": backend,
                "rate": rate,
                "chunk_ms": chunk_ms,
                "messages": len(cuts) - 1,
                "ms_per_audio_second": round(1000 * spent / a.seconds, 3),
                "ms_per_message": round(1000 * spent / (len(cuts) - 1), 3),
                "to_16k_ms_per_audio_second": round(1000 * (spent + resampling) / a.seconds, 3),
                "samples": sum(x.size for x in pieces),
            }
        )
    print(f"{'backend':>10} {'rate':>6} {'chunk':>8} {'ms CPU / s audio':>17} {'ms / message':>13} {'to 16 kHz':>10}")
    for r in rows:
        chunk = "whole" if r["chunk_ms"] is None else f"{r['chunk_ms']} ms"
        ms = r.get("ms_per_message", float("nan"))
        print(
            f"{r.get('backend', 'file'):>10} {r.get('rate', RATE):>6} {chunk:>8} {r['ms_per_audio_second']:>17.3f} "
            f"{ms:>13.3f} {r.get('to_16k_ms_per_audio_second', float('nan')):>10.3f}"
        )
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"seconds": a.seconds, "whole_samples": int(whole.size), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
