"""Shared fixtures: a tiny synthetic English corpus and tokenizer, and a tiny random bundle, built once per test
session (the committed bundles' server is in tests/bundles/conftest.py); the committed en-open bundle, and a sentence
it hears, for the tests of what the server does to its words."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """About 40 s of English train audio plus small dev/test sets, clean speech, built with the real builder."""
    from models.data.corpus import build_corpus
    from tests._tiny import TINY_CORPUS

    out = tmp_path_factory.mktemp("corpus")
    build_corpus(out, TINY_CORPUS, jobs=2)
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory) -> Path:
    """An English sentencepiece model (vocab 64) trained on grammar text."""
    from models.data import grammar
    from models.train.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("lang")
    texts = [s.text["en"] for s in grammar.generate("train", 400, seed=1)]
    return train_tokenizer(texts, out / "bpe", 64, "en")


@pytest.fixture(scope="session")
def tiny_bundles(tmp_path_factory) -> Path:
    """A bundles folder holding one tiny random English bundle, `tiny-en`, exported once per test session."""
    import shutil

    from tests.test_export import export_tiny_bundle

    root = tmp_path_factory.mktemp("tiny-bundles")
    folder = root / "bundles"
    folder.mkdir()
    shutil.move(export_tiny_bundle(root), folder / "tiny-en")
    return folder


ROOT = Path(__file__).resolve().parents[1]
SAID = "the code is one two three four five six"  # en-open hears it (a training voice; the tests are of the wiring)


@pytest.fixture(scope="session")
def en_open():
    """The committed default bundle, on the CPU, one thread."""
    from server.bundle import load_bundle

    return load_bundle(ROOT / "bundles" / "en-open", providers="cpu", threads=1)


@pytest.fixture(scope="session")
def code_speech():
    """`SAID` in a training voice of en-open: float32 samples at 16 kHz, and the rate."""
    from models.data.espeak import synthesize
    from parley.resample import resample

    syn = synthesize(SAID, voice="en-us", variant="m3", rate=160)
    return resample(syn.samples, syn.sample_rate, 16000), 16000


@pytest.fixture(scope="session")
def en_open_server():
    """`parley serve` on the committed bundles with en-open the default, in a thread (server defaults otherwise)."""
    from server.settings import Settings
    from tests.test_server import Running

    settings = Settings(
        bundles=ROOT / "bundles", default_model="en-open", port=0, intra_op_threads=1, log_level="warning"
    )
    r = Running(settings)
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="session")
def keyed(tiny_bundles: Path):
    """A server on the tiny bundles that takes one API key, "k1" (the refusals of keys, in each protocol's shape)."""
    from server.settings import Settings
    from tests.test_server import Running

    r = Running(Settings(bundles=tiny_bundles, port=0, api_keys=("k1",), log_level="warning"))
    try:
        yield r
    finally:
        r.stop()
