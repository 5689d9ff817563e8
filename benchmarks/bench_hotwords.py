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
`--respell-thresholds` x `--respell-confidences` setting, and after the finals' respelling with the acoustic check
(`AcousticCheck`: runs down to `--verify-thresholds` taken where the transducer scores the name within
`--verify-margins` per token of the words heard), for each `--verify-strict` x `--verify-thresholds` x
`--verify-margins`: the dev names choose the server's defaults, the test names report them. `--lm NAME` fuses one
of the bundle's LMs (at its default scales, with the bundle's source LM where it sets a `lodr_scale`) into every
search, with hotwords and without: what a stream gets that asks for both (en-open's general LM, docs/adaptation.md).
`--settle-ms MS` settles every search's beam as the server settles a stream's (`parley serve --settle-ms`).
`--sounds-like FILE` gives every search and respelling the hotwords' sounds_like (`parley hotwords learn`'s JSON),
boosted at `--boost-sounds-like` times their hotword's boost as the server boosts them. `--speaker rhvoice` has
RHVoice's four English voices say the name sentences and the six plain grammar ones instead of espeak-ng: the held-out
engine, which neither training nor `parley hotwords learn` uses.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.data.engines import EngineVoice
from models.data.engines import speak as speak_engine
from models.data.espeak import synthesize
from models.data.manifest import load_audio, read_manifest
from parley.contract import BEAM
from parley.features import SAMPLE_RATE
from parley.resample import resample
from parley.wer import wer
from server.biasing import HOTWORD_FLOOR, SOUNDS_LIKE_BOOST, ContextGraph, phrase_tokens, word_starts
from server.bundle import load_bundle, source_lm
from server.respell import (
    RESPELL_MAX_CONFIDENCE,
    RESPELL_THRESHOLD,
    RESPELL_VERIFY_MARGIN,
    RESPELL_VERIFY_MAX_CONFIDENCE,
    RESPELL_VERIFY_SPELLINGS,
    RESPELL_VERIFY_THRESHOLD,
    AcousticCheck,
    Respeller,
)
from server.transducer import LmFusion, StreamingTransducer, Transcript, transcribe_many, word_confidence

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
# `--speaker rhvoice`: the held-out engine's four English voices (no training split and no `parley hotwords learn`
# voice is RHVoice's), each at its default speed
RHVOICE_VOICES = ["alan", "bdl", "clb", "slt"]
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
    parser.add_argument("--lm", help="one of the bundle's LMs to fuse into every search, at its default scales")
    parser.add_argument(
        "--settle-ms",
        type=float,
        default=0.0,
        help="every search settles tokens this old (server/transducer.py settle_beam; serve --settle-ms; 0: never)",
    )
    parser.add_argument(
        "--boost-sounds-like",
        type=float,
        default=SOUNDS_LIKE_BOOST,
        help="the hotword graph boosts each --sounds-like entry's tokens by this times its hotword's boost, as the "
        f"server does (default {SOUNDS_LIKE_BOOST}; 0: not boosted, respelling only)",
    )
    parser.add_argument(
        "--speaker",
        choices=("espeak", "rhvoice"),
        default="espeak",
        help="who says the name sentences: four espeak-ng en-us variants (default) or RHVoice's four English voices, "
        "the engine no training split and no `parley hotwords learn` voice is",
    )
    parser.add_argument("--plain-manifest", help="open-domain utterances without the names, for false alarms and WER")
    parser.add_argument("--plain-utts", type=int, default=100, help="how many of --plain-manifest (default 100)")
    parser.add_argument("--out", help="write the figures as JSON here")
    parser.add_argument(
        "--sounds-like",
        help="hotwords with their sounds_like (JSON, `parley hotwords learn`): every respelling compares runs with "
        "them too",
    )
    parser.add_argument(
        "--no-exact-sounds-like",
        action="store_true",
        help="respell a run that is a sounds_like word for word only when doubted, as any run (the server did "
        "until server.respell.RESPELL_EXACT_SOUNDS_LIKE)",
    )
    parser.add_argument(
        "--names", type=int, default=len(TEST_NAMES), help=f"names per split, the first N (default {len(TEST_NAMES)})"
    )
    parser.add_argument("--splits", nargs="+", choices=("dev", "test"), default=["dev", "test"], help="name splits run")
    grids = {  # the respelling settings tried on every boost's words: flag -> (default, help)
        "--respell-thresholds": (
            [0.7, 0.75, 0.8, 0.85, 0.9],
            "respelling (server/respell.py): sound-key closeness thresholds tried on every boost's words",
        ),
        "--respell-confidences": (
            [0.4, 0.6, 0.8, 1.0],
            "respelling: the run's least confident word must be below this (1.0: no confidence gate)",
        ),
        "--verify-strict": (
            [RESPELL_THRESHOLD],
            "finals' respelling with the acoustic check: the closeness from which a run needs no check",
        ),
        "--verify-thresholds": (
            [RESPELL_VERIFY_THRESHOLD],
            "finals' respelling: the least closeness of a run the acoustic check may accept",
        ),
        "--verify-margins": (
            [2.0, 2.25, 2.5, 2.75],
            "finals' respelling: log-probability per hotword token the hotword may fall short of the recognized run",
        ),
        "--verify-confidences": (
            [RESPELL_VERIFY_MAX_CONFIDENCE],
            "finals' respelling: runs whose least confident word is below this (not below --respell-confidences' "
            "default) are respelled only if the acoustic check accepts them",
        ),
        "--verify-spellings": (
            [RESPELL_VERIFY_SPELLINGS],
            "finals' respelling: the hotword's likeliest tokenizations the check sums (1: the usual one only)",
        ),
    }
    for flag, (default, text) in grids.items():
        parser.add_argument(flag, type=float, nargs="+", default=default, help=text)
    a = parser.parse_args(argv)
    bundle = load_bundle(a.bundle, threads=1)
    model = StreamingTransducer(bundle)
    head = model.heads[0].head
    fusion = None
    if a.lm:
        lm, source = bundle.lms[a.lm], source_lm(bundle.lms, bundle.lms[a.lm].language)
        lodr = source.lm if source is not None and lm.lodr_scale else None
        fusion = LmFusion(lm.lm, lm.lm_scale, lm.ilm_scale, lodr, lm.lodr_scale)
    starts = None if a.anywhere else word_starts(head.tokens)
    sounds_like: dict[str, list[str]] = {}
    if a.sounds_like:
        sounds_like = {i["phrase"]: i.get("sounds_like", []) for i in json.loads(Path(a.sounds_like).read_text())}
    settle = round(a.settle_ms / (model.spec.features.frame_shift_ms * model.spec.subsampling))

    voices = RHVOICE_VOICES if a.speaker == "rhvoice" else VOICES

    def speak(text: str, voice: str) -> np.ndarray:
        if a.speaker == "rhvoice":
            s = speak_engine(text, EngineVoice("rhvoice", "en", voice))
        else:
            s = synthesize(text, voice="en-us", variant=voice, rate=160)
        return resample(np.asarray(s.samples, dtype=np.float32), s.sample_rate, SAMPLE_RATE)

    plain: list[tuple[str, np.ndarray]] = [(t, speak(t, voices[i % 4])) for i, t in enumerate(PLAIN)]
    if a.plain_manifest:
        for u in read_manifest(a.plain_manifest)[: a.plain_utts]:
            if not set(u.text.split()) & set(TEST_NAMES + DEV_NAMES):
                plain.append((u.text, load_audio(u.audio)))
    dev_names, test_names = DEV_NAMES[: a.names], TEST_NAMES[: a.names]

    last: list[Transcript] = []

    def decode(signals: Sequence[np.ndarray], graph: ContextGraph | None) -> list[str]:
        out = transcribe_many(
            model,
            list(signals),
            SAMPLE_RATE,
            search="beam",
            beam=a.beam,
            hotwords=graph,
            fusion=fusion,
            keep_encoder=True,
            settle=settle,
        )
        last[:] = out
        return [t.text for t in out]

    def word_spans(t: Transcript) -> tuple[list[str], list[float], list[tuple[int, int]]]:
        """A transcript's words, their confidences and their tokens' ranges, as the server's finals give them."""
        words: list[str] = []
        probs: list[list[float]] = []
        spans: list[list[int]] = []
        for k, (tok, p) in enumerate(zip(t.tokens, t.probs, strict=True)):
            piece = head.tokens[tok]
            if piece.startswith("\u2581") or not words:
                words.append("")
                probs.append([])
                spans.append([k, k])
            words[-1] += piece.removeprefix("\u2581")
            probs[-1].append(p)
            spans[-1][1] = k + 1
        keep = [i for i, w in enumerate(words) if w]
        return [words[i] for i in keep], [word_confidence(probs[i]) for i in keep], [tuple(spans[i]) for i in keep]

    def words_of(t: Transcript) -> tuple[list[str], list[float]]:
        return word_spans(t)[:2]

    def name_confidences(names: Sequence[str]) -> list[float]:
        """The confidence (smallest token probability) of every name in the last decoded batch's words."""
        out = []
        for t in last:
            words, confs = words_of(t)
            out += [round(c, 4) for w, c in zip(words, confs, strict=True) if w in names]
        return sorted(out)

    def respelled(transcripts: Sequence[Transcript], names: Sequence[str], threshold: float, conf: float) -> list[str]:
        speller = Respeller(
            names,
            threshold=threshold,
            max_confidence=conf,
            sounds_like=sounds_like,
            exact_sounds_like=not a.no_exact_sounds_like,
        )
        return [" ".join(speller.apply(*words_of(t))) for t in transcripts]

    def checks(transcripts: Sequence[Transcript], spellings: int = RESPELL_VERIFY_SPELLINGS) -> list[AcousticCheck]:
        """Each transcript's acoustic check (it remembers its scores: every margin reuses them)."""
        out = []
        for t in transcripts:
            assert t.encoder_out is not None
            spans = word_spans(t)[2]
            out.append(AcousticCheck(model.heads[0], t.encoder_out, t.tokens, t.frames, spans, spellings=spellings))
        return out

    def verified(
        transcripts: Sequence[Transcript], cks: Sequence[AcousticCheck], names: Sequence[str], key: tuple
    ) -> list[str]:
        """The finals' respelling with the acoustic check (server/respell.py): closeness threshold, verify
        threshold, margin."""
        threshold, vthr, margin, vconf = key
        speller = Respeller(
            names,
            threshold=threshold,
            verify_threshold=vthr,
            verify_max_confidence=vconf,
            sounds_like=sounds_like,
            exact_sounds_like=not a.no_exact_sounds_like,
        )
        out = []
        for t, ck in zip(transcripts, cks, strict=True):
            ck.margin = margin
            out.append(" ".join(speller.apply(*words_of(t), verify=ck)))
        return out

    def counts(
        named: Sequence[tuple[str, str, str]],
        named_hyps: Sequence[str],
        refs: Sequence[str],
        plain_hyps: Sequence[str],
        names: Sequence[str],
        default: bool,
    ) -> dict:
        """Recall of the names, false alarms and WER of the plain sentences after a respelling; for the server's
        default setting also what it got wrong."""
        got: dict = {
            "hits": sum(n in h.split() for (_, n, _), h in zip(named, named_hyps, strict=True)),
            "false_alarms": sum(bool(set(o.split()) & set(names)) for o in plain_hyps),
            "plain_wer": wer(refs, plain_hyps),
        }
        if default:
            got["missed"] = [h for (_, n, _), h in zip(named, named_hyps, strict=True) if n not in h.split()]
            got["alarms"] = [
                {"ref": r, "hyp": o} for r, o in zip(refs, plain_hyps, strict=True) if set(o.split()) & set(names)
            ]
        return got

    baseline = decode([x for _, x in plain], None)
    baseline_transcripts = list(last)
    refs = [t for t, _ in plain]
    rows = []
    for split, names in (("dev", dev_names), ("test", test_names)):
        if split not in a.splits:
            continue
        named = [(f.format(n), n, voices[(i + j) % 4]) for i, n in enumerate(names) for j, f in enumerate(FRAMES)]
        audio = [speak(t, v) for t, _, v in named]
        for boost, floor in [(0.0, 0.0), *((b, m) for b in a.boosts for m in a.floors)]:
            t0 = time.time()
            phrases = [(phrase_tokens(head.sp, n), boost) for n in names]
            if a.boost_sounds_like:  # the search is also drawn to the ways the model writes a name
                b = boost * a.boost_sounds_like
                phrases += [(phrase_tokens(head.sp, w), b) for n in names for w in sounds_like.get(n, [])]
            graph = ContextGraph(phrases, head.vocab_size, starts, floor) if boost else None
            td = time.perf_counter()
            hyps = decode(audio, graph)
            decode_ms = 1000 * (time.perf_counter() - td) / len(audio)  # the beam search of one name sentence
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
                    default = (thr, conf) == (RESPELL_THRESHOLD, RESPELL_MAX_CONFIDENCE)
                    respell[f"{thr:g}/{conf:g}"] = counts(named, rh, refs, ro, names, default)
            verify: dict = {}  # "threshold/verify threshold/margin" -> the same with the finals' acoustic check
            # what the check costs a final at the server's defaults (fresh checks: nothing scored yet), against the
            # respelling without it and the beam search of the same audio
            both = named_transcripts + plain_transcripts
            t1 = time.perf_counter()
            defaults = (
                RESPELL_THRESHOLD,
                RESPELL_VERIFY_THRESHOLD,
                RESPELL_VERIFY_MARGIN,
                RESPELL_VERIFY_MAX_CONFIDENCE,
            )
            verified(both, checks(both), names, defaults)
            t2 = time.perf_counter()
            respelled(both, names, RESPELL_THRESHOLD, RESPELL_MAX_CONFIDENCE)
            t3 = time.perf_counter()
            cost = {
                "check_ms_per_final": 1000 * (t2 - t1) / len(both),
                "respell_ms_per_final": 1000 * (t3 - t2) / len(both),
                "decode_ms_per_named_utterance": decode_ms,
            }
            for n in a.verify_spellings:
                named_checks, plain_checks = checks(named_transcripts, int(n)), checks(plain_transcripts, int(n))
                grid = [
                    (t, v, m, c)
                    for t in a.verify_strict
                    for v in a.verify_thresholds
                    for m in a.verify_margins
                    for c in a.verify_confidences
                ]
                for key in grid:
                    rh = verified(named_transcripts, named_checks, names, key)
                    ro = verified(plain_transcripts, plain_checks, names, key)
                    default = key == defaults and n == RESPELL_VERIFY_SPELLINGS
                    name = "/".join(f"{x:g}" for x in key[:3])
                    if key[3] != RESPELL_VERIFY_MAX_CONFIDENCE:
                        name += f"/checked below {key[3]:g}"
                    if n != RESPELL_VERIFY_SPELLINGS:
                        name += f"/{n:g} spellings"
                    verify[name] = counts(named, rh, refs, ro, names, default)
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
                "verify": verify,
                "cost": cost,
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
            print(
                f"    finals' respelling at the defaults: {cost['check_ms_per_final']:.1f} ms a final with the check, "
                f"{cost['respell_ms_per_final']:.2f} ms without ({len(both)} finals; the beam search above: "
                f"{decode_ms:.1f} ms a name sentence)"
            )
            for key, r in verify.items():
                mark = " (default)" if r.get("missed") is not None else ""
                print(
                    f"    + respelling, finals checked {key}{mark}: recall {r['hits']}/{len(named)}, false alarms "
                    f"{r['false_alarms']}/{len(plain)}, WER without names {100 * r['plain_wer']:.2f} %"
                )
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "bundle": a.bundle,
            "beam": a.beam,
            "lm": a.lm,
            "dev_names": dev_names,
            "test_names": test_names,
            "whole_words": not a.anywhere,
            "frames": FRAMES,
            "voices": RHVOICE_VOICES if a.speaker == "rhvoice" else VOICES,
            "speaker": a.speaker,
            "sounds_like": a.sounds_like,
            "boost_sounds_like": a.boost_sounds_like if a.sounds_like else None,
            "exact_sounds_like": bool(a.sounds_like) and not a.no_exact_sounds_like,
        }
        Path(a.out).write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
