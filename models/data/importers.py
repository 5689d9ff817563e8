"""Corpus importers: real recordings with transcripts turned into Parley manifests (see `models.data.manifest`).

Three layouts are read:

- LibriSpeech: ``<root>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` with lines ``<utt-id> <TEXT>``
  and the audio ``<utt-id>.flac`` (or ``.wav``) beside it. Any folder above the speakers works as the root, so
  ``LibriSpeech/`` imports every subset found below it.
- The Asterisk voice prompts installed from Debian packages (`models.data.asterisk`): ``asterisk --out DIR``.
- A plain JSONL file, one ``{"audio": ..., "text": ...}`` object per line, optionally with ``language``,
  ``translations``, ``id``, ``duration`` and ``voice``; relative audio paths are read from the JSONL file's
  folder.

Texts are normalized (`parley.textnorm`), durations read from the audio headers, and the manifest written with
audio paths relative to its folder where they lie below it. Example::

    python -m models.data.importers librispeech /data/LibriSpeech/dev-clean data/librispeech/dev-clean.jsonl
    python -m models.data.importers jsonl my-recordings/list.jsonl data/mine/train.jsonl --language de
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
from parley.textnorm import normalize_text

# Audio extensions looked for beside a LibriSpeech transcript, in order of preference.
LIBRISPEECH_AUDIO_EXTS = (".flac", ".wav")

# How many skipped utterances a warning lists by name before it only counts them.
_MAX_LISTED = 5


@dataclass
class _Entry:
    """One utterance found in a corpus listing, before its audio has been looked at."""

    id: str
    audio: Path
    text: str
    voice: str
    where: str  # "file:line", for messages


def _audio_duration(path: Path) -> float:
    """Duration in seconds from the audio header; raises RuntimeError (soundfile's) when unreadable."""
    return float(soundfile.info(str(path)).duration)


def _warn_skipped(skipped: list[str], total: int) -> None:
    if not skipped:
        return
    listed = "\n  ".join(skipped[:_MAX_LISTED])
    more = f"\n  ... and {len(skipped) - _MAX_LISTED} more" if len(skipped) > _MAX_LISTED else ""
    print(f"warning: skipped {len(skipped)} of {total} utterances:\n  {listed}{more}", file=sys.stderr)


def _find_audio(folder: Path, utt_id: str) -> Path:
    """The utterance's audio beside its transcript; the first candidate's path when none exists."""
    candidates = [(folder / (utt_id + ext)).resolve() for ext in LIBRISPEECH_AUDIO_EXTS]
    return next((p for p in candidates if p.is_file()), candidates[0])


def _librispeech_entries(root: Path) -> list[_Entry]:
    transcripts = sorted(root.rglob("*.trans.txt"))
    if not transcripts:
        raise ValueError(f"no LibriSpeech transcripts (*.trans.txt) found below {root}")
    entries: dict[str, _Entry] = {}
    for trans in transcripts:
        speaker = trans.name.split("-", 1)[0]
        with open(trans, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                utt_id, _, text = line.strip().partition(" ")
                where = f"{trans}:{lineno}"
                if utt_id in entries:
                    raise ValueError(f"{where}: utterance id {utt_id!r} already listed at {entries[utt_id].where}")
                audio = _find_audio(trans.parent, utt_id)
                entries[utt_id] = _Entry(utt_id, audio, text, speaker, where)
    return [entries[k] for k in sorted(entries)]


def import_librispeech(
    root: str | os.PathLike, out_manifest: str | os.PathLike, language: str = "en", *, progress: bool = True
) -> int:
    """Imports a LibriSpeech-layout folder into a manifest sorted by utterance id.

    Utterances whose audio is missing or unreadable are skipped with a warning on stderr.

    Args:
        root: a folder with ``<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` somewhere below it.
        out_manifest: the JSONL manifest to write.
        language: the language tag of every utterance.
        progress: show a progress bar on stderr.

    Returns:
        The number of utterances written.

    Raises:
        FileNotFoundError: `root` is not a folder.
        ValueError: no transcripts, a duplicated utterance id, or nothing importable.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"LibriSpeech root {root} is not a folder")
    entries = _librispeech_entries(root)
    utterances: list[Utterance] = []
    skipped: list[str] = []
    for e in tqdm(entries, desc=f"import {root.name}", unit="utt", disable=not progress):
        if not e.audio.is_file():
            exts = " or ".join(LIBRISPEECH_AUDIO_EXTS)
            skipped.append(f"{e.where}: no audio {e.audio.parent / e.id} ({exts})")
            continue
        try:
            duration = _audio_duration(e.audio)
        except RuntimeError as err:  # soundfile.LibsndfileError
            skipped.append(f"{e.where}: unreadable audio {e.audio}: {err}")
            continue
        utterances.append(
            Utterance(
                id=e.id,
                audio=str(e.audio),
                duration=duration,
                language=language,
                text=normalize_text(e.text, language),
                voice=e.voice,
            )
        )
    _warn_skipped(skipped, len(entries))
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


def _assign_ids(listed: list[_Listed]) -> list[str]:
    """Given ids kept as they are (must be unique); the others the audio file's stem, suffixed -2, -3, ..."""
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
        ids.append(uid)
    return ids


def import_jsonl(
    src: str | os.PathLike,
    out_manifest: str | os.PathLike,
    default_language: str = "en",
    *,
    progress: bool = True,
) -> int:
    """Imports a plain JSONL listing of recordings into a manifest, in the listing's order.

    Each line is ``{"audio": path, "text": str}`` with optional ``language`` (else `default_language`),
    ``translations`` ({language: text}), ``id`` (else the audio file's stem, de-duplicated), ``duration``
    (else read from the audio header) and ``voice``. Texts and translations are normalized for their own
    languages. Unlike the LibriSpeech importer nothing is skipped: the listing is the user's own, so every
    problem is an error.

    Returns:
        The number of utterances written.

    Raises:
        FileNotFoundError: `src` does not exist.
        ValueError: a line is not a JSON object, lacks or mistypes a field, repeats an id, or names missing or
            unreadable audio; the message names the file and line.
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
    ids = _assign_ids(listed)
    utterances = []
    for r, uid in tqdm(
        list(zip(listed, ids, strict=True)), desc=f"import {src.name}", unit="utt", disable=not progress
    ):
        try:
            # Read even when the duration is given: it is also the check that the audio is readable.
            duration = _audio_duration(r.audio)
        except RuntimeError as e:  # soundfile.LibsndfileError
            raise ValueError(f"{r.where}: unreadable audio {r.audio}: {e}") from e
        utterances.append(
            Utterance(
                id=uid,
                audio=str(r.audio),
                duration=r.duration or duration,
                language=r.language,
                text=normalize_text(r.text, r.language),
                translations={lang: normalize_text(t, lang) for lang, t in sorted(r.translations.items())},
                voice=r.voice,
            )
        )
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
    for p in (lib, jsl):
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ast = sub.add_parser("asterisk", help="the Asterisk voice prompts (Debian asterisk-core-sounds-<lang>-wav)")
    asterisk.add_arguments(ast)
    args = parser.parse_args(argv)
    if args.format == "asterisk":
        return asterisk.run(args)
    try:
        if args.format == "librispeech":
            n = import_librispeech(args.root, args.out, args.language, progress=not args.no_progress)
        else:
            n = import_jsonl(args.src, args.out, args.language, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {n} utterances to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
