"""Two-talker mixtures for t-SOT training and evaluation, simulated from a manifest with word timings.

    parley mix --manifest data/corpus-en/en/train.jsonl --out data/mix-en/train --n 20000 --seed 0 --jobs 2
    parley mix --manifest data/corpus-en/en/test.jsonl --out data/mix-en/test --n 600 --seed 1

Each mixture is one of (proportions set by --p-single / --p-sequential, the rest overlap):

- "overlap": two utterances of different voices, the second starting at a uniformly drawn time within the first
  (as LibriSpeechMix does: mean overlap ratio about 30 %), at a level drawn uniformly in [-5, +5] dB relative to the
  first;
- "sequential": the second starts after the first ended (a gap of 0-0.5 s): no overlap, but two talkers;
- "single": one utterance alone (so the model keeps working on single-talker audio).

Layout of `--out`::

    mix.jsonl                 the manifest (models/data/manifest.py) with extra keys, see below
    wav/<shard>/<id>.wav      16 kHz mono 16-bit audio

A line's `text` is the t-SOT label (models/data/tsot.py: words by end time, `<cc>` at channel changes), so
`parley train` takes the manifest as is. `words` are the serialized words with their times in the mixture; the
extra keys are `tsot_words` (each word with its virtual `channel`, source `speaker` (voice) and times), `channels`
(the reference text of each virtual channel, for cpWER), `kind`, `overlap` (overlapped seconds / mixture seconds),
`offset_s`, `gain_db` and `sources` (the source utterance ids). Everything depends only on (seed, index), and an
interrupted run resumes: each finished mixture leaves its WAV and a one-line sidecar (`<id>.json`) until mix.jsonl
is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.data.manifest import Utterance, Word, read_manifest
from models.data.tsot import serialize
from parley.audio import read_wav, write_wav
from parley.features import SAMPLE_RATE

KINDS = ("overlap", "sequential", "single")
_SHARD = 1000  # files per folder
_PEAK = 0.98  # mixtures louder than this are scaled down (int16 clipping)


@dataclass(frozen=True)
class MixConfig:
    """How mixtures are drawn."""

    p_single: float = 0.1  # share of single-talker items
    p_sequential: float = 0.1  # share of two-talker items without overlap
    gain_db: float = 5.0  # the second talker's level is drawn uniformly in [-gain_db, +gain_db] dB
    max_gap_s: float = 0.5  # "sequential": silence between the two utterances, drawn in [0, max_gap_s]
    # Who counts as another talker: "voice", any other voice string (a voice at another rate or pitch too, as the
    # committed en-tsot-small was trained); "base", another speaker (`speaker_of`: the voice without its prosody).
    speaker: str = "voice"

    def __post_init__(self) -> None:
        if self.p_single < 0 or self.p_sequential < 0 or self.p_single + self.p_sequential > 1:
            raise ValueError(f"p_single {self.p_single} and p_sequential {self.p_sequential} must be >= 0, sum <= 1")
        if self.speaker not in ("voice", "base"):
            raise ValueError(f"speaker {self.speaker!r}: choose voice or base")

    def speakers(self, voices: Sequence[str]) -> list[str]:
        """The talker of each voice string, as this config tells them apart."""
        return list(voices) if self.speaker == "voice" else [speaker_of(v) for v in voices]


def speaker_of(voice: str) -> str:
    """The speaker of a manifest's voice string: what comes before its prosody ("mbrola:mb-us1/r1.12/p1.05" ->
    "mbrola:mb-us1", "en-gb-x-gbcwmd+max/p32/pr62/r173/g0" -> "en-gb-x-gbcwmd+max")."""
    return voice.split("/", 1)[0]


@dataclass(frozen=True)
class MixPlan:
    """One mixture's timing: which utterances (indices into the source list), where the second starts, its level."""

    kind: str
    first: int
    second: int | None  # None for "single"
    offset_s: float  # start of the second utterance in the mixture
    gain_db: float
    duration: float  # of the mixture
    spans: tuple[tuple[float, float], ...]  # (start, end) of each utterance in the mixture

    @property
    def overlap(self) -> float:
        """Overlapped seconds / mixture seconds (0 for single and sequential items)."""
        if len(self.spans) < 2:
            return 0.0
        (s1, e1), (s2, e2) = self.spans
        return max(0.0, min(e1, e2) - max(s1, s2)) / self.duration


def talker_codes(voices: Sequence[str]) -> np.ndarray:
    """`(N,)` int64: one code per distinct talker string, for `plan_mixture` (comparing codes is fast)."""
    return np.unique(np.asarray(voices, dtype=object).astype(str), return_inverse=True)[1].reshape(-1).astype(np.int64)


def plan_mixture(
    rng: np.random.Generator, durations: Sequence[float], voices: Sequence[str] | np.ndarray, cfg: MixConfig
) -> MixPlan:
    """Draws one mixture's plan from the source utterances' durations and talkers (no audio: testable on timings).

    `voices`: the talker of each utterance, as strings or as `talker_codes` (the same draws, faster on large sets).

    Raises:
        ValueError: fewer than two talkers in the sources while two-talker items are asked for.
    """
    n = len(durations)
    first = int(rng.integers(n))
    u = rng.random()
    kind = "single" if u < cfg.p_single else "sequential" if u < cfg.p_single + cfg.p_sequential else "overlap"
    if kind == "single":
        d = float(durations[first])
        return MixPlan("single", first, None, 0.0, 0.0, d, ((0.0, d),))
    codes = voices if isinstance(voices, np.ndarray) else talker_codes(voices)
    others = np.flatnonzero(codes != codes[first])  # in index order, as the draw below expects
    if not others.size:
        raise ValueError("two-talker mixtures need utterances of at least two voices")
    second = int(others[int(rng.integers(others.size))])
    d1, d2 = float(durations[first]), float(durations[second])
    offset = d1 + rng.uniform(0, cfg.max_gap_s) if kind == "sequential" else rng.uniform(0, d1)
    gain = float(rng.uniform(-cfg.gain_db, cfg.gain_db))
    return MixPlan(kind, first, second, float(offset), gain, max(d1, offset + d2), ((0.0, d1), (offset, offset + d2)))


def plan_mixtures(
    durations: Sequence[float], voices: Sequence[str], n: int, seed: int, cfg: MixConfig
) -> list[MixPlan]:
    """`n` plans; plan i depends only on (seed, i)."""
    codes = talker_codes(voices)
    return [plan_mixture(np.random.default_rng([seed, i]), durations, codes, cfg) for i in range(n)]


@dataclass(frozen=True)
class _Job:
    out: str
    index: int
    plan: MixPlan
    first: Utterance
    second: Utterance | None


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def shifted(words: Sequence[Word], offset: float) -> list[Word]:
    """`words` moved `offset` seconds later (into a mixture that starts them there)."""
    return [Word(w.word, w.start + offset, w.end + offset) for w in words]


def mix_audio(plan: MixPlan, x1: np.ndarray, x2: np.ndarray | None) -> np.ndarray:
    """The mixture's samples `(T_samples,)` float32: the second utterance (None for "single") at the plan's offset and
    level relative to the first (by RMS), scaled down if its peak would clip as int16."""
    if x2 is None:
        y = x1.astype(np.float32)
    else:
        x2 = x2 * (_rms(x1) / _rms(x2) * 10 ** (plan.gain_db / 20))  # the second's level relative to the first
        start = round(plan.offset_s * SAMPLE_RATE)
        y = np.zeros(max(x1.size, start + x2.size), dtype=np.float32)  # (T_samples,)
        y[: x1.size] += x1
        y[start : start + x2.size] += x2
    peak = float(np.abs(y).max(initial=0.0))
    return y * (_PEAK / peak) if peak > _PEAK else y


def mixture_sources(plan: MixPlan, first: Utterance, second: Utterance | None) -> list[tuple[str, list[Word]]]:
    """(speaker, words with their times in the mixture) of each talker, what `serialize` takes."""
    sources = [(first.voice, list(first.words))]
    if second is not None:
        sources.append((second.voice, shifted(second.words, round(plan.offset_s * SAMPLE_RATE) / SAMPLE_RATE)))
    return sources


def mix_one(job: _Job) -> dict:
    """Mixes one item's audio, writes its WAV, returns its manifest line (a dict). Runs in a worker process."""
    p = job.plan
    uid = f"mix-{job.index:07d}"
    wav = Path(job.out) / "wav" / f"{job.index // _SHARD:04d}" / f"{uid}.wav"
    sidecar = wav.with_suffix(".json")
    if sidecar.exists() and wav.exists():
        return json.loads(sidecar.read_text(encoding="utf-8"))
    x1, sr1 = read_wav(job.first.audio)
    assert sr1 == SAMPLE_RATE, f"{job.first.audio}: {sr1} Hz, expected {SAMPLE_RATE}"
    x2 = None
    if job.second is not None:
        x2, sr2 = read_wav(job.second.audio)
        assert sr2 == SAMPLE_RATE, f"{job.second.audio}: {sr2} Hz, expected {SAMPLE_RATE}"
    y = mix_audio(p, x1, x2)
    sources = mixture_sources(p, job.first, job.second)
    write_wav(wav, y, SAMPLE_RATE)
    label = serialize(sources)
    utt = Utterance(
        id=uid,
        audio=str(wav.relative_to(job.out)),
        duration=y.size / SAMPLE_RATE,
        language=job.first.language,
        text=label.text,
        voice="|".join(v for v, _ in sources),
        words=[Word(w.word, w.start, w.end) for w in label.words],
    )
    line = utt.to_dict()
    line.update(
        tsot_words=[w.to_dict() for w in label.words],
        channels=label.channel_texts(),
        kind=p.kind,
        overlap=round(p.overlap, 4),
        offset_s=round(p.offset_s, 4),
        gain_db=round(p.gain_db, 2),
        sources=[job.first.id] + ([job.second.id] if job.second else []),
    )
    part = sidecar.with_name(sidecar.name + ".part")  # a run killed mid-write leaves no half sidecar
    part.write_text(json.dumps(line, ensure_ascii=False), encoding="utf-8")
    os.replace(part, sidecar)
    return line


def simulate(
    manifest: str | os.PathLike, out: str | os.PathLike, n: int, seed: int, cfg: MixConfig, jobs: int = 1
) -> Path:
    """Writes `n` mixtures of `manifest`'s utterances into `out`; returns the path of `out`/mix.jsonl.

    Raises:
        ValueError: the manifest has utterances without word timings, or fewer than two voices.
    """
    utts = read_manifest(manifest)
    if untimed := [u.id for u in utts if not u.words]:
        raise ValueError(f"{manifest}: {len(untimed)} utterances without word timings (e.g. {untimed[0]})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plans = plan_mixtures([u.duration for u in utts], cfg.speakers([u.voice for u in utts]), n, seed, cfg)
    work = [
        _Job(str(out), i, p, utts[p.first], None if p.second is None else utts[p.second]) for i, p in enumerate(plans)
    ]
    lines: list[dict] = []
    with (
        get_context("fork").Pool(max(1, jobs)) as pool,
        tqdm(total=len(work), desc="mix", unit="mix", dynamic_ncols=True) as bar,
    ):
        for line in pool.imap(mix_one, work, chunksize=4):
            lines.append(line)
            bar.update(1)
    path = out / "mix.jsonl"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    for sidecar in (out / "wav").rglob("*.json"):
        sidecar.unlink()
    return path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="parley mix", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--manifest", required=True, type=Path, help="source manifest with word timings (JSONL)")
    p.add_argument("--out", required=True, type=Path, help="folder for mix.jsonl and wav/ (created if missing)")
    p.add_argument("--n", type=int, required=True, help="number of mixtures")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same mixtures")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument("--p-single", type=float, default=0.1, help="share of single-talker items (default: 0.1)")
    p.add_argument("--p-sequential", type=float, default=0.1, help="share of non-overlapping pairs (default: 0.1)")
    p.add_argument("--gain-db", type=float, default=5.0, help="second talker's level range, +- dB (default: 5)")
    p.add_argument(
        "--speaker",
        choices=("voice", "base"),
        default="voice",
        help="another talker is another voice string (default) or another speaker, prosody aside (base)",
    )
    a = p.parse_args(argv)
    try:
        cfg = MixConfig(p_single=a.p_single, p_sequential=a.p_sequential, gain_db=a.gain_db, speaker=a.speaker)
        path = simulate(a.manifest, a.out, a.n, a.seed, cfg, a.jobs)
    except (FileNotFoundError, ValueError) as e:
        print(f"parley mix: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
