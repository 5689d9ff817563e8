"""`parley loadtest`: many concurrent real-time streams against a Parley server, with latency, WER and errors.

    parley loadtest --url ws://127.0.0.1:8000/v1/stream --streams 16 --files data/corpus/en/test/*.wav \\
        --refs data/corpus/en/test.jsonl --json load.json
    parley loadtest --files a.wav b.wav --ramp --target-p95-ms 500 --duration 30 --json ramp.json --plot ramp.png

Each of the N streams is a WebSocket connection that sends one file after another at real-time pace (`parley
stream`'s `run_stream`); the streams start staggered over one chunk. Without --duration the files are shared out
(stream i takes files i, i+N, ...; each file once when there are at least N); with --duration every stream keeps
taking files (cycling) until that many seconds have passed, finishing the file it is on.

Figures, per number of streams:
- chunk latency: for each audio message, the time from sending it (its last sample) until the first partial or
  final that arrives after it and covers it, i.e. whose "end" (how far the server has decoded) is at or past the
  message's audio end. A server that omits "end" from partials is credited with the first message after the chunk.
  The server only speaks when the text changes, so during a pause chunks wait for the next change (or the final):
  the figure is honest for speech and pessimistic for silences. Chunks never covered are counted as uncovered.
- server-side chunk latency: from the server's /metrics histogram parley_chunk_latency_seconds, the time from the
  arrival of the sample that completes an encoder chunk (its lookahead included) to that chunk's results being
  sent, for every chunk whether its text changed or not (percentiles interpolated inside the histogram's buckets).
  A percentile past the last finite bucket (5 s) has no upper bound: it is printed as "> 5000" and written as null
  next to "beyond_ms" (the bound it lies past), and fails its level.
  This is the figure --ramp judges by when the server exposes it; the client-side figure above otherwise.
- finalization latency: time from sending stop until the "end" message.
- WER against references (--refs): both texts in Parley's caption form (`parley.textnorm`: lowercase, punctuation
  dropped; characters for Chinese) and aligned by `parley.wer`, as `parley eval` scores them.
- errors by code (the server's codes, and the client's: connect_failed, closed, timeout, bad_reply). A stream the
  server turned away is counted, and its worker waits before the next (0.1 s, doubling up to 5 s); one refused for a
  reason that would only repeat (unauthorized, unknown_model, a start the server rejects) or that cannot connect
  ends its worker.
- the server's CPU use, from process_cpu_seconds_total on its /metrics, when it is there.

--ramp runs 1, 2, 4, 8, ... streams until p95 chunk latency passes --target-p95-ms or a stream fails, then bisects
between the last good and the first bad count, and reports the most streams that stayed within the target. It exits
with 1 when no level passed, or when any level could not connect or was not authorized.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clients.stream import (
    DEFAULT_URL,
    StreamResult,
    add_hotwords_argument,
    resolve_hotwords,
    run_stream,
    webm_recording,
)
from parley.audio import ENCODINGS, read_wav
from parley.textnorm import normalize_text
from parley.wer import ErrorCounts, error_counts

MAX_CHANNELS = 8  # start's "channels" at most (docs/protocol.md)
_END_TOLERANCE = 0.0005  # s: the server rounds times to the millisecond
_RAMP_DEFAULT_DURATION = 30.0  # s per level when --ramp is given without --duration
_BACKOFF_MIN, _BACKOFF_MAX = 0.1, 5.0  # s a worker waits after a stream the server turned away, doubling each time
# Refusals of a stream before ready that the same request would only get again: the worker stops at the first.
REFUSALS = frozenset(
    {
        "unauthorized",
        "forbidden_origin",
        "unknown_model",
        "unsupported_option",
        "unknown_field",
        "invalid_value",
        "unsupported_rate",
        "unsupported_encoding",
        "bad_json",
        "bad_message",
        "not_started",
        "already_started",
    }
)


@dataclass
class Clip:
    """One test file, read once, with its reference transcript if known."""

    path: str
    samples: np.ndarray
    rate: int
    ref: str | None = None
    language: str = ""

    @property
    def duration(self) -> float:
        return self.samples.size / self.rate


# ---- Latency accounting ----


def chunk_latencies(result: StreamResult) -> tuple[list[float], int]:
    """Per-chunk latency (seconds) of one stream, by the definition in the module docstring.

    Returns:
        the latencies of the covered chunks, in send order, and the number of chunks never covered.
    """
    covering = [r for r in result.received if r.message.get("type") in ("partial", "final")]
    latencies: list[float] = []
    i = 0  # the first chunk not yet covered; chunks are sent in order of both time and audio end
    for r in covering:
        end = r.message.get("end")
        reach = float(end) + _END_TOLERANCE if isinstance(end, int | float) else float("inf")
        while i < len(result.chunks) and result.chunks[i].sent_at <= r.at and result.chunks[i].audio_end <= reach:
            latencies.append(r.at - result.chunks[i].sent_at)
            i += 1
    return latencies, len(result.chunks) - i


def percentiles_ms(values: Sequence[float]) -> dict | None:
    """p50/p95/p99/mean/max of seconds, in milliseconds (None without values)."""
    if not values:
        return None
    x = np.asarray(values, dtype=np.float64) * 1000.0
    p50, p95, p99 = np.percentile(x, [50, 95, 99])
    return {
        "p50": round(float(p50), 1),
        "p95": round(float(p95), 1),
        "p99": round(float(p99), 1),
        "mean": round(float(x.mean()), 1),
        "max": round(float(x.max()), 1),
        "n": int(x.size),
    }


# ---- References ----


def read_refs(path: str | os.PathLike) -> dict[str, tuple[str, str]]:
    """Reference transcripts from a JSONL file: a Parley manifest ("id", "audio", "text", "language") or lines
    {"file": ..., "text": ...}. Returns a map from every name a file may be looked up by (resolved path, file name,
    stem, id) to (text, language)."""
    path = Path(path)
    refs: dict[str, tuple[str, str]] = {}
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                text = str(d["text"])
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{n}: not a JSON line with a text field ({e})") from None
            value = (text, str(d.get("language") or ""))
            audio = d.get("audio") or d.get("file")
            if audio:
                p = Path(audio)
                p = p if p.is_absolute() else path.parent / p
                for key in (str(p.resolve()), p.name, p.stem):
                    refs.setdefault(key, value)
            if d.get("id"):
                refs.setdefault(str(d["id"]), value)
    return refs


def find_ref(refs: dict[str, tuple[str, str]], file: str) -> tuple[str, str] | None:
    p = Path(file)
    for key in (str(p.resolve()), p.name, p.stem):
        if key in refs:
            return refs[key]
    return None


# ---- Server CPU ----


def metrics_url_for(url: str) -> str:
    """ws://host:port/v1/stream -> http://host:port/metrics (wss -> https)."""
    u = urllib.parse.urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(u.scheme, u.scheme)
    return urllib.parse.urlunsplit((scheme, u.netloc, "/metrics", "", ""))


def parse_metric(text: str, name: str) -> float | None:
    """The value of an unlabelled sample `name` in Prometheus text, or None."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == name:
            try:
                return float(parts[1])
            except ValueError:
                return None
    return None


_LE = re.compile(r'le="([^"]+)"')
SERVER_LATENCY = "parley_chunk_latency_seconds"


def parse_histogram(text: str, name: str) -> dict[float, float]:
    """Cumulative bucket counts `{upper bound: count}` of histogram `name`, summed over its other labels."""
    out: dict[float, float] = {}
    for line in text.splitlines():
        if not line.startswith(name + "_bucket"):
            continue
        m = _LE.search(line)
        parts = line.rsplit(None, 1)
        if m and len(parts) == 2:
            bound = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            out[bound] = out.get(bound, 0.0) + float(parts[1])
    return out


def histogram_percentiles_ms(before: dict[float, float], after: dict[float, float]) -> dict | None:
    """p50/p95/p99 (ms) of the observations made between two scrapes, interpolated linearly inside buckets."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]  # cumulative
    if not counts or counts[-1] <= 0:
        return None
    total = counts[-1]
    result: dict = {"n": int(total)}
    for q in (50, 95, 99):
        target = total * q / 100
        lo_bound, lo_count = 0.0, 0.0
        for b, c in zip(bounds, counts, strict=True):
            if c >= target:
                if b == float("inf"):
                    value = float("inf")  # beyond the last finite bucket: no upper bound known
                    result["beyond_ms"] = round(1000 * lo_bound, 1)
                else:
                    frac = (target - lo_count) / (c - lo_count) if c > lo_count else 1.0
                    value = lo_bound + frac * (b - lo_bound)
                result[f"p{q}"] = round(1000 * value, 1)
                break
            lo_bound, lo_count = b, c
    return result


def fetch_metrics(metrics_url: str, api_key: str | None = None, timeout: float = 2.0) -> str | None:
    """The server's /metrics text, or None when it cannot be read."""
    req = urllib.request.Request(metrics_url)
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError, ValueError):
        return None


# ---- Running a level ----


@dataclass
class Options:
    """How each stream talks to the server."""

    url: str = DEFAULT_URL
    chunk_ms: float = 100.0
    speed: float = 1.0
    model: str | None = None
    search: str | None = None
    api_key: str | None = None
    duration: float | None = None  # None: share the files out once
    metrics_url: str | None = None
    end_timeout: float = 30.0
    encoding: str = "s16le"  # the wire format (mulaw / alaw: a telephone gateway's load; webm: browsers')
    channels: int = 1  # channels per stream (start's "channels": a stereo call's load), each the clip rotated
    hotwords: tuple[str | dict, ...] = ()  # every stream's hotwords (beam search with a context graph: that load)


def channel_audio(samples: np.ndarray, channels: int) -> np.ndarray:
    """A clip as the audio of a stream of `channels` channels: `(T,)` for one, else `(C, T)`, channel c the clip
    rotated by c / C of its length (different speech on each channel at any moment, as two people on a call; WER is
    scored on channel 0, the clip itself)."""
    if channels == 1:
        return samples
    return np.stack([np.roll(samples, c * samples.size // channels) for c in range(channels)])


def _assignments(stream: int, streams: int, files: int) -> list[int]:
    """File indices stream `stream` of `streams` takes when the files are shared out once."""
    return [k % files for k in range(stream, max(files, streams), streams)]


async def run_level(clips: Sequence[Clip], streams: int, opts: Options) -> dict:
    """Runs `streams` concurrent streams and summarizes them (the JSON written for one level)."""
    metrics_url = opts.metrics_url or metrics_url_for(opts.url)
    # WebM: every clip encoded once, before the clock starts (not in the streams' pacing loop).
    recordings = [webm_recording(c.samples, c.rate) if opts.encoding == "webm" else None for c in clips]
    m0 = await asyncio.to_thread(fetch_metrics, metrics_url, opts.api_key)
    t_start = time.monotonic()
    stagger = opts.chunk_ms / 1000.0 / streams if opts.speed > 0 else 0.0

    async def worker(i: int) -> list[tuple[Clip, StreamResult]]:
        await asyncio.sleep(i * stagger)
        done: list[tuple[Clip, StreamResult]] = []
        order = _assignments(i, streams, len(clips))
        k = 0
        backoff = 0.0  # s to wait before the next stream: after one the server turned away (server_full, ...)
        while True:
            if opts.duration is None:
                if k >= len(order):
                    break
                index = order[k]
            else:
                index = (i + k * streams) % len(clips)
            clip = clips[index]
            k += 1
            if backoff:
                left = None if opts.duration is None else t_start + opts.duration - time.monotonic()
                await asyncio.sleep(backoff if left is None else max(0.0, min(backoff, left)))
                if opts.duration is not None and time.monotonic() - t_start >= opts.duration:
                    break
            r = await run_stream(
                opts.url,
                channel_audio(clip.samples, opts.channels),
                clip.rate,
                chunk_ms=opts.chunk_ms,
                speed=opts.speed,
                model=opts.model,
                search=opts.search,
                api_key=opts.api_key,
                end_timeout=opts.end_timeout,
                encoding=opts.encoding,
                start_fields={"hotwords": list(opts.hotwords) or None},
                recording=recordings[index],
            )
            done.append((clip, r))
            code = None if r.error is None else r.error.get("code")
            if code == "connect_failed" or (r.ready is None and code in REFUSALS):
                break  # no point hammering a server that is not there, or asking again for what it refused
            if opts.duration is not None and time.monotonic() - t_start >= opts.duration:
                break
            backoff = 0.0 if r.ready is not None else min(_BACKOFF_MAX, max(_BACKOFF_MIN, 2 * backoff))
        return done

    per_stream = await asyncio.gather(*(worker(i) for i in range(streams)))
    wall = time.monotonic() - t_start
    m1 = await asyncio.to_thread(fetch_metrics, metrics_url, opts.api_key)
    cpu0, cpu1 = (None if m is None else parse_metric(m, "process_cpu_seconds_total") for m in (m0, m1))
    level = summarize(streams, [x for xs in per_stream for x in xs], wall, cpu0, cpu1)
    if m0 is not None and m1 is not None:
        level["server_latency_ms"] = histogram_percentiles_ms(
            parse_histogram(m0, SERVER_LATENCY), parse_histogram(m1, SERVER_LATENCY)
        )
    return level


def summarize(
    streams: int, runs: Sequence[tuple[Clip, StreamResult]], wall: float, cpu0: float | None, cpu1: float | None
) -> dict:
    """The figures of one level from its streams' results."""
    latencies: list[float] = []
    uncovered = 0
    finalization: list[float] = []
    errors: Counter[str] = Counter()
    counts, scored = ErrorCounts(), 0
    audio = 0.0
    for clip, r in runs:
        lat, unc = chunk_latencies(r)
        latencies += lat
        uncovered += unc
        if r.finalization_latency is not None:
            finalization.append(r.finalization_latency)
        if r.error is not None:
            errors[str(r.error.get("code", "unknown"))] += 1
        if r.chunks:
            audio += r.chunks[-1].audio_end
        if clip.ref is not None and r.error is None:
            lang = clip.language
            text = " ".join(f["text"] for f in r.finals if f.get("channel", 0) == 0 and f.get("text"))
            counts += error_counts([normalize_text(clip.ref, lang)], [normalize_text(text, lang)], lang)
            scored += 1
    level = {
        "streams": streams,
        "files_streamed": len(runs),
        "audio_seconds": round(audio, 3),
        "wall_seconds": round(wall, 3),
        "chunks": sum(len(r.chunks) for _, r in runs),
        "chunks_uncovered": uncovered,
        "latency_ms": percentiles_ms(latencies),
        "finalization_ms": percentiles_ms(finalization),
        "errors": dict(sorted(errors.items())),
        "error_count": sum(errors.values()),
        "wer": None,
        "server_cpu_seconds": None,
        "server_cpu_cores": None,
        "server_latency_ms": None,
    }
    if scored:
        level["wer"] = {
            "rate": round(counts.rate, 4),
            "errors": counts.errors,
            "reference_words": counts.reference_words,
            "files": scored,
        }
    if cpu0 is not None and cpu1 is not None:
        level["server_cpu_seconds"] = round(cpu1 - cpu0, 3)
        level["server_cpu_cores"] = round((cpu1 - cpu0) / wall, 3) if wall > 0 else None
    return level


def level_ok(level: dict, target_p95_ms: float) -> bool:
    """Whether a level kept p95 chunk latency (server-side when known) within the target without errors (an
    unbounded server-side p95, past the histogram's last finite bucket, is not within any target)."""
    lat = level.get("server_latency_ms") or level["latency_ms"]
    return level["error_count"] == 0 and lat is not None and lat["p95"] <= target_p95_ms


async def ramp(
    run: Callable[[int], Awaitable[dict]],
    target_p95_ms: float,
    max_streams: int = 1024,
    report: Callable[[dict], None] | None = None,
) -> tuple[list[dict], int]:
    """Doubles the streams from 1 until a level fails (or max_streams), then bisects.

    Returns:
        the levels run, sorted by streams, and the most streams that passed (0 when even one failed).
    """
    levels: dict[int, dict] = {}

    async def passes(n: int) -> bool:
        levels[n] = await run(n)
        if report is not None:
            report(levels[n])
        return level_ok(levels[n], target_p95_ms)

    good, bad = 0, None
    n = 1
    while n <= max_streams:
        if await passes(n):
            good = n
            n *= 2
        else:
            bad = n
            break
    if bad is None and good < max_streams:  # passed every doubling below max_streams: try max_streams itself
        if await passes(max_streams):
            good = max_streams
        else:
            bad = max_streams
    while bad is not None and bad - good > 1:
        mid = (good + bad) // 2
        if await passes(mid):
            good = mid
        else:
            bad = mid
    return [levels[k] for k in sorted(levels)], good


# ---- Output ----


def _ms(figures: dict, key: str) -> str:
    """A percentile in whole ms; one past the server histogram's last finite bucket as "> BOUND"."""
    value = figures[key]
    return f"> {figures.get('beyond_ms', 0):.0f}" if value == float("inf") else f"{value:.0f}"


def json_ready(value):
    """`value` with every infinite or NaN float (an unbounded percentile) as None, so that the report is strict
    JSON that every parser reads."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def describe(level: dict) -> str:
    """One line for the terminal."""
    parts = [f"streams {level['streams']:>4}:"]
    lat, fin = level["latency_ms"], level["finalization_ms"]
    if lat:
        parts.append(f"chunk latency p50 {lat['p50']:.0f} p95 {lat['p95']:.0f} p99 {lat['p99']:.0f} ms")
    else:
        parts.append("no chunk latency")
    srv = level.get("server_latency_ms")
    if srv:
        parts.append(f"server-side p50 {_ms(srv, 'p50')} p95 {_ms(srv, 'p95')} p99 {_ms(srv, 'p99')} ms")
    if fin:
        parts.append(f"final {fin['p50']:.0f} ms")
    if level["wer"]:
        parts.append(f"WER {100 * level['wer']['rate']:.2f}%")
    parts.append(f"errors {level['error_count']}" + (f" {level['errors']}" if level["errors"] else ""))
    if level["server_cpu_cores"] is not None:
        parts.append(f"server CPU {level['server_cpu_cores']:.2f} cores")
    return ", ".join(parts)


def plot(levels: Sequence[dict], path: str, target_p95_ms: float | None = None) -> None:
    """Chunk latency p50/p95/p99 against streams, as a PNG.

    Raises:
        ImportError: matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted((lv for lv in levels if lv["latency_ms"]), key=lambda lv: lv["streams"])
    xs = [lv["streams"] for lv in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for key in ("p50", "p95", "p99"):
        ax.plot(xs, [lv["latency_ms"][key] for lv in rows], marker="o", label=key)
    if target_p95_ms is not None:
        ax.axhline(target_p95_ms, color="grey", linestyle="--", label=f"target p95 {target_p95_ms:g} ms")
    if xs and max(xs) >= 8:
        ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent streams")
    ax.set_ylabel("chunk latency (ms)")
    ax.set_title("Parley streaming latency")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def load_clips(files: Sequence[str], refs_path: str | None) -> list[Clip]:
    """Reads the WAV files once and attaches their references.

    Raises:
        ValueError: a file cannot be read, or --refs has no reference for a file.
    """
    refs = read_refs(refs_path) if refs_path else None
    clips = []
    for f in files:
        samples, rate = read_wav(f)
        clip = Clip(str(f), samples, rate)
        if refs is not None:
            found = find_ref(refs, f)
            if found is None:
                raise ValueError(f"{refs_path} has no reference for {f} (looked up by path, file name and stem)")
            clip.ref, clip.language = found
        clips.append(clip)
    return clips


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="parley loadtest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--url", default=DEFAULT_URL, help=f"the server's stream endpoint (default: {DEFAULT_URL})")
    p.add_argument("--files", nargs="+", required=True, metavar="WAV", help="the audio files to stream")
    p.add_argument("--streams", type=int, default=1, help="concurrent streams (default: 1; --ramp ignores it)")
    p.add_argument("--refs", help="references: a Parley manifest or JSONL lines {file, text}; enables WER")
    p.add_argument("--duration", type=float, help="seconds per level: streams keep taking files until then")
    p.add_argument("--chunk-ms", type=float, default=100.0, help="audio per message in ms (default: 100)")
    p.add_argument("--speed", type=float, default=1.0, help="1: real time (default); 0: no pacing")
    p.add_argument("--model", help="bundle name (default: the server's default)")
    p.add_argument("--search", choices=("greedy", "beam"), help="search method (default: the model's)")
    p.add_argument(
        "--encoding",
        choices=(*ENCODINGS, "webm"),
        default="s16le",
        help="wire format (default: s16le; mulaw / alaw: G.711 as a telephone gateway sends it, best with 8 kHz files; "
        "webm: Opus in WebM, --chunk-ms of it a message, as a browser's MediaRecorder sends it)",
    )
    p.add_argument(
        "--channels",
        type=int,
        default=1,
        help="channels per stream (start's channels; default 1): 2 loads the server as stereo calls do, each "
        "channel the file rotated by half its length; WER on channel 0",
    )
    add_hotwords_argument(p)
    p.add_argument("--api-key", default=os.environ.get("PARLEY_API_KEY"), help="API key (default: $PARLEY_API_KEY)")
    p.add_argument("--metrics-url", help="the server's /metrics (default: derived from --url)")
    p.add_argument("--json", metavar="OUT", help="write every level's figures to this JSON file")
    p.add_argument("--plot", metavar="PNG", help="plot latency against streams into this PNG (needs matplotlib)")
    p.add_argument("--ramp", action="store_true", help="find the most streams within --target-p95-ms")
    p.add_argument("--target-p95-ms", type=float, default=500.0, help="ramp target for p95 chunk latency (ms)")
    p.add_argument("--max-streams", type=int, default=1024, help="ramp upper bound (default: 1024)")
    a = p.parse_args(argv)
    resolve_hotwords(p, a)
    if a.streams < 1 or a.max_streams < 1 or a.chunk_ms <= 0 or a.speed < 0:
        p.error("--streams and --max-streams must be >= 1, --chunk-ms > 0, --speed >= 0")
    if not 1 <= a.channels <= MAX_CHANNELS:
        p.error(f"--channels must be 1-{MAX_CHANNELS}")
    if a.encoding == "webm" and a.channels > 1:
        p.error("--encoding webm streams are mono: --channels 1")
    if a.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("parley loadtest: --plot needs matplotlib: pip install matplotlib", file=sys.stderr)
            return 2
    try:
        clips = load_clips(a.files, a.refs)
    except (OSError, ValueError) as e:
        print(f"parley loadtest: {e}", file=sys.stderr)
        return 2
    duration = a.duration if a.duration is not None or not a.ramp else _RAMP_DEFAULT_DURATION
    opts = Options(
        a.url,
        a.chunk_ms,
        a.speed,
        a.model,
        a.search,
        a.api_key,
        duration,
        a.metrics_url,
        encoding=a.encoding,
        channels=a.channels,
        hotwords=tuple(a.hotwords),
    )

    def report(level: dict) -> None:
        print(describe(level), flush=True)

    best = None
    if a.ramp:
        levels, best = asyncio.run(ramp(lambda n: run_level(clips, n, opts), a.target_p95_ms, a.max_streams, report))
        print(f"most streams within p95 {a.target_p95_ms:g} ms: {best}")
    else:
        levels = [asyncio.run(run_level(clips, a.streams, opts))]
        report(levels[0])

    out = {
        "url": a.url,
        "chunk_ms": a.chunk_ms,
        "speed": a.speed,
        "channels": a.channels,
        "duration": duration,
        "files": [c.path for c in clips],
        "audio_seconds_per_pass": round(sum(c.duration for c in clips), 3),
        "target_p95_ms": a.target_p95_ms if a.ramp else None,
        "max_streams_within_target": best,
        "levels": levels,
    }
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(json_ready(out), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    if a.plot:
        plot(levels, a.plot, a.target_p95_ms if a.ramp else None)
    if a.ramp:  # levels past the capacity fail by design; none passing, or no way in at all, is a failure
        shut_out = any(lv["errors"].get(code) for lv in levels for code in ("connect_failed", "unauthorized"))
        return 1 if best == 0 or shut_out else 0
    return 1 if sum(lv["error_count"] for lv in levels) else 0


if __name__ == "__main__":
    sys.exit(main())
