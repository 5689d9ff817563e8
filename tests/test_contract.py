"""The streaming contract's numbers and rules (parley/contract.py), and the places that must agree with them."""

from pathlib import Path

from parley.contract import (
    BLANK_ID,
    CHANNEL_CHANGE_ID,
    ENCODER_FRAME_MS,
    FBANK_SHIFT_MS,
    RESERVED_PIECES,
    SUBSAMPLING,
    UNK_ID,
    complete_steps,
    tail_padding_ms,
    tail_padding_samples,
)
from parley.features import FbankConfig

ROOT = Path(__file__).resolve().parents[1]


def test_an_encoder_frame_is_four_fbank_frames_of_the_frontend() -> None:
    assert (FBANK_SHIFT_MS, SUBSAMPLING, ENCODER_FRAME_MS) == (10, 4, 40)
    assert FbankConfig().frame_shift_ms == FBANK_SHIFT_MS


def test_every_tokenizer_reserves_blank_channel_change_and_unk() -> None:
    assert (BLANK_ID, CHANNEL_CHANGE_ID, UNK_ID) == (0, 1, 2)
    folders = sorted((ROOT / "models" / "lang").glob("*/tokens.txt"))
    assert folders, "no tokenizers under models/lang"
    for tokens in folders:
        first = [line.split() for line in tokens.read_text(encoding="utf-8").splitlines()[:3]]
        assert first == [[p, str(i)] for i, p in enumerate(RESERVED_PIECES)], tokens


def test_tail_padding_is_one_window_of_silence() -> None:
    # A 320 ms chunk: a step reads T = 4 * 8 + 3 = 35 frames of 10 ms.
    assert tail_padding_ms(35) == 350
    assert tail_padding_ms(35, 10.0, extra_frames=10) == 450  # sherpa-onnx parity: 10 frames more
    assert tail_padding_samples(35, 16000) == 5600
    assert tail_padding_samples(35, 44100) == 15435  # any input rate: the same duration
    assert tail_padding_samples(19, 8000, 10.0) == 1520


def test_a_step_runs_on_every_complete_window_only() -> None:
    window, shift = 35, 32
    assert [complete_steps(n, window, shift) for n in (0, 34, 35, 66, 67, 99, 100)] == [0, 0, 1, 1, 2, 3, 3]
