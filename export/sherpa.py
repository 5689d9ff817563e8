"""A sherpa-onnx streaming recognizer on a Parley bundle, built from what the bundle's bundle.json says.

    rec = sherpa_recognizer(Path("bundles/en-small"), precision="int8")

sherpa-onnx is a dev dependency: it checks (tests, `parley bundle-eval`, benchmarks) that a bundle decodes the same
in a C++ runtime. Its fbank defaults differ from Parley's in one place: the upper mel edge (sherpa-onnx: Nyquist -
400 Hz; Parley: the whole band), so `high_freq` comes from the bundle's feature settings; the head's
`blank_penalty` is passed on as well.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def settling_silence(streaming: dict, sample_rate: int = 16000) -> np.ndarray:
    """Silence to append to an utterance so that its speech lies inside complete encoder steps for Parley and for
    sherpa-onnx alike (one step window and 10 frames more; docs/bundles.md, "Last chunk"). `streaming` is
    bundle.json's "streaming" entry."""
    return np.zeros(sample_rate * (streaming["T"] + 10) // 100, dtype=np.float32)


def sherpa_recognizer(bundle: Path, precision: str = "fp32", threads: int = 1, method: str = "greedy_search"):
    """`sherpa_onnx.OnlineRecognizer` over the first head of `bundle` in the given precision."""
    import sherpa_onnx

    meta = json.loads((Path(bundle) / "bundle.json").read_text())
    head, features = meta["heads"][0], meta["features"]
    return sherpa_onnx.OnlineRecognizer.from_transducer(
        tokens=str(bundle / head["tokens"]),
        encoder=str(bundle / meta["encoder"][precision]),
        decoder=str(bundle / head["decoder"][precision]),
        joiner=str(bundle / head["joiner"][precision]),
        num_threads=threads,
        sample_rate=features["sample_rate"],
        feature_dim=features["num_bins"],
        high_freq=float(features["high_freq"]),
        decoding_method=method,
        blank_penalty=float(head.get("blank_penalty", 0.0)),
    )
