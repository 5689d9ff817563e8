"""The runtime runs on its own dependencies: `make serve` installs only pyproject's `dependencies` (no torch, no
kaldi-native-fbank, no sherpa-onnx, no test tools), so a module of the runtime that imports a train or dev extra,
even lazily on the path that loads a bundle, leaves the server with no model. A fresh interpreter in which those
packages cannot be imported loads every committed bundle, transcribes with the default one and builds the app."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Import names of the train, dev, data and bench extras (and what they pull in) that the runtime must not need.
NOT_RUNTIME = (
    "torch",
    "onnx",
    "kaldi_native_fbank",
    "sherpa_onnx",
    "tqdm",
    "matplotlib",
    "yaml",
    "num2words",
    "mimesis",
    "chatterbot_corpus",
    "jieba",
    "snownlp",
    "httpx",
    "pytest",
    "openai",
    "av",
    "deepgram",
    "faster_whisper",
    "pocketsphinx",
)

SCRIPT = """
import sys
for name in NAMES:
    sys.modules[name] = None  # import raises ImportError
import asyncio
import numpy as np
from server.app import create_app
from server.bundle import load_bundle
from server.engine import Engine
from server.service import bundle_folders
from server.settings import Settings
import clients.stream, clients.loadtest, parley.cli, parley.formats, parley.opusstream, server.realtime

names = []
for folder in bundle_folders(ROOT / "bundles"):
    names.append(load_bundle(folder, providers="cpu", threads=1).name)
engine = Engine(load_bundle(ROOT / "bundles" / "en-open", providers="cpu", threads=1))

async def run():
    await engine.start()
    try:
        t = np.arange(16000) / 16000
        return await engine.recognize((0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000, "greedy")
    finally:
        await engine.close()

finals = asyncio.run(run())
create_app(Settings(bundles=ROOT / "bundles"))
print("OK", sorted(names), len(finals))
"""


def test_the_runtime_needs_only_its_dependencies() -> None:
    runtime = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not any(d.split(">")[0].split("=")[0].replace("-", "_") in NOT_RUNTIME for d in runtime)
    code = f"NAMES = {NOT_RUNTIME!r}\nfrom pathlib import Path\nROOT = Path({str(ROOT)!r})\n" + SCRIPT
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("OK ['en-open', 'en-small', 'en-tsot-small', 'sm2-mini']"), out.stdout
