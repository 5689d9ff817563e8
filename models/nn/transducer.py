"""The Transformer-Transducer: streaming encoder, stateless prediction network, joiner, and the training loss.

Dimension letters: B batch, T encoder frames, U target tokens, D encoder dim, E decoder dim, J joiner dim,
V vocabulary (blank is 0), L languages of the language identifier.

    model = Transducer(ModelConfig(vocab_size=256))
    loss, info = model(feats, feat_lens, targets, target_lens, chunk=8, left_chunks=4)

    # the pruned loss on the modified topology (at most one symbol per frame; decoded so too)
    model = Transducer(ModelConfig(vocab_size=500, loss="pruned", prune_range=5, rnnt_type="modified"))
    loss, info = model(feats, feat_lens, targets, target_lens, simple_scale=0.5, pruned_scale=1.0)

A *head* is a prediction network, a joiner and an optional CTC layer for one output language. A single-head model
(`vocab_size`) keeps them as `model.decoder`, `model.joiner`, `model.ctc_output`. A multi-head model (SM²: one
shared encoder, a head per output language, `heads={"en": 256, "zh": 600}`) keeps them in `model.heads[language]`,
and may carry a streaming language identifier over `lid_languages` (models/nn/lid.py); its forward takes the head to
train and the utterances' language ids:

    model = Transducer(ModelConfig(heads={"en": 256, "de": 256}, lid_languages=["en", "de"]))
    loss, info = model(feats, feat_lens, targets, target_lens, head="en", languages=lang_ids, lid_weight=0.1)

`model.head(name)` gives the modules of either kind alike. A checkpoint stores `ModelConfig.to_dict()`;
`Transducer.from_config_dict(d)` rebuilds the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from models.nn.encoder import EncoderConfig, StreamingConformer
from models.nn.lid import StreamingLID
from models.train.pruned_rnnt import DEFAULT_PRUNE_RANGE, pruned_rnnt_loss
from models.train.rnnt_loss import IMPOSSIBLE, RNNT_TYPES, rnnt_loss
from parley.contract import BLANK_ID, STANDARD_MAX_SYMBOLS_PER_FRAME

LOSSES = ("full", "pruned")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a Transducer.

    Either `vocab_size` (one head) or `heads` (output language -> vocabulary size, one head each) is given.

    Raises:
        ValueError: both or neither of them, or a language identifier without a multi-head model.
    """

    vocab_size: int = 0
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder_dim: int = 256
    context_size: int = 2
    joiner_dim: int = 320
    ctc_weight: float = 0.2
    heads: dict[str, int] = field(default_factory=dict)
    lid_languages: list[str] = field(default_factory=list)  # source languages the LID tells apart; empty: none
    lid_hidden: int = 0  # 0: a linear LID per frame; else one hidden layer of this width
    # The transducer topology: "standard" (any number of labels per frame) or "modified" (at most one per frame,
    # trained and decoded so: sherpa-onnx's searches emit at most one).
    rnnt_type: str = "standard"
    # "full": the joiner on the whole (T, U+1) lattice; "pruned": on bands of `prune_range` rows that a simple
    # additive joiner proposes (models/train/pruned_rnnt.py; adds the simple joiner's two linear layers to each joiner).
    loss: str = "full"
    prune_range: int = DEFAULT_PRUNE_RANGE

    def __post_init__(self) -> None:
        if bool(self.heads) == (self.vocab_size > 0):
            raise ValueError(
                f"give vocab_size (a single-head model) or heads (multi-head), not both or neither: "
                f"vocab_size={self.vocab_size}, heads={self.heads}"
            )
        if any(v <= BLANK_ID + 1 for v in self.heads.values()):
            raise ValueError(f"every head needs a vocabulary larger than blank: {self.heads}")
        if self.lid_languages and not self.heads:
            raise ValueError("a language identifier needs a multi-head model (heads=...)")
        if len(set(self.lid_languages)) != len(self.lid_languages):
            raise ValueError(f"repeated LID languages: {self.lid_languages}")
        if self.rnnt_type not in RNNT_TYPES:
            raise ValueError(f"rnnt_type {self.rnnt_type!r}: choose from {', '.join(RNNT_TYPES)}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss {self.loss!r}: choose from {', '.join(LOSSES)}")
        if self.prune_range < 2:
            raise ValueError(f"prune_range {self.prune_range}: a band needs at least 2 rows")

    @property
    def multi_head(self) -> bool:
        return bool(self.heads)

    @property
    def max_symbols_per_frame(self) -> int:
        """Greedy search's default limit: 1 for the modified topology (what it was trained with)."""
        return 1 if self.rnnt_type == "modified" else STANDARD_MAX_SYMBOLS_PER_FRAME

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
        padded = torch.cat([targets.new_full((B, self.context_size), BLANK_ID), targets], dim=1)  # (B, ctx+U)
        return padded.unfold(1, self.context_size, 1)  # (B, U+1, ctx)


class Joiner(nn.Module):
    """logits = out(tanh(enc_proj(enc) + dec_proj(dec))). The projections are applied outside `forward`.

    With `simple`, it also has the pruned loss's simple joiner, `simple_am_proj(enc) + simple_lm_proj(dec)`: used in
    training only (never exported).
    """

    def __init__(
        self, encoder_dim: int, decoder_dim: int, joiner_dim: int, vocab_size: int, simple: bool = False
    ) -> None:
        super().__init__()
        self.encoder_proj = nn.Linear(encoder_dim, joiner_dim)
        self.decoder_proj = nn.Linear(decoder_dim, joiner_dim)
        self.output = nn.Linear(joiner_dim, vocab_size)
        self.simple_am_proj = nn.Linear(encoder_dim, vocab_size) if simple else None
        self.simple_lm_proj = nn.Linear(decoder_dim, vocab_size) if simple else None

    def forward(self, enc: torch.Tensor, dec: torch.Tensor) -> torch.Tensor:
        """Projected enc `(..., J)` + projected dec `(..., J)` (broadcast) -> logits `(..., V)`."""
        return self.output(torch.tanh(enc + dec))


class Head(NamedTuple):
    """The modules of one output language, as `Transducer.head` hands them out."""

    decoder: Decoder
    joiner: Joiner
    ctc_output: nn.Linear | None


class TransducerHead(nn.Module):
    """A multi-head model's head for one output language of vocabulary V: decoder, joiner, optional CTC layer."""

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.decoder = Decoder(vocab_size, cfg.decoder_dim, cfg.context_size)
        self.joiner = Joiner(cfg.encoder.d_model, cfg.decoder_dim, cfg.joiner_dim, vocab_size, cfg.loss == "pruned")
        self.ctc_output = nn.Linear(cfg.encoder.d_model, vocab_size) if cfg.ctc_weight > 0 else None


class Transducer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = StreamingConformer(cfg.encoder)
        if cfg.multi_head:
            self.heads = nn.ModuleDict({lang: TransducerHead(cfg, v) for lang, v in cfg.heads.items()})
        else:
            # Attribute names of the single-head model are those of every checkpoint before multi-head models.
            self.decoder = Decoder(cfg.vocab_size, cfg.decoder_dim, cfg.context_size)
            self.joiner = Joiner(
                cfg.encoder.d_model, cfg.decoder_dim, cfg.joiner_dim, cfg.vocab_size, cfg.loss == "pruned"
            )
            self.ctc_output = nn.Linear(cfg.encoder.d_model, cfg.vocab_size) if cfg.ctc_weight > 0 else None
        self.lid = (
            StreamingLID(cfg.encoder.d_model, len(cfg.lid_languages), cfg.lid_hidden) if cfg.lid_languages else None
        )

    @classmethod
    def from_config_dict(cls, d: dict) -> Transducer:
        return cls(ModelConfig.from_dict(d))

    @property
    def head_names(self) -> list[str]:
        """The output languages of a multi-head model, in config order; [] for a single-head model."""
        return list(self.cfg.heads)

    def head(self, name: str | None = None) -> Head:
        """The modules of head `name` (None: the only head of a single-head model).

        Raises:
            KeyError: no head of that name (or a name asked of a single-head model, or none of a multi-head one).
        """
        if not self.cfg.multi_head:
            if name is not None:
                raise KeyError(f"a single-head model has no head {name!r}")
            return Head(self.decoder, self.joiner, self.ctc_output)
        if name not in self.cfg.heads:
            raise KeyError(f"no head {name!r}; the model has {self.head_names}")
        h = self.heads[name]
        return Head(h.decoder, h.joiner, h.ctc_output)

    def vocab_size(self, name: str | None = None) -> int:
        """V of head `name` (None: the single head)."""
        return self.cfg.vocab_size if name is None else self.cfg.heads[name]

    def forward(
        self,
        feats: torch.Tensor,
        feat_lens: torch.Tensor,
        targets: torch.Tensor,
        target_lens: torch.Tensor,
        chunk: int = -1,
        left_chunks: int = -1,
        head: str | None = None,
        languages: torch.Tensor | None = None,
        lid_weight: float = 0.0,
        use_ctc: bool = True,
        simple_scale: float = 0.5,
        pruned_scale: float = 1.0,
        language_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict]:
        """Training loss, averaged over the batch.

        Args:
            feats: `(B, T_in, 80)`; feat_lens: `(B,)`.
            targets: `(B, U)` token ids of head `head`'s vocabulary, padded with 0; target_lens: `(B,)`.
            chunk, left_chunks: the attention limits of this batch (see `StreamingConformer.forward`).
            head: the head the targets are for (None: the single head).
            languages: `(B,)` LID language ids of the utterances (`models.nn.lid.IGNORE` for unknown), or None.
            lid_weight: weight of the LID loss (only with `languages` and a model with an LID).
            use_ctc: add the head's CTC loss (translation targets are not monotonic in the audio: CTC may be off).
            simple_scale, pruned_scale: with the pruned loss, its transducer loss is
                `simple_scale * simple + pruned_scale * pruned` (models/train/train.py's `rnnt_loss_scales`).
            language_mask: a CMM encoder's selected languages `(B, Lang)` per utterance (None: all; models/nn/cmm.py).

        Returns:
            the loss and a dict of floats for logging (rnnt: the full or pruned transducer loss, simple, ctc, lid,
            frames, and impossible: sequences no path of the topology produces, left out of the loss).
        """
        # A frozen encoder (language expansion) needs no activations kept for a backward pass.
        train_encoder = torch.is_grad_enabled() and any(p.requires_grad for p in self.encoder.parameters())
        with torch.set_grad_enabled(train_encoder):
            enc, enc_lens = self.encoder(feats, feat_lens, chunk, left_chunks, language_mask)  # (B, T, D)
        h = self.head(head)
        info: dict = {"frames": int(enc_lens.sum())}
        loss = enc.new_zeros(())
        ctc_weight = self.cfg.ctc_weight if (use_ctc and h.ctc_output is not None) else 0.0
        if self.cfg.ctc_weight < 1.0:  # ctc_weight 1 is CTC-only encoder pre-training: no lattice at all
            dec = h.decoder(h.decoder.contexts(targets).reshape(-1, self.cfg.context_size))
            dec = dec.view(targets.shape[0], targets.shape[1] + 1, -1)  # (B, U+1, E)
            rnnt, simple, rnnt_info = self._transducer_loss(h.joiner, enc, enc_lens, dec, targets, target_lens)
            if simple is not None:
                rnnt = simple_scale * simple + pruned_scale * rnnt  # (B,)
            loss = (1 - ctc_weight) * rnnt.mean()
            info.update(rnnt_info)
        if ctc_weight > 0:
            assert h.ctc_output is not None
            lp = h.ctc_output(enc).float().log_softmax(-1).transpose(0, 1)  # (T, B, V); fp32 under autocast too
            ctc = F.ctc_loss(lp, targets, enc_lens, target_lens, blank=BLANK_ID, reduction="none", zero_infinity=True)
            loss = loss + ctc_weight * ctc.mean()
            info["ctc"] = float(ctc.detach().mean())
        if self.lid is not None and languages is not None and lid_weight > 0:
            lid = self.lid.loss(enc, enc_lens, languages)
            loss = loss + lid_weight * lid
            info["lid"] = float(lid.detach())
        return loss, info

    def _transducer_loss(
        self,
        joiner: Joiner,
        enc: torch.Tensor,
        enc_lens: torch.Tensor,
        dec: torch.Tensor,
        targets: torch.Tensor,
        target_lens: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
        """The transducer loss `(B,)` of enc `(B, T, D)` and dec `(B, U+1, E)`, full or pruned as configured.

        Returns:
            the full or pruned loss `(B,)`, the pruned loss's simple loss `(B,)` (None for the full loss), and
            floats for the log. Sequences no path produces (more labels than frames on the modified topology) count
            0, with no gradient.
        """
        cfg = self.cfg
        enc_p, dec_p = joiner.encoder_proj(enc), joiner.decoder_proj(dec)  # (B, T, J), (B, U+1, J)
        info: dict = {}
        if cfg.loss == "pruned":
            assert joiner.simple_am_proj is not None and joiner.simple_lm_proj is not None
            simple, rnnt, _ = pruned_rnnt_loss(
                enc_p,
                dec_p,
                joiner,
                joiner.simple_am_proj(enc),
                joiner.simple_lm_proj(dec),
                targets,
                enc_lens,
                target_lens,
                cfg.prune_range,
                cfg.rnnt_type,
                BLANK_ID,
            )
            possible = (rnnt.detach() < IMPOSSIBLE) & (simple.detach() < IMPOSSIBLE)
            simple = torch.where(possible, simple, 0.0)
            info["simple"] = float(simple.detach().mean())
        else:
            simple = None
            logits = joiner(enc_p[:, :, None], dec_p[:, None])  # (B, T, U+1, V)
            rnnt = rnnt_loss(
                logits, targets, enc_lens, target_lens, blank=BLANK_ID, reduction="none", rnnt_type=cfg.rnnt_type
            )
            possible = rnnt.detach() < IMPOSSIBLE
        rnnt = torch.where(possible, rnnt, 0.0)
        info["rnnt"] = float(rnnt.detach().mean())
        if not bool(possible.all()):
            info["impossible"] = int((~possible).sum())
        return rnnt, simple, info
