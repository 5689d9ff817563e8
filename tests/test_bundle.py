"""Bundle loading and the onnxruntime recognizer: broken bundles are refused with the file named; streams batch."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from export.bundle import file_entries
from export.onnx_export import add_metadata
from server.bundle import BundleError, load_bundle
from server.transducer import (
    GreedyState,
    StreamingTransducer,
    greedy_search,
    stack_states,
    transcribe,
    transcribe_many,
    unstack_states,
)
from tests.test_export import EN_BPE, SETTINGS, SR, export_tiny_bundle, synthetic_audio


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    return export_tiny_bundle(tmp_path_factory.mktemp("bundle"))


def _load(folder: Path, precision: str | None = None):
    return load_bundle(folder, precision, providers="cpu", threads=1)


def test_a_bundle_loads_with_every_setting_from_the_metadata(bundle_dir) -> None:
    b = _load(bundle_dir)
    assert b.name == "tiny-en" and b.precision == "fp32" and b.languages == ["en"]
    s = b.spec
    assert (s.chunk, s.left_context, s.window, s.shift) == (4, 16, 19, 16)
    assert (s.chunk_ms, s.history_ms, s.features.sample_rate, s.features.num_bins) == (160, 640, 16000, 80)
    head = b.heads[0]
    assert (head.vocab_size, head.context_size, head.blank_id, head.tokens[0]) == (256, 2, 0, "<blk>")
    assert _load(bundle_dir, "int8").precision == "int8"
    manifest = json.loads((bundle_dir / "bundle.json").read_text())
    assert manifest["training"]["hardware"] == "pytest" and manifest["measured"] == {"wer": []}
    card = (bundle_dir / "README.md").read_text()
    assert "# tiny-en" in card and manifest["files"]["encoder.onnx"]["sha256"] in card


def _rehash(folder: Path) -> None:
    """Rewrites bundle.json's file sizes and hashes, as if the broken files had been exported that way."""
    manifest = json.loads((folder / "bundle.json").read_text())
    manifest["files"] = file_entries(folder, list(manifest["files"]))
    (folder / "bundle.json").write_text(json.dumps(manifest))


def _edit_json(folder: Path, edit: Callable[[dict], None]) -> None:
    manifest = json.loads((folder / "bundle.json").read_text())
    edit(manifest)
    (folder / "bundle.json").write_text(json.dumps(manifest))


def _set_meta(name: str, **meta: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        add_metadata(folder / name, meta)
        _rehash(folder)

    return change


def _drop_meta(name: str, key: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        model = onnx.load(str(folder / name))
        kept = [(p.key, p.value) for p in model.metadata_props if p.key != key]
        del model.metadata_props[:]
        for k, v in kept:
            model.metadata_props.add(key=k, value=v)
        onnx.save(model, str(folder / name))
        _rehash(folder)

    return change


def _flip_byte(name: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        data = bytearray((folder / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (folder / name).write_bytes(bytes(data))

    return change


def _write(name: str, text: str, rehash: bool = True) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        (folder / name).write_text(text)
        if rehash:
            _rehash(folder)

    return change


def _drop_last_token(folder: Path) -> None:
    lines = (folder / "tokens.txt").read_text().splitlines()
    (folder / "tokens.txt").write_text("\n".join(lines[:-1]) + "\n")
    _rehash(folder)


def _rename_token(folder: Path) -> None:
    lines = (folder / "tokens.txt").read_text().splitlines()
    lines[100] = f"zz{lines[100]}"
    (folder / "tokens.txt").write_text("\n".join(lines) + "\n")
    _rehash(folder)


def _other_tokenizer(folder: Path) -> None:
    shutil.copyfile(EN_BPE.parents[1] / "de" / "bpe.model", folder / "bpe.model")
    _rehash(folder)


BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "no bundle.json": (lambda f: (f / "bundle.json").unlink(), r"^bundle\.json: missing"),
    "bundle.json not JSON": (_write("bundle.json", "{ not json", rehash=False), r"^bundle\.json: not valid JSON"),
    "bundle.json lacks heads": (lambda f: _edit_json(f, lambda m: m.pop("heads")), r"^bundle\.json: missing key"),
    "wrong format": (lambda f: _edit_json(f, lambda m: m.update(format=9)), r"^bundle\.json: format 9"),
    "decoder missing": (lambda f: (f / "decoder.onnx").unlink(), r"^decoder\.onnx: missing"),
    "joiner grew": (lambda f: (f / "joiner.onnx").open("ab").write(b"\0"), r"^joiner\.onnx: \d+ bytes, but"),
    "encoder changed": (_flip_byte("encoder.onnx"), r"^encoder\.onnx: sha256 differs"),
    "joiner not ONNX": (_write("joiner.onnx", "not a model"), r"^joiner\.onnx: onnxruntime cannot load"),
    "metadata key missing": (_drop_meta("encoder.onnx", "T"), r"^encoder\.onnx: metadata key 'T' missing"),
    "metadata not a number": (_set_meta("encoder.onnx", left_context="many"), r"^encoder\.onnx: metadata left_c"),
    "bundle.json vs encoder": (
        lambda f: _edit_json(f, lambda m: m["streaming"].update(chunk_ms=320)),
        r"^bundle\.json and encoder\.onnx disagree on streaming\.chunk_ms",
    ),
    "metadata vs graph": (_set_meta("encoder.onnx", num_encoder_layers="3"), r"^encoder\.onnx: input cached_attn"),
    "decoder vs joiner": (_set_meta("joiner.onnx", vocab_size="300"), r"^decoder\.onnx and joiner\.onnx disagree"),
    "encoder dim vs graph": (_set_meta("encoder.onnx", joiner_dim="64"), r"^encoder\.onnx: output encoder_out"),
    "decoder vs joiner dim": (_set_meta("decoder.onnx", joiner_dim="64"), r"^decoder\.onnx and joiner\.onnx disagree"),
    "other checkpoint": (_set_meta("joiner.onnx", checkpoint_sha256="0" * 64), r"^joiner\.onnx and encoder\.onnx"),
    "tokens.txt short": (_drop_last_token, r"^tokens\.txt: 255 tokens, but decoder\.onnx has vocab_size 256"),
    "tokens.txt garbled": (_write("tokens.txt", "<blk> 0\n<cc>\n"), r"^tokens\.txt:2: expected"),
    "tokens.txt vs bpe.model": (
        _rename_token,
        r"^bpe\.model: does not match tokens\.txt \(first difference at id 100\)",
    ),
    "other tokenizer": (_other_tokenizer, r"^bpe\.model: not the tokenizer decoder\.onnx was exported with"),
    "other frontend": (_set_meta("encoder.onnx", high_freq="-400"), r"^encoder\.onnx: metadata high_freq=-400"),
    "negative blank penalty": (
        lambda f: _edit_json(f, lambda m: m["heads"][0].update(blank_penalty=-1)),
        r"^bundle\.json heads\[0\]\.blank_penalty: -1, expected a number",
    ),
    "blank penalty not a number": (
        lambda f: _edit_json(f, lambda m: m["heads"][0].update(blank_penalty="high")),
        r"^bundle\.json heads\[0\]\.blank_penalty: 'high'",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_bundle_is_refused_naming_the_file(bundle_dir, tmp_path, case: str) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(bundle_dir, broken)
    change, message = BROKEN[case]
    change(broken)
    with pytest.raises(BundleError, match=message):
        _load(broken)


def test_a_missing_precision_is_refused(bundle_dir, tmp_path) -> None:
    fp32_only = tmp_path / "fp32"
    shutil.copytree(bundle_dir, fp32_only)
    _edit_json(fp32_only, lambda m: m.update(precisions=["fp32"]))
    with pytest.raises(BundleError, match=r"^bundle\.json: no 'int8' files"):
        _load(fp32_only, "int8")


def test_states_stack_and_unstack_across_streams(bundle_dir) -> None:
    rec = StreamingTransducer(_load(bundle_dir))
    rng = np.random.default_rng(0)
    states = [rec.init_state(1) for _ in range(3)]
    for s in states:
        s.cached_attn[:] = rng.standard_normal(s.cached_attn.shape)
        s.processed[:] = rng.integers(0, 100)
    batch = stack_states(states)
    assert batch.cached_attn.shape == (2, SETTINGS.left_context, 3, 32) and batch.batch == 3
    for a, b in zip(states, unstack_states(batch), strict=True):
        assert np.array_equal(a.cached_attn, b.cached_attn) and np.array_equal(a.processed, b.processed)


def test_batched_streams_decode_like_single_streams(bundle_dir) -> None:
    rec = StreamingTransducer(_load(bundle_dir))
    waves = [synthetic_audio(s, i) for i, s in enumerate((2.5, 1.2, 3.1))]
    for search in ("greedy", "beam"):
        together = transcribe_many(rec, waves, SR, search=search)
        alone = [transcribe(rec, w, SR, search=search) for w in waves]
        assert [t.tokens for t in together] == [t.tokens for t in alone], search
        assert [t.frames for t in together] == [t.frames for t in alone], search
        assert all(t.tokens for t in together)


def test_greedy_context_carries_across_chunks(bundle_dir) -> None:
    """Searching two chunks in one call or one at a time gives the same tokens."""
    rec = StreamingTransducer(_load(bundle_dir))
    head = rec.heads[0]
    enc = np.random.default_rng(1).standard_normal((2, 2 * SETTINGS.chunk, 32)).astype(np.float32)
    whole = [GreedyState.new(head) for _ in range(2)]
    greedy_search(head, enc, whole)
    split = [GreedyState.new(head) for _ in range(2)]
    for c in range(2):
        greedy_search(head, enc[:, c * SETTINGS.chunk : (c + 1) * SETTINGS.chunk], split)
    assert [s.hyp.tokens for s in whole] == [s.hyp.tokens for s in split]
    assert [s.hyp.frames for s in whole] == [s.hyp.frames for s in split]
    assert split[0].frames_done == 2 * SETTINGS.chunk


def test_text_drops_blanks_and_writes_channel_changes(bundle_dir) -> None:
    head = StreamingTransducer(_load(bundle_dir)).heads[0]
    sp = head.head.sp
    ids = [0, *sp.encode("set a timer"), 1, *sp.encode("for ten minutes"), 0]
    assert head.text(ids) == "set a timer <cc> for ten minutes"


def test_unknown_search_is_refused(bundle_dir) -> None:
    rec = StreamingTransducer(_load(bundle_dir))
    with pytest.raises(ValueError, match="unknown search"):
        transcribe(rec, np.zeros(SR, dtype=np.float32), SR, search="viterbi")


def test_an_int8_only_bundle_keeps_no_float_files_and_decodes_like_the_int8_variant(bundle_dir, tmp_path) -> None:
    from export.bundle import main as export_main

    out = tmp_path / "int8-only"
    args = ["--checkpoint", str(bundle_dir.parent / "tiny.pt"), "--tokenizer", str(EN_BPE), "--name", "tiny-en"]
    args += ["--out", str(out), "--precisions", "int8"]
    args += ["--chunk-ms", str(SETTINGS.chunk_ms), "--history-ms", str(SETTINGS.history_ms)]
    assert export_main(args) == 0
    assert sorted(p.name for p in out.glob("*.onnx")) == ["decoder.int8.onnx", "encoder.int8.onnx", "joiner.int8.onnx"]
    b = _load(out)
    assert b.precision == "int8" and json.loads((out / "bundle.json").read_text())["precisions"] == ["int8"]
    with pytest.raises(BundleError, match="no 'fp32' files"):
        _load(out, "fp32")
    audio = synthetic_audio(2.0, 3)
    ours = transcribe(StreamingTransducer(b), audio, SR)
    theirs = transcribe(StreamingTransducer(_load(bundle_dir, "int8")), audio, SR)
    assert ours.tokens == theirs.tokens


def test_a_head_limited_to_one_symbol_per_frame_is_decoded_so(tmp_path) -> None:
    """A modified-topology bundle says max_symbols_per_frame 1 (bundle.json, joiner metadata): greedy search then
    emits at most one token per encoder frame, as sherpa-onnx does; a bad value is refused."""
    from models.data.espeak import synthesize

    folder = tmp_path / "en-small"
    shutil.copytree(Path(__file__).resolve().parents[1] / "bundles" / "en-small", folder)
    syn = synthesize("set a timer for ten minutes and turn on the kitchen lights", voice="en-us", rate=260)
    default = transcribe(StreamingTransducer(_load(folder)), syn.samples, syn.sample_rate)
    assert _load(folder).heads[0].max_symbols_per_frame == 4
    _edit_json(folder, lambda d: d["heads"][0].update(max_symbols_per_frame=1))
    model = StreamingTransducer(_load(folder))
    assert model.heads[0].max_symbols_per_frame == 1
    one = transcribe(model, syn.samples, syn.sample_rate)
    assert len(set(one.frames)) == len(one.frames) > 5, one.frames
    assert len(set(default.frames)) < len(default.frames), "at this speed the standard model emits 2+ per frame"
    _edit_json(folder, lambda d: d["heads"][0].update(max_symbols_per_frame=0))
    with pytest.raises(BundleError, match="max_symbols_per_frame"):
        _load(folder)
