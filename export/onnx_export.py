"""A trained Transducer to three ONNX files in sherpa-onnx's streaming conformer transducer layout.

Dimension letters: N streams (batch), C chunk (encoder frames), K history (encoder frames), L layers, D encoder
dim, J joiner dim, V vocabulary, F fbank bins.

    files = export_onnx(model, StreamingSettings(chunk_ms=320, history_ms=1280), out_dir, extra_metadata)

- ``encoder.onnx``: one chunk of `StreamingConformer.step` followed by the joiner's `encoder_proj`.
  ``x (N, T, F)``, ``cached_attn (L, K, N, D)``, ``cached_conv (L, k-1, N, D)``, ``processed_lens (N,)`` int64 ->
  ``encoder_out (N, C, J)``, ``new_cached_attn``, ``new_cached_conv``. ``T = 4C + 3``: the chunk plus the
  subsampling's lookahead. ``processed_lens`` counts the fbank frames consumed before this chunk (a multiple of
  ``decode_chunk_len = 4C``), which is what sherpa-onnx passes (icefall's docstring says encoder frames, but
  sherpa-onnx's `DecodeStreams` hands over its fbank frame counter); the graph divides it by 4.
- ``decoder.onnx``: ``y (N, context_size)`` int64 -> ``decoder_out (N, J)`` (prediction network + `decoder_proj`).
  Ids below 0 count as blank: sherpa-onnx starts every stream with the context ``[-1, ..., -1, 0]``, Parley's
  training with ``[0, ..., 0]``.
- ``joiner.onnx``: ``encoder_out (N, J)``, ``decoder_out (N, J)`` -> ``logit (N, V)`` = output(tanh(enc + dec)).

Every setting the runtime needs is written into the files' metadata (`encoder_metadata`, `decoder_metadata`,
`joiner_metadata`), a head's decoding settings (`max_symbols_per_frame`, `blank_penalty`) into its joiner's;
server/bundle.py reads them from there and checks the three files against each other.

A multi-head (SM²) model has one encoder and a decoder and joiner per output language, each head with its own
`encoder_proj`. Its files (`export_multihead_onnx`) differ in one place: the encoder outputs the *unprojected*
``encoder_out (N, C, D)`` and every head's joiner projects it itself, ``encoder_out (N, D)``, ``decoder_out (N, J)``
-> ``logit (N, V)`` = output(tanh(encoder_proj(enc) + dec)). sherpa-onnx loads each (encoder, decoder-<lang>,
joiner-<lang>) triple as an ordinary transducer: it hands the joiner one frame of whatever the encoder output and
never looks inside. ``lid.onnx`` maps the same ``encoder_out (N, C, D)`` to per-frame language logits
``lid_logits (N, C, L)`` (models/nn/lid.py); the runtime keeps their running mean.

A configurable multilingual (CMM) encoder (models/nn/cmm.py) takes one more input, ``language_mask (N, Lang)``
float32 (1 for each language the stream's speaker uses), and its metadata names the languages in order,
``cmm_languages`` = "en,de,...". sherpa-onnx cannot feed that input, so `CMM_DEFAULT_ENCODER` (``encoder-all.onnx``)
is the same encoder with every language selected built in and no ``language_mask``: the default selection, and an
ordinary streaming encoder for sherpa-onnx (its metadata says which languages it selects, ``cmm_selected``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from export.quantize import per_row_file
from models.nn.encoder import PAD_LENGTH, StreamingConformer
from models.nn.lid import StreamingLID
from models.nn.transducer import Decoder, Joiner, ModelConfig, Transducer
from parley.contract import BLANK_ID, ENCODER_FRAME_MS, SUBSAMPLING
from parley.features import FbankConfig

OPSET = 17  # LayerNormalization is a single op from opset 17
METADATA_VERSION = "1"  # Parley's metadata layout; bump when a key changes meaning
INT8_SUFFIX = ".int8.onnx"
CMM_DEFAULT_ENCODER = "encoder-all.onnx"  # a CMM encoder with every language selected, without language_mask


@dataclass(frozen=True)
class StreamingSettings:
    """The chunk and history one exported encoder runs with.

    Raises:
        ValueError: `chunk_ms` not a positive multiple of 40 ms, or `history_ms` not a positive multiple of it.
    """

    chunk_ms: int
    history_ms: int

    def __post_init__(self) -> None:
        if self.chunk_ms <= 0 or self.chunk_ms % ENCODER_FRAME_MS:
            raise ValueError(f"chunk_ms must be a positive multiple of {ENCODER_FRAME_MS} ms, got {self.chunk_ms}")
        if self.history_ms <= 0 or self.history_ms % self.chunk_ms:
            raise ValueError(
                f"history_ms must be a positive multiple of chunk_ms {self.chunk_ms}, got {self.history_ms}: the "
                "model was trained with whole chunks of history"
            )

    @property
    def chunk(self) -> int:
        """C, encoder frames per chunk."""
        return self.chunk_ms // ENCODER_FRAME_MS

    @property
    def left_chunks(self) -> int:
        return self.history_ms // self.chunk_ms

    @property
    def left_context(self) -> int:
        """K, cached encoder frames per layer."""
        return self.chunk * self.left_chunks

    @property
    def decode_chunk_len(self) -> int:
        """Fbank frames one chunk advances by (sherpa-onnx's chunk shift)."""
        return SUBSAMPLING * self.chunk

    @property
    def window(self) -> int:
        """T, fbank frames one chunk reads: the shift plus `PAD_LENGTH` frames of lookahead."""
        return self.decode_chunk_len + PAD_LENGTH


class OnnxEncoder(nn.Module):
    """`StreamingConformer.step` + `encoder_proj` (identity for a multi-head model), with sherpa-onnx's inputs and
    outputs."""

    def __init__(self, encoder: StreamingConformer, encoder_proj: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.encoder_proj = encoder_proj

    def forward(
        self,
        x: torch.Tensor,
        cached_attn: torch.Tensor,
        cached_conv: torch.Tensor,
        processed_lens: torch.Tensor,
        language_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x `(N, T, F)`, caches `(L, K, N, D)` and `(L, k-1, N, D)`, processed_lens `(N,)` fbank frames; a CMM
        encoder's language_mask `(N, Lang)` (None: every language, built into the graph).

        Returns encoder_out `(N, C, J)` (`(N, C, D)` unprojected) and the new caches.
        """
        state = (cached_attn, cached_conv, torch.div(processed_lens, SUBSAMPLING, rounding_mode="floor"))
        h, (new_attn, new_conv, _) = self.encoder.step(x, state, language_mask)
        return self.encoder_proj(h), new_attn, new_conv


class OnnxDecoder(nn.Module):
    """Prediction network + `decoder_proj`: `(N, context_size)` -> `(N, J)`."""

    def __init__(self, decoder: Decoder, decoder_proj: nn.Linear) -> None:
        super().__init__()
        self.decoder = decoder
        self.decoder_proj = decoder_proj

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.decoder_proj(self.decoder(y.clamp(min=BLANK_ID)))


class OnnxJoiner(nn.Module):
    """output(tanh(enc + dec)) on projected inputs: `(N, J)`, `(N, J)` -> `(N, V)`."""

    def __init__(self, output: nn.Linear) -> None:
        super().__init__()
        self.output = output

    def forward(self, encoder_out: torch.Tensor, decoder_out: torch.Tensor) -> torch.Tensor:
        return self.output(torch.tanh(encoder_out + decoder_out))


class OnnxProjectingJoiner(nn.Module):
    """A multi-head model's joiner: output(tanh(encoder_proj(enc) + dec)): `(N, D)`, `(N, J)` -> `(N, V)`."""

    def __init__(self, joiner: Joiner) -> None:
        super().__init__()
        self.joiner = joiner

    def forward(self, encoder_out: torch.Tensor, decoder_out: torch.Tensor) -> torch.Tensor:
        return self.joiner.output(torch.tanh(self.joiner.encoder_proj(encoder_out) + decoder_out))


class OnnxLid(nn.Module):
    """Per-frame language logits of the unprojected encoder output: `(N, C, D)` -> `(N, C, L)`."""

    def __init__(self, lid: StreamingLID) -> None:
        super().__init__()
        self.lid = lid

    def forward(self, encoder_out: torch.Tensor) -> torch.Tensor:
        return self.lid.frame_logits(encoder_out)


def _metadata_values(meta: dict[str, object]) -> dict[str, str]:
    out = {}
    for k, v in meta.items():
        out[k] = ("1" if v else "0") if isinstance(v, bool) else str(v)
    return out


def mel_range(config: FbankConfig) -> dict[str, float]:
    """The mel filterbank's `low_freq` and `high_freq` (Hz; 0 = Nyquist) that `config` implies.

    They are not Parley settings but kaldi-native-fbank defaults, written out because sherpa-onnx overrides them
    (its default high_freq is -400, i.e. Nyquist - 400 Hz): a user of another runtime must pass these values.
    """
    low, high = config.mel_range()
    return {"low_freq": low, "high_freq": high}


def features_metadata(config: FbankConfig) -> dict[str, str]:
    """The frontend settings as metadata: every `FbankConfig` field plus its mel range."""
    return _metadata_values({**config.to_dict(), **mel_range(config)})


def encoder_metadata(model: Transducer, settings: StreamingSettings, features: FbankConfig) -> dict[str, str]:
    """sherpa-onnx's conformer keys (model_type ... T), then Parley's."""
    cfg = model.cfg.encoder
    return _metadata_values(
        {
            "model_type": "conformer",
            "version": METADATA_VERSION,
            "model_author": "parley",
            "comment": "Parley streaming conformer transducer",
            "num_encoder_layers": cfg.num_layers,
            "T": settings.window,
            "decode_chunk_len": settings.decode_chunk_len,
            "left_context": settings.left_context,
            "encoder_dim": cfg.d_model,
            "pad_length": PAD_LENGTH,
            "cnn_module_kernel": cfg.conv_kernel,
            "chunk_size": settings.chunk,
            "right_context": 0,
            "subsampling_factor": SUBSAMPLING,
            "chunk_ms": settings.chunk_ms,
            "history_ms": settings.history_ms,
            "joiner_dim": model.cfg.joiner_dim,
            "processed_lens_unit": "fbank_frames",
            **features_metadata(features),
            # A multi-head model's encoder_out is unprojected (width D); a single head's is J wide (no key).
            **({"encoder_out_dim": cfg.d_model} if model.cfg.multi_head else {}),
            **({"cmm_languages": ",".join(cfg.cmm_languages)} if cfg.cmm_languages else {}),
        }
    )


def decoding_metadata(cfg: ModelConfig) -> dict[str, object]:
    """What a runtime's search needs to know of the training topology, for the decoder's and joiner's metadata and
    each head of bundle.json.

    `rnnt_type` "modified": the model was trained to emit at most one token per frame, and greedy search must stop
    after one (`max_symbols_per_frame` 1) to decode it as trained. Bundles without the keys are standard-topology
    models.
    """
    return {"rnnt_type": cfg.rnnt_type, "max_symbols_per_frame": cfg.max_symbols_per_frame}


def decoder_metadata(model: Transducer, head: str | None = None) -> dict[str, str]:
    """sherpa-onnx's decoder keys (context_size, vocab_size), then Parley's. `head`: a multi-head model's head."""
    return _metadata_values(
        {
            "context_size": model.cfg.context_size,
            "vocab_size": model.vocab_size(head),
            "version": METADATA_VERSION,
            "decoder_dim": model.cfg.decoder_dim,
            "joiner_dim": model.cfg.joiner_dim,
            "blank_id": BLANK_ID,
            **decoding_metadata(model.cfg),
        }
    )


def joiner_metadata(model: Transducer, head: str | None = None, blank_penalty: float = 0.0) -> dict[str, str]:
    """sherpa-onnx's joiner key (joiner_dim), then Parley's: the head's decoding settings among them, the blank
    penalty the runtime subtracts from the blank logit included (`parley export --blank-penalty`)."""
    return _metadata_values(
        {
            "joiner_dim": model.cfg.joiner_dim,
            "vocab_size": model.vocab_size(head),
            "version": METADATA_VERSION,
            "blank_id": BLANK_ID,
            **decoding_metadata(model.cfg),
            "blank_penalty": float(blank_penalty),
        }
    )


def add_metadata(path: str | Path, meta: dict[str, str]) -> None:
    """Adds (or replaces) string key/value pairs in an ONNX file's metadata_props, in place."""
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    props.update(meta)
    del model.metadata_props[:]
    for k, v in props.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))


def read_metadata(path: str | Path) -> dict[str, str]:
    """An ONNX file's metadata_props as a dict."""
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], axes: dict) -> None:
    with warnings.catch_warnings():
        # The tracer warns about Python ints taken from shapes (B, T): they are recorded as shape ops.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # The TorchScript exporter (dynamo=False) is deprecated, but it exports `step` as is; the dynamo exporter
        # has not been checked against sherpa-onnx here.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            args,
            str(path),
            opset_version=OPSET,
            dynamo=False,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
        )


@torch.no_grad()
def export_encoder(
    model: Transducer, settings: StreamingSettings, path: Path, meta: dict[str, str], language_mask: bool = True
) -> None:
    """The encoder step; followed by the joiner's `encoder_proj` for a single-head model (see the docstring).

    A CMM encoder takes `language_mask`, unless `language_mask` is False: then every language is selected (the
    graph of `CMM_DEFAULT_ENCODER`).
    """
    cfg = model.cfg.encoder
    proj: nn.Module = nn.Identity() if model.cfg.multi_head else model.joiner.encoder_proj
    N = 2  # not 1, so that no broadcast over a batch of one is baked into the graph
    masked = bool(cfg.cmm_languages) and language_mask
    args = (
        torch.zeros(N, settings.window, cfg.num_bins),
        *model.encoder.init_state(N, settings.left_context)[:2],
        torch.zeros(N, dtype=torch.int64),
        *([torch.ones(N, len(cfg.cmm_languages))] if masked else []),
    )
    _export(
        OnnxEncoder(model.encoder, proj).eval(),
        args,
        path,
        ["x", "cached_attn", "cached_conv", "processed_lens", *(["language_mask"] if masked else [])],
        ["encoder_out", "new_cached_attn", "new_cached_conv"],
        {
            "x": {0: "N"},
            "cached_attn": {2: "N"},
            "cached_conv": {2: "N"},
            "processed_lens": {0: "N"},
            **({"language_mask": {0: "N"}} if masked else {}),
            "encoder_out": {0: "N"},
            "new_cached_attn": {2: "N"},
            "new_cached_conv": {2: "N"},
        },
    )
    add_metadata(path, meta)


def export_encoders(model: Transducer, settings: StreamingSettings, out: Path, meta: dict[str, str]) -> dict[str, Path]:
    """encoder.onnx, and for a CMM encoder also `CMM_DEFAULT_ENCODER` (every language selected, no mask input)."""
    paths = {"encoder.onnx": out / "encoder.onnx"}
    export_encoder(model, settings, paths["encoder.onnx"], meta)
    if langs := model.cfg.encoder.cmm_languages:
        paths[CMM_DEFAULT_ENCODER] = out / CMM_DEFAULT_ENCODER
        default = {k: v for k, v in meta.items() if k != "cmm_languages"} | {"cmm_selected": ",".join(langs)}
        export_encoder(model, settings, paths[CMM_DEFAULT_ENCODER], default, language_mask=False)
    return paths


@torch.no_grad()
def export_decoder(model: Transducer, path: Path, meta: dict[str, str], head: str | None = None) -> None:
    y = torch.zeros(3, model.cfg.context_size, dtype=torch.int64)
    h = model.head(head)
    _export(
        OnnxDecoder(h.decoder, h.joiner.decoder_proj).eval(),
        (y,),
        path,
        ["y"],
        ["decoder_out"],
        {"y": {0: "N"}, "decoder_out": {0: "N"}},
    )
    add_metadata(path, meta)


@torch.no_grad()
def export_joiner(model: Transducer, path: Path, meta: dict[str, str], head: str | None = None) -> None:
    """A single-head model's joiner takes the projected encoder output; a multi-head model's projects it itself."""
    J = model.cfg.joiner_dim
    joiner = model.head(head).joiner
    if model.cfg.multi_head:
        module: nn.Module = OnnxProjectingJoiner(joiner)
        enc = torch.zeros(3, model.cfg.encoder.d_model)
    else:
        module, enc = OnnxJoiner(joiner.output), torch.zeros(3, J)
    _export(
        module.eval(),
        (enc, torch.zeros(3, J)),
        path,
        ["encoder_out", "decoder_out"],
        ["logit"],
        {"encoder_out": {0: "N"}, "decoder_out": {0: "N"}, "logit": {0: "N"}},
    )
    add_metadata(path, meta)


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of the MatMul weights (activations quantized at run time, each row with its own
    scale: export/quantize.py), metadata kept.

    Only MatMul: its int8 kernel (MatMulInteger, uint8 x int8) runs in every onnxruntime build sherpa-onnx ships,
    while ConvInteger with int8 weights is missing from older ones; convolutions are a small part of the weights.
    Per-row activation scales keep a stream's results independent of the streams batched beside it.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
    per_row_file(dst)
    add_metadata(dst, read_metadata(src))


def int8_name(name: str) -> str:
    """``encoder.onnx`` -> ``encoder.int8.onnx``."""
    assert name.endswith(".onnx"), name
    return name[: -len(".onnx")] + INT8_SUFFIX


def export_onnx(
    model: Transducer,
    settings: StreamingSettings,
    out_dir: str | Path,
    common_metadata: dict[str, str] | None = None,
    head_metadata: dict[str, str] | None = None,
    features: FbankConfig | None = None,
    int8: bool = False,
    blank_penalty: float = 0.0,
) -> dict[str, Path]:
    """Writes encoder.onnx, decoder.onnx, joiner.onnx (and their .int8.onnx variants) into `out_dir`.

    Args:
        model: the Transducer (set to eval mode here).
        settings: the chunk and history the encoder runs with.
        out_dir: created if missing.
        common_metadata: extra keys written into all three files (e.g. the checkpoint's hash).
        head_metadata: extra keys for the decoder and joiner (language, tokenizer).
        features: the frontend the model was trained with (default: `FbankConfig()`).
        int8: also write dynamically quantized copies.
        blank_penalty: the head's blank penalty, for the joiner's metadata.

    Returns:
        The written paths by file name.
    """
    model.eval()
    features = features or FbankConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    common, head = dict(common_metadata or {}), dict(head_metadata or {})
    paths = export_encoders(model, settings, out, {**encoder_metadata(model, settings, features), **common})
    paths |= {name: out / name for name in ("decoder.onnx", "joiner.onnx")}
    export_decoder(model, paths["decoder.onnx"], {**decoder_metadata(model), **common, **head})
    export_joiner(
        model, paths["joiner.onnx"], {**joiner_metadata(model, blank_penalty=blank_penalty), **common, **head}
    )
    if int8:
        for name in list(paths):
            paths[int8_name(name)] = out / int8_name(name)
            quantize_int8(paths[name], paths[int8_name(name)])
    return paths


def head_file(kind: str, language: str) -> str:
    """A multi-head bundle's per-head file: ``head_file("decoder", "de")`` -> ``decoder-de.onnx``."""
    return f"{kind}-{language}.onnx"


def lid_metadata(model: Transducer) -> dict[str, str]:
    """The LID's languages (comma-separated, in logit order) and how the runtime pools its frame logits."""
    return _metadata_values(
        {
            "lid_languages": ",".join(model.cfg.lid_languages),
            "encoder_out_dim": model.cfg.encoder.d_model,
            "pooling": "mean",  # the decision at frame t: argmax of the mean of frame logits 0..t
            "version": METADATA_VERSION,
        }
    )


@torch.no_grad()
def export_lid(model: Transducer, path: Path, meta: dict[str, str]) -> None:
    assert model.lid is not None, "the model has no language identifier"
    _export(
        OnnxLid(model.lid).eval(),
        (torch.zeros(2, 3, model.cfg.encoder.d_model),),
        path,
        ["encoder_out"],
        ["lid_logits"],
        {"encoder_out": {0: "N", 1: "C"}, "lid_logits": {0: "N", 1: "C"}},
    )
    add_metadata(path, meta)


def export_multihead_onnx(
    model: Transducer,
    settings: StreamingSettings,
    out_dir: str | Path,
    common_metadata: dict[str, str] | None = None,
    head_metadata: dict[str, dict[str, str]] | None = None,
    features: FbankConfig | None = None,
    int8: bool = False,
    blank_penalty: float = 0.0,
) -> dict[str, Path]:
    """Writes a multi-head model's encoder.onnx, lid.onnx (with an LID) and decoder-<lang>.onnx, joiner-<lang>.onnx
    per head (and their .int8.onnx variants) into `out_dir`; see the module docstring for the interface.

    Args:
        model: a multi-head Transducer (set to eval mode here).
        settings: the chunk and history the encoder runs with.
        out_dir: created if missing.
        common_metadata: extra keys written into every file (e.g. the checkpoint's hash).
        head_metadata: extra keys per head (language, tokenizer), by head name.
        features: the frontend the model was trained with (default: `FbankConfig()`).
        int8: also write dynamically quantized copies.
        blank_penalty: every head's blank penalty, for the joiners' metadata.

    Returns:
        The written paths by file name.
    """
    assert model.cfg.multi_head, "export_multihead_onnx needs a multi-head model; use export_onnx"
    model.eval()
    features = features or FbankConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    common = dict(common_metadata or {})
    paths = export_encoders(model, settings, out, {**encoder_metadata(model, settings, features), **common})
    if model.lid is not None:
        paths["lid.onnx"] = out / "lid.onnx"
        export_lid(model, paths["lid.onnx"], {**lid_metadata(model), **common})
    for h in model.head_names:
        extra = (head_metadata or {}).get(h, {})
        dec, join = head_file("decoder", h), head_file("joiner", h)
        paths[dec], paths[join] = out / dec, out / join
        export_decoder(model, paths[dec], {**decoder_metadata(model, h), **common, **extra}, h)
        export_joiner(model, paths[join], {**joiner_metadata(model, h, blank_penalty), **common, **extra}, h)
    if int8:
        for name in list(paths):
            paths[int8_name(name)] = out / int8_name(name)
            quantize_int8(paths[name], paths[int8_name(name)])
    return paths
