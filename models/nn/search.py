"""Transducer decoding for evaluation in PyTorch: greedy search and modified beam search.

Dimension letters: B batch, T encoder frames, D encoder dim, J joiner dim, V vocabulary.
The server has its own numpy/onnxruntime versions of the same algorithms (server/), checked against these.
A model trained on the modified topology (`ModelConfig.rnnt_type == "modified"`) emits at most one token per frame:
greedy search's default limit is the model's `cfg.max_symbols_per_frame` (1 for it, 4 for a standard model), and
modified beam search is then the exact search of the topology it was trained on.
`head` names the output language of a multi-head model (None: a single-head model's one head).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.nn.transducer import Transducer
from parley.contract import BEAM, BLANK_ID


@dataclass
class Hypothesis:
    tokens: list[int]  # emitted tokens (no blanks)
    frames: list[int]  # encoder frame at which each token was emitted
    log_prob: float = 0.0


def penalize_blank(logits: torch.Tensor, blank_penalty: float) -> torch.Tensor:
    """Logits `(..., V)` with `blank_penalty` subtracted from the blank's (a new tensor when the penalty is not 0)."""
    if blank_penalty == 0.0:
        return logits
    logits = logits.clone()
    logits[..., BLANK_ID] -= blank_penalty
    return logits


@torch.no_grad()
def greedy_search(
    model: Transducer,
    enc: torch.Tensor,
    enc_lens: torch.Tensor,
    max_symbols_per_frame: int | None = None,
    head: str | None = None,
    blank_penalty: float = 0.0,
) -> list[Hypothesis]:
    """Batched greedy search. enc `(B, T, D)` (unprojected encoder output), enc_lens `(B,)`.

    `max_symbols_per_frame` (None: the model's own, 1 for the modified topology) bounds the tokens of one frame.

    `blank_penalty` is subtracted from the blank logit before each choice (as sherpa-onnx's `blank_penalty`): a model
    that deletes words (stops emitting mid-utterance) trades deletions for insertions with it; tune it on dev data.
    """
    B, T, _ = enc.shape
    ctx = model.cfg.context_size
    if max_symbols_per_frame is None:
        max_symbols_per_frame = model.cfg.max_symbols_per_frame
    decoder, joiner, _ = model.head(head)
    enc_p = joiner.encoder_proj(enc)  # (B, T, J)
    hyps = [Hypothesis([], []) for _ in range(B)]
    context = torch.full((B, ctx), BLANK_ID, dtype=torch.long, device=enc.device)
    dec = joiner.decoder_proj(decoder(context))  # (B, J)
    for t in range(T):
        active = enc_lens > t
        for _ in range(max_symbols_per_frame):
            logits = penalize_blank(joiner(enc_p[:, t], dec), blank_penalty)  # (B, V)
            tok = logits.argmax(-1)
            emit = (tok != BLANK_ID) & active
            if not bool(emit.any()):
                break
            for b in torch.nonzero(emit).flatten().tolist():
                hyps[b].tokens.append(int(tok[b]))
                hyps[b].frames.append(t)
                context[b] = torch.cat([context[b, 1:], tok[b : b + 1]])
            dec = torch.where(emit[:, None], joiner.decoder_proj(decoder(context)), dec)
    return hyps


@torch.no_grad()
def modified_beam_search(
    model: Transducer,
    enc: torch.Tensor,
    enc_lens: torch.Tensor,
    beam: int = BEAM,
    head: str | None = None,
    blank_penalty: float = 0.0,
) -> list[Hypothesis]:
    """Modified beam search (at most one token per frame per hypothesis), one utterance at a time.

    Hypotheses with the same token sequence are merged (their probabilities added). `blank_penalty` is subtracted
    from the blank logit before the log-softmax, as in `greedy_search`.
    """
    results = []
    ctx = model.cfg.context_size
    decoder, joiner, _ = model.head(head)
    for b in range(enc.shape[0]):
        enc_p = joiner.encoder_proj(enc[b, : int(enc_lens[b])])  # (T, J)
        beams: dict[tuple[int, ...], Hypothesis] = {(): Hypothesis([], [], 0.0)}
        for t in range(enc_p.shape[0]):
            hyps = list(beams.values())
            contexts = torch.tensor([([BLANK_ID] * ctx + h.tokens)[-ctx:] for h in hyps], device=enc.device)
            dec = joiner.decoder_proj(decoder(contexts))  # (N, J)
            lp = penalize_blank(joiner(enc_p[t][None], dec), blank_penalty).log_softmax(-1)  # (N, V)
            scores = lp + torch.tensor([h.log_prob for h in hyps], device=enc.device)[:, None]
            top = scores.flatten().topk(min(beam, scores.numel()))
            new: dict[tuple[int, ...], Hypothesis] = {}
            V = lp.shape[1]
            for s, i in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                h, tok = hyps[i // V], i % V
                if tok == BLANK_ID:
                    cand = Hypothesis(h.tokens, h.frames, s)
                else:
                    cand = Hypothesis([*h.tokens, tok], [*h.frames, t], s)
                key = tuple(cand.tokens)
                if key in new:
                    old = new[key]
                    new[key] = Hypothesis(
                        old.tokens,
                        old.frames,
                        float(torch.logaddexp(torch.tensor(old.log_prob), torch.tensor(cand.log_prob))),
                    )
                else:
                    new[key] = cand
            beams = new
        results.append(max(beams.values(), key=lambda h: h.log_prob))
    return results
