"""Writes numbers, dates, times, money, percents and abbreviations out as people say them.

Real text says "$5", "10:30", "z.B." and "2024年"; a speech corpus needs the words a reader speaks. One function
covers the six Parley languages; en, de, es, fr and it use num2words, Chinese has its own small numeral reader.

    >>> verbalize("Dr. Smith paid $5.50 at 10:30 on March 3, 2024.", "en")
    'Doctor Smith paid five dollars and fifty cents at ten thirty on March third, twenty twenty-four.'
    >>> verbalize("2024年3月15日，增长了50%", "zh")
    '二零二四年三月十五日，增长了百分之五十'

What is not recognized (roman numerals, units glued to codes like "MP3") is left as it is; the corpus cleaner
drops sentences that still contain digits.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from num2words import num2words

LANGUAGES = ("en", "de", "es", "fr", "it", "zh")

# Abbreviations written out, per language. Keys are matched case-sensitively at word boundaries; the sentence
# splitter also uses them to know which periods do not end a sentence.
ABBREVIATIONS: dict[str, dict[str, str]] = {
    "en": {
        "Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "Dr.": "Doctor", "Prof.": "Professor", "St.": "Saint",
        "Jr.": "Junior", "Sr.": "Senior", "Mt.": "Mount", "e.g.": "for example", "i.e.": "that is",
        "etc.": "et cetera", "vs.": "versus", "approx.": "approximately", "a.m.": "a m", "p.m.": "p m",
        "Gen.": "General", "Capt.": "Captain", "Lt.": "Lieutenant", "Col.": "Colonel", "Sgt.": "Sergeant",
        "Rev.": "Reverend", "Inc.": "Incorporated", "Ltd.": "Limited", "Co.": "Company", "U.S.": "U S",
    },
    "de": {
        "z.B.": "zum Beispiel", "z. B.": "zum Beispiel", "usw.": "und so weiter", "bzw.": "beziehungsweise",
        "d.h.": "das heißt", "d. h.": "das heißt", "u.a.": "unter anderem", "u. a.": "unter anderem",
        "ca.": "circa", "Dr.": "Doktor", "Prof.": "Professor", "Hr.": "Herr", "Hrn.": "Herrn", "Fr.": "Frau",
        "evtl.": "eventuell", "ggf.": "gegebenenfalls", "bzgl.": "bezüglich", "inkl.": "inklusive",
        "vgl.": "vergleiche", "z.T.": "zum Teil", "z. T.": "zum Teil", "o.ä.": "oder ähnlich",
        "o. ä.": "oder ähnlich", "Str.": "Straße", "St.": "Sankt", "Jh.": "Jahrhundert", "Mio.": "Millionen",
        "Mrd.": "Milliarden", "usf.": "und so fort", "s.o.": "siehe oben", "s.u.": "siehe unten", "ebd.": "ebenda",
        "Abb.": "Abbildung", "Tel.": "Telefon", "v.a.": "vor allem", "v. a.": "vor allem", "sog.": "sogenannte",
    },
    "es": {
        "Sr.": "señor", "Sra.": "señora", "Srta.": "señorita", "Dr.": "doctor", "Dra.": "doctora", "Ud.": "usted",
        "Uds.": "ustedes", "Vd.": "usted", "Vds.": "ustedes", "etc.": "etcétera", "p. ej.": "por ejemplo",
        "p.ej.": "por ejemplo", "EE. UU.": "Estados Unidos", "EE.UU.": "Estados Unidos", "Dña.": "doña",
        "pág.": "página", "aprox.": "aproximadamente", "Prof.": "profesor", "Sto.": "santo", "Sta.": "santa",
        "núm.": "número",
    },
    "fr": {
        "M.": "Monsieur", "MM.": "Messieurs", "Mme": "Madame", "Mmes": "Mesdames", "Mlle": "Mademoiselle",
        "Mlles": "Mesdemoiselles", "Dr": "Docteur", "Pr": "Professeur", "etc.": "et cetera",
        "p. ex.": "par exemple", "p.ex.": "par exemple", "c.-à-d.": "c'est-à-dire", "Ste": "Sainte",
        "av. J.-C.": "avant Jésus-Christ", "apr. J.-C.": "après Jésus-Christ", "env.": "environ",
    },
    "it": {
        "Sig.": "signor", "Sig.ra": "signora", "Sig.na": "signorina", "Sigg.": "signori", "Dott.": "dottor",
        "Dott.ssa": "dottoressa", "Prof.": "professor", "Prof.ssa": "professoressa", "ecc.": "eccetera",
        "per es.": "per esempio", "pag.": "pagina", "Avv.": "avvocato", "Ing.": "ingegner", "ca.": "circa",
    },
    "zh": {},
}  # fmt: skip

_MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"],
    "it": ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre", "ottobre",
           "novembre", "dicembre"],
}  # fmt: skip

# (singular, plural) currency names; the subunit for amounts with cents.
_CURRENCIES = {
    "en": {"$": ("dollar", "dollars"), "€": ("euro", "euros"), "£": ("pound", "pounds"), "¥": ("yen", "yen")},
    "de": {"$": ("Dollar", "Dollar"), "€": ("Euro", "Euro"), "£": ("Pfund", "Pfund"), "¥": ("Yen", "Yen")},
    "es": {"$": ("dólar", "dólares"), "€": ("euro", "euros"), "£": ("libra", "libras"), "¥": ("yen", "yenes")},
    "fr": {"$": ("dollar", "dollars"), "€": ("euro", "euros"), "£": ("livre", "livres"), "¥": ("yen", "yens")},
    "it": {"$": ("dollaro", "dollari"), "€": ("euro", "euro"), "£": ("sterlina", "sterline"), "¥": ("yen", "yen")},
}
_CURRENCY_CODES = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "Euro": "€", "euros": "€", "Euros": "€"}
_CENTS = {"en": ("cent", "cents"), "de": ("", ""), "es": ("", ""), "fr": ("", ""), "it": ("", "")}
_PERCENT = {"en": "percent", "de": "Prozent", "es": "por ciento", "fr": "pour cent", "it": "per cento"}
_MINUS = {"en": "minus", "de": "minus", "es": "menos", "fr": "moins", "it": "meno"}
_POINT = {"en": "point", "de": "Komma", "es": "coma", "fr": "virgule", "it": "virgola"}
_RANGE = {"en": "to", "de": "bis", "es": "a", "fr": "à", "it": "a"}
# "1" before a noun: the indefinite article form (gender is unknown; the masculine is the better guess).
_ONE_BEFORE_NOUN = {"de": "ein", "es": "un", "fr": "un", "it": "un"}

# A number as written: en groups thousands with commas and uses a decimal point; the others group with dots
# (or narrow spaces) and use a decimal comma, though a lone "3.5" is read as a decimal there too.
_NUM = {
    "en": r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?",
    "other": r"\d{1,3}(?:[.\u202f\u00a0]\d{3})+(?:,\d+)?|\d+(?:[,.]\d+)?",
}
_NOT_AFTER_LETTER = r"(?<![^\W\d_])"


def _num_pattern(lang: str) -> str:
    return _NUM["en"] if lang == "en" else _NUM["other"]


def _split_number(s: str, lang: str) -> tuple[int, str]:
    """'1,234.5' (en) / '1.234,5' (de) -> (1234, '5'); the fraction keeps its digits as written."""
    s = s.replace("\u202f", "").replace("\u00a0", "")
    if lang == "en":
        whole, _, frac = s.replace(",", "").partition(".")
    elif re.fullmatch(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?", s):
        whole, _, frac = s.replace(".", "").partition(",")
    else:
        whole, _, frac = s.replace(",", ".").partition(".")
    return int(whole), frac


def _cardinal(n: int, lang: str) -> str:
    if lang == "zh":
        return zh_cardinal(n)
    words = num2words(n, lang=lang)
    return words.replace(",", "") if lang == "en" else words


def _ordinal(n: int, lang: str) -> str:
    return num2words(n, lang=lang, to="ordinal")


def _year(n: int, lang: str) -> str:
    """Years as said: en "nineteen ninety-nine", de "neunzehnhundertneunundneunzig"; es/fr/it read cardinals."""
    if lang == "en" and 1100 <= n <= 2099:
        return num2words(n, lang="en", to="year")
    if lang == "de" and 1100 <= n <= 1999:
        return num2words(n, lang="de", to="year")
    return _cardinal(n, lang)


def _digits(s: str, lang: str) -> str:
    return " ".join(_cardinal(int(d), lang) for d in s)


def _number(s: str, lang: str) -> str:
    whole, frac = _split_number(s, lang)
    words = _cardinal(whole, lang)
    if frac:
        # Two-digit fractions without a leading zero are read as a number in the Romance languages ("tres coma
        # catorce"); English and German read fraction digits one by one.
        if lang in ("es", "fr", "it") and len(frac) <= 2 and not frac.startswith("0"):
            tail = _cardinal(int(frac), lang)
        else:
            tail = _digits(frac, lang)
        words = f"{words} {_POINT[lang]} {tail}"
    return words


def _feminine(words: str) -> str:
    return " ".join(w[:-1] + "a" if w.endswith("o") else w for w in words.split())


# ---------------------------------------------------------------------------------------------------- Chinese
_ZH_DIGITS = "零一二三四五六七八九"
_ZH_GROUPS = ("", "万", "亿", "万亿")


def _zh_group(n: int) -> str:
    """0 < n < 10000, with the zeros inside the group ("一千零五")."""
    out, zero = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = n // value % 10
        if d:
            out += ("零" if zero else "") + _ZH_DIGITS[d] + unit
            zero = False
        elif out:
            zero = True
    return out


def zh_cardinal(n: int) -> str:
    """Reads an integer in Mandarin: 1234 -> 一千二百三十四, 10 -> 十, 100010 -> 十万零一十."""
    if n < 0:
        return "负" + zh_cardinal(-n)
    if n == 0:
        return "零"
    groups = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    if len(groups) > len(_ZH_GROUPS):
        return zh_digits(str(sum(g * 10000**i for i, g in enumerate(groups))))
    out, pending_zero = "", False
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if g == 0:
            pending_zero = bool(out)
            continue
        if out and (pending_zero or g < 1000):
            out += "零"
        out += _zh_group(g) + _ZH_GROUPS[i]
        pending_zero = False
    return out[1:] if out.startswith("一十") else out


def zh_digits(s: str) -> str:
    """Reads digits one by one: "2024" -> 二零二四."""
    return "".join(_ZH_DIGITS[int(d)] for d in s if d.isdigit())


def _zh_number(s: str) -> str:
    s = s.replace(",", "")
    whole, _, frac = s.partition(".")
    # A leading zero marks a code or phone number: read digit by digit.
    words = zh_digits(whole) if len(whole) > 1 and whole.startswith("0") else zh_cardinal(int(whole))
    return words + ("点" + zh_digits(frac) if frac else "")


_ZH_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_ZH_CURRENCY = {"¥": "元", "￥": "元", "$": "美元", "€": "欧元", "£": "英镑"}


def _zh_time(m: re.Match) -> str:
    h, mi = int(m["h"]), int(m["m"])
    if mi == 0:
        return zh_cardinal(h) + "点"
    return zh_cardinal(h) + "点" + ("零" if mi < 10 else "") + zh_cardinal(mi) + "分"


_ZH_RULES: list[tuple[re.Pattern, Callable[[re.Match], str]]] = [
    (re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"),
     lambda m: f"{zh_digits(m['y'])}年{zh_cardinal(int(m['m']))}月{zh_cardinal(int(m['d']))}日"),
    (re.compile(r"(\d{2,4})(?=\s*年)"), lambda m: zh_digits(m[1])),
    (re.compile(r"(?<![\d.])(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?![\d:])"), _zh_time),
    (re.compile(rf"(?P<c>[¥￥$€£])\s?(?P<n>{_ZH_NUM})"), lambda m: _zh_number(m["n"]) + _ZH_CURRENCY[m["c"]]),
    (re.compile(rf"(?P<n>{_ZH_NUM})\s?%"), lambda m: "百分之" + _zh_number(m["n"])),
    (re.compile(rf"(?P<a>{_ZH_NUM})\s?[-~～—至]\s?(?P<b>{_ZH_NUM})"),
     lambda m: _zh_number(m["a"]) + "到" + _zh_number(m["b"])),
    (re.compile(rf"(?<![0-9A-Za-z.])-(?P<n>{_ZH_NUM})"), lambda m: "负" + _zh_number(m["n"])),
    (re.compile(_ZH_NUM), lambda m: _zh_number(m[0])),
]  # fmt: skip


def _verbalize_zh(text: str) -> str:
    for pattern, repl in _ZH_RULES:
        text = pattern.sub(repl, text)
    return text


# ------------------------------------------------------------------------------------ en, de, es, fr, it rules
def _month_index(name: str, lang: str) -> int | None:
    for i, month in enumerate(_MONTHS[lang]):
        if name.lower() == month.lower() or (
            lang == "en" and len(name) >= 3 and month.lower().startswith(name.lower())
        ):
            return i
    return None


def _say_date(day: int, month: int, year: int | None, lang: str, before: str = "") -> str:
    """The date as said in `lang`; `before` is the preceding word (German inflects the ordinal after it)."""
    name = _MONTHS[lang][month]
    y = "" if year is None else _year(year, lang)
    if lang == "en":
        return f"{name} {_ordinal(day, 'en')}" + (f", {y}" if y else "")
    if lang == "de":
        ordinal = _ordinal(day, "de")
        if before.lower() not in ("der", "die", "das"):
            ordinal += "n"  # "am dritten Mai", "vom ersten Juni"
        return f"{ordinal} {name}" + (f" {y}" if y else "")
    if lang == "fr":
        d = "premier" if day == 1 else _cardinal(day, "fr")
        return f"{d} {name}" + (f" {y}" if y else "")
    if lang == "it":
        d = "primo" if day == 1 else _cardinal(day, "it")
        return f"{d} {name}" + (f" {y}" if y else "")
    return f"{_cardinal(day, 'es')} de {name}" + (f" de {y}" if y else "")


def _valid_date(day: int, month: int) -> bool:
    return 1 <= day <= 31 and 1 <= month <= 12


def _date_rules(lang: str) -> list[tuple[re.Pattern, Callable[[re.Match], str]]]:
    months = "|".join(_MONTHS[lang]) + ("|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec" if lang == "en" else "")
    before = r"(?:(?P<before>\w+)\s+)?"
    rules: list[tuple[re.Pattern, Callable[[re.Match], str]]] = []

    def numeric(m: re.Match) -> str:
        d, mo = int(m["d"]), int(m["m"])
        if not _valid_date(d, mo):
            return m[0]
        lead = f"{m['before']} " if m["before"] else ""
        return lead + _say_date(d, mo - 1, int(m["y"]), lang, m["before"] or "")

    # ISO 2024-03-15 everywhere.
    rules.append((re.compile(before + r"\b(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})\b"), numeric))
    if lang == "en":
        # 3/15/2024: month first.
        rules.append((re.compile(before + r"\b(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})\b"), numeric))

        def month_day(m: re.Match) -> str:
            mo = _month_index(m["mon"], "en")
            if mo is None or not _valid_date(int(m["d"]), mo + 1):
                return m[0]
            year = int(m["y"]) if m["y"] else None
            return _say_date(int(m["d"]), mo, year, "en")

        def day_month(m: re.Match) -> str:
            mo = _month_index(m["mon"], "en")
            if mo is None or not _valid_date(int(m["d"]), mo + 1):
                return m[0]
            y = f" {_year(int(m['y']), 'en')}" if m["y"] else ""
            return f"the {_ordinal(int(m['d']), 'en')} of {_MONTHS['en'][mo]}{y}"

        rules.append((re.compile(rf"\b(?P<mon>{months})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<y>\d{{4}}))?\b"),
                      month_day))  # fmt: skip
        rules.append((re.compile(rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>{months})\b(?:,?\s+(?P<y>\d{{4}})\b)?"),
                      day_month))  # fmt: skip
        return rules
    sep = r"\." if lang == "de" else r"[/.]"
    rules.append((re.compile(before + rf"\b(?P<d>\d{{1,2}}){sep}(?P<m>\d{{1,2}}){sep}(?P<y>\d{{4}})\b"), numeric))

    def named(m: re.Match) -> str:
        mo = _month_index(m["mon"], lang)
        d = int(m["d"])
        if mo is None or not _valid_date(d, mo + 1):
            return m[0]
        lead = f"{m['before']} " if m["before"] else ""
        return lead + _say_date(d, mo, int(m["y"]) if m["y"] else None, lang, m["before"] or "")

    if lang == "de":
        day = r"(?P<d>\d{1,2})\.\s*"
    elif lang == "es":
        day = r"(?P<d>\d{1,2})(?:º|\.º)?\s+de\s+"
    elif lang == "fr":
        day = r"(?P<d>\d{1,2})(?:er)?\s+"
    else:
        day = r"(?P<d>\d{1,2})(?:º)?\s+"
    year = r"(?:\s+(?:de(?:l)?\s+)?(?P<y>\d{4}))?" if lang == "es" else r"(?:\s+(?P<y>\d{4}))?"
    rules.append((re.compile(before + rf"\b{day}(?P<mon>{months})\b{year}\b", re.IGNORECASE), named))
    return rules


def _time_rule(lang: str) -> tuple[re.Pattern, Callable[[re.Match], str]]:
    def say(m: re.Match) -> str:
        h, mi = int(m["h"]), int(m["m"] or 0)
        if lang == "en":
            if mi == 0:
                return f"{_cardinal(h, 'en')} o'clock" if not m["ampm"] else _cardinal(h, "en")
            minutes = f"oh {_cardinal(mi, 'en')}" if mi < 10 else _cardinal(mi, "en")
            return f"{_cardinal(h, 'en')} {minutes}"
        if lang == "de":
            hour = "ein" if h == 1 else _cardinal(h, "de")
            return f"{hour} Uhr" + (f" {_cardinal(mi, 'de')}" if mi else "")
        if lang == "fr":
            hour = "une heure" if h == 1 else f"{_cardinal(h, 'fr')} heures"
            return hour + (f" {_cardinal(mi, 'fr')}" if mi else "")
        hour = "una" if h == 1 else _cardinal(h, lang)
        joiner = "y" if lang == "es" else "e"
        return hour + (f" {joiner} {_cardinal(mi, lang)}" if mi else "")

    hour = r"(?P<h>[01]?\d|2[0-3])"
    if lang == "en":
        pattern = rf"\b{hour}:(?P<m>[0-5]\d)\b(?!:\d)(?=\s*(?P<ampm>[ap]\.?\s?m\b)?)"
    elif lang == "de":
        pattern = rf"\b{hour}[:.](?P<m>[0-5]\d)(?:\s*Uhr\b)|\b{hour.replace('h>', 'h2>')}:(?P<m2>[0-5]\d)\b(?!:\d)"
    elif lang == "fr":
        pattern = rf"\b{hour}(?::|\s?h\s?)(?P<m>[0-5]\d)?\b(?!:\d)"
    else:
        pattern = rf"\b{hour}:(?P<m>[0-5]\d)\b(?!:\d)(?:\s*h\b)?"
    compiled = re.compile(pattern)
    if lang == "de":

        def say_de(m: re.Match) -> str:
            h, mi = (m["h"], m["m"]) if m["h"] else (m["h2"], m["m2"])
            hour = "ein" if int(h) == 1 else _cardinal(int(h), "de")
            return f"{hour} Uhr" + (f" {_cardinal(int(mi), 'de')}" if int(mi) else "")

        return compiled, say_de
    return compiled, say


def _money_rules(lang: str) -> list[tuple[re.Pattern, Callable[[re.Match], str]]]:
    num = _num_pattern(lang)
    symbols = r"[$€£¥]"
    codes = "|".join(_CURRENCY_CODES)

    def say(symbol: str, amount: str) -> str:
        whole, frac = _split_number(amount, lang)
        one, many = _CURRENCIES[lang][symbol]
        n = _cardinal(whole, lang)
        if whole == 1:
            n = {"en": "one", "de": "ein", "es": "un", "fr": "un", "it": "un"}[lang]
        out = f"{n} {one if whole == 1 else many}"
        cents = int(frac.ljust(2, "0")[:2]) if frac else 0
        if cents:
            if lang == "en":
                unit = _CENTS["en"][0 if cents == 1 else 1]
                out += f" and {_cardinal(cents, 'en')} {unit}"
            elif lang == "es":
                out += f" con {_cardinal(cents, 'es')}"
            else:
                out += f" {_cardinal(cents, lang)}"
        return out

    return [
        (re.compile(rf"(?P<s>{symbols})\s?(?P<n>{num})"), lambda m: say(m["s"], m["n"])),
        (re.compile(rf"(?P<n>{num})\s?(?P<s>{symbols})"), lambda m: say(m["s"], m["n"])),
        (re.compile(rf"(?P<n>{num})\s(?P<c>{codes})\b"), lambda m: say(_CURRENCY_CODES[m["c"]], m["n"])),
        (re.compile(rf"\b(?P<c>USD|EUR|GBP)\s?(?P<n>{num})"), lambda m: say(_CURRENCY_CODES[m["c"]], m["n"])),
    ]


def _ordinal_rules(lang: str) -> list[tuple[re.Pattern, Callable[[re.Match], str]]]:
    if lang == "en":
        return [(re.compile(r"\b(\d+)(?:st|nd|rd|th)\b"), lambda m: _ordinal(int(m[1]), "en"))]
    if lang == "de":
        # "3." is an ordinal only after an article or preposition; elsewhere the period may end the sentence.
        def say(m: re.Match) -> str:
            words = _ordinal(int(m["n"]), "de")
            if m["before"].lower() not in ("der", "die", "das"):
                words += "n"
            return f"{m['before']} {words}"

        arts = "der|die|das|dem|den|des|am|im|zum|zur|vom|beim|ab|seit|ihr|ihrem|ihren|sein|seinem|seinen"
        return [(re.compile(rf"\b(?P<before>{arts})\s+(?P<n>\d{{1,3}})\.(?=\s+\w)", re.IGNORECASE), say)]
    if lang == "fr":
        return [
            (re.compile(r"\b1(?:er)\b"), lambda m: "premier"),
            (re.compile(r"\b1(?:re|ère)\b"), lambda m: "première"),
            (re.compile(r"\b(\d+)(?:e|ème|eme)\b"), lambda m: _ordinal(int(m[1]), "fr")),
        ]
    # es, it: 1º / 1.º masculine, 1ª / 1.ª feminine.
    rules: list[tuple[re.Pattern, Callable[[re.Match], str]]] = [
        (re.compile(r"\b(\d+)\.?º"), lambda m: _ordinal(int(m[1]), lang)),
        (re.compile(r"\b(\d+)\.?ª"), lambda m: _feminine(_ordinal(int(m[1]), lang))),
    ]
    if lang == "es":
        rules.insert(0, (re.compile(r"\b1\.?er\b"), lambda m: "primer"))
    return rules


def _number_rules(lang: str) -> list[tuple[re.Pattern, Callable[[re.Match], str]]]:
    num = _num_pattern(lang)
    rules: list[tuple[re.Pattern, Callable[[re.Match], str]]] = [
        (re.compile(rf"{_NOT_AFTER_LETTER}(?P<n>{num})\s?%"), lambda m: f"{_number(m['n'], lang)} {_PERCENT[lang]}"),
        (re.compile(rf"{_NOT_AFTER_LETTER}(?P<a>\d+)\s?[-–]\s?(?P<b>\d+)\b(?![-–.,]\d)"),
         lambda m: f"{_plain(m['a'], lang)} {_RANGE[lang]} {_plain(m['b'], lang)}"),
        (re.compile(rf"(?:(?<=\s)|^)[-−](?P<n>{num})\b"), lambda m: f"{_MINUS[lang]} {_number(m['n'], lang)}"),
    ]  # fmt: skip
    if lang == "en":
        rules.append((re.compile(r"\b(1[1-9]\d0|20[0-9]0)s\b"), lambda m: _plural_en(_year(int(m[1]), "en"))))
    if lang in _ONE_BEFORE_NOUN:
        article = _ONE_BEFORE_NOUN[lang]
        noun = r"(?=\s+[A-ZÄÖÜ][a-zäöüß])" if lang == "de" else r"(?=\s+[a-zàèéìòùáíóúñç])"
        rules.append((re.compile(rf"{_NOT_AFTER_LETTER}\b1\b(?![.,]\d){noun}"), lambda m: article))
    rules.append((re.compile(rf"{_NOT_AFTER_LETTER}(?P<n>{num})"), lambda m: _plain(m["n"], lang)))
    return rules


def _plain(s: str, lang: str) -> str:
    """A bare number: a year when it looks like one (4 digits, no separator), else a cardinal or decimal."""
    if len(s) > 1 and s.startswith("0") and s.isdigit():
        return _digits(s, lang)
    if re.fullmatch(r"\d{4}", s):
        return _year(int(s), lang)
    return _number(s, lang)


def _plural_en(words: str) -> str:
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


@functools.cache
def _abbreviation_rule(lang: str) -> tuple[re.Pattern, Callable[[re.Match], str]] | None:
    table = dict(ABBREVIATIONS[lang])
    if not table:
        return None
    keys = sorted(table, key=len, reverse=True)
    # A key ending in a letter must not run into the next word; one ending in "." may be followed by anything.
    alternatives = "|".join(re.escape(k) + ("" if k.endswith(".") else r"(?!\w)") for k in keys)
    pattern = re.compile(rf"(?<![\w.])(?:{alternatives})")

    def expand(m: re.Match) -> str:
        # An abbreviation's period also ends the sentence when nothing follows it.
        end = "." if m[0].endswith(".") and m.end() == len(m.string) else ""
        return table[m[0]] + end

    return pattern, expand


_RULES: dict[str, list[tuple[re.Pattern, Callable[[re.Match], str]]]] = {}


def _rules(lang: str) -> list[tuple[re.Pattern, Callable[[re.Match], str]]]:
    if lang not in _RULES:
        rules = _date_rules(lang)
        rules.append(_time_rule(lang))
        rules += _money_rules(lang)
        rules += _ordinal_rules(lang)
        rules += _number_rules(lang)
        _RULES[lang] = rules
    return _RULES[lang]


_AMPERSAND = {"en": "and", "de": "und", "es": "y", "fr": "et", "it": "e"}
# Full-width digits and number signs (common in Chinese text) fold to ASCII so that one set of patterns reads
# them; full-width punctuation such as "，" stays as written.
_FOLD = {c: c - 0xFEE0 for c in [*range(0xFF10, 0xFF1A), 0xFF05, 0xFF0E, 0xFF0D, 0xFF04]}


def base_language(language: str) -> str:
    """'en-US' -> 'en', 'zh_CN' / 'cmn' -> 'zh'; raises ValueError for a language this module cannot read."""
    base = language.strip().lower().replace("_", "-").split("-", 1)[0]
    base = "zh" if base == "cmn" else base
    if base not in LANGUAGES:
        raise ValueError(f"verbalize: unsupported language {language!r}; expected one of {LANGUAGES}")
    return base


def reads(language: str) -> bool:
    """Whether `verbalize` reads `language` (any tag of the six languages: "en-US", "cmn")."""
    try:
        base_language(language)
    except ValueError:
        return False
    return True


def verbalize(text: str, language: str) -> str:
    """Returns `text` with numbers, dates, times, money, percents and abbreviations written as words.

    Case and punctuation are kept (this is the display form); normalize afterwards for the caption form.
    """
    lang = base_language(language)
    text = text.translate(_FOLD) if lang == "zh" else text
    if lang == "zh":
        return _verbalize_zh(text) if any(c.isdigit() for c in text) else text
    text = re.sub(r"\s&\s", f" {_AMPERSAND[lang]} ", text)
    abbreviation = _abbreviation_rule(lang)
    if abbreviation:
        text = abbreviation[0].sub(abbreviation[1], text)
    if any(c.isdigit() for c in text):
        for pattern, repl in _rules(lang):
            text = pattern.sub(repl, text)
    return re.sub(r"[ \t]{2,}", " ", text)
