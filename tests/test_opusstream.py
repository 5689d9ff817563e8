"""Opus streamed in WebM or Ogg (parley/opusstream.py, a start's "encoding": "webm" / "ogg"): chunks cut anywhere
decode to what one decoder gives the whole file, within the codec's noise; the start message's rules; en-open
captioning a WebM stream over /v1/stream; and Chromium's MediaRecorder streaming its chunks as they come."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from websockets.asyncio.client import connect

from parley.audio import write_wav
from parley.ogg import OggPacketReader
from parley.opusstream import BACKENDS, LibOpus, OpusStreamDecoder, libopus_available
from parley.resample import resample
from server import protocol as P
from tests._chromium import Chromium
from tests.test_server import Running
from tests.test_web import _require_chromium
from tests.test_webm import _ogg_opus, _packets, _webm

RATE = 48000


def _chunks(data: bytes, seed: int, most: int = 3000) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out, pos = [], 0
    while pos < len(data):
        n = int(rng.integers(1, most))
        out.append(data[pos : pos + n])
        pos += n
    return out


def _fed(decoder: OpusStreamDecoder, chunks: list[bytes]) -> np.ndarray:
    return np.concatenate([decoder.feed(c) for c in chunks])


def _noise_ratio(got: np.ndarray, want: np.ndarray) -> float:
    n = min(len(got), len(want))
    return float(np.sqrt(np.mean((got[:n] - want[:n]) ** 2)) / np.sqrt(np.mean(want[:n] ** 2)))


def test_libopus_is_there() -> None:
    """libopus decodes streams with one decoder each (Debian's libopus0: .ci/system-deps and the Dockerfile install
    it); without it the libsndfile path below serves, at more CPU (benchmarks/bench_opus.py)."""
    assert libopus_available(), "libopus not found: apt install libopus0"
    assert OpusStreamDecoder("webm").backend == "libopus"


@pytest.mark.parametrize("backend", BACKENDS)
def test_webm_in_chunks_decodes_as_the_whole_file_does(backend: str) -> None:
    ogg = _ogg_opus(2.0, channels=2)
    head, _, *audio = _packets(ogg)
    whole, _ = soundfile.read(io.BytesIO(ogg), dtype="float32", always_2d=True)
    want = whole.mean(axis=1)
    webm = _webm(audio, head)
    for seed in range(3):
        got = _fed(OpusStreamDecoder("webm", backend), _chunks(webm, seed))
        assert 0 <= len(got) - len(want) < 960 * 3  # the file's end trim is not in the blocks
        # libopus: the same decoder state as the file's; libsndfile: restored by 400 ms of pre-roll
        assert _noise_ratio(got, want) < 0.005, seed
    one = _fed(OpusStreamDecoder("webm", backend), [webm])  # one chunk: one decoder from the start
    assert _noise_ratio(one, want) < 1e-4


@pytest.mark.parametrize("backend", BACKENDS)
def test_ogg_in_chunks_and_its_pre_skip(backend: str) -> None:
    ogg = _ogg_opus(1.0)
    want, _ = soundfile.read(io.BytesIO(ogg), dtype="float32")
    got = _fed(OpusStreamDecoder("ogg", backend), _chunks(ogg, 7, most=500))
    assert 0 <= len(got) - len(want) < 960 * 3 and _noise_ratio(got, want) < 0.005
    head = OggPacketReader().feed(ogg)[0]
    assert head.startswith(b"OpusHead") and int.from_bytes(head[10:12], "little") > 0  # dropped, as libsndfile drops it


def test_bad_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match="not an Ogg page"):
        OpusStreamDecoder("ogg").feed(b"RIFF" + bytes(40))
    vorbis = io.BytesIO()
    soundfile.write(vorbis, np.zeros(4800, np.float32), RATE, format="OGG", subtype="VORBIS")
    with pytest.raises(ValueError, match="not Opus"):
        OpusStreamDecoder("ogg").feed(vorbis.getvalue())
    with pytest.raises(ValueError, match="container 'mp3'"):
        OpusStreamDecoder("mp3")
    header = bytes.fromhex("1a45dfa3") + (4 | (1 << 56)).to_bytes(8, "big") + bytes.fromhex("42828477")
    huge = bytes.fromhex("a3") + ((64 << 20) | (1 << 56)).to_bytes(8, "big")  # a 64 MiB block announced
    with pytest.raises(ValueError, match="over the 1048576 a stream may buffer"):
        OpusStreamDecoder("webm").feed(header + huge + bytes(100))
    with pytest.raises(ValueError, match="libopus cannot decode"):
        LibOpus(1).decode(b"\xff\xff")  # a code-3 packet that says more frames than it holds
    with pytest.raises(ValueError, match="1 or 2"):
        LibOpus(6)
    with pytest.raises(ValueError, match="libopus decodes at"):
        LibOpus(1, 44100)
    with pytest.raises(ValueError, match="decode to 8000-48000 Hz"):
        OpusStreamDecoder("ogg", rate=96000)


def _speech_ogg(code_speech: tuple[np.ndarray, int]) -> bytes:
    x, rate = code_speech
    ogg = io.BytesIO()
    soundfile.write(ogg, resample(x, rate, RATE), RATE, format="OGG", subtype="OPUS")
    return ogg.getvalue()


def _aligned_ratio(got: np.ndarray, want: np.ndarray) -> float:
    """`_noise_ratio` of `got` against `want`, after `want` is shifted by the few samples that best match them (the
    two ways to 16 kHz delay the audio differently)."""
    n = min(len(got), len(want)) - 64
    lag = max(range(-32, 33), key=lambda k: float(np.dot(got[32 : 32 + n], want[32 + k : 32 + k + n])))
    return _noise_ratio(got[32 : 32 + n], want[32 + lag : 32 + lag + n])


@pytest.mark.parametrize(
    ("backend", "rate"), [("libopus", 16000), ("libopus", 8000), ("libsndfile", 16000), ("libopus", 22050)]
)
def test_decoding_at_a_lower_rate(backend: str, rate: int, code_speech: tuple[np.ndarray, int]) -> None:
    """libopus writes 8-24 kHz itself (what the server asks for: the models' 16 kHz); other rates, and libsndfile,
    are resampled from 48 kHz. Either way: the speech band of decoding at 48 kHz and resampling, the pre-skip dropped
    at the lower rate, and chunks cut anywhere decode as one."""
    ogg = _speech_ogg(code_speech)
    full = _fed(OpusStreamDecoder("ogg", backend), [ogg])
    want = resample(full, RATE, rate)
    got = _fed(OpusStreamDecoder("ogg", backend, rate), _chunks(ogg, 5, most=700))
    assert abs(len(got) - len(want)) < rate // 100  # 10 ms: the resampler's tail stays in it
    # Opus's own decoding at 16 kHz drops 7.5-8 kHz, which the resampler keeps: 30 dB apart on speech
    assert _aligned_ratio(got, want) < (0.05 if rate in (8000, 16000) and backend == "libopus" else 0.01)
    one = _fed(OpusStreamDecoder("ogg", backend, rate), [ogg])
    n = min(len(one), len(got))
    assert _noise_ratio(got[:n], one[:n]) < (1e-5 if backend == "libopus" else 0.01)


def test_the_start_message_of_a_container() -> None:
    start = P.start_from_dict({"type": "start", "encoding": "webm"})
    assert (start.sample_rate, start.encoding) == (48000, "webm")
    assert P.start_from_dict({"type": "start", "encoding": "ogg", "sample_rate": 44100}).sample_rate == 48000
    with pytest.raises(P.ProtocolError, match="must be 1 with encoding webm"):
        P.start_from_dict({"type": "start", "encoding": "webm", "channels": 2})
    with pytest.raises(P.ProtocolError, match=r"lacks required field\(s\) \['sample_rate'\]"):
        P.start_from_dict({"type": "start", "encoding": "s16le"})
    state = P.ProtocolState()
    state.on_text(json.dumps({"type": "start", "encoding": "ogg"}))
    with pytest.raises(P.ProtocolError, match="ogg audio: not an Ogg page") as e:
        state.on_binary(b"not ogg at all" * 3)
    assert e.value.code == "bad_audio"


def _speech_webm(code_speech: tuple[np.ndarray, int]) -> bytes:
    head, _, *audio = _packets(_speech_ogg(code_speech))
    return _webm(audio, head)


def test_the_load_generator_streams_webm_as_a_browser_does(
    en_open_server: Running, code_speech: tuple[np.ndarray, int]
) -> None:
    """`run_stream(..., encoding="webm")` (`parley loadtest --encoding webm`): the recording as Opus in WebM
    (`parley.webm.write_webm`), a message every 250 ms of packets, each message's stream time its packets' end; the
    server captions it as it captions PCM."""
    from clients.loadtest import main as loadtest_main
    from clients.stream import run_stream, webm_recording

    x, rate = code_speech
    data, ends, times = webm_recording(x, rate)
    assert ends == sorted(ends) and ends[-1] == len(data) and times == sorted(times)
    assert abs(times[-1] - len(x) / rate) < 0.03  # the pre-skip left out, the last packet's padding in
    assert OpusStreamDecoder("webm").feed(data).size == pytest.approx(times[-1] * 48000, abs=1)
    r = asyncio.run(run_stream(en_open_server.url, x, rate, encoding="webm", chunk_ms=250, speed=0))
    assert r.error is None and r.ready["encoding"] == "webm"
    assert " ".join(f["text"] for f in r.finals if f["text"]) == "the code is one two three four five six"
    sent = [c.audio_end for c in r.chunks]
    assert sent == sorted(sent) and len(sent) == pytest.approx(len(x) / rate / 0.25, abs=2) and sent[-1] == times[-1]
    with pytest.raises(SystemExit):
        loadtest_main(["--files", "x.wav", "--encoding", "webm", "--channels", "2"])


def test_en_open_captions_a_webm_stream(en_open_server: Running, code_speech: tuple[np.ndarray, int]) -> None:
    webm = _speech_webm(code_speech)

    async def go() -> tuple[dict, list[dict]]:
        async with connect(en_open_server.url) as ws:
            await ws.send(json.dumps({"type": "start", "encoding": "webm"}))
            ready = json.loads(await ws.recv())
            for chunk in _chunks(webm, 3, most=2000):
                await ws.send(chunk)
            await ws.send(json.dumps({"type": "stop"}))
            messages = [json.loads(m) async for m in ws]
            return ready, messages

    ready, messages = asyncio.run(go())
    assert (ready["type"], ready["sample_rate"], ready["encoding"]) == ("ready", 48000, "webm")
    finals = [m for m in messages if m["type"] == "final" and m["text"]]
    assert " ".join(f["text"] for f in finals) == "the code is one two three four five six"
    assert any(m["type"] == "partial" for m in messages) and messages[-1] == {"type": "end"}


RECORD_AND_STREAM = """(async () => {
  const ws = new WebSocket(URL_);
  ws.binaryType = 'arraybuffer';
  const messages = [];
  const closed = new Promise(resolve => ws.onclose = resolve);
  ws.onmessage = e => messages.push(JSON.parse(e.data));
  await new Promise(resolve => ws.onopen = resolve);
  ws.send(JSON.stringify({type: 'start', encoding: ENCODING_}));
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  const recorder = new MediaRecorder(stream, {mimeType: MIME_});
  let chain = Promise.resolve();  // each chunk's bytes are read asynchronously: sent in order
  recorder.ondataavailable = e => chain = chain.then(async () => ws.send(await e.data.arrayBuffer()));
  const stopped = new Promise(resolve => recorder.onstop = resolve);
  recorder.start(250);  // a chunk every 250 ms, sent as it comes
  await new Promise(resolve => setTimeout(resolve, MILLISECONDS));
  recorder.stop();
  await stopped;
  await chain;  // the last chunk's send
  stream.getTracks().forEach(t => t.stop());
  ws.send(JSON.stringify({type: 'stop'}));
  await closed;
  return {mime: recorder.mimeType, messages};
})()"""


def said_in_order(expected: str, heard: str) -> bool:
    """Whether every word of `expected` was heard, in order, words between them allowed: a browser's capture of its
    fake microphone runs in real time, and on a loaded machine a glitch in it can repeat a word ("four four")."""
    words = iter(heard.split())
    return all(any(w == h for h in words) for w in expected.split())


def numerals_in_order(expected: str, heard: str) -> bool:
    """Whether `heard` writes every digit of `expected` in order, others between them allowed (`said_in_order` for
    numbers written as numerals: a repeated "four" comes out "1234456")."""
    digits = iter(c for c in heard if c.isdigit())
    return all(any(d == c for c in digits) for d in expected)


def record_and_stream(
    server: Running, speech: tuple[np.ndarray, int], tmp_path: Path, encoding: str, mime: str
) -> tuple[str, list[dict]]:
    """Chromium records `speech` as its fake microphone with MediaRecorder (`mime`) and sends each 250 ms chunk over
    /v1/stream as it comes (start's `encoding`): the recorder's MIME type and the server's messages."""
    _require_chromium()
    x, rate = speech
    wav = tmp_path / "microphone.wav"
    write_wav(wav, x, rate)
    script = (
        RECORD_AND_STREAM.replace("URL_", json.dumps(server.url))
        .replace("ENCODING_", json.dumps(encoding))
        .replace("MIME_", json.dumps(mime))
        .replace("MILLISECONDS", str(round(len(x) / rate * 1000) + 1200))
    )

    async def go() -> dict:
        async with Chromium.launch(fake_audio=wav) as browser:
            page = await browser.page()
            await page.navigate(server.http + "/")
            return await page.evaluate(script)

    out = asyncio.run(go())
    return out["mime"], out["messages"]


def test_a_browser_streams_mediarecorder_chunks(
    en_open_server: Running, code_speech: tuple[np.ndarray, int], tmp_path: Path
) -> None:
    """Chromium records the fake microphone with MediaRecorder and sends each 250 ms WebM chunk over /v1/stream as it
    comes (`"encoding": "webm"`): partials while it records, the sentence in the finals."""
    mime, messages = record_and_stream(en_open_server, code_speech, tmp_path, "webm", "audio/webm;codecs=opus")
    assert mime.startswith("audio/webm")
    assert messages[0]["type"] == "ready" and messages[-1] == {"type": "end"}, messages[:2]
    finals = [m for m in messages if m["type"] == "final" and m["text"]]
    assert said_in_order("one two three four five six", " ".join(f["text"] for f in finals)), finals
    assert sum(m["type"] == "partial" for m in messages) >= 3


def _parley_stream(server: Running, data: bytes, *args: str) -> tuple[int, list[dict], str]:
    """`parley stream - ARGS --json` with `data` on standard input, against `server`."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "clients.stream", "-", "--url", server.url, "--json", *args]
    out = subprocess.run(cmd, input=data, capture_output=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    return out.returncode, [json.loads(line) for line in out.stdout.decode().splitlines()], out.stderr.decode()


def test_parley_stream_sends_standard_input_live(en_open_server: Running, code_speech: tuple[np.ndarray, int]) -> None:
    """`ffmpeg ... -f s16le - | parley stream - --rate 16000`, and the same audio as Ogg Opus with `--encoding ogg`:
    both captioned; raw PCM without its rate is refused before connecting."""
    from parley.audio import encode_pcm

    x, rate = code_speech
    pcm = encode_pcm(np.concatenate([x, np.zeros(rate // 2, np.float32)]), "s16le")
    code, messages, err = _parley_stream(en_open_server, pcm, "--rate", str(rate))
    finals = " ".join(m["text"] for m in messages if m["type"] == "final")
    assert code == 0 and "one two three four five six" in finals, (err, messages[-3:])
    assert "standard input ended" in err
    ogg = io.BytesIO()
    soundfile.write(ogg, resample(x, rate, RATE), RATE, format="OGG", subtype="OPUS")
    code, messages, err = _parley_stream(en_open_server, ogg.getvalue(), "--encoding", "ogg")
    assert messages[0]["type"] == "ready" and messages[0]["encoding"] == "ogg" and messages[0]["sample_rate"] == 48000
    assert code == 0 and "one two three four five six" in " ".join(m["text"] for m in messages if m["type"] == "final")
    code, messages, err = _parley_stream(en_open_server, pcm)
    assert code == 2 and "needs its sample rate (--rate)" in err and not messages
