"""How good DTW word-timing transfer (models/data/align.py) is: its start-time error against exact timings, beside
the naive answer (the duration shared among words by their length).

    python benchmarks/bench_align.py --n 100 --language en

Exact timings come from espeak-ng speakers of other accents, variants and speeds (its WORD events) and from
festival (its Word relation, en and it). Sentences: the grammar's dev split. Prints, per reference, the mean, median
and 95th-percentile absolute start errors in ms and the share within 50 ms (docs/data.md has the figures).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data import grammar
from models.data.align import transfer_timings
from models.data.engines import VOICES, EngineVoice, speak
from models.data.espeak import synthesize
from models.data.voices import sample_voice

MARGIN = 0.05  # the silence every engine's audio keeps before its first word (models.data.espeak, models.data.engines)


def measure(n: int, language: str = "en", seed: int = 0) -> dict:
    """Timing error of `transfer_timings` against exact timings, and of the naive answer (each word a share of the
    duration by its length) beside it. Exact timings come from espeak-ng with other accents, variants and speeds
    (its WORD events) and from festival (its Word relation, en and it). Sentences: the grammar's dev split.
    Returns per reference: mean, median and 95th-percentile absolute start errors in ms, share within 50 ms."""
    rng = random.Random(seed)
    sentences = [s.text[language] for s in grammar.generate("dev", n, seed=seed)]
    festival = [v for pair in VOICES["festival"].get(language, ((), ())) for v in pair]
    report: dict = {"language": language, "sentences": n}
    for ref in ("espeak", "festival"):
        if ref == "festival" and not festival:
            continue
        errs, naive = [], []
        for text in sentences:
            if ref == "espeak":
                exact = synthesize(text, **sample_voice(language, rng, "test").synth_kwargs())
            else:
                exact = speak(
                    text, EngineVoice("festival", language, rng.choice(festival), rate=rng.uniform(0.85, 1.2))
                )
            derived = transfer_timings(text, language, exact.samples, exact.sample_rate)
            lengths = np.array([len(w) + 1 for w in text.split()])
            spread = MARGIN + np.concatenate([[0], np.cumsum(lengths)[:-1]]) / lengths.sum() * (
                exact.duration - 2 * MARGIN
            )
            errs += [abs(a.start - b.start) * 1000 for a, b in zip(exact.words, derived, strict=True)]
            naive += [abs(a.start - s) * 1000 for a, s in zip(exact.words, spread, strict=True)]
        report[ref] = {"words": len(errs), "dtw": _stats(np.array(errs)), "by_length": _stats(np.array(naive))}
    return report


def _stats(e: np.ndarray) -> dict:
    return {
        "mean_ms": round(float(e.mean()), 1),
        "median_ms": round(float(np.median(e)), 1),
        "p95_ms": round(float(np.percentile(e, 95)), 1),
        "within_50ms": round(float((e < 50).mean()), 3),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=50, help="sentences to align (default: 50)")
    p.add_argument("--language", default="en", help="en, de, es, fr or it (default: en)")
    p.add_argument("--seed", type=int, default=0, help="sentence and voice draws (default: 0)")
    a = p.parse_args()
    print(json.dumps(measure(a.n, a.language, a.seed), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
