from dataclasses import replace

import pytest
import torch

from models.nn.encoder import PAD_LENGTH, EncoderConfig, StreamingConformer, chunk_mask, subsampled_lengths
from parley.contract import SUBSAMPLING
from tests._tiny import TINY_ENCODER

TINY = TINY_ENCODER


@pytest.mark.parametrize(("chunk", "left_chunks"), [(1, 3), (2, 2), (4, 1), (8, 4)])
def test_streaming_steps_equal_the_full_masked_forward(chunk: int, left_chunks: int) -> None:
    torch.manual_seed(chunk)
    model = StreamingConformer(TINY).eval()
    n_chunks = 5
    T = SUBSAMPLING * chunk * n_chunks + PAD_LENGTH
    x = torch.randn(3, T, 80)
    with torch.no_grad():
        full, _ = model(x, torch.full((3,), T), chunk, left_chunks)
        streamed, _ = model.stream(x, torch.full((3,), T), chunk, left_chunks)
    assert full.shape == streamed.shape == (3, chunk * n_chunks, TINY.d_model)
    diff = float((full - streamed).abs().max())
    print(f"chunk {chunk} left {left_chunks}: max abs diff streaming vs full masked forward = {diff:.2e}")
    assert diff < 1e-4, f"max abs diff {diff}"


def test_history_beyond_the_limit_is_not_seen() -> None:
    torch.manual_seed(0)
    model = StreamingConformer(TINY).eval()
    T = SUBSAMPLING * 2 * 10 + PAD_LENGTH
    x = torch.randn(1, T, 80)
    y = x.clone()
    y[:, :8] += 5.0  # change only the first chunk's frames
    with torch.no_grad():
        a, _ = model(x, torch.tensor([T]), 2, 1)
        b, _ = model(y, torch.tensor([T]), 2, 1)
    # Per layer a frame reaches back at most 3 frames by attention (1 chunk of history) and 4 more by the causal
    # conv (kernel 5): 14 frames over 2 layers, so the last chunk (frames 18-19) cannot see chunk 0.
    assert float((a[:, -2:] - b[:, -2:]).abs().max()) == 0.0
    assert float((a[:, :2] - b[:, :2]).abs().max()) > 0.0


def test_chunk_mask() -> None:
    m = chunk_mask(6, 2, 1)
    assert m[5].tolist() == [False, False, True, True, True, True]
    assert m[0].tolist() == [True, True, False, False, False, False]
    assert chunk_mask(4, -1, -1).all()
    assert chunk_mask(6, 2, -1)[5].all()


def test_padding_does_not_change_valid_frames() -> None:
    torch.manual_seed(1)
    model = StreamingConformer(TINY).eval()
    x = torch.randn(1, 83, 80)
    padded = torch.cat([x, torch.randn(1, 40, 80)], dim=1)
    with torch.no_grad():
        a, la = model(x, torch.tensor([83]), 4, 2)
        b, lb = model(padded, torch.tensor([83]), 4, 2)
    assert int(la) == int(lb) == int(subsampled_lengths(torch.tensor(83)))
    diff = float((a - b[:, : a.shape[1]]).abs().max())
    assert diff < 1e-5, f"max abs diff {diff}"


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="divisible"):
        EncoderConfig(d_model=30, num_heads=4)


# ---- Configurable multilingual model (models/nn/cmm.py) ----

CMM_LANGS = ["en", "de", "es"]


def _cmm_encoder(rank: int, every: int = 1, seed: int = 0) -> StreamingConformer:
    """A tiny CMM encoder whose experts' zero-initialized projections are randomized, so that they matter."""
    torch.manual_seed(seed)
    cfg = replace(TINY, cmm_languages=CMM_LANGS, cmm_rank=rank, cmm_every=every)
    model = StreamingConformer(cfg).eval()
    with torch.no_grad():
        for p in model.experts.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize(("rank", "every", "chunk", "left_chunks"), [(0, 1, 2, 2), (4, 1, 4, 1), (4, 2, 1, 3)])
def test_cmm_streaming_steps_equal_the_full_masked_forward(rank: int, every: int, chunk: int, left_chunks: int) -> None:
    model = _cmm_encoder(rank, every)
    assert sorted(model.experts) == [str(i) for i in range(TINY.num_layers) if (i + 1) % every == 0]
    n_chunks = 5
    T = SUBSAMPLING * chunk * n_chunks + PAD_LENGTH
    x = torch.randn(3, T, 80)
    lens = torch.full((3,), T)
    mask = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    with torch.no_grad():
        full, _ = model(x, lens, chunk, left_chunks, mask)
        streamed, _ = model.stream(x, lens, chunk, left_chunks, mask)
        everything, _ = model(x, lens, chunk, left_chunks)
        other, _ = model(x, lens, chunk, left_chunks, mask.flip(0))
    diff = float((full - streamed).abs().max())
    print(f"CMM rank {rank} every {every}: max abs diff streaming vs full masked forward = {diff:.2e}")
    assert diff < 1e-4, f"max abs diff {diff}"
    # Row 2 selects every language: the default. Rows 0 and 1 select fewer, and the selection matters.
    default_diff = float((full[2] - everything[2]).abs().max())
    assert default_diff < 1e-5, f"all-selected mask vs no mask: {default_diff}"
    for row in (0, 1):
        moved = float((full[row] - everything[row]).abs().max())
        assert moved > 1e-3, f"row {row}: the selection changed nothing ({moved})"
    # Each row depends only on its own selection (row 1's selection is the same after the flip).
    assert float((full[1] - other[1]).abs().max()) < 1e-5
    assert float((full[0] - other[0]).abs().max()) > 1e-3


def test_cmm_weights_are_renormalized_over_the_selection() -> None:
    from models.nn.cmm import LanguageExperts, language_mask

    torch.manual_seed(0)
    experts = LanguageExperts(8, 3, rank=2)
    h = torch.randn(2, 5, 8)
    mask = torch.stack([language_mask(["de"], CMM_LANGS), language_mask(["en", "es"], CMM_LANGS)])  # (B, L)
    w = experts.weights(h, mask)
    assert torch.allclose(w.sum(-1), torch.ones(2, 5)), w.sum(-1)
    assert torch.equal(w[0], torch.tensor([0.0, 1.0, 0.0]).expand(5, 3)), w[0]
    assert bool((w[1, :, 1] == 0).all()) and bool((w[1, :, [0, 2]] > 0).all())
    # Over the selected languages the weights are the full softmax renormalized.
    full = experts.weights(h, None)
    sel = full[1][:, [0, 2]]
    assert torch.allclose(w[1][:, [0, 2]], sel / sel.sum(-1, keepdim=True), atol=1e-6)
    assert torch.equal(language_mask([], CMM_LANGS), torch.ones(3))
    with pytest.raises(ValueError, match="no expert"):
        language_mask(["fr"], CMM_LANGS)


def test_cmm_is_off_by_default_and_starts_as_the_plain_encoder() -> None:
    torch.manual_seed(3)
    plain = StreamingConformer(TINY).eval()
    assert not any(k.startswith("experts.") for k in plain.state_dict())
    cmm = StreamingConformer(replace(TINY, cmm_languages=CMM_LANGS, cmm_rank=4)).eval()
    cmm.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 83, 80)
    with torch.no_grad():
        a, _ = plain(x, torch.tensor([83, 60]), 2, 2)
        b, _ = cmm(x, torch.tensor([83, 60]), 2, 2, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
    assert float((a - b).abs().max()) == 0.0, "fresh experts must add nothing"
    with pytest.raises(ValueError, match="needs a CMM"):
        plain(x, torch.tensor([83, 60]), 2, 2, torch.ones(2, 3))
    with pytest.raises(ValueError, match="repeated CMM"):
        EncoderConfig(cmm_languages=["en", "en"])
    with pytest.raises(ValueError, match="cmm_every"):
        EncoderConfig(num_layers=2, cmm_languages=["en"], cmm_every=3)


def test_training_runs_the_depthwise_conv_as_conv1d(monkeypatch) -> None:
    """The (1, k) Conv2d form of the depthwise conv is for the ONNX export only: in PyTorch, oneDNN built a new
    depthwise Conv2d kernel for every new batch length, and a training run's first steps took minutes each."""
    import torch.nn.functional as F

    from models.nn.encoder import ConvModule

    def no_conv2d(*args, **kwargs):
        raise AssertionError("conv2d in a PyTorch forward")

    module = ConvModule(16, 5, 0.0)
    x, cache = torch.randn(2, 7, 16), torch.zeros(2, 4, 16)
    want, _ = module(x, cache)
    monkeypatch.setattr(F, "conv2d", no_conv2d)
    got, _ = module(x, cache)
    assert torch.equal(got, want)
