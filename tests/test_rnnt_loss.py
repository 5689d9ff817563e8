import itertools

import torch

from models.train.rnnt_loss import rnnt_loss


def _brute_force(logits: torch.Tensor, target: list[int], blank: int = 0) -> torch.Tensor:
    """-log sum over every alignment of one sequence: logits (T, U+1, V)."""
    T, U1, _ = logits.shape
    U = U1 - 1
    lp = logits.log_softmax(-1)
    total = []
    # An alignment is T + U steps; the last is the final blank, the U labels sit among the first T + U - 1.
    for label_steps in itertools.combinations(range(T + U - 1), U):
        t = u = 0
        s = lp.new_zeros(())
        for step in range(T + U):
            if step in label_steps:
                s = s + lp[t, u, target[u]]
                u += 1
            else:
                s = s + lp[t, u, blank]
                t += 1
        total.append(s)
    return -torch.logsumexp(torch.stack(total), 0)


def modified_brute_force(lp: torch.Tensor, target: list[int], blank: int = 0) -> torch.Tensor:
    """-log sum over every modified-topology alignment: one symbol per frame; log-probs lp (T, U+1, V)."""
    T = lp.shape[0]
    total = []
    for label_frames in itertools.combinations(range(T), len(target)):
        u, s = 0, lp.new_zeros(())
        for t in range(T):
            if t in label_frames:
                s, u = s + lp[t, u, target[u]], u + 1
            else:
                s = s + lp[t, u, blank]
        total.append(s)
    return -torch.logsumexp(torch.stack(total), 0) if total else lp.new_tensor(float("inf"))


def test_matches_brute_force_enumeration_with_padding() -> None:
    torch.manual_seed(0)
    B, T, U, V = 3, 5, 3, 6
    logits = torch.randn(B, T, U + 1, V, dtype=torch.float64)
    targets = torch.randint(1, V, (B, U))
    logit_lengths = torch.tensor([5, 4, 2])
    target_lengths = torch.tensor([3, 2, 1])
    loss = rnnt_loss(logits, targets, logit_lengths, target_lengths, reduction="none")
    for b in range(B):
        Tb, Ub = int(logit_lengths[b]), int(target_lengths[b])
        ref = _brute_force(logits[b, :Tb, : Ub + 1], targets[b, :Ub].tolist())
        diff = abs(float(loss[b] - ref))
        assert diff < 1e-9, f"sequence {b}: loss {float(loss[b])} vs brute force {float(ref)} (diff {diff})"


def test_single_frame_and_empty_target() -> None:
    logits = torch.randn(1, 1, 1, 4, dtype=torch.float64)
    loss = rnnt_loss(logits, torch.zeros(1, 0, dtype=torch.long), torch.tensor([1]), torch.tensor([0]))
    assert abs(float(loss) + float(logits[0, 0, 0].log_softmax(-1)[0])) < 1e-12


def test_gradients_match_finite_differences() -> None:
    torch.manual_seed(1)
    B, T, U, V = 2, 4, 2, 5
    logits = torch.randn(B, T, U + 1, V, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(1, V, (B, U))
    lengths = (torch.tensor([4, 3]), torch.tensor([2, 1]))
    assert torch.autograd.gradcheck(lambda x: rnnt_loss(x, targets, *lengths, reduction="sum"), (logits,))


def test_float32_long_sequence_is_finite_and_close_to_float64() -> None:
    torch.manual_seed(2)
    B, T, U, V = 2, 120, 30, 50
    logits = torch.randn(B, T, U + 1, V) * 3
    targets = torch.randint(1, V, (B, U))
    args = (targets, torch.tensor([120, 90]), torch.tensor([30, 20]))
    l32 = rnnt_loss(logits, *args, reduction="none")
    l64 = rnnt_loss(logits.double(), *args, reduction="none")
    assert torch.isfinite(l32).all()
    rel = float(((l32.double() - l64).abs() / l64).max())
    assert rel < 1e-5, f"float32 vs float64 relative difference {rel}"


def test_modified_topology_matches_brute_force_enumeration() -> None:
    torch.manual_seed(3)
    B, T, U, V = 3, 5, 3, 6
    logits = torch.randn(B, T, U + 1, V, dtype=torch.float64)
    targets = torch.randint(1, V, (B, U))
    logit_lengths, target_lengths = torch.tensor([5, 4, 2]), torch.tensor([3, 2, 2])
    loss = rnnt_loss(logits, targets, logit_lengths, target_lengths, reduction="none", rnnt_type="modified")
    for b in range(B):
        Tb, Ub = int(logit_lengths[b]), int(target_lengths[b])
        ref = modified_brute_force(logits[b, :Tb, : Ub + 1].log_softmax(-1), targets[b, :Ub].tolist())
        diff = abs(float(loss[b] - ref))
        assert diff < 1e-9, f"sequence {b}: loss {float(loss[b])} vs brute force {float(ref)} (diff {diff})"
    assert torch.autograd.gradcheck(
        lambda x: rnnt_loss(x, targets, logit_lengths, target_lengths, reduction="sum", rnnt_type="modified"),
        (logits.clone().requires_grad_(),),
    )
