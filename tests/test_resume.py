"""A live source streamed through server restarts (clients/resume.py): the audio log's resend points and controls,
and a stream carried across a drained and restarted server with a finalize in it."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from clients.resume import AudioLog, stream_resumably
from clients.stream import FINALIZE, encode_audio
from server.settings import Settings
from tests.test_server import TIMEOUT, Running, audio


async def _drain(log: AudioLog, start: int) -> list[bytes | dict]:
    return [item async for item, _ in log.audio(start)]


def test_the_log_resends_from_a_frame_with_its_controls_in_place() -> None:
    log = AudioLog(rate=10, width=2, max_backlog_s=1.0)  # 10 frames a second, 2 bytes each, 10 frames kept
    log.put(b"aabb")
    log.put_control(FINALIZE)  # after frame 2
    log.put(b"ccddeeX")  # a partial frame (X) is dropped
    log.end()
    assert log.received == 5 and bytes(log.buffer) == b"aabbccddee"
    assert asyncio.run(_drain(log, 0)) == [b"aabb", FINALIZE, b"ccddee"]
    # A final up to frame 2 (the finalize's): the frames and the control before it are not sent again.
    log.decoded(2)
    assert log.base == 2 and asyncio.run(_drain(log, 2)) == [b"ccddee"]
    # A resend from before the finalize (its final never came) sends it again in its place.
    log = AudioLog(rate=10, width=1)
    log.put(b"ab")
    log.put_control(FINALIZE)
    log.put(b"cd")
    log.put_control(FINALIZE)  # the same message again (Enter pressed twice): each is sent in its place
    log.put(b"e")
    log.end()
    assert asyncio.run(_drain(log, 1)) == [b"b", FINALIZE, b"cd", FINALIZE, b"e"]
    # The backlog keeps the last max_backlog_s: older frames are gone, and a resend starts at the oldest kept.
    log = AudioLog(rate=10, width=1, max_backlog_s=1.0)
    log.put(bytes(range(25)))
    log.end()
    assert log.base == 15 and asyncio.run(_drain(log, 0)) == [bytes(range(15, 25))]


def test_a_stream_with_a_finalize_is_carried_across_a_server_restart(tiny_bundles: Path) -> None:
    """The source sends 1 s, a finalize, 2 s more in real time; the server drains 1.8 s in and comes back on the same
    port 0.5 s later. The finals cover the source end to end on its clock, numbered on, the finalize's final ends at
    1.0 s, and nothing is reported lost."""
    x = audio(3.0, 81)
    pcm = encode_audio(x, "s16le")
    settings = {"bundles": tiny_bundles, "intra_op_threads": 1, "log_level": "warning", "endpointing": False}
    first = Running(Settings(port=0, drain_timeout_s=0.2, **settings))
    port = first.port
    out: list[dict] = []
    retries: list[str] = []

    async def go() -> dict | None:
        log = AudioLog(rate=16000, width=2)
        start = {"type": "start", "sample_rate": 16000, "encoding": "s16le", "partials": False}
        streaming = asyncio.create_task(
            stream_resumably(first.url, start, log, out.append, on_retry=lambda code, _: retries.append(code))
        )

        async def source() -> None:
            for i in range(0, len(pcm), 3200):  # 100 ms a message, in real time
                if i == 32000:
                    log.put_control(FINALIZE)
                log.put(pcm[i : i + 3200])
                await asyncio.sleep(0.1)
            log.end()

        feeding = asyncio.create_task(source())
        await asyncio.sleep(1.8)
        await asyncio.to_thread(first.stop)
        await asyncio.sleep(0.5)
        second = await asyncio.to_thread(Running, Settings(port=port, **settings))
        try:
            await feeding
            return await asyncio.wait_for(streaming, TIMEOUT)
        finally:
            await asyncio.to_thread(second.stop)

    error = asyncio.run(go())
    assert error is None, error
    assert retries and set(retries) <= {"shutting_down", "connect_failed", "closed"}, retries
    finals = [m for m in out if m["type"] == "final"]
    assert [m["type"] for m in out].count("ready") >= 2 and not [m for m in out if m["type"] == "warning"]
    assert [m["segment"] for m in finals] == list(range(len(finals))) and len(finals) >= 3, finals
    assert [m["end"] for m in finals if m.get("finalized")] == [pytest.approx(1.0, abs=0.001)]
    assert finals[0]["start"] == 0.0 and finals[-1]["end"] == pytest.approx(3.0, abs=0.05)
    for a, b in itertools.pairwise(finals):
        assert b["start"] == pytest.approx(a["end"], abs=0.001), finals


def test_a_source_that_never_got_a_stream_can_fail_at_once() -> None:
    """`parley mic`'s choice: a wrong address or no server is said at once, not retried while the audio piles up."""
    log = AudioLog(rate=16000, width=2)
    log.put(b"\0" * 3200)
    start = {"type": "start", "sample_rate": 16000, "encoding": "s16le"}
    out: list[dict] = []
    error = asyncio.run(
        asyncio.wait_for(
            stream_resumably("ws://127.0.0.1:9/v1/stream", start, log, out.append, retry_before_ready=False), TIMEOUT
        )
    )
    assert error is not None and error["code"] == "connect_failed" and out == []
