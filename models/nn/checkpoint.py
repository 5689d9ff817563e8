"""Checkpoints: the file `parley train` writes, and what evaluation, export and warm starts read back.

A checkpoint is self-describing: the model's `ModelConfig` travels with its weights, so

    model, ck = load_model("exp/en/best.pt")        # eval mode; ck["train_config"], ck["tokenizer"], ck["state"]
    n, fresh = init_from(model, "exp/en/best.pt")   # the tensors of matching name and shape, into another model

Keys: "model" (state dict), "model_config" (`ModelConfig.to_dict()`), "train_config" (the recipe as a dict),
"optimizer", "state" (step, epoch, batch, best_wer, log, train_seconds), "tokenizer" (the sentencepiece model's path)
and, for a multi-head model, "tokenizers" (output language -> path). Weights recovered from a bundle
(models/train/warmstart.py) hold only "model" and "from_bundle": they serve `init_from`, not `load_model`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from models.nn.transducer import ModelConfig, Transducer

# The modules of a single-head model that a multi-head model keeps per head (`heads.<name>.<module>`).
_SINGLE_HEAD_MODULES = ("decoder.", "joiner.", "ctc_output.")


def save_checkpoint(
    path: str | os.PathLike,
    model: Transducer,
    train_config: dict,
    tokenizer: str,
    state: dict | None = None,
    optimizer: dict | None = None,
    **extra,
) -> Path:
    """Writes a checkpoint atomically (a temporary file renamed); `extra` adds top-level keys (e.g. "tokenizers").

    Args:
        path: the file to write.
        model: its weights and `ModelConfig`.
        train_config: the recipe (`dataclasses.asdict(TrainConfig)`).
        tokenizer: the sentencepiece model of a single-head model ("" for a multi-head one).
        state: the training state (default: that of step 0).
        optimizer: the optimizer's state dict (default: none).
    """
    path = Path(path)
    state = state or {"step": 0, "epoch": 0, "batch": 0, "best_wer": float("inf"), "log": [], "train_seconds": 0.0}
    checkpoint = {
        "model": model.state_dict(),
        "model_config": model.cfg.to_dict(),
        "train_config": train_config,
        "optimizer": optimizer or {},
        "state": state,
        "tokenizer": tokenizer,
        **extra,
    }
    return write_checkpoint(path, checkpoint)


def write_checkpoint(path: str | os.PathLike, checkpoint: dict) -> Path:
    """Writes a checkpoint dict as it is, atomically (a temporary file renamed): a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)
    return path


def load_model(path: str | os.PathLike, device: str = "cpu") -> tuple[Transducer, dict]:
    """Rebuilds a model from a checkpoint (its config is inside); returns the model in eval mode and the checkpoint."""
    ck = torch.load(path, map_location=device, weights_only=False)
    model = Transducer(ModelConfig.from_dict(ck["model_config"]))
    model.load_state_dict(ck["model"])
    return model.eval(), ck


def init_from(model: nn.Module, path: str | os.PathLike, head: str = "") -> tuple[int, list[str]]:
    """Copies the tensors of checkpoint `path` whose name and shape match into `model` (feature statistics
    included); returns how many were copied and the names left as initialized (e.g. a new head, another vocabulary).

    With `head`, a single-head checkpoint's decoder, joiner and CTC layer go to that head of a multi-head model
    (e.g. an English model's head becomes the "en" head of an SM² model)."""
    src = torch.load(path, map_location="cpu", weights_only=False)["model"]
    if head:
        src = {(f"heads.{head}.{k}" if k.startswith(_SINGLE_HEAD_MODULES) else k): v for k, v in src.items()}
    own = model.state_dict()
    take = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(take, strict=False)
    return len(take), sorted(k for k in own if k not in take)
