"""Reading manifests for training: target texts must be normalized, ids unique where a feature cache keys by them;
audio that cannot be read is named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from models.data.manifest import load_audio, read_training_manifests


def _manifest(path: Path, lines: list[dict]) -> Path:
    base = {"duration": 1.0, "language": "en", "translations": {}}
    rows = [json.dumps({**base, **d}, ensure_ascii=False) + "\n" for d in lines]
    path.write_text(rows[0] + "\n" + "".join(rows[1:]), encoding="utf-8")  # a blank line: line numbers count it
    return path


def test_normalized_targets_pass_and_tsot_channel_changes_are_allowed(tmp_path: Path) -> None:
    train = _manifest(
        tmp_path / "train.jsonl",
        [
            {"id": "a", "audio": "a.wav", "text": "set a timer", "translations": {"de": "stell einen timer"}},
            {"id": "mix-1", "audio": "m.wav", "text": "hi <cc> yes <cc> there"},
            {"id": "mix-2", "audio": "n.wav", "text": "<cc> yes"},
            {"id": "z", "audio": "z.wav", "text": "你好世界", "language": "zh"},
        ],
    )
    dev = _manifest(tmp_path / "dev.jsonl", [{"id": "d", "audio": "d.wav", "text": "it's well-known"}])
    got_train, got_dev = read_training_manifests([train], [dev], {"text", "de"}, unique_ids=True)
    assert [u.id for u in got_train] == ["a", "mix-1", "mix-2", "z"] and [u.id for u in got_dev] == ["d"]
    assert got_train[1].text == "hi <cc> yes <cc> there", "the t-SOT label as written"
    assert got_train[0].audio == str(tmp_path / "a.wav")


@pytest.mark.parametrize(
    "line, targets, message",
    [
        ({"text": "IT'S THE END, MR. SMITH."}, {"text"}, r"dev\.jsonl:3: the text of utterance 'x' is not normalized"),
        ({"text": "hi <cc> Yes"}, {"text"}, r"'hi <cc> Yes' \(normalized: 'hi <cc> yes'\)"),
        ({"text": "a  b"}, {"text"}, r"normalized: 'a b'"),
        ({"text": "ok", "translations": {"de": "Guten Tag!"}}, {"de"}, r"the 'de' translation of utterance 'x'"),
    ],
)
def test_a_target_that_is_not_normalized_fails_naming_manifest_and_line(
    tmp_path: Path, line: dict, targets: set[str], message: str
) -> None:
    train = _manifest(tmp_path / "train.jsonl", [{"id": "a", "audio": "a.wav", "text": "fine"}])
    dev = _manifest(
        tmp_path / "dev.jsonl", [{"id": "ok", "audio": "b.wav", "text": "fine"}, {"id": "x", "audio": "c.wav", **line}]
    )
    with pytest.raises(ValueError, match=message) as e:
        read_training_manifests([train], [dev], targets)
    assert "parley corpus import" in str(e.value) and "normalize_text" in str(e.value)


def test_untrained_translations_are_not_checked(tmp_path: Path) -> None:
    train = _manifest(
        tmp_path / "t.jsonl", [{"id": "a", "audio": "a.wav", "text": "ok", "translations": {"de": "Ja!"}}]
    )
    assert len(read_training_manifests([train], [], {"text"})[0]) == 1
    with pytest.raises(ValueError, match="'de' translation"):
        read_training_manifests([train], [], {"de"})


def test_one_id_for_two_audio_files_fails_where_a_feature_cache_keys_by_id(tmp_path: Path) -> None:
    """Two listings imported apart (spk1/001.wav, spk2/001.wav) both give the id "001"."""
    spk1 = _manifest(tmp_path / "spk1.jsonl", [{"id": "001", "audio": "spk1/001.wav", "text": "one"}])
    spk2 = _manifest(tmp_path / "spk2.jsonl", [{"id": "001", "audio": "spk2/001.wav", "text": "two"}])
    with pytest.raises(ValueError, match=r"spk2\.jsonl:1: utterance id '001' is already used at .*spk1\.jsonl:1") as e:
        read_training_manifests([spk1], [spk2], unique_ids=True)
    assert "--id-prefix" in str(e.value)
    assert len(read_training_manifests([spk1, spk2], [], unique_ids=False)[0]) == 2, "only a cache needs them apart"
    # The same utterance twice (a manifest repeated to weigh it, dev drawn from train) is one audio file: fine.
    assert len(read_training_manifests([spk1, spk1], [spk1], unique_ids=True)[0]) == 2


def test_load_audio_errors_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.flac"
    soundfile.write(good, 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32), 16000)
    data = good.read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 2 + 40])
    (tmp_path / "text.wav").write_text("not audio")
    for name in ("cut.flac", "text.wav", "missing.wav"):
        with pytest.raises(RuntimeError, match=f"cannot read audio .*{name}"):
            load_audio(str(tmp_path / name))
