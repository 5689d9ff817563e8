"""Training data: manifests -> (features, tokens) batches, bucketed by duration, augmented on the fly.

Dimension letters: B batch, T frames, F fbank bins, U tokens.

- `UtteranceDataset` reads audio, applies speed perturbation (resampling) and pads it with the utterance's own
  background (silence padding: synthetic speech starts at once, a microphone stream does not), computes fbank with
  the runtime's own frontend (parley/features.py) and SpecAugment (perturb.py), and encodes the text; or reads the
  fbank from a feature cache (feature_cache.py).
- `DurationBatchSampler` groups utterances of similar length into batches of at most `max_seconds` of audio
  (padding stays small), shuffles batches per epoch with a fixed seed, and shards them across DDP ranks.
- `collate` pads a list of items into `(B, T, F)` features with `(B,)` lengths and `(B, U)` tokens with lengths.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from models.data.manifest import Utterance, load_audio
from models.train.feature_cache import FeatureCache
from models.train.perturb import AugmentSettings, pad_with_background, spec_augment, speed_perturb
from parley.features import SAMPLE_RATE, FbankConfig, compute_fbank


class UtteranceDataset(Dataset):
    """Items are `(feats (T, F) float32, tokens (U,) int64, index)`.

    Args:
        utterances: manifest entries.
        encode: text -> token ids (the tokenizer of the output language).
        text_of: which text of an utterance is the target (default: its caption `text`).
        augment: on-the-fly augmentation; None for none.
        seed: base seed; item i of epoch e uses seed (seed, e, i), so runs are reproducible.
        fbank: the frontend's settings (default: the runtime's).
        pad_seconds: digital silence added before and after every utterance (evaluation of lead-in robustness).
        cache: precomputed features of these utterances at the augmentation's speed factors (feature_cache.py):
            the same items without reading audio, resampling or computing fbank; padding in the feature domain.

    Raises:
        ValueError: a cache together with `pad_seconds`, or a cache that lacks a speed factor of `augment`.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        encode,
        text_of=None,
        augment: AugmentSettings | None = None,
        seed: int = 0,
        fbank: FbankConfig | None = None,
        pad_seconds: float = 0.0,
        cache: FeatureCache | None = None,
    ) -> None:
        if cache is not None:
            if pad_seconds:
                raise ValueError("pad_seconds works on audio: it cannot be used with a feature cache")
            speeds = augment.speed_factors if augment is not None else (1.0,)
            if missing := sorted(set(speeds) - set(cache.speed_factors)):
                raise ValueError(f"feature cache {cache.path} lacks speed factor(s) {missing}")
        self.cache = cache
        self.utts = list(utterances)
        self.pad = np.zeros(round(pad_seconds * SAMPLE_RATE), dtype=np.float32)  # silence around every utterance
        self.encode = encode
        self.text_of = text_of or (lambda u: u.text)
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.fbank = fbank or FbankConfig()
        self.tokens = [torch.tensor(self.encode(self.text_of(u)), dtype=torch.long) for u in self.utts]

    def __len__(self) -> int:
        return len(self.utts)

    def durations(self) -> list[float]:
        return [u.duration for u in self.utts]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        rng = random.Random(hash((self.seed, self.epoch, i)))
        if self.cache is not None:
            return self._cached_item(i, rng)
        x = load_audio(self.utts[i].audio)
        if self.augment is not None:
            x = speed_perturb(x, rng.choice(self.augment.speed_factors))
            x = pad_with_background(x, self.augment, rng)
        if self.pad.size:
            x = np.concatenate([self.pad, x, self.pad])
        feats = torch.from_numpy(compute_fbank(x, SAMPLE_RATE, self.fbank))
        if self.augment is not None:
            feats = spec_augment(feats, self.augment, rng)
        return feats, self.tokens[i], i

    def _cached_item(self, i: int, rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, int]:
        """`__getitem__` from the feature cache: the same random draws in the same order."""
        assert self.cache is not None
        a = self.augment
        feats, floor = self.cache.features(self.utts[i], rng.choice(a.speed_factors) if a is not None else 1.0)
        if a is not None:
            feats = self.cache.pad(feats, floor, a, rng)
        out = torch.from_numpy(feats)
        return (spec_augment(out, a, rng) if a is not None else out), self.tokens[i], i


class DurationBatchSampler(Sampler[list[int]]):
    """Batches of similar-duration utterances, at most `max_seconds` of padded audio each.

    Sorting by duration inside buckets of `bucket_size` batches keeps padding low while keeping the batch order
    random. With `world_size` > 1 every rank gets every world_size-th batch (the same number on each rank). Items
    whose lengths change from epoch to epoch (dynamic mixing, models/train/mixing.py) give `durations_of_epoch`,
    which `set_epoch` reads.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_seconds: float,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        bucket_size: int = 50,
        durations_of_epoch: Callable[[int], Sequence[float]] | None = None,
    ) -> None:
        self.durations = list(durations)
        self.durations_of_epoch = durations_of_epoch
        self.max_seconds = max_seconds
        self.shuffle, self.seed = shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.bucket_size = bucket_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.durations_of_epoch is not None:
            self.durations = list(self.durations_of_epoch(epoch))

    def _batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 1000003 + self.epoch)
        order = list(range(len(self.durations)))
        if self.shuffle:
            rng.shuffle(order)
        batches: list[list[int]] = []
        # Sort within large windows so batches are homogeneous but differ from epoch to epoch.
        window = self.bucket_size * max(1, int(self.max_seconds / 3))
        for w0 in range(0, len(order), window):
            chunk = sorted(order[w0 : w0 + window], key=lambda i: self.durations[i])
            batch: list[int] = []
            longest = 0.0
            for i in chunk:
                d = self.durations[i]
                if batch and max(longest, d) * (len(batch) + 1) > self.max_seconds:
                    batches.append(batch)
                    batch, longest = [], 0.0
                batch.append(i)
                longest = max(longest, d)
            if batch:
                batches.append(batch)
        if self.shuffle:
            rng.shuffle(batches)
        n = len(batches) // self.world_size * self.world_size if self.world_size > 1 else len(batches)
        return batches[self.rank : n : self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


def feature_stats(dataset: UtteranceDataset, max_utterances: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and standard deviation `(F,)` of the features of the first utterances (no augmentation)."""
    augment, dataset.augment = dataset.augment, None
    try:
        feats = torch.cat([dataset[i][0] for i in range(min(len(dataset), max_utterances))])
    finally:
        dataset.augment = augment
    return feats.mean(0), feats.std(0)


def collate(items: list[tuple[torch.Tensor, torch.Tensor, int]]) -> dict[str, torch.Tensor]:
    """Pads items into a batch dict: feats (B, T, F), feat_lens (B,), tokens (B, U), token_lens (B,), index (B,)."""
    feats = [f for f, _, _ in items]
    toks = [t for _, t, _ in items]
    B, T, U = len(items), max(f.shape[0] for f in feats), max(1, max(t.numel() for t in toks))
    F = feats[0].shape[1]
    out_f = torch.zeros(B, T, F)
    out_t = torch.zeros(B, U, dtype=torch.long)
    for b, (f, t) in enumerate(zip(feats, toks, strict=True)):
        out_f[b, : f.shape[0]] = f
        out_t[b, : t.numel()] = t
    return {
        "feats": out_f,
        "feat_lens": torch.tensor([f.shape[0] for f in feats]),
        "tokens": out_t,
        "token_lens": torch.tensor([t.numel() for t in toks]),
        "index": torch.tensor([i for _, _, i in items]),
    }


def length_batches(lengths: Sequence[int], max_padded: int, rng: random.Random) -> list[list[int]]:
    """Indices batched by similar length, each batch at most `max_padded` padded items (its longest x its size), the
    batches in random order (the text models' batching: punctuation, LSTM LM)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    out: list[list[int]] = []
    cur: list[int] = []
    width = 0
    for i in order:
        width = max(width, lengths[i])
        if cur and width * (len(cur) + 1) > max_padded:
            out.append(cur)
            cur, width = [], lengths[i]
        cur.append(i)
    if cur:
        out.append(cur)
    rng.shuffle(out)
    return out
