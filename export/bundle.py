r"""`parley export`: a training checkpoint to a bundle folder that Parley's server and sherpa-onnx both load.

    parley export --checkpoint exp/en/best.pt --tokenizer models/lang/en/bpe.model --name en-small \
        --chunk-ms 320 --history-ms 1280 --out bundles/en-small --int8 --eval-report exp/en/eval/report.json

The folder receives encoder.onnx, decoder.onnx, joiner.onnx (and with --int8 their .int8.onnx copies),
tokens.txt, bpe.model, bundle.json (what is inside, how it was trained, what it measured, sizes and sha256 of
every file) and a README.md model card written from bundle.json. docs/bundles.md describes the format.

A multi-head (SM²) checkpoint becomes a bundle of kind "sm2": encoder.onnx (unprojected output), lid.onnx, and
decoder-<lang>.onnx, joiner-<lang>.onnx, tokens-<lang>.txt, bpe-<lang>.model for every head; the tokenizers are
those the checkpoint was trained with (or <--lang-dir>/<lang>/bpe.model):

    parley export --checkpoint exp/sm2-zh/best.pt --name sm2-small --out bundles/sm2-small --int8 \
        --eval-report exp/sm2-zh/eval/report.json

A configurable multilingual (CMM) encoder's encoder.onnx takes a `language_mask` input; the bundle also holds
encoder-all.onnx, the same encoder with every language selected and no such input, for sherpa-onnx. bundle.json's
"cmm" entry lists the languages (the mask's order) and that file; the model card's sherpa-onnx example uses it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from export.card import CARD, talkers_card_section, update_card_section
from export.onnx_export import (
    CMM_DEFAULT_ENCODER,
    StreamingSettings,
    decoding_metadata,
    export_multihead_onnx,
    export_onnx,
    head_file,
    int8_name,
    mel_range,
)
from parley.contract import CHANNEL_CHANGE
from parley.features import FbankConfig
from server.bundle import BUNDLE_FORMAT, BUNDLE_JSON, POST_PROCESSING, sha256_of
from server.talkers import TalkerModel

PRECISIONS = ("fp32", "int8")


def file_entries(folder: Path, names: Sequence[str]) -> dict[str, dict]:
    """`{name: {"bytes", "sha256"}}` for files of a bundle folder."""
    return {n: {"bytes": (folder / n).stat().st_size, "sha256": sha256_of(folder / n)} for n in sorted(names)}


def _manifest_summary(paths: Sequence[str]) -> dict:
    """Utterances, hours and language of training manifests, when they are still where training read them."""
    if not paths:
        return {}
    n, seconds, languages = 0, 0.0, set()
    for p in paths:
        if not Path(p).is_file():
            return {}
        with open(p, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    d = json.loads(line)
                    n, seconds = n + 1, seconds + float(d.get("duration", 0.0))
                    languages.add(d.get("language", ""))
    return {"utterances": n, "hours": round(seconds / 3600, 3), "languages": sorted(languages - {""})}


def _earlier_stages(cfg: dict, depth: int = 5) -> list[dict]:
    """The runs a checkpoint's run started from (`parley train --init`), newest first, as far as their files exist."""
    import torch

    stages = []
    while cfg.get("init") and Path(cfg["init"]).is_file() and len(stages) < depth:
        ck = torch.load(cfg["init"], map_location="cpu", weights_only=False)
        grown = {"grown": ck["grown"]["layers"]} if "grown" in ck else {}  # models/train/grow.py: [old, new]
        if "from_bundle" in ck:  # weights recovered from a committed bundle (models/train/warmstart.py)
            stages.append(
                {"checkpoint": "", "from_bundle": Path(ck["from_bundle"]).name, "steps": 0, "train_hours": 0} | grown
            )
            stages.extend(_bundle_stages(ck.get("bundle_training") or {}))
            break
        cfg, state = ck.get("train_config", {}), ck.get("state", {})
        stages.append(
            {
                "checkpoint": str(cfg.get("exp_dir", "")),
                "steps": state.get("step"),
                "epochs": state.get("epoch"),
                "train_hours": round(state.get("train_seconds", 0.0) / 3600, 3),
                "lr": cfg.get("lr"),
                "max_seconds": cfg.get("max_seconds"),
                "dropout": cfg.get("encoder", {}).get("dropout"),
                "amp": cfg.get("amp", "none"),
            }
            | grown
        )
    return stages


def _bundle_stages(training: dict) -> list[dict]:
    """A bundle's own training (bundle.json's "training") as earlier stages, newest first: its last run, then the
    runs that one started from. Empty when the bundle recorded no training."""
    if not training.get("steps"):
        return []
    recipe = training.get("recipe", {})
    last = {
        "checkpoint": "",  # bundle.json records neither where the run was nor its dropout (an encoder setting)
        "steps": training.get("steps"),
        "epochs": training.get("epochs"),
        "train_hours": training.get("train_hours", 0.0),
        "lr": recipe.get("lr"),
        "max_seconds": recipe.get("max_seconds"),
        "amp": recipe.get("amp", "none"),
        "data_hours": training.get("data", {}).get("hours"),
    }
    return [last, *training.get("started_from", [])]


def training_summary(checkpoint: dict, hardware: str | None) -> dict:
    """How the checkpoint was trained: data, steps, time, hardware, the recipe (from train_config and state), and
    the earlier runs it started from (`--init`), when their checkpoints are still where the recipe says."""
    cfg, state = checkpoint.get("train_config", {}), checkpoint.get("state", {})
    dev = [r for r in state.get("log", []) if "dev_wer" in r]
    best = state.get("best_wer")
    return {
        "data": {"train": cfg.get("train", []), "dev": cfg.get("dev", []), **_manifest_summary(cfg.get("train", []))},
        "target": cfg.get("target", "text"),
        "steps": state.get("step"),
        "epochs": state.get("epoch"),
        "train_hours": round(state.get("train_seconds", 0.0) / 3600, 3),
        "hardware": hardware or state.get("hardware") or "not recorded",
        "best_dev_wer": best if best is not None and best != float("inf") else None,
        "last_dev_wer": dev[-1]["dev_wer"] if dev else None,
        "recipe": {k: v for k, v in cfg.items() if k not in ("train", "dev", "exp_dir", "encoder")},
        "started_from": _earlier_stages(cfg),
        **({"averaged": checkpoint["averaged"]} if checkpoint.get("averaged") else {}),
        **({"token_bias": checkpoint["token_bias"]} if checkpoint.get("token_bias") else {}),
    }


def _language(checkpoint: dict, tokenizer: Path, language: str | None) -> str:
    if language:
        return language
    cfg = checkpoint.get("train_config", {})
    if cfg.get("target", "text") != "text":
        return cfg["target"]
    found = _manifest_summary(cfg.get("train", [])).get("languages", [])
    if len(found) == 1:
        return found[0]
    return tokenizer.parent.name  # models/lang/<language>/bpe.model


def _table(header: Sequence[str], align: str, rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table's lines; `align` has an "l" (left) or "r" (right) per column."""

    def line(cells: Iterable[object]) -> str:
        return "| " + " | ".join(map(str, cells)) + " |"

    return [line(header), line("---:" if a == "r" else "---" for a in align), *map(line, rows)]


def _sm2_card_lines(bundle: dict) -> list[str]:
    """The model card's SM² part: the language identifier, the measured captions and translations, the language
    identifier's accuracy and the restricted "auto" captions."""
    lines = []
    if "lid" in bundle:
        lines.append(f"- streaming language identifier over {', '.join(bundle['lid']['languages'])} (`lid.onnx`)")
    if "cmm" in bundle:
        lines.append(
            f"- configurable multilingual encoder: language experts for {', '.join(bundle['cmm']['languages'])}, "
            "selected per stream by the start message's `language`/`languages` (`encoder.onnx`'s `language_mask`); "
            f"`{bundle['cmm']['encoder_all_languages'][bundle['precisions'][0]]}` selects them all (for sherpa-onnx)"
        )
    report = bundle["measured"].get("sm2", {})
    if rows := report.get("results", []):
        lines += [
            "",
            *_table(
                ["split", "source", "head", "WER", "BLEU", "zero-shot", "lag (s)"],
                "lllrrlr",
                (
                    [
                        r["split"],
                        r["source"],
                        r["head"],
                        _pct(r["wer"]) if "wer" in r else "",
                        f"{r['bleu']:.1f}" if "bleu" in r else "",
                        "yes" if r.get("zero_shot") else "",
                        f"{r['lag_mean_s']:.2f}" if r.get("lag_mean_s") is not None else "",
                    ]
                    for r in rows
                ),
            ),
        ]
    if lid := report.get("lid", []):
        lines += [
            "",
            "Language identification, accuracy after 1 s and 2 s of audio and at the end of the utterance:",
            "",
            *_table(
                ["split", "source", "1 s", "2 s", "end"],
                "llrrr",
                ([r["split"], r["source"], *(_pct(r[k]) for k in ("acc_1s", "acc_2s", "acc_end"))] for r in lid),
            ),
        ]
    if restricted := report.get("restricted", []):
        lines += [
            "",
            '`"language": "auto"` captions with the identifier restricted to a set of languages (`languages`), against'
            " the right head's (oracle):",
            "",
            *_table(
                ["split", "languages", "source", "LID accuracy", "WER auto", "WER oracle"],
                "lllrrr",
                (
                    [r["split"], r["subset"], r["source"], *map(_pct, (r["lid_acc"], r["wer_auto"], r["wer_oracle"]))]
                    for r in restricted
                ),
            ),
        ]
    return lines


def _tsot_card_lines(report: dict) -> list[str]:
    """The model card's multi-talker part: cpWER by overlap ratio (`parley eval-tsot`) and single-talker WER."""
    lines = [
        f"Two-talker mixtures `{Path(str(report.get('mixtures', ''))).name}`, {report.get('chunk_ms')} ms chunks, "
        f"{report.get('history_ms')} ms history, {report.get('search')} search, blank penalty "
        f"{report.get('blank_penalty', 0):g}; cpWER: each channel's text against "
        "each talker's under the best assignment (docs/tsot.md).",
        "",
        *_table(
            ["overlap ratio", "mixtures", "reference words", "cpWER"],
            "lrrr",
            (
                ["all" if b == "all" else f"{b} %", r["mixtures"], r["words"], _pct(r["cpwer"])]
                for b, r in report["cpwer"].items()
            ),
        ),
    ]
    if "single" in report:
        r = report["single"]
        lines += ["", f"Single-talker audio `{Path(r['manifest']).name}` (`<cc>` dropped): WER {_pct(r['wer'])}."]
    return lines


def model_card(bundle: dict) -> str:
    """The README.md of a bundle, written from its bundle.json."""
    s, f, t = bundle["streaming"], bundle["features"], bundle["training"]
    head = bundle["heads"][0]
    top = f["high_freq"] if f["high_freq"] > 0 else f["sample_rate"] / 2 + f["high_freq"]  # <= 0: from Nyquist
    lines = [
        f"# {bundle['name']} (model card)",
        "",
        f"A streaming Transformer-Transducer for {', '.join(bundle['languages'])}, exported by "
        "`parley export`. Parley's server and sherpa-onnx load the same files.",
        "",
        "## Streaming",
        "",
        f"- chunk {s['chunk_ms']} ms ({s['chunk_size']} encoder frames), history {s['history_ms']} ms "
        f"({s['left_context']} encoder frames), lookahead {s['pad_length']} fbank frames",
        f"- one encoder step reads T = {s['T']} fbank frames and advances {s['decode_chunk_len']}",
        f"- features: {f['num_bins']}-bin log-mel fbank, {f['sample_rate']} Hz, {f['frame_length_ms']} ms window, "
        f"{f['frame_shift_ms']} ms shift, dither {f['dither']}, mel filters from {f['low_freq']:g} to "
        f"{top:g} Hz (kaldi high_freq {f['high_freq']:g})",
        "",
        "## Model",
        "",
        f"- {bundle['model']['parameters'] / 1e6:.2f} M parameters; encoder "
        f"{bundle['model']['config']['encoder']['num_layers']} layers x "
        f"{bundle['model']['config']['encoder']['d_model']}, joiner {bundle['model']['config']['joiner_dim']}",
        "- heads: " + ", ".join(f"{h['name']} ({h['language']}, {h['vocab_size']} tokens)" for h in bundle["heads"]),
        *(
            [
                "- transducer topology: modified (trained with at most one token per encoder frame; greedy search "
                "emits at most one, so Parley's and sherpa-onnx's searches decode alike)"
            ]
            if head.get("rnnt_type") == "modified"
            else []
        ),
        *(_sm2_card_lines(bundle) if bundle["kind"] == "sm2" else []),
        f"- precisions: {', '.join(bundle['precisions'])}",
        "",
        "## Training",
        "",
        f"- data: {', '.join(t['data']['train']) or 'not recorded'}"
        + (f" ({t['data']['utterances']} utterances, {t['data']['hours']} h)" if "hours" in t["data"] else ""),
        f"- {t['steps']} steps, {t['epochs']} epochs, {t['train_hours']} h on {t['hardware']}",
        f"- best dev WER: {_pct(t['best_dev_wer'])}, last dev WER: {_pct(t['last_dev_wer'])}",
        *[
            (
                f"- before that (`--init`): the weights of the bundle {e['from_bundle']} as it was then (recovered "
                "from its ONNX files by models/train/warmstart.py)"
                if "from_bundle" in e
                else f"- before that (`--init`), {_run_where(e['checkpoint'])}: {e['steps']} steps, {e['epochs']} "
                f"epochs, {e['train_hours']} h (lr {e['lr']}, {e['max_seconds']} s batches"
                + (f", dropout {e['dropout']}" if e.get("dropout") is not None else "")
                + f", amp {e['amp']}"
                + (f", {e['data_hours']} h of data" if e.get("data_hours") else "")
                + ")"
            )
            + (
                f", then grown from {e['grown'][0]} to {e['grown'][1]} encoder layers (new layers as the identity; "
                "models/train/grow.py)"
                if e.get("grown")
                else ""
            )
            for e in t.get("started_from", [])
        ],
        *(
            [
                f"- in all: {t['steps'] + sum(e['steps'] or 0 for e in t['started_from'])} steps, "
                f"{t['train_hours'] + sum(e['train_hours'] for e in t['started_from']):.2f} h"
            ]
            if t.get("started_from")
            else []
        ),
        *_soup_card_lines(t.get("averaged", [])),
        *[
            f"- token {e['token_id']}'s logit shifted by {e['delta']:+g} after training (models/train/token_bias.py"
            + (f", head {e['head']}" if e.get("head") else "")
            + "): in the joiner's weights, so every runtime decodes with it"
            for e in t.get("token_bias", [])
        ],
        "",
        "## Measured",
        "",
    ]
    rows = bundle["measured"].get("wer", [])
    if bundle["kind"] == "sm2":
        lines.append("Captions (WER) and translations (BLEU, lag) are in the Model section above.")
    elif "tsot" in bundle["measured"]:
        lines += _tsot_card_lines(bundle["measured"]["tsot"])
    elif rows:
        lines += _table(
            ["test set", "chunk ms", "history ms", "search", "blank penalty", "silence ms", "utterances", "WER", "RTF"],
            "lrrlrrrrr",
            (
                [
                    "/".join(Path(str(r.get("manifest", ""))).parts[-3:]),  # corpus/lang/split.jsonl
                    r.get("chunk_ms"),
                    r.get("history_ms"),
                    r.get("search"),
                    f"{r.get('blank_penalty', 0):g}",
                    r.get("pad_ms", 0),
                    r.get("utterances"),
                    _pct(r.get("wer")),
                    f"{r.get('rtf', 0):.3f}",
                ]
                for r in rows
            ),
        )
    else:
        lines.append(
            "Not measured yet: run `parley eval ... --out DIR`, then `parley export ... --eval-report DIR/report.json`."
        )
    pr = bundle["precisions"][0]
    # A CMM encoder.onnx takes a language_mask sherpa-onnx cannot feed: it gets the every-language encoder.
    sherpa_encoder = bundle["cmm"]["encoder_all_languages"] if "cmm" in bundle else bundle["encoder"]
    lines += [
        "",
        "## Use",
        "",
        *(
            ["Every head is a transducer of its own for sherpa-onnx, with the shared encoder (this is the first):", ""]
            if bundle["kind"] == "sm2"
            else []
        ),
        "```python",
        "import sherpa_onnx",
        "",
        "rec = sherpa_onnx.OnlineRecognizer.from_transducer(",  # one argument a line: ruff-formatted, as the docs
        f'    tokens="{head["tokens"]}",',
        f'    encoder="{sherpa_encoder[pr]}",',
        f'    decoder="{head["decoder"][pr]}",',
        f'    joiner="{head["joiner"][pr]}",',
        f"    sample_rate={f['sample_rate']},",
        f"    feature_dim={f['num_bins']},",
        f"    low_freq={f['low_freq']},",
        f"    high_freq={f['high_freq']},",
        '    decoding_method="greedy_search",',
        f"    blank_penalty={head.get('blank_penalty', 0.0)},",
        ")",
        "```",
        "",
        "## Files",
        "",
        *_table(
            ["file", "bytes", "sha256"],
            "lrl",
            ([n, f"{e['bytes']:,}", f"`{e['sha256']}`"] for n, e in bundle["files"].items()),
        ),
        "",
    ]
    return "\n".join(lines)


def carry_extras(src: Path, src_meta: dict, out: Path) -> dict:
    """Puts the punctuation models, LMs and talker model of the bundle `src` (bundle.json `src_meta`, read before
    `out` was written: `src` may be `out` itself, re-exported in place) into the bundle just exported to `out`: their
    files (checked against `src_meta`'s sha256), their bundle.json entries ("punctuation", "lms", "talkers",
    "files") and their card sections. What `parley punct add`, `parley lm train` and `parley talkers add` added
    survives a new checkpoint of the same model. Returns the new bundle.json content.

    Raises:
        ValueError: the bundles' tokenizers differ (the LMs are token-level) or a carried file is not the one
            `src_meta` lists.
    """
    from models.train import lm_ngram
    from models.train import punct as punct_model

    meta = json.loads((out / BUNDLE_JSON).read_text(encoding="utf-8"))
    punct, lms = src_meta.get("punctuation", {}), src_meta.get("lms", [])
    if lms:
        for head in meta["heads"]:
            theirs = src_meta.get("files", {}).get(head["bpe"], {}).get("sha256")
            if theirs != meta["files"][head["bpe"]]["sha256"]:
                raise ValueError(f"{src}'s LMs are on another tokenizer than {out}'s {head['bpe']}: not carried over")
    talkers = src_meta.get("talkers")
    names = [e[k] for e in punct.values() for k in ("model", "tokenizer", "card")] + [e["file"] for e in lms]
    names += [talkers["model"]] if talkers else []
    for name in names:
        if (src / name).resolve() != (out / name).resolve():
            shutil.copy2(src / name, out / name)
        if sha256_of(out / name) != src_meta["files"][name]["sha256"]:
            raise ValueError(f"{src / name} is not the file {src}/{BUNDLE_JSON} lists (sha256)")
    if punct:
        meta["punctuation"] = punct
    if lms:
        meta["lms"] = lms
    if talkers:
        meta["talkers"] = talkers
    meta["files"] = dict(sorted((meta["files"] | {n: src_meta["files"][n] for n in names}).items()))
    (out / BUNDLE_JSON).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for entry in punct.values():
        punct_model.put_card_section(out, json.loads((out / entry["card"]).read_text(encoding="utf-8")))
    if lms:
        lm_ngram.put_card_section(out, lms)
    if talkers:  # the model's card travels inside its file (TalkerModel.card)
        card = TalkerModel.load(out / talkers["model"]).card
        update_card_section(out, "Talkers", talkers_card_section(card))
    return meta


def _soup_card_lines(averaged: Sequence[dict]) -> list[str]:
    """The card's lines about an averaged checkpoint (models/train/average.py): the weights are the mean of these;
    the lines above describe only the last of them."""
    if not averaged:
        return []
    lines = [
        f"- the weights are the element-wise mean of {len(averaged)} checkpoints (models/train/average.py; the lines "
        "above describe the last of them):"
    ]
    for e in averaged:
        if "from_bundle" in e:
            lines.append(f"  - the weights of the bundle {e['from_bundle']} ({e['path']})")
        elif "averaged" in e:
            inner = ", ".join(Path(x["path"]).parent.name or x["path"] for x in e["averaged"])
            lines.append(f"  - {e['path']}: itself the mean of {len(e['averaged'])} checkpoints ({inner})")
        else:
            data = ", ".join(
                Path(m).name if Path(m).name != "train.jsonl" else str(Path(*Path(m).parts[-3:]))
                for m in e.get("train", [])
            )
            lines.append(
                f"  - {e['path']}: step {e['step']}"
                + (f", {e['train_hours']} h" if e.get("train_hours") else "")
                + (f", from {e['init']}" if e.get("init") else "")
                + (f"; data: {data}" if data else "")
            )
    hours = sum(e.get("train_hours", 0.0) for e in averaged[:-1]) + sum(
        x.get("train_hours", 0.0) for e in averaged for x in e.get("averaged", [])
    )
    if hours:
        lines.append(f"  - the other checkpoints' runs took {hours:.2f} h more")
    return lines


def _run_where(checkpoint: str) -> str:
    """How a card names an earlier run: its folder, or (a bundle's own last run, whose folder is not recorded) that."""
    return f"run in {checkpoint}" if checkpoint else "the run that bundle was exported from"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def write_bundle_json(folder: Path, bundle: dict) -> None:
    """Writes bundle.json and the model card generated from it."""
    (folder / BUNDLE_JSON).write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / CARD).write_text(model_card(bundle), encoding="utf-8")


def build_bundle(
    checkpoint: str | Path,
    out: str | Path,
    name: str,
    settings: StreamingSettings,
    tokenizer: str | Path | None = None,
    language: str | None = None,
    int8: bool = False,
    hardware: str | None = None,
    eval_report: str | Path | Sequence[str | Path] | None = None,
    keep: Sequence[str] | None = None,
    lang_dir: str | Path | None = None,
    post_processing: str = "auto",
    blank_penalty: float = 0.0,
) -> dict:
    """Exports `checkpoint` into the bundle folder `out`; returns the bundle.json content.

    `blank_penalty` (>= 0, tuned on dev data with `parley eval --blank-penalty ...`) is written to every head's joiner
    metadata, where the server reads it (and to bundle.json's heads, for people and for sherpa-onnx, which takes it
    as an argument: the card says so): the server subtracts it from the blank logit before each search decision.

    `post_processing` "tsot" makes a multi-talker bundle (kind "tsot", the head's "post_processing": "tsot");
    "auto" chooses it when the checkpoint's training manifests have `<cc>` in their text (`infer_post_processing`).

    A multi-head checkpoint takes its tokenizers from `lang_dir`/<lang>/bpe.model when given, else from the paths
    the checkpoint was trained with; `tokenizer`, `language` and `post_processing` "tsot" are for single-head
    checkpoints (refused for a multi-head one).

    Raises:
        FileNotFoundError: the checkpoint or tokenizer is missing.
        ValueError: the tokenizer's vocabulary does not match the model's, or a single-head setting was given for a
            multi-head checkpoint.
    """
    from models.nn.checkpoint import load_model
    from models.nn.encoder import count_parameters
    from models.train.tokenizer import MODEL_NAME, TOKENS_NAME, Tokenizer, write_tokens_txt

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} not found")
    if not 0 <= blank_penalty < 100:
        raise ValueError(f"blank_penalty {blank_penalty}: expected a number in [0, 100)")
    model, ck = load_model(checkpoint)
    if model.cfg.multi_head:
        # Each head has its own tokenizer and language, and an SM² bundle no t-SOT post-processing: said, not ignored.
        ignored = [
            flag
            for flag, given in (
                ("--tokenizer", tokenizer is not None),
                ("--language", language is not None),
                (f"--post-processing {post_processing}", post_processing not in ("auto", "none")),
            )
            if given
        ]
        if ignored:
            raise ValueError(
                f"{checkpoint} is a multi-head checkpoint (heads {', '.join(model.head_names)}): {', '.join(ignored)} "
                "applies to single-head checkpoints only; its heads take their tokenizers from --lang-dir "
                "<dir>/<lang>/bpe.model (default: the paths it was trained with)"
            )
        return _build_multihead_bundle(
            model, ck, checkpoint, Path(out), name, settings, lang_dir, int8, hardware, eval_report, keep, blank_penalty
        )
    tokenizer = Path(tokenizer or ck.get("tokenizer", ""))
    tok = Tokenizer(tokenizer)
    if tok.vocab_size != model.cfg.vocab_size:
        raise ValueError(
            f"tokenizer {tokenizer} has {tok.vocab_size} pieces but the checkpoint's model has vocab_size "
            f"{model.cfg.vocab_size}: pass the tokenizer it was trained with"
        )
    lang = _language(ck, tokenizer, language)
    if post_processing == "auto":
        post_processing = infer_post_processing(ck)
    if post_processing not in POST_PROCESSING:
        raise ValueError(f"post_processing {post_processing!r}: choose from auto, {', '.join(POST_PROCESSING)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tokenizer, out / MODEL_NAME)
    write_tokens_txt(out / MODEL_NAME, out / TOKENS_NAME)
    features = FbankConfig()
    common = {"checkpoint_sha256": sha256_of(checkpoint)}
    head_meta = {
        "head": lang,
        "language": lang,
        "tokenizer": MODEL_NAME,
        "tokenizer_sha256": sha256_of(out / MODEL_NAME),
    }
    precisions = _precisions(keep, int8)
    paths = export_onnx(model, settings, out, common, head_meta, features, "int8" in precisions, blank_penalty)
    _drop_float_files(paths, precisions)

    def variants(base: str) -> dict[str, str]:
        return _variants(base, precisions)

    report = read_eval_reports(eval_report)
    bundle = {
        "format": BUNDLE_FORMAT,
        "name": name,
        "kind": "tsot" if post_processing == "tsot" else "transducer",
        "languages": [lang],
        "precisions": precisions,
        "encoder": variants("encoder.onnx"),
        **_cmm_entry(model, precisions),
        "heads": [
            {
                "name": lang,
                "language": lang,
                "decoder": variants("decoder.onnx"),
                "joiner": variants("joiner.onnx"),
                "tokens": TOKENS_NAME,
                "bpe": MODEL_NAME,
                "vocab_size": model.cfg.vocab_size,
                "post_processing": post_processing,
                "blank_penalty": blank_penalty,
                **decoding_metadata(model.cfg),
            }
        ],
        "streaming": _streaming_entry(settings),
        "features": {**features.to_dict(), **mel_range(features)},
        "model": {"config": model.cfg.to_dict(), "parameters": count_parameters(model)},
        "training": training_summary(ck, hardware),
        "measured": {"wer": report.get("results", []), **({"tsot": report} if "cpwer" in report else {})},
        "source": {"checkpoint": str(checkpoint), "checkpoint_sha256": common["checkpoint_sha256"]},
        "files": file_entries(out, [p.name for p in paths.values()] + [TOKENS_NAME, MODEL_NAME]),
    }
    write_bundle_json(out, bundle)
    return bundle


def read_eval_reports(paths: str | Path | Sequence[str | Path] | None) -> dict:
    """One or more report.json files of `parley eval --out` (or eval-sm2) merged: their "results" rows in order,
    the other keys from the first file."""
    if not paths:
        return {}
    if isinstance(paths, str | Path):
        paths = [paths]
    reports = [json.loads(Path(p).read_text()) for p in paths]
    if len(reports) == 1:
        return reports[0]
    return {**reports[0], "results": [row for r in reports for row in r.get("results", [])]}


def infer_post_processing(ck: dict, lines: int = 200) -> str:
    """ "tsot" when the first `lines` lines of a training manifest of the checkpoint mention `<cc>`, else "none"."""
    for manifest in (ck.get("train_config") or {}).get("train") or []:
        try:
            with open(manifest, encoding="utf-8") as f:
                for _, line in zip(range(lines), f, strict=False):
                    if CHANNEL_CHANGE in line:
                        return "tsot"
        except OSError:
            continue  # the manifests may live on the training machine only
    return "none"


def _precisions(keep: Sequence[str] | None, int8: bool) -> list[str]:
    keep = list(keep or (PRECISIONS if int8 else PRECISIONS[:1]))
    if unknown := [p for p in keep if p not in PRECISIONS]:
        raise ValueError(f"unknown precision(s) {unknown}; choose from {list(PRECISIONS)}")
    return [p for p in PRECISIONS if p in keep]


def _drop_float_files(paths: dict[str, Path], precisions: list[str]) -> None:
    """An int8-only bundle keeps no float files: they were only the quantizer's input."""
    if "fp32" not in precisions:
        for name in [n for n in paths if not n.endswith(".int8.onnx")]:
            paths.pop(name).unlink()


def _variants(base: str, precisions: list[str]) -> dict[str, str]:
    return {p: base if p == "fp32" else int8_name(base) for p in precisions}


def _cmm_entry(model, precisions: list[str]) -> dict:
    """bundle.json's "cmm" entry of a CMM encoder (none otherwise): its languages in mask order, its expert settings,
    and the encoder with every language selected that sherpa-onnx can run (no language_mask input)."""
    enc = model.cfg.encoder
    if not enc.cmm_languages:
        return {}
    return {
        "cmm": {
            "languages": list(enc.cmm_languages),
            "rank": enc.cmm_rank,
            "every": enc.cmm_every,
            "encoder_all_languages": _variants(CMM_DEFAULT_ENCODER, precisions),
        }
    }


def _streaming_entry(settings: StreamingSettings) -> dict:
    return {
        "chunk_ms": settings.chunk_ms,
        "history_ms": settings.history_ms,
        "chunk_size": settings.chunk,
        "left_context": settings.left_context,
        "T": settings.window,
        "decode_chunk_len": settings.decode_chunk_len,
        "pad_length": settings.window - settings.decode_chunk_len,
    }


def _build_multihead_bundle(
    model,
    ck: dict,
    checkpoint: Path,
    out: Path,
    name: str,
    settings: StreamingSettings,
    lang_dir: str | Path | None,
    int8: bool,
    hardware: str | None,
    eval_report: str | Path | Sequence[str | Path] | None,
    keep: Sequence[str] | None,
    blank_penalty: float = 0.0,
) -> dict:
    """`build_bundle` for a multi-head (SM²) model: kind "sm2", a head per output language, lid.onnx."""
    from models.nn.encoder import count_parameters
    from models.train.tokenizer import MODEL_NAME, Tokenizer, write_tokens_txt

    saved = ck.get("tokenizers", {})
    tokenizers = {
        h: Path(lang_dir) / h / MODEL_NAME if lang_dir else Path(saved.get(h, Path("models/lang") / h / MODEL_NAME))
        for h in model.head_names
    }
    out.mkdir(parents=True, exist_ok=True)
    common = {"checkpoint_sha256": sha256_of(checkpoint)}
    head_meta, extra_files = {}, []
    for h, path in tokenizers.items():
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer {path} of head {h} not found (pass --lang-dir)")
        if (v := Tokenizer(path).vocab_size) != model.vocab_size(h):
            raise ValueError(f"tokenizer {path} has {v} pieces but head {h} has vocab_size {model.vocab_size(h)}")
        bpe, tokens = f"bpe-{h}.model", f"tokens-{h}.txt"
        shutil.copyfile(path, out / bpe)
        write_tokens_txt(out / bpe, out / tokens)
        extra_files += [bpe, tokens]
        head_meta[h] = {"head": h, "language": h, "tokenizer": bpe, "tokenizer_sha256": sha256_of(out / bpe)}
    features = FbankConfig()
    precisions = _precisions(keep, int8)
    paths = export_multihead_onnx(
        model, settings, out, common, head_meta, features, "int8" in precisions, blank_penalty
    )
    _drop_float_files(paths, precisions)
    report = read_eval_reports(eval_report)
    bundle = {
        "format": BUNDLE_FORMAT,
        "name": name,
        "kind": "sm2",
        "languages": model.head_names,
        "precisions": precisions,
        "encoder": _variants("encoder.onnx", precisions),
        **_cmm_entry(model, precisions),
        **(
            {"lid": {"model": _variants("lid.onnx", precisions), "languages": list(model.cfg.lid_languages)}}
            if model.lid is not None
            else {}
        ),
        "heads": [
            {
                "name": h,
                "language": h,
                "decoder": _variants(head_file("decoder", h), precisions),
                "joiner": _variants(head_file("joiner", h), precisions),
                "tokens": f"tokens-{h}.txt",
                "bpe": f"bpe-{h}.model",
                "vocab_size": model.vocab_size(h),
                "post_processing": "none",
                **decoding_metadata(model.cfg),
                **({"blank_penalty": blank_penalty} if blank_penalty else {}),
            }
            for h in model.head_names
        ],
        "streaming": _streaming_entry(settings),
        "features": {**features.to_dict(), **mel_range(features)},
        "model": {"config": model.cfg.to_dict(), "parameters": count_parameters(model)},
        "training": training_summary(ck, hardware),
        "measured": {"wer": [], "sm2": report},
        "source": {"checkpoint": str(checkpoint), "checkpoint_sha256": common["checkpoint_sha256"]},
        "files": file_entries(out, [p.name for p in paths.values()] + extra_files),
    }
    write_bundle_json(out, bundle)
    return bundle


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="parley export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", required=True, type=Path, help="a checkpoint written by parley train")
    p.add_argument(
        "--tokenizer",
        type=Path,
        help="single-head checkpoints: the sentencepiece model the checkpoint was trained with (default: its own)",
    )
    p.add_argument("--name", required=True, help="bundle name, e.g. en-small")
    p.add_argument("--out", required=True, type=Path, help="bundle folder to write (created if missing)")
    p.add_argument("--chunk-ms", type=int, default=320, help="chunk length in ms, a multiple of 40 (default: 320)")
    p.add_argument(
        "--history-ms", type=int, default=1280, help="attention history in ms, a multiple of the chunk (default: 1280)"
    )
    p.add_argument(
        "--language", help="single-head checkpoints: output language of the head (default: from the training manifests)"
    )
    p.add_argument("--int8", action="store_true", help="also write int8 (dynamically quantized) copies")
    p.add_argument(
        "--precisions", nargs="+", choices=PRECISIONS, help="variants to keep (default: fp32, and int8 with --int8)"
    )
    p.add_argument("--hardware", help="what the model was trained on, for the model card (e.g. '1x H100')")
    p.add_argument(
        "--eval-report",
        type=Path,
        nargs="+",
        help="report.json files of parley eval --out, for the measured WER table (rows of all of them, in order)",
    )
    p.add_argument(
        "--lang-dir", type=Path, help="multi-head checkpoints: <dir>/<lang>/bpe.model (default: the training paths)"
    )
    p.add_argument(
        "--post-processing",
        choices=["auto", *POST_PROCESSING],
        default="auto",
        help="single-head checkpoints: tsot makes a multi-talker bundle (text with <cc>, split into channels by the "
        "server); auto: tsot when the training manifests have <cc> labels (default: auto)",
    )
    p.add_argument(
        "--blank-penalty",
        type=float,
        default=0.0,
        help="subtracted from the blank logit by the server's searches (and sherpa-onnx's, per the card); tune it "
        "on dev data with parley eval --blank-penalty 0 0.5 1 ... (default: 0)",
    )
    p.add_argument(
        "--card-notes",
        type=Path,
        help='a markdown file whose text becomes the model card\'s section "Notes" (what figures alone do not say)',
    )
    p.add_argument(
        "--carry-from",
        type=Path,
        help="a bundle (may be --out itself) whose punctuation models and LMs go into the new one unchanged: a new "
        "checkpoint of the same model keeps what `parley punct add` and `parley lm train` gave the old",
    )
    a = p.parse_args(argv)
    try:
        notes = a.card_notes.read_text(encoding="utf-8") if a.card_notes else ""
        carry = json.loads((a.carry_from / BUNDLE_JSON).read_text(encoding="utf-8")) if a.carry_from else None
        settings = StreamingSettings(a.chunk_ms, a.history_ms)
        bundle = build_bundle(
            a.checkpoint,
            a.out,
            a.name,
            settings,
            a.tokenizer,
            a.language,
            a.int8,
            a.hardware,
            a.eval_report,
            a.precisions,
            a.lang_dir,
            a.post_processing,
            a.blank_penalty,
        )
        if carry is not None:
            bundle = carry_extras(a.carry_from, carry, a.out)
    except (FileNotFoundError, ValueError) as e:
        print(f"parley export: {e}", file=sys.stderr)
        return 2
    if notes:
        update_card_section(a.out, "Notes", notes)
    total = sum(e["bytes"] for e in bundle["files"].values())
    print(f"wrote {a.out}: {len(bundle['files'])} files, {total / 1e6:.1f} MB")
    for n, e in bundle["files"].items():
        print(f"  {n:<22} {e['bytes']:>12,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
