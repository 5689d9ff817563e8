"""Training tasks of a multi-head (SM²) model: which speech trains which head, in batches of one task each.

A task is written "SRC:TGT": utterances spoken in SRC, with targets in the output language TGT: their caption
(`text`) when TGT is SRC, else their translation `translations[TGT]`. SM²'s first stage, every language's
captions plus every language into English, is

    parse_tasks(["en:en", "de:de", "es:es", "fr:fr", "it:it", "de:en", "es:en", "fr:en", "it:en", "zh:en"])

and its language expansion (a zh head on a frozen encoder) is ["en:zh", "de:zh", "zh:zh"].

Every batch holds utterances of one task, so a step trains one head (and the shared encoder). `TaskBatchSampler`
interleaves the duration-bucketed batches of all tasks in a random order per epoch, so tasks are drawn in proportion
to their audio; the order depends only on the seed and epoch, so every DDP rank trains the same head at each step.
With a single task the batches are exactly those of its `DurationBatchSampler`.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, Sampler

from models.data.manifest import Utterance
from models.train.dataset import DurationBatchSampler, UtteranceDataset


@dataclass(frozen=True)
class Task:
    """Speech in `source` -> text in `target` (a caption when they are the same language)."""

    source: str
    target: str

    @classmethod
    def parse(cls, spec: str) -> Task:
        """ "de:en" -> Task("de", "en").

        Raises:
            ValueError: not two language names around one ":".
        """
        src, sep, tgt = spec.partition(":")
        if not sep or not src.strip() or not tgt.strip() or ":" in tgt:
            raise ValueError(f"a task is SRC:TGT (e.g. de:en), got {spec!r}")
        return cls(src.strip(), tgt.strip())

    @property
    def name(self) -> str:
        return f"{self.source}:{self.target}"

    @property
    def is_caption(self) -> bool:
        return self.source == self.target

    def text_of(self, utt: Utterance) -> str:
        """The target text of an utterance of this task."""
        return utt.text if self.is_caption else utt.translations[self.target]

    def select(self, utterances: Sequence[Utterance]) -> list[Utterance]:
        """The utterances spoken in `source` that have a `target` text."""
        return [
            u for u in utterances if u.language == self.source and (self.is_caption or self.target in u.translations)
        ]


def parse_tasks(specs: Sequence[str]) -> list[Task]:
    """Tasks from "SRC:TGT" strings, in order.

    Raises:
        ValueError: a malformed or repeated task.
    """
    tasks = [Task.parse(s) for s in specs]
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"repeated task in {names}")
    return tasks


class MultiTaskDataset(Dataset):
    """Several tasks' datasets as one: the global index of item i of task k is `offsets[k] + i`.

    Items are `(feats (T, F), tokens (U,), global index)`, as `UtteranceDataset`'s.
    """

    def __init__(self, datasets: Sequence[UtteranceDataset]) -> None:
        self.datasets = list(datasets)
        self.offsets: list[int] = []
        n = 0
        for d in self.datasets:
            self.offsets.append(n)
            n += len(d)
        self._len = n

    def __len__(self) -> int:
        return self._len

    @property
    def epoch(self) -> int:
        return self.datasets[0].epoch if self.datasets else 0

    @epoch.setter
    def epoch(self, value: int) -> None:
        for d in self.datasets:
            d.epoch = value

    def task_of(self, index: int) -> int:
        """The task of a global index."""
        return bisect.bisect_right(self.offsets, index) - 1

    def durations(self) -> list[float]:
        return [x for d in self.datasets for x in d.durations()]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        k = self.task_of(index)
        feats, tokens, _ = self.datasets[k][index - self.offsets[k]]
        return feats, tokens, index


class TaskBatchSampler(Sampler[list[int]]):
    """The batches of every task's sampler (indices made global), interleaved in a seeded random order.

    Args:
        samplers: one `DurationBatchSampler` per task (each sharded for this rank).
        offsets: the global index of each task's first item (`MultiTaskDataset.offsets`).
        seed: the interleaving's seed (with the epoch).
    """

    def __init__(self, samplers: Sequence[DurationBatchSampler], offsets: Sequence[int], seed: int = 0) -> None:
        assert len(samplers) == len(offsets) > 0, (len(samplers), len(offsets))
        self.samplers, self.offsets, self.seed = list(samplers), list(offsets), seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        for s in self.samplers:
            s.set_epoch(epoch)

    def _batches(self) -> list[list[int]]:
        per_task = [[[i + off for i in b] for b in s] for s, off in zip(self.samplers, self.offsets, strict=True)]
        if len(per_task) == 1:
            return per_task[0]
        order = [k for k, batches in enumerate(per_task) for _ in batches]
        random.Random(self.seed * 1000033 + self.epoch).shuffle(order)
        iters = [iter(b) for b in per_task]
        return [next(iters[k]) for k in order]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return sum(len(s) for s in self.samplers)
