"""A live source streamed through server restarts: nothing it says is lost when a stream ends early.

    log = AudioLog(rate=8000, width=1, max_backlog_s=60)    # mu-law: one byte a frame
    task = asyncio.create_task(stream_resumably(url, start, log, emit=print))
    log.put(data); log.put_control(FINALIZE); ...; log.end()  # as the source produces them
    error = await task                                       # None: every frame decoded

A server drains on a rolling restart (`shutting_down`: it first decodes all it received and sends the open segment's
final), refuses a stream when full (`server_full`), or the connection drops. A live source (a phone call, a
microphone) cannot be replayed, so the client keeps what it sent since the last final (`AudioLog`) and, when a
stream ends with one of those errors, opens another after a pause (0.25 s doubling to 8 s) and sends the audio from
the last final's end: the point up to which the server had decoded. Results are moved onto the source's clock (times
from its first frame, segments numbered across streams). What is kept is bounded (`max_backlog_s`); a resend that
would need older audio says how much was lost in a `"type": "warning"` result, `"code": "audio_lost"`. Control
messages (a finalize) are kept in their place among the frames and resent with them.

Used by `parley twilio` (a stream per call track) and `parley mic`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from clients.stream import converse

log = logging.getLogger("parley.resume")

# A stream that ends with one of these is opened again and sent the audio its last final did not cover: a server
# restarting or draining, one full for now, a connection lost or refused. Any other error (unauthorized,
# unknown_model, ...) would only repeat.
RETRYABLE = frozenset({"shutting_down", "server_full", "too_many_streams", "connect_failed", "closed"})
RETRY_MIN_S = 0.25
RETRY_MAX_S = 8.0
RETRIES_AFTER_END = 5  # tries left for a source that has ended but whose audio is not all decoded
MESSAGE_S = 1.0  # the most audio in one message when a backlog goes out after a reconnect


@dataclass
class AudioLog:
    """A live source's frames (`width` bytes each, at `rate` a second) not yet covered by a final, from frame `base`
    on, and its control messages in their places, for however many streams it takes to decode them (`audio`)."""

    rate: int
    width: int = 1
    max_backlog_s: float = 60.0
    buffer: bytearray = field(default_factory=bytearray)
    controls: list[tuple[int, int, dict]] = field(default_factory=list)  # (frame it comes after, number, message)
    _numbered: int = 0  # controls put so far (a control's number: the same message object may come many times)
    base: int = 0  # the frame buffer[0] is
    received: int = 0  # frames received in all
    ended: bool = False  # the source stopped: no more frames will come
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, data: bytes) -> None:
        """Frames, as the source gives them (a partial frame at the end is dropped)."""
        data = data[: len(data) - len(data) % self.width]
        self.buffer += data
        self.received += len(data) // self.width
        over = len(self.buffer) // self.width - max(1, int(self.max_backlog_s * self.rate))
        if over > 0:
            del self.buffer[: over * self.width]
            self.base += over
        self.changed.set()

    def put_control(self, message: dict) -> None:
        """A control message (`{"type": "finalize"}`) after the frames received so far."""
        self.controls.append((self.received, self._numbered, message))
        self._numbered += 1
        self.changed.set()

    def end(self) -> None:
        self.ended = True
        self.changed.set()

    def decoded(self, until: int) -> None:
        """A final covered the frames up to `until`: they (and the controls among them) need no resend."""
        cut = min(max(until - self.base, 0), len(self.buffer) // self.width)
        del self.buffer[: cut * self.width]
        self.base += cut
        self.controls = [c for c in self.controls if c[0] > self.base]

    async def audio(self, start: int) -> AsyncIterator[tuple[bytes | dict, float]]:
        """The frames from `start` on (from `base`, if that is later) and the controls among them, as they arrive,
        until the source ends; at most MESSAGE_S of audio a message. Stream times count from `start`."""
        pos = max(start, self.base)
        sent = {n for at, n, _ in self.controls if at <= pos}  # before the resumed point: done already
        while True:
            pos = max(pos, self.base)  # a backlog past max_backlog_s lost its oldest frames
            control = next((c for c in self.controls if c[1] not in sent), None)
            if control is not None and control[0] <= pos:
                sent.add(control[1])
                yield control[2], (pos - start) / self.rate
                continue
            limit = self.received if control is None else control[0]
            if pos < limit:
                n = min(limit - pos, int(MESSAGE_S * self.rate))
                data = bytes(self.buffer[(pos - self.base) * self.width : (pos - self.base + n) * self.width])
                pos += n
                yield data, (pos - start) / self.rate
            elif self.ended:
                return
            else:
                self.changed.clear()
                await self.changed.wait()


def shifted(msg: dict, seconds: float, segments: int) -> dict:
    """A result message of a stream that began `seconds` into the source, after `segments` segments of earlier
    streams: its times and segment number on the source's clock."""
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


async def stream_resumably(
    url: str,
    start: dict,
    audio: AudioLog,
    emit: Callable[[dict], None],
    *,
    api_key: str | None = None,
    retry: bool = True,
    retry_before_ready: bool = True,
    on_retry: Callable[[str, float], None] | None = None,
) -> dict | None:
    """Streams `audio` until it has all been decoded, through as many streams as it takes (see the module
    docstring); every server message of every stream goes to `emit` (ready, results on the source's clock, an error
    that ended a stream, end), and so do `audio_lost` warnings. Returns None when every frame was decoded, else the
    error that ended it (a server error retrying cannot mend, or the last of the tries after the source ended).
    `retry_before_ready` false: a source that never got a stream ready (a wrong address, a server that is not there)
    gets its first error back at once. `on_retry(code, pause)` is told of each reconnection before its pause."""
    ever_ready = False
    first = 0  # frame the current stream begins at
    segments = 0  # segments of the streams before it
    pause = RETRY_MIN_S
    tries_after_end = RETRIES_AFTER_END
    while True:
        if first < audio.base:
            lost = (audio.base - first) / audio.rate
            message = f"{lost:.2f} s of audio beyond the backlog was never decoded"
            emit({"type": "warning", "code": "audio_lost", "start": round(first / audio.rate, 3),
                  "seconds": round(lost, 3), "message": message})  # fmt: skip
            first = audio.base
        covered = {"until": first, "segments": 0}
        offset, before = first / audio.rate, segments

        def relay(msg: dict, offset: float = offset, before: int = before, covered: dict = covered) -> None:
            kind = msg.get("type")
            if kind == "final":
                if isinstance(msg.get("end"), (int, float)):
                    covered["until"] = max(covered["until"], round((msg["end"] + offset) * audio.rate))
                    audio.decoded(covered["until"])
                if isinstance(msg.get("segment"), int):
                    covered["segments"] = max(covered["segments"], msg["segment"] + 1)
            emit(shifted(msg, offset, before) if kind in ("partial", "final") else msg)

        result = await converse(url, start, audio.audio(first), api_key=api_key, on_message=relay)
        if result.ready is not None:
            pause, ever_ready = RETRY_MIN_S, True
        error = result.error
        if error is None:
            return None
        undecoded = audio.received > covered["until"]
        if (
            not (retry and error.get("code") in RETRYABLE and (not audio.ended or undecoded))
            or (not ever_ready and not retry_before_ready)
            or (audio.ended and (tries_after_end := tries_after_end - 1) < 0)
        ):
            return error
        log.info("%s; reconnecting in %.2f s", error.get("code"), pause)
        if on_retry is not None:
            on_retry(str(error.get("code")), pause)
        first, segments = covered["until"], segments + covered["segments"]
        await asyncio.sleep(pause)
        pause = min(RETRY_MAX_S, pause * 2)
