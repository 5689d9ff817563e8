"""A small Prometheus registry: counters, gauges and histograms with labels, and the text exposition format 0.0.4.

No dependency beyond the standard library; thread-safe, because the engine's worker threads observe while the event
loop serves /metrics.

    >>> reg = Registry()
    >>> errors = reg.counter("parley_errors_total", "errors sent to clients, by code", ["code"])
    >>> errors.labels(code="bad_audio").inc()
    >>> print(reg.exposition())
    # HELP parley_errors_total errors sent to clients, by code
    # TYPE parley_errors_total counter
    parley_errors_total{code="bad_audio"} 1

`ServerMetrics` holds the figures `parley serve` exports (see docs/protocol.md); autoscalers watch
`parley_active_streams`.
"""

from __future__ import annotations

import bisect
import math
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Seconds; from a fraction of a 10 ms frame to well past any latency a live caption survives.
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.125,
    0.15,
    0.175,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.0,
    5.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def format_value(v: float) -> str:
    """A sample value as Prometheus writes it: integers without a decimal point, +Inf, -Inf, NaN."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(float(v))


def _escape_label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n")


def _labels_text(names: Sequence[str], values: Sequence[str], extra: tuple[str, str] | None = None) -> str:
    pairs = [f'{k}="{_escape_label(v)}"' for k, v in zip(names, values, strict=True)]
    if extra is not None:
        pairs.append(f'{extra[0]}="{extra[1]}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


class CounterValue:
    """One counter sample: a count that only goes up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError(f"counters only go up, got inc({amount})")
        with self._lock:
            self.value += amount

    def set_total(self, value: float) -> None:
        """For counts kept elsewhere (the process's CPU time from the OS): copies the running total."""
        with self._lock:
            self.value = float(value)

    def samples(self) -> list[tuple[str, tuple[str, str] | None, float]]:
        return [("", None, self.value)]


class GaugeValue:
    """One gauge sample: a value that goes up and down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0.0

    def set(self, value: float) -> None:
        with self._lock:
            self.value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.inc(-amount)

    def samples(self) -> list[tuple[str, tuple[str, str] | None, float]]:
        return [("", None, self.value)]


class HistogramValue:
    """One histogram: cumulative bucket counts, sum and count of the observed values."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self._lock = threading.Lock()
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # per bucket, not cumulative; the last is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.buckets, value)  # the first bucket whose bound is >= value ("le")
        with self._lock:
            self.counts[i] += 1
            self.sum += value
            self.count += 1

    def samples(self) -> list[tuple[str, tuple[str, str] | None, float]]:
        with self._lock:
            counts, total, n = list(self.counts), self.sum, self.count
        out: list[tuple[str, tuple[str, str] | None, float]] = []
        cumulative = 0
        for bound, c in zip((*self.buckets, math.inf), counts, strict=True):
            cumulative += c
            out.append(("_bucket", ("le", format_value(bound)), cumulative))
        out += [("_sum", None, total), ("_count", None, n)]
        return out


class Metric:
    """A metric family: name, help, label names, and one value per combination of label values.

    Unlabelled metrics are used directly (`gauge.set(3)`); labelled ones through `labels` (`c.labels("x").inc()`).
    """

    def __init__(self, kind: str, name: str, help: str, labelnames: Sequence[str], factory: Callable[[], Any]) -> None:
        if not _NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        for label in labelnames:
            if not _LABEL.match(label) or label.startswith("__") or label == "le":
                raise ValueError(f"invalid label name {label!r} for {name}")
        self.kind = kind
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._factory = factory
        self._lock = threading.Lock()
        self._children: dict[tuple[str, ...], CounterValue | GaugeValue | HistogramValue] = {}

    def labels(self, *values: object, **kv: object):
        """The value for these label values (by position or by name), created at first use."""
        if kv:
            if values or set(kv) != set(self.labelnames):
                raise ValueError(f"{self.name} takes labels {list(self.labelnames)}, got {sorted(kv)}")
            values = tuple(kv[k] for k in self.labelnames)
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {list(self.labelnames)}, got {len(values)} values")
        key = tuple(str(v) for v in values)
        with self._lock:
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self._factory()
        return child

    def _only(self):
        if self.labelnames:
            raise ValueError(f"{self.name} has labels {list(self.labelnames)}: use .labels(...)")
        return self.labels()

    # Unlabelled use: forwarded to the single value.
    def inc(self, amount: float = 1.0) -> None:
        self._only().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._only().dec(amount)

    def set(self, value: float) -> None:
        self._only().set(value)

    def observe(self, value: float) -> None:
        self._only().observe(value)

    @property
    def value(self) -> float:
        return self._only().value

    def exposition(self) -> str:
        """The family in the text format: HELP, TYPE, then one line per sample."""
        lines = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        with self._lock:
            children = sorted(self._children.items())
        for values, child in children:
            for suffix, extra, v in child.samples():
                lines.append(f"{self.name}{suffix}{_labels_text(self.labelnames, values, extra)} {format_value(v)}")
        return "\n".join(lines) + "\n"


class Registry:
    """The metrics of one process, in registration order."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self._lock = threading.Lock()

    def _add(self, metric: Metric) -> Metric:
        with self._lock:
            if metric.name in self._metrics:
                raise ValueError(f"metric {metric.name} registered twice")
            self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Metric:
        """A counter; names end in `_total`. Unlabelled ones start at 0 in the exposition."""
        if not name.endswith("_total"):
            raise ValueError(f"counter names end in _total, got {name!r}")
        m = self._add(Metric("counter", name, help, labelnames, CounterValue))
        if not labelnames:
            m.labels()
        return m

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Metric:
        m = self._add(Metric("gauge", name, help, labelnames, GaugeValue))
        if not labelnames:
            m.labels()
        return m

    def histogram(
        self, name: str, help: str, buckets: Sequence[float] = LATENCY_BUCKETS, labelnames: Sequence[str] = ()
    ) -> Metric:
        """A histogram with these upper bounds (sorted, finite; +Inf is added)."""
        bounds = tuple(float(b) for b in buckets)
        if not bounds or list(bounds) != sorted(set(bounds)) or not all(math.isfinite(b) for b in bounds):
            raise ValueError(f"{name}: buckets must be finite, increasing and distinct, got {buckets}")
        m = self._add(Metric("histogram", name, help, labelnames, lambda: HistogramValue(bounds)))
        if not labelnames:
            m.labels()
        return m

    def exposition(self) -> str:
        """Every metric in the Prometheus text format (version 0.0.4); serve with `CONTENT_TYPE`."""
        with self._lock:
            metrics = list(self._metrics.values())
        return "".join(m.exposition() for m in metrics)


def _rss_bytes() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class ServerMetrics:
    """What `parley serve` exports on /metrics. The app and engine update the attributes; `exposition()` adds the
    process figures (CPU seconds, resident memory) at scrape time.

    Attributes:
        active_streams: gauge, open WebSocket streams (autoscale on it).
        streams: counter, streams started, by model and protocol ("parley": /v1/stream; "vosk": Vosk's, at /;
            "realtime": OpenAI's Realtime transcription, at /v1/realtime).
        audio_seconds: counter, seconds of audio processed, by model.
        chunk_latency: histogram, seconds from a chunk's last sample arriving to its results being sent, by model.
        batch_size: histogram, streams per encoder run, by model.
        errors: counter, error messages sent, by error code.
        transcribe_requests: counter, POST /v1/transcribe requests, by HTTP status.
        key_streams: gauge, open streams by API key account (its name in the keys file, else `key_id`: a hash, never
            the key; channels count), on servers with keys.
        key_audio_seconds: counter, seconds of audio received by account (streams and uploads), on servers with keys.
        api_keys: gauge, accepted API keys now (the keys file is read again when it changes; set at scrape time).
        key_file_stale: gauge, 1 while the keys file's last change was ignored (it did not read, or had no key) and
            the keys of before are served, else 0.
    """

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or Registry()
        r = self.registry
        self.start_time = time.time()
        self.active_streams = r.gauge("parley_active_streams", "open WebSocket streams")
        self.streams = r.counter("parley_streams_total", "streams started", ["model", "protocol"])
        self.audio_seconds = r.counter("parley_audio_seconds_total", "seconds of audio processed", ["model"])
        self.finalizes = r.counter("parley_finalizes_total", "finalize messages received", ["model"])
        self.stream_encodings = r.counter(
            "parley_stream_encodings_total", "streams started, by the audio encoding of their start", ["encoding"]
        )
        self.chunk_latency = r.histogram(
            "parley_chunk_latency_seconds",
            "time from a chunk's last sample arriving to its results being sent",
            LATENCY_BUCKETS,
            ["model"],
        )
        self.batch_size = r.histogram("parley_batch_size", "streams per encoder run", BATCH_BUCKETS, ["model"])
        self.errors = r.counter("parley_errors_total", "error messages sent to clients", ["code"])
        self.transcribe_requests = r.counter(
            "parley_transcribe_requests_total", "POST /v1/transcribe and /v1/audio/* requests by status", ["status"]
        )
        self.key_streams = r.gauge("parley_key_active_streams", "open streams by API key id", ["key"])
        self.key_audio_seconds = r.counter(
            "parley_key_audio_seconds_total", "seconds of audio received by API key id", ["key"]
        )
        self.api_keys = r.gauge("parley_api_keys", "accepted API keys (flags and the keys file as it is now)")
        self.key_file_stale = r.gauge(
            "parley_api_keys_file_stale", "1 while the keys file's last change was ignored and older keys are served"
        )
        self._cpu = r.counter("process_cpu_seconds_total", "user and system CPU time of the server process")
        self._rss = r.gauge("process_resident_memory_bytes", "resident memory of the server process")
        self._started = r.gauge("process_start_time_seconds", "start time of the process since the Unix epoch")
        self._started.set(self.start_time)

    def exposition(self) -> str:
        t = os.times()
        self._cpu.labels().set_total(t.user + t.system)
        rss = _rss_bytes()
        if rss is not None:
            self._rss.set(rss)
        return self.registry.exposition()
