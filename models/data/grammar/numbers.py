"""Numbers, clock times, dates and quantities as people say them, in every language of the grammar.

    >>> cardinal("fr", 97), cardinal("es", 21, gender="m"), cardinal("zh", 105)
    ('quatre-vingt-dix-sept', 'veintiún', '一百零五')
    >>> clock_time("de", 19, 30, colloquial=True), duration("it", [(1, "hour")])
    ('halb acht', "un'ora")

Conventions chosen where a language has more than one correct form (kept consistent everywhere):
en says "one hundred and five"; de "hundertzwei", "tausend" (no "ein-"); es "el primero de mayo"; it
"centouno" and "centotto"; zh 两 before 百, 千 and 万 when it leads the number ("两千") and for counted nouns
("两 个 小时"), 二 elsewhere ("二十二", "十二"). Chinese output is word-segmented with spaces: a number is one
word, and so are classifiers and units ("两 个 小时", "七 点 半").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

_EN_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
_EN_TENS = (
    "_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
)  # fmt: skip
_EN_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
               "nine": "ninth", "twelve": "twelfth"}  # fmt: skip
_DE_ONES = (
    "null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn", "elf",
    "zwölf", "dreizehn", "vierzehn", "fünfzehn", "sechzehn", "siebzehn", "achtzehn", "neunzehn",
)  # fmt: skip
_DE_TENS = (
    "_", "_", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig", "achtzig", "neunzig",
)  # fmt: skip
_ES_ONES = (
    "cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez", "once",
    "doce", "trece", "catorce", "quince", "dieciséis", "diecisiete", "dieciocho", "diecinueve", "veinte",
    "veintiuno", "veintidós", "veintitrés", "veinticuatro", "veinticinco", "veintiséis", "veintisiete",
    "veintiocho", "veintinueve",
)  # fmt: skip
_ES_TENS = (
    "_", "_", "_", "treinta", "cuarenta", "cincuenta", "sesenta", "setenta", "ochenta", "noventa",
)  # fmt: skip
_ES_HUNDREDS = (
    "_", "ciento", "doscientos", "trescientos", "cuatrocientos", "quinientos", "seiscientos",
    "setecientos", "ochocientos", "novecientos",
)  # fmt: skip
_ES_ORDINAL = (
    "_", "primero", "segundo", "tercero", "cuarto", "quinto", "sexto", "séptimo", "octavo", "noveno",
    "décimo", "undécimo", "duodécimo", "decimotercero", "decimocuarto", "decimoquinto", "decimosexto",
    "decimoséptimo", "decimoctavo", "decimonoveno",
)  # fmt: skip
_ES_ORDINAL_TENS = (
    "_", "_", "vigésimo", "trigésimo", "cuadragésimo", "quincuagésimo", "sexagésimo", "septuagésimo",
    "octogésimo", "nonagésimo",
)  # fmt: skip
_FR_ONES = (
    "zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze", "douze",
    "treize", "quatorze", "quinze", "seize", "dix-sept", "dix-huit", "dix-neuf",
)  # fmt: skip
_FR_TENS = (
    "_", "_", "vingt", "trente", "quarante", "cinquante", "soixante",
)  # fmt: skip
_IT_ONES = (
    "zero", "uno", "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove", "dieci", "undici",
    "dodici", "tredici", "quattordici", "quindici", "sedici", "diciassette", "diciotto", "diciannove",
)  # fmt: skip
_IT_TENS = (
    "_", "_", "venti", "trenta", "quaranta", "cinquanta", "sessanta", "settanta", "ottanta", "novanta",
)  # fmt: skip
_IT_ORDINAL = (
    "_", "primo", "secondo", "terzo", "quarto", "quinto", "sesto", "settimo", "ottavo", "nono", "decimo",
)  # fmt: skip

_ZH_DIGITS = "零一二三四五六七八九"

MONTHS: dict[str, tuple[str, ...]] = {
    "en": ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"),
    "de": ("januar", "februar", "märz", "april", "mai", "juni", "juli", "august", "september", "oktober",
           "november", "dezember"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "it": ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre", "ottobre",
           "novembre", "dicembre"),
    "zh": ("一月", "二月", "三月", "四月", "五月", "六月", "七月", "八月", "九月", "十月", "十一月", "十二月"),
}  # fmt: skip
DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February as in a leap year: every date exists

# Parts of the day used with colloquial times, as (first hour, last hour, words); hours outside them have none.
_PERIODS: dict[str, tuple[tuple[int, int, str], ...]] = {
    "en": ((6, 11, "in the morning"), (13, 17, "in the afternoon"), (18, 22, "in the evening")),
    "de": ((6, 11, "morgens"), (13, 17, "nachmittags"), (18, 22, "abends")),
    "es": ((6, 11, "de la mañana"), (13, 20, "de la tarde"), (21, 22, "de la noche")),
    "fr": ((6, 11, "du matin"), (13, 17, "de l'après-midi"), (18, 22, "du soir")),
    "it": ((6, 11, "di mattina"), (13, 17, "del pomeriggio"), (18, 22, "di sera")),
    "zh": ((6, 8, "早上"), (9, 11, "上午"), (13, 17, "下午"), (18, 22, "晚上")),
}


# ---------------------------------------------------------------------------------------------------------------
# Cardinals and ordinals


def _en(n: int) -> str:
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        t, u = divmod(n, 10)
        return _EN_TENS[t] + (f" {_EN_ONES[u]}" if u else "")
    if n < 1000:
        h, r = divmod(n, 100)
        return f"{_EN_ONES[h]} hundred" + (f" and {_en(r)}" if r else "")
    k, r = divmod(n, 1000)
    return f"{_en(k)} thousand" + ("" if not r else f" and {_en(r)}" if r < 100 else f" {_en(r)}")


def _de(n: int) -> str:
    if n < 20:
        return _DE_ONES[n]
    if n < 100:
        t, u = divmod(n, 10)
        return ("ein" if u == 1 else _DE_ONES[u]) + "und" + _DE_TENS[t] if u else _DE_TENS[t]
    if n < 1000:
        h, r = divmod(n, 100)
        return ("" if h == 1 else _de_factor(h)) + "hundert" + (_de(r) if r else "")
    k, r = divmod(n, 1000)
    return ("" if k == 1 else _de_factor(k)) + "tausend" + (_de(r) if r else "")


def _de_factor(n: int) -> str:
    # A multiplier before hundert/tausend: "ein" not "eins" (einundzwanzigtausend, hunderteintausend).
    word = _de(n)
    return word[:-1] if word.endswith("eins") else word


def _es(n: int, gender: str | None) -> str:
    """Spanish; gender None for the bare number, "m"/"f" before a noun (un, veintiún / una, veintiuna)."""
    if n < 30:
        word = _ES_ONES[n]
    elif n < 100:
        t, u = divmod(n, 10)
        word = _ES_TENS[t] + (f" y {_ES_ONES[u]}" if u else "")
    elif n < 1000:
        h, r = divmod(n, 100)
        hundreds = "cien" if n == 100 else _ES_HUNDREDS[h]
        if gender == "f" and h > 1:
            hundreds = hundreds[:-2] + "as"  # doscientas personas
        return hundreds + (f" {_es(r, gender)}" if r else "")
    else:
        k, r = divmod(n, 1000)
        thousands = "mil" if k == 1 else f"{_es(k, 'f' if gender == 'f' else 'm')} mil"
        return thousands + (f" {_es(r, gender)}" if r else "")
    if word.endswith("uno") and gender is not None:
        if gender == "f":
            return word[:-1] + "a"
        return "veintiún" if n == 21 else word[:-1]
    return word


def _fr(n: int, gender: str | None = None, final: bool = True) -> str:
    """French, traditional spelling; `final` is False before "mille", where vingts/cents lose their s."""
    if n < 1000:
        h, r = divmod(n, 100)
        if h == 0:
            word = _fr_below_100(r, final)
        else:
            hundreds = "cent" if h == 1 else f"{_FR_ONES[h]} cent" + ("s" if r == 0 and final else "")
            word = hundreds + (f" {_fr_below_100(r, final)}" if r else "")
    else:
        k, r = divmod(n, 1000)
        word = ("mille" if k == 1 else f"{_fr(k, final=False)} mille") + (f" {_fr(r)}" if r else "")
    if gender == "f" and (word == "un" or word.endswith((" un", "-un"))):
        word += "e"
    return word


def _fr_below_100(n: int, final: bool) -> str:
    if n < 20:
        return _FR_ONES[n]
    t, u = divmod(n, 10)
    if t == 7:
        return "soixante et onze" if u == 1 else f"soixante-{_FR_ONES[10 + u]}"
    if t == 8:
        return ("quatre-vingts" if final else "quatre-vingt") if u == 0 else f"quatre-vingt-{_FR_ONES[u]}"
    if t == 9:
        return f"quatre-vingt-{_FR_ONES[10 + u]}"
    return _FR_TENS[t] + ("" if u == 0 else " et un" if u == 1 else f"-{_FR_ONES[u]}")


def _it(n: int) -> str:
    word = _it_plain(n)
    if n > 20 and n % 10 == 3 and n % 100 != 13:
        word = word[:-3] + "tré"  # ventitré, centotré: a final "tre" in a compound is stressed
    return word


def _it_plain(n: int) -> str:
    if n < 20:
        return _IT_ONES[n]
    if n < 100:
        t, u = divmod(n, 10)
        tens = _IT_TENS[t]
        return (tens[:-1] if u in (1, 8) else tens) + (_IT_ONES[u] if u else "")  # ventuno, ventotto
    if n < 1000:
        h, r = divmod(n, 100)
        hundreds = "cento" if h == 1 else f"{_IT_ONES[h]}cento"
        rest = _it_plain(r) if r else ""
        if rest.startswith("o"):
            hundreds = hundreds[:-1]  # centotto, centottanta
        return hundreds + rest
    k, r = divmod(n, 1000)
    return ("mille" if k == 1 else f"{_it_plain(k)}mila") + (_it_plain(r) if r else "")


def _zh(n: int, count: bool = False) -> str:
    """Chinese; `count` gives the form before a classifier or counted noun (两 for 2)."""
    if n == 0:
        return "零"
    if n == 2 and count:
        return "两"
    if n >= 10000:
        high, low = divmod(n, 10000)
        if low == 0:
            return _zh(high, count=True) + "万"
        return _zh(high, count=True) + "万" + ("零" if low < 1000 else "") + _zh_below_10000(low, False)
    return _zh_below_10000(n, True)


def _zh_below_10000(n: int, leading: bool) -> str:
    out: list[str] = []
    gap = False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = n // value % 10
        if d == 0:
            gap = bool(out)
            continue
        if gap:
            out.append("零")
            gap = False
        if leading and not out and d == 2 and unit in ("千", "百"):
            out.append("两" + unit)
        elif leading and not out and d == 1 and unit == "十":
            out.append("十")  # 十二, not 一十二, when the number starts there
        else:
            out.append(_ZH_DIGITS[d] + unit)
    return "".join(out)


@cache
def cardinal(lang: str, n: int, gender: str | None = None) -> str:
    """The cardinal number `n` (0 <= n < 100 000 000; Latin-script languages up to 999 999).

    Args:
        lang: one of the grammar's languages.
        n: the number.
        gender: None for the number on its own (counting, arithmetic, scores, clock minutes). Otherwise the
            grammatical gender ("m", "f" or "n") of the noun the number counts: it selects de "ein"/"eine",
            es "un"/"una", "veintiún"/"veintiuna", "doscientas", fr "une", "vingt et une", it "un"/"una", and
            zh 两 for two (Chinese counts every noun with 两, whatever its gender).
    """
    if not 0 <= n < (100_000_000 if lang == "zh" else 1_000_000):
        raise ValueError(f"cardinal({lang!r}, {n}): out of range")
    if lang == "en":
        return _en(n)
    if lang == "de":
        if n == 1 and gender is not None:
            return "eine" if gender == "f" else "ein"
        return _de(n)
    if lang == "es":
        return _es(n, None if gender is None else "f" if gender == "f" else "m")
    if lang == "fr":
        return _fr(n, gender)
    if lang == "it":
        if n == 1 and gender is not None:
            return "una" if gender == "f" else "un"
        return _it(n)
    if lang == "zh":
        return _zh(n, count=gender is not None)
    raise ValueError(f"unknown language {lang!r}")


@cache
def ordinal(lang: str, n: int) -> str:
    """The masculine ordinal of `n` (1 <= n <= 99), as used for days of the month: "twenty first", "einundzwanzigste",
    "vigésimo primero", "vingt et unième", "ventunesimo", "第二十一"."""
    if not 1 <= n <= 99:
        raise ValueError(f"ordinal({lang!r}, {n}): out of range")
    if lang == "en":
        *head, last = _en(n).split()
        last = _EN_ORDINAL.get(last, last[:-1] + "ieth" if last.endswith("y") else last + "th")
        return " ".join([*head, last])
    if lang == "de":
        if n < 20:
            return {1: "erste", 3: "dritte", 7: "siebte", 8: "achte"}.get(n, _de(n) + "te")
        return _de(n) + "ste"
    if lang == "es":
        if n < 20:
            return _ES_ORDINAL[n]
        t, u = divmod(n, 10)
        return _ES_ORDINAL_TENS[t] + (f" {_ES_ORDINAL[u]}" if u else "")
    if lang == "fr":
        if n == 1:
            return "premier"
        word = _fr(n)
        if word.endswith("cinq"):
            return word + "uième"
        if word.endswith("neuf"):
            return word[:-1] + "vième"
        if word.endswith(("e", "vingts", "cents")):
            word = word[:-1]  # quatrième, onzième, trentième, quatre-vingtième
        return word + "ième"
    if lang == "it":
        if n <= 10:
            return _IT_ORDINAL[n]
        word = _it(n)
        if word.endswith("tré"):
            return word[:-1] + "eesimo"
        if word.endswith("sei"):
            return word + "esimo"
        return word[:-1] + "esimo"
    if lang == "zh":
        return "第" + _zh(n)
    raise ValueError(f"unknown language {lang!r}")


def digits(lang: str, number: str) -> str:
    """A string of digits read one by one, as phone numbers are; French reads them in pairs ("zéro six douze")."""
    if not number.isdigit():
        raise ValueError(f"digits(): not a digit string: {number!r}")
    if lang == "fr" and len(number) % 2 == 0:
        pairs = [number[i : i + 2] for i in range(0, len(number), 2)]
        return " ".join(f"zéro {_fr(int(p))}" if p[0] == "0" else _fr(int(p)) for p in pairs)
    return " ".join(cardinal(lang, int(d)) for d in number)


# ---------------------------------------------------------------------------------------------------------------
# Clock times and dates


def _period(lang: str, hour: int) -> str:
    for first, last, words in _PERIODS[lang]:
        if first <= hour <= last:
            return words
    raise ValueError(f"no part of the day for {hour}:00 in {lang!r} (periods cover 6-11 and 13-22)")


def _hour_phrase(lang: str, hour: int) -> str:
    """An hour as the head of a clock time, with the article es and it put before it."""
    if lang == "en":
        return _en(hour)
    if lang == "de":
        return "ein" if hour == 1 else _de(hour)
    if lang == "es":
        return "la una" if hour == 1 else f"las {_es(hour, 'f')}"  # las veintiuna: horas is feminine
    if lang == "fr":
        return f"{_fr(hour, 'f')} heure" + ("" if hour < 2 else "s")
    if lang == "it":
        return "l'una" if hour == 1 else f"le {_it(hour)}"
    if lang == "zh":
        return f"{_zh(hour, count=True)} 点"
    raise ValueError(f"unknown language {lang!r}")


def _digital(lang: str, hour: int, minute: int) -> str:
    head = _hour_phrase(lang, hour)
    if lang == "en":
        if minute == 0:
            return f"{head} o'clock" if 1 <= hour <= 12 else f"{head} hundred"
        return f"{head} " + (f"oh {_en(minute)}" if minute < 10 else _en(minute))
    if lang == "de":
        return f"{head} uhr" + (f" {_de(minute)}" if minute else "")
    if lang == "es":
        return head + (f" y {_es(minute, None)}" if minute else "")
    if lang == "fr":
        return head + (f" {_fr(minute, 'f')}" if minute else "")  # vingt et une: minutes are feminine
    if lang == "it":
        return head + (f" e {_it(minute)}" if minute else "")
    if lang == "zh":
        return head + ("" if minute == 0 else f" 零{_zh(minute)} 分" if minute < 10 else f" {_zh(minute)} 分")
    raise ValueError(f"unknown language {lang!r}")


def _colloquial(lang: str, hour: int, minute: int) -> str:
    h = hour % 12 or 12
    nxt = h % 12 + 1
    if lang == "en":
        if minute == 0:
            return f"{_en(h)} o'clock"
        words = {15: "quarter", 30: "half", 45: "quarter"}.get(minute)
        m = minute if minute < 30 else 60 - minute
        words = words or (_en(m) if m % 5 == 0 else f"{_en(m)} minute" + ("s" if m > 1 else ""))
        return f"{words} past {_en(h)}" if minute <= 30 else f"{words} to {_en(nxt)}"
    if lang == "de":
        name = {h: "eins" if h == 1 else _de(h), nxt: "eins" if nxt == 1 else _de(nxt)}
        fixed = {0: f"{_hour_phrase('de', h)} uhr", 15: f"viertel nach {name[h]}", 30: f"halb {name[nxt]}",
                 45: f"viertel vor {name[nxt]}", 25: f"fünf vor halb {name[nxt]}",
                 35: f"fünf nach halb {name[nxt]}"}  # fmt: skip
        if minute in fixed:
            return fixed[minute]
        m = minute if minute < 30 else 60 - minute
        words = _de(m) if m % 5 == 0 else ("eine minute" if m == 1 else f"{_de(m)} minuten")
        return f"{words} nach {name[h]}" if minute < 30 else f"{words} vor {name[nxt]}"
    if lang in ("es", "it"):
        past, to = (" y ", " menos ") if lang == "es" else (" e ", " meno ")
        quarter, half = ("cuarto", "media") if lang == "es" else ("un quarto", "mezza")
        number = (lambda m: _es(m, None)) if lang == "es" else _it
        if minute == 0:
            return _hour_phrase(lang, h)
        if minute <= 30:
            return _hour_phrase(lang, h) + past + {15: quarter, 30: half}.get(minute, number(minute))
        return _hour_phrase(lang, nxt) + to + (quarter if minute == 45 else number(60 - minute))
    if lang == "fr":
        if minute == 0:
            return _hour_phrase("fr", h)
        if minute <= 30:
            return _hour_phrase("fr", h) + {15: " et quart", 30: " et demie"}.get(minute, f" {_fr(minute, 'f')}")
        return _hour_phrase("fr", nxt) + (" moins le quart" if minute == 45 else f" moins {_fr(60 - minute, 'f')}")
    if lang == "zh":
        tail = {0: "", 15: " 一刻", 30: " 半", 45: " 三刻"}.get(minute)
        if tail is None:
            tail = f" 零{_zh(minute)} 分" if minute < 10 else f" {_zh(minute)} 分"
        return _hour_phrase("zh", h) + tail
    raise ValueError(f"unknown language {lang!r}")


@cache
def clock_time(lang: str, hour: int, minute: int, colloquial: bool = False, period: bool = False) -> str:
    """A time of day, without the preposition "at" (es and it include the article: "las siete", "l'una").

    Args:
        lang: one of the grammar's languages.
        hour: 0..23.
        minute: 0..59.
        colloquial: False reads a 24-hour clock ("nineteen thirty", "neunzehn uhr dreißig", "las diecinueve y
            treinta", "dix-neuf heures trente", "le diciannove e trenta", "十九 点 三十 分"). True says it the
            everyday 12-hour way ("half past seven", "halb acht", "las siete y media", "sept heures et demie",
            "le sette e mezza", "七 点 半").
        period: with `colloquial`, adds the part of the day taken from `hour` ("in the evening", "abends", "de la
            tarde", "du soir", "di sera", 晚上 before the time in zh). Needs an hour in 6..11 or 13..22.
    """
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"clock_time(): no time {hour}:{minute:02d}")
    if not colloquial:
        if period:
            raise ValueError("clock_time(): a 24-hour time takes no part of the day")
        return _digital(lang, hour, minute)
    text = _colloquial(lang, hour, minute)
    if period:
        text = f"{_period(lang, hour)} {text}" if lang == "zh" else f"{text} {_period(lang, hour)}"
    return text


@cache
def date(lang: str, day: int, month: int, on: bool = False) -> str:
    """A day of a month (month 1..12), with the article the language puts before a date.

    `on` gives the adverbial form ("on may first"); it changes en and de only ("am ersten mai" vs "der erste mai"),
    the others say the same either way: es "el primero de mayo", fr "le premier mai", it "il primo maggio",
    "l'otto maggio", zh "五月 一 号".
    """
    if not (1 <= month <= 12 and 1 <= day <= DAYS_IN_MONTH[month - 1]):
        raise ValueError(f"date(): no day {day} in month {month}")
    name = MONTHS[lang][month - 1]
    if lang == "en":
        return ("on " if on else "") + f"{name} {ordinal('en', day)}"
    if lang == "de":
        return f"am {ordinal('de', day)}n {name}" if on else f"der {ordinal('de', day)} {name}"
    bare = bare_date(lang, day, month)
    if lang == "zh":
        return bare
    if lang == "it" and day in (8, 11):
        return f"l'{bare}"  # l'otto maggio, l'undici maggio
    return {"es": "el", "fr": "le", "it": "il"}[lang] + " " + bare


@cache
def bare_date(lang: str, day: int, month: int) -> str:
    """A date without article, as after a weekday ("lunes veintiuno de mayo", "lundi vingt et un mai")."""
    name = MONTHS[lang][month - 1]
    if lang == "en":
        return f"{name} {ordinal('en', day)}"
    if lang == "de":
        return f"{ordinal('de', day)}r {name}"  # (montag,) einundzwanzigster mai
    if lang == "es":
        return f"{'primero' if day == 1 else _es(day, None)} de {name}"
    if lang == "fr":
        return f"{'premier' if day == 1 else _fr(day)} {name}"
    if lang == "it":
        return f"{'primo' if day == 1 else _it(day)} {name}"
    if lang == "zh":
        return f"{name} {_zh(day)} 号"
    raise ValueError(f"unknown language {lang!r}")


# ---------------------------------------------------------------------------------------------------------------
# Counted nouns: durations, temperatures, money


@dataclass(frozen=True)
class Unit:
    """A countable noun in one language: forms, grammatical gender and, for zh, the classifier it takes."""

    singular: str
    plural: str
    gender: str = "m"
    classifier: str = ""  # zh: 个 in "两 个 小时"
    dative_plural: str = ""  # de: "tagen" in "in zwei tagen", when it differs from the plural


def _u(en: tuple[str, str], de: tuple[str, ...], es: tuple[str, ...], fr: tuple[str, ...], it: tuple[str, ...],
       zh: tuple[str, str]) -> dict[str, Unit]:  # fmt: skip
    """Builds a unit's forms; zh is (classifier, noun)."""
    return {"en": Unit(*en), "de": Unit(*de), "es": Unit(*es), "fr": Unit(*fr), "it": Unit(*it),
            "zh": Unit(zh[1], zh[1], "m", zh[0])}  # fmt: skip


UNITS: dict[str, dict[str, Unit]] = {
    "second": _u(("second", "seconds"), ("sekunde", "sekunden", "f"), ("segundo", "segundos"),
                 ("seconde", "secondes", "f"), ("secondo", "secondi"), ("", "秒")),
    "minute": _u(("minute", "minutes"), ("minute", "minuten", "f"), ("minuto", "minutos"),
                 ("minute", "minutes", "f"), ("minuto", "minuti"), ("", "分钟")),
    "hour": _u(("hour", "hours"), ("stunde", "stunden", "f"), ("hora", "horas", "f"), ("heure", "heures", "f"),
               ("ora", "ore", "f"), ("个", "小时")),
    "day": _u(("day", "days"), ("tag", "tage", "m", "", "tagen"), ("día", "días"), ("jour", "jours"),
              ("giorno", "giorni"), ("", "天")),
    "week": _u(("week", "weeks"), ("woche", "wochen", "f"), ("semana", "semanas", "f"),
               ("semaine", "semaines", "f"), ("settimana", "settimane", "f"), ("个", "星期")),
    "night": _u(("night", "nights"), ("nacht", "nächte", "f", "", "nächten"), ("noche", "noches", "f"),
                ("nuit", "nuits", "f"), ("notte", "notti", "f"), ("", "晚")),
    "degree": _u(("degree", "degrees"), ("grad", "grad"), ("grado", "grados"), ("degré", "degrés"),
                 ("grado", "gradi"), ("", "度")),
    "euro": _u(("euro", "euros"), ("euro", "euro"), ("euro", "euros"), ("euro", "euros"), ("euro", "euro"),
               ("", "欧元")),
    "kilometer": _u(("kilometer", "kilometers"), ("kilometer", "kilometer", "m", "", "kilometern"),
                    ("kilómetro", "kilómetros"), ("kilomètre", "kilomètres"), ("chilometro", "chilometri"),
                    ("", "公里")),
    "year_old": _u(("year old", "years old"), ("jahr alt", "jahre alt", "n"), ("año", "años"), ("an", "ans"),
                   ("anno", "anni"), ("", "岁")),
    "person": _u(("person", "people"), ("person", "personen", "f"), ("persona", "personas", "f"),
                 ("personne", "personnes", "f"), ("persona", "persone", "f"), ("", "人")),
    "new_message": _u(("new message", "new messages"), ("neue nachricht", "neue nachrichten", "f"),
                      ("mensaje nuevo", "mensajes nuevos"), ("nouveau message", "nouveaux messages"),
                      ("nuovo messaggio", "nuovi messaggi"), ("条", "新 消息")),
}  # fmt: skip

_DE_ONE = {("m", "nom"): "ein", ("m", "acc"): "einen", ("m", "dat"): "einem", ("f", "nom"): "eine",
           ("f", "acc"): "eine", ("f", "dat"): "einer", ("n", "nom"): "ein", ("n", "acc"): "ein",
           ("n", "dat"): "einem"}  # fmt: skip
_AND = {"en": "and", "de": "und", "es": "y", "fr": "et", "it": "e"}


def is_singular(lang: str, n: int) -> bool:
    """Whether a noun counted `n` times is singular: one, and in French also zero ("zéro degré")."""
    return n == 1 or (lang == "fr" and n == 0)


def quantity(lang: str, n: int, unit: Unit, case: str = "acc") -> str:
    """`n` of `unit` with number agreement: "one minute", "eine stunde", "veintiún minutos", "une heure",
    "un'ora", "两 个 小时". `case` ("nom", "acc", "dat") matters in German only."""
    if lang == "zh":
        return " ".join(w for w in (_zh(n, count=True), unit.classifier, unit.singular) if w)
    if is_singular(lang, n):
        noun = unit.singular
    elif lang == "de" and case == "dat" and unit.dative_plural:
        noun = unit.dative_plural
    else:
        noun = unit.plural
    if lang == "de" and n == 1:
        return f"{_DE_ONE[unit.gender, case]} {noun}"
    number = cardinal(lang, n, unit.gender)
    if lang == "it" and number == "una" and noun[0] in "aeiou":
        return f"un'{noun}"
    return f"{number} {noun}"


def duration(lang: str, parts: Sequence[tuple[int, str]], case: str = "acc") -> str:
    """Counted units joined by "and", e.g. [(1, "hour"), (30, "minute")] -> "one hour and thirty minutes".

    Units are keys of `UNITS`: mostly time (second, minute, hour, day, week, night), but any counted unit works
    ("person", "kilometer", "year_old", ...)."""
    said = [quantity(lang, n, UNITS[unit][lang], case) for n, unit in parts]
    if lang == "zh":
        return " ".join(said)
    return f" {_AND[lang]} ".join(said)


def temperature(lang: str, degrees: int, case: str = "nom") -> str:
    """A temperature in degrees Celsius: "minus five degrees", "menos un grado", "zéro degré", "零下 五 度".
    `case` matters in German only ("ein grad", "bis zu einem grad")."""
    said = quantity(lang, abs(degrees), UNITS["degree"][lang], case)
    if degrees >= 0:
        return said
    return {"en": "minus", "de": "minus", "es": "menos", "fr": "moins", "it": "meno", "zh": "零下"}[lang] + " " + said


def price(lang: str, euros: int, cents: int = 0, case: str = "acc") -> str:
    """An amount in euros as said at a till: "twelve euros fifty", "zwölf euro fünfzig", "doce euros con
    cincuenta", "douze euros cinquante", "dodici euro e cinquanta", "十二 点 五 欧元"."""
    if not 0 <= cents < 100:
        raise ValueError(f"price(): cents must be 0..99, got {cents}")
    if lang == "zh":
        if not cents:
            return f"{_zh(euros, count=True)} 欧元"
        decimals = "".join(_ZH_DIGITS[int(d)] for d in f"{cents:02d}".rstrip("0"))
        return f"{_zh(euros)} 点 {decimals} 欧元"
    said = quantity(lang, euros, UNITS["euro"][lang], case)
    if cents:
        said += {"en": " ", "de": " ", "es": " con ", "fr": " ", "it": " e "}[lang] + cardinal(lang, cents)
    return said


def percent(lang: str, n: int) -> str:
    """A percentage: "eighty percent", "achtzig prozent", "ochenta por ciento", "quatre-vingts pour cent",
    "ottanta per cento", "百分之 八十"."""
    if lang == "zh":
        return f"百分之 {_zh(n)}"
    word = {"en": "percent", "de": "prozent", "es": "por ciento", "fr": "pour cent", "it": "per cento"}[lang]
    return f"{cardinal(lang, n)} {word}"
