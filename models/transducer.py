"""The Transformer-Transducer: streaming encoder, stateless prediction network, joiner, and the training loss.

Dimension letters: B batch, T encoder frames, U target tokens, D encoder dim, E decoder dim, J joiner dim,
V vocabulary (blank is 0).

    model = Transducer(ModelConfig(vocab_size=256))
    loss, info = model(feats, feat_lens, targets, target_lens, chunk=8, left_chunks=4)

A checkpoint stores `ModelConfig.to_dict()`; `Transducer.from_config_dict(d)` rebuilds the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from models.encoder import EncoderConfig, StreamingConformer
from models.rnnt_loss import rnnt_loss

BLANK = 0


@dataclass
class ModelConfig:
    """Everything needed to rebuild a Transducer."""

    vocab_size: int
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder_dim: int = 256
    context_size: int = 2
    joiner_dim: int = 320
    ctc_weight: float = 0.2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        d["encoder"] = EncoderConfig(**d.get("encoder", {}))
        return cls(**d)


class Decoder(nn.Module):
    """Stateless prediction network: embedding of the last `context_size` tokens + a 1-D conv over them.

    `(B, U, context_size)` token ids -> `(B, U, E)`. Blank (0) stands for "no token yet" at the start.
    """

    def __init__(self, vocab_size: int, dim: int, context_size: int) -> None:
        super().__init__()
        self.context_size = context_size
        self.embedding = nn.Embedding(vocab_size, dim)
        self.conv = nn.Conv1d(dim, dim, context_size, groups=dim // 4, bias=False) if context_size > 1 else None

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """y `(N, context_size)` -> `(N, E)`."""
        e = self.embedding(y)  # (N, ctx, E)
        e = self.conv(e.transpose(1, 2)).squeeze(-1) if self.conv is not None else e[:, -1]  # (N, E)
        return F.relu(e)

    def contexts(self, targets: torch.Tensor) -> torch.Tensor:
        """Every decoder context of a target sequence: `(B, U)` -> `(B, U+1, context_size)`.

        Context u holds the `context_size` tokens before position u, blank-padded on the left.
        """
        B = targets.shape[0]
        padded = torch.cat([targets.new_full((B, self.context_size), BLANK), targets], dim=1)  # (B, ctx+U)
        return padded.unfold(1, self.context_size, 1)  # (B, U+1, ctx)


class Joiner(nn.Module):
    """logits = out(tanh(enc_proj(enc) + dec_proj(dec))). The projections are applied outside `forward`."""

    def __init__(self, encoder_dim: int, decoder_dim: int, joiner_dim: int, vocab_size: int) -> None:
        super().__init__()
        self.encoder_proj = nn.Linear(encoder_dim, joiner_dim)
        self.decoder_proj = nn.Linear(decoder_dim, joiner_dim)
        self.output = nn.Linear(joiner_dim, vocab_size)

    def forward(self, enc: torch.Tensor, dec: torch.Tensor) -> torch.Tensor:
        """Projected enc `(..., J)` + projected dec `(..., J)` (broadcast) -> logits `(..., V)`."""
        return self.output(torch.tanh(enc + dec))


class Transducer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = StreamingConformer(cfg.encoder)
        self.decoder = Decoder(cfg.vocab_size, cfg.decoder_dim, cfg.context_size)
        self.joiner = Joiner(cfg.encoder.d_model, cfg.decoder_dim, cfg.joiner_dim, cfg.vocab_size)
        self.ctc_output = nn.Linear(cfg.encoder.d_model, cfg.vocab_size) if cfg.ctc_weight > 0 else None

    @classmethod
    def from_config_dict(cls, d: dict) -> Transducer:
        return cls(ModelConfig.from_dict(d))

    def forward(
        self,
        feats: torch.Tensor,
        feat_lens: torch.Tensor,
        targets: torch.Tensor,
        target_lens: torch.Tensor,
        chunk: int = -1,
        left_chunks: int = -1,
    ) -> tuple[torch.Tensor, dict]:
        """Training loss, averaged over the batch.

        Args:
            feats: `(B, T_in, 80)`; feat_lens: `(B,)`.
            targets: `(B, U)` token ids, padded with 0; target_lens: `(B,)`.
            chunk, left_chunks: the attention limits of this batch (see `StreamingConformer.forward`).

        Returns:
            the loss and a dict of floats for logging (rnnt, ctc, frames).
        """
        enc, enc_lens = self.encoder(feats, feat_lens, chunk, left_chunks)  # (B, T, D)
        info: dict = {"frames": int(enc_lens.sum())}
        loss = enc.new_zeros(())
        if self.cfg.ctc_weight < 1.0:  # ctc_weight 1 is CTC-only encoder pre-training: no lattice at all
            dec = self.decoder(self.decoder.contexts(targets).reshape(-1, self.cfg.context_size))
            dec = dec.view(targets.shape[0], targets.shape[1] + 1, -1)  # (B, U+1, E)
            logits = self.joiner(self.joiner.encoder_proj(enc)[:, :, None], self.joiner.decoder_proj(dec)[:, None])
            rnnt = rnnt_loss(logits, targets, enc_lens, target_lens, blank=BLANK, reduction="none")  # (B,)
            loss = (1 - self.cfg.ctc_weight) * rnnt.mean()
            info["rnnt"] = float(rnnt.detach().mean())
        if self.ctc_output is not None:
            lp = self.ctc_output(enc).log_softmax(-1).transpose(0, 1)  # (T, B, V)
            ctc = F.ctc_loss(lp, targets, enc_lens, target_lens, blank=BLANK, reduction="none", zero_infinity=True)
            loss = loss + self.cfg.ctc_weight * ctc.mean()
            info["ctc"] = float(ctc.detach().mean())
        return loss, info
