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
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from parley.features import SAMPLE_RATE
from parley.resample import resample


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
            yield utt


def read_manifest(path: str | os.PathLike) -> list[Utterance]:
    """Reads a whole JSONL manifest; see `iter_manifest`."""
    return list(iter_manifest(path))


def write_manifest(path: str | os.PathLike, utterances: Iterable[Utterance]) -> int:
    """Writes utterances as JSONL (atomically: a temporary file of this process renamed into place, so processes
    writing the same manifest at once, as two `make` runs that need the same `parley corpus head`, each leave a
    whole file).

    Audio paths below the manifest's folder are stored relative to it. Returns the number of lines written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = path.resolve().parent
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for utt in utterances:
            d = utt.to_dict()
            audio = Path(utt.audio)
            if audio.is_absolute() and audio.resolve().is_relative_to(root):
                d["audio"] = str(audio.resolve().relative_to(root))
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n


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
    """Reads a mono 16 kHz signal `(T,)` float32; other rates are resampled, channels averaged."""
    x, rate = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    return x if rate == SAMPLE_RATE else resample(x, rate, SAMPLE_RATE)
