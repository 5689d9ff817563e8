"""A stream of several channels (start's `"channels": C`): each channel decoded as an engine stream of its own.

    group = StreamGroup([engine.open_stream(rate, ...) for _ in range(2)])
    await group.push(interleaved)        # (T * C,) samples, frame by frame: c0 c1 c0 c1 ...
    update = await group.next_update()   # one channel's update, `update.channel` says which
    await group.stop()                   # every channel's last finals; the last update has `end` set

A call recorded in stereo, the caller on one channel and the agent on the other (what contact-centre platforms
stream), mixed down to one channel would be one garbled stream wherever the two talk at once; decoded apart, each
is a clean single talker. `StreamGroup` has the interface of `server.batcher.Stream` that a session uses (push,
finalize, stop, next_update, close, failure, closed), so the session serves it like one stream and only tags each
message with its channel. Each channel keeps its own backpressure: at most one of a channel's updates is taken
ahead of the session (the one `next_update` waits on), so a client that does not read still stops the reading of
its audio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from server.batcher import Stream, Update


class StreamGroup:
    """The engine streams of one multichannel connection, channel c's audio to `streams[c]`."""

    def __init__(self, streams: Sequence[Stream]) -> None:
        if not streams:
            raise ValueError("a stream group needs at least one stream")
        self.streams = list(streams)
        self._next: dict[int, asyncio.Future[Update]] = {}  # the update each channel's next_update is waiting on
        self._ended: set[int] = set()

    @property
    def channels(self) -> int:
        return len(self.streams)

    @property
    def failure(self) -> str | None:
        return next((s.failure for s in self.streams if s.failure), None)

    @property
    def closed(self) -> bool:
        return any(s.closed for s in self.streams)

    @property
    def seconds_received(self) -> float:
        return self.streams[0].seconds_received

    @property
    def unanswered(self) -> int:
        return sum(s.unanswered for s in self.streams)

    async def push(self, samples: np.ndarray, arrived: float | None = None) -> None:
        """Adds audio: float32 samples `(T * C,)`, C channels interleaved frame by frame (each channel's samples at
        the streams' rate). Waits while any channel's queue is full.

        Raises:
            ValueError: a sample count that is not a whole number of frames.
            StreamClosedError, RuntimeError: as `Stream.push`.
        """
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if x.size % self.channels:
            raise ValueError(f"{x.size} samples are not whole frames of {self.channels} channels")
        frames = x.reshape(-1, self.channels)
        for c, stream in enumerate(self.streams):
            await stream.push(np.ascontiguousarray(frames[:, c]), arrived)

    async def finalize(self) -> None:
        """Closes every channel's open segment now (each answers with a final marked `finalized`)."""
        for stream in self.streams:
            await stream.finalize()

    async def stop(self) -> None:
        """No more audio on any channel (see `Stream.stop`; may be called again after a cancellation)."""
        for stream in self.streams:
            await stream.stop()

    async def next_update(self) -> Update:
        """The next update of whichever channel has one (the lowest channel first among several), with `channel`
        set; `end` only on the update that ends the last channel still open. Each channel's updates keep their
        order."""
        for c, stream in enumerate(self.streams):
            if c not in self._ended and c not in self._next:
                self._next[c] = asyncio.ensure_future(stream.next_update())
        if not self._next:
            raise RuntimeError("next_update after every channel ended")
        await asyncio.wait(self._next.values(), return_when=asyncio.FIRST_COMPLETED)
        c = min(k for k, f in self._next.items() if f.done())
        update = self._next.pop(c).result()
        if update.end:
            self._ended.add(c)
        return replace(update, channel=c, end=len(self._ended) == self.channels)

    def close(self) -> None:
        """Abandons every channel's stream (see `Stream.close`)."""
        for f in self._next.values():
            f.cancel()
        self._next.clear()
        for stream in self.streams:
            stream.close()
