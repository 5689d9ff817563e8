"""A token LSTM LM from plain text (models/nn/lstm_lm.py), exported to ONNX in sherpa-onnx's RNN-LM interface.

`parley lm train --type lstm ...` calls `train_lstm` and `export_onnx` (models/train/lm_ngram.py has the command).
The ONNX file carries sherpa-onnx's metadata (`num_layers`, `hidden_size`, `sos_id`) and Parley's (`model_type`,
`vocab_size`, `boundary_id`), so the same file is fused by Parley's beam search (server/lm_rnn.py) and by
sherpa-onnx's (`lm=..., lm_shallow_fusion=True`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from models.nn.lstm_lm import LstmLM, LstmLmConfig, SherpaRnnLm
from models.train.dataset import length_batches

_NAMES = ("x", "h", "c", "log_probs", "next_h", "next_c")  # sherpa-onnx's RNN-LM inputs and outputs, in order


def _batches(sentences: Sequence[Sequence[int]], max_tokens: int, rng: random.Random) -> list[list[int]]:
    return length_batches([len(s) + 1 for s in sentences], max_tokens, rng)  # +1: </s>


def _collate(sentences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """`(B, U)` padded tokens and `(B,)` lengths."""
    u = max(1, max(len(s) for s in sentences))
    x = torch.zeros(len(sentences), u, dtype=torch.long)
    for b, s in enumerate(sentences):
        x[b, : len(s)] = torch.tensor(s, dtype=torch.long)
    return x, torch.tensor([len(s) for s in sentences])


@torch.no_grad()
def perplexity(lm: LstmLM, sentences: Sequence[Sequence[int]], max_tokens: int = 4000) -> float:
    """exp of the mean negative log-likelihood per token (</s> included)."""
    lm.eval()
    total, n = 0.0, 0
    for idx in _batches(sentences, max_tokens, random.Random(0)):
        loss, k = lm.sentence_loss(*_collate([sentences[i] for i in idx]))
        total, n = total + float(loss), n + k
    lm.train()
    return math.exp(total / max(n, 1))


def train_lstm(
    sentences: Sequence[Sequence[int]],
    cfg: LstmLmConfig,
    steps: int = 2000,
    lr: float = 2e-3,
    max_tokens: int = 4000,
    seed: int = 0,
    progress: bool = True,
) -> tuple[LstmLM, dict]:
    """Trains on token sequences (no boundary ids inside); returns the model (eval mode) and a training summary."""
    if not sentences:
        raise ValueError("no sentences to train on")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    lm = LstmLM(cfg)
    opt = torch.optim.AdamW(lm.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    from tqdm import tqdm

    t0, step = time.time(), 0
    bar = tqdm(total=steps, desc="lstm lm", dynamic_ncols=True, disable=not progress)
    while step < steps:
        for idx in _batches(sentences, max_tokens, rng):
            loss, n = lm.sentence_loss(*_collate([sentences[i] for i in idx]))
            opt.zero_grad()
            (loss / n).backward()
            torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            bar.update(1)
            bar.set_postfix(nll=f"{loss.item() / n:.3f}")
            if step >= steps:
                break
    bar.close()
    lm.eval()
    return lm, {"steps": steps, "seconds": round(time.time() - t0, 1), "parameters": _count(lm)}


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def export_onnx(lm: LstmLM, path: Path, meta: dict[str, str]) -> None:
    """Writes the sherpa-onnx RNN-LM interface (see models/nn/lstm_lm.SherpaRnnLm) with its metadata."""
    from export.onnx_export import OPSET, add_metadata

    lm.eval()
    h, c = lm.init_state(1)
    x = torch.full((1, 1), lm.cfg.boundary_id, dtype=torch.long)
    torch.onnx.export(
        SherpaRnnLm(lm).eval(),
        (x, h, c),
        str(path),
        opset_version=OPSET,
        dynamo=False,
        input_names=list(_NAMES[:3]),
        output_names=list(_NAMES[3:]),
        dynamic_axes={name: {1 if name in ("h", "c", "next_h", "next_c") else 0: "N"} for name in _NAMES},
    )
    add_metadata(
        path,
        {
            "model_type": "parley-lstm-lm",
            "num_layers": str(lm.cfg.num_layers),
            "hidden_size": str(lm.cfg.hidden_size),
            "sos_id": str(lm.cfg.boundary_id),
            "boundary_id": str(lm.cfg.boundary_id),
            "vocab_size": str(lm.cfg.vocab_size),
            **meta,
        },
    )
