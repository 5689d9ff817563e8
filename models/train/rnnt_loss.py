"""RNN-T loss in pure PyTorch (no torchaudio on CPU here), vectorized over the lattice.

Dimension letters: B batch, T encoder frames, U target tokens (the lattice has U + 1 rows), V vocabulary.

Two topologies (`rnnt_type`):

- "standard": a frame may emit any number of labels before its blank moves on to the next frame; a path is T blanks
  and U labels, the last step the blank of frame T-1.
- "modified" (k2's name; also "monotonic" RNN-T): every frame emits exactly one symbol, blank or label, and either
  moves on to the next frame. A path is T symbols of which U are labels, so it needs U <= T (else no path: the
  loss is `IMPOSSIBLE` or more). A model trained so is decoded with at most one symbol per frame, as sherpa-onnx does.

The standard recursion:

The forward variable alpha(t, u) is the log-probability of having emitted the first u labels by frame t:

    alpha(t, u) = logaddexp(alpha(t-1, u) + blank(t-1, u), alpha(t, u-1) + label(t, u-1))

For a fixed t this is a first-order linear recurrence along u in probability space, so one row of the lattice is
a single `logcumsumexp`:

    alpha(t, u) = S(u) + logcumsumexp_k<=u (a(k) - S(k)),  a(k) = alpha(t-1, k) + blank(t-1, k),
    S(u) = sum_{j<u} label(t, j)

One Python loop over T; every u, b at once. The loss is -(alpha(T-1, U) + blank(T-1, U)). Gradients come from
autograd through that recursion.

The modified recursion has no dependency within a frame (alpha(t, u): u labels emitted before frame t):

    alpha(t+1, u) = logaddexp(alpha(t, u) + blank(t, u), alpha(t, u-1) + label(t, u-1)),  loss = -alpha(T, U)

models/train/pruned_rnnt.py runs both recursions on a band of the lattice (the pruned loss).

Memory: the joiner's logits `(B, T, U+1, V)` are needed anyway; from them only the blank and the next label's
log-probabilities `(B, T, U+1)` are gathered (log-softmax = logit - logsumexp over V), so no second
`(B, T, U+1, V)` tensor of log-probabilities is kept for the backward pass.
"""

from __future__ import annotations

import torch

RNNT_TYPES = ("standard", "modified")
# A loss at least this large means no path of the topology produces the targets (e.g. modified with U > T).
IMPOSSIBLE = 1e30


def gather_log_probs(logits: torch.Tensor, targets: torch.Tensor, blank: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Blank and label log-probabilities of every lattice node.

    Args:
        logits: `(B, T, U+1, V)` joiner output (unnormalized).
        targets: `(B, U)` label ids (padding anything valid, e.g. 0).
        blank: the blank id.

    Returns:
        blank_lp `(B, T, U+1)` and label_lp `(B, T, U)`: label_lp[b, t, u] is log P(targets[b, u] | t, u).
    """
    B, T, U1, _ = logits.shape
    assert targets.shape == (B, U1 - 1), f"targets {tuple(targets.shape)} vs logits {tuple(logits.shape)}"
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()  # half precision is too coarse for the lattice sums
    lse = torch.logsumexp(logits, dim=-1)  # (B, T, U+1)
    blank_lp = logits[..., blank] - lse
    idx = targets[:, None, :, None].expand(B, T, U1 - 1, 1)  # (B, T, U, 1)
    label_lp = logits[:, :, :-1, :].gather(-1, idx).squeeze(-1) - lse[:, :, :-1]
    return blank_lp, label_lp


def rnnt_loss_from_log_probs(
    blank_lp: torch.Tensor,
    label_lp: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
) -> torch.Tensor:
    """Negative log-likelihood per sequence from gathered lattice log-probabilities.

    Args:
        blank_lp: `(B, T, U+1)`.
        label_lp: `(B, T, U)`.
        logit_lengths: `(B,)` valid frames per sequence (>= 1).
        target_lengths: `(B,)` valid labels per sequence.

    Returns:
        `(B,)` the loss of each sequence.
    """
    B, T, _ = blank_lp.shape
    # S(u) = sum of label log-probs of the first u labels at this t: (B, T, U+1), S(0) = 0.
    S = torch.cat([blank_lp.new_zeros(B, T, 1), torch.cumsum(label_lp, dim=2)], dim=2)
    # Row t = 0: only label emissions, alpha(0, u) = S(0, u). Each frame's alpha plus its blank (the way out of
    # the frame) is kept, and each sequence's end read after the loop: no host synchronization inside it.
    alpha = S[:, 0]  # (B, U+1)
    leave = [alpha + blank_lp[:, 0]]
    for t in range(1, T):
        a = leave[-1]  # (B, U+1): arrive at (t, u) by a blank from (t-1, u)
        St = S[:, t]
        alpha = St + torch.logcumsumexp(a - St, dim=1)
        leave.append(alpha + blank_lp[:, t])
    last = (logit_lengths - 1).clamp(min=0)
    end = torch.stack(leave, 1)[torch.arange(B, device=blank_lp.device), last]  # (B, U+1)
    return -end.gather(1, target_lengths[:, None]).squeeze(1)


def modified_rnnt_loss_from_log_probs(
    blank_lp: torch.Tensor,
    label_lp: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
) -> torch.Tensor:
    """`rnnt_loss_from_log_probs` for the modified topology (one symbol per frame); same shapes.

    A sequence with more labels than frames has no path: its loss is `IMPOSSIBLE` or more.
    """
    B, T, U1 = blank_lp.shape
    neg_inf = torch.finfo(blank_lp.dtype).min / 4
    alpha = blank_lp.new_full((B, U1), neg_inf)
    alpha[:, 0] = 0.0
    alphas = []  # (B, U+1) after each frame; each sequence's end is read after the loop
    for t in range(T):
        stay = alpha + blank_lp[:, t]  # (B, U+1): blank, to (t+1, u)
        move = torch.nn.functional.pad(alpha[:, :-1] + label_lp[:, t], (1, 0), value=neg_inf)  # label u-1, to u
        alpha = torch.logaddexp(stay, move)
        alphas.append(alpha)
    end = torch.stack(alphas, 1)[torch.arange(B, device=blank_lp.device), (logit_lengths - 1).clamp(min=0)]
    final = end.gather(1, target_lengths[:, None]).squeeze(1)
    return -torch.where(logit_lengths > 0, final, neg_inf)


def rnnt_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = 0,
    reduction: str = "mean",
    rnnt_type: str = "standard",
) -> torch.Tensor:
    """RNN-T loss.

    Args:
        logits: `(B, T, U+1, V)` joiner output.
        targets: `(B, U)` int64 labels, padded.
        logit_lengths: `(B,)` valid frames.
        target_lengths: `(B,)` valid labels.
        blank: blank id.
        reduction: "none" `(B,)`, "sum", or "mean" (sum over the batch divided by B).
        rnnt_type: "standard" or "modified" (at most one symbol per frame).

    Returns:
        the loss, reduced as asked.

    Raises:
        ValueError: an unknown reduction or topology.
    """
    if reduction not in ("none", "sum", "mean"):
        raise ValueError(f"reduction must be none, sum or mean, got {reduction!r}")
    recursion = _recursion(rnnt_type)
    blank_lp, label_lp = gather_log_probs(logits, targets.long(), blank)
    loss = recursion(blank_lp, label_lp, logit_lengths.long(), target_lengths.long())
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _recursion(rnnt_type: str):
    """The full-lattice recursion of a topology."""
    if rnnt_type not in RNNT_TYPES:
        raise ValueError(f"rnnt_type must be one of {RNNT_TYPES}, got {rnnt_type!r}")
    return rnnt_loss_from_log_probs if rnnt_type == "standard" else modified_rnnt_loss_from_log_probs


def lattice_loss(
    blank_lp: torch.Tensor,
    label_lp: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    rnnt_type: str = "standard",
) -> torch.Tensor:
    """`(B,)` loss of each sequence from gathered full-lattice log-probabilities (blank_lp `(B, T, U+1)`, label_lp
    `(B, T, U)`) under topology `rnnt_type`."""
    return _recursion(rnnt_type)(blank_lp, label_lp, logit_lengths.long(), target_lengths.long())
