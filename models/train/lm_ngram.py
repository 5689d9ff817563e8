"""`parley lm train`: a token n-gram LM from plain text, on a bundle head's tokenizer, stored inside the bundle.

    parley lm train --text domain.txt --bundle bundles/en-small --name travel --order 3
    parley lm default --bundle bundles/en-open --name general     # the LM every plain stream gets (none: no LM)

The text has one sentence per line; each is normalized as the corpus is (parley/textnorm.py), tokenized with the
head's sentencepiece model and counted. Smoothing is interpolated Kneser-Ney (Chen and Goodman's formulation with
one discount per order, D = n1 / (n1 + 2 n2)): the highest order uses counts, the lower ones continuation counts
(how many different tokens came before), except for n-grams that begin at the sentence start, which have nothing
before them and keep their counts. The model is written as `lm-NAME.npz` (server/lm.py describes the format and
scores it at run time) and listed in bundle.json's "lms" with its default fusion scales, and in "files" with its size
and sha256, so that `load_bundle` checks it as it checks every other file. Training needs no torch.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import sentencepiece as spm

from parley.contract import BLANK_ID
from parley.textnorm import normalize_text
from server.bundle import BUNDLE_JSON, sha256_of
from server.lm import NgramLM, NgramOrder

DEFAULT_ORDER = 3
MIN_DEV_SENTENCES = 50  # `--type auto` holds out a tenth of the text when that gives at least this many
# Fusion scales written into the bundle entry when none are given: tuned on en-open with an unseen domain
# (benchmarks/bench_adapt.py; docs/adaptation.md): the lowest WER there that also lowered the general dev set's.
DEFAULT_LM_SCALE = 0.5
DEFAULT_ILM_SCALE = 0.3
_MIN_DISCOUNT, _MAX_DISCOUNT = 0.05, 0.95


def _discount(counts: Iterable[int]) -> float:
    """Ney's discount n1 / (n1 + 2 n2) from the counts of counts, kept in (0, 1) so every level keeps some mass."""
    c = Counter(counts)
    n1, n2 = c.get(1, 0), c.get(2, 0)
    d = n1 / (n1 + 2 * n2) if n1 + n2 else 0.5
    return float(min(max(d, _MIN_DISCOUNT), _MAX_DISCOUNT))


def train_ngram(
    sentences: Iterable[Sequence[int]], vocab_size: int, boundary_id: int, order: int = DEFAULT_ORDER
) -> NgramLM:
    """An interpolated Kneser-Ney LM of token sequences.

    Args:
        sentences: token ids of each sentence (no boundary ids inside).
        vocab_size: V; every id must be below it.
        boundary_id: the id of <s> and </s> (a transducer head's blank).
        order: N >= 1.

    Raises:
        ValueError: order < 1, no sentences, an id out of range or equal to the boundary.
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    # counts[k][(context, token)] for k = 1..N, n-grams that end at a real token or at </s>.
    raw: list[Counter] = [Counter() for _ in range(order + 1)]
    n_sentences = 0
    for sent in sentences:
        ids = [int(t) for t in sent]
        if any(not 0 <= t < vocab_size or t == boundary_id for t in ids):
            raise ValueError(f"a sentence holds an id outside 0..{vocab_size - 1} or the boundary id {boundary_id}")
        seq = [boundary_id] * (order - 1) + ids + [boundary_id]
        n_sentences += 1
        for i in range(order - 1, len(seq)):
            for k in range(1, order + 1):
                raw[k][tuple(seq[i - k + 1 : i + 1])] += 1
    if not n_sentences:
        raise ValueError("no sentences to train on")
    # What each order is estimated from: counts at the top, continuation counts below (except at <s>).
    counts: list[dict[tuple[int, ...], int]] = [{} for _ in range(order + 1)]
    counts[order] = dict(raw[order])
    for k in range(order - 1, 0, -1):
        left: Counter = Counter(g[1:] for g in raw[k + 1])
        counts[k] = {g: (c if k > 1 and g[0] == boundary_id else left.get(g, c)) for g, c in raw[k].items()}
    discounts = [0.0] + [_discount(counts[k].values()) for k in range(1, order + 1)]

    total1 = sum(counts[1].values())
    d1 = discounts[1]
    unigram = np.full(vocab_size, d1 * len(counts[1]) / total1 / vocab_size, dtype=np.float64)
    for (t,), c in counts[1].items():
        unigram[t] += max(c - d1, 0.0) / total1
    orders = []
    for k in range(2, order + 1):
        by_ctx: dict[tuple[int, ...], list[tuple[int, int]]] = defaultdict(list)
        for g, c in counts[k].items():
            by_ctx[g[:-1]].append((g[-1], c))
        contexts = sorted(by_ctx)
        offsets, tokens, alpha, gamma = [0], [], [], []
        d = discounts[k]
        for h in contexts:
            followers = sorted(by_ctx[h])
            total = sum(c for _, c in followers)
            tokens += [t for t, _ in followers]
            alpha += [max(c - d, 0.0) / total for _, c in followers]
            gamma.append(d * len(followers) / total)
            offsets.append(len(tokens))
        orders.append(
            NgramOrder(
                np.array(contexts, dtype=np.int32).reshape(len(contexts), k - 1),
                np.array(offsets, dtype=np.int64),
                np.array(tokens, dtype=np.int32),
                np.array(alpha, dtype=np.float32),
                np.array(gamma, dtype=np.float32),
            )
        )
    meta = {
        "smoothing": "interpolated-kneser-ney",
        "discounts": [round(d, 4) for d in discounts[1:]],
        "sentences": n_sentences,
    }
    return NgramLM(unigram.astype(np.float32), orders, boundary_id, meta)


def read_sentences(path: Path, sp: spm.SentencePieceProcessor, language: str) -> list[list[int]]:
    """The text file's lines, normalized and tokenized; empty lines skipped."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            text = normalize_text(line, language)
            if text:
                out.append(sp.encode(text))
    return out


def add_to_bundle(
    bundle: Path,
    name: str,
    lm: NgramLM | Path,
    language: str,
    lm_scale: float,
    ilm_scale: float,
    text: str = "",
    extra: dict | None = None,
) -> Path:
    """Writes `lm-NAME.npz` (an n-gram) or copies an exported LSTM LM to `lm-NAME.onnx` in the bundle folder and
    lists it in bundle.json ("lms" and "files"); an LM of the same name is replaced. Returns the file's path."""
    meta_path = bundle / BUNDLE_JSON
    manifest = json.loads(meta_path.read_text(encoding="utf-8"))
    for old in manifest.get("lms", []):  # a replaced LM of the other kind leaves no file behind
        if old.get("name") == name:
            manifest["files"].pop(old["file"], None)
            (bundle / old["file"]).unlink(missing_ok=True)
    if isinstance(lm, NgramLM):
        file = f"lm-{name}.npz"
        path = bundle / file
        lm.save(path)
        entry = {"name": name, "kind": "ngram", "language": language, "file": file, "order": lm.order}
        entry["sentences"] = lm.meta.get("sentences", 0)
    else:
        file = f"lm-{name}.onnx"
        path = bundle / file
        shutil.copyfile(lm, path)
        entry = {"name": name, "kind": "lstm", "language": language, "file": file}
    entry |= {"lm_scale": lm_scale, "ilm_scale": ilm_scale, **(extra or {})}
    if text:
        entry["text"] = text
    manifest["lms"] = [e for e in manifest.get("lms", []) if e.get("name") != name] + [entry]
    if entry.get("default"):
        _only_default(manifest["lms"], entry)
    manifest["files"][file] = {"bytes": path.stat().st_size, "sha256": sha256_of(path)}
    manifest["files"] = dict(sorted(manifest["files"].items()))
    _save(bundle, manifest)
    return path


def _save(bundle: Path, manifest: dict) -> None:
    """Writes bundle.json and the card's table of its LMs."""
    (bundle / BUNDLE_JSON).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    put_card_section(bundle, manifest.get("lms", []))


def _only_default(lms: list[dict], entry: dict) -> None:
    """Makes `entry` the only "default" LM of its language in `lms` (bundle.json's "lms")."""
    for e in lms:
        if e is not entry and e.get("language") == entry["language"]:
            e.pop("default", None)
    entry["default"] = True


def set_default(bundle: Path, name: str, language: str | None = None) -> str:
    """Makes the bundle's LM `name` its language's general LM ("default": true), or, with `name` "none", leaves
    `language` (default: the bundle's first head's) without one. Returns what changed, in words.

    Raises:
        ValueError: no LM of that name, or one of role "source" (it is subtracted, never fused alone).
    """
    meta_path = bundle / BUNDLE_JSON
    manifest = json.loads(meta_path.read_text(encoding="utf-8"))
    lms = manifest.get("lms", [])
    if name == "none":
        language = language or manifest["heads"][0]["language"]
        for e in lms:
            if e.get("language") == language:
                e.pop("default", None)
        said = f"{bundle}: no general LM for {language}"
    else:
        entry = next((e for e in lms if e.get("name") == name), None)
        if entry is None:
            raise ValueError(f"{bundle} has no LM {name!r}; it has: {', '.join(e['name'] for e in lms) or 'none'}")
        if entry.get("role", "domain") != "domain":
            raise ValueError(f"LM {name!r} is a source LM (subtracted by LODR): it cannot be the general LM")
        _only_default(lms, entry)
        said = f"{bundle}: {name} is the general LM of {entry['language']}"
    _save(bundle, manifest)
    return said


def put_card_section(bundle: Path, lms: Sequence[dict]) -> None:
    """Puts the table of the bundle's LMs (`lm_card_section`) into its README.md (export/card.py)."""
    from export.card import update_card_section

    update_card_section(bundle, "Language models (`lm-*`)", lm_card_section(lms))


def lm_card_section(lms: Sequence[dict]) -> str:
    """The bundle card's table of its LMs (bundle.json's "lms")."""
    rows = [
        f"| {e['name']}{' (default)' if e.get('default') else ''} | {e.get('role', 'domain')} | {e['kind']}"
        + (f" (order {e['order']})" if e.get("order") else "")
        + f" | {e.get('sentences', '')} | {e.get('lm_scale', '')} | {e.get('ilm_scale', '')} | "
        f"{e.get('lodr_scale', '')} | {e.get('ngram_dev_perplexity', e.get('lstm_dev_perplexity', ''))} | {e['file']} |"
        for e in lms
    ]
    return (
        "Added by `parley lm train` (docs/adaptation.md). A stream names a domain LM in its start message "
        '(`"lm"`); the default one (`parley lm default`) is fused into every stream that asks for no LM, hotwords '
        'or greedy search (`"lm": "none"` opts out); an LM of role `source` (the training transcripts) is '
        "subtracted with `lodr_scale` (LODR / density ratio).\n\n"
        "| name | role | kind | sentences | lm_scale | ilm_scale | lodr_scale | dev perplexity | file |\n"
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n" + "\n".join(rows)
    )


def _split_dev(sentences: list[list[int]], fraction: float = 0.1) -> tuple[list[list[int]], list[list[int]]]:
    """Every 1/fraction-th sentence held out to measure perplexity (none when the text is too small to spare it)."""
    if len(sentences) < MIN_DEV_SENTENCES / fraction:
        return sentences, []
    k = round(1 / fraction)
    return [s for i, s in enumerate(sentences) if i % k], [s for i, s in enumerate(sentences) if not i % k]


def ngram_perplexity(lm: NgramLM, sentences: Sequence[Sequence[int]]) -> float:
    total = sum(lm.sentence_log_prob(s) for s in sentences)
    return math.exp(-total / max(1, sum(len(s) + 1 for s in sentences)))


def _train_lstm(sentences: list[list[int]], vocab: int, blank: int, a: argparse.Namespace, out: Path):
    from models.nn.lstm_lm import LstmLmConfig
    from models.train.lm_lstm import export_onnx, perplexity, train_lstm

    cfg = LstmLmConfig(vocab, a.embed_dim, a.hidden_size, a.num_layers, boundary_id=blank)
    lm, info = train_lstm(sentences, cfg, steps=a.steps, lr=a.lr)
    export_onnx(lm, out, {"sentences": str(len(sentences))})
    return lm, info, perplexity


def train_command(a: argparse.Namespace) -> int:
    bundle = Path(a.bundle)
    manifest = json.loads((bundle / BUNDLE_JSON).read_text(encoding="utf-8"))
    heads = manifest["heads"]
    head = heads[0] if a.language is None else next((h for h in heads if h["language"] == a.language), None)
    if head is None:
        print(f"error: {bundle} has no head for language {a.language!r}", file=sys.stderr)
        return 2
    if not a.name.replace("-", "").replace("_", "").isalnum():
        print(f"error: --name {a.name!r}: use letters, digits, - and _", file=sys.stderr)
        return 2
    sp = spm.SentencePieceProcessor(model_file=str(bundle / head["bpe"]))
    sentences = read_sentences(Path(a.text), sp, head["language"])
    tokenizer_sha = sha256_of(bundle / head["bpe"])
    train, dev = _split_dev(sentences)
    kind = a.type
    if kind == "auto" and not dev:
        kind = "ngram"  # too little text to measure, or to train an LSTM on
    figures: dict = {"train_sentences": len(train), "dev_sentences": len(dev)}
    ngram = None
    # the LMs predict a head's tokens; <s> and </s> are its blank (every head's, sherpa-onnx's too)
    if kind in ("ngram", "auto"):
        ngram = train_ngram(train if dev else sentences, sp.get_piece_size(), BLANK_ID, a.order)
        if dev:
            figures["ngram_dev_perplexity"] = round(ngram_perplexity(ngram, dev), 2)
    onnx_path = bundle / f".lm-{a.name}.tmp.onnx"
    if kind in ("lstm", "auto"):
        lstm, info, perplexity = _train_lstm(train if dev else sentences, sp.get_piece_size(), BLANK_ID, a, onnx_path)
        figures["lstm"] = info
        if dev:
            figures["lstm_dev_perplexity"] = round(perplexity(lstm, dev), 2)
    if kind == "auto":
        kind = "lstm" if figures["lstm_dev_perplexity"] < figures["ngram_dev_perplexity"] else "ngram"
    figures["chosen"] = kind
    lm: NgramLM | Path
    if kind == "ngram":
        # the chosen n-gram is retrained on every sentence (the dev part measured it, now it helps it)
        lm = train_ngram(sentences, sp.get_piece_size(), BLANK_ID, a.order) if dev or ngram is None else ngram
        lm.meta["tokenizer_sha256"] = tokenizer_sha
    else:
        from export.onnx_export import add_metadata

        add_metadata(onnx_path, {"tokenizer_sha256": tokenizer_sha})
        lm = onnx_path
    if a.default and a.role != "domain":
        print("error: --default is for a domain LM (a source LM is subtracted, never fused alone)", file=sys.stderr)
        return 2
    if a.role == "source":  # at most one per language (server/bundle.py refuses a second): fail before writing
        others = [
            e["name"]
            for e in manifest.get("lms", [])
            if e.get("role") == "source" and e.get("language") == head["language"] and e["name"] != a.name
        ]
        if others:
            print(f"error: {bundle} already has a source LM for {head['language']}: {others}", file=sys.stderr)
            return 2
    scales = {"lodr_scale": a.lodr_scale, "role": a.role, **({"default": True} if a.default else {})}
    path = add_to_bundle(
        bundle, a.name, lm, head["language"], a.lm_scale, a.ilm_scale, Path(a.text).name, figures | scales
    )
    onnx_path.unlink(missing_ok=True)
    print(f"wrote {path} ({kind}): {len(sentences)} sentences, {path.stat().st_size / 1e3:.1f} kB; {figures}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="parley lm", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a token n-gram LM from plain text and add it to a bundle")
    t.add_argument("--text", required=True, help="plain text, one sentence per line (normalized as the corpus is)")
    t.add_argument("--bundle", required=True, help="the bundle folder whose tokenizer the LM uses and that keeps it")
    t.add_argument("--name", required=True, help="the LM's name, what a start message's \"lm\" asks for")
    t.add_argument(
        "--type",
        choices=("auto", "ngram", "lstm"),
        default="auto",
        help="auto (default): train both on 90%% of the text and keep the one of lower perplexity on the rest "
        f"(an n-gram below {MIN_DEV_SENTENCES * 10} sentences); ngram: numpy only; lstm: an ONNX LSTM that "
        "sherpa-onnx can fuse too (lm=..., lm_shallow_fusion=True)",
    )
    t.add_argument("--order", type=int, default=DEFAULT_ORDER, help=f"n-gram order (default {DEFAULT_ORDER})")
    t.add_argument("--steps", type=int, default=2000, help="LSTM training steps (default 2000)")
    t.add_argument("--lr", type=float, default=2e-3, help="LSTM peak learning rate (default 2e-3)")
    t.add_argument("--embed-dim", type=int, default=256, help="LSTM embedding size (default 256)")
    t.add_argument("--hidden-size", type=int, default=384, help="LSTM hidden size (default 384)")
    t.add_argument("--num-layers", type=int, default=2, help="LSTM layers (default 2)")
    t.add_argument("--language", help="the head whose tokenizer to use (default: the bundle's first head)")
    t.add_argument(
        "--lm-scale", type=float, default=DEFAULT_LM_SCALE, help=f"default fusion weight (default {DEFAULT_LM_SCALE})"
    )
    t.add_argument(
        "--ilm-scale",
        type=float,
        default=DEFAULT_ILM_SCALE,
        help=f"default internal-LM subtraction weight (default {DEFAULT_ILM_SCALE})",
    )
    t.add_argument(
        "--role",
        choices=("domain", "source"),
        default="domain",
        help="domain (default): an LM a stream fuses; source: the LM of the acoustic model's training transcripts, "
        "which fusion subtracts (--order 2: LODR; the domain LM's order: density ratio)",
    )
    t.add_argument(
        "--lodr-scale",
        type=float,
        default=0.0,
        help="default weight of the bundle's source LM subtracted when this LM is fused (default 0: none)",
    )
    t.add_argument(
        "--default",
        action="store_true",
        help="make it the language's general LM: fused, with beam search, into every stream that asks for no LM, "
        "hotwords or greedy search (as `parley lm default`)",
    )
    d = sub.add_parser(
        "default",
        help="choose the LM every plain stream of a language gets (beam search, its default scales); none: no LM",
    )
    d.add_argument("--bundle", required=True, help="the bundle folder")
    d.add_argument("--name", required=True, help="one of its domain LMs, or none")
    d.add_argument("--language", help="with --name none: the language left without one (default: the first head's)")
    a = parser.parse_args(argv)
    if a.command == "default":
        try:
            print(set_default(Path(a.bundle), a.name, a.language))
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    return train_command(a)


if __name__ == "__main__":
    sys.exit(main())
