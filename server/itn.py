"""Numbers in captions written as readers expect them (inverse text normalization, English).

The model writes what it hears, the way the corpus spelled it out (models/data/verbalize.py): "set a timer for
twenty-five minutes", "it costs five dollars and fifty cents", "at ten thirty a m on march third twenty
twenty-four". A caption reads better as "Set a timer for 25 minutes.", "It costs $5.50." and "at 10:30 a.m. on
March 3, 2024". `rewrite` turns the number phrases of a final's display text (already punctuated and cased) into
digits; what it does not recognize stays as it was.

What it writes, in the order it tries them at each word:

- dates: a month and a day, with a year after it ("march third twenty twenty-four" -> "March 3, 2024")
- money: "$5", "$5.50", "$3 million", "€20", "€76.90" ("seventy-six euros ninety"; dollars, euros and their cents;
  "pounds" stays a word: it is a weight too)
- percents: "50%", "3.5%"
- times of day: "10:30 a.m.", "5 p.m.", "10:05", "10 o'clock", and an hour and minutes ("ten thirty" -> "10:30",
  hours 1-12, minutes 10-59)
- years: "nineteen eighty-four" -> "1984", "nineteen oh-five" -> "1905", "twenty twenty" -> "2020", "nineteen
  nineties" -> "1990s" (a year from 1100 to 1299 said as two numbers reads as a time: "eleven fifty" -> "11:50")
- decimals: "three point one four" -> "3.14" ("three point five million" -> "3.5 million")
- digit strings of three or more digits: "five five five one two three four" -> "5551234"
- ordinals from 10th: "twenty-first" -> "21st" (first to ninth stay words, except in dates)
- cardinals: "one hundred and twenty" -> "120", "5,000", "12,500", "2 million" ("two thousand and five" -> "2005",
  "nineteen hundred" -> "1900": years, likely); a lone one to nine stays a word ("one of
  them", "two people"), as style guides write them; "minus five" -> "-5"

A phrase never runs across punctuation inside it ("ten, twenty" stays two numbers); the punctuation around it stays
around it. Each output token says which input tokens it came from (`Span`), so word times stay with what is shown
(server/subtitles.py lines them up).

    >>> " ".join(s.text for s in rewrite("It costs five dollars and fifty cents.".split()))
    'It costs $5.50.'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["LANGUAGES", "Span", "rewrite", "rewrite_text"]

LANGUAGES = ("en",)  # the caption languages `rewrite` knows; others pass through unchanged

_UNITS = {w: i for i, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])}
_TEENS = {
    w: 10 + i
    for i, w in enumerate(
        ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
    )
}
_TENS = {
    w: 20 + 10 * i for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"])
}
_DECADES = {w[:-1] + "ies": v for w, v in _TENS.items()}  # "nineties" -> 90 ("the nineteen nineties" -> 1990s)
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_NUMBER_WORDS = {*_UNITS, *_TEENS, *_TENS, "hundred", *_SCALES}
_ORDINALS = {  # ordinal word -> the cardinal word it stands for
    "first": "one", "second": "two", "third": "three", "fourth": "four", "fifth": "five", "sixth": "six",
    "seventh": "seven", "eighth": "eight", "ninth": "nine", "tenth": "ten", "eleventh": "eleven",
    "twelfth": "twelve", **{w[:-1] + "th" if w.endswith("t") else w + "th": w for w in list(_TEENS)[3:]},
    **{w[:-1] + "ieth": w for w in _TENS}, "hundredth": "hundred",
    **{w + "th": w for w in _SCALES},
}  # fmt: skip
_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_CURRENCY = {"dollar": "$", "dollars": "$", "euro": "€", "euros": "€"}
_OPENING = "\"'“‘«([{¿¡"
_CLOSING = "\"'”’».,;:!?)]}…"


@dataclass(frozen=True)
class Span:
    """An output token and the input tokens it came from: `tokens[start:end]`."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class _Match:
    text: str
    end: int  # one past the last word it covers


def rewrite_text(text: str, language: str = "en") -> str:
    """`text` (words separated by spaces) with its number phrases in digits; see `rewrite`."""
    return " ".join(s.text for s in rewrite(text.split(), language))


def rewrite(tokens: Sequence[str], language: str = "en") -> list[Span]:
    """The tokens of a caption (words with their punctuation, as `display` has them) with number phrases written in
    digits (see the module docstring); a language not in `LANGUAGES` comes back token for token."""
    if language.split("-")[0].lower() not in LANGUAGES:
        return [Span(t, i, i + 1) for i, t in enumerate(tokens)]
    out: list[Span] = []
    i = 0
    while i < len(tokens):
        j = _run_end(tokens, i)  # the tokens up to the next punctuation inside a phrase
        out += _rewrite_run(tokens, i, j)
        i = j
    return out


def _split(token: str) -> tuple[str, str, str]:
    """(leading punctuation, core, trailing punctuation) of a token."""
    a, b = 0, len(token)
    while a < b and token[a] in _OPENING:
        a += 1
    while b > a and token[b - 1] in _CLOSING:
        b -= 1
    return token[:a], token[a:b], token[b:]


def _run_end(tokens: Sequence[str], i: int) -> int:
    """One past the last token of the run that starts at `i`: a run ends after a token with trailing punctuation
    or before one with leading punctuation."""
    j = i
    while j < len(tokens):
        lead, _, trail = _split(tokens[j])
        if lead and j > i:
            return j
        j += 1
        if trail:
            return j
    return j


def _rewrite_run(tokens: Sequence[str], i0: int, i1: int) -> list[Span]:
    """The spans of `tokens[i0:i1]`, a run without punctuation inside it."""
    words: list[str] = []  # lower-case cores, hyphenated number words split ("twenty-five" -> twenty, five)
    owner: list[int] = []  # the token each word is part of
    for k in range(i0, i1):
        core = _split(tokens[k])[1].lower()
        parts = core.split("-")
        if len(parts) > 1 and all(p in _NUMBER_WORDS or p in _ORDINALS or p == "oh" for p in parts):
            words += parts
            owner += [k] * len(parts)
        else:
            words.append(core)
            owner.append(k)
    out: list[Span] = []
    w = 0
    while w < len(words):
        m = _match(words, w)
        # A match must cover whole tokens: it starts at one (w does) and must end at one.
        if m is not None and (m.end == len(words) or owner[m.end] != owner[m.end - 1]):
            first, last = owner[w], owner[m.end - 1]
            lead, core, _ = _split(tokens[first])
            trail = _split(tokens[last])[2]
            text = m.text
            if text.endswith(".") and trail.startswith("."):  # "p.m." ending a sentence
                trail = trail[1:]
            if text[0].isalpha() and core[:1].isupper():
                text = text[0].upper() + text[1:]
            out.append(Span(lead + text + trail, first, last + 1))
            w = m.end
            continue
        k = owner[w]
        out.append(Span(tokens[k], k, k + 1))
        while w < len(words) and owner[w] == k:
            w += 1
    return out


# --------------------------------------------------------------------------------------------- parsing numbers
def _below_100(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """(value, end) of "twenty-five", "fifteen" or "five" at `i`."""
    if i >= len(words):
        return None
    w = words[i]
    if w in _TENS:
        if i + 1 < len(words) and _UNITS.get(words[i + 1], 0) > 0:
            return _TENS[w] + _UNITS[words[i + 1]], i + 2
        return _TENS[w], i + 1
    if w in _TEENS:
        return _TEENS[w], i + 1
    if w in _UNITS:
        return _UNITS[w], i + 1
    return None


def _below_1000(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """(value, end) of "three hundred and twelve", "nineteen hundred" or a number below 100 at `i`."""
    r = _below_100(words, i)
    if r is None:
        return None
    v, j = r
    if j == i + 1 and 0 < v < 20 and j < len(words) and words[j] == "hundred":
        v, j = v * 100, j + 1
        k = j + 1 if j < len(words) and words[j] == "and" else j
        rest = _below_100(words, k)
        if rest is not None and rest[0] > 0:
            v, j = v + rest[0], rest[1]
    return v, j


def _cardinal(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """(value, end) of the longest cardinal at `i`: "two million three hundred thousand and five"."""
    total, j, last_scale = 0, i, None
    while True:
        k = j
        if last_scale is not None and k < len(words) and words[k] == "and":
            k += 1
        part = _below_1000(words, k)
        if part is None or (part[0] == 0 and (last_scale is not None or (part[1] < len(words) and
                                              words[part[1]] in _SCALES))):  # fmt: skip
            break
        v, end = part
        scale = _SCALES.get(words[end]) if end < len(words) else None
        if scale is not None and (last_scale is None or scale < last_scale):
            total, j, last_scale = total + v * scale, end + 1, scale
            continue
        if scale is not None:  # "one thousand two thousand": the second one is another number
            break
        total, j = total + v, end
        break
    return (total, j) if j > i else None


def _ordinal(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """(value, end) of an ordinal at `i`: "twenty-first", "one hundredth", "third"."""
    k = i
    while k < len(words) and (words[k] in _NUMBER_WORDS or words[k] == "and") and words[k] not in _ORDINALS:
        k += 1
    if k >= len(words) or words[k] not in _ORDINALS:
        return None
    r = _cardinal([*words[i:k], _ORDINALS[words[k]]], 0)
    return (r[0], k + 1) if r is not None and r[1] == k - i + 1 else None


def _digit_words(words: Sequence[str], i: int) -> tuple[str, int]:
    """The digits of "five five five" or "one oh seven" at `i` ("oh" only after the first), and their end."""
    digits, j = "", i
    while j < len(words) and (words[j] in _UNITS or (words[j] == "oh" and j > i)):
        digits += "0" if words[j] == "oh" else str(_UNITS[words[j]])
        j += 1
    return digits, j


def _decimal(words: Sequence[str], i: int) -> tuple[str, int] | None:
    """("3.14", end) of "three point one four" at `i`; "3.5 million" for a decimal of millions."""
    whole = _cardinal(words, i)
    if whole is None or whole[1] >= len(words) or words[whole[1]] != "point":
        return None
    digits, j = _digit_words(words, whole[1] + 1)
    if not digits:
        return None
    if j < len(words) and _SCALES.get(words[j], 0) >= 10**6:
        return f"{whole[0]}.{digits} {words[j]}", j + 1
    return f"{whole[0]}.{digits}", j


def _amount(words: Sequence[str], i: int) -> tuple[str, int] | None:
    """A number as digits at `i` (decimal or cardinal, "3.5 million" for a decimal of millions)."""
    d = _decimal(words, i)
    if d is not None:
        return d
    c = _cardinal(words, i)
    if c is None:
        return None
    return _format_cardinal(c[0], words[i : c[1]]), c[1]


def _format_cardinal(value: int, said: Sequence[str]) -> str:
    """A cardinal said as `said`: "12,500"; "5,000" ("five thousand"), but "1900" ("nineteen hundred") and "2005"
    ("two thousand and five": likely a year); "3 million" for a round number of millions said as such."""
    scale = _SCALES.get(said[-1], 0)
    if scale >= 10**6 and value % scale == 0:
        return f"{value // scale:,} {said[-1]}"
    if value >= 10_000 or ("thousand" in said and not 2000 <= value <= 2099):
        return f"{value:,}"
    return str(value)


def _suffix(n: int) -> str:
    if n % 100 in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _hour_minutes(words: Sequence[str], i: int) -> tuple[int, int | None, int] | None:
    """(hour, minutes or None, end) of "ten thirty", "ten oh five" or "ten" at `i`; hours 1-12."""
    h = _below_100(words, i)
    if h is None or not 1 <= h[0] <= 12 or h[1] != i + 1:
        return None
    hour, j = h
    if j + 1 < len(words) and words[j] == "oh" and _UNITS.get(words[j + 1], 0) > 0:
        return hour, _UNITS[words[j + 1]], j + 2
    m = _below_100(words, j)
    if m is not None and 10 <= m[0] <= 59:
        return hour, m[0], m[1]
    return hour, None, j


def _year(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """(year, end) of "nineteen eighty-four", "nineteen oh-five", "twenty twenty" or "two thousand and five"."""
    a = _below_100(words, i)
    if a is not None and a[1] == i + 1 and 11 <= a[0] <= 20:
        j = a[1]
        if j < len(words) and words[j] in _DECADES:
            return -(a[0] * 100 + _DECADES[words[j]]), j + 1  # a decade: negative, written "1990s"
        if j + 1 < len(words) and words[j] == "oh" and _UNITS.get(words[j + 1], 0) > 0:
            return a[0] * 100 + _UNITS[words[j + 1]], j + 2
        b = _below_100(words, j)
        if b is not None and 10 <= b[0] <= 99:
            return a[0] * 100 + b[0], b[1]
    c = _cardinal(words, i)
    if c is not None and 2000 <= c[0] <= 2099 and words[i] == "two":
        return c
    return None


# ------------------------------------------------------------------------------------------------- the matchers
def _date(words: Sequence[str], i: int) -> _Match | None:
    if words[i] not in _MONTHS or i + 1 >= len(words):
        return None
    day = _ordinal(words, i + 1)  # "march third"; "march three" could be the verb ("they march ten miles")
    if day is None or not 1 <= day[0] <= 31:
        return None
    month = words[i].capitalize()
    year = _year(words, day[1]) if day[1] < len(words) else None
    if year is not None and year[0] > 0:
        return _Match(f"{month} {day[0]}, {year[0]}", year[1])
    return _Match(f"{month} {day[0]}", day[1])


def _money(words: Sequence[str], i: int) -> _Match | None:
    a = _amount(words, i)
    if a is None or a[1] >= len(words):
        return None
    text, j = a
    symbol = _CURRENCY.get(words[j])
    if symbol is None:
        if words[j] in ("cent", "cents") and text.isdigit():
            return _Match(f"{text} {words[j]}", j + 1)
        return None
    j += 1
    cents = _below_100(words, j + 1) if j < len(words) and words[j] == "and" and text.isdigit() else None
    if cents is not None and cents[1] < len(words) and words[cents[1]] in ("cent", "cents"):
        return _Match(f"{symbol}{text}.{cents[0]:02d}", cents[1] + 1)
    # "seventy-six euros ninety": cents said without their unit (10-99, and no number word after them)
    cents = _below_100(words, j) if text.isdigit() else None
    if cents is not None and 10 <= cents[0] <= 99 and (cents[1] == len(words) or words[cents[1]] not in _NUMBER_WORDS):
        return _Match(f"{symbol}{text}.{cents[0]:02d}", cents[1])
    return _Match(f"{symbol}{text}", j)


def _percent(words: Sequence[str], i: int) -> _Match | None:
    a = _amount(words, i)
    if a is None or a[1] >= len(words):
        return None
    text, j = a
    if words[j] == "percent":
        return _Match(f"{text}%", j + 1)
    if words[j] == "per" and j + 1 < len(words) and words[j + 1] == "cent":
        return _Match(f"{text}%", j + 2)
    return None


def _time(words: Sequence[str], i: int) -> _Match | None:
    t = _hour_minutes(words, i)
    if t is None:
        return None
    hour, minutes, j = t
    clock = f"{hour}:{minutes:02d}" if minutes is not None else str(hour)
    nxt = words[j] if j < len(words) else ""
    if nxt in ("am", "pm"):
        return _Match(f"{clock} {nxt[0]}.m.", j + 1)
    if nxt in ("a", "p") and j + 1 < len(words) and words[j + 1] == "m":
        return _Match(f"{clock} {nxt}.m.", j + 2)
    if nxt == "o'clock" and minutes is None:
        return _Match(f"{hour} o'clock", j + 1)
    if minutes is not None and nxt not in _CURRENCY and nxt not in ("percent", "point", "cents", "cent"):
        return _Match(clock, j)
    return None


def _year_match(words: Sequence[str], i: int) -> _Match | None:
    y = _year(words, i)
    if y is None or words[i] == "two":  # "two thousand and five" is a cardinal: the cardinal matcher writes it
        return None
    if y[1] < len(words) and words[y[1]] in ("hundred", *_SCALES):
        return None
    return _Match(f"{-y[0]}s" if y[0] < 0 else str(y[0]), y[1])


def _decimal_match(words: Sequence[str], i: int) -> _Match | None:
    d = _decimal(words, i)
    return _Match(*d) if d is not None else None


def _digits_match(words: Sequence[str], i: int) -> _Match | None:
    digits, j = _digit_words(words, i)
    return _Match(digits, j) if len(digits) >= 3 else None


def _ordinal_match(words: Sequence[str], i: int) -> _Match | None:
    o = _ordinal(words, i)
    if o is None or o[0] < 10:
        return None
    return _Match(f"{o[0]:,}{_suffix(o[0])}" if o[0] >= 10_000 else f"{o[0]}{_suffix(o[0])}", o[1])


def _cardinal_match(words: Sequence[str], i: int) -> _Match | None:
    c = _cardinal(words, i)
    if c is None or (c[1] == i + 1 and c[0] < 10):
        return None  # one to nine stay words
    return _Match(_format_cardinal(c[0], words[i : c[1]]), c[1])


def _negative(words: Sequence[str], i: int) -> _Match | None:
    """ "minus five" -> "-5", "minus five percent" -> "-5%"; not "ten minus three" (arithmetic)."""
    if words[i] != "minus" or i + 1 >= len(words) or (i > 0 and words[i - 1] in _NUMBER_WORDS):
        return None
    for matcher in (_money, _percent, _decimal_match):
        m = matcher(words, i + 1)
        if m is not None:
            return _Match("-" + m.text, m.end)
    c = _cardinal(words, i + 1)
    return _Match("-" + _format_cardinal(c[0], words[i + 1 : c[1]]), c[1]) if c is not None else None


_MATCHERS: tuple[Callable[[Sequence[str], int], _Match | None], ...] = (
    _negative,
    _date,
    _money,
    _percent,
    _time,
    _year_match,
    _decimal_match,
    _digits_match,
    _ordinal_match,
    _cardinal_match,
)


def _match(words: Sequence[str], i: int) -> _Match | None:
    """The first matcher's number phrase at `i`, or None."""
    if words[i] not in _NUMBER_WORDS and words[i] not in _ORDINALS and words[i] not in _MONTHS and words[i] != "minus":
        return None
    for matcher in _MATCHERS:
        m = matcher(words, i)
        if m is not None:
            return m
    return None
