"""Where one training step's time goes (data, encoder, joiner, loss, backward, optimizer): full vs pruned RNN-T loss.

    nice -n 10 python benchmarks/profile_step.py --threads 1 --out benchmarks/results/profile-step-2cpu.json
    python benchmarks/profile_step.py --models en-small --vocab 256 --steps 2     # a quick look
    python benchmarks/profile_step.py --device cuda --amp bf16 --models en-small en-20m en-30m --vocab 500 \
        --recipes pruned --utterances 64 --steps 5                               # on a GPU (benchmarks/gpu_check.sh)

The batch has the open-domain shape: `--utterances` of `--seconds` each (default 6 x 5 s = 30 s, the recipe's
--max-seconds), `--tokens` target tokens each (default 60: an open-domain sentence in 256 BPE pieces; larger
vocabularies need fewer tokens for the same text, so at 500 and 1000 the full loss's figures are upper bounds). Its
features are real: synthetic speech-like audio written as WAV files and loaded the way training loads them, timed
both from audio (read, speed perturbation, fbank, SpecAugment, collate) and from a feature cache (`parley train
--feature-cache`, the recipe's way). The targets are random token ids.

Each model (`en-small`: the architecture of en-small and en-open, 4.4-4.8 M parameters; `en-3x`: about three times
larger; `en-20m` and `en-30m`: the sizes a GPU can train, under the 40 M cap of the open-domain issue) and vocabulary
size is
stepped with the full loss on the standard topology (today's recipes) and with the pruned loss (`--prune-range`
rows per frame) on the modified topology (the open-domain recipe), through the same pieces as
`Transducer.forward`, timed one by one:

- encoder: the streaming conformer's forward (chunk 8, 4 chunks of history)
- joiner: prediction network, both projections and the joiner (the whole lattice, or the bands only)
- loss: the lattice recursion (full), or the simple loss with its occupations, the bands and the band recursion
  (pruned); plus the CTC loss (weight 0.3, as the en recipe)
- backward_heads: the backward pass of the joiner, the prediction network and the losses (down to the encoder's
  output); backward_encoder: the encoder's backward pass (the same arithmetic as one `loss.backward()`, cut in two)
- optimizer: gradient clipping and the AdamW step

Each figure is the median of `--steps` steps after one warm-up step; the two recipes' steps alternate, so both see
the same machine load. The step's loss is checked against `Transducer.forward` on the same batch, so the profile
times the code that trains. On a shared machine run it under
`nice` with `--threads 1`: the figures are then those of one core, the split between the parts is what matters.
With `--device cuda` each part is timed between `torch.cuda.synchronize()` calls (the GPU's time, not the launch's),
and `--amp bf16` runs the forward passes under autocast as `parley train --amp bf16` does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data.manifest import Utterance
from models.nn.encoder import EncoderConfig, count_parameters, subsampled_lengths
from models.nn.transducer import ModelConfig, Transducer
from models.train.dataset import UtteranceDataset, collate
from models.train.feature_cache import FeatureCache, build_feature_cache
from models.train.perturb import AugmentSettings
from models.train.pruned_rnnt import (
    band_log_probs,
    band_loss,
    loss_and_occupation,
    prune_decoder,
    prune_ranges,
    simple_lattice_log_probs,
)
from models.train.rnnt_loss import rnnt_loss
from parley.contract import BLANK_ID, FBANK_SHIFT_MS

SAMPLE_RATE = 16000
CHUNK, LEFT_CHUNKS = 8, 4  # a typical draw of the dynamic chunk training (320 ms, 1.28 s of history)
CTC_WEIGHT = 0.3  # the en recipe's (Makefile train-en)
CLIP = 5.0
CPU = torch.device("cpu")
PARTS = ("encoder", "joiner", "loss", "backward_heads", "backward_encoder", "optimizer")

# bundles/en-small/bundle.json "model": today's default; and a model about three times its size.
MODELS = {
    "en-small": {
        "encoder": EncoderConfig(
            d_model=144, num_layers=8, num_heads=4, ff_dim=576, conv_kernel=15, subsampling_channels=64, dropout=0.0
        ),
        "decoder_dim": 256,
        "joiner_dim": 320,
    },
    "en-3x": {
        "encoder": EncoderConfig(
            d_model=224, num_layers=10, num_heads=4, ff_dim=896, conv_kernel=15, subsampling_channels=64, dropout=0.0
        ),
        "decoder_dim": 256,
        "joiner_dim": 320,
    },
    "en-20m": {  # 19.4 M parameters at V=500
        "encoder": EncoderConfig(
            d_model=256, num_layers=12, num_heads=4, ff_dim=1024, conv_kernel=15, subsampling_channels=64, dropout=0.0
        ),
        "decoder_dim": 256,
        "joiner_dim": 320,
    },
    "en-30m": {  # 29.8 M parameters at V=500
        "encoder": EncoderConfig(
            d_model=320, num_layers=12, num_heads=8, ff_dim=1280, conv_kernel=15, subsampling_channels=64, dropout=0.0
        ),
        "decoder_dim": 256,
        "joiner_dim": 320,
    },
}
# The two recipes compared: (loss, topology).
RECIPES = {"full": ("full", "standard"), "pruned": ("pruned", "modified")}


def speechlike(seconds: float, seed: int) -> np.ndarray:
    """Syllable-rate bursts of harmonics with a moving pitch, in noise: float32 samples at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) ** 2
    return (0.2 * voiced * envelope + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


class Timer:
    """Seconds per named part, accumulated over one step; on a GPU, each part ends when its kernels have run."""

    def __init__(self, device: torch.device = CPU) -> None:
        self.parts: dict[str, float] = {}
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextmanager
    def __call__(self, name: str):
        self.sync()
        t = time.perf_counter()
        yield
        self.sync()
        self.parts[name] = self.parts.get(name, 0.0) + time.perf_counter() - t


def data_batches(folder: Path, utterances: int, seconds: float, tokens: int, repeats: int) -> tuple[dict, dict]:
    """One training batch of real features, and the seconds its loading takes from audio and from a feature cache.

    Returns:
        (batch, timing): the collated batch (feats, feat_lens, ...) and {"audio_s": ..., "cache_s": ...}, each the
        median over `repeats` epochs (fresh augmentation draws) of loading and collating the whole batch.
    """
    utts = []
    for i in range(utterances):
        path = folder / f"utt{i}.wav"
        sf.write(path, speechlike(seconds, i), SAMPLE_RATE)
        utts.append(Utterance(id=f"utt{i}", audio=str(path), duration=seconds, language="en", text="x"))
    ids = list(range(1, tokens + 1))
    build_feature_cache(utts, folder / "fbank", progress=False)
    timing: dict[str, float] = {}
    batch: dict | None = None
    for name, cache in (("audio_s", None), ("cache_s", FeatureCache(folder / "fbank"))):
        ds = UtteranceDataset(utts, lambda _: ids, None, AugmentSettings(), seed=0, cache=cache)
        runs = []
        for epoch in range(repeats + 1):
            ds.epoch = epoch
            t = time.perf_counter()
            b = collate([ds[i] for i in range(len(ds))])
            runs.append(time.perf_counter() - t)
        timing[name] = statistics.median(runs[1:])
        batch = b if batch is None else batch
    assert batch is not None
    return batch, timing


def profiled_step(
    model: Transducer,
    opt: torch.optim.Optimizer,
    feats: torch.Tensor,
    feat_lens: torch.Tensor,
    targets: torch.Tensor,
    target_lens: torch.Tensor,
    timer: Timer,
    amp: bool = False,
) -> float:
    """One training step through `Transducer.forward`'s pieces, each timed; returns the loss (pruned: its scales
    after the warm-up, simple 0.5 and pruned 1). `amp`: the forward passes under bf16 autocast, as in training."""
    with torch.autocast(feats.device.type, dtype=torch.bfloat16, enabled=amp):
        loss, enc_out, enc = _forward(model, feats, feat_lens, targets, target_lens, timer)
    opt.zero_grad(set_to_none=True)
    with timer("backward_heads"):
        loss.backward()
    with timer("backward_encoder"):
        enc_out.backward(enc.grad)
    with timer("optimizer"):
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
    return float(loss.detach())


def _forward(
    model: Transducer,
    feats: torch.Tensor,
    feat_lens: torch.Tensor,
    targets: torch.Tensor,
    target_lens: torch.Tensor,
    timer: Timer,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The forward pass in timed pieces: (loss, encoder output, its detached copy that the heads' graph starts from)."""
    cfg = model.cfg
    decoder, joiner, ctc_output = model.head()
    with timer("encoder"):
        enc_out, enc_lens = model.encoder(feats, feat_lens, CHUNK, LEFT_CHUNKS)  # (B, T, D)
    enc = enc_out.detach().requires_grad_()  # the backward pass stops here first, to time the two halves apart
    with timer("joiner"):
        dec = decoder(decoder.contexts(targets).reshape(-1, cfg.context_size))
        dec = dec.view(targets.shape[0], targets.shape[1] + 1, -1)  # (B, U+1, E)
        enc_p, dec_p = joiner.encoder_proj(enc), joiner.decoder_proj(dec)
    if cfg.loss == "full":
        with timer("joiner"):
            logits = joiner(enc_p[:, :, None], dec_p[:, None])  # (B, T, U+1, V)
        with timer("loss"):
            rnnt = rnnt_loss(logits, targets, enc_lens, target_lens, reduction="none", rnnt_type=cfg.rnnt_type)
    else:
        assert joiner.simple_am_proj is not None and joiner.simple_lm_proj is not None
        with timer("loss"):
            am, lm = joiner.simple_am_proj(enc), joiner.simple_lm_proj(dec)  # (B, T, V), (B, U+1, V)
            simple_lp = simple_lattice_log_probs(am, lm, targets, BLANK_ID)
            simple, occupation = loss_and_occupation(*simple_lp, enc_lens, target_lens, cfg.rnnt_type)
            s_begin = prune_ranges(occupation, enc_lens, target_lens, cfg.prune_range, cfg.rnnt_type)
        with timer("joiner"):
            logits = joiner(enc_p[:, :, None], prune_decoder(dec_p, s_begin, cfg.prune_range))  # (B, T, S, V)
        with timer("loss"):
            band_lp = band_log_probs(logits, targets, s_begin, BLANK_ID)
            rnnt = 0.5 * simple + band_loss(*band_lp, s_begin, enc_lens, target_lens, cfg.rnnt_type)
    with timer("loss"):
        assert ctc_output is not None
        lp = ctc_output(enc).float().log_softmax(-1).transpose(0, 1)  # (T, B, V)
        ctc = F.ctc_loss(lp, targets, enc_lens, target_lens, blank=BLANK_ID, reduction="none", zero_infinity=True)
        loss = (1 - CTC_WEIGHT) * rnnt.mean() + CTC_WEIGHT * ctc.mean()
    return loss, enc_out, enc


def _setup(
    name: str, vocab: int, recipe: str, prune_range: int, seed: int, device: torch.device
) -> tuple[Transducer, torch.optim.Optimizer]:
    loss_kind, rnnt_type = RECIPES[recipe]
    torch.manual_seed(seed)
    cfg = ModelConfig(
        vocab_size=vocab,
        ctc_weight=CTC_WEIGHT,
        loss=loss_kind,
        rnnt_type=rnnt_type,
        prune_range=prune_range,
        **MODELS[name],
    )
    model = Transducer(cfg).to(device).train()
    return model, torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-2, betas=(0.9, 0.98))


def profile(
    name: str,
    vocab: int,
    recipes: Sequence[str],
    batch: dict,
    tokens: int,
    prune_range: int,
    steps: int,
    seed: int = 0,
    device: torch.device = CPU,
    amp: bool = False,
) -> list[dict]:
    """Median seconds per part of `steps` steps (after a warm-up) of model `name` with `vocab`, for each recipe, on
    `device` (the batch is moved there once), in fp32 or (`amp`) bf16 mixed precision."""
    feats, feat_lens = batch["feats"].to(device), batch["feat_lens"].to(device)
    B = feats.shape[0]
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(1, vocab, (B, tokens), generator=g).to(device)
    target_lens = torch.full((B,), tokens, dtype=torch.long, device=device)
    setups = {r: _setup(name, vocab, r, prune_range, seed, device) for r in recipes}
    runs: dict[str, list[dict]] = {r: [] for r in recipes}
    for i in range(steps + 1):
        for recipe, (model, opt) in setups.items():
            if i == 0:  # the profiled pieces are Transducer.forward's: the same loss on the same batch
                with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    ref, _ = model(feats, feat_lens, targets, target_lens, CHUNK, LEFT_CHUNKS, simple_scale=0.5)
            timer = Timer(device)
            timer.sync()
            t = time.perf_counter()
            loss = profiled_step(model, opt, feats, feat_lens, targets, target_lens, timer, amp)
            timer.sync()
            timer.parts["step"] = time.perf_counter() - t
            if i == 0:  # bf16 kernels may differ between the two calls in the last bits
                tol = 1e-2 if amp else 1e-3
                assert abs(loss - float(ref)) < tol * abs(float(ref)), f"profiled loss {loss} vs forward {float(ref)}"
            else:
                runs[recipe].append(timer.parts)
    enc_frames = int(subsampled_lengths(feat_lens).max())
    out = []
    for recipe, (model, _) in setups.items():
        loss_kind, rnnt_type = RECIPES[recipe]
        rows = tokens + 1 if loss_kind == "full" else prune_range
        out.append(
            {
                "model": name,
                "parameters": count_parameters(model),
                "vocab": vocab,
                "recipe": recipe,
                "loss": loss_kind,
                "rnnt_type": rnnt_type,
                "prune_range": prune_range if loss_kind == "pruned" else None,
                "logits_mb": B * enc_frames * rows * vocab * 4 / 2**20,  # the joiner's (B, T, U+1 or S, V) output
                "seconds": {k: statistics.median(r[k] for r in runs[recipe]) for k in (*PARTS, "step")},
                "peak_gpu_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
            }
        )
    return out


def table(results: list[dict], data: dict) -> str:
    head = f"| model | V | loss | {' | '.join(PARTS)} | model step | + data (cache) | logits MB | vs full |"
    lines = [head, "|" + " --- |" * (len(PARTS) + 7)]
    for r in results:
        s = r["seconds"]
        full = next(
            (x for x in results if (x["model"], x["vocab"], x["recipe"]) == (r["model"], r["vocab"], "full")), None
        )
        speedup = f"{full['seconds']['step'] / s['step']:.2f}x" if full is not None else ""
        loss = "full, standard" if r["recipe"] == "full" else f"pruned S={r['prune_range']}, modified"
        cells = [r["model"], str(r["vocab"]), loss, *(f"{s[p]:.3f}" for p in PARTS)]
        cells += [f"{s['step']:.3f}", f"{s['step'] + data['cache_s']:.3f}", f"{r['logits_mb']:.0f}", speedup]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS), help="model sizes")
    p.add_argument("--vocab", nargs="+", type=int, default=[256, 500, 1000], help="vocabulary sizes V")
    p.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES), help="losses to compare")
    p.add_argument("--utterances", type=int, default=6, help="utterances per batch (default: 6)")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds per utterance (default: 5)")
    p.add_argument("--tokens", type=int, default=60, help="target tokens per utterance (default: 60)")
    p.add_argument("--prune-range", type=int, default=5, help="rows per frame of the pruned loss (default: 5)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per setting, after one warm-up (default: 3)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--amp", choices=["none", "bf16"], default="none", help="mixed precision as parley train --amp")
    p.add_argument("--out", type=Path, help="also write the figures here as JSON")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {a.device}: torch {torch.__version__} sees no CUDA device")
    with tempfile.TemporaryDirectory() as tmp:
        batch, data = data_batches(Path(tmp), a.utterances, a.seconds, a.tokens, a.steps)
    audio_s = float(batch["feat_lens"].sum()) * FBANK_SHIFT_MS / 1000
    print(
        f"batch: {a.utterances} x {a.seconds:g} s = {audio_s:.1f} s of audio (with augmentation padding), "
        f"{a.tokens} tokens each; torch threads {a.threads}, nice {os.nice(0)}, load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; device {device} ({a.amp})"
    )
    print(f"data per batch: {data['audio_s']:.3f} s from audio, {data['cache_s']:.4f} s from the feature cache")
    results = []
    for name in a.models:
        for vocab in a.vocab:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            for r in profile(
                name, vocab, a.recipes, batch, a.tokens, a.prune_range, a.steps, device=device, amp=a.amp == "bf16"
            ):
                results.append(r)
                s = r["seconds"]
                print(
                    f"{name} ({r['parameters'] / 1e6:.1f} M) V={vocab} {r['recipe']}: step {s['step']:.3f} s "
                    + ", ".join(f"{k} {s[k]:.3f}" for k in PARTS)
                    + (f", peak {r['peak_gpu_mb']:.0f} MB" if r["peak_gpu_mb"] is not None else ""),
                    flush=True,
                )
    print()
    print(table(results, data))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        settings = {
            "utterances": a.utterances,
            "seconds": a.seconds,
            "audio_s_per_batch": audio_s,
            "tokens": a.tokens,
            "chunk": CHUNK,
            "left_chunks": LEFT_CHUNKS,
            "ctc_weight": CTC_WEIGHT,
            "steps": a.steps,
            "threads": a.threads,
            "nice": os.nice(0),
            "load_average": os.getloadavg()[0],
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "amp": a.amp,
        }
        a.out.write_text(json.dumps({"settings": settings, "data": data, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
