"""Who speaks, across segments: the talker numbers of finals (server/talkers.py) on conversations of held-out voices.

    .venv/bin/python benchmarks/bench_talkers.py --bundle bundles/en-open --split test \
        --text $DATA/corpus-v2/en/test.jsonl --work $EXP/talkers/conv-test \
        --thresholds 0.2 0.3 0.4 0.5 --out benchmarks/results/talkers/en-open-test.json

Speakers are synthesized here: `--speakers` voices of the split (test: the held-out voices of every engine, the
cross-synthesizer RHVoice included; dev: the training voices with other draws, flite in RHVoice's
place), each reading `--sentences` sentences of
`--text` (held-out documents for test), cached in `--work`. A conversation takes 2 or 3 of them with different base
voices (engine and voice, or espeak voice and variant: two draws of one voice with other pitches are not two people)
and `--turns` turns in a random order without a talker speaking twice in a row, each turn one sentence, separated by
1.5-2.0 s of silence (the endpoint's 1.2 s rule closes a segment between turns).

Two measurements:
- "turns": each turn's frames straight into the tracker (no recognition), at each `--thresholds` value: the share of
  turns whose talker number is right under the best one-to-one mapping of numbers to speakers, turns too short for a
  number (under 0.5 s voiced) counted wrong; and the share of conversations given the right number of talkers.
  The "one talker" row is what a stream without talkers gets (every segment the same channel 0). The same on 100
  monologues (one speaker, `--turns` turns): the share of turns given that speaker's number, and of monologues
  given one talker only (the spurious new talkers a numbering makes).
- "server": each conversation streamed through the bundle's recognizer with talkers on, at the bundle's threshold:
  the share of the recognized words whose final's talker is the speaker of the turn the word's middle falls in (best
  mapping again), and the words with no talker.
- `--asterisk DIR`: the "turns" measure on real people instead, the Asterisk prompts (Allison in English and
  Spanish, June in French, Carlo in Italian; make asterisk): three voices, so conversations of 2 or 3 of them.
- "tsot" (`--tsot`, a multi-talker bundle): two-speaker conversations whose every segment is a mixture of the two
  (the second starting within the first, same level, who starts drawn per segment): the share of the words outside
  the overlap whose talker is the speaker speaking there, against taking the channel for the talker; and the channels'
  purity (the words of each final's channel that its most frequent speaker said: what a perfect numbering of the
  channels would reach, since a channel that holds both speakers' words is one talker number).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parley.audio import read_wav, write_wav
from parley.features import SAMPLE_RATE, compute_fbank
from parley.resample import resample
from server.talkers import TalkerModel, TalkerTracker, speech_stats

# Engines of the speakers; the test split's last is RHVoice, the engine no training saw; dev has flite instead.
ENGINE_SHARES = (("espeak", 0.34), ("mbrola", 0.16), ("festival", 0.16), ("pico", 0.16))
LAST_ENGINE = {"test": ("rhvoice", 0.18), "dev": ("flite", 0.18)}
GAP_S = (1.5, 2.0)


def base_voice(voice: str) -> str:
    """ "festival:ked/r1.02/p0.97" -> "festival:ked"; "espeak:en-us+m3/p55/..." -> "espeak:en-us+m3"."""
    return voice.split("/")[0]


def synthesize_speakers(split: str, text: Path, n: int, sentences: int, work: Path, seed: int) -> list[dict]:
    """`n` speakers of `split`, `sentences` sentences each, as rows {speaker, voice, audio, text} (cached)."""
    from models.data import engines

    manifest = work / "speakers.jsonl"
    if manifest.exists():
        return [json.loads(line) for line in manifest.read_text().splitlines()]
    rng = random.Random(seed)
    texts = [json.loads(line)["text"] for line in text.read_text().splitlines() if line.strip()]
    rng.shuffle(texts)
    texts = [t for t in texts if 4 <= len(t.split()) <= 20]
    (work / "wav").mkdir(parents=True, exist_ok=True)
    rows, k = [], 0
    counts = [(e, max(1, round(n * share))) for e, share in (*ENGINE_SHARES, LAST_ENGINE[split])]
    for engine, count in counts:
        for s in range(count):
            voice = engines.sample_engine_voice("en", engine, rng, split)
            for j in range(sentences):
                syn = engines.speak(texts[k % len(texts)], voice)
                path = work / "wav" / f"{engine}{s}-{j}.wav"
                write_wav(path, syn.samples, syn.sample_rate)
                rows.append(
                    {"speaker": f"{engine}{s}", "voice": voice.name, "audio": str(path), "text": texts[k % len(texts)]}
                )
                k += 1
            print(f"speaker {engine}{s}: {voice.name}", flush=True)
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def asterisk_rows(folder: Path, min_s: float = 1.5) -> list[dict]:
    """Real voices: the Asterisk prompts' test clips of every language (models/data/asterisk.py's manifests) as rows,
    the speaker named by the voice's last part, so that Allison's English and Spanish prompts are one talker (June
    speaks the French ones, Carlo the Italian ones); clips shorter than `min_s` are left out."""
    rows = []
    for manifest in sorted(folder.glob("*/test.jsonl")):
        for line in manifest.read_text().splitlines():
            r = json.loads(line)
            if float(r["duration"]) >= min_s:
                who = r["voice"].split("_")[-1]
                rows.append({"speaker": who, "voice": f"asterisk:{who}", "audio": r["audio"], "text": r["text"]})
    if not rows:
        raise SystemExit(f"no Asterisk test clips under {folder} (make asterisk)")
    return rows


def _by_speaker(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["speaker"], []).append(r)
    return out


def plan_conversations(rows: list[dict], count: int, turns: int, seed: int) -> list[list[dict]]:
    """`count` conversations of 2-3 speakers with different base voices, `turns` turns each (rows of `rows`)."""
    rng = random.Random(seed)
    by_speaker = _by_speaker(rows)
    speakers = sorted(by_speaker)
    out = []
    while len(out) < count:
        m = rng.choice((2, 3))
        chosen = rng.sample(speakers, m)
        if len({base_voice(by_speaker[s][0]["voice"]) for s in chosen}) < m:
            continue
        order, last = [], None
        for _ in range(turns):
            who = rng.choice([s for s in chosen if s != last])
            order.append(who)
            last = who
        if len(set(order)) < m:
            continue
        used: Counter[str] = Counter()
        conv = []
        for who in order:
            pool = by_speaker[who]
            conv.append(pool[used[who] % len(pool)])
            used[who] += 1
        out.append(conv)
    return out


def plan_monologues(rows: list[dict], count: int, turns: int, seed: int) -> list[list[dict]]:
    """`count` streams of one speaker each taking `turns` turns: what numbering must not split (spurious talkers)."""
    rng = random.Random(seed)
    by_speaker = _by_speaker(rows)
    names = sorted(by_speaker)
    out = []
    for _ in range(count):
        pool = by_speaker[rng.choice(names)]
        out.append([pool[j % len(pool)] for j in range(turns)])
    return out


def mapped_accuracy(truth: Sequence[str], pred: Sequence[int | None]) -> float:
    """The share of items whose predicted number maps to their true speaker under the best one-to-one mapping."""
    speakers = sorted(set(truth))
    numbers = sorted({p for p in pred if p is not None})
    best = 0
    for perm in itertools.permutations(numbers, min(len(numbers), len(speakers))):
        mapping = dict(zip(perm, speakers, strict=False))
        best = max(best, sum(1 for t, p in zip(truth, pred, strict=True) if p is not None and mapping.get(p) == t))
    return best / max(1, len(truth))


def audio_of(row: dict) -> np.ndarray:
    x, sr = read_wav(row["audio"])
    return resample(x, sr, SAMPLE_RATE) if sr != SAMPLE_RATE else x


@functools.cache
def _frames(audio: str) -> np.ndarray:
    """A speaker row's fbank frames, computed once for every measure that reads them."""
    return compute_fbank(audio_of({"audio": audio}), SAMPLE_RATE)


def turns_measure(model: TalkerModel, convs: list[list[dict]], thresholds: Sequence[float]) -> list[dict]:
    """The "turns" measurement at each threshold, plus the one-talker baseline."""
    embs = {}
    for conv in convs:
        for r in conv:
            if r["audio"] not in embs:
                embs[r["audio"]] = model.embed(_frames(r["audio"]))
    out = []
    base_acc = [mapped_accuracy([r["speaker"] for r in c], [0] * len(c)) for c in convs]
    out.append(
        {
            "threshold": None,
            "label": "one talker (channels only)",
            "turn_accuracy": float(np.mean(base_acc)),
            "right_count": float(np.mean([len({r["speaker"] for r in c}) == 1 for c in convs])),
        }
    )
    for th in thresholds:
        m = TalkerModel(model.mean, model.proj, th, model.min_frames, model.card)
        accs, right, none = [], [], 0
        for conv in convs:
            tracker = TalkerTracker(m)
            pred = [tracker.assign([embs[r["audio"]]])[0] for r in conv]
            none += sum(p is None for p in pred)
            accs.append(mapped_accuracy([r["speaker"] for r in conv], pred))
            right.append(len(tracker.sums) == len({r["speaker"] for r in conv}))
        out.append(
            {
                "threshold": th,
                "turn_accuracy": float(np.mean(accs)),
                "right_count": float(np.mean(right)),
                "turns_without_talker": none,
            }
        )
    return out


def _finals(rec, audio: np.ndarray) -> list:
    """The finals of `audio` (16 kHz) streamed through recognizer `rec` with talkers on, chunk by chunk."""
    from server.frontend import Frontend
    from server.recognizer import Final

    stream = rec.open(talkers=True)
    fe = Frontend(rec.spec, SAMPLE_RATE)
    fe.accept(audio)
    fe.finish()
    finals = []
    while (chunk := fe.pop_chunk()) is not None:
        finals += [r for r in rec.step([(stream, chunk)])[0] if isinstance(r, Final)]
    return finals + rec.finish(stream, len(audio) / SAMPLE_RATE)


def centered_measure(
    model: TalkerModel, convs: list[list[dict]], thresholds: Sequence[float], weight: float
) -> list[dict]:
    """Tried, not kept (docs/talkers.md): the "turns" measure with each raw embedding centered on the stream's own
    mean so far (`weight` segments' worth of the training mean, 0, in it) before the cosine; a simulation of the
    tracker, not server/talkers.py's."""
    raw: dict[str, np.ndarray | None] = {}
    for conv in convs:
        for r in conv:
            if r["audio"] not in raw:
                st = speech_stats(_frames(r["audio"]), model.min_frames)
                raw[r["audio"]] = None if st is None else (st - model.mean) @ model.proj
    out = []
    for th in thresholds:
        accs = []
        for conv in convs:
            seen: list[tuple[np.ndarray, int]] = []
            pred: list[int | None] = []
            for r in conv:
                e = raw[r["audio"]]
                if e is None:
                    pred.append(None)
                    continue
                mu = (sum((x for x, _ in seen), np.zeros_like(e)) + e) / (len(seen) + 1 + weight)
                c = (e - mu) / np.linalg.norm(e - mu)
                sims = {}
                for t in {t for _, t in seen}:
                    cen = sum((x - mu) / np.linalg.norm(x - mu) for x, u in seen if u == t)
                    sims[t] = float(c @ cen / np.linalg.norm(cen))
                best = max(sims, key=sims.get, default=None)
                t = best if best is not None and sims[best] >= th else len(sims)
                seen.append((e, t))
                pred.append(t)
            accs.append(mapped_accuracy([r["speaker"] for r in conv], pred))
        out.append({"threshold": th, "center_weight": weight, "turn_accuracy": float(np.mean(accs))})
    return out


def server_measure(bundle_path: Path, convs: list[list[dict]], seed: int) -> dict:
    """The "server" measurement: each conversation through the recognizer with talkers on."""
    from server.bundle import load_bundle
    from server.recognizer import Recognizer
    from server.transducer import StreamingTransducer

    bundle = load_bundle(bundle_path)
    if bundle.talkers is None:
        raise SystemExit(f"{bundle_path} has no talker model (parley talkers add)")
    model = StreamingTransducer(bundle)
    rec = Recognizer(model, talkers=bundle.talkers)
    rng = random.Random(seed)
    accs, words_total, words_none, finals_n, secs = [], 0, 0, 0, 0.0
    t0 = time.perf_counter()
    for conv in convs:
        pieces, spans, t = [], [], 0.0
        for r in conv:
            gap = np.zeros(int(rng.uniform(*GAP_S) * SAMPLE_RATE), dtype=np.float32)
            x = audio_of(r)
            pieces += [gap, x]
            t += len(gap) / SAMPLE_RATE
            spans.append((t, t + len(x) / SAMPLE_RATE, r["speaker"]))
            t += len(x) / SAMPLE_RATE
        pieces.append(np.zeros(SAMPLE_RATE, dtype=np.float32))
        audio = np.concatenate(pieces)
        secs += len(audio) / SAMPLE_RATE
        finals = _finals(rec, audio)
        truth, pred = [], []
        for f in finals:
            finals_n += 1
            for w in f.words:
                mid = (w.start + w.end) / 2
                who = min(spans, key=lambda s: 0 if s[0] <= mid <= s[1] else min(abs(mid - s[0]), abs(mid - s[1])))
                truth.append(who[2])
                pred.append(w.talker)
        words_total += len(pred)
        words_none += sum(p is None for p in pred)
        accs.append(mapped_accuracy(truth, pred) if pred else 0.0)
    return {
        "threshold": bundle.talkers.threshold,
        "word_accuracy": float(np.mean(accs)),
        "words": words_total,
        "words_without_talker": words_none,
        "finals": finals_n,
        "audio_s": round(secs, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _mixture(a: np.ndarray, b: np.ndarray, rng: random.Random) -> tuple[np.ndarray, float]:
    """`b` starting uniformly within `a` (as models/data/mixtures.py draws the overlap), at the same RMS: the mixture
    and `b`'s offset in seconds."""
    offset = int(rng.uniform(0.2, 0.9) * len(a))
    b = b * (np.sqrt(np.mean(a**2)) / max(np.sqrt(np.mean(b**2)), 1e-9))
    out = np.zeros(max(len(a), offset + len(b)), dtype=np.float32)
    out[: len(a)] += a
    out[offset : offset + len(b)] += b
    return out / max(1.0, float(np.abs(out).max())), offset / SAMPLE_RATE


def tsot_measure(bundle_path: Path, convs: list[list[dict]], seed: int) -> dict:
    """The "tsot" measurement: conversations of two-talker mixtures through a multi-talker bundle with talkers on.

    Each conversation's first two speakers overlap in every segment (who starts is drawn per segment); a word counts
    where its middle lies in one speaker's speech alone (the overlap says nothing about whose it is). Talker accuracy
    (best mapping) against "the channel is the talker" (what a stream without talkers has to go by)."""
    from server.bundle import load_bundle
    from server.recognizer import Recognizer
    from server.transducer import StreamingTransducer

    bundle = load_bundle(bundle_path)
    if bundle.talkers is None or bundle.heads[0].post_processing != "tsot":
        raise SystemExit(f"{bundle_path}: --tsot needs a multi-talker bundle with a talker model")
    model = StreamingTransducer(bundle)
    rec = Recognizer(model, talkers=bundle.talkers)
    rng = random.Random(seed)
    acc, acc_channel, counted, ambiguous, none, secs, pure = [], [], 0, 0, 0, 0.0, 0
    for conv in convs:
        by = {}
        for r in conv:
            by.setdefault(r["speaker"], []).append(r)
        a_rows, b_rows = list(by.values())[:2]
        pieces, spans, t = [], [], 0.0
        for k in range(min(len(a_rows), len(b_rows), 4)):
            first, second = (a_rows[k], b_rows[k]) if rng.random() < 0.5 else (b_rows[k], a_rows[k])
            x1, x2 = audio_of(first), audio_of(second)
            mix, offset = _mixture(x1, x2, rng)
            gap = np.zeros(int(rng.uniform(*GAP_S) * SAMPLE_RATE), dtype=np.float32)
            pieces += [gap, mix]
            t += len(gap) / SAMPLE_RATE
            spans.append((t, t + len(x1) / SAMPLE_RATE, first["speaker"]))
            spans.append((t + offset, t + offset + len(x2) / SAMPLE_RATE, second["speaker"]))
            t += len(mix) / SAMPLE_RATE
        pieces.append(np.zeros(SAMPLE_RATE, dtype=np.float32))
        audio = np.concatenate(pieces)
        secs += len(audio) / SAMPLE_RATE
        finals = _finals(rec, audio)
        truth, pred, channel = [], [], []
        for f in finals:
            by_channel: dict[int | None, Counter[str]] = {}
            for w in f.words:
                mid = (w.start + w.end) / 2
                inside = {s[2] for s in spans if s[0] <= mid <= s[1]}
                if len(inside) != 1:
                    ambiguous += 1
                    continue
                truth.append(inside.pop())
                pred.append(w.talker)
                channel.append(w.speaker)
                by_channel.setdefault(w.speaker, Counter())[truth[-1]] += 1
            pure += sum(max(c.values()) for c in by_channel.values())
        counted += len(truth)
        none += sum(p is None for p in pred)
        if truth:
            acc.append(mapped_accuracy(truth, pred))
            acc_channel.append(mapped_accuracy(truth, channel))
    return {
        "threshold": bundle.talkers.threshold,
        "word_accuracy": float(np.mean(acc)),
        "channel_as_talker_accuracy": float(np.mean(acc_channel)),
        "channel_purity": pure / max(1, counted),
        "words": counted,
        "words_in_overlap_skipped": ambiguous,
        "words_without_talker": none,
        "audio_s": round(secs, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", type=Path, required=True, help="a bundle with a talker model")
    p.add_argument("--split", default="test", choices=("dev", "test"), help="whose voices speak (default: test)")
    p.add_argument("--text", type=Path, help="a manifest whose sentences they read")
    p.add_argument("--work", type=Path, help="where the synthesized speakers are cached")
    p.add_argument("--speakers", type=int, default=40, help="speakers synthesized (default: 40)")
    p.add_argument("--sentences", type=int, default=6, help="sentences per speaker (default: 6)")
    p.add_argument("--conversations", type=int, default=100, help="conversations (default: 100)")
    p.add_argument("--turns", type=int, default=8, help="turns per conversation (default: 8)")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.2, 0.3, 0.4, 0.5], help="for the turns measure")
    p.add_argument("--server-conversations", type=int, default=30, help="conversations streamed (0: none)")
    p.add_argument("--tsot", action="store_true", help="the bundle is multi-talker: measure on mixtures instead")
    p.add_argument(
        "--asterisk", type=Path, help="real voices instead: the Asterisk prompts under this folder (turns measure only)"
    )
    p.add_argument(
        "--center", type=float, help="also the turns measure with stream-centered embeddings of this prior weight"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="write the figures here as JSON")
    a = p.parse_args(argv)
    if a.asterisk is None and (a.text is None or a.work is None):
        p.error("--text and --work are needed (or --asterisk)")
    from server.bundle import load_bundle

    bundle = load_bundle(a.bundle)
    if bundle.talkers is None:
        raise SystemExit(f"{a.bundle} has no talker model (parley talkers add)")
    if a.asterisk is not None:
        rows = asterisk_rows(a.asterisk)
        a.server_conversations = 0
    else:
        rows = synthesize_speakers(a.split, a.text, a.speakers, a.sentences, a.work, a.seed)
    convs = plan_conversations(rows, a.conversations, a.turns, a.seed)
    report = {
        "bundle": str(a.bundle),
        "split": a.split,
        "speakers": len({r["speaker"] for r in rows}),
        "conversations": len(convs),
        "turns": a.turns,
        "turns_measure": turns_measure(bundle.talkers, convs, a.thresholds),
    }
    for row in report["turns_measure"]:
        print(json.dumps(row))
    report["monologues"] = turns_measure(bundle.talkers, plan_monologues(rows, 100, a.turns, a.seed), a.thresholds)[1:]
    for row in report["monologues"]:
        print("monologues", json.dumps(row))
    if a.center is not None:
        monos = plan_monologues(rows, 100, a.turns, a.seed)
        report["centered"] = centered_measure(bundle.talkers, convs, a.thresholds, a.center)
        report["centered_monologues"] = centered_measure(bundle.talkers, monos, a.thresholds, a.center)
        for row, mono in zip(report["centered"], report["centered_monologues"], strict=True):
            print("centered", json.dumps(row), "monologues", round(mono["turn_accuracy"], 4))
    if a.server_conversations and a.tsot:
        two = [c for c in convs if len({r["speaker"] for r in c}) == 2][: a.server_conversations]
        report["tsot"] = tsot_measure(a.bundle, two, a.seed)
        print(json.dumps(report["tsot"]))
    elif a.server_conversations:
        report["server"] = server_measure(a.bundle, convs[: a.server_conversations], a.seed)
        print(json.dumps(report["server"]))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
