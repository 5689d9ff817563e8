"""Text from token ids with tokens.txt alone, for models that ship without a sentencepiece model.

Models imported from sherpa-onnx (`parley import-sherpa`, server/sherpa_import.py) come with tokens.txt only. This
table writes their text as sherpa-onnx does: the pieces concatenated, the word marker "▁" read as a space, byte
pieces (`<0xE4>`) joined into UTF-8. It offers the few `SentencePieceProcessor` methods the runtime calls
(`decode`, `encode`, `unk_id`, `get_piece_size`, `id_to_piece`), so a head holds one or the other.

    table = TokenTable(["<blk>", "▁he", "llo"])
    table.decode([1, 2])    # "hello"
    table.encode("hello")   # [1, 2]
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from parley.contract import UNK, WORD_START

_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


class TokenTable:
    """The pieces of tokens.txt, by id."""

    def __init__(self, pieces: Sequence[str]) -> None:
        self.pieces = list(pieces)
        self._ids = {p: i for i, p in enumerate(self.pieces)}
        self._longest = max((len(p) for p in self.pieces), default=1)

    def get_piece_size(self) -> int:
        return len(self.pieces)

    def id_to_piece(self, i: int) -> str:
        return self.pieces[i]

    def unk_id(self) -> int:
        """The id of `<unk>`, or -1 when the table has none."""
        return self._ids.get(UNK, -1)

    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids`: pieces joined, "▁" as a space, byte pieces as UTF-8; outer white space removed."""
        out = bytearray()
        for i in ids:
            piece = self.pieces[int(i)]
            byte = _BYTE_PIECE.match(piece)
            out += bytes([int(byte.group(1), 16)]) if byte else piece.replace(WORD_START, " ").encode("utf-8")
        return out.decode("utf-8", errors="replace").strip()

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` by greedy longest match, word by word (a word's first piece carries "▁" when the table
        has such a piece): what hotwords need, not necessarily the tokenization the model was trained on. Letters are
        matched as given: server/biasing.py's `hotword_text` writes a hotword in the table's case first.

        Raises:
            ValueError: a character that no piece covers.
        """
        ids: list[int] = []
        for word in text.split():
            rest = WORD_START + word
            while rest:
                match = next(
                    (rest[:n] for n in range(min(len(rest), self._longest), 0, -1) if rest[:n] in self._ids), None
                )
                if match is None:
                    if rest[0] == WORD_START:  # character-based tables (CJK) have no word marker
                        rest = rest[1:]
                        continue
                    raise ValueError(f"no token covers {rest[0]!r}")
                ids.append(self._ids[match])
                rest = rest[len(match) :]
        return ids
