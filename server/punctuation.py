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
        """Loads the ONNX model, its sentencepiece model and its card (punct.json: marks, cases, mixed-case forms)."""
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        info = json.loads(Path(card).read_text())
        return cls(
            session=session,
            sp=spm.SentencePieceProcessor(model_file=str(tokenizer)),
            language=info["language"],
            marks=tuple(info["marks"]),
            cases=tuple(info["cases"]),
            mixed=dict(info.get("mixed", {})),
            max_len=int(info["config"]["max_len"]),
        )

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
