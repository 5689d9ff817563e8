"""Hotword respelling: a run of recognized words that sounds like one of a stream's hotwords becomes that hotword.

    speller = Respeller(["kowalczyk", "zentrix labs"])
    speller.find(["good", "evening", "colsic"], [0.98, 0.95, 0.31])   # [Respelling(2, 3, "kowalczyk", 0.86)]

Boosting (server/biasing.py) helps the search towards a hotword's tokens only where the model already finds them
plausible: a name it cannot spell from sound ("kowalczyk" heard as "colsic", "mcallister" as "macalister") stays out of
reach at any boost that does not also put names into sentences without them. Respelling works after the search, on
the words: each run of one to (words of the hotword + 2) words is compared with each hotword by a sound key, and a
close enough run in which the model was unsure of some word is replaced.

The sound key (`sound_key`) is a coarse English letter-to-sound folding, so that spellings of the same sounds meet:
letters only; ph, gh, ck, qu, x, th, sh and ch folded; c before e, i, y -> s, else k; voiced and voiceless pairs merged
(b p, d t, g k, v f, z s); h, w and y dropped after the first letter (y as a vowel); every vowel run -> "a"; doubled
letters single. "zimerman" and "zimmerman" both give "samarman"; "more no" and "moreno" give "marana". Closeness is
1 - the Levenshtein distance of the two keys / the longer key's length.

A run is replaced when (all of):
- its closeness to the hotword is at least `threshold` (and it is not the hotword already);
- its least confident word is below `max_confidence` (the model doubted it: a name it could not spell rarely comes out
  as words it is sure of, while a sentence without names mostly does);
- the run's key is not shorter than half or longer than twice the hotword's.

A final (not a partial) may also take a run that sounds less like the hotword, down to `verify_threshold`, when the
transducer agrees (`AcousticCheck`): on the encoder frames between the tokens before the run and the token after it,
the hotword's tokens must be nearly as likely as the recognized ones, log P(hotword) + `margin` x (the hotword's
tokens) >= log P(recognized), each summed over all alignments (server/transducer.py's `forced_log_probs`). The sound
key finds where a name could be; the acoustics say whether it is: "villa over" is Villanueva said by a voice the
model never heard, "be novak" in "his behaviour" is not Novak.

A hotword may also come with `sounds_like`: how the model writes it when it hears it ("lombardi": "lambary", "long
bary"; `parley hotwords learn` finds them by synthesizing the hotword, models/data/sounds_like.py). Their keys are
the hotword's too, from `threshold` on: a run as close to "lambary" is as close to "lombardi" (and the planner adds
them to the stream's hotword graph at a share of the hotword's boost, `server.biasing.SOUNDS_LIKE_BOOST`, so that
the search writes them where the model half-hears them).

Overlapping candidates are resolved by closeness (the closest first, then the longer run). The defaults were tuned on
the dev names of benchmarks/bench_hotwords.py (docs/adaptation.md).

Words are compared with the hotwords whatever their case, and a run the model wrote in capitals (a LibriSpeech-trained
model imported from sherpa-onnx writes "MORE NO") is replaced by the hotword in capitals ("MORENO").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from parley.wer import align_counts
from server.biasing import hotword_text, phrase_tokens
from server.transducer import HeadRunner, forced_log_probs

RESPELL_THRESHOLD = 0.9  # closeness of the sound keys
RESPELL_MAX_CONFIDENCE = 0.6  # the run's least confident word must be below this
RESPELL_EXTRA_WORDS = 2  # a run may have this many words more than the hotword
RESPELL_VERIFY_THRESHOLD = 0.5  # finals: least closeness of a run the transducer verifies (`AcousticCheck`); 1: off
RESPELL_VERIFY_RUNS = 8  # finals: runs checked per segment at most, the closest first
RESPELL_VERIFY_MARGIN = 2.25  # log-probability per hotword token the hotword may fall short of the recognized words
RESPELL_VERIFY_SPELLINGS = 1  # finals: a hotword's tokenizations the check sums
# finals: runs with a word below this, none below RESPELL_MAX_CONFIDENCE, are respelled only if the check accepts them
RESPELL_VERIFY_MAX_CONFIDENCE = RESPELL_MAX_CONFIDENCE
# a run that is one of its hotword's sounds_like word for word is respelled however sure the model was
RESPELL_EXACT_SOUNDS_LIKE = True

_FOLDS = (  # applied in order, on lowercase letters
    ("tch", "c"),
    ("sch", "sk"),
    ("ph", "f"),
    ("gh", "g"),
    ("ck", "k"),
    ("qu", "kw"),
    ("q", "k"),
    ("x", "ks"),
    ("th", "t"),
    ("sh", "s"),
    ("ch", "c"),
)
_VOICING = str.maketrans({"b": "p", "d": "t", "g": "k", "v": "f", "z": "s"})
_VOWELS = re.compile(r"[aeiouy]+")


def sound_key(text: str) -> str:
    """A coarse key of how English letters sound (see the module docstring): "zimmerman" -> "samarman"."""
    s = re.sub(r"[^a-z]", "", text.lower())
    for a, b in _FOLDS:
        s = s.replace(a, b)
    s = re.sub(r"c(?=[eiy])", "s", s).replace("c", "k")
    s = s.translate(_VOICING)
    if len(s) > 1:  # h, w and a consonant y carry little after the first letter
        s = s[0] + re.sub(r"[hw]", "", s[1:])
    s = _VOWELS.sub("a", s)
    return re.sub(r"(.)\1+", r"\1", s)


def closeness(a: str, b: str) -> float:
    """1 - Levenshtein(a, b) / max(len(a), len(b)): 1 for equal strings, 0 for nothing in common (or both empty)."""
    if not a or not b:
        return 0.0
    return 1.0 - align_counts(list(a), list(b)).errors / max(len(a), len(b))


def edit_distance_within(a: str, b: str, bound: int) -> int | None:
    """Levenshtein(a, b) if it is at most `bound`, else None, by the bit-parallel algorithm of Myers (1999) in
    Hyyrö's (2001) form: one column of the table per character of `b`, as bit vectors of `a`'s length (Python's
    integers hold any length), a few integer operations each; pairs whose lengths differ by more than `bound` are
    not computed at all."""
    if abs(len(a) - len(b)) > bound:
        return None
    if not a or not b:
        return max(len(a), len(b))
    m = len(a)
    mask, high = (1 << m) - 1, 1 << (m - 1)
    peq: dict[str, int] = {}  # each character's positions in a
    for k, c in enumerate(a):
        peq[c] = peq.get(c, 0) | (1 << k)
    pv, mv, score = mask, 0, m  # vertical deltas +1 / -1; the table's last row
    for c in b:
        eq = peq.get(c, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = (mv | ~(xh | pv)) & mask
        mh = pv & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        ph = ((ph << 1) | 1) & mask
        mh = (mh << 1) & mask
        pv = (mh | ~(xv | ph)) & mask
        mv = ph & xv
    return score if score <= bound else None


def normalized_phrase(phrase: str) -> str:
    """A hotword (or one of its sounds_like) as the speller keeps it: lowercased, its white space collapsed."""
    return " ".join(phrase.lower().split())


@functools.lru_cache(maxsize=4096)
def _cached_key(text: str) -> str:
    """`sound_key`, remembered: a stream's partials repeat the same words chunk after chunk."""
    return sound_key(text)


@dataclass(frozen=True)
class Respelling:
    """Words [start, end) of a hypothesis are `phrase`; `closeness` of their sound keys (`heard`: the closest key
    is one of the hotword's sounds_like, not its own spelling's; `exact`: the words are one of them)."""

    start: int
    end: int
    phrase: str
    closeness: float
    heard: bool = False
    exact: bool = False  # the run is one of the hotword's sounds_like word for word (taken however sure the model was)


class Respeller:
    """Finds the runs of words to replace by a stream's hotwords.

    Args:
        phrases: the hotwords, as the stream gave them (lowercased and their white space collapsed here).
        threshold: the least closeness of the sound keys to replace a run.
        max_confidence: a run is replaced only if its least confident word is below this (1.0: any run).
        extra_words: a run may have this many words more than its hotword.
        verify_threshold: the least closeness of a run that `find` replaces when its `verify` accepts it (at most
            `threshold`; equal to it: nothing is verified).
        verify_margin: the `AcousticCheck` margin the stream's finals use (log-probability per hotword token).
        verify_runs: `find` checks at most this many runs of one hypothesis, the closest first (the check's cost).
        capitals: write the hotwords in capitals (True: the model's tokenizer writes capitals, `writes_capitals`) or
            lowercased (False); None: in capitals where the run replaced is (a one-letter "I" counts too).
        verify_max_confidence: with `verify`, a run whose least confident word is below this but not below
            `max_confidence` (the model was surer of it) is replaced only if the check accepts it, however close it
            sounds (None: `max_confidence`, no such runs).
        sounds_like: for a hotword (as given in `phrases`, any case), how the model writes it when it hears it
            ("lombardi": ["lambary", "long bary"]; `parley hotwords learn` finds them by synthesizing the hotword):
            a run at least `threshold` close to one of these is as close to the hotword (the looser
            `verify_threshold` is for the hotword's own spelling only: a name has one spelling and many mishearings,
            each of which would bring its own near misses), and the acoustic check still scores the hotword's own
            tokens. Hotwords not in `phrases` are ignored.
        exact_sounds_like: a run that is one of a hotword's sounds_like word for word is replaced however sure the
            model was of it (the model writes "yahweh modo" for "yamamoto" confidently: its confidence says nothing
            about whether a name was said); a run only close to one is gated by `max_confidence` as any other.

    Raises:
        ValueError: no phrases, an empty phrase, a threshold outside (0, 1], a max_confidence outside (0, 1], or a
            verify_threshold outside (0, threshold].
    """

    def __init__(
        self,
        phrases: Sequence[str],
        threshold: float = RESPELL_THRESHOLD,
        max_confidence: float = RESPELL_MAX_CONFIDENCE,
        extra_words: int = RESPELL_EXTRA_WORDS,
        verify_threshold: float | None = RESPELL_VERIFY_THRESHOLD,
        verify_margin: float = RESPELL_VERIFY_MARGIN,
        verify_runs: int = RESPELL_VERIFY_RUNS,
        capitals: bool | None = None,
        verify_max_confidence: float | None = RESPELL_VERIFY_MAX_CONFIDENCE,
        sounds_like: Mapping[str, Sequence[str]] | None = None,
        exact_sounds_like: bool = RESPELL_EXACT_SOUNDS_LIKE,
    ) -> None:
        if not 0 < threshold <= 1 or not 0 < max_confidence <= 1:
            raise ValueError(f"threshold and max_confidence must be in (0, 1], got {threshold}, {max_confidence}")
        verify_threshold = threshold if verify_threshold is None else min(verify_threshold, threshold)
        if verify_threshold <= 0:
            raise ValueError(f"verify_threshold must be in (0, threshold], got {verify_threshold}")
        self.phrases = list(dict.fromkeys(normalized_phrase(p) for p in phrases))
        if not self.phrases or not all(self.phrases):
            raise ValueError("respelling needs at least one non-empty phrase")
        self.keys = [sound_key(p) for p in self.phrases]
        index = {p: k for k, p in enumerate(self.phrases)}
        # (phrase, key) of each way a hotword may sound: its own spelling, then its sounds_like
        self._entries = [(k, key) for k, key in enumerate(self.keys)]
        seen = set(self._entries)
        self._exact: dict[str, int] = {}  # a sounds_like's words -> its hotword, where taken however sure
        for phrase, aliases in (sounds_like or {}).items():
            k = index.get(normalized_phrase(phrase))
            if k is None:
                continue
            for alias in aliases:
                words = normalized_phrase(alias)
                if exact_sounds_like and words and words not in index:
                    self._exact.setdefault(words, k)
                key = _cached_key(alias)  # a server's sounds_like come again with every stream
                if key and (k, key) not in seen:
                    seen.add((k, key))
                    self._entries.append((k, key))
        self.threshold, self.max_confidence, self.extra_words = threshold, max_confidence, extra_words
        self.verify_threshold, self.verify_margin, self.verify_runs = verify_threshold, verify_margin, verify_runs
        self.capitals = capitals
        self.verify_max_confidence = max(max_confidence, verify_max_confidence or 0.0)
        self._words = [len(p.split()) for p in self.phrases]
        self._by_length: dict[int, list[int]] = {}  # key length -> the entries with such keys
        for e, (_, key) in enumerate(self._entries):
            if key:
                self._by_length.setdefault(len(key), []).append(e)

    def candidates(
        self,
        words: Sequence[str],
        confidences: Sequence[float],
        threshold: float,
        max_confidence: float | None = None,
    ) -> list[Respelling]:
        """Every run of `words` (with each word's confidence in [0, 1]) with a doubtful word whose sound key is at
        least `threshold` close to a hotword's, overlapping ones included; none takes a word of a hotword already in
        `words` (a recognized "henderson" stays, whatever "andersen" sounds like). Case does not matter; a run written
        in capitals gets the hotword in capitals."""
        if len(words) != len(confidences):
            raise ValueError(f"{len(words)} words but {len(confidences)} confidences")
        longest = max(self._words) + self.extra_words
        gate = self.max_confidence if max_confidence is None else max_confidence
        lower = [w.lower() for w in words]  # the phrases are lowercased
        said = [False] * len(words)  # words that are a hotword already: no run takes them (for another hotword)
        for p in self.phrases:
            ws = p.split()
            for i in range(len(words) - len(ws) + 1):
                if lower[i : i + len(ws)] == ws:
                    said[i : i + len(ws)] = [True] * len(ws)
        runs = []  # (i, j, key) of every run with a doubtful word, each key computed once for all the phrases
        exact = {}  # (i, j, phrase) of each run the model was sure of that is one of a phrase's sounds_like
        for i in range(len(words)):
            doubtful = False
            for j in range(i + 1, min(i + longest, len(words)) + 1):
                if said[j - 1]:
                    break
                doubtful = doubtful or confidences[j - 1] < gate
                if doubtful:
                    runs.append((i, j, _cached_key("".join(lower[i:j]))))
                elif self._exact and (k := self._exact.get(" ".join(lower[i:j]))) is not None:
                    exact[(i, j, k)] = True
        best: dict[tuple[int, int, int], tuple[float, bool]] = {}  # (run, phrase) -> closeness to its nearest key
        for i, j, rk in runs:
            for e in self._near_length(len(rk), threshold):
                k, key = self._entries[e]
                longest_k = max(len(rk), len(key))
                if j - i > self._words[k] + self.extra_words:
                    continue
                bound = threshold if e < len(self.phrases) else max(threshold, self.threshold)
                d = edit_distance_within(rk, key, int((1 - bound) * longest_k + 1e-9))
                if d is not None and " ".join(lower[i:j]) != self.phrases[k]:
                    c = (1.0 - d / longest_k, e >= len(self.phrases))  # entries past the phrases: sounds_like
                    best[(i, j, k)] = max(c, best.get((i, j, k), (0.0, False)), key=lambda x: (x[0], not x[1]))
        best.update({run: (1.0, True) for run in exact})
        cands = []
        for (i, j, k), (c, heard) in best.items():
            upper = "".join(words[i:j]).isupper() if self.capitals is None else self.capitals
            phrase = self.phrases[k].upper() if upper else self.phrases[k]
            cands.append(Respelling(i, j, phrase, c, heard, (i, j, k) in exact))
        return cands

    def find(
        self,
        words: Sequence[str],
        confidences: Sequence[float],
        verify: Callable[[Sequence[Respelling]], Sequence[bool]] | None = None,
    ) -> list[Respelling]:
        """The runs of `words` (with each word's confidence in [0, 1]) to replace, in order, not overlapping: those at
        least `threshold` close to a hotword, and with `verify` (an `AcousticCheck`) those at least `verify_threshold`
        close that it accepts."""
        if verify is not None:
            cands = self.candidates(words, confidences, self.verify_threshold, self.verify_max_confidence)
        else:
            cands = self.candidates(words, confidences, self.threshold)
        # close enough and doubted: taken unchecked; the rest (less close, or a run the model was surer of) checked
        sure = [r for r in cands if self._sure(r, confidences)]
        checked = [r for r in cands if r not in sure]
        # the closest runs first, at most `verify_runs` of them, none that a sure one takes anyway
        doubtful = sorted(
            (r for r in checked if all(r.end <= o.start or r.start >= o.end for o in sure)),
            key=lambda r: (-r.closeness, r.end - r.start, r.start),
        )[: self.verify_runs]
        cands = sure
        if doubtful:
            assert verify is not None
            accepted = {r for r, ok in zip(doubtful, verify(doubtful), strict=True) if ok}
            cands = sure + [r for r in doubtful if r in accepted]
        chosen: list[Respelling] = []
        for r in sorted(cands, key=lambda r: (-r.closeness, -(r.end - r.start), r.start)):
            if all(r.end <= o.start or r.start >= o.end for o in chosen):
                chosen.append(r)
        return sorted(chosen, key=lambda r: r.start)

    def _sure(self, r: Respelling, confidences: Sequence[float]) -> bool:
        """Whether run `r` is replaced unchecked: close enough, and doubted (or a sounds_like word for word)."""
        return r.closeness >= self.threshold and (r.exact or min(confidences[r.start : r.end]) < self.max_confidence)

    def first_open(
        self,
        words: Sequence[str],
        confidences: Sequence[float],
        verify: Callable[[], AcousticCheck | None] | None = None,
    ) -> int:
        """The index of the first of `words` that a final's `find` with an acoustic check may still replace where
        `find` without one (a partial's respelling) does not; `len(words)` if none. Without `verify`, the start of
        the earliest run of the check's range; with it (made only where there is such a run), of the earliest such
        run the check accepts or cannot score yet (no token after the run): a run it rejects stays as it is in the
        final too."""
        cands = self.candidates(words, confidences, self.verify_threshold, self.verify_max_confidence)
        sure = [r for r in cands if self._sure(r, confidences)]  # replaced alike, and no checked run overlaps them
        runs = [r for r in cands if r not in sure and all(r.end <= o.start or r.start >= o.end for o in sure)]
        if verify is not None and runs and (check := verify()) is not None:
            scored = [r for r in runs if (w := check.window(r)) is not None and w[1] < len(check.tokens)]
            rejected = {r for r, ok in zip(scored, check(scored), strict=True) if not ok}
            runs = [r for r in runs if r not in rejected]
        return min((r.start for r in runs), default=len(words))

    def _near_length(self, n: int, threshold: float) -> list[int]:
        """The entries (`_entries`) whose keys could be close enough to a key of length n: the edit distance is at
        least the difference in length, so closeness >= threshold needs 1 - |n - m| / max(n, m) >= threshold (and m
        within a factor of two of n)."""
        out: list[int] = []
        for m, ks in self._by_length.items():
            if n and n / 2 <= m <= 2 * n and 1 - abs(n - m) / max(n, m) >= threshold:
                out += ks
        return out

    def apply(
        self,
        words: Sequence[str],
        confidences: Sequence[float],
        verify: Callable[[Sequence[Respelling]], Sequence[bool]] | None = None,
    ) -> list[str]:
        """`words` with the runs `find` returns replaced by their hotwords."""
        out, i = [], 0
        for r in self.find(words, confidences, verify):
            out += [*words[i : r.start], r.phrase]
            i = r.end
        return out + list(words[i:])


def _spellings(sp, phrase: str, n: int) -> list[list[int]]:
    """A hotword's `n` likeliest tokenizations under the head's sentencepiece model `sp`, the usual one first (none:
    the head cannot write it)."""
    try:
        best = phrase_tokens(sp, phrase)
    except ValueError:
        return []
    out = [best]
    if n > 1 and hasattr(sp, "nbest_encode_as_ids"):  # a `TokenTable` knows one tokenization
        unk = sp.unk_id()
        for ids in sp.nbest_encode_as_ids(hotword_text(sp, phrase), n):
            ids = [int(t) for t in ids]
            if len(out) < n and ids not in out and unk not in ids:
                out.append(ids)
    return out


class AcousticCheck:
    """Whether the transducer hears a hotword where a run of recognized words was (the module docstring's check), for
    one hypothesis: a `verify` for `Respeller.find`.

    Args:
        head: the head that recognized the words.
        encoder_out: `(T, E)` the encoder output the hypothesis was searched on: the stream's frames
            [first_frame, first_frame + T).
        tokens: the hypothesis's tokens.
        frames: the stream frame each token was emitted at (increasing).
        word_tokens: each word's tokens, as the range [i, j) of `tokens`, in the order of the words `find` is given.
        first_frame: the stream frame of `encoder_out`'s first row.
        margin: log-probability per hotword token that the hotword may fall short of the recognized run.
        spellings: the hotword's likeliest tokenizations scored (their probabilities summed); the margin counts the
            tokens of the first.
        memo: scores kept across checks of one stream's segment, by the run's tokens (with the decoder's context
            before them), its window's stream frames and the hotword: a partial's check and the final's then agree
            on a run whose window no longer changes, and score it once.
    """

    def __init__(
        self,
        head: HeadRunner,
        encoder_out: np.ndarray,
        tokens: Sequence[int],
        frames: Sequence[int],
        word_tokens: Sequence[tuple[int, int]],
        first_frame: int = 0,
        margin: float = RESPELL_VERIFY_MARGIN,
        spellings: int = RESPELL_VERIFY_SPELLINGS,
        memo: dict[tuple, tuple[float, int]] | None = None,
    ) -> None:
        assert len(tokens) == len(frames), (len(tokens), len(frames))
        self.memo = memo
        self.head, self.encoder_out, self.first_frame, self.margin = head, encoder_out, first_frame, margin
        self.spellings = spellings
        self.tokens, self.frames, self.word_tokens = list(tokens), list(frames), list(word_tokens)
        self._scored: dict[tuple[int, int, int, int, str], tuple[float, int]] = {}  # -> (log P ratio, hotword tokens)

    def window(self, r: Respelling) -> tuple[int, int, int, int] | None:
        """Run `r`'s tokens [k0, k1) and its frames [a, b) of `encoder_out`: from after the token before it to the token
        after it (or the output's end); None if the window starts before the kept output."""
        k0, k1 = self.word_tokens[r.start][0], self.word_tokens[r.end - 1][1]
        end = self.first_frame + len(self.encoder_out)
        a = min(self.frames[k0 - 1] + 1, self.frames[k0]) if k0 > 0 else self.first_frame
        b = self.frames[k1] if k1 < len(self.tokens) else end
        if a < self.first_frame or not a < b <= end:
            return None
        return k0, k1, a - self.first_frame, b - self.first_frame

    def scores(self, runs: Sequence[Respelling]) -> list[float]:
        """log P(hotword) + margin x its tokens - log P(recognized run) of each run on its window (-inf: no window, or
        a hotword the head cannot write); the runs of one window are scored in one joiner run, and each run once (a
        later call with another `margin` reuses it)."""
        todo: dict[tuple[int, int, int, int], list[str]] = {}
        keys: list[tuple[int, int, int, int, str] | None] = []
        for r in runs:
            w = self.window(r)
            keys.append(None if w is None else (*w, r.phrase))
            if w is not None and (*w, r.phrase) not in self._scored:
                if self.memo is not None and (kept := self.memo.get(self._memo_key(*w, r.phrase))) is not None:
                    self._scored[(*w, r.phrase)] = kept
                else:
                    todo.setdefault(w, []).append(r.phrase)
        sp = self.head.head.sp
        for (k0, k1, a, b), phrases in todo.items():
            alts: list[list[list[int]]] = [_spellings(sp, phrase, self.spellings) for phrase in phrases]
            flat = [self.tokens[k0:k1], *(seq for spell in alts for seq in spell)]
            context = self.tokens[max(0, k0 - self.head.context_size) : k0]
            lp = forced_log_probs(self.head, self.encoder_out[a:b], flat, context)
            i = 1
            for phrase, spell in zip(phrases, alts, strict=True):
                score = np.logaddexp.reduce(lp[i : i + len(spell)]) if spell else -np.inf
                i += len(spell)
                self._scored[(k0, k1, a, b, phrase)] = (float(score - lp[0]), len(spell[0]) if spell else 0)
                if self.memo is not None:
                    self.memo[self._memo_key(k0, k1, a, b, phrase)] = self._scored[(k0, k1, a, b, phrase)]
        out = []
        for key in keys:
            ratio, n = self._scored[key] if key is not None else (-np.inf, 0)
            out.append(ratio + self.margin * n)
        return out

    def __call__(self, runs: Sequence[Respelling]) -> list[bool]:
        return [s >= 0 for s in self.scores(runs)]

    def _memo_key(self, k0: int, k1: int, a: int, b: int, phrase: str) -> tuple:
        """What a run's score depends on: its tokens and the decoder's context before them, its window's stream
        frames, the hotword."""
        context = max(0, k0 - self.head.context_size)
        return (tuple(self.tokens[context:k1]), a + self.first_frame, b + self.first_frame, phrase)
