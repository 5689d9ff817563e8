"""Corpus importers: real recordings with transcripts turned into Parley manifests (see `models.data.manifest`).

Three layouts are read:

- LibriSpeech: ``<root>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` with lines ``<utt-id> <TEXT>``
  and the audio ``<utt-id>.flac`` (or ``.wav``) beside it. Any folder above the speakers works as the root, so
  ``LibriSpeech/`` imports every subset found below it.
- The Asterisk voice prompts installed from Debian packages (`models.data.asterisk`): ``asterisk --out DIR``.
- A plain JSONL file, one ``{"audio": ..., "text": ...}`` object per line, optionally with ``language``,
  ``translations``, ``id``, ``duration`` and ``voice``; relative audio paths are read from the JSONL file's
  folder.

Texts are verbalized, then normalized (`parley.textnorm`): "$5 at 10:30" becomes "five dollars at ten thirty", as
a speaker says it and as the synthetic corpus writes it (`models.data.verbalize`, for en, de, es, fr, it and zh;
other languages are only normalized). What still holds digits afterwards is imported as written and counted in a
warning: the model will hear words there. ``--keep-digits`` imports numbers as written.

Every audio file is decoded whole, once: its duration is that of the frames decoded, and a file that does not
decode, or decodes to another length than its header gives (truncated, corrupt), is refused here rather than failing
a training run later. Decoding costs little next to training (FLAC about 6000 and MP3 about 3600 times faster than
real time on one core here: 1000 h of LibriSpeech in about 10 minutes), so it is not optional. Utterances too short
to say their transcript (under 0.1 s, or fewer 40 ms encoder frames than words: every word is a token at least, and
CTC and the modified transducer emit one token per frame at most) are skipped and counted. The manifest is written
with audio paths relative to its folder where they lie below it.
Example::

    python -m models.data.importers librispeech /data/LibriSpeech/dev-clean data/librispeech/dev-clean.jsonl
    python -m models.data.importers jsonl my-recordings/list.jsonl data/mine/train.jsonl --language de
    python -m models.data.importers jsonl cv/spk1/list.jsonl data/cv/spk1.jsonl --id-prefix spk1-
    python -m models.data.importers asterisk --out data/asterisk --languages en,es,fr,it
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import soundfile
from tqdm import tqdm

from models.data import asterisk
from models.data.manifest import Utterance, write_manifest
from models.data.verbalize import reads, verbalize
from parley.contract import ENCODER_FRAME_MS
from parley.textnorm import normalize_text, words

# Audio extensions looked for beside a LibriSpeech transcript, in order of preference.
LIBRISPEECH_AUDIO_EXTS = (".flac", ".wav")

# How many skipped utterances a warning lists by name before it only counts them.
_MAX_LISTED = 5

# Shortest utterance imported, whatever its text: shorter audio holds no speech to learn from.
MIN_SECONDS = 0.1

# How far two durations of one file may differ (a listing's `duration` and the audio's, a header's and the frames
# decoded): 0.1 s plus 1 %, more than rounding and MP3 decoder padding, far less than milliseconds read as seconds.
_DURATION_SLACK_S = 0.1
_DURATION_SLACK = 0.01

_DECODE_BLOCK = 1 << 16  # frames decoded at a time (the whole file is never held in memory)


@dataclass
class _Entry:
    """One utterance found in a corpus listing, before its audio has been looked at."""

    id: str
    audio: Path
    text: str
    voice: str
    where: str  # "file:line", for messages
    folder: Path  # the transcript's real folder, where the audio is looked for


def _durations_agree(a: float, b: float) -> bool:
    return abs(a - b) <= _DURATION_SLACK_S + _DURATION_SLACK * max(a, b)


def _audio_duration(path: Path) -> float:
    """Decodes the whole file; returns the duration in seconds of the frames decoded.

    Raises:
        ValueError: the file does not decode, or decodes to another length than its header gives (truncated or
            corrupt); the message names it.
    """
    try:
        with soundfile.SoundFile(str(path)) as f:
            rate, header = f.samplerate, f.frames
            frames = 0
            while n := len(f.read(_DECODE_BLOCK, dtype="int16")):
                frames += n
    except (soundfile.SoundFileError, RuntimeError) as e:
        raise ValueError(f"unreadable audio {path}: {e}") from e
    duration = frames / rate
    if header > 0 and not _durations_agree(duration, header / rate):
        raise ValueError(
            f"truncated or corrupt audio {path}: it decodes to {duration:.3f} s, its header says {header / rate:.3f} s"
        )
    return duration


def caption_text(text: str, language: str, verbalize_numbers: bool = True) -> str:
    """A transcript in the caption form that training reads: numbers, dates and abbreviations written as words
    (`models.data.verbalize`, where it reads `language` and `verbalize_numbers` is set), then normalized.

        >>> caption_text("Call me at 10:30, Dr. Smith!", "en")
        'call me at ten thirty doctor smith'
    """
    if verbalize_numbers and reads(language):
        text = verbalize(text, language)
    return normalize_text(text, language)


def _has_digit(text: str) -> bool:
    return any(c.isdigit() for c in text)


def _warn_digits(where: list[str], total: int) -> None:
    """One warning for the transcripts that still hold digits after verbalizing (said as words, written as digits)."""
    if where:
        print(
            f"warning: {len(where)} of {total} transcripts still hold digits after verbalizing (imported as written; "
            f"the recordings say words there: fix the listing, or drop these lines):{_first_few(where)}",
            file=sys.stderr,
        )


def _too_short(duration: float, text: str, language: str) -> str | None:
    """Why an utterance is too short to train on (None when it is not): under `MIN_SECONDS`, or fewer encoder
    frames than words (each word is a token at least; CTC and the modified transducer emit one per frame at most)."""
    frames, units = int(duration * 1000 / ENCODER_FRAME_MS), len(words(text, language))
    if duration < MIN_SECONDS or frames < units:
        return f"too short: {duration:.3f} s ({frames} encoder frames) for {units} words"
    return None


def _warn_skipped(skipped: dict[str, list[str]], total: int) -> None:
    """One warning for the utterances skipped, counted by reason (the keys) and the first few named."""
    messages = [m for ms in skipped.values() for m in ms]
    if not messages:
        return
    counts = ", ".join(f"{len(ms)} {reason}" for reason, ms in skipped.items() if ms)
    print(f"warning: skipped {len(messages)} of {total} utterances ({counts}):{_first_few(messages)}", file=sys.stderr)


def _first_few(messages: list[str]) -> str:
    """The first `_MAX_LISTED` messages, one an indented line, and how many more."""
    more = f"\n  ... and {len(messages) - _MAX_LISTED} more" if len(messages) > _MAX_LISTED else ""
    return "".join(f"\n  {m}" for m in messages[:_MAX_LISTED]) + more


def _find_audio(folder: Path, utt_id: str) -> Path:
    """The utterance's audio beside its transcript; the first candidate's path when none exists."""
    candidates = [(folder / (utt_id + ext)).resolve() for ext in LIBRISPEECH_AUDIO_EXTS]
    return next((p for p in candidates if p.is_file()), candidates[0])


def _walk_files(root: Path) -> list[Path]:
    """Every file below `root`, in sorted order, following symlinked folders (a subset linked in from another disk)
    but entering each real folder once (no loop through a link to a parent)."""
    seen: set[str] = set()
    files = []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders.sort()
        files += [Path(folder) / name for name in sorted(names)]
    return files


def _librispeech_entries(root: Path, files: list[Path]) -> list[_Entry]:
    transcripts = [p for p in files if p.name.endswith(".trans.txt")]
    if not transcripts:
        raise ValueError(f"no LibriSpeech transcripts (*.trans.txt) found below {root}")
    entries: dict[str, _Entry] = {}
    for trans in transcripts:
        speaker, folder = trans.name.split("-", 1)[0], trans.parent.resolve()
        with open(trans, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                utt_id, _, text = line.strip().partition(" ")
                where = f"{trans}:{lineno}"
                if utt_id in entries:
                    raise ValueError(f"{where}: utterance id {utt_id!r} already listed at {entries[utt_id].where}")
                entries[utt_id] = _Entry(utt_id, _find_audio(trans.parent, utt_id), text, speaker, where, folder)
    return [entries[k] for k in sorted(entries)]


def _warn_unlisted(root: Path, files: list[Path], entries: list[_Entry]) -> None:
    """Warns of the audio files below `root` that no transcript line lists (they are not imported)."""
    listed = {(e.folder, e.id) for e in entries}
    unlisted = [p for p in files if p.suffix in LIBRISPEECH_AUDIO_EXTS and (p.parent.resolve(), p.stem) not in listed]
    if unlisted:
        named = "\n  ".join(map(str, unlisted[:_MAX_LISTED]))
        more = f"\n  ... and {len(unlisted) - _MAX_LISTED} more" if len(unlisted) > _MAX_LISTED else ""
        print(
            f"warning: {len(unlisted)} audio files below {root} are in no transcript, not imported:\n  {named}{more}",
            file=sys.stderr,
        )


def import_librispeech(
    root: str | os.PathLike,
    out_manifest: str | os.PathLike,
    language: str = "en",
    *,
    progress: bool = True,
    verbalize_numbers: bool = True,
) -> int:
    """Imports a LibriSpeech-layout folder into a manifest sorted by utterance id.

    Symlinked folders below `root` are followed. Utterances whose audio is missing, unreadable, truncated or too
    short for the transcript are skipped, and audio files that no transcript lists are counted, with warnings on
    stderr.

    Args:
        root: a folder with ``<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` somewhere below it.
        out_manifest: the JSONL manifest to write.
        language: the language tag of every utterance.
        progress: show a progress bar on stderr.
        verbalize_numbers: write numbers as words (`caption_text`); False keeps digits.

    Returns:
        The number of utterances written.

    Raises:
        FileNotFoundError: `root` is not a folder.
        ValueError: no transcripts, a duplicated utterance id, or nothing importable.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"LibriSpeech root {root} is not a folder")
    files = _walk_files(root)
    entries = _librispeech_entries(root, files)
    _warn_unlisted(root, files, entries)
    utterances: list[Utterance] = []
    skipped: dict[str, list[str]] = {"without audio": [], "unreadable": [], "too short": []}
    digits: list[str] = []
    for e in tqdm(entries, desc=f"import {root.name}", unit="utt", disable=not progress):
        if not e.audio.is_file():
            exts = " or ".join(LIBRISPEECH_AUDIO_EXTS)
            skipped["without audio"].append(f"{e.where}: no audio {e.audio.parent / e.id} ({exts})")
            continue
        try:
            duration = _audio_duration(e.audio)
        except ValueError as err:
            skipped["unreadable"].append(f"{e.where}: {err}")
            continue
        text = caption_text(e.text, language, verbalize_numbers)
        if verbalize_numbers and _has_digit(text):
            digits.append(f"{e.where}: {text}")
        if short := _too_short(duration, text, language):
            skipped["too short"].append(f"{e.where}: {e.audio} {short}")
            continue
        utterances.append(
            Utterance(id=e.id, audio=str(e.audio), duration=duration, language=language, text=text, voice=e.voice)
        )
    _warn_skipped(skipped, len(entries))
    _warn_digits(digits, len(entries))
    if not utterances:
        raise ValueError(f"nothing imported from {root}: all {len(entries)} utterances were skipped")
    return write_manifest(out_manifest, utterances)


@dataclass
class _Listed:
    """One checked line of a JSONL listing, before its audio has been looked at."""

    id: str | None
    audio: Path
    text: str
    language: str
    translations: dict[str, str]
    duration: float | None
    voice: str
    where: str  # "file:line", for messages


def _parse_jsonl_line(line: str, where: str, src_dir: Path, default_language: str) -> _Listed:
    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not valid JSON: {e.msg} (column {e.colno})") from e
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(d).__name__}")
    for key in ("audio", "text"):
        if not isinstance(d.get(key), str):
            raise ValueError(f"{where}: {key!r} must be a string, got {d.get(key)!r}")
    language = d.get("language") or default_language
    if not isinstance(language, str):
        raise ValueError(f"{where}: 'language' must be a string, got {language!r}")
    translations = d.get("translations") or {}
    if not isinstance(translations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in translations.items()
    ):
        raise ValueError(f"{where}: 'translations' must map language tags to strings, got {translations!r}")
    uid = d.get("id")
    if uid is not None and not (isinstance(uid, str | int) and str(uid).strip()):
        raise ValueError(f"{where}: 'id' must be a non-empty string, got {uid!r}")
    duration = d.get("duration")
    if duration is not None and (not isinstance(duration, int | float) or duration <= 0):
        raise ValueError(f"{where}: 'duration' must be a positive number of seconds, got {duration!r}")
    audio = Path(d["audio"])
    audio = (audio if audio.is_absolute() else src_dir / audio).resolve()
    if not audio.is_file():
        raise ValueError(f"{where}: audio file not found: {audio}")
    return _Listed(
        id=None if uid is None else str(uid),
        audio=audio,
        text=d["text"],
        language=language.strip(),
        translations=translations,
        duration=None if duration is None else float(duration),
        voice=str(d.get("voice") or ""),
        where=where,
    )


def _assign_ids(listed: list[_Listed], prefix: str = "") -> list[str]:
    """Given ids kept as they are (must be unique); the others the audio file's stem, suffixed -2, -3, ...; all
    after `prefix`."""
    given: dict[str, str] = {}
    for r in listed:
        if r.id is not None:
            if r.id in given:
                raise ValueError(f"{r.where}: id {r.id!r} already used at {given[r.id]}")
            given[r.id] = r.where
    taken = set(given)
    ids = []
    for r in listed:
        uid, n = r.id or r.audio.stem, 1
        while r.id is None and uid in taken:
            n += 1
            uid = f"{r.audio.stem}-{n}"
        taken.add(uid)
        ids.append(prefix + uid)
    return ids


def import_jsonl(
    src: str | os.PathLike,
    out_manifest: str | os.PathLike,
    default_language: str = "en",
    *,
    progress: bool = True,
    id_prefix: str = "",
    verbalize_numbers: bool = True,
) -> int:
    """Imports a plain JSONL listing of recordings into a manifest, in the listing's order.

    Each line is ``{"audio": path, "text": str}`` with optional ``language`` (else `default_language`),
    ``translations`` ({language: text}), ``id`` (else the audio file's stem, de-duplicated), ``duration`` (checked
    against the audio's, which is the one written) and ``voice``. Texts and translations are verbalized and
    normalized for their own languages (`caption_text`; `verbalize_numbers` False keeps digits). Unlike the
    LibriSpeech importer every problem is an error, the listing being the user's own; only utterances too short for
    their transcript are skipped, with a warning that counts them.

    Args:
        id_prefix: put before every id, so that listings imported apart (one per speaker folder, whose files
            share names) give ids that stay apart in one training run.

    Returns:
        The number of utterances written.

    Raises:
        FileNotFoundError: `src` does not exist.
        ValueError: a line is not a JSON object, lacks or mistypes a field, repeats an id, names missing,
            unreadable or truncated audio, or gives a duration that is not the audio's (milliseconds?); or every
            utterance is too short. The message names the file and line.
    """
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"JSONL listing {src} not found")
    src_dir = src.resolve().parent
    listed: list[_Listed] = []
    with open(src, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                listed.append(_parse_jsonl_line(line, f"{src}:{lineno}", src_dir, default_language))
    if not listed:
        raise ValueError(f"{src} lists no utterances")
    ids = _assign_ids(listed, id_prefix)
    utterances = []
    short: list[str] = []
    digits: list[str] = []
    for r, uid in tqdm(
        list(zip(listed, ids, strict=True)), desc=f"import {src.name}", unit="utt", disable=not progress
    ):
        try:
            duration = _audio_duration(r.audio)
        except ValueError as e:
            raise ValueError(f"{r.where}: {e}") from e
        if r.duration is not None and not _durations_agree(r.duration, duration):
            raise ValueError(
                f"{r.where}: 'duration' {r.duration:g} is not the audio's {duration:.3f} s ({r.audio}); durations "
                "are seconds (milliseconds?): fix it or leave it out"
            )
        text = caption_text(r.text, r.language, verbalize_numbers)
        if verbalize_numbers and _has_digit(text):
            digits.append(f"{r.where}: {text}")
        if reason := _too_short(duration, text, r.language):
            short.append(f"{r.where}: {r.audio} {reason}")
            continue
        utterances.append(
            Utterance(
                id=uid,
                audio=str(r.audio),
                duration=duration,
                language=r.language,
                text=text,
                translations={
                    lang: caption_text(t, lang, verbalize_numbers) for lang, t in sorted(r.translations.items())
                },
                voice=r.voice,
            )
        )
    _warn_skipped({"too short": short}, len(listed))
    _warn_digits(digits, len(listed))
    if not utterances:
        raise ValueError(f"nothing imported from {src}: all {len(listed)} utterances are too short")
    return write_manifest(out_manifest, utterances)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``librispeech ROOT OUT``, ``jsonl SRC OUT`` or ``asterisk --out DIR``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="parley corpus import", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="format", required=True)
    lib = sub.add_parser("librispeech", help="a LibriSpeech-layout folder (<speaker>/<chapter>/*.trans.txt)")
    lib.add_argument("root", type=Path, help="folder with the speaker folders somewhere below it")
    lib.add_argument("out", type=Path, help="manifest (JSONL) to write")
    lib.add_argument("--language", default="en", help="language tag of the recordings (default: %(default)s)")
    jsl = sub.add_parser("jsonl", help='a JSONL listing of {"audio": ..., "text": ...} objects')
    jsl.add_argument("src", type=Path, help="JSONL listing; relative audio paths are read from its folder")
    jsl.add_argument("out", type=Path, help="manifest (JSONL) to write")
    jsl.add_argument(
        "--language",
        default="en",
        help="language tag for lines without a 'language' field (default: %(default)s)",
    )
    jsl.add_argument(
        "--id-prefix",
        default="",
        help="put before every id (e.g. spk1-): listings imported apart whose audio files share names then give "
        "distinct ids, which a training run with a feature cache needs",
    )
    for p in (lib, jsl):
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        p.add_argument(
            "--keep-digits",
            action="store_true",
            help="import numbers as written (default: verbalized, '10:30' -> 'ten thirty', as the speaker says them)",
        )
    ast = sub.add_parser("asterisk", help="the Asterisk voice prompts (Debian asterisk-core-sounds-<lang>-wav)")
    asterisk.add_arguments(ast)
    args = parser.parse_args(argv)
    if args.format == "asterisk":
        return asterisk.run(args)
    try:
        if args.format == "librispeech":
            n = import_librispeech(
                args.root,
                args.out,
                args.language,
                progress=not args.no_progress,
                verbalize_numbers=not args.keep_digits,
            )
        else:
            n = import_jsonl(
                args.src,
                args.out,
                args.language,
                progress=not args.no_progress,
                id_prefix=args.id_prefix,
                verbalize_numbers=not args.keep_digits,
            )
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {n} utterances to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
