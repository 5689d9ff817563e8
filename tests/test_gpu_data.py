"""benchmarks/gpu_data.py: the portable slice benchmarks/gpu_check.sh trains on (Opus audio the loader reads back)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.data.manifest import load_audio, read_manifest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_data", ROOT / "benchmarks" / "gpu_data.py")
gpu_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_data)


def _corpus(folder: Path, name: str, n: int) -> Path:
    (folder / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with open(folder / f"{name}.jsonl", "w") as f:
        for i in range(n):
            seconds = 1.0 + (i % 3)
            t = np.arange(int(16000 * seconds)) / 16000
            x = 0.3 * np.sin(2 * np.pi * (150 + 20 * i) * t) + 0.01 * rng.standard_normal(t.size)
            sf.write(folder / "wav" / f"{name}{i}.wav", x.astype(np.float32), 16000)
            words = [{"word": "word", "start": 0.1, "end": 0.4}]
            rec = {"id": f"{name}{i}", "audio": f"wav/{name}{i}.wav", "duration": seconds, "language": "en",
                   "text": f"word {i}", "voice": "espeak:en", "words": words}  # fmt: skip
            f.write(json.dumps(rec) + "\n")
    return folder / f"{name}.jsonl"


def test_the_slice_is_a_random_draw_as_opus_that_the_loader_reads(tmp_path: Path) -> None:
    train, dev = _corpus(tmp_path / "c", "train", 8), _corpus(tmp_path / "c", "dev", 4)
    out = tmp_path / "slice"
    assert gpu_data.main(["--train", str(train), "--dev", str(dev), "--out", str(out), "--train-utts", "5",
                          "--dev-utts", "2", "--max-duration", "3.5"]) == 0  # fmt: skip
    utts = read_manifest(out / "train.jsonl")
    assert len(utts) == 5 and len(read_manifest(out / "dev.jsonl")) == 2
    assert all(u.duration < 3.5 and u.audio.endswith(".ogg") for u in utts)
    first = json.loads((out / "train.jsonl").read_text().splitlines()[0])
    assert "words" not in first and first["voice"] == "espeak:en"  # fields kept, word timings dropped
    x = load_audio(utts[0].audio)
    assert abs(len(x) / 16000 - utts[0].duration) < 0.05 and np.abs(x).max() > 0.1
    # the same seed draws the same utterances
    again = tmp_path / "again"
    gpu_data.main(["--train", str(train), "--dev", str(dev), "--out", str(again), "--train-utts", "5",
                   "--dev-utts", "2", "--max-duration", "3.5"])  # fmt: skip
    assert [u.id for u in read_manifest(again / "train.jsonl")] == [u.id for u in utts]
    with pytest.raises(SystemExit, match="asked for 50"):
        gpu_data.main(["--train", str(train), "--dev", str(dev), "--out", str(tmp_path / "x"), "--train-utts", "50"])
