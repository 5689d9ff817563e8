"""Every synthesizer (models/data/engines.py) speaks and times its words; DTW timing transfer (models/data/align.py);
the two defects of the old pipeline: the Mandarin voice and mbrola's sample rate."""

import random
import subprocess
from itertools import pairwise

import numpy as np
import pytest

from models.data import engines, espeak
from models.data.align import dtw_path, transfer_timings
from models.data.engines import EngineVoice, available, sample_engine_voice, speak, voices_for

TEXT = {"en": "the quick brown fox jumps over the lazy dog", "it": "il cane corre verso la casa grande"}


def _check(syn: espeak.Synthesis, text: str) -> None:
    assert [w.word for w in syn.words] == text.split()
    for a, b in pairwise(syn.words):
        assert a.start <= b.start, (a, b)
    for w in syn.words:
        assert 0.0 <= w.start < w.end <= syn.duration + 1e-6, (w, syn.duration)
    assert 1.0 < syn.duration < 6.0, syn.duration
    assert np.sqrt(np.mean(syn.samples.astype(np.float64) ** 2)) > 0.01, "audible"


@pytest.mark.parametrize("engine", engines.ENGINES)
def test_every_engine_speaks_and_times_every_word(engine: str) -> None:
    if not available(engine):
        pytest.fail(f"{engine} is not installed: .ci/system-deps installs it")
    lang = "en"
    split = "test" if engine in engines.HELD_OUT_ENGINES else "train"
    voice = sample_engine_voice(lang, engine, random.Random(0), split)
    syn = speak(TEXT[lang], voice)
    _check(syn, TEXT[lang])
    # The words are where the speech is: "fox" (4th) starts after "the quick" and before "lazy dog" ends.
    w = syn.words
    assert w[1].end <= w[3].start + 0.15 and w[3].end <= w[7].start + 0.15, [(x.word, x.start, x.end) for x in w]


def test_the_same_voice_and_text_give_the_same_samples() -> None:
    for engine in ("espeak", "pico", "festival"):
        voice = sample_engine_voice("en", engine, random.Random(3), "train")
        a, b = speak(TEXT["en"], voice), speak(TEXT["en"], voice)
        assert a.sample_rate == b.sample_rate and np.array_equal(a.samples, b.samples), engine


def test_voices_are_held_out_per_engine_and_rhvoice_entirely() -> None:
    for engine, langs in engines.VOICES.items():
        for lang, (train, test) in langs.items():
            if train != test:
                assert not set(train) & set(test), (engine, lang)
    assert voices_for("rhvoice", "en", "train") == voices_for("rhvoice", "en", "dev") == ()
    with pytest.raises(ValueError, match="no 'en' voice"):
        sample_engine_voice("en", "rhvoice", random.Random(0), "train")
    rng = random.Random(0)
    test_pitches = [sample_engine_voice("de", "pico", rng, "test").pitch for _ in range(200)]
    low, high = engines.PITCH_TRAIN
    assert all(not low <= p <= high for p in test_pitches), "a one-voice language holds out a pitch range"


def test_mbrola_audio_comes_at_the_voice_rate_not_espeak_rate() -> None:
    syn = espeak.synthesize("hello my friend", voice="mb-us1")
    assert syn.sample_rate == 16000 != espeak.sample_rate()
    # played at the reported rate the sentence takes as long as espeak-ng's own voice (not 1.38x shorter)
    ref = espeak.synthesize("hello my friend", voice="en-us")
    assert 0.6 < syn.duration / ref.duration < 1.5, (syn.duration, ref.duration)


def test_the_mandarin_voice_speaks_mandarin_phonemes() -> None:
    """cmn-latn-pinyin gives Mandarin phonemes with tones; plain cmn switched to English for most hanzi."""
    out = subprocess.run(
        ["espeak-ng", "-q", "-x", "-v", "cmn-latn-pinyin", "打开 厨房 的 灯"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "(en)" not in out and "kh'ai55" in out and "ts.h'u35" in out, out
    from models.data.voices import VOICES

    assert VOICES["zh"] == ("cmn-latn-pinyin",)
    syn = espeak.synthesize("打开 厨房 的 灯", voice="cmn-latn-pinyin")
    assert [w.word for w in syn.words] == ["打开", "厨房", "的", "灯"] and 0.8 < syn.duration < 3.0


def test_dtw_path_is_monotone_and_recovers_a_known_warp() -> None:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((60, 8))
    idx = np.clip(np.round(np.arange(90) / 1.5).astype(int), 0, 59)  # the target is the reference 1.5x slower
    target = ref[idx] + 0.05 * rng.standard_normal((90, 8))
    norm = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    path = dtw_path(norm(target), norm(ref))
    assert np.all(np.diff(path) >= 0) and path[0] == 0 and path[-1] == 59
    assert np.abs(path - idx).max() <= 1, np.abs(path - idx).max()


def test_transferred_timings_beat_spreading_words_by_length() -> None:
    """festival's word timings are exact: the DTW transfer from espeak-ng is much closer to them than the naive
    answer (the duration shared among the words by their length), and within 200 ms everywhere."""
    errs, naive = [], []
    for text, voice in [
        ("please turn on the lights in the kitchen and set a timer", "kal"),
        ("my brother bought a new bicycle last week and rode it to the sea", "slt"),
    ]:
        exact = speak(text, EngineVoice("festival", "en", voice, rate=0.9))
        derived = transfer_timings(text, "en", exact.samples, exact.sample_rate)
        errs += [abs(a.start - b.start) for a, b in zip(exact.words, derived, strict=True)]
        lengths = np.array([len(w) + 1 for w in text.split()])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) / lengths.sum() * exact.duration
        naive += [abs(a.start - s) for a, s in zip(exact.words, starts, strict=True)]
    assert np.mean(errs) < 0.6 * np.mean(naive) and max(errs) < 0.2, (np.round(errs, 3), np.mean(naive))


def test_synth_command_takes_an_engine(tmp_path, capsys) -> None:
    import json

    from parley.audio import read_wav

    out = tmp_path / "o.wav"
    assert engines.main(["good morning everyone", "--engine", "pico", "--out", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    _x, sr = read_wav(out)
    assert sr == 16000 and info["voice"].startswith("pico:en-US") and len(info["words"]) == 3
    with pytest.raises(SystemExit):
        engines.main(["ciao", "--engine", "rhvoice", "--language", "it", "--out", str(out)])


def test_a_hung_engine_is_an_engine_error(monkeypatch) -> None:
    monkeypatch.setattr(engines, "_TIMEOUT_S", 0.01)
    with pytest.raises(engines.EngineError, match="hung"):
        engines._run(["sleep", "5"])
    voice = EngineVoice("pico", "en", "en-US")
    assert voice.name == "pico:en-US/r1.00/p1.00"


def test_flite_is_a_training_only_engine_outside_the_default_corpus() -> None:
    from models.data.opencorpus import OpenCorpusConfig, split_engines

    assert "flite" in engines.ENGINES and "flite" not in engines.DEFAULT_ENGINES
    assert OpenCorpusConfig().engines == engines.DEFAULT_ENGINES, "the seed's corpus keeps its draws"
    assert voices_for("flite", "en", "test") == () and len(voices_for("flite", "en", "train")) == 4
    cfg = OpenCorpusConfig(engines=("espeak", "flite"))
    assert split_engines(cfg, "en", "test")[0] == ["espeak"]
    assert split_engines(cfg, "en", "train")[0] == ["espeak", "flite"]
    # rate and pitch reach the synthesizer
    slow = speak(TEXT["en"], EngineVoice("flite", "en", "rms", rate=0.8))
    fast = speak(TEXT["en"], EngineVoice("flite", "en", "rms", rate=1.25))
    assert slow.duration > 1.3 * fast.duration, (slow.duration, fast.duration)
    low = speak(TEXT["en"], EngineVoice("flite", "en", "kal16", pitch=0.8))  # the diphone voice; cg voices keep theirs
    high = speak(TEXT["en"], EngineVoice("flite", "en", "kal16", pitch=1.25))
    assert not np.array_equal(low.samples[: high.samples.size], high.samples[: low.samples.size])


@pytest.mark.parametrize("name", engines.EXTRA_VOICES["festival"]["en"])
def test_training_only_voices_speak_and_only_when_named(name: str) -> None:
    from models.data.opencorpus import OpenCorpusConfig, split_engines

    assert name not in voices_for("festival", "en", "train") and name not in voices_for("festival", "en", "test")
    assert voices_for("festival", "en", "train", (name,)) == (name,)
    assert voices_for("festival", "en", "test", (name,)) == (), "never a test voice"
    rng = random.Random(1)
    drawn = {sample_engine_voice("en", "festival", rng, "train", (name, "kal")).voice for _ in range(40)}
    assert drawn == {name, "kal"}
    cfg = OpenCorpusConfig(engines=("festival", "pico"), voices=(name,))
    assert split_engines(cfg, "en", "train")[0] == ["festival"], "pico has no voice of that name"
    syn = speak(TEXT["en"], EngineVoice("festival", "en", name, rate=1.0))
    _check(syn, TEXT["en"])
    slow = speak(TEXT["en"], EngineVoice("festival", "en", name, rate=0.8))
    assert slow.duration > 1.1 * syn.duration, (slow.duration, syn.duration)


@pytest.mark.parametrize("name", engines.EXTRA_VOICES["mbrola"]["en"])
def test_accented_mbrola_speakers_read_english_for_training_only(name: str) -> None:
    assert name not in voices_for("mbrola", "en", "train") and name not in voices_for("mbrola", "en", "test")
    assert voices_for("mbrola", "en", "train", (name,)) == (name,)
    assert voices_for("mbrola", "en", "test", (name,)) == (), "never a test voice"
    assert name in engines.known_voices()
    voice = sample_engine_voice("en", "mbrola", random.Random(3), "train", (name,))
    assert voice.voice == name and engines.RATE[0] <= voice.rate <= engines.RATE[1]
    syn = speak(TEXT["en"], voice)
    _check(syn, TEXT["en"])
    # another person than the engine's English speakers: the same text and prosody give other samples
    us1 = speak(TEXT["en"], EngineVoice("mbrola", "en", "mb-us1", rate=voice.rate, pitch=voice.pitch))
    n = min(syn.samples.size, us1.samples.size)
    assert not np.allclose(syn.samples[:n], us1.samples[:n], atol=1e-3)
