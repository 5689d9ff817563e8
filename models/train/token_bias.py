"""One token's logit shifted in a checkpoint's joiner: a decoding preference baked into the weights.

    python -m models.train.token_bias --checkpoint exp/tsot/last.pt --token "<cc>" --delta -0.5 \
        --out exp/tsot/cc-0.5.pt

The joiner's logits are `output(tanh(enc + dec))` (models/nn/transducer.py), so adding `delta` to the output
layer's bias of one token adds it to that token's logit at every frame and every context: what a decoder-side
bias does, but carried by the weights, so every exported bundle and every runtime that decodes it (Parley's greedy
and beam searches, sherpa-onnx's) makes the same choice. For a t-SOT model the token is the channel change `<cc>`:
a negative delta makes the model switch channels less often, which `parley eval-tsot --cc-bias` measures on dev
mixtures before a value is baked in (docs/tsot.md). The result keeps everything else of the checkpoint (config,
tokenizer, training state) and records the shift under "token_bias", which the export and its card can list.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from models.nn.checkpoint import load_model, write_checkpoint
from models.nn.transducer import Transducer
from parley.contract import BLANK_ID, CHANNEL_CHANGE, CHANNEL_CHANGE_ID


def shift_token_logit(model: Transducer, token_id: int, delta: float, head: str | None = None) -> None:
    """Adds `delta` to token `token_id`'s logit in `head`'s joiner (None: a single-head model's), in place.

    Raises:
        ValueError: the blank (its preference is `blank_penalty`'s, which every runtime has) or an id outside
            the head's vocabulary.
    """
    _, joiner, _ = model.head(head)
    vocab = joiner.output.out_features
    if token_id == BLANK_ID:
        raise ValueError("the blank's logit is shifted at decoding time: use blank_penalty")
    if not 0 <= token_id < vocab:
        raise ValueError(f"token id {token_id} outside the joiner's vocabulary of {vocab}")
    with torch.no_grad():
        joiner.output.bias[token_id] += delta


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m models.train.token_bias",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, type=Path, help="a checkpoint written by parley train")
    p.add_argument("--out", required=True, type=Path, help="the checkpoint to write")
    p.add_argument("--delta", required=True, type=float, help="added to the token's logit (negative: emitted less)")
    p.add_argument(
        "--token-id", type=int, default=CHANNEL_CHANGE_ID, help=f"the token (default: {CHANNEL_CHANGE}'s id)"
    )
    p.add_argument("--head", default=None, help="the output language of a multi-head model")
    a = p.parse_args(argv)
    if a.out.resolve() == a.checkpoint.resolve():
        p.error("--out must be another file than --checkpoint")
    model, ck = load_model(a.checkpoint)
    try:
        shift_token_logit(model, a.token_id, a.delta, a.head)
    except ValueError as e:
        p.error(str(e))
    ck["model"] = model.state_dict()
    ck["optimizer"] = {}  # the weights moved: the optimizer's moments no longer describe them (warm-start, not resume)
    ck["token_bias"] = [*ck.get("token_bias", []), {"token_id": a.token_id, "delta": a.delta, "head": a.head}]
    write_checkpoint(a.out, ck)
    print(f"{a.out}: token {a.token_id}'s logit {a.delta:+g} (from {a.checkpoint})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
