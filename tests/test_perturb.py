"""Training-time perturbation (models/train/perturb.py): speed, padding with the utterance's own background,
SpecAugment."""

import random

import numpy as np
import torch

from models.train.perturb import AugmentSettings, pad_with_background, spec_augment, speed_perturb


def test_speed_perturbation_changes_duration() -> None:
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    assert abs(speed_perturb(x, 1.1).size - 16000 / 1.1) <= 1
    assert abs(speed_perturb(x, 0.9).size - 16000 / 0.9) <= 1
    assert speed_perturb(x, 1.0) is x


def test_padding_surrounds_the_speech_with_its_own_background() -> None:
    g = np.random.default_rng(0)
    floor = 0.01  # the utterance's noise floor: quiet stretches at this RMS around a loud tone
    t = np.arange(32000) / 16000
    x = (floor * g.standard_normal(t.size) + 0.5 * np.sin(2 * np.pi * 300 * t) * (np.abs(t - 1) < 0.5)).astype(
        np.float32
    )
    cfg = AugmentSettings(pad_prob=1.0, pad_max_s=1.0)
    kinds = {"noise": 0, "zeros": 0}
    for seed in range(40):
        y = pad_with_background(x, cfg, random.Random(seed))
        assert x.size <= y.size <= x.size + 2 * 16000 and y.dtype == np.float32
        start = next(i for i in range(y.size - x.size + 1) if np.array_equal(y[i : i + x.size], x))
        pad = np.concatenate([y[:start], y[start + x.size :]])
        if pad.size < 1600:
            continue
        if not pad.any():
            kinds["zeros"] += 1
        else:
            kinds["noise"] += 1
            rms = float(np.sqrt((pad**2).mean()))
            assert 0.4 * floor < rms < 1.6 * floor, f"seed {seed}: padding at RMS {rms:.4f}, floor {floor}"
    assert kinds["noise"] > kinds["zeros"] > 0, kinds
    clean = np.zeros(16000, np.float32)
    quiet = pad_with_background(clean, AugmentSettings(pad_prob=1.0, pad_max_s=1.0), random.Random(1))
    assert np.sqrt((quiet**2).mean()) < 10 ** (-50 / 20), "digital silence gets a floor of -90..-50 dBFS at most"
    assert pad_with_background(x, AugmentSettings.off(), random.Random(0)) is x


def test_spec_augment_masks_only_some_of_the_input() -> None:
    feats = torch.randn(300, 80)
    out = spec_augment(feats, AugmentSettings(), random.Random(3))
    changed = (out != feats).float().mean().item()
    assert 0.0 < changed < 0.6 and out.shape == feats.shape
    assert torch.equal(spec_augment(feats, AugmentSettings.off(), random.Random(3)), feats)


def _tone_fbank(hz: float) -> torch.Tensor:
    from parley.features import SAMPLE_RATE, compute_fbank

    t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    return torch.from_numpy(compute_fbank((0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), SAMPLE_RATE))


def test_mel_warp_moves_a_tone_as_the_spectrum_warp_would() -> None:
    """A 1 kHz tone's features warped by alpha peak where a tone at alpha kHz peaks (below the knee f -> alpha f);
    alpha 1 changes nothing, and the features keep their shape and range."""
    from models.train.perturb import mel_warp

    tone = _tone_fbank(1000.0)
    assert torch.equal(mel_warp(tone, 1.0), tone)
    for alpha in (0.85, 0.9, 1.1, 1.15):
        warped = mel_warp(tone, alpha)
        assert warped.shape == tone.shape
        assert warped.min() >= tone.min() - 1e-4 and warped.max() <= tone.max() + 1e-4  # interpolation only
        peak = int(warped[10:-10].mean(0).argmax())
        target = int(_tone_fbank(1000.0 * alpha)[10:-10].mean(0).argmax())
        assert abs(peak - target) <= 1, (alpha, peak, target)
        assert peak != int(tone[10:-10].mean(0).argmax())


def test_spec_augment_warps_only_when_asked() -> None:
    """warp_prob 0 draws nothing more from the generator (old runs keep their random streams); 1 warps every item."""
    feats = _tone_fbank(1500.0)
    off, on = (
        AugmentSettings(freq_masks=0, time_mask_ratio=0.0),
        AugmentSettings(freq_masks=0, time_mask_ratio=0.0, warp_prob=1.0),
    )
    rng = random.Random(0)
    assert torch.equal(spec_augment(feats, off, rng), feats)
    assert rng.random() == random.Random(0).random()
    assert not torch.allclose(spec_augment(feats, on, random.Random(0)), feats)
