"""Text-only adaptation compared on one unseen domain: no adaptation, shallow fusion, fusion with ILME, LODR and
density ratio (and a TTS-adapted bundle, when given), each tuned on the domain's dev half.

    nice python benchmarks/bench_adapt.py --bundle bundles/en-open --corpus data/corpus-grammar/en \
        --general data/corpus-v2/en/test.jsonl --source-manifest data/corpus-v2/en/train.jsonl \
        --out benchmarks/results/adapt/en-open.json [--adapted bundles/en-open-unseen] [--lm-type ngram]

The target domain is the grammar's unseen template families (`models.data.grammar.sampler.UNSEEN_FAMILIES`: whole
sentence patterns no Parley model is trained on): its test_unseen recordings are split in two by position, the even
ones to tune each method's scales (dev), the odd ones to measure it (test). Tuning keeps the general dev set
(`--general-dev`; the general test's even half when it names the same file) within half a point of plain beam
search: of those settings, the best on the target dev. The
adaptation text is other sentences of the same families (`generate("test_unseen", ...)` with any sentence of either
half removed), written to `<work>/domain.txt`, which is what `parley lm train` and `parley adapt` read; with
`--mix-source R` the domain LM learns it R times over together with the source transcripts. The source LM (what LODR
and density ratio subtract) is trained on the bundle's own training transcripts (`--source-manifest`; by default
20,000 sentences of the grammar's train split, what en-small was trained on): a bigram (LODR) and an n-gram of the
domain LM's order (density ratio). The general test (`--general`, by default the corpus's test.jsonl) shows what
adaptation costs elsewhere. `--target` and `--target-text` choose another target: e.g. the open-domain test
(held-out documents) with the rest of those documents' sentences from the text corpus's test split as the
adaptation text (its grammar sentences left out: they are the general test's domain).

Decoding cost: compute seconds per audio second of the test half, decoded as 16 streams batched on one onnxruntime
thread (RTF), and streams one core keeps up with (1 / RTF). Prints one table (docs/adaptation.md has it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_lm import _read, decode
from models.data.grammar.sampler import generate
from models.data.manifest import Utterance, load_audio, read_manifest
from models.train.lm_ngram import main as lm_main
from server.bundle import load_bundle
from server.transducer import LmFusion, StreamingTransducer


@dataclass
class Row:
    method: str
    scales: dict
    target_dev: float
    target_test: float
    general_dev: float
    general: float
    rtf: float

    def line(self) -> str:
        s = ", ".join(f"{k} {v:g}" for k, v in self.scales.items()) or "-"
        return (
            f"| {self.method} | {s} | {self.target_dev:.1%} | {self.target_test:.1%} | {self.general_dev:.1%} | "
            f"{self.general:.1%} | "
            f"{self.rtf:.3f} | {1 / self.rtf:.0f} |"
        )


def _copy_bundle(src: Path, dst: Path) -> Path:
    """A bundle folder whose model files link to `src`'s and whose bundle.json is its own, without `src`'s LMs (the
    benchmark trains its own)."""
    dst.mkdir(parents=True, exist_ok=True)
    meta = json.loads((src / "bundle.json").read_text())
    lm_files = {e["file"] for e in meta.pop("lms", [])}
    meta["files"] = {k: v for k, v in meta["files"].items() if k not in lm_files}
    for f in src.iterdir():
        if f.name != "bundle.json" and f.name not in lm_files and not (dst / f.name).exists():
            (dst / f.name).symlink_to(f.resolve())
    (dst / "bundle.json").write_text(json.dumps(meta, indent=2) + "\n")
    return dst


def _decode(
    model: StreamingTransducer, utts: Sequence[Utterance], audio: dict[str, np.ndarray], search: str, fusion
) -> tuple[float, float]:
    """(WER, RTF) of `utts` decoded in batches of benchmarks/bench_lm.py's BATCH streams."""
    w, seconds, heard, _ = decode(model, utts, audio, search, fusion)
    return w, seconds / heard


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", default="bundles/en-small", help="the bundle to adapt")
    p.add_argument("--corpus", required=True, help="a grammar corpus folder with test_unseen.jsonl and test.jsonl")
    p.add_argument("--target", help="the target domain's recordings (default: CORPUS/test_unseen.jsonl)")
    p.add_argument(
        "--target-text",
        help="a text corpus split (JSONL with 'text') holding the target's documents; its sentences other than the "
        "recorded ones are the adaptation text (default: the grammar's unseen families)",
    )
    p.add_argument("--general", help="the general test manifest (default: CORPUS/test.jsonl)")
    p.add_argument("--general-dev", help="a general dev manifest: scales that make it worse are not chosen")
    p.add_argument("--general-dev-limit", type=int, default=150, help="its first N utterances (default 150)")
    p.add_argument(
        "--general-tolerance",
        type=float,
        default=0.005,
        help="how much worse than plain beam search the general dev may get (default 0.005: half a point)",
    )
    p.add_argument("--source-manifest", nargs="*", default=[], help="the bundle's training transcripts (manifests)")
    p.add_argument("--adapted", nargs="*", default=[], help="TTS-adapted bundles (parley adapt) to compare")
    p.add_argument("--sentences", type=int, default=3000, help="adaptation sentences (default 3000)")
    p.add_argument("--order", type=int, default=3, help="domain n-gram order (default 3)")
    p.add_argument("--lm-type", default="ngram", choices=("ngram", "lstm", "auto"), help="the domain LM's type")
    p.add_argument(
        "--mix-source",
        type=int,
        default=0,
        help="0 (default): the domain LM learns the adaptation text alone; R > 0: the adaptation text R times over "
        "plus the source transcripts (an LM of both, so that general speech keeps its LM)",
    )
    p.add_argument(
        "--methods",
        nargs="*",
        default=["greedy", "shallow", "ilme", "lodr", "dr"],
        help="which rows besides plain beam search: greedy shallow ilme lodr dr (default: all)",
    )
    p.add_argument("--ilme-scales", type=float, nargs=2, help="lm_scale ilm_scale for the adapted bundles' fusion row")
    p.add_argument("--limit", type=int, default=0, help="only the first N utterances of each test manifest")
    p.add_argument("--work", default="exp/bench-adapt", help="scratch folder (bundle copy, text)")
    p.add_argument("--out", help="write the rows as JSON here")
    a = p.parse_args(argv)
    corpus, work = Path(a.corpus), Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    target_path = Path(a.target or corpus / "test_unseen.jsonl")
    unseen = _read(target_path)
    general_path = Path(a.general or corpus / "test.jsonl")
    general = _read(general_path)
    if a.limit:
        unseen, general = unseen[: a.limit], general[: a.limit]
    dev, test = unseen[0::2], unseen[1::2]

    held = {u.text for u in unseen}
    if a.target_text:  # the target's own documents: every sentence of the file but the recorded ones
        records = [json.loads(x) for x in Path(a.target_text).read_text().splitlines() if x.strip()]
        lines = [r["text"] for r in records if r.get("source") != "grammar"]
        text = [t for t in dict.fromkeys(lines) if t not in held][: a.sentences]
    else:
        text = [s.text["en"] for s in generate("test_unseen", a.sentences + len(held), seed=1234)]
        text = [t for t in text if t not in held][: a.sentences]
    (work / "domain.txt").write_text("\n".join(text) + "\n")
    if a.source_manifest:
        source = [u.text for m in a.source_manifest for u in read_manifest(m)]
    else:
        source = [s.text["en"] for s in generate("train", 20_000, seed=0)]
    (work / "source.txt").write_text("\n".join(source) + "\n")
    lm_text = text * a.mix_source + source if a.mix_source else text
    (work / "lm.txt").write_text("\n".join(lm_text) + "\n")
    print(f"adaptation text: {len(text)} sentences of the target domain; source text: {len(source)} transcripts")

    bundle_dir = _copy_bundle(Path(a.bundle), work / "bundle")
    train = ["train", "--bundle", str(bundle_dir)]
    assert lm_main([*train, "--text", str(work / "lm.txt"), "--name", "domain", "--type", a.lm_type,
                    "--order", str(a.order)]) == 0  # fmt: skip
    assert lm_main([*train, "--text", str(work / "source.txt"), "--name", "lodr", "--type", "ngram", "--order", "2",
                    "--role", "source"]) == 0  # fmt: skip
    bundle = load_bundle(bundle_dir, threads=1)
    # the density ratio's source LM has the domain LM's order; a bundle keeps one source LM, so this one is loaded
    # from a second copy
    dr_dir = _copy_bundle(Path(a.bundle), work / "bundle-dr")
    assert lm_main(["train", "--bundle", str(dr_dir), "--text", str(work / "source.txt"), "--name", "dr",
                    "--type", "ngram", "--order", str(a.order), "--role", "source"]) == 0  # fmt: skip
    dr_source = load_bundle(dr_dir, threads=1).lms["dr"].lm
    domain, lodr = bundle.lms["domain"].lm, bundle.lms["lodr"].lm
    model = StreamingTransducer(bundle)

    if a.general_dev and Path(a.general_dev) == general_path:  # one manifest for both: halves, as the target's
        general_dev, general = general[0::2][: a.general_dev_limit], general[1::2]
    else:
        general_dev = _read(Path(a.general_dev))[: a.general_dev_limit] if a.general_dev else []
    print(f"target dev {len(dev)}, test {len(test)}; general dev {len(general_dev)}, test {len(general)} utterances")
    # by audio path: two corpora's manifests may use the same utterance ids
    audio = {u.audio: load_audio(u.audio) for u in [*unseen, *general, *general_dev]}
    rows: list[Row] = []

    baseline_general_dev: list[float] = []

    def measure(method: str, search: str, grid: dict[str, Sequence[float]], make, mdl=model) -> Row:
        """Tunes `make`'s scales: the lowest target dev WER among the settings whose general dev WER is at most
        `--general-tolerance` above plain beam search's (the lowest general dev WER when none is)."""
        tried: list[tuple[float, float, dict]] = []
        for values in itertools.product(*grid.values()):
            scales = dict(zip(grid, values, strict=True))
            fusion = make(**scales)
            w, _ = _decode(mdl, dev, audio, search, fusion)
            g, _ = _decode(mdl, general_dev, audio, search, fusion) if general_dev else (0.0, 0.0)
            print(f"  {method} {scales}: target dev {w:.2%}, general dev {g:.2%}", flush=True)
            tried.append((w, g, scales))
        if not baseline_general_dev:
            baseline_general_dev.append(tried[0][1])
        limit = baseline_general_dev[0] + a.general_tolerance
        kept = [x for x in tried if x[1] <= limit]
        w, g, scales = min(kept, key=lambda x: x[0]) if kept else min(tried, key=lambda x: x[1])
        fusion = make(**scales)
        t, rtf = _decode(mdl, test, audio, search, fusion)
        gt, _ = _decode(mdl, general, audio, search, fusion)
        row = Row(method, scales, w, t, g, gt, rtf)
        print(row.line(), flush=True)
        rows.append(row)
        return row

    lm_scales = (0.3, 0.5, 0.7)
    measure("none (beam 4)", "beam", {}, lambda: None)  # first: the general dev baseline
    methods = set(a.methods)
    if "greedy" in methods:
        measure("none (greedy)", "greedy", {}, lambda: None)
    if "shallow" in methods:
        measure("shallow fusion", "beam", {"lm_scale": lm_scales}, lambda lm_scale: LmFusion(domain, lm_scale))
    ilme: Row | None = None
    if "ilme" in methods:
        ilme = measure(
            "fusion + ILME",
            "beam",
            {"lm_scale": lm_scales, "ilm_scale": (0.1, 0.2, 0.3)},
            lambda lm_scale, ilm_scale: LmFusion(domain, lm_scale, ilm_scale),
        )
    if "lodr" in methods:
        measure(
            "fusion + LODR (bigram)",
            "beam",
            {"lm_scale": lm_scales, "lodr_scale": (0.1, 0.2, 0.3)},
            lambda lm_scale, lodr_scale: LmFusion(domain, lm_scale, 0.0, lodr, lodr_scale),
        )
    if "dr" in methods:
        measure(
            f"density ratio ({a.order}-gram)",
            "beam",
            {"lm_scale": lm_scales, "lodr_scale": (0.1, 0.2, 0.3)},
            lambda lm_scale, lodr_scale: LmFusion(domain, lm_scale, 0.0, dr_source, lodr_scale),
        )
    for path in a.adapted:
        adapted = StreamingTransducer(load_bundle(path, threads=1))
        name = Path(path).name
        measure(f"TTS fine-tuning ({name}, greedy)", "greedy", {}, lambda: None, adapted)
        # and with the LM too, at given ILME scales (--ilme-scales) or those tuned above
        lm_scale, ilm_scale = a.ilme_scales or ((ilme.scales["lm_scale"], ilme.scales["ilm_scale"]) if ilme else (0, 0))
        if lm_scale:
            grid = {"lm_scale": (lm_scale,), "ilm_scale": (ilm_scale,)}
            make = lambda lm_scale, ilm_scale: LmFusion(domain, lm_scale, ilm_scale)  # noqa: E731
            measure(f"TTS fine-tuning ({name}) + fusion + ILME", "beam", grid, make, adapted)

    head = "method | scales (tuned on dev) | target dev | target test | general dev | general test | RTF | streams/core"
    print(f"\n| {head} |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(r.line())
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        report = {
            "bundle": a.bundle,
            "sentences": len(text),
            "mix_source": a.mix_source,
            "order": a.order,
            "lm_type": a.lm_type,
            "rows": [r.__dict__ for r in rows],
        }
        Path(a.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
