"""Token n-gram language models for shallow fusion: the file format and the runtime's scoring (numpy only).

Dimension letters: V vocabulary (the head's tokens), H hypotheses, M contexts of one order.

    lm = NgramLM.load("bundles/en-small/lm-travel.npz")
    lm.log_probs((0, 0, 17, 42))      # (V,) float32: log P(v | the history's last order-1 tokens), sums to 1 in P
    lm.log_probs_batch([h1, h2])      # (H, V)

The LM predicts the ids of a transducer head's tokens. The head's blank id, which the transducer never emits as a
token, stands for the sentence boundary: a history starts with order-1 blanks (<s>, as the prediction network's
context starts), and the blank's column is P(</s>). `models/train/lm_ngram.py` trains it (`parley lm train`) with
interpolated Kneser-Ney smoothing; the file stores, per order k >= 2 and per context seen in training, the discounted
probabilities of the tokens seen after it and the weight left for the order below:

    P_k(v | h) = alpha_k(v | h) + gamma_k(h) * P_{k-1}(v | h[1:])     (h seen as a context of order k)
    P_k(v | h) = P_{k-1}(v | h[1:])                                      (h not seen)
    P_1(v) = alpha_1(v) + gamma_1 / V

so every distribution sums to 1 over the V ids. The file is one .npz: `meta` (JSON: order, vocab_size, boundary id,
tokenizer sha256, smoothing, what it was trained on), `unigram` (V,), and for each order k >= 2 `ctx{k}` (M, k-1)
int32, `off{k}` (M+1,) int64 CSR offsets into `tok{k}` int32 and `alpha{k}` float32, and `gamma{k}` (M,) float32.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LM_FORMAT = 1  # the .npz layout this module reads and writes
MAX_FUSION_SCALE = 5.0  # a stream's or a bundle's lm_scale and ilm_scale are in [0, MAX_FUSION_SCALE]
_CACHE_LIMIT = 1 << 16  # histories whose distributions are kept; the cache starts over when full


@dataclass
class NgramOrder:
    """One order k >= 2: its contexts and, per context, the discounted probabilities of what followed it."""

    contexts: np.ndarray  # (M, k-1) int32
    offsets: np.ndarray  # (M+1,) int64: context i's tokens are tokens[offsets[i]:offsets[i+1]]
    tokens: np.ndarray  # (nnz,) int32
    alpha: np.ndarray  # (nnz,) float32
    gamma: np.ndarray  # (M,) float32: the weight of the order below
    index: dict[tuple[int, ...], int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.index:
            self.index = {tuple(int(t) for t in c): i for i, c in enumerate(self.contexts)}


class NgramLM:
    """A token n-gram LM (see the module docstring).

    Args:
        unigram: `(V,)` float32 probabilities of the order 1.
        orders: the orders 2..N, in order.
        boundary_id: the id that stands for <s> in histories and </s> as a prediction (the head's blank).
        meta: what `meta` holds in the file (order, vocab_size, ... are filled in).
    """

    def __init__(self, unigram: np.ndarray, orders: Sequence[NgramOrder], boundary_id: int, meta: dict | None = None):
        self.unigram = np.asarray(unigram, dtype=np.float32)
        self.orders = list(orders)
        self.boundary_id = int(boundary_id)
        self.meta = dict(meta or {})
        self.meta.update(format=LM_FORMAT, order=self.order, vocab_size=self.vocab_size, boundary_id=self.boundary_id)
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    @property
    def order(self) -> int:
        return len(self.orders) + 1

    @property
    def vocab_size(self) -> int:
        return int(self.unigram.shape[0])

    def history(self, tokens: Sequence[int]) -> tuple[int, ...]:
        """The last order-1 tokens of a hypothesis, padded on the left with the boundary (<s>). (Beam search asks
        for every hypothesis every frame: no per-token conversion; numpy integers hash and compare as ints do.)"""
        n = len(self.orders)
        if n == 0:
            return ()
        tail = tuple(tokens[-n:])
        return tail if len(tail) == n else (self.boundary_id,) * (n - len(tail)) + tail

    def log_probs(self, history: Sequence[int]) -> np.ndarray:
        """`(V,)` float32 natural-log probabilities of the next token after `history` (its last order-1 tokens
        count; shorter ones are padded with <s>). Cached: the array must not be changed."""
        key = self.history(history)
        out = self._cache.get(key)
        if out is None:
            p = self.unigram.astype(np.float64)
            for k, o in enumerate(self.orders, start=2):
                i = o.index.get(key[len(key) - (k - 1) :])
                if i is None:
                    continue
                a, b = o.offsets[i], o.offsets[i + 1]
                p *= o.gamma[i]
                p[o.tokens[a:b]] += o.alpha[a:b]
            out = np.log(np.maximum(p, 1e-30)).astype(np.float32)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = out
        return out

    def log_probs_batch(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """`(H, V)` float32: `log_probs` of each history."""
        if not histories:
            return np.zeros((0, self.vocab_size), dtype=np.float32)
        return np.stack([self.log_probs(h) for h in histories])

    def sentence_log_prob(self, tokens: Sequence[int], end: bool = True) -> float:
        """The log probability of a token sequence from <s> (and of </s> after it when `end`)."""
        total, seq = 0.0, list(tokens)
        for i, t in enumerate([*seq, self.boundary_id] if end else seq):
            total += float(self.log_probs(seq[:i])[t])
        return total

    # ---- The file ----

    def save(self, path: str | os.PathLike) -> None:
        """Writes the .npz (see the module docstring)."""
        arrays: dict[str, np.ndarray] = {
            "meta": np.array(json.dumps(self.meta, sort_keys=True)),
            "unigram": self.unigram,
        }
        for k, o in enumerate(self.orders, start=2):
            arrays.update(
                {f"ctx{k}": o.contexts, f"off{k}": o.offsets, f"tok{k}": o.tokens}
                | {f"alpha{k}": o.alpha, f"gamma{k}": o.gamma}
            )
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> NgramLM:
        """Reads a .npz `save` wrote.

        Raises:
            ValueError: not such a file, or arrays that disagree with each other (the message says which).
        """
        name = Path(path).name
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:  # a corrupt or cut-off .npz
            raise ValueError(f"{name}: not an n-gram LM file ({str(e)[:200] or type(e).__name__})") from None
        try:
            meta = json.loads(str(arrays["meta"]))
            order, V, boundary = int(meta["order"]), int(meta["vocab_size"]), int(meta["boundary_id"])
        except (KeyError, ValueError, TypeError) as e:
            raise ValueError(f"{name}: no valid meta ({e})") from None
        if meta.get("format") != LM_FORMAT:
            raise ValueError(f"{name}: format {meta.get('format')!r}, this runtime reads {LM_FORMAT}")
        unigram = arrays.get("unigram")
        if unigram is None or unigram.shape != (V,) or not 0 <= boundary < V:
            raise ValueError(f"{name}: unigram or boundary_id disagrees with vocab_size {V}")
        orders = []
        for k in range(2, order + 1):
            try:
                o = NgramOrder(*(arrays[f"{x}{k}"] for x in ("ctx", "off", "tok", "alpha", "gamma")))
            except KeyError as e:
                raise ValueError(f"{name}: order {k} lacks {e}") from None
            M = o.contexts.shape[0]
            ok = (
                o.contexts.shape == (M, k - 1)
                and o.offsets.shape == (M + 1,)
                and o.gamma.shape == (M,)
                and o.tokens.shape == o.alpha.shape == (int(o.offsets[-1]) if M else 0,)
                and (o.tokens.size == 0 or (o.tokens.min() >= 0 and o.tokens.max() < V))
            )
            if not ok:
                raise ValueError(f"{name}: the arrays of order {k} disagree in shape or hold ids outside 0..{V - 1}")
            orders.append(o)
        return cls(unigram, orders, boundary, meta)
