"""Configurable multilingual model (CMM, Zhou et al. 2022): per-language experts inside the streaming encoder.

Dimension letters: B batch, T frames, D model dim, L languages (the CMM's, not layers here), R expert rank.

A CMM encoder layer is a universal module (the ordinary Conformer layer, shared by all languages) plus one
language-specific expert per language, mixed per frame with weights over the languages the user says are spoken:

    y = conformer_layer(x) + sum_l w_l(x) * expert_l(norm(x))
    w = softmax(gate(norm(x)) masked to the selected languages)       # (B, T, L), 0 outside the selection

An expert is a linear map of the layer's (layer-normed) input: D -> D (`rank` 0, the paper's linear layer) or the
low-rank D -> R -> D. The gate is one linear layer D -> L per frame. Everything is per frame, so the experts add no
streaming state: `forward` with chunk masks, `step` and `stream` stay equal with them. The experts' last projections
start at zero, so a fresh CMM encoder computes exactly the plain encoder (a plain checkpoint warm-starts one).

The selection is a mask `(B, L)`, 1 (or True) for a selected language; None selects all, the default. Masked
languages get weight exactly 0 (their logits are pushed down by `MASKED_LOGIT`, not -inf: an exported graph given an
empty selection then mixes all languages evenly instead of returning NaN). Training draws a random selection per
utterance that always holds its spoken language (`sample_language_masks`), so the model learns every combination.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
from torch import nn

from models.nn.norm import LayerNorm

MASKED_LOGIT = 1e4  # subtracted from an unselected language's gate logit: exp(-1e4) is 0 in float32 and bfloat16


def language_mask(selected: Sequence[str], languages: Sequence[str]) -> torch.Tensor:
    """`(L,)` float mask of `selected` among the CMM's `languages` (empty `selected`: all of them).

    Raises:
        ValueError: a selected language the model has no expert for.
    """
    if bad := [x for x in selected if x not in languages]:
        raise ValueError(f"no expert for language(s) {bad}; the model has {list(languages)}")
    if not selected:
        return torch.ones(len(languages))
    return torch.tensor([1.0 if lang in selected else 0.0 for lang in languages])


def sample_language_masks(spoken: Sequence[int], num_languages: int, rng: random.Random) -> torch.Tensor:
    """The training selections of a batch: per utterance a random subset of the L languages that holds its spoken one.

    The subset size k is uniform in 1..L; the k-1 others are a uniform draw from the remaining languages. So each
    size is trained alike, the spoken language alone (k = 1) and all languages (k = L, the default at inference)
    among them.

    Args:
        spoken: `(B,)` the index of each utterance's spoken language among the L.
        num_languages: L.
        rng: the training loop's random generator.

    Returns:
        `(B, L)` float mask, 1 for selected.
    """
    out = torch.zeros(len(spoken), num_languages)
    for b, s in enumerate(spoken):
        assert 0 <= s < num_languages, (s, num_languages)
        k = rng.randint(1, num_languages)
        others = rng.sample([i for i in range(num_languages) if i != s], k - 1)
        out[b, [s, *others]] = 1.0
    return out


class LanguageExperts(nn.Module):
    """The language-specific part of one CMM layer: `(B, T, D)` layer input -> `(B, T, D)` to add to its output.

    Args:
        d_model: D.
        num_languages: L.
        rank: R of the low-rank experts D -> R -> D; 0: a full D -> D linear map per language.
    """

    def __init__(self, d_model: int, num_languages: int, rank: int = 0) -> None:
        super().__init__()
        self.num_languages, self.rank, self.d = num_languages, rank, d_model
        self.norm = LayerNorm(d_model)
        self.gate = nn.Linear(d_model, num_languages)
        inner = rank or d_model
        # All languages' first maps side by side as one D -> L*R matrix: one MatMul (which int8 export quantizes).
        self.down = nn.Linear(d_model, num_languages * inner)
        if rank:
            self.up = nn.Parameter(torch.zeros(num_languages * rank, d_model))  # (L*R, D), stacked per language
            self.up_bias = nn.Parameter(torch.zeros(num_languages, d_model))  # (L, D)
        else:
            nn.init.zeros_(self.down.weight)
            nn.init.zeros_(self.down.bias)

    def weights(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The mixing weights `(B, T, L)` of normed input `(B, T, D)` under the selection `(B, L)` (None: all)."""
        logits = self.gate(h)  # (B, T, L)
        if mask is not None:
            logits = logits - (1.0 - mask.to(logits.dtype))[:, None, :] * MASKED_LOGIT
        return logits.softmax(-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x `(B, T, D)`, mask `(B, L)` (None: every language) -> `(B, T, D)`."""
        B, T = x.shape[:2]
        h = self.norm(x)
        w = self.weights(h, mask)  # (B, T, L)
        z = self.down(h).view(B, T, self.num_languages, -1)  # (B, T, L, R) or (B, T, L, D)
        if not self.rank:
            return (w[..., None] * z).sum(2)
        # sum_l w_l (z_l @ up_l + b_l) = (w * z) flattened @ up + w @ up_bias
        return (w[..., None] * z).reshape(B, T, -1) @ self.up + w @ self.up_bias


def expert_layers(num_layers: int, every: int) -> list[int]:
    """The layers that carry experts: every `every`-th (the last of each group of `every`, so `every` = L: the top)."""
    return [i for i in range(num_layers) if (i + 1) % every == 0]
