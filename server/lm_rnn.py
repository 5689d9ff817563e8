"""Token LSTM language models for shallow fusion, on onnxruntime: the same ONNX file sherpa-onnx's RNN-LM reads.

Dimension letters: N histories in one call, L layers, H hidden size, V vocabulary (the head's tokens).

    lm = RnnLM.load("bundles/en-open/lm-travel.onnx")
    lm.log_probs_batch([[17, 42], [17]])   # (2, V) float32: log P(next token | <s> 17 42), log P(. | <s> 17)

The interface is the n-gram LM's (server/lm.py), so the beam search fuses either. The file (models/train/lm_lstm.py)
takes `x (N, 1)` int64 and the state `h`, `c` `(L, N, H)` and returns `log_probs (N, V)` and the next state; its
metadata gives `num_layers`, `hidden_size`, `sos_id` (sherpa-onnx's names) and `vocab_size`, `boundary_id`.
The LM state of every history seen is cached by its tokens, so a hypothesis that grew by one token since the last
frame costs one row of one batched onnxruntime call: all the histories of a step (every stream's hypotheses) that
need a state go through together, one call per missing token position.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

_CACHE_LIMIT = 1 << 15  # histories whose states are kept; the cache starts over (from <s>) when full


class RnnLM:
    def __init__(self, session: ort.InferenceSession, meta: dict[str, str]) -> None:
        self.session = session
        self.meta = dict(meta)
        self.num_layers = int(meta["num_layers"])
        self.hidden_size = int(meta["hidden_size"])
        self.boundary_id = int(meta.get("boundary_id", meta["sos_id"]))
        self.vocab_size = int(meta["vocab_size"])
        self.order = 0  # unbounded history
        self._cache: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()  # the server's parallel steps share the cache
        zero = np.zeros((self.num_layers, 1, self.hidden_size), np.float32)
        self._root = self._step(np.array([self.boundary_id]), zero, zero)[0]
        self._cache[()] = self._root

    @classmethod
    def load(cls, path: str | os.PathLike, threads: int = 1) -> RnnLM:
        """Opens an LM file and runs its first step (the state after <s>).

        Raises:
            ValueError: a file onnxruntime cannot load, or that is not such an LM; the message starts with the file.
        """
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for corrupt or unsupported files
            raise ValueError(f"{os.fspath(path)}: onnxruntime cannot load it: {_first_line(e)}") from e
        meta = session.get_modelmeta().custom_metadata_map
        missing = [k for k in ("num_layers", "hidden_size", "sos_id", "vocab_size") if k not in meta]
        if missing:
            raise ValueError(f"{os.fspath(path)}: not an RNN LM (metadata lacks {', '.join(missing)})")
        try:
            return cls(session, meta)
        except Exception as e:  # metadata that is not numbers, or a graph that does not take x, h, c
            raise ValueError(f"{os.fspath(path)}: not a usable RNN LM ({_first_line(e)})") from e

    def _step(self, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """`x (N,)`, `h, c (L, N, H)` -> per row: (log_probs (V,), h (L, H), c (L, H))."""
        logp, h2, c2 = self.session.run(None, {"x": x.astype(np.int64)[:, None], "h": h, "c": c})
        return [(logp[i], h2[:, i], c2[:, i]) for i in range(len(x))]

    def history(self, tokens: Sequence[int]) -> tuple[int, ...]:
        return tuple(int(t) for t in tokens)

    def log_probs(self, history: Sequence[int]) -> np.ndarray:
        """`(V,)` float32 natural-log probabilities of the next token after <s> and `history`."""
        return self.log_probs_batch([history])[0]

    def log_probs_batch(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """`(N, V)` float32: `log_probs` of each history, the missing states computed in batched steps."""
        if not histories:
            return np.zeros((0, self.vocab_size), dtype=np.float32)
        keys = [self.history(h) for h in histories]
        with self._lock:
            return self._log_probs_locked(keys)

    def _log_probs_locked(self, keys: Sequence[tuple[int, ...]]) -> np.ndarray:
        if len(self._cache) + sum(len(k) for k in keys) > _CACHE_LIMIT:
            self._cache = {(): self._root}
        known = []
        for k in keys:
            n = len(k)
            while k[:n] not in self._cache:
                n -= 1
            known.append(n)
        while True:
            todo = sorted({k[: n + 1] for k, n in zip(keys, known, strict=True) if n < len(k)})
            if not todo:
                break
            prev = [self._cache[t[:-1]] for t in todo]
            h = np.stack([p[1] for p in prev], axis=1)  # (L, N, H)
            c = np.stack([p[2] for p in prev], axis=1)
            for t, row in zip(todo, self._step(np.array([t[-1] for t in todo]), h, c), strict=True):
                self._cache[t] = row
            known = [n + 1 if n < len(k) else n for k, n in zip(keys, known, strict=True)]
        return np.stack([self._cache[k][0] for k in keys]).astype(np.float32)

    def sentence_log_prob(self, tokens: Sequence[int], end: bool = True) -> float:
        """The log probability of a token sequence from <s> (and of </s> after it when `end`)."""
        seq = [int(t) for t in tokens]
        total = 0.0
        for i, t in enumerate([*seq, self.boundary_id] if end else seq):
            total += float(self.log_probs(seq[:i])[t])
        return total


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:300]
