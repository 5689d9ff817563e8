import json
import random
from pathlib import Path

import numpy as np
import pytest

from models.data.manifest import load_audio, read_manifest
from models.train.dataset import UtteranceDataset
from models.train.feature_cache import LOG_FLOOR, FeatureCache, build_feature_cache
from models.train.perturb import AugmentSettings, speed_perturb
from parley.features import SAMPLE_RATE, compute_fbank


def _utts(corpus: Path, n: int = 6):
    return read_manifest(corpus / "en" / "train.jsonl")[:n]


def test_cached_features_are_the_audio_features_at_every_speed(tiny_corpus, tmp_path) -> None:
    utts = _utts(tiny_corpus)
    cache = build_feature_cache(utts, tmp_path / "fc", progress=False)
    assert cache.missing(utts) == [] and set(cache.speed_factors) == {0.9, 1.0, 1.1}
    for u in utts[:3]:
        for speed in cache.speed_factors:
            feats, floor = cache.features(u, speed)
            ref = compute_fbank(speed_perturb(load_audio(u.audio), speed), SAMPLE_RATE)
            assert feats.shape == ref.shape and feats.dtype == np.float32
            err = float(np.abs(feats - ref).max())
            assert err < 0.02, f"{u.id} speed {speed}: float16 storage off by {err}"  # float16: 3 digits
            assert floor >= 0
    with pytest.raises(KeyError, match=r"speed 1\.2"):
        cache.features(utts[0], 1.2)
    other = read_manifest(tiny_corpus / "en" / "dev.jsonl")[0]
    assert cache.missing([other]) == [other]
    with pytest.raises(KeyError, match=other.id):
        cache.features(other)


def test_background_is_the_fbank_of_scaled_noise(tiny_corpus, tmp_path) -> None:
    # Every fbank step before the log is linear in power: noise at RMS L has log-mel = unit noise's + 2 ln L.
    noise = np.random.default_rng(3).standard_normal(SAMPLE_RATE).astype(np.float32)
    unit = compute_fbank(noise, SAMPLE_RATE)
    for level in (0.1, 1e-3, 1e-5):
        expected = np.maximum(unit + 2 * np.log(level), LOG_FLOOR)
        assert np.abs(compute_fbank(noise * level, SAMPLE_RATE) - expected).max() < 1e-3
    cache = build_feature_cache(_utts(tiny_corpus, 1), tmp_path / "fc", progress=False)
    silence = cache.background(50, 0.0, random.Random(0))
    assert np.array_equal(silence, compute_fbank(np.zeros(8000, np.float32), SAMPLE_RATE)[:50])
    quiet, loud = cache.background(200, 1e-3, random.Random(0)), cache.background(200, 1e-1, random.Random(0))
    assert quiet.shape == (200, 80)
    assert abs(float(loud.mean() - quiet.mean()) - 2 * np.log(100)) < 0.05  # same noise, 40 dB louder
    assert cache.background(cache.noise.shape[0] + 10, 0.01, random.Random(0)).shape[0] == cache.noise.shape[0] + 10


def test_padding_in_the_feature_domain_matches_the_audio_domain(tiny_corpus, tmp_path) -> None:
    u = _utts(tiny_corpus, 1)[0]
    cache = build_feature_cache([u], tmp_path / "fc", progress=False)
    feats, floor = cache.features(u)
    cfg = AugmentSettings(pad_prob=1.0, pad_max_s=1.0)
    kinds = {"noise": 0, "zeros": 0}
    for seed in range(30):
        out = cache.pad(feats, floor, cfg, random.Random(seed))
        assert feats.shape[0] <= out.shape[0] <= feats.shape[0] + 2 * 100 + 2
        start = next(i for i in range(out.shape[0] - feats.shape[0] + 1) if np.array_equal(out[i], feats[0]))
        assert np.array_equal(out[start : start + feats.shape[0]], feats)
        pad = np.concatenate([out[:start], out[start + feats.shape[0] :]])
        if pad.shape[0] < 10:
            continue
        kinds["zeros" if (pad == LOG_FLOOR).all() else "noise"] += 1
    assert kinds["noise"] > kinds["zeros"] > 0, kinds
    assert cache.pad(feats, floor, AugmentSettings(pad_prob=0.0), random.Random(0)) is feats


def test_build_resumes_after_an_interruption_and_refuses_other_settings(tiny_corpus, tmp_path) -> None:
    utts = _utts(tiny_corpus)
    whole = build_feature_cache(utts, tmp_path / "whole", progress=False, jobs=2)  # processes: the same bytes
    part = tmp_path / "part"
    build_feature_cache(utts[:4], part, progress=False)
    # An interruption in the middle of utterance 4: its frames half written, its index line cut short.
    lines = (part / "index.jsonl").read_text().splitlines()
    (part / "index.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])
    size = (part / "feats.f16").stat().st_size
    with open(part / "feats.f16", "r+b") as f:
        f.truncate(size - 1000)
    resumed = build_feature_cache(utts, part, progress=False)
    assert resumed.missing(utts) == []
    for u in utts:
        for s in whole.speed_factors:
            assert np.array_equal(resumed.features(u, s)[0], whole.features(u, s)[0])
    assert len((part / "index.jsonl").read_text().splitlines()) == len(utts)
    meta = json.loads((part / "meta.json").read_text())
    assert meta["speed_factors"] == [0.9, 1.0, 1.1]
    with pytest.raises(ValueError, match="was made with"):
        build_feature_cache(utts, part, speed_factors=(1.0,), progress=False)
    with pytest.raises(FileNotFoundError):
        FeatureCache(tmp_path / "nothing")


def test_dataset_reads_the_cache_like_the_audio(tiny_corpus, tmp_path) -> None:
    utts = _utts(tiny_corpus)
    cache = build_feature_cache(utts, tmp_path / "fc", progress=False)
    audio = UtteranceDataset(utts, lambda _: [1, 2])
    cached = UtteranceDataset(utts, lambda _: [1, 2], cache=cache)
    for i in range(len(utts)):
        a, c = audio[i][0], cached[i][0]
        assert a.shape == c.shape and float((a - c).abs().max()) < 0.02
    aug = UtteranceDataset(utts, lambda _: [1, 2], augment=AugmentSettings(), seed=1, cache=cache)
    lengths = set()
    for epoch in range(12):
        aug.epoch = epoch
        lengths.add(aug[0][0].shape[0])
    assert len(lengths) > 3, "speed and padding should vary the length from epoch to epoch"
    with pytest.raises(ValueError, match="pad_seconds"):
        UtteranceDataset(utts, lambda _: [1], cache=cache, pad_seconds=0.5)
    with pytest.raises(ValueError, match="speed factor"):
        UtteranceDataset(utts, lambda _: [1], augment=AugmentSettings(speed_factors=(0.8, 1.0)), cache=cache)


def _noise_wav(path: Path, seconds: float, seed: int) -> str:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.1 * np.random.default_rng(seed).standard_normal(round(seconds * SAMPLE_RATE)).astype(np.float32)
    soundfile.write(path, x, SAMPLE_RATE)
    return str(path)


def test_build_refuses_one_id_for_two_audio_files(tmp_path) -> None:
    """Two listings imported apart both give "001": keyed by id, one utterance's features would be missing."""
    from models.data.manifest import Utterance

    a = Utterance("001", _noise_wav(tmp_path / "spk1" / "001.wav", 0.5, 1), 0.5, "en", "one")
    b = Utterance("001", _noise_wav(tmp_path / "spk2" / "001.wav", 0.7, 2), 0.7, "en", "two")
    with pytest.raises(ValueError, match=r"utterance id '001' names two audio files, .*spk1.*spk2.*--id-prefix"):
        build_feature_cache([a, b], tmp_path / "fc", progress=False)
    cache = build_feature_cache([a, a], tmp_path / "fc", progress=False)  # the same utterance twice is fine
    assert cache.missing([a]) == []


@pytest.mark.parametrize("jobs", [1, 2])
def test_build_names_the_audio_file_it_cannot_read(tmp_path, jobs) -> None:
    from models.data.manifest import Utterance

    good = Utterance("good", _noise_wav(tmp_path / "good.wav", 0.5, 1), 0.5, "en", "fine")
    (tmp_path / "broken.flac").write_text("not audio")
    bad = Utterance("bad", str(tmp_path / "broken.flac"), 0.5, "en", "broken")
    with pytest.raises(RuntimeError, match=r"cannot read audio .*broken\.flac"):
        build_feature_cache([good, bad], tmp_path / "fc", progress=False, jobs=jobs)


def test_dataset_names_the_audio_file_it_cannot_read(tmp_path) -> None:
    from models.data.manifest import Utterance

    (tmp_path / "broken.flac").write_text("not audio")
    ds = UtteranceDataset([Utterance("bad", str(tmp_path / "broken.flac"), 0.5, "en", "x")], lambda t: [3])
    with pytest.raises(RuntimeError, match=r"cannot read audio .*broken\.flac"):
        ds[0]
