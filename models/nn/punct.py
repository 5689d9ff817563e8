"""The punctuation-and-casing network: a small bidirectional Transformer over subword pieces of a final's text.

Shapes: B sentences, N pieces, D model dim. Input `(B, N)` piece ids of the lowercase, unpunctuated words; outputs
two `(B, N, 4)` logits: the mark after the word that a piece ends (MARKS of models/data/punct.py) and the case of the
word that a piece starts (CASES). Finals are whole segments, so attention sees the whole sentence both ways.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

PAD = 0  # piece id used for padding: sentencepiece's <unk> is never a label position's only evidence


@dataclass
class PunctConfig:
    vocab_size: int = 2000
    d_model: int = 160
    layers: int = 2
    heads: int = 4
    ff_dim: int = 480
    dropout: float = 0.1
    max_len: int = 256  # pieces per call; the runtime cuts longer finals into windows
    n_marks: int = 4
    n_cases: int = 4

    def to_dict(self) -> dict:
        return asdict(self)


class _Layer(nn.Module):
    """Pre-norm self-attention and feed-forward, written out (no fused kernels) so ONNX export is plain MatMuls."""

    def __init__(self, cfg: PunctConfig) -> None:
        super().__init__()
        self.h = cfg.heads
        self.scale = 1.0 / math.sqrt(cfg.d_model // cfg.heads)
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.ff = nn.Sequential(nn.Linear(cfg.d_model, cfg.ff_dim), nn.GELU(), nn.Linear(cfg.ff_dim, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """`x (B, N, D)`, `bias (B, 1, 1, N)` (0 for pieces, -inf-like for padding) -> `(B, N, D)`."""
        B, N, D = x.shape
        qkv = self.qkv(self.norm1(x)).view(B, N, 3, self.h, D // self.h).permute(2, 0, 3, 1, 4)  # (3, B, H, N, D/H)
        q, k, v = qkv.unbind(0)
        att = torch.softmax(q @ k.transpose(-1, -2) * self.scale + bias, dim=-1)  # (B, H, N, N)
        y = (att @ v).transpose(1, 2).reshape(B, N, D)
        x = x + self.drop(self.out(y))
        return x + self.drop(self.ff(self.norm2(x)))


class PunctModel(nn.Module):
    def __init__(self, cfg: PunctConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.layers = nn.ModuleList(_Layer(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.marks = nn.Linear(cfg.d_model, cfg.n_marks)
        self.cases = nn.Linear(cfg.d_model, cfg.n_cases)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`tokens (B, N)`, `lengths (B,)` (None: no padding) -> mark logits `(B, N, 4)`, case logits `(B, N, 4)`."""
        B, N = tokens.shape
        positions = torch.arange(N, device=tokens.device)
        x = self.embed(tokens) + self.pos(positions)[None]  # (B, N, D)
        if lengths is None:
            bias = torch.zeros(B, 1, 1, N, dtype=x.dtype, device=x.device)
        else:
            pad = positions[None] >= lengths[:, None]  # (B, N)
            bias = (pad.to(x.dtype) * -1e4)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, bias)
        x = self.norm(x)
        return self.marks(x), self.cases(x)
