"""Batching for training (models/train/dataset.py): duration-bounded batches, sharding, padding."""

import random

import torch

from models.train.dataset import DurationBatchSampler, collate


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


def test_collate_pads() -> None:
    items = [(torch.ones(5, 80), torch.tensor([3, 4]), 0), (torch.ones(3, 80), torch.tensor([5]), 1)]
    b = collate(items)
    assert b["feats"].shape == (2, 5, 80) and b["feat_lens"].tolist() == [5, 3]
    assert b["tokens"].tolist() == [[3, 4], [5, 0]] and b["token_lens"].tolist() == [2, 1]
