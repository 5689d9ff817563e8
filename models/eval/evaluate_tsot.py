"""Evaluate a multi-talker (t-SOT) checkpoint: cpWER on two-talker mixtures by overlap ratio, and its WER on
single-talker audio.

    parley eval-tsot --checkpoint exp/tsot/best.pt --tokenizer models/lang/en/bpe.model \
        --mixtures data/mix-en/test/mix.jsonl --single data/corpus-en/en/test.jsonl --chunk-ms 320 \
        --out exp/tsot/eval

cpWER (concatenated minimum-permutation WER, as in the CHiME-6 challenge): the hypothesis text of each virtual
channel (server.tsot.split_channels of the decoded text) is scored against the reference text of each channel
(the mixture manifest's `channels`, models/data/mixtures.py) under the assignment of hypothesis channels to reference
channels that makes the fewest errors; errors and reference words are summed over mixtures. For overlapping mixtures
the reference channels are the two talkers; a talker who starts after the other finished shares channel 0 with it,
which is what a t-SOT model is trained to emit. Mixtures are bucketed by overlap ratio: 0, (0, 20], (20, 40], > 40 %.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from parley.contract import CHANNEL_CHANGE, CHANNEL_CHANGE_ID
from parley.textnorm import words
from parley.wer import ErrorCounts, align_counts
from server.tsot import split_channels, strip_channel_changes

BUCKETS = ("0", "0-20", "20-40", "40+")  # overlap ratio buckets, in percent


def overlap_bucket(overlap: float) -> str:
    """The bucket name of an overlap ratio in [0, 1]."""
    if overlap <= 0:
        return "0"
    return "0-20" if overlap <= 0.2 else "20-40" if overlap <= 0.4 else "40+"


def cpwer_counts(refs: Sequence[str], hyps: Sequence[str], language: str = "en") -> ErrorCounts:
    """Error counts of the best assignment of hypothesis channels to reference channels (one mixture).

    Args:
        refs: the reference text of each channel (or speaker).
        hyps: the hypothesis text of each channel; the shorter list is padded with empty texts.
    """
    n = max(len(refs), len(hyps))
    r = [words(t, language) for t in refs] + [[] for _ in range(n - len(refs))]
    h = [words(t, language) for t in hyps] + [[] for _ in range(n - len(hyps))]
    best: ErrorCounts | None = None
    for perm in itertools.permutations(range(n)):
        total = ErrorCounts()
        for i, j in enumerate(perm):
            total = total + align_counts(r[i], h[j])
        if best is None or total.errors < best.errors:
            best = total
    assert best is not None
    return best


def cpwer(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]], language: str = "en") -> float:
    """cpWER over mixtures: `refs[k]`, `hyps[k]` are the channel texts of mixture k."""
    total = ErrorCounts()
    for r, h in zip(refs, hyps, strict=True):
        total = total + cpwer_counts(r, h, language)
    return total.rate


def score_mixtures(lines: Sequence[dict], hyps: Sequence[str], language: str = "en") -> dict[str, dict]:
    """cpWER per overlap bucket and overall from mixture manifest lines and decoded t-SOT texts (with ``<cc>``)."""
    counts = {b: ErrorCounts() for b in (*BUCKETS, "all")}
    items = dict.fromkeys(counts, 0)
    for line, hyp in zip(lines, hyps, strict=True):
        refs = line.get("channels") or split_channels_text(line["text"])
        c = cpwer_counts(refs, split_channels_text(hyp), language)
        for b in (overlap_bucket(float(line.get("overlap", 0.0))), "all"):
            counts[b] = counts[b] + c
            items[b] += 1
    return {
        b: {"mixtures": items[b], "cpwer": c.rate, "errors": c.errors, "words": c.reference_words}
        for b, c in counts.items()
    }


def split_channels_text(text: str) -> list[str]:
    """The text of each channel of a serialized t-SOT text."""
    return [" ".join(ws) for ws in split_channels(text)]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="parley eval-tsot", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", required=True, help="a t-SOT checkpoint written by parley train")
    p.add_argument("--tokenizer", required=True, help="the sentencepiece model it was trained with")
    p.add_argument("--mixtures", required=True, type=Path, help="held-out mixtures (mix.jsonl of parley mix)")
    p.add_argument("--single", type=Path, help="a single-talker manifest scored with plain WER (e.g. test)")
    p.add_argument("--chunk-ms", type=int, default=320, help="chunk size in ms, a multiple of 40 (default: 320)")
    p.add_argument("--history-ms", type=int, default=1280, help="attention history in ms (default: 1280)")
    p.add_argument("--search", choices=["greedy", "beam"], default="greedy", help="greedy or modified beam (4)")
    p.add_argument(
        "--blank-penalty", type=float, default=0.0, help="subtracted from the blank logit (default: 0; tune on dev)"
    )
    p.add_argument(
        "--cc-bias",
        type=float,
        nargs="+",
        default=[0.0],
        help="added to the channel change's logit, one decoding of the mixtures per value (negative: fewer channel "
        "changes; default: 0); the first value also decodes --single. `python -m models.train.token_bias` bakes one in",
    )
    p.add_argument("--limit", type=int, default=0, help="decode only the first N items of each manifest")
    p.add_argument("--out", type=Path, help="write report.json and hypotheses here")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    a = p.parse_args(argv)

    import torch

    from models.data.manifest import read_manifest
    from models.eval.evaluate import decode
    from models.nn.checkpoint import load_model
    from models.train.token_bias import shift_token_logit
    from models.train.tokenizer import Tokenizer
    from parley.contract import ENCODER_FRAME_MS
    from parley.wer import error_counts

    if a.threads:
        torch.set_num_threads(a.threads)
    model, _ = load_model(a.checkpoint)
    tok = Tokenizer(a.tokenizer)
    chunk = a.chunk_ms // ENCODER_FRAME_MS
    left = max(1, a.history_ms // a.chunk_ms)
    utts = read_manifest(a.mixtures)
    lines = [json.loads(x) for x in a.mixtures.read_text(encoding="utf-8").splitlines() if x.strip()]
    if a.limit:
        utts, lines = utts[: a.limit], lines[: a.limit]
    language = utts[0].language if utts else "en"

    def run(items):  # (references, hypotheses) at the chosen latency, search and blank penalty
        return decode(model, tok, items, chunk, left, a.search, blank_penalty=a.blank_penalty)

    report: dict = {"mixtures": str(a.mixtures), "chunk_ms": a.chunk_ms, "history_ms": a.history_ms}
    report |= {"search": a.search, "blank_penalty": a.blank_penalty}
    shifted = 0.0  # the cc bias the model holds now
    for k, bias in enumerate(a.cc_bias):
        shift_token_logit(model, CHANNEL_CHANGE_ID, bias - shifted)
        shifted = bias
        _, hyps = run(utts)
        row = {"cc_bias": bias, "cpwer": score_mixtures(lines, hyps, language)}
        row["channel_changes"] = {"hypotheses": sum(h.split().count(CHANNEL_CHANGE) for h in hyps)}
        row["channel_changes"]["references"] = sum(u.text.split().count(CHANNEL_CHANGE) for u in utts)
        if len(a.cc_bias) > 1:
            print(f"cc bias {bias:+g}: {row['channel_changes']['hypotheses']} channel changes", end="")
            print(f" ({row['channel_changes']['references']} in the references)")
        for b, r in row["cpwer"].items():
            counts = f"({r['errors']}/{r['words']}, {r['mixtures']} mixtures)"
            print(f"cpWER overlap {b:>5} %: {100 * r['cpwer']:6.2f}% {counts}")
        if k == 0:
            report |= row
            first_hyps = hyps
        else:
            report.setdefault("cc_bias_sweep", []).append(row)
    if len(a.cc_bias) > 1:
        report["cc_bias_sweep"].insert(0, {k: report[k] for k in ("cc_bias", "cpwer", "channel_changes")})
    hyps = first_hyps
    if a.single:
        shift_token_logit(model, CHANNEL_CHANGE_ID, a.cc_bias[0] - shifted)
        single = read_manifest(a.single)[: a.limit or None]
        refs, shyps = run(single)
        plain = [strip_channel_changes(h) for h in shyps]
        c = error_counts(refs, plain, language)
        report["single"] = {"manifest": str(a.single), "wer": c.rate, "errors": c.errors, "words": c.reference_words}
        print(f"single-talker WER {100 * c.rate:.2f}% ({c.errors}/{c.reference_words}) on {a.single}")
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "report.json").write_text(json.dumps(report, indent=2))
        (a.out / "mixtures.txt").write_text(
            "".join(f"{u.id}\tREF {u.text}\n{u.id}\tHYP {h}\n" for u, h in zip(utts, hyps, strict=True))
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
