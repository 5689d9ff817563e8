"""The deployment recipe: deploy/nginx.conf in front of two real `parley serve` processes (streams spread over both;
one stopped with SIGTERM drains without losing its stream's final), the Kubernetes manifests, and the Dockerfile
(no Docker daemon needed: its instructions are checked, and its HEALTHCHECK command is run against a server).

nginx is Debian's `nginx` package (bash .ci/system-deps installs it); it runs as a child process with its own
configuration, pid file and logs in a temporary folder, as an unprivileged user.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import yaml
from websockets.asyncio.client import connect

from clients.stream import StreamResult, encode_audio, run_stream
from tests.test_export import SR, synthetic_audio

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
STARTUP_S = 30.0


# ---- Processes: parley serve, nginx ----


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """A `parley serve` process on a free port."""

    def __init__(self, bundles: Path, log: Path) -> None:
        self.port = _free_port()
        self.http = f"http://127.0.0.1:{self.port}"
        self.log = log
        args = [sys.executable, "-m", "parley.cli", "serve", "--bundles", str(bundles), "--port", str(self.port)]
        args += ["--intra-op-threads", "1", "--log-level", "info", "--drain-timeout-s", "20"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with log.open("wb") as out:
            self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert self.process.poll() is None, f"parley serve exited:\n{self.log.read_text()}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.http + "/readyz", timeout=2).status_code == 200:
                    return
            assert time.monotonic() < deadline, f"parley serve not ready after {STARTUP_S} s:\n{self.log.read_text()}"
            time.sleep(0.1)

    def metric(self, name: str) -> float:
        for line in httpx.get(self.http + "/metrics", timeout=5).text.splitlines():
            if line.split(" ")[0] == name:
                return float(line.split(" ")[1])
        raise AssertionError(f"no {name} in /metrics")

    def streams(self) -> float:
        return self.metric('parley_streams_total{model="tiny-en",protocol="parley"}')

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def find_nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def nginx_config(site: str, ports: list[int], listen: int) -> str:
    """deploy/nginx.conf with these upstream servers and listening port."""
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=2 fail_timeout=10s;\n" for p in ports)
    site, n = re.subn(r"(?m)^    server 127\.0\.0\.1:\d+ .*;\n(?:    server 127\.0\.0\.1:\d+ .*;\n)*", servers, site)
    assert n == 1, "deploy/nginx.conf's upstream block has changed shape: update this test"
    site, n = re.subn(r"(?m)^    listen 80;$", f"    listen 127.0.0.1:{listen};", site)
    assert n == 1, "deploy/nginx.conf's listen line has changed shape: update this test"
    return site


@contextlib.contextmanager
def nginx(ports: list[int]) -> Iterator[str]:
    """nginx with deploy/nginx.conf in front of `ports`, in the foreground, as a child process; yields its URL."""
    exe = find_nginx()
    assert exe is not None, "nginx is needed: install Debian's nginx package (bash .ci/system-deps does, as CI does)"
    folder = Path(tempfile.mkdtemp(prefix="parley-nginx-"))
    listen = _free_port()
    (folder / "parley.conf").write_text(nginx_config((DEPLOY / "nginx.conf").read_text(), ports, listen))
    temp = "".join(
        f"    {kind}_temp_path {folder}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (folder / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log warn;\n"
        f"events {{ worker_connections 256; }}\n"
        f"http {{\n    access_log {folder}/access.log;\n{temp}    include {folder}/parley.conf;\n}}\n"
    )
    user: dict = {}
    if os.geteuid() == 0:  # never run it as root: drop to nobody (CI containers run tests as root)
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        for p in folder.iterdir():
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
        user = {"user": nobody.pw_uid, "group": nobody.pw_gid}
    args = [exe, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")]
    check = subprocess.run([*args, "-t"], capture_output=True, text=True, **user)
    assert check.returncode == 0, f"nginx -t refused the configuration:\n{check.stderr}"
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **user)
    url = f"http://127.0.0.1:{listen}"
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, f"nginx exited: {process.stderr.read().decode()}"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", listen), timeout=1):
                break
            assert time.monotonic() < deadline, "nginx did not come up"
            time.sleep(0.05)
        yield url
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful: workers finish their requests
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        shutil.rmtree(folder, ignore_errors=True)


def _transcript(http: str, x: np.ndarray) -> str:
    r = httpx.post(
        http + "/v1/transcribe?sample_rate=16000&encoding=s16le",
        content=encode_audio(x, "s16le"),
        headers={"content-type": "application/octet-stream"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()["text"]


# ---- nginx in front of two servers ----


def test_nginx_spreads_streams_and_a_draining_server_keeps_its_final(tiny_bundles: Path, tmp_path: Path) -> None:
    servers = [Serve(tiny_bundles, tmp_path / f"serve-{i}.log") for i in range(2)]
    try:
        for s in servers:
            s.wait_ready()
        with nginx([s.port for s in servers]) as http:
            ws = http.replace("http://", "ws://") + "/v1/stream"
            assert httpx.get(http + "/").status_code == 200, "the page, through nginx"
            assert httpx.get(http + "/metrics").status_code == 404, "per-process metrics stay off the balancer"

            # Four streams at once: least_conn gives each server two.
            clips = [synthetic_audio(1.0, seed) for seed in range(4)]

            async def four() -> list[StreamResult]:
                return await asyncio.gather(*(run_stream(ws, x, SR, speed=1) for x in clips))

            results = asyncio.run(four())
            assert all(r.ok for r in results), [r.error for r in results]
            counts = [s.streams() for s in servers]
            assert counts == [2, 2], f"streams per server: {counts}"
            for r, x in zip(results, clips, strict=True):
                assert r.text == _transcript(http, x), "a stream's finals, and the same audio's transcript via nginx"

            # A stream is open on one server when that server is told to stop: it drains, the stream ends whole.
            x = synthetic_audio(3.0, 7)

            async def drain() -> tuple[StreamResult, StreamResult, int, list[int]]:
                long = asyncio.create_task(run_stream(ws, x, SR, chunk_ms=100, speed=1))
                await asyncio.sleep(1.0)
                active = [await asyncio.to_thread(s.metric, "parley_active_streams") for s in servers]
                assert sorted(active) == [0, 1], f"open streams per server: {active}"
                victim = active.index(1)
                servers[victim].process.send_signal(signal.SIGTERM)
                ready = []
                for _ in range(50):
                    ready.append(
                        await asyncio.to_thread(lambda: httpx.get(servers[victim].http + "/readyz").status_code)
                    )
                    if ready[-1] == 503:
                        break
                    await asyncio.sleep(0.05)
                # Meanwhile a new stream through nginx goes to the other server (least_conn) and is served.
                other = await run_stream(ws, synthetic_audio(1.0, 8), SR, speed=0)
                return await long, other, victim, ready

            long, other, victim, ready = asyncio.run(drain())
            assert ready[-1] == 503, "/readyz turns 503 while draining"
            assert long.ok and long.close_code == 1000, long.error
            assert long.finals and long.finals[-1]["end"] == 3.0, "every final, to the end of the audio"
            survivor = servers[1 - victim]
            assert long.text == _transcript(survivor.http, x)
            assert other.ok, other.error
            # uvicorn re-raises the signal once it has shut down, so the exit status is SIGTERM's.
            assert servers[victim].process.wait(15) in (0, -signal.SIGTERM)
            log = servers[victim].log.read_text()
            assert "draining: waiting" in log and "Finished server process" in log and "Traceback" not in log, log

            # The other WebSocket protocols pass the balancer too: OpenAI's Realtime transcription, Deepgram's
            # /v1/listen and Vosk's at /.
            async def handshakes() -> tuple[dict, dict, dict]:
                base = http.replace("http://", "ws://")
                async with connect(base + "/v1/realtime") as realtime:
                    created = json.loads(await realtime.recv())
                async with connect(base + "/v1/listen?encoding=linear16&sample_rate=16000") as listen:
                    await listen.send(json.dumps({"type": "CloseStream"}))
                    metadata = [json.loads(m) async for m in listen][-1]  # after the results, if any
                async with connect(base + "/") as vosk:
                    await vosk.send(encode_audio(synthetic_audio(0.3, 10), "s16le"))
                    reply = json.loads(await vosk.recv())
                return created, metadata, reply

            created, metadata, reply = asyncio.run(handshakes())
            assert created["type"] == "session.created" and "partial" in reply, (created, reply)
            assert metadata["type"] == "Metadata", metadata

            # With one server gone, nginx sends everything to the other.
            before = survivor.streams()
            again = [asyncio.run(run_stream(ws, synthetic_audio(0.5, 9), SR, speed=0)) for _ in range(2)]
            assert all(r.ok for r in again), [r.error for r in again]
            assert survivor.streams() == before + 2
    finally:
        for s in servers:
            s.stop()


# ---- Kubernetes ----


def _manifests() -> dict[str, list[dict]]:
    return {
        p.name: [d for d in yaml.safe_load_all(p.read_text()) if d] for p in sorted((DEPLOY / "k8s").glob("*.yaml"))
    }


def test_kubernetes_manifests() -> None:
    docs = _manifests()
    kinds = {d["kind"]: d for ds in docs.values() for d in ds if "kind" in d}
    assert {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "PodMonitor"} <= set(kinds)

    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    port = c["ports"][0]["containerPort"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["PARLEY_HOST"] == "0.0.0.0" and int(env["PARLEY_PORT"]) == port
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # Draining fits in the grace period: preStop's pause, then the server's drain, then a margin.
    pause = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] >= pause + float(env["PARLEY_DRAIN_TIMEOUT_S"]) + 10
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0

    service = kinds["Service"]
    assert service["spec"]["selector"] == kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    notes = kinds["Ingress"]["metadata"]["annotations"]
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600

    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == kinds["Deployment"]["metadata"]["name"]
    (metric,) = hpa["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == "parley_active_streams"
    (rule,) = docs["prometheus-adapter.yaml"][0]["rules"]["custom"]
    assert "parley_active_streams" in rule["seriesQuery"] and rule["name"]["as"] == "parley_active_streams"
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}


def test_the_autoscaling_metric_is_what_the_server_exports() -> None:
    from server.metrics import ServerMetrics

    text = ServerMetrics().exposition()
    assert re.search(r"(?m)^# TYPE parley_active_streams gauge$", text), text[:500]


# ---- The Dockerfile ----


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        word, _, rest = text.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends in a continuation line"
    return out


def test_dockerfile() -> None:
    steps = dockerfile_instructions(ROOT / "Dockerfile")
    known = {
        "ARG",
        "FROM",
        "ENV",
        "RUN",
        "WORKDIR",
        "COPY",
        "USER",
        "EXPOSE",
        "HEALTHCHECK",
        "STOPSIGNAL",
        "ENTRYPOINT",
    }
    assert {k for k, _ in steps} <= known, {k for k, _ in steps} - known
    args = dict(re.match(r"(\w+)=(\S+)", v).groups() for k, v in steps if k == "ARG" and "=" in v)
    froms = [v for k, v in steps if k == "FROM"]
    assert froms == ["${BASE}"] and re.fullmatch(
        r"nvidia/cuda:(\d+)\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+", args["BASE"]
    )
    env = {}
    for k, v in steps:
        if k == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(v)))
    assert env["PARLEY_HOST"] == "0.0.0.0" and env["PARLEY_BUNDLES"] == "/app/bundles"
    copies = [shlex.split(v) for k, v in steps if k == "COPY"]
    sources = [s for c in copies for s in c[:-1]]
    assert "bundles" in sources, "the bundles are baked in"
    for s in sources:
        assert (ROOT / s).exists() or s == "bundles", f"COPY {s}: no such file in the repository"
    users = [v for k, v in steps if k == "USER"]
    assert users and users[-1] not in ("root", "0"), "the server runs as a non-root user"
    assert json.loads(next(v for k, v in steps if k == "ENTRYPOINT")) == ["parley", "serve"]
    health = next(v for k, v in steps if k == "HEALTHCHECK")
    assert "/healthz" in health and "curl" not in health
    # The system libraries the runtime loads with ctypes: Opus and AAC streams, and `parley hotwords learn`'s speech.
    apt = {w for k, v in steps if k == "RUN" and "apt-get install" in v for w in shlex.split(v)}
    assert {"libopus0", "libfaad2", "espeak-ng"} <= apt, apt
    # The CUDA major of the base image is the one the pinned onnxruntime-gpu was built for.
    cuda = int(re.match(r"nvidia/cuda:(\d+)", args["BASE"]).group(1))
    import onnxruntime

    if onnxruntime.__version__ == args["ORT_VERSION"]:
        lib = Path(onnxruntime.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
        if lib.is_file():
            majors = {int(m) for m in re.findall(rb"libcublasLt\.so\.(\d+)", lib.read_bytes())}
            assert majors == {cuda}, (
                f"onnxruntime-gpu {args['ORT_VERSION']} links cuBLAS {majors}, base has CUDA {cuda}"
            )


def test_dockerfile_healthcheck_command(tiny_bundles: Path, tmp_path: Path) -> None:
    """The image's HEALTHCHECK, run as Docker would, against a running server and against nothing."""
    health = next(v for k, v in dockerfile_instructions(ROOT / "Dockerfile") if k == "HEALTHCHECK")
    command = json.loads(health[health.index("CMD") + 3 :].strip())
    assert command[0] == "python3"
    command[0] = sys.executable
    server = Serve(tiny_bundles, tmp_path / "serve.log")
    try:
        server.wait_ready()
        ok = subprocess.run(command, env={**os.environ, "PARLEY_PORT": str(server.port)}, capture_output=True)
        assert ok.returncode == 0, ok.stderr
    finally:
        server.stop()
    down = subprocess.run(command, env={**os.environ, "PARLEY_PORT": str(_free_port())}, capture_output=True)
    assert down.returncode != 0


def test_dockerignore_keeps_what_the_image_needs() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    ignored = {p for p in ignored if not p.startswith("#")}
    needed = {s for k, v in dockerfile_instructions(ROOT / "Dockerfile") if k == "COPY" for s in shlex.split(v)[:-1]}
    assert not needed & ignored, needed & ignored
    assert ".venv" in ignored and ".git" in ignored
