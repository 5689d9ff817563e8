import pytest
import torch

from models.train.pruned_rnnt import (
    band_log_probs,
    band_loss,
    loss_and_occupation,
    prune_ranges,
    pruned_rnnt_loss,
    simple_lattice_log_probs,
)
from models.train.rnnt_loss import IMPOSSIBLE, gather_log_probs, rnnt_loss
from tests.test_rnnt_loss import modified_brute_force


def _lattice(B: int, T: int, U: int, V: int, J: int = 6, seed: int = 0):
    """A random float64 joiner and its inputs: enc `(B, T, J)`, dec `(B, U+1, J)`, am `(B, T, V)`, lm `(B, U+1, V)`."""
    g = torch.Generator().manual_seed(seed)
    enc = torch.randn(B, T, J, dtype=torch.float64, generator=g).requires_grad_()
    dec = torch.randn(B, U + 1, J, dtype=torch.float64, generator=g).requires_grad_()
    W = torch.randn(J, V, dtype=torch.float64, generator=g).requires_grad_()
    am = torch.randn(B, T, V, dtype=torch.float64, generator=g).requires_grad_()
    lm = torch.randn(B, U + 1, V, dtype=torch.float64, generator=g).requires_grad_()
    targets = torch.randint(1, V, (B, U), generator=g)
    return enc, dec, W, am, lm, targets


def _joint(W: torch.Tensor):
    return lambda e, d: torch.tanh(e + d) @ W


@pytest.mark.parametrize("rnnt_type", ["standard", "modified"])
def test_pruned_equals_full_when_the_band_covers_the_lattice(rnnt_type: str) -> None:
    B, T, U, V = 3, 7, 4, 9
    enc, dec, W, am, lm, targets = _lattice(B, T, U, V)
    logit_lens, target_lens = torch.tensor([7, 5, 4]), torch.tensor([4, 2, 0])
    params = (enc, dec, W)
    logits = _joint(W)(enc[:, :, None], dec[:, None])  # (B, T, U+1, V)
    full = rnnt_loss(logits, targets, logit_lens, target_lens, reduction="none", rnnt_type=rnnt_type)
    full_grads = torch.autograd.grad(full.sum(), params)
    for S in (U + 1, U + 3):
        _, pruned, s_begin = pruned_rnnt_loss(
            enc, dec, _joint(W), am, lm, targets, logit_lens, target_lens, S, rnnt_type
        )
        assert bool((s_begin == 0).all())
        diff = float((pruned - full).detach().abs().max())
        assert diff < 1e-4, f"{rnnt_type} S={S}: pruned {pruned.tolist()} vs full {full.tolist()} (diff {diff})"
        for name, a, b in zip(("enc", "dec", "W"), full_grads, torch.autograd.grad(pruned.sum(), params), strict=True):
            gdiff = float((a - b).abs().max())
            assert gdiff < 1e-6, f"{rnnt_type} S={S}: gradient of {name} differs by {gdiff}"


def test_modified_pruned_matches_brute_force_on_a_tiny_lattice() -> None:
    B, T, U, V = 2, 5, 3, 5
    enc, dec, W, am, lm, targets = _lattice(B, T, U, V, seed=3)
    logit_lens, target_lens = torch.tensor([5, 4]), torch.tensor([3, 2])
    logits = _joint(W)(enc[:, :, None], dec[:, None])  # (B, T, U+1, V)
    _, pruned, _ = pruned_rnnt_loss(enc, dec, _joint(W), am, lm, targets, logit_lens, target_lens, U + 1, "modified")
    for b in range(B):
        Tb, Ub = int(logit_lens[b]), int(target_lens[b])
        ref = modified_brute_force(logits[b, :Tb, : Ub + 1].log_softmax(-1), targets[b, :Ub].tolist())
        diff = abs(float((pruned[b] - ref).detach()))
        assert diff < 1e-9, f"sequence {b}: pruned {float(pruned[b])} vs brute force {float(ref)} (diff {diff})"


def _peaked(B: int, T: int, U: int, V: int, sharpness: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits `(B, T, U+1, V)` of a confident model that emits label u at frame ~ (u + 1) T / (U + 1), blank else."""
    g = torch.Generator().manual_seed(7)
    targets = torch.randint(1, V, (B, U), generator=g)
    logits = torch.randn(B, T, U + 1, V, dtype=torch.float64, generator=g)
    due = (torch.arange(U + 1) + 1) * T // (U + 1)  # (U+1,) frame at which label u is due
    emit = torch.arange(T)[:, None] >= due[None, :U]  # (T, U): label u once its frame has come
    label_ids = targets[:, None, :].expand(B, T, U)
    logits[:, :, :U].scatter_add_(
        -1, label_ids[..., None], sharpness * emit[None, :, :, None].double().expand(B, -1, -1, -1)
    )
    logits[:, :, :U, 0] += sharpness * (~emit).double()
    logits[:, :, U, 0] += sharpness
    return logits, targets


@pytest.mark.parametrize("rnnt_type", ["standard", "modified"])
def test_narrow_band_is_close_to_the_full_loss_on_a_peaked_model(rnnt_type: str) -> None:
    B, T, U, V = 2, 24, 8, 12
    logits, targets = _peaked(B, T, U, V, sharpness=8.0)
    logit_lens, target_lens = torch.tensor([T, T]), torch.tensor([U, U])
    full = rnnt_loss(logits, targets, logit_lens, target_lens, reduction="none", rnnt_type=rnnt_type)
    # Bands from the model's own occupations: the simple loss's job, done here by the model itself.
    blank_lp, label_lp = gather_log_probs(logits, targets)
    _, occupation = loss_and_occupation(blank_lp, label_lp, logit_lens, target_lens, rnnt_type)
    S = 3
    s_begin = prune_ranges(occupation, logit_lens, target_lens, S, rnnt_type)
    rows = (s_begin[..., None] + torch.arange(S)).clamp(max=U)  # (B, T, S)
    band = logits.gather(2, rows[..., None].expand(-1, -1, -1, V))  # (B, T, S, V)
    pruned = band_loss(*band_log_probs(band, targets, s_begin), s_begin, logit_lens, target_lens, rnnt_type)
    assert bool((pruned >= full - 1e-9).all()), f"pruned {pruned.tolist()} < full {full.tolist()}: it drops paths"
    rel = float(((pruned - full) / full).max())
    assert rel < 1e-3, f"{rnnt_type}: S={S} pruned {pruned.tolist()} vs full {full.tolist()} (relative {rel:.2e})"


@pytest.mark.parametrize("rnnt_type", ["standard", "modified"])
def test_simple_loss_is_the_additive_joiners_full_loss_with_its_gradient(rnnt_type: str) -> None:
    B, T, U, V = 2, 6, 3, 7
    _, _, _, am, lm, targets = _lattice(B, T, U, V, seed=5)
    logit_lens, target_lens = torch.tensor([6, 5]), torch.tensor([3, 1])
    ref = rnnt_loss(
        am[:, :, None] + lm[:, None], targets, logit_lens, target_lens, reduction="none", rnnt_type=rnnt_type
    )
    blank_lp, label_lp = simple_lattice_log_probs(am, lm, targets)
    simple, occupation = loss_and_occupation(blank_lp, label_lp, logit_lens, target_lens, rnnt_type)
    assert float((simple - ref).detach().abs().max()) < 1e-9, f"simple {simple.tolist()} vs {ref.tolist()}"
    ours = torch.autograd.grad(simple.sum(), (am, lm), retain_graph=True)
    for a, b in zip(torch.autograd.grad(ref.sum(), (am, lm)), ours, strict=True):
        assert float((a - b).abs().max()) < 1e-9, f"gradient differs by {float((a - b).abs().max())}"
    # Every frame of a sequence is left exactly once by a blank or (modified) by some symbol.
    blank_occ = occupation - torch.nn.functional.pad(-torch.autograd.grad(simple.sum(), label_lp)[0], (0, 1))
    per_frame = (blank_occ if rnnt_type == "standard" else occupation).sum(2)  # (B, T)
    for b in range(B):
        n = int(logit_lens[b])
        assert torch.allclose(per_frame[b, :n], torch.ones(n, dtype=torch.float64)), per_frame[b].tolist()


def test_bands_start_at_zero_never_go_back_overlap_and_end_on_the_last_row() -> None:
    torch.manual_seed(4)
    B, T, U, S = 4, 30, 25, 4
    occupation = torch.rand(B, T, U + 1) ** 8  # spiky, unordered: the adjustments have work to do
    logit_lens, target_lens = torch.tensor([30, 22, 9, 30]), torch.tensor([25, 17, 3, 40 // 2])
    blank_lp, label_lp = -torch.rand(B, T, S) * 5, -torch.rand(B, T, S) * 5
    for rnnt_type, step in (("standard", S - 1), ("modified", 1)):
        s_begin = prune_ranges(occupation, logit_lens, target_lens, S, rnnt_type)
        for b in range(B):
            Tb, Ub = int(logit_lens[b]), int(target_lens[b])
            s = s_begin[b, :Tb].tolist()
            assert s[0] == 0 and all(0 <= s[t + 1] - s[t] <= step for t in range(Tb - 1)), (rnnt_type, s)
            assert s[-1] <= Ub - 1 and Ub <= s[-1] + S - 1, f"{rnnt_type}: last band {s[-1]} for U={Ub}: {s}"
        # Every sequence has a path inside its bands (each fits the topology: U <= T).
        loss = band_loss(blank_lp, label_lp, s_begin, logit_lens, target_lens, rnnt_type)
        assert bool((loss < 1e4).all()), f"{rnnt_type}: no path inside the bands: {loss.tolist()}"


def test_impossible_sequences_are_flagged_and_bad_settings_rejected() -> None:
    B, T, U, V = 1, 3, 4, 6  # 4 labels in 3 frames: no modified path
    enc, dec, W, am, lm, targets = _lattice(B, T, U, V)
    lens = (torch.tensor([3]), torch.tensor([4]))
    full = rnnt_loss(_joint(W)(enc[:, :, None], dec[:, None]), targets, *lens, reduction="none", rnnt_type="modified")
    _, pruned, _ = pruned_rnnt_loss(enc, dec, _joint(W), am, lm, targets, *lens, 3, "modified")
    assert float(full.detach()) >= IMPOSSIBLE and float(pruned.detach()) >= IMPOSSIBLE
    with pytest.raises(ValueError, match="prune_range"):
        pruned_rnnt_loss(enc, dec, _joint(W), am, lm, targets, *lens, 1)
    with pytest.raises(ValueError, match="rnnt_type"):
        rnnt_loss(_joint(W)(enc[:, :, None], dec[:, None]), targets, *lens, rnnt_type="constrained")


@pytest.mark.parametrize("rnnt_type", ["standard", "modified"])
def test_transducer_pruned_loss_is_its_full_loss_with_a_covering_band(rnnt_type: str) -> None:
    from models.nn.transducer import ModelConfig, Transducer
    from tests._tiny import TINY_ENCODER

    torch.manual_seed(0)
    kw = dict(vocab_size=12, encoder=TINY_ENCODER, decoder_dim=16, joiner_dim=16, ctc_weight=0.0, rnnt_type=rnnt_type)
    full = Transducer(ModelConfig(**kw)).eval()
    pruned = Transducer(ModelConfig(**kw, loss="pruned", prune_range=8)).eval()
    missing, unexpected = pruned.load_state_dict(full.state_dict(), strict=False)
    assert (
        sorted(missing)
        == [
            "joiner.simple_am_proj.bias",
            "joiner.simple_am_proj.weight",
            "joiner.simple_lm_proj.bias",
            "joiner.simple_lm_proj.weight",
        ]
        and not unexpected
    )
    feats, feat_lens = torch.randn(2, 120, 80), torch.tensor([120, 90])  # 29 and 21 encoder frames
    targets, target_lens = torch.randint(1, 12, (2, 7)), torch.tensor([7, 4])
    with torch.no_grad():  # the bands' occupations need autograd inside: it must work without it outside
        ref, _ = full(feats, feat_lens, targets, target_lens)
        loss, info = pruned(feats, feat_lens, targets, target_lens, simple_scale=0.0, pruned_scale=1.0)
    assert abs(float(loss - ref)) < 1e-4, f"pruned {float(loss)} vs full {float(ref)}"
    assert info["simple"] > 0 and "impossible" not in info
    # More tokens than frames: no modified path; that utterance is left out of the loss, and said so.
    long_targets, long_lens = torch.randint(1, 12, (2, 25)), torch.tensor([7, 25])
    _, info = pruned(feats, feat_lens, long_targets, long_lens)
    assert info.get("impossible", 0) == (1 if rnnt_type == "modified" else 0), info
