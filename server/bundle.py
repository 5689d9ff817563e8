"""Loading a model bundle: the folder `parley export` writes, checked before anything runs on it.

    bundle = load_bundle("bundles/en-small")            # fp32; precision="int8" for the quantized files
    bundle.spec.window, bundle.spec.shift              # fbank frames per encoder step, and its advance
    bundle.heads[0].decoder                             # an onnxruntime session

Every setting comes from the ONNX files' metadata (docs/bundles.md lists the keys); bundle.json's copies of the
streaming and feature settings only have to agree with it. A head's decoding settings (`max_symbols_per_frame`,
`blank_penalty`) come from its joiner's metadata too; bundle.json's head entry is their fallback for bundles exported
before the keys, and where both say one they must agree. `load_bundle` refuses a bundle with a `BundleError` that
names the file at fault when: a file is missing, bundle.json is not valid JSON or lacks a key, a file's size or
sha256 differs from bundle.json, onnxruntime cannot open a file, a metadata key is missing or malformed, the
metadata disagrees with the graph's shapes, with bundle.json or between encoder, decoder and joiner, the
vocabulary of tokens.txt / bpe.model does not match the model's, or an LM or punctuation model cannot be read or does
not fit its head or its card (server/punctuation.py).

Two kinds of bundle load here. "transducer": one head, whose encoder output is already projected for its joiner.
"sm2" (multilingual captions and translation): a head per output language on one encoder whose output is not
projected (each joiner projects it, `encoder_out_dim` = D), and optionally a streaming language identifier
(`lid.onnx`, `bundle.lid`) over the source languages.
"tsot" (multi-talker captions): a "transducer" bundle whose head has "post_processing": "tsot": its text carries
`<cc>` channel changes, which the engine splits into two channels (server/tsot.py).

Any kind may hold an encoder of another streaming family that sherpa-onnx runs (server/encoders.py): icefall's
`zipformer2` and `lstm` exports, which `parley import-sherpa` (server/sherpa_import.py) wraps in a bundle.json. Their
ONNX files carry fewer settings than Parley's: the fbank frontend comes from bundle.json's "features", the blank is
id 0, and a head without "bpe" is written from tokens.txt alone (server/tokens.py).

Any kind may list language models for shallow fusion in "lms" (`parley lm train` adds them): each entry names its
file (listed in "files" like every other), the head it serves (`language`), its kind ("ngram", server/lm.py, or
"lstm", server/lm_rnn.py) and its default `lm_scale`, `ilm_scale` and `lodr_scale`; the LM must predict that head's
tokens. An entry with "role": "source" is the LM of the acoustic model's own training transcripts (at most one per
language): fusion subtracts it, weighted by `lodr_scale` (LODR when it is a bigram, the density-ratio method when it
has the domain LM's order). A domain LM with "default": true (at most one per language; `parley lm train --default`) is
the language's general LM: every stream captioning that language gets it at its default scales, with beam search,
unless it asks for greedy search, another LM, `"lm": "none"` or hotwords (server/plan.py, `Planner.defaulted`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import onnxruntime as ort
import sentencepiece as spm

from parley.contract import BLANK_ID, STANDARD_MAX_SYMBOLS_PER_FRAME, SUBSAMPLING
from parley.features import FbankConfig
from server.encoders import (
    FAMILIES,
    SHERPA_FAMILIES,
    StateSpec,
    bind_by_position,
    conformer_states,
    int_list,
    lstm_states,
    zipformer2_states,
)
from server.lm import MAX_FUSION_SCALE, NgramLM
from server.lm_rnn import RnnLM
from server.providers import select_providers
from server.punctuation import Punctuator
from server.talkers import TalkerModel
from server.tokens import TokenTable

BUNDLE_FORMAT = 1  # the bundle.json layout this runtime reads (and export/bundle.py writes)
BUNDLE_JSON = "bundle.json"
KINDS = ("transducer", "sm2", "tsot")  # bundle.json kinds this runtime runs
POST_PROCESSING = ("none", "tsot")  # a head's "post_processing": "tsot" splits its text into two channels
LM_KINDS = ("ngram", "lstm")  # bundle.json "lms" kinds this runtime fuses
LM_ROLES = ("domain", "source")  # what an LM is of: a domain's text, or the acoustic model's training transcripts
_ORT_TYPES = {"float32": "tensor(float)", "int64": "tensor(int64)"}  # numpy dtype -> onnxruntime's input type


class BundleError(Exception):
    """A bundle that cannot be used; the message starts with the file at fault."""


@dataclass(frozen=True)
class EncoderSpec:
    """What the encoder's metadata says: shapes of its inputs and the frontend it expects.

    The first four fields are a conformer's; other families give their nearest equivalent (for people reading).
    """

    num_layers: int  # L (zipformer2: all stacks' layers together)
    left_context: int  # K, cached encoder frames per layer (lstm: 0, its history is unbounded)
    encoder_dim: int  # D, width of the cached attention inputs (zipformer2: the widest stack's)
    conv_kernel: int  # the causal conv's kernel; k-1 cached frames (lstm: 0)
    window: int  # T, fbank frames one step reads
    shift: int  # fbank frames one step advances (sherpa-onnx's decode_chunk_len)
    chunk: int  # C, encoder frames one step outputs
    subsampling: int  # fbank frames per encoder frame
    joiner_dim: int  # J, width of the projected encoder and decoder outputs inside a joiner
    out_dim: int  # width of encoder_out: J (projected, one head), or D (unprojected, a multi-head bundle)
    chunk_ms: int
    history_ms: int
    features: FbankConfig
    family: str = "conformer"  # the encoder's model_type (server/encoders.py)
    states: tuple[StateSpec, ...] = ()  # the state tensors a step takes and returns besides x
    # A configurable multilingual encoder's languages, in the order of its `language_mask (N, Lang)` input; empty:
    # none (no such input).
    cmm_languages: tuple[str, ...] = ()

    @property
    def feeds_processed_lens(self) -> bool:
        """The runtime feeds `processed_lens` (fbank frames consumed): a conformer's; a zipformer2 keeps its own."""
        return self.family == "conformer"


@dataclass
class Head:
    """One output language: prediction network, joiner and tokens, with their sessions."""

    name: str
    language: str
    vocab_size: int  # V
    context_size: int
    blank_id: int
    tokens: list[str]  # piece of each id, from tokens.txt
    sp: spm.SentencePieceProcessor | TokenTable  # the head's bpe.model, or tokens.txt alone where it has none
    decoder: ort.InferenceSession
    joiner: ort.InferenceSession
    files: dict[str, Path]  # decoder, joiner, tokens, bpe
    post_processing: str = "none"  # "tsot": multi-talker text with <cc>, split into channels (server/tsot.py)
    # Subtracted from the blank logit before each search decision: tuned on dev data, written by `parley export` into
    # the joiner's metadata (bundle.json's head for bundles exported before the key).
    blank_penalty: float = 0.0
    # Greedy search's limit: 1 for a model trained with the modified topology (one token per frame, as sherpa-onnx
    # decodes), the standard topology's cap for the standard one and for bundles older than the key.
    max_symbols_per_frame: int = STANDARD_MAX_SYMBOLS_PER_FRAME
    # The decoder context before the first token. Parley's decoders read ids below 0 as blank, so sherpa-onnx's
    # [-1, ..., -1, blank] and [blank, ...] are the same to them; icefall's embed -1 as zeros, so theirs is the former.
    start_context: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.start_context:
            self.start_context = (self.blank_id,) * self.context_size


@dataclass
class LidModel:
    """The streaming language identifier: per-frame logits over `languages` from the encoder output."""

    languages: list[str]  # L, in logit order
    session: ort.InferenceSession  # encoder_out (N, C, out_dim) -> lid_logits (N, C, L)
    file: Path


@dataclass
class BundleLm:
    """A language model of bundle.json's "lms", loaded: what a stream's "lm" names."""

    name: str
    language: str  # the head whose tokens it predicts
    kind: str
    lm: NgramLM | RnnLM
    lm_scale: float  # defaults for streams that name no scales
    ilm_scale: float
    file: Path
    lodr_scale: float = 0.0
    role: str = "domain"  # or "source": an LM of the training transcripts, which fusion subtracts
    default: bool = False  # the language's general LM, fused into every plain beam-search stream (module docstring)

    def describe(self) -> dict:
        """What GET /v1/models says about it."""
        return {
            "name": self.name,
            "language": self.language,
            "kind": self.kind,
            **({"order": self.lm.order} if self.kind == "ngram" else {}),
            "lm_scale": self.lm_scale,
            "ilm_scale": self.ilm_scale,
            "lodr_scale": self.lodr_scale,
            "role": self.role,
            **({"default": True} if self.default else {}),
        }


@dataclass
class Bundle:
    path: Path
    name: str
    kind: str
    languages: list[str]
    precision: str
    spec: EncoderSpec
    encoder: ort.InferenceSession
    heads: list[Head]
    manifest: dict = field(repr=False)  # bundle.json as read
    lid: LidModel | None = None
    lms: dict[str, BundleLm] = field(default_factory=dict)  # by name
    punctuators: dict[str, Punctuator] = field(default_factory=dict)  # by language (server/punctuation.py)
    talkers: TalkerModel | None = None  # who speaks across segments (server/talkers.py), if the bundle has one


def sha256_of(path: str | Path) -> str:
    """The hex SHA-256 of a file (bundle.json lists every file's)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _get(d: dict, key: str, where: str, kind: type | tuple[type, ...] = object) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise BundleError(f"{where}: missing key {key!r}")
    if not isinstance(d[key], kind):
        raise BundleError(f"{where}: {key!r} has the wrong type ({type(d[key]).__name__})")
    return d[key]


class _Meta:
    """An ONNX file's metadata with typed, checked reads."""

    def __init__(self, session: ort.InferenceSession, name: str) -> None:
        self.values = dict(session.get_modelmeta().custom_metadata_map)
        self.name = name

    def text(self, key: str) -> str:
        if key not in self.values:
            raise BundleError(f"{self.name}: metadata key {key!r} missing")
        return self.values[key]

    def integer(self, key: str) -> int:
        try:
            return int(self.text(key))
        except ValueError:
            raise BundleError(f"{self.name}: metadata {key}={self.values[key]!r} is not an integer") from None

    def number(self, key: str) -> float:
        try:
            return float(self.text(key))
        except ValueError:
            raise BundleError(f"{self.name}: metadata {key}={self.values[key]!r} is not a number") from None


def _features(meta: _Meta) -> FbankConfig:
    values: dict[str, Any] = {}
    for f in fields(FbankConfig):
        if f.name == "high_freq":  # Parley's models use the whole band: checked against the mel range below
            continue
        default = getattr(FbankConfig(), f.name)
        if isinstance(default, bool):
            values[f.name] = meta.text(f.name) in ("1", "true", "True")
        elif isinstance(default, int):
            values[f.name] = meta.integer(f.name)
        else:
            values[f.name] = meta.number(f.name)
    config = FbankConfig(**values)
    for key, ours in zip(("low_freq", "high_freq"), config.mel_range(), strict=True):
        if key in meta.values and meta.number(key) != ours:
            raise BundleError(
                f"{meta.name}: metadata {key}={meta.values[key]} but Parley's frontend computes {key}={ours}"
            )
    return config


def _check_shape(session: ort.InferenceSession, name: str, which: str, tensor: str, expected: list) -> None:
    """Static dims of a graph input/output must equal `expected`; None in `expected` means any (a dynamic axis)."""
    nodes = session.get_inputs() if which == "input" else session.get_outputs()
    found = {n.name: n.shape for n in nodes}
    if tensor not in found:
        raise BundleError(f"{name}: no {which} named {tensor!r} (it has {sorted(found)})")
    shape = found[tensor]
    bad = len(shape) != len(expected) or any(
        e is not None and isinstance(s, int) and s != e for s, e in zip(shape, expected, strict=True)
    )
    if bad:
        raise BundleError(f"{name}: {which} {tensor} has shape {shape}, the metadata implies {expected}")


def _session(path: Path, name: str, providers: list[str], threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # No busy-waiting between runs: the worker threads would otherwise spin for the event loop's CPU time; a server
    # that runs one batch per chunk interval idles most of the time (measured: 0.27 cores at 1 stream with spinning).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types for corrupt or unsupported files
        raise BundleError(f"{name}: onnxruntime cannot load it: {str(e).splitlines()[0][:300]}") from e


def _encoder_spec(session: ort.InferenceSession, name: str, manifest: dict) -> EncoderSpec:
    meta = _Meta(session, name)
    family = meta.text("model_type")
    if family in SHERPA_FAMILIES:
        return _sherpa_encoder_spec(session, meta, family, _manifest_features(manifest))
    if family != "conformer":
        raise BundleError(f"{name}: model_type {family!r}, this runtime runs {list(FAMILIES)}")
    spec = EncoderSpec(
        num_layers=meta.integer("num_encoder_layers"),
        left_context=meta.integer("left_context"),
        encoder_dim=meta.integer("encoder_dim"),
        conv_kernel=meta.integer("cnn_module_kernel"),
        window=meta.integer("T"),
        shift=meta.integer("decode_chunk_len"),
        chunk=meta.integer("chunk_size"),
        subsampling=meta.integer("subsampling_factor"),
        joiner_dim=meta.integer("joiner_dim"),
        # Single-head bundles have no encoder_out_dim: their encoder_out is projected, J wide.
        out_dim=meta.integer("encoder_out_dim") if "encoder_out_dim" in meta.values else meta.integer("joiner_dim"),
        chunk_ms=meta.integer("chunk_ms"),
        history_ms=meta.integer("history_ms"),
        features=_features(meta),
    )
    if spec.shift != spec.chunk * spec.subsampling or spec.window != spec.shift + meta.integer("pad_length"):
        raise BundleError(
            f"{name}: inconsistent metadata: T={spec.window}, decode_chunk_len={spec.shift}, "
            f"chunk_size={spec.chunk}, subsampling_factor={spec.subsampling}, pad_length={meta.integer('pad_length')}"
        )
    if meta.text("processed_lens_unit") != "fbank_frames":
        raise BundleError(f"{name}: processed_lens_unit {meta.text('processed_lens_unit')!r} is not fbank_frames")
    L, K, D = spec.num_layers, spec.left_context, spec.encoder_dim
    _check_shape(session, name, "input", "x", [None, spec.window, spec.features.num_bins])
    _check_shape(session, name, "input", "cached_attn", [L, K, None, D])
    _check_shape(session, name, "input", "cached_conv", [L, spec.conv_kernel - 1, None, D])
    _check_shape(session, name, "input", "processed_lens", [None])
    _check_shape(session, name, "output", "encoder_out", [None, None, spec.out_dim])
    cmm = tuple(meta.text("cmm_languages").split(",")) if "cmm_languages" in meta.values else ()
    if cmm:
        _check_shape(session, name, "input", "language_mask", [None, len(cmm)])
    elif "language_mask" in {i.name for i in session.get_inputs()}:
        raise BundleError(f"{name}: input language_mask without cmm_languages metadata")
    return replace(spec, states=conformer_states(L, K, D, spec.conv_kernel), cmm_languages=cmm)


def _manifest_features(manifest: dict) -> FbankConfig:
    """bundle.json's "features": the frontend of a model whose ONNX files do not say (an imported one)."""
    where = f"{BUNDLE_JSON} features"
    features = _get(manifest, "features", BUNDLE_JSON, dict)
    values: dict[str, Any] = {}
    for f in fields(FbankConfig):
        default = getattr(FbankConfig(), f.name)
        kind = bool if isinstance(default, bool) else int if isinstance(default, int) else (int, float)
        value = _get(features, f.name, where, kind) if f.name != "high_freq" or f.name in features else default
        if isinstance(value, bool) != isinstance(default, bool):
            raise BundleError(f"{where}: {f.name!r} has the wrong type ({type(value).__name__})")
        values[f.name] = value
    return FbankConfig(**values)


def _sherpa_encoder_spec(session: ort.InferenceSession, meta: _Meta, family: str, features: FbankConfig) -> EncoderSpec:
    """An icefall streaming encoder as sherpa-onnx reads it: T, decode_chunk_len and the family's state metadata;
    state tensors paired by position; 4 fbank frames per encoder frame."""
    name = meta.name
    window, shift = meta.integer("T"), meta.integer("decode_chunk_len")
    if shift <= 0 or shift % SUBSAMPLING or window < shift:
        raise BundleError(f"{name}: inconsistent metadata: T={window}, decode_chunk_len={shift}")
    try:
        if family == "zipformer2":
            states = zipformer2_states(meta.values, features.num_bins)
            dims = (sum(int_list(meta.values, "num_encoder_layers")), max(int_list(meta.values, "encoder_dims")))
            # left_context_len[0] is the first stack's, which runs at twice the output frame rate
            left = int_list(meta.values, "left_context_len")[0] // 2
            kernel = max(int_list(meta.values, "cnn_module_kernels"))
        else:
            states = lstm_states(meta.values)
            dims, left, kernel = (meta.integer("num_encoder_layers"), meta.integer("d_model")), 0, 0
        inputs, outputs = session.get_inputs(), session.get_outputs()
        states = bind_by_position(states, [i.name for i in inputs[1:]], [o.name for o in outputs[1:]])
    except KeyError as e:
        raise BundleError(f"{name}: metadata key {e.args[0]!r} missing") from None
    except ValueError as e:
        raise BundleError(f"{name}: {e}") from None
    _check_shape(session, name, "input", "x", [None, window, features.num_bins])
    if inputs[0].name != "x" or outputs[0].name != "encoder_out":
        raise BundleError(f"{name}: the first input must be x and the first output encoder_out")
    for s in states:
        shape = [None if axis == s.batch_axis else d for axis, d in enumerate(s.shape)]
        for which, tensor in (("input", s.input), ("output", s.output)):
            _check_shape(session, name, which, tensor, shape)
        kind, wanted = next(i.type for i in inputs if i.name == s.input), _ORT_TYPES[s.dtype]
        if kind != wanted:
            raise BundleError(f"{name}: input {s.input} is {kind}, sherpa-onnx feeds {wanted}")
    J = outputs[0].shape[-1] if len(outputs[0].shape) == 3 else None
    if not isinstance(J, int):
        raise BundleError(f"{name}: output encoder_out has shape {outputs[0].shape}, expected (N, C, J) with J fixed")
    chunk = shift // SUBSAMPLING
    frame_ms = features.frame_shift_ms * SUBSAMPLING
    return EncoderSpec(
        num_layers=dims[0],
        left_context=left,
        encoder_dim=dims[1],
        conv_kernel=kernel,
        window=window,
        shift=shift,
        chunk=chunk,
        subsampling=SUBSAMPLING,
        joiner_dim=J,
        out_dim=J,
        chunk_ms=round(chunk * frame_ms),
        history_ms=round(left * frame_ms),
        features=features,
        family=family,
        states=states,
    )


def _read_tokens(path: Path, name: str) -> list[str]:
    """tokens.txt: one ``<piece> <id>`` line per id, ids 0..V-1 in order."""
    tokens = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise BundleError(f"{name}:{lineno}: expected '<piece> <id>', got {line!r}")
        if int(parts[1]) != len(tokens):
            raise BundleError(f"{name}:{lineno}: id {parts[1]}, expected {len(tokens)} (ids must be 0..V-1 in order)")
        tokens.append(parts[0])
    return tokens


class _Files:
    """The files of a bundle folder, checked against bundle.json's sizes and hashes on first use."""

    def __init__(self, folder: Path, listed: dict, verify: bool) -> None:
        self.folder, self.listed, self.verify = folder, listed, verify

    def path(self, name: object, where: str) -> Path:
        if not isinstance(name, str) or not name or os.sep in name or name.startswith("."):
            raise BundleError(f"{BUNDLE_JSON}: {where} names no file in the bundle folder: {name!r}")
        path = self.folder / name
        if not path.is_file():
            raise BundleError(f"{name}: missing from {self.folder}")
        entry = self.listed.get(name)
        if not isinstance(entry, dict) or "bytes" not in entry or "sha256" not in entry:
            raise BundleError(f"{name}: not listed with bytes and sha256 in {BUNDLE_JSON}'s files")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise BundleError(f"{name}: {size} bytes, but {BUNDLE_JSON} says {entry['bytes']}")
        if self.verify and sha256_of(path) != entry["sha256"]:
            raise BundleError(f"{name}: sha256 differs from {BUNDLE_JSON}'s (the file changed after export)")
        return path


def _load_head(
    head: dict, index: int, precision: str, files: _Files, spec: EncoderSpec, enc_meta: _Meta, providers, threads
) -> Head:
    where = f"{BUNDLE_JSON} heads[{index}]"
    names = {
        "decoder": _get(_get(head, "decoder", where, dict), precision, f"{where}.decoder", str),
        "joiner": _get(_get(head, "joiner", where, dict), precision, f"{where}.joiner", str),
        "tokens": _get(head, "tokens", where, str),
    }
    if head.get("bpe") is not None:  # without one, the head's text comes from tokens.txt alone
        names["bpe"] = _get(head, "bpe", where, str)
    paths = {k: files.path(v, f"{where}.{k}") for k, v in names.items()}
    dec_name, join_name, tok_name = names["decoder"], names["joiner"], names["tokens"]
    decoder = _session(paths["decoder"], dec_name, providers, threads)
    joiner = _session(paths["joiner"], join_name, providers, threads)
    dm, jm = _Meta(decoder, dec_name), _Meta(joiner, join_name)
    V, ctx = dm.integer("vocab_size"), dm.integer("context_size")
    # icefall's decoder and joiner say only vocab_size and context_size (and joiner_dim): sherpa-onnx's blank is 0.
    parley = spec.family not in SHERPA_FAMILIES
    J = dm.integer("joiner_dim") if parley else spec.joiner_dim
    blank = dm.integer("blank_id") if parley else BLANK_ID
    joiner_vocab, joiner_blank = (jm.integer("vocab_size"), jm.integer("blank_id")) if parley else (V, blank)
    for key, a, b in (("vocab_size", V, joiner_vocab), ("blank_id", blank, joiner_blank)):
        if a != b:
            raise BundleError(f"{dec_name} and {join_name} disagree on {key}: {a} vs {b}")
    joiner_dim = jm.integer("joiner_dim") if parley or "joiner_dim" in jm.values else J
    for key, value, other, other_name in (
        ("joiner_dim", J, joiner_dim, join_name),
        ("joiner_dim", J, spec.joiner_dim, enc_meta.name),
    ):
        if value != other:
            raise BundleError(f"{dec_name} and {other_name} disagree on {key}: {value} vs {other}")
    for m in (dm, jm):  # the files of one export carry the same checkpoint hash
        if m.values.get("checkpoint_sha256") != enc_meta.values.get("checkpoint_sha256"):
            raise BundleError(f"{m.name} and {enc_meta.name} come from different checkpoints (checkpoint_sha256)")
    _check_shape(decoder, dec_name, "input", "y", [None, ctx])
    _check_shape(decoder, dec_name, "output", "decoder_out", [None, J])
    _check_shape(joiner, join_name, "input", "encoder_out", [None, spec.out_dim])
    _check_shape(joiner, join_name, "input", "decoder_out", [None, J])
    _check_shape(joiner, join_name, "output", "logit", [None, V])
    language = _get(head, "language", where, str)
    blank_penalty = _decoding_setting(
        head, where, jm, "blank_penalty", 0.0, float, lambda v: 0 <= v < 100, "a number in [0, 100)"
    )
    max_symbols = _decoding_setting(
        head, where, jm, "max_symbols_per_frame", STANDARD_MAX_SYMBOLS_PER_FRAME, int, lambda v: 1 <= v <= 100, "1..100"
    )
    post_processing = head.get("post_processing", "none")
    if post_processing not in POST_PROCESSING:
        raise BundleError(f"{where}.post_processing: {post_processing!r}, this runtime knows {list(POST_PROCESSING)}")
    if dm.values.get("language", language) != language:
        raise BundleError(f"{dec_name}: metadata language {dm.values['language']!r}, {where} says {language!r}")
    tokens = _read_tokens(paths["tokens"], tok_name)
    if len(tokens) != V:
        raise BundleError(f"{tok_name}: {len(tokens)} tokens, but {dec_name} has vocab_size {V}")
    sp = _tokenizer(paths, names, tokens, dm, files.verify) if "bpe" in names else TokenTable(tokens)
    return Head(
        name=_get(head, "name", where, str),
        language=language,
        vocab_size=V,
        context_size=ctx,
        blank_id=blank,
        tokens=tokens,
        sp=sp,
        decoder=decoder,
        joiner=joiner,
        files=paths,
        post_processing=post_processing,
        blank_penalty=float(blank_penalty),
        max_symbols_per_frame=int(max_symbols),
        start_context=(blank,) * ctx if parley else (-1,) * (ctx - 1) + (blank,),
    )


def _decoding_setting(
    head: dict, where: str, joiner: _Meta, key: str, default: float, kind: type, valid, expected: str
) -> float:
    """A head's decoding setting: the joiner's metadata (what `parley export` writes), else bundle.json's head entry
    (bundles exported before the key, imported models), else `default`; where both say it, they must agree.

    Raises:
        BundleError: a value that is not a `kind` for which `valid` holds (`expected` says which), or the two
            disagree.
    """
    found = None
    if key in joiner.values:
        found = _parse(kind, joiner.values[key])
        if found is None or not valid(found):
            raise BundleError(f"{joiner.name}: metadata {key} {joiner.values[key]!r}, expected {expected}")
    if key not in head:
        return default if found is None else found
    value = head[key]
    # JSON numbers only (a bool is an int to Python); an integer setting also takes its string, as it always has.
    number = not isinstance(value, bool) and isinstance(value, int | float | (str if kind is int else float))
    given = _parse(kind, value) if number else None
    if given is None or not valid(given):
        raise BundleError(f"{where}.{key}: {value!r}, expected {expected}")
    if found is not None and given != found:
        raise BundleError(f"{joiner.name}: metadata {key} {joiner.values[key]}, {where} says {value}")
    return given


def _parse(kind: type, value: object) -> Any:
    """`kind(value)`, or None when it cannot be one."""
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def _tokenizer(
    paths: dict[str, Path], names: dict[str, str], tokens: list[str], dm: _Meta, verify: bool
) -> spm.SentencePieceProcessor:
    """The head's bpe.model, checked against tokens.txt and the tokenizer the decoder was exported with."""
    bpe_name, tok_name = names["bpe"], names["tokens"]
    if verify and dm.values.get("tokenizer_sha256", "") not in ("", sha256_of(paths["bpe"])):
        raise BundleError(f"{bpe_name}: not the tokenizer {dm.name} was exported with (tokenizer_sha256)")
    try:
        sp = spm.SentencePieceProcessor(model_file=str(paths["bpe"]))
    except (RuntimeError, OSError) as e:
        raise BundleError(f"{bpe_name}: sentencepiece cannot load it: {e}") from e
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    if pieces != tokens:
        diff = next(
            (i for i, (a, b) in enumerate(zip(pieces, tokens, strict=False)) if a != b), min(len(pieces), len(tokens))
        )
        raise BundleError(f"{bpe_name}: does not match {tok_name} (first difference at id {diff})")
    return sp


def _load_lid(
    manifest: dict, precision: str, files: _Files, spec: EncoderSpec, enc_meta: _Meta, providers, threads
) -> LidModel | None:
    """bundle.json's "lid" entry: {"model": {precision: file}, "languages": [...]}, checked against lid.onnx."""
    if "lid" not in manifest:
        return None
    where = f"{BUNDLE_JSON} lid"
    entry = _get(manifest, "lid", BUNDLE_JSON, dict)
    name = _get(_get(entry, "model", where, dict), precision, f"{where}.model", str)
    languages = _get(entry, "languages", where, list)
    path = files.path(name, f"{where}.model")
    session = _session(path, name, providers, threads)
    meta = _Meta(session, name)
    if meta.text("lid_languages").split(",") != languages:
        raise BundleError(f"{name}: metadata lid_languages {meta.text('lid_languages')!r}, {where} says {languages}")
    if meta.values.get("checkpoint_sha256") != enc_meta.values.get("checkpoint_sha256"):
        raise BundleError(f"{name} and {enc_meta.name} come from different checkpoints (checkpoint_sha256)")
    _check_shape(session, name, "input", "encoder_out", [None, None, spec.out_dim])
    _check_shape(session, name, "output", "lid_logits", [None, None, len(languages)])
    return LidModel(languages=[str(x) for x in languages], session=session, file=path)


def _scale(entry: dict, key: str, where: str) -> float:
    v = entry.get(key, 0.0)
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= MAX_FUSION_SCALE:
        raise BundleError(f"{where}.{key}: {v!r}, expected a number in [0, {MAX_FUSION_SCALE:g}]")
    return float(v)


def _load_lms(manifest: dict, files: _Files, heads: list[Head]) -> dict[str, BundleLm]:
    """bundle.json's "lms": [{"name", "kind", "language", "file", "lm_scale", "ilm_scale", "lodr_scale", "role",
    ...}], each checked against its file and its head; a default `lodr_scale` needs the language's source LM."""
    entries = manifest.get("lms", [])
    if not isinstance(entries, list):
        raise BundleError(f"{BUNDLE_JSON}: 'lms' must be a list")
    lms: dict[str, BundleLm] = {}
    for i, entry in enumerate(entries):
        where = f"{BUNDLE_JSON} lms[{i}]"
        name = _get(entry, "name", where, str)
        if not name or name in lms:
            raise BundleError(f"{where}: name {name!r} is empty or repeated")
        kind = _get(entry, "kind", where, str)
        if kind not in LM_KINDS:
            raise BundleError(f"{where}: kind {kind!r}, this runtime fuses {list(LM_KINDS)}")
        language = _get(entry, "language", where, str)
        head = next((h for h in heads if h.language == language), None)
        if head is None:
            raise BundleError(f"{where}: no head for language {language!r}")
        path = files.path(_get(entry, "file", where, str), f"{where}.file")
        try:
            lm = NgramLM.load(path) if kind == "ngram" else RnnLM.load(path)
        except ValueError as e:  # its message starts with the file
            raise BundleError(str(e)) from e
        if lm.vocab_size != head.vocab_size or lm.boundary_id != head.blank_id:
            raise BundleError(
                f"{path.name}: vocab_size {lm.vocab_size} and boundary {lm.boundary_id}, but head {head.name} has "
                f"{head.vocab_size} tokens and blank {head.blank_id}"
            )
        wanted = lm.meta.get("tokenizer_sha256")
        if files.verify and wanted and "bpe" in head.files and wanted != sha256_of(head.files["bpe"]):
            raise BundleError(f"{path.name}: trained on another tokenizer than {head.files['bpe'].name}")
        role = entry.get("role", "domain")
        if role not in LM_ROLES:
            raise BundleError(f"{where}.role: {role!r}, expected one of {list(LM_ROLES)}")
        if role == "source" and any(x.role == "source" and x.language == language for x in lms.values()):
            raise BundleError(f"{where}: a second source LM for {language!r}")
        default = entry.get("default", False)
        if not isinstance(default, bool) or (default and role != "domain"):
            raise BundleError(f"{where}.default: {default!r}, expected true or false (true only for a domain LM)")
        if default and default_lm(lms, language) is not None:
            raise BundleError(f"{where}: a second default LM for {language!r}")
        lms[name] = BundleLm(
            name,
            language,
            kind,
            lm,
            _scale(entry, "lm_scale", where),
            _scale(entry, "ilm_scale", where),
            path,
            _scale(entry, "lodr_scale", where),
            role,
            default,
        )
    for x in lms.values():
        if x.lodr_scale and source_lm(lms, x.language) is None:
            raise BundleError(
                f"{BUNDLE_JSON} lm {x.name!r}: lodr_scale {x.lodr_scale:g} but no source LM for {x.language}"
            )
    return lms


def default_lm(lms: dict[str, BundleLm], language: str) -> BundleLm | None:
    """`language`'s general LM among `lms` (one with "default": true), or None."""
    return next((x for x in lms.values() if x.default and x.language == language), None)


def source_lm(lms: dict[str, BundleLm], language: str) -> BundleLm | None:
    """The LM of `language`'s training transcripts among `lms` (role "source"), or None."""
    return next((x for x in lms.values() if x.role == "source" and x.language == language), None)


def _load_punctuators(manifest: dict, files: _Files, threads: int) -> dict[str, Punctuator]:
    """bundle.json's "punctuation": {language: {"model", "tokenizer", "card"}} (`parley punct add`), each file
    checked like the model's."""
    entries = manifest.get("punctuation", {})
    if not isinstance(entries, dict):
        raise BundleError(f"{BUNDLE_JSON}: 'punctuation' must map languages to their model's files")
    out = {}
    for lang, entry in sorted(entries.items()):
        where = f"{BUNDLE_JSON} punctuation.{lang}"
        model, tokenizer, card = (
            files.path(_get(entry, key, where, str), f"{where}.{key}") for key in ("model", "tokenizer", "card")
        )
        session = _session(model, model.name, ["CPUExecutionProvider"], max(1, threads))
        try:
            out[lang] = Punctuator.from_session(session, tokenizer, card)
        except ValueError as e:  # its message starts with the file at fault
            raise BundleError(str(e)) from e
    return out


def _load_talkers(manifest: dict, files: _Files, spec: EncoderSpec) -> TalkerModel | None:
    """bundle.json's "talkers": {"model": "talkers.npz"} (`parley talkers add`), checked like the model's files and
    against the encoder's fbank bins."""
    if "talkers" not in manifest:
        return None
    entry = _get(manifest, "talkers", BUNDLE_JSON, dict)
    path = files.path(_get(entry, "model", f"{BUNDLE_JSON} talkers", str), f"{BUNDLE_JSON} talkers.model")
    try:
        model = TalkerModel.load(path)
    except ValueError as e:
        raise BundleError(str(e)) from e
    if model.num_bins != spec.features.num_bins:
        raise BundleError(f"{path.name}: reads {model.num_bins} fbank bins, the encoder {spec.features.num_bins}")
    return model


def streaming_settings(spec: EncoderSpec) -> dict[str, int]:
    """bundle.json's "streaming": the encoder's streaming settings, for people reading the file."""
    return {
        "chunk_ms": spec.chunk_ms,
        "history_ms": spec.history_ms,
        "chunk_size": spec.chunk,
        "left_context": spec.left_context,
        "T": spec.window,
        "decode_chunk_len": spec.shift,
        "pad_length": spec.window - spec.shift,
    }


def read_encoder_spec(path: str | os.PathLike, features: FbankConfig) -> EncoderSpec:
    """The spec of the encoder file at `path`, with `features` for a family whose metadata has no frontend (what
    `parley import-sherpa` writes into bundle.json).

    Raises:
        BundleError: as `load_bundle` does for the encoder.
    """
    path = Path(path)
    session = _session(path, path.name, ["CPUExecutionProvider"], 1)
    return _encoder_spec(session, path.name, {"features": {**features.to_dict(), "high_freq": features.high_freq}})


def _check_against_manifest(manifest: dict, spec: EncoderSpec, enc_name: str) -> None:
    """bundle.json's copies of the streaming and feature settings must equal the encoder's metadata."""
    ours = streaming_settings(spec)
    streaming = _get(manifest, "streaming", BUNDLE_JSON, dict)
    features = _get(manifest, "features", BUNDLE_JSON, dict)
    low, high = spec.features.mel_range()
    pairs = [(f"streaming.{k}", streaming.get(k), v) for k, v in ours.items()]
    pairs += [(f"features.{k}", features.get(k), v) for k, v in spec.features.to_dict().items()]
    pairs += [("features.low_freq", features.get("low_freq"), low)]
    pairs += [("features.high_freq", features.get("high_freq"), high)]
    for key, theirs, value in pairs:
        if theirs != value:
            raise BundleError(f"{BUNDLE_JSON} and {enc_name} disagree on {key}: {theirs!r} vs {value!r}")


def load_bundle(
    path: str | os.PathLike,
    precision: str | None = None,
    providers: str | list[str] = "auto",
    threads: int = 0,
    verify: bool = True,
) -> Bundle:
    """Opens and checks a bundle folder.

    Args:
        path: the folder with bundle.json.
        precision: "fp32" or "int8"; None takes the first of bundle.json's `precisions`.
        providers: a preference for `select_providers` ("auto", "cpu", "cuda") or a provider list.
        threads: onnxruntime intra-op threads per session (0: onnxruntime's default).
        verify: check every used file's sha256 (sizes are always checked).

    Raises:
        BundleError: see the module docstring; the message names the file.
    """
    folder = Path(path)
    meta_path = folder / BUNDLE_JSON
    if not meta_path.is_file():
        raise BundleError(f"{BUNDLE_JSON}: missing from {folder}")
    try:
        manifest = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{BUNDLE_JSON}: not valid JSON ({e})") from e
    if not isinstance(manifest, dict):
        raise BundleError(f"{BUNDLE_JSON}: not a JSON object")
    if _get(manifest, "format", BUNDLE_JSON) != BUNDLE_FORMAT:
        raise BundleError(f"{BUNDLE_JSON}: format {manifest['format']!r}, this runtime reads {BUNDLE_FORMAT}")
    kind = _get(manifest, "kind", BUNDLE_JSON, str)
    if kind not in KINDS:
        raise BundleError(f"{BUNDLE_JSON}: kind {kind!r}, this runtime runs {' and '.join(map(repr, KINDS))} bundles")
    precisions = _get(manifest, "precisions", BUNDLE_JSON, list)
    precision = precision or (precisions[0] if precisions else "fp32")
    if precision not in precisions:
        raise BundleError(f"{BUNDLE_JSON}: no {precision!r} files (precisions: {precisions})")
    heads = _get(manifest, "heads", BUNDLE_JSON, list)
    if not heads:
        raise BundleError(f"{BUNDLE_JSON}: no heads")
    files = _Files(folder, _get(manifest, "files", BUNDLE_JSON, dict), verify)
    provider_list = select_providers(providers) if isinstance(providers, str) else list(providers)

    enc_name = _get(_get(manifest, "encoder", BUNDLE_JSON, dict), precision, f"{BUNDLE_JSON} encoder", str)
    encoder = _session(files.path(enc_name, "encoder"), enc_name, provider_list, threads)
    spec = _encoder_spec(encoder, enc_name, manifest)
    _check_against_manifest(manifest, spec, enc_name)
    if "cmm" in manifest and (
        listed := _get(_get(manifest, "cmm", BUNDLE_JSON, dict), "languages", "cmm", list)
    ) != list(spec.cmm_languages):
        raise BundleError(f"{BUNDLE_JSON} cmm languages {listed} but {enc_name} says {list(spec.cmm_languages)}")
    enc_meta = _Meta(encoder, enc_name)
    loaded = [_load_head(h, i, precision, files, spec, enc_meta, provider_list, threads) for i, h in enumerate(heads)]
    if len({h.language for h in loaded}) != len(loaded):
        raise BundleError(f"{BUNDLE_JSON}: two heads for one language: {[h.language for h in loaded]}")
    lid = _load_lid(manifest, precision, files, spec, enc_meta, provider_list, threads)
    lms = _load_lms(manifest, files, loaded)
    punctuators = _load_punctuators(manifest, files, threads)
    talkers = _load_talkers(manifest, files, spec)
    return Bundle(
        path=folder,
        name=_get(manifest, "name", BUNDLE_JSON, str),
        kind=kind,
        languages=[h.language for h in loaded],
        precision=precision,
        spec=spec,
        encoder=encoder,
        heads=loaded,
        manifest=manifest,
        lid=lid,
        lms=lms,
        punctuators=punctuators,
        talkers=talkers,
    )
