"""`parley transcribe`: a recording's captions, subtitles or JSON transcript, in this process (no server).

    parley transcribe talk.wav                              # the JSON that POST /v1/transcribe answers
    parley transcribe talk.wav --format srt > talk.srt      # SubRip subtitles; --format vtt: WebVTT
    parley transcribe meeting.wav --format vtt --talkers    # cues say who speaks: <v Talker 1>, <v Talker 2>
    parley transcribe talk.flac --model sm2-mini --language de --bundles bundles/
    parley transcribe call.wav --multichannel --format srt  # each channel on its own: [C1] caller, [C2] agent

The audio goes through the same engine, endpointing and finals as a server stream (server/recognizer.py,
server/batcher.py), so the output equals what `POST /v1/transcribe?format=...` gives for the same file. Audio files
of any format parley/formats.py reads (WAV, FLAC, Ogg Vorbis or Opus, MP3, AIFF, CAF; any rate; channels averaged, or
transcribed one by one with --multichannel). While it decodes, a progress line (the time decoded,
the speed, the time left) goes to standard error when that is a terminal (`--progress` / `--no-progress`).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from parley.audio import mix_down
from parley.features import MAX_INPUT_RATE, MIN_INPUT_RATE
from parley.formats import read_audio_channels
from parley.resample import at_most
from server.bundle import BUNDLE_JSON, BundleError, load_bundle
from server.engine import Engine, EngineConfig
from server.messages import multichannel_transcript, result_message
from server.plan import Adaptation, InvalidOptionError, UnsupportedOptionError
from server.protocol import MAX_ALTERNATIVES, MAX_CHANNELS, SEARCH_METHODS, dumps, transcript_response
from server.service import bundle_folders, default_model
from server.settings import DEFAULT_BUNDLES, DEFAULT_MODEL, PROVIDERS, Settings
from server.subtitles import FORMATS, render


class InputError(ValueError):
    """Something about the command's input a user can fix: the file, the model, an option."""


class Progress:
    """A one-line progress display on `out` (standard error): the seconds of the recording decoded, the share, the
    speed and the time left, redrawn at most every `every_s` seconds and once at the end (`close`).

    Args:
        total_s: the recording's seconds (of each channel; `channels` of them decode side by side).
        channels: how many channels report (`update(seconds, channel)`): the display shows their mean.
    """

    def __init__(self, total_s: float, channels: int = 1, out=None, every_s: float = 0.5) -> None:
        self.total_s, self.out, self.every_s = max(total_s, 1e-9), out or sys.stderr, every_s
        self.done = [0.0] * channels
        self.started = time.monotonic()
        self._drawn = -float("inf")
        self._width = 0

    def update(self, seconds: float, channel: int = 0) -> None:
        self.done[channel] = seconds
        now = time.monotonic()
        if now - self._drawn >= self.every_s:
            self._draw(now)

    def _draw(self, now: float) -> None:
        self._drawn = now
        done = sum(self.done) / len(self.done)
        elapsed = max(now - self.started, 1e-9)
        speed = done / elapsed
        left = (self.total_s - done) / speed if speed > 0 else float("inf")
        line = (
            f"transcribing: {_clock(done)} of {_clock(self.total_s)} ({100 * done / self.total_s:.0f} %), "
            f"{speed:.0f}x real time, {_clock(left) if left != float('inf') else '?'} left"
        )
        self.out.write("\r" + line.ljust(self._width))
        self._width = len(line)
        self.out.flush()

    def close(self) -> None:
        """The last figures, and a new line."""
        self._draw(time.monotonic())
        self.out.write("\n")
        self.out.flush()


def _clock(seconds: float) -> str:
    """`seconds` as h:mm:ss, or m:ss under an hour."""
    s = round(seconds)
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def read_audio(path: Path, mix: bool = True) -> tuple[np.ndarray, int]:
    """A recording as float32 samples in [-1, 1], `(T,)` with its channels averaged (`mix`) or `(C, T)` a row per
    channel, and its rate, resampled to 192 kHz when it is above what the frontend takes.

    Raises:
        InputError: no such file, or a format that cannot be read here.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        x, rate = read_audio_channels(path)
    except (OSError, ValueError) as e:
        raise InputError(str(e)) from None
    if rate < MIN_INPUT_RATE:
        raise InputError(f"{path}: {rate} Hz is below the {MIN_INPUT_RATE} Hz the recognizer needs")
    if mix:
        x = mix_down(x)
    x, rate = at_most(x, int(rate), MAX_INPUT_RATE)
    return x, rate


def find_bundle(folder: Path, name: str | None) -> Path:
    """The bundle folder named `name` under `folder` (or `folder` itself when it is a bundle); with no name, the
    one the server would make its default (`server.service.default_model`). A folder whose bundle.json cannot be
    read is passed over, as the server skips a bundle that fails to load, unless `name` names it (by folder name).

    Raises:
        InputError: no bundle there, none of that name, or the named one's bundle.json unreadable.
    """
    names: dict[str, Path] = {}
    unreadable: dict[str, str] = {}  # folder name -> why
    for p in bundle_folders(folder):
        try:
            manifest = json.loads((p / BUNDLE_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            unreadable[p.name] = f"{p / BUNDLE_JSON}: cannot read it ({str(e)[:200]})"
            continue
        found = manifest.get("name", p.name) if isinstance(manifest, dict) else None
        if not isinstance(found, str):
            unreadable[p.name] = f"{p / BUNDLE_JSON}: not a bundle description (no name)"
            continue
        names.setdefault(found, p)  # the first folder of a name, as the server keeps it
    if name is None:
        chosen = default_model(names)
        if chosen is None:
            raise InputError(f"no model bundle in {folder}" + "".join(f"; {why}" for why in unreadable.values()))
        return names[chosen]
    if name in names:
        return names[name]
    if name in unreadable:
        raise InputError(unreadable[name])
    also = f" (and unreadable: {sorted(unreadable)})" if unreadable else ""
    raise InputError(f"no model {name!r} in {folder}; there are {sorted(names)}{also}")


async def transcribe_file(
    path: Path,
    settings: Settings,
    model: str | None = None,
    search: str | None = None,
    language: str | None = None,
    talkers: bool = False,
    alternatives: int = 0,
    endpointing: bool = True,
    multichannel: bool = False,
    numerals: bool = True,
    redact: bool = False,
    profanity_filter: bool = False,
    progress: bool = False,
    hotwords: Sequence[str] = (),
) -> dict:
    """The `POST /v1/transcribe` body for one recording, decoded in this process (`talkers`: finals number who
    speaks, server/talkers.py; `alternatives`: finals list the N likeliest transcripts, with beam search;
    `endpointing` false: one segment for the whole recording; `multichannel`: each channel transcribed on its own,
    as `?multichannel=true`; `numerals` false: `display` keeps numbers in words, as `?numerals=false`; `redact`:
    spoken digit strings come out as "[redacted]", as `?redact=true`; `profanity_filter`: listed profanity masked,
    as `?profanity_filter=true`; `progress`: a progress line on standard error while it decodes; `hotwords`: names
    and terms to favour, as `?hotwords=`, with beam search).

    Raises:
        InputError: an unreadable file, an unknown model, a language the model lacks, talkers of a model without a
            talker model, alternatives with greedy search, more than MAX_CHANNELS channels with `multichannel`.
    """
    if alternatives and search == "greedy":
        raise InputError("--alternatives needs beam search: leave --search out or give beam")
    samples, rate = read_audio(path, mix=not multichannel)
    channels = samples if multichannel else samples[None]
    if len(channels) > MAX_CHANNELS:
        raise InputError(f"{path}: {len(channels)} channels; --multichannel transcribes at most {MAX_CHANNELS}")
    folder = find_bundle(settings.bundles, model or settings.default_model)
    try:
        bundle = load_bundle(folder, providers=settings.providers, threads=settings.intra_op_threads)
    except (BundleError, ValueError, OSError) as e:  # ValueError: providers this machine cannot run
        raise InputError(f"{folder}: {e}") from None
    engine = Engine(bundle, EngineConfig.from_settings(settings))
    if talkers and not engine.talkers:
        raise InputError(f"model {engine.name} has no talker model: --talkers needs one (parley talkers add)")
    adaptation = Adaptation(tuple((h, None) for h in hotwords)) if hotwords else None
    try:
        plan = engine.plan(language)
        if redact:
            engine.check_redaction(plan)
        if adaptation is not None:
            search = engine.search_for(search, adaptation)
            engine.adapt(plan, adaptation)
    except UnsupportedOptionError as e:
        raise InputError(f"model {engine.name} {e}") from None
    except InvalidOptionError as e:
        raise InputError(f"--hotwords: {e}") from None
    await engine.start()
    shown = Progress(channels.shape[1] / rate, len(channels)) if progress else None
    try:
        endpoint = None if endpointing else engine.config.endpoint.replaced(False)
        decoded = await asyncio.gather(
            *(
                engine.recognize(
                    x,
                    rate,
                    search,
                    plan,
                    adaptation,
                    talkers=talkers,
                    endpoint=endpoint,
                    alternatives=alternatives,
                    numerals=numerals,
                    redact=redact,
                    profanity_filter=profanity_filter,
                    progress=None if shown is None else functools.partial(_report, shown, c),
                )
                for c, x in enumerate(channels)
            )
        )
    finally:
        await engine.close()
        if shown is not None:
            shown.close()
    duration = channels.shape[1] / rate
    if multichannel:
        return multichannel_transcript(engine.name, duration, decoded)
    return transcript_response(engine.name, duration, [result_message(f) for f in decoded[0]])


def _report(shown: Progress, channel: int, seconds: float) -> None:
    shown.update(seconds, channel)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="parley transcribe",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("file", type=Path, help="the recording: WAV, FLAC, Ogg, MP3, AIFF or CAF")
    parser.add_argument("--format", choices=FORMATS, default="json", help="json (default), srt or vtt")
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES, help="folder of bundles, or one bundle")
    parser.add_argument(
        "--model",
        help=f"the bundle's name (default: {DEFAULT_MODEL} when there, else the first by name, as the server)",
    )
    parser.add_argument(
        "--search",
        choices=SEARCH_METHODS,
        help="greedy or beam (default: the model's: beam search with its general LM where its bundle has one)",
    )
    parser.add_argument("--language", help="what a multilingual model captions: a language, or auto")
    parser.add_argument("--out", type=Path, help="write here instead of to standard output")
    parser.add_argument(
        "--talkers", action="store_true", help="number who speaks across segments ([T1] in srt, <v Talker 1> in vtt)"
    )
    parser.add_argument(
        "--alternatives",
        type=int,
        default=0,
        metavar="N",
        help="finals list the N likeliest transcripts (json; beam search; 1-10)",
    )
    parser.add_argument("--no-endpointing", action="store_true", help="one segment for the whole recording")
    parser.add_argument(
        "--no-numerals",
        action="store_true",
        help='keep numbers in words in the punctuated text ("five dollars"), not digits ("$5")',
    )
    parser.add_argument(
        "--redact",
        action="store_true",
        help='write spoken digit strings (card, account, phone numbers, PINs) as "[redacted]"',
    )
    parser.add_argument(
        "--profanity-filter",
        action="store_true",
        help='mask profanity ("d***"): the built-in English list (server/profanity.py)',
    )
    parser.add_argument(
        "--multichannel",
        action="store_true",
        help=f"transcribe each channel on its own (up to {MAX_CHANNELS}; finals say their channel) instead of "
        "averaging them",
    )
    parser.add_argument(
        "--hotwords",
        nargs="+",
        default=[],
        metavar="PHRASE",
        help='names and terms to favour (beam search), e.g. --hotwords kowalczyk "zentrix labs"',
    )
    parser.add_argument(
        "--hotwords-file",
        type=Path,
        metavar="FILE",
        help="more hotwords, as `parley serve --hotwords-file` takes them: a phrase a line, or a .json list such as "
        "`parley hotwords learn` writes (with their sounds_like)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress line on standard error while it decodes (default: when standard error is a terminal)",
    )
    parser.add_argument(
        "--providers",
        type=str.lower,
        choices=PROVIDERS,
        default="cpu",
        help="onnxruntime providers: cpu (default), cuda, auto (CUDA when usable)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.alternatives <= MAX_ALTERNATIVES:
        parser.error(f"--alternatives must be 0-{MAX_ALTERNATIVES}")
    try:
        settings = Settings(bundles=args.bundles, providers=args.providers, hotwords_file=args.hotwords_file)
    except ValueError as e:  # a setting out of its range
        print(f"parley transcribe: {e}", file=sys.stderr)
        return 2
    try:
        body = asyncio.run(
            transcribe_file(
                args.file,
                settings,
                args.model,
                args.search,
                args.language,
                args.talkers,
                args.alternatives,
                not args.no_endpointing,
                args.multichannel,
                not args.no_numerals,
                args.redact,
                args.profanity_filter,
                sys.stderr.isatty() if args.progress is None else args.progress,
                args.hotwords,
            )
        )
    except InputError as e:
        print(f"parley transcribe: {e}", file=sys.stderr)
        return 2
    text = dumps(body) + "\n" if args.format == "json" else render(body["segments"], args.format)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
