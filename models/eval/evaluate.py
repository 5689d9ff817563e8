"""Decode manifests with a trained checkpoint and report WER per streaming setting.

    parley eval --checkpoint exp/en/best.pt --tokenizer data/lang/en/bpe.model \
        --manifest data/corpus/en/test.jsonl --chunk-ms 160 320 640 full --history-ms 1280 --search greedy

Each chunk setting is decoded with the chunk-masked forward, which computes exactly what chunk-by-chunk streaming
computes (tests/test_encoder.py); `--step` decodes through `StreamingConformer.step` instead, as a check.
A multi-head (SM²) checkpoint needs `--head LANG` (scored against the caption where the manifest is in LANG, else
against the translation into LANG); `parley eval-sm2` measures all its heads at once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from models.data.manifest import read_manifest
from models.nn.checkpoint import load_model
from models.nn.encoder import count_parameters, encoder_flops_per_second
from models.nn.search import greedy_search, modified_beam_search
from models.nn.transducer import Transducer
from models.train.dataset import DurationBatchSampler, UtteranceDataset, collate
from models.train.tasks import Task
from models.train.tokenizer import Tokenizer
from parley.contract import ENCODER_FRAME_MS
from parley.wer import error_counts


@torch.no_grad()
def decode(
    model: Transducer,
    tokenizer: Tokenizer,
    utts,
    chunk: int,
    left_chunks: int,
    search: str = "greedy",
    use_step: bool = False,
    max_seconds: float = 120.0,
    text_of=None,
    head: str | None = None,
    blank_penalty: float = 0.0,
    pad_seconds: float = 0.0,
) -> tuple[list[str], list[str]]:
    """Decodes utterances with head `head` (None: the single head); returns (references, hypotheses) in order.

    `pad_seconds` of digital silence go before and after every utterance (a stream rarely starts with speech).
    """
    text_of = text_of or (lambda u: u.text)
    ds = UtteranceDataset(utts, tokenizer.encode, text_of, None, pad_seconds=pad_seconds)
    loader = DataLoader(
        ds, batch_sampler=DurationBatchSampler(ds.durations(), max_seconds, shuffle=False), collate_fn=collate
    )
    hyps = [""] * len(utts)
    for batch in loader:
        if use_step and chunk > 0:
            enc, lens = model.encoder.stream(batch["feats"], batch["feat_lens"], chunk, left_chunks)
        else:
            enc, lens = model.encoder(batch["feats"], batch["feat_lens"], chunk, left_chunks)
        if search == "greedy":
            found = greedy_search(model, enc, lens, head=head, blank_penalty=blank_penalty)
        else:
            found = modified_beam_search(model, enc, lens, head=head, blank_penalty=blank_penalty)
        for i, h in zip(batch["index"].tolist(), found, strict=True):
            hyps[i] = tokenizer.decode(h.tokens)
    return [text_of(u) for u in utts], hyps


def manifest_labels(manifests: Sequence[str]) -> dict[str, str]:
    """A file-name label per manifest: its stem ("test"), or where two stems are the same the folder two up and the
    stem ("corpus-v2-test", "asterisk-test" for data/corpus-v2/en/test.jsonl and data/asterisk/en/test.jsonl), as
    `make eval-en-v2` names its reports, so that one run's hypothesis files never overwrite each other."""
    stems = [Path(m).stem for m in manifests]
    labels = {}
    for m, stem in zip(manifests, stems, strict=True):
        labels[m] = stem if stems.count(stem) == 1 else f"{Path(m).resolve().parent.parent.name}-{stem}"
    if len(set(labels.values())) < len(labels):  # still the same: number them in order
        labels = {m: f"{i}-{label}" for i, (m, label) in enumerate(labels.items())}
    return labels


def _evaluate_setting(
    a: argparse.Namespace,
    model: Transducer,
    tok: Tokenizer,
    manifest: str,
    label: str,
    utts: list,
    chunk_ms: str,
    blank_penalty: float,
    report: dict,
) -> None:
    """Decodes `utts` at one chunk size and blank penalty; appends a row to `report`, prints it, writes hypotheses."""
    chunk = -1 if chunk_ms == "full" else int(chunk_ms) // ENCODER_FRAME_MS
    left = -1 if chunk < 0 else max(1, a.history_ms // (chunk * ENCODER_FRAME_MS))
    t0 = time.time()
    text_of = Task(utts[0].language, a.head).text_of if a.head and utts else None
    refs, hyps = decode(
        model,
        tok,
        utts,
        chunk,
        left,
        a.search,
        a.step,
        text_of=text_of,
        head=a.head,
        blank_penalty=blank_penalty,
        pad_seconds=a.pad_ms / 1000,
    )
    wall = time.time() - t0
    counts = error_counts(refs, hyps, a.head or (utts[0].language if utts else "en"))
    audio = sum(u.duration for u in utts)
    flops = encoder_flops_per_second(model.cfg.encoder, max(chunk, 1), max(left, 0) * max(chunk, 1))
    row = {
        "manifest": manifest,
        "chunk_ms": chunk_ms,
        "history_ms": a.history_ms if chunk > 0 else "full",
        "search": a.search,
        "blank_penalty": blank_penalty,
        "pad_ms": a.pad_ms,
        "utterances": len(utts),
        "wer": counts.rate,
        "errors": counts.errors,
        "words": counts.reference_words,
        "rtf": wall / max(audio, 1e-9),
        "encoder_gflops_per_audio_second": flops / 1e9,
    }
    report["results"].append(row)
    penalty = f", blank penalty {blank_penalty:g}" if blank_penalty else ""
    penalty += f", {a.pad_ms} ms of silence around" if a.pad_ms else ""
    print(
        f"{manifest} chunk {chunk_ms} ms, history {row['history_ms']}: WER {100 * counts.rate:.2f}% "
        f"({counts.errors}/{counts.reference_words}) {a.search}{penalty}, RTF {row['rtf']:.3f}"
    )
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        suffix = (f"-bp{blank_penalty:g}" if blank_penalty else "") + (f"-pad{a.pad_ms}" if a.pad_ms else "")
        name = f"{label}-{chunk_ms}-{a.search}{suffix}.txt"
        (a.out / name).write_text(
            "".join(f"{u.id}\tREF {r}\n{u.id}\tHYP {h}\n" for u, r, h in zip(utts, refs, hyps, strict=True))
        )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="parley eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by parley train")
    p.add_argument("--tokenizer", required=True, help="the sentencepiece model the checkpoint was trained with")
    p.add_argument("--manifest", nargs="+", required=True, help="manifests to decode (each scored separately)")
    p.add_argument("--chunk-ms", nargs="+", default=["320"], help="chunk sizes in ms (multiples of 40), or 'full'")
    p.add_argument("--history-ms", type=int, default=1280, help="attention history in ms (default: 1280)")
    p.add_argument("--search", choices=["greedy", "beam"], default="greedy", help="greedy or modified beam (4)")
    p.add_argument(
        "--blank-penalty",
        type=float,
        nargs="+",
        default=[0.0],
        help="subtracted from the blank logit before each choice; several values: a sweep (tune on dev)",
    )
    p.add_argument(
        "--pad-ms",
        type=int,
        default=0,
        help="digital silence before and after every utterance, in ms: robustness to a quiet lead-in (default: 0)",
    )
    p.add_argument("--step", action="store_true", help="decode through the chunk-by-chunk streaming path")
    p.add_argument("--limit", type=int, default=0, help="decode only the first N utterances of each manifest")
    p.add_argument("--head", help="multi-head checkpoints: the output language to decode with")
    p.add_argument("--out", type=Path, help="write a JSON report and hypotheses here")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    model, _ = load_model(a.checkpoint)
    if model.cfg.multi_head and a.head not in model.head_names:
        p.error(f"a multi-head checkpoint needs --head, one of {model.head_names} (or use parley eval-sm2)")
    if not model.cfg.multi_head and a.head:
        p.error("--head is for multi-head checkpoints")
    tok = Tokenizer(a.tokenizer)
    print(f"parameters: {count_parameters(model) / 1e6:.2f} M (encoder {count_parameters(model.encoder) / 1e6:.2f} M)")
    report: dict = {"parameters": count_parameters(model), "results": []}
    labels = manifest_labels(a.manifest)
    for m in a.manifest:
        utts = read_manifest(m)
        if a.limit:
            utts = utts[: a.limit]
        for c in a.chunk_ms:
            for penalty in a.blank_penalty:
                _evaluate_setting(a, model, tok, m, labels[m], utts, c, penalty, report)
    if a.out:
        (a.out / "report.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
