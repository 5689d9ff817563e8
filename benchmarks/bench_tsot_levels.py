"""Where a t-SOT bundle loses words in two-talker speech: cpWER, each talker's WER and the `<cc>` it emits, by the
level difference between the talkers and by overlap ratio.

    nice -n 10 .venv/bin/python benchmarks/bench_tsot_levels.py --bundle bundles/en-tsot-small \
        --manifest /work/data/corpus-grammar/en/test.jsonl --work /work/exp/tsot-analysis/mix --n 100 \
        --hyps /work/exp/tsot-analysis/hyps-test.tsv --out benchmarks/results/tsot/levels-en-tsot-small.json

Mixtures come from the simulator (models/data/mixtures.py, its `plan_mixture` and `mix_one`) with the level fixed
instead of drawn: pair k (two utterances of different voices, the second starting uniformly within the first, as in
training) is the same in every condition, only the second talker's gain (dB relative to the first, RMS-matched first)
changes, so conditions are paired. Conditions: "overlap" at each `--gains` value (negative: the second talker is
the quieter one), and "sequential" (the second starts 0-0.5 s after the first ended) at each `--sequential-gains`
value, a control with two talkers at those levels but no overlap. Decoding is the server's
(`server.transducer.transcribe_many`, greedy, the bundle's chunking); channels come from `server.tsot.split_channels`.

Per condition: cpWER (models/eval/evaluate_tsot.py); channel-agnostic WER (all words, `<cc>` dropped, against all
reference words in serialized order: what the model hears regardless of channel); per talker (louder / quieter, and
first / second) WER and where its reference words went under the cpWER assignment: correct, substituted,
"merged" (missing from its channel but found, unmatched, in the other channel: a missed or extra `<cc>`) and
"dropped" (in no channel); and `<cc>`: emitted vs in the reference labels, and the share of mixtures whose
reference has a `<cc>` but whose output has none. A talker's words are also split into overlapped (spoken between
the other's first and last word) or not, and its first `ONSET_WORDS` words or the rest ("lost": not correct in its
channel). A second table splits cpWER and the quieter talker's WER by overlap ratio bucket (0, 0-20, 20-40, 40+ %).
Every source utterance is also decoded alone (its plain WER; `--no-single` skips it); `--hyps` writes every
reference and hypothesis.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data import mixtures
from models.data.manifest import Utterance, read_manifest
from models.eval.evaluate_tsot import BUCKETS, cpwer_counts, overlap_bucket
from parley.audio import read_wav
from parley.contract import CHANNEL_CHANGE, NUM_CHANNELS
from parley.textnorm import words
from parley.wer import ErrorCounts, align, align_counts
from server.bundle import load_bundle
from server.transducer import StreamingTransducer, transcribe_many
from server.tsot import serialized_words, split_channels, strip_channel_changes

ROLES = ("first", "second")
ONSET_WORDS = 3  # a talker's first words, scored apart: a talker who joins in loses them most
_BATCH = 16  # mixtures decoded together (transcribe_many batches streams as the server does)


@dataclass
class TalkerCounts:
    """Where one talker's reference words went (under the cpWER channel assignment)."""

    words: int = 0
    correct: int = 0
    substituted: int = 0
    merged: int = 0  # deleted from its channel, found unmatched in the other channel
    dropped: int = 0  # deleted from its channel and not in the other one either
    inserted: int = 0  # insertions in its channel next to its words
    overlapped: int = 0  # its words spoken while the other talker speaks (between their first and last word)
    overlapped_lost: int = 0  # of those, not correct in its channel (substituted, merged or dropped)
    clear_lost: int = 0  # of the others, not correct in its channel
    onset: int = 0  # its first ONSET_WORDS words
    onset_lost: int = 0  # of those, not correct in its channel

    @property
    def errors(self) -> int:
        return self.substituted + self.merged + self.dropped + self.inserted

    def add(self, other: TalkerCounts) -> None:
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def summary(self) -> dict:
        n = max(1, self.words)
        return {
            "words": self.words,
            "wer": self.errors / n,
            "correct": self.correct / n,
            "substituted": self.substituted / n,
            "merged": self.merged / n,
            "dropped": self.dropped / n,
            "inserted": self.inserted / n,
            "overlapped_words": self.overlapped,
            "overlapped_lost": self.overlapped_lost / max(1, self.overlapped),
            "clear_lost": self.clear_lost / max(1, self.words - self.overlapped),
            "onset_lost": self.onset_lost / max(1, self.onset),
            "rest_lost": (self.overlapped_lost + self.clear_lost - self.onset_lost) / max(1, self.words - self.onset),
        }


@dataclass
class Tally:
    """Sums over the mixtures of one condition (or one condition's overlap bucket)."""

    mixtures: int = 0
    cp: ErrorCounts = field(default_factory=ErrorCounts)
    agnostic: ErrorCounts = field(default_factory=ErrorCounts)
    talkers: dict[str, TalkerCounts] = field(default_factory=lambda: {r: TalkerCounts() for r in ROLES})
    cc_ref: int = 0
    cc_hyp: int = 0
    cc_missing: int = 0  # mixtures whose reference has a <cc> and whose output has none
    cc_expected: int = 0  # mixtures whose reference has a <cc>
    hyp_words: int = 0  # words emitted, all channels

    def add(self, m: MixtureScore) -> None:
        self.mixtures += 1
        self.cp = self.cp + m.cp
        self.agnostic = self.agnostic + m.agnostic
        for r in ROLES:
            self.talkers[r].add(m.talkers[r])
        self.cc_ref += m.cc_ref
        self.cc_hyp += m.cc_hyp
        self.hyp_words += m.hyp_words
        self.cc_expected += m.cc_ref > 0
        self.cc_missing += m.cc_ref > 0 and m.cc_hyp == 0

    def summary(self, quieter: str | None) -> dict:
        """`quieter`: the role of the quieter talker ("first" / "second"), None when they are level."""
        out = {
            "mixtures": self.mixtures,
            "cpwer": self.cp.rate,
            "cp_errors": self.cp.errors,
            "reference_words": self.cp.reference_words,
            "agnostic_wer": self.agnostic.rate,
            "talkers": {r: self.talkers[r].summary() for r in ROLES},
            "cc": {
                "reference": self.cc_ref,
                "emitted": self.cc_hyp,
                "emitted_per_reference": self.cc_hyp / max(1, self.cc_ref),
                "reference_per_word": self.cc_ref / max(1, self.cp.reference_words),
                "emitted_per_emitted_word": self.cc_hyp / max(1, self.hyp_words),
                "mixtures_without_cc": self.cc_missing / max(1, self.cc_expected),
            },
        }
        louder = "first" if quieter != "first" else "second"
        out["louder"] = out["talkers"][louder]
        out["quieter"] = out["talkers"]["second" if louder == "first" else "first"]
        return out


@dataclass
class MixtureScore:
    cp: ErrorCounts
    agnostic: ErrorCounts
    talkers: dict[str, TalkerCounts]
    cc_ref: int
    cc_hyp: int
    hyp_words: int


def score_mixture(line: dict, hyp: str, language: str = "en") -> MixtureScore:
    """Scores one decoded mixture against its manifest line (models/data/mixtures.py: `tsot_words`, `channels`).

    The hypothesis channels are assigned to the reference channels as cpWER does (fewest errors); each reference
    word's fate is then booked to its talker ("first" / "second": the source utterance it came from).
    """
    speakers = line["voice"].split("|")
    role = {s: ROLES[i] for i, s in enumerate(speakers)}
    span = {  # each talker's speech: its first word's start to its last word's end
        s: (min(w["start"] for w in ws), max(w["end"] for w in ws))
        for s in speakers
        if (ws := [w for w in line["tsot_words"] if w["speaker"] == s])
    }
    # per channel: (word, role, overlapped, index in its talker's utterance)
    ref: list[list[tuple[str, str, bool, int]]] = [[] for _ in range(NUM_CHANNELS)]
    index = Counter[str]()
    for w in line["tsot_words"]:
        others = [span[s] for s in span if s != w["speaker"]]
        ov = any(w["start"] < e and w["end"] > b for b, e in others)
        r = role[w["speaker"]]
        for x in words(w["word"], language):
            ref[w["channel"]].append((x, r, ov, index[r]))
            index[r] += 1
    hyp_ch = [words(" ".join(ws), language) for ws in split_channels(hyp)]
    refs = [[x[0] for x in ch] for ch in ref]
    cp = cpwer_counts([" ".join(r) for r in refs], [" ".join(h) for h in hyp_ch], language)
    perm = min(
        itertools.permutations(range(NUM_CHANNELS)),
        key=lambda p: sum(align_counts(refs[i], hyp_ch[j]).errors for i, j in enumerate(p)),
    )
    talkers = {r: TalkerCounts() for r in ROLES}
    deleted: list[list[tuple[str, str]]] = [[] for _ in range(NUM_CHANNELS)]  # per hypothesis channel
    unmatched: list[Counter[str]] = [Counter() for _ in range(NUM_CHANNELS)]  # hypothesis words not matched
    for c, j in enumerate(perm):
        last = ref[c][0][1] if ref[c] else ROLES[0]
        for ri, hi in align(refs[c], hyp_ch[j]):
            if ri is None:
                assert hi is not None
                talkers[last].inserted += 1
                unmatched[j][hyp_ch[j][hi]] += 1
                continue
            word, last, ov, k = ref[c][ri]
            t = talkers[last]
            t.words += 1
            t.overlapped += ov
            lost = hi is None or hyp_ch[j][hi] != word
            if ov:
                t.overlapped_lost += lost
            else:
                t.clear_lost += lost
            if k < ONSET_WORDS:
                t.onset += 1
                t.onset_lost += lost
            if hi is None:
                deleted[j].append((word, last))
            elif hyp_ch[j][hi] == word:
                talkers[last].correct += 1
            else:
                talkers[last].substituted += 1
                unmatched[j][hyp_ch[j][hi]] += 1
    for j in range(NUM_CHANNELS):
        other = unmatched[1 - j]
        for word, r in deleted[j]:
            if other[word] > 0:  # the word came out, on the wrong channel
                other[word] -= 1
                talkers[r].merged += 1
            else:
                talkers[r].dropped += 1
    # A merged word is also an insertion (or a substitution) in the other channel, booked to that channel's talker,
    # as cpWER counts it twice: the talkers' errors add up to the mixture's cpWER errors.
    assert sum(t.errors for t in talkers.values()) == cp.errors, (talkers, cp)
    all_ref = words(line["text"].replace(CHANNEL_CHANGE, " "), language)
    agnostic = align_counts(all_ref, words(strip_channel_changes(hyp), language))
    cc_ref = line["text"].split().count(CHANNEL_CHANGE)
    cc_hyp = serialized_words(hyp).count(CHANNEL_CHANGE)
    return MixtureScore(cp, agnostic, talkers, cc_ref, cc_hyp, sum(len(h) for h in hyp_ch))


@dataclass(frozen=True)
class Condition:
    kind: str  # "overlap" or "sequential"
    gain_db: float  # the second talker's level relative to the first

    @property
    def name(self) -> str:
        return f"{self.kind}{self.gain_db:+g}dB"

    @property
    def quieter(self) -> str | None:
        return None if self.gain_db == 0 else "second" if self.gain_db < 0 else "first"


def plan_pairs(utts: Sequence[Utterance], n: int, seed: int) -> list[mixtures.MixPlan]:
    """`n` overlap plans as the simulator draws them (its pair and start of the second; level 0 dB): pair k
    depends only on (seed, k)."""
    cfg = mixtures.MixConfig(p_single=0.0, p_sequential=0.0, gain_db=0.0)
    return mixtures.plan_mixtures([u.duration for u in utts], [u.voice for u in utts], n, seed, cfg)


def condition_plan(base: mixtures.MixPlan, cond: Condition, seed: int, k: int) -> mixtures.MixPlan:
    """Pair `k`'s plan in condition `cond`: its level set, and for "sequential" the second moved after the first."""
    if cond.kind == "overlap":
        return replace(base, gain_db=cond.gain_db)
    d1 = base.spans[0][1]
    d2 = base.spans[1][1] - base.spans[1][0]
    gap = float(np.random.default_rng([seed, k, 1]).uniform(0, mixtures.MixConfig().max_gap_s))
    offset = d1 + gap
    return mixtures.MixPlan(
        "sequential", base.first, base.second, offset, cond.gain_db, offset + d2, ((0.0, d1), (offset, offset + d2))
    )


def make_condition(
    utts: Sequence[Utterance], bases: Sequence[mixtures.MixPlan], cond: Condition, work: Path, seed: int
) -> list[dict]:
    """Simulates the condition's mixtures into `work`/<name> (kept: a rerun reuses them); their manifest lines."""
    out = work / cond.name
    lines = []
    for k, base in enumerate(bases):
        p = condition_plan(base, cond, seed, k)
        assert p.second is not None
        # mix_one is the simulator's own mixing and labelling (private: it takes a plan rather than drawing one).
        job = mixtures._Job(str(out), k, p, utts[p.first], utts[p.second])
        line = mixtures.mix_one(job)
        line["audio"] = str(out / line["audio"])
        lines.append(line)
    return lines


def decode(model: StreamingTransducer, audio: Sequence[str]) -> list[str]:
    """Serialized texts (with `<cc>`) of WAV files, decoded by the server's streaming code, `_BATCH` at a time."""
    out: list[str] = []
    for i in range(0, len(audio), _BATCH):
        waves = []
        for path in audio[i : i + _BATCH]:
            x, sr = read_wav(path)
            waves.append(x)
            assert sr == 16000, (path, sr)
        out += [t.text for t in transcribe_many(model, waves, 16000)]
    return out


def measure(
    bundle: str,
    manifest: str,
    work: Path,
    n: int,
    gains: Sequence[float],
    sequential_gains: Sequence[float],
    seed: int = 23,
    threads: int = 1,
    single: bool = True,
    hyps_path: Path | None = None,
) -> dict:
    """Builds the mixtures of every condition, decodes them with `bundle`, and returns the report (see module doc)."""
    t0 = time.time()
    model = StreamingTransducer(load_bundle(bundle, threads=threads))
    utts = read_manifest(manifest)
    bases = plan_pairs(utts, n, seed)
    conds = [Condition("overlap", g) for g in gains] + [Condition("sequential", g) for g in sequential_gains]
    report: dict = {
        "bundle": bundle,
        "manifest": manifest,
        "pairs": n,
        "seed": seed,
        "gain": "second talker's level relative to the first (RMS over each utterance), dB; negative: second quieter",
        "conditions": {},
    }
    dump = []
    for cond in conds:
        lines = make_condition(utts, bases, cond, work, seed)
        hyps = decode(model, [x["audio"] for x in lines])
        total, buckets = Tally(), {b: Tally() for b in BUCKETS}
        for line, hyp in zip(lines, hyps, strict=True):
            s = score_mixture(line, hyp)
            total.add(s)
            buckets[overlap_bucket(float(line["overlap"]))].add(s)
            dump.append(f"{cond.name}\t{line['id']}\t{line['overlap']:.3f}\tREF {line['text']}\n")
            dump.append(f"{cond.name}\t{line['id']}\t{line['overlap']:.3f}\tHYP {hyp}\n")
        row = total.summary(cond.quieter)
        row |= {
            "kind": cond.kind,
            "gain_db": cond.gain_db,
            "mean_overlap": float(np.mean([x["overlap"] for x in lines])),
        }
        row["by_overlap"] = {b: t.summary(cond.quieter) for b, t in buckets.items() if t.mixtures}
        report["conditions"][cond.name] = row
        print(f"{cond.name}: cpWER {100 * row['cpwer']:.1f}% ({time.time() - t0:.0f} s)", file=sys.stderr)
    if single:
        idx = sorted({i for b in bases for i in (b.first, b.second) if i is not None})
        hyps = decode(model, [utts[i].audio for i in idx])
        by_role = {r: ErrorCounts() for r in ROLES}
        for i, h in zip(idx, hyps, strict=True):
            c = align_counts(words(utts[i].text, "en"), words(strip_channel_changes(h), "en"))
            for r, key in zip(ROLES, ("first", "second"), strict=True):
                if any(getattr(b, key) == i for b in bases):
                    by_role[r] = by_role[r] + c
        alone = sum(by_role.values(), ErrorCounts())
        report["single"] = {"utterances": len(idx), "wer": alone.rate, **{f"wer_{r}": by_role[r].rate for r in ROLES}}
        report["single"]["cc_emitted"] = sum(serialized_words(h).count(CHANNEL_CHANGE) for h in hyps)
    report["seconds"] = round(time.time() - t0, 1)
    if hyps_path:
        hyps_path.parent.mkdir(parents=True, exist_ok=True)
        hyps_path.write_text("".join(dump), encoding="utf-8")
    return report


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}"


def print_tables(report: dict) -> None:
    rows = report["conditions"]
    print(f"pairs per condition: {report['pairs']}; gain: {report['gain']}")
    head = (
        "| condition | mixtures | overlap | cpWER | agnostic WER | louder WER | quieter WER | quieter merged | "
        "quieter dropped | quieter lost in / out of overlap | quieter lost onset / rest | louder lost in / out | "
        "louder dropped | "
        "<cc> ref | <cc> out | <cc>/word ref, out | no <cc> |"
    )
    print(head)
    print("|" + " --- |" * (head.count("|") - 1))
    for name, r in rows.items():
        q, lo, cc = r["quieter"], r["louder"], r["cc"]
        print(
            f"| {name} | {r['mixtures']} | {_pct(r['mean_overlap'])} | {_pct(r['cpwer'])} | {_pct(r['agnostic_wer'])} "
            f"| {_pct(lo['wer'])} | {_pct(q['wer'])} | {_pct(q['merged'])} | {_pct(q['dropped'])} "
            f"| {_pct(q['overlapped_lost'])} / {_pct(q['clear_lost'])} "
            f"| {_pct(q['onset_lost'])} / {_pct(q['rest_lost'])} "
            f"| {_pct(lo['overlapped_lost'])} / {_pct(lo['clear_lost'])} "
            f"| {_pct(lo['dropped'])} | {cc['reference']} | {cc['emitted']} "
            f"| {cc['reference_per_word']:.2f}, {cc['emitted_per_emitted_word']:.2f} "
            f"| {_pct(cc['mixtures_without_cc'])} |"
        )
    print(
        "(percent; 'louder'/'quieter' are first/second at 0 dB; merged: missing from its channel, found in the other)"
    )
    print()
    print("| condition | " + " | ".join(f"{b} %: n, cpWER, quieter WER, dropped" for b in BUCKETS) + " |")
    print("|" + " --- |" * (len(BUCKETS) + 1))
    for name, r in rows.items():
        if r["kind"] != "overlap":
            continue
        cells = []
        for b in BUCKETS:
            x = r["by_overlap"].get(b)
            cells.append(
                "-"
                if x is None
                else f"{x['mixtures']}, {_pct(x['cpwer'])}, {_pct(x['quieter']['wer'])}, "
                f"{_pct(x['quieter']['dropped'])}"
            )
        print(f"| {name} | " + " | ".join(cells) + " |")
    if "single" in report:
        s = report["single"]
        print(
            f"\nsource utterances alone: {s['utterances']}, WER {_pct(s['wer'])}% (as first {_pct(s['wer_first'])}%, "
            f"as second {_pct(s['wer_second'])}%), <cc> emitted {s['cc_emitted']}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default="bundles/en-tsot-small", help="a t-SOT bundle folder")
    p.add_argument("--manifest", required=True, help="source utterances with word timings (held-out split)")
    p.add_argument("--work", required=True, type=Path, help="folder for the simulated mixtures (reused by a rerun)")
    p.add_argument("--n", type=int, default=40, help="mixtures per condition (the same pairs in each; default: 40)")
    p.add_argument(
        "--gains",
        type=float,
        nargs="+",
        default=[0, -3, -6, -10, 3, 6, 10],
        help="overlap conditions: second talker's gain in dB (default: 0 -3 -6 -10 3 6 10)",
    )
    p.add_argument(
        "--sequential-gains",
        type=float,
        nargs="*",
        default=[0, -10],
        help="no-overlap control conditions (default: 0 -10)",
    )
    p.add_argument("--seed", type=int, default=23, help="seed of the pairs and offsets (default: 23)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default: 1)")
    p.add_argument("--no-single", action="store_true", help="skip decoding the source utterances alone")
    p.add_argument("--hyps", type=Path, help="write every reference and hypothesis here (TSV)")
    p.add_argument("--out", type=Path, help="write the report as JSON")
    a = p.parse_args(argv)
    report = measure(
        a.bundle, a.manifest, a.work, a.n, a.gains, a.sequential_gains, a.seed, a.threads, not a.no_single, a.hyps
    )
    print_tables(report)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
