"""Hotword recall and false alarms by boost: unseen surnames in sentences spoken by espeak-ng.

    nice -n 15 python benchmarks/bench_hotwords.py --bundle bundles/en-open --boosts 1.5 2 2.5 3 4 \
        --plain-manifest $DATA/corpus-v2/en/test.jsonl --out benchmarks/results/hotwords/en-open-24names.json

Forty-eight surnames absent from the models' training text (none occurs in data/text/en or corpus-v2's train
transcripts), split in two: the 24 dev names tune the server's defaults, the 24 test names report them (`--names 8`:
the first eight of each, the benchmark's first version, benchmarks/results/hotwords/en-open.json). Each name is said
in four sentence frames (three of the grammar's, one open-domain) by four espeak-ng voice variants, and decoded with
modified beam search and all the names of its split as hotwords (whole-word matching, as the server does; `--anywhere`
for token sequences anywhere). False alarms: six grammar sentences without any name and, with `--plain-manifest`,
open-domain test utterances (held-out documents and voices): how many come out with a boosted name, and their WER with
and without the hotwords (biasing must not cost the rest). Prints one line per split and boost (docs/adaptation.md has
the table), then the same after hotword respelling (server/respell.py) of that boost's words, for each
`--respell-thresholds` x `--respell-confidences` setting: the dev names choose the server's default, the test names
report it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.data.espeak import synthesize
from models.data.manifest import load_audio, read_manifest
from parley.contract import BEAM
from parley.features import SAMPLE_RATE
from parley.resample import resample
from parley.wer import wer
from server.biasing import HOTWORD_FLOOR, ContextGraph, phrase_tokens, word_starts
from server.bundle import load_bundle
from server.respell import RESPELL_MAX_CONFIDENCE, RESPELL_THRESHOLD, Respeller
from server.transducer import StreamingTransducer, Transcript, transcribe_many, word_confidence

# the first eight of each are the benchmark's first version (docs/adaptation.md's older tables; `--names 8`)
TEST_NAMES = [
    *("moreno", "pemberton", "harding", "marlow", "dalton", "maddox", "winslow", "okonkwo"),
    *("lindqvist", "ramirez", "sorensen", "petrovic", "hawthorne", "kaminski", "fairbanks", "yamamoto"),
    *("silvestri", "blackwood", "lombardi", "okafor", "adebayo", "oconnell", "chatterjee", "donnelly"),
]
DEV_NAMES = [
    *("kowalczyk", "nakamura", "castellano", "abernathy", "thackeray", "mcallister", "zimmerman", "whitaker"),
    *("brennan", "henderson", "novak", "takahashi", "delacroix", "ferreira", "rossetti", "wojcik"),
    *("kavanagh", "andersen", "gutierrez", "halvorsen", "bergstrom", "villanueva", "szymanski", "iversen"),
]
FRAMES = [
    "do i have any new messages from {}",
    "text {} that i'll bring bread",
    "good evening {} how are you",
    "the letter from {} arrived after the storm",
]
VOICES = ["m3", "f2", "m1", "f4"]
PLAIN = [
    "do i have any new messages from sam",
    "text noah that i'll bring bread",
    "good evening sofia how are you",
    "set a timer for ten minutes",
    "lock the back door",
    "what's the capital of argentina",
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="bundles/en-small", help="the bundle folder to decode with")
    parser.add_argument("--boosts", type=float, nargs="+", default=[1.5, 3, 5, 8, 10], help="boosts per token")
    parser.add_argument(
        "--floors",
        type=float,
        nargs="+",
        default=[HOTWORD_FLOOR],
        help="the hotword graph's acoustic floor in boosts (server/biasing.py), tried with every boost",
    )
    parser.add_argument("--beam", type=int, default=BEAM, help=f"modified beam search's beam (default {BEAM})")
    parser.add_argument(
        "--anywhere", action="store_true", help="match hotwords inside words too (the server matches whole words)"
    )
    parser.add_argument("--plain-manifest", help="open-domain utterances without the names, for false alarms and WER")
    parser.add_argument("--plain-utts", type=int, default=100, help="how many of --plain-manifest (default 100)")
    parser.add_argument("--out", help="write the figures as JSON here")
    parser.add_argument(
        "--names", type=int, default=len(TEST_NAMES), help=f"names per split, the first N (default {len(TEST_NAMES)})"
    )
    parser.add_argument("--splits", nargs="+", choices=("dev", "test"), default=["dev", "test"], help="name splits run")
    parser.add_argument(
        "--respell-thresholds",
        type=float,
        nargs="+",
        default=[0.7, 0.75, 0.8, 0.85, 0.9],
        help="respelling (server/respell.py): sound-key closeness thresholds tried on every boost's words",
    )
    parser.add_argument(
        "--respell-confidences",
        type=float,
        nargs="+",
        default=[0.4, 0.6, 0.8, 1.0],
        help="respelling: the run's least confident word must be below this (1.0: no confidence gate)",
    )
    a = parser.parse_args(argv)
    model = StreamingTransducer(load_bundle(a.bundle, threads=1))
    head = model.heads[0].head
    starts = None if a.anywhere else word_starts(head.tokens)

    def speak(text: str, variant: str) -> np.ndarray:
        s = synthesize(text, voice="en-us", variant=variant, rate=160)
        return resample(s.samples, s.sample_rate, SAMPLE_RATE)

    plain: list[tuple[str, np.ndarray]] = [(t, speak(t, VOICES[i % 4])) for i, t in enumerate(PLAIN)]
    if a.plain_manifest:
        for u in read_manifest(a.plain_manifest)[: a.plain_utts]:
            if not set(u.text.split()) & set(TEST_NAMES + DEV_NAMES):
                plain.append((u.text, load_audio(u.audio)))
    dev_names, test_names = DEV_NAMES[: a.names], TEST_NAMES[: a.names]

    last: list[Transcript] = []

    def decode(signals: Sequence[np.ndarray], graph: ContextGraph | None) -> list[str]:
        out = transcribe_many(model, list(signals), SAMPLE_RATE, search="beam", beam=a.beam, hotwords=graph)
        last[:] = out
        return [t.text for t in out]

    def words_of(t: Transcript) -> tuple[list[str], list[float]]:
        """A transcript's words and their confidences, as the server's finals give them."""
        words: list[str] = []
        probs: list[list[float]] = []
        for tok, p in zip(t.tokens, t.probs, strict=True):
            piece = head.tokens[tok]
            if piece.startswith("\u2581") or not words:
                words.append("")
                probs.append([])
            words[-1] += piece.removeprefix("\u2581")
            probs[-1].append(p)
        keep = [i for i, w in enumerate(words) if w]
        return [words[i] for i in keep], [word_confidence(probs[i]) for i in keep]

    def name_confidences(names: Sequence[str]) -> list[float]:
        """The confidence (smallest token probability) of every name in the last decoded batch's words."""
        out = []
        for t in last:
            words, confs = words_of(t)
            out += [round(c, 4) for w, c in zip(words, confs, strict=True) if w in names]
        return sorted(out)

    def respelled(transcripts: Sequence[Transcript], names: Sequence[str], threshold: float, conf: float) -> list[str]:
        speller = Respeller(names, threshold=threshold, max_confidence=conf)
        return [" ".join(speller.apply(*words_of(t))) for t in transcripts]

    baseline = decode([x for _, x in plain], None)
    baseline_transcripts = list(last)
    refs = [t for t, _ in plain]
    rows = []
    for split, names in (("dev", dev_names), ("test", test_names)):
        if split not in a.splits:
            continue
        named = [(f.format(n), n, VOICES[(i + j) % 4]) for i, n in enumerate(names) for j, f in enumerate(FRAMES)]
        audio = [speak(t, v) for t, _, v in named]
        for boost, floor in [(0.0, 0.0), *((b, m) for b in a.boosts for m in a.floors)]:
            t0 = time.time()
            phrases = [(phrase_tokens(head.sp, n), boost) for n in names]
            graph = ContextGraph(phrases, head.vocab_size, starts, floor) if boost else None
            hyps = decode(audio, graph)
            named_transcripts = list(last)
            hit_conf = name_confidences(names)
            hits = sum(n in h.split() for (_, n, _), h in zip(named, hyps, strict=True))
            missed = [h for (_, n, _), h in zip(named, hyps, strict=True) if n not in h.split()]
            out = decode([x for _, x in plain], graph) if boost else baseline
            plain_transcripts = list(last) if boost else baseline_transcripts
            alarm_conf = name_confidences(names) if boost else []
            respell = {}  # "threshold/confidence" -> recall, false alarms and WER with respelling after this boost
            for thr in a.respell_thresholds:
                for conf in a.respell_confidences:
                    rh = respelled(named_transcripts, names, thr, conf)
                    ro = respelled(plain_transcripts, names, thr, conf)
                    got = {
                        "hits": sum(n in h.split() for (_, n, _), h in zip(named, rh, strict=True)),
                        "false_alarms": sum(bool(set(o.split()) & set(names)) for o in ro),
                        "plain_wer": wer(refs, ro),
                    }
                    if (thr, conf) == (RESPELL_THRESHOLD, RESPELL_MAX_CONFIDENCE):  # the server's: what it got wrong
                        got["missed"] = [h for (_, n, _), h in zip(named, rh, strict=True) if n not in h.split()]
                        got["alarms"] = [
                            {"ref": r, "hyp": o} for r, o in zip(refs, ro, strict=True) if set(o.split()) & set(names)
                        ]
                    respell[f"{thr:g}/{conf:g}"] = got
            alarms = sum(bool(set(o.split()) & set(names)) for o in out)
            row = {
                "split": split,
                "boost": boost,
                "floor": floor,
                "recall": hits / len(named),
                "hits": hits,
                "named": len(named),
                "false_alarms": alarms,
                "plain": len(plain),
                "plain_wer": wer(refs, out),
                "plain_wer_without": wer(refs, baseline),
                "unchanged": sum(o == b for o, b in zip(out, baseline, strict=True)),
                "missed": missed,
                "name_confidences": hit_conf,  # smallest token probability of each recognized name
                "false_alarm_confidences": alarm_conf,
                "alarms": [{"ref": r, "hyp": o} for r, o in zip(refs, out, strict=True) if set(o.split()) & set(names)],
                "respell": respell,
            }
            rows.append(row)
            print(
                f"{split} boost {boost or 'none'} floor {floor:g}: "
                f"name recall {hits}/{len(named)} ({100 * row['recall']:.1f} %), "
                f"false alarms {alarms}/{len(plain)}, WER without names {100 * row['plain_wer']:.2f} % "
                f"(no hotwords {100 * row['plain_wer_without']:.2f} %), unchanged {row['unchanged']}/{len(plain)} "
                f"({time.time() - t0:.1f} s)",
                flush=True,
            )
            default = respell.get(f"{RESPELL_THRESHOLD:g}/{RESPELL_MAX_CONFIDENCE:g}")
            for key, r in respell.items():
                mark = " (default)" if r is default else ""
                print(
                    f"    + respelling {key}{mark}: recall {r['hits']}/{len(named)}, false alarms "
                    f"{r['false_alarms']}/{len(plain)}, WER without names {100 * r['plain_wer']:.2f} %"
                )
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "bundle": a.bundle,
            "beam": a.beam,
            "dev_names": dev_names,
            "test_names": test_names,
            "whole_words": not a.anywhere,
            "frames": FRAMES,
            "voices": VOICES,
        }
        Path(a.out).write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
