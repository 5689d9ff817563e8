"""How soon OpenAI's Realtime transcription on Parley (`WS /v1/realtime`, server/realtime.py) spells a word: each
utterance streamed at real time as 24 kHz PCM in 100 ms appends, and for every word the time from the moment its
audio ended (its time in POST /v1/transcribe's words for the same audio, on the clock of the audio sent) to the
delta that spelled it; also the time from the last word's end to the turn's completed (endpointing's silence
included: 500 ms by default).

    python benchmarks/bench_realtime.py --manifest data/corpus-v2/en/test.jsonl --limit 20 \\
        --out benchmarks/results/realtime-en-open-2cpu.json

`--search greedy` and `--settle-ms MS` start the server with those settings (the default: its own). `--prompt TEXT`
sets the session's transcription prompt, whose names become hotwords (server/prompt.py): what a prompted session's
deltas cost (its partials promise no stable prefix, so Realtime spells the words the beam has settled); the POST
that gives the words' times then asks for the same hotwords and the general LM.

The server runs as a child process (bench_server.py's `parley serve` on --bundles, default model en-open), one
session at a time, nothing else streaming: a figure of the protocol's latency, not of the server under load
(benchmarks/bench_server.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_server import ServerProcess, manifest_clips
from parley.audio import encode_pcm
from parley.resample import resample

RATE = 24000
STEP = 2400  # 100 ms a message


async def _session(
    url: str, pcm: bytes, prompt: str | None = None
) -> tuple[list[tuple[float, str]], tuple[float, str]]:
    """One utterance streamed at real time: each delta (seconds after the first append, text), and the completed's
    (seconds, transcript)."""
    from websockets.asyncio.client import connect

    arrivals: list[tuple[float, str]] = []
    async with connect(url) as ws:
        await ws.recv()  # session.created
        if prompt is not None:
            session = {"audio": {"input": {"transcription": {"prompt": prompt}}}}
            await ws.send(json.dumps({"type": "session.update", "session": session}))
            await ws.recv()  # session.updated
        t0 = time.monotonic()

        async def send() -> None:
            for i in range(0, len(pcm) // 2, STEP):
                delay = t0 + i / RATE - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                audio = base64.b64encode(pcm[2 * i : 2 * (i + STEP)]).decode()
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))

        sender = asyncio.create_task(send())
        try:
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 60))
                now = time.monotonic() - t0
                if event["type"].endswith(".delta"):
                    arrivals.append((now, event["delta"]))
                elif event["type"].endswith(".completed"):
                    return arrivals, (now, event["transcript"])
        finally:
            sender.cancel()


def _lags(arrivals: list[tuple[float, str]], words: list[dict]) -> list[float] | None:
    """Each word's delta arrival minus the end of its audio (the same words' times from POST /v1/transcribe of the
    same audio); None when the deltas spelled other words."""
    text, ends = "", []
    for now, delta in arrivals:
        text += delta
        ends += [now] * (len(text.split()) - len(ends))
    if text.split() != [w["word"] for w in words]:
        return None
    return [arrived - w["end"] for arrived, w in zip(ends, words, strict=True)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--bundles", type=Path, default=Path(__file__).resolve().parents[1] / "bundles")
    p.add_argument("--out", type=Path)
    p.add_argument(
        "--search",
        choices=("auto", "greedy", "beam"),
        default="auto",
        help="the server's --search (default auto: en-open's beam search with its general LM)",
    )
    p.add_argument("--settle-ms", type=float, help="the server's --settle-ms (default: its default)")
    p.add_argument("--prompt", help="the session's transcription prompt (its names become hotwords)")
    a = p.parse_args(argv)
    query = ""
    if a.prompt:
        from server.prompt import prompt_terms

        query = f"&lm=general&hotwords={','.join(prompt_terms(a.prompt))}"
    clips = manifest_clips(a.manifest, a.limit)
    extra = [] if a.settle_ms is None else ["--settle-ms", f"{a.settle_ms:g}"]
    server = ServerProcess(a.bundles, ["--default-model", "en-open", "--search", a.search, *extra])
    url = f"ws://127.0.0.1:{server.port}/v1/realtime"
    lags: list[float] = []
    finals: list[float] = []
    skipped = 0
    try:
        for clip in clips:
            x = resample(clip.samples, clip.rate, RATE)
            pcm = encode_pcm(np.concatenate([x, np.zeros(RATE, np.float32)]), "s16le")
            arrivals, (done, _) = asyncio.run(_session(url, pcm, a.prompt))
            body = httpx.post(
                f"http://127.0.0.1:{server.port}/v1/transcribe?sample_rate={RATE}&encoding=s16le{query}",
                content=pcm,
                headers={"content-type": "application/octet-stream"},
                timeout=60,
            ).json()
            words = [w for seg in body["segments"] for w in seg["words"]]
            word_lags = _lags(arrivals, words)
            if word_lags is None or not words:
                skipped += 1
                continue
            lags += word_lags
            finals.append(done - words[-1]["end"])
    finally:
        server.stop()

    def pct(v: list[float], q: float) -> float:
        return round(float(np.percentile(v, q)), 3) if v else float("nan")

    row = {
        "search": a.search,
        "settle_ms": a.settle_ms,
        "prompt": a.prompt,
        "utterances": len(clips),
        "skipped": skipped,  # the deltas spelled other words than the same audio's transcript (none expected)
        "words": len(lags),
        "word_delta_lag_s": {"p50": pct(lags, 50), "p90": pct(lags, 90), "mean": round(statistics.fmean(lags), 3)},
        "completed_after_last_word_s": {"p50": pct(finals, 50), "p90": pct(finals, 90)},
    }
    print(json.dumps(row))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(row, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
