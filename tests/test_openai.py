"""OpenAI's audio API on Parley (server/routes_openai.py): the forms, answers and errors of
`POST /v1/audio/transcriptions` and `/v1/audio/translations` on the stand-in engine of tests/test_app.py, then
OpenAI's own Python SDK against en-open on real speech, as an app written for OpenAI would call it."""

from __future__ import annotations

import io
import json
import warnings
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile
from openai import BadRequestError, NotFoundError, OpenAI

from server.settings import Settings
from tests.test_app import FINAL, KEY, App, FakeEngine, _wav
from tests.test_server import Running

SR = 16000
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def app(tmp_path: Path) -> App:
    return App(Settings(bundles=tmp_path))


def _form(a: App, path: str = "/v1/audio/transcriptions", file: bytes | None = None, **fields: str | list[str]):
    files = {"file": ("talk.wav", _wav() if file is None else file, "audio/wav")}
    data = {k.replace("__", "[]"): v for k, v in fields.items()}
    return a.client.post(path, files=files, data=data)


def test_the_response_formats(app: App) -> None:
    r = _form(app, model="whisper-1")
    assert r.status_code == 200 and r.json() == {"text": "set a timer", "usage": {"type": "duration", "seconds": 1}}
    assert _form(app, response_format="text").text == "set a timer\n"
    srt = _form(app, response_format="srt")
    assert srt.text == "1\n00:00:00,100 --> 00:00:01,100\nset a timer\n"
    assert _form(app, response_format="vtt").text.startswith("WEBVTT\n\n00:00:00.100 --> 00:00:01.100\nset a timer")
    verbose = _form(app, response_format="verbose_json", timestamp_granularities__=["word", "segment"]).json()
    assert verbose["task"] == "transcribe" and verbose["language"] == "english" and verbose["duration"] == 0.5
    assert verbose["words"] == [{k: w[k] for k in ("word", "start", "end")} for w in FINAL["words"]]
    (segment,) = verbose["segments"]
    assert (segment["id"], segment["start"], segment["end"], segment["text"]) == (0, 0.0, 1.2, " set a timer")
    assert segment["avg_logprob"] == pytest.approx(np.log(0.9), abs=1e-4)  # the words' confidences
    words_only = _form(app, response_format="verbose_json", timestamp_granularities__=["word"]).json()
    assert "segments" not in words_only and len(words_only["words"]) == 3
    assert "words" not in _form(app, response_format="verbose_json").json()  # segments are the default
    assert app.count('parley_transcribe_requests_total{status="200"}') == 7
    assert app.service.connections == 0


def test_logprobs_are_the_words_confidences(app: App) -> None:
    """include[]=logprobs: a token per recognized word (OpenAI's leading space), the log of its confidence."""
    body = _form(app, include__=["logprobs"]).json()
    assert body["logprobs"] == [
        {"token": token, "logprob": round(float(np.log(0.9)), 4), "bytes": list(token.encode())}
        for token in ("set", " a", " timer")
    ]
    assert "logprobs" not in _form(app).json()
    r = _form(app, include__=["logprobs"], stream="true")
    delta = json.loads(r.text.split("\n\n")[0].removeprefix("data: "))
    assert delta["logprobs"] == body["logprobs"]
    bad = _form(app, include__=["everything"])
    assert bad.status_code == 400 and "include" in bad.json()["error"]["message"]


def test_the_stream_is_server_sent_events_of_text(app: App) -> None:
    r = _form(app, stream="true")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(block.removeprefix("data: ")) for block in r.text.strip().split("\n\n")]
    assert events == [
        {"type": "transcript.text.delta", "delta": "set a timer"},
        {"type": "transcript.text.done", "text": "set a timer", "usage": {"type": "duration", "seconds": 1}},
    ]
    assert app.service.connections == 0  # given back when the answer ended


def test_a_failure_while_streaming_is_an_error_event(tmp_path: Path) -> None:
    a = App(Settings(bundles=tmp_path), engines=(FakeEngine(failure=RuntimeError("boom")),))
    r = _form(a, stream="true")
    event, data = r.text.strip().split("\n")
    assert event == "event: error"
    assert json.loads(data.removeprefix("data: "))["error"]["code"] == "internal"
    assert a.service.connections == 0


def test_parley_fields_ride_along_and_model_names_map(app: App) -> None:
    """Fields the form adds (the SDK's extra_body) are a start message's; OpenAI's model names mean the default
    model, a name of neither kind is unknown."""
    r = _form(app, model="gpt-4o-transcribe", hotwords__=["zentrix", "kowalczyk"], search="beam")
    assert r.status_code == 200 and app.service.engines["fake"].heard[-1][2] == "beam"
    r = _form(app, hotwords="zentrix,kowalczyk")
    assert r.status_code == 200 and app.service.engines["fake"].heard[-1][2] == "beam"  # hotwords: beam search
    r = _form(app, model="fake", language="en", chunking_strategy="auto", known_speaker_names__=["ann"])
    assert r.status_code == 200  # OpenAI's fields Parley does not use are accepted
    r = _form(app, model="tiny.en")
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "message": "no model 'tiny.en'; this server has ['fake']",
            "type": "invalid_request_error",
            "param": None,
            "code": "unknown_model",
        }
    }


@pytest.mark.parametrize(
    ("fields", "file", "status", "code", "says"),
    [
        ({"response_format": "xml"}, None, 400, "invalid_value", "response_format"),
        ({"sample_rate": "8000"}, None, 400, "unknown_field", "come from the file"),
        ({"colour": "blue"}, None, 400, "unknown_field", 'unknown form field(s) ["colour"]'),
        ({"temperature": "2"}, None, 400, "invalid_value", "temperature"),
        ({"stream": "maybe"}, None, 400, "invalid_value", "stream"),
        ({"timestamp_granularities__": ["char"]}, None, 400, "invalid_value", "timestamp_granularities"),
        ({"language": "de"}, None, 400, "unsupported_option", "cannot recognize language"),
        ({}, b"ID3\x03\x00" + bytes(200), 400, "bad_audio", "an MP3 file Parley cannot decode"),
        ({}, b"\x1aE\xdf\xa3" + bytes(200), 400, "bad_audio", "a WebM file Parley cannot read"),
        ({}, bytes(4) + b"ftypM4A " + bytes(200), 400, "bad_audio", "ffmpeg -i talk.m4a"),
        ({}, b"OggS" + bytes(200), 400, "bad_audio", "an Ogg file Parley cannot decode"),
        ({}, b"hello there", 400, "bad_audio", "not an audio file Parley reads"),
        ({}, b"RIFF....WAVEjunk", 400, "bad_audio", "not a WAV file"),
    ],
)
def test_errors_come_in_openais_shape(app: App, fields: dict, file: bytes | None, status: int, code: str, says: str):
    r = _form(app, file=file, **fields)
    assert r.status_code == status
    error = r.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", code) and says in error["message"]
    assert app.service.connections == 0


def test_what_is_not_a_form_with_a_file_is_refused(app: App) -> None:
    r = app.client.post("/v1/audio/transcriptions", content=_wav(), headers={"content-type": "audio/wav"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]["message"]
    r = app.client.post("/v1/audio/transcriptions", data={"model": "whisper-1"}, files={"x": ("a", b"", "text/plain")})
    assert r.status_code == 400 and "no file" in r.json()["error"]["message"]
    assert app.count('parley_transcribe_requests_total{status="415"}') == 1


def test_keys_and_limits_hold_as_for_the_other_posts(tmp_path: Path) -> None:
    a = App(Settings(bundles=tmp_path, api_keys=(KEY,), max_upload_bytes=20_000))
    r = _form(a)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = a.client.post(
        "/v1/audio/transcriptions",
        files={"file": ("talk.wav", _wav(1.0), "audio/wav")},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_big"
    r = a.client.post(
        "/v1/audio/transcriptions", files={"file": ("t.wav", _wav(0.2), "audio/wav")}, headers={"X-API-Key": KEY}
    )
    assert r.status_code == 200 and r.json()["text"] == "set a timer"


def test_a_translation_of_an_english_models_audio_is_its_transcript(app: App) -> None:
    r = _form(app, "/v1/audio/translations", response_format="verbose_json")
    assert r.status_code == 200 and (r.json()["task"], r.json()["text"]) == ("translate", "set a timer")
    german = FakeEngine("de-only")
    german.languages = ["de"]
    app.service.engines = {"de-only": german}  # type: ignore[dict-item]
    app.service.default_model = "de-only"
    r = _form(app, "/v1/audio/translations")
    assert r.status_code == 400 and "cannot translate into English" in r.json()["error"]["message"]


def test_models_list_reads_as_openais(tmp_path: Path) -> None:
    a = App(Settings(bundles=tmp_path), engines=(FakeEngine("b"), FakeEngine("a")))
    client = OpenAI(base_url="http://testserver/v1", api_key="x", http_client=a.client)
    assert [m.id for m in client.models.list()] == ["a", "b"]
    assert a.client.get("/v1/models").json()["default"] == "a"  # Parley's own fields stay


# ---- OpenAI's SDK against en-open ----


def _wav_file(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def _encoded(x: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, x, SR, format=fmt)
    return buf.getvalue()


def test_openais_sdk_transcribes_real_speech(en_open_server: Running, code_speech: tuple[np.ndarray, int]) -> None:
    """`client.audio.transcriptions.create` as an app written for OpenAI calls it, on en-open: the text with its
    numerals, words with times, the stream's events, Parley's redaction through `extra_body`, and the SDK's own
    errors."""
    audio = _wav_file(code_speech[0])
    client = OpenAI(base_url=f"{en_open_server.http}/v1", api_key="unused", max_retries=0)
    plain = client.audio.transcriptions.create(model="whisper-1", file=("code.wav", audio))
    assert "123456" in plain.text.replace(" ", "")  # "one two three four five six", written as numerals
    verbose = client.audio.transcriptions.create(
        model="whisper-1", file=("code.wav", audio), response_format="verbose_json", timestamp_granularities=["word"]
    )
    words = [w.word for w in verbose.words or []]
    assert words[-6:] == ["one", "two", "three", "four", "five", "six"]
    assert all(a.end <= b.start for a, b in zip(verbose.words[:-1], verbose.words[1:], strict=True))
    events = list(client.audio.transcriptions.create(model="whisper-1", file=("code.wav", audio), stream=True))
    assert events[-1].type == "transcript.text.done" and events[-1].text == plain.text
    assert "".join(e.delta for e in events[:-1]) == plain.text
    redacted = client.audio.transcriptions.create(
        model="whisper-1", file=("code.wav", audio), extra_body={"redact": "true"}
    )
    assert "[redacted]" in redacted.text and "123" not in redacted.text
    with pytest.raises(BadRequestError, match=r"an MP4 file Parley cannot read \(no moov box"):  # a cut recording
        client.audio.transcriptions.create(model="whisper-1", file=("a.m4a", bytes(4) + b"ftypM4A " + bytes(100)))
    mp3 = client.audio.transcriptions.create(model="whisper-1", file=("code.mp3", _encoded(code_speech[0], "MP3")))
    assert "123456" in mp3.text.replace(" ", "")  # the format a phone app or browser uploads
    with pytest.raises(NotFoundError, match="no model"):
        client.audio.transcriptions.create(model="en-large", file=("code.wav", audio))
    assert "en-open" in [m.id for m in client.models.list()]


def test_a_plain_form_post_gets_the_same_answer(en_open_server: Running, code_speech: tuple[np.ndarray, int]) -> None:
    """curl's form (`-F file=@talk.wav -F model=whisper-1`) from a plain HTTP client, and a translation of English
    speech by the English model: its transcript."""
    r = httpx.post(
        f"{en_open_server.http}/v1/audio/transcriptions",
        files={"file": ("code.wav", _wav_file(code_speech[0]), "audio/wav")},
        data={"model": "whisper-1", "response_format": "text"},
    )
    assert r.status_code == 200
    assert "123456" in r.text.replace(" ", "")
    translated = httpx.post(
        f"{en_open_server.http}/v1/audio/translations",
        files={"file": ("code.wav", _wav_file(code_speech[0]), "audio/wav")},
        data={"model": "whisper-1"},
    )
    assert translated.json()["text"] == r.text.strip()


def test_a_multilingual_model_translates_into_english(tmp_path: Path) -> None:
    """sm2-mini through the translations route: German speech comes back in English from the model's English
    head, while the transcription route captions it in German."""
    from fastapi.testclient import TestClient

    from models.data.espeak import synthesize
    from parley.resample import resample
    from server.app import create_app

    syn = synthesize("stelle einen wecker für sieben uhr", voice="de", rate=160)
    german = _wav_file(resample(syn.samples, syn.sample_rate, SR))
    with TestClient(create_app(Settings(bundles=ROOT / "bundles" / "sm2-mini", intra_op_threads=1))) as http:
        client = OpenAI(base_url="http://testserver/v1", api_key="x", http_client=http)
        with warnings.catch_warnings():  # the SDK marks the translations API deprecated; it is still served
            warnings.simplefilter("ignore", DeprecationWarning)
            english = client.audio.translations.create(model="whisper-1", file=("de.wav", german))
        caption = client.audio.transcriptions.create(
            model="whisper-1", file=("de.wav", german), response_format="verbose_json"
        )
    assert caption.language == "german" and "wecker" in caption.text.lower()
    assert "timer" in english.text and "wecker" not in english.text.lower()


def test_speaker_labels_are_openais() -> None:
    from server.routes_openai import speaker_label

    assert [speaker_label(t) for t in (0, 1, 25, 26, 27, None)] == ["A", "B", "Z", "AA", "AB", "unknown"]


def test_diarized_json_says_who_speaks(en_open_server: Running) -> None:
    """response_format=diarized_json (gpt-4o-transcribe-diarize's): en-open's talkers as speakers A and B taking
    turns, the same in the streamed segments; a model without a talker model refuses it."""
    from tests.test_talkers import _conversation

    audio, spans = _conversation()
    client = OpenAI(base_url=f"{en_open_server.http}/v1", api_key="unused", max_retries=0)
    wav = ("talk.wav", _wav_file(audio))
    body = client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize", file=wav, response_format="diarized_json"
    )
    speakers = [s.speaker for s in body.segments]
    assert speakers == ["A", "B", "A", "B", "A"], [(s.speaker, s.text) for s in body.segments]
    for segment, (start, end, _) in zip(body.segments, spans, strict=True):
        assert start - 0.5 <= segment.start < segment.end <= end + 0.8  # within its turn
    events = list(
        client.audio.transcriptions.create(model="whisper-1", file=wav, response_format="diarized_json", stream=True)
    )
    streamed = [e for e in events if e.type == "transcript.text.segment"]
    assert [e.speaker for e in streamed] == speakers and events[-1].type == "transcript.text.done"
    with pytest.raises(BadRequestError, match="no talker model"):
        client.audio.transcriptions.create(model="en-small", file=wav, response_format="diarized_json")
