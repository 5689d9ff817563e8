import itertools

import numpy as np
import pytest

from parley.resample import Resampler, resample

RATE_PAIRS = [
    (8000, 16000),
    (11025, 16000),
    (22050, 16000),
    (44100, 16000),
    (48000, 16000),
    (96000, 16000),
    (16000, 16000),
    (44101, 16000),  # coprime: its period matrix would be too large, so each output's taps are gathered
]


@pytest.mark.parametrize(("rate_in", "rate_out"), RATE_PAIRS)
def test_pieces_equal_one_call(rate_in: int, rate_out: int) -> None:
    rng = np.random.default_rng(rate_in)
    x = (0.1 * rng.standard_normal(rate_in * 2)).astype(np.float32)
    whole = resample(x, rate_in, rate_out)
    r = Resampler(rate_in, rate_out)
    pieces, i = [], 0
    while i < x.size:
        k = int(rng.integers(1, 2000))
        pieces.append(r.process(x[i : i + k]))
        i += k
    pieces.append(r.flush())
    streamed = np.concatenate(pieces)
    assert streamed.shape == whole.shape
    diff = float(np.abs(streamed - whole).max())
    assert diff == 0.0, f"streamed vs one call: max abs diff {diff}"
    assert whole.size == -(-x.size * rate_out // rate_in)


@pytest.mark.parametrize(("rate_in", "rate_out"), RATE_PAIRS)
def test_sine_is_preserved(rate_in: int, rate_out: int) -> None:
    t = np.arange(rate_in) / rate_in
    y = resample(np.sin(2 * np.pi * 1000 * t).astype(np.float32), rate_in, rate_out)
    ref = np.sin(2 * np.pi * 1000 * np.arange(y.size) / rate_out)
    err = float(np.abs(y[300:-300] - ref[300:-300]).max())
    assert err < 1e-3, f"1 kHz sine {rate_in}->{rate_out}: max error {err}"


def test_downsampling_removes_what_cannot_be_represented() -> None:
    t = np.arange(48000) / 48000
    y = resample(np.sin(2 * np.pi * 10000 * t).astype(np.float32), 48000, 16000)
    assert float(np.abs(y[300:-300]).max()) < 1e-3


def test_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="positive integers"):
        Resampler(0, 16000)
    with pytest.raises(ValueError, match="positive integers"):
        Resampler(44100.5, 16000)


@pytest.mark.parametrize(("rate_in", "rate_out"), [(8000, 16000), (44100, 16000), (48000, 16000), (16000, 48000)])
def test_the_period_matrix_computes_the_gathered_sums(rate_in: int, rate_out: int) -> None:
    """Where rates allow, a period's outputs are one matrix over a strided window of the input; the same filters
    applied output by output (the gather every rate pair can use) give the same samples to float32 rounding."""
    rng = np.random.default_rng(rate_out)
    x = (0.1 * rng.standard_normal(rate_in)).astype(np.float32)
    fast, slow = Resampler(rate_in, rate_out), Resampler(rate_in, rate_out)
    assert fast._period is not None
    slow._period = None
    cuts = [0, 1, 7, 1000, 1601, rate_in // 2, x.size]
    got, want = (
        np.concatenate([r.process(x[i:j]) for i, j in itertools.pairwise(cuts)] + [r.flush()]) for r in (fast, slow)
    )
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) < 1e-6
    assert Resampler(44101, 16000)._period is None
