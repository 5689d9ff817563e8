"""Evaluate a multi-head (SM²) checkpoint: captions, translations, zero-shot pairs, language ID, lag, restriction.

    parley eval-sm2 --checkpoint exp/sm2-zh/best.pt --data data/corpus-ml --splits test test_unseen \\
        --chunk-ms 320 --history-ms 1280 --restrict en,de en,de,fr --out exp/sm2-zh/eval

For every split and source language s (`<data>/<s>/<split>.jsonl`), the encoder runs once per utterance (the
chunk-masked forward, which computes what streaming computes) and every head decodes it with greedy search:

- the head of s gives a caption: WER against `text` (CER for Chinese);
- every other head h gives a translation: corpus BLEU against `translations[h]` (models/eval/bleu.py: sacreBLEU's 13a,
  characters for zh), marked zero-shot when s:h was never a training task of this checkpoint or of the checkpoints
  it was initialized from (`--init`, followed back); and the translation lag (models/eval/lag.py: seconds from the end
  of a source word to the streamed translated unit that covers it, proportional alignment);
- the streaming language identifier's accuracy after 1 s and 2 s of audio (the decision from the encoder frames a
  streaming run has by then: whole chunks whose audio and lookahead have arrived) and at the end of each utterance;
- "auto" captions: the head the LID picks at the end of the utterance captions it (no head for the language: an
  empty caption), WER next to the oracle head's; and the same with the LID restricted to each `--restrict` subset
  of languages (a user who says which languages they speak), on the sources inside the subset.

The report (`--out DIR/report.json`, and `DIR/<split>-<src>-<head>.txt` with every hypothesis) has one row per
(split, source, head) and the LID and restriction tables; docs/sm2.md explains the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from models.data.manifest import Utterance, read_manifest
from models.eval.bleu import corpus_bleu, tokenizer_for
from models.eval.lag import LagStats, emission_time, output_units
from models.nn.checkpoint import load_model
from models.nn.cmm import language_mask
from models.nn.encoder import PAD_LENGTH
from models.nn.lid import restricted_argmax
from models.nn.search import greedy_search
from models.nn.transducer import Transducer
from models.train.dataset import DurationBatchSampler, UtteranceDataset, collate
from models.train.tasks import parse_tasks
from models.train.tokenizer import MODEL_NAME, Tokenizer
from parley.contract import ENCODER_FRAME_MS, FBANK_SHIFT_MS, SUBSAMPLING
from parley.wer import error_counts

LID_AT_SECONDS = (1.0, 2.0)


def frames_available(seconds: float, chunk: int) -> int:
    """Encoder frames a streaming run has output after `seconds` of audio: whole chunks whose 4C fbank frames
    plus the lookahead have arrived (`chunk` <= 0: full context, every frame the audio covers)."""
    fbank = int(seconds * 1000 / FBANK_SHIFT_MS + 1e-6)
    if chunk <= 0:
        return max(0, (fbank - PAD_LENGTH) // SUBSAMPLING)
    return max(0, (fbank - PAD_LENGTH) // (SUBSAMPLING * chunk)) * chunk


@dataclass
class Decoded:
    """One source-language test set through the model: per head, each utterance's tokens and frames; LID scores."""

    utts: list[Utterance]
    tokens: dict[str, list[list[int]]] = field(default_factory=dict)  # head -> per utterance
    frames: dict[str, list[list[int]]] = field(default_factory=dict)
    lid_scores: list[torch.Tensor] = field(default_factory=list)  # per utterance (T, L) running-mean logits


@torch.no_grad()
def decode_all_heads(
    model: Transducer,
    utts: list[Utterance],
    chunk: int,
    left_chunks: int,
    max_seconds: float = 120.0,
    languages: Sequence[str] = (),
) -> Decoded:
    """Encodes every utterance once and decodes it with every head (greedy search); a CMM encoder with the experts
    of `languages` selected (empty: all)."""
    ds = UtteranceDataset(utts, lambda _: [], lambda _: "", None)
    loader = DataLoader(
        ds, batch_sampler=DurationBatchSampler(ds.durations(), max_seconds, shuffle=False), collate_fn=collate
    )
    device = next(model.parameters()).device
    out = Decoded(utts)
    n = len(utts)
    for h in model.head_names:
        out.tokens[h], out.frames[h] = [[] for _ in range(n)], [[] for _ in range(n)]
    lid: list[torch.Tensor | None] = [None] * n
    for batch in loader:
        feats = batch["feats"].to(device)
        mask = None
        if languages:
            mask = language_mask(languages, model.encoder.cfg.cmm_languages).to(device).expand(len(feats), -1)
        enc, lens = model.encoder(feats, batch["feat_lens"].to(device), chunk, left_chunks, language_mask=mask)
        idx = batch["index"].tolist()
        for h in model.head_names:
            for i, hyp in zip(idx, greedy_search(model, enc, lens, head=h), strict=True):
                out.tokens[h][i], out.frames[h][i] = hyp.tokens, hyp.frames
        if model.lid is not None:
            scores = model.lid(enc).cpu()  # (B, T, L)
            for b, i in enumerate(idx):
                lid[i] = scores[b, : int(lens[b])]
    out.lid_scores = [s for s in lid if s is not None]
    return out


def lid_decision(scores: torch.Tensor, frames: int, allowed: list[int] | None = None) -> int | None:
    """The LID's choice from the first `frames` frames of `(T, L)` running-mean scores (all of them when the
    utterance is shorter); None when no frame is available yet."""
    if scores.shape[0] == 0 or frames <= 0:
        return None
    return int(restricted_argmax(scores[min(frames, scores.shape[0]) - 1], allowed))


def trained_pairs(checkpoint: dict, path: Path) -> set[str]:
    """The "SRC:TGT" tasks this checkpoint and the ones it was initialized from (`init`, followed back) trained."""
    pairs: set[str] = set()
    seen: set[str] = set()
    cfg = checkpoint.get("train_config", {})
    while True:
        heads = cfg.get("heads") or []
        pairs |= {t.name for t in parse_tasks(cfg.get("tasks") or [f"{h}:{h}" for h in heads])}
        init = cfg.get("init") or ""
        if not init or init in seen or not Path(init).is_file():
            return pairs
        seen.add(init)
        cfg = torch.load(init, map_location="cpu", weights_only=False).get("train_config", {})


def _subsets(specs: Sequence[str], lid_languages: list[str]) -> list[list[str]]:
    subsets = [list(lid_languages)]
    for s in specs:
        langs = [x for x in s.split(",") if x]
        if bad := [x for x in langs if x not in lid_languages]:
            raise ValueError(f"--restrict {s}: {bad} not among the LID languages {lid_languages}")
        subsets.append(langs)
    return subsets


def evaluate(
    model: Transducer,
    tokenizers: dict[str, Tokenizer],
    data: Path,
    splits: Sequence[str],
    sources: Sequence[str],
    chunk: int,
    left_chunks: int,
    restrict: Sequence[str] = (),
    trained: set[str] | None = None,
    limit: int = 0,
    out: Path | None = None,
) -> dict:
    """Every figure of the module docstring as a report dict (see `main` for the arguments' meaning)."""
    trained = trained or set()
    lid_langs = list(model.cfg.lid_languages)
    subsets = _subsets(restrict, lid_langs) if lid_langs else []
    report: dict = {"results": [], "lid": [], "restricted": []}
    for split in splits:
        for src in sources:
            path = data / src / f"{split}.jsonl"
            if not path.is_file():
                continue
            utts = read_manifest(path)[: limit or None]
            if not utts:
                continue
            t0 = time.time()
            dec = decode_all_heads(model, utts, chunk, left_chunks)
            texts = {h: [tokenizers[h].decode(t) for t in dec.tokens[h]] for h in model.head_names}
            for h in model.head_names:
                row: dict = {"split": split, "source": src, "head": h, "utterances": len(utts)}
                if h == src:
                    c = error_counts([u.text for u in utts], texts[h], src)
                    row.update(kind="caption", wer=c.rate, errors=c.errors, words=c.reference_words)
                else:
                    pairs = [(u.translations[h], t) for u, t in zip(utts, texts[h], strict=True) if h in u.translations]
                    if not pairs:
                        continue
                    b = corpus_bleu([t for _, t in pairs], [r for r, _ in pairs], tokenizer_for(h))
                    row.update(kind="translation", bleu=b.score, zero_shot=f"{src}:{h}" not in trained)
                    if chunk > 0:
                        lag = LagStats()
                        pieces = [tokenizers[h].id_to_piece(i) for i in range(tokenizers[h].vocab_size)]
                        for u, toks, frames in zip(utts, dec.tokens[h], dec.frames[h], strict=True):
                            units = output_units(toks, frames, pieces, h)
                            lag.add([w.end for w in u.words], [emission_time(f, chunk) for f in units])
                        row.update(lag_mean_s=lag.mean, lag_median_s=lag.median, lag_skipped=lag.skipped)
                report["results"].append(row)
                if out is not None:
                    out.mkdir(parents=True, exist_ok=True)
                    refs = [u.text if h == src else u.translations.get(h, "") for u in utts]
                    (out / f"{split}-{src}-{h}.txt").write_text(
                        "".join(
                            f"{u.id}\tREF {r}\n{u.id}\tHYP {t}\n" for u, r, t in zip(utts, refs, texts[h], strict=True)
                        )
                    )
            if lid_langs and src in lid_langs:
                truth = lid_langs.index(src)
                lid_row: dict = {"split": split, "source": src, "utterances": len(utts)}
                for sec in LID_AT_SECONDS:
                    n = frames_available(sec, chunk)
                    got = [lid_decision(s, n) for s in dec.lid_scores]
                    lid_row[f"acc_{sec:g}s"] = sum(g == truth for g in got) / len(got)
                lid_row["acc_end"] = sum(lid_decision(s, s.shape[0]) == truth for s in dec.lid_scores) / len(utts)
                lid_row["shorter_than_2s"] = sum(u.duration < 2.0 for u in utts)
                report["lid"].append(lid_row)
                for subset in subsets:
                    if src not in subset:
                        continue
                    allowed = [lid_langs.index(x) for x in subset]
                    # a CMM encoder is told the subset too: its experts of those languages only
                    cmm = [x for x in subset if x in model.encoder.cfg.cmm_languages]
                    sub, sub_texts = dec, texts
                    if cmm:
                        sub = decode_all_heads(model, utts, chunk, left_chunks, languages=cmm)
                        sub_texts = {h: [tokenizers[h].decode(t) for t in sub.tokens[h]] for h in model.head_names}
                    picked = [lid_decision(s, s.shape[0], allowed) for s in sub.lid_scores]
                    chosen = [lid_langs[p] if p is not None else "" for p in picked]
                    hyps = [sub_texts[c][i] if c in sub_texts else "" for i, c in enumerate(chosen)]
                    refs = [u.text for u in utts]
                    oracle = error_counts(refs, sub_texts[src], src).rate if src in sub_texts else None
                    universal = error_counts(refs, texts[src], src).rate if cmm and src in texts else None
                    report["restricted"].append(
                        {
                            "split": split,
                            "subset": ",".join(subset),
                            "source": src,
                            "lid_acc": sum(c == src for c in chosen) / len(utts),
                            "wer_auto": error_counts(refs, hyps, src).rate,
                            "wer_oracle": oracle,
                            **({"cmm_experts": ",".join(cmm), "wer_oracle_all_experts": universal} if cmm else {}),
                        }
                    )
            print(f"{split}/{src}: {len(utts)} utterances, {time.time() - t0:.1f} s", file=sys.stderr)
    return report


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def print_report(report: dict) -> None:
    """The report as three plain tables."""
    print("split       src head  kind         WER / BLEU   zero-shot  lag mean / median (s)")
    for r in report["results"]:
        if r["kind"] == "caption":
            figure, zs, lag = f"WER {_pct(r['wer'])}", "", ""
        else:
            figure, zs = f"BLEU {r['bleu']:.2f}", "zero-shot" if r["zero_shot"] else ""
            lag = f"{r['lag_mean_s']:.3f} / {r['lag_median_s']:.3f}" if r.get("lag_mean_s") is not None else "n/a"
        print(f"{r['split']:<11} {r['source']:<3} {r['head']:<5} {r['kind']:<12} {figure:<12} {zs:<10} {lag}")
    if report["lid"]:
        print("\nLID accuracy     split       src   1 s      2 s      end")
        for r in report["lid"]:
            print(
                f"                 {r['split']:<11} {r['source']:<5} {_pct(r['acc_1s']):<8} {_pct(r['acc_2s']):<8} "
                f"{_pct(r['acc_end'])}"
            )
    if report["restricted"]:
        print("\nauto captions    split       languages          src   LID acc  WER auto  WER oracle  (all experts)")
        for r in report["restricted"]:
            universal = f"  {_pct(r['wer_oracle_all_experts'])}" if "cmm_experts" in r else ""
            print(
                f"                 {r['split']:<11} {r['subset']:<18} {r['source']:<5} {_pct(r['lid_acc']):<8} "
                f"{_pct(r['wer_auto']):<9} {_pct(r['wer_oracle'])}{universal}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="parley eval-sm2", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", required=True, type=Path, help="a multi-head checkpoint written by parley train")
    p.add_argument("--data", required=True, type=Path, help="corpus folder with <language>/<split>.jsonl")
    p.add_argument("--splits", nargs="+", default=["test"], help="splits to evaluate (default: test)")
    p.add_argument(
        "--sources", nargs="+", help="source languages (default: the LID languages, else the heads' languages)"
    )
    p.add_argument("--chunk-ms", default="320", help="chunk in ms (a multiple of 40) or 'full' (default: 320)")
    p.add_argument("--history-ms", type=int, default=1280, help="attention history in ms (default: 1280)")
    p.add_argument(
        "--restrict", nargs="*", default=[], help="language subsets for restricted auto captions, e.g. en,de en,de,fr"
    )
    p.add_argument("--lang-dir", type=Path, help="<dir>/<lang>/bpe.model (default: the tokenizers trained with)")
    p.add_argument("--limit", type=int, default=0, help="only the first N utterances of each test set")
    p.add_argument("--out", type=Path, help="write report.json and the hypotheses here")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    model, ck = load_model(a.checkpoint)
    model.to(a.device)
    if not model.cfg.multi_head:
        print(f"parley eval-sm2: {a.checkpoint} is a single-head model; use parley eval", file=sys.stderr)
        return 2
    saved = ck.get("tokenizers", {})
    tokenizers = {
        h: Tokenizer(a.lang_dir / h / MODEL_NAME if a.lang_dir else saved.get(h, f"models/lang/{h}/{MODEL_NAME}"))
        for h in model.head_names
    }
    chunk = -1 if a.chunk_ms == "full" else int(a.chunk_ms) // ENCODER_FRAME_MS
    left = -1 if chunk < 0 else max(1, a.history_ms // (chunk * ENCODER_FRAME_MS))
    sources = a.sources or list(model.cfg.lid_languages) or model.head_names
    try:
        report = evaluate(
            model,
            tokenizers,
            a.data,
            a.splits,
            sources,
            chunk,
            left,
            a.restrict,
            trained_pairs(ck, a.checkpoint),
            a.limit,
            a.out,
        )
    except ValueError as e:
        print(f"parley eval-sm2: {e}", file=sys.stderr)
        return 2
    report["settings"] = {"checkpoint": str(a.checkpoint), "chunk_ms": a.chunk_ms, "history_ms": a.history_ms}
    print_report(report)
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
