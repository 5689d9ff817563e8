"""Streaming Conformer encoder: chunk-masked self-attention, causal convolution, explicit cached state.

Dimension letters: B batch, T frames (100 Hz fbank in, 25 Hz after subsampling), D model dim, H heads,
C chunk frames (after subsampling), L layers, K left-context frames (after subsampling).

Two paths compute the same function:

- `forward(x, lengths, chunk, left_chunks)`: the whole (padded) utterance at once, with an attention mask that lets
  each chunk of C frames see itself and `left_chunks` chunks of history (training, evaluation).
- `init_state(batch, left_context)` / `step(x, state) -> (out, new_state)`: one chunk at a time with the history
  passed in and handed back (export, server). `state` is `(cached_attn (L, K, B, D), cached_conv (L, k-1, B, D),
  processed (B,))`, the layout of sherpa-onnx's streaming conformer transducer. `stream(x, lengths, chunk,
  left_chunks)` runs whole utterances through `step` chunk by chunk: the PyTorch twin of what the exported encoder
  computes (`parley eval --step`, export parity).

Positions are a learned relative bias per head, clipped to +-`rel_pos_clip` frames: only distances matter, so the
cache needs no absolute positions. The subsampling has no padding in time: output frame j sees input frames
[4j, 4j+6], so a chunk of 4C input frames plus `pad_length` = 3 frames of lookahead gives exactly C outputs.

With `cmm_languages` the encoder is a configurable multilingual model (models/nn/cmm.py): every `cmm_every`-th layer
adds per-language experts, mixed over the languages a `language_mask (B, Lang)` selects (None: all). All three paths
take the mask; the experts are per frame, so they stay equal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from models.nn.cmm import LanguageExperts, expert_layers
from models.nn.norm import LayerNorm
from parley.contract import ENCODER_FRAME_MS, SUBSAMPLING

PAD_LENGTH = 3  # extra input frames a chunk needs on its right: the subsampling's receptive field is 7 = 4 + 3


@dataclass
class EncoderConfig:
    """Encoder sizes. Stored in checkpoints; rebuilt with `EncoderConfig(**d)`."""

    num_bins: int = 80
    d_model: int = 144
    num_layers: int = 8
    num_heads: int = 4
    ff_dim: int = 576
    conv_kernel: int = 15
    subsampling_channels: int = 64
    rel_pos_clip: int = 64
    dropout: float = 0.1
    # Configurable multilingual model (models/nn/cmm.py): the languages of the experts (empty: none, a plain
    # encoder), their rank (0: a full D x D linear map per language) and which layers carry them (every k-th).
    cmm_languages: list[str] = field(default_factory=list)
    cmm_rank: int = 0
    cmm_every: int = 1

    def __post_init__(self) -> None:
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by num_heads {self.num_heads}")
        if self.conv_kernel < 2:
            raise ValueError(f"conv_kernel must be >= 2, got {self.conv_kernel}")
        if len(set(self.cmm_languages)) != len(self.cmm_languages):
            raise ValueError(f"repeated CMM languages: {self.cmm_languages}")
        if self.cmm_rank < 0 or not 1 <= self.cmm_every <= self.num_layers:
            raise ValueError(
                f"cmm_rank must be >= 0 and cmm_every in 1..num_layers {self.num_layers}: "
                f"got {self.cmm_rank}, {self.cmm_every}"
            )

    def to_dict(self) -> dict:
        return asdict(self)


def subsampled_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """Encoder frames for `lengths` input frames: ((T - 1) // 2 - 1) // 2, at least 0."""
    return (((lengths - 1) // 2 - 1) // 2).clamp(min=0)


class Subsampling(nn.Module):
    """Global feature normalization, then two 3x3 stride-2 convolutions: (B, T, F) -> (B, ((T-1)//2-1)//2, D).

    `mean` and `istd` (per bin) are buffers set from training data before training (`set_feature_stats`), so
    they travel in the checkpoint and the exported graph; log-mel values around -15..5 otherwise slow learning.
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(cfg.num_bins))
        self.register_buffer("istd", torch.ones(cfg.num_bins))
        c = cfg.subsampling_channels
        self.conv = nn.Sequential(nn.Conv2d(1, c, 3, 2), nn.ReLU(), nn.Conv2d(c, c, 3, 2), nn.ReLU())
        f = ((cfg.num_bins - 1) // 2 - 1) // 2
        self.out = nn.Linear(c * f, cfg.d_model)

    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-bin mean and standard deviation `(F,)` of training features."""
        self.mean.copy_(mean)
        self.istd.copy_(1.0 / std.clamp(min=1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(((x - self.mean) * self.istd).unsqueeze(1))  # (B, c, T', F')
        B, c, T, f = x.shape
        return self.out(x.transpose(1, 2).reshape(B, T, c * f))


class FeedForward(nn.Module):
    def __init__(self, d: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.norm = LayerNorm(d)
        self.net = nn.Sequential(nn.Linear(d, ff), nn.SiLU(), nn.Dropout(dropout), nn.Linear(ff, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.net(self.norm(x)))


def locality_bias(clip: int, heads: int) -> torch.Tensor:
    """Initial relative-position bias `(2 * clip + 1, H)`: `-slope_h * |distance|`, slopes 1 .. 1/16 over heads.

    Like ALiBi, but only as the starting point of a learned bias. With a random (or zero) bias every frame starts out
    attending to the whole utterance alike, and the encoder sat on the CTC/RNN-T "blank plateau" for thousands of
    steps (> 2,300 steps of 20 s batches on the synthetic English corpus, CTC 4.2 nats/token); a local prior on most
    heads and a near-global one on the last escapes it after ~800 steps, as fast as a BiLSTM.
    """
    dist = torch.arange(-clip, clip + 1).abs().float()
    slopes = torch.tensor([2.0 ** (-4.0 * h / max(1, heads - 1)) for h in range(heads)])
    return -dist[:, None] * slopes[None, :]


class RelPosAttention(nn.Module):
    """Multi-head self-attention with a learned, clipped relative-position bias per head."""

    def __init__(self, d: int, heads: int, clip: int, dropout: float) -> None:
        super().__init__()
        self.h, self.dk, self.clip = heads, d // heads, clip
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.rel_bias = nn.Embedding(2 * clip + 1, heads)
        self.drop = dropout
        with torch.no_grad():
            self.rel_bias.weight.copy_(locality_bias(clip, heads))

    def forward(
        self, q_in: torch.Tensor, kv_in: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Attention of queries over keys.

        Args:
            q_in: `(B, Tq, D)`; kv_in: `(B, Tk, D)`.
            q_pos: `(Tq,)`, k_pos: `(Tk,)` frame positions (only differences are used).
            mask: `(B or 1, Tq, Tk)` bool, True where attention is allowed.
        """
        B, Tq, _ = q_in.shape
        Tk = kv_in.shape[1]
        # D as a Python int and the weights sliced, not split: the ONNX export then folds the slices into initializers
        # and quantizes their MatMuls to int8 (a traced shape, or a Split, which the exporter does not fold, left two
        # fp32 MatMuls whose weights were split and transposed again at every run: a fifth of the encoder's time).
        D = self.h * self.dk
        w, b = self.qkv.weight, self.qkv.bias
        q = F.linear(q_in, w[:D], b[:D]).view(B, Tq, self.h, self.dk).transpose(1, 2)  # (B, H, Tq, dk)
        k, v = F.linear(kv_in, w[D:], b[D:]).view(B, Tk, 2, self.h, self.dk).permute(2, 0, 3, 1, 4)
        rel = (k_pos[None, :] - q_pos[:, None]).clamp(-self.clip, self.clip) + self.clip  # (Tq, Tk)
        bias = self.rel_bias(rel).permute(2, 0, 1).unsqueeze(0)  # (1, H, Tq, Tk)
        bias = bias.masked_fill(~mask.unsqueeze(1), float("-inf"))
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.drop if self.training else 0.0
        )  # (B, H, Tq, dk)
        return self.out(y.transpose(1, 2).reshape(B, Tq, D))


class ConvModule(nn.Module):
    """Pointwise conv + GLU, causal depthwise conv (kernel k), LayerNorm, SiLU, pointwise conv."""

    def __init__(self, d: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.norm = LayerNorm(d)
        self.pw1 = nn.Linear(d, 2 * d)
        self.dw = nn.Conv1d(d, d, kernel, groups=d)
        self.norm2 = LayerNorm(d)
        self.pw2 = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)
        self.kernel = kernel

    def forward(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x `(B, T, D)`, cache `(B, k-1, D)` (the depthwise conv's previous inputs) -> out, new cache."""
        h = F.glu(self.pw1(self.norm(x)), dim=-1)  # (B, T, D)
        h = torch.cat([cache, h], dim=1)  # (B, k-1+T, D)
        new_cache = h[:, h.shape[1] - (self.kernel - 1) :]
        if torch.onnx.is_in_onnx_export():
            # Exported as a (1, k) Conv2d over (B, D, 1, k-1+T): the same weights and result, but onnxruntime's CPU
            # kernel for a grouped Conv2d is about 10x faster than for a grouped 1-D Conv. Not in PyTorch: there
            # oneDNN builds a new depthwise Conv2d kernel for every new T, minutes per batch of a new length.
            w = self.dw.weight.unsqueeze(2)  # (D, 1, 1, k)
            h = F.conv2d(h.transpose(1, 2).unsqueeze(2), w, self.dw.bias, groups=self.dw.groups).squeeze(2)
            # A Reshape to the shape it has, (B, T, D) = x's: onnxruntime's transpose optimizer cannot move the
            # Transpose below through it. Without it the Transpose was pushed through norm2, whose reductions then
            # ran over the middle axis of (B, D, T), and that kernel sums in another order for one stream than for
            # several: a stream's output depended on whether it was alone in its batch (tests/test_isolation.py).
            h = h.transpose(1, 2).reshape(x.shape)
        else:
            h = self.dw(h.transpose(1, 2)).transpose(1, 2)  # (B, T, D)
        return self.drop(self.pw2(F.silu(self.norm2(h)))), new_cache


class ConformerLayer(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.ff1 = FeedForward(d, cfg.ff_dim, cfg.dropout)
        self.attn_norm = LayerNorm(d)
        self.attn = RelPosAttention(d, cfg.num_heads, cfg.rel_pos_clip, cfg.dropout)
        self.attn_drop = nn.Dropout(cfg.dropout)
        self.conv = ConvModule(d, cfg.conv_kernel, cfg.dropout)
        self.ff2 = FeedForward(d, cfg.ff_dim, cfg.dropout)

    def forward(
        self,
        x: torch.Tensor,
        attn_cache: torch.Tensor,
        conv_cache: torch.Tensor,
        q_pos: torch.Tensor,
        k_pos: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x `(B, T, D)`; attn_cache `(B, K, D)` earlier attention inputs (K may be 0); conv_cache `(B, k-1, D)`.

        Returns the output `(B, T, D)` and the attention inputs and conv cache of this step.
        """
        x = x + 0.5 * self.ff1(x)
        a = self.attn_norm(x)
        kv = torch.cat([attn_cache, a], dim=1)  # (B, K+T, D)
        x = x + self.attn_drop(self.attn(a, kv, q_pos, k_pos, mask))
        c, new_conv = self.conv(x, conv_cache)
        x = x + c
        x = x + 0.5 * self.ff2(x)
        return x, a, new_conv


def chunk_mask(T: int, chunk: int, left_chunks: int, device: torch.device | None = None) -> torch.Tensor:
    """`(T, T)` bool: frame i sees frame j iff j's chunk is i's chunk or one of `left_chunks` before it.

    `chunk <= 0` means full context; `left_chunks < 0` means unlimited history.
    """
    if chunk <= 0:
        return torch.ones(T, T, dtype=torch.bool, device=device)
    c = torch.arange(T, device=device) // chunk
    diff = c[:, None] - c[None, :]  # (T, T) query chunk - key chunk
    ok = diff >= 0
    if left_chunks >= 0:
        ok = ok & (diff <= left_chunks)
    return ok


EncoderState = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class StreamingConformer(nn.Module):
    """Subsampling + Conformer layers. See the module docstring for the two paths."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.subsampling = Subsampling(cfg)
        self.layers = nn.ModuleList(ConformerLayer(cfg) for _ in range(cfg.num_layers))
        # By layer index; empty (no state_dict keys) for a plain encoder, so earlier checkpoints load unchanged.
        self.experts = nn.ModuleDict(
            {
                str(i): LanguageExperts(cfg.d_model, len(cfg.cmm_languages), cfg.cmm_rank)
                for i in (expert_layers(cfg.num_layers, cfg.cmm_every) if cfg.cmm_languages else [])
            }
        )
        # Pre-norm throughout and one LayerNorm at the top: with a LayerNorm closing every layer (the original
        # Conformer) the 8-layer encoder stayed on the blank plateau for > 1,200 steps where this one leaves it at ~600.
        self.norm = LayerNorm(cfg.d_model)

    @property
    def cmm_languages(self) -> list[str]:
        return list(self.cfg.cmm_languages)

    def _layer(self, i: int, h: torch.Tensor, language_mask: torch.Tensor | None, *args) -> tuple:
        """Layer i (and its experts, if any) on h `(B, T, D)`; `args` as `ConformerLayer.forward` takes them."""
        out, a, conv = self.layers[i](h, *args)
        if str(i) in self.experts:
            out = out + self.experts[str(i)](h, language_mask)
        return out, a, conv

    def _check_mask(self, language_mask: torch.Tensor | None, batch: int) -> None:
        if language_mask is None:
            return
        if not self.cfg.cmm_languages:
            raise ValueError("a language_mask needs a CMM encoder (cmm_languages)")
        L = len(self.cfg.cmm_languages)
        assert tuple(language_mask.shape) == (batch, L), (
            f"language_mask {tuple(language_mask.shape)}, expected {(batch, L)}"
        )

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        chunk: int = -1,
        left_chunks: int = -1,
        language_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole utterances with chunk-limited attention.

        Args:
            x: `(B, T, F)` fbank frames; lengths: `(B,)` valid frames.
            chunk: chunk size C in encoder frames (<= 0: full context).
            left_chunks: history in chunks (< 0: unlimited).
            language_mask: a CMM encoder's selected languages `(B, Lang)`, 1/True for selected (None: all).

        Returns:
            `(B, T', D)` encoder output and `(B,)` its valid lengths.
        """
        h = self.subsampling(x)
        out_lens = subsampled_lengths(lengths)
        B, T, D = h.shape
        pos = torch.arange(T, device=h.device)
        valid = pos[None, :] < out_lens[:, None]  # (B, T)
        mask = chunk_mask(T, chunk, left_chunks, h.device)[None] & valid[:, None, :]  # (B, T, T)
        # A padded query row may see nothing at all; let it see itself so softmax stays finite.
        mask = mask | torch.eye(T, dtype=torch.bool, device=h.device)[None]
        empty_attn = h.new_zeros(B, 0, D)
        conv0 = h.new_zeros(B, self.cfg.conv_kernel - 1, D)
        self._check_mask(language_mask, B)
        for i in range(len(self.layers)):
            h, _, _ = self._layer(i, h, language_mask, empty_attn, conv0, pos, pos, mask)
        return self.norm(h), out_lens

    def init_state(self, batch: int, left_context: int) -> EncoderState:
        """Zero state for `batch` streams with `left_context` cached encoder frames per layer."""
        p = next(self.parameters())
        L, D = self.cfg.num_layers, self.cfg.d_model
        return (
            p.new_zeros(L, left_context, batch, D),
            p.new_zeros(L, self.cfg.conv_kernel - 1, batch, D),
            torch.zeros(batch, dtype=torch.int64, device=p.device),
        )

    def step(
        self, x: torch.Tensor, state: EncoderState, language_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, EncoderState]:
        """One chunk.

        Args:
            x: `(B, 4C + 3, F)` fbank frames: the chunk plus `PAD_LENGTH` frames of lookahead.
            state: `(cached_attn (L, K, B, D), cached_conv (L, k-1, B, D), processed (B,))`; processed counts
                the encoder frames already output for each stream.
            language_mask: a CMM encoder's selected languages `(B, Lang)` (None: all).

        Returns:
            `(B, C, D)` encoder output and the new state.
        """
        cached_attn, cached_conv, processed = state
        h = self.subsampling(x)  # (B, C, D)
        B, C, _ = h.shape
        K = cached_attn.shape[1]
        q_pos = torch.arange(K, K + C, device=h.device)
        k_pos = torch.arange(K + C, device=h.device)
        # Cache slot s holds frame (processed - K + s); it is valid once that frame exists.
        slot_ok = torch.arange(K, device=h.device)[None, :] >= (K - processed)[:, None]  # (B, K)
        mask = torch.cat([slot_ok, torch.ones(B, C, dtype=torch.bool, device=h.device)], dim=1)
        mask = mask[:, None, :].expand(B, C, K + C)  # (B, C, K+C)
        self._check_mask(language_mask, B)
        new_attn, new_conv = [], []
        for i in range(len(self.layers)):
            attn_cache = cached_attn[i].transpose(0, 1)  # (B, K, D)
            h, a, conv = self._layer(
                i, h, language_mask, attn_cache, cached_conv[i].transpose(0, 1), q_pos, k_pos, mask
            )
            new_attn.append(torch.cat([attn_cache, a], dim=1)[:, C:].transpose(0, 1))  # (K, B, D)
            new_conv.append(conv.transpose(0, 1))
        return self.norm(h), (torch.stack(new_attn), torch.stack(new_conv), processed + C)

    def stream(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        chunk: int,
        left_chunks: int,
        language_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole utterances through `step`, chunk by chunk, as the exported encoder runs them.

        Each step reads a window of `SUBSAMPLING * chunk + PAD_LENGTH` frames and advances `SUBSAMPLING * chunk`;
        an incomplete last window is completed with zero frames (their outputs lie beyond the valid lengths).

        Args:
            x: `(B, T, F)` fbank frames; lengths: `(B,)` valid frames.
            chunk: C, encoder frames per step (> 0).
            left_chunks: history in chunks (K = C * left_chunks cached frames).
            language_mask: a CMM encoder's selected languages `(B, Lang)` (None: all).

        Returns:
            `(B, T', D)` encoder output (T' a multiple of C) and `(B,)` its valid lengths, as `forward` gives them.
        """
        assert chunk > 0, f"streaming needs a chunk size, got {chunk}"
        B, T, F = x.shape
        shift = SUBSAMPLING * chunk
        n = -(-max(T - PAD_LENGTH, 1) // shift)  # steps: the last (incomplete) window counts
        padded = x.new_zeros(B, n * shift + PAD_LENGTH, F)
        padded[:, :T] = x
        state = self.init_state(B, chunk * left_chunks)
        outs = []
        for i in range(n):
            out, state = self.step(padded[:, i * shift : i * shift + shift + PAD_LENGTH], state, language_mask)
            outs.append(out)
        return torch.cat(outs, dim=1), subsampled_lengths(lengths)


def encoder_flops_per_second(cfg: EncoderConfig, chunk: int, left_context: int) -> float:
    """Multiply-adds x 2 of the encoder per second of audio when streaming (linear layers, convs, attention)."""
    fps = 1000 / ENCODER_FRAME_MS
    c = cfg.subsampling_channels
    f1, f2 = (cfg.num_bins - 1) // 2, ((cfg.num_bins - 1) // 2 - 1) // 2
    d, ff = cfg.d_model, cfg.ff_dim
    sub = 50 * f1 * c * 9 + fps * f2 * c * c * 9 + fps * c * f2 * d
    ffn, attn = 2 * 2 * d * ff, 4 * d * d + 2 * d * (left_context + chunk)
    conv = 2 * d * d + d * cfg.conv_kernel + d * d
    per_frame = ffn + attn + conv
    n_lang = len(cfg.cmm_languages)
    inner = cfg.cmm_rank or d
    experts = (d * n_lang + d * n_lang * inner + (n_lang * inner * d if cfg.cmm_rank else 0)) if n_lang else 0
    n_experts = len(expert_layers(cfg.num_layers, cfg.cmm_every)) if n_lang else 0
    return 2 * (sub + fps * (cfg.num_layers * per_frame + n_experts * experts))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
