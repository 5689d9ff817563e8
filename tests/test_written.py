"""server/written.py: hotwords written in `display` as their users wrote them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.bundle import load_bundle
from server.engine import Engine, EngineConfig
from server.plan import Adaptation
from server.written import write_phrases, written_forms

FORMS = written_forms(["McAllister", "zentrix labs", "Zentrix Labs", "iPhone", "O'Neil", "plain words"])


def test_only_phrases_that_say_how_they_are_written_count() -> None:
    assert ("plain", "words") not in FORMS, "all lowercase: the punctuation model's casing stands"
    assert FORMS[("zentrix", "labs")] == ("Zentrix", "Labs") and FORMS[("o'neil",)] == ("O'Neil",)


@pytest.mark.parametrize(
    ("display", "written"),
    [
        ("The letter from Mcallister came, with an Iphone.", "The letter from McAllister came, with an iPhone."),
        ("“zentrix labs!” he said.", "“Zentrix Labs!” he said."),
        ("Zentrix, labs.", "Zentrix, labs."),  # punctuation between the words: not the phrase
        ("Ask o'neil.", "Ask O'Neil."),
        ("Plain words here.", "Plain words here."),
        ("", ""),
    ],
)
def test_write_phrases(display: str, written: str) -> None:
    assert write_phrases(display, FORMS) == written


def test_no_forms_change_nothing() -> None:
    assert write_phrases("Mcallister came.", {}) == "Mcallister came."


def test_a_stream_s_display_spells_its_hotword_as_given() -> None:
    """The respelling test's sentence (tests/test_respell.py): en-open writes "mcallister" with the hotword; the
    display spells it "McAllister", as the stream gave it, and `text` stays as recognized."""
    from models.data.espeak import synthesize
    from tests.test_respell import SENTENCE

    bundle = load_bundle(Path(__file__).resolve().parents[1] / "bundles" / "en-open", providers="cpu", threads=1)
    syn = synthesize(SENTENCE, voice="en-us", variant="m3", rate=160)

    def final(hotword: str):
        engine = Engine(bundle, EngineConfig(max_wait_ms=0))

        async def run():
            await engine.start()
            try:
                return await engine.recognize(syn.samples, syn.sample_rate, adaptation=Adaptation(((hotword, None),)))
            finally:
                await engine.close()

        (f,) = asyncio.run(run())
        return f

    given = final("McAllister")
    assert "mcallister" in given.text.split() and "McAllister" in given.display.split(), given
    lower = final("mcallister")
    assert "mcallister" in lower.text.split() and "McAllister" not in lower.display, lower
