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
