"""Dynamic mixing for t-SOT training (models/train/mixing.py): fresh mixtures every epoch, reproducible per seed and
epoch, labelled like `parley mix`'s, batched by each epoch's own durations, and trainable end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm
import torch

from models.data.manifest import load_audio, read_manifest
from models.data.mixtures import MixConfig, mix_audio, mixture_sources, plan_mixtures, speaker_of
from models.data.tsot import serialize
from models.train.dataset import DurationBatchSampler
from models.train.mixing import MixingDataset
from models.train.train import TrainConfig, train
from parley.contract import CHANNEL_CHANGE
from parley.features import SAMPLE_RATE, FbankConfig, compute_fbank
from tests._tiny import tiny_train_config

ROOT = Path(__file__).resolve().parents[1]
EN_BPE = ROOT / "models" / "lang" / "en" / "bpe.model"


@pytest.fixture(scope="module")
def sources(tiny_corpus: Path):
    return read_manifest(tiny_corpus / "en" / "train.jsonl")


@pytest.fixture(scope="module")
def sp() -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(EN_BPE))


def test_speakers_are_voices_without_their_prosody() -> None:
    assert speaker_of("mbrola:mb-us1/r1.12/p1.05") == "mbrola:mb-us1"
    assert speaker_of("en-gb-x-gbcwmd+max/p32/pr62/r173/g0") == "en-gb-x-gbcwmd+max"
    voices = ["a/r1", "a/r2", "b/r1", "a/r3"]
    durations = [2.0, 2.5, 3.0, 1.5]
    base = plan_mixtures(durations, MixConfig(speaker="base").speakers(voices), 200, 0, MixConfig(p_single=0))
    for p in base:  # "a" at another rate is still "a": every pair has "b" in it
        assert 2 in (p.first, p.second), p
    loose = plan_mixtures(durations, MixConfig().speakers(voices), 200, 0, MixConfig(p_single=0))
    assert any(2 not in (p.first, p.second) for p in loose), "as voice strings, a/r1 and a/r2 may pair"
    with pytest.raises(ValueError):
        MixConfig(speaker="nobody")


def test_mixtures_are_fresh_every_epoch_and_the_same_for_the_same_seed(sources, sp) -> None:
    cfg = MixConfig(p_single=0.2, p_sequential=0.2, speaker="base")
    ds = MixingDataset(sources, sp.encode, cfg, n=12, seed=1)
    assert len(ds) == 12
    assert ds.plans(0) != ds.plans(1), "another epoch, other mixtures"
    assert MixingDataset(sources, sp.encode, cfg, n=12, seed=1).plans(1) == ds.plans(1), "same seed, same epoch"
    assert MixingDataset(sources, sp.encode, cfg, n=12, seed=2).plans(1) != ds.plans(1)
    assert ds.durations(1) == [p.duration for p in ds.plans(1)]
    ds.epoch = 1
    for i, p in enumerate(ds.plans(1)[:6]):
        feats, tokens, index = ds[i]
        second = None if p.second is None else sources[p.second]
        x2 = None if second is None else load_audio(second.audio)
        want = compute_fbank(mix_audio(p, load_audio(sources[p.first].audio), x2), SAMPLE_RATE, FbankConfig())
        assert index == i and feats.shape == want.shape and torch.allclose(feats, torch.from_numpy(want))
        label = serialize(mixture_sources(p, sources[p.first], second)).text
        assert ds.label(i) == label and tokens.tolist() == sp.encode(label)
        words = sources[p.first].text.split() + ([] if second is None else second.text.split())
        assert sorted(label.replace(CHANNEL_CHANGE, " ").split()) == sorted(words), "every word, once"
        if p.kind == "overlap":
            assert CHANNEL_CHANGE in label


def test_augmented_items_are_reproducible(sources, sp) -> None:
    from models.train.perturb import AugmentSettings

    ds = MixingDataset(sources, sp.encode, MixConfig(speaker="base"), n=4, seed=0, augment=AugmentSettings())
    a, b = ds[2], ds[2]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_sources_without_timings_or_talkers_are_refused(sources, sp) -> None:
    untimed = [type(u)(**{**u.__dict__, "words": []}) for u in sources[:3]]
    with pytest.raises(ValueError, match="word timings"):
        MixingDataset(untimed, sp.encode, MixConfig(), n=4)
    one_voice = [type(u)(**{**u.__dict__, "voice": "x/r1"}) for u in sources[:3]]
    with pytest.raises(ValueError, match="two talkers"):
        MixingDataset(one_voice, sp.encode, MixConfig(speaker="base"), n=4)
    with pytest.raises(ValueError):
        MixingDataset(sources, sp.encode, MixConfig(), n=0)


def test_the_sampler_batches_each_epoch_by_its_own_durations(sources, sp) -> None:
    ds = MixingDataset(sources, sp.encode, MixConfig(speaker="base"), n=40, seed=0)
    sampler = DurationBatchSampler(ds.durations(0), 12.0, seed=0, durations_of_epoch=ds.durations)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        durations = ds.durations(epoch)
        batches = list(sampler)
        assert sorted(i for b in batches for i in b) == list(range(40))
        assert all(len(b) == 1 or max(durations[i] for i in b) * len(b) <= 12.0 for b in batches)


def test_training_with_dynamic_mixing(tiny_corpus: Path, tmp_path: Path) -> None:
    cfg = tiny_train_config(tiny_corpus, EN_BPE, tmp_path / "exp", warmup_steps=2, epochs=2, dev_utts=2)
    cfg = TrainConfig(**{**cfg.__dict__, "augment": False, "mix_per_epoch": 8})
    result = train(cfg)
    log = [json.loads(x) for x in (tmp_path / "exp" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert result["step"] == len(losses) > 0 and all(np.isfinite(losses))
    saved = json.loads((tmp_path / "exp" / "train_config.json").read_text())
    assert saved["mix_per_epoch"] == 8 and saved["mix_speaker"] == "base"
    with pytest.raises(ValueError, match="feature-cache"):
        train(TrainConfig(**{**cfg.__dict__, "exp_dir": str(tmp_path / "b"), "feature_cache": str(tmp_path / "c")}))
