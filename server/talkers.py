"""Talkers: who speaks, numbered the same way across all the segments of a stream.

A transducer's finals say what was said; a multi-talker head also splits it into two *virtual* channels, which restart
at every endpoint (server/tsot.py). A stream that asks for talkers (start message `"talkers": true`) gets, with each
final, the stream-wide number of the talker behind each channel: 0 for the first voice the stream heard, 1 for the
next new one, and so on, so that a caption front-end can label turns "talker 0", "talker 1" across a whole conversation.

    model = TalkerModel.load(bundle / "talkers.npz")
    tracker = TalkerTracker(model)
    e = model.embed(frames[mask])      # (F_frames, 80) log-mel frames of one channel's words -> (D,) or None
    tracker.assign([e])                # -> [0]: the talker number of each channel (None: too little speech)

The embedding is the mean and standard deviation of the voiced log-mel frames of the channel's own speech (near
its words and not near the other channel's), projected by linear discriminant analysis trained on the corpus's
synthetic voices (models/train/talkers.py: many voices, several sentences each) and scaled to unit length. The
tracker compares it with each known talker's centroid (the normalized sum of its embeddings) by cosine: at or above
the model's threshold it is that talker (the closest), else a new one. The channels of one segment are different
talkers. No torch here; the frames are those the encoder read, so no second frontend runs.

Dimension letters: T fbank frames, F fbank bins, S statistics (2F), D embedding dimensions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MIN_FRAMES = 25  # a channel with fewer voiced frames of its own speech (0.25 s) gets no talker: too little to compare
MAX_TALKERS = 16  # a stream's talkers at most; later voices go to the closest one
MAX_KEPT_S = 30.0  # a stream keeps at most this much of its open segment's frames for the talkers of its final
VOICED_RANGE = 5.0  # natural-log power (about 22 dB) below the loud frames that still counts as speech (`voiced`)
PAD_S = 0.15  # a word's speech reaches this far beyond its emission times on either side (`channel_masks`)


def voiced(frames: np.ndarray) -> np.ndarray:
    """`(T, F)` log-mel frames -> `(T,)` bool: the frames within `VOICED_RANGE` of the loud ones (their mean log-mel
    at least the 90th percentile's minus the range): speech, not the pauses between words."""
    if not len(frames):
        return np.zeros(0, dtype=bool)
    level = frames.mean(axis=1)
    return level >= np.quantile(level, 0.9) - VOICED_RANGE


def speech_stats(frames: np.ndarray, min_frames: int = MIN_FRAMES) -> np.ndarray | None:
    """`(T, F)` log-mel frames of one talker -> `(S,)` float64, the mean and standard deviation per bin of the
    `voiced` ones; None when fewer than `min_frames` are."""
    x = np.asarray(frames, dtype=np.float64)
    x = x[voiced(x)]
    if len(x) < max(1, min_frames):
        return None
    return np.concatenate([x.mean(axis=0), x.std(axis=0)])


def channel_masks(num_frames: int, first: int, spans: Sequence[Sequence[tuple[float, float]]]) -> list[np.ndarray]:
    """Which of `num_frames` fbank frames (10 ms each, the first at frame index `first` of the stream) are each
    channel's own: within `PAD_S` of one of its words and of no other channel's word. A transducer's word times are
    those of its emissions, which start late and do not tile the speech, hence the margin.

    Args:
        spans: each channel's words as `(start_s, end_s)`, seconds from the stream's start.

    Returns:
        One `(num_frames,)` bool mask per channel of `spans`.
    """
    inside = np.zeros((len(spans), num_frames), dtype=bool)
    for c, words in enumerate(spans):
        for start, end in words:
            a = max(0, round((start - PAD_S) * 100) - first)
            b = min(num_frames, round((end + PAD_S) * 100) - first)
            if b > a:
                inside[c, a:b] = True
    others = inside.sum(axis=0)
    return [m & (others == 1) for m in inside]


@dataclass(frozen=True)
class TalkerModel:
    """The embedding of a channel's frames and the threshold that decides "the same talker".

    Attributes:
        mean: `(S,)` the training statistics' mean, subtracted first.
        proj: `(S, D)` the discriminant projection.
        threshold: cosine with a talker's centroid at or above which a segment is that talker.
        min_frames: frames of a channel's own speech below which it gets no talker.
        card: how it was trained and what it measured (models/train/talkers.py).
    """

    mean: np.ndarray
    proj: np.ndarray
    threshold: float
    min_frames: int = MIN_FRAMES
    card: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mean.ndim != 1 or self.proj.ndim != 2 or self.proj.shape[0] != self.mean.shape[0]:
            raise ValueError(f"talker model: mean {self.mean.shape} and projection {self.proj.shape} do not fit")
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"talker model: threshold {self.threshold} is not a cosine in [-1, 1]")

    @property
    def num_bins(self) -> int:
        """F: the fbank bins it reads."""
        return self.mean.shape[0] // 2

    def embed(self, frames: np.ndarray) -> np.ndarray | None:
        """`(T, F)` frames of one talker -> `(D,)` float32 of unit length; None with fewer than `min_frames` voiced."""
        if frames.ndim != 2 or frames.shape[1] != self.num_bins:
            raise ValueError(f"talker model reads {self.num_bins} fbank bins, got frames {frames.shape}")
        stats = speech_stats(frames, self.min_frames)
        if stats is None:
            return None
        e = (stats - self.mean) @ self.proj
        return (e / max(float(np.linalg.norm(e)), 1e-12)).astype(np.float32)

    def save(self, path: str | Path) -> None:
        """Writes the model as one `.npz` (arrays, threshold, and the card as JSON)."""
        with open(path, "wb") as f:  # np.savez would append ".npz" to a name without it
            np.savez(
                f,
                mean=self.mean.astype(np.float32),
                proj=self.proj.astype(np.float32),
                threshold=np.float32(self.threshold),
                min_frames=np.int32(self.min_frames),
                card=np.array(json.dumps(self.card, ensure_ascii=False)),
            )

    @classmethod
    def load(cls, path: str | Path) -> TalkerModel:
        """Reads a `save`d model.

        Raises:
            ValueError: a file that is not one (the message starts with its path).
        """
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(
                    mean=z["mean"].astype(np.float64),
                    proj=z["proj"].astype(np.float64),
                    threshold=float(z["threshold"]),
                    min_frames=int(z["min_frames"]),
                    card=json.loads(str(z["card"])),
                )
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"{path}: not a talker model ({e})") from e


class TalkerTracker:
    """One stream's talkers: their centroids, and the number each segment's channels get.

    Args:
        model: the embedding's threshold.
        max_talkers: talkers at most; once reached, a new voice gets the closest talker.
    """

    def __init__(self, model: TalkerModel, max_talkers: int = MAX_TALKERS) -> None:
        self.model = model
        self.max_talkers = max_talkers
        self.sums: list[np.ndarray] = []  # (D,) the sum of each talker's embeddings

    def similarity(self, e: np.ndarray) -> np.ndarray:
        """`(D,)` -> `(N,)` cosine of `e` with each of the N talkers' centroids."""
        if not self.sums:
            return np.zeros(0)
        c = np.stack(self.sums)
        c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
        return c @ e

    def assign(self, embeddings: Sequence[np.ndarray | None]) -> list[int | None]:
        """The talker of each channel of one segment (None where the channel has no embedding), and the centroids
        updated with them. Channels of a segment get different talkers: the closest (channel, talker) pair at or above
        the threshold is taken first, then the next among those left; a channel left over is a new talker."""
        out: list[int | None] = [None] * len(embeddings)
        present = [c for c, e in enumerate(embeddings) if e is not None]
        sims = {c: self.similarity(embeddings[c]) for c in present}  # type: ignore[arg-type]
        taken: set[int] = set()
        todo = set(present)
        while todo:
            best = max(
                ((float(sims[c][t]), c, t) for c in todo for t in range(len(self.sums)) if t not in taken),
                default=None,
            )
            if best is not None and best[0] >= self.model.threshold:
                _, c, t = best
            else:
                c = min(todo)  # every pair left is below the threshold: each channel left is a new talker
                if len(self.sums) < self.max_talkers:
                    t = len(self.sums)
                    self.sums.append(np.zeros_like(embeddings[c]))  # type: ignore[arg-type]
                else:  # no room: the closest talker not yet taken
                    free = [k for k in range(len(self.sums)) if k not in taken]
                    if not free:
                        todo.discard(c)
                        continue
                    t = max(free, key=lambda k: float(sims[c][k]))
            out[c] = t
            taken.add(t)
            todo.discard(c)
        for c in present:
            if out[c] is not None:
                self.sums[out[c]] = self.sums[out[c]] + embeddings[c]  # type: ignore[index,operator]
        return out
