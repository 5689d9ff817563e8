import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from models.data.importers import import_jsonl, import_librispeech, main
from models.data.manifest import read_manifest

SAMPLE_RATE = 16000


def _write_audio(path: Path, seconds: float, seed: int = 0) -> float:
    """Writes a sine plus a little noise; returns the exact duration of the samples written."""
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    rng = np.random.default_rng(seed)
    audio = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(n)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio.astype(np.float32), SAMPLE_RATE)
    return n / SAMPLE_RATE


# speaker -> chapter -> [(utterance number, raw LibriSpeech text, seconds)]
_LIBRI = {
    "84": {"121123": [(0, "GO DO YOU HEAR", 0.50), (1, "BUT IN LESS THAN FIVE MINUTES THE STAIRCASE", 0.75)]},
    "1272": {
        "128104": [(0, "MISTER QUILTER IS THE APOSTLE", 0.40), (1, "NOR IS MISTER QUILTER'S MANNER", 0.30)],
        "135031": [
            (0, "BECAUSE YOU WERE SLEEPING INSTEAD OF CONQUERING", 0.60),
            (2, "HE'S WELL-KNOWN", 0.25),
        ],
    },
}


def _make_librispeech(root: Path) -> dict[str, tuple[str, float]]:
    """Writes the `_LIBRI` corpus as FLAC below `root`; returns {utt-id: (raw text, duration)}."""
    expected = {}
    for speaker, chapters in _LIBRI.items():
        for chapter, utts in chapters.items():
            folder = root / speaker / chapter
            lines = []
            for k, (num, text, seconds) in enumerate(utts):
                utt_id = f"{speaker}-{chapter}-{num:04d}"
                expected[utt_id] = (text, _write_audio(folder / f"{utt_id}.flac", seconds, seed=k))
                lines.append(f"{utt_id} {text}\n")
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))
    return expected


def test_import_librispeech(tmp_path):
    expected = _make_librispeech(tmp_path / "LibriSpeech" / "dev-clean")
    out = tmp_path / "manifests" / "dev.jsonl"
    n = import_librispeech(tmp_path / "LibriSpeech", out, progress=False)
    assert n == len(expected) == 6
    utts = read_manifest(out)
    assert [u.id for u in utts] == sorted(expected)
    for u in utts:
        text, duration = expected[u.id]
        assert abs(u.duration - duration) < 1e-3, (u.id, u.duration, duration)
        assert u.text == text.lower()
        assert u.language == "en" and u.translations == {} and u.words == []
        assert u.voice == u.id.split("-")[0]
        assert os.path.isabs(u.audio) and Path(u.audio).is_file()
        assert Path(u.audio).name == f"{u.id}.flac"
    by_id = {u.id: u for u in utts}
    assert by_id["1272-135031-0002"].text == "he's well-known"
    assert by_id["1272-128104-0001"].text == "nor is mister quilter's manner"


def test_import_librispeech_output_is_deterministic(tmp_path):
    _make_librispeech(tmp_path / "corpus")
    import_librispeech(tmp_path / "corpus", tmp_path / "a.jsonl", progress=False)
    import_librispeech(tmp_path / "corpus", tmp_path / "b.jsonl", progress=False)
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()


def test_import_librispeech_accepts_wav(tmp_path):
    folder = tmp_path / "corpus" / "7" / "9"
    duration = _write_audio(folder / "7-9-0000.wav", 0.2)
    (folder / "7-9.trans.txt").write_text("7-9-0000 HELLO THERE\n")
    assert import_librispeech(tmp_path / "corpus", tmp_path / "m.jsonl", progress=False) == 1
    [u] = read_manifest(tmp_path / "m.jsonl")
    assert u.audio.endswith("7-9-0000.wav") and abs(u.duration - duration) < 1e-3
    # Stored relative to the manifest's folder, which holds the corpus; read back absolute.
    assert json.loads((tmp_path / "m.jsonl").read_text())["audio"] == "corpus/7/9/7-9-0000.wav"
    assert os.path.isabs(u.audio)


def test_import_librispeech_skips_missing_audio(tmp_path, capsys):
    expected = _make_librispeech(tmp_path / "corpus")
    (tmp_path / "corpus" / "84" / "121123" / "84-121123-0001.flac").unlink()
    n = import_librispeech(tmp_path / "corpus", tmp_path / "m.jsonl", progress=False)
    assert n == len(expected) - 1
    err = capsys.readouterr().err
    assert "skipped 1 of 6" in err and "84-121123-0001" in err
    assert "84-121123-0001" not in {u.id for u in read_manifest(tmp_path / "m.jsonl")}


def test_import_librispeech_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        import_librispeech(tmp_path / "nowhere", tmp_path / "m.jsonl", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no LibriSpeech transcripts"):
        import_librispeech(tmp_path / "empty", tmp_path / "m.jsonl", progress=False)
    folder = tmp_path / "noaudio" / "1" / "2"
    folder.mkdir(parents=True)
    (folder / "1-2.trans.txt").write_text("1-2-0000 HELLO\n")
    with pytest.raises(ValueError, match="nothing imported"):
        import_librispeech(tmp_path / "noaudio", tmp_path / "m.jsonl", progress=False)
    assert not (tmp_path / "m.jsonl").exists()


def _write_jsonl(path: Path, lines: list) -> None:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n" for x in lines))


def test_import_jsonl(tmp_path):
    src_dir = tmp_path / "recordings"
    d0 = _write_audio(src_dir / "audio" / "hello.wav", 0.5)
    d1 = _write_audio(src_dir / "audio" / "sub" / "hello.flac", 0.3)  # same stem: id gets de-duplicated
    d2 = _write_audio(tmp_path / "elsewhere" / "ni.wav", 0.4)
    lines = [
        {"audio": "audio/hello.wav", "text": "Hello, World!", "translations": {"de": "Hallo, Welt!"}},
        {"audio": "audio/sub/hello.flac", "text": "Guten Tag.", "language": "de", "voice": "anna"},
        {
            "audio": str(tmp_path / "elsewhere" / "ni.wav"),
            "text": "你好，世界。",
            "language": "zh",
            "id": "zh-1",
        },
        {"audio": "audio/hello.wav", "text": "Again.", "duration": 0.52},  # near enough: the audio's is written
    ]
    _write_jsonl(src_dir / "list.jsonl", [*lines[:2], "", *lines[2:]])
    out = tmp_path / "out" / "m.jsonl"
    assert import_jsonl(src_dir / "list.jsonl", out, progress=False) == 4
    utts = read_manifest(out)
    assert [u.id for u in utts] == ["hello", "hello-2", "zh-1", "hello-3"]
    assert [u.language for u in utts] == ["en", "de", "zh", "en"]
    assert [u.text for u in utts] == ["hello world", "guten tag", "你好世界", "again"]
    assert utts[0].translations == {"de": "hallo welt"}
    assert utts[1].voice == "anna"
    for u, duration in zip(utts, [d0, d1, d2, d0], strict=True):
        assert abs(u.duration - duration) < 1e-3, (u.id, u.duration, duration)
        assert os.path.isabs(u.audio) and Path(u.audio).is_file()


def test_import_jsonl_default_language(tmp_path):
    _write_audio(tmp_path / "a.wav", 0.1)
    _write_jsonl(tmp_path / "list.jsonl", [{"audio": "a.wav", "text": "Straße!"}])
    import_jsonl(tmp_path / "list.jsonl", tmp_path / "m.jsonl", default_language="de", progress=False)
    [u] = read_manifest(tmp_path / "m.jsonl")
    assert (u.language, u.text) == ("de", "straße")


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('{"audio": "a.wav", "text": "hi"', r"list\.jsonl:3: not valid JSON"),
        ('["a.wav", "hi"]', r"list\.jsonl:3: expected a JSON object"),
        ('{"audio": "a.wav"}', r"list\.jsonl:3: 'text' must be a string"),
        ('{"audio": "missing.wav", "text": "hi"}', r"list\.jsonl:3: audio file not found: .*missing\.wav"),
        ('{"audio": "not-audio.wav", "text": "hi"}', r"list\.jsonl:3: unreadable audio .*not-audio\.wav"),
        (
            '{"audio": "a.wav", "text": "hi", "translations": ["x"]}',
            r"list\.jsonl:3: 'translations' must map",
        ),
        ('{"audio": "a.wav", "text": "hi", "id": "one"}', r"list\.jsonl:3: id 'one' already used at .*:1"),
    ],
)
def test_import_jsonl_errors_name_the_line(tmp_path, bad_line, message):
    _write_audio(tmp_path / "a.wav", 0.1)
    (tmp_path / "not-audio.wav").write_text("this is not a wav file")
    _write_jsonl(tmp_path / "list.jsonl", [{"audio": "a.wav", "text": "hi", "id": "one"}, "", bad_line])
    with pytest.raises(ValueError, match=message):
        import_jsonl(tmp_path / "list.jsonl", tmp_path / "m.jsonl", progress=False)
    assert not (tmp_path / "m.jsonl").exists()


def test_import_jsonl_missing_or_empty_source(tmp_path):
    with pytest.raises(FileNotFoundError):
        import_jsonl(tmp_path / "nope.jsonl", tmp_path / "m.jsonl", progress=False)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="lists no utterances"):
        import_jsonl(tmp_path / "empty.jsonl", tmp_path / "m.jsonl", progress=False)


def test_main(tmp_path, capsys):
    _make_librispeech(tmp_path / "corpus")
    assert main(["librispeech", str(tmp_path / "corpus"), str(tmp_path / "m.jsonl"), "--no-progress"]) == 0
    assert "wrote 6 utterances" in capsys.readouterr().out
    assert main(["jsonl", str(tmp_path / "nope.jsonl"), str(tmp_path / "m2.jsonl"), "--no-progress"]) == 2
    assert "error:" in capsys.readouterr().err


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_import_jsonl_refuses_a_duration_that_is_not_the_audios(tmp_path):
    """Common Voice lists durations in milliseconds: 2500 for a 2.5 s clip is not 2500 s."""
    _write_audio(tmp_path / "a.wav", 2.5)
    _write_jsonl(tmp_path / "list.jsonl", [{"audio": "a.wav", "text": "hi", "duration": 2500}])
    with pytest.raises(ValueError, match=r"list\.jsonl:1: 'duration' 2500 is not the audio's 2\.500 s .*milliseconds"):
        import_jsonl(tmp_path / "list.jsonl", tmp_path / "m.jsonl", progress=False)
    assert not (tmp_path / "m.jsonl").exists()


def test_import_jsonl_refuses_truncated_audio(tmp_path):
    """Only a header read, a cut-off file imported fine and failed in training without a file name."""
    _write_audio(tmp_path / "cut.flac", 2.0)
    _truncate(tmp_path / "cut.flac")
    _write_jsonl(tmp_path / "list.jsonl", [{"audio": "cut.flac", "text": "hi"}])
    with pytest.raises(ValueError, match=r"list\.jsonl:1: unreadable audio .*cut\.flac"):
        import_jsonl(tmp_path / "list.jsonl", tmp_path / "m.jsonl", progress=False)


@pytest.mark.skipif("MP3" not in soundfile.available_formats(), reason="libsndfile without MP3")
def test_import_jsonl_refuses_audio_shorter_than_its_header(tmp_path):
    """A cut MP3 decodes without an error, to less audio than its header promises."""
    n = 3 * 48000
    x = 0.1 * np.sin(2 * np.pi * 220 * np.arange(n) / 48000)
    soundfile.write(tmp_path / "cut.mp3", x.astype(np.float32), 48000, format="MP3")
    _truncate(tmp_path / "cut.mp3", 0.33)
    _write_jsonl(tmp_path / "list.jsonl", [{"audio": "cut.mp3", "text": "hi"}])
    with pytest.raises(
        ValueError, match=r"truncated or corrupt audio .*cut\.mp3: it decodes to .* its header says 3\.000"
    ):
        import_jsonl(tmp_path / "list.jsonl", tmp_path / "m.jsonl", progress=False)


def _write_empty(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.zeros(0, np.float32), SAMPLE_RATE)


def test_import_jsonl_skips_utterances_too_short_for_their_transcript(tmp_path, capsys):
    _write_empty(tmp_path / "empty.wav")
    _write_audio(tmp_path / "tiny.wav", 0.05)
    _write_audio(tmp_path / "fast.wav", 0.2)  # 5 encoder frames of 40 ms
    _write_audio(tmp_path / "ok.wav", 0.5)
    lines = [
        {"audio": "empty.wav", "text": "x y"},
        {"audio": "tiny.wav", "text": "x"},
        {"audio": "fast.wav", "text": "one two three four five six"},
        {"audio": "ok.wav", "text": "one two three four five six"},
    ]
    _write_jsonl(tmp_path / "list.jsonl", lines)
    assert import_jsonl(tmp_path / "list.jsonl", tmp_path / "m.jsonl", progress=False) == 1
    assert [u.id for u in read_manifest(tmp_path / "m.jsonl")] == ["ok"]
    err = capsys.readouterr().err
    assert "skipped 3 of 4 utterances (3 too short)" in err
    assert "empty.wav too short: 0.000 s" in err and "fast.wav too short: 0.200 s (5 encoder frames) for 6 words" in err
    _write_jsonl(tmp_path / "list.jsonl", lines[:1])
    with pytest.raises(ValueError, match="all 1 utterances are too short"):
        import_jsonl(tmp_path / "list.jsonl", tmp_path / "m2.jsonl", progress=False)


def test_import_librispeech_skips_truncated_and_too_short_audio_with_counts(tmp_path, capsys):
    expected = _make_librispeech(tmp_path / "corpus")
    _truncate(tmp_path / "corpus" / "84" / "121123" / "84-121123-0001.flac")
    (tmp_path / "corpus" / "1272" / "128104" / "1272-128104-0000.flac").unlink()
    _write_empty(tmp_path / "corpus" / "1272" / "128104" / "1272-128104-0000.wav")  # 0 samples (FLAC writes none)
    assert import_librispeech(tmp_path / "corpus", tmp_path / "m.jsonl", progress=False) == len(expected) - 2
    err = capsys.readouterr().err
    assert "skipped 2 of 6 utterances (1 unreadable, 1 too short)" in err
    assert "84-121123-0001.flac" in err and "1272-128104-0000.wav too short" in err


def test_import_librispeech_follows_symlinked_subsets_and_counts_unlisted_audio(tmp_path, capsys):
    expected = _make_librispeech(tmp_path / "elsewhere" / "dev-clean")
    root = tmp_path / "LibriSpeech"
    root.mkdir()
    (root / "dev-clean").symlink_to(tmp_path / "elsewhere" / "dev-clean", target_is_directory=True)
    (root / "dev-clean" / "84" / "121123" / "loop").symlink_to(root, target_is_directory=True)  # entered once
    _write_audio(root / "test-clean" / "7" / "9" / "7-9-0000.flac", 0.5)
    (root / "test-clean" / "7" / "9" / "7-9.trans.txt").write_text("7-9-0000 HELLO THERE\n")
    _write_audio(root / "test-clean" / "7" / "9" / "7-9-0001.flac", 0.5)  # in no transcript
    _write_audio(root / "dev-clean" / "84" / "121123" / "84-121123-0009.flac", 0.5)  # in no transcript
    assert import_librispeech(root, tmp_path / "m.jsonl", progress=False) == len(expected) + 1
    assert {u.id for u in read_manifest(tmp_path / "m.jsonl")} == {*expected, "7-9-0000"}
    err = capsys.readouterr().err
    assert "2 audio files below" in err and "7-9-0001.flac" in err and "84-121123-0009.flac" in err


def test_import_jsonl_id_prefix_keeps_listings_imported_apart_apart(tmp_path, capsys):
    """spk1/list.jsonl and spk2/list.jsonl both list 001.wav: without a prefix both ids are "001"."""
    for spk in ("spk1", "spk2"):
        _write_audio(tmp_path / spk / "001.wav", 0.5)
        _write_jsonl(
            tmp_path / spk / "list.jsonl", [{"audio": "001.wav", "text": spk}, {"audio": "001.wav", "text": "b"}]
        )
    assert import_jsonl(tmp_path / "spk1" / "list.jsonl", tmp_path / "spk1.jsonl", progress=False, id_prefix="spk1-")
    assert [u.id for u in read_manifest(tmp_path / "spk1.jsonl")] == ["spk1-001", "spk1-001-2"]
    argv = ["jsonl", str(tmp_path / "spk2" / "list.jsonl"), str(tmp_path / "spk2.jsonl"), "--no-progress"]
    assert main([*argv, "--id-prefix", "spk2-"]) == 0
    assert [u.id for u in read_manifest(tmp_path / "spk2.jsonl")] == ["spk2-001", "spk2-001-2"]
    assert main(argv) == 0  # no prefix: the ids as before
    assert [u.id for u in read_manifest(tmp_path / "spk2.jsonl")] == ["001", "001-2"]


def test_import_jsonl_verbalizes_numbers_as_the_speaker_says_them(tmp_path, capsys):
    """Real transcripts write "$5" and "10:30"; the recording says words, as the synthetic corpus writes them.
    What the verbalizer cannot read is imported as written and named in a warning; --keep-digits keeps numbers."""
    _write_audio(tmp_path / "a.wav", 2.0)
    _write_audio(tmp_path / "b.wav", 1.0)
    lines = [
        {"audio": "a.wav", "text": "I paid $5 at 10:30, Dr. Smith.", "translations": {"de": "Ich habe 3 Hunde."}},
        {"audio": "b.wav", "text": "My MP3 player."},
    ]
    _write_jsonl(tmp_path / "list.jsonl", lines)
    out = tmp_path / "m.jsonl"
    assert import_jsonl(tmp_path / "list.jsonl", out, progress=False) == 2
    utts = read_manifest(out)
    assert utts[0].text == "i paid five dollars at ten thirty doctor smith"
    assert utts[0].translations == {"de": "ich habe drei hunde"}
    assert utts[1].text == "my mp3 player"
    err = capsys.readouterr().err
    assert "1 of 2 transcripts still hold digits" in err and "list.jsonl:2" in err, err
    assert main(["jsonl", str(tmp_path / "list.jsonl"), str(out), "--keep-digits", "--no-progress"]) == 0
    utts = read_manifest(out)
    assert [u.text for u in utts] == ["i paid 5 at 10 30 dr smith", "my mp3 player"]
    assert utts[0].translations == {"de": "ich habe 3 hunde"}
    assert "still hold digits" not in capsys.readouterr().err


def test_import_librispeech_verbalizes_too(tmp_path):
    expected = _write_audio(tmp_path / "1" / "2" / "1-2-0000.flac", 1.0)
    (tmp_path / "1" / "2" / "1-2.trans.txt").write_text("1-2-0000 CHAPTER 12\n")
    out = tmp_path / "m.jsonl"
    assert import_librispeech(tmp_path, out, progress=False) == 1
    [u] = read_manifest(out)
    assert u.text == "chapter twelve" and abs(u.duration - expected) < 1e-3
