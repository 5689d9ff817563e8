"""Corpus manifests: one JSON object per line, one line per utterance.

Every corpus Parley trains on, synthetic or imported, is a manifest of this shape::

    {"id": "train-000042", "audio": "audio/train/000042.wav", "duration": 2.71, "language": "en",
     "text": "set a timer for ten minutes",
     "translations": {"de": "stell einen timer auf zehn minuten", ...},
     "voice": "en+m3/p55/r170/g1",
     "words": [{"word": "set", "start": 0.08, "end": 0.27}, ...]}

Open-domain corpora (models.data.opencorpus) add where the text came from and what was done to the audio: `display`
(the sentence as written, for punctuation and casing), `source`, `document`, `license`, `engine` and `augment`
(the effects applied, models.data.augment). These are written only when set, so older manifests read and write the same.

`audio` is stored relative to the manifest's folder when it lies below it, so a corpus folder can be moved;
`read_manifest` hands it back as an absolute path, and `load_audio` reads it as every model hears it (mono, 16 kHz).
`words` is empty when no timings are known (imported corpora).
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from parley.features import SAMPLE_RATE
from parley.resample import resample
from parley.textnorm import normalize_keeping_channel_changes, normalize_text


@dataclass
class Word:
    """One word with its time span in seconds from the start of the utterance."""

    word: str
    start: float
    end: float


@dataclass
class Utterance:
    """One manifest line. See the module docstring for the fields."""

    id: str
    audio: str
    duration: float
    language: str
    text: str
    translations: dict[str, str] = field(default_factory=dict)
    voice: str = ""
    words: list[Word] = field(default_factory=list)
    display: str = ""
    source: str = ""
    document: str = ""
    license: str = ""
    engine: str = ""
    augment: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict) -> Utterance:
        missing = [k for k in ("id", "audio", "duration", "language", "text") if k not in d]
        if missing:
            raise ValueError(f"manifest line lacks {missing}: {str(d)[:200]}")
        return cls(
            id=str(d["id"]),
            audio=str(d["audio"]),
            duration=float(d["duration"]),
            language=str(d["language"]),
            text=str(d["text"]),
            translations={str(k): str(v) for k, v in (d.get("translations") or {}).items()},
            voice=str(d.get("voice") or ""),
            words=[Word(str(w["word"]), float(w["start"]), float(w["end"])) for w in d.get("words") or []],
            **{k: str(d[k]) for k in _OPTIONAL if d.get(k)},
            augment=[str(a) for a in d.get("augment") or []],
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["duration"] = round(self.duration, 4)
        d["words"] = [{"word": w.word, "start": round(w.start, 4), "end": round(w.end, 4)} for w in self.words]
        for k in (*_OPTIONAL, "augment"):
            if not d[k]:
                del d[k]
        return d


_OPTIONAL = ("display", "source", "document", "license", "engine")  # string fields written only when set


def iter_manifest(path: str | os.PathLike) -> Iterator[Utterance]:
    """Yields the utterances of a JSONL manifest with `audio` made absolute.

    Raises:
        ValueError: a line is not JSON or lacks a required field; the message names the file and line.
    """
    for _, utt in _numbered(path):
        yield utt


def _numbered(path: str | os.PathLike) -> Iterator[tuple[int, Utterance]]:
    """`iter_manifest` with each utterance's line number (from 1; blank lines are skipped but counted)."""
    path = Path(path)
    root = path.resolve().parent
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                utt = Utterance.from_dict(json.loads(line))
            except (json.JSONDecodeError, ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{lineno}: bad manifest line: {e}") from e
            if not os.path.isabs(utt.audio):
                utt.audio = str(root / utt.audio)
            yield lineno, utt


def read_manifest(path: str | os.PathLike) -> list[Utterance]:
    """Reads a whole JSONL manifest; see `iter_manifest`."""
    return list(iter_manifest(path))


def write_manifest(path: str | os.PathLike, utterances: Iterable[Utterance]) -> int:
    """Writes utterances as JSONL (atomically: a temporary file of this process renamed into place, so processes
    writing the same manifest at once, as two `make` runs that need the same `parley corpus head`, each leave a
    whole file).

    An utterance's relative audio path is relative to the working directory (as `open` reads it; the corpus
    builders make such paths from their `--out`). Audio below the manifest's folder is stored relative to that
    folder, other audio as an absolute path, so the manifest reads the same from anywhere. Returns the number of
    lines written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = path.resolve().parent
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for utt in utterances:
            d = utt.to_dict()
            audio = Path(os.path.abspath(utt.audio))
            real = audio.resolve()
            d["audio"] = str(real.relative_to(root) if real.is_relative_to(root) else audio)
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n


def read_training_manifests(
    train: Sequence[str | os.PathLike],
    dev: Sequence[str | os.PathLike],
    targets: Collection[str] = ("text",),
    unique_ids: bool = False,
) -> tuple[list[Utterance], list[Utterance]]:
    """Reads a training run's train and dev manifests, checking what training takes from them as written.

    - Every target text is in normalized form for its language (`parley.textnorm.normalize_text` leaves it as it
      is; t-SOT's " <cc> " marks allowed). Training encodes targets and scores dev against references as written,
      and the tokenizer was trained on normalized text: "Hello, World!" would train on unknown pieces and score a
      meaningless WER. Parley's builders and importers write normalized text; a hand-written manifest may not.
    - With `unique_ids` (a feature cache, which keys features by utterance id), one id never names two audio files.

    Args:
        train: the --train manifests.
        dev: the --dev manifests.
        targets: the texts the run trains and scores on: "text" (the captions) and language tags of `translations`.
        unique_ids: check the ids across all the manifests.

    Returns:
        The train and the dev utterances, each in the manifests' order.

    Raises:
        ValueError: a target text that is not normalized, or an id that names two audio files; the message names
            the manifest and line and says how to fix it.
    """
    seen: dict[str, tuple[str, str]] = {}  # id -> (audio, "manifest:line")
    out: tuple[list[Utterance], list[Utterance]] = ([], [])
    for paths, utts in zip((train, dev), out, strict=True):
        for path in paths:
            for lineno, u in _numbered(path):
                where = f"{path}:{lineno}"
                _check_normalized(u, targets, where)
                if unique_ids:
                    audio, first = seen.setdefault(u.id, (u.audio, where))
                    if audio != u.audio:
                        raise ValueError(
                            f"{where}: utterance id {u.id!r} is already used at {first} for other audio "
                            f"({audio}, here {u.audio}); the feature cache keys features by id, so one of them "
                            "would have none. Give the utterances unique ids: import each listing with "
                            "`parley corpus import jsonl ... --id-prefix NAME-`, or give every line an 'id'."
                        )
                utts.append(u)
    return out


def _check_normalized(u: Utterance, targets: Collection[str], where: str) -> None:
    for target in targets:
        if target == "text":
            text, language, normalized = u.text, u.language, normalize_keeping_channel_changes(u.text, u.language)
        elif target in u.translations:
            text, language = u.translations[target], target
            normalized = normalize_text(text, language)
        else:
            continue
        if text != normalized:
            what = "text" if target == "text" else f"{target!r} translation"
            raise ValueError(
                f"{where}: the {what} of utterance {u.id!r} is not normalized for {language!r}: {text!r} "
                f"(normalized: {normalized!r}). Training takes its targets as written, and the tokenizer knows "
                "normalized text only. Import recordings with `parley corpus import` (it normalizes), or write "
                "every text as parley.textnorm.normalize_text(text, language) returns it."
            )


def first_hours(utterances: Iterable[Utterance], hours: float) -> list[Utterance]:
    """The leading utterances of a manifest up to `hours` of audio, by the rule a corpus build stops by (the
    utterance that reaches the target is the last one kept; models/data/jobs.py `run_split`). A built corpus only
    appends when asked for more hours, so this is the train split that a build with `--hours hours` held: what a
    training stage that ran on part of a corpus read, recovered from the whole one.

    Raises:
        ValueError: `hours` is not > 0, or the utterances hold less audio than that.
    """
    if not hours > 0:
        raise ValueError(f"hours must be > 0, got {hours}")
    target, total, out = hours * 3600.0, 0.0, []
    for utt in utterances:
        out.append(utt)
        total += utt.duration
        if total >= target:
            return out
    raise ValueError(f"the manifest holds {total / 3600:.3f} h, fewer than the {hours:g} h asked for")


def load_audio(path: str) -> np.ndarray:
    """Reads a mono 16 kHz signal `(T,)` float32; other rates are resampled, channels averaged.

    Raises:
        RuntimeError: the file is missing, truncated or not audio; the message names it (soundfile's own error,
            raised from inside a data-loader worker, does not).
    """
    try:
        x, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as e:
        raise RuntimeError(f"cannot read audio {path}: {e}") from e
    x = x.mean(axis=1)
    return x if rate == SAMPLE_RATE else resample(x, rate, SAMPLE_RATE)
