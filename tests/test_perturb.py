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
