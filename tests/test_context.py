"""The context message: a stream's hotwords replaced while it runs, in their place among its audio (a voice bot's
next turn)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import websockets

from server.protocol import ContextRequest, ProtocolError, ProtocolState, parse_text_message
from tests.test_redact import session_messages
from tests.test_server import Running

ROOT = Path(__file__).resolve().parents[1]
# A dev name of benchmarks/bench_hotwords.py that en-open spells "macalister" unless it is a hotword.
SENTENCE = "the letter from mcallister arrived after the storm"
NAME = "mcallister"


def test_the_message_is_parsed_and_checked() -> None:
    msg = parse_text_message('{"type": "context", "hotwords": ["kowalczyk", {"phrase": "zentrix labs", "boost": 3}]}')
    assert msg == ContextRequest((("kowalczyk", None), ("zentrix labs", 3.0)))
    assert parse_text_message('{"type": "context", "hotwords": []}') == ContextRequest(())
    for text, code in [
        ('{"type": "context"}', "invalid_value"),
        ('{"type": "context", "hotwords": "kowalczyk"}', "invalid_value"),
        ('{"type": "context", "hotwords": [""]}', "invalid_value"),
        ('{"type": "context", "hotwords": [], "lm": "x"}', "unknown_field"),
    ]:
        with pytest.raises(ProtocolError) as e:
            parse_text_message(text)
        assert e.value.code == code, text
    state = ProtocolState()
    with pytest.raises(ProtocolError) as e:
        state.on_text('{"type": "context", "hotwords": []}')
    assert e.value.code == "not_started"


@pytest.fixture(scope="module")
def said() -> np.ndarray:
    """`SENTENCE` in a training voice of en-open, at 16 kHz, with a second of silence after it."""
    from models.data.espeak import synthesize
    from parley.resample import resample

    syn = synthesize(SENTENCE, voice="en-us", variant="m3", rate=160)
    x = resample(syn.samples, syn.sample_rate, 16000)
    return np.concatenate([x, np.zeros(16000, np.float32)])


async def _turns(url: str, sends: list[dict | np.ndarray]) -> list[dict]:
    return await session_messages(url, {"sample_rate": 16000}, sends)


def _finals(msgs: list[dict]) -> list[str]:
    assert msgs[-1]["type"] == "end", msgs[-1]
    return [m["text"] for m in msgs if m["type"] == "final" and m["text"]]


def test_each_turn_gets_the_hotwords_sent_before_it(en_open_server: Running, said: np.ndarray) -> None:
    """A voice bot's three turns of one stream: none, the name, none again; each context sent between turns (after
    a finalize) takes effect from the next turn, in order with the audio however fast the client sends. The stream
    starts with the model's general LM (beam search), which its turn with hotwords does without."""
    finalize = {"type": "finalize"}
    msgs = asyncio.run(
        _turns(
            en_open_server.url,
            [
                said,
                finalize,
                {"type": "context", "hotwords": [NAME]},
                said,
                finalize,
                {"type": "context", "hotwords": []},
                said,
            ],
        )
    )
    first, second, third = _finals(msgs)
    assert NAME not in first.split() and NAME in second.split() and NAME not in third.split(), (first, second, third)
    assert msgs[0]["type"] == "ready" and (msgs[0]["search"], msgs[0]["lm"]) == ("beam", "general")


def test_a_context_sent_before_any_word_takes_effect_at_once(en_open_server: Running, said: np.ndarray) -> None:
    """Sent with the first audio (the open segment has no words yet), it holds for the first turn; sent in the
    middle of a turn, for the next one only."""
    half = len(said) // 3
    context = {"type": "context", "hotwords": [NAME]}
    (at_once,) = _finals(asyncio.run(_turns(en_open_server.url, [said[:1600], context, said[1600:]])))
    assert NAME in at_once.split(), at_once
    during, after = _finals(asyncio.run(_turns(en_open_server.url, [said[:half], context, said[half:], said])))
    assert NAME not in during.split() and NAME in after.split(), (during, after)


def test_bad_contexts_end_the_stream_with_a_reason(en_open_server: Running, said: np.ndarray) -> None:
    async def go(start: dict, context: dict) -> list[dict]:
        return await session_messages(en_open_server.url, {"sample_rate": 16000, **start}, [said[:3200], context])

    greedy = asyncio.run(go({"search": "greedy"}, {"type": "context", "hotwords": [NAME]}))
    assert greedy[-1]["code"] == "invalid_value" and "greedy" in greedy[-1]["message"], greedy[-1]
    too_long = asyncio.run(go({}, {"type": "context", "hotwords": ["x" * 500]}))
    assert too_long[-1]["code"] == "invalid_value", too_long[-1]
    assert asyncio.run(go({"search": "greedy"}, {"type": "context", "hotwords": []}))[-1]["type"] != "error"


def test_every_channel_of_a_multichannel_stream_gets_the_context(en_open_server: Running, said: np.ndarray) -> None:
    async def go() -> list[dict]:
        async with websockets.connect(en_open_server.url) as ws:
            start = {"type": "start", "sample_rate": 16000, "encoding": "f32le", "channels": 2}
            await ws.send(json.dumps(start))
            await ws.send(json.dumps({"type": "context", "hotwords": [NAME]}))
            await ws.send(np.repeat(said, 2).astype("<f4").tobytes())  # the same voice on both channels
            await ws.send(json.dumps({"type": "stop"}))
            return [json.loads(m) async for m in ws]

    msgs = asyncio.run(go())
    finals = {m["channel"]: m["text"] for m in msgs if m["type"] == "final" and m["text"]}
    assert set(finals) == {0, 1} and all(NAME in t.split() for t in finals.values()), finals


# ---- Hotwords from the command line: parley transcribe and parley stream ----


def test_the_commands_take_hotwords(en_open_server: Running, said: np.ndarray, tmp_path: Path, capsys) -> None:
    from clients.stream import main as stream_main
    from parley.audio import write_wav
    from server.transcribe import main as transcribe_main

    wav = tmp_path / "said.wav"
    write_wav(wav, said, 16000)
    bundles = ["--bundles", str(ROOT / "bundles"), "--model", "en-open", "--format", "srt", "--no-progress"]
    assert transcribe_main([str(wav), *bundles]) == 0
    plain = capsys.readouterr().out
    assert transcribe_main([str(wav), *bundles, "--hotwords", NAME, "zentrix labs"]) == 0
    biased = capsys.readouterr().out
    assert NAME not in plain.split() and NAME in biased.split(), (plain, biased)
    assert transcribe_main([str(wav), *bundles, "--search", "greedy", "--hotwords", NAME]) == 2
    assert "--hotwords" in capsys.readouterr().err
    assert stream_main([str(wav), "--url", en_open_server.url, "--speed", "0", "--json", "--hotwords", NAME]) == 0
    msgs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert msgs[0]["type"] == "ready" and msgs[0]["search"] == "beam" and msgs[0]["hotwords"] == 1
    assert any(NAME in m["text"].split() for m in msgs if m["type"] == "final"), msgs
