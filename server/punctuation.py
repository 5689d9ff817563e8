"""Punctuation and casing of finals: a bundle's `punct-<lang>.*` model (models/train/punct.py) run on a final's words.

    p = load_bundle(Path("bundles/en-open")).punctuators["en"]
    p.punctuate(["hello", "how", "are", "you"])   # -> "Hello, how are you?"

The model reads the recognized words (lowercase, no marks) as sentencepiece pieces and predicts, for each word, the
mark after it (none , . ?) from its last piece and its case (lower, Capitalized, UPPER, MiXed) from its first piece.
Mixed case is written from the forms seen in training ("iPhone"), else Capitalized. The first word of a final and
every word after "." or "?" is capitalized whatever the model says (a final begins a sentence: it follows a pause).
Chinese is punctuated per character with full-width marks and no spaces. Finals longer than the model's window are
cut into windows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import sentencepiece as spm

_FULL_WIDTH = {",": "，", ".": "。", "?": "？"}


@dataclass
class Punctuator:
    session: ort.InferenceSession
    sp: spm.SentencePieceProcessor
    language: str
    marks: tuple[str, ...]
    cases: tuple[str, ...]
    mixed: dict[str, str]
    max_len: int

    @classmethod
    def load(cls, model: Path, tokenizer: Path, card: Path, threads: int = 1) -> Punctuator:
        """Loads the ONNX model, its sentencepiece model and its card (punct.json: marks, cases, mixed-case forms).

        Raises:
            ValueError: a file that cannot be read, or that disagrees with the others; the message starts with it.
        """
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for corrupt or unsupported files
            raise ValueError(f"{Path(model).name}: onnxruntime cannot load it: {_first_line(e)}") from e
        return cls.from_session(session, tokenizer, card)

    @classmethod
    def from_session(cls, session: ort.InferenceSession, tokenizer: Path, card: Path) -> Punctuator:
        """A punctuator on an opened model (server/bundle.py opens it as it opens every session), checked against
        its tokenizer and card: the card's marks and cases must be as many as the model's outputs are wide, and its
        window (`config.max_len`) at least 2 tokens.

        Raises:
            ValueError: as `load`.
        """
        info = _read_card(Path(card))
        try:
            sp = spm.SentencePieceProcessor(model_file=str(tokenizer))
        except (RuntimeError, OSError) as e:
            raise ValueError(f"{Path(tokenizer).name}: sentencepiece cannot load it: {e}") from None
        p = cls(session=session, sp=sp, **info)
        p._check_model(Path(card).name)
        return p

    def _check_model(self, card: str) -> None:
        """The model's graph against the card: input `tokens (1, N)`, outputs `marks (1, N, len(marks))` and
        `cases (1, N, len(cases))`; dynamic widths are measured on one token."""
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = self.session.get_outputs()
        if inputs != ["tokens"] or len(outputs) != 2:
            raise ValueError(
                f"{card}: its model takes {inputs} and gives {len(outputs)} outputs, not a punctuation model"
            )
        widths = [o.shape[-1] if len(o.shape) == 3 else None for o in outputs]
        if not all(isinstance(w, int) for w in widths):
            try:
                probe = self.session.run(None, {"tokens": np.asarray([[self.sp.unk_id()]], dtype=np.int64)})
            except Exception as e:  # onnxruntime's own exception types
                raise ValueError(f"{card}: its model fails on one token: {_first_line(e)}") from e
            widths = [x.shape[-1] if x.ndim == 3 else None for x in probe]
        for key, labels, width in (("marks", self.marks, widths[0]), ("cases", self.cases, widths[1])):
            if width != len(labels):
                raise ValueError(f"{card}: {len(labels)} {key}, but the model's {key} output is {width} wide")
        trained = self.session.get_modelmeta().custom_metadata_map.get("max_len", "")
        if trained.isdigit() and self.max_len > int(trained):
            raise ValueError(f"{card}: config.max_len {self.max_len}, but the model's window is {trained} tokens")

    @classmethod
    def from_folder(cls, folder: Path, threads: int = 1) -> Punctuator:
        """A model as `parley punct train` writes it: punct.int8.onnx, bpe.model, punct.json in `folder`."""
        for name in ("punct.int8.onnx", "bpe.model", "punct.json"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"punctuation model {folder}: missing {name}")
        return cls.load(folder / "punct.int8.onnx", folder / "bpe.model", folder / "punct.json", threads)

    def labels(self, words: Sequence[str]) -> tuple[list[int], list[int]]:
        """Per word: the index of the mark after it and of its case."""
        ids: list[int] = []
        first: list[int] = []
        last: list[int] = []
        for w in words:
            p = self.sp.encode(w) or [self.sp.unk_id()]
            first.append(len(ids))
            ids += p
            last.append(len(ids) - 1)
        mark_logits = np.zeros((len(ids), len(self.marks)), dtype=np.float32)
        case_logits = np.zeros((len(ids), len(self.cases)), dtype=np.float32)
        step = self.max_len // 2
        start = 0
        while start < len(ids):  # windows of max_len overlapping by half: each piece keeps the most central view
            end = min(len(ids), start + self.max_len)
            m, c = self.session.run(None, {"tokens": np.asarray([ids[start:end]], dtype=np.int64)})
            keep = slice(0 if start == 0 else step // 2, None)
            mark_logits[start:end][keep] = m[0][keep]
            case_logits[start:end][keep] = c[0][keep]
            if end == len(ids):
                break
            start += step
        marks = [int(mark_logits[i].argmax()) for i in last]
        cases = [int(case_logits[i].argmax()) for i in first]
        return marks, cases

    def punctuate(self, words: Sequence[str]) -> str:
        """The display text of a final's words."""
        words = [w for w in words if w]
        if not words:
            return ""
        marks, cases = self.labels(words)
        if self.language == "zh":
            return "".join(w + _FULL_WIDTH.get(self.marks[m], "") for w, m in zip(words, marks, strict=True))
        out = []
        starts = True  # a final begins a sentence, and so does the word after "." or "?"
        for w, m, c in zip(words, marks, cases, strict=True):
            case = "capitalized" if starts and self.cases[c] == "lower" else self.cases[c]
            out.append(self._cased(w, case) + self.marks[m])
            starts = self.marks[m] in (".", "?")
        return " ".join(out)

    def punctuate_text(self, text: str) -> str:
        """The display text of a final's text: its words (Chinese: its characters) punctuated and cased."""
        return self.punctuate(list(text.replace(" ", "")) if self.language == "zh" else text.split())

    def _cased(self, word: str, case: str) -> str:
        if case == "capitalized":
            return word[:1].upper() + word[1:]
        if case == "upper":
            return word.upper()
        if case == "mixed":
            return self.mixed.get(word, word[:1].upper() + word[1:])
        return word


def _read_card(path: Path) -> dict:
    """A punctuation card's fields `Punctuator` takes, type-checked.

    Raises:
        ValueError: not a JSON object, or a field missing or of the wrong type; the message starts with the file.
    """
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path.name}: not a readable JSON file ({str(e)[:200]})") from None
    config = info.get("config") if isinstance(info, dict) else None
    if not isinstance(config, dict):
        raise ValueError(f"{path.name}: not a punctuation card (a JSON object with language, marks, cases, config)")
    language, marks, cases, mixed = (info.get(k) for k in ("language", "marks", "cases", "mixed"))
    max_len = config.get("max_len")
    if not isinstance(language, str) or not language:
        raise ValueError(f"{path.name}: language {language!r}, expected a language code")
    for key, labels in (("marks", marks), ("cases", cases)):
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise ValueError(f"{path.name}: {key} must be a list of strings")
    if mixed is not None and (not isinstance(mixed, dict) or not all(isinstance(v, str) for v in mixed.values())):
        raise ValueError(f"{path.name}: mixed must map words to their written forms")
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 2:
        raise ValueError(f"{path.name}: config.max_len {max_len!r}, expected a window of at least 2 tokens")
    return {
        "language": language,
        "marks": tuple(marks),
        "cases": tuple(cases),
        "mixed": dict(mixed or {}),
        "max_len": max_len,
    }


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:300]
