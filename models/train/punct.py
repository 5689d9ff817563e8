"""Trains a punctuation-and-casing model for one language from the text corpus alone, exports it to ONNX, and adds it
to a bundle.

    parley punct train --text data/text --language en --out exp/punct/en --steps 3000
    parley punct add --model exp/punct/en --bundle bundles/en-open

`train` reads `data/text/<lang>/{train,test}.jsonl` (`parley text build`): inputs are the `text` words (lowercase, no
punctuation: what a recognizer outputs), labels come from `display` (models/data/punct.py). It trains a sentencepiece
model on the train text, then the network (models/nn/punct.py), measures on the test split (held-out documents: F1 of
each mark, case accuracy) and writes `<out>/`: punct.onnx, punct.int8.onnx, bpe.model, punct.json (config, mixed-case
forms, figures). Two sentences of the same document are joined now and then, so that marks inside a final are learned
too. `add` copies the int8 model into the bundle folder (`punct-<lang>.onnx`, `.model`, `.json`) and names it in
bundle.json's `punctuation`; the server then sends `display` with every final (server/punctuation.py).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.data.punct import CASES, MARKS, WordLabel, word_labels
from models.nn.punct import PunctConfig, PunctModel
from models.train.dataset import length_batches

IGNORE = -100
JOIN_PROB = 0.3  # chance that a training sentence is followed by the next one of its document in the same input
FILES = ("punct.int8.onnx", "bpe.model", "punct.json")


def read_labelled(path: Path, language: str, limit: int | None = None) -> list[tuple[str, list[WordLabel]]]:
    """(document, labelled words) of each alignable sentence of a text-corpus split, in file order."""
    out = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            labels = word_labels(r.get("display") or r["text"], r["text"], language)
            if labels:
                out.append((r.get("document", ""), labels))
            if limit and len(out) >= limit:
                break
    return out


def train_tokenizer(sentences: Sequence[list[WordLabel]], out: Path, vocab: int, language: str) -> None:
    import sentencepiece as spm

    lines = (" ".join(w.word for w in s) for s in sentences)
    spm.SentencePieceTrainer.train(
        sentence_iterator=lines,
        model_prefix=str(out / "bpe"),
        vocab_size=vocab,
        model_type="unigram",
        character_coverage=0.99 if language == "zh" else 1.0,  # rare characters become <unk>: marks need no more
        input_sentence_size=300000,
        shuffle_input_sentence=True,
        hard_vocab_limit=False,  # a small text gets fewer pieces rather than an error
        minloglevel=2,
    )


def encode(sp, words: Sequence[str]) -> tuple[list[int], list[int], list[int]]:
    """Pieces of `words`, and per word the index of its first and of its last piece."""
    ids: list[int] = []
    first: list[int] = []
    last: list[int] = []
    for w in words:
        p = sp.encode(w) or [sp.unk_id()]
        first.append(len(ids))
        ids += p
        last.append(len(ids) - 1)
    return ids, first, last


def _example(sp, labels: Sequence[WordLabel], max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    ids, first, last = encode(sp, [w.word for w in labels])
    if len(ids) > max_len:
        return None
    marks = np.full(len(ids), IGNORE, dtype=np.int64)
    cases = np.full(len(ids), IGNORE, dtype=np.int64)
    for w, f, la in zip(labels, first, last, strict=True):
        marks[la] = w.mark
        cases[f] = w.case
    return np.asarray(ids, dtype=np.int64), marks, cases


def examples(sp, data: Sequence[tuple[str, list[WordLabel]]], max_len: int, seed: int) -> list[tuple[np.ndarray, ...]]:
    rng = random.Random(seed)
    out = []
    for i, (doc, labels) in enumerate(data):
        if i + 1 < len(data) and data[i + 1][0] == doc and rng.random() < JOIN_PROB:
            labels = labels + data[i + 1][1]
        ex = _example(sp, labels, max_len)
        if ex is not None:
            out.append(ex)
    return out


def batches(exs: Sequence[tuple[np.ndarray, ...]], max_pieces: int, rng: random.Random) -> list[list[int]]:
    """Indices of examples, batched by similar length up to `max_pieces` padded pieces, in random order."""
    return length_batches([len(e[0]) for e in exs], max_pieces, rng)


def collate(exs: Sequence[tuple[np.ndarray, ...]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """tokens `(B, N)`, lengths `(B,)`, marks `(B, N)`, cases `(B, N)` (IGNORE where no label)."""
    n = max(len(e[0]) for e in exs)
    tokens = torch.zeros(len(exs), n, dtype=torch.long)
    marks = torch.full((len(exs), n), IGNORE, dtype=torch.long)
    cases = torch.full((len(exs), n), IGNORE, dtype=torch.long)
    for b, (ids, m, c) in enumerate(exs):
        tokens[b, : len(ids)] = torch.from_numpy(ids)
        marks[b, : len(ids)] = torch.from_numpy(m)
        cases[b, : len(ids)] = torch.from_numpy(c)
    return tokens, torch.tensor([len(e[0]) for e in exs]), marks, cases


def scores(pred_marks: Sequence[int], ref_marks: Sequence[int], pred_cases: Sequence[int], ref_cases: Sequence[int]):
    """Per-mark precision, recall and F1 (words), and case accuracy (words, and over words not lower in the ref)."""
    pm, rm, pc, rc = map(np.asarray, (pred_marks, ref_marks, pred_cases, ref_cases))
    out: dict = {"words": len(rm), "marks": {}}
    for k, name in enumerate(MARKS):
        if k == 0:
            continue
        tp = int(np.sum((pm == k) & (rm == k)))
        p = tp / max(1, int(np.sum(pm == k)))
        r = tp / max(1, int(np.sum(rm == k)))
        out["marks"][name] = {
            "precision": p,
            "recall": r,
            "f1": 2 * p * r / max(p + r, 1e-9),
            "count": int(np.sum(rm == k)),
        }
    out["case_accuracy"] = float(np.mean(pc == rc)) if len(rc) else 0.0
    cased = rc != 0
    out["case_accuracy_not_lower"] = float(np.mean(pc[cased] == rc[cased])) if cased.any() else 0.0
    out["case_counts"] = {CASES[k]: int(np.sum(rc == k)) for k in range(len(CASES))}
    return out


@torch.no_grad()
def evaluate(model: PunctModel, exs: Sequence[tuple[np.ndarray, ...]]) -> dict:
    model.eval()
    pm, rm, pc, rc = [], [], [], []
    for i in range(0, len(exs), 64):
        tokens, lengths, marks, cases = collate(exs[i : i + 64])
        lm, lc = model(tokens, lengths)
        sel = marks != IGNORE
        pm += lm.argmax(-1)[sel].tolist()
        rm += marks[sel].tolist()
        sel = cases != IGNORE
        pc += lc.argmax(-1)[sel].tolist()
        rc += cases[sel].tolist()
    model.train()
    return scores(pm, rm, pc, rc)


def mixed_forms(path: Path, language: str, limit: int = 400000) -> dict[str, str]:
    """The most frequent written form of each word that is written in mixed case (e.g. "iPhone", "l'Église")."""
    from models.data.punct import _EDGE
    from parley.textnorm import normalize_text

    forms: dict[str, Counter] = {}
    with open(path) as f:
        for n, line in enumerate(f):
            if n >= limit:
                break
            for token in json.loads(line).get("display", "").split():
                core = _EDGE.sub("", token)
                if core and not core.islower() and not core.isupper() and not core.istitle():
                    forms.setdefault(normalize_text(core, language), Counter())[core] += 1
    return {w: c.most_common(1)[0][0] for w, c in forms.items() if sum(c.values()) >= 2 and " " not in w}


def runtime_scores(folder: Path, data: Sequence[tuple[str, list[WordLabel]]], limit: int = 3000) -> dict:
    """The exported int8 model through the server's `Punctuator` (quantization and windowing included): the same
    figures as `evaluate`, and milliseconds per call (one final)."""
    from server.punctuation import Punctuator

    punct = Punctuator.from_folder(folder)
    pm, rm, pc, rc, ms = [], [], [], [], []
    for _, labels in data[:limit]:
        t0 = time.perf_counter()
        marks, cases = punct.labels([w.word for w in labels])
        ms.append(1000 * (time.perf_counter() - t0))
        pm, pc = pm + marks, pc + cases
        rm += [w.mark for w in labels]
        rc += [w.case for w in labels]
    out = scores(pm, rm, pc, rc)
    out |= {
        "sentences": len(ms),
        "ms_per_final_mean": float(np.mean(ms)),
        "ms_per_final_p95": float(np.percentile(ms, 95)),
    }
    return out


def card_section(card: dict) -> str:
    """The bundle card's section about a punctuation model (README.md), from its punct.json."""
    lang, cfg, t = card["language"], card["config"], card["training"]
    fig = card["test"].get("runtime") or card["test"]["pytorch"]
    where = "the int8 model through the runtime" if "runtime" in card["test"] else "PyTorch"
    rows = "".join(
        f"| {name} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['count']:,} |\n"
        for name, v in fig["marks"].items()
    )
    speed = (
        f"; {fig['ms_per_final_mean']:.1f} ms per final ({fig['ms_per_final_p95']:.1f} ms p95)"
        if "ms_per_final_mean" in fig
        else ""
    )
    return (
        f"## Punctuation and casing (`punct-{lang}.*`)\n\n"
        f'Finals carry `display`, the recognized words punctuated and cased (start option `"punctuate"`, default '
        f"true; docs/protocol.md). A {cfg['layers']}-layer Transformer (d {cfg['d_model']}, {card['parameters']:,} "
        f"parameters, int8 MatMuls) over a {cfg['vocab_size']}-piece sentencepiece model, trained on text alone by "
        f"`parley punct train --language {lang} --steps {t['steps']}` ({t['sentences']:,} sentences of the text "
        f"corpus's train documents, {t['seconds'] // 60} min on {t['threads']} CPU thread(s)) and added with "
        f"`parley punct add` (models/train/punct.py). Measured on {fig.get('sentences', card['test']['sentences']):,} "
        f"test sentences of held-out documents, {where}:\n\n"
        "| mark | precision | recall | F1 | count |\n| --- | ---: | ---: | ---: | ---: |\n"
        f"{rows}\n"
        + (
            f"Case accuracy {fig['case_accuracy']:.1%} of words ({fig['case_accuracy_not_lower']:.1%} of the words "
            f"that are not lowercase){speed}.\n\n"
            if lang != "zh"
            else f"No case in Chinese{speed}.\n\n"
        )
    )


def export_onnx(model: PunctModel, out: Path, meta: dict) -> None:
    from export.onnx_export import OPSET, add_metadata, quantize_int8

    model.eval()
    tokens = torch.randint(1, model.cfg.vocab_size, (1, 12))
    torch.onnx.export(
        model,
        (tokens,),
        str(out / "punct.onnx"),
        opset_version=OPSET,
        dynamo=False,
        input_names=["tokens"],
        output_names=["marks", "cases"],
        dynamic_axes={"tokens": {1: "N"}, "marks": {1: "N"}, "cases": {1: "N"}},
    )
    add_metadata(out / "punct.onnx", {k: str(v) for k, v in meta.items()})
    quantize_int8(out / "punct.onnx", out / "punct.int8.onnx")


def train(a: argparse.Namespace) -> dict:
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    lang_dir = Path(a.text) / a.language
    t0 = time.time()
    train_data = read_labelled(lang_dir / "train.jsonl", a.language, a.max_sentences)
    test_data = read_labelled(lang_dir / "test.jsonl", a.language, a.test_sentences)
    print(f"{a.language}: {len(train_data):,} train / {len(test_data):,} test sentences ({time.time() - t0:.0f} s)")
    train_tokenizer([s for _, s in train_data], out, a.vocab, a.language)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(out / "bpe.model"))
    cfg = PunctConfig(vocab_size=sp.get_piece_size(), d_model=a.d_model, layers=a.layers)
    train_exs = examples(sp, train_data, cfg.max_len, a.seed)
    test_exs = examples(sp, [(f"{i}", s) for i, (_, s) in enumerate(test_data)], cfg.max_len, a.seed)
    model = PunctModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / a.warmup) * 0.5 * (1 + math.cos(math.pi * min(s, a.steps) / a.steps))
    )
    ce = nn.CrossEntropyLoss(ignore_index=IGNORE)
    rng = random.Random(a.seed)
    step, curve = 0, []
    from tqdm import tqdm

    bar = tqdm(total=a.steps, desc=f"punct {a.language}", dynamic_ncols=True)
    while step < a.steps:
        for idx in batches(train_exs, a.batch_pieces, rng):
            tokens, lengths, marks, cases = collate([train_exs[i] for i in idx])
            lm, lc = model(tokens, lengths)
            loss = ce(lm.reshape(-1, cfg.n_marks), marks.reshape(-1)) + ce(
                lc.reshape(-1, cfg.n_cases), cases.reshape(-1)
            )
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if step % 500 == 0:
                curve.append({"step": step, "loss": loss.item()})
            if step >= a.steps:
                break
    bar.close()
    figures = evaluate(model, test_exs)
    meta = {
        "model_type": "parley-punct",
        "language": a.language,
        "marks": json.dumps(MARKS),
        "cases": json.dumps(CASES),
        "max_len": cfg.max_len,
    }
    export_onnx(model, out, meta)
    card = {
        "language": a.language,
        "config": cfg.to_dict(),
        "marks": list(MARKS),
        "cases": list(CASES),
        "mixed": mixed_forms(lang_dir / "train.jsonl", a.language),
        "training": {
            "text": str(lang_dir),
            "sentences": len(train_data),
            "examples": len(train_exs),
            "steps": a.steps,
            "batch_pieces": a.batch_pieces,
            "lr": a.lr,
            "seconds": round(time.time() - t0),
            "threads": a.threads,
            "curve": curve,
        },
        "test": {"sentences": len(test_exs), "pytorch": figures},
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    torch.save({"config": cfg.to_dict(), "model": model.state_dict()}, out / "punct.pt")
    (out / "punct.json").write_text(json.dumps(card, indent=1, ensure_ascii=False))
    card["test"]["runtime"] = runtime_scores(out, test_data)  # the exported int8 model, as the server runs it
    (out / "punct.json").write_text(json.dumps(card, indent=1, ensure_ascii=False))
    print(json.dumps({k: v for k, v in card.items() if k != "mixed"}, indent=1))
    return card


def add_to_bundle(model_dir: Path, bundle: Path) -> dict[str, str]:
    """Copies a trained model into the bundle folder as `punct-<lang>.onnx` (int8), `punct-<lang>.model` and
    `punct-<lang>.json`, names them in bundle.json's `punctuation`, and lists them in "files" (size and sha256, so
    `load_bundle` checks them as it checks the model's). Returns the entry."""
    from server.bundle import BUNDLE_JSON, sha256_of

    card = json.loads((model_dir / "punct.json").read_text())
    lang = card["language"]
    entry = {"model": f"punct-{lang}.onnx", "tokenizer": f"punct-{lang}.model", "card": f"punct-{lang}.json"}
    for src, key in zip(FILES, ("model", "tokenizer", "card"), strict=True):
        shutil.copy2(model_dir / src, bundle / entry[key])
    meta = json.loads((bundle / BUNDLE_JSON).read_text())
    meta.setdefault("punctuation", {})[lang] = entry
    files = meta.setdefault("files", {})
    for name in entry.values():
        files[name] = {"bytes": (bundle / name).stat().st_size, "sha256": sha256_of(bundle / name)}
    meta["files"] = dict(sorted(files.items()))
    (bundle / BUNDLE_JSON).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    put_card_section(bundle, card)
    return entry


def put_card_section(bundle: Path, card: dict) -> None:
    """Puts `card_section(card)` (a punct.json's) into the bundle's README.md (export/card.py)."""
    from export.card import update_card_section

    title, _, body = card_section(card).removeprefix("## ").partition("\n")
    update_card_section(bundle, title, body)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="parley punct", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a punctuation-and-casing model on the text corpus")
    t.add_argument("--text", required=True, help="the text corpus folder (parley text build --out)")
    t.add_argument("--language", required=True, help="en, de, es, fr, it or zh")
    t.add_argument("--out", required=True, help="output folder")
    t.add_argument("--steps", type=int, default=3000, help="optimizer steps (default: 3000)")
    t.add_argument("--vocab", type=int, default=2000, help="sentencepiece pieces (default: 2000)")
    t.add_argument("--d-model", type=int, default=160, help="model width (default: 160)")
    t.add_argument("--layers", type=int, default=2, help="Transformer layers (default: 2)")
    t.add_argument("--batch-pieces", type=int, default=3000, help="padded pieces per batch (default: 3000)")
    t.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: 2e-3)")
    t.add_argument("--warmup", type=int, default=200, help="warm-up steps (default: 200)")
    t.add_argument("--max-sentences", type=int, default=200000, help="train sentences read (default: 200000)")
    t.add_argument("--test-sentences", type=int, default=5000, help="test sentences measured (default: 5000)")
    t.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    t.add_argument("--seed", type=int, default=0, help="random seed")
    d = sub.add_parser("add", help="add a trained model to a bundle")
    d.add_argument("--model", required=True, help="a folder written by `parley punct train`")
    d.add_argument("--bundle", required=True, help="the bundle folder")
    a = p.parse_args(argv)
    if a.cmd == "train":
        train(a)
    else:
        print(add_to_bundle(Path(a.model), Path(a.bundle)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
