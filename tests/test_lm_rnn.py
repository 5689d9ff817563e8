"""The LSTM LM: training (models/train/lm_lstm.py), its ONNX export in sherpa-onnx's RNN-LM interface, and the
runtime's batched, cached scoring (server/lm_rnn.py) against PyTorch."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from models.nn.lstm_lm import LstmLmConfig
from models.train.lm_lstm import export_onnx, perplexity, train_lstm
from server.lm_rnn import RnnLM

V = 12


def _sentences(n: int, seed: int) -> list[list[int]]:
    """Counting sequences (3, 4, 5, ... wrapping within 3..9): every next token is predictable."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        start = rng.randint(0, 6)
        out.append([3 + (start + j) % 7 for j in range(rng.randint(2, 7))])
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    torch.set_num_threads(1)
    cfg = LstmLmConfig(vocab_size=V, embed_dim=16, hidden_size=24, num_layers=2, dropout=0.0)
    lm, info = train_lstm(_sentences(200, 0), cfg, steps=120, lr=1e-2, progress=False)
    path = tmp_path_factory.mktemp("lm") / "lm.onnx"
    export_onnx(lm, path, {"tokenizer_sha256": "x"})
    return lm, info, path


def test_training_learns_the_sequences(trained: tuple) -> None:
    lm, info, _ = trained
    held_out = _sentences(50, 1)
    ppl = perplexity(lm, held_out)
    # 8 choices after <s> or at the end, the next number otherwise: far below the 12-way uniform
    assert ppl < 4.0, ppl
    assert info["parameters"] == sum(p.numel() for p in lm.parameters())


def test_onnx_runtime_matches_pytorch_batched_and_cached(trained: tuple) -> None:
    lm, _, path = trained
    rnn = RnnLM.load(path)
    assert (rnn.vocab_size, rnn.boundary_id, rnn.num_layers, rnn.hidden_size) == (V, 0, 2, 24)
    histories = [[], [3], [3, 4], [5, 6, 7], [3, 4, 5, 6, 7, 8, 9]]
    got = rnn.log_probs_batch(histories)  # (5, V), computed in batched steps
    assert got.shape == (5, V) and got.dtype == np.float32
    with torch.no_grad():
        for h, row in zip(histories, got, strict=True):
            logp, _, _ = lm(torch.tensor([[0, *h]]), *lm.init_state(1))
            diff = float(np.abs(logp[0, -1].numpy() - row).max())
            assert diff < 1e-4, f"history {h}: ONNX vs PyTorch differ by {diff}"
    assert np.allclose(np.exp(got).sum(-1), 1.0, atol=1e-4)
    # the cache gives the same numbers, alone or in another batch; the predictable next token wins
    again = RnnLM.load(path).log_probs_batch([[3, 4], [5, 6, 7]])
    assert np.abs(again - got[[2, 3]]).max() < 1e-5
    assert int(got[2].argmax()) == 5 and int(got[3].argmax()) == 8
    full = rnn.sentence_log_prob([3, 4, 5])
    by_hand = float(got[0][3] + got[1][4] + got[2][5] + rnn.log_probs([3, 4, 5])[0])
    assert abs(full - by_hand) < 1e-4


def test_sherpa_metadata_and_bad_files(trained: tuple, tmp_path: Path) -> None:
    import onnx

    _, _, path = trained
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["num_layers"] == "2" and meta["hidden_size"] == "24" and meta["sos_id"] == "0"
    assert [i.name for i in onnx.load(str(path)).graph.input] == ["x", "h", "c"]
    bad = tmp_path / "bad.onnx"
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.save(model, str(bad))
    with pytest.raises(ValueError, match="not an RNN LM"):
        RnnLM.load(bad)
    assert json.dumps(meta)  # plain strings


def test_a_file_onnxruntime_cannot_load_is_a_value_error(tmp_path: Path) -> None:
    (tmp_path / "lm.onnx").write_bytes(b"garbage" * 10)
    with pytest.raises(ValueError, match=r"lm\.onnx: onnxruntime cannot load it"):
        RnnLM.load(tmp_path / "lm.onnx")


def test_lm_train_adds_an_lstm_that_parley_and_sherpa_onnx_fuse(tmp_path: Path) -> None:
    """`parley lm train --type lstm` puts an ONNX LSTM into a bundle; the runtime loads it as the stream's LM and
    consults it in beam search; sherpa-onnx loads the same file and its output changes with it."""
    import shutil

    import sherpa_onnx  # noqa: F401  (a dev dependency: the parity tests need it too)

    from export.sherpa import decode_whole, settling_silence, sherpa_recognizer
    from models.data.espeak import synthesize
    from models.train import lm_ngram
    from parley.resample import resample
    from server.bundle import load_bundle
    from server.transducer import LmFusion, StreamingTransducer, transcribe

    bundle = tmp_path / "en-small"
    shutil.copytree(Path(__file__).resolve().parents[1] / "bundles" / "en-small", bundle)
    text = tmp_path / "zoo.txt"
    text.write_text("\n".join(["the zebra and the yak"] * 40 + ["a yak a zebra"] * 40) + "\n")
    small = ["--embed-dim", "16", "--hidden-size", "24", "--num-layers", "1", "--steps", "80", "--lr", "2e-2"]
    args = ["train", "--text", str(text), "--bundle", str(bundle), "--name", "zoo"]
    assert lm_ngram.main([*args, "--type", "lstm", *small]) == 0
    entry = next(e for e in json.loads((bundle / "bundle.json").read_text())["lms"] if e["name"] == "zoo")
    assert entry["kind"] == "lstm" and entry["file"] == "lm-zoo.onnx" and "order" not in entry
    loaded = load_bundle(bundle, providers="cpu", threads=1)
    lm = loaded.lms["zoo"]
    assert isinstance(lm.lm, RnnLM) and lm.describe()["kind"] == "lstm"
    # it learned the text: after "the" (and <s>), the pieces of "zebra" are likely, far above the uniform 1/V
    sp_ids = (
        __import__("sentencepiece").SentencePieceProcessor(model_file=str(bundle / "bpe.model")).encode("the zebra")
    )
    logp = lm.lm.log_probs_batch([sp_ids[:1]])[0]
    assert logp[sp_ids[1]] > np.log(10 / lm.lm.vocab_size), logp[sp_ids[1]]

    syn = synthesize("set a timer for ten minutes", voice="en-us")
    audio = resample(syn.samples, syn.sample_rate, 16000)
    model = StreamingTransducer(loaded)
    plain = transcribe(model, audio, 16000, search="beam").text
    fused = transcribe(model, audio, 16000, search="beam", fusion=LmFusion(lm.lm, 3.0, 0.0)).text
    assert len(lm.lm._cache) > 3, "the beam search asked the LSTM about its hypotheses"
    assert fused != plain, (plain, fused)

    def sherpa(**kw) -> str:
        rec = sherpa_recognizer(bundle, "int8", method="modified_beam_search", **kw)
        padded = np.concatenate([audio, settling_silence(loaded.manifest["streaming"])])
        return rec.get_result(decode_whole(rec, padded, 16000)).strip().lower()

    assert sherpa() != sherpa(lm=bundle / "lm-zoo.onnx", lm_scale=3.0)

    # auto: both trained on 90 % of the text and measured on the rest; the kept one is written down
    many = tmp_path / "many.txt"
    many.write_text("\n".join(f"the zebra and the yak number {i % 7}" for i in range(600)) + "\n")
    assert lm_ngram.main(["train", "--text", str(many), "--bundle", str(bundle), "--name", "zoo", *small]) == 0
    entry = next(e for e in json.loads((bundle / "bundle.json").read_text())["lms"] if e["name"] == "zoo")
    assert entry["dev_sentences"] == 60 and entry["train_sentences"] == 540
    assert {"ngram_dev_perplexity", "lstm_dev_perplexity"} <= set(entry) and entry["chosen"] == entry["kind"]
    assert load_bundle(bundle, providers="cpu", threads=1).lms["zoo"].kind == entry["kind"]
    assert not list(bundle.glob(".lm-*")), "no temporary file left"
