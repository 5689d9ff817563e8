"""The open-domain speech corpus (models/data/opencorpus.py) and the augmentations aimed at real audio."""

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.data import corpus, opencorpus
from models.data.augment import AugmentConfig, augment, augment_logged, codec, telephone, vtlp
from models.data.manifest import Utterance, first_hours, read_manifest
from models.data.voices import TEST_VARIANTS

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "please turn on the lights in the kitchen",
    "what time does the museum open on sundays",
    "she sells sea shells by the sea shore",
    "my brother bought a new bicycle last week",
    "the train to london leaves at half past nine",
]


def _text_corpus(root: Path) -> Path:
    for split in ("train", "dev", "test"):
        path = root / "en" / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            for i, s in enumerate(SENTENCES):
                rec = {"id": f"en-{split}-{i}", "language": "en", "text": s, "display": s.capitalize() + ".",
                       "source": "ab"[i % 2], "document": f"{split}/{i}", "license": "MIT", "split": split}  # fmt: skip
                f.write(json.dumps(rec) + "\n")
    return root


CFG = opencorpus.OpenCorpusConfig(languages=("en",), hours={"en": 0.004}, dev=3, test=5, seed=0)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != "summary.json":
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def test_open_corpus_splits_engines_voices_and_is_reproducible(tmp_path: Path) -> None:
    text = _text_corpus(tmp_path / "text")
    opencorpus.build(tmp_path / "a", text, CFG, jobs=2)
    test = read_manifest(tmp_path / "a" / "en" / "test.jsonl")
    held = read_manifest(tmp_path / "a" / "en" / "test_engine.jsonl")
    train = read_manifest(tmp_path / "a" / "en" / "train.jsonl")
    assert len(test) == len(held) == 5 and sum(u.duration for u in train) >= 0.004 * 3600
    assert {u.engine for u in held} == {"rhvoice"} and "rhvoice" not in {u.engine for u in train + test}
    assert [u.text for u in held] == [u.text for u in test], "the held-out engine reads the same test sentences"
    for u in test:
        if u.engine == "espeak":
            assert u.voice.split("/")[0].split("+")[1] in TEST_VARIANTS, u.voice
    for u in train:
        assert u.source and u.document.startswith("train/") and u.license == "MIT" and u.display
        assert len(u.words) == len(u.text.split()) and Path(u.audio).exists()
        if u.engine == "espeak":
            assert u.voice.split("/")[0].split("+")[1] not in TEST_VARIANTS, u.voice
    # one process or two, fresh or resumed: the same bytes
    opencorpus.build(tmp_path / "b", text, CFG, jobs=1)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    (tmp_path / "b" / "en" / "train.jsonl").unlink()
    opencorpus.build(tmp_path / "b", text, CFG, jobs=1)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    # a larger --hours extends the train split: the same first utterances, read back, not synthesized again
    before = {u.id: Path(u.audio).stat().st_mtime_ns for u in train}
    opencorpus.build(tmp_path / "a", text, replace(CFG, hours={"en": 0.008}), jobs=2)
    grown = read_manifest(tmp_path / "a" / "en" / "train.jsonl")
    assert [u.to_dict() for u in grown[: len(train)]] == [u.to_dict() for u in train]
    assert len(grown) > len(train) and sum(u.duration for u in grown) >= 0.008 * 3600
    assert {u.id: Path(u.audio).stat().st_mtime_ns for u in grown[: len(train)]} == before
    # and the smaller build's train split is the grown one's first hours (what `parley corpus head` cuts)
    assert [u.to_dict() for u in first_hours(grown, 0.004)] == [u.to_dict() for u in train]
    assert (
        corpus.main(
            [
                "head",
                "--manifest",
                str(tmp_path / "a" / "en" / "train.jsonl"),
                "--hours",
                "0.004",
                "--out",
                str(tmp_path / "a" / "en" / "first.jsonl"),
            ]
        )
        == 0
    )
    assert (tmp_path / "a" / "en" / "first.jsonl").read_bytes() == (tmp_path / "b" / "en" / "train.jsonl").read_bytes()
    (tmp_path / "a" / "en" / "first.jsonl").unlink()
    assert not list((tmp_path / "a" / "en" / "wav").rglob("*.json")), "sidecars removed again"
    report = opencorpus.summarize(tmp_path / "a")
    assert report["languages"]["en"]["test_engine"]["engine_hours"].keys() == {"rhvoice"}
    assert report["disk_gb"] > 0


def test_round_robin_takes_sources_in_turn() -> None:
    recs = [{"source": "big", "text": f"b{i}"} for i in range(10)] + [{"source": "small", "text": "s0"}]
    order = [r["source"] for r in opencorpus.round_robin(recs, "0")]
    assert order[:2] in (["big", "small"], ["small", "big"]) and order.count("small") == 1
    assert opencorpus.round_robin(recs, "0") == opencorpus.round_robin(list(reversed(recs)), "0")[:0] + \
        opencorpus.round_robin(recs, "0")  # fmt: skip


def test_hours_spec() -> None:
    assert opencorpus._parse_hours("50", ["en", "de"]) == {"en": 50.0, "de": 50.0}
    assert opencorpus._parse_hours("en=50,de=14", ["en", "de"]) == {"en": 50.0, "de": 14.0}


def _tone(sr: int = 16000, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(round(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 5000 * t)).astype(np.float32)


def _band_power(x: np.ndarray, lo: float, hi: float, sr: int = 16000) -> float:
    f = np.fft.rfftfreq(x.size, 1 / sr)
    p = np.abs(np.fft.rfft(x)) ** 2
    return float(p[(f >= lo) & (f < hi)].sum() / p.sum())


def test_telephone_keeps_the_phone_band_only() -> None:
    x = _tone()
    y = telephone(x, 16000)
    assert y.shape == x.shape and _band_power(x, 4000, 8000) > 0.2 and _band_power(y, 4000, 8000) < 0.01


def test_codec_drops_highs_and_vtlp_moves_the_spectrum() -> None:
    x = _tone()
    y = codec(x, 16000, np.random.default_rng(0), cutoff_hz=4000)
    assert y.shape == x.shape and _band_power(y, 4500, 8000) < 0.01
    z = vtlp(x, 1.1)
    f = np.fft.rfftfreq(x.size, 1 / 16000)
    peak = f[np.argmax(np.abs(np.fft.rfft(z))[(f > 100) & (f < 400)]) + np.flatnonzero(f > 100)[0]]
    assert z.shape == x.shape and abs(peak - 242) < 8, peak


def test_augment_logs_what_it_did_and_old_configs_are_unchanged() -> None:
    x = _tone(seconds=0.5)
    seen = set()
    for seed in range(40):
        y, applied = augment_logged(x, 16000, np.random.default_rng(seed), AugmentConfig.open_domain())
        assert y.shape == x.shape and np.abs(y).max() <= 1.0
        seen.update(a.split(":")[0] for a in applied)
    assert {"vtlp", "reverb", "noise", "telephone", "codec", "gain"} <= seen, seen
    # a config without the new effects draws exactly as before they existed
    a = augment(x, 16000, np.random.default_rng(5), AugmentConfig())
    b, applied = augment_logged(x, 16000, np.random.default_rng(5), AugmentConfig())
    assert np.array_equal(a, b) and not {"vtlp", "telephone", "codec"} & set(applied)
    with pytest.raises(ValueError):
        AugmentConfig(telephone_prob=2.0)


def test_voices_option_rejects_espeak_and_unknown_names(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = ["--text", str(tmp_path / "text"), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit):
        opencorpus.main([*base, "--engines", "espeak,festival", "--voices", "rab"])
    assert "leave espeak out" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        opencorpus.main([*base, "--engines", "festival", "--voices", "rab,bob"])
    err = capsys.readouterr().err
    assert "unknown voices ['bob']" in err and "rab" in err


def test_first_hours_stops_where_a_build_stops(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    utts = [
        Utterance(id=f"u{i}", audio=f"/a/{i}.wav", duration=d, language="en", text="x")
        for i, d in enumerate([1800.0, 1800.0, 900.0, 2700.0])
    ]
    assert [u.id for u in first_hours(utts, 1.0)] == ["u0", "u1"]  # the one that reaches the target is kept
    assert [u.id for u in first_hours(utts, 1.1)] == ["u0", "u1", "u2"]
    assert len(first_hours(utts, 2.0)) == 4
    with pytest.raises(ValueError, match=r"holds 2\.000 h, fewer than the 2\.5 h"):
        first_hours(utts, 2.5)
    with pytest.raises(ValueError, match="must be > 0"):
        first_hours(utts, 0)
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps(u.to_dict()) + "\n" for u in utts))
    for args, why in (
        (["--hours", "3"], "fewer than the 3 h"),
        (["--hours", "1", "--out", str(manifest)], "must not be the manifest"),
    ):
        out = ["--out", str(tmp_path / "o.jsonl")] if "--out" not in args else []
        with pytest.raises(SystemExit):
            corpus.main(["head", "--manifest", str(manifest), *args, *out])
        assert why in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()
