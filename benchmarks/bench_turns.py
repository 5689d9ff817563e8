"""Hotwords per turn: recall when a stream is told the few names a turn may hold, through the server's own pipeline.

    python benchmarks/bench_turns.py --bundle bundles/en-open --plain-manifest $DATA/corpus-v2/en/test.jsonl \
        --turn-names 1 3 --out benchmarks/results/hotwords/en-open-turns.json

benchmarks/bench_hotwords.py gives every utterance all 24 names of its split as hotwords (a stream that knows its
users' names but not who is speaking). A voice bot often knows more: it has just asked for the caller's name and
holds the account's, or the two or three names on a list (the `context` message of docs/protocol.md). Here each of
bench_hotwords' name sentences (the same 48 names, four frames, four espeak-ng voices) is decoded with the engine the
server runs (`Engine.recognize`: modified beam search, the default boost and acoustic floor, respelling and the
finals' acoustic check) and, as hotwords, its own name and `K - 1` other names of its split (each turn the next
ones); every sentence without a name (bench_hotwords' six grammar sentences and `--plain-utts` open-domain test
utterances) gets `K` names of the split as hotwords, in turn, and a false alarm is one of them in its words. Printed
per split and K: recall of the names (against no hotwords), false alarms, the plain sentences' WER.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_hotwords import DEV_NAMES, FRAMES, PLAIN, TEST_NAMES, VOICES
from models.data.espeak import synthesize
from models.data.manifest import load_audio, read_manifest
from parley.features import SAMPLE_RATE
from parley.resample import resample
from parley.wer import wer
from server.biasing import HOTWORD_BOOST
from server.bundle import load_bundle
from server.engine import Engine, EngineConfig
from server.plan import Adaptation


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", default="bundles/en-open", help="the bundle folder to decode with")
    p.add_argument("--turn-names", type=int, nargs="+", default=[1, 3], help="names per turn (K), each tried")
    p.add_argument(
        "--boosts", type=float, nargs="+", default=[HOTWORD_BOOST], help="the server's --hotword-boost, each tried"
    )
    p.add_argument("--plain-manifest", help="open-domain utterances without the names, for false alarms and WER")
    p.add_argument("--plain-utts", type=int, default=100, help="how many of --plain-manifest (default 100)")
    p.add_argument("--splits", nargs="+", choices=("dev", "test"), default=["dev", "test"], help="name splits run")
    p.add_argument("--out", help="write the figures as JSON here")
    a = p.parse_args(argv)

    def speak(text: str, variant: str) -> np.ndarray:
        s = synthesize(text, voice="en-us", variant=variant, rate=160)
        return resample(s.samples, s.sample_rate, SAMPLE_RATE)

    plain = [(t, speak(t, VOICES[i % 4])) for i, t in enumerate(PLAIN)]
    if a.plain_manifest:
        for u in read_manifest(a.plain_manifest)[: a.plain_utts]:
            if not set(u.text.split()) & set(TEST_NAMES + DEV_NAMES):
                plain.append((u.text, load_audio(u.audio)))
    bundle = load_bundle(Path(a.bundle), threads=1)
    engine = Engine(bundle, EngineConfig(max_wait_ms=0))

    async def decode(x: np.ndarray, names: Sequence[str]) -> str:
        adaptation = Adaptation(tuple((n, None) for n in names)) if names else None
        finals = await engine.recognize(x, SAMPLE_RATE, "beam", adaptation=adaptation)
        return " ".join(f.text for f in finals if f.text)

    async def run(boost: float) -> list[dict]:
        nonlocal engine
        engine = Engine(bundle, EngineConfig(max_wait_ms=0, hotword_boost=boost))
        await engine.start()
        rows = []
        try:
            for split, names in (("dev", DEV_NAMES), ("test", TEST_NAMES)):
                if split not in a.splits:
                    continue
                named = [
                    (f.format(n), i, VOICES[(i + j) % 4]) for i, n in enumerate(names) for j, f in enumerate(FRAMES)
                ]
                audio = [speak(t, v) for t, _, v in named]
                for k in [0, *a.turn_names] if boost == a.boosts[0] else a.turn_names:
                    hits, missed = 0, []
                    for (_, i, _), x in zip(named, audio, strict=True):
                        turn = [names[(i + d) % len(names)] for d in range(k)]  # its own name first
                        hyp = await decode(x, turn)
                        if names[i] in hyp.split():
                            hits += 1
                        else:
                            missed.append(hyp)
                    hyps, alarms = [], []
                    for m, (ref, x) in enumerate(plain):
                        turn = [names[(m * max(k, 1) + d) % len(names)] for d in range(k)]
                        hyp = await decode(x, turn)
                        hyps.append(hyp)
                        if set(hyp.split()) & set(turn):
                            alarms.append({"ref": ref, "hyp": hyp, "hotwords": turn})
                    row = {
                        "split": split,
                        "boost": boost,
                        "turn_names": k,
                        "hits": hits,
                        "named": len(named),
                        "recall": hits / len(named),
                        "false_alarms": len(alarms),
                        "plain": len(plain),
                        "plain_wer": wer([r for r, _ in plain], hyps),
                        "missed": missed,
                        "alarms": alarms,
                    }
                    rows.append(row)
                    print(
                        f"{split} boost {boost:g} K={k}: recall {hits}/{len(named)} ({100 * row['recall']:.0f} %), "
                        f"false alarms {len(alarms)}/{len(plain)}, plain WER {100 * row['plain_wer']:.2f} %",
                        flush=True,
                    )
        finally:
            await engine.close()
        return rows

    rows = [row for boost in a.boosts for row in asyncio.run(run(boost))]
    if a.out:
        Path(a.out).write_text(json.dumps({"bundle": a.bundle, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
