import json
from dataclasses import replace

import torch

from models.nn.search import greedy_search, modified_beam_search
from models.nn.transducer import Joiner, ModelConfig, Transducer
from tests._tiny import TINY_ENCODER

TINY = ModelConfig(vocab_size=12, encoder=TINY_ENCODER, decoder_dim=16, joiner_dim=16)


def _scripted(frames: list[int], cfg: ModelConfig = TINY) -> tuple[Transducer, torch.Tensor]:
    """A model whose joiner emits `frames[t]` at frame t (0 = blank) with probability ~1, whatever the context.

    The encoder output is crafted directly: frame t is 1-hot at frames[t]; the joiner maps it to logits 20 * onehot.
    """
    model = Transducer(cfg).eval()
    V = cfg.vocab_size
    joiner = Joiner(V, TINY.decoder_dim, V, V)
    with torch.no_grad():
        joiner.encoder_proj.weight.copy_(torch.eye(V))
        joiner.encoder_proj.bias.zero_()
        joiner.decoder_proj.weight.zero_()
        joiner.decoder_proj.bias.zero_()
        joiner.output.weight.copy_(20 * torch.eye(V))
        joiner.output.bias.zero_()
    model.joiner = joiner
    enc = torch.nn.functional.one_hot(torch.tensor([frames]), V).float()  # (1, T, V)
    return model, enc


def test_greedy_and_beam_follow_the_joiner() -> None:
    frames = [0, 3, 0, 0, 7, 7, 0, 2, 9, 0, 5, 0]
    model, enc = _scripted(frames)
    lens = torch.tensor([len(frames)])
    g = greedy_search(model, enc, lens, max_symbols_per_frame=1)[0]
    b = modified_beam_search(model, enc, lens, beam=4)[0]
    target = [t for t in frames if t]
    assert g.tokens == target and g.frames == [i for i, t in enumerate(frames) if t], (g.tokens, g.frames)
    assert b.tokens == target, f"beam {b.tokens} (log p {b.log_prob:.3f})"
    assert b.log_prob > -0.01
    # Frames past a stream's length are ignored.
    assert greedy_search(model, enc, torch.tensor([5]), max_symbols_per_frame=1)[0].tokens == [3, 7]


def test_greedy_emits_one_token_per_frame_for_a_modified_topology_model() -> None:
    frames = [0, 3, 0, 7, 0]  # the scripted joiner ignores the context: it would emit 3 again and again
    standard, enc = _scripted(frames)
    modified, _ = _scripted(frames, replace(TINY, rnnt_type="modified"))
    lens = torch.tensor([len(frames)])
    assert greedy_search(standard, enc, lens)[0].tokens == [3] * 4 + [7] * 4  # 4: a standard model's default
    assert greedy_search(modified, enc, lens)[0].tokens == [3, 7]
    assert greedy_search(modified, enc, lens, max_symbols_per_frame=2)[0].tokens == [3, 3, 7, 7]


def test_streaming_encoder_path_matches_masked_forward() -> None:
    torch.manual_seed(1)
    model = Transducer(TINY).eval()
    feats = torch.randn(2, 150, 80)
    lens = torch.tensor([150, 120])
    with torch.no_grad():
        full, full_lens = model.encoder(feats, lens, 4, 2)
        streamed, s_lens = model.encoder.stream(feats, lens, 4, 2)
    n = full.shape[1]
    diff = float((full[0] - streamed[0, :n]).abs().max())
    assert torch.equal(full_lens, s_lens) and diff < 1e-4, f"max abs diff {diff}"


def test_parley_eval_sweeps_chunks_and_blank_penalties(tiny_corpus, tmp_path) -> None:
    from models.eval.evaluate import main as eval_main
    from tests.test_export import EN_BPE, make_tiny_checkpoint

    ck = make_tiny_checkpoint(tmp_path / "tiny.pt")
    manifest = tiny_corpus / "en" / "test.jsonl"
    out = tmp_path / "eval"
    args = ["--checkpoint", str(ck), "--tokenizer", str(EN_BPE), "--manifest", str(manifest), "--threads", "1"]
    assert eval_main([*args, "--chunk-ms", "160", "full", "--blank-penalty", "0", "3", "--out", str(out)]) == 0
    rows = json.loads((out / "report.json").read_text())["results"]
    settings = [(r["chunk_ms"], r["blank_penalty"]) for r in rows]
    assert settings == [("160", 0.0), ("160", 3.0), ("full", 0.0), ("full", 3.0)]
    for r in rows:
        assert r["utterances"] == 6 and r["words"] > 0 and r["errors"] >= 0
    plain, penalized = (out / "test-160-greedy.txt").read_text(), (out / "test-160-greedy-bp3.txt").read_text()
    hyp_words = [sum(len(line.split()) - 2 for line in t.splitlines() if "\tHYP" in line) for t in (plain, penalized)]
    print(f"hypothesis words without / with blank penalty 3: {hyp_words}")
    assert hyp_words[1] > hyp_words[0], "a blank penalty makes the random model emit more"
    # Silence around every utterance: a row of its own, hypotheses in a file of their own.
    assert eval_main([*args, "--chunk-ms", "full", "--pad-ms", "500", "--out", str(out / "pad")]) == 0
    (row,) = json.loads((out / "pad" / "report.json").read_text())["results"]
    assert row["pad_ms"] == 500 and row["utterances"] == 6
    assert (out / "pad" / "test-full-greedy-pad500.txt").is_file()


def test_parley_eval_names_hypotheses_of_same_named_manifests_apart(tmp_path) -> None:
    """data/corpus-v2/en/test.jsonl and data/asterisk/en/test.jsonl in one run: two files, not one overwritten."""
    from models.eval.evaluate import manifest_labels

    a, b, c = (str(tmp_path / d / "en" / "test.jsonl") for d in ("corpus-v2", "asterisk", "corpus-v2"))
    dev = str(tmp_path / "corpus-v2" / "en" / "dev.jsonl")
    assert manifest_labels([a, dev]) == {a: "test", dev: "dev"}
    assert manifest_labels([a, b, dev]) == {a: "corpus-v2-test", b: "asterisk-test", dev: "dev"}
    labels = manifest_labels([a, b, dev, str(tmp_path / "x" / ".." / "corpus-v2" / "en" / "test.jsonl")])
    assert len(set(labels.values())) == 4  # the same file named twice: numbered
    assert manifest_labels([c]) == {c: "test"}
