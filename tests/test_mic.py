"""`parley mic` without a microphone: its arguments, its messages when sounddevice, PortAudio or a microphone is
missing, and its streaming loop against a real server, with a stand-in `sounddevice` whose input stream plays
test audio through the PortAudio-style callback (then presses Ctrl-C, as a user would)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest

from clients import mic
from clients.stream import FINALIZE, StreamResult, converse, encode_audio, start_message
from server.settings import Settings
from tests.test_export import SR, synthetic_audio
from tests.test_server import Running

DEVICES = [
    {"name": "HDA Intel PCH: ALC257 Analog", "max_input_channels": 2, "max_output_channels": 2,
     "default_samplerate": 44100.0},
    {"name": "HDMI 0", "max_input_channels": 0, "max_output_channels": 8, "default_samplerate": 48000.0},
    {"name": "USB Headset Mic", "max_input_channels": 1, "max_output_channels": 0, "default_samplerate": 16000.0},
    {"name": "USB Headset Out", "max_input_channels": 0, "max_output_channels": 2, "default_samplerate": 48000.0},
]  # fmt: skip


class FakeSoundDevice(SimpleNamespace):
    """The part of `sounddevice` that parley mic uses. Its input stream plays `audio` (s16le) through the callback
    in blocks at `speed` times real time, then sends this process SIGINT (Ctrl-C) when `interrupt` is set."""

    def __init__(self, devices=DEVICES, default_input: int = 2, audio: bytes = b"", speed: float = 8.0) -> None:
        super().__init__(default=SimpleNamespace(device=[default_input, 3]), opened=[])
        self.devices = devices
        self.audio = audio
        self.speed = speed
        self.interrupt = True

    def query_devices(self):
        return list(self.devices)

    def RawInputStream(self, samplerate, blocksize, device, channels, dtype, callback):  # noqa: N802
        fake = self
        fake.opened.append({"samplerate": samplerate, "blocksize": blocksize, "device": device, "dtype": dtype})

        class Stream:
            def __init__(self) -> None:
                self.running = False

            def start(self) -> None:
                self.running = True
                threading.Thread(target=self._play, daemon=True).start()

            def _play(self) -> None:
                step = 2 * blocksize
                for i in range(0, len(fake.audio), step):
                    if not self.running:
                        return
                    block = fake.audio[i : i + step]
                    callback(memoryview(block), len(block) // 2, None, None)
                    time.sleep(blocksize / samplerate / fake.speed)
                if fake.interrupt and self.running:
                    os.kill(os.getpid(), signal.SIGINT)

            def stop(self) -> None:
                self.running = False

            def close(self) -> None:
                pass

        return Stream()


@pytest.fixture(scope="module")
def server(tiny_bundles: Path) -> Iterator[Running]:
    r = Running(Settings(bundles=tiny_bundles, port=0, intra_op_threads=1, log_level="warning"))
    try:
        yield r
    finally:
        r.stop()


def _transcript(server: Running, pcm: bytes) -> str:
    r = httpx.post(
        server.http + "/v1/transcribe?sample_rate=16000&encoding=s16le",
        content=pcm,
        headers={"content-type": "application/octet-stream"},
    )
    assert r.status_code == 200, r.text
    return r.json()["text"]


# ---- Arguments and the messages a user can act on ----


@pytest.mark.parametrize(
    "args, message",
    [(["--chunk-ms", "0"], "--chunk-ms"), (["--sample-rate", "96000"], "--sample-rate"), (["--bogus"], "--bogus")],
)
def test_bad_arguments(args: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        mic.main(args)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_help_names_every_flag(capsys) -> None:
    with pytest.raises(SystemExit):
        mic.main(["--help"])
    out = capsys.readouterr().out
    for flag in ("--list-devices", "--device", "--url", "--model", "--language", "--translate", "--languages"):
        assert flag in out


def test_missing_sounddevice(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import sounddevice raises ImportError
    assert mic.main([]) == 2
    err = capsys.readouterr().err
    assert "needs the sounddevice package" in err and "pip install 'parley[mic]'" in err


def test_missing_portaudio(monkeypatch, tmp_path: Path, capsys) -> None:
    # What the real package does when libportaudio2 is not installed.
    (tmp_path / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert mic.main(["--list-devices"]) == 2
    err = capsys.readouterr().err
    assert "PortAudio library not found" in err and "libportaudio2" in err


def test_no_input_device(monkeypatch, capsys) -> None:
    outputs_only = [d for d in DEVICES if d["max_input_channels"] == 0]
    monkeypatch.setitem(sys.modules, "sounddevice", FakeSoundDevice(outputs_only, default_input=-1))
    assert mic.main([]) == 2
    assert "no microphone found" in capsys.readouterr().err
    assert mic.main(["--list-devices"]) == 0
    assert capsys.readouterr().out.strip() == "no audio input device found"


def test_list_devices(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", FakeSoundDevice())
    assert mic.main(["--list-devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "    0  HDA Intel PCH: ALC257 Analog  (2 ch, 44100 Hz)",
        "*   2  USB Headset Mic  (1 ch, 16000 Hz)",
    ]


def test_device_choice() -> None:
    sd = FakeSoundDevice()
    assert mic.pick_device(sd, None)["index"] == 2  # the system's default input
    assert mic.pick_device(sd, "0")["index"] == 0
    assert mic.pick_device(sd, "headset")["name"] == "USB Headset Mic"  # outputs are not candidates
    with pytest.raises(mic.MicError, match="no input device '1'"):
        mic.pick_device(sd, "1")  # HDMI: output only
    with pytest.raises(mic.MicError, match="no input device 'webcam'"):
        mic.pick_device(sd, "webcam")
    with pytest.raises(mic.MicError, match="several input devices"):
        mic.pick_device(sd, "a")
    assert mic.pick_device(FakeSoundDevice(default_input=-1), None)["index"] == 0  # no default: the first
    assert mic.device_rate(DEVICES[0], None) == 44100 and mic.device_rate(DEVICES[0], 16000) == 16000
    assert mic.device_rate({"default_samplerate": 96000.0}, None) == 48000


def test_printer_shows_translations_and_speakers() -> None:
    out = io.StringIO()
    printer = mic.MicPrinter(out, live=True)
    printer({"type": "partial", "segment": 0, "text": "hallo"})
    words = [{"word": "hallo", "speaker": 0}, {"word": "ja", "speaker": 1}, {"word": "genau", "speaker": 1}]
    final = {"type": "final", "segment": 0, "text": "hallo ja genau", "words": words, "language": "de"}
    printer({**final, "translations": {"en": "hi yes exactly"}})
    printer({"type": "final", "segment": 1, "text": "ok", "words": [{"word": "ok", "start": 0.1, "end": 0.2}]})
    lines = out.getvalue().split("\n")
    assert lines[0] == "\r\x1b[Khallo\r\x1b[K[de] [S1] hallo [S2] ja genau", lines
    assert lines[1:] == ["    en: hi yes exactly", "ok", ""], lines


# ---- Streaming ----


async def _blocks(pcm: bytes, block_bytes: int) -> AsyncIterator[bytes]:
    for i in range(0, len(pcm), block_bytes):
        yield pcm[i : i + block_bytes]
        await asyncio.sleep(0.01)


def _stream(url: str, pcm: bytes, on_message: Callable[[dict], None] | None = None, **start) -> StreamResult:
    """The command's streaming loop (`converse` over `mic.timed_blocks`), `pcm` in 100 ms blocks as the microphone;
    `start`: the start message's fields."""
    blocks = mic.timed_blocks(_blocks(pcm, 3200), SR)
    return asyncio.run(converse(url, start_message(SR, **start), blocks, on_message=on_message))


def test_streaming_loop_with_a_fake_source(server: Running) -> None:
    pcm = encode_audio(synthetic_audio(2.0, 3), "s16le")
    seen: list[dict] = []
    result = _stream(server.url, pcm, seen.append, language="en")
    assert result.ok and result.close_code == 1000, result.error
    assert seen[0]["type"] == "ready" and seen[-1] == {"type": "end"}
    assert any(m["type"] == "partial" for m in seen)
    assert result.text == _transcript(server, pcm)
    assert result.chunks[-1].audio_end == pytest.approx(2.0)


def test_enter_finalizes_the_open_caption(server: Running) -> None:
    """What Enter does (`Microphone.finalize`): FINALIZE goes out between the blocks recorded before and after it,
    the server answers with the open segment's final marked finalized, and recording goes on; a printer leaves out
    the empty final of a finalize with nothing said."""
    before, after = encode_audio(synthetic_audio(1.0, 6), "s16le"), encode_audio(synthetic_audio(1.0, 7), "s16le")

    async def blocks() -> AsyncIterator[bytes | dict]:
        async for b in _blocks(before, 3200):
            yield b
        yield FINALIZE
        async for b in _blocks(after, 3200):
            yield b

    seen: list[dict] = []
    timed = mic.timed_blocks(blocks(), SR)
    result = asyncio.run(converse(server.url, start_message(SR), timed, on_message=seen.append))
    assert result.ok and result.close_code == 1000, result.error
    finals = [m for m in seen if m["type"] == "final"]
    marked = [i for i, m in enumerate(finals) if m.get("finalized")]
    assert len(marked) == 1 and finals[marked[0]]["end"] == 1.0, finals
    assert " ".join(m["text"] for m in finals[: marked[0] + 1]).split() == _transcript(server, before).split()
    assert result.chunks[-1].audio_end == pytest.approx(2.0) and len(result.chunks) == 20
    out = io.StringIO()
    printer = mic.MicPrinter(out, live=False)
    printer({"type": "final", "segment": 3, "text": "", "start": 1.0, "end": 1.0, "words": [], "finalized": True})
    printer({"type": "final", "segment": 4, "text": "", "start": 1.0, "end": 1.2, "words": []})
    assert out.getvalue() == "\n"


def test_streaming_loop_reports_server_and_network_errors(server: Running) -> None:
    pcm = encode_audio(synthetic_audio(0.5, 4), "s16le")
    result = _stream(server.url, pcm, model="nope")
    assert result.error["code"] == "unknown_model" and result.close_code == 1008
    result = _stream("ws://127.0.0.1:9/v1/stream", pcm)
    assert result.error["code"] == "connect_failed"


def test_push_to_talk_asks_for_no_endpoints(server: Running, monkeypatch, capsys) -> None:
    """--no-endpointing: the start says "endpointing": false, so the whole recording is one caption at Ctrl-C."""
    pcm = encode_audio(synthetic_audio(2.0, 5), "s16le")
    monkeypatch.setitem(sys.modules, "sounddevice", FakeSoundDevice(audio=pcm))
    assert mic.main(["--url", server.url, "--chunk-ms", "50", "--no-endpointing", "--json"]) == 0
    msgs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert msgs[0]["type"] == "ready" and msgs[0]["endpointing"] is False
    assert [m["segment"] for m in msgs if m["type"] == "final"] == [0]


def test_mic_command_streams_until_ctrl_c(server: Running, monkeypatch, capsys) -> None:
    """The whole command: device, recording callback, live captions, Ctrl-C, the last final, exit 0."""
    x = synthetic_audio(2.0, 5)
    pcm = encode_audio(x, "s16le")
    sd = FakeSoundDevice(audio=pcm)
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    assert mic.main(["--url", server.url, "--device", "headset", "--chunk-ms", "50"]) == 0
    captured = capsys.readouterr()
    assert sd.opened == [{"samplerate": 16000, "blocksize": 800, "device": 2, "dtype": "int16"}]
    assert "USB Headset Mic at 16000 Hz" in captured.err
    lines = [line for line in captured.out.splitlines() if line]
    assert " ".join(lines) == _transcript(server, pcm), captured.out


@pytest.mark.parametrize(
    "args, code",
    [(["--model", "nope"], "unknown_model"), (["--translate", "de"], "unsupported_option")],  # tiny-en: no heads
)
def test_mic_command_reports_the_server_error(server: Running, monkeypatch, capsys, args: list[str], code: str):
    sd = FakeSoundDevice(audio=encode_audio(np.zeros(8000, np.float32), "s16le"))
    sd.interrupt = False  # the server ends the stream by itself
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    assert mic.main(["--url", server.url, *args]) == 1
    assert f"error {code}" in capsys.readouterr().err
