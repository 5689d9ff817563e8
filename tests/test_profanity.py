"""server/profanity.py: listed words masked in what a stream is sent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from parley.audio import write_wav
from server.engine import Engine, EngineConfig
from server.profanity import PROFANITY, ProfanityFilter, read_words
from server.protocol import ProtocolError, start_from_dict
from server.recognizer import Final, Partial, Recognizer
from server.settings import Settings
from server.transducer import StreamingTransducer
from tests.test_redact import recognized, stream_messages, stream_results
from tests.test_server import Running

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("said", "sent"),
    [
        ("well damn that is bullshit", "well d*** that is b*******"),
        ("Well, Damn. That's BULLSHIT!", "Well, D***. That's B*******!"),
        ('(shit) "fuck"', '(s***) "f***"'),
        ("the shit's gone", "the s***'s gone"),  # a possessive
        ("bull-shit and well-damned", "bull-s*** and well-d*****"),  # each part of a hyphenated word
        ("assess the class, Dickens", "assess the class, Dickens"),  # whole words only
        ("  two  spaces  kept  ", "  two  spaces  kept  "),
        ("", ""),
    ],
)
def test_mask_text(said: str, sent: str) -> None:
    masked = ProfanityFilter().mask_text(said)
    assert masked == sent
    assert len(masked) == len(said), "masking keeps every length (a partial's stable prefix counts characters)"


def test_a_list_of_ones_own(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# the site's own\nFrak\ngorram  # a comment\n\n")
    words = read_words(path)
    assert words == {"frak", "gorram"}
    f = ProfanityFilter(PROFANITY | words)
    assert f.mask_text("frak it, damn") == "f*** it, d***"
    assert Settings(bundles=tmp_path, profanity_words=path).profanity_list() == PROFANITY | words
    path.write_text("frak\nson of a\n")
    with pytest.raises(ValueError, match="line 2: one word a line"):
        Settings(bundles=tmp_path, profanity_words=path)  # a bad line fails at start-up, not in a stream
    with pytest.raises(ValueError, match="profanity_words"):
        Settings(bundles=tmp_path, profanity_words=tmp_path / "none.txt")


def test_the_start_field_is_a_boolean() -> None:
    base = {"type": "start", "sample_rate": 16000, "encoding": "s16le"}
    assert start_from_dict({**base, "profanity_filter": True}).profanity_filter
    assert not start_from_dict(base).profanity_filter
    with pytest.raises(ProtocolError, match="profanity_filter"):
        start_from_dict({**base, "profanity_filter": 1})


# ---- In a stream, on the committed English model, with a word it hears listed ----

LISTED = frozenset({"code"})


def test_finals_words_display_and_alternatives_are_masked(en_open, code_speech) -> None:
    x, rate = code_speech

    def finals(masked: bool) -> list[Final]:
        engine = Engine(en_open, EngineConfig(max_wait_ms=0, profanity_words=LISTED))
        return recognized(engine, x, rate, alternatives=2, profanity_filter=masked)

    (plain,) = finals(False)
    assert "code" in plain.text.split(), f"the model should hear the word: {plain.text!r}"
    (final,) = finals(True)
    assert final.text == plain.text.replace("code", "c***") and "code" not in final.text
    assert [(w.text.replace("c***", "code"), w.start, w.end, w.conf) for w in final.words] == [
        (w.text, w.start, w.end, w.conf) for w in plain.words
    ], "the words keep their times and confidences"
    assert final.display is not None and plain.display is not None
    assert final.display == plain.display.replace("code", "c***")
    assert final.alternatives and all("code" not in t.split() for t, _ in final.alternatives)


def test_partials_are_masked_and_their_stable_prefix_holds(en_open, code_speech) -> None:
    x, _ = code_speech
    recognizer = Recognizer(StreamingTransducer(en_open), punctuators=en_open.punctuators)
    results = stream_results(recognizer, recognizer.open(profanity=ProfanityFilter(LISTED)), x)
    partials = [r for r in results if isinstance(r, Partial)]
    final = next(r for r in results if isinstance(r, Final))
    assert len(partials) > 3 and "c***" in final.text.split()
    texts = [p.text for p in partials] + [final.text]
    assert any("c***" in p.text for p in partials)
    for i, p in enumerate(partials):
        assert "code" not in p.text.split() and all("code" not in w.text for w in p.words), p.text
        settled = p.text[: p.stable or 0]
        assert all(t.startswith(settled) for t in texts[i + 1 :]), (settled, texts[i + 1 :])


@pytest.fixture(scope="module")
def masking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """Every stream masked, whatever it asks (`parley serve --profanity-filter --profanity-words FILE`)."""
    words = tmp_path_factory.mktemp("words") / "words.txt"
    words.write_text("code\n")
    settings = Settings(
        bundles=ROOT / "bundles",
        default_model="en-open",
        port=0,
        intra_op_threads=1,
        log_level="warning",
        profanity_filter=True,
        profanity_words=words,
    )
    r = Running(settings)
    try:
        yield r
    finally:
        r.stop()


def test_a_server_that_masks_masks_every_stream(masking_server: Running, code_speech, tmp_path: Path) -> None:
    x, rate = code_speech
    write_wav(tmp_path / "a.wav", x, rate)
    url = masking_server.http + "/v1/transcribe?profanity_filter=false"  # not the request's choice
    body = httpx.post(url, content=(tmp_path / "a.wav").read_bytes(), headers={"content-type": "audio/wav"}).json()
    assert "c***" in body["text"].split() and "code" not in body["text"], body

    msgs = asyncio.run(stream_messages(masking_server.url, x, rate, {"profanity_filter": False}))  # not its choice
    said = [m for m in msgs if m["type"] in ("partial", "final")]
    assert said and all("code" not in m["text"] for m in said)
    assert any("c***" in m["text"] for m in said if m["type"] == "final"), msgs
