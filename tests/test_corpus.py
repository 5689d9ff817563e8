import hashlib
import json
from pathlib import Path

from models import grammar
from models.augment import AugmentConfig
from models.corpus import CorpusConfig, build_corpus
from models.manifest import read_manifest
from models.voices import TEST_VARIANTS
from server.audio import read_wav


def _digest(folder: Path) -> dict[str, str]:
    """Relative path -> sha1 of every manifest and WAV under `folder`."""
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.suffix in (".jsonl", ".wav")
    }


def test_manifests_audio_and_word_timings(tiny_corpus: Path) -> None:
    for split in grammar.SPLITS:
        utts = read_manifest(tiny_corpus / "en" / f"{split}.jsonl")
        assert utts, f"{split} is empty"
        for u in utts:
            x, rate = read_wav(u.audio)
            assert rate == 16000 and abs(x.size / rate - u.duration) < 1e-3
            assert u.language == "en" and set(u.translations) == set(grammar.LANGUAGES) - {"en"}
            assert [w.word for w in u.words] == u.text.split(), u.id
            starts = [w.start for w in u.words]
            assert starts == sorted(starts) and all(0 <= w.start < w.end <= u.duration + 1e-6 for w in u.words)
            variant = u.voice.split("/")[0].partition("+")[2]
            assert (variant in TEST_VARIANTS) == split.startswith("test"), f"{split} voice {u.voice}"
    train = {u.text for u in read_manifest(tiny_corpus / "en" / "train.jsonl")}
    test = {u.text for u in read_manifest(tiny_corpus / "en" / "test.jsonl")}
    assert not train & test
    summary = json.loads((tiny_corpus / "summary.json").read_text())
    assert summary["en"]["train"]["hours"] >= 0.012


def test_same_seed_same_corpus_whatever_the_processes_and_resume(tiny_corpus: Path, tmp_path: Path) -> None:
    cfg = CorpusConfig(
        languages=("en",), hours=0.012, dev=6, test=6, test_unseen=6, seed=0, augment=AugmentConfig.disabled()
    )
    build_corpus(tmp_path / "a", cfg, jobs=1)
    assert _digest(tmp_path / "a") == _digest(tiny_corpus)
    # An interrupted build: a split's manifest and some of its audio missing. Rebuilding restores them exactly.
    (tmp_path / "a" / "en" / "dev.jsonl").unlink()
    for wav in sorted((tmp_path / "a" / "en" / "wav" / "dev").rglob("*.wav"))[:3]:
        wav.unlink()
    build_corpus(tmp_path / "a", cfg, jobs=2)
    assert _digest(tmp_path / "a") == _digest(tiny_corpus)


def test_augmented_corpus_differs_but_is_reproducible(tmp_path: Path) -> None:
    cfg = CorpusConfig(languages=("de",), hours=0.002, dev=2, test=2, test_unseen=2, seed=3)
    build_corpus(tmp_path / "a", cfg, jobs=2)
    build_corpus(tmp_path / "b", cfg, jobs=1)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    utts = read_manifest(tmp_path / "a" / "de" / "train.jsonl")
    assert utts and all(u.language == "de" and "en" in u.translations for u in utts)
