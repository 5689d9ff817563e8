"""The streaming encoder families Parley runs, and their per-stream state: what a step takes besides the features.

Dimension letters: N streams, F fbank bins, L layers, K cached encoder frames, D encoder dim.

An encoder step takes `x (N, T, F)` and the streams' state tensors and returns `encoder_out (N, C, E)` and the next
value of every state tensor. The families differ only in those tensors: their count, shapes, and the axis that holds
the stream (sherpa-onnx's `StackStates`/`UnStackStates` concatenate and split along it). Which family an encoder is
comes from its `model_type` metadata, as in sherpa-onnx:

- `conformer`: Parley's own export (export/onnx_export.py). `cached_attn (L, K, N, D)`, `cached_conv (L, k-1, N, D)`,
  plus `processed_lens (N,)`, which the runtime feeds (fbank frames consumed) and the graph does not return.
- `zipformer2`: icefall's streaming Zipformer (`zipformer/export-onnx-streaming.py`). Per layer of every stack, six
  tensors: `cached_key (K_s, N, key_dim)`, `cached_nonlin_attn (1, N, K_s, 3*D_s/4)`, `cached_val1 (K_s, N, val_dim)`,
  `cached_val2` alike, `cached_conv1 (N, D_s, k_s/2)`, `cached_conv2` alike; then `embed_states (N, 128, 3, F')`
  (F' = ((F-1)/2-1)/2) and `processed_lens (N,)` int64, which the graph updates itself.
- `lstm`: icefall's `lstm_transducer_stateless2/export-onnx.py`: hidden states `state0 (L, N, d_model)` and cell states
  `state1 (L, N, rnn_hidden_size)`.

sherpa-onnx passes the state tensors by position (graph input i+1 pairs with graph output i+1), so names are not part
of the zipformer2 and lstm contracts; `bind_by_position` takes them from the graph.

    specs = zipformer2_states(meta, num_bins=80)   # metadata strings -> StateSpecs (one stream each)
    state = init_state(specs, 3)                   # zeros for 3 streams
    batch = stack_states([s1, s2]); s1, s2 = unstack_states(batch)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

FAMILIES = ("conformer", "zipformer2", "lstm")  # encoder metadata model_types this runtime runs
SHERPA_FAMILIES = ("zipformer2", "lstm")  # icefall's exports, imported with `parley import-sherpa`
ZIPFORMER2_EMBED_CHANNELS = 128  # embed_states (N, 128, 3, F'): sherpa-onnx's fixed ConvNeXt cache of icefall's
ZIPFORMER2_EMBED_LEFT_PAD = 3


@dataclass(frozen=True)
class StateSpec:
    """One state tensor of an encoder step, for one stream."""

    input: str  # graph input name
    output: str  # graph output carrying its next value
    shape: tuple[int, ...]  # for one stream: 1 on `batch_axis`
    batch_axis: int  # the axis that holds the streams
    dtype: str = "float32"


@dataclass
class EncoderState:
    """The encoder state of N streams: one array per `StateSpec`, streams on each spec's batch axis."""

    specs: tuple[StateSpec, ...]
    tensors: list[np.ndarray]
    processed: np.ndarray  # (N,) int64: fbank frames consumed before the next step (a conformer's processed_lens)
    # (N, Lang) float32: a configurable multilingual encoder's language selection per stream, fed as language_mask
    # with every step and never changed by it; None for other encoders.
    language_mask: np.ndarray | None = None

    @property
    def batch(self) -> int:
        return int(self.processed.shape[0])

    def tensor(self, name: str) -> np.ndarray:
        """The state tensor fed to graph input `name`."""
        return self.tensors[next(i for i, s in enumerate(self.specs) if s.input == name)]

    @property
    def cached_attn(self) -> np.ndarray:
        """A conformer's `(L, K, N, D)` attention cache."""
        return self.tensor("cached_attn")

    @property
    def cached_conv(self) -> np.ndarray:
        """A conformer's `(L, k-1, N, D)` convolution cache."""
        return self.tensor("cached_conv")


def init_state(specs: Sequence[StateSpec], n: int, language_mask: np.ndarray | None = None) -> EncoderState:
    """The zero state of `n` new streams; `language_mask` `(Lang,)` or `(n, Lang)`: a CMM encoder's selection."""
    tensors = []
    for s in specs:
        shape = list(s.shape)
        shape[s.batch_axis] = n
        tensors.append(np.zeros(shape, dtype=s.dtype))
    mask = None
    if language_mask is not None:
        mask = np.broadcast_to(np.asarray(language_mask, dtype=np.float32), (n, language_mask.shape[-1])).copy()
    return EncoderState(tuple(specs), tensors, np.zeros(n, dtype=np.int64), mask)


def stack_states(states: Sequence[EncoderState]) -> EncoderState:
    """Joins the states of several streams (each N >= 1) into one batch, in order."""
    specs = states[0].specs
    tensors = [np.concatenate([st.tensors[i] for st in states], axis=s.batch_axis) for i, s in enumerate(specs)]
    masks = [st.language_mask for st in states]
    assert all(m is None for m in masks) or all(m is not None for m in masks), "CMM and other states mixed"
    mask = None if masks[0] is None else np.concatenate(masks)  # type: ignore[arg-type]
    return EncoderState(specs, tensors, np.concatenate([st.processed for st in states]), mask)


def unstack_states(state: EncoderState) -> list[EncoderState]:
    """Splits a batch state into one state (N = 1) per stream."""
    out = []
    for n in range(state.batch):
        tensors = [np.take(t, [n], axis=s.batch_axis) for s, t in zip(state.specs, state.tensors, strict=True)]
        mask = None if state.language_mask is None else state.language_mask[n : n + 1]
        out.append(EncoderState(state.specs, tensors, state.processed[n : n + 1], mask))
    return out


def conformer_states(num_layers: int, left_context: int, encoder_dim: int, conv_kernel: int) -> tuple[StateSpec, ...]:
    """Parley's conformer: the attention and convolution caches (processed_lens is fed by the runtime)."""
    L, K, D = num_layers, left_context, encoder_dim
    return (
        StateSpec("cached_attn", "new_cached_attn", (L, K, 1, D), 2),
        StateSpec("cached_conv", "new_cached_conv", (L, conv_kernel - 1, 1, D), 2),
    )


def int_list(meta: Mapping[str, str], key: str) -> list[int]:
    """A comma-separated metadata list of integers, like sherpa-onnx's `SHERPA_ONNX_READ_META_DATA_VEC`.

    Raises:
        KeyError: the key is missing.
        ValueError: a value is not an integer.
    """
    try:
        return [int(v) for v in meta[key].split(",")]
    except ValueError:
        raise ValueError(f"metadata {key}={meta[key]!r} is not a comma-separated list of integers") from None


def zipformer2_states(meta: Mapping[str, str], num_bins: int) -> tuple[StateSpec, ...]:
    """icefall's streaming Zipformer2, from its metadata (the shapes sherpa-onnx's `GetEncoderInitStates` makes).

    Raises:
        KeyError: a metadata key is missing.
        ValueError: malformed metadata, or lists of different lengths.
    """
    keys = ("num_encoder_layers", "encoder_dims", "cnn_module_kernels", "left_context_len")
    keys += ("query_head_dims", "value_head_dims", "num_heads")
    lists = {k: int_list(meta, k) for k in keys}
    if len({len(v) for v in lists.values()}) != 1:
        raise ValueError(f"metadata lists of different lengths: { {k: len(v) for k, v in lists.items()} }")
    specs: list[StateSpec] = []
    layer = 0
    for stack in range(len(lists["encoder_dims"])):
        D, K = lists["encoder_dims"][stack], lists["left_context_len"][stack]
        heads, kernel = lists["num_heads"][stack], lists["cnn_module_kernels"][stack]
        key_dim, value_dim = lists["query_head_dims"][stack] * heads, lists["value_head_dims"][stack] * heads
        for _ in range(lists["num_encoder_layers"][stack]):
            specs += [
                StateSpec(f"cached_key_{layer}", f"new_cached_key_{layer}", (K, 1, key_dim), 1),
                StateSpec(f"cached_nonlin_attn_{layer}", f"new_cached_nonlin_attn_{layer}", (1, 1, K, 3 * D // 4), 1),
                StateSpec(f"cached_val1_{layer}", f"new_cached_val1_{layer}", (K, 1, value_dim), 1),
                StateSpec(f"cached_val2_{layer}", f"new_cached_val2_{layer}", (K, 1, value_dim), 1),
                StateSpec(f"cached_conv1_{layer}", f"new_cached_conv1_{layer}", (1, D, kernel // 2), 0),
                StateSpec(f"cached_conv2_{layer}", f"new_cached_conv2_{layer}", (1, D, kernel // 2), 0),
            ]
            layer += 1
    embed = (1, ZIPFORMER2_EMBED_CHANNELS, ZIPFORMER2_EMBED_LEFT_PAD, ((num_bins - 1) // 2 - 1) // 2)
    specs.append(StateSpec("embed_states", "new_embed_states", embed, 0))
    specs.append(StateSpec("processed_lens", "new_processed_lens", (1,), 0, "int64"))
    return tuple(specs)


def lstm_states(meta: Mapping[str, str]) -> tuple[StateSpec, ...]:
    """icefall's LSTM transducer: hidden states `(L, N, d_model)` and cell states `(L, N, rnn_hidden_size)`.

    Raises:
        KeyError: a metadata key is missing.
        ValueError: a value is not an integer.
    """
    L, d_model, hidden = (int(meta[k]) for k in ("num_encoder_layers", "d_model", "rnn_hidden_size"))
    return (StateSpec("state0", "new_state0", (L, 1, d_model), 1), StateSpec("state1", "new_state1", (L, 1, hidden), 1))


def bind_by_position(
    specs: Sequence[StateSpec], inputs: Sequence[str], outputs: Sequence[str]
) -> tuple[StateSpec, ...]:
    """The specs renamed after the graph's state inputs and outputs, paired by position as sherpa-onnx passes them.

    Args:
        specs: the family's state tensors, in order.
        inputs: the graph's input names after `x`.
        outputs: the graph's output names after `encoder_out`.

    Raises:
        ValueError: the graph has another number of state inputs or outputs.
    """
    if len(inputs) != len(specs) or len(outputs) != len(specs):
        raise ValueError(
            f"the metadata implies {len(specs)} state tensors, the graph has {len(inputs)} state inputs and "
            f"{len(outputs)} state outputs"
        )
    return tuple(replace(s, input=i, output=o) for s, i, o in zip(specs, inputs, outputs, strict=True))
