"""Is word confidence informative? A manifest's utterances through a bundle, their words binned by `conf`, and the
share of each bin's words that are wrong.

    python benchmarks/bench_confidence.py --manifest data/corpus/en/test.jsonl --bundle bundles/en-small
    python benchmarks/bench_confidence.py --manifest test.jsonl --bundle bundles/en-small --search beam --limit 500

Every utterance goes through the server's engine in this process (`Engine.transcribe`, as `POST /v1/transcribe` and
`parley transcribe`), so the confidences are exactly the ones clients get in finals. A recognized word is correct
when parley/wer.py's alignment of the normalized reference and hypothesis matches it to an equal reference word;
substitutions and insertions are errors (deletions have no recognized word to bin, and are counted apart). A word
that normalization splits (rarely: "9:30") is counted per piece, each with the word's confidence.

Prints one row per bin (words, share of all words, wrong, error rate, mean confidence), the WER, and the area under
the ROC curve of confidence as a detector of correct words (0.5: uninformative, 1: perfect). A script that prints
figures, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data.manifest import read_manifest
from parley.audio import read_wav
from parley.textnorm import words as normalize
from parley.wer import align_counts, hypothesis_correct
from server.bundle import load_bundle
from server.engine import Engine, EngineConfig

DEFAULT_EDGES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` `(N,)` for telling `positive` `(N,)` bool items from the rest (the
    Mann-Whitney statistic, ties counted half)."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    ranks = np.empty(len(scores))
    order = np.argsort(scores, kind="stable")
    ranks[order] = np.arange(1, len(scores) + 1)
    for v in np.unique(scores):  # average ranks of ties
        tie = scores == v
        ranks[tie] = ranks[tie].mean()
    return float((ranks[positive].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


async def decode(engine: Engine, paths: Sequence[Path], search: str, jobs: int) -> list[list[dict]]:
    """The finals of each recording, `jobs` streams at a time (the engine batches them)."""
    gate = asyncio.Semaphore(jobs)

    async def one(path: Path) -> list[dict]:
        async with gate:
            x, rate = await asyncio.to_thread(read_wav, path)
            return await engine.transcribe(x, rate, search)

    return await asyncio.gather(*(one(p) for p in paths))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, required=True, help="JSONL manifest with audio and reference text")
    parser.add_argument("--bundle", type=Path, required=True, help="a bundle folder (bundles/en-small)")
    parser.add_argument("--search", choices=("greedy", "beam"), default="greedy", help="search method")
    parser.add_argument("--limit", type=int, default=0, help="first N utterances only (0: all)")
    parser.add_argument("--jobs", type=int, default=8, help="streams decoded at once")
    parser.add_argument(
        "--edges", default=",".join(map(str, DEFAULT_EDGES)), help="bin edges, comma-separated, from 0 to 1"
    )
    args = parser.parse_args(argv)
    edges = [float(e) for e in args.edges.split(",")]
    if edges != sorted(edges) or edges[0] > 0 or edges[-1] < 1:
        parser.error("--edges must rise from 0 (or less) to 1 (or more)")
    utts = read_manifest(args.manifest)
    if args.limit:
        utts = utts[: args.limit]
    engine = Engine(load_bundle(args.bundle, providers="cpu"), EngineConfig())

    async def run() -> list[list[dict]]:
        await engine.start()
        try:
            return await decode(engine, [Path(u.audio) for u in utts], args.search, args.jobs)
        finally:
            await engine.close()

    results = asyncio.run(run())
    confs: list[float] = []
    correct: list[bool] = []
    subs = dels = ins = ref_words = 0
    for u, finals in zip(utts, results, strict=True):
        ref = normalize(u.text, u.language)
        hyp, conf = [], []
        for f in finals:
            for w in f["words"]:
                pieces = normalize(w["word"], u.language)
                hyp += pieces
                conf += [w["conf"]] * len(pieces)
        correct += hypothesis_correct(ref, hyp)
        confs += conf
        c = align_counts(ref, hyp)
        subs, dels, ins = subs + c.substitutions, dels + c.deletions, ins + c.insertions
        ref_words += len(ref)
    scores, ok = np.array(confs), np.array(correct, dtype=bool)
    n = len(scores)
    print(f"{args.bundle.name}, {args.search} search: {len(utts)} utterances of {args.manifest}")
    print(f"{'confidence':<14} {'words':>6} {'share':>7} {'wrong':>6} {'error rate':>11} {'mean conf':>10}")
    for k, (lo, hi) in enumerate(itertools.pairwise(edges)):
        last = k == len(edges) - 2
        sel = (scores >= lo) & ((scores <= hi) if last else (scores < hi))
        m = int(sel.sum())
        wrong = int((~ok[sel]).sum())
        rate = f"{100 * wrong / m:10.1f}%" if m else f"{'-':>11}"
        mean = f"{scores[sel].mean():10.3f}" if m else f"{'-':>10}"
        label = f"[{lo:.2f}, {hi:.2f}{']' if last else ')'}"
        print(f"{label:<14} {m:>6} {100 * m / max(n, 1):6.1f}% {wrong:>6} {rate} {mean}")
    wrong = int((~ok).sum())
    print(f"{'all':<14} {n:>6} {100.0:6.1f}% {wrong:>6} {100 * wrong / max(n, 1):10.1f}% {scores.mean():10.3f}")
    wer = 100 * (subs + dels + ins) / max(ref_words, 1)
    print(f"WER {wer:.2f}% ({subs} sub, {dels} del, {ins} ins of {ref_words} reference words)")
    print(f"AUROC of confidence for correct words: {auroc(scores, ok):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
