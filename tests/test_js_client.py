"""The JavaScript client (clients/js/parley.mjs), served at /sdk/parley.mjs and run in headless Chromium as an app
would: a stream of en-open with partials, a finalize that answers with its final, a context, stop with every final;
a refused start as a ParleyError with the server's code; and a resumable stream carried across a drained and
restarted server with a finalize in it, its results on the source's clock (as clients/resume.py's test)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from clients.stream import encode_audio
from server.settings import Settings
from tests._chromium import Chromium
from tests.test_server import TIMEOUT, Running, audio
from tests.test_web import SLOW_READY, _require_chromium

# Streams `PCM_` (base64 s16le at 16 kHz) in 100 ms messages, `PACE_` ms apart, with a finalize after `FINALIZE_AT_`
# bytes (or none), then stop; returns what the stream said.
STREAM = """(async () => {
  const { ParleyStream, ParleyError } = await import('/sdk/parley.mjs');
  const pcm = Uint8Array.from(atob(PCM_), c => c.charCodeAt(0));
  const messages = [], reconnects = [];
  const stream = await ParleyStream.open(URL_, {
    start: START_, onMessage: m => messages.push(m), onReconnect: r => reconnects.push(r.session),
  });
  let finalized = null;
  for (let i = 0; i < pcm.length; i += 3200) {
    if (i === FINALIZE_AT_) stream.finalize().then(f => finalized = f);
    stream.send(pcm.slice(i, i + 3200));
    await new Promise(r => setTimeout(r, PACE_));
  }
  stream.context({hotwords: ['mcallister']});
  const finals = await stream.stop();
  let refused = null;
  try {
    await ParleyStream.open(URL_, {start: {sample_rate: 16000, model: 'no-such-model'}});
  } catch (e) {
    refused = {name: e.name, code: e.code, closeCode: e.closeCode, isParley: e instanceof ParleyError};
  }
  return {ready: stream.ready, finals, finalized, messages, reconnects, refused};
})()"""


def _script(server: Running, pcm: bytes, start: dict, finalize_at: int, pace_ms: int) -> str:
    return (
        STREAM.replace("PCM_", json.dumps(base64.b64encode(pcm).decode()))
        .replace("URL_", json.dumps(server.url))
        .replace("START_", json.dumps(start))
        .replace("FINALIZE_AT_", str(finalize_at))
        .replace("PACE_", str(pace_ms))
    )


def test_an_app_streams_finalizes_and_stops(en_open_server: Running, code_speech: tuple[np.ndarray, int]) -> None:
    """The sentence twice, a finalize after the first: the finalize's promise gets that final, stop gets both in
    order; partials came while it streamed; a start naming no model is a ParleyError with the server's code."""
    _require_chromium()
    x, rate = code_speech
    pause = np.zeros(rate // 2, np.float32)
    one = encode_audio(np.concatenate([x, pause]), "s16le")
    one = one[: len(one) // 3200 * 3200]  # whole messages, so the finalize falls between the two
    pcm = one + one

    async def go() -> dict:
        async with Chromium.launch() as browser:
            page = await browser.page()
            await page.navigate(en_open_server.http + "/")
            start = {"sample_rate": 16000, "model": "en-open", "endpointing": False}
            return await page.evaluate(_script(en_open_server, pcm, start, len(one), 5))

    out = asyncio.run(go())
    assert out["ready"]["model"] == "en-open" and out["reconnects"] == []
    finals = out["finals"]
    said = "the code is one two three four five six"
    assert [f["text"] for f in finals] == [said, said], finals
    assert (
        out["finalized"] == finals[0] and finals[0]["finalized"] and finals[0]["end"] == pytest.approx(len(one) / 32000)
    )
    assert [f["segment"] for f in finals] == [0, 1] and finals[1]["start"] == finals[0]["end"]
    assert sum(m["type"] == "partial" for m in out["messages"]) >= 3
    assert out["refused"] == {"name": "ParleyError", "code": "unknown_model", "closeCode": 1008, "isParley": True}


def test_a_stream_is_carried_across_a_server_restart(tiny_bundles: Path) -> None:
    """The page streams 3 s in real time with a finalize at 1 s; the server drains 1.8 s in and comes back on the same
    port 0.5 s later. The client reconnects by itself and resends what was not decoded: the finals cover the source
    end to end on its clock, numbered on, the finalize's final ends at 1.0 s, nothing is reported lost."""
    _require_chromium()
    pcm = encode_audio(audio(3.0, 81), "s16le")
    settings = {"bundles": tiny_bundles, "intra_op_threads": 1, "log_level": "warning", "endpointing": False}
    first = Running(Settings(port=0, drain_timeout_s=0.2, **settings))
    port = first.port

    async def go() -> dict:
        async with Chromium.launch() as browser:
            page = await browser.page()
            await page.navigate(first.http + "/")
            start = {"sample_rate": 16000, "partials": False}
            streaming = asyncio.create_task(page.evaluate(_script(first, pcm, start, 32000, 100)))
            await asyncio.sleep(1.8)
            await asyncio.to_thread(first.stop)
            await asyncio.sleep(0.5)
            second = await asyncio.to_thread(Running, Settings(port=port, **settings))
            try:
                return await asyncio.wait_for(streaming, TIMEOUT)
            finally:
                await asyncio.to_thread(second.stop)

    out = asyncio.run(go())
    messages, finals = out["messages"], out["finals"]
    assert len(out["reconnects"]) >= 1 and not [m for m in messages if m["type"] == "warning"], messages
    assert [m["segment"] for m in finals] == list(range(len(finals))) and len(finals) >= 3, finals
    assert [m["end"] for m in finals if m.get("finalized")] == [pytest.approx(1.0, abs=0.001)]
    assert finals[0]["start"] == 0.0 and finals[-1]["end"] == pytest.approx(3.0, abs=0.05)
    for a, b in itertools.pairwise(finals):
        assert b["start"] == pytest.approx(a["end"], abs=0.001), finals


MICROPHONE = """(async () => {
  const { ParleyStream } = await import('/sdk/parley.mjs');
  SLOW_READY;
  const levels = [];
  const stream = await ParleyStream.openMicrophone(URL_, {start: {model: 'en-open'}, onLevel: l => levels.push(l)});
  await new Promise(r => setTimeout(r, MILLISECONDS));
  const finals = await stream.stop();
  return {ready: stream.ready, finals, frames: levels.length, loud: Math.max(...levels)};
})()"""


def test_an_app_captions_the_microphone(
    en_open_server: Running, code_speech: tuple[np.ndarray, int], tmp_path: Path
) -> None:
    """`ParleyStream.openMicrophone`: Chromium's fake microphone through the capture worklet at 16 kHz, captioned,
    its first words too although the server's ready comes 1.5 s late (held while connecting); stop() gets the last
    frame out before the stream's end."""
    from parley.audio import write_wav
    from tests.test_opusstream import said_in_order

    _require_chromium()
    x, rate = code_speech
    wav = tmp_path / "microphone.wav"
    write_wav(wav, x, rate)
    script = (
        MICROPHONE.replace("URL_", json.dumps(en_open_server.url))
        .replace("MILLISECONDS", str(round(len(x) / rate * 1000) + 1200))
        .replace("SLOW_READY", SLOW_READY)
    )

    async def go() -> dict:
        async with Chromium.launch(fake_audio=wav) as browser:
            page = await browser.page()
            await page.navigate(en_open_server.http + "/")
            return await page.evaluate(script)

    out = asyncio.run(go())
    assert (out["ready"]["sample_rate"], out["ready"]["encoding"]) == (16000, "s16le")
    heard = " ".join(f["text"] for f in out["finals"])
    assert said_in_order("code is one two three four five six", heard.lower()), out["finals"]
    assert out["frames"] >= 20 and out["loud"] > 0.01
