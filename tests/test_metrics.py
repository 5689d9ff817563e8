import math
import re
import threading

import pytest

from server.metrics import BATCH_BUCKETS, Registry, ServerMetrics, format_value

# A sample line of the text format: name, optional {label="value",...}, a value.
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition; fails on a line that is neither a comment nor a well-formed sample."""
    assert text.endswith("\n")
    samples = {}
    types = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            types[name] = kind
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        assert any(name == t or name.startswith(t + "_") for t in types), f"{name} has no TYPE line before it"
        key = (name, tuple(_LABEL.findall(labels)))
        assert key not in samples, f"duplicate sample {key}"
        samples[key] = float(value.replace("+Inf", "inf"))
    return samples


def test_exposition_parses() -> None:
    reg = Registry()
    c = reg.counter("x_errors_total", "errors by code", ["code"])
    g = reg.gauge("x_active", "open streams")
    h = reg.histogram("x_latency_seconds", "latency", [0.1, 0.5, 1.0], ["model"])
    c.labels(code="bad_audio").inc()
    c.labels("bad_audio").inc(2)
    c.labels(code='we"ird\\\n').inc()
    g.inc(3)
    g.dec()
    for v in (0.05, 0.1, 0.3, 2.0):
        h.labels(model="en").observe(v)
    s = parse(reg.exposition())
    assert s[("x_errors_total", (("code", "bad_audio"),))] == 3
    assert s[("x_errors_total", (("code", 'we\\"ird\\\\\\n'),))] == 1
    assert s[("x_active", ())] == 2
    buckets = {dict(k[1])["le"]: v for k, v in s.items() if k[0] == "x_latency_seconds_bucket"}
    assert buckets == {"0.1": 2, "0.5": 3, "1": 3, "+Inf": 4}
    assert s[("x_latency_seconds_count", (("model", "en"),))] == 4
    assert s[("x_latency_seconds_sum", (("model", "en"),))] == pytest.approx(2.45)


def test_unlabelled_metrics_show_zero_and_labelled_need_labels() -> None:
    reg = Registry()
    reg.counter("a_total", "a")
    lab = reg.counter("b_total", "b", ["k"])
    assert parse(reg.exposition()) == {("a_total", ()): 0}
    with pytest.raises(ValueError):
        lab.inc()
    with pytest.raises(ValueError):
        lab.labels(other="x")
    with pytest.raises(ValueError):
        reg.counter("a_total", "again")
    with pytest.raises(ValueError):
        reg.counter("no_suffix", "x")
    with pytest.raises(ValueError):
        reg.gauge("bad-name", "x")
    with pytest.raises(ValueError):
        reg.histogram("h", "x", [1.0, 0.5])
    with pytest.raises(ValueError):
        reg.counter("c_total", "c").inc(-1)


def test_format_value() -> None:
    assert [format_value(v) for v in (3.0, 0.25, math.inf, -math.inf, math.nan)] == ["3", "0.25", "+Inf", "-Inf", "NaN"]


def test_threads_do_not_lose_counts() -> None:
    reg = Registry()
    c = reg.counter("n_total", "n")

    def work() -> None:
        for _ in range(2000):
            c.inc()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.value == 8000


def test_server_metrics() -> None:
    m = ServerMetrics()
    m.active_streams.inc()
    m.streams.labels(model="en-small", protocol="vosk").inc()
    m.audio_seconds.labels(model="en-small").inc(1.5)
    m.chunk_latency.labels(model="en-small").observe(0.12)
    m.batch_size.labels(model="en-small").observe(3)
    m.errors.labels(code="bad_audio").inc()
    s = parse(m.exposition())
    assert s[("parley_active_streams", ())] == 1
    assert s[("parley_audio_seconds_total", (("model", "en-small"),))] == 1.5
    assert s[("parley_batch_size_bucket", (("model", "en-small"), ("le", "4")))] == 1
    assert len([k for k in s if k[0] == "parley_batch_size_bucket"]) == len(BATCH_BUCKETS) + 1
    assert s[("process_cpu_seconds_total", ())] > 0
    assert s[("process_start_time_seconds", ())] > 1.6e9
