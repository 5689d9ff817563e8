"""export/evaluate_bundle.py's scoring helpers: what a WER counts, which engine an utterance is from, and how
sherpa-onnx's result tokens are compared with Parley's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export.evaluate_bundle import engine_of, file_sizes, wer_of
from export.sherpa import result_token_ids
from models.data.manifest import Utterance


def _utt(voice: str = "", engine: str = "") -> Utterance:
    return Utterance(id="u", audio="u.wav", text="hi", duration=1.0, language="en", voice=voice, engine=engine)


@pytest.mark.parametrize(
    ("voice", "engine", "expected"),
    [
        ("en-us+m3/p55/pr60/r170/g1", "", "espeak"),  # the first synthetic manifests: an espeak voice, no engine
        ("en-us+f2/p40/r150/g3", "", "espeak"),
        ("flite:slt", "", "flite"),
        ("anything", "rhvoice", "rhvoice"),
        ("1089", "", "unknown"),  # a LibriSpeech speaker
        ("", "", "unknown"),  # an imported JSONL line with no voice
    ],
)
def test_engine_of(voice: str, engine: str, expected: str) -> None:
    assert engine_of(_utt(voice, engine)) == expected


def test_wer_normalizes_both_sides_and_keeps_channel_changes() -> None:
    # An imported model writing capitals and punctuation scores its words, not its case.
    assert wer_of(["hello world"], ["HELLO, World!"], "en") == 0.0
    assert wer_of(["Hello, world."], ["hello world"], "en") == 0.0
    # sherpa-onnx glues <cc> to its neighbours: still one word of its own.
    assert wer_of(["hi <cc> yes there"], ["hi<cc>yes there"], "en") == 0.0
    # ... and a missing <cc> is an error (1 of 4 words).
    assert wer_of(["hi <cc> yes there"], ["hi yes there"], "en") == pytest.approx(0.25)


def test_result_token_ids_reads_the_word_marker_as_sherpa_onnx_writes_it() -> None:
    pieces = ["<blk>", "<unk>", "▁the", "s", "<cc>", "the"]
    assert result_token_ids([" the", "s", "<cc>", "the"], pieces) == [2, 3, 4, 5]
    assert result_token_ids(["zz"], pieces) == [-1], "an unknown token must differ from every id"


def test_file_sizes_counts_the_files_the_server_loads(tmp_path: Path) -> None:
    """The encoder and every head's decoder and joiner (a two-head bundle whose int8 variant keeps fp32
    decoders), not only the first head's."""
    files = {
        "encoder.int8.onnx": 100,
        "decoder-en.onnx": 20,
        "joiner-en.int8.onnx": 7,
        "decoder-de.onnx": 21,
        "joiner-de.int8.onnx": 8,
    }
    for name, n in files.items():
        (tmp_path / name).write_bytes(b"x" * n)
    meta = {
        "encoder": {"int8": "encoder.int8.onnx"},
        "heads": [
            {"decoder": {"int8": "decoder-en.onnx"}, "joiner": {"int8": "joiner-en.int8.onnx"}},
            {"decoder": {"int8": "decoder-de.onnx"}, "joiner": {"int8": "joiner-de.int8.onnx"}},
        ],
        "files": {"encoder.int8.onnx": {"bytes": 100, "sha256": "-"}},
    }
    (tmp_path / "bundle.json").write_text(json.dumps(meta))
    assert file_sizes(tmp_path, "int8") == files
