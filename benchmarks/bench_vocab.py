"""What the vocabulary size does to an open-domain English transducer, before any training: 256 vs larger.

    python benchmarks/bench_vocab.py --text data/text --manifest data/corpus-v2/en/train.jsonl \
        --sizes 256 500 1000 2000 --work exp/bench-vocab --json benchmarks/results/vocab-en.json

For each size, a tokenizer trained as `parley tokenizer` trains en-open's (unigram, Parley's reserved ids, on the text
corpus's English train sentences), then measured on what decides the choice:

- the modified topology (at most one token per 40 ms encoder frame, the one sherpa-onnx decodes alike): the share of
  training utterances with more tokens than frames (U > T: no alignment exists, the loss is infinite and the
  utterance is wasted), at speed 1.0 and at 1.1 (the fastest speed perturbation), and U / T (p50, p99): how close
  the topology runs to its limit;
- tokens per word and the rate of `<unk>` pieces on the held-out test sentences (open vocabulary: a word the
  tokenizer cannot spell is lost whatever the model hears);
- the full loss's lattice (sum of T x (U+1) x V per utterance, relative to 256) against the pruned loss's band
  (T x prune_range x V): why the open-domain recipe needs the pruned loss at any V;
- the step time of the pruned recipe per V, read from benchmarks/results/profile-step-2cpu.json
  (benchmarks/profile_step.py) when it is there.

What it does not measure is the WER each size reaches after training: that needs one training run per size.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.data.manifest import read_manifest  # noqa: E402
from models.train.tokenizer import Tokenizer, train_tokenizer  # noqa: E402
from parley.contract import ENCODER_FRAME_MS, UNK_ID  # noqa: E402

PROFILE = ROOT / "benchmarks" / "results" / "profile-step-2cpu.json"


def _sentences(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def encoder_frames(seconds: float, speed: float = 1.0) -> int:
    """T: encoder frames of `seconds` of audio played at `speed` (one per 40 ms)."""
    return int(seconds / speed * 1000 // ENCODER_FRAME_MS)


def measure(
    tok: Tokenizer, utts: Sequence[tuple[str, float]], test: Sequence[str], prune_range: int = 5
) -> dict[str, float]:
    """The figures of one tokenizer: `utts` are (text, seconds) of training audio, `test` held-out sentences."""
    u = np.array([len(tok.encode(t)) for t, _ in utts], dtype=np.float64)
    t1 = np.array([encoder_frames(s) for _, s in utts], dtype=np.float64)
    t11 = np.array([encoder_frames(s, 1.1) for _, s in utts], dtype=np.float64)
    ratio = u / np.maximum(t1, 1)
    pieces = [tok.encode(s) for s in test]
    n_pieces = sum(len(p) for p in pieces)
    words = sum(len(s.split()) for s in test)
    v = tok.vocab_size
    return {
        "vocab": v,
        "unalignable_speed_1.0": float(np.mean(u > t1)),
        "unalignable_speed_1.1": float(np.mean(u > t11)),
        "tokens_per_frame_p50": float(np.median(ratio)),
        "tokens_per_frame_p99": float(np.quantile(ratio, 0.99)),
        "tokens_per_second": float(u.sum() / sum(s for _, s in utts)),
        "tokens_per_word_test": n_pieces / max(words, 1),
        "unk_per_1000_test_tokens": 1000 * sum(p.count(UNK_ID) for p in pieces) / max(n_pieces, 1),
        "full_lattice_cells_x_v": float(np.sum(t1 * (u + 1)) * v),
        "pruned_band_cells_x_v": float(np.sum(t1) * prune_range * v),
    }


def _profile_steps() -> dict[int, float]:
    """Pruned-recipe step seconds per vocabulary size of the en-small-sized model, from the committed profile."""
    if not PROFILE.is_file():
        return {}
    rows = json.loads(PROFILE.read_text())["results"]
    return {r["vocab"]: r["seconds"]["step"] for r in rows if r["model"] == "en-small" and r["recipe"] == "pruned"}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", type=Path, required=True, help="the text corpus folder (parley text build --out)")
    p.add_argument("--manifest", type=Path, nargs="+", required=True, help="training manifests (texts, durations)")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 500, 1000, 2000], help="vocabulary sizes")
    p.add_argument("--work", type=Path, required=True, help="folder for the tokenizers (reused when there)")
    p.add_argument("--json", type=Path, help="write the figures here")
    a = p.parse_args(argv)

    train_text = _sentences(a.text / "en" / "train.jsonl")
    test_text = _sentences(a.text / "en" / "test.jsonl")
    utts = [(u.text, u.duration) for m in a.manifest for u in read_manifest(m)]
    steps = _profile_steps()
    rows = []
    for v in a.sizes:
        model = a.work / f"bpe-{v}.model"
        if not model.is_file():
            train_tokenizer(train_text, a.work / f"bpe-{v}", v, "en")
        r = measure(Tokenizer(model), utts, test_text)
        r["pruned_step_seconds"] = steps.get(v, math.nan)
        rows.append(r)
        print(f"vocab {v}: done", file=sys.stderr)
    base = rows[0]["full_lattice_cells_x_v"]
    print(f"{len(utts)} training utterances ({sum(s for _, s in utts) / 3600:.1f} h), {len(test_text)} test sentences")
    print(
        "| V | U > T at 1.0 | U > T at 1.1 | U/T p50 | U/T p99 | tokens/s | tokens/word | unk/1000 | full lattice "
        "| pruned band | pruned step s |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['vocab']} | {100 * r['unalignable_speed_1.0']:.2f} % | {100 * r['unalignable_speed_1.1']:.2f} % | "
            f"{r['tokens_per_frame_p50']:.2f} | {r['tokens_per_frame_p99']:.2f} | {r['tokens_per_second']:.1f} | "
            f"{r['tokens_per_word_test']:.2f} | {r['unk_per_1000_test_tokens']:.2f} | "
            f"{r['full_lattice_cells_x_v'] / base:.2f}x | {r['pruned_band_cells_x_v'] / base:.3f}x | "
            f"{r['pruned_step_seconds']:.2f} |"
        )
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"utterances": len(utts), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
