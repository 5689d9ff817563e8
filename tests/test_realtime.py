"""OpenAI's Realtime transcription at WS /v1/realtime (server/realtime.py): the session configuration both ways (GA and
beta), then en-open through OpenAI's own SDK with server VAD, and raw clients for manual commits, clears, keywords
mid-stream, the beta's G.711, bad events (answered, the session going on) and refusals."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from openai import OpenAI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from parley.audio import encode_pcm
from parley.resample import resample
from server.protocol import ProtocolError
from server.realtime import (
    DEFAULT_TURN_DETECTION,
    LOGPROBS,
    RealtimeConfig,
    RealtimeSession,
    parse_session,
    session_object,
    start_request,
)
from server.recognizer import Partial, Word
from server.settings import Settings
from tests.test_server import Running

RATE = 24000


# ---- The configuration ----


def test_deltas_settle_no_word_the_final_may_respell() -> None:
    """A stream with hotwords spells settled words (`settle_ms` old), but none from the first word its final's
    acoustic check may still respell (`Partial.respell_from`): the final would write the hotword there."""
    spec = SimpleNamespace(features=SimpleNamespace(frame_shift_ms=10.0), subsampling=4)
    engine = SimpleNamespace(config=SimpleNamespace(settle_ms=640.0), model=SimpleNamespace(spec=spec))
    session = RealtimeSession.__new__(RealtimeSession)  # `_settled` reads only the open stream's engine
    session.opened = (None, engine, None)
    texts = ["the", "letter", "from", "macallter", "arrived", "after", "the", "storm"]
    words = tuple(Word(w, 0.4 * k, 0.4 * k + 0.3, 0.9) for k, w in enumerate(texts))
    p = Partial(segment=0, text=" ".join(texts), start=0.0, end=3.2, words=words)
    assert session._settled(p) == "the letter from macallter arrived after"  # words before a word begun by 2.52 s
    assert session._settled(replace(p, respell_from=1.2)) == "the letter from"  # where "macallter" begins
    assert session._settled(replace(p, respell_from=2.8)) == "the letter from macallter arrived after"


def test_a_ga_session_update_sets_what_it_names() -> None:
    cfg = parse_session(
        {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 16000},
                    "transcription": {"model": "gpt-4o-transcribe", "language": "en", "keywords": ["kowalczyk", " "]},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 800},
                    "noise_reduction": {"type": "near_field"},
                }
            },
        },
        RealtimeConfig(),
        beta=False,
    )
    assert (cfg.format, cfg.rate, cfg.model, cfg.language, cfg.keywords) == (
        "audio/pcm",
        16000,
        None,
        "en",
        ("kowalczyk",),
    )
    assert cfg.silence_ms() == 800
    start = start_request(cfg)
    assert (start.sample_rate, start.encoding, start.language) == (16000, "s16le", "en")
    assert [p for p, _ in start.hotwords] == ["kowalczyk"]
    assert start.endpointing is not None and start.endpointing.silence_after_speech_s == 0.8
    shown = session_object(cfg, "sess_1", beta=False)["audio"]["input"]
    assert shown["format"] == {"type": "audio/pcm", "rate": 16000} and shown["noise_reduction"] == {
        "type": "near_field"
    }
    # Only what an update names changes; no VAD: no endpointing, the client commits.
    manual = parse_session({"type": "transcription", "audio": {"input": {"turn_detection": None}}}, cfg, beta=False)
    assert manual.rate == 16000 and manual.keywords == ("kowalczyk",) and manual.silence_ms() is None
    assert start_request(manual).endpointing is not None and not start_request(manual).endpointing.enabled
    semantic = parse_session(
        {"audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "high"}}}}, cfg, False
    )
    assert semantic.silence_ms() == 400
    parley_model = parse_session({"audio": {"input": {"transcription": {"model": "en-small"}}}}, cfg, False)
    assert parley_model.model == "en-small" and start_request(parley_model).model == "en-small"


def test_a_beta_update_reads_the_flat_fields() -> None:
    cfg = parse_session(
        {
            "input_audio_format": "g711_ulaw",
            "input_audio_transcription": {"model": "whisper-1", "prompt": "names"},
            "turn_detection": None,
        },
        RealtimeConfig(),
        beta=True,
    )
    assert (cfg.format, cfg.rate, cfg.encoding, cfg.turn_detection) == ("audio/pcmu", 8000, "mulaw", None)
    shown = session_object(cfg, "sess_1", beta=True)
    assert shown["input_audio_format"] == "g711_ulaw" and shown["input_audio_transcription"]["prompt"] == "names"
    assert session_object(RealtimeConfig(), "s", beta=True)["turn_detection"] == DEFAULT_TURN_DETECTION


@pytest.mark.parametrize(
    ("session", "says"),
    [
        ({"type": "realtime"}, "Parley serves transcription sessions"),
        ({"audio": {"input": {"format": {"type": "audio/mp3"}}}}, "audio.input.format.type"),
        ({"audio": {"input": {"format": {"type": "audio/pcm", "rate": 4000}}}}, "rate 4000 Hz"),
        ({"audio": {"input": {"format": {"type": "audio/pcmu", "rate": 16000}}}}, "8000 for audio/pcmu"),
        ({"audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 5}}}}, "100 to 60000"),
        ({"audio": {"input": {"turn_detection": {"type": "push_to_talk"}}}}, "turn_detection.type"),
        ({"audio": {"input": {"transcription": None}}}, "this session only transcribes"),
        ({"audio": {"input": {"transcription": {"keywords": "kowalczyk"}}}}, "a list of strings"),
        ({"audio": "pcm"}, "session.audio must be an object"),
    ],
)
def test_bad_sessions_are_refused_with_the_field(session: dict, says: str) -> None:
    with pytest.raises(ProtocolError, match=says):
        parse_session(session, RealtimeConfig(), beta=False)


# ---- en-open through OpenAI's SDK ----


def _speech_24k(code_speech: tuple[np.ndarray, int], turns: int = 2) -> bytes:
    x, rate = code_speech
    x = resample(x, rate, RATE)
    pause = np.zeros(RATE, np.float32)
    return encode_pcm(np.concatenate([np.concatenate([x, pause]) for _ in range(turns)]), "s16le")


def test_openais_sdk_transcribes_turns_live(en_open_server: Running, code_speech: tuple[np.ndarray, int]) -> None:
    """`client.realtime.connect(extra_query={"intent": "transcription"})`, server VAD: each turn's speech_started,
    its deltas while it is spoken, speech_stopped, committed (chained to the turn before) and completed."""
    pcm = _speech_24k(code_speech)
    client = OpenAI(base_url=f"{en_open_server.http}/v1", api_key="unused")
    events = []
    with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        conn.session.update(
            session={
                "type": "transcription",
                "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe", "language": "en"}}},
            }
        )

        def send() -> None:
            for i in range(0, len(pcm), 9600):  # 200 ms a message, faster than real time
                conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i : i + 9600]).decode())
                time.sleep(0.02)

        sender = threading.Thread(target=send)
        sender.start()
        for event in conn:
            events.append(event)
            if sum(e.type.endswith(".completed") for e in events) == 2:
                break
        sender.join()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["session.created", "session.updated"]
    completed = [e for e in events if e.type == "conversation.item.input_audio_transcription.completed"]
    assert [c.transcript for c in completed] == ["The code is 123456."] * 2
    first, second = (c.item_id for c in completed)
    for item in (first, second):
        mine = [e for e in events if getattr(e, "item_id", None) == item]
        order = [e.type.rsplit(".", 1)[-1] for e in mine if not e.type.endswith(".delta")]
        assert order == ["speech_started", "speech_stopped", "committed", "completed"], order
        deltas = [e for e in mine if e.type.endswith(".delta")]
        assert "".join(d.delta for d in deltas) == "the code is one two three four five six"
        stopped = next(e for e in mine if e.type.endswith("speech_stopped"))
        # the first words are spelled while it is spoken, not all at its end: with the model's general LM (beam
        # search) the digits settle only at the end ("the" or "the code is" before speech_stopped; greedy search
        # settles word by word, benchmarks/bench_realtime.py: p50 0.33 s after a word's end against 0.91 s)
        early = "".join(d.delta for d in deltas if mine.index(d) < mine.index(stopped))
        assert early.split(), [(d.delta, mine.index(d) < mine.index(stopped)) for d in deltas]
    committed = [e for e in events if e.type == "input_audio_buffer.committed"]
    assert [c.previous_item_id for c in committed] == [None, first]
    # Each commit's user message, as OpenAI announces it: added, then done, between committed and completed.
    for kind in ("conversation.item.added", "conversation.item.done"):
        items = [e for e in events if e.type == kind]
        assert [(e.item.id, e.item.role, e.previous_item_id) for e in items] == [
            (first, "user", None),
            (second, "user", first),
        ]
        assert items[0].item.content[0].type == "input_audio"
        assert kinds.index(kind) > kinds.index("input_audio_buffer.committed")
        assert kinds.index(kind) < kinds.index("conversation.item.input_audio_transcription.completed")
    started = [e.audio_start_ms for e in events if e.type == "input_audio_buffer.speech_started"]
    seconds = len(code_speech[0]) / code_speech[1]
    assert 0 <= started[0] < 500 and 1000 * (seconds + 1) <= started[1] < 1000 * (seconds + 1.5)
    assert en_open_server.metric('parley_streams_total{model="en-open",protocol="realtime"}') >= 1


# ---- Raw clients ----


async def _events(ws: ClientConnection, until: str, limit: int = 200) -> list[dict]:
    out = []
    while len(out) < limit:
        event = json.loads(await asyncio.wait_for(ws.recv(), 30))
        out.append(event)
        if event["type"] == until:
            return out
    raise AssertionError(f"no {until} in {out}")


def _append(pcm: bytes, event_id: str | None = None) -> str:
    return json.dumps(
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode(), "event_id": event_id}
    )


def test_manual_commits_clears_keywords_and_bad_events(
    en_open_server: Running, code_speech: tuple[np.ndarray, int]
) -> None:
    """Without VAD the client commits each turn; a clear drops the audio since the last commit; keywords may change
    mid-stream; a bad event is answered with an error naming it and the session goes on."""
    pcm = _speech_24k(code_speech, turns=1)

    async def go() -> tuple[list[dict], ...]:
        async with connect(f"ws://127.0.0.1:{en_open_server.port}/v1/realtime?intent=transcription") as ws:
            created = await _events(ws, "session.created")
            manual = {"audio": {"input": {"turn_detection": None}}, "include": [LOGPROBS]}
            await ws.send(json.dumps({"type": "session.update", "session": manual}))
            await _events(ws, "session.updated")
            await ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": "c0"}))
            empty = await _events(ws, "error")
            await ws.send(json.dumps({"type": "response.create", "event_id": "r1"}))
            conversation = await _events(ws, "error")
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "%%%", "event_id": "a1"}))
            bad_audio = await _events(ws, "error")
            await ws.send(b"\x00\x01")
            binary = await _events(ws, "error")
            await ws.send("{not json")
            not_json = await _events(ws, "error")
            for i in range(0, len(pcm), 48000):
                await ws.send(_append(pcm[i : i + 48000]))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            turn = await _events(ws, "conversation.item.input_audio_transcription.completed")
            # Cleared audio never becomes a transcript; the next commit's turn is the audio after the clear.
            await ws.send(_append(pcm[: len(pcm) // 2]))
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            cleared = await _events(ws, "input_audio_buffer.cleared")
            update = {"audio": {"input": {"transcription": {"keywords": ["mcallister"]}}}}
            await ws.send(json.dumps({"type": "session.update", "session": update}))
            updated = await _events(ws, "session.updated")
            await ws.send(
                json.dumps({"type": "session.update", "session": {"audio": {"input": {"format": {"rate": 16000}}}}})
            )
            locked = await _events(ws, "error")
            for i in range(0, len(pcm), 48000):
                await ws.send(_append(pcm[i : i + 48000]))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            after = await _events(ws, "conversation.item.input_audio_transcription.completed")
            return created, empty, conversation, bad_audio, binary, not_json, turn, cleared, updated, locked, after

    created, empty, conversation, bad_audio, binary, not_json, turn, cleared, updated, locked, after = asyncio.run(go())
    assert created[0]["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert empty[-1]["error"]["code"] == "input_audio_buffer_commit_empty" and empty[-1]["error"]["event_id"] == "c0"
    assert conversation[-1]["error"]["code"] == "unsupported_option" and conversation[-1]["error"]["event_id"] == "r1"
    assert bad_audio[-1]["error"] == {
        "type": "invalid_request_error",
        "code": "invalid_value",
        "message": "audio is not valid base64",
        "param": None,
        "event_id": "a1",
    }
    assert "input_audio_buffer.append" in binary[-1]["error"]["message"] and not_json[-1]["error"]["code"] == "bad_json"
    kinds = [e["type"] for e in turn]
    assert "input_audio_buffer.speech_started" not in kinds  # no VAD, no VAD events
    assert (
        kinds[-1] == "conversation.item.input_audio_transcription.completed" and "input_audio_buffer.committed" in kinds
    )
    assert turn[-1]["transcript"] == "The code is 123456."
    logprobs = turn[-1]["logprobs"]  # include: the words' log probabilities, a token per word
    assert "".join(p["token"] for p in logprobs) == "the code is one two three four five six"
    assert all(p["logprob"] <= 0 and bytes(p["bytes"]).decode() == p["token"] for p in logprobs)
    assert [e["type"] for e in cleared] == ["input_audio_buffer.cleared"]
    assert updated[-1]["session"]["audio"]["input"]["transcription"]["keywords"] == ["mcallister"]
    assert (
        locked[-1]["error"]["code"] == "invalid_value"
        and "cannot change once audio has come" in locked[-1]["error"]["message"]
    )
    completed = [e for e in after if e["type"].endswith(".completed")]
    assert [c["transcript"] for c in completed] == ["The code is 123456."]  # the cleared half left no transcript
    (committed,) = [e for e in after if e["type"] == "input_audio_buffer.committed"]
    assert committed["previous_item_id"] == turn[-1]["item_id"]


def test_the_beta_protocol_and_telephone_audio(en_open_server: Running, code_speech: tuple[np.ndarray, int]) -> None:
    """A beta client (`OpenAI-Beta: realtime=v1`) gets the beta's event names; G.711 mu-law at 8 kHz goes in."""
    x, rate = code_speech
    mulaw = encode_pcm(np.concatenate([resample(x, rate, 8000), np.zeros(8000, np.float32)]), "mulaw")

    async def go() -> list[dict]:
        url = f"ws://127.0.0.1:{en_open_server.port}/v1/realtime?intent=transcription"
        async with connect(url, additional_headers={"OpenAI-Beta": "realtime=v1"}) as ws:
            events = await _events(ws, "transcription_session.created")
            session = {"input_audio_format": "g711_ulaw", "input_audio_transcription": {"model": "gpt-4o-transcribe"}}
            await ws.send(json.dumps({"type": "transcription_session.update", "session": session}))
            events += await _events(ws, "transcription_session.updated")
            for i in range(0, len(mulaw), 1600):
                await ws.send(_append(mulaw[i : i + 1600]))
            return events + await _events(ws, "conversation.item.input_audio_transcription.completed")

    events = asyncio.run(go())
    assert events[1]["session"]["input_audio_format"] == "g711_ulaw"
    assert events[-1]["transcript"].replace(" ", "").lower().startswith("thecodeis")
    kinds = [e["type"] for e in events]  # the beta names the commit's message conversation.item.created, no done
    (created,) = [e for e in events if e["type"] == "conversation.item.created"]
    assert created["item"]["id"] == events[-1]["item_id"] and created["item"]["role"] == "user"
    assert "conversation.item.added" not in kinds and "conversation.item.done" not in kinds


def test_a_refusal_is_an_error_event_and_a_close(keyed: Running) -> None:
    async def go(headers: dict) -> tuple[list[dict], int | None]:
        async with connect(f"ws://127.0.0.1:{keyed.port}/v1/realtime", additional_headers=headers) as ws:
            events = []
            with contextlib.suppress(ConnectionClosed):  # closed with 1008: the iteration raises at the end
                async for m in ws:
                    events.append(json.loads(m))
            return events, ws.close_code

    events, code = asyncio.run(go({}))
    assert code == 1008 and events[-1]["type"] == "error" and events[-1]["error"]["code"] == "unauthorized"

    async def authorized() -> dict:
        async with connect(
            f"ws://127.0.0.1:{keyed.port}/v1/realtime", additional_headers={"Authorization": "Bearer k1"}
        ) as ws:
            return json.loads(await ws.recv())

    assert asyncio.run(authorized())["type"] == "session.created"


def test_a_drain_sends_the_open_turn_then_closes_with_1001(code_speech: tuple[np.ndarray, int], tmp_path: Path) -> None:
    """The server shuts down mid-turn: the turn's committed and completed come first (the audio so far decoded), then
    the error event `shutting_down` and close 1001."""
    bundles = Path(__file__).resolve().parents[1] / "bundles"
    r = Running(
        Settings(
            bundles=bundles,
            default_model="en-open",
            port=0,
            intra_op_threads=1,
            log_level="warning",
            drain_timeout_s=0.3,
        )
    )
    pcm = _speech_24k(code_speech, turns=1)
    speech = pcm[: int(len(pcm) * 0.6)]  # the sentence, with no silence after it: no endpoint yet

    async def go() -> tuple[list[dict], int | None]:
        events: list[dict] = []
        async with connect(f"ws://127.0.0.1:{r.port}/v1/realtime", close_timeout=5) as ws:
            events += await _events(ws, "session.created")
            for i in range(0, len(speech), 24000):
                await ws.send(_append(speech[i : i + 24000]))
            events += await _events(ws, "conversation.item.input_audio_transcription.delta")
            r.server.should_exit = True
            with contextlib.suppress(ConnectionClosed):
                while True:
                    events.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            return events, ws.close_code

    try:
        events, code = asyncio.run(go())
    finally:
        r.stop()
    kinds = [e["type"] for e in events]
    assert code == 1001 and events[-1]["error"]["code"] == "shutting_down", (code, events[-1])
    assert kinds.index("conversation.item.input_audio_transcription.completed") < len(kinds) - 1
    completed = next(e for e in events if e["type"].endswith(".completed"))
    assert completed["transcript"].lower().startswith("the code is")


BAD_UPDATES = [
    ({"type": 5}, "unsupported_option"),
    ({"audio": None}, "invalid_value"),
    ({"audio": {"input": {"format": {"rate": "24000"}}}}, "invalid_value"),
    ({"audio": {"input": {"format": {"rate": 384000}}}}, "unsupported_rate"),
    ({"audio": {"input": {"turn_detection": "yes"}}}, "invalid_value"),
    ({"audio": {"input": {"transcription": {"model": "en-large"}}}}, "unknown_model"),
    ({"audio": {"input": {"transcription": {"language": "de"}}}}, "unsupported_option"),
    ({"audio": {"input": {"transcription": {"keywords": ["ok"] * 1000}}}}, "invalid_value"),
    ({"include": ["everything"]}, "invalid_value"),
    ([], "invalid_value"),
]


def test_every_bad_update_is_answered_and_the_session_goes_on(en_open_server: Running) -> None:
    """Each wrong session.update gets an error with its code (the model, its language and the hotwords checked at the
    update, not at the first audio); nothing is applied, and a good update after them all is."""

    async def go() -> tuple[list[dict], dict]:
        async with connect(f"ws://127.0.0.1:{en_open_server.port}/v1/realtime") as ws:
            await _events(ws, "session.created")
            errors = []
            for i, (session, _) in enumerate(BAD_UPDATES):
                await ws.send(json.dumps({"type": "session.update", "session": session, "event_id": f"u{i}"}))
                errors.append((await _events(ws, "error"))[-1]["error"])
            await ws.send(json.dumps({"type": "session.update", "session": {"include": [LOGPROBS]}}))
            return errors, (await _events(ws, "session.updated"))[-1]

    errors, updated = asyncio.run(go())
    assert [(e["code"], e["event_id"]) for e in errors] == [(code, f"u{i}") for i, (_, code) in enumerate(BAD_UPDATES)]
    shown = updated["session"]
    assert shown["include"] == [LOGPROBS] and shown["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
