"""Dynamic mixing for t-SOT training: two-talker mixtures drawn afresh every epoch from single-talker utterances.

Dimension letters: T frames, F fbank bins, U tokens.

`parley mix` writes a fixed set of mixtures once; a model trained on them for several epochs hears the same pairs at
the same offsets and levels every time. `MixingDataset` draws `n` mixture plans per epoch instead (the same
`plan_mixture` as `parley mix`: LibriSpeechMix-like offsets, levels in [-gain_db, +gain_db], sequential and single
items), mixes the audio when an item is read, and labels it with the t-SOT serialization of the two utterances' word
timings (models/data/tsot.py). Plan i of epoch e depends only on (seed, e, i), so a resumed run sees the same
mixtures; `durations(epoch)` lets the duration-bucketing sampler batch each epoch's mixtures by their own lengths.

    ds = MixingDataset(utts, encode, MixConfig(speaker="base"), n=40000, seed=0, augment=AugmentSettings())
    sampler = DurationBatchSampler(ds.durations(0), 30.0, durations_of_epoch=ds.durations)
    ds.epoch = 3                        # what the training loop sets; items then come from epoch 3's plans
    feats, tokens, i = ds[0]            # (T, F) float32, (U,) int64 of "<words> <cc> <words> ..."

The manifests' utterances need word timings (every corpus Parley synthesizes has them).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from models.data.manifest import Utterance, load_audio
from models.data.mixtures import MixConfig, MixPlan, mix_audio, mixture_sources, plan_mixture, talker_codes
from models.data.tsot import serialize
from models.train.perturb import AugmentSettings, spec_augment, speed_perturb
from parley.features import SAMPLE_RATE, FbankConfig, compute_fbank


class MixingDataset(Dataset):
    """Items are `(feats (T, F) float32, tokens (U,) int64, index)`, as `UtteranceDataset`'s.

    Args:
        utterances: single-talker sources with word timings.
        encode: text -> token ids (a tokenizer that knows the channel-change token).
        cfg: how mixtures are drawn (`cfg.speaker` tells talkers apart).
        n: mixtures per epoch.
        seed: plan i of epoch e uses the generator seeded with (seed, e, i).
        augment: speed perturbation of the whole mixture and SpecAugment; None for none.
        fbank: the frontend's settings (default: the runtime's).

    Raises:
        ValueError: sources without word timings, n < 1, or fewer than two talkers while two-talker items are asked for.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        encode: Callable[[str], Sequence[int]],
        cfg: MixConfig,
        n: int,
        seed: int = 0,
        augment: AugmentSettings | None = None,
        fbank: FbankConfig | None = None,
    ) -> None:
        if n < 1:
            raise ValueError(f"mixtures per epoch must be >= 1, got {n}")
        self.utts = list(utterances)
        if untimed := [u.id for u in self.utts if not u.words]:
            raise ValueError(f"{len(untimed)} source utterances without word timings (e.g. {untimed[0]})")
        self.encode, self.cfg, self.n, self.seed = encode, cfg, n, seed
        self.augment = augment
        self.fbank = fbank or FbankConfig()
        self._durations = [u.duration for u in self.utts]
        self._speakers = talker_codes(cfg.speakers([u.voice for u in self.utts]))  # (N,) int64
        if cfg.p_single < 1 and len(set(self._speakers.tolist())) < 2:
            raise ValueError("two-talker mixtures need sources of at least two talkers")
        self.epoch = 0
        self._plans: dict[int, list[MixPlan]] = {}

    def __len__(self) -> int:
        return self.n

    def plans(self, epoch: int) -> list[MixPlan]:
        """The `n` mixture plans of `epoch` (drawn once, kept for the latest two epochs)."""
        if epoch not in self._plans:
            self._plans = {e: p for e, p in self._plans.items() if e >= epoch - 1}
            self._plans[epoch] = [
                plan_mixture(np.random.default_rng([self.seed, epoch, i]), self._durations, self._speakers, self.cfg)
                for i in range(self.n)
            ]
        return self._plans[epoch]

    def durations(self, epoch: int | None = None) -> list[float]:
        """Seconds of each mixture of `epoch` (default: the current one)."""
        return [p.duration for p in self.plans(self.epoch if epoch is None else epoch)]

    def label(self, i: int, epoch: int | None = None) -> str:
        """The t-SOT text of mixture i of `epoch` (default: the current one)."""
        p = self.plans(self.epoch if epoch is None else epoch)[i]
        second = None if p.second is None else self.utts[p.second]
        return serialize(mixture_sources(p, self.utts[p.first], second)).text

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        p = self.plans(self.epoch)[i]
        rng = random.Random(hash((self.seed, self.epoch, i)))  # a tuple of ints hashes alike in every process
        x1 = load_audio(self.utts[p.first].audio)
        x2 = None if p.second is None else load_audio(self.utts[p.second].audio)
        y = mix_audio(p, x1, x2)  # (T_samples,)
        if self.augment is not None:  # the whole mixture: word order, hence the label, stays
            y = speed_perturb(y, rng.choice(self.augment.speed_factors))
        feats = torch.from_numpy(compute_fbank(y, SAMPLE_RATE, self.fbank))
        if self.augment is not None:
            feats = spec_augment(feats, self.augment, rng)
        tokens = torch.tensor(self.encode(self.label(i)), dtype=torch.long)
        return feats, tokens, i
