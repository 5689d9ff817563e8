"""Deepgram's API (server/deepgram.py, server/routes_deepgram.py): the query read into a start, containerized audio
told by its first bytes; then en-open through Deepgram's own Python SDK (live: interim results, smart format, VAD
events, utterance ends, Finalize, Configure, Metadata; pre-recorded: words and utterances), keyterms as hotwords,
WAV and WebM streamed without an encoding, Deepgram's three ways to send a key, and the refusals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time

import httpx
import numpy as np
import pytest
from deepgram import DeepgramClient
from deepgram.core.events import EventType
from deepgram.environment import DeepgramClientEnvironment
from deepgram.listen.v1.types import ListenV1Configure
from starlette.datastructures import QueryParams
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from parley.audio import encode_pcm
from server.deepgram import parse_query, sniff_container, wav_header
from server.protocol import ProtocolError
from tests.test_opusstream import _speech_webm
from tests.test_server import Running, _wav

SAID = "the code is one two three four five six"
MODELS = ["en-open", "en-small"]


def _q(query: str):
    return parse_query(QueryParams(query), MODELS)


# ---- The query ----


def test_the_query_becomes_a_start() -> None:
    c = _q(
        "model=nova-3&encoding=linear16&sample_rate=8000&interim_results=true&smart_format=true&endpointing=300"
        "&keywords=kowalczyk:3&keyterm=Zentrix%20Labs&language=en-US&diarize=true&redact=pci&tag=x"
    )
    assert c.fields == {
        "type": "start",
        "sample_rate": 8000,
        "punctuate": True,
        "numerals": True,
        "endpointing": {"silence_after_speech_s": 0.3},
        "language": "en",
        "hotwords": [{"phrase": "kowalczyk", "boost": 3.0}, "zentrix labs"],
        "redact": True,
        "profanity_filter": False,
        "talkers": True,
    }
    assert (c.encoding, c.interim_results, c.formatted, c.model_name) == ("s16le", True, True, "nova-3")
    assert _q("model=en-small").fields["model"] == "en-small"  # Parley's names pick a model; Deepgram's the default
    assert _q("encoding=mulaw&sample_rate=8000&endpointing=false").fields["endpointing"] is False
    assert _q("encoding=opus").encoding == "ogg" and "sample_rate" not in _q("encoding=opus").fields
    assert _q("").encoding is None  # containerized: told by the first bytes
    for query, code in [
        ("encoding=flac&sample_rate=16000", "unsupported_encoding"),
        ("encoding=linear16", "invalid_value"),
        ("encoding=linear16&sample_rate=384000", "invalid_value"),
        ("interim_results=yes", "invalid_value"),
        ("no_such_parameter=1", "invalid_value"),
        ("keywords=kowalczyk:-5", "unsupported_option"),
        ("multichannel=true&channels=2", "unsupported_option"),  # channels apart need PCM
    ]:
        with pytest.raises(ProtocolError) as e:
            _q(query)
        assert e.value.code == code, query


def test_containers_are_told_by_their_first_bytes() -> None:
    wav = _wav(np.zeros(160, np.float32), 8000)
    assert [sniff_container(b) for b in (wav, b"\x1aE\xdf\xa3xxxx", b"OggSxxxx", b"\0\0\0\x20ftypM4A ")] == [
        "wav",
        "webm",
        "ogg",
        "mp4",
    ]
    assert sniff_container(b"\0" * 16) is None
    assert wav_header(wav[:20]) is None  # not all there yet
    encoding, rate, channels, begins = wav_header(wav)
    assert (encoding, rate, channels) == ("s16le", 8000, 1) and len(wav) - begins == 320


# ---- Deepgram's SDK against en-open ----


def _client(server: Running, key: str = "unused") -> DeepgramClient:
    env = DeepgramClientEnvironment(
        base=server.http, production=f"ws://127.0.0.1:{server.port}", agent="", agent_rest=""
    )
    return DeepgramClient(api_key=key, environment=env, telemetry_opt_out=True)


def _pcm(code_speech: tuple[np.ndarray, int], pause_s: float) -> bytes:
    x, rate = code_speech
    return encode_pcm(np.concatenate([x, np.zeros(int(rate * pause_s), np.float32)]), "s16le")


def test_deepgrams_sdk_streams_live(en_open_server: Running, code_speech: tuple[np.ndarray, int]) -> None:
    """The sentence, a pause that closes it (an endpoint: speech_final), the sentence again closed by a Finalize
    (from_finalize), CloseStream: interim results while it is spoken, formatted finals, SpeechStarted before each
    turn, UtteranceEnd after each, a Configure answered, Metadata last."""
    first, second = _pcm(code_speech, 1.5), _pcm(code_speech, 0.3)
    messages: list[dict] = []
    options = {"interim_results": "true", "smart_format": "true", "vad_events": "true", "utterance_end_ms": "1000"}
    with _client(en_open_server).listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate="16000", **options
    ) as conn:
        conn.on(EventType.MESSAGE, lambda m: messages.append(m.model_dump(exclude_none=True)))
        listening = threading.Thread(target=conn.start_listening)
        listening.start()
        for pcm in (first, second):
            for i in range(0, len(pcm), 3200):
                conn.send_media(pcm[i : i + 3200])
                time.sleep(0.005)
            if pcm is first:
                conn.send_configure(ListenV1Configure(type="Configure", keyterms=["mcallister"]))
        conn.send_finalize()
        time.sleep(1.0)
        conn.send_close_stream()
        listening.join(30)
    kinds = [m["type"] for m in messages]
    finals = [m for m in messages if m["type"] == "Results" and m["is_final"]]
    assert [f["channel"]["alternatives"][0]["transcript"] for f in finals] == ["The code is 123456."] * 2
    assert [(f["speech_final"], f["from_finalize"]) for f in finals] == [(True, False), (False, True)]
    interim = [m for m in messages if m["type"] == "Results" and not m["is_final"]]
    assert len(interim) >= 6 and interim[0]["start"] == 0.0
    assert interim[-1]["channel"]["alternatives"][0]["transcript"] == SAID  # the open segment, before formatting
    words = finals[0]["channel"]["alternatives"][0]["words"]
    assert [w["word"] for w in words] == SAID.split() and all(0 <= w["confidence"] <= 1 for w in words)
    assert finals[1]["start"] == pytest.approx(finals[0]["start"] + finals[0]["duration"], abs=0.001)
    assert kinds.count("SpeechStarted") == 2 and kinds.index("SpeechStarted") < kinds.index("Results")
    ends = [m for m in messages if m["type"] == "UtteranceEnd"]
    assert [e["last_word_end"] for e in ends] == [f["channel"]["alternatives"][0]["words"][-1]["end"] for f in finals]
    assert any(m["type"] == "ConfigureSuccess" and m["keyterms"] == ["mcallister"] for m in messages)
    meta = messages[-1]
    assert meta["type"] == "Metadata" and meta["duration"] == pytest.approx(
        (len(first) + len(second)) / 32000, abs=0.01
    )
    assert next(iter(meta["model_info"].values()))["name"] == "en-open"
    assert en_open_server.metric('parley_streams_total{model="en-open",protocol="deepgram"}') >= 1


def test_deepgrams_sdk_transcribes_a_file(en_open_server: Running, code_speech: tuple[np.ndarray, int]) -> None:
    """Pre-recorded: a WAV file's transcript, its words with punctuated_word, and its utterances."""
    x, rate = code_speech
    answer = _client(en_open_server).listen.v1.media.transcribe_file(
        request=_wav(np.concatenate([x, np.zeros(rate, np.float32), x]), rate),
        model="nova-3",
        smart_format=True,
        utterances=True,
    )
    alternative = answer.results.channels[0].alternatives[0]
    assert alternative.transcript == "The code is 123456. The code is 123456."
    assert [w.word for w in alternative.words] == SAID.split() * 2
    assert [u.transcript for u in answer.results.utterances] == ["The code is 123456."] * 2
    assert answer.metadata.channels == 1 and answer.metadata.duration == pytest.approx(2 * len(x) / rate + 1, abs=0.01)
    r = httpx.post(en_open_server.http + "/v1/listen", json={"url": "https://example.org/a.wav"}, timeout=30)
    assert r.status_code == 415 and r.json()["err_code"] == "unsupported_encoding", r.text
    r = httpx.post(en_open_server.http + "/v1/listen", content=b"not audio", headers={"content-type": "audio/wav"})
    assert r.status_code == 400 and r.json()["err_code"] == "bad_audio" and "request_id" in r.json()


# ---- Raw clients ----


async def _session(url: str, chunks: list[bytes | str], headers: dict | None = None, subprotocols=None) -> tuple:
    """Sends `chunks` (audio bytes, or a text message) then CloseStream; every message, and the close code."""
    messages = []
    async with connect(url, additional_headers=headers or {}, subprotocols=subprotocols) as ws:

        async def send() -> None:
            with contextlib.suppress(ConnectionClosed):  # a refused stream is closed while the client sends
                for chunk in chunks:
                    await ws.send(chunk)
                await ws.send(json.dumps({"type": "CloseStream"}))

        sending = asyncio.create_task(send())
        with contextlib.suppress(ConnectionClosed):
            async for m in ws:
                messages.append(json.loads(m))
        await sending
        return messages, ws.close_code, ws.subprotocol


def _cut(data: bytes, n: int = 2000) -> list[bytes]:
    return [data[i : i + n] for i in range(0, len(data), n)]


def _said(messages: list[dict]) -> str:
    return " ".join(
        m["channel"]["alternatives"][0]["transcript"] for m in messages if m["type"] == "Results" and m["is_final"]
    )


def test_containerized_audio_streams_without_an_encoding(
    en_open_server: Running, code_speech: tuple[np.ndarray, int]
) -> None:
    """No encoding: a WAV file streamed as it is (its header read, here at 8 kHz with its header cut in two), and a
    browser's WebM Opus; each captioned."""
    x, rate = code_speech
    from parley.resample import resample

    wav = _wav(resample(np.concatenate([x, np.zeros(rate // 2, np.float32)]), rate, 8000), 8000)
    url = f"ws://127.0.0.1:{en_open_server.port}/v1/listen"
    messages, code, _ = asyncio.run(_session(url, [wav[:30], *_cut(wav[30:])]))
    assert _said(messages) == SAID and code == 1000, messages[-2:]
    messages, code, _ = asyncio.run(_session(url + "?punctuate=true", _cut(_speech_webm(code_speech))))
    assert _said(messages) == "The code is one two three four five six." and code == 1000


def test_refusals_are_an_error_message_and_a_close(en_open_server: Running) -> None:
    url = f"ws://127.0.0.1:{en_open_server.port}/v1/listen"
    for query, chunks, code, close in [
        ("?encoding=flac&sample_rate=16000", [], "unsupported_encoding", 1003),
        ("?model=nova-3&bogus=1", [], "invalid_value", 1008),
        ("?encoding=linear16&sample_rate=16000", ["{not json"], "bad_json", 1003),
        ("?encoding=linear16&sample_rate=16000", [json.dumps({"type": "Transcribe"})], "bad_message", 1008),
        ("", [b"\0" * 64], "bad_audio", 1003),
    ]:
        messages, got, _ = asyncio.run(_session(url + query, chunks))
        assert messages[-1]["type"] == "Error" and messages[-1]["variant"] == code, (query, messages)
        assert got == close, (query, got)


def test_deepgrams_ways_to_send_a_key(keyed: Running) -> None:
    """`Authorization: Token KEY` (the SDKs), `Bearer KEY`, and a browser's subprotocols `token, KEY` (the accept
    names "token"); no key or a wrong one is an Error `unauthorized` and close 1008."""
    url = f"ws://127.0.0.1:{keyed.port}/v1/listen?encoding=linear16&sample_rate=16000"
    audio = [b"\0" * 3200]
    for headers, subprotocols in [({"Authorization": "Token k1"}, None), ({"Authorization": "Bearer k1"}, None)]:
        messages, code, _ = asyncio.run(_session(url, audio, headers, subprotocols))
        assert code == 1000 and messages[-1]["type"] == "Metadata", messages
    messages, code, subprotocol = asyncio.run(_session(url, audio, None, ["token", "k1"]))
    assert code == 1000 and subprotocol == "token" and messages[-1]["type"] == "Metadata"
    for headers, subprotocols in [({}, None), ({"Authorization": "Token k2"}, None), (None, ["token", "k2"])]:
        messages, code, _ = asyncio.run(_session(url, audio, headers, subprotocols))
        assert code == 1008 and messages[-1]["variant"] == "unauthorized", (headers, subprotocols, messages)
    r = httpx.post(f"http://127.0.0.1:{keyed.port}/v1/listen", content=b"", headers={"Authorization": "Token k2"})
    assert r.status_code == 401 and r.json()["err_code"] == "unauthorized"


def test_a_keyterm_is_a_hotword(en_open_server: Running) -> None:
    """`keyterm=mcallister`: a name en-open spells "macalister" by itself comes out as the app asked."""
    from models.data.espeak import synthesize
    from parley.resample import resample
    from tests.test_context import NAME, SENTENCE

    syn = synthesize(SENTENCE, voice="en-us", variant="m3", rate=160)
    x = np.concatenate([resample(syn.samples, syn.sample_rate, 16000), np.zeros(8000, np.float32)])
    url = f"ws://127.0.0.1:{en_open_server.port}/v1/listen?encoding=linear16&sample_rate=16000"
    plain, _, _ = asyncio.run(_session(url, _cut(encode_pcm(x, "s16le"), 3200)))
    boosted, _, _ = asyncio.run(_session(url + f"&keyterm={NAME}", _cut(encode_pcm(x, "s16le"), 3200)))
    assert NAME not in _said(plain).split() and NAME in _said(boosted).split(), (_said(plain), _said(boosted))


def test_interleaved_channels_are_averaged(en_open_server: Running, code_speech: tuple[np.ndarray, int]) -> None:
    """`channels=2` without multichannel: the speech in one channel, silence in the other, captioned as one; a
    message that is not whole frames is bad_audio."""
    x, rate = code_speech
    x = np.concatenate([x, np.zeros(rate // 2, np.float32)])
    stereo = encode_pcm(np.stack([x, np.zeros_like(x)], axis=1).reshape(-1), "s16le")
    url = f"ws://127.0.0.1:{en_open_server.port}/v1/listen?encoding=linear16&sample_rate=16000&channels=2"
    messages, code, _ = asyncio.run(_session(url, _cut(stereo, 6400)))
    assert _said(messages) == SAID and code == 1000, messages[-2:]
    messages, code, _ = asyncio.run(_session(url, [b"\0" * 6]))
    assert messages[-1]["variant"] == "bad_audio" and "whole frames of 2 channels" in messages[-1]["description"]


def test_multichannel_decodes_each_channel_apart(en_open_server: Running, code_speech: tuple[np.ndarray, int]) -> None:
    """`multichannel=true&channels=2` (a stereo call): each channel a stream of its own, its Results marked
    `channel_index` [c, 2]; here the sentence in both, the second channel's a second later."""
    x, rate = code_speech
    pause = np.zeros(rate, np.float32)
    left, right = np.concatenate([x, pause, pause]), np.concatenate([pause, x, pause])
    stereo = encode_pcm(np.stack([left, right], axis=1).reshape(-1), "s16le")
    url = (
        f"ws://127.0.0.1:{en_open_server.port}/v1/listen?encoding=linear16&sample_rate=16000&channels=2"
        "&multichannel=true&vad_events=true"
    )
    messages, code, _ = asyncio.run(_session(url, _cut(stereo, 6400)))
    finals = [m for m in messages if m["type"] == "Results" and m["is_final"]]
    assert code == 1000 and sorted(f["channel_index"][0] for f in finals) == [0, 1], finals
    assert all(f["channel_index"][1] == 2 and f["channel"]["alternatives"][0]["transcript"] == SAID for f in finals)
    start = {f["channel_index"][0]: f["channel"]["alternatives"][0]["words"][0]["start"] for f in finals}
    assert start[1] - start[0] == pytest.approx(1.0, abs=0.1)
    assert sorted(m["channel"] for m in messages if m["type"] == "SpeechStarted") == [[0, 2], [1, 2]]
    assert messages[-1]["type"] == "Metadata" and messages[-1]["channels"] == 2
    assert en_open_server.metric("parley_active_streams") == 0  # both channels' slots given back
