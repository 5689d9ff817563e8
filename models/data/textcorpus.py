"""Builds the open-domain text corpus: speakable sentences per language, split by document.

    parley text build --out data/text --languages en,de,es,fr,it,zh --seed 0 --wesnoth /tmp/wesnoth

Every source in `models.data.textsources` is read (a missing package is skipped with a warning), its text split into
sentences, cleaned for speech (markup, URLs and code dropped; numbers, dates, times, money and abbreviations
written out by `models.data.verbalize`; length and script checks), normalized with `parley.textnorm.normalize_text` (the
WER scorer's normalization) and deduplicated per language. Whole documents go to train, dev or test: documents
are ordered by a stable hash of (source, document) and taken into test, then dev, until each holds its fraction
of the source, so no document and no normalized sentence is in two splits. A parallel record's split is shared by
all of its languages; the grammar keeps its own split (its test and test_unseen are both test).

Writes DIR/<lang>/{train,dev,test}.jsonl, one sentence per line:

    {"id": "en-wesnoth-0001234", "language": "en", "text": "normalized", "display": "As written, numbers spoken.",
     "translations": {"de": "..."}, "source": "wesnoth", "document": "wesnoth/httt", "license": "GPL-2+",
     "split": "test"}

and DIR/CARD.md and DIR/summary.json (sentences and distinct words per language, source and split; licenses).
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import logging
import re
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from models.data.textsources import SOURCES, TextRecord, read_source
from models.data.verbalize import ABBREVIATIONS, verbalize
from parley.textnorm import is_chinese, normalize_text, words

LANGUAGES = ("en", "de", "es", "fr", "it", "zh")
SPLITS = ("train", "dev", "test")
# Share of each source's records (whole documents) held out; enough for >= 800 test and >= 400 dev sentences
# per language from the sources installed here.
TEST_FRACTION, DEV_FRACTION = 0.10, 0.05
# Speakable length: words for space-delimited languages, characters for Chinese.
MIN_WORDS, MAX_WORDS = 3, 25
MIN_ZH_CHARS, MAX_ZH_CHARS = 4, 40
_RANK = {"train": 0, "dev": 1, "test": 2}  # a sentence in several splits stays in the most held-out one

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------------- cleaning
_URL_OR_MAIL = re.compile(
    r"https?:|ftp:|www\.|\w@\w|\.(?:com|org|net|edu|gov|html?|xml|txt|exe|pdf|odt|ods|odp|png|jpe?g|py|sh)\b",
    re.IGNORECASE,
)
# Characters that mark code, paths, placeholders or markup rather than speech.
_CODE = re.compile(r"[{}<>\[\]|\\/_=#*~^`$@+]|::|->|\w\(|\.\w+\(|\b\w+\.\w+\.\w+")
_TAG = re.compile(r"<[^>]+>")
_LEADING = re.compile(r"^[\s\-–—•·*>:;,.]+")
_SPACES = {"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\t": " ", "\u200b": ""}
_SENT_END = re.compile(r"(?<=[.!?…])[\"»”’)\]]*\s+(?=[\"«“‘¿¡(]?[A-ZÀ-ÖØ-ÞÄÖÜ0-9])")
_ZH_SENT_END = re.compile(r"(?<=[。！？!?；])[”」』）]*")
_SPACE_BEFORE = re.compile(r"\s+([,.;:!?])(?!\w)")
_SPACE_BEFORE_FR = re.compile(r"\s+([,.])(?!\w)")
_INITIAL = re.compile(r"(?:^|\s)[A-ZÄÖÜ]\.$")


def split_sentences(text: str, language: str) -> list[str]:
    """Splits a paragraph into sentences; known abbreviations ("Dr.", "z. B.") and initials do not end one."""
    text = " ".join(text.translate(str.maketrans(_SPACES)).split())
    if is_chinese(language):
        return [s.strip() for s in _ZH_SENT_END.split(text) if s.strip()]
    abbreviations = tuple(ABBREVIATIONS.get(language, {}))
    for a in abbreviations:
        if " " in a:  # "z. B.": its inner space must not look like a sentence break
            text = text.replace(a, a.replace(" ", "\0"))
    out: list[str] = []
    start = 0
    for m in _SENT_END.finditer(text):
        piece = text[start : m.start()]
        if piece.endswith(abbreviations) or _INITIAL.search(piece):
            continue
        out.append(text[start : m.end()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [s.replace("\0", " ") for s in out if s]


_SCRIPT_CACHE: dict[tuple[str, bool], bool] = {}


def _in_script(c: str, chinese: bool) -> bool:
    key = (c, chinese)
    if key not in _SCRIPT_CACHE:
        if chinese:
            ok = "\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf"
        else:
            ok = c in " '-" or (
                unicodedata.category(c)[0] in "LM" and unicodedata.name(c, "").startswith(("LATIN", "COMBINING"))
            )
        _SCRIPT_CACHE[key] = ok
    return _SCRIPT_CACHE[key]


@dataclass(frozen=True)
class Sentence:
    """A cleaned sentence: `display` keeps case and punctuation, `text` is normalized."""

    display: str
    text: str


def clean_sentence(sentence: str, language: str) -> Sentence | None:
    """The sentence as it should be spoken, or None when it is not speakable text.

    Drops URLs, e-mail, code and markup; writes numbers and abbreviations out; keeps it only when its normalized
    form is within the length bounds and made only of letters of the language's script (no digits left).
    """
    s = html.unescape(_TAG.sub(" ", sentence))
    s = " ".join(s.translate(str.maketrans(_SPACES)).split())
    if _URL_OR_MAIL.search(s):
        return None
    s = _LEADING.sub("", s).strip()
    # Markup stripped to spaces leaves "word ." (French keeps its space before ; : ! ?).
    s = (_SPACE_BEFORE_FR if language == "fr" else _SPACE_BEFORE).sub(r"\1", s)
    if not s:
        return None
    s = verbalize(s, language)
    if _CODE.search(s):
        return None
    chinese = is_chinese(language)
    text = normalize_text(s, language)
    n = len(text) if chinese else len(text.split())
    lo, hi = (MIN_ZH_CHARS, MAX_ZH_CHARS) if chinese else (MIN_WORDS, MAX_WORDS)
    if not lo <= n <= hi or not all(_in_script(c, chinese) for c in text):
        return None
    if not chinese and not any(c.islower() for c in s):
        return None  # all capitals: a heading or a shout, read letter by letter by synthesizers
    return Sentence(s, text)


# ------------------------------------------------------------------------------------------------- splitting
def _hash(*parts: str) -> str:
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=16).hexdigest()


def assign_splits(records: Sequence[TextRecord]) -> dict[tuple[str, str], str]:
    """(source, document) -> split, for records without a split of their own.

    Within each source (and language, for sources whose documents are monolingual) documents are taken in the
    order of a stable hash of (source, document): into test until it holds TEST_FRACTION of the records, then
    into dev until DEV_FRACTION more, the rest into train.
    """
    sizes: Counter[tuple[str, str]] = Counter()
    langs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in records:
        if r.split is None:
            sizes[r.source, r.document] += 1
            langs[r.source, r.document].update(r.texts)
    groups: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for doc, ls in langs.items():
        groups[doc[0], "+".join(sorted(ls)) if len(ls) == 1 else "*"].append(doc)
    out: dict[tuple[str, str], str] = {}
    for docs in groups.values():
        total = sum(sizes[d] for d in docs)
        taken = 0
        for doc in sorted(docs, key=lambda d: _hash(*d)):
            if taken < TEST_FRACTION * total:
                out[doc] = "test"
            elif taken < (TEST_FRACTION + DEV_FRACTION) * total:
                out[doc] = "dev"
            else:
                out[doc] = "train"
            taken += sizes[doc]
    return out


# -------------------------------------------------------------------------------------------------- building
@dataclass
class _Item:
    language: str
    split: str
    source: str
    document: str
    license: str
    order: tuple[str, int]
    sentence: Sentence
    translations: dict[str, str]


def corpus_items(records: Iterable[TextRecord], languages: Sequence[str], progress: bool = False) -> list[dict]:
    """Cleans, splits and deduplicates records into corpus lines (dicts, see the module docstring), sorted by
    language, split and id."""
    records = list(records)
    splits = assign_splits(records)
    items: list[_Item] = []
    iterator: Iterable[TextRecord] = records
    if progress:
        from tqdm import tqdm

        iterator = tqdm(records, desc="cleaning", unit="rec", mininterval=2)
    for r in iterator:
        split = r.split or splits[r.source, r.document]
        cleaned = {}
        for lang, raw in r.texts.items():
            if lang not in languages:
                continue
            sents = [s for piece in split_sentences(raw, lang) if (s := clean_sentence(piece, lang))]
            if sents:
                cleaned[lang] = sents
        # Translations only where both sides are one sentence: then they are known to say the same thing.
        single = {lang: s[0].text for lang, s in cleaned.items() if len(s) == 1}
        for lang, sents in cleaned.items():
            translations = {o: t for o, t in single.items() if o != lang} if lang in single else {}
            for i, s in enumerate(sents):
                items.append(_Item(lang, split, r.source, r.document, r.license, (r.key, i), s, translations))
    # Dedup per language: keep one copy, in the most held-out split, then the first by (source, document, key),
    # so the result does not depend on the order the records came in.
    best: dict[tuple[str, str], _Item] = {}
    for it in items:
        k = (it.language, it.sentence.text)
        prev = best.get(k)
        if prev is None or (-_RANK[it.split], it.source, it.document, it.order) < (
            -_RANK[prev.split],
            prev.source,
            prev.document,
            prev.order,
        ):
            best[k] = it
    kept = sorted(best.values(), key=lambda it: (it.language, it.source, it.document, it.order, it.sentence.text))
    lines = []
    counters: Counter[tuple[str, str]] = Counter()
    for it in kept:
        counters[it.language, it.source] += 1
        line = {
            "id": f"{it.language}-{it.source}-{counters[it.language, it.source]:07d}",
            "language": it.language,
            "text": it.sentence.text,
            "display": it.sentence.display,
        }
        if it.translations:
            line["translations"] = dict(sorted(it.translations.items()))
        line.update(source=it.source, document=it.document, license=it.license, split=it.split)
        lines.append(line)
    lines.sort(key=lambda x: (x["language"], _RANK[x["split"]], x["id"]))
    return lines


def read_records(
    languages: Sequence[str],
    sources: Sequence[str],
    seed: int = 0,
    wesnoth: str | None = None,
    grammar_counts: dict[str, int] | None = None,
    progress: bool = True,
) -> list[TextRecord]:
    """Every record of `sources` in `languages`, in source order."""
    records: list[TextRecord] = []
    for name in sources:
        t0 = time.time()
        options: dict = {}
        if name == "grammar":
            options = {"seed": seed, "counts": grammar_counts}
        elif name == "wesnoth" and wesnoth:
            options = {"roots": [wesnoth]}
        elif name == "libreoffice":
            options = {"progress": progress}
        got = read_source(name, languages, **options)
        log.info("read %s: %d records in %.1f s", name, len(got), time.time() - t0)
        records += got
    return records


def build(out: Path, lines: list[dict], languages: Sequence[str]) -> dict:
    """Writes DIR/<lang>/<split>.jsonl, summary.json and CARD.md; returns the summary."""
    by_file: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for line in lines:
        by_file[line["language"], line["split"]].append(line)
    for lang in languages:
        (out / lang).mkdir(parents=True, exist_ok=True)
        for split in SPLITS:
            with open(out / lang / f"{split}.jsonl", "w", encoding="utf-8") as f:
                for line in by_file.get((lang, split), []):
                    f.write(json.dumps(line, ensure_ascii=False) + "\n")
    summary = summarize(lines, languages)
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (out / "CARD.md").write_text(card(summary), encoding="utf-8")
    return summary


def summarize(lines: Iterable[dict], languages: Sequence[str]) -> dict:
    """Sentences and distinct words (zh: characters) per language, source and split; licenses per source."""
    counts: dict = defaultdict(lambda: defaultdict(Counter))
    vocab: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(set)))
    docs: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(set)))
    licenses: dict[str, set[str]] = defaultdict(set)
    parallel: Counter[str] = Counter()
    for x in lines:
        lang, src, split = x["language"], x["source"], x["split"]
        counts[lang][src][split] += 1
        ws = words(x["text"], lang)
        for key in (src, "all"):
            vocab[lang][key][split].update(ws)
            vocab[lang][key]["all"].update(ws)
            docs[lang][key][split].add((src, x["document"]))
        licenses[src].add(x["license"])
        parallel[lang] += bool(x.get("translations"))
    table = {}
    for lang in languages:
        table[lang] = {}
        for src in [*sorted(counts[lang]), "all"]:
            row = {}
            for split in SPLITS:
                n = counts[lang][src][split] if src != "all" else sum(c[split] for c in counts[lang].values())
                row[split] = {
                    "sentences": n,
                    "words": len(vocab[lang][src][split]),
                    "documents": len(docs[lang][src][split]),
                }
            row["distinct_words_all_splits"] = len(vocab[lang][src]["all"])
            table[lang][src] = row
    return {
        "languages": list(languages),
        "fractions": {"test": TEST_FRACTION, "dev": DEV_FRACTION},
        "counts": table,
        "parallel_sentences": dict(parallel),
        "licenses": {k: sorted(v) for k, v in sorted(licenses.items())},
    }


def card(summary: dict) -> str:
    """The corpus card (Markdown) generated from the summary."""
    out = [
        "# Parley open-domain text corpus",
        "",
        "Generated by `parley text build` (models/data/textcorpus.py). Sentences are cleaned for speech, verbalized "
        "(models/data/verbalize.py), normalized with `parley.textnorm.normalize_text` and deduplicated per language. "
        f"Splits are by document: {summary['fractions']['test']:.0%} of each source's records (whole documents, in "
        f"hash order) go to test, {summary['fractions']['dev']:.0%} to dev; the grammar keeps its own split. No "
        "document and no normalized sentence is in two splits (the grammar's templates are shared across its splits).",
        "",
        "Counts: sentences / distinct words (zh: distinct characters) / documents.",
        "",
    ]
    for lang, rows in summary["counts"].items():
        out += [f"## {lang} ({summary['parallel_sentences'].get(lang, 0)} sentences with translations)", ""]
        out += ["| source | train | dev | test | distinct words |", "|---|---|---|---|---|"]
        for src, row in rows.items():
            cells = [f"{row[s]['sentences']:,} / {row[s]['words']:,} / {row[s]['documents']:,}" for s in SPLITS]
            name = f"**{src}**" if src == "all" else src
            out.append(f"| {name} | " + " | ".join(cells) + f" | {row['distinct_words_all_splits']:,} |")
        out.append("")
    out += ["## Licenses", "", "| source | license |", "|---|---|"]
    out += [f"| {src} | {'; '.join(lic)} |" for src, lic in summary["licenses"].items()]
    return "\n".join(out) + "\n"


def read_text_corpus(directory: str | Path, language: str, split: str) -> list[dict]:
    """The lines of DIR/<language>/<split>.jsonl written by `parley text build`."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    path = Path(directory) / language / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no text corpus for {language}/{split} (run `parley text build --out DIR`)")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """`parley text build`: parses `argv` and writes the corpus."""
    parser = argparse.ArgumentParser(prog="parley text build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder (DIR/<lang>/<split>.jsonl, CARD.md)")
    parser.add_argument("--languages", default=",".join(LANGUAGES), help="comma-separated (default: all six)")
    parser.add_argument("--sources", default=",".join(SOURCES), help=f"comma-separated (default: {','.join(SOURCES)})")
    parser.add_argument("--seed", type=int, default=0, help="grammar sampling seed (the split hash does not use it)")
    parser.add_argument(
        "--wesnoth",
        help="folder with Wesnoth .deb files or their extracted locale/ tree "
        "(default: /usr/share/games/wesnoth, $PARLEY_WESNOTH)",
    )
    parser.add_argument(
        "--grammar",
        default="3000,300,300,300",
        help="grammar sentences for train,dev,test,test_unseen (default: 3000,300,300,300)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    bad = [lang for lang in languages if lang not in LANGUAGES] + [s for s in sources if s not in SOURCES]
    if bad:
        parser.error(f"unknown language or source: {', '.join(bad)}")
    try:
        counts = dict(zip(("train", "dev", "test", "test_unseen"), map(int, args.grammar.split(",")), strict=True))
    except ValueError:
        parser.error("--grammar takes four integers: train,dev,test,test_unseen")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.time()
    records = read_records(languages, sources, args.seed, args.wesnoth, counts, progress=not args.no_progress)
    lines = corpus_items(records, languages, progress=not args.no_progress)
    summary = build(args.out, lines, languages)
    for lang in languages:
        row = summary["counts"][lang]["all"]
        log.info("%s: %s", lang, "  ".join(f"{s} {row[s]['sentences']:,}" for s in SPLITS))
    log.info("wrote %s in %.0f s", args.out, time.time() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
