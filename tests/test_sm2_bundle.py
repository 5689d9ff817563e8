"""SM² bundles: export of a tiny random two-head model with its language identifier, PyTorch vs Parley's runtime vs
sherpa-onnx per head, and the server's multilingual streams (language, auto, translations, restriction, errors).

As in tests/test_export.py the model is untrained: the heads' blank logits are nudged so that some frames emit and
others do not, and <unk> is pushed down because sherpa-onnx reads it as blank.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from export.bundle import main as export_main
from export.onnx_export import read_metadata
from export.sherpa import decode_whole
from models.nn.checkpoint import load_model
from models.nn.encoder import EncoderConfig
from models.nn.search import greedy_search
from models.nn.transducer import ModelConfig, Transducer
from models.train.tokenizer import Tokenizer
from models.train.train import TrainConfig
from parley.contract import BLANK_ID, UNK_ID
from parley.features import compute_fbank
from server.bundle import load_bundle
from server.endpoint import EndpointConfig
from server.engine import Engine, EngineConfig
from server.messages import result_message
from server.plan import HeadPlan
from server.transducer import StreamingTransducer, transcribe
from tests._tiny import TINY_ENCODER, save_untrained_checkpoint
from tests.test_export import SETTINGS, SR, _padded_audio, _pytorch_encoder_out, _sherpa_ids, synthetic_audio
from tests.test_server import exchange, running, stream, wire

ROOT = Path(__file__).resolve().parents[1]
LANG_DIR = ROOT / "models" / "lang"
HEADS = ("en", "de")
LID = ("en", "de", "zh")  # zh is identified but has no head: "auto" never captions with it


def make_tiny_sm2_checkpoint(path: Path, seed: int = 0, encoder: EncoderConfig = TINY_ENCODER) -> Path:
    """A checkpoint in `models.train.train`'s format: a random tiny model with an en and a de head and an LID.

    With a CMM `encoder` (cmm_languages), its experts are randomized (they start at zero) so that they matter."""
    torch.manual_seed(seed)
    vocab = {h: Tokenizer(LANG_DIR / h / "bpe.model").vocab_size for h in HEADS}
    model = Transducer(
        ModelConfig(heads=vocab, encoder=encoder, decoder_dim=32, joiner_dim=40, lid_languages=list(LID))
    )
    with torch.no_grad():
        for p in model.encoder.experts.parameters():
            p.add_(0.3 * torch.randn_like(p))
    feats = torch.from_numpy(compute_fbank(synthetic_audio(2.0, 0), SR))
    model.encoder.subsampling.set_feature_stats(feats.mean(0), feats.std(0))
    with torch.no_grad():
        enc, _ = model.encoder(feats[None], torch.tensor([feats.shape[0]]), SETTINGS.chunk, SETTINGS.left_chunks)
        for q, h in zip((0.6, 0.75), HEADS, strict=True):  # the heads emit on different shares of the frames
            decoder, joiner, _ = model.head(h)
            dec = joiner.decoder_proj(decoder(torch.full((1, model.cfg.context_size), BLANK_ID)))
            logits = joiner(joiner.encoder_proj(enc[0]), dec)  # (T, V)
            joiner.output.bias[BLANK_ID] += (logits[:, BLANK_ID + 1 :].max(-1).values - logits[:, BLANK_ID]).quantile(q)
            joiner.output.bias[UNK_ID] -= 10.0
    cfg = TrainConfig(
        train=[],
        dev=[],
        tokenizer="",
        exp_dir=str(path.parent),
        encoder=encoder,
        heads=list(HEADS),
        tasks=["en:en", "de:de", "de:en"],
        lid_languages=list(LID),
    )
    tokenizers = {h: str(LANG_DIR / h / "bpe.model") for h in HEADS}
    return save_untrained_checkpoint(path, model, cfg, "", tokenizers=tokenizers)


def export_tiny_sm2_bundle(folder: Path, name: str = "tiny-sm2", encoder: EncoderConfig = TINY_ENCODER) -> Path:
    ck = make_tiny_sm2_checkpoint(folder / f"{name}.pt", encoder=encoder)
    out = folder / name
    args = ["--checkpoint", str(ck), "--name", name, "--out", str(out), "--int8", "--hardware", "pytest"]
    args += ["--chunk-ms", str(SETTINGS.chunk_ms), "--history-ms", str(SETTINGS.history_ms)]
    assert export_main(args) == 0
    return out


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sm2-bundles")
    folder = root / "bundles"
    folder.mkdir()
    export_tiny_sm2_bundle(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(bundles: Path) -> tuple[Transducer, StreamingTransducer]:
    model, _ = load_model(bundles / "tiny-sm2.pt")
    return model, StreamingTransducer(load_bundle(bundles / "tiny-sm2", providers="cpu", threads=1))


# ---- The bundle ----


def test_bundle_layout_and_metadata(bundles: Path, tiny) -> None:
    folder = bundles / "tiny-sm2"
    meta = json.loads((folder / "bundle.json").read_text())
    assert meta["kind"] == "sm2" and meta["languages"] == list(HEADS)
    assert meta["lid"] == {"model": {"fp32": "lid.onnx", "int8": "lid.int8.onnx"}, "languages": list(LID)}
    assert [h["decoder"]["fp32"] for h in meta["heads"]] == ["decoder-en.onnx", "decoder-de.onnx"]
    assert [h["tokens"] for h in meta["heads"]] == ["tokens-en.txt", "tokens-de.txt"]
    enc = read_metadata(folder / "encoder.onnx")
    assert enc["encoder_out_dim"] == str(TINY_ENCODER.d_model) and enc["joiner_dim"] == "40"
    assert read_metadata(folder / "lid.onnx")["lid_languages"] == "en,de,zh"
    assert read_metadata(folder / "decoder-de.onnx")["language"] == "de"
    assert read_metadata(folder / "joiner-de.onnx")["blank_penalty"] == "0.0"  # every head's joiner says its penalty
    assert "sherpa_onnx" in (folder / "README.md").read_text()
    _, rec = tiny
    assert rec.bundle.kind == "sm2" and [h.head.language for h in rec.heads] == list(HEADS)
    assert rec.spec.out_dim == TINY_ENCODER.d_model and rec.lid is not None and rec.lid.languages == list(LID)
    int8 = StreamingTransducer(load_bundle(folder, "int8", providers="cpu", threads=1))
    assert int8.lid is not None and len(int8.heads) == 2


@pytest.mark.parametrize(
    "extra",
    [
        ["--tokenizer", str(LANG_DIR / "en" / "bpe.model")],
        ["--language", "en"],
        ["--post-processing", "tsot"],
    ],
)
def test_single_head_options_are_refused_for_a_multi_head_checkpoint(
    bundles: Path, tmp_path: Path, capsys, extra: list[str]
) -> None:
    """A multi-head checkpoint's heads take their own tokenizers: `--tokenizer`, `--language` and a t-SOT
    post-processing would be ignored, so they are an error naming the option, and nothing is written."""
    out = tmp_path / "refused"
    args = ["--checkpoint", str(bundles / "tiny-sm2.pt"), "--name", "x", "--out", str(out), *extra]
    assert export_main(args) == 2
    err = capsys.readouterr().err
    assert "multi-head checkpoint" in err and extra[0] in err, err
    assert not out.exists()


def test_every_head_decodes_like_pytorch_and_the_lid_agrees(tiny) -> None:
    model, rec = tiny
    x, n_chunks = _padded_audio(3.0, 0)
    enc = _pytorch_encoder_out(model, x, n_chunks)
    lens = torch.tensor([enc.shape[1]])
    texts = set()
    for i, h in enumerate(HEADS):
        for max_symbols in (1, 4):
            ours = transcribe(rec, x, SR, head=i, tail_padding_ms=0, max_symbols_per_frame=max_symbols)
            theirs = greedy_search(model, enc, lens, max_symbols_per_frame=max_symbols, head=h)[0]
            assert ours.tokens == theirs.tokens and ours.frames == theirs.frames, f"head {h}, max {max_symbols}"
            assert 0 < len(ours.tokens) < max_symbols * enc.shape[1]
        texts.add(ours.text)
    assert len(texts) == 2, "the two heads should write different things"
    # lid.onnx on the streamed encoder output: its running mean equals PyTorch's causal LID.
    streamed = np.concatenate([out for _, out in rec.encode_streams([compute_fbank(x, SR)])], axis=1)  # (1, T, D)
    assert float(np.abs(streamed - enc.numpy()).max()) < 1e-4
    assert rec.lid is not None
    frame_logits = rec.lid.frame_logits(streamed)[0]  # (T, L)
    running = np.cumsum(frame_logits, 0) / np.arange(1, len(frame_logits) + 1)[:, None]
    with torch.no_grad():
        expected = model.lid(enc)[0].numpy()
    diff = float(np.abs(running - expected).max())
    assert diff < 1e-4, f"LID running mean differs from PyTorch by {diff}"


def _sherpa(folder: Path, head: str, x: np.ndarray):
    sherpa_onnx = pytest.importorskip("sherpa_onnx")
    rec = sherpa_onnx.OnlineRecognizer.from_transducer(
        tokens=str(folder / f"tokens-{head}.txt"),
        encoder=str(folder / "encoder.onnx"),
        decoder=str(folder / f"decoder-{head}.onnx"),
        joiner=str(folder / f"joiner-{head}.onnx"),
        num_threads=1,
        sample_rate=SR,
        feature_dim=80,
        high_freq=0.0,
        decoding_method="greedy_search",
    )
    return rec.get_result_all(decode_whole(rec, x, SR))


@pytest.mark.parametrize("seed", [0, 1])
def test_sherpa_onnx_loads_every_head_with_the_shared_encoder(bundles: Path, tiny, seed: int) -> None:
    _, rec = tiny
    x, _ = _padded_audio(3.0, seed)
    for i, h in enumerate(HEADS):
        ours = transcribe(rec, x, SR, head=i, tail_padding_ms=0, max_symbols_per_frame=1)
        theirs = _sherpa(bundles / "tiny-sm2", h, x)
        assert _sherpa_ids(theirs, rec.heads[i].head.tokens) == ours.tokens, f"head {h}"
        assert theirs.text.strip() == ours.text


# ---- The engine: plans and auto ----


def test_plans(tiny) -> None:
    _, rec = tiny
    engine = Engine(rec.bundle)
    assert engine.multilingual and engine.translate_languages == list(HEADS) and engine.auto_languages == list(HEADS)
    assert engine.plan("de", ["en"]) == HeadPlan(1, (), (("en", 0),), True)
    assert engine.plan(None).auto and engine.plan("auto").candidates == ((0, 0), (1, 1))
    assert engine.plan("auto", (), ["de"]).candidates == ((1, 1),)
    for language, translate, languages in (
        ("fr", (), ()),
        ("en", ["zh"], ()),
        ("auto", (), ["zh"]),
        ("en", (), ["de"]),
    ):
        with pytest.raises(ValueError):
            engine.plan(language, translate, languages)


def test_auto_switches_heads_and_redecodes_the_segment(tiny, monkeypatch) -> None:
    """A stubbed identifier says en for two chunks, then de: the caption becomes the de head's whole transcript."""
    _, rec = tiny
    one_segment = EngineConfig(endpoint=EndpointConfig(enabled=False))
    engine = Engine(load_bundle(rec.bundle.path, providers="cpu", threads=1), one_segment)
    lid = engine.model.lid
    assert lid is not None
    calls = []

    def stub(enc: np.ndarray) -> np.ndarray:
        calls.append(1)
        out = np.zeros((*enc.shape[:2], lid.num_languages), dtype=np.float32)
        out[..., 0 if len(calls) <= 2 else 1] = 1.0 if len(calls) <= 2 else 10.0
        return out

    monkeypatch.setattr(lid, "frame_logits", stub)
    x = synthetic_audio(3.0, 1)

    async def go() -> list[dict]:
        await engine.start()
        try:
            return [result_message(f) for f in await engine.recognize(x, SR, "greedy", engine.plan("auto", ["en"]))]
        finally:
            await engine.close()

    finals = asyncio.run(go())
    assert len(calls) > 3 and len(finals) == 1
    f = finals[0]
    assert f["language"] == "de" and f["text"] == transcribe(rec, x, SR, head=1).text
    assert f["translations"] == {"en": transcribe(rec, x, SR, head=0).text}


# ---- The server ----


@pytest.fixture(scope="module")
def server(bundles: Path):
    with running(bundles, endpointing=False) as r:
        yield r


START = {"type": "start", "sample_rate": SR, "encoding": "s16le"}


def test_stream_with_translations(server, tiny) -> None:
    _, rec = tiny
    x = synthetic_audio(3.0, 0)
    r = stream(server.url, x, chunk_ms=100, language="de", translate=["en"])
    assert r.ok and r.close_code == 1000, r.error
    msgs = [m.message for m in r.received]
    ready = msgs[0]
    assert ready["language"] == "de" and ready["translate"] == ["en"] and "languages" not in ready
    partials = [m for m in msgs if m["type"] == "partial"]
    finals = [m for m in msgs if m["type"] == "final"]
    assert partials and all(p["language"] == "de" and set(p["translations"]) == {"en"} for p in partials)
    assert len({p["translations"]["en"] for p in partials}) > 1, "the translation should update as it streams"
    assert len(finals) == 1
    w = wire(x)
    assert finals[0]["text"] == transcribe(rec, w, SR, head=1).text
    assert finals[0]["translations"] == {"en": transcribe(rec, w, SR, head=0).text}


def test_auto_stream_names_its_language(server, tiny) -> None:
    _, rec = tiny
    x = synthetic_audio(3.0, 1)
    r = stream(server.url, x, chunk_ms=100, language="auto", translate=["de", "en"])
    assert r.ok, r.error
    msgs = [m.message for m in r.received]
    assert msgs[0]["language"] == "auto" and msgs[0]["languages"] == list(HEADS)
    final = next(m for m in msgs if m["type"] == "final")
    head = list(HEADS).index(final["language"])
    w = wire(x)
    assert final["text"] == transcribe(rec, w, SR, head=head).text
    assert list(final["translations"]) == ["de", "en"]
    assert final["translations"][final["language"]] == final["text"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"language": "fr"}, "unsupported_option"),
        ({"translate": ["zh"]}, "unsupported_option"),
        ({"languages": ["zh"]}, "unsupported_option"),
        ({"language": "de", "languages": ["en", "de"]}, "invalid_value"),
    ],
)
def test_unsupported_options_are_refused(server, fields: dict, code: str) -> None:
    msgs, close = asyncio.run(exchange(server.url, [{**START, **fields}]))
    assert [m["code"] for m in msgs if m["type"] == "error"] == [code] and close == 1008


def test_models_and_transcribe(server, tiny) -> None:
    _, rec = tiny
    models = httpx.get(server.http + "/v1/models").json()["models"]
    assert models == [
        {
            "name": "tiny-sm2",
            "languages": list(HEADS),
            "translate": list(HEADS),
            "chunk_ms": SETTINGS.chunk_ms,
            "search": ["greedy", "beam"],
            "decoding": {"search": "greedy"},
            "lms": [],
            "auto": list(HEADS),
        }
    ]
    x = synthetic_audio(2.0, 2)
    body = np.round(np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    q = "?sample_rate=16000&encoding=s16le&language=auto&languages=en&translate=de"
    t = httpx.post(
        server.http + "/v1/transcribe" + q, content=body, headers={"content-type": "application/octet-stream"}
    )
    assert t.status_code == 200, t.text
    seg = t.json()["segments"][0]
    assert seg["language"] == "en" and seg["translations"] == {"de": transcribe(rec, wire(x), SR, head=1).text}


def test_start_languages_and_the_schema_of_multilingual_messages(server) -> None:
    from server import protocol as P
    from tests.test_protocol import DOCS, _check

    s = P.parse_start(json.dumps({**START, "language": "auto", "languages": ["en", "de"], "translate": ["zh"]}))
    assert s.language == "auto" and s.languages == ("en", "de") and s.translate == ("zh",)
    assert P.parse_start(json.dumps({**START, "languages": ["en"]})).language is None
    for bad in ({"languages": "en"}, {"languages": ["en", "en"]}, {"language": "de", "languages": ["de"]}):
        with pytest.raises(P.ProtocolError) as e:
            P.parse_start(json.dumps({**START, **bad}))
        assert e.value.code == P.INVALID_VALUE
    defs = json.loads((DOCS / "protocol.schema.json").read_text())["$defs"]
    x = synthetic_audio(1.5, 3)
    start = {**START, "language": "auto", "languages": ["de", "en"], "translate": ["en"]}
    r = stream(server.url, x, chunk_ms=100, language="auto", languages=["de", "en"], translate=["en"])
    assert r.ok, r.error
    _check(defs["start"], start, defs)
    msgs = [m.message for m in r.received]
    assert msgs[0]["languages"] == ["de", "en"]
    for m in msgs:
        _check(defs[m["type"]], m, defs)
        if m["type"] in ("partial", "final"):
            assert m["language"] in ("de", "en") and isinstance(m["translations"]["en"], str)
