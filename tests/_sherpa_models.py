"""Tiny random transducers built to the ONNX contracts of icefall's sherpa-onnx exports, one per encoder family.

They are not zipformers or LSTMs, only what sherpa-onnx sees of one: the input and output names and order, the state
tensors' shapes and batch axes, and the metadata its C++ reads (online-zipformer2-transducer-model.cc,
online-lstm-transducer-model.cc). Each encoder reads every state tensor and writes every one from the chunk it saw, so
a chunk's output depends on all the chunks before it. Decoder and joiner are icefall's: an embedding that maps -1 to
zeros (sherpa-onnx starts with the context [-1, 0]), the joiner projections folded into encoder and decoder.

    folder = build_sherpa_model(tmp / "zipformer2", "zipformer2")  # encoder/decoder/joiner.onnx, tokens.txt

Dimension letters: N streams, T fbank frames per step, F fbank bins, C encoder frames per step, J joiner dim,
V vocabulary.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from export.onnx_export import add_metadata
from parley.features import compute_fbank
from server.sherpa_import import SHERPA_FEATURES
from tests.test_export import SR, synthetic_audio

F = 80  # fbank bins
DECODE_CHUNK_LEN = 16  # fbank frames a step advances: C = 4 encoder frames
T = DECODE_CHUNK_LEN + 13  # the window, as icefall's zipformer (its ConvNeXt and subsampling need 13 more frames)
C = DECODE_CHUNK_LEN // 4
J = 24  # joiner dim
CONTEXT_SIZE = 2
# tokens.txt: blank first, word pieces; no <unk> (sherpa-onnx reads it as blank).
PIECES = ["<blk>", "▁the", "▁a", "▁cat", "s", "▁sat", "▁on", "▁mat", "e", "▁dog", "ing", "▁", "x", "▁run", "y", "▁to"]
V = len(PIECES)

# zipformer2: two stacks of one layer each, as icefall writes the lists.
ZIPFORMER2_META = {
    "num_encoder_layers": "1,1",
    "encoder_dims": "16,24",
    "cnn_module_kernels": "7,5",
    "left_context_len": "8,4",
    "query_head_dims": "4,4",
    "value_head_dims": "2,2",
    "num_heads": "2,2",
}
LSTM_LAYERS, LSTM_D_MODEL, LSTM_HIDDEN = 2, 12, 20
LOG_MEL_SHIFT, LOG_MEL_SCALE = 5.0, 0.2  # log-mel values of speech-like audio to about [-1, 1]: tanh not saturated
BLANK_SHARE = 0.4  # of the frames of the calibration audio on which blank wins from the start context


def zipformer2_state_shapes(n: int) -> list[tuple[str, tuple[int, ...], int]]:
    """(name, shape, batch axis) of each state input, in icefall's order, for `n` streams."""
    lists = {k: [int(v) for v in s.split(",")] for k, s in ZIPFORMER2_META.items()}
    out: list[tuple[str, tuple[int, ...], int]] = []
    layer = 0
    for i, D in enumerate(lists["encoder_dims"]):
        K, H = lists["left_context_len"][i], lists["num_heads"][i]
        key, val, k2 = (
            lists["query_head_dims"][i] * H,
            lists["value_head_dims"][i] * H,
            lists["cnn_module_kernels"][i] // 2,
        )
        for _ in range(lists["num_encoder_layers"][i]):
            out += [
                (f"cached_key_{layer}", (K, n, key), 1),
                (f"cached_nonlin_attn_{layer}", (1, n, K, 3 * D // 4), 1),
                (f"cached_val1_{layer}", (K, n, val), 1),
                (f"cached_val2_{layer}", (K, n, val), 1),
                (f"cached_conv1_{layer}", (n, D, k2), 0),
                (f"cached_conv2_{layer}", (n, D, k2), 0),
            ]
            layer += 1
    out.append(("embed_states", (n, 128, 3, ((F - 1) // 2 - 1) // 2), 0))
    out.append(("processed_lens", (n,), 0))
    return out


def lstm_state_shapes(n: int) -> list[tuple[str, tuple[int, ...], int]]:
    return [("state0", (LSTM_LAYERS, n, LSTM_D_MODEL), 1), ("state1", (LSTM_LAYERS, n, LSTM_HIDDEN), 1)]


def _summary(state: torch.Tensor, batch_axis: int) -> torch.Tensor:
    """`(N,)`: a state tensor's mean over every axis but the streams'."""
    x = state.float().movedim(batch_axis, 0)
    return x.reshape(x.shape[0], -1).mean(-1)


class _Zipformer2Like(nn.Module):
    """x (N, T, F) and the zipformer2 states -> encoder_out (N, C, J) and every state's next value."""

    def __init__(self) -> None:
        super().__init__()
        self.axes = [axis for _, _, axis in zipformer2_state_shapes(1)]
        S = len(self.axes)
        self.frames = nn.Linear(4 * F, J)
        self.lookahead = nn.Linear(F, J)
        self.memory = nn.Linear(S, J)
        self.rates = nn.Parameter(torch.rand(S - 1) * 0.5 + 0.3)  # how much of the old value each state keeps
        self.writes = nn.Parameter(torch.randn(S - 1))
        scale = torch.ones(S)
        scale[-1] = 0.01  # processed_lens counts frames: scaled to the other summaries' range
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor, states: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        N = x.shape[0]
        x = (x + LOG_MEL_SHIFT) * LOG_MEL_SCALE
        h = self.frames(x[:, :DECODE_CHUNK_LEN].reshape(N, C, 4 * F))  # (N, C, J)
        h = h + self.lookahead(x[:, DECODE_CHUNK_LEN:].mean(1))[:, None]
        summary = torch.stack([_summary(s, a) for s, a in zip(states, self.axes, strict=True)], -1)  # (N, S)
        out = torch.tanh(h + self.memory(summary * self.scale)[:, None])  # (N, C, J)
        g = out.mean((1, 2))  # (N,) what this chunk writes into the caches
        new = []
        for i, (s, axis) in enumerate(zip(states[:-1], self.axes[:-1], strict=True)):
            shape = [1] * s.dim()
            shape[axis] = N
            new.append(s * self.rates[i] + self.writes[i] * g.reshape(shape))
        new.append(states[-1] + DECODE_CHUNK_LEN // 2)  # processed_lens: frames after the 2x subsampling
        return out, new


class _LstmLike(nn.Module):
    """x (N, T, F), h (L, N, d_model), c (L, N, hidden) -> encoder_out (N, C, J), next h and c: a recurrence over the
    C subsampled frames of the step, unrolled."""

    def __init__(self) -> None:
        super().__init__()
        self.frames = nn.Linear(4 * F, LSTM_D_MODEL)
        self.cell = nn.ModuleList([nn.Linear(2 * LSTM_D_MODEL, LSTM_HIDDEN) for _ in range(LSTM_LAYERS)])
        self.proj = nn.ModuleList([nn.Linear(LSTM_HIDDEN, LSTM_D_MODEL) for _ in range(LSTM_LAYERS)])
        self.out = nn.Linear(LSTM_D_MODEL, J)
        with torch.no_grad():  # larger weights than PyTorch's default: the output follows the input, as trained ones do
            for p in self.parameters():
                p *= 3

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        N = x.shape[0]
        x = (x + LOG_MEL_SHIFT) * LOG_MEL_SCALE
        u = self.frames(x[:, :DECODE_CHUNK_LEN].reshape(N, C, 4 * F))  # (N, C, d_model)
        hs, cs = list(h.unbind(0)), list(c.unbind(0))
        outs = []
        for t in range(C):
            inp = u[:, t]
            for layer in range(LSTM_LAYERS):
                cs[layer] = 0.5 * cs[layer] + 0.5 * torch.tanh(self.cell[layer](torch.cat([inp, hs[layer]], -1)))
                hs[layer] = torch.tanh(self.proj[layer](cs[layer]))
                inp = hs[layer]
            outs.append(self.out(inp))
        return torch.stack(outs, 1), torch.stack(hs), torch.stack(cs)


class _Decoder(nn.Module):
    """y (N, context_size) int64 -> decoder_out (N, J); icefall's: ids below 0 embed as zeros."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(V, 8)
        self.proj = nn.Linear(8 * CONTEXT_SIZE, J)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        e = self.embedding(y.clamp(min=0)) * (y >= 0).unsqueeze(-1)  # (N, context_size, 8)
        return self.proj(torch.relu(e.reshape(y.shape[0], -1)))


class _Joiner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.output = nn.Linear(J, V)

    def forward(self, encoder_out: torch.Tensor, decoder_out: torch.Tensor) -> torch.Tensor:
        return self.output(torch.tanh(encoder_out + decoder_out))


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], axes: dict) -> None:
    """TorchScript-based export, like icefall's and export/onnx_export.py's (its deprecation notice silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes, opset_version=17,
            dynamo=False,
        )  # fmt: skip


def _calibrate_blank(encoder: nn.Module, family: str, decoder: _Decoder, joiner: _Joiner, feats: torch.Tensor) -> None:
    """Raises the blank's bias until it wins on `BLANK_SHARE` of the frames of `feats` `(T_total, F)` (after the start
    context and a few random ones): a model that emits on some frames only, like a trained one."""
    shapes = zipformer2_state_shapes(1) if family == "zipformer2" else lstm_state_shapes(1)
    states = [torch.zeros(s, dtype=torch.int64 if n == "processed_lens" else torch.float32) for n, s, _ in shapes]
    outs = []
    for start in range(0, feats.shape[0] - T + 1, DECODE_CHUNK_LEN):
        x = feats[None, start : start + T]
        if family == "zipformer2":
            out, states = encoder(x, states)
        else:
            out, *states = encoder(x, *states)
        outs.append(out[0])
    enc = torch.cat(outs)  # (frames, J)
    contexts = torch.cat([torch.tensor([[-1, 0]]), torch.randint(0, V, (7, CONTEXT_SIZE))])  # (8, context_size)
    logits = joiner(enc[:, None], decoder(contexts)[None]).reshape(-1, V)  # (frames * 8, V)
    joiner.output.bias[0] += (logits[:, 1:].max(-1).values - logits[:, 0]).quantile(BLANK_SHARE)


def build_sherpa_model(folder: Path, family: str, seed: int = 0) -> Path:
    """Writes encoder.onnx, decoder.onnx, joiner.onnx and tokens.txt of a random `family` model into `folder`."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    x = torch.randn(1, T, F)
    if family == "zipformer2":
        encoder, shapes = _Zipformer2Like(), zipformer2_state_shapes(1)
        states = [torch.zeros(s, dtype=torch.int64 if n == "processed_lens" else torch.float32) for n, s, _ in shapes]
        args = (x, states)
        meta = {"model_type": "zipformer2", "version": "1", "model_author": "k2-fsa", "comment": "streaming zipformer2"}
        meta |= ZIPFORMER2_META
    elif family == "lstm":
        encoder, shapes = _LstmLike(), lstm_state_shapes(1)
        args = tuple([x] + [torch.zeros(s) for _, s, _ in shapes])
        meta = {"model_type": "lstm", "version": "1", "model_author": "k2-fsa"}
        meta |= {"num_encoder_layers": str(LSTM_LAYERS), "d_model": str(LSTM_D_MODEL)}
        meta |= {"rnn_hidden_size": str(LSTM_HIDDEN)}
    else:
        raise ValueError(family)
    meta |= {"T": str(T), "decode_chunk_len": str(DECODE_CHUNK_LEN)}
    names = [n for n, _, _ in shapes]
    axes = {"x": {0: "N"}, "encoder_out": {0: "N"}}
    axes |= {n: {a: "N"} for n, _, a in shapes} | {f"new_{n}": {a: "N"} for n, _, a in shapes}
    with torch.no_grad():
        _export(
            encoder.eval(),
            args,
            folder / "encoder.onnx",
            ["x", *names],
            ["encoder_out"] + [f"new_{n}" for n in names],
            axes,
        )
        add_metadata(folder / "encoder.onnx", meta)
        decoder, joiner = _Decoder(), _Joiner()
        audio = synthetic_audio(2.0, seed)
        _calibrate_blank(encoder, family, decoder, joiner, torch.from_numpy(compute_fbank(audio, SR, SHERPA_FEATURES)))
        y = torch.tensor([[-1, 0]] * 3)
        _export(
            decoder, (y,), folder / "decoder.onnx", ["y"], ["decoder_out"], {"y": {0: "N"}, "decoder_out": {0: "N"}}
        )
        add_metadata(folder / "decoder.onnx", {"context_size": str(CONTEXT_SIZE), "vocab_size": str(V)})
        e, d = torch.randn(3, J), torch.randn(3, J)
        joiner_axes = {"encoder_out": {0: "N"}, "decoder_out": {0: "N"}, "logit": {0: "N"}}
        _export(joiner, (e, d), folder / "joiner.onnx", ["encoder_out", "decoder_out"], ["logit"], joiner_axes)
        add_metadata(folder / "joiner.onnx", {"joiner_dim": str(J)})
    (folder / "tokens.txt").write_text("".join(f"{p} {i}\n" for i, p in enumerate(PIECES)), encoding="utf-8")
    return folder
