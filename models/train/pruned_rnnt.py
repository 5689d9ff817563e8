"""Pruned RNN-T loss: the full joiner evaluated only on a band of S labels per frame, as k2/icefall train.

Dimension letters: B batch, T encoder frames, U target tokens (lattice rows 0..U), V vocabulary, J joiner dim,
S the band's width (`prune_range`).

The full loss evaluates the joiner on every lattice node: a `(B, T, U+1, V)` tensor, with its tanh hidden layer
`(B, T, U+1, J)` kept for the backward pass. Open-domain sentences make U large (60 tokens in 5 s) and V large
(256 to 1000 pieces), so that tensor dominates a training step. The pruned loss works in three steps:

1. The *simple* loss: a joiner with no nonlinearity, logits(t, u) = am(t) + lm(u), with `am` `(B, T, V)` and `lm`
   `(B, U+1, V)` from linear layers of their own on the encoder and decoder outputs. Its normalizer over V is one
   matmul, `log(exp(am) @ exp(lm)^T)`, so the whole `(T, U+1)` lattice costs `(B, T, U+1)` memory. One forward and
   one backward pass of the recursion over it give the loss and the occupation of every node (the posterior
   probability that the alignment passes through it).
2. Per frame t, the band [s_begin(t), s_begin(t) + S) of lattice rows with the most occupation, adjusted so that
   the bands start at row 0, never move back, move forward no faster than a path can follow (S - 1 rows a frame on
   the standard topology, 1 on the modified) and end on a band that holds row U at the last frame
   (`prune_ranges`).
3. The full joiner on those bands only, `(B, T, S, V)`, and the recursion of the chosen topology on the band
   lattice: nodes outside the bands are impossible. With S >= U + 1 the band is the whole lattice and the pruned
   loss is the full loss.

The training loss is `simple_scale * simple + pruned_scale * pruned` (models/train/train.py's `rnnt_loss_scales`: the
pruned loss is small at first, when the simple joiner's bands are still guesses, as in icefall).

Written after reading k2's `rnnt_loss_simple`, `get_rnnt_prune_ranges`, `do_rnnt_pruning` and `rnnt_loss_pruned`
(the idea, not the code): the occupations here come from autograd through the same recursions as the full loss,
and the band lattice reuses the logcumsumexp row update of models/train/rnnt_loss.py.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from models.train.rnnt_loss import RNNT_TYPES, lattice_loss

DEFAULT_PRUNE_RANGE = 5  # S: icefall's default for BPE vocabularies of 500


def simple_lattice_log_probs(
    am: torch.Tensor, lm: torch.Tensor, targets: torch.Tensor, blank: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blank and label log-probabilities of every node of the additive joiner `logits(t, u) = am(t) + lm(u)`.

    Args:
        am: `(B, T, V)` the encoder side's logits.
        lm: `(B, U+1, V)` the decoder side's logits.
        targets: `(B, U)` label ids (padded with anything valid).
        blank: the blank id.

    Returns:
        blank_lp `(B, T, U+1)` and label_lp `(B, T, U)`, float32 at least.
    """
    with torch.autocast(am.device.type, enabled=False):  # float32 for the normalizer's matmul under bf16 training
        wide = (torch.float32, torch.float64)
        am, lm = (x if x.dtype in wide else x.float() for x in (am, lm))
        return _simple_lattice_log_probs(am, lm, targets, blank)


def _simple_lattice_log_probs(
    am: torch.Tensor, lm: torch.Tensor, targets: torch.Tensor, blank: int
) -> tuple[torch.Tensor, torch.Tensor]:
    B, T, _ = am.shape
    U = targets.shape[1]
    assert lm.shape[:2] == (B, U + 1), f"lm {tuple(lm.shape)} vs targets {tuple(targets.shape)}"
    am_max = am.detach().amax(-1, keepdim=True)  # (B, T, 1): any shift is exact; this one keeps exp() <= 1
    lm_max = lm.detach().amax(-1, keepdim=True)  # (B, U+1, 1)
    prod = torch.matmul((am - am_max).exp(), (lm - lm_max).exp().transpose(1, 2))  # (B, T, U+1)
    # The tiny floor only matters when am and lm peak on different pieces by > 85 nats (float32 underflow).
    norm = prod.clamp_min(torch.finfo(prod.dtype).tiny).log() + am_max + lm_max.transpose(1, 2)  # (B, T, U+1)
    blank_lp = am[..., blank, None] + lm[..., blank][:, None, :] - norm
    am_label = am.gather(2, targets[:, None, :].expand(B, T, U))  # (B, T, U)
    lm_label = lm[:, :U].gather(2, targets[..., None]).squeeze(-1)  # (B, U)
    label_lp = am_label + lm_label[:, None, :] - norm[:, :, :U]
    return blank_lp, label_lp


def loss_and_occupation(
    blank_lp: torch.Tensor,
    label_lp: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    rnnt_type: str = "standard",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss of a full lattice and the occupation of each of its nodes, in one forward and one backward pass.

    The derivative of -log P with respect to an edge's log-probability is minus that edge's posterior occupation,
    so the backward pass of the recursion is the forward-backward algorithm. The loss is handed back as its value
    plus the first-order term in the log-probabilities: the same value and the same gradient as autograd through the
    recursion, without a second backward pass through it.

    Args:
        blank_lp: `(B, T, U+1)`; label_lp: `(B, T, U)`.
        logit_lengths, target_lengths: `(B,)`.
        rnnt_type: "standard" or "modified".

    Returns:
        the loss `(B,)` (differentiable in blank_lp and label_lp) and the node occupation `(B, T, U+1)` (no
        gradient): the expected number of times an alignment leaves node (t, u); 0 outside the sequence.
    """
    with torch.enable_grad():
        b = blank_lp.detach().requires_grad_()
        lab = label_lp.detach().requires_grad_()
        loss = lattice_loss(b, lab, logit_lengths, target_lengths, rnnt_type)
        grad_blank, grad_label = torch.autograd.grad(loss.sum(), (b, lab))
    occupation = -(grad_blank + torch.nn.functional.pad(grad_label, (0, 1)))  # (B, T, U+1)
    linear = (grad_blank * (blank_lp - b.detach())).sum((1, 2)) + (grad_label * (label_lp - lab.detach())).sum((1, 2))
    return loss.detach() + linear, occupation


def prune_ranges(
    occupation: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    prune_range: int,
    rnnt_type: str = "standard",
) -> torch.Tensor:
    """The first lattice row of each frame's band of `prune_range` rows.

    Args:
        occupation: `(B, T, U+1)` node occupations (`loss_and_occupation`).
        logit_lengths, target_lengths: `(B,)`.
        prune_range: S, the band's width (>= 2).
        rnnt_type: "standard" or "modified" (a modified path is at row u <= t at frame t).

    Returns:
        s_begin `(B, T)` int64: frame t's band is rows s_begin[b, t] ... s_begin[b, t] + S - 1 (rows past U_b are
        outside the sequence). It starts at 0, never decreases, grows by at most S - 1 rows a frame (standard) or
        1 (modified: as fast as a path can climb), and at the last frame holds row U_b (and U_b - 1): every band
        node lies on a path of the band lattice whenever the topology has a path at all.
    """
    S = prune_range
    B, T, U1 = occupation.shape
    max_start = (target_lengths.long() + 1 - S).clamp(min=0)  # (B,) the band must not run past row U_b
    if U1 > S:
        cum = torch.nn.functional.pad(occupation.cumsum(2), (1, 0))  # (B, T, U+2)
        mass = cum[..., S:] - cum[..., : U1 + 1 - S]  # (B, T, U+2-S): occupation of the band starting at row k
        k = torch.arange(U1 + 1 - S, device=occupation.device)
        mass = mass.masked_fill(k > max_start[:, None, None], -1.0)
        s_begin = mass.argmax(-1)  # (B, T)
    else:
        s_begin = occupation.new_zeros((B, T), dtype=torch.long)
    t = torch.arange(T, device=occupation.device)
    # The final blank (or last label) leaves row U_b at the last frame; padding frames change nothing.
    s_begin = torch.where(t >= logit_lengths[:, None] - 1, max_start[:, None], s_begin)
    # Never back: a band is no later than any later one.
    s_begin = s_begin.flip(1).cummin(1).values.flip(1)
    # No faster than a path: raise earlier starts until none is more than `step` rows behind the next. A standard
    # path climbs a whole band within a frame, so S - 1 rows keep consecutive bands overlapping; a modified path
    # climbs one row a frame, and bands that rose faster would leave it behind.
    step = S - 1 if rnnt_type == "standard" else 1
    slack = s_begin - step * t
    s_begin = slack.flip(1).cummax(1).values.flip(1) + step * t
    # From row 0 at frame 0 (lowering keeps both properties above).
    return torch.minimum(s_begin, step * t).clamp(max=max_start[:, None])


def band_rows(s_begin: torch.Tensor, prune_range: int) -> torch.Tensor:
    """Lattice rows of the bands: s_begin `(B, T)` -> `(B, T, S)`."""
    return s_begin[..., None] + torch.arange(prune_range, device=s_begin.device)


def prune_decoder(dec: torch.Tensor, s_begin: torch.Tensor, prune_range: int) -> torch.Tensor:
    """The decoder side of each band node: dec `(B, U+1, J)` -> `(B, T, S, J)` (rows past U repeat row U)."""
    B, U1, J = dec.shape
    T = s_begin.shape[1]
    rows = band_rows(s_begin, prune_range).clamp(max=U1 - 1).reshape(B, -1, 1).expand(-1, -1, J)  # (B, T*S, J)
    return dec.gather(1, rows).view(B, T, prune_range, J)


def band_log_probs(
    logits: torch.Tensor, targets: torch.Tensor, s_begin: torch.Tensor, blank: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blank and label log-probabilities of the band nodes.

    Args:
        logits: `(B, T, S, V)` the joiner on the bands.
        targets: `(B, U)` label ids.
        s_begin: `(B, T)` the bands' first rows.
        blank: the blank id.

    Returns:
        blank_lp and label_lp, both `(B, T, S)`: label_lp[b, t, s] is log P(targets[b, u] | t, u) at row
        u = s_begin[b, t] + s (a padding label's for rows at or past U_b: those rows never reach the end).
    """
    B, T, S, _ = logits.shape
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()  # half precision is too coarse for the lattice sums
    lse = torch.logsumexp(logits, dim=-1)  # (B, T, S)
    blank_lp = logits[..., blank] - lse
    U = targets.shape[1]
    if U == 0:
        return blank_lp, torch.zeros_like(blank_lp)
    rows = band_rows(s_begin, S).clamp(max=U - 1)  # (B, T, S)
    labels = targets.gather(1, rows.view(B, -1)).view(B, T, S)
    label_lp = logits.gather(-1, labels[..., None]).squeeze(-1) - lse
    return blank_lp, label_lp


def band_loss(
    blank_lp: torch.Tensor,
    label_lp: torch.Tensor,
    s_begin: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    rnnt_type: str = "standard",
) -> torch.Tensor:
    """`(B,)` negative log-likelihood over the paths that stay inside the bands.

    Args:
        blank_lp, label_lp: `(B, T, S)` (`band_log_probs`).
        s_begin: `(B, T)` (`prune_ranges`).
        logit_lengths, target_lengths: `(B,)`.
        rnnt_type: "standard" or "modified".
    """
    if rnnt_type not in RNNT_TYPES:
        raise ValueError(f"rnnt_type must be one of {RNNT_TYPES}, got {rnnt_type!r}")
    recursion = _standard_band if rnnt_type == "standard" else _modified_band
    return recursion(blank_lp, label_lp, s_begin.long(), logit_lengths.long(), target_lengths.long())


def _shift_index(s_begin: torch.Tensor, S: int, lag: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each band position of frame t+1 reads from in frame t's band, for all frames at once.

    Position s of frame t+1's band is row s_begin[t+1] + s, which is position s + shift(t) - lag of frame t's band
    (shift(t) = s_begin[t+1] - s_begin[t]; lag 1 for a label, which climbs one row).

    Returns:
        index `(B, T-1, S)` into frame t's band (clamped to 0..S-1) and inside `(B, T-1, S)`: whether that position
        is in the band at all (else the node is unreachable from frame t).
    """
    shift = s_begin[:, 1:] - s_begin[:, :-1]  # (B, T-1)
    src = torch.arange(S, device=s_begin.device) + (shift - lag)[..., None]  # (B, T-1, S)
    return src.clamp(0, S - 1), (src >= 0) & (src < S)


def _at_row(x: torch.Tensor, s_begin_t: torch.Tensor, row: torch.Tensor, fill: float) -> torch.Tensor:
    """x[b, row[b] - s_begin_t[b]] where that is inside the band, else `fill`: x `(B, S)` -> `(B,)`."""
    pos = row - s_begin_t
    inside = (pos >= 0) & (pos < x.shape[1])
    return torch.where(inside, x.gather(1, pos.clamp(0, x.shape[1] - 1)[:, None]).squeeze(1), fill)


def _at_last_frame(x: torch.Tensor, logit_lengths: torch.Tensor) -> torch.Tensor:
    """x[b, logit_lengths[b] - 1]: x `(B, T, ...)` -> `(B, ...)`."""
    last = (logit_lengths - 1).clamp(min=0)
    return x[torch.arange(x.shape[0], device=x.device), last]


# The recursions below loop over frames with a few fixed-shape tensor ops per frame and no host synchronization
# (the end of each sequence is read after the loop from the stacked per-frame values): on a GPU each op is a kernel
# launch, and a `bool(tensor)` per frame would stall the launch queue T times per loss.


def _standard_band(
    blank_lp: torch.Tensor,
    label_lp: torch.Tensor,
    s_begin: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
) -> torch.Tensor:
    """rnnt_loss.py's row update inside frame t's band, the blanks of frame t-1 brought over by the shift."""
    B, T, S = blank_lp.shape
    neg_inf = torch.finfo(blank_lp.dtype).min / 4
    # C(s) = sum of label log-probs from the band's first row up to row s (within one frame): (B, T, S).
    C = torch.cat([blank_lp.new_zeros(B, T, 1), torch.cumsum(label_lp[..., :-1], dim=2)], dim=2)
    assert bool((s_begin[:, 0] == 0).all()), f"bands must start at row 0: {s_begin[:, 0].tolist()}"
    index, inside = _shift_index(s_begin, S, 0)
    alpha = C[:, 0]  # (B, S): only label emissions at frame 0
    leave = [alpha + blank_lp[:, 0]]  # (B, S) per frame: alpha and the frame's blank
    for t in range(1, T):
        a = torch.where(inside[:, t - 1], leave[-1].gather(1, index[:, t - 1]), neg_inf)  # (B, S)
        alpha = C[:, t] + torch.logcumsumexp(a - C[:, t], dim=1)
        leave.append(alpha + blank_lp[:, t])
    last = _at_last_frame(torch.stack(leave, 1), logit_lengths)  # (B, S)
    return -_at_row(last, _at_last_frame(s_begin, logit_lengths), target_lengths, neg_inf)


def _modified_band(
    blank_lp: torch.Tensor,
    label_lp: torch.Tensor,
    s_begin: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
) -> torch.Tensor:
    """models/train/rnnt_loss.py's modified recursion: every symbol of frame t lands in frame t+1's band."""
    B, T, S = blank_lp.shape
    neg_inf = torch.finfo(blank_lp.dtype).min / 4
    stay_index, stay_inside = _shift_index(s_begin, S, 0)
    move_index, move_inside = _shift_index(s_begin, S, 1)
    alpha = blank_lp.new_full((B, S), neg_inf)  # (B, S): rows s_begin[:, t] + s before frame t's symbol
    alpha[:, 0] = 0.0
    stays, moves = [], []
    for t in range(T):
        stay = alpha + blank_lp[:, t]  # blank: to row u at frame t+1
        move = alpha + label_lp[:, t]  # label: to row u+1
        stays.append(stay)
        moves.append(move)
        if t + 1 < T:
            alpha = torch.logaddexp(
                torch.where(stay_inside[:, t], stay.gather(1, stay_index[:, t]), neg_inf),
                torch.where(move_inside[:, t], move.gather(1, move_index[:, t]), neg_inf),
            )
    s_last = _at_last_frame(s_begin, logit_lengths)
    end = torch.logaddexp(
        _at_row(_at_last_frame(torch.stack(stays, 1), logit_lengths), s_last, target_lengths, neg_inf),
        _at_row(_at_last_frame(torch.stack(moves, 1), logit_lengths), s_last, target_lengths - 1, neg_inf),
    )
    return -end


Joint = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def pruned_rnnt_loss(
    enc: torch.Tensor,
    dec: torch.Tensor,
    joint: Joint,
    am: torch.Tensor,
    lm: torch.Tensor,
    targets: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    prune_range: int = DEFAULT_PRUNE_RANGE,
    rnnt_type: str = "standard",
    blank: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The simple loss, its bands and the pruned loss of one batch.

    Args:
        enc: `(B, T, J)` projected encoder output (the full joiner's encoder side).
        dec: `(B, U+1, J)` projected decoder output.
        joint: the full joiner on projected inputs, `(B, T, 1, J)` + `(B, T, S, J)` -> logits `(B, T, S, V)`.
        am: `(B, T, V)` and lm: `(B, U+1, V)` the simple joiner's two sides.
        targets: `(B, U)`; logit_lengths, target_lengths: `(B,)`.
        prune_range: S, rows per band (>= 2).
        rnnt_type: "standard" or "modified".
        blank: the blank id.

    Returns:
        simple `(B,)`, pruned `(B,)` losses, and the bands' first rows s_begin `(B, T)`.

    Raises:
        ValueError: a band narrower than 2 rows, or an unknown topology.
    """
    if prune_range < 2:
        raise ValueError(f"prune_range must be at least 2 (a label and its next row), got {prune_range}")
    if rnnt_type not in RNNT_TYPES:
        raise ValueError(f"rnnt_type must be one of {RNNT_TYPES}, got {rnnt_type!r}")
    targets, logit_lengths, target_lengths = targets.long(), logit_lengths.long(), target_lengths.long()
    simple_blank, simple_label = simple_lattice_log_probs(am, lm, targets, blank)
    simple, occupation = loss_and_occupation(simple_blank, simple_label, logit_lengths, target_lengths, rnnt_type)
    s_begin = prune_ranges(occupation, logit_lengths, target_lengths, prune_range, rnnt_type)
    logits = joint(enc[:, :, None], prune_decoder(dec, s_begin, prune_range))  # (B, T, S, V)
    blank_lp, label_lp = band_log_probs(logits, targets, s_begin, blank)
    pruned = band_loss(blank_lp, label_lp, s_begin, logit_lengths, target_lengths, rnnt_type)
    return simple, pruned, s_begin
