"""Models users already have: icefall's sherpa-onnx streaming transducers (zipformer2, lstm) imported and served.

Each family is tested on a tiny random model built to its exact ONNX contract (tests/_sherpa_models.py): `parley
import-sherpa` writes its bundle.json, Parley's runtime decodes it batched and sherpa-onnx decodes it stream by stream,
and both must give the same tokens, text and timestamps; the server serves it behind the usual protocol.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from export.sherpa import decode_whole, result_token_ids
from parley.features import compute_fbank
from server.bundle import load_bundle
from server.encoders import init_state, stack_states, unstack_states, zipformer2_states
from server.sherpa_import import SHERPA_FEATURES, find_models, import_sherpa
from server.sherpa_import import main as import_main
from server.tokens import TokenTable
from server.transducer import StreamingTransducer, transcribe, transcribe_many
from tests._sherpa_models import (
    DECODE_CHUNK_LEN,
    PIECES,
    ZIPFORMER2_META,
    T,
    build_sherpa_model,
    lstm_state_shapes,
    zipformer2_state_shapes,
)
from tests.test_export import SR, synthetic_audio

FAMILIES = ("zipformer2", "lstm")
FRAME_S = 0.04  # one encoder frame: 4 fbank frames of 10 ms


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict[str, Path]:
    """family -> its imported bundle folder."""
    root = tmp_path_factory.mktemp("sherpa")
    out = {}
    for family in FAMILIES:
        source = build_sherpa_model(root / f"{family}-src", family)
        out[family] = import_sherpa(source, root / family, name=f"tiny-{family}", language="en")
    return out


def _model(folder: Path) -> StreamingTransducer:
    return StreamingTransducer(load_bundle(folder, providers="cpu", threads=1))


def _padded_audio(seconds: float, seed: int) -> tuple[np.ndarray, int]:
    """Audio plus silence such that sherpa-onnx (which runs a step when more than T frames wait) runs as many steps as
    Parley (when T frames wait): the frames past the last window must not fill another step exactly."""
    audio = synthetic_audio(seconds, seed)
    for pad_frames in range(30, 30 + DECODE_CHUNK_LEN):
        x = np.concatenate([audio, np.zeros(pad_frames * SR // 100, dtype=np.float32)])
        frames = compute_fbank(x, SR, SHERPA_FEATURES).shape[0]
        if (frames - T) % DECODE_CHUNK_LEN:
            return x, (frames - T) // DECODE_CHUNK_LEN + 1
    raise AssertionError("unreachable")


def _sherpa(folder: Path, family: str, x: np.ndarray):
    """sherpa-onnx on the original files, configured as its users do: defaults, greedy search, the model type."""
    sherpa_onnx = pytest.importorskip("sherpa_onnx")
    rec = sherpa_onnx.OnlineRecognizer.from_transducer(
        tokens=str(folder / "tokens.txt"),
        encoder=str(folder / "encoder.onnx"),
        decoder=str(folder / "decoder.onnx"),
        joiner=str(folder / "joiner.onnx"),
        num_threads=1,
        decoding_method="greedy_search",
        model_type=family,
    )
    return rec.get_result_all(decode_whole(rec, x, SR))


@pytest.mark.parametrize("family", FAMILIES)
def test_import_writes_a_bundle_read_from_the_metadata(imported, family: str) -> None:
    folder = imported[family]
    manifest = json.loads((folder / "bundle.json").read_text())
    assert manifest["model"]["family"] == family and manifest["precisions"] == ["fp32"]
    assert manifest["features"]["high_freq"] == -400.0 and "bpe" not in manifest["heads"][0]
    assert manifest["streaming"]["T"] == T and manifest["streaming"]["decode_chunk_len"] == DECODE_CHUNK_LEN
    b = load_bundle(folder, providers="cpu", threads=1)
    s = b.spec
    assert (s.family, s.window, s.shift, s.chunk, s.subsampling, s.chunk_ms) == (family, T, 16, 4, 4, 160)
    shapes = zipformer2_state_shapes(1) if family == "zipformer2" else lstm_state_shapes(1)
    assert [(st.input, st.shape, st.batch_axis) for st in s.states] == shapes
    head = b.heads[0]
    assert (head.blank_id, head.max_symbols_per_frame, head.start_context, head.tokens) == (0, 1, (-1, 0), PIECES)
    assert isinstance(head.sp, TokenTable)


@pytest.mark.parametrize("family", FAMILIES)
def test_parley_batched_and_sherpa_onnx_decode_alike(imported, family: str) -> None:
    """Three streams of different lengths in one batch (states stacked and split along each tensor's batch axis)
    against sherpa-onnx one stream at a time: the same tokens, text and timestamps."""
    folder = imported[family]
    model = _model(folder)
    clips = [_padded_audio(seconds, seed) for seconds, seed in ((2.0, 0), (1.3, 1), (2.6, 2))]
    ours = transcribe_many(model, [x for x, _ in clips], SR, tail_padding_ms=0)
    tokens = model.heads[0].head.tokens
    for (x, n_chunks), one in zip(clips, ours, strict=True):
        theirs = _sherpa(folder, family, x)
        frames = n_chunks * 4
        print(f"{family}: {len(one.tokens)} tokens in {frames} frames; {one.text!r}")
        assert one.chunks == n_chunks and 0 < len(one.tokens) < frames, "the model should emit on some frames only"
        assert result_token_ids(theirs.tokens, tokens) == one.tokens
        assert theirs.text.strip() == one.text
        assert np.allclose(theirs.timestamps, np.array(one.frames) * FRAME_S)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_chunk_depends_on_the_state_before_it(imported, family: str) -> None:
    model = _model(imported[family])
    feats = compute_fbank(synthetic_audio(1.0, 3), SR, SHERPA_FEATURES)
    first, second = feats[None, :T], feats[None, DECODE_CHUNK_LEN : DECODE_CHUNK_LEN + T]
    _, after_first = model.encode(first, model.init_state(1))
    fresh, _ = model.encode(second, model.init_state(1))
    carried, _ = model.encode(second, after_first)
    diff = float(np.abs(fresh - carried).max())
    assert diff > 1e-3, f"the second chunk's output ignores the state (max difference {diff:g})"


def test_zipformer2_states_stack_on_their_batch_axes() -> None:
    specs = zipformer2_states(ZIPFORMER2_META, 80)
    rng = np.random.default_rng(0)
    states = [init_state(specs, 1) for _ in range(3)]
    for s in states:
        for t in s.tensors:
            t[...] = rng.integers(0, 100, t.shape) if t.dtype == np.int64 else rng.standard_normal(t.shape)
    batch = stack_states(states)
    assert [t.shape for t in batch.tensors] == [shape for _, shape, _ in zipformer2_state_shapes(3)]
    for a, b in zip(states, unstack_states(batch), strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(a.tensors, b.tensors, strict=True))


def test_the_server_serves_an_imported_model(imported, tmp_path) -> None:
    from tests.test_server import START, STOP, exchange, running, wire

    bundles = tmp_path / "bundles"
    bundles.mkdir()
    for family, folder in imported.items():
        (bundles / family).symlink_to(folder)
    x = synthetic_audio(2.0, 1)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    with running(bundles, endpointing=False) as server:
        for family, folder in imported.items():
            msgs, code = asyncio.run(exchange(server.url, [{**START, "model": f"tiny-{family}"}, pcm, STOP]))
            assert msgs[0]["type"] == "ready" and msgs[0]["chunk_ms"] == 160 and code == 1000, msgs[0]
            finals = [m for m in msgs if m["type"] == "final"]
            expected = transcribe(_model(folder), wire(x), SR).text
            assert expected and " ".join(m["text"] for m in finals) == expected
            words = [w for m in finals for w in m["words"]]
            assert [w["word"] for w in words] == expected.split() and all(0 <= w["conf"] <= 1 for w in words)


def test_hotwords_reach_an_imported_model_that_writes_capitals(imported, tmp_path) -> None:
    """icefall's LibriSpeech-trained models write their pieces in capitals ("▁THE"): imported, a stream's hotwords and
    the server's are written in capitals for them (they were refused, and the server's silently left out)."""
    from server.biasing import HOTWORD_BOOST
    from server.engine import EngineConfig
    from server.plan import Adaptation, HeadPlan, InvalidOptionError, Planner

    source = shutil.copytree(imported["lstm"].parent / "lstm-src", tmp_path / "src")
    lines = (source / "tokens.txt").read_text(encoding="utf-8").splitlines()
    capitals = [line if line.startswith("<") else line.upper() for line in lines]  # "<blk> 0" stays, as icefall's
    (source / "tokens.txt").write_text("".join(f"{line}\n" for line in capitals), encoding="utf-8")
    bundle = load_bundle(import_sherpa(source, tmp_path / "upper", language="en"), providers="cpu", threads=1)
    table = bundle.heads[0].sp
    assert table.pieces[1:4] == ["▁THE", "▁A", "▁CAT"]
    config = EngineConfig(server_hotwords=(("the mat", None), ("zebra", None)))  # Z: no piece writes it
    planner = Planner(bundle, StreamingTransducer(bundle), config.hotwords)
    graph, _, speller = planner.adapt(HeadPlan(), Adaptation((("Cats", None),)))[0]
    assert graph is not None and speller is not None and speller.phrases == ["cats", "the mat"]
    for words in ("CATS", "THE MAT"):
        ids = table.encode(words)
        assert len(ids) == 2 and graph.score(ids) == 2 * HOTWORD_BOOST, (words, ids, graph.score(ids))
    with pytest.raises(InvalidOptionError, match="cannot write"):
        planner.adapt(HeadPlan(), Adaptation((("zebra", None),)))


def test_token_table_writes_text_as_sherpa_onnx_does() -> None:
    table = TokenTable(["<blk>", "▁he", "llo", "▁wor", "ld", "<0xE4>", "<0xBD>", "<0xA0>", "好", "▁"])
    assert table.decode([1, 2, 3, 4]) == "hello world"
    assert table.decode([5, 6, 7, 8]) == "你好"
    assert table.encode("hello  world") == [1, 2, 3, 4]
    assert table.encode("好") == [9, 8] and table.unk_id() == -1
    with pytest.raises(ValueError, match="no token covers 'q'"):
        table.encode("q")


def test_import_sherpa_command_and_its_errors(tmp_path, capsys) -> None:
    source = build_sherpa_model(tmp_path / "lstm", "lstm")
    (source / "encoder.int8.onnx").write_bytes((source / "encoder.onnx").read_bytes())
    assert find_models(source) == {
        "fp32": {"encoder": "encoder.onnx", "decoder": "decoder.onnx", "joiner": "joiner.onnx"},
        "int8": {"encoder": "encoder.int8.onnx", "decoder": "decoder.onnx", "joiner": "joiner.onnx"},
    }
    assert import_main([str(source), "--name", "mine"]) == 0
    assert "lstm transducer 'mine', 160 ms chunks, precisions fp32, int8" in capsys.readouterr().out
    assert load_bundle(source, "int8", providers="cpu").name == "mine"
    (source / "tokens.txt").unlink()
    assert import_main([str(source)]) == 1
    assert "no tokens.txt" in capsys.readouterr().err
    assert import_main([str(tmp_path / "nothing")]) == 1
    assert "not a folder" in capsys.readouterr().err
