"""A deeper encoder that starts out computing exactly what a trained one computes (function-preserving growth).

    python -m models.train.warmstart --bundle bundles/en-open --out exp/en-open/init.pt
    python -m models.train.grow --checkpoint exp/en-open/init.pt --layers 12 --out exp/en-open/grown-12.pt
    parley train ... --layers 12 --init exp/en-open/grown-12.pt

A model that has stopped improving on what its size can learn gets more layers without starting again from random
weights (which on 2 CPU cores would cost the sessions the smaller model took). Each Conformer layer is pre-norm and
residual (models/nn/encoder.py): x + ff1, + attention, + conv, + ff2, each branch ending in one linear map
(``ff*.net.3``, ``attn.out``, ``conv.pw2``). A new layer whose four output maps are zero adds nothing to x: it is the
identity, so the grown encoder gives the same output bit for bit (up to the float sums' order) in full context and
streaming alike; its caches are new state that starts at zero and stays unused until training moves the output maps.
The gradient of those output maps is not zero (their inputs are the branches' activations), so the new layers start
learning at the first step, and the rest of each new layer (a copy of the layer below it, as progressive stacking
does: Gong et al. 2019) gives those activations a trained starting point instead of noise.

The new layers go in between the old ones, spread evenly (8 -> 12: after old layers 1, 3, 5 and 7, counting from 0),
so every depth of the encoder gets some; the old layers keep their order and weights. A new layer never goes below
the first old layer: the subsampling's output is what that layer was trained on.

Input: a warm start (models/train/warmstart.py) or a training checkpoint. Output: a warm start for `parley train
--init` with `--layers N` and otherwise the same model flags; it keeps the input's lineage ("from_bundle" and
"bundle_training", or "train_config" and "state", which the model card lists) and adds "grown" (layers before and
after, where the new ones went). It has no optimizer state, so it serves `--init`, not `--resume`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

# The last linear map of each residual branch of a ConformerLayer: zero weights and bias make the branch add nothing.
BRANCH_OUTPUTS = ("ff1.net.3", "attn.out", "conv.pw2", "ff2.net.3")
_LAYER = re.compile(r"^encoder\.layers\.(\d+)\.(.+)$")


def insertion_points(old: int, new: int) -> list[int]:
    """The old layers (0-based) after which a new layer goes, spread evenly; one index per new layer, ascending
    (an index repeats when more than doubling). Raises ValueError unless 1 <= old < new."""
    if not 1 <= old < new:
        raise ValueError(f"growing needs more layers than the {old} there are (asked for {new})")
    added = new - old
    return [-(-(k + 1) * old // added) - 1 for k in range(added)]  # ceil((k + 1) * old / added) - 1


def grow_state(state: dict[str, torch.Tensor], layers: int) -> tuple[dict[str, torch.Tensor], list[int]]:
    """`state` (a model state dict) with its encoder grown to `layers` layers; also where the new ones went (old
    layer indices, as `insertion_points`). Raises ValueError for an encoder with language experts (CMM) or none."""
    by_layer: dict[int, dict[str, torch.Tensor]] = {}
    rest: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if k.startswith("encoder.experts."):
            raise ValueError("an encoder with language experts (CMM) cannot be grown: their layer indices are fixed")
        m = _LAYER.match(k)
        if m:
            by_layer.setdefault(int(m.group(1)), {})[m.group(2)] = v
        else:
            rest[k] = v
    old = len(by_layer)
    if old == 0 or sorted(by_layer) != list(range(old)):
        raise ValueError("no encoder layers (encoder.layers.0 ...) in this checkpoint")
    points = insertion_points(old, layers)
    grown: dict[str, torch.Tensor] = dict(rest)
    j = 0
    for i in range(old):
        for name, v in by_layer[i].items():
            grown[f"encoder.layers.{j}.{name}"] = v.clone()
        j += 1
        for _ in range(points.count(i)):
            for name, v in by_layer[i].items():
                zero = any(name.startswith(b + ".") for b in BRANCH_OUTPUTS)
                grown[f"encoder.layers.{j}.{name}"] = torch.zeros_like(v) if zero else v.clone()
            j += 1
    assert j == layers
    return grown, points


def grow_checkpoint(path: str | Path, layers: int) -> dict:
    """The warm start of `path`'s weights with `layers` encoder layers (see the module docstring)."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    state, points = grow_state(ck["model"], layers)
    old = layers - len(points)
    out: dict = {"model": state, "grown": {"from": str(path), "layers": [old, layers], "after": points}}
    for key in ("from_bundle", "bundle_training", "train_config", "state"):
        if key in ck:
            out[key] = ck[key]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="a warm start or a training checkpoint")
    p.add_argument("--layers", type=int, required=True, help="encoder layers of the grown model")
    p.add_argument("--out", type=Path, required=True, help="the warm start to write (for parley train --init)")
    a = p.parse_args(argv)
    if not Path(a.checkpoint).is_file():
        p.error(f"no checkpoint at {a.checkpoint}")
    try:
        ck = grow_checkpoint(a.checkpoint, a.layers)
    except ValueError as e:
        p.error(str(e))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ck, a.out)
    g = ck["grown"]
    print(f"{a.out}: {g['layers'][0]} -> {g['layers'][1]} encoder layers, new ones after old layers {g['after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
