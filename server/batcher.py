"""The batching loop: one asyncio task per bundle gathers a chunk from every stream that has one ready and runs the
recognizer's batched step on them in a worker thread, so the event loop never runs a model.

    batcher = Batcher(recognizer, BatcherConfig(max_batch=32, max_wait_ms=10), name="en-small")
    await batcher.start()
    stream = batcher.open(recognizer.open(plan, "greedy"), Frontend(recognizer.spec, 48000))
    await stream.push(samples)           # float32 (T_samples,) at 48 kHz; waits while the stream's queue is full
    update = await stream.next_update()  # Update(results=[Partial | Final, ...], arrived=[...])
    await stream.finalize()              # the open segment's final now (an Update with `finalized`); audio may follow
    await stream.stop()                  # flush: the last finals, then an Update with end=True
    await batcher.close()

A stream turns its audio into encoder windows as it arrives (its `Frontend`) and queues them. It holds at most
`queue_chunks` chunks that are waiting, being decoded, or decoded but not yet taken by its session; beyond that `push`
waits, so the connection stops reading its socket instead of buffering without bound. The loop takes at most one
chunk per stream (a stream's chunks depend on each other through the encoder state), gathers up to `max_batch`
streams, waiting at most `max_wait_ms` after the first (less when every open stream is already in), and hands them
to `recognizer.step` in a worker thread. Up to `parallel_steps` batches are in steps at once, each in its own worker
thread (onnxruntime releases the GIL while it runs the model, so two steps use two cores); a stream whose chunk is in
a step waits for it before its next chunk joins a batch, so its chunks are still decoded one after the other. Each
stream gets its results in order, one `Update` per chunk; after `stop` the tail's chunks and then
`recognizer.finish` (in the worker thread too: it punctuates) give the last finals, the last update marked `end`.
`finalize` does the same in the middle of a stream: the frontend's flush chunks, then `recognizer.cut` closes the open
segment, and the stream goes on.

A failure of the step ends every stream whose chunk was in it with an `Update` whose `error` is set; other streams,
those that brought only their end to that batch included, go on.
The batcher knows nothing of models or wire formats: any object with `step` and `finish` (`BatchRecognizer`) will do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from server.frontend import Chunk, Frontend
from server.recognizer import Result

if TYPE_CHECKING:
    from server.metrics import ServerMetrics

log = logging.getLogger("parley.batcher")

# Audio pushes longer than this (seconds) are turned into fbank frames in a worker thread rather than on the event
# loop: 100 ms of audio takes well under a millisecond, a 1 MiB message (up to 32 s) takes tens.
_FBANK_INLINE_S = 1.0


class BatchRecognizer(Protocol):
    """What the loop runs: `server.recognizer.Recognizer`, or a stand-in in tests."""

    def step(self, batch: Sequence[tuple[Any, Chunk]]) -> list[list[Result]]:
        """One chunk of each (stream state, chunk) pair; each stream's results. Runs in the worker thread."""
        ...

    def finish(self, stream: Any, audio_s: float) -> Sequence[Result]:
        """A stream's last results after its last chunk, given the seconds of audio it received. Runs in the worker
        thread."""
        ...

    def cut(self, stream: Any, audio_s: float, silence_s: float) -> Sequence[Result]:
        """A finalize: the open segment's final after the flush chunks, given the seconds of audio received and of
        the silence the flush added; the stream goes on. Runs in the worker thread."""
        ...

    def context(self, stream: Any, context: Any) -> None:
        """A context message reached its place among the stream's audio (`Stream.set_context`): what it carries is
        the stream's from here on. Runs in the worker thread."""
        ...


@dataclass(frozen=True)
class BatcherConfig:
    """How the loop batches."""

    max_batch: int = 32  # streams in one step
    max_wait_ms: float = 10.0  # how long the first ready stream waits for others
    queue_chunks: int = 8  # chunks one stream may have unanswered before `push` waits
    parallel_steps: int = 1  # batches in the recognizer at once (each in its own worker thread)


class StreamClosedError(Exception):
    """The stream was closed (its client left, or the batcher stopped) while a call waited on it."""


@dataclass
class Update:
    """What one step (or the stream's end) produced for a stream.

    Attributes:
        results: partials and finals, in order (may be empty: the text did not change).
        arrived: `time.monotonic()` when the last sample of each chunk this update answers arrived.
        end: the stream is flushed; every final was in this or an earlier update.
        error: the recognizer failed on this stream; nothing more will come.
        finalized: the answer to a `finalize`: its one result is the final of the segment the client closed.
        channel: the channel of a multichannel stream it belongs to (server/multichannel.py); None for one channel.
    """

    results: list[Result] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)
    end: bool = False
    error: str | None = None
    finalized: bool = False
    channel: int | None = None


_STOP = object()  # the queue's last item after stop: the stream's last finals, and the end


@dataclass(frozen=True)
class _Context:
    """A queue item: a context message, taken in its place among the audio; no update answers it."""

    context: Any


@dataclass(frozen=True)
class _Cut:
    """A queue item after a finalize's flush chunks: the open segment's final, and the stream goes on."""

    audio_s: float  # seconds of audio received when the client finalized
    silence_s: float  # seconds of silence the frontend's flush added


class Stream:
    """One stream in the loop: its frontend, its queue of chunks and its updates. Created by `Batcher.open`.

    Args:
        batcher: the loop that decodes it.
        state: the recognizer's state of this stream (`Recognizer.open`), passed to `step` and `finish`.
        frontend: its audio to chunks.
    """

    def __init__(self, batcher: Batcher, state: Any, frontend: Frontend) -> None:
        self.batcher = batcher
        self.state = state
        self.frontend = frontend
        # (chunk, arrival time), _Cut, _Context, _STOP
        self._pending: deque[tuple[Chunk, float] | _Cut | _Context | object] = deque()
        self._updates: asyncio.Queue[Update] = asyncio.Queue()
        self._room = asyncio.Event()  # set when the queue may have room
        self.queued = False  # in the loop's ready queue
        self._outstanding = 0  # chunks queued whose update has not been taken yet: at most queue_chunks
        self._accepting: asyncio.Future | None = None  # a long push's frontend work in a thread
        self.stopped = False  # stop was called: no more audio
        self._stop_queued = False  # _STOP is in the queue (a cancelled stop leaves it out)
        self.closed = False
        self.failure: str | None = None  # why the loop gave up on the stream
        self.in_flight = False  # an item of it is in a step now: it waits for that before it is batched again

    @property
    def seconds_received(self) -> float:
        return self.frontend.seconds_received

    @property
    def unanswered(self) -> int:
        """Chunks queued whose update has not been taken yet (`next_update`): 0 once every chunk of the audio pushed
        so far is decoded and its results taken (audio short of a whole chunk waits for more)."""
        return self._outstanding

    @property
    def pending_chunks(self) -> int:
        return sum(1 for c in self._pending if isinstance(c, tuple))

    async def _wait_room(self) -> None:
        while self._outstanding >= self.batcher.config.queue_chunks:
            if self.closed:
                raise StreamClosedError("stream closed")
            self._room.clear()
            await self._room.wait()
        if self.closed:
            raise StreamClosedError("stream closed")

    async def push(self, samples: np.ndarray, arrived: float | None = None) -> None:
        """Adds audio: float32 samples `(T_samples,)` at the frontend's rate. Returns once its chunks are queued,
        which waits while the stream's queue is full (backpressure).

        Raises:
            StreamClosedError: the stream was closed meanwhile.
            RuntimeError: push after stop.
        """
        if self.stopped:
            raise RuntimeError("push after stop")
        arrived = time.monotonic() if arrived is None else arrived
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.batcher._audio(samples.size / self.frontend.sample_rate)
        if samples.size > _FBANK_INLINE_S * self.frontend.sample_rate:
            # Shielded: a cancelled push must not leave the thread feeding the frontend while stop() feeds it too.
            self._accepting = asyncio.ensure_future(asyncio.to_thread(self.frontend.accept, samples))
            await asyncio.shield(self._accepting)
        else:
            self.frontend.accept(samples)
        await self._queue_chunks(arrived)

    async def _queue_chunks(self, arrived: float) -> None:
        while self.frontend.ready():
            await self._wait_room()  # before the chunk is cut: a cancelled wait leaves its frames in the frontend
            chunk = self.frontend.pop_chunk()
            if chunk is None:  # a concurrent stop took it while this call waited for room
                break
            self._outstanding += 1
            self._pending.append((chunk, arrived))
            self.batcher._schedule(self)

    async def stop(self) -> None:
        """No more audio: the frontend pads the tail so every sample is decoded, then the end is queued. The updates
        that follow hold the last finals, the last with `end` set.

        Waits while the stream's queue is full. A stop cancelled there may be called again (a session's shutdown
        does, after cancelling its reader): the second call queues what the first left, then the end."""
        self.stopped = True
        if self._stop_queued:
            return
        if self._accepting is not None and not self._accepting.done():
            await asyncio.wait({self._accepting})
        self.frontend.finish()  # idempotent
        await self._queue_chunks(time.monotonic())
        if self._stop_queued:  # another call finished while this one waited for room
            return
        self._stop_queued = True
        self._pending.append(_STOP)
        self.batcher._schedule(self)

    async def finalize(self) -> None:
        """Closes the open segment now: the audio so far is decoded to the end (the frontend's flush) and the updates
        that follow hold its final, in one marked `finalized`; audio may follow. Waits while the stream's queue is
        full.

        Raises:
            StreamClosedError: the stream was closed meanwhile.
            RuntimeError: finalize after stop.
        """
        if self.stopped:
            raise RuntimeError("finalize after stop")
        if self._accepting is not None and not self._accepting.done():
            await asyncio.wait({self._accepting})
        silence_s = self.frontend.flush()
        await self._queue_chunks(time.monotonic())
        await self._wait_room()  # the cut's update counts like a chunk's: a client that never reads cannot pile them
        self._outstanding += 1
        self._pending.append(_Cut(self.frontend.seconds_received, silence_s))
        self.batcher._schedule(self)

    def set_context(self, context: Any) -> None:
        """Queues a context message's `context` (for `BatchRecognizer.context`) after the audio pushed so far, so
        that it takes effect in its place among the audio. A context still queued when the next one comes, with no
        audio between, is replaced by it (a client cannot pile them up).

        Raises:
            StreamClosedError: the stream was closed.
            RuntimeError: after stop.
        """
        if self.closed:
            raise StreamClosedError("stream closed")
        if self.stopped:
            raise RuntimeError("context after stop")
        if self._pending and isinstance(self._pending[-1], _Context):
            self._pending[-1] = _Context(context)
            return
        self._pending.append(_Context(context))
        self.batcher._schedule(self)

    async def next_update(self) -> Update:
        """The next update, in order; waits for it."""
        update = await self._updates.get()
        self._outstanding -= len(update.arrived) + update.finalized
        self._room.set()
        return update

    def _deliver(self, update: Update) -> None:
        if update.error and self.failure is None:
            self.failure = update.error
        if not self.closed:
            self._updates.put_nowait(update)

    def _take(self) -> tuple[Chunk, float] | object:
        return self._pending.popleft()

    def close(self) -> None:
        """Abandons the stream (its client left): the loop forgets it, waiting calls raise `StreamClosedError`."""
        if self.closed:
            return
        self.closed = True
        self._pending.clear()
        self._room.set()
        self.batcher._forget(self)


class Batcher:
    """One recognizer's batching loop.

    Args:
        recognizer: what runs a batch (in the worker thread) and ends a stream.
        config: batching limits.
        name: for logs, thread names and metric labels (the bundle's name).
        metrics: where batch sizes and audio seconds go (None: nowhere).
    """

    def __init__(
        self,
        recognizer: BatchRecognizer,
        config: BatcherConfig | None = None,
        name: str = "batcher",
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.recognizer = recognizer
        self.config = config or BatcherConfig()
        self.name = name
        self.metrics = metrics
        self._streams: set[Stream] = set()
        self._ready: deque[Stream] = deque()
        self._busy = 0  # streams with an item in a step
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def open_streams(self) -> int:
        """Streams opened and not yet closed."""
        return len(self._streams)

    async def start(self) -> None:
        """Starts the loop on the running event loop."""
        if self._task is not None:
            return
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(
            max_workers=self.config.parallel_steps, thread_name_prefix=f"parley-{self.name}"
        )
        self._task = asyncio.create_task(self._run(), name=f"parley-engine-{self.name}")

    async def close(self) -> None:
        """Stops the loop; open streams get an error update and are closed."""
        for s in list(self._streams):
            s._deliver(Update(error="the engine stopped"))
            s.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def open(self, state: Any, frontend: Frontend) -> Stream:
        """A new stream of the recognizer's stream `state`, fed by `frontend`.

        Raises:
            RuntimeError: the loop is not running.
        """
        if self._task is None:
            raise RuntimeError(f"engine {self.name} is not running")
        stream = Stream(self, state, frontend)
        self._streams.add(stream)
        return stream

    def _audio(self, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.audio_seconds.labels(self.name).inc(seconds)

    def _schedule(self, stream: Stream) -> None:
        if not stream.queued and not stream.closed and stream._pending:
            stream.queued = True
            self._ready.append(stream)
            if self._wake is not None:
                self._wake.set()

    def _forget(self, stream: Stream) -> None:
        self._streams.discard(stream)

    async def _gather(self) -> list[tuple[Stream, Any]]:
        """Waits for the first ready stream, then up to `max_wait_ms` for more; takes one item from each (none from a
        stream whose previous item is still in a step)."""
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        cfg = self.config
        while True:
            while not self._ready:
                self._wake.clear()
                await self._wake.wait()
            deadline = loop.time() + cfg.max_wait_ms / 1000.0
            # Waiting is pointless once every open stream not in a step is in: nobody else can join.
            while len(self._ready) < min(cfg.max_batch, len(self._streams) - self._busy):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except TimeoutError:
                    break
            batch = []
            while self._ready and len(batch) < cfg.max_batch:
                s = self._ready.popleft()
                s.queued = False
                if s.closed or not s._pending or s.in_flight:
                    continue
                batch.append((s, s._take()))
            if batch:
                return batch

    def _fail(self, streams: Sequence[Stream], error: str) -> None:
        for s in streams:
            s._deliver(Update(error=error))
            s.close()

    async def _run(self) -> None:
        slots = asyncio.Semaphore(self.config.parallel_steps)
        steps: set[asyncio.Task] = set()
        try:
            while True:
                await slots.acquire()
                try:
                    batch = await self._gather()
                except BaseException:
                    slots.release()
                    raise
                for s, _ in batch:
                    s.in_flight = True
                self._busy += len(batch)
                task = asyncio.create_task(self._step(batch))
                steps.add(task)

                def done(t: asyncio.Task) -> None:
                    steps.discard(t)
                    slots.release()

                task.add_done_callback(done)
        finally:
            for t in steps:
                t.cancel()

    def _landed(self, s: Stream, schedule: bool = True) -> None:
        """A stream's item is done: it may be batched again."""
        s.in_flight = False
        self._busy -= 1
        if schedule:
            self._schedule(s)

    async def _step(self, batch: list[tuple[Stream, Any]]) -> None:
        """One gathered batch: its chunks in one recognizer step, then the ends it holds, in one worker-thread call.

        A failed step ends only the streams whose chunks were in it: a stream that brought its end (`_STOP`, already
        taken off its queue) is still finished, or it would wait for its end forever."""
        loop = asyncio.get_running_loop()
        chunks: list[tuple[Stream, Chunk, float]] = [(s, *item) for s, item in batch if isinstance(item, tuple)]
        ends = [(s, item) for s, item in batch if not isinstance(item, tuple)]  # stops, cuts and contexts
        # One hop to the worker thread for the whole batch: finish punctuates and checks hotwords, work that must not
        # stall the event loop, and a hop per end would hold the step's slot longer. The streams are in no other step
        # meanwhile (in_flight), so nothing else touches their state.
        results, lasts = await loop.run_in_executor(
            self._executor,
            self._work,
            [(s.state, c) for s, c, _ in chunks],
            [(s.state, s.seconds_received if item is _STOP else item) for s, item in ends],
        )
        if isinstance(results, Exception):
            self._fail([s for s, _, _ in chunks], f"the model failed: {type(results).__name__}")
            for s, _, _ in chunks:
                self._landed(s, schedule=False)
        elif chunks:
            if self.metrics is not None:
                self.metrics.batch_size.labels(self.name).observe(len(chunks))
            for (s, _, arrived), rs in zip(chunks, results, strict=True):
                s._deliver(Update(rs, [arrived]))
                self._landed(s)
        for (s, item), last in zip(ends, lasts, strict=True):
            if isinstance(last, Exception):
                self._fail([s], f"the model failed: {type(last).__name__}")
                self._landed(s, schedule=False)
                continue
            if not isinstance(item, _Context):  # a context is answered by nothing
                cut = isinstance(item, _Cut)
                s._deliver(Update(last, end=not cut, finalized=cut))
            self._landed(s)

    def _work(
        self, items: list[tuple[Any, Chunk]], ends: list[tuple[Any, float | _Cut | _Context]]
    ) -> tuple[list[list[Result]] | Exception, list[list[Result] | Exception]]:
        """In the worker thread: the step of `items` (none: no step), then each end's finish (given the seconds of
        audio received), cut (given a finalize's `_Cut`) or context (a `_Context`). A failure is logged and returned
        in place of its results, so that one failure ends only the streams it concerns."""
        results: list[list[Result]] | Exception = []
        if items:
            try:
                results = [list(rs) for rs in self.recognizer.step(items)]
                if len(results) != len(items):  # checked here: on the event loop it would leave the batch hanging
                    raise ValueError(f"the recognizer answered {len(results)} of {len(items)} streams")
            except Exception as e:
                log.exception("engine %s: a batch of %d streams failed", self.name, len(items))
                results = e
        lasts: list[list[Result] | Exception] = []
        for state, end in ends:
            try:
                if isinstance(end, _Cut):
                    lasts.append(list(self.recognizer.cut(state, end.audio_s, end.silence_s)))
                elif isinstance(end, _Context):
                    self.recognizer.context(state, end.context)
                    lasts.append([])
                else:
                    lasts.append(list(self.recognizer.finish(state, end)))
            except Exception as e:
                log.exception("engine %s: a stream's end failed", self.name)
                lasts.append(e)
        return results, lasts
