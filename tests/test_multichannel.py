"""A stream of several channels (server/multichannel.py) over the batching loop with test_batcher's stand-in
recognizer: each channel's audio to its own stream, updates tagged and in order per channel, one end, backpressure
per channel, a failure of one channel, and close."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from server.batcher import Batcher, BatcherConfig, StreamClosedError, Update
from server.frontend import Frontend
from server.multichannel import StreamGroup
from tests.test_batcher import SPEC, SR, Counter, FakeRecognizer, _audio, _updates


def _interleave(*channels: np.ndarray) -> np.ndarray:
    return np.stack(channels, axis=1).reshape(-1)


def test_each_channel_is_its_own_stream_and_the_end_comes_once() -> None:
    fake = FakeRecognizer()
    counters = [Counter("a"), Counter("b")]
    long, short = _audio(1.0), _audio(0.5)
    short = np.concatenate([short, np.zeros(long.size - short.size, np.float32)])

    async def go() -> list[Update]:
        batcher = Batcher(fake, BatcherConfig(max_batch=4, max_wait_ms=20.0), name="fake")
        await batcher.start()
        try:
            group = StreamGroup([batcher.open(c, Frontend(SPEC, SR)) for c in counters])
            x = _interleave(long, short)
            reading = asyncio.create_task(_updates(group))  # type: ignore[arg-type]  # the Stream interface
            for i in range(0, x.size, 3200):  # 100 ms of both channels a message
                await group.push(x[i : i + 3200])
            with pytest.raises(ValueError, match="whole frames of 2"):
                await group.push(np.zeros(3, np.float32))
            await group.stop()
            updates = await reading
            group.close()
            assert batcher.open_streams == 0
            return updates
        finally:
            await batcher.close()

    updates = asyncio.run(go())
    assert [u.end for u in updates].count(True) == 1 and updates[-1].end
    for c, name in enumerate("ab"):
        texts = [r.text for u in updates if u.channel == c for r in u.results]
        # its own stream: its chunks numbered from 0 in order, then its final (the chunk count)
        assert texts[:-1] == [f"{name}:{i}" for i in range(len(texts) - 1)] and texts[-1] == f"{name}:{len(texts) - 1}"
    assert counters[0].chunks == counters[1].chunks  # the same number of samples per channel


def test_backpressure_holds_per_channel() -> None:
    """A session that does not read: each channel's queue fills (queue_chunks), and push waits, though the group
    takes one update ahead per channel."""
    fake = FakeRecognizer()

    async def go() -> tuple[bool, int]:
        batcher = Batcher(fake, BatcherConfig(max_batch=4, max_wait_ms=5.0, queue_chunks=2), name="fake")
        await batcher.start()
        try:
            group = StreamGroup([batcher.open(Counter(n), Frontend(SPEC, SR)) for n in "ab"])
            x = _interleave(_audio(2.0), _audio(2.0))
            pushing = asyncio.create_task(group.push(x))  # 20 chunks a channel, 2 may wait unread
            await asyncio.sleep(0.5)
            blocked = not pushing.done()
            first = await asyncio.wait_for(group.next_update(), 5)
            group.close()
            with pytest.raises(StreamClosedError):
                await asyncio.wait_for(pushing, 5)
            return blocked, first.channel
        finally:
            await batcher.close()

    blocked, channel = asyncio.run(go())
    assert blocked and channel == 0


def test_a_failing_channel_fails_the_group() -> None:
    fake = FakeRecognizer(fail={"b"})

    async def go() -> list[Update]:
        batcher = Batcher(fake, BatcherConfig(max_batch=1, max_wait_ms=5.0), name="fake")
        await batcher.start()
        try:
            group = StreamGroup([batcher.open(Counter(n), Frontend(SPEC, SR)) for n in "ab"])
            await group.push(_interleave(_audio(0.3), _audio(0.3)))
            updates = await _updates(group)  # type: ignore[arg-type]  # the Stream interface
            assert group.failure is not None
            group.close()
            assert group.closed
            return updates
        finally:
            await batcher.close()

    updates = asyncio.run(go())
    assert updates[-1].error and updates[-1].channel == 1 and not updates[-1].end
