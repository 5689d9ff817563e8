"""The committed grammar bundle (bundles/en-small, the default until 2026-12-05) end to end: speech in, the
right words out.

Fresh sentences from the grammar's test split, spoken by espeak-ng with held-out (test-split) voices and clean
(no noise or reverberation), are streamed at the same time through a real server with its default settings
(endpointing on), half as 16 kHz s16le and half as 48 kHz f32le (resampled by the server). The words of the finals
must match the sentences about as well as the bundle's card says the model does on its noisy test set: a broken
frontend, resampler, endpointer or batching shows up as a WER far above it. POST /v1/transcribe must agree with
the streams.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from clients.stream import StreamResult, run_stream
from parley.audio import write_wav
from parley.resample import resample
from tests._speech import spoken
from tests.bundles._bundles import BUNDLES, card_wer, committed, serving, words
from tests.test_server import Running

EN_SMALL = BUNDLES / "en-small"
SENTENCES = 8
SEED = 20261125
MARGIN = 0.10  # absolute WER over the card's: 8 sentences (~70 words) are a small sample


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
    committed("en-small", "grammar")
    with serving("en-small") as r:
        yield r


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
    hyps = [" ".join(words(r.text)) for r in results]
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
    assert words(body["text"]) == hyps[0].split(), (body["text"], hyps[0])
