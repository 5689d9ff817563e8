"""Punctuation and casing through the runtime (the int8 ONNX model a bundle ships): F1 of each mark, case accuracy,
and milliseconds per final, on the text corpus's test split (held-out documents).

    python benchmarks/bench_punct.py --model exp/punct/en --text data/text --n 3000

The figures are word-level, as `parley punct train` reports them for PyTorch; here they come from
`server.punctuation.Punctuator` on each sentence's recognized form (`text`), so quantization and the runtime's
windowing are included. Time is per call (one final), one thread.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.train.punct import read_labelled, runtime_scores


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a folder written by `parley punct train`")
    p.add_argument("--text", required=True, help="the text corpus folder (parley text build --out)")
    p.add_argument("--n", type=int, default=3000, help="test sentences (default 3000)")
    p.add_argument("--json", help="also write the figures here")
    a = p.parse_args()
    lang = json.loads((Path(a.model) / "punct.json").read_text())["language"]
    data = read_labelled(Path(a.text) / lang / "test.jsonl", lang, a.n)
    out = runtime_scores(Path(a.model), data, a.n)
    out["language"] = lang
    for mark, v in out["marks"].items():
        pr = f"precision {v['precision']:.3f} recall {v['recall']:.3f}"
        print(f"{lang} {mark!r}: {pr} F1 {v['f1']:.3f} ({v['count']})")
    print(f"{lang} case accuracy {out['case_accuracy']:.4f} (words not lower: {out['case_accuracy_not_lower']:.4f})")
    mean, p95 = out["ms_per_final_mean"], out["ms_per_final_p95"]
    print(f"{lang} {out['sentences']} finals: {mean:.2f} ms mean, {p95:.2f} ms p95")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
