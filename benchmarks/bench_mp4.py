"""What decoding streamed MP4 costs the server (parley/mp4stream.py, a start's "encoding": "mp4"): CPU milliseconds
per second of audio for Safari's AAC at 44.1 kHz (libfaad2, then resampled) and Chrome's Opus, by the size of the
client's chunks, against reading the whole file (parley/formats.py).

    python benchmarks/bench_mp4.py --seconds 60 --chunks-ms 100 250 1000 --out benchmarks/results/mp4-2cpu.json

`--decode-rate`: the rate the stream decoder writes (the server's: 48 kHz, server/protocol.py CONTAINER_RATE).

The audio is band-limited noise with a syllable-rate envelope, encoded by FFmpeg (PyAV, a dev dependency) into
fragmented MP4 as MediaRecorder writes it (a fragment per chunk); a chunk is one fragment's bytes. One core (the
process's own CPU time).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parley.formats import read_audio_channels
from parley.mp4stream import Mp4StreamDecoder

CODECS = {"aac": 44100, "libopus": 48000}


def _audio(seconds: float, rate: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    n = int(seconds * rate)
    noise = np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same")
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(n) / rate)
    return (0.2 * noise * envelope).astype(np.float32)


def _fragmented(x: np.ndarray, rate: int, codec: str, chunk_ms: int) -> tuple[bytes, list[int]]:
    """`x` as fragmented MP4 of `chunk_ms` fragments, and where each fragment (moof) starts."""
    import av

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a.mp4"
        options = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": str(chunk_ms * 1000)}
        with av.open(str(path), "w", format="mp4", options=options) as out:
            stream = out.add_stream(codec, rate=rate, layout="mono")
            for i in range(0, len(x), 960):
                frame = av.AudioFrame.from_ndarray(x[None, i : i + 960], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = rate, i
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        data = path.read_bytes()
    starts, pos = [0], 0
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        if data[pos + 4 : pos + 8] == b"moof":
            starts.append(pos)
        pos += size
    return data, sorted(set(starts))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--chunks-ms", type=int, nargs="+", default=[100, 250, 1000])
    p.add_argument("--decode-rate", type=int, default=48000, help="the stream decoder's output rate (default: 48000)")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    rows = []
    for codec, rate in CODECS.items():
        x = _audio(a.seconds, rate)
        for chunk_ms in a.chunks_ms:
            data, starts = _fragmented(x, rate, codec, chunk_ms)
            chunks = [data[s:e] for s, e in zip(starts, [*starts[1:], len(data)], strict=True)]
            decoder = Mp4StreamDecoder(rate=a.decode_rate)
            t = time.process_time()
            n = sum(decoder.feed(c).size for c in chunks)
            ms = (time.process_time() - t) * 1000 / a.seconds
            rows.append(
                {
                    "codec": codec,
                    "rate": rate,
                    "chunk_ms": chunk_ms,
                    "chunks": len(chunks),
                    "decode_rate": a.decode_rate,
                    "samples": n,
                    "cpu_ms_per_audio_s": round(ms, 2),
                }
            )
            print(f"{codec:8s} {rate} Hz, {chunk_ms:5d} ms chunks ({len(chunks)}): {ms:6.2f} ms CPU per s of audio")
        t = time.process_time()
        read_audio_channels(io.BytesIO(data))
        ms = (time.process_time() - t) * 1000 / a.seconds
        rows.append({"codec": codec, "rate": rate, "chunk_ms": None, "cpu_ms_per_audio_s": round(ms, 2)})
        print(f"{codec:8s} {rate} Hz, the whole file: {ms:6.2f} ms CPU per s of audio")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"seconds": a.seconds, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
