"""The committed multi-talker bundle (bundles/en-tsot-small) end to end: two talkers in, each channel's words out.

Pairs of fresh test-split sentences, spoken by espeak-ng in two different held-out (test-split) voices at levels 0-4 dB
apart, are mixed two ways: one after the other (the second talker starts 0.3 s after the first stops) and with the
second talker starting at 80 % of the first (a small overlap). They stream through a real server that also serves the
single-talker default bundle. Channels are virtual, as in t-SOT: talkers who take turns share channel 0, and only
overlapping speech opens channel 1. Every partial and final must carry two speakers whose texts and tagged words agree
with its text; the finals' cpWER against the reference channels (serialized by models/data/tsot.py)
must be about what the bundle's card reports for its overlap bucket: a broken `<cc>` split, channel assignment or
frontend shows up far above it. Larger overlaps are measured by `parley eval-tsot` (the card's table), not here.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import httpx
import numpy as np
import pytest

from models.data.mixtures import shifted
from parley.resample import resample
from tests.bundles._bundles import BUNDLES, committed
from tests.test_server import Running, stream
from tests.test_tsot import _check_result

NAME = "en-tsot-small"
PAIRS = 6
SEED = 20261126
MARGIN = 0.12  # absolute cpWER over the card's: 3 mixtures (~50 words) per bucket are a small sample
GAP = 0.3  # seconds of silence between the talkers, and around the mixture


def card_cpwer(bundle: Path, bucket: str = "0") -> float:
    """The card's greedy cpWER for mixtures in overlap bucket `bucket`."""
    measured = json.loads((bundle / "bundle.json").read_text())["measured"]
    assert "tsot" in measured, f"{bundle}/bundle.json reports no cpWER (export it with eval-tsot's report)"
    return measured["tsot"]["cpwer"][bucket]["cpwer"]


@pytest.fixture(scope="module")
def mixtures() -> list[tuple[str, list[str], np.ndarray]]:
    """(overlap bucket, reference channel texts, mixture `(T,)` at 16 kHz): test sentences in two test voices."""
    from models.data import grammar
    from models.data.espeak import synthesize
    from models.data.tsot import serialize
    from models.data.voices import sample_voice

    rng = random.Random(SEED)
    sentences = list(grammar.generate("test", 2 * PAIRS, seed=SEED))
    out = []
    for i in range(PAIRS):
        voices = [sample_voice("en", rng, "test")]
        while len(voices) < 2:
            v = sample_voice("en", rng, "test")
            if (v.espeak_voice, v.variant) != (voices[0].espeak_voice, voices[0].variant):
                voices.append(v)
        talkers = []
        for sentence, voice in zip(sentences[2 * i : 2 * i + 2], voices, strict=True):
            syn = synthesize(sentence.text["en"], **voice.synth_kwargs())
            x = resample(syn.samples, syn.sample_rate, 16000)
            gain = 0.05 * 10 ** (-rng.uniform(0, 4) / 20) / (np.sqrt(np.mean(x**2)) + 1e-9)
            talkers.append((x * gain, syn.words))
        (x0, w0), (x1, w1) = talkers
        overlapping = i % 2 == 1
        pad = int(GAP * 16000)
        start = pad + (int(0.8 * x0.size) if overlapping else x0.size + pad)
        y = np.zeros(start + x1.size + pad, dtype=np.float32)  # (T,)
        y[pad : pad + x0.size] += x0
        y[start : start + x1.size] += x1
        label = serialize([(0, shifted(w0, pad / 16000)), (1, shifted(w1, start / 16000))])
        out.append(("0-20" if overlapping else "0", label.channel_texts(), y))
    return out


@pytest.fixture(scope="module")
def server(committed_server: Running) -> Running:
    committed(NAME, "multi-talker")
    return committed_server


def test_multi_talker_bundle_splits_overlapping_talkers(server: Running, mixtures) -> None:
    from models.eval.evaluate_tsot import cpwer_counts
    from parley.wer import ErrorCounts

    models = {m["name"]: m for m in httpx.get(server.http + "/v1/models").json()["models"]}
    assert models[NAME]["speakers"] == 2 and "speakers" not in models["en-small"], models
    counts = {"0": ErrorCounts(), "0-20": ErrorCounts()}
    for bucket, refs, x in mixtures:
        r = stream(server.url, x, 16000, model=NAME)
        assert r.ok, r.error
        results = [m.message for m in r.received if m.message["type"] in ("partial", "final")]
        assert any(m["type"] == "partial" for m in results) and len(r.finals) == 1, [m["type"] for m in results]
        for m in results:
            _check_result(m)
        (final,) = r.finals
        hyps = [s["text"] for s in final["speakers"]]
        print(f"{bucket:>4} REF {refs}\n     HYP {hyps}")
        if bucket == "0":  # turns share channel 0
            assert refs[0] and not refs[1] and hyps[0] and not hyps[1], (refs, hyps)
        else:  # the overlap opens channel 1
            assert all(refs) and all(hyps), (refs, hyps)
        counts[bucket] = counts[bucket] + cpwer_counts(refs, hyps)
    for bucket, c in counts.items():
        expected = card_cpwer(BUNDLES / NAME, bucket)
        cp = f"cpWER {100 * c.rate:.1f}% ({c.errors}/{c.reference_words})"
        print(f"overlap {bucket} %: {cp}; card {100 * expected:.1f}%")
        assert c.rate <= expected + MARGIN, f"overlap {bucket} %: cpWER {c.rate:.3f} vs the card's {expected:.3f}"
