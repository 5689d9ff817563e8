"""How quickly a voice assistant gets its transcript over Wyoming (server/wyoming.py): `parley serve --wyoming-port`
in a child process, `--clients` Home-Assistant-style clients (the `wyoming` package's own client) each sending
utterances one request after another, 100 ms chunks paced in real time as a satellite's microphone sends them; the
figure is the wait from audio-stop to the transcript (what the person waits for after they stop speaking), and the
WER of the transcripts against the manifest's texts; beside it, the wait of a recognizer that starts once the command
has ended (each clip decoded whole by the same server, POST /v1/transcribe, one at a time).

    python benchmarks/bench_wyoming.py bundles/en-open --manifest $DATA/corpus-v2/en/test.jsonl --limit 48 \\
        --clients 1 8 --out benchmarks/results/wyoming-2cpu.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_server import ServerProcess, free_port, manifest_clips  # noqa: E402
from clients.loadtest import Clip  # noqa: E402
from parley.textnorm import normalize_text  # noqa: E402
from parley.wer import wer  # noqa: E402

CHUNK_S = 0.1


async def _request(port: int, clip: Clip) -> tuple[str, float]:
    """One transcription, paced in real time: its transcript and the seconds from audio-stop to it."""
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    pcm = (clip.samples * 32767).clip(-32768, 32767).astype("<i2").tobytes()
    step = int(clip.rate * CHUNK_S) * 2
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=clip.rate, width=2, channels=1).event())
        began = time.monotonic()
        for n, i in enumerate(range(0, len(pcm), step)):
            await asyncio.sleep(max(0.0, began + n * CHUNK_S - time.monotonic()))
            await client.write_event(AudioChunk(rate=clip.rate, width=2, channels=1, audio=pcm[i : i + step]).event())
        await asyncio.sleep(max(0.0, began + len(pcm) / 2 / clip.rate - time.monotonic()))
        await client.write_event(AudioStop().event())
        stopped = time.monotonic()
        while True:
            event = await client.read_event()
            if event is None:
                raise RuntimeError("the server closed before the transcript")
            if event.type == "error":
                raise RuntimeError(f"error: {event.data}")
            if Transcript.is_type(event.type):
                return Transcript.from_event(event).text, time.monotonic() - stopped


async def _level(port: int, clips: Sequence[Clip], clients: int) -> dict:
    """`clients` clients sharing `clips` between them, one request after another."""
    queue: asyncio.Queue[Clip] = asyncio.Queue()
    for c in clips:
        queue.put_nowait(c)
    results: list[tuple[Clip, str, float]] = []

    async def client() -> None:
        while not queue.empty():
            clip = queue.get_nowait()
            text, wait = await _request(port, clip)
            results.append((clip, text, wait))

    await asyncio.gather(*(client() for _ in range(clients)))
    waits = np.array([w for _, _, w in results]) * 1000
    refs = [normalize_text(c.ref or "", "en") for c, _, _ in results]
    hyps = [normalize_text(t, "en") for _, t, _ in results]  # the display text: numbers in digits count as errors
    return {
        "clients": clients,
        "requests": len(results),
        "stop_to_transcript_ms": {
            "p50": round(float(np.percentile(waits, 50)), 1),
            "p95": round(float(np.percentile(waits, 95)), 1),
            "max": round(float(waits.max()), 1),
        },
        "wer": round(100 * wer(refs, hyps), 2) if all(refs) else None,
    }


def offline_waits(http: str, clips: Sequence[Clip]) -> dict:
    """The comparison: what a recognizer that starts once the command has ended makes the person wait (each clip
    decoded whole by the same server, POST /v1/transcribe, one at a time)."""
    import urllib.request

    waits = []
    for clip in clips:
        body = Path(clip.path).read_bytes()  # the manifest's WAV file
        request = urllib.request.Request(f"{http}/v1/transcribe", data=body, headers={"Content-Type": "audio/wav"})
        began = time.monotonic()
        with urllib.request.urlopen(request, timeout=120) as r:
            r.read()
        waits.append((time.monotonic() - began) * 1000)
    w = np.array(waits)
    return {k: round(float(np.percentile(w, q)), 1) for k, q in (("p50", 50), ("p95", 95))} | {"max": round(max(w), 1)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundles", type=Path, help="a bundle folder, or a folder of bundles")
    p.add_argument("--manifest", type=Path, required=True, help="a Parley manifest: its utterances and texts")
    p.add_argument("--limit", type=int, default=48, help="utterances taken from --manifest (default: 48)")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8], help="concurrent clients, a level each")
    p.add_argument("--out", type=Path, help="write the figures here as JSON")
    a = p.parse_args(argv)
    clips = manifest_clips(a.manifest, a.limit)
    port = free_port()
    server = ServerProcess(a.bundles, ["--wyoming-port", str(port)])
    try:
        levels = []
        for n in a.clients:
            level = asyncio.run(_level(port, clips, n))
            print(json.dumps(level), flush=True)
            levels.append(level)
        offline = offline_waits(f"http://127.0.0.1:{server.port}", clips)
        print(json.dumps({"decoded_after_the_end_ms": offline}), flush=True)
    finally:
        server.stop()
    if a.out:
        out = {
            "bundles": str(a.bundles),
            "manifest": str(a.manifest),
            "utterances": len(clips),
            "audio_s": round(sum(c.duration for c in clips), 1),
            "chunk_s": CHUNK_S,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "levels": levels,
            "decoded_after_the_end_ms": offline,
        }
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
