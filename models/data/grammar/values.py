"""Slot values: what fills a template's slots, each able to say itself in every language.

Every value has a `key` (stable, unique within its slot, used for sentence ids) and `form(lang, how)`, which
returns the words for one grammatical use, named by `how` ("" is the plain form). Templates ask for these uses in
their format strings, e.g. "{room:in}" or "{time:at}", so one value serves "im wohnzimmer", "dans le salon" and
"nel soggiorno" alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from . import numbers
from .morphology import Noun, contract, inflect


class Value(Protocol):
    """The interface of every slot value."""

    @property
    def key(self) -> str: ...

    def form(self, lang: str, how: str = "") -> str: ...


@dataclass(frozen=True, eq=False)
class Entry:
    """A noun with its per-language `Noun` forms; hows are those of `morphology.inflect`."""

    key: str
    forms: Mapping[str, Noun]

    def form(self, lang: str, how: str = "") -> str:
        return inflect(lang, self.forms[lang], how)

    def gender(self, lang: str) -> str:
        return self.forms[lang].gender


@dataclass(frozen=True, eq=False)
class Phrase:
    """Fixed words per language: one string, or a mapping from how to string when several uses are needed."""

    key: str
    forms: Mapping[str, str | Mapping[str, str]]

    def form(self, lang: str, how: str = "") -> str:
        words = self.forms[lang]
        if isinstance(words, str):
            if how:
                raise KeyError(f"phrase {self.key!r} has only a plain form in {lang}, not {how!r}")
            return words
        return words[how]


@dataclass(frozen=True, eq=False)
class Person:
    """A first name: spelled alike in the Latin-script languages, transliterated in Chinese."""

    key: str
    zh: str

    def form(self, lang: str, how: str = "") -> str:
        if how:
            raise KeyError(f"a name has no form {how!r}")
        return self.zh if lang == "zh" else self.key


@dataclass(frozen=True, eq=False)
class Country:
    """A country; hows: "" (as a subject, with article where the language uses one), "acc" (de accusative),
    "to" (travel to), "in", "of", and "capital" (its capital city)."""

    key: str
    forms: Mapping[str, Noun]
    capital: Phrase

    def form(self, lang: str, how: str = "") -> str:
        if how == "capital":
            return self.capital.form(lang)
        noun = self.forms[lang]
        if lang == "zh":
            return noun.text
        if lang == "en":
            name = inflect("en", noun, "the")
            if how not in ("", "to", "in", "of"):
                raise KeyError(how)
            return f"{how} {name}".strip()
        if lang == "de":
            if how in ("", "acc"):
                return inflect("de", noun, how or "nom")
            if how == "to":
                return f"in {inflect('de', noun, 'acc')}" if noun.article else f"nach {noun.text}"
            return contract("de", {"in": "in", "of": "von"}[how], inflect("de", noun, "dat"))
        name = inflect(lang, noun, "def")
        if how == "":
            return name
        if how == "of":
            return contract(lang, {"es": "de", "fr": "de", "it": "di"}[lang], name)
        if how not in ("to", "in"):
            raise KeyError(how)
        if lang == "es":
            return contract("es", "a", name) if how == "to" else f"en {name}"
        if lang == "fr":
            if noun.plural:
                return f"aux {noun.text}"
            return f"en {noun.text}" if noun.gender == "f" or name.startswith("l'") else f"au {noun.text}"
        # Italian: "in giappone", but "negli stati uniti", "nel regno unito" keep their article.
        return contract("it", "in", name) if noun.plural or noun.loc == "art" else f"in {noun.text}"


# ---------------------------------------------------------------------------------------------------------------
# Numeric values


@dataclass(frozen=True)
class Number:
    """A number; how "" is the bare number, "m"/"f"/"n" the form counting a noun of that gender."""

    n: int

    @property
    def key(self) -> str:
        return str(self.n)

    def form(self, lang: str, how: str = "") -> str:
        return numbers.cardinal(lang, self.n, how or None)


@dataclass(frozen=True)
class Quantity:
    """Counted nouns, e.g. ((1, "hour"), (30, "minute")); units are keys of `numbers.UNITS`.

    hows: "" (German accusative), "nom", "acc", "dat", and "num" (only the number, in the form that counts the
    first unit: "veintiún", "两").
    """

    parts: tuple[tuple[int, str], ...]

    @property
    def key(self) -> str:
        return "".join(f"{n}{unit}" for n, unit in self.parts)

    def form(self, lang: str, how: str = "") -> str:
        if how == "num":
            n, unit = self.parts[0]
            return numbers.cardinal(lang, n, numbers.UNITS[unit][lang].gender)
        return numbers.duration(lang, self.parts, how or "acc")

    def singular(self, lang: str) -> bool:
        """Whether a verb agreeing with this quantity is singular ("there is one minute left")."""
        return len(self.parts) == 1 and numbers.is_singular(lang, self.parts[0][0])


@dataclass(frozen=True)
class ClockTime:
    """A time of day (see `numbers.clock_time`); hows: "" (es/it with article: "las siete"), "at" (en "at ...",
    de "um ...", es "a las ...", fr "à ...", it "alle ...", zh the time itself) and "of" (es "de las ...", fr "de
    ...", it "delle ...")."""

    hour: int
    minute: int
    colloquial: bool = False
    period: bool = False

    @property
    def key(self) -> str:
        return f"{'c' if self.colloquial else 'd'}{'p' if self.period else ''}{self.hour:02d}{self.minute:02d}"

    def form(self, lang: str, how: str = "") -> str:
        said = numbers.clock_time(lang, self.hour, self.minute, self.colloquial, self.period)
        if how == "":
            return said
        if how == "at":
            if lang in ("es", "it"):
                return contract(lang, "a", said)
            return {"en": "at ", "de": "um ", "fr": "à ", "zh": ""}[lang] + said
        if how == "of" and lang in ("es", "fr", "it"):
            return contract(lang, "di" if lang == "it" else "de", said)
        raise KeyError(how)

    def is_one(self) -> bool:
        """Whether es/it say the time with a singular verb: "es la una", "è l'una" (vs "son las dos")."""
        if not self.colloquial:
            return self.hour == 1
        h = self.hour % 12 or 12
        return (h if self.minute <= 30 else h % 12 + 1) == 1


@dataclass(frozen=True)
class Date:
    """A day of a month; hows: "" ("may first", "der erste mai", "el primero de mayo"), "on" ("on may first",
    "am ersten mai"), "bare" (es/fr/it without article, after a weekday)."""

    day: int
    month: int

    @property
    def key(self) -> str:
        return f"{self.month:02d}{self.day:02d}"

    def form(self, lang: str, how: str = "") -> str:
        if how == "bare":
            return numbers.bare_date(lang, self.day, self.month)
        if how not in ("", "on"):
            raise KeyError(how)
        return numbers.date(lang, self.day, self.month, on=how == "on")


@dataclass(frozen=True)
class Temperature:
    """Degrees Celsius; how "" is the German nominative, "acc" and "dat" the other cases."""

    degrees: int

    @property
    def key(self) -> str:
        return str(self.degrees)

    def form(self, lang: str, how: str = "") -> str:
        return numbers.temperature(lang, self.degrees, how or "nom")


@dataclass(frozen=True)
class Price:
    """An amount in euros; how "" is the German accusative ("einen euro"), "nom" the nominative."""

    euros: int
    cents: int = 0

    @property
    def key(self) -> str:
        return f"{self.euros}.{self.cents:02d}"

    def form(self, lang: str, how: str = "") -> str:
        return numbers.price(lang, self.euros, self.cents, how or "acc")


@dataclass(frozen=True)
class Percent:
    """A percentage; es and it put an article before it: hows "def" ("el ochenta", "l'ottanta"), "at" ("al",
    "all'ottanta") and "a" (es "un ochenta por ciento")."""

    n: int

    @property
    def key(self) -> str:
        return str(self.n)

    def form(self, lang: str, how: str = "") -> str:
        said = numbers.percent(lang, self.n)
        if how == "":
            return said
        if lang == "es":
            return {"def": f"el {said}", "at": f"al {said}", "a": f"un {said}"}[how]
        if lang == "it" and how in ("def", "at"):
            article = f"l'{said}" if said[0] in "aeiou" else f"il {said}"
            return article if how == "def" else contract("it", "a", article)
        raise KeyError(how)


@dataclass(frozen=True)
class Digits:
    """A digit string read digit by digit (French in pairs), like a phone number."""

    number: str

    @property
    def key(self) -> str:
        return self.number

    def form(self, lang: str, how: str = "") -> str:
        if how:
            raise KeyError(how)
        return numbers.digits(lang, self.number)


_OPERATORS = {
    "+": {"en": "plus", "de": "plus", "es": "más", "fr": "plus", "it": "più", "zh": "加"},
    "-": {"en": "minus", "de": "minus", "es": "menos", "fr": "moins", "it": "meno", "zh": "减"},
    "*": {"en": "times", "de": "mal", "es": "por", "fr": "fois", "it": "per", "zh": "乘以"},
    "/": {"en": "divided by", "de": "geteilt durch", "es": "dividido entre", "fr": "divisé par", "it": "diviso",
          "zh": "除以"},
}  # fmt: skip


@dataclass(frozen=True)
class Problem:
    """An arithmetic problem a op b; hows: "" (the expression) and "result"."""

    a: int
    op: str
    b: int

    @property
    def key(self) -> str:
        return f"{self.a}{self.op}{self.b}"

    def result(self) -> int:
        if self.op == "/":
            assert self.b and self.a % self.b == 0, f"{self.key} does not divide evenly"
            return self.a // self.b
        return {"+": self.a + self.b, "-": self.a - self.b, "*": self.a * self.b}[self.op]

    def form(self, lang: str, how: str = "") -> str:
        if how == "result":
            return numbers.cardinal(lang, self.result())
        if how:
            raise KeyError(how)
        a, b = numbers.cardinal(lang, self.a), numbers.cardinal(lang, self.b)
        return f"{a} {_OPERATORS[self.op][lang]} {b}"


@dataclass(frozen=True, eq=False)
class Count:
    """`n` things of one kind, e.g. three apples; `units` gives the thing's forms per language."""

    n: int
    thing: str
    units: Mapping[str, numbers.Unit]

    @property
    def key(self) -> str:
        return f"{self.n}{self.thing}"

    def form(self, lang: str, how: str = "") -> str:
        return numbers.quantity(lang, self.n, self.units[lang], how or "acc")


# ---------------------------------------------------------------------------------------------------------------
# Adverbials of time: when something should happen


@dataclass(frozen=True)
class At:
    """At a clock time, as an adverbial: "at half past seven", "um halb acht", "a las siete y media"."""

    time: ClockTime

    @property
    def key(self) -> str:
        return f"at{self.time.key}"

    def form(self, lang: str, how: str = "") -> str:
        return self.time.form(lang, "at")


@dataclass(frozen=True)
class In:
    """After a length of time: "in ten minutes", "in zehn minuten", "dentro de diez minutos", "十 分钟 后"."""

    length: Quantity

    @property
    def key(self) -> str:
        return f"in{self.length.key}"

    def form(self, lang: str, how: str = "") -> str:
        said = self.length.form(lang, "dat")
        return {"en": "in {}", "de": "in {}", "es": "dentro de {}", "fr": "dans {}", "it": "tra {}",
                "zh": "{} 后"}[lang].format(said)  # fmt: skip


@dataclass(frozen=True, eq=False)
class Both:
    """Two adverbials said one after the other: "tomorrow at seven", "morgen um sieben uhr"."""

    parts: Sequence[Value]

    @property
    def key(self) -> str:
        return "+".join(p.key for p in self.parts)

    def form(self, lang: str, how: str = "") -> str:
        return " ".join(p.form(lang) for p in self.parts)
