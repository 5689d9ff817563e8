"""Synthesis speed per engine: seconds of audio made per second of wall time, on N processes.

    python benchmarks/bench_synth.py --text data/text --language en --n 60 --jobs 2 \
        --json benchmarks/results/synth-2cpu.json

Each engine speaks the same open-domain sentences (the text corpus's dev split) with its train voices, through
models.data.opencorpus's whole per-utterance path (synthesis, word timings, resampling, augmentation, WAV writing), so
the figures are what `parley corpus open` gets per engine. Process start-up is not counted.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data.augment import AugmentConfig
from models.data.engines import ENGINES, HELD_OUT_ENGINES, available, sample_engine_voice, voices_for
from models.data.opencorpus import SpeakJob, read_text_split, speak_job


def _warm(_: int) -> None:
    return None


def run(text: Path, language: str, n: int, jobs: int) -> dict:
    records = read_text_split(text, language, "dev")
    random.Random(0).shuffle(records)
    out: dict = {"language": language, "sentences": n, "processes": jobs, "engines": {}}
    for engine in ENGINES:
        split = "test" if engine in HELD_OUT_ENGINES else "train"
        if not available(engine) or (engine != "espeak" and not voices_for(engine, language, split)):
            continue
        rng = random.Random(0)
        with tempfile.TemporaryDirectory() as d:
            todo = [
                SpeakJob(d, language, "test" if split == "test" else "train", i, records[i],
                     sample_engine_voice(language, engine, rng, split), 0, AugmentConfig.open_domain())
                for i in range(n)
            ]  # fmt: skip
            with get_context("fork").Pool(jobs) as pool:
                pool.map(_warm, range(jobs))
                t0 = time.perf_counter()
                utts = pool.map(speak_job, todo, chunksize=2)
                wall = time.perf_counter() - t0
        audio = sum(u.duration for u in utts)
        out["engines"][engine] = {
            "audio_seconds": round(audio, 1),
            "wall_seconds": round(wall, 1),
            "audio_seconds_per_second": round(audio / wall, 1),
        }
        print(f"{engine:9s} {audio / wall:7.1f} s of audio per s ({audio:.0f} s in {wall:.1f} s)", flush=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", type=Path, default=Path("data/text"), help="the text corpus (parley text build)")
    p.add_argument("--language", default="en", help="language (default: en)")
    p.add_argument("--n", type=int, default=60, help="sentences per engine (default: 60)")
    p.add_argument("--jobs", type=int, default=2, help="processes (default: 2)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    a = p.parse_args()
    report = run(a.text, a.language, a.n, a.jobs)
    if a.json:
        a.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
