"""`--log-format json` (server/logs.py): one JSON object a line, uvicorn's access lines with their fields, API keys
hidden, from a running server."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.logs import JsonFormatter, configure
from server.serve import RedactingFilter
from server.settings import Settings
from tests.test_server import Running


def _record(name: str, msg: str, args: tuple = (), exc_info=None) -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, exc_info)


def test_a_record_is_one_line_of_json() -> None:
    line = JsonFormatter().format(_record("parley.session", "session %s: %d Hz", ("ab12", 16000)))
    assert "\n" not in line
    got = json.loads(line)
    assert got["level"] == "info" and got["logger"] == "parley.session" and got["message"] == "session ab12: 16000 Hz"
    assert got["time"].endswith("Z") and len(got["time"]) == len("2026-12-05T21:40:02.118Z")
    try:
        raise ValueError("broken")
    except ValueError:
        failed = json.loads(JsonFormatter().format(_record("parley.app", "it failed", exc_info=sys.exc_info())))
    assert "ValueError: broken" in failed["exc_info"]


def test_an_access_line_has_its_fields_and_no_key() -> None:
    args = ("127.0.0.1:5000", "GET", "/v1/models?api_key=s3cret&x=1", "1.1", 200)
    record = _record("uvicorn.access", '%s - "%s %s HTTP/%s" %d', args)
    RedactingFilter().filter(record)
    got = json.loads(JsonFormatter().format(record))
    assert got["method"] == "GET" and got["status"] == 200 and got["client"] == "127.0.0.1:5000"
    assert got["path"] == "/v1/models?api_key=***&x=1" and "s3cret" not in json.dumps(got)


@pytest.fixture
def json_logs(capfd: pytest.CaptureFixture) -> Iterator[None]:
    """The root logger's handler in JSON, on the standard error that `capfd` captures, for the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure(logging.INFO, "json")
    try:
        yield
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)


def test_a_server_logs_json_lines(json_logs: None, tiny_bundles: Path, capfd: pytest.CaptureFixture) -> None:
    settings = Settings(bundles=tiny_bundles, port=0, intra_op_threads=1, log_format="json", api_keys=("s3cret",))
    srv = Running(settings)
    try:
        assert httpx.get(srv.http + "/v1/models?api_key=s3cret").status_code == 200
        assert httpx.get(srv.http + "/v1/models").status_code == 401
    finally:
        srv.stop()
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    lines = [x for x in lines if x["logger"] != "httpx"]  # the test's own client, which logs what it sends
    access = [x for x in lines if x["logger"] == "uvicorn.access"]
    assert [(x["method"], x["status"]) for x in access] == [("GET", 200), ("GET", 401)], lines
    assert access[0]["path"] == "/v1/models?api_key=***"
    assert any(x["logger"].startswith("uvicorn.error") or x["logger"].startswith("parley") for x in lines)
    assert "s3cret" not in json.dumps(lines)


def test_the_setting_is_checked() -> None:
    assert Settings(log_format="JSON").log_format == "json"
    with pytest.raises(ValueError, match="log_format"):
        Settings(log_format="xml")
    with pytest.raises(ValueError, match="log format"):
        configure(logging.INFO, "xml")
