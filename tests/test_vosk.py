"""Vosk-server's protocol at `/` (server/vosk.py), spoken by a client written from Vosk's documentation alone.

The client does what vosk-server's websocket/test.py and the Vosk client libraries do: an optional config message,
then audio in 0.2 s binary messages, reading one JSON reply after each, then `{"eof" : 1}` and the last result. The
server is a real uvicorn over the tiny random bundle (tests/conftest.py), so texts are whatever the untrained model
emits: what matters is that the Vosk endpoint gives the same words as `/v1/stream` and the offline reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from clients.stream import encode_audio
from server.bundle import load_bundle
from server.protocol import INVALID_VALUE, ProtocolError
from server.recognizer import Final, Word
from server.routes_ops import WEB_DIR
from server.settings import Settings
from server.transducer import StreamingTransducer
from server.vosk import VoskConfig, close_reason, parse_text, result_reply
from tests.test_export import SR
from tests.test_server import TIMEOUT, Running, audio, offline, running, stream, wire

KEY = "vosk-key"
MAX_MESSAGE = 65536


@pytest.fixture(scope="module")
def model(tiny_bundles: Path) -> StreamingTransducer:
    return StreamingTransducer(load_bundle(tiny_bundles / "tiny-en", providers="cpu", threads=1))


@pytest.fixture(scope="module")
def server(tiny_bundles: Path) -> Iterator[Running]:
    """No endpointing (one utterance per stream: the eof result is the offline transcript), small messages."""
    with running(tiny_bundles, endpointing=False, max_message_bytes=MAX_MESSAGE) as r:
        yield r


@pytest.fixture(scope="module")
def secure(tiny_bundles: Path) -> Iterator[Running]:
    """An API key and 1 s utterances (endpoint rule 3), so that results come between partials."""
    with running(tiny_bundles, api_keys=(KEY,), rule3_min_utterance_length=1.0, idle_timeout_s=2.0) as r:
        yield r


def vosk_url(r: Running, query: str = "") -> str:
    return f"ws://127.0.0.1:{r.port}/{query}"


# ---- A Vosk client, from Vosk's documented protocol ----


async def _vosk_session(
    url: str,
    pcm: bytes,
    rate: int,
    config: dict | None = None,
    block_s: float = 0.2,
    reset_after: int | None = None,
) -> tuple[list[dict], int | None]:
    """Sends `pcm` (s16le) as vosk-server's test.py does and reads one reply per message: (replies, close code).

    `reset_after`: send {"reset" : 1} after that many audio messages (its reply is read too).
    """
    replies: list[dict] = []
    async with connect(url, max_size=None, close_timeout=5) as ws:
        if config is not None:
            await ws.send(json.dumps({"config": config}))
        step = int(rate * block_s) * 2
        for k, i in enumerate(range(0, len(pcm), step)):
            await ws.send(pcm[i : i + step])
            replies.append(json.loads(await ws.recv()))
            if reset_after is not None and k + 1 == reset_after:
                await ws.send('{"reset" : 1}')
                replies.append(json.loads(await ws.recv()))
        await ws.send('{"eof" : 1}')
        replies.append(json.loads(await ws.recv()))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    return replies, ws.close_code


def vosk_session(url: str, x: np.ndarray, rate: int = SR, **kw) -> tuple[list[dict], int | None]:
    return asyncio.run(asyncio.wait_for(_vosk_session(url, encode_audio(x, "s16le"), rate, **kw), TIMEOUT))


async def _refused(url: str, sends: list[str | bytes]) -> tuple[list[str], int | None, str]:
    """Sends messages until the server closes: (replies, close code, close reason)."""
    got: list[str] = []
    async with connect(url, max_size=None, close_timeout=5) as ws:
        try:
            for m in sends:
                await ws.send(m)
            while True:
                got.append(await asyncio.wait_for(ws.recv(), TIMEOUT))
        except ConnectionClosed:
            pass
    return got, ws.close_code, ws.close_reason


def refused(url: str, sends: list[str | bytes]) -> tuple[list[str], int | None, str]:
    return asyncio.run(asyncio.wait_for(_refused(url, sends), TIMEOUT))


def _texts(replies: list[dict]) -> str:
    return " ".join(r["text"] for r in replies if r.get("text"))


# ---- Messages (pure) ----


def test_config_parsing_as_vosk_server_reads_it() -> None:
    cfg = parse_text('{"config": {"sample_rate": 16000.0, "words": 0, "phrase_list": ["a b"], "x": 1}}', VoskConfig())
    assert cfg == VoskConfig(sample_rate=16000, words=False, phrase_list=("a b",))
    assert parse_text('{"config": {"sample_rate": "44100", "max_alternatives": 3}}', cfg).max_alternatives == 3
    assert parse_text('{"eof" : 1}', cfg).eof and not parse_text('{"reset" : 1}', cfg).eof
    for bad in ('{"config": {"sample_rate": "fast"}}', '{"config": {"max_alternatives": -1}}', '{"config": 3}'):
        with pytest.raises(ProtocolError) as e:
            parse_text(bad, cfg)
        assert e.value.code == INVALID_VALUE, bad
    with pytest.raises(ProtocolError) as e:
        parse_text('{"config": {"sample_rate": 384000}}', cfg)
    assert e.value.code == "unsupported_rate"
    for bad, code in (("[1]", "bad_json"), ("nope", "bad_json"), ('{"eof": 0}', "bad_message")):
        with pytest.raises(ProtocolError) as e:
            parse_text(bad, cfg)
        assert e.value.code == code, bad


def test_result_reply_has_vosk_s_shape() -> None:
    finals = [
        Final(0, "set a", 0.0, 0.5, (Word("set", 0.1, 0.3, 0.9), Word("a", 0.3, 0.4, 0.5))),
        Final(1, "timer", 0.5, 1.5, (Word("timer", 1.0, 1.4, 0.7),)),
    ]
    r = result_reply(finals, VoskConfig(), offset=2.0)
    assert r == {
        "result": [
            {"conf": 0.9, "end": 2.3, "start": 2.1, "word": "set"},
            {"conf": 0.5, "end": 2.4, "start": 2.3, "word": "a"},
            {"conf": 0.7, "end": 3.4, "start": 3.0, "word": "timer"},
        ],
        "text": "set a timer",
    }
    assert result_reply(finals, VoskConfig(words=False)) == {"text": "set a timer"}
    assert result_reply([], VoskConfig()) == {"text": ""}
    alt = result_reply(finals, VoskConfig(max_alternatives=2))["alternatives"]
    assert len(alt) == 1 and alt[0]["text"] == "set a timer" and alt[0]["confidence"] == pytest.approx(0.7)
    assert alt[0]["result"][0] == {"end": 0.3, "start": 0.1, "word": "set"}
    long = close_reason(ProtocolError("invalid_value", "é" * 300))
    assert len(long.encode()) <= 123 and long.startswith("invalid_value: é")


# ---- Against the server ----


def test_one_reply_per_message_and_the_streams_words(server: Running, model: StreamingTransducer) -> None:
    x = audio(2.5, 3)
    replies, code = vosk_session(vosk_url(server), x, config={"sample_rate": SR})
    assert code == 1000
    blocks = -(-len(x) // int(SR * 0.2))
    assert len(replies) == blocks + 1, replies
    assert all(set(r) == {"partial"} for r in replies[:-1]), replies
    last = replies[-1]
    assert last["text"] == offline(model, wire(x))
    final = stream(server.url, x).finals[-1]  # the same audio through /v1/stream
    assert last["text"] == final["text"]
    expected = [{"conf": w["conf"], "end": w["end"], "start": w["start"], "word": w["word"]} for w in final["words"]]
    assert last.get("result", []) == expected
    assert all(0.0 <= w["conf"] <= 1.0 for w in expected)
    # Partials grow towards the result: the last one is a prefix of it.
    assert last["text"].startswith(replies[-2]["partial"]), (replies[-2], last)


def test_options_rates_reset_and_phrase_list(server: Running, model: StreamingTransducer) -> None:
    x = audio(2.0, 5, 8000)
    # No config: vosk-server's defaults, 8 kHz and words.
    replies, code = vosk_session(vosk_url(server), x, rate=8000)
    assert code == 1000 and replies[-1]["text"] == offline(model, wire(x), 8000)
    assert ("result" in replies[-1]) == bool(replies[-1]["text"])
    # phrase_list: the stream's hotwords (what the model can write of it: Vosk's "[unk]" filler, repeats and
    # characters the model has no piece for are left out, not refused), so the result is /v1/stream's with them.
    phrases = ["set a timer", "[unk]", "set a timer", "zq\u2603"]
    cfg = {"sample_rate": 8000, "words": False, "phrase_list": phrases}
    replies, _ = vosk_session(vosk_url(server), x, rate=8000, config=cfg)
    boosted = stream(server.url, x, 8000, start_fields={"hotwords": ["set a timer"]})
    plain = stream(server.url, x, 8000, search="beam")
    assert set(replies[-1]) == {"text"} and replies[-1]["text"] == boosted.text
    assert boosted.text != plain.text, "the hotword should change what this model writes"
    # max_alternatives: the beam's likeliest transcripts, as /v1/stream's alternatives, the first with its words.
    cfg = {"sample_rate": 8000, "max_alternatives": 3}
    replies, _ = vosk_session(vosk_url(server), x, rate=8000, config=cfg)
    listed = stream(server.url, x, 8000, start_fields={"alternatives": 3}).finals[-1]["alternatives"]
    alts = replies[-1]["alternatives"]
    assert [a["text"] for a in alts] == [a["text"] for a in listed] and len(alts) > 1, (alts, listed)
    assert [a["confidence"] for a in alts] == pytest.approx([a["confidence"] for a in listed], abs=1e-3)
    assert "result" in alts[0] and all("result" not in a for a in alts[1:])
    # reset: the first second's result, then the rest's, whose times go on from the first second.
    y = audio(2.0, 6)
    replies, code = vosk_session(vosk_url(server), y, config={"sample_rate": SR}, reset_after=5)
    assert code == 1000 and len(replies) == 10 + 2
    first, second = replies[5], replies[-1]
    assert first["text"] == offline(model, wire(y[:SR]))
    assert second["text"] == offline(model, wire(y[SR:]))
    assert all(w["start"] >= 1.0 for w in second.get("result", [])), second


def test_endpoints_give_results_between_partials(secure: Running) -> None:
    x = audio(4.0, 2)
    replies, code = vosk_session(vosk_url(secure, f"?api_key={KEY}"), x, config={"sample_rate": SR})
    assert code == 1000
    finals = stream(secure.url, x, api_key=KEY).finals
    results = [r for r in replies if "text" in r]
    assert len(results) >= 2, replies  # 1 s utterances of 4 s: results before the eof's
    assert _texts(results) == " ".join(f["text"] for f in finals if f["text"])
    times = [w["start"] for r in results for w in r.get("result", [])]
    assert times == sorted(times)


def test_limits_keys_and_errors_close_with_codes(server: Running, secure: Running) -> None:
    _, code, reason = refused(vosk_url(secure), [b"\0\0"])
    assert code == 1008 and reason.startswith("unauthorized"), reason
    _, code, _ = refused(vosk_url(secure, "?api_key=wrong"), [b"\0\0"])
    assert code == 1008
    url = vosk_url(server)
    for sends, want, prefix in (
        (["not json"], 1003, "bad_json"),
        (['{"hello": 1}'], 1008, "bad_message"),
        ([b"\0\0\0"], 1003, "bad_audio"),
        ([b"\0" * (MAX_MESSAGE + 2)], 1009, "too_big"),
        (['{"config": {"sample_rate": 384000}}'], 1003, "unsupported_rate"),
        (['{"config": {"model": "nope"}}', b"\0\0"], 1008, "unknown_model"),
    ):
        got, code, reason = refused(url, sends)
        assert code == want and reason.startswith(prefix), (sends[0][:40], code, reason)
        assert got == [], got  # Vosk clients know no error message: the close says it
    # Idle timeout, counted in audio as on /v1/stream.
    _, code, reason = refused(vosk_url(secure, f"?api_key={KEY}"), ['{"config": {"sample_rate": 16000}}'])
    assert code == 1008 and reason.startswith("idle_timeout"), reason


def test_metrics_count_the_vosk_protocol_apart_and_the_page_stays(server: Running) -> None:
    vosk_session(vosk_url(server), audio(0.5, 1), config={"sample_rate": SR})
    assert server.metric('parley_streams_total{model="tiny-en",protocol="vosk"}') >= 1
    page = httpx.get(server.http + "/")
    if WEB_DIR.is_dir():
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_drain_sends_the_open_utterance_and_closes_with_1001(tiny_bundles: Path, model: StreamingTransducer) -> None:
    r = Running(Settings(bundles=tiny_bundles, port=0, intra_op_threads=1, log_level="warning", drain_timeout_s=0.3))
    x = audio(1.0, 4)

    async def go() -> tuple[list[dict], int | None, str]:
        replies: list[dict] = []
        async with connect(vosk_url(r), close_timeout=5) as ws:
            await ws.send('{"config": {"sample_rate": 16000}}')
            await ws.send(encode_audio(x, "s16le"))
            replies.append(json.loads(await ws.recv()))
            r.server.should_exit = True  # the client stalls; the server drains
            with contextlib.suppress(ConnectionClosed):
                while True:
                    replies.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
        return replies, ws.close_code, ws.close_reason

    try:
        replies, code, reason = asyncio.run(go())
    finally:
        r.stop()
    assert code == 1001 and reason.startswith("shutting_down"), (code, reason)
    text = offline(model, wire(x))
    assert replies[1:] == ([] if not text else [replies[-1]]) and (not text or replies[-1]["text"] == text)
