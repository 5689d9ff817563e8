"""A small, portable slice of a corpus for benchmarks/gpu_check.sh: utterances re-encoded as Ogg/Opus.

    python benchmarks/gpu_data.py --train $DATA/corpus-v2/en/train.jsonl --dev $DATA/corpus-v2/en/dev.jsonl \
        --out .gpu/data                     # 240 + 48 utterances, 3.4 MB: what the H200 check of 2026-12-04 used

The workplace's GPU machine receives at most 64 MiB of the working tree, 53 MiB of which are the committed bundles, so
a check there trains on a few hundred utterances (the check repeats them into one long epoch): enough to time steps and
data loading with real audio and real transcripts, not to train a model. A random draw (`--seed`) of utterances
shorter than `--max-duration`, written as `audio/<id>.ogg` (libsndfile's Opus at `--level`: 0.9 is about 33 kbit/s)
next to train.jsonl and dev.jsonl, which keep every field but the word timings and translations.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data.manifest import read_manifest


def write_slice(
    manifest: Path, n: int, out: Path, name: str, rng: random.Random, max_duration: float, level: float
) -> float:
    """Writes `n` random utterances of `manifest` to out/audio and out/<name>.jsonl; returns their seconds."""
    utts = read_manifest(manifest)
    rng.shuffle(utts)
    utts = [u for u in utts if u.duration < max_duration]
    if len(utts) < n:
        raise SystemExit(f"{manifest}: {len(utts)} utterances shorter than {max_duration} s, asked for {n}")
    raw = {}
    with open(manifest, encoding="utf-8") as f:  # the original records, to keep their other fields
        for line in f:
            r = json.loads(line)
            raw[r["id"]] = r
    (out / "audio").mkdir(parents=True, exist_ok=True)
    seconds = 0.0
    with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
        for u in utts[:n]:
            x, sr = sf.read(u.audio, dtype="float32")
            rel = f"audio/{u.id}.ogg"
            with sf.SoundFile(
                out / rel, "w", samplerate=sr, channels=1, format="OGG", subtype="OPUS", compression_level=level
            ) as o:
                o.write(x)
            rec = {k: v for k, v in raw[u.id].items() if k not in ("words", "translations")}
            f.write(json.dumps({**rec, "audio": rel}, ensure_ascii=False) + "\n")
            seconds += u.duration
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=Path, required=True, help="training manifest to draw from")
    p.add_argument("--dev", type=Path, required=True, help="dev manifest to draw from")
    p.add_argument("--out", type=Path, required=True, help="folder for train.jsonl, dev.jsonl and audio/")
    p.add_argument("--train-utts", type=int, default=240, help="training utterances (default: 240)")
    p.add_argument("--dev-utts", type=int, default=48, help="dev utterances (default: 48)")
    p.add_argument("--max-duration", type=float, default=8.0, help="skip longer utterances (seconds, default: 8)")
    p.add_argument("--level", type=float, default=0.9, help="Opus compression level 0..1 (default: 0.9)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    a = p.parse_args(argv)
    rng = random.Random(a.seed)  # one draw for both, train first
    tr = write_slice(a.train, a.train_utts, a.out, "train", rng, a.max_duration, a.level)
    dv = write_slice(a.dev, a.dev_utts, a.out, "dev", rng, a.max_duration, a.level)
    size = sum(f.stat().st_size for f in a.out.rglob("*") if f.is_file())
    print(f"{a.out}: {tr / 60:.1f} min train, {dv / 60:.1f} min dev, {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
