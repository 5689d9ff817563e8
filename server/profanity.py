"""The profanity filter: words of a list masked in what a stream is sent, as broadcast captions need.

A stream that asks for it (start's `"profanity_filter": true`, `?profanity_filter=true`, or every stream of a
server started with `--profanity-filter`) gets each listed word written with its first letter and asterisks for
the rest, in partials and finals: `text`, `words`, `display`, `alternatives`, translations and multi-talker
`speakers`.

    >>> f = ProfanityFilter()
    >>> f.mask_text("Well, damn. That's bullshit!")
    'Well, d***. That's b*******!'

A word matches whatever its case, with a possessive "'s" or the punctuation around it ("damn," "Shit!"), and each
part of a hyphenated word on its own ("bull-shit" -> "bull-s***"). Masking keeps a word's length, so a partial's
`stable` prefix (docs/protocol.md) counts the same characters masked or not; and it is applied after punctuation
(the punctuation model reads the words as said) and after number writing and redaction.

The list: `PROFANITY`, common English profanity, and the words of `--profanity-words FILE` (one a line, `#`
comments; added to it). Words only, not phrases: a phrase's first words at the end of a partial could not be masked
before its last word is heard, and the stable prefix would break that promise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["PROFANITY", "ProfanityFilter", "read_words"]

# Common English profanity and its usual inflections. Extend with --profanity-words for a site's own list.
PROFANITY = frozenset(
    """
    arse arsehole arseholes ass asses asshole assholes bastard bastards bitch bitches bitching bitchy bollocks
    bullshit bullshitting crap crappy cock cocks cocksucker cunt cunts damn damned damnit dammit dick dicks
    dickhead dickheads fuck fucked fucker fuckers fuckin fucking fucks goddamn goddamned goddammit horseshit
    jackass motherfucker motherfuckers motherfucking piss pissed pissing prick pricks pussy shit shits shitted
    shitting shitty shite slut sluts twat twats wanker wankers whore whores
    """.split()  # noqa: SIM905 (a word list reads best as words)
)

_TOKEN = re.compile(r"\S+")
_CORE = re.compile(r"^(\W*)(.*?)(\W*)$", re.S)  # leading marks, the word, trailing marks


def read_words(path: Path) -> frozenset[str]:
    """The words of a list file: one a line, lowercased; blank lines and `#` comments skipped.

    Raises:
        ValueError: the file does not read, or a line holds more than one word.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"profanity_words {path}: {getattr(e, 'strerror', None) or e}") from None
    words = set()
    for n, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if len(fields) > 1:
            raise ValueError(f"profanity_words {path} line {n}: one word a line (phrases are not filtered)")
        if fields:
            words.add(fields[0].lower())
    return frozenset(words)


class ProfanityFilter:
    """Masks the words of `words` (lowercase; default `PROFANITY`), each as its first letter and asterisks."""

    def __init__(self, words: Iterable[str] = PROFANITY) -> None:
        self.words = frozenset(w.lower() for w in words)

    def listed(self, word: str) -> bool:
        """Whether `word` (no white space, without the marks around it) is one of the list's, whatever its case,
        with or without a possessive 's."""
        w = word.lower()
        return w in self.words or (w.endswith(("'s", "’s")) and w[:-2] in self.words)

    def mask_word(self, token: str) -> str:
        """`token` (a word with the marks around it) masked where it, or a part of it between hyphens, is listed."""
        lead, core, trail = _CORE.match(token).groups()  # type: ignore[union-attr]
        if not core:
            return token
        if self.listed(core):
            return lead + _masked(core) + trail
        if "-" in core:
            parts = core.split("-")
            if any(self.listed(p) for p in parts):
                return lead + "-".join(_masked(p) if self.listed(p) else p for p in parts) + trail
        return token

    def mask_text(self, text: str) -> str:
        """`text` with every listed word masked; white space and length unchanged."""
        return _TOKEN.sub(lambda m: self.mask_word(m.group()), text)


def _masked(word: str) -> str:
    """The first character kept, every later letter or digit an asterisk; a possessive kept ("shit's" -> "s***'s")."""
    stem, tail = word, ""
    if len(word) > 2 and word.lower().endswith(("'s", "’s")):
        stem, tail = word[:-2], word[-2:]
    return stem[:1] + re.sub(r"\w", "*", stem[1:]) + tail
