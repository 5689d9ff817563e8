"""A token LSTM language model over a transducer head's vocabulary, for shallow fusion.

Shapes: B sentences, U tokens, E embedding dim, H hidden size, L layers, V vocabulary. The head's blank id stands for
the sentence boundary, as in the n-gram LMs (server/lm.py): a sentence is read from <s> = blank and its last token
predicts </s> = blank. State is explicit, as the ONNX interface that sherpa-onnx's RNN-LM reads: `(h, c)`, each
`(L, B, H)`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class LstmLmConfig:
    vocab_size: int
    embed_dim: int = 256
    hidden_size: int = 384
    num_layers: int = 2
    dropout: float = 0.1
    boundary_id: int = 0  # <s> and </s>: the head's blank

    def to_dict(self) -> dict:
        return asdict(self)


class LstmLM(nn.Module):
    def __init__(self, cfg: LstmLmConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.lstm = nn.LSTM(cfg.embed_dim, cfg.hidden_size, cfg.num_layers, batch_first=True, dropout=cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.hidden_size, cfg.vocab_size)

    def init_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero `(h, c)`, each `(L, B, H)`."""
        z = torch.zeros(self.cfg.num_layers, batch, self.cfg.hidden_size)
        return z, z.clone()

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`x (B, U)` token ids, state `(L, B, H)` x2 -> log-probabilities `(B, U, V)` of the token after each, new
        state."""
        y, (h, c) = self.lstm(self.drop(self.embed(x)), (h, c))  # (B, U, H)
        return torch.log_softmax(self.out(self.drop(y)), dim=-1), h, c

    def sentence_loss(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Summed negative log-likelihood of padded sentences `tokens (B, U)` with `lengths (B,)` (</s> included) and
        the number of predicted tokens."""
        B, U = tokens.shape
        bos = torch.full((B, 1), self.cfg.boundary_id, dtype=tokens.dtype)
        inputs = torch.cat([bos, tokens], dim=1)  # (B, U+1): <s> w1 .. wU
        targets = torch.cat([tokens, bos], dim=1)  # (B, U+1): w1 .. wU </s> (the pad positions are masked)
        targets[torch.arange(B), lengths] = self.cfg.boundary_id
        logp, _, _ = self(inputs, *self.init_state(B))  # (B, U+1, V)
        mask = torch.arange(U + 1)[None] <= lengths[:, None]  # (B, U+1)
        nll = -logp.gather(-1, targets[..., None])[..., 0]
        return (nll * mask).sum(), int(mask.sum())


class SherpaRnnLm(nn.Module):
    """sherpa-onnx's RNN-LM interface: inputs `x (N, 1)`, `h`, `c` `(L, N, H)`; outputs `log_probs (N, V)` of the
    next token, `next_h`, `next_c` (sherpa-onnx's shallow fusion indexes `log_probs` by the token it then feeds)."""

    def __init__(self, lm: LstmLM) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        logp, h, c = self.lm(x, h, c)  # (N, 1, V)
        return logp[:, -1], h, c
