"""Numbers, dates, times, money, percents and abbreviations written out per language (models/data/verbalize.py)."""

from __future__ import annotations

import pytest

from models.data.verbalize import verbalize, zh_cardinal
from parley.textnorm import normalize_text

CASES = {
    "en": [
        ("I have 21 cats.", "I have twenty-one cats."),
        (
            "It costs 3.5 kg and 1,234 people.",
            "It costs three point five kg and one thousand two hundred and thirty-four people.",
        ),
        ("Born in 1999, not 2005.", "Born in nineteen ninety-nine, not two thousand and five."),
        ("On March 3, 2024.", "On March third, twenty twenty-four."),
        ("On 2024-03-15.", "On March fifteenth, twenty twenty-four."),
        ("Meet at 10:30 or 7:05.", "Meet at ten thirty or seven oh five."),
        ("It is $5.50 or 5 € or £1.", "It is five dollars and fifty cents or five euros or one pound."),
        ("Save 50% now.", "Save fifty percent now."),
        ("She came 1st and 22nd.", "She came first and twenty-second."),
        ("Mr. Smith and Dr. Jones, e.g. here, etc.", "Mister Smith and Doctor Jones, for example here, et cetera."),
        ("In the 1990s, pages 10-20.", "In the nineteen nineties, pages ten to twenty."),
    ],
    "de": [
        ("Ich habe 21 Katzen.", "Ich habe einundzwanzig Katzen."),
        ("Es sind 3,5 Liter und 1.500 Leute.", "Es sind drei Komma fünf Liter und eintausendfünfhundert Leute."),
        ("Das war 1999.", "Das war neunzehnhundertneunundneunzig."),
        ("Am 15. März 2024.", "Am fünfzehnten März zweitausendvierundzwanzig."),
        ("Der 3.10.1990 ist frei.", "Der dritte Oktober neunzehnhundertneunzig ist frei."),
        ("Um 10:30 Uhr, nicht um 1 Uhr.", "Um zehn Uhr dreißig, nicht um ein Uhr."),
        ("Es kostet 5,50 € oder $3.", "Es kostet fünf Euro fünfzig oder drei Dollar."),
        ("Das sind 50 % mehr.", "Das sind fünfzig Prozent mehr."),
        ("Im 19. Jahrhundert.", "Im neunzehnten Jahrhundert."),
        ("Das ist z.B. gut, z. B. so, usw.", "Das ist zum Beispiel gut, zum Beispiel so, und so weiter."),
    ],
    "es": [
        ("Tengo 22 gatos.", "Tengo veintidós gatos."),
        ("Son 3,5 metros y 1.500 años.", "Son tres coma cinco metros y mil quinientos años."),
        ("El 15 de marzo de 2024.", "El quince de marzo de dos mil veinticuatro."),
        ("Fecha: 15/03/2024.", "Fecha: quince de marzo de dos mil veinticuatro."),
        ("A las 10:30 o a la 1:00.", "A las diez y treinta o a la una."),
        ("Cuesta 5 € o $3,50.", "Cuesta cinco euros o tres dólares con cincuenta."),
        ("Un 50 % más.", "Un cincuenta por ciento más."),
        ("Llegó 1º y la 2ª vez.", "Llegó primero y la segunda vez."),
        ("El Sr. García, p. ej. hoy, etc.", "El señor García, por ejemplo hoy, etcétera."),
    ],
    "fr": [
        ("J'ai 21 chats.", "J'ai vingt et un chats."),
        ("Il fait 3,5 degrés.", "Il fait trois virgule cinq degrés."),
        ("Le 1er mai 2024.", "Le premier mai deux mille vingt-quatre."),
        ("Le 15/03/2024.", "Le quinze mars deux mille vingt-quatre."),
        ("À 10h30 ou à 10:00.", "À dix heures trente ou à dix heures."),
        ("Ça coûte 5,50 €.", "Ça coûte cinq euros cinquante."),
        ("Une hausse de 50 %.", "Une hausse de cinquante pour cent."),
        ("Au 19e siècle.", "Au dix-neuvième siècle."),
        ("M. Dupont et Mme Curie, etc.", "Monsieur Dupont et Madame Curie, et cetera."),
    ],
    "it": [
        ("Ho 21 gatti.", "Ho ventuno gatti."),
        ("Sono 3,5 metri nel 1999.", "Sono tre virgola cinque metri nel millenovecentonovantanove."),
        ("Il 15 marzo 2024.", "Il quindici marzo duemilaventiquattro."),
        ("Il 1º maggio.", "Il primo maggio."),
        ("Alle 10:30.", "Alle dieci e trenta."),
        ("Costa 5 €.", "Costa cinque euro."),
        ("Il 50 % in più.", "Il cinquanta per cento in più."),
        ("Il Sig. Rossi, il Dott. Bianchi, ecc.", "Il signor Rossi, il dottor Bianchi, eccetera."),
    ],
    "zh": [
        ("共1234人", "共一千二百三十四人"),
        ("2024年3月15日", "二零二四年三月十五日"),
        ("２０２４年", "二零二四年"),
        ("2024-03-15", "二零二四年三月十五日"),
        ("增长3.5倍", "增长三点五倍"),
        ("增长了50%", "增长了百分之五十"),
        ("十点：10:30和10:05", "十点：十点三十分和十点零五分"),
        ("价格¥20", "价格二十元"),
        ("第3次", "第三次"),
        ("零下-5度", "零下负五度"),
    ],
}


@pytest.mark.parametrize(("language", "written", "spoken"), [(lang, w, s) for lang, cs in CASES.items() for w, s in cs])
def test_verbalize(language: str, written: str, spoken: str) -> None:
    assert verbalize(written, language) == spoken


@pytest.mark.parametrize("language", sorted(CASES))
def test_no_digits_left_after_normalization(language: str) -> None:
    for written, _ in CASES[language]:
        text = normalize_text(verbalize(written, language), language)
        assert not any(c.isdigit() for c in text), (written, text)


def test_zh_cardinal() -> None:
    cases = {
        0: "零",
        10: "十",
        15: "十五",
        20: "二十",
        105: "一百零五",
        1005: "一千零五",
        10000: "一万",
        100010: "十万零一十",
        1234: "一千二百三十四",
        200000000: "二亿",
        -3: "负三",
    }
    for n, words in cases.items():
        assert zh_cardinal(n) == words, (n, zh_cardinal(n), words)


def test_text_without_numbers_is_unchanged() -> None:
    assert verbalize("Hello there, how are you?", "en") == "Hello there, how are you?"
    assert verbalize("你好，世界！", "zh") == "你好，世界！"


def test_unknown_language_raises() -> None:
    with pytest.raises(ValueError, match="unsupported language"):
        verbalize("1", "xx")
