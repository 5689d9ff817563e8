"""Running synthesis jobs: in order, in worker processes, until a number of hours; resumable through a one-line
JSON sidecar per finished utterance (removed once the split's manifest is written). Shared by the grammar corpus
(models/data/corpus.py) and the open-domain corpus (models/data/opencorpus.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from models.data.manifest import Utterance


def from_sidecar(path: Path) -> Utterance:
    return Utterance.from_dict(json.loads(path.read_text()))


def run_split(
    jobs: Sequence, jobs_n: int, target_seconds: float | None, desc: str, work: Callable[..., Utterance]
) -> list[Utterance]:
    """Runs `work` on jobs in order, in `jobs_n` processes, until `target_seconds` of audio (or all jobs)."""
    utts: list[Utterance] = []
    total = 0.0
    ctx = get_context("fork")
    with (
        ctx.Pool(jobs_n) as pool,
        tqdm(
            total=len(jobs) if target_seconds is None else round(target_seconds),
            desc=desc,
            unit="utt" if target_seconds is None else "s audio",
            dynamic_ncols=True,
        ) as bar,
    ):
        for utt in pool.imap(work, jobs, chunksize=4):
            utts.append(utt)
            total += utt.duration
            bar.update(1 if target_seconds is None else min(int(total), bar.total) - bar.n)
            bar.set_postfix(hours=f"{total / 3600:.2f}", utts=len(utts))
            if target_seconds is not None and total >= target_seconds:
                pool.terminate()
                break
    return utts


def manifest_size(path: Path) -> tuple[int, float]:
    n, secs = 0, 0.0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                n += 1
                secs += json.loads(line)["duration"]
    return n, secs


def cleanup(folder: Path, keep: set[str]) -> None:
    """Removes sidecars, and WAVs synthesized past the size target."""
    for p in folder.rglob("*"):
        if p.suffix == ".json" or (p.suffix in (".wav", ".part") and p.name not in keep):
            p.unlink()
