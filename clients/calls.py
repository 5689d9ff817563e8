"""`parley calls`: the captions of Asterisk's calls on a Parley server (docs/asterisk.md), from a terminal.

    parley calls list                          # the calls live and recent
    parley calls watch 40325ec2-5efd-...       # one call live: partials in place, finals and DTMF as lines
    parley calls watch UUID --json             # every message as a JSON line (for a script)
    parley calls show UUID                     # the call as it stands (JSON)

`--server` is the server's base URL (default http://127.0.0.1:8000; https:// for TLS), `--api-key` its key
(default: $PARLEY_API_KEY). `watch` may start before the call does (the server waits idle_timeout_s for it) and ends
at the call's hangup; exit status 1 with the server's reason when it refuses (unknown_call, unauthorized).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any, TextIO

from clients.stream import CaptionPrinter

DEFAULT_SERVER = "http://127.0.0.1:8000"


def _url(server: str, path: str, api_key: str | None, websocket: bool = False) -> str:
    base = urllib.parse.urlsplit(server.rstrip("/"))
    scheme = {"http": "ws", "https": "wss"}.get(base.scheme, base.scheme) if websocket else base.scheme
    query = urllib.parse.urlencode({"api_key": api_key}) if api_key else ""
    return urllib.parse.urlunsplit((scheme, base.netloc, base.path + path, query, ""))


def get_json(server: str, path: str, api_key: str | None) -> tuple[int, Any]:
    """GET `path` on the server: (HTTP status, the JSON body)."""
    request = urllib.request.Request(_url(server, path, None), headers={"Accept": "application/json"})
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


async def watch(server: str, uuid: str, api_key: str | None, as_json: bool, out: TextIO) -> int:
    """Prints the call's messages to its end; 0 at the call's end, 1 when the server refuses or the watch breaks."""
    import websockets

    printer = CaptionPrinter(out)
    ended = False
    async with websockets.connect(_url(server, f"/v1/calls/{urllib.parse.quote(uuid)}", api_key, True)) as ws:
        try:
            async for raw in ws:
                msg = json.loads(raw)
                kind = msg.get("type")
                if as_json:
                    out.write(json.dumps(msg, ensure_ascii=False) + "\n")
                    out.flush()
                elif kind == "ready":
                    print(f"call {msg['uuid']}: {msg['model']}, {msg['sample_rate']} Hz", file=sys.stderr)
                elif kind == "dtmf":
                    out.write(f"[key {msg['digit']} at {msg['time']:.1f} s]\n")
                    out.flush()
                else:
                    printer(msg)
                if kind == "error":
                    print(f"parley calls: {msg.get('message')} ({msg.get('code')})", file=sys.stderr)
                    return 1
                ended = ended or kind == "end"
        except websockets.ConnectionClosed:
            pass
    if not ended:
        print("parley calls: the connection closed before the call's end", file=sys.stderr)
    return 0 if ended else 1


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="parley calls", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("action", choices=("list", "show", "watch"), help="what to do")
    p.add_argument("uuid", nargs="?", help="the call's UUID (show, watch)")
    p.add_argument("--server", default=DEFAULT_SERVER, help=f"the server's base URL (default: {DEFAULT_SERVER})")
    p.add_argument("--api-key", default=os.environ.get("PARLEY_API_KEY"), help="API key (default: $PARLEY_API_KEY)")
    p.add_argument("--json", action="store_true", help="watch: every message as a JSON line")
    a = p.parse_args(argv)
    if a.action != "list" and not a.uuid:
        p.error(f"{a.action} needs the call's UUID")
    try:
        if a.action == "watch":
            return asyncio.run(watch(a.server, a.uuid, a.api_key, a.json, sys.stdout))
        status, body = get_json(a.server, "/v1/calls" + (f"/{urllib.parse.quote(a.uuid)}" if a.uuid else ""), a.api_key)
    except (OSError, ValueError) as e:
        print(f"parley calls: cannot reach {a.server}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if status != 200:
        print(f"parley calls: {body.get('message', f'HTTP {status}')} ({body.get('code', status)})", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
