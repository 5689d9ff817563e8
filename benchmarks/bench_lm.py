"""A general-purpose LM fused into the beam search, on the test sets of the English model's card: what an LM trained on
the text corpus's training documents buys on speech of documents it never saw.

    nice python benchmarks/bench_lm.py --bundle bundles/en-open --lm general \
        --dev $DATA/corpus-v2/en/dev.jsonl --dev-limit 150 \
        --test open=$DATA/corpus-v2/en/test.jsonl rhvoice=$DATA/corpus-v2/en/test_engine.jsonl \
               asterisk=$DATA/asterisk/en/test.jsonl grammar=$DATA/corpus-en/en/test.jsonl \
               unseen=$DATA/corpus-en/en/test_unseen.jsonl \
        --lm-scales 0.2 0.3 0.4 0.5 --ilm-scales 0 0.1 0.2 --lodr-scales 0 0.2 \
        --out benchmarks/results/lm/en-open-general.json

Every setting of the grid (`lm_scale` x `ilm_scale` x `lodr_scale`: the bundle's source LM subtracted, LODR) is
decoded on the dev utterances; the one of lowest dev WER is then decoded on every test set, beside greedy search and
plain modified beam search (no LM), so the rows differ only in the search. Decoding is the server's: the int8 bundle,
320 ms chunks of the bundle's streaming settings, streams batched 16 at a time on one onnxruntime thread. RTF: process
seconds per audio second over all test sets (streams one core keeps up with: 1 / RTF). Prints one table
(docs/cards/en-open.md has it). A multilingual bundle is decoded with the head of the LM's language (WER; zh: CER),
each language's source LM subtracted where it has one. `--settle-ms` adds rows of the fused search settling its beam
(`parley serve --settle-ms`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.data.manifest import Utterance, load_audio, read_manifest
from parley.contract import BEAM
from parley.wer import wer
from server.bundle import load_bundle, source_lm
from server.transducer import LmFusion, StreamingTransducer, transcribe_many

BATCH = 16


def _read(path: str | Path, limit: int = 0) -> list[Utterance]:
    """A manifest's utterances (the first `limit`; 0: all), audio paths made absolute (the key of the audio)."""
    utts = read_manifest(path)
    for u in utts:
        u.audio = str((Path(path).parent / u.audio).resolve())
    return utts[:limit] if limit else utts


def decode(
    model: StreamingTransducer,
    utts: Sequence[Utterance],
    audio: dict[str, np.ndarray],
    search: str,
    fusion: LmFusion | None,
    beam: int = BEAM,
    settle: int = 0,
    head: int = 0,
) -> tuple[float, float, float, list[str]]:
    """(WER, process seconds, audio seconds, hypotheses) of `utts` decoded in batches of BATCH streams."""
    hyps: list[str] = []
    t0 = time.process_time()
    for i in range(0, len(utts), BATCH):
        batch = utts[i : i + BATCH]
        out = transcribe_many(
            model,
            [audio[u.audio] for u in batch],
            16000,
            head=head,
            search=search,
            fusion=fusion,
            beam=beam,
            settle=settle,
        )
        hyps += [t.text for t in out]
    seconds = time.process_time() - t0
    language = model.heads[head].head.language
    return wer([u.text for u in utts], hyps, language), seconds, sum(u.duration for u in utts), hyps


def _named(specs: Sequence[str]) -> dict[str, str]:
    out = {}
    for s in specs:
        name, sep, path = s.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--test takes NAME=MANIFEST, got {s!r}")
        out[name] = path
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", default="bundles/en-open", help="the bundle folder (int8), with the LM in it")
    p.add_argument("--lm", required=True, help="the bundle's LM to fuse (`parley lm train --name`)")
    p.add_argument("--dev", required=True, help="the manifest the scales are chosen on")
    p.add_argument("--dev-limit", type=int, default=150, help="its first N utterances (default 150)")
    p.add_argument("--test", nargs="+", required=True, help="NAME=MANIFEST test sets")
    p.add_argument("--limit", type=int, default=0, help="only the first N utterances of each test set")
    p.add_argument("--lm-scales", type=float, nargs="+", default=[0.2, 0.3, 0.4, 0.5])
    p.add_argument("--ilm-scales", type=float, nargs="+", default=[0.0, 0.1, 0.2])
    p.add_argument("--lodr-scales", type=float, nargs="+", default=[0.0], help="the bundle's source LM's weight")
    p.add_argument("--beam", type=int, default=BEAM, help=f"modified beam search's beam (default {BEAM})")
    p.add_argument(
        "--settle-ms",
        type=float,
        nargs="*",
        default=[],
        help="also the fused search settling tokens this old (server/transducer.py settle_beam; serve --settle-ms)",
    )
    p.add_argument("--out", help="write the figures as JSON here")
    a = p.parse_args(argv)

    bundle = load_bundle(a.bundle, threads=1)
    if a.lm not in bundle.lms:
        raise SystemExit(f"{a.bundle} has no LM {a.lm!r}; it has: {', '.join(bundle.lms) or 'none'}")
    lm = bundle.lms[a.lm].lm
    language = bundle.lms[a.lm].language
    src = source_lm(bundle.lms, language)
    source = src.lm if src is not None else None
    if source is None and any(a.lodr_scales):
        raise SystemExit(f"{a.bundle} has no source LM for --lodr-scales")
    model = StreamingTransducer(bundle)
    head = next(i for i, r in enumerate(model.heads) if r.head.language == language)  # the LM's head: it captions
    dev = _read(a.dev, a.dev_limit)
    tests = {name: _read(path, a.limit) for name, path in _named(a.test).items()}
    audio = {u.audio: load_audio(u.audio) for u in [*dev, *(u for t in tests.values() for u in t)]}
    print(f"dev {len(dev)} utterances; " + ", ".join(f"{k} {len(v)}" for k, v in tests.items()), flush=True)

    def fusion_of(scales: dict[str, float]) -> LmFusion:
        return LmFusion(lm, scales["lm_scale"], scales["ilm_scale"], source, scales["lodr_scale"])

    grid: list[dict] = []
    for lm_scale, ilm_scale, lodr_scale in itertools.product(a.lm_scales, a.ilm_scales, a.lodr_scales):
        scales = {"lm_scale": lm_scale, "ilm_scale": ilm_scale, "lodr_scale": lodr_scale}
        w = decode(model, dev, audio, "beam", fusion_of(scales), a.beam, head=head)[0]
        print(f"  dev {scales}: {w:.2%}", flush=True)
        grid.append({**scales, "dev_wer": round(w, 4)})
    best = min(grid, key=lambda g: g["dev_wer"])
    chosen = {k: best[k] for k in ("lm_scale", "ilm_scale", "lodr_scale")}

    rows = []
    frame_ms = model.spec.features.frame_shift_ms * model.spec.subsampling
    fused = f"beam {a.beam} + {a.lm} ({', '.join(f'{k} {v:g}' for k, v in chosen.items())})"
    for label, search, fusion, settle in (
        ("greedy", "greedy", None, 0),
        (f"beam {a.beam}", "beam", None, 0),
        (fused, "beam", fusion_of(chosen), 0),
        *((f"{fused}, settled at {ms:g} ms", "beam", fusion_of(chosen), round(ms / frame_ms)) for ms in a.settle_ms),
    ):
        dev_wer = decode(model, dev, audio, search, fusion, a.beam, settle, head)[0]
        row: dict = {"row": label, "search": search, "settle_frames": settle, "dev_wer": round(dev_wer, 4)}
        spent = heard = 0.0
        for name, utts in tests.items():
            w, s, d, _ = decode(model, utts, audio, search, fusion, a.beam, settle, head)
            row[name] = round(w, 4)
            spent, heard = spent + s, heard + d
        row["rtf"] = round(spent / heard, 4)
        rows.append(row)
        print(f"  {row}", flush=True)

    names = list(tests)
    print(f"\n| search | dev | {' | '.join(names)} | RTF (1 core) |")
    print("| --- | ---: |" + " ---: |" * len(names) + " ---: |")
    for r in rows:
        wers = " | ".join(f"{r[n]:.2%}" for n in names)
        print(f"| {r['row']} | {r['dev_wer']:.2%} | {wers} | {r['rtf']:.3f} |")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        info = bundle.lms[a.lm]
        figures = {
            "bundle": a.bundle,
            "beam": a.beam,
            "lm": {"name": a.lm, "kind": info.kind, "file": info.file.name},
            "dev": a.dev,
            "dev_utterances": len(dev),
            "tests": {name: path for name, path in _named(a.test).items()},
            "grid": grid,
            "chosen": chosen,
            "rows": rows,
        }
        Path(a.out).write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
