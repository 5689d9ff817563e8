import random

import numpy as np
import torch

from models.data import AugmentSettings, DurationBatchSampler, collate, spec_augment, speed_perturb


def test_batches_respect_the_budget_cover_everything_and_shard() -> None:
    rng = random.Random(0)
    durations = [rng.uniform(0.5, 8.0) for _ in range(500)]
    s = DurationBatchSampler(durations, max_seconds=40.0, seed=1)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(500))
    assert all(max(durations[i] for i in b) * len(b) <= 40.0 or len(b) == 1 for b in batches)
    s.set_epoch(1)
    assert list(s) != batches, "batch order must change between epochs"
    ranks = [list(DurationBatchSampler(durations, 40.0, seed=1, rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1])
    assert not {i for b in ranks[0] for i in b} & {i for b in ranks[1] for i in b}


def test_speed_perturbation_changes_duration() -> None:
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    assert abs(speed_perturb(x, 1.1).size - 16000 / 1.1) <= 1
    assert abs(speed_perturb(x, 0.9).size - 16000 / 0.9) <= 1
    assert speed_perturb(x, 1.0) is x


def test_spec_augment_masks_only_some_of_the_input() -> None:
    feats = torch.randn(300, 80)
    out = spec_augment(feats, AugmentSettings(), random.Random(3))
    changed = (out != feats).float().mean().item()
    assert 0.0 < changed < 0.6 and out.shape == feats.shape
    assert torch.equal(spec_augment(feats, AugmentSettings.off(), random.Random(3)), feats)


def test_collate_pads() -> None:
    items = [(torch.ones(5, 80), torch.tensor([3, 4]), 0), (torch.ones(3, 80), torch.tensor([5]), 1)]
    b = collate(items)
    assert b["feats"].shape == (2, 5, 80) and b["feat_lens"].tolist() == [5, 3]
    assert b["tokens"].tolist() == [[3, 4], [5, 0]] and b["token_lens"].tolist() == [2, 1]
