"""Asterisk voice prompts: real human speech with transcripts, parallel across en, es, fr and it.

The Debian packages ``asterisk-core-sounds-{en,es,fr,it}-wav`` hold the prompts of the Asterisk telephone server,
read by one professional speaker per language (8 kHz, 16-bit WAV) under
``/usr/share/asterisk/sounds/<voice>/`` (``en_US_f_Allison``, ``es_MX_f_Allison``, ``fr_CA_f_June``,
``it_IT_m_Carlo``; any other ``<lang>_*`` folder there, such as ``it_IT_f_Menardi``, is read too). The transcripts
are in the doc-only packages ``asterisk-core-sounds-{en,es,fr,it}``: ``core-sounds-<lang>.txt.gz``, lines
``<key>: <text>`` where the key is the prompt's path without ``.wav`` (``agent-pass``, ``dictate/pause``). The same
keys across languages make the prompts parallel: each utterance carries the other languages' texts of its key as
translations.

Kept: prompts with a transcript that can be scored as it stands, the single words of ``digits/`` (``Tuesday``,
``tenth``) and ``phonetic/`` (``alpha``) included. Skipped, and counted by reason: the number files of ``digits/``
(``digits/21``: pieces Asterisk concatenates to read numbers, some cut short, as Italian's "vent-" of "ventuno"),
``letters/`` (spelled letters and symbol names) and ``silence/``; prompts with no transcript; transcripts with an
annotation in brackets or parentheses (``[this is a simple beep tone]``, ``Il [suo] messaggio...``: what is said
is not certain); transcripts with a symbol that is spoken but not written out (``press * to toggle pause``); and
transcripts still holding digits once numbers are written out as words (`models.data.verbalize`, before the text is
normalized by `parley.textnorm`).

Each language gets a ``test`` and a ``train`` manifest (`models.data.manifest`), split by a hash of the prompt key
alone, so a prompt is in the same split in every language, every voice and every import. Some prompts share a text
(``invalid`` and ``pbx-invalid``); a train prompt whose text is also in that language's test split is dropped, so no
sentence is in both. The test split (about half) is for measuring; only ``train`` may be trained on. Audio stays
where the packages put it (absolute paths).
Example::

    apt-get download asterisk-core-sounds-en && dpkg-deb -x asterisk-core-sounds-en_*.deb /tmp/asterisk-text
    parley corpus import asterisk --out data/asterisk --languages en,es,fr,it --transcripts /tmp/asterisk-text

writes ``data/asterisk/<lang>/{train,test}.jsonl`` and ``data/asterisk/asterisk.json`` (counts, skipped prompts).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import soundfile

from models.data.manifest import Utterance, write_manifest
from models.data.verbalize import verbalize
from parley.textnorm import normalize_text

LANGUAGES = ("en", "es", "fr", "it")
# Where asterisk-core-sounds-<lang>-wav installs the voices, one folder per voice.
SOUNDS_ROOT = Path("/usr/share/asterisk/sounds")
# Where asterisk-core-sounds-<lang> installs core-sounds-<lang>.txt.gz.
TRANSCRIPTS_ROOT = Path("/usr/share/doc")
SPLITS = ("train", "test")

# Reasons a prompt is skipped, as counted in the report.
SKIP_NUMBER = "number fragment (digits/<number>)"
SKIP_LETTER = "spelled letter or symbol (letters/)"
SKIP_SILENCE = "silence (silence/)"
SKIP_NO_TRANSCRIPT = "no transcript"
SKIP_CONFLICT = "conflicting transcripts for one key"
SKIP_ANNOTATED = "annotated transcript ([...] or (...))"
SKIP_SYMBOL = "spoken symbol not written out (* # @ ...)"
SKIP_DIGITS = "digits not written out"
SKIP_UNREADABLE = "unreadable audio"
SKIP_IN_TEST = "train prompt with the text of a test prompt"

_ANNOTATION = re.compile(r"[\[\]()]")
# Symbols a speaker reads aloud ("star", "pound") that text normalization would silently drop.
_SPOKEN_SYMBOLS = re.compile(r"[*#@$%&+=/<>|~^]")
_KEY = re.compile(r"^[A-Za-z0-9_.\-/]+$")


@dataclass
class ImportReport:
    """What `import_asterisk` wrote and skipped."""

    transcripts: dict[str, str]  # language -> transcript file read
    voices: dict[str, list[str]]  # language -> voice folders read
    counts: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # lang -> split -> clips, seconds
    skipped: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # lang -> reason -> ids

    def to_dict(self) -> dict:
        return {
            "transcripts": self.transcripts,
            "voices": self.voices,
            "counts": self.counts,
            "skipped": {lang: {r: sorted(ids) for r, ids in by.items()} for lang, by in self.skipped.items()},
        }


def find_transcript(language: str, root: str | os.PathLike = TRANSCRIPTS_ROOT) -> Path:
    """The ``core-sounds-<language>.txt[.gz]`` file below `root`: an installed ``/usr/share/doc``, a folder the
    package was unpacked into with ``dpkg-deb -x``, or a folder holding the file itself.

    Raises:
        FileNotFoundError: none of the places looked at holds it; the message says how to get it.
    """
    root = Path(root)
    doc = Path("usr/share/doc") / f"asterisk-core-sounds-{language}"
    for folder in (root, root / f"asterisk-core-sounds-{language}", root / doc):
        for name in (f"core-sounds-{language}.txt.gz", f"core-sounds-{language}.txt"):
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(
        f"no core-sounds-{language}.txt.gz below {root}: install asterisk-core-sounds-{language}, or run "
        f"`apt-get download asterisk-core-sounds-{language} && dpkg-deb -x asterisk-core-sounds-{language}_*.deb DIR` "
        "and pass --transcripts DIR"
    )


def read_transcripts(path: str | os.PathLike) -> dict[str, str | None]:
    """Reads ``<key>: <text>`` lines (``;`` comments and blank lines ignored) into {key: raw text}.

    A key listed twice with different texts maps to None (the es file gives ``digits/0`` both "cero" and "diez").

    Raises:
        ValueError: a line is not ``<key>: <text>``; the message names the file and line.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    texts: dict[str, str | None] = {}
    with opener(path, "rt", encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith(";"):
                continue
            key, colon, text = line.partition(":")
            key, text = key.strip(), text.strip()
            if not colon or not _KEY.match(key):
                raise ValueError(f"{path}:{lineno}: expected '<key>: <text>', got {line[:80]!r}")
            if key in texts and texts[key] != text:
                texts[key] = None
            else:
                texts[key] = text
    return texts


def split_of(key: str) -> str:
    """``test`` or ``train`` for a prompt key: the first bit of its SHA-256, so about half each, forever."""
    return "test" if hashlib.sha256(key.encode("utf-8")).digest()[0] < 128 else "train"


def _usable_text(raw: str | None, language: str) -> tuple[str | None, str | None]:
    """(normalized text, None) when the transcript can be scored as it stands, else (None, skip reason)."""
    if raw is None:
        return None, SKIP_CONFLICT
    if _ANNOTATION.search(raw):
        return None, SKIP_ANNOTATED
    if _SPOKEN_SYMBOLS.search(raw):
        return None, SKIP_SYMBOL
    if any(c.isdigit() for c in raw):
        raw = verbalize(raw, language)
        if any(c.isdigit() for c in raw):  # a number the verbalizer could not read
            return None, SKIP_DIGITS
    text = normalize_text(raw, language)
    return (text, None) if text else (None, SKIP_NO_TRANSCRIPT)


def _fragment(key: str) -> str | None:
    """The skip reason of a prompt that is a piece for Asterisk to concatenate, or silence; None for others."""
    folder, _, name = key.rpartition("/")
    if folder == "digits" and name[:1].isdigit():
        return SKIP_NUMBER
    return {"letters": SKIP_LETTER, "silence": SKIP_SILENCE}.get(folder)


def voice_folders(language: str, sounds_root: str | os.PathLike = SOUNDS_ROOT) -> list[Path]:
    """The voice folders of `language` below `sounds_root` (``en_US_f_Allison`` for en), sorted."""
    root = Path(sounds_root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob(f"{language}_*") if p.is_dir() and not p.is_symlink())


def _prompt_keys(voice: Path) -> list[str]:
    return sorted(p.relative_to(voice).with_suffix("").as_posix() for p in voice.rglob("*.wav"))


def import_asterisk(
    out_dir: str | os.PathLike,
    languages: Sequence[str] = LANGUAGES,
    *,
    sounds_root: str | os.PathLike = SOUNDS_ROOT,
    transcripts_root: str | os.PathLike = TRANSCRIPTS_ROOT,
) -> ImportReport:
    """Writes ``<out_dir>/<lang>/{train,test}.jsonl`` and ``<out_dir>/asterisk.json`` for each language.

    Args:
        out_dir: folder to write the manifests and the report into.
        languages: language tags; each needs a voice folder and a transcript.
        sounds_root: folder holding the voice folders.
        transcripts_root: folder below which ``core-sounds-<lang>.txt.gz`` is looked for (see `find_transcript`).

    Returns:
        Counts per language and split, and the skipped prompts by reason.

    Raises:
        FileNotFoundError: a language has no voice folder or no transcript.
        ValueError: an unknown language, a malformed transcript, or nothing importable in a language.
    """
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown or not languages:
        raise ValueError(f"languages must be some of {', '.join(LANGUAGES)}, got {list(languages)}")
    voices = {lang: voice_folders(lang, sounds_root) for lang in languages}
    for lang, found in voices.items():
        if not found:
            raise FileNotFoundError(
                f"no {lang}_* voice folder in {sounds_root}: install asterisk-core-sounds-{lang}-wav"
            )
    paths = {lang: find_transcript(lang, transcripts_root) for lang in languages}
    transcripts = {lang: read_transcripts(p) for lang, p in paths.items()}
    usable = {lang: {k: _usable_text(t, lang) for k, t in texts.items()} for lang, texts in transcripts.items()}

    report = ImportReport(
        transcripts={lang: str(p) for lang, p in paths.items()},
        voices={lang: [v.name for v in vs] for lang, vs in voices.items()},
    )
    out_dir = Path(out_dir)
    for lang in languages:
        by_split: dict[str, list[Utterance]] = {s: [] for s in SPLITS}
        skipped: dict[str, list[str]] = {}
        for voice in voices[lang]:
            for key in _prompt_keys(voice):
                uid = f"{voice.name}/{key}"
                text, reason = usable[lang].get(key, (None, SKIP_NO_TRANSCRIPT))
                if fragment := _fragment(key):
                    text, reason = None, fragment
                audio = (voice / f"{key}.wav").resolve()
                if text is not None:
                    try:
                        duration = float(soundfile.info(str(audio)).duration)
                    except RuntimeError:  # soundfile.LibsndfileError
                        text, reason = None, SKIP_UNREADABLE
                if text is None:
                    skipped.setdefault(reason, []).append(uid)
                    continue
                translations = {
                    other: usable[other][key][0]
                    for other in languages
                    if other != lang and usable[other].get(key, (None,))[0]
                }
                by_split[split_of(key)].append(
                    Utterance(
                        id=uid,
                        audio=str(audio),
                        duration=duration,
                        language=lang,
                        text=text,
                        translations=translations,
                        voice=f"asterisk:{voice.name}",
                    )
                )
        test_texts = {u.text for u in by_split["test"]}
        if leaked := [u.id for u in by_split["train"] if u.text in test_texts]:
            skipped[SKIP_IN_TEST] = leaked
            by_split["train"] = [u for u in by_split["train"] if u.text not in test_texts]
        if not any(by_split.values()):
            raise ValueError(f"nothing imported for {lang}: every prompt was skipped ({_reasons(skipped)})")
        report.counts[lang] = {}
        for split, utts in by_split.items():
            write_manifest(out_dir / lang / f"{split}.jsonl", utts)
            report.counts[lang][split] = {"clips": len(utts), "seconds": round(sum(u.duration for u in utts), 1)}
        report.skipped[lang] = skipped
    (out_dir / "asterisk.json").write_text(json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n")
    return report


def _reasons(skipped: dict[str, list[str]]) -> str:
    return ", ".join(f"{len(ids)} {reason}" for reason, ids in sorted(skipped.items())) or "none"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command line's flags, shared by ``parley corpus import asterisk`` and ``python -m models.data.asterisk``."""
    parser.add_argument("--out", type=Path, required=True, help="folder for <lang>/{train,test}.jsonl")
    parser.add_argument(
        "--languages",
        default=",".join(LANGUAGES),
        help="comma-separated languages to import (default: %(default)s)",
    )
    parser.add_argument(
        "--sounds", type=Path, default=SOUNDS_ROOT, help="folder of the voice folders (default: %(default)s)"
    )
    parser.add_argument(
        "--transcripts",
        type=Path,
        default=TRANSCRIPTS_ROOT,
        help="folder below which core-sounds-<lang>.txt.gz lies: /usr/share/doc once asterisk-core-sounds-<lang> "
        "is installed, or where its .deb was unpacked with dpkg-deb -x (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Runs an import from parsed `add_arguments` flags, prints the counts; returns the exit status."""
    languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
    try:
        report = import_asterisk(args.out, languages, sounds_root=args.sounds, transcripts_root=args.transcripts)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{'lang':<5} {'split':<6} {'clips':>6} {'seconds':>8}")
    for lang, by_split in report.counts.items():
        for split, c in by_split.items():
            print(f"{lang:<5} {split:<6} {c['clips']:>6} {c['seconds']:>8.1f}")
    for lang, skipped in report.skipped.items():
        print(f"{lang}: skipped {sum(map(len, skipped.values()))}: {_reasons(skipped)}")
    print(f"wrote {args.out}/<lang>/{{train,test}}.jsonl and {args.out / 'asterisk.json'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models.data.asterisk", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
