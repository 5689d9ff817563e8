"""A sherpa-onnx streaming recognizer on a Parley bundle, built from what the bundle's bundle.json says.

    rec = sherpa_recognizer(Path("bundles/en-small"), precision="int8")

sherpa-onnx is a dev dependency: it checks (tests, `parley bundle-eval`, benchmarks) that a bundle decodes the same
in a C++ runtime. Its fbank defaults differ from Parley's in one place: the upper mel edge (sherpa-onnx: Nyquist -
400 Hz; Parley: the whole band), so `high_freq` comes from the bundle's feature settings; the head's
`blank_penalty` (bundle.json's copy of its joiner's metadata: sherpa-onnx takes it as an argument) is passed on as
well.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from parley.contract import WORD_START, tail_padding_samples

# Frames beyond the tail padding's window that sherpa-onnx needs: it steps only when more than a window waits.
SHERPA_EXTRA_FRAMES = 10


def settling_silence(streaming: dict, sample_rate: int = 16000) -> np.ndarray:
    """Silence to append to an utterance so that its speech lies inside complete encoder steps for Parley and for
    sherpa-onnx alike: the tail padding rule (`parley.contract.tail_padding_ms`) with 10 frames more for sherpa-onnx
    (docs/bundles.md, "Last chunk"). `streaming` is bundle.json's "streaming" entry."""
    return np.zeros(tail_padding_samples(streaming["T"], sample_rate, extra_frames=SHERPA_EXTRA_FRAMES), np.float32)


def sherpa_recognizer(
    bundle: Path,
    precision: str = "fp32",
    threads: int = 1,
    method: str = "greedy_search",
    lm: Path | None = None,
    lm_scale: float = 0.5,
):
    """`sherpa_onnx.OnlineRecognizer` over the first head of `bundle` in the given precision; with `lm` (an LSTM LM
    of the bundle, `parley lm train --type lstm`), sherpa-onnx's shallow fusion of it in modified beam search."""
    fusion = {} if lm is None else {"lm": str(lm), "lm_scale": lm_scale, "lm_shallow_fusion": True}
    import sherpa_onnx

    bundle = Path(bundle)
    meta = json.loads((bundle / "bundle.json").read_text())
    head, features = meta["heads"][0], meta["features"]
    # A CMM encoder.onnx takes a language_mask that sherpa-onnx cannot feed: it gets the every-language encoder.
    encoders = meta.get("cmm", {}).get("encoder_all_languages", meta["encoder"])
    return sherpa_onnx.OnlineRecognizer.from_transducer(
        tokens=str(bundle / head["tokens"]),
        encoder=str(bundle / encoders[precision]),
        decoder=str(bundle / head["decoder"][precision]),
        joiner=str(bundle / head["joiner"][precision]),
        num_threads=threads,
        sample_rate=features["sample_rate"],
        feature_dim=features["num_bins"],
        high_freq=float(features["high_freq"]),
        decoding_method=method,
        blank_penalty=float(head.get("blank_penalty", 0.0)),
        **fusion,
    )


def decode_whole(recognizer, samples: np.ndarray, sample_rate: int):
    """A new stream of `recognizer` (a `sherpa_onnx.OnlineRecognizer`) fed all of `samples` `(T,)`, its input marked
    finished and decoded as far as sherpa-onnx goes; read it with `recognizer.get_result(stream)` or
    `get_result_all`."""
    stream = recognizer.create_stream()
    stream.accept_waveform(sample_rate, samples)
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode_stream(stream)
    return stream


def result_token_ids(tokens: Sequence[str], pieces: Sequence[str]) -> list[int]:
    """sherpa-onnx's result tokens (`recognizer.get_result_all(stream).tokens`) as ids of `pieces` (tokens.txt's, in
    id order): sherpa-onnx writes a piece's leading word marker "▁" as a space. A token that no piece writes (none
    should) is -1, which differs from every id."""
    index: dict[str, int] = {}
    for i, piece in enumerate(pieces):
        index.setdefault(" " + piece[len(WORD_START) :] if piece.startswith(WORD_START) else piece, i)
    return [index.get(t, -1) for t in tokens]
