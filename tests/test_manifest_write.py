"""Writing manifests: by several processes at once (two `make` runs that both need `parley corpus head`'s output), and
with audio paths given relative to the working directory (the corpus builders' `--out data/corpus`)."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

from models.data.manifest import Utterance, read_manifest, write_manifest


def _write(path: str, tag: str, rounds: int) -> None:
    utts = [Utterance(f"{tag}-{i}", f"/wav/{tag}-{i}.wav", 1.0, "en", "word " * 40) for i in range(2000)]
    for _ in range(rounds):
        write_manifest(path, utts)


def test_processes_writing_one_manifest_at_once_each_leave_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "first8h.jsonl"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write, args=(str(path), tag, 5)) for tag in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0], "a writer failed (its temporary file renamed by another)"
    utts = read_manifest(path)
    assert len(utts) == 2000 and len({u.id.split("-")[0] for u in utts}) == 1, "one writer's whole file"
    assert not list(tmp_path.glob("*.tmp")), "no temporary file left behind"


def test_audio_paths_relative_to_the_working_directory_are_stored_relative_to_the_manifest(
    tmp_path: Path, monkeypatch
) -> None:
    """`parley corpus build --out data/corpus` hands write_manifest paths like data/corpus/en/wav/x.wav."""
    tmp_path = tmp_path.resolve()  # what os.getcwd() gives back
    monkeypatch.chdir(tmp_path)
    wav = Path("data/corpus/en/wav/x.wav")
    wav.parent.mkdir(parents=True)
    wav.write_bytes(b"")
    (tmp_path / "elsewhere.wav").write_bytes(b"")
    utts = [Utterance("a", str(wav), 1.0, "en", "a"), Utterance("b", "elsewhere.wav", 1.0, "en", "b")]
    write_manifest("data/corpus/en/train.jsonl", utts)
    lines = [json.loads(x) for x in (tmp_path / "data/corpus/en/train.jsonl").read_text().splitlines()]
    assert [d["audio"] for d in lines] == ["wav/x.wav", str(tmp_path / "elsewhere.wav")]
    monkeypatch.chdir("/")
    assert [u.audio for u in read_manifest(tmp_path / "data/corpus/en/train.jsonl")] == [
        str(tmp_path / "data/corpus/en/wav/x.wav"),
        str(tmp_path / "elsewhere.wav"),
    ]
