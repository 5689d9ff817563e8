"""Train the talker embedding of server/talkers.py from manifests whose utterances name their voice or speaker.

    parley talkers train --manifest $DATA/corpus-v2/en/train.jsonl --out $EXP/talkers
    parley talkers add --model $EXP/talkers/talkers.npz --bundle bundles/en-open

Each utterance becomes the statistics of its voiced log-mel frames inside its words' span (`speech_stats`); a
speaker is a manifest row's "speaker" field, else its "voice" (the corpus's synthetic voices name engine, voice, rate
and pitch, so each is one speaker). Linear discriminant analysis, closed form in numpy: the within-speaker scatter
(pooled over the speakers with at least two utterances) whitened, the between-speaker scatter's leading directions
kept. The threshold of "the same talker" is the equal-error cosine between utterances of the same speaker and of
different speakers, on speakers held out of the fit (`--held-out`), so nothing of a test set chooses it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from parley.audio import read_wav
from parley.features import compute_fbank
from server.talkers import MIN_FRAMES, TalkerModel, speech_stats


def utterance_stats(path: Path, words: Sequence[dict] | None) -> np.ndarray | None:
    """The `speech_stats` of one recording, inside its words' span when the manifest times them."""
    x, sr = read_wav(path)
    frames = compute_fbank(x, sr)
    if words:
        a = max(0, int(float(words[0]["start"]) * 100))
        b = int(float(words[-1]["end"]) * 100) + 1
        frames = frames[a:b]
    return speech_stats(frames, MIN_FRAMES)


def collect(manifests: Sequence[Path], limit: int | None = None) -> tuple[np.ndarray, list[str]]:
    """`(N, S)` statistics and the N speaker names of the manifests' utterances (at most `limit`, in order); rows
    without a speaker or voice, and too short to say anything, are skipped."""
    rows = []
    for m in manifests:
        base = m.parent
        for line in m.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                who = r.get("speaker") or r.get("voice")
                if who:
                    rows.append((base / r["audio"], r.get("words"), str(who)))
    rows = rows[:limit] if limit else rows
    stats, names = [], []
    for path, words, who in tqdm(rows, desc="talker statistics", unit="utt"):
        s = utterance_stats(path, words)
        if s is not None:
            stats.append(s)
            names.append(who)
    if not stats:
        raise ValueError(f"no utterance with a speaker or voice and {MIN_FRAMES} voiced frames in {list(manifests)}")
    return np.stack(stats), names


def fit_lda(x: np.ndarray, names: Sequence[str], dims: int, reg: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Linear discriminant analysis: `(N, S)` statistics and N speaker names -> the mean `(S,)` and the projection
    `(S, dims)` that whitens the within-speaker scatter and keeps the `dims` directions of the largest between-speaker
    scatter. `reg` adds that fraction of the within scatter's mean variance to its diagonal.

    Raises:
        ValueError: no speaker with two utterances, or `dims` outside [1, S].
    """
    _n, s = x.shape
    if not 1 <= dims <= s:
        raise ValueError(f"dims must be in [1, {s}], got {dims}")
    mean = x.mean(axis=0)
    xc = x - mean
    groups: dict[str, list[int]] = defaultdict(list)
    for i, who in enumerate(names):
        groups[who].append(i)
    within = np.zeros((s, s))
    counted = 0
    for idx in groups.values():
        if len(idx) >= 2:
            d = xc[idx] - xc[idx].mean(axis=0)
            within += d.T @ d
            counted += len(idx)
    if not counted:
        raise ValueError("LDA needs speakers with at least two utterances")
    within /= counted
    within += reg * np.trace(within) / s * np.eye(s)
    means = np.stack([xc[idx].mean(axis=0) for idx in groups.values()])
    between = means.T @ means / len(means)
    w_val, w_vec = np.linalg.eigh(within)
    whiten = w_vec / np.sqrt(w_val)  # (S, S)
    _b_val, b_vec = np.linalg.eigh(whiten.T @ between @ whiten)
    return mean, whiten @ b_vec[:, ::-1][:, :dims]


def equal_error(same: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """The cosine at which as many same-speaker pairs fall below as other-speaker pairs reach it, and that rate."""
    cands = np.sort(np.concatenate([same, other]))
    miss = np.searchsorted(np.sort(same), cands, side="left") / len(same)  # same pairs below each candidate
    false = 1.0 - np.searchsorted(np.sort(other), cands, side="left") / len(other)  # other pairs at or above
    k = int(np.argmin(np.abs(miss - false)))
    return float(cands[k]), float((miss[k] + false[k]) / 2)


def pair_scores(emb: np.ndarray, names: Sequence[str], max_pairs: int, rng: random.Random) -> tuple[np.ndarray, ...]:
    """Cosines of same-speaker pairs and of (at most `max_pairs` sampled) other-speaker pairs of unit `emb` `(N, D)`."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, who in enumerate(names):
        groups[who].append(i)
    same = [float(emb[a] @ emb[b]) for idx in groups.values() for k, a in enumerate(idx) for b in idx[k + 1 :]]
    other = []
    n = len(names)
    while len(other) < max_pairs and n > 1:
        a, b = rng.randrange(n), rng.randrange(n)
        if names[a] != names[b]:
            other.append(float(emb[a] @ emb[b]))
    return np.array(same), np.array(other)


def train(
    manifests: Sequence[Path], dims: int = 64, held_out: float = 0.1, limit: int | None = None, seed: int = 0
) -> TalkerModel:
    """Fits the projection on the speakers not held out, sets the threshold on those held out, refits on all."""
    x, names = collect(manifests, limit)
    rng = random.Random(seed)
    counts = Counter(names)
    speakers = sorted(counts)
    repeated = [s for s in speakers if counts[s] >= 2]
    rng.shuffle(repeated)
    held = set(repeated[: max(1, int(len(repeated) * held_out))])
    fit_rows = [i for i, s in enumerate(names) if s not in held]
    test_rows = [i for i, s in enumerate(names) if s in held]
    mean, proj = fit_lda(x[fit_rows], [names[i] for i in fit_rows], dims)
    emb = (x[test_rows] - mean) @ proj
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    same, other = pair_scores(emb, [names[i] for i in test_rows], 20000, rng)
    threshold, eer = equal_error(same, other)
    mean, proj = fit_lda(x, names, dims)
    card = {
        "manifests": [str(m) for m in manifests],
        "utterances": len(names),
        "speakers": len(speakers),
        "speakers_with_two_or_more": len(repeated),
        "dims": dims,
        "statistics": "mean and standard deviation of the voiced log-mel frames (server/talkers.py)",
        "held_out_speakers": len(held),
        "held_out_pairs": {"same": len(same), "other": len(other)},
        "threshold": round(threshold, 4),
        "held_out_equal_error_rate": round(eer, 4),
    }
    return TalkerModel(mean=mean, proj=proj, threshold=threshold, card=card)


def add_to_bundle(
    model: Path, bundle: Path, threshold: float | None = None, source: str = "", measured: str = ""
) -> dict[str, str]:
    """Copies a talker model into the bundle as `talkers.npz`, names it in bundle.json's "talkers" and lists it in
    "files" (size and sha256, checked at load like the model's files). Returns the entry.

    Args:
        threshold: replaces the model's threshold (one chosen on conversations: benchmarks/bench_talkers.py on dev).
        source: how `threshold` was chosen, for the card.
        measured: what it measured (a sentence for the card).
    """
    from dataclasses import replace

    from export.bundle import file_entries
    from export.card import talkers_card_section, update_card_section
    from server.bundle import BUNDLE_JSON

    m = TalkerModel.load(model)  # refuses a file that is not one
    card = dict(m.card)
    if threshold is not None:
        card.update(threshold=threshold, threshold_chosen_on=source or "given to parley talkers add")
    if measured:
        card["measured"] = measured
    replace(m, threshold=m.threshold if threshold is None else threshold, card=card).save(bundle / "talkers.npz")
    meta = json.loads((bundle / BUNDLE_JSON).read_text())
    entry = {"model": "talkers.npz"}
    meta["talkers"] = entry
    files = {**meta.get("files", {}), **file_entries(bundle, ["talkers.npz"])}
    meta["files"] = dict(sorted(files.items()))
    (bundle / BUNDLE_JSON).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    update_card_section(bundle, "Talkers", talkers_card_section(card))
    return entry


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(
        prog="parley talkers", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="fit the talker embedding on manifests that name speakers or voices")
    t.add_argument("--manifest", type=Path, nargs="+", required=True, help="JSONL manifests (speaker or voice field)")
    t.add_argument("--out", type=Path, required=True, help="output folder: talkers.npz and talkers.json")
    t.add_argument("--dims", type=int, default=64, help="embedding dimensions kept (default: 64)")
    t.add_argument("--held-out", type=float, default=0.1, help="share of speakers that set the threshold (0.1)")
    t.add_argument("--limit", type=int, default=None, help="read at most this many utterances")
    t.add_argument("--seed", type=int, default=0, help="random seed of the held-out draw")
    d = sub.add_parser("add", help="add a trained talker model to a bundle")
    d.add_argument("--model", type=Path, required=True, help="a talkers.npz written by `parley talkers train`")
    d.add_argument("--bundle", type=Path, required=True, help="the bundle folder")
    d.add_argument("--threshold", type=float, help="cosine for 'the same talker' (default: the model's own)")
    d.add_argument("--threshold-source", default="", help="how --threshold was chosen, for the card")
    d.add_argument("--measured", default="", help="what it measured, a sentence for the card")
    a = p.parse_args(argv)
    if a.cmd == "add":
        print(add_to_bundle(a.model, a.bundle, a.threshold, a.threshold_source, a.measured))
        return 0
    model = train(a.manifest, a.dims, a.held_out, a.limit, a.seed)
    a.out.mkdir(parents=True, exist_ok=True)
    model.save(a.out / "talkers.npz")
    (a.out / "talkers.json").write_text(json.dumps(model.card, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(model.card, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
