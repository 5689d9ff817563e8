"""`parley stream`: sends an audio file (WAV, FLAC, Ogg, MP3: parley/formats.py) to a Parley server as if it were
live, and prints the captions.

    parley stream talk.wav
    parley stream talk.wav --url wss://asr.example.org/v1/stream --api-key "$KEY" --model en-small
    parley stream talk.wav --speed 0 --json > messages.jsonl
    ffmpeg -i rtmp://live.example/show -f s16le -ac 1 -ar 16000 - | parley stream - --rate 16000   # a live source
    ffmpeg -i rtsp://camera/stream -c:a libopus -f ogg - | parley stream - --encoding ogg   # Opus: 1/8 the bytes

The audio goes out at its own sample rate (the server resamples) in s16le chunks of --chunk-ms, paced at real time
(--speed 1; 2 is twice as fast, 0 as fast as the connection takes it). The file `-` is standard input, live: its
bytes go out as they arrive, in the wire format --encoding names (raw PCM at --rate, or a webm / ogg / fragmented mp4
container's bytes), until it ends. On a terminal, partials are rewritten in place
on one line and each final gets its own; otherwise only finals are printed. Speaks protocol version 1
(docs/protocol.md) and nothing else: `run_stream` is also what `parley loadtest` drives, and `converse` (the
protocol over any source of audio messages) what `parley mic` streams through.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import shutil
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
from websockets.exceptions import InvalidHandshake, InvalidURI

from parley.audio import BYTES_PER_SAMPLE, ENCODINGS, encode_pcm, mix_down
from parley.formats import read_audio_channels
from parley.mp4stream import STREAM_CONTAINERS as CONTAINERS

DEFAULT_URL = "ws://127.0.0.1:8000/v1/stream"
CLIENT_ERRORS = ("connect_failed", "closed", "timeout", "bad_reply")  # error codes the client itself reports


@dataclass
class ChunkSent:
    """One audio message: when it left (time.monotonic()) and the stream time its last sample ends at (s)."""

    sent_at: float
    audio_end: float


@dataclass
class Received:
    """One server message and when it arrived (time.monotonic())."""

    at: float
    message: dict


@dataclass
class StreamResult:
    """Everything one stream did, with times, for printing and for latency accounting.

    `error` is the server's error message, or one the client made up with a code from `CLIENT_ERRORS`.
    """

    ready: dict | None = None
    chunks: list[ChunkSent] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    connected_at: float | None = None
    stop_sent_at: float | None = None
    end_at: float | None = None
    error: dict | None = None
    close_code: int | None = None

    @property
    def finals(self) -> list[dict]:
        return [r.message for r in self.received if r.message.get("type") == "final"]

    @property
    def text(self) -> str:
        """The whole transcript: the finals' texts joined by spaces."""
        return " ".join(f["text"] for f in self.finals if f.get("text"))

    @property
    def ok(self) -> bool:
        return self.error is None and self.end_at is not None

    @property
    def finalization_latency(self) -> float | None:
        """Seconds from sending stop to receiving end."""
        if self.stop_sent_at is None or self.end_at is None:
            return None
        return self.end_at - self.stop_sent_at


def encode_audio(samples: np.ndarray, encoding: str) -> bytes:
    """float samples `(T,)` in [-1, 1] -> the bytes of audio messages in `encoding` (`parley.audio.ENCODINGS`)."""
    return encode_pcm(samples, encoding)


FINALIZE = {"type": "finalize"}  # the control message that closes the open segment now (docs/protocol.md)


def _client_error(code: str, message: str) -> dict:
    return {"type": "error", "code": code, "message": message}


def start_message(
    sample_rate: int,
    encoding: str = "s16le",
    partials: bool = True,
    model: str | None = None,
    search: str | None = None,
    language: str | None = None,
    translate: Sequence[str] = (),
    languages: Sequence[str] = (),
    talkers: bool = False,
    **fields: Any,
) -> dict:
    """The protocol's start message; optional fields only when given (None, empty or false: not sent). `fields`: any
    other start fields (`alternatives=3`, `endpointing=False`), sent unless None."""
    start: dict = {"type": "start", "sample_rate": int(sample_rate), "encoding": encoding, "partials": partials}
    optional = {"model": model, "search": search, "language": language}
    start.update({k: v for k, v in optional.items() if v})
    if translate:
        start["translate"] = list(translate)
    if languages:
        start["languages"] = list(languages)
    if talkers:
        start["talkers"] = True
    start.update({k: v for k, v in fields.items() if v is not None})
    return start


def speaker_text(msg: dict) -> str:
    """A result's text with who speaks: "[T1] ..." where the talker changes when its words carry talkers (streams that
    asked for them), else "[S1] ..." where the channel changes when they carry speakers (multi-talker models); a
    final's `display` (punctuated, cased, numbers in digits) where it has one and no one is tagged."""
    words = [w for w in msg.get("words") or [] if isinstance(w, dict)]
    key = next((k for k in ("talker", "speaker") if any(w.get(k) is not None for w in words)), None)
    if key is None:
        return msg.get("display") or msg.get("text", "")
    tag = "T" if key == "talker" else "S"
    out, last = [], None
    for w in words:
        who = w.get(key)
        if who is not None and who != last:
            out.append(f"[{tag}{who + 1 if isinstance(who, int) else who}]")
            last = who
        out.append(w.get("word", ""))
    return " ".join(out)


def _record_message(
    result: StreamResult, raw: str | bytes, on_message: Callable[[dict], None] | None = None
) -> dict | None:
    """Files one server message into `result` (ready, end, the first error) and passes it to `on_message`.

    Returns the message, or None when it is not a JSON object (then `result.error` is a client "bad_reply").
    """
    now = time.monotonic()
    try:
        msg = json.loads(raw)
    except ValueError:
        reason = f"server sent a message that is not JSON: {str(raw)[:80]}"
        result.error = result.error or _client_error("bad_reply", reason)
        return None
    if not isinstance(msg, dict):
        result.error = result.error or _client_error(
            "bad_reply", f"server sent a message that is not an object: {msg!r:.80}"
        )
        return None
    result.received.append(Received(now, msg))
    kind = msg.get("type")
    if kind == "ready":
        result.ready = msg
    elif kind == "end":
        result.end_at = now
    elif kind == "error" and result.error is None:
        result.error = msg
    if on_message is not None:
        on_message(msg)
    return msg


_CONNECTION_ERRORS = (OSError, InvalidHandshake, InvalidURI, TimeoutError)


async def _send_stop(ws, receiver: asyncio.Task, result: StreamResult) -> None:
    """Ends the audio with a stop message, unless the server already closed the stream."""
    if not receiver.done():
        await ws.send(json.dumps({"type": "stop"}))
        result.stop_sent_at = time.monotonic()


async def _wait_for_end(ws, receiver: asyncio.Task, result: StreamResult, end_timeout: float) -> None:
    """Lets the receiver run until the server closes (after "end"), at most `end_timeout` seconds."""
    try:
        await asyncio.wait_for(receiver, end_timeout)
    except TimeoutError:
        result.error = result.error or _client_error("timeout", f"no end within {end_timeout} s of stop")
    result.close_code = ws.close_code


def _connection_failed(result: StreamResult, url: str, e: BaseException) -> StreamResult:
    """Records a failure to connect, or a connection lost midway, in `result`."""
    if result.connected_at is None:
        result.error = _client_error("connect_failed", f"cannot connect to {url}: {e}")
    elif result.error is None:
        result.error = _client_error("closed", str(e))
    return result


def _ended(result: StreamResult) -> StreamResult:
    """`result`, with an error if the server closed without "end" and said nothing else."""
    if result.error is None and result.end_at is None:
        result.error = _client_error("closed", f"the server closed the stream (code {result.close_code}) before end")
    return result


async def converse(
    url: str,
    start: dict,
    audio: AsyncIterable[tuple[bytes | dict, float]],
    *,
    api_key: str | None = None,
    on_message: Callable[[dict], None] | None = None,
    open_timeout: float = 10.0,
    end_timeout: float = 30.0,
) -> StreamResult:
    """One stream through the protocol: connect, `start`, wait for ready, send each audio message as `audio` yields
    it, stop, and read the server's messages until it closes. Never raises for server or network failures: they end
    up in `StreamResult.error`.

    Args:
        url: the server's stream endpoint, ws:// or wss://.
        start: the start message (`start_message`).
        audio: (message bytes in the start's encoding, stream time its last sample ends at in s); sending stops
            early when the server closes the stream. A dict in place of the bytes is a control message sent as
            JSON between the audio messages (`FINALIZE`: the open segment's final now; `{"type": "context",
            "hotwords": [...]}`: the next turn's hotwords).
        api_key: sent as `Authorization: Bearer`.
        on_message: called with each server message as it arrives.
        open_timeout: seconds to connect and get ready.
        end_timeout: seconds to wait for end after stop.
    """
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    result = StreamResult()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None

    def record(raw: str | bytes) -> dict | None:
        return _record_message(result, raw, on_message)

    async def receive(ws) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                record(raw)

    try:
        async with connect(
            url, additional_headers=headers, open_timeout=open_timeout, close_timeout=5, max_size=None
        ) as ws:
            result.connected_at = time.monotonic()
            try:
                # A server that refuses the stream (server_full, unauthorized, ...) sends its error and closes as
                # soon as it accepts, often before start goes out: the error is still there to be read.
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(json.dumps(start))
                first = record(await asyncio.wait_for(ws.recv(), open_timeout))
            except (TimeoutError, ConnectionClosed) as e:
                result.close_code = ws.close_code
                if result.error is None:
                    result.error = _client_error("closed", f"no ready message from the server ({e or 'timeout'})")
                return result
            if first is None or first.get("type") != "ready":
                if result.error is None:
                    result.error = _client_error("bad_reply", f"expected ready, got {first!r:.120}")
                await ws.close()
                result.close_code = ws.close_code
                return result

            receiver = asyncio.create_task(receive(ws))
            try:
                source = aiter(audio)
                while True:
                    # The next message, unless the server closes first (an error, most likely): then stop waiting.
                    following = asyncio.ensure_future(anext(source))
                    await asyncio.wait({following, receiver}, return_when=asyncio.FIRST_COMPLETED)
                    if not following.done():
                        following.cancel()
                        break
                    try:
                        message, audio_end = following.result()
                    except StopAsyncIteration:
                        break
                    if isinstance(message, dict):  # a control message: {"type": "finalize"}
                        await ws.send(json.dumps(message))
                        continue
                    await ws.send(message)
                    result.chunks.append(ChunkSent(time.monotonic(), audio_end))
                await _send_stop(ws, receiver, result)
            except ConnectionClosed:
                pass
            await _wait_for_end(ws, receiver, result, end_timeout)
    except _CONNECTION_ERRORS as e:
        return _connection_failed(result, url, e)
    return _ended(result)


async def _paced(
    data: bytes, width: int, step: int, sample_rate: int, speed: float
) -> AsyncIterator[tuple[bytes, float]]:
    """`data` (frames of `width` bytes: one sample, or one per channel) in messages of `step` frames, each when its
    last frame would have been recorded (`speed` 1; 2 twice as fast, 0 at once), as `converse` takes them. The clock
    starts at the first."""
    n = len(data) // width
    t0 = time.monotonic()
    for begin in range(0, n, step):
        end = min(begin + step, n)
        if speed > 0:
            delay = t0 + end / sample_rate / speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        yield data[begin * width : end * width], end / sample_rate


def webm_recording(samples: np.ndarray, sample_rate: int) -> tuple[bytes, list[int], list[float]]:
    """`samples` `(T,)` as a browser records them: resampled to 48 kHz, encoded to Opus (libsndfile's encoder, 20 ms
    packets) and laid out in WebM (`parley.webm.write_webm`). Returns the bytes, each packet's end offset in them and
    the stream time (s) at each packet's end, its pre-skip left out as the server leaves it out."""
    import soundfile

    from parley.ogg import OPUS_RATE, OggPacketReader, head_pre_skip, opus_samples
    from parley.resample import resample
    from parley.webm import write_webm

    ogg = io.BytesIO()
    soundfile.write(ogg, resample(samples, sample_rate, OPUS_RATE), OPUS_RATE, format="OGG", subtype="OPUS")
    head, _tags, *packets = OggPacketReader().feed(ogg.getvalue())
    data, ends = write_webm(head, packets)
    total, times = -head_pre_skip(head), []
    for packet in packets:
        total += opus_samples(packet)
        times.append(max(0.0, total / OPUS_RATE))
    return data, ends, times


async def _paced_webm(
    data: bytes, ends: Sequence[int], times: Sequence[float], chunk_ms: float, speed: float
) -> AsyncIterator[tuple[bytes, float]]:
    """A WebM recording (`webm_recording`) in messages of the packets of about `chunk_ms` each (the first also holds
    the header), each when its last packet would have been recorded, as MediaRecorder's timeslice sends them."""
    t0 = time.monotonic()
    sent, start_offset = 0.0, 0
    for k, (end, t) in enumerate(zip(ends, times, strict=True)):
        if t - sent < chunk_ms / 1000 and k < len(ends) - 1:
            continue
        if speed > 0:
            delay = t0 + t / speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        yield data[start_offset:end], t
        sent, start_offset = t, end


async def _live(source: BinaryIO, block: int) -> AsyncIterator[tuple[bytes, float]]:
    """A live source's bytes (a pipe) in messages of at most `block` bytes, each as soon as it has arrived, until the
    source ends, as `converse` takes them (the stream time: the bytes so far, for a PCM `block` of `chunk_ms`)."""
    read = getattr(source, "read1", source.read)  # read1: what is there now, not a full block
    total = 0
    while data := await asyncio.to_thread(read, block):
        total += len(data)
        yield data, float(total)


async def run_live(
    url: str,
    source: BinaryIO,
    encoding: str,
    sample_rate: int | None,
    *,
    chunk_ms: float = 100.0,
    start_fields: Mapping[str, Any] | None = None,
    api_key: str | None = None,
    on_message: Callable[[dict], None] | None = None,
) -> StreamResult:
    """Streams a live source (standard input: ffmpeg, arecord, a gateway) through the protocol as it arrives:
    raw PCM of `encoding` at `sample_rate`, or the bytes of a "webm" / "ogg" / "mp4" container (no rate needed).
    The stream ends when the source does.

    Raises:
        ValueError: a PCM encoding without a rate.
    """
    if encoding in ENCODINGS:
        if not sample_rate:
            raise ValueError(f"raw {encoding} needs its sample rate (--rate)")
        start = start_message(sample_rate, encoding, **dict(start_fields or {}))
        width = BYTES_PER_SAMPLE[encoding]
        block = max(1, round(sample_rate * chunk_ms / 1000)) * width
    else:
        start = {k: v for k, v in start_message(0, encoding, **dict(start_fields or {})).items() if k != "sample_rate"}
        block = 4096  # a container's bytes, cut anywhere: the server reads them as they come
    return await converse(url, start, _live(source, block), api_key=api_key, on_message=on_message)


async def run_stream(
    url: str,
    samples: np.ndarray,
    sample_rate: int,
    *,
    chunk_ms: float = 100.0,
    speed: float = 1.0,
    encoding: str = "s16le",
    model: str | None = None,
    search: str | None = None,
    partials: bool = True,
    language: str | None = None,
    translate: Sequence[str] = (),
    languages: Sequence[str] = (),
    talkers: bool = False,
    start_fields: Mapping[str, Any] | None = None,
    api_key: str | None = None,
    on_message: Callable[[dict], None] | None = None,
    open_timeout: float = 10.0,
    end_timeout: float = 30.0,
    recording: tuple[bytes, list[int], list[float]] | None = None,
) -> StreamResult:
    """Streams one recording through the protocol and records what happened (`converse`).

    Args:
        url: the server's stream endpoint, ws:// or wss://.
        samples: `(T,)` float audio in [-1, 1], or `(C, T)` for C channels (start's "channels", sent interleaved).
        sample_rate: the rate of `samples` in Hz (sent as is; the server resamples).
        chunk_ms: audio per binary message.
        speed: pacing; 1 sends chunk k when its last sample would have been recorded, 0 sends without waiting.
        encoding: the wire format, one of `parley.audio.ENCODINGS` (mulaw / alaw: as a telephone line sends it), or
            "webm": the recording encoded to Opus and sent as a browser's MediaRecorder sends it, a chunk of WebM
            bytes every `chunk_ms` (`webm_recording`; mono).
        model, search, partials, language, translate, languages, talkers: the start message's fields (None, empty
            or false: the server's default).
        start_fields: other start fields (`{"alternatives": 3}`), sent unless None.
        api_key, on_message, open_timeout, end_timeout: as `converse` takes them.
        recording: with "webm", `webm_recording(samples, sample_rate)` made beforehand (a load generator encodes each
            clip once: encoding it for every stream would hold up its event loop, and so its pacing).
    """
    fields = dict(start_fields or {})
    channels = 1 if samples.ndim == 1 else samples.shape[0]
    if channels > 1:
        fields["channels"] = channels
        samples = samples.T.reshape(-1)  # frame by frame: c0 c1 c0 c1 ...
    elif samples.ndim == 2:
        samples = samples[0]
    start = start_message(
        sample_rate, encoding, partials, model, search, language, translate, languages, talkers, **fields
    )
    if encoding == "webm":
        if channels > 1:
            raise ValueError("a WebM stream is mono: mix the channels down first")
        start.pop("sample_rate")  # the container says it
        audio = _paced_webm(*(recording or webm_recording(samples, sample_rate)), chunk_ms, speed)
    else:
        step = max(1, round(sample_rate * chunk_ms / 1000))
        width = BYTES_PER_SAMPLE[encoding] * channels
        audio = _paced(encode_audio(samples, encoding), width, step, sample_rate, speed)
    return await converse(
        url,
        start,
        audio,
        api_key=api_key,
        on_message=on_message,
        open_timeout=open_timeout,
        end_timeout=end_timeout,
    )


class CaptionPrinter:
    """Prints partials in place (carriage return, on a terminal) and finals on their own lines."""

    def __init__(self, out=None, live: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.live = self.out.isatty() if live is None else live
        self._shown = False

    def __call__(self, msg: dict) -> None:
        kind = msg.get("type")
        if kind == "partial" and self.live:
            width = max(10, shutil.get_terminal_size().columns - 1)
            text = msg.get("text", "")
            self.out.write("\r\x1b[K" + (text if len(text) <= width else "…" + text[-(width - 1) :]))
            self.out.flush()
            self._shown = True
        elif kind == "final":
            if self._shown:
                self.out.write("\r\x1b[K")
                self._shown = False
            if msg.get("finalized") and not msg.get("text"):  # a finalize with nothing said: no empty line
                self.out.flush()
                return
            lang = f"[{msg['language']}] " if "language" in msg else ""
            channel = f"[C{msg['channel'] + 1}] " if isinstance(msg.get("channel"), int) else ""
            self.out.write(channel + lang + speaker_text(msg) + "\n")
            for target, text in (msg.get("translations") or {}).items():
                self.out.write(f"    {target}: {text}\n")
            for i, alt in enumerate((msg.get("alternatives") or [])[1:], 2):
                self.out.write(f"    #{i} ({alt.get('confidence', 0):.3f}): {alt.get('text', '')}\n")
            self.out.flush()


def add_hotwords_argument(p: argparse.ArgumentParser) -> None:
    """`--hotwords PHRASE ...` and `--hotwords-file FILE`: the start's hotwords (`parley stream`, `parley mic`,
    `parley loadtest`; `hotword_items` reads them)."""
    p.add_argument(
        "--hotwords",
        nargs="+",
        default=[],
        metavar="PHRASE",
        help='names and terms to favour (beam search), e.g. --hotwords kowalczyk "zentrix labs"',
    )
    p.add_argument(
        "--hotwords-file",
        metavar="FILE",
        help="more hotwords: a phrase a line (optionally a tab and its boost; # comments), or a .json list of "
        "start-message hotwords such as `parley hotwords learn` writes (with their sounds_like)",
    )


def read_hotwords_file(path: str) -> list[str | dict]:
    """A hotwords file as start-message items: a JSON list (`parley hotwords learn`'s: strings or {"phrase", "boost",
    "sounds_like"} objects, sent as they are; the server checks them) or text (a phrase a line, optionally a tab and
    its boost; blank and # lines skipped).

    Raises:
        ValueError: an unreadable file, JSON that is not a list, or a boost that is not a number.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ValueError(f"--hotwords-file {path}: {e.strerror or e}") from None
    if path.endswith(".json"):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"--hotwords-file {path}: not JSON ({e})") from None
        if not isinstance(items, list):
            raise ValueError(f"--hotwords-file {path}: a JSON list of hotwords expected")
        return items
    out: list[str | dict] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        phrase, _, boost = line.partition("\t")
        try:
            out.append({"phrase": phrase.strip(), "boost": float(boost)} if boost.strip() else phrase.strip())
        except ValueError:
            raise ValueError(f"--hotwords-file {path}, line {n}: boost {boost.strip()!r} is not a number") from None
    return out


def resolve_hotwords(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """`a.hotwords` becomes the start's hotwords from `add_hotwords_argument`'s options: --hotwords, then
    --hotwords-file's items (a bad file is the parser's error)."""
    if a.hotwords_file:
        try:
            a.hotwords = [*a.hotwords, *read_hotwords_file(a.hotwords_file)]
        except ValueError as e:
            p.error(str(e))


def _endpointing(a: argparse.Namespace) -> bool | dict | None:
    """start's "endpointing" from the command line: false, this stream's silence after speech, or the server's."""
    if a.no_endpointing:
        return False
    return {"silence_after_speech_s": a.silence_after_speech} if a.silence_after_speech is not None else None


def _start_fields(a: argparse.Namespace) -> dict[str, Any]:
    """The start fields the command line asks for beyond the rate and encoding."""
    return {
        "alternatives": a.alternatives,
        "endpointing": _endpointing(a),
        "redact": a.redact or None,
        "profanity_filter": a.profanity_filter or None,
        "hotwords": a.hotwords or None,
    }


def _show(a: argparse.Namespace) -> Callable[[dict], None]:
    if a.json:
        return lambda msg: print(json.dumps(msg, ensure_ascii=False), flush=True)
    return CaptionPrinter(live=False if a.multichannel else None)  # two channels' partials would share one line


def _stream_stdin(a: argparse.Namespace) -> int:
    """`parley stream -`: standard input, live, until it ends."""
    if a.multichannel:
        print("parley stream: --multichannel reads a file, not standard input", file=sys.stderr)
        return 2
    fields = {
        **_start_fields(a),
        "model": a.model,
        "search": a.search,
        "partials": not a.no_partials,
        "language": a.language,
        "translate": a.translate or None,
        "languages": a.languages or None,
        "talkers": a.talkers or None,
    }
    try:
        result = asyncio.run(
            run_live(
                a.url,
                sys.stdin.buffer,
                a.encoding,
                a.rate,
                chunk_ms=a.chunk_ms,
                start_fields=fields,
                api_key=a.api_key,
                on_message=_show(a),
            )
        )
    except ValueError as e:
        print(f"parley stream: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if result.error is not None:
        print(f"parley stream: error {result.error.get('code')}: {result.error.get('message')}", file=sys.stderr)
        return 1
    print(f"parley stream: standard input ended, {len(result.finals)} final(s)", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="parley stream", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "file",
        help="an audio file: WAV (PCM, float or G.711), FLAC, Ogg, MP3, AIFF; any rate 8-192 kHz; channels averaged "
        "unless --multichannel; - : standard input, live (raw PCM at --rate, or --encoding webm / ogg / mp4)",
    )
    p.add_argument(
        "--multichannel",
        action="store_true",
        help="send every channel of the file (start's channels): each is recognized on its own, finals say [C1], [C2]",
    )
    p.add_argument("--url", default=DEFAULT_URL, help=f"the server's stream endpoint (default: {DEFAULT_URL})")
    p.add_argument("--speed", type=float, default=1.0, help="1: real time (default), 2: twice as fast, 0: no pacing")
    p.add_argument("--chunk-ms", type=float, default=100.0, help="audio per message in ms (default: 100)")
    p.add_argument("--model", help="bundle name (default: the server's default)")
    p.add_argument("--search", choices=("greedy", "beam"), help="search method (default: the model's)")
    p.add_argument(
        "--encoding",
        choices=(*ENCODINGS, *CONTAINERS),
        default="s16le",
        help="wire format (default: s16le; mulaw / alaw: G.711, as telephone systems send it, best with 8 kHz audio; "
        "webm / ogg / mp4: standard input's container as it is: Opus, or AAC in fragmented MP4)",
    )
    p.add_argument("--rate", type=int, help="standard input's sample rate in Hz (raw PCM from -)")
    p.add_argument("--no-partials", action="store_true", help="ask the server for finals only")
    p.add_argument(
        "--alternatives", type=int, metavar="N", help="finals list the N likeliest transcripts (beam search; 1-10)"
    )
    p.add_argument("--no-endpointing", action="store_true", help="no endpoints: one segment until the end")
    p.add_argument(
        "--silence-after-speech",
        type=float,
        metavar="S",
        help="this stream's endpoint: S seconds of silence after speech (the server's: 1.2)",
    )
    p.add_argument("--language", help="the spoken language, or auto (multilingual models)")
    p.add_argument("--translate", nargs="+", default=[], help="languages to translate into (multilingual models)")
    p.add_argument("--languages", nargs="+", default=[], help="the languages auto may choose from")
    p.add_argument(
        "--api-key", default=os.environ.get("PARLEY_API_KEY"), help="API key (default: $PARLEY_API_KEY, if set)"
    )
    p.add_argument(
        "--talkers", action="store_true", help="number who speaks across segments: [T1], [T2] (models with talkers)"
    )
    p.add_argument("--redact", action="store_true", help='spoken digit strings (card numbers, PINs) as "[redacted]"')
    p.add_argument("--profanity-filter", action="store_true", help='profanity masked ("d***")')
    add_hotwords_argument(p)
    p.add_argument("--json", action="store_true", help="print every server message as a JSON line instead of text")
    a = p.parse_args(argv)
    resolve_hotwords(p, a)
    if a.speed < 0 or a.chunk_ms <= 0:
        p.error("--speed must be >= 0 and --chunk-ms > 0")
    if a.no_endpointing and a.silence_after_speech is not None:
        p.error("--no-endpointing and --silence-after-speech: give one or the other")
    if a.file == "-":
        return _stream_stdin(a)
    if a.encoding in CONTAINERS:
        p.error(f"--encoding {a.encoding} sends standard input's container as it is: give the file as -")
    try:
        samples, rate = read_audio_channels(a.file)
        samples = samples if a.multichannel else mix_down(samples)
    except (OSError, ValueError) as e:
        print(f"parley stream: {e}", file=sys.stderr)
        return 2

    show = _show(a)
    try:
        result = asyncio.run(
            run_stream(
                a.url,
                samples,
                rate,
                chunk_ms=a.chunk_ms,
                speed=a.speed,
                encoding=a.encoding,
                model=a.model,
                search=a.search,
                partials=not a.no_partials,
                language=a.language,
                translate=a.translate,
                languages=a.languages,
                talkers=a.talkers,
                start_fields=_start_fields(a),
                api_key=a.api_key,
                on_message=show,
            )
        )
    except KeyboardInterrupt:
        return 130
    if result.error is not None:
        print(f"parley stream: error {result.error.get('code')}: {result.error.get('message')}", file=sys.stderr)
        return 1
    print(
        f"parley stream: {samples.shape[-1] / rate:.2f} s of audio, {len(result.finals)} final(s), "
        f"end {1000 * (result.finalization_latency or 0):.0f} ms after stop",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
