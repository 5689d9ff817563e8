"""The batching loop (server/batcher.py) with a stand-in recognizer: batches across streams, each stream's updates
in order, backpressure, failures of the worker reaching the stream, stop (tail chunks, the end) and close."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from parley.features import FbankConfig
from server.batcher import _STOP, Batcher, BatcherConfig, Stream, StreamClosedError, Update
from server.bundle import EncoderSpec
from server.frontend import Chunk, Frontend
from server.recognizer import Final, Partial, Result

SR = 16000
WINDOW = 10  # fbank frames per chunk (and shift): one chunk per 100 ms of audio
SPEC = EncoderSpec(
    num_layers=1,
    left_context=0,
    encoder_dim=1,
    conv_kernel=1,
    window=WINDOW,
    shift=WINDOW,
    chunk=WINDOW // 4,
    subsampling=4,
    joiner_dim=1,
    out_dim=1,
    chunk_ms=100,
    history_ms=0,
    features=FbankConfig(),
)


@dataclass
class Counter:
    """A stream's state in the fake recognizer: its name and how many chunks it has seen."""

    name: str
    chunks: int = 0
    flush: list[bool] = field(default_factory=list)  # each chunk's flag


@dataclass
class FakeRecognizer:
    """Answers every chunk with a partial "<name>:<index>", and the end with a final of the chunk count."""

    fail: set[str] = field(default_factory=set)  # names whose chunks make the step raise
    fail_finish: set[str] = field(default_factory=set)
    batches: list[list[str]] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)
    finish_threads: set[str] = field(default_factory=set)
    cuts: list[tuple[str, int, float, float]] = field(default_factory=list)  # (name, chunks before, audio_s, silence)
    contexts: list[tuple[str, int, object]] = field(default_factory=list)  # (name, chunks before, context)

    def step(self, batch: Sequence[tuple[Counter, Chunk]]) -> list[list[Result]]:
        self.threads.add(threading.current_thread().name)
        self.batches.append([s.name for s, _ in batch])
        if any(s.name in self.fail for s, _ in batch):
            raise RuntimeError("the model broke")
        out: list[list[Result]] = []
        for s, c in batch:
            assert c.x.shape == (WINDOW, 80), c.x.shape
            s.flush.append(c.flush)
            out.append([Partial(0, f"{s.name}:{s.chunks}", 0.0, c.audio_s)])
            s.chunks += 1
        return out

    def cut(self, stream: Counter, audio_s: float, silence_s: float) -> list[Result]:
        self.cuts.append((stream.name, stream.chunks, audio_s, silence_s))
        return [Final(0, f"{stream.name}:cut{stream.chunks}", 0.0, audio_s)]

    def context(self, stream: Counter, context: object) -> None:
        self.contexts.append((stream.name, stream.chunks, context))

    def finish(self, stream: Counter, audio_s: float) -> list[Result]:
        self.finish_threads.add(threading.current_thread().name)
        if stream.name in self.fail_finish:
            raise ValueError("no end")
        return [Final(0, f"{stream.name}:{stream.chunks}", 0.0, audio_s)]


def _audio(seconds: float) -> np.ndarray:
    return np.random.default_rng(0).uniform(-0.1, 0.1, round(seconds * SR)).astype(np.float32)


async def _updates(stream: Stream) -> list[Update]:
    out = []
    while True:
        out.append(await asyncio.wait_for(stream.next_update(), 5))
        if out[-1].end or out[-1].error:
            return out


async def _feed(stream: Stream, x: np.ndarray, piece: int = 1600) -> None:
    for i in range(0, len(x), piece):
        await stream.push(x[i : i + piece])
        await asyncio.sleep(0)
    await stream.stop()


def _texts(updates: list[Update]) -> list[str]:
    return [r.text for u in updates for r in u.results]


def test_streams_share_batches_and_keep_their_order() -> None:
    fake = FakeRecognizer()

    counters = [Counter(f"s{i}") for i in range(4)]

    async def go() -> list[list[Update]]:
        batcher = Batcher(fake, BatcherConfig(max_batch=3, max_wait_ms=50.0), name="fake")
        await batcher.start()
        try:
            streams = [batcher.open(c, Frontend(SPEC, SR)) for c in counters]
            assert batcher.open_streams == 4
            got = await asyncio.gather(*(_updates(s) for s in streams), *(_feed(s, _audio(1.0)) for s in streams))
            for s in streams:
                s.close()
            assert batcher.open_streams == 0
            return list(got[:4])
        finally:
            await batcher.close()

    per_stream = asyncio.run(go())
    assert fake.threads and threading.current_thread().name not in fake.threads, "the step runs in a worker thread"
    # finish (punctuation, hotword checks) too: it must not stall the event loop, which serves every connection.
    assert fake.finish_threads and fake.finish_threads <= fake.threads, (fake.finish_threads, fake.threads)
    assert max(len(b) for b in fake.batches) == 3, fake.batches  # streams share steps, up to max_batch
    assert all(len(set(b)) == len(b) for b in fake.batches), "a stream at most once per step"
    for i, updates in enumerate(per_stream):
        n = len(updates) - 1  # one update per chunk, then the end
        assert n >= 10, n  # 1 s of audio and a window of tail padding, in 100 ms chunks
        assert _texts(updates[:-1]) == [f"s{i}:{k}" for k in range(n)]
        assert all(len(u.arrived) == 1 and not u.end for u in updates[:-1])
        end = updates[-1]
        assert end.end and end.arrived == [] and end.error is None
        (final,) = end.results
        assert isinstance(final, Final) and final.text == f"s{i}:{n}" and final.end == pytest.approx(1.0)
        # The chunks cut after stop (the tail padding's) are flush chunks; the final ends at the audio's end.
        flush = counters[i].flush
        assert len(flush) == n and 1 <= sum(flush) < n and flush == sorted(flush), flush


def _decode_apart(
    fake: FakeRecognizer, names: Sequence[str], seconds: float
) -> tuple[list[list[Update]], list[Stream]]:
    """Streams named `names`, `seconds` of audio each, decoded one stream per step (failures stay apart): each
    stream's updates up to its end or error, and the streams."""

    async def go() -> tuple[list[list[Update]], list[Stream]]:
        batcher = Batcher(fake, BatcherConfig(max_batch=1), name="fake")
        await batcher.start()
        try:
            streams = [batcher.open(Counter(n), Frontend(SPEC, SR)) for n in names]
            feeding = [asyncio.create_task(_feed(s, _audio(seconds))) for s in streams]
            got = await asyncio.gather(*(_updates(s) for s in streams))
            await asyncio.gather(*feeding, return_exceptions=True)
            return list(got), streams
        finally:
            await batcher.close()

    return asyncio.run(go())


def test_a_failing_step_ends_its_streams_and_spares_the_others() -> None:
    (bad, good, late), (stream, _, _) = _decode_apart(
        FakeRecognizer(fail={"bad"}, fail_finish={"late"}), ("bad", "good", "late"), 0.5
    )
    assert [u.error for u in bad] == ["the model failed: RuntimeError"] and bad[0].results == []
    assert stream.closed and stream.failure == "the model failed: RuntimeError"
    assert good[-1].end and good[-1].error is None and len(good) > 5
    assert late[-1].error == "the model failed: ValueError" and not late[-1].end and len(late) > 5


@dataclass
class ShortRecognizer(FakeRecognizer):
    """Answers a batch of "short"'s chunk with one result list too few (a recognizer bug), and "odd"'s end with
    something that is not a list of results."""

    def step(self, batch: Sequence[tuple[Counter, Chunk]]) -> list[list[Result]]:
        out = super().step(batch)
        return out[:-1] if any(s.name == "short" for s, _ in batch) else out

    def finish(self, stream: Counter, audio_s: float) -> list[Result]:
        return 42 if stream.name == "odd" else super().finish(stream, audio_s)  # type: ignore[return-value]


def test_a_recognizer_that_answers_the_wrong_count_fails_its_batch_not_the_server() -> None:
    """Checked in the worker thread, a wrong answer is a failed step (its streams get an error) or a failed end;
    before, `zip(strict=True)` raised on the event loop and the batch's streams waited for ever."""
    (short, good, odd), _ = _decode_apart(ShortRecognizer(), ("short", "good", "odd"), 0.3)
    assert [u.error for u in short] == ["the model failed: ValueError"], short
    assert good[-1].end and good[-1].error is None
    assert odd[-1].error == "the model failed: TypeError" and not odd[-1].end


def test_backpressure_stop_and_close() -> None:
    fake = FakeRecognizer()

    async def go() -> None:
        batcher = Batcher(fake, BatcherConfig(queue_chunks=2), name="fake")
        with pytest.raises(RuntimeError, match="not running"):
            batcher.open(Counter("early"), Frontend(SPEC, SR))
        await batcher.start()
        s = batcher.open(Counter("s"), Frontend(SPEC, SR))
        push = asyncio.create_task(s.push(_audio(1.0)))  # about 10 chunks
        await asyncio.sleep(0.2)
        assert not push.done() and s.unanswered == 2, s.unanswered  # nobody takes the updates: push waits
        first = await asyncio.wait_for(s.next_update(), 5)
        assert _texts([first]) == ["s:0"]
        while not push.done():
            await asyncio.wait_for(s.next_update(), 5)
        await push
        rest = asyncio.create_task(_updates(s))
        await s.stop()
        with pytest.raises(RuntimeError, match="after stop"):
            await s.push(_audio(0.1))
        end = (await rest)[-1]
        assert end.end and [r.text for r in end.results] == [f"s:{fake.batches.count(['s'])}"]
        # Closing the batcher ends every open stream with an error; waiting calls see the stream closed.
        other = batcher.open(Counter("other"), Frontend(SPEC, SR))
        await other.push(_audio(0.15))
        waiting = asyncio.create_task(_updates(other))
        await asyncio.sleep(0.05)
        await batcher.close()
        got = await waiting
        assert got[-1].error == "the engine stopped" and other.closed and batcher.open_streams == 0
        with pytest.raises(StreamClosedError):
            await other.push(_audio(0.5))

    asyncio.run(go())


async def _feed_slowly(stream: Stream, x: np.ndarray, piece: int = 800) -> None:
    for i in range(0, len(x), piece):
        await stream.push(x[i : i + piece])
        await asyncio.sleep(0.004)
    await stream.stop()


@dataclass
class SlowRecognizer(FakeRecognizer):
    """`FakeRecognizer` whose steps take a while and record how many ran at once and which streams were in them."""

    running: set[str] = field(default_factory=set)
    most_at_once: int = 0
    steps_at_once: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def step(self, batch: Sequence[tuple[Counter, Chunk]]) -> list[list[Result]]:
        names = {s.name for s, _ in batch}
        with self.lock:
            assert not names & self.running, f"a stream in two steps at once: {names & self.running}"
            self.running |= names
            self.steps_at_once += 1
            self.most_at_once = max(self.most_at_once, self.steps_at_once)
        try:
            threading.Event().wait(0.02)
            return super().step(batch)
        finally:
            with self.lock:
                self.running -= names
                self.steps_at_once -= 1


@pytest.mark.parametrize(("parallel", "n", "most"), [(1, 6, 1), (2, 6, 2), (2, 1, 1)])
def test_parallel_steps_overlap_but_never_hold_a_stream_twice(parallel: int, n: int, most: int) -> None:
    """Steps overlap up to `parallel_steps`; a stream whose chunk is in a step waits for it, even with a slot free
    (one stream, two slots: its next chunk arrives while the first is in a step)."""
    slow = SlowRecognizer()
    counters = [Counter(f"s{i}") for i in range(n)]

    async def go() -> list[list[Update]]:
        batcher = Batcher(slow, BatcherConfig(max_batch=2, max_wait_ms=1.0, parallel_steps=parallel), name="slow")
        await batcher.start()
        try:
            streams = [batcher.open(c, Frontend(SPEC, SR)) for c in counters]
            # pieces arriving while the stream's previous chunks are in a step: the loop could batch it twice
            got = await asyncio.gather(
                *(_updates(s) for s in streams), *(_feed_slowly(s, _audio(1.0)) for s in streams)
            )
            return list(got[: len(streams)])
        finally:
            await batcher.close()

    per_stream = asyncio.run(go())
    assert slow.most_at_once == most, (slow.most_at_once, parallel)
    assert len(slow.threads) <= parallel, slow.threads
    for c, updates in zip(counters, per_stream, strict=True):
        texts = _texts(updates)
        # 10 chunks of audio and the tail's flush chunks, in order, then the final
        assert texts[:-1] == [f"{c.name}:{i}" for i in range(len(texts) - 1)], texts
        assert texts[-1] == f"{c.name}:{len(texts) - 1}" and updates[-1].end


@dataclass
class GatedRecognizer(FakeRecognizer):
    """`FakeRecognizer` whose steps wait until `gate` is set."""

    gate: threading.Event = field(default_factory=threading.Event)

    def step(self, batch: Sequence[tuple[Counter, Chunk]]) -> list[list[Result]]:
        assert self.gate.wait(5), "the test never opened the gate"
        return super().step(batch)


def test_a_failing_step_spares_the_end_batched_with_it() -> None:
    """Stream "ok" has stopped and only its end (`_STOP`) is left when "bad"'s chunk comes: both go in one batch, the
    step of "bad"'s chunk fails. "bad" gets the error; "ok" still gets its final and its end."""
    fake = GatedRecognizer(fail={"bad"})

    async def go() -> tuple[list[Update], list[Update]]:
        batcher = Batcher(fake, BatcherConfig(max_wait_ms=1.0), name="fake")
        await batcher.start()
        try:
            ok, bad = (batcher.open(Counter(n), Frontend(SPEC, SR)) for n in ("ok", "bad"))
            await ok.push(_audio(0.05))
            await ok.stop()  # the tail padding makes one chunk, then the end
            while not (ok.in_flight and list(ok._pending) == [_STOP]):
                await asyncio.sleep(0.001)
            await bad.push(_audio(0.15))  # while "ok"'s chunk is held in its step: joins "ok"'s end in the next batch
            fake.gate.set()
            return await asyncio.gather(_updates(ok), _updates(bad))
        finally:
            await batcher.close()

    ok, bad = asyncio.run(go())
    assert fake.batches == [["ok"], ["bad"]], fake.batches
    assert [u.error for u in bad] == ["the model failed: RuntimeError"], bad
    assert _texts(ok) == ["ok:0", "ok:1"] and ok[-1].end and ok[-1].error is None, ok


def test_a_stop_cancelled_while_it_waits_for_room_can_be_called_again() -> None:
    """A session's reader is cancelled inside `stop` (the server drains) while the queue is full; the session calls
    `stop` again: the rest of the audio is decoded and the end comes."""
    fake = FakeRecognizer()

    async def go() -> list[Update]:
        batcher = Batcher(fake, BatcherConfig(queue_chunks=2), name="fake")
        await batcher.start()
        try:
            s = batcher.open(Counter("s"), Frontend(SPEC, SR))
            push = asyncio.create_task(s.push(_audio(0.5)))  # all in the frontend; 2 chunks queued, then it waits
            await asyncio.sleep(0.1)
            assert not push.done() and s.unanswered == 2, s.unanswered
            push.cancel()
            await asyncio.gather(push, return_exceptions=True)
            stop = asyncio.create_task(s.stop())
            await asyncio.sleep(0.05)
            assert not stop.done() and s.frontend.ready(), "stop waits for room"
            stop.cancel()
            await asyncio.gather(stop, return_exceptions=True)
            rest = asyncio.create_task(_updates(s))
            await asyncio.wait_for(s.stop(), 5)
            await s.stop()  # and again: nothing more is queued
            return await rest
        finally:
            await batcher.close()

    updates = asyncio.run(go())
    n = len(updates) - 1
    assert n >= 5 and _texts(updates) == [f"s:{k}" for k in range(n + 1)], _texts(updates)
    assert updates[-1].end and updates[-1].results[0].end == pytest.approx(0.5), updates[-1]


def test_finalize_flushes_then_cuts_and_the_stream_goes_on() -> None:
    """finalize: the audio so far in whole chunks (flush chunks, silence after it), then the cut's update marked
    finalized, in order; audio after it is the stream's again (not flush chunks); a finalize with nothing new adds no
    chunk; the cuts' updates count against the queue like chunks, so a client that never reads cannot pile them up."""
    fake = FakeRecognizer()

    async def go() -> None:
        batcher = Batcher(fake, BatcherConfig(queue_chunks=3), name="fake")
        await batcher.start()
        s = batcher.open(Counter("s"), Frontend(SPEC, SR))
        await s.push(_audio(0.25))  # two whole chunks, half of a third
        finalizing = asyncio.create_task(s.finalize())  # the flush chunk fills the queue: the cut waits for a reader
        got = [await asyncio.wait_for(s.next_update(), 5) for _ in range(4)]
        await finalizing
        assert not any(u.finalized for u in got[:3]) and got[3].finalized
        before = s.state.chunks
        assert fake.cuts[-1][:3] == ("s", before, 0.25) and fake.cuts[-1][3] > 0
        assert s.state.flush == [False, False, True], s.state.flush
        assert [r.text for r in got[3].results] == [f"s:cut{before}"] and s.unanswered == 0
        await s.finalize()  # nothing since: no chunk, one more cut
        again = await asyncio.wait_for(s.next_update(), 5)
        assert again.finalized and s.state.chunks == before and fake.cuts[-1][1:] == (before, 0.25, 0.0)
        await s.push(_audio(0.2))
        rest = asyncio.create_task(_updates(s))
        await s.stop()
        assert (await rest)[-1].end
        assert s.state.flush[before] is False  # the audio after the finalize: ordinary chunks again
        # Nobody reads: finalizes wait for room like pushes (the first flushes a chunk of silence, the next add none).
        t = batcher.open(Counter("t"), Frontend(SPEC, SR))
        await t.finalize()
        await t.finalize()
        assert t.unanswered == 3
        blocked = asyncio.create_task(t.finalize())
        await asyncio.sleep(0.1)
        assert not blocked.done() and t.unanswered == 3
        await asyncio.wait_for(t.next_update(), 5)
        await asyncio.wait_for(blocked, 5)
        with pytest.raises(RuntimeError, match="after stop"):
            await s.finalize()
        await batcher.close()

    asyncio.run(go())


def test_a_context_takes_its_place_among_the_audio_and_answers_nothing() -> None:
    """`Stream.set_context`: the recognizer gets it after the chunks pushed before it, before those pushed after;
    no update answers it; two with no audio between are one (the later)."""
    fake = FakeRecognizer()

    async def go() -> list[Update]:
        batcher = Batcher(fake, BatcherConfig(max_wait_ms=0.0), name="fake")
        await batcher.start()
        try:
            stream = batcher.open(Counter("s"), Frontend(SPEC, SR))
            reader = asyncio.ensure_future(_updates(stream))
            await stream.push(_audio(0.3))  # 28 fbank frames: two whole chunks
            stream.set_context("first")
            stream.set_context("second")  # replaces "first": nothing came between
            await stream.push(_audio(0.2))  # 48 frames in all: four chunks
            stream.set_context("third")
            await stream.stop()
            got = await reader
            with pytest.raises(RuntimeError, match="context after stop"):
                stream.set_context("late")
            stream.close()
            with pytest.raises(StreamClosedError):
                stream.set_context("closed")
            return got
        finally:
            await batcher.close()

    updates = asyncio.run(go())
    assert [(name, before, c) for name, before, c in fake.contexts] == [("s", 2, "second"), ("s", 4, "third")]
    assert all(u.results for u in updates), "every update answers audio or the end, none a context"
