"""API keys (server/keys.py): the keys file's options, accounts shared by name, per-key limits, and the file read again
while the server runs."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from parley.audio import write_wav
from server import keys as K
from server.app import create_app
from server.deps import get_service
from server.keys import KeyEntry, KeyRing, Tenant, key_id, parse_keys
from server.metrics import ServerMetrics
from server.protocol import TOO_MANY_STREAMS, start_from_dict
from server.service import Service
from server.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FILE = """\
# key        options
alpha-1      name=acme   max_streams=3
alpha-2      name=acme   max_streams=3   # acme's next key
beta         max_streams=1
gam#ma                                   # a '#' inside a key is part of it
delta
"""


def test_a_keys_file_reads_keys_names_and_limits() -> None:
    assert parse_keys(FILE) == [
        KeyEntry("alpha-1", "acme", 3),
        KeyEntry("alpha-2", "acme", 3),
        KeyEntry("beta", None, 1),
        KeyEntry("gam#ma"),
        KeyEntry("delta"),
    ]
    assert parse_keys("k0\nk1\n") == [KeyEntry("k0"), KeyEntry("k1")]  # the plain format of before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k0 colour=blue\n", r"line 1: unknown option 'colour=blue'"),
        ("k0 name\n", r"unknown option 'name'"),
        ("k0\nk1 name=a/b\n", r"line 2: name 'a/b': letters, digits"),
        ("k0 max_streams=-1\n", r"max_streams '-1': a whole number"),
        ("k0 max_streams=two\n", r"max_streams 'two'"),
        ("k0\n\nk0 name=x\n", r"line 3: this key is already on line 1"),
        ("k0 name=t max_streams=2\nk1 name=t\n", r"line 2: name t has max_streams=\(not given\) here and 2 on line 1"),
        ("name=acme k0\n", r"line 1: the line starts with an option"),
    ],
)
def test_a_bad_line_is_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_keys(text, "keys.txt")


def test_tenants_are_named_or_hashed_and_limited(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(FILE)
    ring = KeyRing(["flag-key"], path, default_max_streams=5)
    assert ring.required and ring.accepted() == ["flag-key", "alpha-1", "alpha-2", "beta", "gam#ma", "delta"]
    assert ring.tenant("alpha-1") == ring.tenant("alpha-2") == Tenant("acme", 3)
    assert ring.tenant("beta") == Tenant(key_id("beta"), 1)
    assert ring.tenant("delta") == Tenant(key_id("delta"), 5)  # no option: the server's --max-streams-per-key
    assert ring.tenant("flag-key") == Tenant(key_id("flag-key"), 5)
    assert ring.valid("gam#ma") and ring.valid("flag-key") and ring.valid("alpha-2")
    assert not ring.valid("alpha") and not ring.valid(None) and not ring.valid("")
    assert KeyRing().valid(None) and not KeyRing().required  # no keys: every request is let in
    assert "alpha" not in key_id("alpha-1") and len(key_id("alpha-1")) == 12


def _touch(path: Path, text: str, stamp: list[int]) -> None:
    """Writes `text` with a modification time of its own (so that two writes in one clock tick differ)."""
    path.write_text(text)
    stamp[0] += 1
    os.utime(path, ns=(stamp[0] * 10**9, stamp[0] * 10**9))


def test_the_file_is_read_again_when_it_changes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path, stamp = tmp_path / "keys", [1_000]
    _touch(path, "old name=acme max_streams=2\nstays\n", stamp)
    ring = KeyRing([], path)
    now = time.monotonic() + 10  # the ring's clock, run ahead by hand
    assert not ring.reload_if_changed(now)  # unchanged
    _touch(path, "new name=acme max_streams=4\nstays\n", stamp)
    assert not ring.reload_if_changed(now + K.RELOAD_EVERY_S / 2)  # looked at once a second at most
    assert "old" in ring.accepted()
    assert ring.reload_if_changed(now + 2 * K.RELOAD_EVERY_S)
    assert ring.accepted() == ["new", "stays"] and ring.reloads == 1
    assert ring.tenant("new") == Tenant("acme", 4)
    assert ring.tenant("old") == Tenant("acme", 2)  # taken out: its open streams still count on its account
    # A file that breaks (a bad line, no key, gone) is ignored: the keys of before stay, neither open nor closed.
    for broken in ("new name=acme max_streams=4\nstays max_streams=many\n", "# nothing\n"):
        _touch(path, broken, stamp)
        now += 10
        assert not ring.reload_if_changed(now)
        assert ring.accepted() == ["new", "stays"] and ring.required
    path.unlink()
    assert not ring.reload_if_changed(now + 10)
    assert ring.reload_errors == 3 and ring.accepted() == ["new", "stays"] and ring.stale
    assert "keeping the 2 keys of before" in caplog.text
    _touch(path, "stays\n", stamp)
    assert ring.reload_if_changed(now + 20) and ring.accepted() == ["stays"] and not ring.stale
    assert ring.tenant("old") == Tenant("acme", 2) and ring.tenant("new") == Tenant("acme", 4)


def test_an_account_is_shared_by_its_keys_and_limited_by_its_own_number(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(FILE)
    metrics = ServerMetrics()
    service = Service(Settings(bundles=tmp_path, api_keys_file=path, max_streams_per_key=2), metrics)
    for key in ("alpha-1", "alpha-2", "alpha-1"):  # acme: 3, whichever of its keys
        assert service.admit(key) is None
        service.take(1, key)
    refusal = service.admit("alpha-2")
    assert refusal is not None and refusal.code == TOO_MANY_STREAMS and "3 streams open" in refusal.message
    assert service.by_key == {"acme": 3}
    assert 'parley_key_active_streams{key="acme"} 3' in metrics.exposition()
    service.give(1, "alpha-1")
    assert service.admit("alpha-2") is None
    service.take(1, "beta")  # beta: 1 of its own, below the server's 2
    assert service.admit("beta") is not None and service.admit("delta") is None
    with pytest.raises(Exception, match="2 channels need 2 of this API key's 1 stream slots"):
        service.hold_channels(2, "beta")
    service.count_audio(1.5, "alpha-2")
    service.count_audio(0.5, "alpha-1")
    assert 'parley_key_audio_seconds_total{key="acme"} 2' in metrics.exposition()
    assert "alpha" not in metrics.exposition().replace("acme", "")


def test_a_key_added_to_the_file_is_let_in_without_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(K, "RELOAD_EVERY_S", 0.0)
    path, stamp = tmp_path / "keys", [1_000]
    _touch(path, "first\n", stamp)
    settings = Settings(bundles=tmp_path, api_keys_file=path)
    app = create_app(settings)
    service = Service(settings)
    app.dependency_overrides[get_service] = lambda: service
    client = TestClient(app)
    second = {"Authorization": "Bearer second"}
    assert client.get("/v1/models", headers=second).status_code == 401
    _touch(path, "first\nsecond name=globex\n", stamp)
    assert client.get("/v1/models", headers=second).status_code == 200
    metrics = client.get("/metrics", headers=second).text
    assert "parley_api_keys 2\n" in metrics and "parley_api_keys_file_stale 0\n" in metrics
    _touch(path, "second name=globex max_streams=x\n", stamp)
    assert client.get("/v1/models", headers=second).status_code == 200
    assert "parley_api_keys_file_stale 1\n" in client.get("/metrics", headers=second).text
    _touch(path, "second name=globex\n", stamp)  # first taken out
    assert client.get("/v1/models", headers={"X-API-Key": "first"}).status_code == 401
    assert client.get("/v1/models", headers=second).status_code == 200


# ---- An account's rules: redaction and masking, whatever its streams ask ----


def test_an_account_s_rules_are_read_and_must_agree_across_its_keys() -> None:
    assert parse_keys("k0 name=callcentre redact=true profanity_filter=FALSE\n") == [
        KeyEntry("k0", "callcentre", None, True, False)
    ]
    for text, message in [
        ("k0 redact=yes\n", r"redact 'yes': true or false"),
        ("k0 redact=true redact=false\n", "redact given twice"),
        ("k0 name=t redact=true\nk1 name=t\n", r"line 2: name t has redact=\(not given\) here and true on line 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_keys(text)


def test_the_policy_overrides_what_a_start_asks(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("calls name=calls redact=true\nair name=air profanity_filter=true\nfree\n")
    service = Service(Settings(bundles=tmp_path, api_keys_file=path))
    start = start_from_dict({"type": "start", "sample_rate": 16000, "encoding": "s16le"})
    assert service.policy(start, "calls").redact and not service.policy(start, "calls").profanity_filter
    assert service.policy(start, "air").profanity_filter and not service.policy(start, "air").redact
    assert service.policy(start, "free") is start and service.policy(start, None) is start


def test_a_server_keeps_each_account_s_rules(tmp_path: Path, en_open, code_speech) -> None:
    """A contact centre's key redacts and a broadcaster's masks every stream, upload and Vosk stream of theirs, while
    another key on the same server gets what it asks for."""
    from server.redact import REDACTED
    from tests.test_redact import stream_messages
    from tests.test_server import running
    from tests.test_vosk import vosk_session

    x, rate = code_speech
    keys, words = tmp_path / "keys", tmp_path / "words"
    keys.write_text("calls name=calls redact=true\nair name=air profanity_filter=true\nfree\n")
    words.write_text("code\n")  # a word en-open hears in the sentence, listed for the test
    wav = tmp_path / "a.wav"
    write_wav(wav, x, rate)
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    (bundles / "en-open").symlink_to(ROOT / "bundles" / "en-open")
    with running(bundles, api_keys_file=keys, profanity_words=words) as srv:

        def post(key: str) -> str:
            r = httpx.post(
                srv.http + "/v1/transcribe?redact=false",
                content=wav.read_bytes(),
                headers={"content-type": "audio/wav", "X-API-Key": key},
            )
            assert r.status_code == 200, r.text
            return r.json()["text"]

        def streamed(key: str) -> list[str]:
            msgs = asyncio.run(stream_messages(srv.url + f"?api_key={key}", x, rate, {"redact": False}))
            return [m["text"] for m in msgs if m["type"] in ("partial", "final")]

        def vosk(key: str) -> str:
            url = f"ws://127.0.0.1:{srv.port}/?api_key={key}"
            replies, _ = vosk_session(url, x, rate, config={"sample_rate": rate})
            return " ".join(r.get("text", "") for r in replies)

        free, calls, air = post("free"), post("calls"), post("air")
        calls_stream, air_stream = streamed("calls"), streamed("air")
        calls_vosk, air_vosk = vosk("calls"), vosk("air")
    assert "code" in free.split() and REDACTED not in free, free
    assert REDACTED in calls and "code" in calls.split(), calls
    assert "c***" in air.split() and REDACTED not in air, air
    assert calls_stream and all("one two three four" not in t for t in calls_stream) and REDACTED in calls_stream[-1]
    assert air_stream and all("code" not in t.split() for t in air_stream) and "c***" in air_stream[-1]
    assert REDACTED in calls_vosk and "c***" in air_vosk and "code" not in air_vosk.split(), (calls_vosk, air_vosk)
