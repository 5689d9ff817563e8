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

A call outlives its streams. A stream that ends with `shutting_down` (the server restarting), `server_full` or a
lost connection is opened again, after a pause that doubles from 0.25 s to 8 s, and sent the track's audio from its
last final's end: the server decodes everything it received before it drains, so that is where its transcript
stops. The bridge keeps each track's audio since its last final for that (at most --max-backlog-s; audio older than
that, if a resend needs it, is reported in a `"type": "warning"` line, `"code": "audio_lost"`). Results carry the
call's clock: times count from the call's first sample and segments are numbered across its streams.

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
from dataclasses import dataclass, field
from typing import Any

from clients.stream import DEFAULT_URL, converse, start_message

log = logging.getLogger("parley.twilio")

# Twilio's media formats (the start event's mediaFormat.encoding) -> Parley's start encodings
ENCODINGS = {"audio/x-mulaw": "mulaw", "audio/x-alaw": "alaw"}


# A stream that ends with one of these is opened again (after a pause that doubles from RETRY_MIN_S to RETRY_MAX_S)
# and sent the audio its last final did not cover: a server restarting or draining (shutting_down), one full for now
# (server_full), a connection lost or refused. Any other error (unauthorized, unknown_model, ...) would only repeat.
RETRYABLE = frozenset({"shutting_down", "server_full", "connect_failed", "closed"})
RETRY_MIN_S = 0.25
RETRY_MAX_S = 8.0
RETRIES_AFTER_STOP = 5  # tries left for a track whose call has stopped but whose audio is not all decoded
MESSAGE_S = 1.0  # the most audio in one message when a backlog goes out after a reconnect


@dataclass
class Options:
    """Where the bridge sends each call and what it asks for."""

    url: str = DEFAULT_URL
    model: str | None = None
    api_key: str | None = None
    partials: bool = False
    retry: bool = True  # open a failed stream again (RETRYABLE) and resend what it had not decoded
    max_backlog_s: float = 60.0  # audio kept for a resend, per track; older audio is dropped (and reported)


@dataclass
class _Track:
    """One track of a call: the audio received and not yet covered by a final, from sample `base` on (one byte a
    sample), for however many streams it takes to decode it (`audio`)."""

    rate: int
    max_backlog: int  # samples
    buffer: bytearray = field(default_factory=bytearray)
    base: int = 0  # the sample buffer[0] is
    received: int = 0  # samples received in all
    ended: bool = False  # the call stopped: no more audio will come
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, data: bytes) -> None:
        self.buffer += data
        self.received += len(data)
        over = len(self.buffer) - self.max_backlog
        if over > 0:
            del self.buffer[:over]
            self.base += over
        self.changed.set()

    def end(self) -> None:
        self.ended = True
        self.changed.set()

    def decoded(self, until: int) -> None:
        """A final covered the audio up to sample `until`: it will not need sending again."""
        cut = min(max(until - self.base, 0), len(self.buffer))
        del self.buffer[:cut]
        self.base += cut

    async def audio(self, start: int) -> AsyncIterator[tuple[bytes, float]]:
        """The audio from sample `start` on (from `base`, if that is later), as it arrives, until the call stops;
        at most MESSAGE_S a message. Stream times count from `start`."""
        pos = max(start, self.base)
        while True:
            pos = max(pos, self.base)  # a backlog past max_backlog lost its oldest audio
            if pos < self.received:
                n = min(self.received - pos, int(MESSAGE_S * self.rate))
                data = bytes(self.buffer[pos - self.base : pos - self.base + n])
                pos += n
                yield data, (pos - start) / self.rate
            elif self.ended:
                return
            else:
                self.changed.clear()
                await self.changed.wait()


def _shifted(msg: dict, seconds: float, segments: int) -> dict:
    """A result message of a stream that began `seconds` into the call, after `segments` segments of earlier
    streams: its times and segment number on the call's clock."""
    out = dict(msg)
    for key in ("start", "end"):
        if isinstance(out.get(key), (int, float)):
            out[key] = round(out[key] + seconds, 3)
    if isinstance(out.get("segment"), int):
        out["segment"] += segments
    if isinstance(out.get("words"), list):
        out["words"] = [
            {k: (round(v + seconds, 3) if k in ("start", "end") and isinstance(v, (int, float)) else v)
             for k, v in w.items()} if isinstance(w, dict) else w
            for w in out["words"]
        ]  # fmt: skip
    return out


async def _caption_track(
    name: str, track: _Track, begin: dict, opts: Options, emit: Callable[[dict], None], ids: dict
) -> None:
    """Streams one track until its audio is all decoded: a stream that fails with a RETRYABLE error is opened again
    and sent the audio from its last final's end (what the server had not decoded); each result is emitted on the
    call's clock. A failure that retrying cannot mend is emitted as an error line."""
    start = 0  # sample the current stream begins at
    segments = 0  # segments of the streams before it
    pause = RETRY_MIN_S
    tries_after_stop = RETRIES_AFTER_STOP
    while True:
        if start < track.base:
            lost = (track.base - start) / track.rate
            warning = {"type": "warning", "code": "audio_lost", "start": round(start / track.rate, 3)}
            message = f"{lost:.2f} s of audio beyond --max-backlog-s was never decoded"
            emit({**ids, "track": name, **warning, "seconds": round(lost, 3), "message": message})
            start = track.base
        covered = {"until": start, "segments": 0}
        offset, before = start / track.rate, segments

        def relay(msg: dict, offset: float = offset, before: int = before, covered: dict = covered) -> None:
            kind = msg.get("type")
            if kind == "final":
                if isinstance(msg.get("end"), (int, float)):
                    covered["until"] = max(covered["until"], round((msg["end"] + offset) * track.rate))
                    track.decoded(covered["until"])
                if isinstance(msg.get("segment"), int):
                    covered["segments"] = max(covered["segments"], msg["segment"] + 1)
            if kind == "final" or (opts.partials and kind == "partial"):
                emit({**ids, "track": name, **_shifted(msg, offset, before)})

        result = await converse(opts.url, begin, track.audio(start), api_key=opts.api_key, on_message=relay)
        if result.ready is not None:
            pause = RETRY_MIN_S
        code = (result.error or {}).get("code")
        if code is None:
            return
        undecoded = track.received > covered["until"]
        if not (opts.retry and code in RETRYABLE and (not track.ended or undecoded)) or (
            track.ended and (tries_after_stop := tries_after_stop - 1) < 0
        ):
            emit({**ids, "track": name, "type": "error", "code": code, "message": result.error.get("message")})
            return
        log.info("%s %s: %s; reconnecting in %.2f s", ids.get("call"), name, code, pause)
        start, segments = covered["until"], segments + covered["segments"]
        await asyncio.sleep(pause)
        pause = min(RETRY_MAX_S, pause * 2)


async def bridge_call(events: AsyncIterator[str | bytes], opts: Options, emit: Callable[[dict], None]) -> None:
    """One call: Twilio's events in, a Parley stream per track, each final (and partial, if asked) to `emit` with the
    call's ids and the track, on the call's clock. Returns when the call stopped (or its events ended) and every
    track's audio has been decoded (or its stream failed for good)."""
    tracks: dict[str, _Track] = {}
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
                begin = start_message(rate, encoding, opts.partials, opts.model)
                for name in start.get("tracks") or ["inbound"]:
                    tracks[name] = _Track(rate, max(1, int(opts.max_backlog_s * rate)))
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
    a = p.parse_args(argv)
    if a.max_backlog_s <= 0:
        p.error("--max-backlog-s must be > 0")
    logging.basicConfig(level=logging.INFO, format="parley twilio: %(message)s", stream=sys.stderr)
    log.info("Twilio Media Streams on ws://%s:%d/ -> %s", a.host, a.port, a.url)
    try:
        asyncio.run(
            serve(
                a.host, a.port, Options(a.url, a.model, a.api_key, a.partials, not a.no_retry, a.max_backlog_s), _print
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
