"""Numbers, clock times, dates and quantities said in each language (models/data/grammar/numbers.py)."""

from __future__ import annotations

import pytest

from models.data.grammar.numbers import (
    UNITS,
    cardinal,
    clock_time,
    date,
    digits,
    duration,
    ordinal,
    percent,
    price,
    quantity,
    temperature,
)

CARDINALS = {
    "en": {0: "zero", 13: "thirteen", 21: "twenty one", 40: "forty", 99: "ninety nine", 100: "one hundred",
           105: "one hundred and five", 1000: "one thousand", 1999: "one thousand nine hundred and ninety nine",
           2024: "two thousand and twenty four", 9999: "nine thousand nine hundred and ninety nine"},
    "de": {0: "null", 1: "eins", 16: "sechzehn", 17: "siebzehn", 21: "einundzwanzig", 30: "dreißig",
           71: "einundsiebzig", 100: "hundert", 101: "hunderteins", 102: "hundertzwei", 1000: "tausend",
           1999: "tausendneunhundertneunundneunzig", 2000: "zweitausend", 21000: "einundzwanzigtausend"},
    "es": {0: "cero", 1: "uno", 16: "dieciséis", 21: "veintiuno", 22: "veintidós", 31: "treinta y uno",
           100: "cien", 101: "ciento uno", 115: "ciento quince", 200: "doscientos", 500: "quinientos",
           700: "setecientos", 900: "novecientos", 1000: "mil", 1999: "mil novecientos noventa y nueve",
           2000: "dos mil"},
    "fr": {0: "zéro", 17: "dix-sept", 21: "vingt et un", 23: "vingt-trois", 70: "soixante-dix",
           71: "soixante et onze", 77: "soixante-dix-sept", 80: "quatre-vingts", 81: "quatre-vingt-un",
           90: "quatre-vingt-dix", 91: "quatre-vingt-onze", 97: "quatre-vingt-dix-sept", 100: "cent",
           101: "cent un", 200: "deux cents", 201: "deux cent un", 1000: "mille", 2000: "deux mille",
           80000: "quatre-vingt mille", 200000: "deux cent mille",
           1999: "mille neuf cent quatre-vingt-dix-neuf"},
    "it": {0: "zero", 1: "uno", 17: "diciassette", 21: "ventuno", 23: "ventitré", 28: "ventotto",
           33: "trentatré", 38: "trentotto", 100: "cento", 101: "centouno", 103: "centotré", 108: "centotto",
           113: "centotredici", 180: "centottanta", 200: "duecento", 1000: "mille", 2000: "duemila",
           1999: "millenovecentonovantanove", 23000: "ventitremila"},
    "zh": {0: "零", 2: "二", 10: "十", 12: "十二", 20: "二十", 22: "二十二", 100: "一百", 105: "一百零五",
           110: "一百一十", 200: "两百", 1001: "一千零一", 1010: "一千零一十", 2000: "两千",
           2200: "两千二百", 10000: "一万", 20000: "两万", 100500: "十万零五百"},
}  # fmt: skip


@pytest.mark.parametrize("lang", sorted(CARDINALS))
def test_cardinals(lang: str) -> None:
    got = {n: cardinal(lang, n) for n in CARDINALS[lang]}
    assert got == CARDINALS[lang], {n: (got[n], want) for n, want in CARDINALS[lang].items() if got[n] != want}


def test_cardinals_before_nouns_agree_in_gender() -> None:
    assert cardinal("es", 21, "m") == "veintiún"  # veintiún minutos
    assert cardinal("es", 21, "f") == "veintiuna"  # veintiuna horas
    assert cardinal("es", 1, "m") == "un" and cardinal("es", 1, "f") == "una"
    assert cardinal("es", 31, "m") == "treinta y un"
    assert cardinal("es", 101, "m") == "ciento un"
    assert cardinal("es", 200, "f") == "doscientas"
    assert cardinal("es", 21000) == "veintiún mil"
    assert cardinal("fr", 21, "f") == "vingt et une" and cardinal("fr", 81, "f") == "quatre-vingt-une"
    assert cardinal("fr", 1, "f") == "une" and cardinal("fr", 1, "m") == "un"
    assert cardinal("it", 1, "m") == "un" and cardinal("it", 1, "f") == "una"
    assert cardinal("de", 1, "f") == "eine" and cardinal("de", 1, "n") == "ein"
    assert cardinal("zh", 2, "m") == "两" and cardinal("zh", 2) == "二" and cardinal("zh", 22, "m") == "二十二"


def test_cardinal_out_of_range() -> None:
    with pytest.raises(ValueError):
        cardinal("en", -1)
    with pytest.raises(ValueError):
        cardinal("xx", 5)


ORDINALS = {
    "en": {1: "first", 2: "second", 3: "third", 5: "fifth", 8: "eighth", 12: "twelfth", 20: "twentieth",
           21: "twenty first", 22: "twenty second", 30: "thirtieth", 31: "thirty first"},
    "de": {1: "erste", 3: "dritte", 7: "siebte", 8: "achte", 19: "neunzehnte", 20: "zwanzigste",
           21: "einundzwanzigste", 31: "einunddreißigste"},
    "es": {1: "primero", 3: "tercero", 10: "décimo", 13: "decimotercero", 20: "vigésimo", 21: "vigésimo primero",
           31: "trigésimo primero"},
    "fr": {1: "premier", 2: "deuxième", 4: "quatrième", 5: "cinquième", 9: "neuvième", 11: "onzième",
           21: "vingt et unième", 30: "trentième", 31: "trente et unième", 80: "quatre-vingtième"},
    "it": {1: "primo", 3: "terzo", 10: "decimo", 11: "undicesimo", 21: "ventunesimo", 23: "ventitreesimo",
           26: "ventiseiesimo", 28: "ventottesimo", 31: "trentunesimo"},
    "zh": {1: "第一", 2: "第二", 21: "第二十一"},
}  # fmt: skip


@pytest.mark.parametrize("lang", sorted(ORDINALS))
def test_ordinals(lang: str) -> None:
    got = {n: ordinal(lang, n) for n in ORDINALS[lang]}
    assert got == ORDINALS[lang]


# (hour, minute) -> 24-hour reading, colloquial reading
TIMES = {
    "en": {(7, 0): ("seven o'clock", "seven o'clock"), (7, 5): ("seven oh five", "five past seven"),
           (7, 15): ("seven fifteen", "quarter past seven"), (19, 30): ("nineteen thirty", "half past seven"),
           (7, 45): ("seven forty five", "quarter to eight"), (12, 50): ("twelve fifty", "ten to one"),
           (19, 0): ("nineteen hundred", "seven o'clock")},
    "de": {(7, 0): ("sieben uhr", "sieben uhr"), (1, 0): ("ein uhr", "ein uhr"),
           (7, 15): ("sieben uhr fünfzehn", "viertel nach sieben"), (19, 30): ("neunzehn uhr dreißig", "halb acht"),
           (7, 45): ("sieben uhr fünfundvierzig", "viertel vor acht"), (12, 30): ("zwölf uhr dreißig", "halb eins"),
           (7, 25): ("sieben uhr fünfundzwanzig", "fünf vor halb acht"), (21, 1): ("einundzwanzig uhr eins",
                                                                                  "eine minute nach neun")},
    "es": {(7, 0): ("las siete", "las siete"), (1, 10): ("la una y diez", "la una y diez"),
           (7, 15): ("las siete y quince", "las siete y cuarto"),
           (19, 30): ("las diecinueve y treinta", "las siete y media"),
           (7, 45): ("las siete y cuarenta y cinco", "las ocho menos cuarto"),
           (12, 45): ("las doce y cuarenta y cinco", "la una menos cuarto"),
           (21, 0): ("las veintiuna", "las nueve")},
    "fr": {(7, 0): ("sept heures", "sept heures"), (1, 0): ("une heure", "une heure"),
           (7, 15): ("sept heures quinze", "sept heures et quart"),
           (19, 30): ("dix-neuf heures trente", "sept heures et demie"),
           (7, 45): ("sept heures quarante-cinq", "huit heures moins le quart"),
           (7, 40): ("sept heures quarante", "huit heures moins vingt"),
           (21, 21): ("vingt et une heures vingt et une", "neuf heures vingt et une")},
    "it": {(7, 0): ("le sette", "le sette"), (1, 0): ("l'una", "l'una"),
           (7, 15): ("le sette e quindici", "le sette e un quarto"),
           (19, 30): ("le diciannove e trenta", "le sette e mezza"),
           (7, 45): ("le sette e quarantacinque", "le otto meno un quarto"),
           (12, 45): ("le dodici e quarantacinque", "l'una meno un quarto")},
    "zh": {(7, 0): ("七 点", "七 点"), (2, 0): ("两 点", "两 点"), (7, 5): ("七 点 零五 分", "七 点 零五 分"),
           (7, 15): ("七 点 十五 分", "七 点 一刻"), (19, 30): ("十九 点 三十 分", "七 点 半"),
           (22, 10): ("二十二 点 十 分", "十 点 十 分")},
}  # fmt: skip


@pytest.mark.parametrize("lang", sorted(TIMES))
def test_clock_times(lang: str) -> None:
    for (h, m), (digital, colloquial) in TIMES[lang].items():
        assert clock_time(lang, h, m) == digital, (h, m)
        assert clock_time(lang, h, m, colloquial=True) == colloquial, (h, m)


def test_clock_time_with_part_of_day() -> None:
    said = {lang: clock_time(lang, 19, 30, colloquial=True, period=True) for lang in TIMES}
    assert said == {
        "en": "half past seven in the evening",
        "de": "halb acht abends",
        "es": "las siete y media de la tarde",
        "fr": "sept heures et demie du soir",
        "it": "le sette e mezza di sera",
        "zh": "晚上 七 点 半",
    }
    assert clock_time("zh", 9, 15, colloquial=True, period=True) == "上午 九 点 一刻"
    with pytest.raises(ValueError):
        clock_time("en", 3, 0, colloquial=True, period=True)  # no part of the day at 3 a.m.
    with pytest.raises(ValueError):
        clock_time("en", 24, 0)


def test_dates() -> None:
    assert date("en", 21, 5) == "may twenty first" and date("en", 1, 5, on=True) == "on may first"
    assert date("de", 21, 5) == "der einundzwanzigste mai" and date("de", 1, 5, on=True) == "am ersten mai"
    assert date("es", 21, 5) == "el veintiuno de mayo" and date("es", 1, 5) == "el primero de mayo"
    assert date("fr", 21, 5) == "le vingt et un mai" and date("fr", 1, 5) == "le premier mai"
    assert date("fr", 8, 5) == "le huit mai" and date("fr", 11, 11) == "le onze novembre"
    assert date("it", 1, 5) == "il primo maggio" and date("it", 8, 8) == "l'otto agosto"
    assert date("it", 11, 11) == "l'undici novembre" and date("it", 28, 2) == "il ventotto febbraio"
    assert date("zh", 21, 5) == "五月 二十一 号" and date("zh", 2, 10) == "十月 二 号"
    with pytest.raises(ValueError):
        date("en", 31, 4)


DURATIONS = {
    "en": ["one hour", "one minute", "twenty one minutes", "two hours", "one hour and thirty minutes", "one day"],
    "de": ["eine stunde", "eine minute", "einundzwanzig minuten", "zwei stunden", "eine stunde und dreißig minuten",
           "einen tag"],
    "es": ["una hora", "un minuto", "veintiún minutos", "dos horas", "una hora y treinta minutos", "un día"],
    "fr": ["une heure", "une minute", "vingt et une minutes", "deux heures", "une heure et trente minutes",
           "un jour"],
    "it": ["un'ora", "un minuto", "ventuno minuti", "due ore", "un'ora e trenta minuti", "un giorno"],
    "zh": ["一 个 小时", "一 分钟", "二十一 分钟", "两 个 小时", "一 个 小时 三十 分钟", "一 天"],
}  # fmt: skip
_DURATION_PARTS = [[(1, "hour")], [(1, "minute")], [(21, "minute")], [(2, "hour")], [(1, "hour"), (30, "minute")],
                   [(1, "day")]]  # fmt: skip


@pytest.mark.parametrize("lang", sorted(DURATIONS))
def test_durations(lang: str) -> None:
    assert [duration(lang, parts) for parts in _DURATION_PARTS] == DURATIONS[lang]


def test_german_cases_and_dative_plural() -> None:
    assert duration("de", [(1, "hour")], "dat") == "einer stunde"  # in einer stunde
    assert duration("de", [(1, "day")], "dat") == "einem tag"
    assert duration("de", [(3, "day")], "dat") == "drei tagen"
    assert duration("de", [(3, "day")]) == "drei tage"
    assert quantity("de", 2, UNITS["night"]["de"], "dat") == "zwei nächten"


def test_temperatures() -> None:
    assert [temperature("en", t) for t in (21, -5, 1, 0)] == [
        "twenty one degrees", "minus five degrees", "one degree", "zero degrees"]  # fmt: skip
    assert [temperature("de", t) for t in (21, -5, 1)] == ["einundzwanzig grad", "minus fünf grad", "ein grad"]
    assert temperature("de", 1, "dat") == "einem grad"
    assert [temperature("es", t) for t in (21, -1, 0)] == ["veintiún grados", "menos un grado", "cero grados"]
    assert [temperature("fr", t) for t in (21, 0, -1, 2)] == [
        "vingt et un degrés", "zéro degré", "moins un degré", "deux degrés"]  # fmt: skip
    assert [temperature("it", t) for t in (21, 1, -5)] == ["ventuno gradi", "un grado", "meno cinque gradi"]
    assert [temperature("zh", t) for t in (21, -5, 2, 0)] == ["二十一 度", "零下 五 度", "两 度", "零 度"]


def test_prices_percentages_and_digits() -> None:
    assert price("en", 12, 50) == "twelve euros fifty" and price("en", 1) == "one euro"
    assert price("de", 1) == "einen euro" and price("de", 1, case="nom") == "ein euro"
    assert price("es", 21) == "veintiún euros" and price("es", 12, 50) == "doce euros con cincuenta"
    assert price("fr", 80) == "quatre-vingts euros" and price("it", 12, 50) == "dodici euro e cinquanta"
    assert price("zh", 12, 50) == "十二 点 五 欧元" and price("zh", 2) == "两 欧元"
    assert price("zh", 3, 5) == "三 点 零五 欧元"
    assert percent("fr", 80) == "quatre-vingts pour cent" and percent("zh", 80) == "百分之 八十"
    assert percent("es", 50) == "cincuenta por ciento"
    assert digits("en", "0612") == "zero six one two" and digits("de", "21") == "zwei eins"
    assert digits("fr", "0612345678") == "zéro six douze trente-quatre cinquante-six soixante-dix-huit"
    assert digits("zh", "0612") == "零 六 一 二"


def test_counts_use_liang_and_classifiers() -> None:
    assert duration("zh", [(2, "hour")]) == "两 个 小时"
    assert duration("zh", [(2, "week")]) == "两 个 星期"
    assert duration("zh", [(22, "minute")]) == "二十二 分钟"
    assert quantity("zh", 2, UNITS["person"]["zh"]) == "两 人"
    assert quantity("zh", 12, UNITS["year_old"]["zh"]) == "十二 岁"
