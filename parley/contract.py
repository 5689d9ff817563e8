"""The streaming contract's fixed numbers, reserved tokens and tail-padding rule: one definition each, imported by
server/, models/, export/ and clients/ alike (torch-free).

Settings that can differ between bundles (chunk length, history, feature options, each head's
`max_symbols_per_frame` and `blank_penalty`) are not here: they travel in the bundle's ONNX metadata, with
bundle.json as the fallback of older bundles (docs/bundles.md). What is here holds for every bundle Parley writes or
reads.

    >>> ENCODER_FRAME_MS, SUBSAMPLING
    (40, 4)
    >>> tail_padding_ms(window=35)  # a 320 ms chunk's step reads 35 fbank frames
    350
"""

from __future__ import annotations

FBANK_SHIFT_MS = 10  # ms between fbank frames (100 Hz)
# Fbank frames per encoder frame: the encoder's convolutional front end (Parley's conformer), and what sherpa-onnx
# assumes for every streaming transducer it runs (icefall's zipformer2 and lstm exports too).
SUBSAMPLING = 4
ENCODER_FRAME_MS = FBANK_SHIFT_MS * SUBSAMPLING  # 40 ms: one encoder frame; chunks are whole multiples of it

# Reserved token ids and pieces of every Parley tokenizer (models/lang/README.md).
BLANK_ID = 0
BLANK = "<blk>"  # the transducer blank; never produced by a tokenizer's encode
CHANNEL_CHANGE_ID = 1
CHANNEL_CHANGE = "<cc>"  # t-SOT's channel change; written " <cc> " in text
UNK_ID = 2
UNK = "<unk>"
RESERVED_PIECES = (BLANK, CHANNEL_CHANGE, UNK)  # ids 0, 1, 2 in this order

WORD_START = "▁"  # sentencepiece's word-start marker (U+2581): a piece that starts with it begins a word

NUM_CHANNELS = 2  # virtual channels a t-SOT model serializes; <cc> toggles between them

# Symbols a head may emit per encoder frame when its bundle does not say: the standard transducer topology's cap.
# Heads trained on the modified topology (one symbol per frame, as sherpa-onnx decodes) store 1 in their metadata.
STANDARD_MAX_SYMBOLS_PER_FRAME = 4

# Hypotheses modified beam search keeps when none is asked for, in PyTorch and onnxruntime alike (sherpa-onnx's
# default `max_active_paths` too), so that the runtimes search the same way.
BEAM = 4

# How old (ms of audio behind what is searched) the server's beam search lets the best hypothesis's tokens get before
# it settles them (server/transducer.py `settle_beam`): en-open with its general LM, dev WER 33.29 -> 32.56 % and
# OpenAI Realtime word deltas p50 / p90 0.92 / 2.09 -> 0.70 / 0.99 s (docs/adaptation.md "Settling the beam").
SETTLE_MS = 640.0


def complete_steps(frames: int, window: int, shift: int) -> int:
    """Encoder steps a stream of `frames` fbank frames runs: one per complete window of `window` frames, each
    `shift` frames after the last (an incomplete window waits for more audio)."""
    return max(0, (frames - window) // shift + 1)


def tail_padding_ms(window: int, frame_shift_ms: float = FBANK_SHIFT_MS, extra_frames: int = 0) -> float:
    """Silence (ms) that follows the last sample of a stream so that every real sample is decoded.

    An encoder step runs only on a complete window of `window` fbank frames, and the frontend holds back the last
    frames until it is finished, so the end of the audio could wait for a step that never comes. One window of
    silence puts every real frame inside a complete step. Every path that ends a stream pads by this rule: the
    server's engine, `server.transducer.transcribe`, and the PyTorch side that mirrors them
    (export/evaluate_bundle.py).

    Args:
        window: fbank frames one encoder step reads (the encoder's `T`).
        frame_shift_ms: the frontend's frame shift.
        extra_frames: frames beyond the window. sherpa-onnx steps only when *more* than a window waits, so audio that
            both runtimes must decode alike gets a few more (export/sherpa.py's `settling_silence`).
    """
    return (window + extra_frames) * frame_shift_ms


def tail_padding_samples(
    window: int, sample_rate: int, frame_shift_ms: float = FBANK_SHIFT_MS, extra_frames: int = 0
) -> int:
    """`tail_padding_ms` in samples at `sample_rate`."""
    return round(sample_rate * tail_padding_ms(window, frame_shift_ms, extra_frames) / 1000)
