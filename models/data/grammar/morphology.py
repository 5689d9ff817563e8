"""Articles, prepositions and the sound rules that glue words together, per language.

A noun is stored once per language with its gender (`Noun`); `inflect` builds the phrases templates ask for by
name, e.g. the dative with "in" for German ("im wohnzimmer", "in der küche", "auf dem balkon"), "of the" for
French ("du salon", "de la cuisine", "de l'hôpital") or Italian ("del soggiorno", "dell'ufficio", "dello
stadio"). `contract` fuses a preposition with the article that follows it; `finish` applies the rules that work on
the finished sentence: French elision ("de anna" -> "d'anna", "que il" -> "qu'il") and Italian "ad" before a.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Noun:
    """A noun (or noun phrase) in one language.

    gender: "m", "f" or "n" (German neuter); ignored for en and zh.
    plural: the noun is plural ("die nudeln", "les pâtes").
    article: False for proper names, which take no article ("paris", "anna").
    loc: the preposition for "in/at" when it is not the language's usual one (de "auf" dem balkon, fr "sur" le
        balcon, it "su"); for Italian countries "art" keeps the article ("negli stati uniti").
    dative: German dative plural when it differs from the plural ("niederlanden").
    """

    text: str
    gender: str = "m"
    plural: bool = False
    article: bool = True
    loc: str = ""
    dative: str = ""


# ---------------------------------------------------------------------------------------------------------------
# Contractions of preposition + article

_CONTRACTIONS: dict[str, dict[tuple[str, str], str]] = {
    "de": {("in", "dem"): "im", ("in", "das"): "ins", ("an", "dem"): "am", ("an", "das"): "ans",
           ("zu", "dem"): "zum", ("zu", "der"): "zur", ("von", "dem"): "vom", ("bei", "dem"): "beim"},
    "es": {("a", "el"): "al", ("de", "el"): "del"},
    "fr": {("à", "le"): "au", ("à", "les"): "aux", ("de", "le"): "du", ("de", "les"): "des"},
}  # fmt: skip
# Italian articulated prepositions are regular: stem of the preposition + the article's tail (de+lla = della).
_IT_PREP_STEM = {"di": "de", "a": "a", "da": "da", "in": "ne", "su": "su"}
_IT_ARTICLE_TAIL = {"il": "l", "lo": "llo", "la": "lla", "i": "i", "gli": "gli", "le": "lle"}


def contract(lang: str, prep: str, phrase: str) -> str:
    """`prep` put before `phrase`, fused with the phrase's article where the language does so.

    >>> contract("it", "a", "l'una"), contract("es", "de", "el salón"), contract("de", "zu", "der apotheke")
    ("all'una", 'del salón', 'zur apotheke')
    """
    first, _, rest = phrase.partition(" ")
    if lang == "it" and prep in _IT_PREP_STEM:
        if phrase.startswith("l'"):
            return f"{_IT_PREP_STEM[prep]}ll'{phrase[2:]}"
        if first in _IT_ARTICLE_TAIL and rest:
            return f"{_IT_PREP_STEM[prep]}{_IT_ARTICLE_TAIL[first]} {rest}"
    fused = _CONTRACTIONS.get(lang, {}).get((prep, first))
    if fused and rest:
        return f"{fused} {rest}"
    return f"{prep} {phrase}"


# ---------------------------------------------------------------------------------------------------------------
# Sounds at the start of a word

_VOWELS = "aeiouàâäéèêëîïôöùûüœæ"
# French words whose h blocks elision (h aspiré), among those the grammar uses.
_FR_H_ASPIRE = ("hambourg", "hong", "hockey", "haricot", "hamburger", "halloween")
# Italian masculine words starting like these take lo/gli/uno.
_IT_LO = ("s", "z", "gn", "ps", "x", "y", "pn")


def _fr_elides(word: str) -> bool:
    if word.startswith(("onze", "huit", "oui", "ouat")):
        return False  # le onze, le huit: numbers keep their article whole
    if word.startswith("h"):
        return not word.startswith(_FR_H_ASPIRE)
    return word[:1] in _VOWELS


def _it_vowel(word: str) -> bool:
    return word[:1] in _VOWELS or word.startswith("h")


def _it_lo(word: str) -> bool:
    return word.startswith(_IT_LO) and not (word[0] == "s" and word[1:2] in _VOWELS)


def _en_an(word: str) -> bool:
    if word.startswith(("uni", "use", "usu", "eu", "one")):
        return False
    return word[:1] in "aeiou" or word.startswith(("hour", "honest"))


# ---------------------------------------------------------------------------------------------------------------
# Articles and possessives


def _key(noun: Noun) -> str:
    return "pl" if noun.plural else noun.gender


_DE_DEF = {"nom": {"m": "der", "f": "die", "n": "das", "pl": "die"},
           "acc": {"m": "den", "f": "die", "n": "das", "pl": "die"},
           "dat": {"m": "dem", "f": "der", "n": "dem", "pl": "den"}}  # fmt: skip
_DE_INDEF = {"nom": {"m": "ein", "f": "eine", "n": "ein"},
             "acc": {"m": "einen", "f": "eine", "n": "ein"},
             "dat": {"m": "einem", "f": "einer", "n": "einem"}}  # fmt: skip
_DE_POSS_ENDING = {"nom": {"m": "", "f": "e", "n": "", "pl": "e"},
                   "acc": {"m": "en", "f": "e", "n": "", "pl": "e"},
                   "dat": {"m": "em", "f": "er", "n": "em", "pl": "en"}}  # fmt: skip


def _de_noun(noun: Noun, case: str) -> str:
    return noun.dative if case == "dat" and noun.dative else noun.text


def _de(noun: Noun, how: str) -> str:
    if how in ("nom", "acc", "dat"):
        return f"{_DE_DEF[how][_key(noun)]} {_de_noun(noun, how)}" if noun.article else noun.text
    kind, _, case = how.partition("_")
    if kind == "a":
        return f"{_DE_INDEF[case][_key(noun)]} {noun.text}" if not noun.plural else noun.text
    if kind in ("my", "your"):
        stem = "mein" if kind == "my" else "dein"
        return f"{stem}{_DE_POSS_ENDING[case][_key(noun)]} {_de_noun(noun, case)}"
    if how in ("in", "zu", "von", "vor", "mit"):
        prep = noun.loc or how if how == "in" else how
        return contract("de", prep, _de(noun, "dat"))
    if how == "into":  # direction: ins wohnzimmer, in die küche, auf den balkon
        return contract("de", noun.loc or "in", _de(noun, "acc"))
    if how == "nearest":
        article = _DE_DEF["nom"][_key(noun)]
        return f"{article} nächste{'n' if noun.plural else ''} {noun.text}"
    raise KeyError(how)


def _es_def(noun: Noun) -> str:
    if not noun.article:
        return noun.text
    article = {"m": "el", "f": "la", "pl": ("las" if noun.gender == "f" else "los")}
    return f"{article.get(_key(noun), 'el')} {noun.text}"


def _es(noun: Noun, how: str) -> str:
    f = noun.gender == "f"
    if how == "def":
        return _es_def(noun)
    if how == "a":
        return ("unas " if f else "unos ") + noun.text if noun.plural else ("una " if f else "un ") + noun.text
    if how in ("my", "your"):
        return {"my": "mi", "your": "tu"}[how] + ("s " if noun.plural else " ") + noun.text
    if how in ("of", "to", "in"):
        return contract("es", {"of": "de", "to": "a", "in": noun.loc or "en"}[how], _es_def(noun))
    if how == "nearest":
        return f"{_es_def(noun)} más cercan{'a' if f else 'o'}{'s' if noun.plural else ''}"
    raise KeyError(how)


def _fr_def(noun: Noun) -> str:
    if not noun.article:
        return noun.text
    if noun.plural:
        return f"les {noun.text}"
    if _fr_elides(noun.text):
        return f"l'{noun.text}"
    return ("la " if noun.gender == "f" else "le ") + noun.text


def _fr(noun: Noun, how: str) -> str:
    f = noun.gender == "f"
    if how == "def":
        return _fr_def(noun)
    if how == "a":
        return f"des {noun.text}" if noun.plural else ("une " if f else "un ") + noun.text
    if how == "part":  # partitive: du lait, de la farine, de l'huile, des pâtes
        return contract("fr", "de", _fr_def(noun))
    if how in ("my", "your"):
        m, f_, pl = ("mon", "ma", "mes") if how == "my" else ("ton", "ta", "tes")
        article = pl if noun.plural else f_ if f and not _fr_elides(noun.text) else m
        return f"{article} {noun.text}"
    if how in ("of", "to", "in"):
        return contract("fr", {"of": "de", "to": "à", "in": noun.loc or "dans"}[how], _fr_def(noun))
    if how == "nearest":
        article = "les" if noun.plural else "la" if f else "le"
        return f"{_fr_def(noun)} {article} plus proche{'s' if noun.plural else ''}"
    raise KeyError(how)


def _it_def(noun: Noun) -> str:
    if not noun.article:
        return noun.text
    w = noun.text
    if noun.gender == "f":
        return f"le {w}" if noun.plural else f"l'{w}" if _it_vowel(w) else f"la {w}"
    if noun.plural:
        return f"gli {w}" if _it_vowel(w) or _it_lo(w) else f"i {w}"
    return f"l'{w}" if _it_vowel(w) else f"lo {w}" if _it_lo(w) else f"il {w}"


def _it(noun: Noun, how: str) -> str:
    f = noun.gender == "f"
    if how == "def":
        return _it_def(noun)
    if how == "a":
        if f:
            return f"un'{noun.text}" if _it_vowel(noun.text) else f"una {noun.text}"
        return f"uno {noun.text}" if _it_lo(noun.text) else f"un {noun.text}"
    if how in ("my", "your"):
        stem = "mi" if how == "my" else "tu"
        ending = ("e" if f else "oi") if noun.plural else ("a" if f else "o")
        if how == "my" and noun.plural and not f:
            ending = "ei"  # i miei
        return _it_def(Noun(f"{stem}{ending} {noun.text}", noun.gender, noun.plural))
    if how in ("of", "to", "from", "on", "in"):
        prep = {"of": "di", "to": "a", "from": "da", "on": "su", "in": noun.loc or "in"}[how]
        return contract("it", prep, _it_def(noun))
    if how == "nearest":
        ending = ("e" if f else "i") if noun.plural else ("a" if f else "o")
        return f"{_it_def(noun)} più vicin{ending}"
    raise KeyError(how)


def _en(noun: Noun, how: str) -> str:
    if how == "the":
        return f"the {noun.text}" if noun.article else noun.text
    if how == "in":
        return f"{noun.loc or 'in'} the {noun.text}"
    if how == "a":
        return f"{'an' if _en_an(noun.text) else 'a'} {noun.text}"
    if how in ("my", "your"):
        return f"{how} {noun.text}"
    if how == "nearest":
        return f"the nearest {noun.text}"
    raise KeyError(how)


_INFLECT = {"en": _en, "de": _de, "es": _es, "fr": _fr, "it": _it}


@cache
def inflect(lang: str, noun: Noun, how: str = "") -> str:
    """The phrase `how` of `noun` in `lang`; "" is the bare noun. Chinese has no articles: any `how` is the noun.

    hows, per language:
        en: the, a, in, my, your, nearest
        de: nom, acc, dat (definite), a_nom, a_acc, a_dat, my_*/your_* (with a case), in, into, zu, von, vor, mit,
            nearest
        es: def, a, my, your, of, to, in, nearest
        fr: def, a, part (partitive), my, your, of, to, in, nearest
        it: def, a, my, your, of, to, from, on, in, nearest
    """
    if not how or lang == "zh":
        return noun.text
    return _INFLECT[lang](noun, how)


# ---------------------------------------------------------------------------------------------------------------
# Rules on the finished sentence

# French: these short words lose their vowel before a vowel or mute h (de anna -> d'anna, que il -> qu'il).
_FR_ELISION = re.compile(r"\b(de|le|la|je|me|te|se|ne|que|ce|jusque) (?=([^\s]+))")
_FR_SI = re.compile(r"\bsi (?=ils?\b)")
# Italian: "a" becomes "ad" before a word starting with a (ad anna, ad amsterdam).
_IT_AD = re.compile(r"\ba (?=a)")


def _fr_elide(m: re.Match[str]) -> str:
    word, nxt = m.group(1), m.group(2)
    return f"{word[:-1]}'" if _fr_elides(nxt) else m.group(0)


def finish(lang: str, text: str) -> str:
    """Applies the sound rules that span word boundaries to a finished sentence."""
    if lang == "fr":
        return _FR_SI.sub("s'", _FR_ELISION.sub(_fr_elide, text))
    if lang == "it":
        return _IT_AD.sub("ad ", text)
    return text
