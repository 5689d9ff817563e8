"""Measure an exported bundle the way the server runs it: WER, speed and size per precision, and parity with
PyTorch and sherpa-onnx on the same audio.

    parley bundle-eval --bundle bundles/en-small --manifest data/corpus-en/en/test.jsonl \
        --checkpoint exp/en/last.pt --parity 20 --out exp/en/bundle-eval.json

For each precision in the bundle (fp32, int8): every utterance goes through Parley's onnxruntime streaming path
(`server/transducer.py`, chunk by chunk with cached state, greedy search), 16 streams batched; WER against the
manifest's text (also with at most one symbol per encoder frame, which is how sherpa-onnx's greedy search decodes:
the WER a sherpa-onnx user of the bundle gets), and the compute real-time factor of one stream at a time on the first
`--rtf-utts` utterances. With `--parity N`, the first N utterances are also decoded by PyTorch (the checkpoint's
encoder chunk by chunk, `StreamingConformer.stream`, and models/nn/search.py greedy search, one symbol per frame), by
Parley's runtime (one symbol per frame) and by sherpa-onnx's `OnlineRecognizer` on the same files, and the identical
transcripts (token id sequences: sherpa-onnx's tokens read through tokens.txt) are counted.

Every WER scores the normalized text of both sides (`parley.textnorm`, t-SOT's `<cc>` kept as a word of its own):
an imported model that writes capitals ("▁THE") or sherpa-onnx's `<cc>` glued to its neighbours scores its words.
The size of a precision is that of the files the server loads for it (the encoder and every head's decoder and
joiner, as bundle.json names them).

Parity's noise floor: the same N utterances are decoded again by each runtime with one more onnxruntime thread (a
different summation order in the same kernels: the same model, other rounding), and the identical transcripts of
each runtime with itself are counted, and those of Parley and sherpa-onnx on the "stable" utterances (where both
thread counts agree in both runtimes). A model unsure between two spellings flips on rounding alone; where each
runtime agrees with itself, disagreement between them is a difference of algorithm, not of rounding.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from export.sherpa import decode_whole, result_token_ids, settling_silence, sherpa_recognizer
from models.data.manifest import Utterance, load_audio, read_manifest
from parley.contract import WORD_START, complete_steps, tail_padding_samples
from parley.features import FBANK_BACKENDS, SAMPLE_RATE
from parley.textnorm import normalize_keeping_channel_changes
from parley.wer import error_counts
from server.bundle import load_bundle
from server.transducer import StreamingTransducer, transcribe, transcribe_many

# An espeak voice as the first synthetic manifests name it, before they named the engine (models/data/voices.py
# `Voice.name`: "en-us+m3/p55/pr60/r170/g1").
_ESPEAK_VOICE = re.compile(r"/p\d+(/pr\d+)?/r\d+/g\d+$")


class Decoded(NamedTuple):
    """One utterance as a runtime decoded it: what parity compares (`tokens`, ids of the head's tokens.txt) and what
    its WER scores (`text`)."""

    tokens: tuple[int, ...]
    text: str


def file_sizes(bundle: Path, precision: str) -> dict[str, int]:
    """Bytes of each file the server loads for `precision` (bundle.json's encoder and every head's decoder and
    joiner; a file that two precisions share, such as an imported int8 bundle's fp32 decoder, counts once)."""
    meta = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
    names = [meta["encoder"][precision]]
    for head in meta["heads"]:
        names += [head["decoder"][precision], head["joiner"][precision]]
    listed = meta.get("files", {})
    return {n: listed[n]["bytes"] if n in listed else (bundle / n).stat().st_size for n in dict.fromkeys(names)}


def wer_of(refs: Sequence[str], hyps: Sequence[str], language: str) -> float:
    """WER of `hyps` against `refs`, both normalized alike (`<cc>` kept as a word, wherever it is glued)."""
    refs = [normalize_keeping_channel_changes(t, language) for t in refs]
    hyps = [normalize_keeping_channel_changes(t, language) for t in hyps]
    return error_counts(refs, hyps, language).rate


def runtime_wer(
    model: StreamingTransducer, utts: Sequence[Utterance], batch: int = 16, **decode
) -> tuple[float, list[str]]:
    """WER of Parley's batched streaming runtime; `decode` goes to `transcribe_many` (e.g. max_symbols_per_frame)."""
    hyps: list[str] = []
    for i in range(0, len(utts), batch):
        waves = [load_audio(u.audio) for u in utts[i : i + batch]]
        hyps += [t.text for t in transcribe_many(model, waves, SAMPLE_RATE, **decode)]
    return wer_of([u.text for u in utts], hyps, utts[0].language), hyps


def engine_of(u: Utterance) -> str:
    """The synthesizer of `u`: the manifest's `engine`, else its voice's "engine:" prefix, else "espeak" for the
    espeak voice names of the first synthetic manifests, else "unknown" (recordings imported from LibriSpeech or
    JSONL, whose voice is a speaker or nothing)."""
    if u.engine:
        return u.engine
    if ":" in u.voice:
        return u.voice.split(":")[0]
    return "espeak" if _ESPEAK_VOICE.search(u.voice) else "unknown"


def breakdown(utts: Sequence[Utterance], hyps: Sequence[str]) -> dict[str, dict[str, dict]]:
    """WER per synthesizer (`engine_of`) and per augmentation effect (each utterance counts under every effect it
    got; "clean": none but gain), with utterance counts."""
    groups: dict[str, dict[str, list[int]]] = {"engine": {}, "augment": {}}
    for i, u in enumerate(utts):
        groups["engine"].setdefault(engine_of(u), []).append(i)
        effects = {a.split(":")[0] for a in u.augment} - {"gain"}
        for effect in sorted(effects) or ["clean"]:
            groups["augment"].setdefault(effect, []).append(i)
    lang = utts[0].language
    return {
        kind: {
            name: {
                "utterances": len(idx),
                "wer": wer_of([utts[i].text for i in idx], [hyps[i] for i in idx], lang),
            }
            for name, idx in sorted(by.items())
        }
        for kind, by in groups.items()
    }


def single_stream_rtf(model: StreamingTransducer, utts: Sequence[Utterance], fbank: str = "numpy") -> float | None:
    """Compute seconds per audio second for one stream at a time (fbank, computed by `fbank`, + encoder + greedy
    search); None for no utterances (--rtf-utts 0)."""
    if not utts:
        return None
    waves = [load_audio(u.audio) for u in utts]
    t0 = time.perf_counter()
    for w in waves:
        transcribe(model, w, SAMPLE_RATE, fbank=fbank)
    return (time.perf_counter() - t0) / (sum(len(w) for w in waves) / SAMPLE_RATE)


def sherpa_transcripts(
    bundle: Path, precision: str, waves: Sequence[np.ndarray], pieces: Sequence[str], threads: int = 1
) -> list[Decoded]:
    """sherpa-onnx's greedy transcripts of `waves` (already followed by silence: see `main`), its tokens as ids of
    `pieces` (the first head's tokens.txt). The text is its tokens joined, not its result's text, which glues `<cc>`
    to its neighbours and loses its first character where the first token is `<cc>` (docs/tsot.md, "sherpa-onnx")."""
    rec = sherpa_recognizer(bundle, precision, threads=threads)
    out = []
    for w in waves:
        tokens = rec.get_result_all(decode_whole(rec, w, SAMPLE_RATE)).tokens
        text = "".join(tokens).replace(WORD_START, " ").strip()
        out.append(Decoded(tuple(result_token_ids(tokens, pieces)), text))
    return out


def parley_transcripts(
    runtime: StreamingTransducer, waves: Sequence[np.ndarray], fbank: str = "numpy"
) -> list[Decoded]:
    """Parley's runtime's greedy transcripts of `waves` at one symbol per frame, as sherpa-onnx decodes (the waves
    already followed by silence: see `main`), the frames computed by `fbank` (the server's `--fbank`)."""
    out = []
    for w in waves:
        t = transcribe(runtime, w, SAMPLE_RATE, tail_padding_ms=0, max_symbols_per_frame=1, fbank=fbank)
        out.append(Decoded(tuple(t.tokens), t.text))
    return out


def identical(a: Sequence[Decoded], b: Sequence[Decoded]) -> int:
    """How many utterances two runtimes decoded to the same tokens."""
    return sum(x.tokens == y.tokens for x, y in zip(a, b, strict=True))


def noise_floor(
    bundle: Path,
    precision: str,
    waves: Sequence[np.ndarray],
    ours: list[Decoded],
    sherpa: list[Decoded],
    threads: int,
    fbank: str = "numpy",
) -> dict:
    """Parity's noise floor (see the module docstring): `waves` decoded again by Parley's runtime and by sherpa-onnx
    at `threads + 1` onnxruntime threads; `ours` and `sherpa` are their transcripts at `threads`."""
    runtime = StreamingTransducer(load_bundle(bundle, precision=precision, providers="cpu", threads=threads + 1))
    ours2 = parley_transcripts(runtime, waves, fbank)
    sherpa2 = sherpa_transcripts(bundle, precision, waves, runtime.heads[0].head.tokens, threads + 1)
    stable = [
        i for i in range(len(waves)) if ours[i].tokens == ours2[i].tokens and sherpa[i].tokens == sherpa2[i].tokens
    ]
    return {
        "threads": [threads, threads + 1],
        "parley_vs_itself_identical": identical(ours, ours2),
        "sherpa_vs_itself_identical": identical(sherpa, sherpa2),
        "stable": len(stable),
        "parley_vs_sherpa_identical_on_stable": sum(ours[i].tokens == sherpa[i].tokens for i in stable),
    }


def pytorch_transcripts(
    checkpoint: Path, waves: Sequence[np.ndarray], spec: dict, blank_penalty: float = 0.0, tail: bool = True
) -> list[Decoded]:
    """PyTorch greedy search (with the bundle's blank penalty) on the encoder run chunk by chunk over exactly the
    frames the streaming path reads (`transcribe` with the tail padding rule, or with none when `tail` is False)."""
    import torch

    from models.nn.checkpoint import load_model
    from models.nn.search import greedy_search
    from models.train.tokenizer import Tokenizer
    from parley.features import compute_fbank

    model, ck = load_model(checkpoint)
    model.eval()
    tok = Tokenizer(ck["tokenizer"])
    out = []
    window, shift, chunk = spec["T"], spec["decode_chunk_len"], spec["chunk_size"]
    with torch.no_grad():
        for w in waves:
            pad = np.zeros(tail_padding_samples(window, SAMPLE_RATE) if tail else 0, dtype=np.float32)
            feats = torch.from_numpy(compute_fbank(np.concatenate([w, pad]), SAMPLE_RATE))
            steps = complete_steps(feats.shape[0], window, shift)
            feats = feats[: (steps - 1) * shift + window][None]  # the windows of those steps
            lens = torch.tensor([feats.shape[1]])
            enc, lens = model.encoder.stream(feats, lens, chunk, spec["left_context"] // chunk)
            tokens = greedy_search(model, enc, lens, 1, blank_penalty=blank_penalty)[0].tokens
            out.append(Decoded(tuple(tokens), tok.decode(tokens)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="parley bundle-eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--bundle", required=True, type=Path, help="bundle folder")
    p.add_argument("--manifest", required=True, type=Path, help="test manifest (JSONL)")
    p.add_argument("--limit", type=int, default=0, help="only the first N utterances (0: all)")
    p.add_argument("--rtf-utts", type=int, default=30, help="utterances for the single-stream RTF")
    p.add_argument("--checkpoint", type=Path, help="the checkpoint the bundle came from (for --parity)")
    p.add_argument("--parity", type=int, default=0, help="compare PyTorch / Parley / sherpa-onnx on N utterances")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads per session")
    p.add_argument(
        "--fbank",
        default="numpy",
        choices=FBANK_BACKENDS,
        help="what computes Parley's frames, as the server's --fbank (default: numpy)",
    )
    p.add_argument("--out", type=Path, help="write the JSON report here")
    p.add_argument(
        "--card",
        action="store_true",
        help="record the WER in bundle.json (measured.runtime) and the model card's runtime table",
    )
    a = p.parse_args(argv)
    utts = read_manifest(a.manifest)
    if a.limit:
        utts = utts[: a.limit]
    if not utts:
        print(f"parley bundle-eval: no utterances in {a.manifest}", file=sys.stderr)
        return 2
    meta = json.loads((a.bundle / "bundle.json").read_text())
    report: dict = {"bundle": str(a.bundle), "manifest": str(a.manifest), "utterances": len(utts), "precisions": {}}
    hyps_by: dict[str, list[str]] = {}
    for precision in meta["precisions"]:
        model = StreamingTransducer(load_bundle(a.bundle, precision=precision, providers="cpu", threads=a.threads))
        t0 = time.perf_counter()
        wer, hyps = runtime_wer(model, utts, fbank=a.fbank)
        wall = time.perf_counter() - t0
        # sherpa-onnx's greedy search emits at most one token per encoder frame (docs/bundles.md): its accuracy.
        wer_one, _ = runtime_wer(model, utts, max_symbols_per_frame=1, fbank=a.fbank)
        rtf = single_stream_rtf(model, utts[: a.rtf_utts], a.fbank)
        sizes = file_sizes(a.bundle, precision)
        hyps_by[precision] = hyps
        report["precisions"][precision] = {
            "wer": wer,
            "wer_one_symbol_per_frame": wer_one,
            "single_stream_rtf": rtf,
            "batched_wall_seconds": wall,
            "bytes": sizes,
            "total_mb": sum(sizes.values()) / 1e6,
            "by": breakdown(utts, hyps),
        }
        print(
            f"{precision}: WER {100 * wer:.2f}% (one symbol per frame, as sherpa-onnx decodes: {100 * wer_one:.2f}%)  "
            f"single-stream RTF {rtf if rtf is None else round(rtf, 4)}  "
            f"size {sum(sizes.values()) / 1e6:.1f} MB  ({len(utts)} utts, batched decode {wall:.0f} s)"
        )
        for kind, by in report["precisions"][precision]["by"].items():
            print(f"  by {kind}: " + ", ".join(f"{k} {100 * v['wer']:.1f}% ({v['utterances']})" for k, v in by.items()))
    if a.parity:
        spec = meta["streaming"]
        silence = settling_silence(spec, SAMPLE_RATE)  # every runtime decodes the same audio
        waves = [np.concatenate([load_audio(u.audio), silence]) for u in utts[: a.parity]]
        parity: dict = {"utterances": len(waves)}
        prec = "fp32" if "fp32" in meta["precisions"] else meta["precisions"][0]  # an int8-only bundle: its int8
        runtime = StreamingTransducer(load_bundle(a.bundle, precision=prec, providers="cpu", threads=a.threads))
        ours = parley_transcripts(runtime, waves, a.fbank)
        sherpa = sherpa_transcripts(a.bundle, prec, waves, runtime.heads[0].head.tokens, a.threads)
        parity["precision"] = prec
        parity["fbank"] = a.fbank
        parity["parley_vs_sherpa_identical"] = identical(ours, sherpa)
        parity.update(noise_floor(a.bundle, prec, waves, ours, sherpa, a.threads, a.fbank))
        refs = [u.text for u in utts[: a.parity]]
        parity["parley_wer"] = wer_of(refs, [d.text for d in ours], utts[0].language)
        parity["sherpa_onnx_wer"] = wer_of(refs, [d.text for d in sherpa], utts[0].language)
        if a.checkpoint:
            penalty = runtime.heads[0].blank_penalty  # the joiner's metadata (bundle.json's for older bundles)
            torch_hyps = pytorch_transcripts(a.checkpoint, waves, spec, penalty, tail=False)
            parity["pytorch_vs_parley_identical"] = identical(torch_hyps, ours)
        parity["examples"] = [
            {"ref": u.text, "parley": x.text, "sherpa_onnx": y.text}
            for u, x, y in zip(utts[:5], ours[:5], sherpa[:5], strict=False)
        ]
        report["parity"] = parity
        print(
            f"parity on {len(waves)} utterances: Parley == sherpa-onnx {parity['parley_vs_sherpa_identical']} "
            f"(WER {100 * parity['parley_wer']:.2f}% vs {100 * parity['sherpa_onnx_wer']:.2f}%); noise floor at "
            f"{parity['threads'][1]} threads: Parley == itself {parity['parley_vs_itself_identical']}, sherpa-onnx == "
            f"itself {parity['sherpa_vs_itself_identical']}, on the {parity['stable']} stable utterances Parley == "
            f"sherpa-onnx {parity['parley_vs_sherpa_identical_on_stable']}"
            + (
                f", PyTorch == Parley {parity['pytorch_vs_parley_identical']}"
                if "pytorch_vs_parley_identical" in parity
                else ""
            )
        )
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(report, indent=2))
        print(f"wrote {a.out}")
    if a.card:  # a --limit run measures a part: only its parity goes on the card
        record_on_card(a.bundle, a.manifest, report, wer_rows=not a.limit)
    return 0


NOISE_KEYS = (
    "threads",
    "parley_vs_itself_identical",
    "sherpa_vs_itself_identical",
    "stable",
    "parley_vs_sherpa_identical_on_stable",
)


def record_on_card(bundle: Path, manifest: Path, report: dict, wer_rows: bool = True) -> None:
    """Puts a bundle-eval report's WER per precision (unless not `wer_rows`) and its sherpa-onnx parity into
    bundle.json's `measured` (replacing the same test set's) and the model card's section "Through Parley's
    runtime"."""
    from export.card import update_card_section

    meta_path = bundle / "bundle.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    test = "/".join(manifest.parts[-3:])  # corpus/lang/split.jsonl
    rows = meta.setdefault("measured", {}).get("runtime", [])
    if wer_rows:
        rows = [r for r in rows if r["test"] != test]
    for precision, r in report["precisions"].items() if wer_rows else ():
        engines = {k: round(v["wer"], 4) for k, v in r["by"].get("engine", {}).items()}
        effects = {k: round(v["wer"], 4) for k, v in r["by"].get("augment", {}).items()}
        rows.append(
            {
                "test": test,
                "precision": precision,
                "utterances": report["utterances"],
                "wer": round(r["wer"], 4),
                "wer_one_symbol_per_frame": round(r["wer_one_symbol_per_frame"], 4),
                "wer_by_engine": engines,
                "wer_by_augment": effects,
            }
        )
    meta["measured"]["runtime"] = rows
    if "parity" in report:
        q = report["parity"]
        meta["measured"]["sherpa_onnx_parity"] = {
            "test": test,
            **{k: q[k] for k in ("utterances", "precision", "parley_wer", "sherpa_onnx_wer")},
            "parley_vs_sherpa_identical": q["parley_vs_sherpa_identical"],
            **{k: q[k] for k in NOISE_KEYS if k in q},
        }
    meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    body = [
        "`parley bundle-eval --card` (the server's runtime: greedy search, the bundle's chunk and history):",
        "",
        "| test set | precision | utterances | WER | one token per frame (sherpa-onnx's greedy) | WER by engine | "
        "WER by augmentation |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
        *(
            f"| {r['test']} | {r['precision']} | {r['utterances']} | {100 * r['wer']:.2f} % | "
            f"{100 * r['wer_one_symbol_per_frame']:.2f} % | "
            + ", ".join(f"{k} {100 * v:.1f} %" for k, v in r["wer_by_engine"].items())
            + " | "
            + ", ".join(f"{k} {100 * v:.1f} %" for k, v in r.get("wer_by_augment", {}).items())
            + " |"
            for r in rows
        ),
    ]
    q = meta["measured"].get("sherpa_onnx_parity")
    if q:
        body += [
            "",
            f"sherpa-onnx (greedy_search) decodes {q['parley_vs_sherpa_identical']} of {q['utterances']} utterances of "
            f"{q['test']} to the same text as Parley ({q['precision']}; WER {100 * q['sherpa_onnx_wer']:.2f} % vs "
            f"{100 * q['parley_wer']:.2f} %)."
            + (
                f" Each runtime against itself at {q['threads'][1]} onnxruntime threads instead of {q['threads'][0]} "
                f"(rounding alone): Parley {q['parley_vs_itself_identical']}, sherpa-onnx "
                f"{q['sherpa_vs_itself_identical']} identical; on the {q['stable']} utterances where both agree with "
                f"themselves, Parley and sherpa-onnx agree on {q['parley_vs_sherpa_identical_on_stable']}."
                if "stable" in q
                else ""
            ),
        ]
    update_card_section(bundle, "Through Parley's runtime", "\n".join(body))


if __name__ == "__main__":
    sys.exit(main())
