"""Streaming language identification on the encoder output: per-frame logits averaged over the frames so far.

Dimension letters: B batch, T encoder frames, D encoder dim, L languages.

    lid = StreamingLID(d_model=144, languages=6)
    scores = lid(enc)                            # (B, T, L): at frame t, the mean of frame logits 0..t
    loss = lid.loss(enc, enc_lens, targets)      # cross-entropy of every prefix's decision

The decision at frame t uses only encoder frames <= t, so it can be taken while the audio streams in; it is the
argmax of `scores[:, t]` (restricted to a subset of languages by masking the others, see `restricted_argmax`).
Averaging logits rather than probabilities makes the running decision a product of per-frame experts: a few
confident frames do not outvote many moderately sure ones. The server keeps the same running mean with numpy
(server/lid.py) on the per-frame logits that `lid.onnx` computes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IGNORE = -1  # a target language id meaning "not known": no LID loss for that utterance


def causal_mean(x: torch.Tensor) -> torch.Tensor:
    """Running mean over time: `(B, T, L)` -> `(B, T, L)`, out[:, t] = mean(x[:, : t + 1])."""
    counts = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)  # (T,)
    return x.cumsum(dim=1) / counts[None, :, None]


class StreamingLID(nn.Module):
    """A per-frame classifier (linear, or one hidden layer of `hidden` units) over L languages.

    Args:
        d_model: D, the encoder output width (unprojected).
        languages: L, the number of languages it tells apart.
        hidden: 0 for a linear layer per frame, else the width of one ReLU hidden layer.
    """

    def __init__(self, d_model: int, languages: int, hidden: int = 0) -> None:
        super().__init__()
        if languages < 2:
            raise ValueError(f"a language identifier needs at least 2 languages, got {languages}")
        if hidden > 0:
            self.net: nn.Module = nn.Sequential(nn.Linear(d_model, hidden), nn.ReLU(), nn.Linear(hidden, languages))
        else:
            self.net = nn.Linear(d_model, languages)

    def frame_logits(self, enc: torch.Tensor) -> torch.Tensor:
        """enc `(B, T, D)` -> per-frame logits `(B, T, L)` (what lid.onnx exports)."""
        return self.net(enc)

    def forward(self, enc: torch.Tensor) -> torch.Tensor:
        """enc `(B, T, D)` -> running-mean logits `(B, T, L)`; frame t depends on frames <= t only."""
        return causal_mean(self.frame_logits(enc))

    def loss(self, enc: torch.Tensor, enc_lens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the decision at every valid frame, averaged per utterance, then over the batch.

        Every prefix counts alike, so the identifier learns to decide early, not only at the end of an utterance.

        Args:
            enc: `(B, T, D)` encoder output; enc_lens: `(B,)` valid frames.
            targets: `(B,)` language ids; `IGNORE` for utterances without one.

        Returns:
            a scalar (0 when no utterance has a target).
        """
        B, T, _ = enc.shape
        scores = self(enc).float()  # (B, T, L), fp32 under autocast too
        tgt = targets[:, None].expand(B, T)
        ce = F.cross_entropy(scores.transpose(1, 2), tgt.clamp(min=0), reduction="none")  # (B, T)
        valid = (torch.arange(T, device=enc.device)[None, :] < enc_lens[:, None]) & (tgt != IGNORE)
        per_utt = (ce * valid).sum(1) / valid.sum(1).clamp(min=1)  # (B,)
        has = valid.any(1)
        return per_utt[has].mean() if bool(has.any()) else enc.new_zeros(())


def restricted_argmax(scores: torch.Tensor, allowed: list[int] | None = None) -> torch.Tensor:
    """Argmax over the last axis among the `allowed` indices only (None: all). `(..., L)` -> `(...)` int64."""
    if allowed is None:
        return scores.argmax(-1)
    mask = torch.full((scores.shape[-1],), float("-inf"), device=scores.device)
    mask[allowed] = 0.0
    return (scores + mask).argmax(-1)
