"""Noise, gain and reverberation (models/data/augment.py)."""

import json
from dataclasses import asdict, replace

import numpy as np
import pytest

from models.data.augment import (
    NOISE_KINDS,
    AugmentConfig,
    add_noise,
    augment,
    make_noise,
    reverberate,
    room_impulse_response,
)

SR = 16000


def _speech_like(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """(T,) float32: a 150 Hz buzz with harmonics, switched on and off like words, peaking near 0.9."""
    t = np.arange(round(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 8))
    x *= (np.sin(2 * np.pi * 2.5 * t) > 0) * (1 + 0.1 * np.random.default_rng(seed).standard_normal(t.size))
    return (0.9 * x / np.abs(x).max()).astype(np.float32)


ALWAYS = AugmentConfig(noise_prob=1.0, gain_prob=1.0, reverb_prob=1.0)


def test_same_seed_same_output_and_length_kept():
    x = _speech_like()
    a = augment(x, SR, np.random.default_rng(3), ALWAYS)
    b = augment(x, SR, np.random.default_rng(3), ALWAYS)
    c = augment(x, SR, np.random.default_rng(4), ALWAYS)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == x.shape and a.dtype == np.float32


def test_disabled_config_is_identity():
    x = _speech_like()
    y = augment(x, SR, np.random.default_rng(0), AugmentConfig.disabled())
    assert np.array_equal(x, y) and y is not x


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_noise_is_added_at_the_requested_snr(kind):
    x = 0.25 * _speech_like()  # quiet enough that no peak needs scaling down
    cfg = replace(AugmentConfig.disabled(), noise_prob=1.0, noise_kinds=(kind,), snr_db=(12.0, 12.0))
    y = augment(x, SR, np.random.default_rng(1), cfg)
    noise = y.astype(np.float64) - x
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2))
    assert abs(snr - 12.0) < 0.05, f"{kind}: measured SNR {snr:.3f} dB for 12 dB requested"
    assert np.isfinite(y).all()


def test_noise_colours_and_hum():
    rng = np.random.default_rng(0)
    n = 4 * SR

    def low_share(kind: str) -> float:
        power = np.abs(np.fft.rfft(make_noise(kind, n, SR, rng))) ** 2
        return power[np.fft.rfftfreq(n, 1 / SR) < 500].sum() / power.sum()

    for kind in NOISE_KINDS:
        assert abs(np.mean(make_noise(kind, n, SR, rng) ** 2) - 1.0) < 1e-9, kind
    shares = {k: low_share(k) for k in ("white", "pink", "brown")}
    assert shares["white"] < shares["pink"] < shares["brown"], shares
    hum = np.abs(np.fft.rfft(make_noise("hum", n, SR, rng)))
    assert np.argmax(hum) / 4 in (50.0, 60.0), np.argmax(hum) / 4  # 0.25 Hz bins
    with pytest.raises(ValueError, match="unknown noise kind"):
        make_noise("rain", n, SR, rng)


def test_no_clipping_even_with_loud_input_and_gain():
    x = _speech_like()
    x /= np.abs(x).max()  # peak exactly 1
    cfg = replace(ALWAYS, gain_db=(4.0, 4.0), snr_db=(0.0, 0.0))
    for seed in range(5):
        y = augment(x, SR, np.random.default_rng(seed), cfg)
        assert np.abs(y).max() <= 1.0, np.abs(y).max()
        assert np.abs(y).max() > 0.5


def test_gain_scales_by_the_drawn_decibels():
    x = _speech_like()
    cfg = replace(AugmentConfig.disabled(), gain_prob=1.0, gain_db=(-6.0, -6.0))
    y = augment(x, SR, np.random.default_rng(0), cfg)
    assert np.allclose(y, x * 10 ** (-6 / 20), atol=1e-6)


def test_room_response_decays_at_rt60_and_keeps_the_direct_path():
    rng = np.random.default_rng(0)
    rir = room_impulse_response(SR, rng, rt60=0.4, drr_db=6.0)
    assert rir[0] == 1.0
    tail = rir[1:]
    assert abs(10 * np.log10(1.0 / np.sum(tail**2)) - 6.0) < 1e-6
    ms10 = SR // 100
    start = np.flatnonzero(tail)[0]
    early = np.mean(tail[start : start + ms10] ** 2)
    at_rt60 = np.mean(tail[start + round(0.4 * SR) - ms10 : start + round(0.4 * SR)] ** 2)
    assert 50 < 10 * np.log10(early / at_rt60) < 70


def test_reverberation_is_causal_and_length_preserving():
    x = np.zeros(SR, dtype=np.float32)
    x[SR // 2] = 0.5  # an impulse in the middle: nothing may appear before it
    y = reverberate(x, SR, np.random.default_rng(0), rt60=0.3, drr_db=3.0)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.abs(y[: SR // 2]).max() < 1e-6
    assert np.argmax(np.abs(y)) == SR // 2


def test_config_checks_and_json_round_trip():
    cfg = AugmentConfig(snr_db=(10.0, 20.0))
    assert AugmentConfig.from_dict(json.loads(json.dumps(asdict(cfg)))) == cfg
    with pytest.raises(ValueError, match="noise_prob"):
        AugmentConfig(noise_prob=1.5)
    with pytest.raises(ValueError, match="gain_db"):
        AugmentConfig(gain_db=(4.0, -10.0))
    with pytest.raises(ValueError, match="noise_kinds"):
        AugmentConfig(noise_kinds=("rain",))


def test_silence_stays_silent_under_noise():
    x = np.zeros(SR, dtype=np.float32)
    y = add_noise(x, SR, np.random.default_rng(0), snr_db=10.0, kind="white")
    assert np.array_equal(x, y)
