"""How `parley serve` logs: uvicorn's text lines (`--log-format text`, the default), or one JSON object a line
(`--log-format json`) for log collectors (Loki, Elasticsearch, Cloud Logging) that index fields rather than parse
text.

    {"time": "2026-12-05T21:40:02.118Z", "level": "info", "logger": "parley.session",
     "message": "session 3f9c2e7a: en-open, 16000 Hz s16le, greedy search"}
    {"time": "...", "level": "info", "logger": "uvicorn.access", "message": "127.0.0.1:51234 - \\"POST ...\\" 200",
     "client": "127.0.0.1:51234", "method": "POST", "path": "/v1/transcribe?format=srt", "status": 200}

Every logger (Parley's, uvicorn's, onnxruntime's Python side) goes through the root logger's one handler on standard
error; an exception adds `exc_info`, its traceback. API keys in logged paths are hidden (server/serve.py's
`RedactingFilter` runs before the formatter).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON: time (UTC, ISO 8601, milliseconds), level, logger, message; uvicorn's access
    lines add client, method, path and status."""

    def format(self, record: logging.LogRecord) -> str:
        t = time.gmtime(record.created)
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, _, status = args  # uvicorn's '%s - "%s %s HTTP/%s" %d'
            out.update(client=client, method=method, path=path, status=status)
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes (as logging's last-resort handler does), not to the
    stream it was when the handler was made."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure(level: int, fmt: str = "text") -> None:
    """The root logger's handler on standard error, in `fmt` ("text" or "json"), at `level`.

    Raises:
        ValueError: an unknown format.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r}: one of {', '.join(LOG_FORMATS)}")
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
