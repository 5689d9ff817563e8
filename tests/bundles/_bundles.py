"""What the end-to-end tests of the committed bundles share: where the bundles are, a server over them, and the
figures their cards report."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.settings import Settings
from tests.test_server import Running

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


def committed(name: str, what: str) -> Path:
    """The committed bundle `name`. A missing one fails the test (it is never skipped); `what` names it."""
    folder = BUNDLES / name
    if not (folder / "bundle.json").is_file():
        pytest.fail(f"the {what} bundle is missing: {folder}")
    return folder


@contextlib.contextmanager
def serving(name: str) -> Iterator[Running]:
    """A server over the committed bundles with its default settings (endpointing on), `name` its default model."""
    r = Running(Settings(bundles=BUNDLES, default_model=name, port=0, log_level="warning"))
    try:
        yield r
    finally:
        r.stop()


def words(text: str) -> list[str]:
    """Lower-case words, punctuation dropped (apostrophes kept)."""
    return re.sub(r"[^\w' ]", " ", text.lower()).split()


def card_wer(bundle: Path, manifest: str = "/test.jsonl") -> float:
    """The card's greedy WER on the test manifest whose path ends in `manifest`, at the bundle's chunk size and with
    the bundle's own blank penalty (the worse of the rows with and without silence around the utterances, when the
    card has both)."""
    meta = json.loads((bundle / "bundle.json").read_text())
    chunk = str(meta["streaming"]["chunk_ms"])
    penalty = meta["heads"][0].get("blank_penalty", 0.0)
    rows = [
        r
        for r in meta["measured"]["wer"]
        if r["manifest"].endswith(manifest)
        and str(r["chunk_ms"]) == chunk
        and r.get("search", "greedy") == "greedy"
        and r.get("blank_penalty", 0.0) == penalty
    ]
    assert rows, f"{bundle}/bundle.json reports no greedy test WER at {chunk} ms with blank penalty {penalty}"
    return max(r["wer"] for r in rows)
