"""Hotword recall and false alarms by boost: unseen surnames in grammar sentences, spoken by espeak-ng.

    nice -n 15 python benchmarks/bench_hotwords.py --bundle bundles/en-small --boosts 1.5 3 5 8 10

Eight surnames the en-small grammar never had, each in three sentence frames and spoken with four espeak-ng voice
variants, decoded with modified beam search and all eight names as hotwords; six grammar sentences without any of
them measure false alarms and whether biasing changes what it should not. Prints one line per boost
(docs/adaptation.md has the table).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from models.data.espeak import synthesize
from parley.contract import BEAM
from server.biasing import ContextGraph, phrase_tokens
from server.bundle import load_bundle
from server.transducer import StreamingTransducer, transcribe_many

NAMES = ["moreno", "pemberton", "harding", "marlow", "dalton", "maddox", "winslow", "okonkwo"]
FRAMES = ["do i have any new messages from {}", "text {} that i'll bring bread", "good evening {} how are you"]
VOICES = ["m3", "f2", "m1", "f4"]
PLAIN = [
    "do i have any new messages from sam",
    "text noah that i'll bring bread",
    "good evening sofia how are you",
    "set a timer for ten minutes",
    "lock the back door",
    "what's the capital of argentina",
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="bundles/en-small", help="the bundle folder to decode with")
    parser.add_argument("--boosts", type=float, nargs="+", default=[1.5, 3, 5, 8, 10], help="boosts per token")
    parser.add_argument("--beam", type=int, default=BEAM, help=f"modified beam search's beam (default {BEAM})")
    a = parser.parse_args(argv)
    model = StreamingTransducer(load_bundle(a.bundle, threads=1))
    head = model.heads[0].head
    named = [(f.format(n), n, VOICES[(i + j) % 4]) for i, n in enumerate(NAMES) for j, f in enumerate(FRAMES)]
    audio = {t: synthesize(t, voice="en-us", variant=v, rate=160) for t, _, v in named}
    audio.update({t: synthesize(t, voice="en-us", variant=VOICES[i % 4], rate=160) for i, t in enumerate(PLAIN)})

    def decode(text: str, graph: ContextGraph | None) -> str:
        s = audio[text]
        return transcribe_many(model, [s.samples], s.sample_rate, search="beam", beam=a.beam, hotwords=graph)[0].text

    baseline = {t: decode(t, None) for t in PLAIN}
    for boost in [0.0, *a.boosts]:
        t0 = time.time()
        graph = ContextGraph([(phrase_tokens(head.sp, n), boost) for n in NAMES], head.vocab_size) if boost else None
        hits = sum(n in decode(t, graph).split() for t, n, _ in named)
        out = {t: decode(t, graph) for t in PLAIN}
        alarms = sum(any(n in o.split() for n in NAMES) for o in out.values())
        same = sum(out[t] == baseline[t] for t in PLAIN)
        print(
            f"boost {boost or 'none'}: name recall {hits}/{len(named)}, false alarms {alarms}/{len(PLAIN)}, "
            f"sentences without names unchanged {same}/{len(PLAIN)} ({time.time() - t0:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
