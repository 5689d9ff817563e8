r"""`parley adapt`: text-only domain adaptation of a bundle, by fine-tuning it on synthesized speech of the text.

    parley adapt --text domain.txt --bundle bundles/en-small --out bundles/en-small-domain \
        --mix data/corpus-grammar/en/train.jsonl --work exp/adapt/domain --steps 300

Six stages, each skipped when its output in --work exists, so a run that stops resumes where it stopped:

1. text: the lines of --text (one sentence a line) written as the open-domain text corpus writes its sentences
   (models.data.verbalize: numbers, dates, money and abbreviations as words; parley.textnorm: the caption form);
   empty and repeated lines, and lines with characters the bundle's tokenizer lacks, are dropped.
   -> WORK/sentences.jsonl
2. synth: every sentence spoken by --copies voices drawn as the open-domain speech corpus draws its train voices
   (models.data.opencorpus: its training engines and voices only, never a held-out voice or the held-out engine),
   augmented as that corpus is. -> WORK/synth/train.jsonl and its WAVs (resumable per utterance)
3. mix: the synthesized utterances plus --mix-ratio times as many drawn (seeded) from --mix, the data the bundle
   was trained on, so that what it recognized before does not regress. -> WORK/train.jsonl, WORK/dev.jsonl
4. init: the bundle's weights recovered from its ONNX files (models.train.warmstart). -> WORK/init.pt
5. train: `parley train --init WORK/init.pt` with the bundle's architecture and tokenizer, a small learning rate and
   --steps steps. -> WORK/train/last.pt
6. export: `parley export` of the result with the bundle's precisions, streaming settings, tokenizer and blank
   penalty; its punctuation models and LMs copied over; bundle.json's "adaptation" records the run. -> --out

Two training settings differ from the bundle's recipe on purpose: the bundle holds no CTC layer and no pruned
loss's simple joiner (neither is exported), and freshly initialized ones would send noise into a trained encoder
for the first hundreds of steps, so fine-tuning uses the full transducer loss without CTC (--ctc-weight to change
it). The mixed manifest is listed as many times as --steps batches need, so the run is one (partial) epoch: one
dev decode and one checkpoint at the end, however short the text.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from models.data.augment import AugmentConfig
from models.data.engines import ENGINES, HELD_OUT_ENGINES, sample_engine_voice
from models.data.jobs import cleanup, run_split
from models.data.manifest import Utterance, read_manifest, write_manifest
from models.data.opencorpus import LANGUAGES, OpenCorpusConfig, SpeakJob, speak_job, split_engines
from models.data.verbalize import verbalize
from models.train.tokenizer import Tokenizer
from parley.textnorm import normalize_text
from server.bundle import load_bundle, sha256_of

if TYPE_CHECKING:  # torch is imported by the stages that need it, so that `parley adapt --help` is quick
    from models.train.train import TrainConfig

SENTENCES = "sentences.jsonl"
SYNTH = "synth"
TRAIN = "train.jsonl"
DEV = "dev.jsonl"
INIT = "init.pt"
EXP = "train"
DONE = "done.json"  # written in EXP when training reached its steps
RUN = "adapt.json"  # what the stages in --work were made from; another text or bundle needs another --work


def _fail(message: str) -> SystemExit:
    return SystemExit(f"parley adapt: {message}")


# ------------------------------------------------------------------------------------------------------- inputs
def read_bundle(folder: Path) -> dict:
    """bundle.json of a bundle this command can fine-tune: one transducer head with its tokenizer, and the model
    config that `parley export` writes (an imported sherpa-onnx bundle has none).

    Raises:
        SystemExit: the bundle is missing or cannot be fine-tuned; the message says why.
    """
    path = folder / "bundle.json"
    if not path.is_file():
        raise _fail(f"no bundle at {folder} (bundle.json missing)")
    meta = json.loads(path.read_text(encoding="utf-8"))
    config = meta.get("model", {}).get("config")
    if not config:
        raise _fail(
            f"{path} has no model.config: the architecture to fine-tune is unknown (a bundle imported from "
            "sherpa-onnx?); adapt needs a bundle written by `parley export`"
        )
    heads = meta.get("heads", [])
    if meta.get("kind") != "transducer" or len(heads) != 1 or config.get("heads"):
        raise _fail(f"{folder}: adapt fine-tunes single-head transducer bundles, this is kind {meta.get('kind')!r}")
    head = heads[0]
    if "bpe" not in head:
        raise _fail(f"{folder}: its head has no sentencepiece model (bpe) to write training targets with")
    if head.get("language") not in LANGUAGES:
        raise _fail(f"{folder}: language {head.get('language')!r}; the synthesizers speak {', '.join(LANGUAGES)}")
    if config.get("context_size", 2) != 2:
        raise _fail(f"{folder}: decoder context {config['context_size']}; `parley train` builds context 2 only")
    return meta


def normalize_lines(lines: Sequence[str], language: str, tokenizer: Tokenizer) -> tuple[list[dict], list[str]]:
    """The sentences to speak, as the open-domain text corpus writes them: `display` verbalized (numbers and
    abbreviations as words), `text` its caption form. Returns (sentences, dropped lines): empty and repeated ones
    are skipped, lines the tokenizer cannot write (an `<unk>` piece: a character it never saw) dropped."""
    seen: set[str] = set()
    kept, dropped = [], []
    for line in lines:
        raw = " ".join(line.split())
        if not raw:
            continue
        display = verbalize(raw, language)
        text = normalize_text(display, language)
        if not text or text in seen:
            continue
        if tokenizer.unk_id in tokenizer.encode(text):
            dropped.append(raw)
            continue
        seen.add(text)
        kept.append({"text": text, "display": display, "language": language})
    return kept, dropped


def _check_run(work: Path, run: dict) -> None:
    """Stages in `work` made from other inputs would be silently reused: refuse, naming what differs."""
    path = work / RUN
    if path.exists():
        before = json.loads(path.read_text())
        if diff := sorted(k for k in run if before.get(k) != run[k]):
            raise _fail(
                f"{work} holds a run made with other {', '.join(diff)} ({path}); use another --work or remove it"
            )
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=2))


# ------------------------------------------------------------------------------------------------------- stages
def stage_text(text_path: Path, work: Path, language: str, tokenizer: Tokenizer) -> list[dict]:
    """Stage 1: the normalized sentences of the text file, in WORK/sentences.jsonl."""
    out = work / SENTENCES
    if out.exists():
        sentences = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
        print(f"[1/6 text] {len(sentences)} sentences from {out} (done)")
        return sentences
    lines = text_path.read_text(encoding="utf-8").splitlines()
    sentences, dropped = normalize_lines(lines, language, tokenizer)
    if dropped:
        print(f"[1/6 text] dropped {len(dropped)} lines with characters the tokenizer lacks, e.g. {dropped[0]!r}")
    if not sentences:
        raise _fail(f"{text_path}: no sentences to adapt to ({len(lines)} lines, none speakable)")
    work.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in sentences), encoding="utf-8")
    print(f"[1/6 text] {len(sentences)} sentences from {len(lines)} lines of {text_path} -> {out}")
    return sentences


def stage_synth(
    sentences: list[dict],
    work: Path,
    language: str,
    copies: int,
    engines: Sequence[str],
    seed: int,
    jobs: int,
    augment: bool = True,
) -> list[Utterance]:
    """Stage 2: each sentence spoken `copies` times by the open corpus's train voices, in WORK/synth/train.jsonl.

    Voices, speeds, pitches and augmentation are drawn as models.data.opencorpus draws those of its train split
    (from `seed` and the utterance's index), so the same inputs give the same audio; `augment` False: clean audio.
    """
    folder = work / SYNTH
    manifest = folder / TRAIN
    if manifest.exists():
        utts = read_manifest(manifest)
        print(f"[2/6 synth] {len(utts)} utterances from {manifest} (done)")
        return utts
    cfg = OpenCorpusConfig(languages=(language,), seed=seed, engines=tuple(engines))
    if not augment:
        cfg.augment = AugmentConfig.disabled()
    names, weights = split_engines(cfg, language, "train")
    if not names:
        raise _fail(f"no training engine among {', '.join(engines)} speaks {language!r} on this machine")
    rng = random.Random(f"{seed}/{language}/adapt/voices")
    records = [{**s, "source": "adapt"} for s in sentences for _ in range(copies)]
    todo = []
    for i, record in enumerate(records):
        voice = sample_engine_voice(language, rng.choices(names, weights)[0], rng, "train")  # never a test voice
        todo.append(SpeakJob(str(folder), language, "train", i, record, voice, seed, cfg.augment))
    print(f"[2/6 synth] {len(todo)} utterances with {', '.join(names)} in {jobs} process(es) -> {manifest}")
    utts = run_split(todo, jobs, None, f"synth {language}", work=speak_job)
    for i, u in enumerate(utts):  # the corpus's ids ("en-train-0000000") would collide with the mix's
        u.id = f"adapt-{language}-{i:07d}"
    write_manifest(manifest, utts)
    cleanup(folder / language / "wav" / "train", {Path(u.audio).name for u in utts})
    print(f"[2/6 synth] {sum(u.duration for u in utts) / 3600:.3f} h of speech")
    return utts


def stage_mix(
    synth: list[Utterance],
    work: Path,
    mix: Sequence[Path],
    ratio: float,
    language: str,
    seed: int,
    dev: Sequence[Path],
    dev_utts: int,
) -> tuple[Path, Path]:
    """Stage 3: WORK/train.jsonl (the synthesized utterances and `ratio` times as many drawn from `mix`) and
    WORK/dev.jsonl (the first `dev_utts` of `dev`, or of the synthesized ones)."""
    train_path, dev_path = work / TRAIN, work / DEV
    if train_path.exists() and dev_path.exists():
        print(f"[3/6 mix] {train_path} and {dev_path} (done)")
        return train_path, dev_path
    pool: list[Utterance] = []
    for m in tqdm(mix, desc="reading --mix", unit="manifest", disable=not mix):
        if not m.is_file():
            raise _fail(f"--mix manifest {m} not found")
        pool += [u for u in read_manifest(m) if u.language == language]
    if mix and not pool:
        raise _fail(f"--mix {' '.join(map(str, mix))}: no {language!r} utterances")
    n = min(len(pool), round(ratio * len(synth)))
    drawn = random.Random(f"{seed}/adapt/mix").sample(pool, n)
    if missing := [u.audio for u in drawn if not Path(u.audio).is_file()]:
        raise _fail(f"{len(missing)} --mix utterances have no audio, e.g. {missing[0]}")
    if not mix:
        print("[3/6 mix] no --mix: the model trains on the domain alone and may forget what it knew")
    write_manifest(train_path, [*synth, *drawn])
    held = [u for m in dev for u in read_manifest(m)] if dev else synth
    write_manifest(dev_path, held[:dev_utts])
    print(
        f"[3/6 mix] {len(synth)} synthesized + {len(drawn)} of {len(pool)} --mix utterances -> {train_path}; "
        f"{min(dev_utts, len(held))} dev utterances -> {dev_path}"
    )
    return train_path, dev_path


def stage_init(bundle: Path, work: Path) -> Path:
    """Stage 4: the bundle's weights as a checkpoint for `parley train --init`, WORK/init.pt."""
    import torch

    from models.train.warmstart import checkpoint_from_bundle

    out = work / INIT
    if out.exists():
        print(f"[4/6 init] {out} (done)")
        return out
    ckpt = checkpoint_from_bundle(bundle)
    torch.save(ckpt, out)
    print(f"[4/6 init] {len(ckpt['model'])} tensors recovered from {bundle}'s ONNX files -> {out}")
    return out


def train_config(meta: dict, bundle: Path, work: Path, train: Path, dev: Path, a: argparse.Namespace) -> TrainConfig:
    """The fine-tuning recipe: the bundle's architecture and tokenizer, --init from its weights, `a`'s schedule.

    The mixed manifest is listed `passes` times, enough for `a.steps` batches of at most `a.max_seconds` padded
    seconds in one epoch (a batch never holds more audio than that, so there are at least total / max batches).
    """
    from models.nn.encoder import EncoderConfig
    from models.train.train import TrainConfig

    mc = meta["model"]["config"]
    seconds = sum(u.duration for u in read_manifest(train))
    passes = max(1, math.ceil(a.steps * a.max_seconds / max(seconds, 1e-3)))
    return TrainConfig(
        train=[str(train)] * passes,
        dev=[str(dev)],
        tokenizer=str(bundle / meta["heads"][0]["bpe"]),
        exp_dir=str(work / EXP),
        encoder=EncoderConfig(**mc["encoder"]),
        decoder_dim=mc["decoder_dim"],
        joiner_dim=mc["joiner_dim"],
        ctc_weight=a.ctc_weight,
        rnnt_type=mc.get("rnnt_type", "standard"),
        loss="full",
        epochs=1,
        max_steps=a.steps,
        max_seconds=a.max_seconds,
        lr=a.lr,
        warmup_steps=a.warmup_steps,
        seed=a.seed,
        num_workers=a.num_workers,
        checkpoint_every=max(1, min(100, a.steps)),
        dev_utts=a.dev_utts,
        init=str(work / INIT),
        threads=a.threads,
        amp=a.amp,
    )


def stage_train(cfg: TrainConfig, steps: int) -> dict:
    """Stage 5: fine-tunes with models.train.train (which itself resumes from WORK/train/last.pt)."""
    from models.train.train import train

    done = Path(cfg.exp_dir) / DONE
    if done.exists() and json.loads(done.read_text())["requested_steps"] >= steps:
        result = json.loads(done.read_text())
        print(f"[5/6 train] {result['step']} steps in {cfg.exp_dir} (done)")
        return result
    passes = len(cfg.train)
    print(
        f"[5/6 train] {steps} steps from {cfg.init}, lr {cfg.lr:g}, warm-up {cfg.warmup_steps}, batches of "
        f"{cfg.max_seconds:g} s ({passes} pass{'es' if passes > 1 else ''} over {cfg.train[0]}) -> {cfg.exp_dir}"
    )
    result = {**train(cfg), "requested_steps": steps, "passes": passes}
    done.write_text(json.dumps(result))
    return result


def _extra_files(meta: dict) -> list[str]:
    """The files of bundle.json's entries that stay valid for the fine-tuned model: punctuation models (they read
    text) and LMs (they predict the same tokenizer's pieces)."""
    names = [e["file"] for e in meta.get("lms", [])]
    for entry in meta.get("punctuation", {}).values():
        names += [entry[k] for k in ("model", "tokenizer", "card")]
    return names


def stage_export(
    checkpoint: Path, bundle: Path, meta: dict, out: Path, name: str, work: Path, adaptation: dict
) -> dict:
    """Stage 6: the fine-tuned checkpoint as a bundle like the source (precisions, streaming settings, tokenizer,
    blank penalty, punctuation, LMs), with bundle.json's "adaptation" record. It is written beside `out` and renamed
    into place once it loads, so `out` is never half written."""
    from export.bundle import build_bundle, file_entries, write_bundle_json
    from export.onnx_export import StreamingSettings

    ck_sha = sha256_of(checkpoint)
    replace = False
    if (out / "bundle.json").is_file():
        old = json.loads((out / "bundle.json").read_text(encoding="utf-8"))
        ours = old.get("adaptation", {}).get("work") == str(work)
        if ours and old.get("source", {}).get("checkpoint_sha256") == ck_sha:
            print(f"[6/6 export] {out} (done)")
            return old
        if not ours:
            raise _fail(f"--out {out} holds another bundle; choose a new folder")
        replace = True  # this run's earlier export, of a checkpoint since trained further
    elif out.exists() and any(out.iterdir()):
        raise _fail(f"--out {out} exists and is not empty; choose a new folder")
    tmp = out.parent / f".{out.name}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)  # an export that stopped half way
    head = meta["heads"][0]
    streaming = meta["streaming"]
    print(f"[6/6 export] {checkpoint} -> {out} ({', '.join(meta['precisions'])}, chunk {streaming['chunk_ms']} ms)")
    result = build_bundle(
        checkpoint,
        tmp,
        name,
        StreamingSettings(streaming["chunk_ms"], streaming["history_ms"]),
        tokenizer=bundle / head["bpe"],
        language=head["language"],
        int8="int8" in meta["precisions"],
        hardware=_hardware(),
        keep=meta["precisions"],
        post_processing=head.get("post_processing", "none"),
        blank_penalty=float(head.get("blank_penalty", 0.0)),
    )
    extras = _extra_files(meta)
    for f in extras:
        shutil.copyfile(bundle / f, tmp / f)
    for key in ("punctuation", "lms"):
        if key in meta:
            result[key] = meta[key]
    result["files"] = {**result["files"], **file_entries(tmp, extras)}
    result["training"]["data"] = {  # the manifest once, not once per pass
        "train": [str(work / TRAIN)],
        "dev": [str(work / DEV)],
        **adaptation["mix"]["train"],
    }
    result["adaptation"] = {**adaptation, "work": str(work)}
    write_bundle_json(tmp, result)
    load_bundle(tmp, threads=1)  # every file listed, sized and hashed as the server will check it
    if replace:
        shutil.rmtree(out)
    elif out.exists():
        out.rmdir()  # empty
    tmp.rename(out)
    print(f"[6/6 export] wrote {out}: {len(result['files'])} files, carried over {len(extras)} from {bundle}")
    return result


def _hardware() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{os.cpu_count()} CPU cores (no GPU)"


def _summary(utts: Sequence[Utterance]) -> dict:
    return {"utterances": len(utts), "hours": round(sum(u.duration for u in utts) / 3600, 4)}


# --------------------------------------------------------------------------------------------------------- main
def adapt(a: argparse.Namespace) -> dict:
    """Runs (or resumes) every stage; returns the written bundle.json."""
    bundle, out, text = Path(a.bundle), Path(a.out), Path(a.text)
    meta = read_bundle(bundle)
    if out.resolve() == bundle.resolve():
        raise _fail("--out must be a new folder, not the source bundle")
    if not text.is_file():
        raise _fail(f"text file {text} not found")
    language = meta["heads"][0]["language"]
    work = (Path(a.work) if a.work else Path("exp/adapt") / out.name).resolve()  # manifests keep paths below it
    text_sha = sha256_of(text)
    run = {
        "bundle": str(bundle.resolve()),
        "text_sha256": text_sha,
        "copies": a.copies,
        "augment": not a.no_augment,
        "engines": list(a.engines),
        "seed": a.seed,
        "mix": [str(Path(m).resolve()) for m in a.mix],
        "mix_ratio": a.mix_ratio,
        "dev": [str(Path(m).resolve()) for m in a.dev],
        "dev_utts": a.dev_utts,
    }
    tokenizer = Tokenizer(bundle / meta["heads"][0]["bpe"])
    sentences = stage_text(text, work, language, tokenizer)  # before _check_run: an empty text leaves no --work
    _check_run(work, run)
    synth = stage_synth(sentences, work, language, a.copies, a.engines, a.seed, max(1, a.jobs), not a.no_augment)
    train_path, dev_path = stage_mix(synth, work, a.mix, a.mix_ratio, language, a.seed, a.dev, a.dev_utts)
    stage_init(bundle, work)
    cfg = train_config(meta, bundle, work, train_path, dev_path, a)
    result = stage_train(cfg, a.steps)
    mixed = read_manifest(train_path)
    engines: dict[str, int] = {}
    for u in synth:
        engines[u.engine] = engines.get(u.engine, 0) + 1
    adaptation = {
        "source_bundle": meta.get("name", bundle.name),
        "source_checkpoint_sha256": meta.get("source", {}).get("checkpoint_sha256"),
        "text": {"file": text.name, "sha256": text_sha, "sentences": len(sentences)},
        "synthesized": {
            **_summary(synth),
            "copies": a.copies,
            "augment": not a.no_augment,
            "engines": dict(sorted(engines.items())),
        },
        "mix": {
            "manifests": [str(m) for m in a.mix],
            "ratio": a.mix_ratio,
            **_summary(mixed[len(synth) :]),
            "train": {**_summary(mixed), "languages": [language]},
        },
        "steps": result["step"],
        "lr": a.lr,
        "seed": a.seed,
        "dev_wer": result.get("dev_wer"),
    }
    name = a.name or out.name
    return stage_export(Path(cfg.exp_dir) / "last.pt", bundle, meta, out, name, work, adaptation)


def main(argv: Sequence[str] | None = None) -> int:
    training_engines = [e for e in ENGINES if e not in HELD_OUT_ENGINES]
    p = argparse.ArgumentParser(
        prog="parley adapt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--text", required=True, help="the domain's text, one sentence a line")
    p.add_argument("--bundle", required=True, help="the bundle to adapt (written by `parley export`)")
    p.add_argument("--out", required=True, help="the adapted bundle's folder (new)")
    p.add_argument("--name", default="", help="the adapted bundle's name (default: the --out folder's name)")
    p.add_argument("--work", default="", help="where the stages write (default: exp/adapt/<--out's name>); resumes")
    p.add_argument("--mix", nargs="+", default=[], type=Path, help="manifests of the bundle's training data, mixed in")
    p.add_argument("--mix-ratio", type=float, default=1.0, help="--mix utterances per synthesized one (default: 1)")
    p.add_argument("--copies", type=int, default=1, help="voices per sentence (default: 1)")
    p.add_argument(
        "--engines",
        nargs="+",
        default=training_engines,
        choices=training_engines,
        help=f"synthesizers to draw voices from (default: {' '.join(training_engines)}, those installed)",
    )
    p.add_argument(
        "--no-augment", action="store_true", help="clean synthesized audio (default: augmented as the open corpus)"
    )
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="synthesis processes (default: all cores)")
    p.add_argument("--steps", type=int, default=300, help="fine-tuning steps (default: 300)")
    p.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (default: 2e-4)")
    p.add_argument("--warmup-steps", type=int, default=30, help="linear warm-up steps (default: 30)")
    p.add_argument("--max-seconds", type=float, default=30.0, help="padded audio seconds per batch (default: 30)")
    p.add_argument(
        "--ctc-weight",
        type=float,
        default=0.0,
        help="weight of a CTC loss on a new CTC layer (bundles hold none; default: 0, no CTC)",
    )
    p.add_argument("--dev", nargs="+", default=[], type=Path, help="dev manifests (default: synthesized utterances)")
    p.add_argument("--dev-utts", type=int, default=30, help="dev utterances decoded after training (default: 30)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: 0, all cores)")
    p.add_argument("--num-workers", type=int, default=1, help="data loader processes (default: 1)")
    p.add_argument("--amp", choices=["none", "bf16"], default="none", help="bf16 mixed precision (default: none)")
    p.add_argument("--seed", type=int, default=0, help="voices, augmentation, mix and training order (default: 0)")
    a = p.parse_args(argv)
    if a.copies < 1 or a.steps < 1 or a.mix_ratio < 0:
        p.error("--copies and --steps must be at least 1, --mix-ratio at least 0")
    bundle = adapt(a)
    print(json.dumps(bundle["adaptation"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
