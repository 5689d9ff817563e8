"""Manifests written by several processes at once (two `make` runs that both need `parley corpus head`'s output)."""

from __future__ import annotations

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
