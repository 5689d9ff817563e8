"""`parley mic`: streams the microphone to a Parley server and prints the captions live.

    parley mic
    parley mic --url wss://asr.example.org/v1/stream --api-key "$KEY" --model en-small
    parley mic --list-devices
    parley mic --device 3 --language de --translate en,fr
    parley mic --model sm2-small --language auto --languages en,de --translate en

On a terminal the open segment's partial is rewritten in place and each final gets a line of its own (with a
multilingual model: its language first and the translations indented under it; with a multi-talker model: words
tagged [S1], [S2]... where the speaker changes); Enter closes the open caption at once (the protocol's finalize: the
server decodes what it has and sends the final, recording goes on); Ctrl-C stops: the server sends
the last final, then the command exits (a second Ctrl-C exits at once). The audio is 16-bit mono at the device's
rate (the server resamples), in messages of --chunk-ms. A server that restarts (a rolling deploy), is full for a
moment or drops the connection does not end the captions: the command reconnects and resends the audio the last
final did not cover (clients/resume.py; --no-retry ends instead).

Needs the `sounddevice` package and the PortAudio library: pip install 'parley[mic]' (Debian/Ubuntu: apt install
libportaudio2). Speaks protocol version 1 (docs/protocol.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from types import ModuleType
from typing import Any

from clients.resume import AudioLog, stream_resumably
from clients.stream import (
    DEFAULT_URL,
    FINALIZE,
    CaptionPrinter,
    add_hotwords_argument,
    resolve_hotwords,
    speaker_text,
    start_message,
)

# What the microphone records at: the protocol takes up to 192 kHz, but above 48 kHz a recording only costs bytes.
MIN_RATE, MAX_RATE = 8000, 48000
INSTALL_HINT = "pip install 'parley[mic]' (on Debian/Ubuntu also: apt install libportaudio2)"


class MicError(Exception):
    """A problem the user can fix (no sounddevice, no PortAudio, no microphone); the message says how."""


# ---- The audio side: sounddevice ----


def import_sounddevice() -> ModuleType:
    """The `sounddevice` module.

    Raises:
        MicError: it is not installed, or the PortAudio library it needs is missing.
    """
    try:
        import sounddevice
    except ImportError:
        raise MicError(f"parley mic needs the sounddevice package: {INSTALL_HINT}") from None
    except OSError as e:  # sounddevice is there, PortAudio is not
        raise MicError(f"parley mic needs the PortAudio library ({e}): {INSTALL_HINT}") from None
    return sounddevice


def input_devices(sd: ModuleType) -> list[dict]:
    """The devices that can record: dicts with index, name, max_input_channels, default_samplerate."""
    try:
        devices = sd.query_devices()
    except Exception as e:  # PortAudio failing to enumerate: no sound system at all
        raise MicError(f"cannot list audio devices: {e}") from None
    return [{**d, "index": i} for i, d in enumerate(devices) if d.get("max_input_channels", 0) > 0]


def format_devices(sd: ModuleType) -> str:
    """A table of the input devices, the default marked with *."""
    devices = input_devices(sd)
    if not devices:
        return "no audio input device found"
    default = _default_input(sd)
    lines = []
    for d in devices:
        mark = "*" if d["index"] == default else " "
        lines.append(
            f"{mark} {d['index']:>3}  {d['name']}  ({d['max_input_channels']} ch, {d['default_samplerate']:g} Hz)"
        )
    return "\n".join(lines)


def _default_input(sd: ModuleType) -> int | None:
    try:
        device = sd.default.device
        index = device[0] if isinstance(device, list | tuple) else device
        return int(index) if index is not None and int(index) >= 0 else None
    except (TypeError, ValueError, AttributeError):
        return None


def pick_device(sd: ModuleType, device: str | None) -> dict:
    """The input device to record from: `device` as an index or part of a name, or the default one.

    Raises:
        MicError: no input device at all, or none matching `device`.
    """
    devices = input_devices(sd)
    if not devices:
        raise MicError("no microphone found (PortAudio sees no audio input device); check `parley mic --list-devices`")
    if device is None:
        default = _default_input(sd)
        chosen = next((d for d in devices if d["index"] == default), devices[0])
        return chosen
    if device.strip().isdigit():
        chosen = next((d for d in devices if d["index"] == int(device)), None)
    else:
        matches = [d for d in devices if device.lower() in d["name"].lower()]
        chosen = matches[0] if len(matches) == 1 else None
        if len(matches) > 1:
            names = ", ".join(f"{d['index']}: {d['name']}" for d in matches)
            raise MicError(f"--device {device!r} matches several input devices ({names}): give its number")
    if chosen is None:
        raise MicError(f"no input device {device!r}; `parley mic --list-devices` lists them")
    return chosen


def device_rate(device: dict, wanted: int | None) -> int:
    """The rate to record at: `wanted`, or the device's default brought into 8-48 kHz (MAX_RATE)."""
    if wanted is not None:
        return wanted
    rate = round(float(device.get("default_samplerate") or 16000))
    return min(max(rate, MIN_RATE), MAX_RATE)


class Microphone:
    """The microphone as an async iterator of s16le mono blocks; `stop()` ends the iteration.

    PortAudio calls back on its own thread; blocks are handed to the event loop's thread through a queue.

    Args:
        sd: the sounddevice module (or a stand-in with the same RawInputStream).
        device: PortAudio device index.
        sample_rate: Hz.
        block_ms: audio per block.
    """

    def __init__(self, sd: ModuleType, device: int | None, sample_rate: int, block_ms: float) -> None:
        self.sd = sd
        self.device = device
        self.sample_rate = sample_rate
        self.blocksize = max(1, round(sample_rate * block_ms / 1000))
        self.overflows = 0
        self._queue: asyncio.Queue[bytes | dict | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stream: Any = None

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        if status:
            self.overflows += 1
        self._loop.call_soon_threadsafe(self._queue.put_nowait, bytes(indata))

    def start(self) -> None:
        """Opens the input stream.

        Raises:
            MicError: PortAudio cannot open the device at this rate.
        """
        self._loop = asyncio.get_running_loop()
        try:
            self._stream = self.sd.RawInputStream(
                samplerate=self.sample_rate,
                blocksize=self.blocksize,
                device=self.device,
                channels=1,
                dtype="int16",
                callback=self._callback,
            )
            self._stream.start()
        except Exception as e:  # sounddevice.PortAudioError, ValueError for bad settings
            raise MicError(f"cannot open the microphone at {self.sample_rate} Hz: {e} (try --sample-rate)") from None

    def stop(self) -> None:
        """Ends the iteration after the blocks already recorded."""
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.stop()
                self._stream.close()
            self._stream = None
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, None)

    def finalize(self) -> None:
        """Asks for the open segment's final now: `FINALIZE` comes out of the iteration after the blocks recorded
        so far. Call it on the event loop's thread."""
        self._queue.put_nowait(FINALIZE)

    async def __aiter__(self) -> AsyncIterator[bytes | dict]:
        while (block := await self._queue.get()) is not None:
            yield block


# ---- The protocol side ----


async def timed_blocks(
    blocks: AsyncIterator[bytes | dict], sample_rate: int
) -> AsyncIterator[tuple[bytes | dict, float]]:
    """s16le mono `blocks` at `sample_rate` as `clients.stream.converse` sends them: each with the stream time its
    last sample ends at (s); control messages (dicts) pass through at the time of the block before them."""
    sent = 0.0
    async for block in blocks:
        if isinstance(block, bytes):
            sent += len(block) / 2 / sample_rate
        yield block, sent


class MicPrinter(CaptionPrinter):
    """CaptionPrinter (partials in place, finals on lines, translations under them) with speaker tags on the words
    of multi-talker models."""

    def __call__(self, msg: dict) -> None:
        if msg.get("type") in ("partial", "final"):
            msg = {**msg, "text": speaker_text(msg)}
        super().__call__(msg)


# ---- The command ----


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="parley mic", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--url", default=DEFAULT_URL, help=f"the server's stream endpoint (default: {DEFAULT_URL})")
    p.add_argument("--model", help="bundle name (default: the server's default)")
    p.add_argument("--language", help="the spoken language, or auto, for multilingual models (default: the model's)")
    p.add_argument(
        "--translate", default="", metavar="LANGS", help="comma-separated languages to translate into, e.g. en,fr"
    )
    p.add_argument(
        "--languages",
        default="",
        metavar="LANGS",
        help="with automatic detection: the languages to choose from, e.g. en,de",
    )
    p.add_argument("--device", help="input device: its number or part of its name (default: the system's default)")
    p.add_argument("--list-devices", action="store_true", help="list the input devices and exit")
    p.add_argument("--sample-rate", type=int, help="recording rate in Hz, 8000-48000 (default: the device's)")
    p.add_argument("--chunk-ms", type=float, default=100.0, help="audio per message in ms (default: 100)")
    p.add_argument(
        "--api-key", default=os.environ.get("PARLEY_API_KEY"), help="API key (default: $PARLEY_API_KEY, if set)"
    )
    p.add_argument(
        "--talkers", action="store_true", help="number who speaks across segments: [T1], [T2] (models with talkers)"
    )
    p.add_argument(
        "--no-endpointing",
        action="store_true",
        help="push-to-talk: no endpoints, a caption closes only when you press Enter (or at Ctrl-C)",
    )
    p.add_argument(
        "--no-retry",
        action="store_true",
        help="end at a server restart or a lost connection (default: reconnect and resend what was not decoded)",
    )
    add_hotwords_argument(p)
    p.add_argument("--json", action="store_true", help="print every server message as a JSON line instead of text")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = _parser()
    a = p.parse_args(argv)
    resolve_hotwords(p, a)
    if a.chunk_ms <= 0 or a.chunk_ms > 1000:
        p.error("--chunk-ms must be in (0, 1000]")
    if a.sample_rate is not None and not MIN_RATE <= a.sample_rate <= MAX_RATE:
        p.error(f"--sample-rate must be {MIN_RATE}-{MAX_RATE} Hz")
    translate = [t.strip() for t in a.translate.split(",") if t.strip()]
    languages = [t.strip() for t in a.languages.split(",") if t.strip()]
    try:
        sd = import_sounddevice()
        if a.list_devices:
            print(format_devices(sd))
            return 0
        device = pick_device(sd, a.device)
    except MicError as e:
        print(f"parley mic: {e}", file=sys.stderr)
        return 2
    rate = device_rate(device, a.sample_rate)
    show: Callable[[dict], None]
    if a.json:

        def show(msg: dict) -> None:
            print(json.dumps(msg, ensure_ascii=False), flush=True)
    else:
        show = MicPrinter()
    print(
        f"parley mic: {device['name']} at {rate} Hz -> {a.url}; Enter closes the caption, Ctrl-C stops",
        file=sys.stderr,
    )
    try:
        error = asyncio.run(_record_and_stream(sd, device["index"], rate, a, translate, languages, show))
    except MicError as e:
        print(f"parley mic: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the second Ctrl-C
        return 130
    if error is not None:
        print(f"parley mic: error {error.get('code')}: {error.get('message')}", file=sys.stderr)
        return 1
    return 0


async def _record_and_stream(
    sd: ModuleType,
    device: int,
    rate: int,
    a: argparse.Namespace,
    translate: list[str],
    languages: list[str],
    show: Callable[[dict], None],
) -> dict | None:
    """Records and streams until Ctrl-C and the last final; a stream that a server restart, a full server or a lost
    connection ends is reopened (clients/resume.py). Returns the error that ended it, or None."""
    mic = Microphone(sd, device, rate, a.chunk_ms)
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()

    def interrupted() -> None:
        if mic._stream is not None:  # first Ctrl-C: stop recording, let the server finish
            mic.stop()
        else:  # second: give up
            main_task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows, not off the main thread
        loop.add_signal_handler(signal.SIGINT, interrupted)

    def enter() -> None:  # a line on the terminal: close the caption now
        if not sys.stdin.readline():  # end of input: stop listening to it
            loop.remove_reader(sys.stdin.fileno())
            return
        mic.finalize()

    listening = False
    with contextlib.suppress(NotImplementedError, OSError, ValueError, AttributeError):  # no stdin, Windows
        if sys.stdin is not None and sys.stdin.isatty():
            loop.add_reader(sys.stdin.fileno(), enter)
            listening = True
    try:
        mic.start()
        start = start_message(
            rate,
            model=a.model,
            language=a.language,
            translate=translate,
            languages=languages,
            talkers=a.talkers,
            endpointing=False if a.no_endpointing else None,
            hotwords=a.hotwords or None,
        )
        audio = AudioLog(rate, width=2)  # s16le mono; kept since the last final for a resend (clients/resume.py)

        async def pump() -> None:
            async for block in mic:
                if isinstance(block, dict):
                    audio.put_control(block)
                else:
                    audio.put(block)
            audio.end()

        pumping = asyncio.create_task(pump())
        try:
            return await stream_resumably(
                a.url,
                start,
                audio,
                show,
                api_key=a.api_key,
                retry=not a.no_retry,
                retry_before_ready=False,  # a wrong --url or no server: say so at once
                on_retry=lambda code, pause: print(
                    f"parley mic: {code}; reconnecting in {pause:g} s (the audio is kept)", file=sys.stderr
                ),
            )
        finally:
            pumping.cancel()
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    finally:
        if listening:
            with contextlib.suppress(Exception):
                loop.remove_reader(sys.stdin.fileno())
        mic.stop()
        if mic.overflows:
            print(f"parley mic: {mic.overflows} audio block(s) overflowed (the machine was too busy)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
