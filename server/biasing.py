"""Contextual biasing: a token-level Aho-Corasick graph of a stream's hotwords, for modified beam search.

Dimension letters: V vocabulary.

    graph = ContextGraph([([17, 42, 9], 1.5), ([17, 5], 2.0)])  # token ids of each phrase, boost per token
    node, bonus = graph.step(ContextGraph.ROOT, 17)             # one emitted token
    bonuses = graph.bonuses(node)                               # (V,) float32: what each next token would get
    graph.pending(node)                                         # what `BeamState.best` takes back
    graph = ContextGraph(phrases, floor=4.0)                    # no bonus where log P(token) < -4 x its boost

The score a hypothesis gets from the graph is a function of its tokens: the full bonus (the boosts of its tokens) of
every phrase occurrence in them, as Aho-Corasick finds them (overlapping and nested ones too), plus the *pending*
bonus of the partial match in progress: the boosts of the tokens matched since the last phrase ended on the current
match's path. The search adds it token by token, so a phrase is boosted from its first token on and survives the
beam while it is being spoken; when a partial match fails (the next token continues no phrase from there), the
pending bonus it got is taken back, and a hypothesis that merely began a phrase ends no better off than one that did
not. This is icefall's and sherpa-onnx's ContextGraph idea, restated so that the score of a token sequence does not
depend on how the search reached it.

A step from node s on token v goes to n = goto(s, v) (the deepest node whose path is a suffix of s's path plus v,
found through the failure links; the root when none is) and gives `local(n) - local(s) + done(n)`, where `local` is
the pending bonus of a node (0 at a phrase's end) and `done(n)` the full bonus of every phrase that ends at n (its
own, and those ending at the nodes of its output links).

Whole words (`word_start` given, as the server does): a phrase counts only where a word ends with it, that is where
the next token starts a word (a sentencepiece piece beginning with "▁", an apostrophe or a special token) or the
hypothesis ends. A phrase's bonus is given when its last token is emitted, as above, and taken back when the next
token glues more letters onto the word (`- done(s)` on a step from s by a token that starts no word): "moreno"
boosted no longer makes "morenow" win, the model's own extra sound stays its own word. The score of a token sequence
is then the full bonus of every phrase occurrence followed by a word start or the end, plus the pending bonus.

Acoustic floor (`floor`, F): a token that would continue a phrase gets its bonus only where the model's
log-probability of it, where it is emitted, is at least -F x its boost; below that the hypothesis leaves the graph
(to the root) as if the token continued no phrase, and what the match had pending is taken back. A boost is meant to
tip the balance between spellings the model finds plausible; a token the model all but rules out is how a boost
writes a hotword into a sentence without it. The floor scales with the boost, so a stream that asks for a strong
boost (a name it knows will be said) still gets one: at the default boost 2 and F = 4 the floor is a probability of
e^-8 (0.00034), at boost 8 e^-32. Tuned on the dev names of benchmarks/bench_hotwords.py (docs/adaptation.md). The
score of a token sequence then depends on where its tokens were emitted as well, and so does its node: the same tokens
may be inside a phrase on one path and back at the root on another (beam search keeps such hypotheses apart,
server/transducer.py). `score` gives the floor-free total.

Phrases are written in the case of the head's vocabulary (`hotword_text`): lowercased, as Parley's own tokenizers and
most others write words, or in capitals for one whose word pieces are all capitals (icefall's and sherpa-onnx's
LibriSpeech-trained models: "▁THE").
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Sequence

import numpy as np

MAX_HOTWORD_BOOST = 20.0  # a hotword's bonus per token (log-probability) is in (0, MAX_HOTWORD_BOOST]
HOTWORD_BOOST = 2.0  # the bonus per token of a hotword that names none (docs/adaptation.md: tuned on dev names)
HOTWORD_FLOOR = 4.0  # the acoustic floor's default, in boosts (see the module docstring); 0: off
# A hotword's sounds_like (how the model writes it when it hears it) are boosted at this share of its boost, so that
# the search writes them where the model half-hears them and respelling turns them into the hotword
# (docs/adaptation.md: tuned on dev names).
SOUNDS_LIKE_BOOST = 0.5


class ContextGraph:
    """The Aho-Corasick automaton of token phrases with a boost per token.

    Args:
        phrases: (token ids, boost per token) of each phrase; a boost must be > 0. Phrases sharing a prefix share its
            nodes, which take the larger of their boosts.
        vocab_size: V, the width of `bonuses` rows (default: 1 + the largest token id).
        word_start: `(V,)` bool, the tokens that begin a word (`word_starts(sp)`): match whole words only (see the
            module docstring). None: match token sequences anywhere.
        floor: the acoustic floor F: a token whose log-probability where it is emitted is below -F x its boost gets
            no bonus and leaves the graph (see the module docstring); 0: no floor.

    Raises:
        ValueError: no phrases, an empty phrase, a boost <= 0, a token id outside the vocabulary, a floor < 0.
    """

    ROOT = 0

    def __init__(
        self,
        phrases: Sequence[tuple[Sequence[int], float]],
        vocab_size: int | None = None,
        word_start: np.ndarray | None = None,
        floor: float = HOTWORD_FLOOR,
    ) -> None:
        if not phrases:
            raise ValueError("a context graph needs at least one phrase")
        if not floor >= 0.0:
            raise ValueError(f"floor must be >= 0, got {floor}")
        self.floor = float(floor)
        top = max((max(t) for t, _ in phrases if len(t)), default=0)
        self.vocab_size = int(vocab_size if vocab_size is not None else top + 1)
        if word_start is not None and np.shape(word_start) != (self.vocab_size,):
            raise ValueError(f"word_start has shape {np.shape(word_start)}, want ({self.vocab_size},)")
        # (V,) float: 1 for a token that glues onto the word before it (takes back a phrase just ended), else 0.
        self._glue = None if word_start is None else (~np.asarray(word_start, dtype=bool)).astype(np.float64)
        # Per node: children {token: node}, the boost of the token that leads to it, whether a phrase ends there.
        self._next: list[dict[int, int]] = [{}]
        gain: list[float] = [0.0]
        end: list[bool] = [False]
        parent: list[int] = [-1]
        for tokens, boost in phrases:
            if len(tokens) == 0:
                raise ValueError("a phrase has no tokens")
            if not boost > 0:
                raise ValueError(f"a phrase's boost must be > 0, got {boost}")
            node = self.ROOT
            for t in tokens:
                t = int(t)
                if not 0 <= t < self.vocab_size:
                    raise ValueError(f"token id {t} outside the vocabulary of {self.vocab_size}")
                child = self._next[node].get(t)
                if child is None:
                    child = len(self._next)
                    self._next[node][t] = child
                    self._next.append({})
                    gain.append(float(boost))
                    end.append(False)
                    parent.append(node)
                else:
                    gain[child] = max(gain[child], float(boost))
                node = child
            end[node] = True
        n = len(self._next)
        self.is_end = np.array(end)
        self.gain = np.array(gain, dtype=np.float64)  # the boost of the token that leads to each node
        self.local = np.zeros(n, dtype=np.float64)  # pending bonus at each node (0 at a phrase's end)
        self.done = np.zeros(n, dtype=np.float64)  # full bonus of the phrases ending at each node
        self.fail = np.zeros(n, dtype=np.int64)
        path = np.zeros(n, dtype=np.float64)  # the boosts along the path from the root
        order = self._bfs()
        for node in order[1:]:
            p = parent[node]
            path[node] = path[p] + gain[node]
            self.local[node] = 0.0 if end[node] else self.local[p] + gain[node]
        # Failure links in breadth-first order: a node's fail is the deepest proper suffix of its path in the graph.
        for node in order:
            for t, child in self._next[node].items():
                f = self.fail[node]
                while node != self.ROOT and t not in self._next[f] and f != self.ROOT:
                    f = self.fail[f]
                self.fail[child] = self._next[f][t] if node != self.ROOT and t in self._next[f] else self.ROOT
                # The phrases ending at child: its own, and (through the fail chain) every one that is a suffix of it.
                self.done[child] = (path[child] if end[child] else 0.0) + self.done[self.fail[child]]
        self._rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._leaves: dict[int, np.ndarray] = {}
        self._floors: dict[int, np.ndarray] = {}

    def _bfs(self) -> list[int]:
        order, queue = [], deque([self.ROOT])
        while queue:
            node = queue.popleft()
            order.append(node)
            queue.extend(self._next[node].values())
        return order

    @property
    def num_nodes(self) -> int:
        return len(self._next)

    def _row(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """The automaton's transitions from `node` for every token: (next node (V,) int64, bonus (V,) float32).

        Built from the fail node's row with the node's own children put in (the classic DFA construction), and
        cached: a beam visits few nodes."""
        row = self._rows.get(node)
        if row is not None:
            return row
        if node == self.ROOT:
            goto = np.zeros(self.vocab_size, dtype=np.int64)
        else:
            goto = self._row(int(self.fail[node]))[0].copy()
        for t, child in self._next[node].items():
            goto[t] = child
        bonus = self.local[goto] - self.local[node] + self.done[goto]
        if self._glue is not None:
            bonus = bonus - self._glue * self.done[node]
        bonus = bonus.astype(np.float32)
        self._rows[node] = (goto, bonus)
        return self._rows[node]

    def step(self, node: int, token: int, log_prob: float | None = None) -> tuple[int, float]:
        """The node after emitting `token` from `node`, and the bonus that token gets (negative when a partial match
        fails: its pending bonus is taken back). With the token's `log_prob` where it is emitted below the acoustic
        floor: the root and the bonus of leaving the graph."""
        goto, bonus = self._row(node)
        if log_prob is not None and self.floor > 0 and log_prob < self._floor_row(node)[token]:
            return self.ROOT, float(self._leave(node)[token])
        return int(goto[token]), float(bonus[token])

    def bonuses(self, node: int, log_probs: np.ndarray | None = None) -> np.ndarray:
        """`(V,)` float32: the bonus each token would get from `node` (the search adds it before choosing); with the
        tokens' `(V,)` log-probabilities at this frame, those below the acoustic floor get the bonus of leaving the
        graph instead."""
        bonus = self._row(node)[1]
        if log_probs is None or self.floor <= 0:
            return bonus
        low = log_probs < self._floor_row(node)
        return np.where(low, self._leave(node), bonus) if low.any() else bonus

    def _floor_row(self, node: int) -> np.ndarray:
        """`(V,)` float32: the least log-probability at which each token from `node` keeps its bonus: -floor x the
        boost of the node it leads to, -inf for a token that leads to the root (it has no bonus to keep). Cached."""
        out = self._floors.get(node)
        if out is None:
            goto = self._row(node)[0]
            x = np.where(goto != self.ROOT, -self.floor * self.gain[goto], -np.inf)
            out = self._floors[node] = x.astype(np.float32)
        return out

    def _leave(self, node: int) -> np.ndarray:
        """`(V,)` float32: the bonus of each token that takes `node` back to the root: the pending bonus taken back
        and, for a token glued onto the word (whole words), the phrases that just ended there. Cached per node."""
        out = self._leaves.get(node)
        if out is None:
            x = np.full(self.vocab_size, -self.local[node], dtype=np.float64)
            if self._glue is not None:
                x -= self._glue * self.done[node]
            out = self._leaves[node] = x.astype(np.float32)
        return out

    def pending(self, node: int) -> float:
        """The bonus of the partial match at `node` that no phrase has confirmed yet; a finished hypothesis is
        ranked without it (server/transducer.py's `BeamState.best`)."""
        return float(self.local[node])

    def score(self, tokens: Sequence[int]) -> float:
        """The total bonus of a token sequence (what the steps from the root add up to), pending part included."""
        node, total = self.ROOT, 0.0
        for t in tokens:
            node, b = self.step(node, int(t))
            total += b
        return total


def word_starts(tokens: Sequence[str]) -> np.ndarray:
    """`(V,)` bool: which of a head's token pieces (tokens.txt's, id order) begin a word: "▁..." pieces, those
    beginning with an apostrophe ("'s" keeps "moreno's" a match) and special tokens ("<blk>", "<cc>", ...); for
    `ContextGraph(word_start=...)`."""
    return np.array([p.startswith(("\u2581", "'")) or (p.startswith("<") and p.endswith(">")) for p in tokens])


_CAPITALS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> `writes_capitals`


def writes_capitals(sp) -> bool:
    """Whether a head's tokenizer `sp` (a sentencepiece model or a `TokenTable`) writes words in capitals: its pieces,
    special ones ("<blk>", "<0xE4>") aside, have capital letters and no small ones, as the LibriSpeech-trained models
    of icefall and sherpa-onnx ("▁THE"). Looked at once per tokenizer."""
    capitals = _CAPITALS.get(sp)
    if capitals is None:
        pieces = (sp.id_to_piece(i) for i in range(sp.get_piece_size()))
        capitals = _CAPITALS[sp] = "".join(p for p in pieces if not (p.startswith("<") and p.endswith(">"))).isupper()
    return capitals


def hotword_text(sp, phrase: str) -> str:
    """A hotword as the head's tokenizer `sp` writes words: white space collapsed, in capitals for a tokenizer that
    writes them (`writes_capitals`), else lowercased (the caption form of plain words)."""
    text = " ".join(phrase.split())
    return text.upper() if writes_capitals(sp) else text.lower()


def phrase_tokens(sp, phrase: str) -> list[int]:
    """A hotword's token ids under a head's tokenizer `sp` (a sentencepiece model or a `TokenTable`): `hotword_text`,
    encoded.

    Raises:
        ValueError: the phrase is empty or has a piece the tokenizer does not know (it maps to <unk>, or no piece of
            a `TokenTable` covers it).
    """
    text = hotword_text(sp, phrase)
    if not text:
        raise ValueError("a hotword is empty")
    try:
        ids = [int(t) for t in sp.encode(text)]
    except ValueError as e:  # a TokenTable with no piece for some character
        raise ValueError(f"hotword {phrase[:40]!r} has characters the model cannot write ({e})") from None
    unk = sp.unk_id()
    if not ids or (unk >= 0 and unk in ids):
        raise ValueError(f"hotword {phrase[:40]!r} has characters the model cannot write")
    return ids
