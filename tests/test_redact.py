"""server/redact.py: spoken digit strings replaced in what a stream is sent."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from parley.audio import write_wav
from parley.resample import resample
from server.bundle import load_bundle
from server.engine import Engine, EngineConfig
from server.frontend import Frontend
from server.plan import UnsupportedOptionError
from server.protocol import ProtocolError, start_from_dict
from server.recognizer import Final, Partial, Recognizer, StreamRecognizer
from server.redact import MIN_DIGITS, REDACTED, digit_runs, redact_text, redacted_runs, stable_words
from server.settings import Settings
from server.transducer import StreamingTransducer
from tests.test_server import Running, exchange


@pytest.mark.parametrize(
    ("said", "sent"),
    [
        ("my card is four one one one one one one one and", f"my card is {REDACTED} and"),
        ("the pin is one two three four", f"the pin is {REDACTED}"),
        ("call five five five double two oh nine now", f"call {REDACTED} now"),
        ("it expires oh four twenty six", "it expires oh four twenty six"),  # two runs of two digits
        ("room three one two", "room three one two"),  # three digits
        ("she was born in nineteen eighty four", "she was born in nineteen eighty four"),  # a number, not digits
        ("one two three four five and six seven eight nine", f"{REDACTED} and {REDACTED}"),
        ("oh no", "oh no"),
        ("triple seven one", REDACTED),  # 3 + 1 digits
        ("double", "double"),
        ("", ""),
    ],
)
def test_redact_text(said: str, sent: str) -> None:
    assert redact_text(said) == sent


def test_digit_runs_count_repeats() -> None:
    assert digit_runs(["a", "double", "five", "one", "b", "two"]) == [(1, 4, 3), (5, 6, 1)]


def test_stable_words_leave_out_a_run_that_may_grow_or_that_the_prefix_cuts() -> None:
    words = ["my", "pin", "is", "one", "two"]
    assert stable_words(words, 4) == 3  # "one two" ends the partial: two more digits would redact it
    assert stable_words(words, 2) == 2
    closed = ["one", "two", "three", "four", "please"]
    assert stable_words(closed, 2) == 0  # the prefix would cut the run: alone it has too few digits
    assert stable_words(closed, 4) == 4 and stable_words(closed, 5) == 5


# ---- In a stream, on the committed English model ----

ROOT = Path(__file__).resolve().parents[1]


def stream_results(recognizer: Recognizer, stream: StreamRecognizer, x: np.ndarray) -> list[Partial | Final]:
    """Everything `stream` produces for 16 kHz audio `x` sent 100 ms at a time, as a client sends it, then ended."""
    frontend = Frontend(recognizer.spec, 16000)
    results = []
    for i in range(0, len(x), 1600):
        frontend.accept(x[i : i + 1600])
        while (chunk := frontend.pop_chunk()) is not None:
            results += recognizer.step([(stream, chunk)])[0]
    frontend.finish()
    while (chunk := frontend.pop_chunk()) is not None:
        results += recognizer.step([(stream, chunk)])[0]
    return results + recognizer.finish(stream, len(x) / 16000)


async def session_messages(url: str, start: dict, sends: list[dict | np.ndarray]) -> list[dict]:
    """Sends a start with `start`'s fields (f32le), then `sends` in order (arrays as audio at once, dicts as JSON),
    then stop: the messages the server sends until it closes (`tests.test_server.exchange`)."""
    audio = [m.astype("<f4").tobytes() if isinstance(m, np.ndarray) else m for m in sends]
    msgs, _ = await exchange(url, [{"type": "start", "encoding": "f32le", **start}, *audio, {"type": "stop"}])
    return msgs


async def stream_messages(url: str, x: np.ndarray, rate: int, fields: dict) -> list[dict]:
    """The messages a server sends for `x` streamed at once with start `fields`, then stop."""
    return await session_messages(url, {"sample_rate": rate, **fields}, [x])


def _digit_run_left(text: str) -> bool:
    return any(n >= MIN_DIGITS for _, _, n in digit_runs(text.split()))


def recognized(engine: Engine, x: np.ndarray, rate: int, **options) -> list[Final]:
    """`engine.recognize(x, rate, "beam", **options)` on an engine started for it and closed after."""

    async def run() -> list[Final]:
        await engine.start()
        try:
            return await engine.recognize(x, rate, "beam", **options)
        finally:
            await engine.close()

    return asyncio.run(run())


def test_finals_words_display_and_alternatives_are_redacted(en_open, code_speech) -> None:
    x, rate = code_speech

    def finals(redact: bool) -> list[Final]:
        return recognized(Engine(en_open, EngineConfig(max_wait_ms=0)), x, rate, alternatives=2, redact=redact)

    (plain,) = finals(False)
    assert _digit_run_left(plain.text), f"the model should hear the digits: {plain.text!r}"
    (final,) = finals(True)
    assert REDACTED in final.text.split() and not _digit_run_left(final.text)
    assert final.text == " ".join(w.text for w in final.words) == redact_text(plain.text)
    assert final.display is not None and REDACTED in final.display and not any(c.isdigit() for c in final.display)
    assert all(not _digit_run_left(t) for t, _ in final.alternatives)
    # the redacted word spans the digits it replaces, with their least confidence
    (a, b), k = redacted_runs([w.text for w in plain.words])[0], [w.text for w in final.words].index(REDACTED)
    word = final.words[k]
    assert (word.start, word.end) == (plain.words[a].start, plain.words[b - 1].end)
    assert word.conf == min(w.conf for w in plain.words[a:b])


def test_partials_never_show_the_digits_and_their_stable_prefix_holds(en_open, code_speech) -> None:
    x, _ = code_speech
    recognizer = Recognizer(StreamingTransducer(en_open), punctuators=en_open.punctuators)
    results = stream_results(recognizer, recognizer.open(redact=True), x)
    partials = [r for r in results if isinstance(r, Partial)]
    final = next(r for r in results if isinstance(r, Final))
    assert len(partials) > 3 and REDACTED in final.text
    texts = [p.text for p in partials] + [final.text]
    assert all(a.text != b.text for a, b in itertools.pairwise(partials)), "a partial only when what it shows changed"
    for i, p in enumerate(partials):
        assert not _digit_run_left(p.text), p.text
        settled = p.text[: p.stable or 0]
        assert all(t.startswith(settled) for t in texts[i + 1 :]), (settled, texts[i + 1 :])


def test_redaction_refuses_what_it_cannot_read() -> None:
    sm2 = load_bundle(ROOT / "bundles" / "sm2-mini", providers="cpu", threads=1)
    engine = Engine(sm2, EngineConfig())
    engine.check_redaction(engine.plan("en"))
    with pytest.raises(UnsupportedOptionError, match="not captions in"):
        engine.check_redaction(engine.plan("de"))
    with pytest.raises(UnsupportedOptionError, match="not translations"):
        engine.check_redaction(engine.plan("en", translate=["de"]))


def test_the_start_field_is_a_boolean() -> None:
    base = {"type": "start", "sample_rate": 16000, "encoding": "s16le"}
    assert start_from_dict({**base, "redact": True}).redact and not start_from_dict(base).redact
    with pytest.raises(ProtocolError, match="redact"):
        start_from_dict({**base, "redact": "yes"})


@pytest.fixture(scope="module")
def redacting_server() -> Iterator[Running]:
    """Every stream redacted, whatever it asks (`parley serve --redact`)."""
    settings = Settings(
        bundles=ROOT / "bundles", default_model="en-open", port=0, intra_op_threads=1, log_level="warning", redact=True
    )
    r = Running(settings)
    try:
        yield r
    finally:
        r.stop()


def test_a_server_that_redacts_redacts_every_stream(redacting_server: Running, code_speech, tmp_path: Path) -> None:
    x, rate = code_speech
    write_wav(tmp_path / "a.wav", x, rate)
    url = redacting_server.http + "/v1/transcribe"
    body = httpx.post(url, content=(tmp_path / "a.wav").read_bytes(), headers={"content-type": "audio/wav"}).json()
    assert REDACTED in body["text"] and not _digit_run_left(body["text"]), body

    msgs = asyncio.run(stream_messages(redacting_server.url, x, rate, {"redact": False}))  # not its choice
    said = [m for m in msgs if m["type"] in ("partial", "final")]
    assert said and all(not _digit_run_left(m["text"]) for m in said)
    assert any(REDACTED in m["text"] for m in said if m["type"] == "final"), msgs
    wav = (tmp_path / "a.wav").read_bytes()
    refused = httpx.post(url + "?model=sm2-mini&language=de", content=wav, headers={"content-type": "audio/wav"})
    assert refused.json()["code"] == "unsupported_option" and "redaction" in refused.json()["message"], refused.text


def test_the_twilio_bridge_asks_for_redaction(code_speech, tmp_path: Path) -> None:
    """`parley twilio --redact` and `--profanity-filter`: the calls' streams ask for them of a server that does not
    redact or mask every stream (its profanity list has a word the model hears in the call, for the test)."""
    from clients import twilio
    from tests.test_server import _feed, _twilio_call

    x, rate = code_speech
    phone = resample(x, rate, 8000)
    (tmp_path / "words").write_text("code\n")
    settings = Settings(
        bundles=ROOT / "bundles",
        default_model="en-open",
        port=0,
        intra_op_threads=1,
        log_level="warning",
        profanity_words=tmp_path / "words",
    )
    server = Running(settings)
    try:

        def finals(redact: bool, masked: bool = False) -> list[str]:
            out: list[dict] = []
            opts = twilio.Options(url=server.url, redact=redact, profanity_filter=masked)
            asyncio.run(
                asyncio.wait_for(twilio.bridge_call(_feed(_twilio_call({"inbound": phone})), opts, out.append), 60)
            )
            return [m["text"] for m in out if m.get("type") == "final"]

        plain, redacted, masked = finals(False), finals(True), finals(False, True)
    finally:
        server.stop()
    assert any("code" in t.split() for t in plain) and not any("c***" in t for t in plain), plain
    assert any("c***" in t.split() for t in masked) and not any("code" in t.split() for t in masked), masked
    assert any(_digit_run_left(t) for t in plain), f"the model should hear the digits on the phone: {plain}"
    assert redacted and not any(_digit_run_left(t) for t in redacted) and any(REDACTED in t for t in redacted)
