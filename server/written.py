"""Hotwords in captions as their users wrote them.

A stream's hotwords are matched whatever their case (the search and respelling lowercase them for a model that writes
lowercase), so a final's words say "mcallister" and "iphone"; the punctuation model, which has never seen these names,
cases them as it guesses ("Mcallister", "Iphone"). A user who gives "McAllister" and "iPhone" as hotwords wrote how
they are spelled: `write_phrases` puts that spelling into the final's `display` wherever the phrase's words are, with
the punctuation around them kept. `text` and `words` stay as recognized. A phrase written all in lowercase says
nothing about case and is left to the punctuation model.

    >>> forms = written_forms(["McAllister", "zentrix labs", "iPhone"])
    >>> write_phrases("The letter from Mcallister came, with an Iphone.", forms)
    'The letter from McAllister came, with an iPhone.'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["write_phrases", "written_forms"]

_EDGE = "\"'“”‘’«»()[]{}.,;:!?¿¡…"


def _key(token: str) -> str:
    return token.strip(_EDGE).lower()


def _joined(run: list[str]) -> bool:
    """Whether no punctuation comes between the tokens of `run` ("Zentrix, labs" is not the phrase "Zentrix Labs")."""
    return all(t.rstrip(_EDGE) == t for t in run[:-1]) and all(t.lstrip(_EDGE) == t for t in run[1:])


def written_forms(phrases: Iterable[str]) -> dict[tuple[str, ...], tuple[str, ...]]:
    """The phrases that say how they are written (not all lowercase), by their words' lowercase keys."""
    forms: dict[tuple[str, ...], tuple[str, ...]] = {}
    for phrase in phrases:
        words = tuple(phrase.split())
        if words and phrase != phrase.lower():
            forms[tuple(_key(w) for w in words)] = words
    return forms


def write_phrases(display: str, forms: Mapping[tuple[str, ...], tuple[str, ...]]) -> str:
    """`display` with each run of tokens that says one of `forms`' phrases written as the phrase (the longest phrase
    where several start at a token), keeping the punctuation before its first token and after its last."""
    if not forms:
        return display
    tokens = display.split()
    keys = [_key(t) for t in tokens]
    longest = max(len(k) for k in forms)
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for n in range(min(longest, len(tokens) - i), 0, -1):
            words = forms.get(tuple(keys[i : i + n]))
            if words is None or not _joined(tokens[i : i + n]):
                continue
            first, last = tokens[i], tokens[i + n - 1]
            lead = first[: len(first) - len(first.lstrip(_EDGE))]
            trail = last[len(last.rstrip(_EDGE)) :]
            out += [lead + words[0] + (trail if n == 1 else ""), *words[1:-1]]
            if n > 1:
                out.append(words[-1] + trail)
            i += n
            break
        else:
            out.append(tokens[i])
            i += 1
    return " ".join(out)
