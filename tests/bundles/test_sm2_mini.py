"""The committed multilingual bundle (bundles/sm2-mini) end to end: speech in six languages in, captions and English
translations out, from one stream each.

Fresh test-split sentences in every language, spoken by espeak-ng with held-out (test-split) voices, stream through a
real server (endpointing off: one final each) with `"language"` set to their language and `"translate": ["en"]`, and
once more with `"language": "auto"`. The captions' WER (CER for zh) and the translations' BLEU must be about what the
bundle's card reports on its test sets, and "auto" must name the language about as often as the card's identifier
does at the end of an utterance: a broken encoder/head split, LID or translation path shows up far from them.
"""

from __future__ import annotations

import asyncio
import json
import random

import numpy as np
import pytest

from clients.stream import StreamResult, run_stream
from tests._speech import spoken as _spoken
from tests.bundles._bundles import BUNDLES, committed
from tests.test_server import Running

NAME = "sm2-mini"
LANGS = ("en", "de", "es", "fr", "it", "zh")
# sm2-mini was trained before the Mandarin voice was fixed (issue 17): its zh speech is espeak-ng's plain "cmn",
# which reads hanzi as English-spelled pinyin. Its card's figures hold for that voice, so this test speaks it; a
# model trained on real Mandarin (cmn-latn-pinyin) replaces sm2-mini in the SM² issue.
TRAINED_ZH_VOICE = "cmn"


def spoken(language: str, text: str, rng: random.Random) -> np.ndarray:
    """`tests._speech.spoken`, with sm2-mini's own zh voice."""
    import models.data.voices as voices

    if language != "zh":
        return _spoken(language, text, rng)
    saved = voices.VOICES["zh"]
    voices.VOICES["zh"] = (TRAINED_ZH_VOICE,)
    try:
        return _spoken(language, text, rng)
    finally:
        voices.VOICES["zh"] = saved


PER_LANGUAGE = 4
SEED = 20261127
WER_MARGIN = 0.15  # absolute, over the card's: 4 sentences (~35 words) per language are a small sample
BLEU_MARGIN = 15.0  # BLEU points under the card's mean over the 5 pairs into en, on 16 sentences
LID_MARGIN = 0.35  # absolute, under the card's accuracy at the end of an utterance, on 24 utterances


def _card() -> dict:
    return json.loads((BUNDLES / NAME / "bundle.json").read_text())["measured"]["sm2"]


@pytest.fixture(scope="module")
def speech() -> dict[str, list[tuple[dict[str, str], np.ndarray]]]:
    """language -> [(the sentence's text in every language, samples `(T,)` at 16 kHz)]."""
    from models.data import grammar

    rng = random.Random(SEED)
    out = {}
    for lang in LANGS:
        out[lang] = [
            ({t: grammar.display_text(t, s.text[t]) for t in LANGS}, spoken(lang, s.text[lang], rng))
            for s in grammar.generate("test", PER_LANGUAGE, seed=SEED + LANGS.index(lang))
        ]
    return out


@pytest.fixture(scope="module")
def server(committed_server: Running) -> Running:
    committed(NAME, "multilingual")
    return committed_server


def _streams(server: Running, speech, language: str | None) -> dict[str, list[StreamResult]]:
    async def go() -> list[StreamResult]:
        jobs = [
            run_stream(server.url, x, 16000, model=NAME, language=language or lang, translate=["en"], speed=0)
            for lang in LANGS
            for _, x in speech[lang]
        ]
        return await asyncio.gather(*jobs)

    results = iter(asyncio.run(go()))
    return {lang: [next(results) for _ in speech[lang]] for lang in LANGS}


def test_captions_and_translations_as_the_card_says(server: Running, speech) -> None:
    from models.eval.bleu import corpus_bleu
    from parley.wer import error_counts

    card = _card()
    got = _streams(server, speech, None)
    hyps_en, refs_en = [], []
    for lang in LANGS:
        finals = []
        for r in got[lang]:
            assert r.ok and len(r.finals) == 1, r.error
            partials = [m.message for m in r.received if m.message["type"] == "partial"]
            assert partials and all(set(p["translations"]) == {"en"} for p in partials), partials[:2]
            finals.append(r.finals[0])
        refs = [texts[lang] for texts, _ in speech[lang]]
        counts = error_counts(refs, [f["text"] for f in finals], lang)
        (row,) = [r for r in card["results"] if (r["split"], r["source"], r["head"]) == ("test", lang, lang)]
        print(f"{lang}: WER {100 * counts.rate:.1f}%, card {100 * row['wer']:.1f}%")
        assert counts.rate <= row["wer"] + WER_MARGIN, f"{lang}: WER {counts.rate:.3f} vs the card's {row['wer']:.3f}"
        assert all(f["language"] == lang for f in finals)
        if lang != "en":
            assert all(f["translations"]["en"] for f in finals), finals
            hyps_en += [f["translations"]["en"] for f in finals]
            refs_en += [texts["en"] for texts, _ in speech[lang]]
        else:  # the captioning head is the translating head
            assert all(f["translations"]["en"] == f["text"] for f in finals), finals
    bleu = corpus_bleu(hyps_en, refs_en).score
    card_bleu = np.mean(
        [r["bleu"] for r in card["results"] if r["split"] == "test" and r["head"] == "en" and r["source"] != "en"]
    )
    print(f"BLEU into en {bleu:.1f}, card {card_bleu:.1f} (mean of the pairs)")
    assert bleu >= card_bleu - BLEU_MARGIN, f"BLEU {bleu:.1f} vs the card's {card_bleu:.1f}"


def test_auto_names_the_language(server: Running, speech) -> None:
    card = _card()
    got = _streams(server, speech, "auto")
    right = total = 0
    for lang in LANGS:
        for r in got[lang]:
            assert r.ok and len(r.finals) == 1, r.error
            right += r.finals[0]["language"] == lang
            total += 1
    expected = np.mean([r["acc_end"] for r in card["lid"] if r["split"] == "test"])
    print(f"auto: {right}/{total} right, card {100 * expected:.1f}%")
    assert right / total >= expected - LID_MARGIN, f"{right}/{total} vs the card's {expected:.3f}"
