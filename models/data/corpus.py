"""Builds Parley's synthetic speech corpus: grammar sentences spoken by espeak-ng voices, augmented, with manifests.

    parley corpus build --out data/corpus --languages en --hours 20 --jobs 2
    parley corpus build --out data/corpus --languages en,de,es,fr,it,zh --hours 2 --dev 300 --test 300
    parley corpus import librispeech /data/LibriSpeech/train-clean-100 data/libri/train.jsonl

Layout of `--out`::

    <lang>/<split>.jsonl                      one manifest per language and split (models/data/manifest.py)
    <lang>/balance.jsonl                      with --min-per-template K: extra train utterances (see below)
    <lang>/wav/<split>/<shard>/<id>.wav       16 kHz mono 16-bit audio
    corpus.json                               the settings that built it

Every utterance depends only on (seed, language, split, index): the same seed gives the same corpus whatever the
number of processes, and an interrupted build resumes where it stopped (finished utterances are kept as a WAV plus
a one-line sidecar until the split's manifest is written). espeak-ng segfaults on a few sentence and voice pairs
(one in the 20 h zh train split); such a sentence is spoken by another voice of its split, drawn from the same
(seed, language, split, index), and the manifest's `voice` names the one used.

Balance. The grammar draws a template uniformly and keeps only new sentences, so a template with few slot
combinations runs dry: "do i need a visa for {country}" gives 30 train sentences where "set a timer for ..." gives
600, and each is spoken once. With `--min-per-template K`, every train template with fewer than K utterances gets
its own train sentences spoken again by other train voices, round robin (at most `MAX_REPEATS` times each), until
it has K; they go to `balance.jsonl`, a manifest to train on next to train.jsonl. No sentence leaves its split.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from models.data import grammar
from models.data.augment import AugmentConfig, augment
from models.data.espeak import Synthesis, SynthesisCrashError, synthesize
from models.data.jobs import cleanup, from_sidecar, manifest_size, run_split
from models.data.manifest import Utterance, Word, first_hours, iter_manifest, write_manifest
from models.data.voices import Voice, sample_voice
from parley.audio import write_wav
from parley.features import SAMPLE_RATE
from parley.resample import resample

_SHARD = 1000  # files per folder
CRASH_RETRIES = 3  # other voices tried, one after another, when espeak-ng crashes on a sentence
MAX_REPEATS = 8  # a balanced sentence is spoken at most this many times in all (train + balance)
BALANCE = "balance"  # the manifest of the extra train utterances


@dataclass
class CorpusConfig:
    """What `parley corpus build` makes; saved as corpus.json next to the manifests."""

    languages: tuple[str, ...] = ("en",)
    hours: float = 1.0  # train audio per language, in hours (augmented audio counts: one rendering each)
    dev: int = 200  # utterances per language
    test: int = 200
    test_unseen: int = 200
    min_per_template: int = 0  # > 0: balance.jsonl tops every train template up to this many utterances
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class _Job:
    out: str
    language: str
    split: str
    index: int
    sentence: grammar.Sentence
    voice: object
    seed: int
    augment: AugmentConfig
    part: str = ""  # the manifest it goes to, when not its split's (BALANCE)

    @property
    def manifest(self) -> str:
        return self.part or self.split


def _utt_id(language: str, split: str, index: int) -> str:
    return f"{language}-{split}-{index:07d}"


def _wav_path(out: Path, job: _Job) -> Path:
    uid = _utt_id(job.language, job.manifest, job.index)
    return out / job.language / "wav" / job.manifest / f"{job.index // _SHARD:04d}" / f"{uid}.wav"


def synthesize_utterance(job: _Job) -> Utterance:
    """Speaks, resamples to 16 kHz and augments one sentence; writes its WAV; returns its manifest entry.

    Runs in a worker process. Skips the work when a finished sidecar from an earlier run is there.
    """
    out = Path(job.out)
    wav = _wav_path(out, job)
    sidecar = wav.with_suffix(".json")
    if sidecar.exists() and wav.exists():
        return from_sidecar(sidecar)
    lang = job.language
    text = job.sentence.text[lang]
    syn, voice = _speak(job, text)
    x = resample(syn.samples, syn.sample_rate, SAMPLE_RATE)
    key = [job.seed, grammar.LANGUAGES.index(lang), grammar.SPLITS.index(job.split), job.index]
    rng = np.random.default_rng(key + ([1] if job.part else []))
    x = augment(x, SAMPLE_RATE, rng, job.augment)
    write_wav(wav, x, SAMPLE_RATE)
    utt = Utterance(
        id=_utt_id(lang, job.manifest, job.index),
        audio=os.path.abspath(wav),  # the sidecar then reads the same from any working directory
        duration=x.size / SAMPLE_RATE,
        language=lang,
        text=grammar.display_text(lang, text),
        translations={k: grammar.display_text(k, v) for k, v in job.sentence.text.items() if k != lang},
        voice=voice.name,
        words=[Word(w.word, w.start, w.end) for w in syn.words],
    )
    sidecar.write_text(json.dumps(utt.to_dict(), ensure_ascii=False))
    return utt


def _speak(job: _Job, text: str) -> tuple[Synthesis, Voice]:
    """The job's sentence spoken by its voice; if espeak-ng crashes on that pair, by up to `CRASH_RETRIES` other
    voices of the same split, drawn from the job's own seed (the corpus stays reproducible). Returns the voice used."""
    rng = random.Random(f"{job.seed}/{job.language}/{job.manifest}/{job.index}/crash")
    voices = [job.voice, *(sample_voice(job.language, rng, job.split) for _ in range(CRASH_RETRIES))]
    for voice in voices[:-1]:
        try:
            return synthesize(text, **voice.synth_kwargs()), voice
        except SynthesisCrashError:
            continue
    return synthesize(text, **voices[-1].synth_kwargs()), voices[-1]


def _split_seed(cfg: CorpusConfig, language: str, split: str) -> int:
    return cfg.seed * 1000 + grammar.LANGUAGES.index(language) * 10 + grammar.SPLITS.index(split)


def _jobs(cfg: CorpusConfig, out: Path, language: str, split: str, n: int) -> list[_Job]:
    split_seed = _split_seed(cfg, language, split)
    sentences = grammar.generate(split, n, seed=split_seed)
    rng = random.Random(split_seed)
    return [
        _Job(str(out), language, split, i, s, sample_voice(language, rng, split), cfg.seed, cfg.augment)
        for i, s in enumerate(sentences)
    ]


def _balance_jobs(cfg: CorpusConfig, train: list[_Job]) -> list[_Job]:
    """Extra train jobs: each template's train sentences again, new voices, until it has `min_per_template`."""
    if not train:
        return []
    by_template: dict[str, list[grammar.Sentence]] = {}
    for job in train:
        by_template.setdefault(job.sentence.template, []).append(job.sentence)
    extra: list[grammar.Sentence] = []
    for name in sorted(by_template):
        sentences = by_template[name]
        n = min(cfg.min_per_template - len(sentences), (MAX_REPEATS - 1) * len(sentences))
        extra += [sentences[i % len(sentences)] for i in range(max(0, n))]
    first = train[0]
    rng = random.Random(_split_seed(cfg, first.language, "train") + 7)
    return [
        replace(first, index=i, sentence=s, voice=sample_voice(first.language, rng, "train"), part=BALANCE)
        for i, s in enumerate(extra)
    ]


def build_corpus(out: str | os.PathLike, cfg: CorpusConfig, jobs: int = 1) -> dict:
    """Builds (or resumes) the corpus in `out`; returns a summary: utterances and hours per language and split."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "corpus.json").write_text(json.dumps(asdict(cfg), indent=2))
    summary: dict = {}
    for lang in cfg.languages:
        if lang not in grammar.LANGUAGES:
            raise ValueError(f"unknown language {lang!r}; the grammar has {grammar.LANGUAGES}")
        parts = grammar.SPLITS + ((BALANCE,) if cfg.min_per_template > 0 else ())
        # Average utterances are 2-3 s; ask the grammar for more train sentences than can be needed.
        n_train = int(cfg.hours * 3600 / 1.0) + 100
        for split in parts:
            manifest = out / lang / f"{split}.jsonl"
            if manifest.exists():
                n, secs = manifest_size(manifest)
                summary.setdefault(lang, {})[split] = {"utterances": n, "hours": secs / 3600, "resumed": True}
                continue
            t0 = time.time()
            if split == "train":
                utts = run_split(
                    _jobs(cfg, out, lang, split, n_train),
                    jobs,
                    cfg.hours * 3600,
                    f"{lang}/{split}",
                    synthesize_utterance,
                )
            elif split == BALANCE:
                # The train split is made of the first of its jobs, in order, up to the hours asked for.
                made, _ = manifest_size(out / lang / "train.jsonl")
                todo = _balance_jobs(cfg, _jobs(cfg, out, lang, "train", n_train)[:made])
                utts = run_split(todo, jobs, None, f"{lang}/{split}", synthesize_utterance)
            else:
                utts = run_split(
                    _jobs(cfg, out, lang, split, getattr(cfg, split)),
                    jobs,
                    None,
                    f"{lang}/{split}",
                    synthesize_utterance,
                )
            write_manifest(manifest, utts)
            cleanup(out / lang / "wav" / split, {Path(u.audio).name for u in utts})
            secs = sum(u.duration for u in utts)
            wall = time.time() - t0
            summary.setdefault(lang, {})[split] = {
                "utterances": len(utts),
                "hours": secs / 3600,
                "wall_seconds": wall,
                "audio_hours_per_minute": secs / 3600 / max(wall / 60, 1e-9),
            }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def head_main(argv: Sequence[str]) -> int:
    """`parley corpus head`: write a manifest's first N hours (`models.data.manifest.first_hours`)."""
    p = argparse.ArgumentParser(
        prog="parley corpus head",
        description="Write the first N hours of a manifest: the train split that a corpus built with --hours N held "
        "(a larger build only appends), for a training stage that ran on part of the corpus. Written beside the "
        "manifest, the audio paths stay relative.",
    )
    p.add_argument("--manifest", type=Path, required=True, help="the manifest to cut (JSONL)")
    p.add_argument("--hours", type=float, required=True, help="hours of audio to keep, from the first line on")
    p.add_argument("--out", type=Path, required=True, help="the manifest to write")
    a = p.parse_args(argv)
    if not a.manifest.is_file():
        p.error(f"no manifest at {a.manifest}")
    if a.out.resolve() == a.manifest.resolve():
        p.error("--out must not be the manifest it is cut from")
    try:
        utts = first_hours(iter_manifest(a.manifest), a.hours)
    except ValueError as e:
        p.error(f"{a.manifest}: {e}")
    write_manifest(a.out, utts)
    print(f"{a.out}: {len(utts)} utterances, {sum(u.duration for u in utts) / 3600:.3f} h")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["import"]:
        from models.data import importers

        return int(importers.main(argv[1:]) or 0)
    if argv[:1] == ["open"]:
        from models.data import opencorpus

        return int(opencorpus.main(argv[1:]) or 0)
    if argv[:1] == ["head"]:
        return head_main(argv[1:])
    p = argparse.ArgumentParser(
        prog="parley corpus", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="synthesize a corpus with espeak-ng")
    b.add_argument("--out", type=Path, required=True, help="output folder (resumes if it has a partial build)")
    b.add_argument("--languages", default="en", help="comma-separated, from en,de,es,fr,it,zh (default: en)")
    b.add_argument("--hours", type=float, default=1.0, help="hours of train audio per language (default: 1)")
    b.add_argument("--dev", type=int, default=200, help="dev utterances per language (default: 200)")
    b.add_argument("--test", type=int, default=200, help="test utterances per language, held-out voices")
    b.add_argument(
        "--test-unseen",
        type=int,
        default=200,
        help="utterances per language from template families never seen in training",
    )
    b.add_argument(
        "--min-per-template",
        type=int,
        default=0,
        help="also write balance.jsonl: train templates with fewer utterances are re-spoken up to this many "
        f"(at most {MAX_REPEATS} renderings per sentence; default 0: no balance manifest)",
    )
    b.add_argument("--seed", type=int, default=0, help="the same seed gives the same corpus (default: 0)")
    b.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="synthesis processes (default: all cores)")
    b.add_argument("--no-augment", action="store_true", help="clean speech only: no noise, gain or reverb")
    sub.add_parser("import", help="import a real corpus: `parley corpus import --help`")
    sub.add_parser("open", help="the open-domain corpus from a text corpus, many engines: `parley corpus open --help`")
    sub.add_parser("head", help="the first N hours of a manifest: `parley corpus head --help`")
    args = p.parse_args(argv)
    langs = tuple(x.strip() for x in args.languages.split(",") if x.strip())
    cfg = CorpusConfig(
        languages=langs,
        hours=args.hours,
        dev=args.dev,
        test=args.test,
        test_unseen=args.test_unseen,
        min_per_template=args.min_per_template,
        seed=args.seed,
        augment=AugmentConfig.disabled() if args.no_augment else AugmentConfig(),
    )
    summary = build_corpus(args.out, cfg, jobs=max(1, args.jobs))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
