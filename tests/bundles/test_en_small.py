"""The committed default bundle (bundles/en-small) end to end: speech in, the right words out.

Fresh sentences from the grammar's test split, spoken by espeak-ng with held-out (test-split) voices and clean
(no noise or reverberation), are streamed at the same time through a real server with its default settings
(endpointing on), half as 16 kHz s16le and half as 48 kHz f32le (resampled by the server). The words of the finals
must match the sentences about as well as the bundle's card says the model does on its noisy test set: a broken
frontend, resampler, endpointer or batching shows up as a WER far above it. POST /v1/transcribe must agree with
the streams.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from clients.stream import StreamResult, run_stream
from parley.audio import write_wav
from parley.resample import resample
from server.settings import Settings
from tests.test_server import Running

ROOT = Path(__file__).resolve().parents[1]
EN_SMALL = ROOT / "bundles" / "en-small"
SENTENCES = 8
SEED = 20261125
MARGIN = 0.10  # absolute WER over the card's: 8 sentences (~70 words) are a small sample


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w' ]", " ", text.lower()).split()


def card_wer(bundle: Path, manifest: str = "/test.jsonl") -> float:
    """The card's greedy WER on the test manifest whose path ends in `manifest`, at the bundle's chunk size and with
    the bundle's own blank penalty (the worse of the rows with and without silence around the utterances, when the
    card has both)."""
    meta = json.loads((bundle / "bundle.json").read_text())
    chunk = str(meta["streaming"]["chunk_ms"])
    penalty = meta["heads"][0].get("blank_penalty", 0.0)
    rows = [
        r
        for r in meta["measured"]["wer"]
        if r["manifest"].endswith(manifest)
        and str(r["chunk_ms"]) == chunk
        and r.get("search", "greedy") == "greedy"
        and r.get("blank_penalty", 0.0) == penalty
    ]
    assert rows, f"{bundle}/bundle.json reports no greedy test WER at {chunk} ms with blank penalty {penalty}"
    return max(r["wer"] for r in rows)


def spoken(language: str, text: str, rng: random.Random) -> np.ndarray:
    """`text` spoken by a test-split voice of `language` drawn from `rng`: `(T,)` at 16 kHz, 0.3 s of silence on
    both sides."""
    from models.data.espeak import synthesize
    from models.data.voices import sample_voice

    voice = sample_voice(language, rng, "test")
    syn = synthesize(text, **voice.synth_kwargs())
    pad = np.zeros(4800, dtype=np.float32)
    return np.concatenate([pad, resample(syn.samples, syn.sample_rate, 16000), pad])


@pytest.fixture(scope="module")
def speech() -> list[tuple[str, np.ndarray, int]]:
    """(reference, samples, rate): test-split sentences in test-split voices, 0.3 s of silence on both sides."""
    from models.data import grammar

    rng = random.Random(SEED)
    return [
        (grammar.display_text("en", s.text["en"]), spoken("en", s.text["en"], rng), 16000)
        for s in grammar.generate("test", SENTENCES, seed=SEED)
    ]


@pytest.fixture(scope="module")
def server() -> Iterator[Running]:
    if not (EN_SMALL / "bundle.json").is_file():
        pytest.fail(f"the default bundle is missing: {EN_SMALL}")
    r = Running(Settings(bundles=EN_SMALL.parent, default_model="en-small", port=0, log_level="warning"))
    try:
        yield r
    finally:
        r.stop()


def test_default_bundle_streams_the_right_words(server: Running, speech, tmp_path: Path) -> None:
    from parley.wer import error_counts

    async def all_streams() -> list[StreamResult]:
        jobs = []
        for i, (_, x, rate) in enumerate(speech):
            if i % 2:  # as a browser would send it: 48 kHz float32
                jobs.append(run_stream(server.url, resample(x, rate, 48000), 48000, encoding="f32le", speed=4))
            else:
                jobs.append(run_stream(server.url, x, rate, speed=4))
        return await asyncio.gather(*jobs)

    results = asyncio.run(all_streams())
    assert all(r.ok for r in results), [r.error for r in results]
    refs = [ref for ref, _, _ in speech]
    hyps = [" ".join(_words(r.text)) for r in results]
    for ref, hyp in zip(refs, hyps, strict=True):
        print(f"REF {ref}\nHYP {hyp}")
    counts = error_counts(refs, hyps)
    expected = card_wer(EN_SMALL)
    print(f"WER {100 * counts.rate:.1f}% ({counts.errors}/{counts.reference_words}); card {100 * expected:.1f}%")
    for r in results:  # partials come while the audio streams, before the stream's first final
        kinds = [m.message["type"] for m in r.received]
        assert "partial" in kinds and kinds.index("partial") < kinds.index("final"), kinds
    assert counts.rate <= expected + MARGIN, f"WER {counts.rate:.3f} vs the card's {expected:.3f}"
    # The same audio as a file through POST /v1/transcribe gives the stream's text.
    ref, x, rate = speech[0]
    wav = tmp_path / "one.wav"
    write_wav(wav, x, rate)
    body = httpx.post(
        server.http + "/v1/transcribe", content=wav.read_bytes(), headers={"content-type": "audio/wav"}, timeout=60
    ).json()
    assert _words(body["text"]) == hyps[0].split(), (body["text"], hyps[0])
