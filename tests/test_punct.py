"""Punctuation and casing: labels read from the text corpus's display text (models/data/punct.py), training and
ONNX export (models/train/punct.py), and the runtime that writes a final's display text (server/punctuation.py)."""

import argparse
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.data.punct import CASES, MARKS, case_of, mark_of, word_labels
from server.itn import rewrite_text
from server.punctuation import Punctuator


def _labels(display: str, text: str, language: str) -> list[tuple[str, str, str]]:
    out = word_labels(display, text, language)
    assert out is not None, (display, text)
    return [(w.word, MARKS[w.mark], CASES[w.case]) for w in out]


def test_labels_follow_the_display_text() -> None:
    assert _labels("Hello, how are you?", "hello how are you", "en") == [
        ("hello", ",", "capitalized"),
        ("how", "", "lower"),
        ("are", "", "lower"),
        ("you", "?", "lower"),
    ]
    # a number said as several words: the mark goes to the last, all lower; "!" ends a sentence like "."
    got = _labels("I have 300 cats!", "i have three hundred cats", "en")
    assert got[0] == ("i", "", "capitalized") and got[2:] == [
        ("three", "", "lower"),
        ("hundred", "", "lower"),
        ("cats", ".", "lower"),
    ]
    assert _labels("Die NASA und das iPhone: gut.", "die nasa und das iphone gut", "de") == [
        ("die", "", "capitalized"),
        ("nasa", "", "upper"),
        ("und", "", "lower"),
        ("das", "", "lower"),
        ("iphone", ",", "mixed"),
        ("gut", ".", "lower"),
    ]
    # a free-standing mark belongs to the word before it; quotes are not marks
    assert _labels("wait … “what”", "wait what", "en") == [("wait", ".", "lower"), ("what", "", "lower")]
    # Chinese: per character, full-width marks, no case
    assert _labels("你好，世界。", "你好世界", "zh") == [
        ("你", "", "lower"),
        ("好", ",", "lower"),
        ("世", "", "lower"),
        ("界", ".", "lower"),
    ]
    assert word_labels("Hello world", "goodbye world", "en") is None, "words that don't align are skipped"


def test_case_and_mark_classes() -> None:
    assert [case_of(w) for w in ("word", "Word", "WORD", "McDonald", "3", "A")] == [0, 1, 2, 3, 0, 1]
    assert [mark_of(s) for s in ("", ",", ".", "?", "?!", ");", "…", ":")] == [0, 1, 2, 3, 3, 2, 2, 1]


NAMES = ["Anna", "Boris", "Clara", "David", "Emma", "Felix"]
VERBS = ["sees", "calls", "helps", "meets", "visits", "thanks"]


def _corpus(root: Path, n: int, seed: int) -> None:
    """Sentences with learnable marks and case: names capitalized, questions open with "does" and end with "?",
    a comma before "and"."""
    rng = random.Random(seed)
    for split, count in (("train", n), ("test", n // 5)):
        path = root / "en" / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            for i in range(count):
                a, b, c = rng.sample(NAMES, 3)
                v, w = rng.sample(VERBS, 2)
                kind = rng.random()
                if kind < 0.3:
                    display = f"Does {a} {v.rstrip('s')} {b}?"
                elif kind < 0.6:
                    display = f"{a} {v} {b}, and {c} {w} {a}."
                else:
                    display = f"Today {a} {v} the {b} family."
                text = display.lower().replace(",", "").replace(".", "").replace("?", "")
                rec = {"text": text, "display": display, "document": f"d{i // 4}", "language": "en"}
                f.write(json.dumps(rec) + "\n")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.train import punct

    root = tmp_path_factory.mktemp("punct")
    _corpus(root / "text", 600, 0)
    args = argparse.Namespace(
        text=str(root / "text"), language="en", out=str(root / "model"), steps=150, vocab=60, d_model=48,
        layers=1, batch_pieces=1200, lr=3e-3, warmup=20, max_sentences=None, test_sentences=None, threads=1, seed=0,
    )  # fmt: skip
    card = punct.train(args)
    assert card["test"]["pytorch"]["case_accuracy"] > 0.95, card["test"]
    return root / "model"


def test_trained_model_learns_marks_and_case_and_runs_from_onnx(trained: Path) -> None:
    card = json.loads((trained / "punct.json").read_text())
    marks = card["test"]["pytorch"]["marks"]
    assert marks["?"]["f1"] > 0.9 and marks["."]["f1"] > 0.9 and marks[","]["f1"] > 0.8, marks
    p = Punctuator.from_folder(trained)
    assert p.punctuate(["does", "emma", "call", "boris"]) == "Does Emma call Boris?"
    assert (
        p.punctuate(["clara", "helps", "david", "and", "anna", "visits", "clara"])
        == "Clara helps David, and Anna visits Clara."
    )
    assert p.punctuate([]) == ""
    # longer than the model's window: cut into windows, every word kept in order
    long = ["today", "anna", "sees", "the", "boris", "family"] * 60
    out = p.punctuate(long)
    assert [w.strip(",.?").lower() for w in out.split()] == long


def test_a_model_folder_needs_its_three_files(trained: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(trained, tmp_path / "m")
    assert Punctuator.from_folder(tmp_path / "m").language == "en"
    (tmp_path / "m" / "bpe.model").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing bpe\.model"):
        Punctuator.from_folder(tmp_path / "m")


def test_finals_carry_display_from_the_bundle_s_model(trained: Path, tmp_path: Path) -> None:
    """A bundle with a punctuation model: finals carry `display` (the model's writing of the final's words), and
    the /v1 final message too; a stream that says punctuate=false gets none; partials never."""
    import shutil

    from models.data.espeak import synthesize
    from models.train.punct import add_to_bundle
    from parley.resample import resample
    from server.bundle import load_bundle
    from server.frontend import Frontend
    from server.messages import result_message
    from server.recognizer import Final, Recognizer
    from server.transducer import StreamingTransducer

    bundle = tmp_path / "en-small"
    shutil.copytree(Path(__file__).resolve().parents[1] / "bundles" / "en-small", bundle)
    entry = add_to_bundle(trained, bundle)
    assert entry == {"model": "punct-en.onnx", "tokenizer": "punct-en.model", "card": "punct-en.json"}
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["punctuation"] == {"en": entry} and set(entry.values()) <= set(manifest["files"])
    card = (bundle / "README.md").read_text()
    assert card.count("## Punctuation and casing (`punct-en.*`)") == 1, "the card's section is replaced, not repeated"
    assert all(f"| {name} | " in card for name in manifest["files"]), "every file in the card's table"
    loaded = load_bundle(bundle, providers="cpu", threads=1)
    punctuators = loaded.punctuators
    assert list(punctuators) == ["en"]
    recognizer = Recognizer(StreamingTransducer(loaded), punctuators=punctuators)
    syn = synthesize("set a timer for ten minutes", voice="en-us")
    audio = resample(syn.samples, syn.sample_rate, 16000)
    for punctuate, numerals in ((True, False), (True, True), (False, True)):
        stream = recognizer.open(punctuate=punctuate, numerals=numerals)
        frontend = Frontend(recognizer.spec, 16000)
        frontend.accept(audio)
        frontend.finish()
        results = []
        while (chunk := frontend.pop_chunk()) is not None:
            results += recognizer.step([(stream, chunk)])[0]
        results += recognizer.finish(stream, len(audio) / 16000)
        finals = [r for r in results if isinstance(r, Final)]
        assert finals and all(getattr(r, "display", None) is None for r in results if not isinstance(r, Final))
        for f in finals:
            if punctuate and numerals:  # numbers in digits (server/itn.py): "Set a timer for 10 minutes"
                assert f.display == rewrite_text(punctuators["en"].punctuate_text(f.text))
                assert result_message(f)["display"] == f.display
            elif punctuate:
                assert f.display == punctuators["en"].punctuate_text(f.text)
                assert [w.strip(",.?").lower() for w in f.display.split()] == f.text.split()
                assert result_message(f)["display"] == f.display
            else:
                assert f.display is None and "display" not in result_message(f)


def test_a_changed_punctuation_file_is_refused(trained: Path, tmp_path: Path) -> None:
    import shutil

    from models.train.punct import add_to_bundle
    from server.bundle import BundleError, load_bundle

    bundle = tmp_path / "en-small"
    shutil.copytree(Path(__file__).resolve().parents[1] / "bundles" / "en-small", bundle)
    add_to_bundle(trained, bundle)
    with open(bundle / "punct-en.json", "a") as f:
        f.write(" ")
    with pytest.raises(BundleError, match=r"punct-en\.json"):
        load_bundle(bundle, providers="cpu", threads=1)


def test_a_final_and_each_sentence_in_it_start_with_a_capital(trained: Path) -> None:
    p = Punctuator.from_folder(trained)
    p.labels = lambda words: ([0, 2, 0, 0, 3], [0, 0, 0, 2, 0])  # type: ignore[method-assign]
    assert p.punctuate(["hello", "there", "how", "are", "you"]) == "Hello there. How ARE you?"


def test_a_re_export_carries_the_punctuation_model_and_lms_over(trained: Path, tmp_path: Path) -> None:
    """`parley export --carry-from`: a new checkpoint of the same model, exported in place or elsewhere, keeps the
    old bundle's punctuation model, LMs and talker model (files, bundle.json entries, card sections); a changed file or
    another tokenizer is refused."""
    from export.bundle import carry_extras
    from export.bundle import main as export_main
    from models.train.lm_ngram import main as lm_main
    from models.train.punct import add_to_bundle
    from models.train.talkers import TalkerModel
    from models.train.talkers import add_to_bundle as add_talkers
    from server.bundle import load_bundle
    from tests.test_export import EN_BPE, SETTINGS, make_tiny_checkpoint

    def export(seed: int, out: Path, *extra: str) -> int:
        (tmp_path / f"ck{seed}").mkdir(exist_ok=True)
        ck = make_tiny_checkpoint(tmp_path / f"ck{seed}" / "tiny.pt", seed)
        args = ["--checkpoint", str(ck), "--tokenizer", str(EN_BPE), "--name", "tiny-en", "--out", str(out)]
        args += ["--chunk-ms", str(SETTINGS.chunk_ms), "--history-ms", str(SETTINGS.history_ms), *extra]
        return export_main(args)

    old = tmp_path / "old"
    assert export(0, old) == 0
    add_to_bundle(trained, old)
    bins = load_bundle(old, providers="cpu", threads=1).spec.features.num_bins
    card = {"dims": 4, "utterances": 9, "speakers": 3, "manifests": ["x.jsonl"], "held_out_speakers": 1}
    card |= {"held_out_equal_error_rate": 0.1, "threshold": 0.5}
    TalkerModel(np.zeros(2 * bins), np.eye(2 * bins)[:, :4], 0.5, card=card).save(tmp_path / "t.npz")
    add_talkers(tmp_path / "t.npz", old)
    (tmp_path / "t.txt").write_text("call marlow now\nset a timer for ten minutes\n")
    assert lm_main(["train", "--text", str(tmp_path / "t.txt"), "--bundle", str(old), "--name", "dom"]) == 0
    before = json.loads((old / "bundle.json").read_text())
    moved = tmp_path / "new"
    assert export(1, moved, "--carry-from", str(old)) == 0
    assert export(1, old, "--carry-from", str(old)) == 0  # in place, as a stage replaces the committed bundle
    for folder in (old, moved):
        meta = json.loads((folder / "bundle.json").read_text())
        assert meta["punctuation"] == before["punctuation"] and meta["lms"] == before["lms"]
        assert meta["talkers"] == before["talkers"] == {"model": "talkers.npz"}
        assert meta["files"]["encoder.onnx"] != before["files"]["encoder.onnx"], "the new checkpoint's weights"
        card = (folder / "README.md").read_text()
        assert card.count("## Punctuation and casing (`punct-en.*`)") == 1 and card.count("## Language models") == 1
        assert card.count("## Talkers") == 1 and "fitted by `parley talkers train` on 9 utterances" in card
        assert all(f"| {name} | " in card for name in meta["files"])
        loaded = load_bundle(folder, providers="cpu", threads=1)  # checks every listed file's sha256
        assert list(loaded.punctuators) == ["en"] and list(loaded.lms) == ["dom"] and loaded.talkers is not None
    with open(old / "lm-dom.npz", "ab") as f:
        f.write(b"\0")
    assert export(1, tmp_path / "bad", "--carry-from", str(old)) == 2
    other = json.loads((moved / "bundle.json").read_text())
    other["files"]["bpe.model"] = {**other["files"]["bpe.model"], "sha256": "0" * 64}
    with pytest.raises(ValueError, match="another tokenizer"):
        carry_extras(moved, other, moved)


_BUNDLES = Path(__file__).resolve().parents[1] / "bundles"


def _replace_file(bundle: Path, name: str, content: bytes) -> None:
    """Writes a bundle file and lists its new size and hash, as if it had been exported that way."""
    from server.bundle import sha256_of

    (bundle / name).write_bytes(content)
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["files"][name] = {"bytes": len(content), "sha256": sha256_of(bundle / name)}
    (bundle / "bundle.json").write_text(json.dumps(manifest))


_EN_CARD = json.loads((_BUNDLES / "en-small" / "punct-en.json").read_text())
BROKEN_PUNCTUATION: dict[str, tuple[str, bytes, str]] = {
    "model not ONNX": ("punct-en.onnx", b"garbage" * 10, r"^punct-en\.onnx: onnxruntime cannot load it"),
    "tokenizer not sentencepiece": ("punct-en.model", b"garbage", r"^punct-en\.model: sentencepiece cannot load"),
    "card not JSON": ("punct-en.json", b"{", r"^punct-en\.json: not a readable JSON file"),
    "card a list": ("punct-en.json", b"[1, 2]", r"^punct-en\.json: not a punctuation card"),
    "card without marks": (
        "punct-en.json",
        json.dumps({**_EN_CARD, "marks": None}).encode(),
        r"^punct-en\.json: marks must be a list of strings",
    ),
    "fewer marks than the model": (
        "punct-en.json",
        json.dumps({**_EN_CARD, "marks": _EN_CARD["marks"][:1]}).encode(),
        r"^punct-en\.json: 1 marks, but the model's marks output is 4 wide",
    ),
    "more cases than the model": (
        "punct-en.json",
        json.dumps({**_EN_CARD, "cases": [*_EN_CARD["cases"], "title"]}).encode(),
        r"^punct-en\.json: 5 cases, but the model's cases output is 4 wide",
    ),
    "window of one token": (
        "punct-en.json",
        json.dumps({**_EN_CARD, "config": {**_EN_CARD["config"], "max_len": 1}}).encode(),
        r"^punct-en\.json: config\.max_len 1, expected a window of at least 2 tokens",
    ),
    "window wider than the model's": (
        "punct-en.json",
        json.dumps({**_EN_CARD, "config": {**_EN_CARD["config"], "max_len": 4096}}).encode(),
        r"^punct-en\.json: config\.max_len 4096, but the model's window is 256 tokens",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_PUNCTUATION))
def test_a_broken_punctuation_model_or_card_is_refused_naming_the_file(tmp_path: Path, case: str) -> None:
    """Refused when the bundle loads (a BundleError, which the server logs and skips), not on every final after."""
    from server.bundle import BundleError, load_bundle

    bundle = tmp_path / "en-small"
    shutil.copytree(_BUNDLES / "en-small", bundle)
    name, content, message = BROKEN_PUNCTUATION[case]
    _replace_file(bundle, name, content)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle, providers="cpu", threads=1)


def test_a_bundle_with_a_broken_punctuation_model_or_lm_is_skipped_and_the_others_serve(tmp_path: Path) -> None:
    from server.service import load_bundles
    from server.settings import Settings

    shutil.copytree(_BUNDLES / "en-small", tmp_path / "en-small")
    _replace_file(tmp_path / "en-small", "punct-en.onnx", b"garbage" * 10)
    shutil.copytree(_BUNDLES / "en-open", tmp_path / "en-open")
    _replace_file(tmp_path / "en-open", "lm-source.npz", b"PK\x03\x04" + b"\0" * 50)  # a cut-off zip
    (tmp_path / "en-tsot-small").symlink_to(_BUNDLES / "en-tsot-small")
    loaded = load_bundles(Settings(bundles=tmp_path, providers="cpu", intra_op_threads=1))
    assert list(loaded) == ["en-tsot-small"]
