"""Training recipe for the streaming Transformer-Transducer.

    parley train --train data/corpus/en/train.jsonl --dev data/corpus/en/dev.jsonl \
        --tokenizer data/lang/en/bpe.model --exp-dir exp/en --epochs 12 --max-seconds 160

    # many GPUs / nodes: the same command under torchrun (DistributedDataParallel; gloo on CPU, nccl on GPU)
    torchrun --nproc_per_node 8 -m models.train --train ... --exp-dir exp/en

Every batch draws its attention limits (dynamic chunk training): a chunk of 2-16 encoder frames (80-640 ms) and
1-8 chunks of history, or, with probability `--full-context-prob`, the whole utterance. So one model serves every
latency setting, chosen at inference time. Running it again with the same --exp-dir resumes from last.pt, in the
middle of an epoch if need be. The exp dir receives: last.pt (every --checkpoint-every steps), epoch-N.pt,
best.pt (lowest dev WER), log.jsonl, curve.png, train_config.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from models.data import AugmentSettings, DurationBatchSampler, UtteranceDataset, collate, feature_stats
from models.encoder import EncoderConfig, count_parameters
from models.manifest import read_manifest
from models.search import greedy_search
from models.tokenizer import Tokenizer
from models.transducer import BLANK, ModelConfig, Transducer
from models.wer import error_counts


@dataclass
class TrainConfig:
    """The whole recipe; saved in every checkpoint and as train_config.json."""

    train: list[str]
    dev: list[str]
    tokenizer: str
    exp_dir: str
    target: str = "text"  # "text" (captions) or a language code (that translation of every utterance)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder_dim: int = 256
    joiner_dim: int = 320
    ctc_weight: float = 0.2
    epochs: int = 10
    max_seconds: float = 160.0  # padded audio seconds per batch (per process)
    lr: float = 2e-3
    warmup_steps: int = 800
    min_lr_ratio: float = 0.05
    weight_decay: float = 1e-2
    clip: float = 5.0
    chunk_sizes: tuple[int, ...] = (2, 4, 8, 16)
    left_chunks: tuple[int, ...] = (1, 2, 4, 8)
    full_context_prob: float = 0.2
    augment: bool = True
    seed: int = 0
    num_workers: int = 1
    checkpoint_every: int = 200
    dev_utts: int = 200
    init: str = ""  # checkpoint whose weights (those of matching name and shape) start a new run
    dev_every: int = 0  # also decode dev every this many steps (0: only after each epoch)
    dev_chunk: int = 8
    dev_left_chunks: int = 4
    max_steps: int = 0  # stop after this many steps in total (0: run all epochs)
    threads: int = 0  # torch CPU threads (0: all cores)


def _dist_info() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment, or a single process."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Linear warm-up to `lr`, then cosine decay to `lr * min_lr_ratio` at `total` steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def draw_attention_limits(rng: random.Random, cfg: TrainConfig) -> tuple[int, int]:
    """(chunk, left_chunks) for one batch; (-1, -1) is full context."""
    if rng.random() < cfg.full_context_prob:
        return -1, -1
    return rng.choice(cfg.chunk_sizes), rng.choice(cfg.left_chunks)


def model_config(cfg: TrainConfig, vocab_size: int) -> ModelConfig:
    return ModelConfig(
        vocab_size=vocab_size,
        encoder=cfg.encoder,
        decoder_dim=cfg.decoder_dim,
        joiner_dim=cfg.joiner_dim,
        ctc_weight=cfg.ctc_weight,
    )


def _text_of(target: str):
    if target == "text":
        return lambda u: u.text
    return lambda u: u.translations[target]


@torch.no_grad()
def evaluate_wer(
    model: Transducer,
    loader: DataLoader,
    tokenizer: Tokenizer,
    refs: list[str],
    language: str,
    chunk: int,
    left_chunks: int,
    device: torch.device,
) -> tuple[float, list[str]]:
    """Greedy-search WER of `model` on a loader's utterances under the given attention limits.

    A CTC-only model (ctc_weight 1, encoder pre-training) is decoded with CTC greedy search instead.
    """
    model.eval()
    hyps = [""] * len(refs)
    with torch.no_grad():
        for batch in loader:
            feats, lens = batch["feats"].to(device), batch["feat_lens"].to(device)
            enc, enc_lens = model.encoder(feats, lens, chunk, left_chunks)
            if model.cfg.ctc_weight >= 1.0 and model.ctc_output is not None:
                found = ctc_greedy(model.ctc_output(enc).argmax(-1), enc_lens)
            else:
                found = [h.tokens for h in greedy_search(model, enc, enc_lens)]
            for i, toks in zip(batch["index"].tolist(), found, strict=True):
                hyps[i] = tokenizer.decode(toks)
    return error_counts(refs, hyps, language).rate, hyps


def ctc_greedy(best: torch.Tensor, lens: torch.Tensor) -> list[list[int]]:
    """Best path `(B, T)` token ids -> token lists with repeats merged and blanks dropped."""
    out = []
    for row, n in zip(best.tolist(), lens.tolist(), strict=True):
        toks, prev = [], BLANK
        for t in row[:n]:
            if t != prev and t != BLANK:
                toks.append(t)
            prev = t
        out.append(toks)
    return out


def plot_curve(log: list[dict], path: Path) -> None:
    """Training loss and dev WER against steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in log if "loss" in r]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(steps, [r["loss"] for r in log if "loss" in r], lw=0.8, label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    dev = [r for r in log if "dev_wer" in r]
    if dev:
        ax2 = ax.twinx()
        ax2.plot([r["step"] for r in dev], [100 * r["dev_wer"] for r in dev], "o-", color="tab:red", label="dev WER")
        ax2.set_ylabel("dev WER (%)")
        ax2.legend(loc="upper center")
    ax.legend(loc="upper right")
    ax.set_title("Parley transducer training")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def init_from(model: nn.Module, path: str | os.PathLike) -> tuple[int, list[str]]:
    """Copies the tensors of checkpoint `path` whose name and shape match into `model` (feature statistics
    included); returns how many were copied and the names left as initialized (e.g. a new head, another vocabulary)."""
    src = torch.load(path, map_location="cpu", weights_only=False)["model"]
    own = model.state_dict()
    take = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(take, strict=False)
    return len(take), sorted(k for k in own if k not in take)


def train(cfg: TrainConfig) -> dict:
    """Runs (or resumes) training; returns the last dev result. Works alone or under torchrun."""
    rank, world, local_rank = _dist_info()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    exp = Path(cfg.exp_dir)
    main_proc = rank == 0
    if main_proc:
        exp.mkdir(parents=True, exist_ok=True)
        (exp / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))

    tok = Tokenizer(cfg.tokenizer)
    text_of = _text_of(cfg.target)
    train_utts = [u for m in cfg.train for u in read_manifest(m)]
    dev_utts = [u for m in cfg.dev for u in read_manifest(m)][: cfg.dev_utts]
    language = cfg.target if cfg.target != "text" else (train_utts[0].language if train_utts else "en")
    train_ds = UtteranceDataset(
        train_utts, tok.encode, text_of, AugmentSettings() if cfg.augment else None, seed=cfg.seed
    )
    sampler = DurationBatchSampler(train_ds.durations(), cfg.max_seconds, seed=cfg.seed, rank=rank, world_size=world)
    loader = DataLoader(
        train_ds, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.num_workers, persistent_workers=False
    )
    dev_ds = UtteranceDataset(dev_utts, tok.encode, text_of, None)
    dev_loader = DataLoader(
        dev_ds,
        batch_sampler=DurationBatchSampler(dev_ds.durations(), cfg.max_seconds, shuffle=False),
        collate_fn=collate,
    )
    dev_refs = [text_of(u) for u in dev_utts]

    mcfg = model_config(cfg, tok.vocab_size)
    model = Transducer(mcfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    steps_per_epoch = len(sampler)
    total = cfg.epochs * steps_per_epoch if not cfg.max_steps else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
    state = {"step": 0, "epoch": 0, "batch": 0, "best_wer": float("inf"), "log": [], "train_seconds": 0.0}
    last = exp / "last.pt"
    if last.exists():
        ck = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        state.update(ck["state"])
        if main_proc:
            print(f"resumed from {last}: epoch {state['epoch']} batch {state['batch']} step {state['step']}")
    elif cfg.init:
        n, skipped = init_from(model, cfg.init)
        if main_proc:
            print(f"initialized {n} tensors from {cfg.init}; kept fresh: {', '.join(skipped) or 'none'}")
    else:
        # Global feature normalization from the training data (the same on every rank: the same utterances).
        model.encoder.subsampling.set_feature_stats(*feature_stats(train_ds))
    if main_proc:
        print(
            f"model: {count_parameters(model) / 1e6:.2f} M parameters; {len(train_utts)} train utterances "
            f"({sum(train_ds.durations()) / 3600:.2f} h), {steps_per_epoch} steps/epoch x {cfg.epochs} epochs, "
            f"{world} process(es) on {device}"
        )
    ddp = DistributedDataParallel(model) if world > 1 else model

    def save(path: Path) -> None:
        if main_proc:
            tmp = path.with_suffix(".tmp")
            torch.save(
                {
                    "model": model.state_dict(),
                    "model_config": mcfg.to_dict(),
                    "train_config": asdict(cfg),
                    "optimizer": opt.state_dict(),
                    "state": state,
                    "tokenizer": str(cfg.tokenizer),
                },
                tmp,
            )
            os.replace(tmp, path)

    def run_dev() -> float:
        w, _ = evaluate_wer(model, dev_loader, tok, dev_refs, language, cfg.dev_chunk, cfg.dev_left_chunks, device)
        state["log"].append({"step": state["step"], "epoch": state["epoch"], "dev_wer": w})
        if w < state["best_wer"]:
            state["best_wer"] = w
            save(exp / "best.pt")
        return w

    rng = random.Random(cfg.seed)
    last_wer = None
    while state["epoch"] < cfg.epochs and (not cfg.max_steps or state["step"] < cfg.max_steps):
        epoch = state["epoch"]
        sampler.set_epoch(epoch)
        train_ds.epoch = epoch
        skip = state["batch"]
        rng.seed(cfg.seed * 7919 + epoch)
        model.train()
        bar = tqdm(
            total=steps_per_epoch,
            initial=skip,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not main_proc,
            dynamic_ncols=True,
        )
        t0 = time.time()
        if skip:  # resuming mid-epoch: the batches this epoch has not seen yet
            it = DataLoader(
                train_ds, batch_sampler=list(sampler)[skip:], collate_fn=collate, num_workers=cfg.num_workers
            )
        else:
            it = loader
        for batch in it:
            chunk, left = draw_attention_limits(rng, cfg)
            for g in opt.param_groups:
                g["lr"] = lr_at(state["step"], total, cfg)
            loss, info = ddp(
                batch["feats"].to(device),
                batch["feat_lens"].to(device),
                batch["tokens"].to(device),
                batch["token_lens"].to(device),
                chunk,
                left,
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            if torch.isfinite(gnorm):
                opt.step()
            state["step"] += 1
            state["batch"] += 1
            if main_proc:
                rec = {
                    "step": state["step"],
                    "epoch": epoch,
                    "loss": float(loss.detach()),
                    "lr": opt.param_groups[0]["lr"],
                    "grad_norm": float(gnorm),
                    "chunk": chunk,
                    "left": left,
                    **info,
                }
                state["log"].append(rec)
                bar.set_postfix(loss=f"{rec['loss']:.3f}", lr=f"{rec['lr']:.2e}")
            bar.update(1)
            if state["step"] % cfg.checkpoint_every == 0:
                state["train_seconds"] += time.time() - t0
                t0 = time.time()
                save(last)
                if main_proc:
                    plot_curve(state["log"], exp / "curve.png")
            if cfg.dev_every and state["step"] % cfg.dev_every == 0 and main_proc:
                w = run_dev()
                bar.write(f"step {state['step']}: dev WER {100 * w:.2f}%")
                model.train()
            if cfg.max_steps and state["step"] >= cfg.max_steps:
                break
        bar.close()
        state["train_seconds"] += time.time() - t0
        finished_epoch = state["batch"] >= steps_per_epoch
        if finished_epoch:
            state["epoch"] += 1
            state["batch"] = 0
        if main_proc:
            last_wer = run_dev()
            print(
                f"epoch {epoch + 1}: dev WER {100 * last_wer:.2f}% (chunk {cfg.dev_chunk}, "
                f"left {cfg.dev_left_chunks} chunks), step {state['step']}"
            )
            save(last)
            if finished_epoch:
                save(exp / f"epoch-{epoch + 1}.pt")
            plot_curve(state["log"], exp / "curve.png")
            with open(exp / "log.jsonl", "w") as f:
                for r in state["log"]:
                    f.write(json.dumps(r) + "\n")
        if world > 1:
            dist.barrier()
    if world > 1:
        dist.destroy_process_group()
    return {"dev_wer": last_wer, "step": state["step"], "best_wer": state["best_wer"]}


def load_model(path: str | os.PathLike, device: str = "cpu") -> tuple[Transducer, dict]:
    """Rebuilds a model from a checkpoint (its config is inside); returns the model in eval mode and the checkpoint."""
    ck = torch.load(path, map_location=device, weights_only=False)
    model = Transducer(ModelConfig.from_dict(ck["model_config"]))
    model.load_state_dict(ck["model"])
    return model.eval(), ck


def _parse(argv: Sequence[str] | None) -> TrainConfig:
    p = argparse.ArgumentParser(
        prog="parley train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    d = TrainConfig([], [], "", "")
    p.add_argument("--train", nargs="+", required=True, help="training manifests (JSONL)")
    p.add_argument("--dev", nargs="+", required=True, help="dev manifests (JSONL); the first --dev-utts are decoded")
    p.add_argument("--tokenizer", required=True, help="sentencepiece model of the output language (bpe.model)")
    p.add_argument("--exp-dir", required=True, help="where checkpoints, logs and the curve go; resumes from it")
    p.add_argument("--target", default=d.target, help="'text' for captions or a language code for translations")
    p.add_argument("--d-model", type=int, default=d.encoder.d_model, help="encoder width")
    p.add_argument("--layers", type=int, default=d.encoder.num_layers, help="encoder layers")
    p.add_argument("--heads", type=int, default=d.encoder.num_heads, help="attention heads")
    p.add_argument("--ff-dim", type=int, default=d.encoder.ff_dim, help="feed-forward width")
    p.add_argument("--conv-kernel", type=int, default=d.encoder.conv_kernel, help="depthwise conv kernel")
    p.add_argument(
        "--subsampling-channels",
        type=int,
        default=d.encoder.subsampling_channels,
        help="channels of the conv subsampling",
    )
    p.add_argument("--decoder-dim", type=int, default=d.decoder_dim, help="prediction network width")
    p.add_argument("--joiner-dim", type=int, default=d.joiner_dim, help="joiner width")
    p.add_argument("--ctc-weight", type=float, default=d.ctc_weight, help="weight of the auxiliary CTC loss")
    p.add_argument("--epochs", type=int, default=d.epochs, help="epochs")
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="stop after this many steps (0: no limit)")
    p.add_argument("--max-seconds", type=float, default=d.max_seconds, help="padded audio seconds per batch")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (AdamW)")
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps, help="linear warm-up steps")
    p.add_argument(
        "--full-context-prob", type=float, default=d.full_context_prob, help="probability of a full-context batch"
    )
    p.add_argument("--no-augment", action="store_true", help="no speed perturbation or SpecAugment")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    p.add_argument("--num-workers", type=int, default=d.num_workers, help="data loader processes")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help="steps between last.pt saves")
    p.add_argument("--dev-utts", type=int, default=d.dev_utts, help="dev utterances decoded after each epoch")
    p.add_argument("--init", default="", help="start from the matching weights of this checkpoint (new run only)")
    p.add_argument("--dev-every", type=int, default=d.dev_every, help="also decode dev every N steps (0: never)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    a = p.parse_args(argv)
    enc = EncoderConfig(
        d_model=a.d_model,
        num_layers=a.layers,
        num_heads=a.heads,
        ff_dim=a.ff_dim,
        conv_kernel=a.conv_kernel,
        subsampling_channels=a.subsampling_channels,
    )
    return TrainConfig(
        train=a.train,
        dev=a.dev,
        tokenizer=a.tokenizer,
        exp_dir=a.exp_dir,
        target=a.target,
        encoder=enc,
        decoder_dim=a.decoder_dim,
        joiner_dim=a.joiner_dim,
        ctc_weight=a.ctc_weight,
        epochs=a.epochs,
        max_steps=a.max_steps,
        max_seconds=a.max_seconds,
        lr=a.lr,
        warmup_steps=a.warmup_steps,
        full_context_prob=a.full_context_prob,
        augment=not a.no_augment,
        seed=a.seed,
        num_workers=a.num_workers,
        checkpoint_every=a.checkpoint_every,
        dev_utts=a.dev_utts,
        dev_every=a.dev_every,
        init=a.init,
        threads=a.threads,
    )


def main(argv: Sequence[str] | None = None) -> int:
    result = train(_parse(argv))
    if _dist_info()[0] == 0:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
