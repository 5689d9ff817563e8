"""`parley twilio`: captions of phone calls, from Twilio Media Streams to a Parley server.

    parley twilio --port 8080 --url ws://127.0.0.1:8000/v1/stream
    parley twilio --port 8080 --url wss://asr.example.org/v1/stream --api-key "$KEY" --model en-open --partials

Twilio opens a WebSocket to this bridge for each call that a TwiML `<Start><Stream url="wss://HOST/">` (or
`<Connect><Stream>`) streams, and sends JSON events: `connected`, `start` (the call's ids, its tracks and the media
format: 8 kHz G.711 mu-law), `media` (20 ms of audio, base64) and `stop`. The bridge opens one Parley stream per track
(`inbound`: the caller; `outbound` too with `track="both_tracks"`), sends the audio bytes as they come (start
`"sample_rate": 8000, "encoding": "mulaw"`, docs/protocol.md "Telephone audio"), and prints every final as a JSON
line on standard output, with the call's and the track's ids: `{"call": "CA...", "stream": "MZ...", "track":
"inbound", "type": "final", "segment": 0, "text": ..., ...}` (partials too with --partials; a stream that fails
prints a line with `"type": "error"`). When the call stops, each stream is stopped and its last final printed.

A call outlives its streams (clients/resume.py). A stream that ends with `shutting_down` (the server restarting),
`server_full` or a lost connection is opened again, after a pause that doubles from 0.25 s to 8 s, and sent the
track's audio from its last final's end: the server decodes everything it received before it drains, so that is
where its transcript stops. The bridge keeps each track's audio since its last final for that (at most
--max-backlog-s; audio older than that, if a resend needs it, is reported in a `"type": "warning"` line, `"code":
"audio_lost"`). Results carry the call's clock: times count from the call's first sample and segments are numbered
across its streams.

Speaks protocol version 1 (docs/protocol.md) to the server and Twilio's Media Streams messages to Twilio; `mark`,
`dtmf` and unknown events are ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from clients.resume import AudioLog, stream_resumably
from clients.stream import DEFAULT_URL, start_message

log = logging.getLogger("parley.twilio")

# Twilio's media formats (the start event's mediaFormat.encoding) -> Parley's start encodings
ENCODINGS = {"audio/x-mulaw": "mulaw", "audio/x-alaw": "alaw"}


@dataclass
class Options:
    """Where the bridge sends each call and what it asks for."""

    url: str = DEFAULT_URL
    model: str | None = None
    api_key: str | None = None
    partials: bool = False
    retry: bool = True  # open a failed stream again (clients/resume.py's RETRYABLE) and resend what it had not decoded
    max_backlog_s: float = 60.0  # audio kept for a resend, per track; older audio is dropped (and reported)
    redact: bool = False  # the streams ask for spoken digit strings (card numbers) as "[redacted]"
    profanity_filter: bool = False  # the streams ask for profanity masked ("d***")


async def _caption_track(
    name: str, track: AudioLog, begin: dict, opts: Options, emit: Callable[[dict], None], ids: dict
) -> None:
    """Streams one track until its audio is all decoded (`stream_resumably`), each result and warning emitted with
    the call's ids and the track; a failure that retrying cannot mend as an error line."""

    def relay(msg: dict) -> None:
        if msg.get("type") in ("partial", "final", "warning"):
            emit({**ids, "track": name, **msg})

    error = await stream_resumably(opts.url, begin, track, relay, api_key=opts.api_key, retry=opts.retry)
    if error is not None:
        emit({**ids, "track": name, "type": "error", "code": error.get("code"), "message": error.get("message")})


async def bridge_call(events: AsyncIterator[str | bytes], opts: Options, emit: Callable[[dict], None]) -> None:
    """One call: Twilio's events in, a Parley stream per track, each final (and partial, if asked) to `emit` with the
    call's ids and the track, on the call's clock. Returns when the call stopped (or its events ended) and every
    track's audio has been decoded (or its stream failed for good)."""
    tracks: dict[str, AudioLog] = {}
    streams: list[asyncio.Task[None]] = []
    ids: dict[str, Any] = {}
    try:
        async for raw in events:
            try:
                event = json.loads(raw)
            except ValueError:
                log.warning("not JSON from Twilio: %.80r", raw)
                continue
            kind = event.get("event") if isinstance(event, dict) else None
            if kind == "start" and not tracks:
                start = event.get("start") or {}
                fmt = start.get("mediaFormat") or {}
                encoding = ENCODINGS.get(fmt.get("encoding", "audio/x-mulaw"))
                if encoding is None:
                    emit({**ids, "type": "error", "code": "unsupported_encoding", "message": str(fmt)})
                    return
                rate = int(fmt.get("sampleRate", 8000))
                ids.update(call=start.get("callSid"), stream=event.get("streamSid") or start.get("streamSid"))
                begin = start_message(
                    rate,
                    encoding,
                    opts.partials,
                    opts.model,
                    redact=opts.redact or None,
                    profanity_filter=opts.profanity_filter or None,
                )
                for name in start.get("tracks") or ["inbound"]:
                    tracks[name] = AudioLog(rate, 1, opts.max_backlog_s)
                    streams.append(asyncio.create_task(_caption_track(name, tracks[name], begin, opts, emit, ids)))
            elif kind == "media":
                media = event.get("media") or {}
                track = tracks.get(media.get("track", "inbound"))
                if track is not None:
                    with contextlib.suppress(ValueError, TypeError):
                        track.put(base64.b64decode(media.get("payload", ""), validate=True))
            elif kind == "stop":
                break
    finally:
        for track in tracks.values():
            track.end()  # stop: the stream's last final, then end
        for task in streams:
            await task


async def serve(host: str, port: int, opts: Options, emit: Callable[[dict], None]) -> None:
    """Accepts Twilio's WebSocket connections on `host:port` until cancelled, each call bridged by `bridge_call`."""
    from websockets.asyncio.server import serve as ws_serve

    async def handle(ws) -> None:
        await bridge_call(_messages(ws), opts, emit)

    async with ws_serve(handle, host, port):
        await asyncio.Future()


async def _messages(ws) -> AsyncIterator[str | bytes]:
    from websockets.exceptions import ConnectionClosed

    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            yield raw


def _print(msg: dict) -> None:
    print(json.dumps(msg, ensure_ascii=False), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="parley twilio", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--host", default="0.0.0.0", help="where Twilio connects (default: 0.0.0.0)")
    p.add_argument("--port", type=int, default=8080, help="the bridge's port (default: 8080)")
    p.add_argument("--url", default=DEFAULT_URL, help=f"the Parley server's stream endpoint (default: {DEFAULT_URL})")
    p.add_argument("--model", help="bundle name (default: the server's default)")
    p.add_argument(
        "--api-key", default=os.environ.get("PARLEY_API_KEY"), help="API key (default: $PARLEY_API_KEY, if set)"
    )
    p.add_argument("--partials", action="store_true", help="print partials too, not only finals")
    p.add_argument(
        "--no-retry",
        action="store_true",
        help="do not reopen a stream that the server drained, refused as full or lost (default: reopen it and "
        "resend the audio its last final did not cover)",
    )
    p.add_argument(
        "--max-backlog-s",
        type=float,
        default=60.0,
        help="audio kept per track for a resend after a reconnect (default: 60 s)",
    )
    p.add_argument(
        "--redact",
        action="store_true",
        help='ask for spoken digit strings (card and account numbers, PINs) as "[redacted]" in every caption',
    )
    p.add_argument("--profanity-filter", action="store_true", help='ask for profanity masked ("d***") in every caption')
    a = p.parse_args(argv)
    if a.max_backlog_s <= 0:
        p.error("--max-backlog-s must be > 0")
    logging.basicConfig(level=logging.INFO, format="parley twilio: %(message)s", stream=sys.stderr)
    log.info("Twilio Media Streams on ws://%s:%d/ -> %s", a.host, a.port, a.url)
    try:
        asyncio.run(
            serve(
                a.host,
                a.port,
                Options(
                    a.url,
                    a.model,
                    a.api_key,
                    a.partials,
                    not a.no_retry,
                    a.max_backlog_s,
                    a.redact,
                    a.profanity_filter,
                ),
                _print,
            )
        )
    except KeyboardInterrupt:
        return 0
    except OSError as e:
        print(f"parley twilio: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
