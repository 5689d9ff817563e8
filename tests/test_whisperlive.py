"""WhisperLive's protocol at `WS /` (server/whisperlive.py): the options read into a start, the audio formats, then
en-open answering a client that speaks it as WhisperLive's own client does (options, SERVER_READY, float32 frames of
4096 samples, segments, END_OF_AUDIO, DISCONNECT), the last N segments, translations from sm2-mini, the refusals
(ERROR, and WAIT from a full server), and Vosk's clients still served on the same path."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.protocol import ProtocolError
from server.whisperlive import is_whisperlive_options, parse_options, samples_of
from tests.test_server import Running, running

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"en-open": object(), "sm2-mini": object()}


def test_the_options_become_a_start() -> None:
    o = parse_options(
        json.dumps(
            {
                "uid": "abc", "language": "en-US", "task": "transcribe", "model": "small", "use_vad": True,
                "send_last_n_segments": 3, "no_speech_thresh": 0.45, "hotwords": "Kowalczyk, Zentrix",
                "audio_format": "int16", "enable_translation": False, "target_language": "fr", "initial_prompt": None,
            }
        ),
        MODELS,
    )  # fmt: skip
    assert o.uid == "abc" and o.audio_format == "int16" and o.last_n == 3 and o.language == "en"
    assert o.fields == {"type": "start", "partials": True, "language": "en", "hotwords": ["kowalczyk", "zentrix"]}
    assert o.translate_to is None and o.ignored == ("no_speech_thresh", "use_vad") and o.prompt is None
    assert parse_options('{"uid": "u", "initial_prompt": "Call McAllister."}', MODELS).prompt == "Call McAllister."
    # a Parley bundle's name picks it; Whisper's sizes pick the default; translate means into English
    o = parse_options('{"uid": "u", "model": "sm2-mini", "language": "de", "task": "translate"}', MODELS)
    assert o.fields["model"] == "sm2-mini" and o.fields["translate"] == ["en"] and o.translate_to == "en"
    o = parse_options('{"uid": "u", "enable_translation": true, "target_language": "de", "language": null}', MODELS)
    assert o.fields["translate"] == ["de"] and o.language is None and "model" not in o.fields
    for text, code in [
        ("[1]", "bad_json"),
        ('{"language": "en"}', "invalid_value"),
        ('{"uid": "u", "audio_format": "mp3"}', "invalid_value"),
        ('{"uid": "u", "task": "summarize"}', "invalid_value"),
        ('{"uid": "u", "send_last_n_segments": 0}', "invalid_value"),
        ('{"uid": "u", "language": 5}', "invalid_value"),
        ('{"uid": "u", "hotwords": [1, 2]}', "invalid_value"),
        ('{"uid": "u", "initial_prompt": ["Call"]}', "invalid_value"),
    ]:
        with pytest.raises(ProtocolError) as e:
            parse_options(text, MODELS)
        assert e.value.code == code, text
    assert is_whisperlive_options('{"uid": "x", "language": "en"}')
    assert not is_whisperlive_options('{"config": {"sample_rate": 16000}}') and not is_whisperlive_options(None)


def test_audio_of_each_format_becomes_float() -> None:
    x = np.array([0.5, -0.25, 0.0], np.float32)
    assert np.array_equal(samples_of(x.tobytes(), "float32"), x)
    assert np.allclose(samples_of((x * 32768).astype(np.int16).tobytes(), "int16"), x)
    assert np.allclose(samples_of((x * 128 + 128).astype(np.uint8).tobytes(), "uint8"), x)
    for data, fmt in [(b"\x00" * 6, "float32"), (b"\x00", "int16"), (np.float32([np.nan]).tobytes(), "float32")]:
        with pytest.raises(ProtocolError) as e:
            samples_of(data, fmt)
        assert e.value.code == "bad_audio"


async def _session(url: str, options: dict, audio: bytes, frame: int = 4096 * 4) -> tuple[list[dict], int | None]:
    """What a WhisperLive client gets: every message to the close, and the close code."""
    async with connect(url) as ws:
        await ws.send(json.dumps(options))
        for i in range(0, len(audio), frame):
            await ws.send(audio[i : i + frame])
        await ws.send(b"END_OF_AUDIO")
        messages = []
        try:
            async for m in ws:
                messages.append(json.loads(m))
        except ConnectionClosed:
            pass
        return messages, ws.close_code


def _root(server: Running) -> str:
    return f"ws://127.0.0.1:{server.port}/"


def test_en_open_answers_whisperlives_client(en_open_server: Running, code_speech) -> None:
    x, rate = code_speech
    silence = np.zeros(rate, np.float32)
    twice = np.concatenate([x, silence, silence, x, silence])
    options = {"uid": "client-1", "language": None, "task": "transcribe", "model": "small", "use_vad": True}
    messages, code = asyncio.run(_session(_root(en_open_server), options, twice.astype(np.float32).tobytes()))
    assert messages[0] == {
        "uid": "client-1",
        "message": "SERVER_READY",
        "backend": "faster_whisper",
        "engine": "parley",
    }
    assert messages[1] == {"uid": "client-1", "language": "en", "language_prob": 1.0}  # asked to detect: en-open's
    assert messages[-1] == {"uid": "client-1", "message": "DISCONNECT"} and code == 1000
    updates = [m["segments"] for m in messages if "segments" in m]
    assert all(m["uid"] == "client-1" for m in messages)
    # the open segment comes as it grows (completed false, last), and each final once closed
    assert any(not s[-1]["completed"] for s in updates)
    done = [s for s in updates[-1] if s["completed"]]
    assert len(done) == 2 and all("123456" in s["text"].replace(" ", "") for s in done), updates[-1]
    assert float(done[0]["end"]) <= float(done[1]["start"]) < float(done[1]["end"]) <= len(twice) / rate + 0.05
    assert done[0]["start"] == "0.000" and isinstance(done[0]["end"], str)

    # int16 frames, the language given (no detection message), only the last segment resent, word times
    pcm = (twice * 32767).astype("<i2").tobytes()
    options = {"uid": "u2", "language": "en", "audio_format": "int16", "send_last_n_segments": 1}
    messages, code = asyncio.run(_session(_root(en_open_server), {**options, "word_timestamps": True}, pcm))
    assert not any("language" in m for m in messages) and code == 1000
    last = [m["segments"] for m in messages if "segments" in m][-1]
    assert len(last) == 1 and last[0]["completed"] and "123456" in last[0]["text"].replace(" ", "")
    assert [w["word"] for w in last[0]["words"]][-3:] == ["four", "five", "six"]


def test_a_multilingual_bundle_sends_translated_segments(en_open_server: Running, code_speech) -> None:
    x, _ = code_speech
    options = {"uid": "t", "model": "sm2-mini", "language": "en", "enable_translation": True, "target_language": "de"}
    messages, code = asyncio.run(_session(_root(en_open_server), options, x.astype(np.float32).tobytes()))
    assert code == 1000, messages[-2:]
    translated = [m["translated_segments"] for m in messages if "translated_segments" in m]
    assert translated and translated[-1][-1]["completed"] and translated[-1][-1]["text"], messages[-3:]
    assert [m["segments"] for m in messages if "segments" in m][-1][-1]["completed"]


def test_refusals_are_whisperlives_status_messages(en_open_server: Running) -> None:
    async def status(url: str, options: dict) -> tuple[dict, int | None]:
        async with connect(url) as ws:
            await ws.send(json.dumps(options))
            first = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return first, ws.close_code

    for options, code in [
        ({"uid": "e1", "language": "ja"}, "unsupported_option"),
        ({"uid": "e2", "audio_format": "mp3"}, "invalid_value"),
        ({"uid": "e3", "model": "sm2-mini", "task": "translate", "language": "zh", "enable_translation": 1}, None),
    ]:
        first, close = asyncio.run(status(_root(en_open_server), options))
        if code is None:  # enable_translation must be true or false
            assert first["status"] == "ERROR" and "invalid_value" in first["message"], first
            continue
        assert first["uid"] == options["uid"] and first["status"] == "ERROR" and f"({code})" in first["message"], first
        assert close == 1008 or close == 1003 or close >= 4000, close

    # a full server: WAIT, as WhisperLive's own says when its clients are all taken
    with running(ROOT / "bundles" / "en-open", max_connections=1) as r:

        async def full() -> tuple[dict, int | None]:
            async with connect(r.url) as holder:
                await holder.send(json.dumps({"type": "start", "sample_rate": 16000, "encoding": "s16le"}))
                await holder.recv()  # ready: the one slot is taken
                return await status(_root(r), {"uid": "w"})

        first, close = asyncio.run(full())
    assert first == {"uid": "w", "status": "WAIT", "message": 1.0} and close == 1013


def test_faster_whispers_hotwords_string_becomes_the_streams_hotwords(en_open_server: Running) -> None:
    """A hotwords string as faster-whisper takes it, longer than a stream's limit and with a word the model cannot
    write: the model's share is kept (the first ones first), so the name en-open misspells comes out right."""
    from models.data.espeak import synthesize
    from parley.resample import resample
    from tests.test_context import NAME, SENTENCE

    syn = synthesize(SENTENCE, voice="en-us", variant="m3", rate=160)
    x = np.concatenate([resample(syn.samples, syn.sample_rate, 16000), np.zeros(8000, np.float32)])
    filler = " ".join(f"{a}{b}" for a in ("zor", "vel", "mak", "tri", "pol", "ken") for b in "abcdefghijklmnopqrst")
    options = {"uid": "h", "language": "en", "hotwords": f"{NAME}, 日本語 {filler}"}  # 122 words
    messages, code = asyncio.run(_session(_root(en_open_server), options, x.tobytes()))
    plain, _ = asyncio.run(_session(_root(en_open_server), {"uid": "p", "language": "en"}, x.tobytes()))
    assert code == 1000, messages[-2:]

    def heard(ms: list[dict]) -> str:
        return " ".join(s["text"] for s in [m["segments"] for m in ms if "segments" in m][-1] if s["completed"])

    assert NAME in heard(messages).lower() and NAME not in heard(plain).lower(), (heard(messages), heard(plain))


def test_the_initial_prompts_names_are_hotwords(en_open_server: Running) -> None:
    """initial_prompt, as faster-whisper takes it: its names become the stream's hotwords (server/prompt.py)."""
    from models.data.espeak import synthesize
    from parley.resample import resample
    from tests.test_context import SENTENCE

    syn = synthesize(SENTENCE, voice="en-us", variant="m3", rate=160)
    x = np.concatenate([resample(syn.samples, syn.sample_rate, 16000), np.zeros(8000, np.float32)])
    options = {"uid": "h", "language": "en", "initial_prompt": "A letter from Mr. McAllister."}
    messages, code = asyncio.run(_session(_root(en_open_server), options, x.tobytes()))
    assert code == 1000, messages[-2:]
    (last,) = [m["segments"] for m in messages if "segments" in m][-1:]
    assert "McAllister" in " ".join(s["text"] for s in last if s["completed"])
