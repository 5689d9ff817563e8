"""Prints sentences of the multilingual grammar as JSON lines, for eyeballing.

Each line is one sentence: id, template, family, domain and its text in all six languages.

    python -m models.data.grammar --split train -n 10 --seed 0
    parley text --split test_unseen -n 5 --display

`parley text build ...` builds the open-domain text corpus instead (see models/data/textcorpus.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict

from . import SPLITS, display_text, generate, templates


def main(argv: Sequence[str] | None = None) -> int:
    """Parses `argv` (default: sys.argv[1:]) and prints one JSON object per sentence to stdout."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["build"]:
        from models.data.textcorpus import main as build_main

        return build_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m models.data.grammar", description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="train", choices=SPLITS, help="which split to sample (default: train)")
    parser.add_argument("-n", type=int, default=10, help="how many sentences (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed; same seed, same sentences (default: 0)")
    parser.add_argument("--display", action="store_true", help="print Chinese without its word-separating spaces")
    parser.add_argument("--stats", action="store_true", help="print template, family and split sizes instead")
    args = parser.parse_args(argv)
    if args.n < 0:
        parser.error("-n must be >= 0")
    if args.stats:
        ts = templates()
        print(json.dumps({"templates": len(ts), "families": len({t.family for t in ts}),
                          "domains": sorted({t.domain for t in ts})}))  # fmt: skip
        return 0
    for sentence in generate(args.split, args.n, seed=args.seed):
        record = asdict(sentence)
        if args.display:
            record["text"] = {lang: display_text(lang, text) for lang, text in sentence.text.items()}
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
