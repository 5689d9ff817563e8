import hashlib
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from models.data import grammar
from models.data.corpus import MAX_REPEATS, CorpusConfig, _split_seed, build_corpus
from models.data.manifest import read_manifest
from models.data.voices import TEST_VARIANTS, VOICES, train_variants
from parley.audio import read_wav
from tests._tiny import TINY_CORPUS


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
    cfg = TINY_CORPUS
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


def test_balance_tops_up_rare_templates_with_train_sentences_and_new_voices(tiny_corpus: Path, tmp_path: Path) -> None:
    cfg = replace(TINY_CORPUS, min_per_template=3)
    build_corpus(tmp_path / "a", cfg, jobs=2)
    a = tmp_path / "a" / "en"
    # The four splits are those of the corpus built without balance; balance.jsonl comes on top.
    assert {k: v for k, v in _digest(tmp_path / "a").items() if "balance" not in k} == _digest(tiny_corpus)
    train, extra = read_manifest(a / "train.jsonl"), read_manifest(a / "balance.jsonl")
    templates: dict[str, str] = {}
    for s in grammar.generate("train", 200, seed=_split_seed(cfg, "en", "train")):  # the corpus's own draw
        templates.setdefault(s.text["en"], s.template)
    per_template = Counter(templates[u.text] for u in train)
    want = sum(min(3 - n, (MAX_REPEATS - 1) * n) for n in per_template.values() if n < 3)
    assert len(extra) == want > 0
    assert Counter(templates[u.text] for u in train + extra) == {t: max(n, 3) for t, n in per_template.items()}
    spoken = {u.text: u for u in train}
    for u in extra:
        assert u.id.startswith("en-balance-") and u.text in spoken, u.id
        variant = u.voice.split("/")[0].partition("+")[2]
        assert variant not in TEST_VARIANTS, u.voice
    # Mostly another voice than the train rendering of the same sentence (the voice is drawn, not excluded).
    assert sum(u.voice != spoken[u.text].voice for u in extra) >= 0.8 * len(extra)
    # Interrupted: balance's manifest gone. The rebuild gives the same files.
    before = _digest(tmp_path / "a")
    (a / "balance.jsonl").unlink()
    build_corpus(tmp_path / "a", cfg, jobs=1)
    assert _digest(tmp_path / "a") == before


def _zh_job(out: Path, split: str):
    """The zh train job whose sentence and voice made espeak-ng segfault in a 20 h build (index 3515, seed 0)."""
    from models.data.corpus import _jobs

    cfg = replace(TINY_CORPUS, languages=("zh",))
    job = _jobs(cfg, out, "zh", "train", 3516)[3515]
    assert job.sentence.text["zh"] == "今天 是 五月 二十九 号 星期一"
    assert job.voice.name == "cmn-latn-pinyin+rob/p34/pr79/r140/g0"
    return replace(job, split=split)


def test_a_sentence_espeak_crashes_on_is_spoken_by_another_voice_of_its_split(tmp_path: Path, monkeypatch) -> None:
    import models.data.corpus as corpus
    from models.data.espeak import SynthesisCrashError

    real = corpus.synthesize
    crashing: set[str] = set()

    def synthesize(text: str, **kwargs):  # the voices in `crashing` crash, as espeak-ng does on some pairs
        name = f"{kwargs['voice']}+{kwargs['variant']}"
        if name in crashing:
            raise SynthesisCrashError(f"died on {text!r} with {name}")
        return real(text, **kwargs)

    monkeypatch.setattr(corpus, "synthesize", synthesize)
    for split in ("train", "test"):
        job = _zh_job(tmp_path / split, split)
        crashing.clear()
        crashing.add(f"{job.voice.espeak_voice}+{job.voice.variant}")
        first = corpus.synthesize_utterance(job)
        again = corpus.synthesize_utterance(replace(job, out=str(tmp_path / f"{split}-again")))
        assert first.voice != job.voice.name and first.voice == again.voice, "another voice, the same each run"
        assert first.duration > 0.5 and [w.word for w in first.words] == job.sentence.text["zh"].split()
        variant = first.voice.split("/")[0].split("+")[1]
        assert (variant in TEST_VARIANTS) == (split == "test"), "the fallback voice keeps train and test apart"
    crashing.update(f"{v}+{x}" for v in VOICES["zh"] for x in [*TEST_VARIANTS, *train_variants()])
    with pytest.raises(SynthesisCrashError):
        corpus.synthesize_utterance(replace(job, out=str(tmp_path / "all-crash")))


def test_the_real_espeak_crash_still_gives_an_utterance(tmp_path: Path) -> None:
    from models.data.corpus import synthesize_utterance

    utt = synthesize_utterance(_zh_job(tmp_path, "train"))
    assert utt.duration > 0.5 and Path(utt.audio).exists()


def test_a_corpus_built_into_a_relative_folder_reads_from_anywhere(tmp_path: Path, monkeypatch) -> None:
    """`parley corpus build --out data/corpus` (the Makefile's DATA=data) wrote audio paths that pointed nowhere."""
    monkeypatch.chdir(tmp_path)
    build_corpus("data/corpus", replace(TINY_CORPUS, hours=0.001, dev=1, test=1, test_unseen=1), jobs=1)
    monkeypatch.chdir("/")
    for split in grammar.SPLITS:
        utts = read_manifest(tmp_path / "data" / "corpus" / "en" / f"{split}.jsonl")
        assert utts and all(Path(u.audio).is_file() for u in utts), [u.audio for u in utts]
