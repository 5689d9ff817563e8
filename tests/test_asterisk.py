import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from models.data import asterisk
from models.data.importers import main as import_main
from models.data.manifest import read_manifest

RATE = 8000  # the Asterisk prompts' rate

# key -> (English transcript, French transcript); None: the key has no line in that language.
_PROMPTS = {
    "hello": ("Hello, World!", "Bonjour, le monde !"),
    "goodbye": ("Goodbye.", "Au revoir."),
    "invalid": ("That is not a valid extension.", "Ce poste n'est pas valide."),
    "pbx-invalid": ("That is not a valid extension.", "Poste invalide."),  # en: the text of "invalid"
    "agent-pass": ("Please enter your password.", "Composez votre mot de passe."),
    "auth-thankyou": ("Thank you.", "Merci."),
    "call-waiting": ("Call waiting.", "Appel en attente."),
    "conf-locked": ("This conference is locked.", "Cette conférence est verrouillée."),
    "conf-muted": ("You are now muted.", "Vous êtes en sourdine."),
    "vm-goodbye": ("Goodbye, see you soon.", "Au revoir, à bientôt."),
    "vm-no": ("No messages.", "Aucun message."),
    "followme/status": ("The party you are calling is not available.", "Votre correspondant est absent."),
    "digits/day-2": ("Tuesday", "mardi"),
    "press-one": ("Press 1 for sales.", "Appuyez sur 1 pour les ventes."),
    # skipped:
    "beep": ("[this is a simple beep tone]", "[bip]"),
    "dictate/help": ("press * to pause", "appuyez sur étoile"),  # en: spoken symbol; fr kept
    "digits/21": ("twenty one", "vingt et un"),
    "letters/a": ("a", "a"),
    "silence/1": ("(1 second of silence)", "(1 seconde de silence)"),
    "no-text": (None, ""),
}
_VOICES = {"en": "en_US_f_Test", "fr": "fr_CA_f_Test"}


def _make_tree(root: Path) -> tuple[Path, Path]:
    """Writes a voice folder per language and their transcripts (en gzipped, fr plain with a BOM)."""
    sounds, docs = root / "sounds", root / "doc"
    rng = np.random.default_rng(0)
    for voice in _VOICES.values():
        for k, key in enumerate(_PROMPTS):
            path = sounds / voice / f"{key}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            n = RATE // 4 * (1 + k % 3)
            soundfile.write(path, (0.1 * rng.standard_normal(n)).astype(np.float32), RATE)
    for i, lang in enumerate(_VOICES):
        lines = [f"; Core Asterisk Sounds ({lang})", ""]
        lines += [f"{key}: {texts[i]}" for key, texts in _PROMPTS.items() if texts[i] is not None]
        text = "\n".join(lines) + "\n"
        folder = docs / f"asterisk-core-sounds-{lang}"
        folder.mkdir(parents=True)
        if lang == "en":
            with gzip.open(folder / "core-sounds-en.txt.gz", "wt", encoding="utf-8") as f:
                f.write(text)
        else:
            (folder / f"core-sounds-{lang}.txt").write_text("\ufeff" + text, encoding="utf-8")
    return sounds, docs


@pytest.fixture
def tree(tmp_path):
    return _make_tree(tmp_path / "tree")


def _import(tree, out: Path) -> asterisk.ImportReport:
    sounds, docs = tree
    return asterisk.import_asterisk(out, ["en", "fr"], sounds_root=sounds, transcripts_root=docs)


def _keys(out: Path, lang: str, split: str) -> set[str]:
    return {u.id.split("/", 1)[1] for u in read_manifest(out / lang / f"{split}.jsonl")}


def test_manifests_texts_and_translations(tree, tmp_path):
    out = tmp_path / "out"
    _import(tree, out)
    utts = {u.id: u for s in asterisk.SPLITS for u in read_manifest(out / "en" / f"{s}.jsonl")}
    hello = utts["en_US_f_Test/hello"]
    assert hello.text == "hello world"
    assert hello.language == "en"
    assert hello.translations == {"fr": "bonjour le monde"}
    assert hello.voice == "asterisk:en_US_f_Test"
    assert hello.words == []
    assert hello.audio == str(tree[0].resolve() / "en_US_f_Test" / "hello.wav")  # not copied
    assert hello.duration == pytest.approx(0.25)
    assert utts["en_US_f_Test/digits/day-2"].text == "tuesday"
    # The fr transcript of dictate/help is fine: it is an fr utterance, and a translation of nothing in en.
    fr = {u.id for s in asterisk.SPLITS for u in read_manifest(out / "fr" / f"{s}.jsonl")}
    assert "fr_CA_f_Test/dictate/help" in fr


def test_non_speech_and_unscorable_prompts_are_skipped(tree, tmp_path):
    report = _import(tree, tmp_path / "out")
    skipped = {uid: reason for reason, ids in report.skipped["en"].items() for uid in ids}
    v = "en_US_f_Test/"
    assert skipped[v + "beep"] == asterisk.SKIP_ANNOTATED
    assert skipped[v + "silence/1"] == asterisk.SKIP_SILENCE
    assert skipped[v + "dictate/help"] == asterisk.SKIP_SYMBOL
    assert skipped[v + "digits/21"] == asterisk.SKIP_NUMBER
    assert skipped[v + "letters/a"] == asterisk.SKIP_LETTER
    assert skipped[v + "no-text"] == asterisk.SKIP_NO_TRANSCRIPT
    assert report.skipped["fr"]["no transcript"] == ["fr_CA_f_Test/no-text"]  # "no-text: " is empty in fr
    assert v + "press-one" not in skipped, "press 1 is read as press one"
    skipped.pop(v + "invalid")  # see test_train_never_repeats_a_test_sentence
    kept = sum(c["clips"] for c in report.counts["en"].values())
    assert kept + len(skipped) + 1 == len(_PROMPTS), (kept, skipped)


def test_split_is_deterministic_by_key_and_shared_across_languages(tree, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _import(tree, a)
    _import(tree, b)
    for lang in _VOICES:
        for split in asterisk.SPLITS:
            assert (a / lang / f"{split}.jsonl").read_bytes() == (b / lang / f"{split}.jsonl").read_bytes()
    test_en, train_en = _keys(a, "en", "test"), _keys(a, "en", "train")
    assert test_en and train_en, "the fake prompts should fall in both splits"
    both = (test_en | train_en) & (_keys(a, "fr", "test") | _keys(a, "fr", "train"))
    assert test_en & both == _keys(a, "fr", "test") & both
    for key in test_en | train_en:
        assert (key in test_en) == (asterisk.split_of(key) == "test"), key


def test_train_never_repeats_a_test_sentence(tree, tmp_path):
    # "invalid" (train) and "pbx-invalid" (test) say the same English sentence: the train copy goes.
    assert (asterisk.split_of("invalid"), asterisk.split_of("pbx-invalid")) == ("train", "test")
    report = _import(tree, tmp_path / "out")
    assert report.skipped["en"][asterisk.SKIP_IN_TEST] == ["en_US_f_Test/invalid"]
    assert "invalid" not in _keys(tmp_path / "out", "en", "train")
    assert "pbx-invalid" in _keys(tmp_path / "out", "en", "test")
    assert "invalid" in _keys(tmp_path / "out", "fr", "train")  # different texts in French


def test_split_of_is_stable():
    # Fixed forever: changing the hash would move prompts between test and train.
    assert [asterisk.split_of(k) for k in ("agent-pass", "added", "vm-intro", "activated")] == [
        "train",
        "test",
        "test",
        "train",
    ]


def test_cli_writes_and_reports(tree, tmp_path, capsys):
    sounds, docs = tree
    out = tmp_path / "cli"
    rc = import_main(
        ["asterisk", "--out", str(out), "--languages", "en,fr", "--sounds", str(sounds), "--transcripts", str(docs)]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "en    test" in printed and "skipped" in printed
    assert (out / "asterisk.json").is_file()
    rc = import_main(["asterisk", "--out", str(out), "--languages", "it", "--sounds", str(sounds)])
    assert rc == 2
    assert "asterisk-core-sounds-it-wav" in capsys.readouterr().err


def test_missing_transcript_says_how_to_get_it(tree, tmp_path):
    sounds, _ = tree
    with pytest.raises(FileNotFoundError, match="apt-get download asterisk-core-sounds-en"):
        asterisk.import_asterisk(tmp_path / "o", ["en"], sounds_root=sounds, transcripts_root=tmp_path / "none")


def test_malformed_transcript_line_is_named(tmp_path):
    path = tmp_path / "core-sounds-en.txt"
    path.write_text("hello: Hello.\nthis line has no key\n")
    with pytest.raises(ValueError, match=r"core-sounds-en.txt:2"):
        asterisk.read_transcripts(path)


def test_conflicting_transcripts_are_dropped(tmp_path):
    path = tmp_path / "core-sounds-es.txt"
    path.write_text("digits/0: cero\ndigits/0: diez\nhola: Hola.\nhola: Hola.\n")
    assert asterisk.read_transcripts(path) == {"digits/0": None, "hola": "Hola."}


_REAL_VOICE = asterisk.SOUNDS_ROOT / "en_US_f_Allison"
_REAL_TEXTS = Path(os.environ.get("PARLEY_ASTERISK_TRANSCRIPTS", asterisk.TRANSCRIPTS_ROOT))


def _real_transcript_found() -> bool:
    try:
        asterisk.find_transcript("en", _REAL_TEXTS)
    except FileNotFoundError:
        return False
    return True


@pytest.mark.skipif(
    not (_REAL_VOICE.is_dir() and _real_transcript_found()),
    reason="needs apt packages asterisk-core-sounds-en-wav and asterisk-core-sounds-en "
    "(or PARLEY_ASTERISK_TRANSCRIPTS=<folder with core-sounds-en.txt.gz>)",
)
def test_real_english_prompts(tmp_path):
    report = asterisk.import_asterisk(tmp_path, ["en"], transcripts_root=_REAL_TEXTS)
    counts = report.counts["en"]
    clips = counts["train"]["clips"] + counts["test"]["clips"]
    # 568 files: 435 kept (232 test, 203 train); 376 without models.data.verbalize (the menus say "press 1").
    assert clips > 400, counts
    assert counts["test"]["clips"] > 100 and counts["train"]["clips"] > 100, counts
    utts = read_manifest(tmp_path / "en" / "test.jsonl")
    assert all(u.audio.startswith(str(asterisk.SOUNDS_ROOT)) and u.duration > 0 for u in utts)
