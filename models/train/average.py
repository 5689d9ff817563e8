"""Checkpoint averaging: the element-wise mean of the weights of a run's last few checkpoints.

    parley train ... --exp-dir exp/en --max-steps 7500 --keep-steps 6000 7000   # step-6000.pt, step-7000.pt
    python -m models.train.average --checkpoints exp/en/step-6000.pt exp/en/step-7000.pt exp/en/last.pt \
        --out exp/en/avg.pt

Late in a run the weights wander around a minimum from step to step; their mean often sits closer to it than any one
of them (icefall's `--avg`, Izmailov et al. 2018's SWA). The checkpoints must share a `ModelConfig` (one run, or runs
of one model). Floating-point tensors are averaged; integer ones (counters) are taken from the last checkpoint, as is
everything else the file holds (configs, training state, tokenizer), so the result evaluates, exports and warm-starts
like any checkpoint. It carries no optimizer state (`--init` from it, not a resume) and lists what was averaged under
"averaged" (path and step of each, and each run's data, hours and `--init`, which the model card lists).

A warm start recovered from a bundle (models/train/warmstart.py: weights, no `ModelConfig`) may be averaged with a run
that started from it (a soup of a model and its fine-tune, Wortsman et al. 2022):

    python -m models.train.average --checkpoints exp/en-open/init-h.pt exp/en-open/train-w-all/last.pt --out soup.pt

Its tensors must be the run's (names and shapes); what it lacks (the heads only training uses: the pruned loss's
simple joiner, CTC) is the mean of the checkpoints that have it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from models.nn.checkpoint import write_checkpoint


def average_checkpoints(paths: Sequence[str | os.PathLike]) -> dict:
    """The checkpoint whose weights are the mean of `paths`' (see the module docstring).

    Raises:
        ValueError: fewer than two paths, or checkpoints of different models (config, tensor names or shapes).
    """
    if len(paths) < 2:
        raise ValueError("averaging needs at least two checkpoints")
    cks = [torch.load(p, map_location="cpu", weights_only=False) for p in paths]
    last = cks[-1]
    if "model_config" not in last:
        raise ValueError(f"{paths[-1]}: a warm start has no model config; put a training run's checkpoint last")
    shapes = {k: v.shape for k, v in last["model"].items()}
    for p, ck in zip(paths[:-1], cks[:-1], strict=True):
        held = {k: v.shape for k, v in ck["model"].items()}
        if "model_config" not in ck and "from_bundle" in ck:  # a warm start: a subset of the run's tensors
            if any(shapes.get(k) != v for k, v in held.items()):
                raise ValueError(f"{p}: other tensors (names or shapes) than {paths[-1]}'s")
            continue
        if ck.get("model_config") != last["model_config"]:
            raise ValueError(f"{p}: another model's config than {paths[-1]}'s")
        if held != shapes:
            raise ValueError(f"{p}: other tensors (names or shapes) than {paths[-1]}'s")
    weights = {}
    for name, tensor in last["model"].items():
        if tensor.is_floating_point():
            have = [ck["model"][name] for ck in cks if name in ck["model"]]
            total = torch.zeros_like(tensor, dtype=torch.float64)
            for t in have:
                total += t.to(torch.float64)
            weights[name] = (total / len(have)).to(tensor.dtype)
        else:
            weights[name] = tensor.clone()
    averaged = [_ingredient(p, ck) for p, ck in zip(paths, cks, strict=True)]
    return {**last, "model": weights, "optimizer": {}, "averaged": averaged}


def _ingredient(path: str | os.PathLike, ck: dict) -> dict:
    """What the averaged checkpoint records of one of its checkpoints: path and step, and for a training run its
    train manifests, hours and `--init` (the model card lists them); for a warm start, the bundle it came from."""
    state, cfg = ck.get("state", {}), ck.get("train_config", {})
    entry = {"path": str(path), "step": int(state.get("step", -1))}
    if "from_bundle" in ck:
        return entry | {"from_bundle": Path(ck["from_bundle"]).name}
    if ck.get("averaged"):  # itself a mean: what it averaged, not its last checkpoint's run
        return entry | {"averaged": ck["averaged"]}
    return entry | {
        "train": list(cfg.get("train", [])),
        "train_hours": round(state.get("train_seconds", 0.0) / 3600, 3),
        "init": str(cfg.get("init", "")),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoints", nargs="+", required=True, help="checkpoints of one model, oldest first")
    p.add_argument("--out", type=Path, required=True, help="the averaged checkpoint to write")
    a = p.parse_args(argv)
    missing = [c for c in a.checkpoints if not Path(c).is_file()]
    if missing:
        p.error(f"no checkpoint at {', '.join(missing)}")
    if a.out.resolve() in {Path(c).resolve() for c in a.checkpoints}:
        p.error("--out must not be one of the checkpoints")
    try:
        ck = average_checkpoints(a.checkpoints)
    except ValueError as e:
        p.error(str(e))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    write_checkpoint(a.out, ck)
    steps = ", ".join(str(x["step"]) for x in ck["averaged"])
    print(f"{a.out}: the mean of {len(ck['averaged'])} checkpoints (steps {steps})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
