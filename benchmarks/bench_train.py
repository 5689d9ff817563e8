"""Training throughput on this machine: data loading, and a model step in fp32 and in bf16 mixed precision.

    python benchmarks/bench_train.py --manifest data/corpus-en/en/train.jsonl --batches 24 --threads 2
    python benchmarks/bench_train.py --manifest ... --checkpoint exp/en/last.pt   # that model (and its dropout)
    python benchmarks/bench_train.py --manifest ... --feature-cache data/fbank/en  # data loading from the cache too

Real batches of the manifest (the recipe's duration buckets, augmentation on: speed perturbation, silence padding,
SpecAugment) are prepared once, timed per batch (what the data loader's worker spends), then each precision runs
forward + backward over all of them with the dynamic chunk limits training draws. Printed: seconds per step and audio
seconds per wall second for each precision, and their ratio. The figure to watch on a 2-core CPU is the sum: the
data worker shares the cores with the model step.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data.manifest import read_manifest
from models.nn.checkpoint import load_model
from models.nn.transducer import Transducer
from models.train.dataset import DurationBatchSampler, UtteranceDataset, collate
from models.train.feature_cache import FeatureCache
from models.train.perturb import AugmentSettings
from models.train.tokenizer import Tokenizer
from models.train.train import TrainConfig, draw_attention_limits, model_config
from parley.contract import FBANK_SHIFT_MS

ROOT = Path(__file__).resolve().parents[1]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True, help="training manifest (JSONL)")
    p.add_argument("--tokenizer", default=str(ROOT / "models" / "lang" / "en" / "bpe.model"))
    p.add_argument("--checkpoint", help="time this checkpoint's model (default: the recipe's model, random weights)")
    p.add_argument("--dropout", type=float, default=0.0, help="encoder dropout of the random model (default: 0)")
    p.add_argument("--batches", type=int, default=24, help="batches to time (default: 24)")
    p.add_argument("--max-seconds", type=float, default=30.0, help="padded audio seconds per batch (default: 30)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    p.add_argument(
        "--feature-cache", help="also time data loading from this feature cache (parley train --feature-cache)"
    )
    p.add_argument("--out", type=Path, help="also write the figures here as JSON")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    tok = Tokenizer(a.tokenizer)
    if a.checkpoint:
        model, _ = load_model(a.checkpoint)
    else:
        cfg = TrainConfig([], [], a.tokenizer, "", ctc_weight=0.3)
        cfg.encoder = dataclasses.replace(cfg.encoder, dropout=a.dropout)
        model = Transducer(model_config(cfg, tok.vocab_size))
    model.train()
    utts = read_manifest(a.manifest)[: 200 * a.batches]
    ds = UtteranceDataset(utts, tok.encode, None, AugmentSettings(), seed=0)
    order = list(DurationBatchSampler(ds.durations(), a.max_seconds, seed=0))[: a.batches]
    t = time.perf_counter()
    batches = [collate([ds[i] for i in b]) for b in order]
    data_s = (time.perf_counter() - t) / len(batches)
    audio_s = sum(float(b["feat_lens"].sum()) for b in batches) * FBANK_SHIFT_MS / 1000 / len(batches)
    cached_s = None
    if a.feature_cache:
        cached = UtteranceDataset(
            utts, tok.encode, None, AugmentSettings(), seed=0, cache=FeatureCache(a.feature_cache)
        )
        t = time.perf_counter()
        for b in order:
            collate([cached[i] for i in b])
        cached_s = (time.perf_counter() - t) / len(order)
    rng = random.Random(0)
    limits = [draw_attention_limits(rng, TrainConfig([], [], "", "")) for _ in batches]
    print(f"{len(batches)} batches of {audio_s:.1f} s of audio on average; data loading {data_s:.3f} s per batch")
    result = {"batches": len(batches), "audio_s_per_batch": audio_s, "data_s_per_batch": data_s, "threads": a.threads}
    if cached_s is not None:
        print(f"data loading from the feature cache: {cached_s:.3f} s per batch ({data_s / cached_s:.0f}x less)")
        result["cached_data_s_per_batch"] = cached_s
    for amp in ("fp32", "bf16"):
        for i, (b, (chunk, left)) in enumerate(zip(batches, limits, strict=True)):
            if i == 1:  # the first step warms up the kernels
                t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp == "bf16"):
                loss, _ = model(b["feats"], b["feat_lens"], b["tokens"], b["token_lens"], chunk, left)
            loss.backward()
            model.zero_grad(set_to_none=True)
        step = (time.perf_counter() - t) / max(1, len(batches) - 1)
        result[amp] = {"s_per_step": step, "audio_s_per_s": audio_s / step}
        print(f"{amp}: {step:.3f} s per step, {audio_s / step:.0f} audio seconds per second")
    print(f"bf16 / fp32 speed: {result['fp32']['s_per_step'] / result['bf16']['s_per_step']:.2f}x")
    if a.out:
        a.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
