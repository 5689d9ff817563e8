"""The `parley` command: one entry point that gathers every user-facing tool.

Each subcommand lives in its own module and is imported only when it runs, so `parley serve` starts on a machine
without torch, and `parley --help` is instant.

    parley corpus build --out data/corpus --languages en --hours 20 --jobs 2
    parley corpus import librispeech /data/LibriSpeech/train-clean-100 data/libri/train.jsonl
    parley tokenizer --manifest data/corpus/en/train.jsonl --out data/tokenizers
    parley text --split train -n 5
    parley text build --out data/text --languages en,de,es,fr,it,zh
    parley mix --manifest data/corpus-en/en/train.jsonl --out data/mix-en/train --n 40000 --seed 0 --jobs 2
    parley serve
    parley transcribe talk.wav --format srt
    parley stream talk.wav --url ws://127.0.0.1:8000/v1/stream
    parley mic --model en-small
    parley loadtest --streams 8 --files a.wav b.wav --json load.json
    parley lm train --text domain.txt --bundle bundles/en-small --name travel
    parley hotwords learn --bundle bundles/en-open --hotwords names.txt --out names.json
    parley adapt --text domain.txt --bundle bundles/en-small --out bundles/en-travel --mix data/corpus/en/train.jsonl
    parley import-sherpa sherpa-onnx-streaming-zipformer-en-2023-06-26 --out bundles/zipformer-en --language en
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# name -> (module, function, one-line help). Modules are imported lazily.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": ("server.serve", "main", "start the streaming recognition server"),
    "transcribe": ("server.transcribe", "main", "a recording's transcript or subtitles (json, srt, vtt), no server"),
    "stream": ("clients.stream", "main", "stream an audio file to a server at real-time pace and print the captions"),
    "mic": ("clients.mic", "main", "stream the microphone to a server and print the captions live"),
    "twilio": ("clients.twilio", "main", "captions of phone calls: a bridge from Twilio Media Streams to a server"),
    "calls": ("clients.calls", "main", "Asterisk calls' captions on a server (--audiosocket-port): list, show, watch"),
    "loadtest": ("clients.loadtest", "main", "many concurrent streams: latency percentiles, WER, errors, ramp"),
    "corpus": (
        "models.data.corpus",
        "main",
        "build a synthetic speech corpus (corpus build, corpus open), import a real one (corpus import), cut one "
        "(corpus head)",
    ),
    "tokenizer": ("models.train.tokenizer", "main", "train sentencepiece tokenizers per output language"),
    "text": (
        "models.data.grammar.__main__",
        "main",
        "print grammar sentences; `text build`: the open-domain text corpus",
    ),
    "train": ("models.train.train", "main", "train a streaming Transformer-Transducer (also under torchrun)"),
    "eval": ("models.eval.evaluate", "main", "decode manifests with a checkpoint and report WER per chunk size"),
    "eval-sm2": ("models.eval.evaluate_sm2", "main", "SM² model: WER, BLEU, zero-shot, language ID, lag, restriction"),
    "export": ("export.bundle", "main", "export a checkpoint as a model bundle (ONNX encoder/decoder/joiner, tokens)"),
    "bundle-eval": ("export.evaluate_bundle", "main", "measure a bundle: WER, speed, size per precision; parity"),
    "import-sherpa": ("server.sherpa_import", "main", "a bundle from a sherpa-onnx streaming zipformer2 or lstm model"),
    "mix": ("models.data.mixtures", "main", "simulate two-talker mixtures with t-SOT labels from a timed manifest"),
    "talkers": (
        "models.train.talkers",
        "main",
        "`talkers train`: who speaks across segments; `talkers add`",
    ),
    "eval-tsot": ("models.eval.evaluate_tsot", "main", "t-SOT model: cpWER by overlap ratio and single-talker WER"),
    "synth": ("models.data.engines", "main", "speak a sentence with espeak-ng, mbrola, festival, pico or RHVoice"),
    "punct": ("models.train.punct", "main", "`punct train`: a punctuation-and-casing model from text; `punct add`"),
    "lm": (
        "models.train.lm_ngram",
        "main",
        "`lm train`: a token n-gram LM from plain text, added to a bundle for fusion",
    ),
    "hotwords": (
        "models.data.sounds_like",
        "main",
        "`hotwords learn`: how a bundle writes each hotword when it hears it (sounds_like), by synthesizing it",
    ),
    "adapt": (
        "models.train.adapt",
        "main",
        "fine-tune a bundle on synthesized speech of a domain's text (TTS adaptation), export it",
    ),
}


def _load(name: str) -> Callable[[Sequence[str] | None], int | None]:
    module, func, _ = COMMANDS[name]
    return getattr(importlib.import_module(module), func)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="parley",
        description="Parley: streaming speech recognition, translation and multi-talker captions.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n"
        + "\n".join(f"  {k:<10} {v[2]}" for k, v in COMMANDS.items())
        + "\n\n`parley COMMAND --help` describes each command.",
    )
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND", help="what to run (see below)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    ns = parser.parse_args(argv[:1])
    rc = _load(ns.command)(argv[1:])
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
