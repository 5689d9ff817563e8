"""SentencePiece tokenizers, one per output language, with the ids the transducer and sherpa-onnx expect.

Every tokenizer reserves the same three ids (icefall's layout, plus the t-SOT channel change):

    0 ``<blk>``  the transducer blank; never produced by `Tokenizer.encode`
    1 ``<cc>``   channel change in multi-talker (t-SOT) targets: ``"words of one <cc> words of another"``
    2 ``<unk>``  characters not seen in training

There are no bos/eos/pad pieces. A trained language lives in ``<out>/<lang>/bpe.model`` (icefall's and
sherpa-onnx's customary name, whatever the model type) beside ``<out>/<lang>/tokens.txt``, the
``<piece> <id>`` list sherpa-onnx reads. Texts are expected in normalized form (`parley.textnorm`); the
command line normalizes what it reads. Chinese is trained without the leading "▁" word marker, since its text
has no spaces, and with pieces of at most `MAX_PIECE_CHARS_ZH` characters. Example::

    parley tokenizer --grammar 50000 --vocab-size 256 zh=600 --out data/lang
    parley tokenizer --manifest data/corpus/en/train.jsonl --languages en --out data/lang
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

from models.data.manifest import iter_manifest
from parley.contract import BLANK, BLANK_ID, CHANNEL_CHANGE, CHANNEL_CHANGE_ID, RESERVED_PIECES, UNK, UNK_ID
from parley.textnorm import is_chinese, normalize_text

MODEL_NAME = "bpe.model"
TOKENS_NAME = "tokens.txt"

# Vocabulary sizes when none is given: space-delimited languages need few pieces for short captions; Chinese
# needs one per common character.
DEFAULT_VOCAB_SIZE = 256
DEFAULT_VOCAB_SIZE_ZH = 600

# Longest Chinese piece, in characters: most words are one to four characters, and without spaces to stop it
# sentencepiece would otherwise learn whole frequent phrases of a small caption corpus as single pieces.
MAX_PIECE_CHARS_ZH = 4

# Fixed so that training the same texts twice gives the same model (together with a single thread).
_SEED = 1234


def default_vocab_size(language: str) -> int:
    """The vocabulary size used for `language` when none is given."""
    return DEFAULT_VOCAB_SIZE_ZH if is_chinese(language) else DEFAULT_VOCAB_SIZE


def _train(texts: list[str], out_prefix: Path, vocab_size: int, language: str, model_type: str, hard: bool) -> None:
    chinese = is_chinese(language)
    spm.set_random_generator_seed(_SEED)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_prefix=str(out_prefix),
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        user_defined_symbols=[BLANK, CHANNEL_CHANGE],  # take the lowest free ids, 0 and 1, around unk_id=2
        unk_id=UNK_ID,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        unk_piece=UNK,
        add_dummy_prefix=not chinese,
        max_sentencepiece_length=MAX_PIECE_CHARS_ZH if chinese else 16,
        hard_vocab_limit=hard,
        num_threads=1,  # several threads split the EM statistics nondeterministically
        input_sentence_size=0,  # all sentences, no random sampling
        shuffle_input_sentence=False,
        minloglevel=2,  # errors only; sentencepiece's info log is long
    )


def train_tokenizer(
    texts: Iterable[str],
    out_prefix: str | os.PathLike,
    vocab_size: int,
    language: str,
    model_type: str = "unigram",
) -> Path:
    """Trains a SentencePiece model with Parley's reserved ids (see the module docstring), deterministically.

    When the texts cannot fill `vocab_size` pieces, the model is trained with as many as they support and a
    warning names the size reached.

    Args:
        texts: normalized training sentences; empty ones are ignored.
        out_prefix: path without extension; ``<out_prefix>.model`` is written (sentencepiece's ``.vocab``
            listing is removed: `write_tokens_txt` gives the ids, and the scores are in the model).
        vocab_size: V, the number of pieces including the three reserved ones.
        language: the texts' language tag; Chinese gets no "▁" word-start marker.
        model_type: "unigram", "bpe" or "char".

    Returns:
        The path of the ``.model`` file.

    Raises:
        ValueError: no text, or `vocab_size` too small for the distinct characters of the texts.
    """
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ValueError(f"no training text for the {language!r} tokenizer")
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    try:
        _train(texts, out_prefix, vocab_size, language, model_type, hard=True)
    except RuntimeError as e:
        if "Vocabulary size too high" in str(e):
            _train(texts, out_prefix, vocab_size, language, model_type, hard=False)
            reached = spm.SentencePieceProcessor(model_file=f"{out_prefix}.model").get_piece_size()
            print(
                f"warning: the {language!r} text ({len(texts)} sentences) supports only {reached} pieces; "
                f"trained with {reached} instead of {vocab_size}",
                file=sys.stderr,
            )
        elif "smaller than required_chars" in str(e):
            # sentencepiece says "... required_chars. <vocab_size> vs <characters + reserved pieces>."
            needed = re.search(r"(\d+) vs (\d+)", str(e))
            at_least = f" at least {needed.group(2)}" if needed else ""
            raise ValueError(
                f"vocab_size {vocab_size} is too small for the {language!r} tokenizer: every distinct "
                f"character of its text plus the reserved pieces need{at_least}"
            ) from e
        else:
            raise
    Path(f"{out_prefix}.vocab").unlink(missing_ok=True)
    return Path(f"{out_prefix}.model")


class Tokenizer:
    """A trained Parley SentencePiece model: text to token ids and back.

    `encode` treats the literal ``<cc>`` in a text as the channel change: each side is encoded on its own (so
    no stray "▁" piece sits next to it) and `cc_id` joins them. `decode` drops blanks and writes each channel
    change as `` <cc> ``, so ``decode(encode(t)) == t`` for normalized text with single-spaced ``<cc>`` marks;
    splitting t-SOT output into speakers is the caller's job, on the ids.
    """

    blank_id = BLANK_ID
    cc_id = CHANNEL_CHANGE_ID
    unk_id = UNK_ID

    def __init__(self, model_path: str | os.PathLike):
        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f"tokenizer model {model_path} not found")
        self.sp = spm.SentencePieceProcessor(model_file=str(model_path))
        reserved = [self.sp.id_to_piece(i) for i in range(min(3, self.sp.get_piece_size()))]
        if reserved != list(RESERVED_PIECES):
            raise ValueError(
                f"{model_path} is not a Parley tokenizer: ids 0-2 are {reserved}, expected {list(RESERVED_PIECES)}"
            )

    @property
    def vocab_size(self) -> int:
        """V, the number of pieces including the reserved ones."""
        return self.sp.get_piece_size()

    def id_to_piece(self, i: int) -> str:
        return self.sp.id_to_piece(i)

    def encode(self, text: str) -> list[int]:
        """Token ids (U,) of a normalized text; never contains `blank_id`."""
        ids: list[int] = []
        for k, part in enumerate(text.split(CHANNEL_CHANGE)):
            if k:
                ids.append(CHANNEL_CHANGE_ID)
            if part.strip():
                ids.extend(self.sp.encode(part.strip(), out_type=int))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """The text of token ids, blanks dropped and channel changes written as " <cc> "."""
        parts: list[list[int]] = [[]]
        for i in ids:
            if i == CHANNEL_CHANGE_ID:
                parts.append([])
            elif i != BLANK_ID:
                parts[-1].append(int(i))
        return f" {CHANNEL_CHANGE} ".join(self.sp.decode(p) for p in parts).strip()


def write_tokens_txt(model_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Writes sherpa-onnx's ``tokens.txt``: one ``<piece> <id>`` line per id, 0 to V-1 in order."""
    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        for i in range(sp.get_piece_size()):
            piece = sp.id_to_piece(i)
            assert " " not in piece, f"piece {i} {piece!r} contains a space"
            f.write(f"{piece} {i}\n")
    return out_path


def train_all(
    texts_by_language: dict[str, list[str]],
    out_dir: str | os.PathLike,
    vocab_sizes: dict[str, int],
    model_type: str = "unigram",
) -> dict[str, Path]:
    """Trains one tokenizer per language into ``<out_dir>/<lang>/bpe.model`` with ``tokens.txt`` beside it.

    Args:
        texts_by_language: normalized sentences per language tag.
        out_dir: the folder that receives one subfolder per language.
        vocab_sizes: V per language; languages missing here get `default_vocab_size`.
        model_type: SentencePiece model type for every language.

    Returns:
        The model path per language.
    """
    out_dir = Path(out_dir)
    models: dict[str, Path] = {}
    for lang in sorted(texts_by_language):
        vocab_size = vocab_sizes.get(lang, default_vocab_size(lang))
        model = train_tokenizer(
            texts_by_language[lang], out_dir / lang / Path(MODEL_NAME).stem, vocab_size, lang, model_type
        )
        write_tokens_txt(model, out_dir / lang / TOKENS_NAME)
        models[lang] = model
    return models


def texts_from_manifests(paths: Iterable[str | os.PathLike]) -> dict[str, list[str]]:
    """Normalized sentences per language: each utterance's `text` and every one of its `translations`."""
    texts: dict[str, list[str]] = {}
    for path in paths:
        for utt in iter_manifest(path):
            texts.setdefault(utt.language, []).append(normalize_text(utt.text, utt.language))
            for lang, text in utt.translations.items():
                texts.setdefault(lang, []).append(normalize_text(text, lang))
    return texts


def texts_from_grammar(n: int, seed: int = 0) -> dict[str, list[str]]:
    """`n` sentences of the grammar's train split in every language (Chinese without word spaces)."""
    from models.data import grammar

    sentences = grammar.generate("train", n, seed=seed)
    return {lang: [grammar.display_text(lang, s.text[lang]) for s in sentences] for lang in grammar.LANGUAGES}


def _parse_vocab_sizes(specs: list[str]) -> tuple[int | None, dict[str, int]]:
    """``["256", "zh=600"]`` -> (256, {"zh": 600}): a bare number applies to every language not named."""
    default, sizes = None, {}
    for spec in specs:
        lang, _, value = spec.rpartition("=")
        try:
            n = int(value)
        except ValueError:
            raise ValueError(f"--vocab-size {spec!r}: expected N or LANG=N") from None
        if lang:
            sizes[lang] = n
        else:
            default = n
    return default, sizes


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="parley tokenizer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--manifest",
        nargs="+",
        action="extend",
        default=[],
        type=Path,
        help="manifests: each utterance's text trains its language, each translation that translation's",
    )
    parser.add_argument(
        "--text-file",
        nargs="+",
        action="extend",
        default=[],
        metavar="LANG=PATH",
        help="a plain text file of sentences, one per line, in language LANG",
    )
    parser.add_argument(
        "--vocab-size",
        nargs="+",
        action="extend",
        default=[],
        metavar="N|LANG=N",
        help=f"vocabulary size for every language (N) or one (LANG=N); default {DEFAULT_VOCAB_SIZE}, "
        f"{DEFAULT_VOCAB_SIZE_ZH} for Chinese",
    )
    parser.add_argument(
        "--grammar",
        type=int,
        default=0,
        metavar="N",
        help="train on N sentences of the multilingual grammar's train split, in every language",
    )
    parser.add_argument("--languages", help="comma-separated languages to train (default: every one found)")
    parser.add_argument(
        "--model-type", default="unigram", choices=["unigram", "bpe", "char"], help="SentencePiece model type"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder; one subfolder per language")
    args = parser.parse_args(argv)
    if not args.manifest and not args.text_file and not args.grammar:
        parser.error("give --grammar, --manifest or --text-file")
    try:
        default, sizes = _parse_vocab_sizes(args.vocab_size)
        texts = texts_from_manifests(args.manifest)
        for lang, lines in texts_from_grammar(args.grammar).items() if args.grammar else ():
            texts.setdefault(lang, []).extend(lines)
        for spec in args.text_file:
            lang, sep, path = spec.partition("=")
            if not sep or not lang or not path:
                raise ValueError(f"--text-file {spec!r}: expected LANG=PATH")
            with open(path, encoding="utf-8") as f:
                texts.setdefault(lang, []).extend(normalize_text(line, lang) for line in f)
        if args.languages:
            wanted = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
            missing = [lang for lang in wanted if lang not in texts]
            if missing:
                raise ValueError(f"no text for {missing}; found {sorted(texts)}")
            texts = {lang: texts[lang] for lang in wanted}
        vocab_sizes = {lang: sizes.get(lang, default or default_vocab_size(lang)) for lang in texts}
        models = train_all(texts, args.out, vocab_sizes, args.model_type)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for lang, model in models.items():
        print(f"{lang}: {Tokenizer(model).vocab_size} pieces from {len(texts[lang])} sentences -> {model}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
