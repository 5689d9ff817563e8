"""The open-domain text corpus: cleaning, document splits that never leak, determinism, readers
(models/data/textcorpus.py, textsources.py). Built from small synthetic records and fixture files, so no text
package is needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.data import textcorpus, textsources
from models.data.textcorpus import clean_sentence, corpus_items, read_text_corpus, split_sentences
from models.data.textsources import TextRecord

LANGS = ["en", "de", "fr", "zh"]
_EN = [
    "The red fox runs home now.",
    "We meet at the old mill tonight.",
    "Bring two apples and a pear.",
    "My sister plays the violin well.",
    "It rained all day on Sunday.",
    "Please close the window for me.",
]
_DE = [
    "Der rote Fuchs läuft nach Hause.",
    "Wir treffen uns heute an der Mühle.",
    "Bring zwei Äpfel und eine Birne.",
    "Meine Schwester spielt gut Geige.",
    "Am Sonntag regnete es den ganzen Tag.",
    "Bitte schließ das Fenster.",
]


def _records(n_docs: int = 40) -> list[TextRecord]:
    """Parallel en-de records in many documents, monolingual fr and zh, a sentence repeated across documents,
    and grammar-like records with a split of their own."""
    out = []
    for d in range(n_docs):
        for k in range(6):
            texts = {"en": f"{_EN[k][:-1]}, says line {k} of {d}.", "de": f"{_DE[k][:-1]}, sagt Zeile {k} von {d}."}
            out.append(TextRecord("para", f"para/doc{d}", "MIT", texts, key=f"{k}"))
            out.append(
                TextRecord(
                    "mono", f"mono/fr{d}", "GPL-2+", {"fr": f"Le chat numéro {d * 6 + k} dort bien."}, key=f"{k}"
                )
            )
            out.append(TextRecord("mono", f"mono/zh{d}", "GPL-2+", {"zh": f"第{d * 6 + k}只猫在睡觉。"}, key=f"{k}"))
        # The same sentence in every document: it must end up in one split only.
        out.append(
            TextRecord(
                "para",
                f"para/doc{d}",
                "MIT",
                {"en": "This sentence is everywhere.", "de": "Dieser Satz ist überall."},
                key="z",
            )
        )
    for split in ("train", "dev", "test"):
        out.append(TextRecord("grammar", "grammar/t", "Apache-2.0", {"en": f"set a timer for {split}"}, split, split))
    return out


def test_split_never_leaks_documents_or_sentences() -> None:
    lines = corpus_items(_records(), LANGS)
    docs: dict[tuple[str, str], set[str]] = {}
    texts: dict[tuple[str, str], set[str]] = {}
    for x in lines:
        if x["source"] != "grammar":  # the grammar keeps its own split, templates shared across it
            docs.setdefault((x["source"], x["document"]), set()).add(x["split"])
        texts.setdefault((x["language"], x["text"]), set()).add(x["split"])
    leaked = {k: v for k, v in docs.items() if len(v) > 1}
    assert not leaked, f"documents in several splits: {leaked}"
    dupes = {k: v for k, v in texts.items() if len(v) > 1}
    assert not dupes, f"sentences in several splits: {dupes}"
    assert {x["split"] for x in lines} == {"train", "dev", "test"}
    everywhere = [x for x in lines if x["text"] == "this sentence is everywhere"]
    assert len(everywhere) == 1 and everywhere[0]["split"] == "test", everywhere


def test_parallel_records_share_split_and_translations() -> None:
    lines = corpus_items(_records(), LANGS)
    german = {x["text"]: x for x in lines if x["language"] == "de"}
    english = [x for x in lines if x["language"] == "en" and x["source"] == "para"]
    assert english and all("translations" in x for x in english)
    for x in english:
        y = german[x["translations"]["de"]]
        assert (y["document"], y["split"]) == (x["document"], x["split"]), (x, y)
        assert y["translations"]["en"] == x["text"]
    assert "translations" not in next(x for x in lines if x["language"] == "fr")


def test_grammar_keeps_its_split() -> None:
    lines = corpus_items(_records(), LANGS)
    got = {x["text"]: x["split"] for x in lines if x["source"] == "grammar"}
    assert got == {f"set a timer for {s}": s for s in ("train", "dev", "test")}


def test_numbers_are_verbalized_and_normalized() -> None:
    lines = corpus_items(_records(), LANGS)
    for x in lines:
        assert not any(c.isdigit() for c in x["text"]), x
        assert x["text"] == textcorpus.normalize_text(x["display"], x["language"])
    zh = [x["text"] for x in lines if x["language"] == "zh"]
    assert "第十二只猫在睡觉" in zh


def test_deterministic_and_files(tmp_path: Path) -> None:
    records = _records()
    a, b = corpus_items(records, LANGS), corpus_items(list(reversed(records)), LANGS)
    assert {json.dumps(x, sort_keys=True) for x in a} == {json.dumps(x, sort_keys=True) for x in b}
    summary = textcorpus.build(tmp_path / "a", a, LANGS)
    textcorpus.build(tmp_path / "b", corpus_items(records, LANGS), LANGS)
    for lang in LANGS:
        for split in textcorpus.SPLITS:
            pa, pb = tmp_path / "a" / lang / f"{split}.jsonl", tmp_path / "b" / lang / f"{split}.jsonl"
            assert pa.read_bytes() == pb.read_bytes(), pa
    assert (tmp_path / "a" / "CARD.md").read_text().startswith("# Parley open-domain text corpus")
    assert summary["counts"]["en"]["all"]["test"]["sentences"] > 0
    got = read_text_corpus(tmp_path / "a", "en", "test")
    assert got and all(x["language"] == "en" and x["split"] == "test" for x in got)
    assert {"id", "language", "text", "display", "source", "document", "license", "split"} <= set(got[0])
    with pytest.raises(ValueError):
        read_text_corpus(tmp_path / "a", "en", "valid")


@pytest.mark.parametrize(
    "bad",
    [
        "See https://example.org/page for the details.",
        "Write to help@example.org for the details today.",
        "Set the value with x = foo(bar) in the file.",
        "Open the folder /usr/share/doc now please.",
        "Use the <b>bold</b> {tag} in the [section] here.",
        "The $name walks into the room slowly.",
        "OK",
        "THIS IS A HEADING IN CAPITALS",
        "Version 2 of MP3 files is here.",
    ],
)
def test_cleaning_drops_unspeakable(bad: str) -> None:
    assert clean_sentence(bad, "en") is None, bad


def test_cleaning_keeps_and_verbalizes() -> None:
    s = clean_sentence("<p>Dr. Smith paid $5 at 10:30.</p>", "en")
    assert s is not None and s.text == "doctor smith paid five dollars at ten thirty"
    s = clean_sentence("Wir kommen am 3. Mai um 10:30 Uhr.", "de")
    assert s is not None and s.text == "wir kommen am dritten mai um zehn uhr dreißig"
    s = clean_sentence("价格上涨了50%。", "zh")
    assert s is not None and s.text == "价格上涨了百分之五十"
    assert clean_sentence("这是CPU的问题。", "zh") is None  # Latin letters in Chinese: not Mandarin speech


def test_split_sentences() -> None:
    assert split_sentences("Mr. Smith came. He sat down! Did he? Yes.", "en") == [
        "Mr. Smith came.",
        "He sat down!",
        "Did he?",
        "Yes.",
    ]
    assert split_sentences("Das ist z. B. gut. Ja.", "de") == ["Das ist z. B. gut.", "Ja."]
    assert split_sentences("你好。今天很好！明天呢？", "zh") == ["你好。", "今天很好！", "明天呢？"]


# ----------------------------------------------------------------------------------------- readers on fixtures
def test_read_fortunes(tmp_path: Path) -> None:
    (tmp_path / "it").mkdir()
    (tmp_path / "wisdom").write_text("Time flies like an arrow.\n\t\t-- Someone\n%\nFruit flies like a banana.\n")
    (tmp_path / "wisdom.dat").write_bytes(b"\0")
    (tmp_path / "it" / "detti").write_text("Perche' no? E' cosi'.\n")
    recs = list(textsources.read_fortunes(["en", "it"], root=str(tmp_path)))
    assert [(r.document, r.texts) for r in recs] == [
        ("fortunes/en/wisdom", {"en": "Time flies like an arrow."}),
        ("fortunes/en/wisdom", {"en": "Fruit flies like a banana."}),
        ("fortunes/it/detti", {"it": "Perché no? È così."}),
    ]


def test_read_ding(tmp_path: Path) -> None:
    path = tmp_path / "de-en"
    path.write_text(
        "# comment\nHund {m} :: dog\n"
        "Er kommt morgen. | Sie kommt heute. :: He is coming tomorrow. | She is coming today.\n",
        encoding="utf-8",
    )
    recs = list(textsources.read_ding(["de", "en"], path=str(path)))
    assert [r.texts for r in recs] == [
        {"de": "Er kommt morgen.", "en": "He is coming tomorrow."},
        {"de": "Sie kommt heute.", "en": "She is coming today."},
    ]


def test_read_libreoffice_aligns_by_paragraph_id(tmp_path: Path) -> None:
    page = (
        '<html><body><h1 id="hd_id1">{h}</h1><p id="par_id2" class="paragraph">{p}</p>'
        '<p id="par_id3" class="code">x = 1</p></body></html>'
    )
    for folder, h, p in [
        ("en-US", "Tables", "Inserts a <b>new</b> table."),
        ("de", "Tabellen", "Fügt eine neue Tabelle ein."),
    ]:
        (tmp_path / folder / "text" / "swriter").mkdir(parents=True)
        (tmp_path / folder / "text" / "swriter" / "main.html").write_text(page.format(h=h, p=p), encoding="utf-8")
    recs = list(textsources.read_libreoffice(["en", "de"], root=str(tmp_path), progress=False))
    assert [(r.document, r.key, r.texts) for r in recs] == [
        ("libreoffice/swriter/main", "hd_id1", {"en": "Tables", "de": "Tabellen"}),
        ("libreoffice/swriter/main", "par_id2", {"en": "Inserts a new table.", "de": "Fügt eine neue Tabelle ein."}),
    ]


def test_missing_source_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    assert textsources.read_source("wesnoth", ["en"], roots=["/nonexistent"]) == []
    assert "skipped" in caplog.text
    with pytest.raises(ValueError, match="unknown text source"):
        textsources.read_source("nope", ["en"])


def test_cli_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(textsources.SOURCES, "toy", lambda languages: iter(_records(12)))
    from models.data.grammar.__main__ import main

    rc = main(["build", "--out", str(tmp_path), "--languages", "en,de", "--sources", "toy", "--no-progress"])
    assert rc == 0
    card = (tmp_path / "CARD.md").read_text()
    assert "| para |" in card and "## de" in card
    assert json.loads((tmp_path / "summary.json").read_text())["licenses"]["para"] == ["MIT"]
