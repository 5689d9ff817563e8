"""The names and terms of a free-text prompt, as hotwords.

OpenAI's transcription APIs take a `prompt` ("ZyntriQix, Digique Plus, CynapseFive", or the last turn's transcript)
that Whisper reads as preceding text, and the way their users fix the spelling of names. A transducer has no
preceding text to read, but Parley has per-stream hotwords (server/biasing.py, server/respell.py): so the prompt's
names and terms become the stream's hotwords, written with the prompt's capitals (finals' `display` keeps them,
server/written.py); a stream that would have had the model's general LM keeps it (server/session.py `with_prompt`).

What counts as a term: a word with a capital letter inside it ("McAllister", "iPhone", "ZyntriQix", "NASA"); a
capitalized word that does not begin a sentence ("... from Kowalczyk"); and a capitalized word that begins one and is
not an everyday word (`is_common`: one of `COMMON_STARTS`, "The", "We", "Hello", or, in the server, a word the
model's tokenizer writes as a single piece; "Kowalczyk" is neither). Single letters, words with digits ("Q3"), "I"
and its contractions, and titles ("Mr", "Dr") are never terms. Consecutive terms ("Anna McAllister", "Zentrix
Labs") make one phrase, and each of its words of five letters or more that is not an everyday word is a phrase too
(a surname is often said alone: "McAllister"); every phrase is kept once, in the prompt's order. Lowercase words
are left alone: they are words the model knows already, and boosting them would write them where other words were
said; send those as `hotwords`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Words (letters, with inner apostrophes and hyphens) and the punctuation that ends a sentence or a list item.
_TOKEN = re.compile(r"[^\W\d_](?:[^\W_]|['\-](?=[^\W\d_]))*|[0-9][\w'\-]*|[.!?;:\n]|,|\S")
_SENTENCE_END = set(".!?;:\n")
# Capitalized words that are never names by themselves.
_NEVER = {"i", "ok", "i'm", "i've", "i'll", "i'd", "mr", "mrs", "ms", "dr", "prof", "st", "mt", "jr", "sr"}
# English words that often begin a sentence and are not names (function words, greetings, an instruction's verbs).
# A model's tokenizer says the rest of its everyday words: the server's `is_common` is "in this set or a single piece".
_COMMON = """a about above after again against all also although am an and another any anyway are as at be because been
    before being below besides between both but by can could did do does doing done during each either even ever
    every few first for from further good had has have having he hello her here hers herself hey hi him himself his
    how however if in indeed instead into is it its itself just last let like many may maybe me meanwhile might more
    most much must my myself neither never next no nobody none nor not nothing now of off often on once one only or
    other others otherwise our ours ourselves out over perhaps please rather really she should since so some someone
    something sometimes soon still such than thank thanks that the their theirs them themselves then there therefore
    these they this those though through thus to today together tomorrow too under unless until up upon us very was
    we well were what whatever when whenever where whether which while who whoever whom whose why will with within
    without would yes yesterday yet you your yours yourself yourselves
    ask book bring call check find get give go keep let look make meet note open play read remind said say see send
    set show start stop take talk tell thank turn write"""
COMMON_STARTS = frozenset(_COMMON.split())
MAX_PHRASE_WORDS = 4  # a longer run of capitalized words is a title, cut into phrases of at most this many
# The least letters of a run's word taken alone ("McAllister", not "Anna" or "Labs"): a short hotword sounds like too
# many runs of ordinary words ("a for" -> "anna" on en-open, in Realtime sessions with the prompt below).
MIN_ALONE = 5


def prompt_terms(prompt: str, is_common: Callable[[str], bool] = COMMON_STARTS.__contains__) -> list[str]:
    """The names and terms of `prompt` as hotword phrases, in order, each once (module docstring).

    `is_common(word)` (the word lowercased) says whether a capitalized word that begins a sentence is an everyday
    word rather than a name.
    """
    phrases: list[str] = []
    run: list[str] = []

    def close() -> None:
        for i in range(0, len(run), MAX_PHRASE_WORDS):
            words = run[i : i + MAX_PHRASE_WORDS]
            alone = [w for w in words if len(w) >= MIN_ALONE and not is_common(w.lower())] if len(words) > 1 else []
            for phrase in (" ".join(words), *alone):
                if phrase not in phrases:
                    phrases.append(phrase)
        run.clear()

    starts_sentence = True
    for token in _TOKEN.findall(prompt.replace("’", "'")):
        if token.lower().endswith("'s") and len(token) > 3:  # a possessive: the name ("McAllister's" is matched too)
            token = token[:-2]
        if not token[0].isalpha():  # punctuation, a number: a phrase ends here
            close()
            if token in _SENTENCE_END:
                starts_sentence = True
            elif token[0].isdigit():
                starts_sentence = False
            continue
        if _is_term(token, starts_sentence, is_common):
            run.append(token)
        else:
            close()
        starts_sentence = False
    close()
    return phrases


def _is_term(word: str, starts_sentence: bool, is_common: Callable[[str], bool]) -> bool:
    lower = word.lower()
    if lower in _NEVER or word == lower or len(word) == 1 or any(c.isdigit() for c in word):
        return False
    if any(c.isupper() for c in word[1:]):  # McAllister, iPhone, NASA
        return True
    if not word[0].isupper():
        return False
    return not (starts_sentence and is_common(lower))
