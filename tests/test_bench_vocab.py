"""benchmarks/bench_vocab.py's figures of one tokenizer: alignability under one token per frame, unk rate, lattices."""

import importlib.util
from pathlib import Path

import pytest

from models.train.tokenizer import Tokenizer

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_vocab", ROOT / "benchmarks" / "bench_vocab.py")
bench_vocab = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_vocab)


def test_encoder_frames_count_40_ms_frames_of_the_sped_up_audio() -> None:
    assert bench_vocab.encoder_frames(1.0) == 25
    assert bench_vocab.encoder_frames(1.1, speed=1.1) == 25
    assert bench_vocab.encoder_frames(0.039) == 0


def test_measure_flags_utterances_with_more_tokens_than_frames() -> None:
    tok = Tokenizer(ROOT / "bundles" / "en-open" / "bpe.model")
    text = "the weather in paris tomorrow"
    u = len(tok.encode(text))
    fits = u * 0.04 + 0.04  # one frame to spare at speed 1.0, none at 1.1
    utts = [(text, 10.0), (text, fits), (text, (u - 1) * 0.04)]
    r = bench_vocab.measure(tok, utts, ["the weather in paris", "zyx 猫"])
    assert r["vocab"] == tok.vocab_size == 500
    assert r["unalignable_speed_1.0"] == pytest.approx(1 / 3)
    assert r["unalignable_speed_1.1"] == pytest.approx(2 / 3)
    assert r["tokens_per_word_test"] > 1.0
    assert r["unk_per_1000_test_tokens"] > 0  # no piece spells "猫"
    assert r["full_lattice_cells_x_v"] > r["pruned_band_cells_x_v"] > 0
