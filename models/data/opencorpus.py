"""The open-domain speech corpus: sentences of the text corpus (models.data.textcorpus) spoken by every engine.

    parley text build --out data/text
    parley corpus open --text data/text --out data/corpus-v2 --languages en --hours 50 --jobs 2
    parley corpus open --text data/text --out data/corpus-v2 --languages de,es,fr,it,zh --hours 14 --jobs 2

Splits (per language, in `<out>/<lang>/<split>.jsonl`, the layout of models/data/corpus.py):

- train, dev: sentences of the text corpus's train and dev documents, spoken by the train voices of every engine
  that speaks the language, except the held-out engines (models.data.engines.HELD_OUT_ENGINES).
- test: sentences of held-out documents (the text corpus's test split) spoken by the held-out voices of those
  same engines: new text and new speakers, familiar synthesizers.
- test_engine: the same test sentences spoken by an engine that no training split ever uses (RHVoice; English
  only): a synthesizer the model never heard.

Sentences are taken round robin across sources (each source's sentences in a seeded order), so no single large
source (the Bible, the news) dominates a language; when the train hours ask for more sentences than the text
corpus has, it goes round again with new voices. Each utterance's engine is drawn with `ENGINE_WEIGHTS`, its
voice, speed and pitch from models.data.engines, its augmentation from `AugmentConfig.open_domain()` (logged in the
manifest's `augment`). Everything depends only on (seed, language, split, index): the same seed gives the same
bytes, whatever the number of processes, and an interrupted build resumes (models/data/corpus.py's sidecars).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from models.data.augment import AugmentConfig, augment_logged
from models.data.engines import (
    DEFAULT_ENGINES,
    ENGINES,
    HELD_OUT_ENGINES,
    EngineError,
    EngineVoice,
    available,
    known_voices,
    sample_engine_voice,
    speak,
    training_only_voices,
    voices_for,
)
from models.data.espeak import SynthesisCrashError
from models.data.jobs import cleanup, from_sidecar, manifest_size, run_split
from models.data.manifest import Utterance, Word, read_manifest, write_manifest
from parley.audio import write_wav
from parley.features import SAMPLE_RATE
from parley.resample import resample

LANGUAGES = ("en", "de", "es", "fr", "it", "zh")
SPLITS = ("train", "dev", "test", "test_engine")
# Share of utterances per engine, where the engine speaks the language (renormalized over those that do).
ENGINE_WEIGHTS = {"espeak": 0.35, "mbrola": 0.25, "pico": 0.2, "festival": 0.2, "rhvoice": 1.0, "flite": 0.2}
CRASH_RETRIES = 3
_SHARD = 1000


@dataclass
class OpenCorpusConfig:
    """What `parley corpus open` makes; saved as open-corpus.json next to the manifests."""

    languages: tuple[str, ...] = ("en",)
    hours: dict[str, float] = field(default_factory=lambda: {"en": 1.0})  # train hours per language
    dev: int = 300
    test: int = 600
    seed: int = 0
    engines: tuple[str, ...] = DEFAULT_ENGINES
    augment: AugmentConfig = field(default_factory=AugmentConfig.open_domain)
    voices: tuple[str, ...] = ()  # only these voices of the non-espeak engines (training-only ones allowed); () = all


@dataclass(frozen=True)
class SpeakJob:
    out: str
    language: str
    split: str
    index: int
    record: dict  # one line of the text corpus
    voice: EngineVoice
    seed: int
    augment: AugmentConfig
    voices: tuple[str, ...] = ()  # OpenCorpusConfig.voices, for the crash retries


def _wav_path(job: SpeakJob) -> Path:
    uid = f"{job.language}-{job.split}-{job.index:07d}"
    return Path(job.out) / job.language / "wav" / job.split / f"{job.index // _SHARD:04d}" / f"{uid}.wav"


def _spoken_text(record: dict) -> str:
    """The words to speak: the normalized text; Chinese (written without spaces) is cut into words with jieba when
    it is installed, else into characters, because timings are per whitespace token."""
    text = record["text"]
    if record["language"] != "zh":
        return text
    try:
        import jieba

        jieba.setLogLevel(60)
        return " ".join(w for w in jieba.cut(text) if w.strip())
    except ImportError:
        return " ".join(text)


def speak_job(job: SpeakJob) -> Utterance:
    """Speaks, resamples to 16 kHz and augments one sentence; writes its WAV; returns its manifest entry."""
    wav = _wav_path(job)
    sidecar = wav.with_suffix(".json")
    if sidecar.exists() and wav.exists():
        return from_sidecar(sidecar)
    spoken = _spoken_text(job.record)
    syn, voice = _speak(job, spoken)
    x = resample(syn.samples, syn.sample_rate, SAMPLE_RATE)
    key = [job.seed, LANGUAGES.index(job.language), SPLITS.index(job.split), job.index]
    x, applied = augment_logged(x, SAMPLE_RATE, np.random.default_rng(key), job.augment)
    write_wav(wav, x, SAMPLE_RATE)
    rec = job.record
    utt = Utterance(
        id=f"{job.language}-{job.split}-{job.index:07d}",
        audio=os.path.abspath(wav),  # the sidecar then reads the same from any working directory
        duration=x.size / SAMPLE_RATE,
        language=job.language,
        text=rec["text"],
        translations=dict(rec.get("translations") or {}),
        voice=voice.name,
        words=[Word(w.word, w.start, w.end) for w in syn.words],
        display=rec.get("display", ""),
        source=rec.get("source", ""),
        document=rec.get("document", ""),
        license=rec.get("license", ""),
        engine=voice.engine,
        augment=applied,
    )
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    sidecar.write_text(json.dumps(utt.to_dict(), ensure_ascii=False))
    return utt


def _speak(job: SpeakJob, text: str):
    """The job's voice; if the engine crashes or hangs (espeak-ng segfaults on a few sentences, RHVoice hangs on
    some), other voices of the same engine and split, drawn from the job's own seed, then espeak-ng."""
    rng = random.Random(f"{job.seed}/{job.language}/{job.split}/{job.index}/crash")
    split = _voice_split(job.split)
    voices = [job.voice]
    voices += [
        sample_engine_voice(job.language, job.voice.engine, rng, split, job.voices) for _ in range(CRASH_RETRIES)
    ]
    voices.append(sample_engine_voice(job.language, "espeak", rng, split))
    for voice in voices[:-1]:
        try:
            return speak(text, voice), voice
        except (SynthesisCrashError, EngineError):
            continue
    return speak(text, voices[-1]), voices[-1]


def _voice_split(split: str) -> str:
    """The voice pool of a corpus split: test_engine draws from the test voices (models.data.voices.TEST_SPLITS)."""
    return "test" if split.startswith("test") else split


def read_text_split(text_dir: Path, language: str, split: str) -> list[dict]:
    """The text corpus's sentences of one language and split (models.data.textcorpus's layout)."""
    path = text_dir / language / f"{split}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no text corpus at {path}: build it with `parley text build --out {text_dir}`")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def round_robin(records: list[dict], seed: int) -> list[dict]:
    """Records ordered one per source in turn (each source's own order shuffled by `seed`)."""
    by_source: dict[str, list[dict]] = {}
    for r in records:
        by_source.setdefault(r.get("source", ""), []).append(r)
    queues = []
    for name in sorted(by_source):
        q = list(by_source[name])
        random.Random(f"{seed}/{name}").shuffle(q)
        queues.append(q)
    out = []
    for i in range(max((len(q) for q in queues), default=0)):
        out += [q[i] for q in queues if i < len(q)]
    return out


def split_engines(cfg: OpenCorpusConfig, language: str, split: str) -> tuple[list[str], list[float]]:
    """The engines (and their weights) that speak `language` in `split` on this machine."""
    names = []
    for e in cfg.engines:
        held_out = e in HELD_OUT_ENGINES
        if held_out != (split == "test_engine"):
            continue
        if (e == "espeak" or voices_for(e, language, _voice_split(split), cfg.voices)) and available(e):
            names.append(e)
    return names, [ENGINE_WEIGHTS[e] for e in names]


def _jobs(cfg: OpenCorpusConfig, out: Path, text_dir: Path, language: str, split: str, n: int) -> list[SpeakJob]:
    source_split = {"train": "train", "dev": "dev", "test": "test", "test_engine": "test"}[split]
    order_seed = f"{cfg.seed}/{language}/{source_split}"
    records = round_robin(read_text_split(text_dir, language, source_split), order_seed)
    engines, weights = split_engines(cfg, language, split)
    if not records or not engines:
        return []
    rng = random.Random(f"{cfg.seed}/{language}/{split}/voices")
    voice_split = _voice_split(split)
    jobs = []
    for i in range(n):
        engine = rng.choices(engines, weights)[0]
        voice = sample_engine_voice(language, engine, rng, voice_split, cfg.voices)
        record = records[i % len(records)]
        jobs.append(SpeakJob(str(out), language, split, i, record, voice, cfg.seed, cfg.augment, cfg.voices))
    return jobs


def build(out: str | os.PathLike, text_dir: str | os.PathLike, cfg: OpenCorpusConfig, jobs: int = 1) -> dict:
    """Builds (or resumes) the corpus; returns a summary per language and split (utterances, hours, speed)."""
    out, text_dir = Path(out), Path(text_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "open-corpus.json").write_text(json.dumps(asdict(cfg), indent=2))
    summary_file = out / "summary.json"
    summary: dict = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    for lang in cfg.languages:
        if lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r}; known: {', '.join(LANGUAGES)}")
        hours = cfg.hours.get(lang, 0.0)
        sizes = {"test": cfg.test, "test_engine": cfg.test, "dev": cfg.dev, "train": int(hours * 3600 / 1.5) + 100}
        for split in ("test", "test_engine", "dev", "train"):
            manifest = out / lang / f"{split}.jsonl"
            if manifest.exists():
                if not _grows(manifest, hours * 3600 if split == "train" else None):
                    continue
                _restore_sidecars(manifest)
            todo = _jobs(cfg, out, text_dir, lang, split, sizes[split])
            if not todo:
                continue
            t0 = time.time()
            target = hours * 3600 if split == "train" else None
            utts = run_split(todo, jobs, target, f"{lang}/{split}", work=speak_job)
            write_manifest(manifest, utts)
            cleanup(out / lang / "wav" / split, {Path(u.audio).name for u in utts})
            wall = time.time() - t0
            summary.setdefault(lang, {})[split] = _split_summary(utts, wall, jobs)
            summary_file.write_text(json.dumps(summary, indent=2))
    return summary


def _grows(manifest: Path, target_seconds: float | None) -> bool:
    """Whether a built train split is asked for more hours than it holds (a larger --hours extends it: the first
    utterances are the same jobs, read back from their sidecars)."""
    if target_seconds is None:
        return False
    return sum(u.duration for u in read_manifest(manifest)) < target_seconds


def _restore_sidecars(manifest: Path) -> None:
    """Writes back the sidecars of a finished split's utterances (the build removes them), so that extending it
    reads them instead of synthesizing them again."""
    for u in read_manifest(manifest):
        wav = Path(u.audio)
        if wav.exists():
            wav.with_suffix(".json").write_text(json.dumps(u.to_dict(), ensure_ascii=False))


def _split_summary(utts: list[Utterance], wall: float, jobs: int) -> dict:
    secs = sum(u.duration for u in utts)
    by_engine: dict[str, dict] = {}
    for u in utts:
        e = by_engine.setdefault(u.engine, {"utterances": 0, "hours": 0.0})
        e["utterances"] += 1
        e["hours"] += u.duration / 3600
    words = {w for u in utts for w in u.text.split()} if utts and utts[0].language != "zh" else set()
    return {
        "utterances": len(utts),
        "hours": secs / 3600,
        "distinct_words": len(words) if words else len({c for u in utts for c in u.text}),
        "wall_seconds": wall,
        "processes": jobs,
        "audio_seconds_per_second": secs / max(wall, 1e-9),
        "engines": by_engine,
    }


def summarize(out: str | os.PathLike) -> dict:
    """Figures of a built corpus read back from its manifests: per language and split, utterances, hours,
    distinct words (characters for zh), per engine and per augmentation effect; and its disk use in GB."""
    out = Path(out)
    report: dict = {"languages": {}, "disk_gb": 0.0}
    for manifest in sorted(out.glob("*/*.jsonl")):
        lang, split = manifest.parent.name, manifest.stem
        n, secs = manifest_size(manifest)
        rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
        engines: dict[str, float] = {}
        effects: dict[str, int] = {}
        for r in rows:
            engines[r.get("engine", "espeak")] = engines.get(r.get("engine", "espeak"), 0.0) + r["duration"] / 3600
            for a in r.get("augment") or ["none"]:
                effects[a.split(":")[0]] = effects.get(a.split(":")[0], 0) + 1
        units = {c for r in rows for c in r["text"]} if lang == "zh" else {w for r in rows for w in r["text"].split()}
        report["languages"].setdefault(lang, {})[split] = {
            "utterances": n,
            "hours": round(secs / 3600, 2),
            "distinct_words": len(units),
            "engine_hours": {k: round(v, 2) for k, v in sorted(engines.items())},
            "augment": dict(sorted(effects.items())),
        }
    report["disk_gb"] = round(sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e9, 3)
    return report


SPEED_FACTORS = (
    3  # the feature cache holds every train utterance at speeds 0.9, 1.0 and 1.1 (models.train.feature_cache)
)


def card(out: str | os.PathLike, report: dict) -> str:
    """A markdown card of a built corpus from `summarize`'s report and the build's summary.json (speeds)."""
    out = Path(out)
    built = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    cfg = json.loads((out / "open-corpus.json").read_text()) if (out / "open-corpus.json").exists() else {}
    lines = [
        "# Parley open-domain speech corpus",
        "",
        "Made by `parley corpus open` (models/data/opencorpus.py) from the text corpus (`parley text build`, its own",
        "card lists sources, documents and licenses). Splits: train and dev from training documents and train voices;",
        "test from held-out documents and held-out voices of the training engines; test_engine: the same test",
        "sentences spoken by an engine no training split uses (RHVoice). Train hours below are synthesized audio;",
        f"the feature cache holds each train utterance at {SPEED_FACTORS} speeds (0.9, 1.0, 1.1), which is the",
        "'with speed copies' column. Every utterance is augmented as its manifest's `augment` says.",
        "",
        f"Seed {cfg.get('seed', 0)}; disk {report['disk_gb']} GB.",
        "",
        "| language | split | utterances | hours | with speed copies | distinct words | engines (hours) |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for lang, splits in report["languages"].items():
        for split in SPLITS:
            if split not in splits:
                continue
            r = splits[split]
            copies = f"{r['hours'] * SPEED_FACTORS:.1f}" if split == "train" else ""
            eng = ", ".join(f"{k} {v:.2f}" for k, v in r["engine_hours"].items())
            lines.append(
                f"| {lang} | {split} | {r['utterances']:,} | {r['hours']:.2f} | {copies} | {r['distinct_words']:,} "
                f"| {eng} |"
            )
    lines += ["", "Augmentation (utterances with each effect; an utterance may have several):", ""]
    lines += ["| language | split | " + " | ".join(_EFFECTS) + " |", "| --- | --- |" + " ---: |" * len(_EFFECTS)]
    for lang, splits in report["languages"].items():
        for split, r in splits.items():
            lines.append(f"| {lang} | {split} | " + " | ".join(str(r["augment"].get(e, 0)) for e in _EFFECTS) + " |")
    lines += ["", "Build speed (seconds of audio per second of wall time, all engines of the split together):", ""]
    lines += ["| language | split | processes | wall minutes | audio s per s |", "| --- | --- | ---: | ---: | ---: |"]
    for lang, splits in built.items():
        for split, r in splits.items():
            lines.append(
                f"| {lang} | {split} | {r.get('processes', '')} | {r['wall_seconds'] / 60:.1f} "
                f"| {r['audio_seconds_per_second']:.1f} |"
            )
    return "\n".join(lines) + "\n"


_EFFECTS = ("none", "vtlp", "reverb", "noise", "telephone", "codec", "gain")


def _parse_hours(spec: str, languages: Sequence[str]) -> dict[str, float]:
    """ "50" -> every language 50 h; "en=50,de=14" -> per language (others 0)."""
    if "=" not in spec:
        return {lang: float(spec) for lang in languages}
    out = {}
    for part in spec.split(","):
        lang, _, h = part.partition("=")
        out[lang.strip()] = float(h)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="parley corpus open", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--text", type=Path, required=True, help="the text corpus folder (`parley text build --out`)")
    p.add_argument("--out", type=Path, required=True, help="output folder (resumes a partial build)")
    p.add_argument("--languages", default="en", help=f"comma-separated, from {','.join(LANGUAGES)} (default: en)")
    p.add_argument("--hours", default="1", help='train hours: one number for every language, or "en=50,de=14"')
    p.add_argument("--dev", type=int, default=300, help="dev utterances per language (default: 300)")
    p.add_argument("--test", type=int, default=600, help="test (and test_engine) utterances per language")
    p.add_argument(
        "--engines",
        default=",".join(DEFAULT_ENGINES),
        help=f"engines to use, from {','.join(ENGINES)} (default: {','.join(DEFAULT_ENGINES)})",
    )
    p.add_argument(
        "--voices",
        default="",
        help="only these voices of the non-espeak engines, comma-separated; may name the training-only speakers "
        f"({', '.join(sorted(training_only_voices()))}); "
        "not with espeak (default: every voice)",
    )
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same corpus (default: 0)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="synthesis processes (default: all cores)")
    p.add_argument("--report", action="store_true", help="only print the figures of the corpus in --out")
    p.add_argument("--card", type=Path, help="with --report: also write a markdown card here")
    a = p.parse_args(argv)
    if a.report:
        report = summarize(a.out)
        print(json.dumps(report, indent=2))
        if a.card:
            a.card.write_text(card(a.out, report))
        return 0
    langs = tuple(x.strip() for x in a.languages.split(",") if x.strip())
    engines = tuple(x.strip() for x in a.engines.split(",") if x.strip())
    unknown = set(engines) - set(ENGINES)
    if unknown:
        p.error(f"unknown engines {sorted(unknown)}; known: {', '.join(ENGINES)}")
    voices = tuple(x.strip() for x in a.voices.split(",") if x.strip())
    if voices and "espeak" in engines:
        p.error("--voices names voices of mbrola, festival, pico, RHVoice and flite: leave espeak out of --engines")
    if unknown := set(voices) - known_voices():
        p.error(f"unknown voices {sorted(unknown)}; known: {', '.join(sorted(known_voices()))}")
    cfg = OpenCorpusConfig(
        languages=langs,
        hours=_parse_hours(a.hours, langs),
        dev=a.dev,
        test=a.test,
        seed=a.seed,
        engines=engines,
        voices=voices,
    )
    summary = build(a.out, a.text, cfg, jobs=max(1, a.jobs))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
