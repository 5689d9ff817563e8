"""Precomputed training features: the fbank of every utterance at every speed factor, computed once.

On a small CPU the data worker shares the cores with the model step: reading the audio, speed perturbation
(resampling) and fbank cost about 20 ms per utterance, a third of a 2-core training step, every epoch again. A cache
computes them once (a few minutes, resumable) and training reads `(T, F)` float16 slices from one memory-mapped file.
What stays on the fly is cheap: the choice of speed, silence padding (done here in the feature domain, see
`FeatureCache.pad`) and SpecAugment. This is what icefall does with lhotse's precomputed (speed-perturbed) features.

    parley train ... --feature-cache data/fbank/en    # built on first use (progress bar), then reused

Layout of a cache directory:
    feats.f16     all frames, float16, appended utterance by utterance, speed by speed
    index.jsonl   one line per cached utterance: {"id", "audio", "entries": {speed: [offset, frames]}, "floor"}
    meta.json     the fbank settings and speed factors the cache was made with
    noise.npy     `(N, F)` fbank of unit-RMS Gaussian noise (the padding's raw material)

Dimension letters: T frames, F fbank bins.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import multiprocessing
import os
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.data.manifest import Utterance, load_audio
from models.train.perturb import AugmentSettings, background_level, noise_floor, speed_perturb
from parley.features import SAMPLE_RATE, FbankConfig, compute_fbank

LOG_FLOOR = float(np.log(np.finfo(np.float32).eps))  # the fbank of digital silence (kaldi's log energy floor)
_NOISE_SECONDS = 30.0


class FeatureCache:
    """A built cache, opened read-only; safe to use from data-loader worker processes (the map opens lazily).

    Raises:
        FileNotFoundError: `path` holds no complete cache.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        meta_file = self.path / "meta.json"
        if not meta_file.exists():
            raise FileNotFoundError(f"no feature cache in {self.path} (build it with build_feature_cache)")
        meta = json.loads(meta_file.read_text())
        self.fbank = FbankConfig.from_dict(meta["fbank"])
        self.speed_factors = tuple(float(s) for s in meta["speed_factors"])
        self.index: dict[str, dict] = {}
        for line in (self.path / "index.jsonl").read_text().splitlines():
            rec = json.loads(line)
            self.index[rec["id"]] = rec
        self.noise = np.load(self.path / "noise.npy")
        self._feats: np.memmap | None = None

    def __contains__(self, utt: Utterance) -> bool:
        rec = self.index.get(utt.id)
        return rec is not None and rec["audio"] == utt.audio

    def missing(self, utts: Sequence[Utterance]) -> list[Utterance]:
        """The utterances this cache lacks (or holds for another audio file)."""
        return [u for u in utts if u not in self]

    def features(self, utt: Utterance, speed: float = 1.0) -> tuple[np.ndarray, float]:
        """`(T, F)` float32 fbank of `utt` played `speed` times faster, and its noise floor (RMS).

        Raises:
            KeyError: the utterance or the speed factor is not in the cache.
        """
        if utt not in self:
            raise KeyError(f"utterance {utt.id} ({utt.audio}) is not in the feature cache {self.path}")
        rec = self.index[utt.id]
        key = _speed_key(speed)
        if key not in rec["entries"]:
            raise KeyError(f"speed {speed} is not in the feature cache {self.path} (it has {self.speed_factors})")
        if self._feats is None:
            self._feats = np.memmap(self.path / "feats.f16", dtype=np.float16, mode="r")
        offset, frames = rec["entries"][key]
        F = self.fbank.num_bins
        feats = np.asarray(self._feats[offset * F : (offset + frames) * F], dtype=np.float32).reshape(frames, F)
        return feats, float(rec["floor"])

    def pad(self, feats: np.ndarray, floor: float, cfg: AugmentSettings, rng: random.Random) -> np.ndarray:
        """`(T, F)` -> `(T', F)`: the feature-domain twin of `perturb.pad_with_background` (same draws, same
        probabilities): background frames before and after the speech at the utterance's own noise level (`floor`,
        RMS), one padding in five digital silence."""
        if cfg.pad_prob <= 0 or rng.random() >= cfg.pad_prob:
            return feats
        shift = self.fbank.frame_shift
        before = round(round(rng.uniform(0, cfg.pad_max_s) * SAMPLE_RATE) / shift)
        after = round(round(rng.uniform(0, cfg.pad_max_s) * SAMPLE_RATE) / shift)
        level = 0.0 if rng.random() < 0.2 else background_level(floor, cfg.pad_floor_dbfs, rng)
        return np.concatenate([self.background(before, level, rng), feats, self.background(after, level, rng)])

    def background(self, frames: int, level: float, rng: random.Random) -> np.ndarray:
        """`(frames, F)` fbank of Gaussian noise of RMS `level` (0: digital silence).

        Exact up to the energy floor: every step of the fbank before the log is linear in power, so scaling the
        noise by `level` adds `2 ln(level)` to each log-mel energy."""
        F = self.fbank.num_bins
        if frames <= 0:
            return np.zeros((0, F), np.float32)
        if level <= 0:
            return np.full((frames, F), LOG_FLOOR, np.float32)
        start = rng.randrange(max(1, self.noise.shape[0] - frames))
        out = self.noise[start : start + frames]
        if out.shape[0] < frames:  # longer than the bank: wrap around
            out = np.resize(self.noise, (frames, F))
        return np.maximum(out + 2.0 * math.log(level), LOG_FLOOR).astype(np.float32)


def _speed_key(speed: float) -> str:
    return f"{float(speed):g}"


def _compute(u: Utterance, speed_factors: tuple[float, ...], fbank: FbankConfig) -> tuple[Utterance, float, list]:
    """One utterance's noise floor and float16 fbank `(T, F)` at each speed factor."""
    x = load_audio(u.audio)
    return (
        u,
        noise_floor(x),
        [compute_fbank(speed_perturb(x, s), SAMPLE_RATE, fbank).astype(np.float16) for s in speed_factors],
    )


def build_feature_cache(
    utts: Sequence[Utterance],
    path: str | os.PathLike,
    speed_factors: Sequence[float] = (0.9, 1.0, 1.1),
    fbank: FbankConfig | None = None,
    progress: bool = True,
    jobs: int = 1,
) -> FeatureCache:
    """Computes the fbank of every utterance at every speed factor into `path` (with `jobs` processes); returns the
    opened cache.

    Resumable: an interrupted build keeps what it wrote and continues; utterances already cached are skipped, so
    the same directory can grow to hold several manifests.

    Raises:
        ValueError: `path` holds a cache made with other fbank settings or speed factors, or one utterance id names
            two audio files (the cache keys features by id: one of them would have none).
        RuntimeError: an audio file cannot be read; the message names it.
    """
    audio_of: dict[str, str] = {}
    for u in utts:
        if audio_of.setdefault(u.id, u.audio) != u.audio:
            raise ValueError(
                f"utterance id {u.id!r} names two audio files, {audio_of[u.id]} and {u.audio}: the feature cache "
                "keys features by id; give the utterances unique ids (parley corpus import jsonl --id-prefix)"
            )
    fbank = fbank or FbankConfig()
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"fbank": fbank.to_dict(), "speed_factors": [float(s) for s in speed_factors]}
    meta_file = out / "meta.json"
    if meta_file.exists():
        old = json.loads(meta_file.read_text())
        if old != meta:
            raise ValueError(f"feature cache {out} was made with {old}, not {meta}: use another directory")
    else:
        meta_file.write_text(json.dumps(meta))
    if not (out / "noise.npy").exists():
        noise = np.random.default_rng(0).standard_normal(round(_NOISE_SECONDS * SAMPLE_RATE)).astype(np.float32)
        np.save(out / "noise.npy", compute_fbank(noise, SAMPLE_RATE, fbank))
    # Keep the index lines whose frames are all in feats.f16; cut off a partly written tail.
    index_file, feats_file = out / "index.jsonl", out / "feats.f16"
    F = fbank.num_bins
    done: dict[str, dict] = {}
    end = 0
    if index_file.exists():
        have = feats_file.stat().st_size // (2 * F) if feats_file.exists() else 0
        for line in index_file.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut short by an interruption
            rec_end = max(o + n for o, n in rec["entries"].values())
            if rec_end > have:
                break
            done[rec["id"]] = rec
            end = max(end, rec_end)
    index_file.write_text("".join(json.dumps(r) + "\n" for r in done.values()))
    with open(feats_file, "ab") as f:
        f.truncate(end * 2 * F)
    todo = list({u.id: u for u in utts if not (u.id in done and done[u.id]["audio"] == u.audio)}.values())
    work = functools.partial(_compute, speed_factors=tuple(speed_factors), fbank=fbank)
    with (
        open(feats_file, "ab") as ff,
        open(index_file, "a") as fi,
        multiprocessing.get_context("spawn").Pool(jobs) if jobs > 1 else contextlib.nullcontext() as pool,
    ):
        results = pool.imap(work, todo, chunksize=16) if pool is not None else map(work, todo)
        for u, floor, feats in tqdm(
            results,
            total=len(todo),
            desc=f"feature cache {out.name}",
            disable=not progress or not todo,
            dynamic_ncols=True,
        ):
            rec = {"id": u.id, "audio": u.audio, "entries": {}, "floor": floor}
            for s, f in zip(speed_factors, feats, strict=True):
                ff.write(f.tobytes())
                rec["entries"][_speed_key(s)] = [end, int(f.shape[0])]
                end += int(f.shape[0])
            ff.flush()
            fi.write(json.dumps(rec) + "\n")
            fi.flush()
    return FeatureCache(out)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m models.train.feature_cache`: build (or grow) a feature cache from manifests ahead of training."""
    import argparse

    from models.data.manifest import read_manifest

    p = argparse.ArgumentParser(
        prog="python -m models.train.feature_cache",
        description="Precompute the fbank of every utterance at every speed factor (resumable).\n\n"
        "    python -m models.train.feature_cache --manifest data/corpus-v2/en/train.jsonl --out data/fbank-v2/en",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--manifest", nargs="+", required=True, help="JSONL manifests whose utterances to cache")
    p.add_argument("--out", required=True, help="the cache folder (the one `parley train --feature-cache` reads)")
    p.add_argument("--speeds", type=float, nargs="+", default=[0.9, 1.0, 1.1], help="speed factors (0.9 1.0 1.1)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    a = p.parse_args(argv)
    utts = [u for m in a.manifest for u in read_manifest(m)]
    cache = build_feature_cache(utts, a.out, speed_factors=a.speeds, jobs=max(1, a.jobs))
    frames = sum(n for rec in cache.index.values() for _, n in rec["entries"].values())
    hours = frames * cache.fbank.frame_shift_ms / 1000 / 3600
    print(json.dumps({"utterances": len(cache.index), "hours": round(hours, 2), "path": str(cache.path)}))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
