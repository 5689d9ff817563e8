"""The web layer on its own: `create_app` in a `TestClient`, with its dependencies overridden (settings, and a
`Service` whose engine is a stand-in), so that keys, origins, readiness, the model list and POST /v1/transcribe's
formats and errors are checked without a model, in seconds. The real engine behind the same routes is
tests/test_server.py's.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import wave
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from server import session
from server.app import create_app
from server.deps import get_service, get_settings
from server.metrics import ServerMetrics
from server.plan import HeadPlan, InvalidOptionError, UnsupportedOptionError
from server.recognizer import Final, Word
from server.service import ABORTED_SESSIONS_WAIT_S, Service
from server.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
KEY = "app-key"
SR = 16000
# What the stand-in engine "hears" in any audio: one segment of three words with times.
FINAL = {
    "type": "final",
    "segment": 0,
    "text": "set a timer",
    "start": 0.0,
    "end": 1.2,
    "words": [
        {"word": "set", "start": 0.1, "end": 0.3, "conf": 0.9},
        {"word": "a", "start": 0.4, "end": 0.5, "conf": 0.9},
        {"word": "timer", "start": 0.6, "end": 1.1, "conf": 0.9},
    ],
}


class FakeEngine:
    """What `Service` asks of an engine, without a model: the options of a one-language bundle, and a transcript
    of FINAL for any audio (or `failure`, raised)."""

    def __init__(self, name: str = "fake", multi_talker: bool = False, failure: Exception | None = None) -> None:
        self.name = name
        self.languages = ["en"]
        self.translate_languages: list[str] = []
        self.auto_languages: list[str] = []
        self.chunk_ms = 320
        self.lms: list[dict] = []
        self.decoding = {"search": "greedy"}
        self.punctuation: list[str] = []
        self.multi_talker = multi_talker
        self.talkers = False
        self.failure = failure
        self.heard: list[tuple[int, int, str]] = []  # (samples, rate, search) of each transcription

    def plan(self, language: str | None, translate: Sequence[str] = (), languages: Sequence[str] = ()) -> HeadPlan:
        if language not in (None, "en"):
            raise UnsupportedOptionError(f"cannot recognize language {language!r}: {self.languages}")
        if translate:
            raise UnsupportedOptionError("has no translation heads")
        return HeadPlan()

    def search_for(self, search: str | None, adaptation: object, alternatives: int = 0, plan: object = None) -> str:
        if adaptation is not None and search == "greedy":
            raise InvalidOptionError('hotwords and lm need beam search, not "greedy": omit search')
        return search or ("beam" if adaptation is not None else "greedy")

    def defaulted(self, plan: HeadPlan, search: str, adaptation: object) -> object:
        return adaptation  # no general LM

    def adapt(self, plan: HeadPlan, adaptation: object) -> None:
        pass

    def check_redaction(self, plan: HeadPlan, asked: bool = True) -> None:
        pass

    async def recognize(
        self,
        samples: np.ndarray,
        rate: int,
        search: str,
        plan: HeadPlan,
        adaptation: object,
        punctuate: bool = True,
        talkers: bool = False,
        endpoint: object = None,
        alternatives: int = 0,
        numerals: bool = True,
        redact: bool = False,
        profanity_filter: bool = False,
        on_final: Callable[[Final], None] | None = None,
    ) -> list[Final]:
        if self.failure is not None:
            raise self.failure
        self.heard.append((samples.size, rate, search))
        words = [Word(w["word"], w["start"], w["end"], w["conf"]) for w in FINAL["words"]]
        finals = [Final(FINAL["segment"], FINAL["text"], FINAL["start"], FINAL["end"], words)]
        for f in finals if on_final is not None else ():
            on_final(f)
        return finals


class App:
    """An app from `create_app`, its routes given `service` (a Service holding FakeEngines) and `settings` by
    dependency overrides; `client` talks to it in process (no lifespan: nothing is loaded)."""

    def __init__(self, settings: Settings, engines: Sequence[FakeEngine] | None = None) -> None:
        engines = [FakeEngine()] if engines is None else engines
        self.metrics = ServerMetrics()
        # The app is built with no keys and no origin rule: what the tests see comes from the overrides.
        self.app = create_app(Settings(bundles=settings.bundles), self.metrics)
        self.service = Service(settings, self.metrics)
        self.service.engines = {e.name: e for e in engines}  # type: ignore[assignment]
        self.service.default_model = min(self.service.engines) if engines else None
        self.app.dependency_overrides[get_service] = lambda: self.service
        self.app.dependency_overrides[get_settings] = lambda: settings
        self.client = TestClient(self.app)

    def count(self, sample: str) -> float:
        """A sample's value in the /metrics registry (0 when absent)."""
        for line in self.metrics.exposition().splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture()
def open_app(tmp_path: Path) -> App:
    return App(Settings(bundles=tmp_path))


@pytest.fixture()
def secure(tmp_path: Path) -> App:
    return App(Settings(bundles=tmp_path, api_keys=(KEY,), allowed_origins=("https://ok.example",)))


def _wav(seconds: float = 0.5) -> bytes:
    """A WAV file of `seconds` of silence."""
    return _wav_channels(1, seconds)


def _wav_channels(channels: int, seconds: float = 0.5) -> bytes:
    """A WAV file of `seconds` of silence on `channels` channels."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(bytes(2 * channels * int(seconds * SR)))
    return buf.getvalue()


def _post(a: App, query: str = "", body: bytes | None = None, **headers: str) -> httpx.Response:
    headers = {"content-type": "audio/wav", **{k.replace("_", "-"): v for k, v in headers.items()}}
    return a.client.post("/v1/transcribe" + query, content=_wav() if body is None else body, headers=headers)


# ---- Keys and origins ----


def test_http_endpoints_need_a_key_the_probes_do_not(secure: App) -> None:
    for path in ("/v1/models", "/metrics"):
        r = secure.client.get(path)
        assert r.status_code == 401, (path, r.status_code)
        assert r.json() == {"type": "error", "code": "unauthorized", "message": "a valid API key is required"}
        for ok in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}):
            assert secure.client.get(path, headers=ok).status_code == 200, (path, ok)
        assert secure.client.get(path + f"?api_key={KEY}").status_code == 200, path
        assert secure.client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
    assert secure.count('parley_errors_total{code="unauthorized"}') == 4
    assert secure.client.get("/healthz").json() == {"status": "ok"}
    assert secure.client.get("/readyz").status_code == 200


def test_a_keys_file_given_to_create_app_is_enforced(tmp_path: Path) -> None:
    """The settings a caller builds (not only `parley serve`'s flags) with only `api_keys_file`: keys required."""
    (tmp_path / "keys").write_text(f"{KEY}\n")
    client = TestClient(create_app(Settings(bundles=tmp_path, api_keys_file=tmp_path / "keys")))
    for path in ("/v1/models", "/metrics"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200, path
    r = client.post("/v1/transcribe", content=_wav(), headers={"content-type": "audio/wav"})
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"


def test_transcribe_refusals_are_counted_by_status(secure: App) -> None:
    r = _post(secure)
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert secure.service.engines["fake"].heard == []  # type: ignore[attr-defined]
    assert _post(secure, f"?api_key={KEY}").status_code == 200
    assert secure.count('parley_transcribe_requests_total{status="401"}') == 1
    assert secure.count('parley_transcribe_requests_total{status="200"}') == 1


def _refused_stream(a: App, path: str = "/v1/stream", **headers: str) -> tuple[dict, int]:
    """The error message a refused /v1/stream connection gets, and its close code."""
    with a.client.websocket_connect(path, headers=headers) as ws:
        msg = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    return msg, closed.value.code


def test_streams_need_a_key_then_an_allowed_origin(secure: App) -> None:
    msg, code = _refused_stream(secure)
    assert msg == {
        "type": "error",
        "code": "unauthorized",
        "message": "a valid API key is required (Authorization: Bearer KEY)",
    }
    assert code == 1008
    msg, code = _refused_stream(secure, origin="https://ok.example", authorization="Bearer wrong")
    assert (msg["code"], code) == ("unauthorized", 1008)
    msg, code = _refused_stream(secure, origin="https://evil.example", authorization=f"Bearer {KEY}")
    assert msg == {
        "type": "error",
        "code": "forbidden_origin",
        "message": 'origin "https://evil.example" is not allowed',
    }
    assert code == 1008
    # The key in the query (what browsers send), an allowed origin: past the dependencies, to the session's own
    # admission, here refused because the service drains.
    secure.service.draining = True
    msg, code = _refused_stream(secure, f"/v1/stream?api_key={KEY}", origin="https://ok.example")
    assert (msg["code"], code) == ("shutting_down", 1001)
    assert secure.count('parley_errors_total{code="unauthorized"}') == 2
    assert secure.count('parley_errors_total{code="forbidden_origin"}') == 1
    assert secure.count('parley_errors_total{code="shutting_down"}') == 1
    assert secure.service.connections == 0 and not secure.service.sessions


def test_vosk_refusals_are_a_close_with_the_reason(secure: App) -> None:
    with secure.client.websocket_connect("/") as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()  # no error message: Vosk clients know none
    assert closed.value.code == 1008
    assert closed.value.reason == "unauthorized: a valid API key is required (Authorization: Bearer KEY)"
    evil = {"x-api-key": KEY, "origin": "https://evil.example"}
    with secure.client.websocket_connect("/", headers=evil) as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.code == 1008 and closed.value.reason.startswith("forbidden_origin: "), closed.value.reason


def test_settings_come_from_the_app_not_the_environment(open_app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings are read once: a variable set after create_app changes nothing; a service of other settings (the
    keys are its KeyRing's) changes everything."""
    monkeypatch.setenv("PARLEY_API_KEYS", "from-the-environment")
    assert open_app.client.get("/v1/models").status_code == 200
    other = Service(Settings(bundles=ROOT, api_keys=("other",)), open_app.metrics)
    other.engines, other.default_model = open_app.service.engines, open_app.service.default_model
    open_app.app.dependency_overrides[get_service] = lambda: other
    assert open_app.client.get("/v1/models").status_code == 401
    assert open_app.client.get("/v1/models", headers={"X-API-Key": "other"}).status_code == 200


def test_the_app_state_is_what_the_dependencies_give(tmp_path: Path) -> None:
    settings = Settings(bundles=tmp_path, api_keys=(KEY,))
    app = create_app(settings)
    assert app.state.settings is settings and app.state.parley.settings is settings
    assert app.state.metrics is app.state.parley.metrics
    with TestClient(app) as client:  # the lifespan runs: an empty bundle folder loads nothing
        assert client.get("/readyz").json() == {"status": "no model loaded"}
        models = client.get("/v1/models", headers={"X-API-Key": KEY}).json()
        assert models == {"object": "list", "data": [], "default": None, "models": []}


# ---- Readiness and the model list ----


def test_readiness(tmp_path: Path) -> None:
    empty = App(Settings(bundles=tmp_path), engines=())
    r = empty.client.get("/readyz")
    assert (r.status_code, r.json()) == (503, {"status": "no model loaded"})
    a = App(Settings(bundles=tmp_path))
    r = a.client.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ready"})
    a.service.draining = True
    r = a.client.get("/readyz")
    assert (r.status_code, r.json()) == (503, {"status": "draining"})


def test_models_lists_each_engine_by_name(tmp_path: Path) -> None:
    a = App(Settings(bundles=tmp_path), engines=(FakeEngine("zz-talkers", multi_talker=True), FakeEngine("aa")))
    body = a.client.get("/v1/models").json()
    assert body["default"] == "aa"
    assert [m["name"] for m in body["models"]] == ["aa", "zz-talkers"]
    assert body["models"][0] == {
        "name": "aa",
        "languages": ["en"],
        "translate": [],
        "chunk_ms": 320,
        "search": ["greedy", "beam"],
        "decoding": {"search": "greedy"},
        "lms": [],
    }
    assert body["models"][1]["speakers"] == 2 and "speakers" not in body["models"][0]


# ---- POST /v1/transcribe: formats ----


def test_transcribe_formats(open_app: App) -> None:
    for query in ("", "?format=", "?format=json"):
        r = _post(open_app, query)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json", query
        assert r.json() == {"model": "fake", "duration": 0.5, "text": "set a timer", "segments": [FINAL]}
    r = _post(open_app, "?format=srt")
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-subrip; charset=utf-8"
    assert r.text == "1\n00:00:00,100 --> 00:00:01,100\nset a timer\n"
    r = _post(open_app, "?format=vtt")
    assert r.status_code == 200 and r.headers["content-type"] == "text/vtt; charset=utf-8"
    assert r.text == "WEBVTT\n\n00:00:00.100 --> 00:00:01.100\nset a timer\n"
    r = _post(open_app, "?format=xml")
    assert r.status_code == 400
    message = "format \"xml\" is not one of ['json', 'srt', 'vtt', 'ndjson']"
    assert r.json() == {"type": "error", "code": "invalid_value", "message": message}
    assert open_app.count('parley_transcribe_requests_total{status="200"}') == 5
    assert open_app.count('parley_transcribe_requests_total{status="400"}') == 1
    assert open_app.service.connections == 0


def test_transcribe_streams_its_finals_as_json_lines(open_app: App, tmp_path: Path) -> None:
    """`?format=ndjson`: the finals as decoded, then end, a stream's messages a line each; the slot is given back
    once the answer is sent; a failure while decoding is an error line in place of the end."""
    r = _post(open_app, "?format=ndjson")
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    assert r.headers["x-parley-model"] == "fake"
    assert [json.loads(line) for line in r.text.splitlines()] == [FINAL, {"type": "end"}]
    assert open_app.service.connections == 0
    stereo = _post(open_app, "?format=ndjson&multichannel=true", body=_wav_channels(2))
    lines = [json.loads(line) for line in stereo.text.splitlines()]
    assert sorted(m["channel"] for m in lines[:-1]) == [0, 1] and lines[-1] == {"type": "end"}
    failing = App(Settings(bundles=tmp_path), engines=(FakeEngine(failure=RuntimeError("boom")),))
    broken = _post(failing, "?format=ndjson")
    assert broken.status_code == 200, "the status went out before the decoding failed"
    assert [json.loads(line)["code"] for line in broken.text.splitlines()] == ["internal"]
    assert failing.service.connections == 0


def test_transcribe_takes_raw_pcm_and_the_start_fields(open_app: App) -> None:
    pcm = np.zeros(800, dtype="<i2").tobytes()
    r = _post(open_app, "?sample_rate=8000&encoding=s16le&search=beam", pcm, content_type="application/octet-stream")
    assert r.status_code == 200, r.text
    assert open_app.service.engines["fake"].heard == [(800, 8000, "beam")]  # type: ignore[attr-defined]
    assert r.json()["duration"] == 0.1


# ---- POST /v1/transcribe: errors ----


@pytest.mark.parametrize(
    ("query", "body", "headers", "status", "code"),
    [
        ("", b"RIFF", {"content_type": "text/plain"}, 415, "unsupported_encoding"),
        ("", b"RIFF", {"content_type": ""}, 415, "unsupported_encoding"),
        ("", b"not a wav file", {}, 400, "bad_audio"),
        ("", b"\0\0", {"content_type": "application/octet-stream"}, 400, "invalid_value"),
        ("?sample_rate=fast", b"\0\0", {"content_type": "application/octet-stream"}, 400, "invalid_value"),
        ("?sample_rate=16000&encoding=mp3", b"\0\0", {"content_type": "application/octet-stream"}, 415,
         "unsupported_encoding"),
        ("?sample_rate=16000", b"\0\0\0", {"content_type": "application/octet-stream"}, 400, "bad_audio"),
        ("?sample_rate=1000", b"\0\0", {"content_type": "application/octet-stream"}, 400, "unsupported_rate"),
        ("?lm_scale=much", None, {}, 400, "invalid_value"),
        ("?model=nope", None, {}, 404, "unknown_model"),
        ("?language=xx", None, {}, 400, "unsupported_option"),
        ("?hotwords=timer&search=greedy", None, {}, 400, "invalid_value"),
        ("", b"\0" * 2048, {"content_length": "99999999999999999999"}, 413, "too_big"),
    ],
)  # fmt: skip
def test_transcribe_errors(
    open_app: App, query: str, body: bytes | None, headers: dict[str, str], status: int, code: str
) -> None:
    r = _post(open_app, query, body, **headers)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.json()["type"] == "error" and r.json()["message"]
    assert open_app.count(f'parley_errors_total{{code="{code}"}}') == 1
    assert open_app.count(f'parley_transcribe_requests_total{{status="{status}"}}') == 1
    assert open_app.service.connections == 0


def test_transcribe_bodies_over_the_limit_are_refused_as_they_arrive(tmp_path: Path) -> None:
    a = App(Settings(bundles=tmp_path, max_upload_bytes=4096))

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is found while reading
        yield from (b"\0" * 1024 for _ in range(5))

    r = a.client.post("/v1/transcribe", content=chunks(), headers={"content-type": "audio/wav"})
    assert r.status_code == 413 and r.json()["message"] == "body over the limit of 4096 bytes"
    r = _post(a, body=b"\0" * 5000)
    assert r.status_code == 413 and r.json()["message"] == 'body of "5000" bytes is over the limit of 4096 bytes'


def test_transcribe_admission_and_engine_failure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a = App(Settings(bundles=tmp_path, max_connections=1), engines=(FakeEngine(failure=RuntimeError("boom")),))
    a.service.connections = 1
    r = _post(a)
    assert (r.status_code, r.json()["code"]) == (503, "server_full")
    a.service.connections = 0
    r = _post(a)
    assert r.status_code == 500
    assert r.json() == {"type": "error", "code": "internal", "message": "internal server error"}  # no traceback
    assert "boom" in caplog.text and a.service.connections == 0
    a.service.draining = True
    r = _post(a, "?format=nope")
    assert r.json()["code"] == "invalid_value"  # the request's own mistake comes first
    r = _post(a)
    assert (r.status_code, r.json()["code"]) == (503, "shutting_down")
    statuses = {s: a.count(f'parley_transcribe_requests_total{{status="{s}"}}') for s in ("400", "500", "503")}
    assert statuses == {"400": 1, "500": 1, "503": 2}


def test_a_client_that_disconnects_during_its_upload_is_counted_apart_not_as_a_500(
    open_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """starlette's ClientDisconnect while the body is read: no traceback, no `internal` error, status 499 counted."""
    messages = [{"type": "http.request", "body": b"RIFF", "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        pass

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/transcribe", "raw_path": b"/v1/transcribe", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"audio/wav"), (b"host", b"test")], "client": ("127.0.0.1", 5),
        "server": ("test", 80),
    }  # fmt: skip
    with caplog.at_level(logging.INFO, logger="parley.app"):
        asyncio.run(open_app.app(scope, receive, send))
    assert open_app.count('parley_transcribe_requests_total{status="499"}') == 1
    assert open_app.count('parley_transcribe_requests_total{status="500"}') == 0
    assert open_app.count('parley_errors_total{code="internal"}') == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info], caplog.text
    assert "disconnected" in caplog.text and open_app.service.connections == 0


# ---- The structure ----


def test_the_drain_outwaits_a_sessions_flush() -> None:
    assert ABORTED_SESSIONS_WAIT_S > session.FLUSH_TIMEOUT_S


def test_the_openapi_schema_lists_the_http_routes(open_app: App) -> None:
    paths = json.loads(open_app.client.get("/openapi.json").text)["paths"]
    assert set(paths) == {
        "/v1/transcribe",
        "/v1/audio/transcriptions",
        "/v1/audio/translations",
        "/v1/listen",
        "/healthz",
        "/readyz",
        "/v1/models",
        "/metrics",
        "/v1/calls",
        "/v1/calls/{uuid}",
    }
