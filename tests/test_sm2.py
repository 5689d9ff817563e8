"""SM² on the PyTorch side: the multi-head model, the streaming LID, tasks, training stages, BLEU, lag, evaluation.

A tiny three-language corpus (en, de, zh; a few utterances each, built with the real corpus builder) trains a tiny
model for a few steps: what is checked is that every part runs and does what it promises (the encoder stays frozen,
the LID is causal, the scores are computed right), not that anything is learned.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from export.bundle import main as export_main
from models.eval.bleu import corpus_bleu, tokenize_13a, tokenize_zh, tokenizer_for
from models.eval.evaluate_sm2 import frames_available
from models.eval.evaluate_sm2 import main as eval_sm2_main
from models.eval.lag import LagStats, emission_time, output_units, word_lags
from models.nn.checkpoint import init_from, load_model
from models.nn.lid import IGNORE, StreamingLID, causal_mean, restricted_argmax
from models.nn.search import greedy_search
from models.nn.transducer import ModelConfig, Transducer
from models.train.tasks import MultiTaskDataset, Task, TaskBatchSampler, parse_tasks
from models.train.train import TrainConfig, train
from tests._tiny import TINY_ENCODER, tiny_train_config

ROOT = Path(__file__).resolve().parents[1]
LANG_DIR = ROOT / "models" / "lang"
LANGS = ("en", "de", "zh")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """About 12 s of train audio per language for en, de, zh, two dev and three test utterances each."""
    from models.data.augment import AugmentConfig
    from models.data.corpus import CorpusConfig, build_corpus

    out = tmp_path_factory.mktemp("corpus-ml")
    cfg = CorpusConfig(languages=LANGS, hours=0.003, dev=2, test=3, test_unseen=0, augment=AugmentConfig.disabled())
    build_corpus(out, cfg, jobs=2)
    return out


def _multi(**kw) -> ModelConfig:
    return ModelConfig(
        heads={"en": 20, "zh": 30},
        encoder=TINY_ENCODER,
        decoder_dim=16,
        joiner_dim=24,
        lid_languages=["en", "zh"],
        **kw,
    )


# ---- The model ----


def test_config_is_one_head_or_many() -> None:
    with pytest.raises(ValueError, match="not both or neither"):
        ModelConfig(vocab_size=20, heads={"en": 20})
    with pytest.raises(ValueError, match="not both or neither"):
        ModelConfig()
    with pytest.raises(ValueError, match="multi-head"):
        ModelConfig(vocab_size=20, lid_languages=["en", "de"])
    cfg = _multi()
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    # A checkpoint config from before multi-head models (no heads, no LID keys) still builds the same model.
    old = {
        k: v
        for k, v in ModelConfig(vocab_size=20, encoder=TINY_ENCODER).to_dict().items()
        if k in ("vocab_size", "encoder", "decoder_dim", "context_size", "joiner_dim", "ctc_weight")
    }
    single = Transducer.from_config_dict(old)
    assert not single.cfg.multi_head and single.lid is None and single.head_names == []
    names = set(single.state_dict())
    assert {"decoder.embedding.weight", "joiner.output.weight", "ctc_output.weight"} <= names
    assert not any(n.startswith(("heads.", "lid.")) for n in names)


def test_multi_head_forward_trains_only_the_head_asked_for() -> None:
    torch.manual_seed(0)
    model = Transducer(_multi())
    assert model.head_names == ["en", "zh"] and model.vocab_size("zh") == 30
    feats, lens = torch.randn(2, 120, 80), torch.tensor([120, 90])
    targets, target_lens = torch.randint(3, 30, (2, 4)), torch.tensor([4, 2])
    loss, info = model(
        feats, lens, targets, target_lens, 4, 2, head="zh", languages=torch.tensor([1, IGNORE]), lid_weight=0.5
    )
    assert torch.isfinite(loss) and {"rnnt", "ctc", "lid"} <= set(info)
    loss.backward()
    assert model.heads["zh"].joiner.output.weight.grad is not None
    assert model.heads["en"].joiner.output.weight.grad is None, "the en head took part in a zh batch"
    assert model.lid.net.weight.grad is not None and model.encoder.layers[0].ff1.net[0].weight.grad is not None
    # Translation tasks may leave CTC out; the single head's loss is what it always was.
    _, info = model(feats, lens, targets[:, :3] % 20, target_lens.clamp(max=3), head="en", use_ctc=False)
    assert "ctc" not in info and "lid" not in info
    with pytest.raises(KeyError):
        model.head("fr")
    enc, enc_lens = model.encoder(feats, lens, 4, 2)
    for h in model.head_names:
        assert len(greedy_search(model, enc, enc_lens, head=h)) == 2


def test_lid_is_causal_and_learns_from_every_prefix() -> None:
    torch.manual_seed(0)
    lid = StreamingLID(d_model=8, languages=3, hidden=6).requires_grad_(False)
    enc = torch.randn(2, 10, 8)
    out = lid(enc)
    assert out.shape == (2, 10, 3)
    changed = enc.clone()
    changed[:, 6:] = torch.randn(2, 4, 8) * 5  # frames after t = 5
    diff = float((lid(changed)[:, :6] - out[:, :6]).abs().max())
    assert diff == 0.0, f"frames after t changed the decision at t by {diff}"
    assert float((lid(changed)[:, 6:] - out[:, 6:]).abs().max()) > 0
    x = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [2.0, 4.0]]])
    assert torch.allclose(causal_mean(x), torch.tensor([[[1.0, 0.0], [2.0, 1.0], [2.0, 2.0]]]))
    # The loss counts valid frames only and ignores utterances without a language.
    loss = lid.loss(enc, torch.tensor([10, 4]), torch.tensor([2, IGNORE]))
    expected = torch.nn.functional.cross_entropy(out[0], torch.full((10,), 2))
    assert torch.allclose(loss, expected), (loss, expected)
    assert float(lid.loss(enc, torch.tensor([10, 4]), torch.tensor([IGNORE, IGNORE]))) == 0.0
    scores = torch.tensor([[0.1, 0.9, 0.5]])
    assert int(restricted_argmax(scores)) == 1 and int(restricted_argmax(scores, [0, 2])) == 2


# ---- Tasks ----


def test_tasks_and_their_batches(corpus: Path) -> None:
    from models.data.manifest import read_manifest
    from models.train.dataset import DurationBatchSampler, UtteranceDataset

    assert Task.parse("de:en") == Task("de", "en") and Task("zh", "zh").is_caption
    for bad in ("de", "de:", ":en", "de:en:fr"):
        with pytest.raises(ValueError):
            Task.parse(bad)
    with pytest.raises(ValueError, match="repeated"):
        parse_tasks(["de:en", "de:en"])
    utts = [u for lang in LANGS for u in read_manifest(corpus / lang / "train.jsonl")]
    de_en = Task("de", "en")
    sel = de_en.select(utts)
    assert sel and all(u.language == "de" for u in sel)
    assert de_en.text_of(sel[0]) == sel[0].translations["en"] and Task("de", "de").text_of(sel[0]) == sel[0].text
    sets = [
        UtteranceDataset(t.select(utts), lambda s: [3] * len(s.split()), t.text_of)
        for t in parse_tasks(["en:en", "de:en", "zh:en"])
    ]
    ds = MultiTaskDataset(sets)
    samplers = [DurationBatchSampler(d.durations(), 6.0, seed=1) for d in sets]
    sampler = TaskBatchSampler(samplers, ds.offsets, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == sum(len(s) for s in samplers)
    assert sorted(i for b in batches for i in b) == list(range(len(ds))), "every utterance of every task once"
    for b in batches:
        assert len({ds.task_of(i) for i in b}) == 1, "a batch mixes tasks"
    assert [ds.task_of(b[0]) for b in batches] != sorted(ds.task_of(b[0]) for b in batches), "tasks not interleaved"
    # One task: exactly its sampler's batches (the single-head recipe is unchanged).
    assert list(TaskBatchSampler(samplers[:1], [0], seed=1)) == list(samplers[0])


# ---- Training: stage 1, then language expansion on a frozen encoder ----


def _cfg(corpus: Path, exp: Path, **kw) -> TrainConfig:
    settings = dict(
        train=[str(corpus / lang / "train.jsonl") for lang in LANGS],
        dev=[str(corpus / lang / "dev.jsonl") for lang in LANGS],
        decoder_dim=16,
        joiner_dim=24,
        max_seconds=8.0,
        warmup_steps=2,
        checkpoint_every=50,
        dev_utts=2,
        augment=False,
        lang_dir=str(LANG_DIR),
        lid_languages=list(LANGS),
    )
    return tiny_train_config(corpus, kw.pop("tokenizer", ""), exp, **{**settings, **kw})


@pytest.fixture(scope="module")
def stages(corpus: Path, tmp_path_factory) -> tuple[Path, Path]:
    """Stage 1 (en, de heads: captions and X -> en, with LID) and stage 2 (a zh head, encoder frozen)."""
    root = tmp_path_factory.mktemp("sm2-exp")
    one = _cfg(corpus, root / "stage1", epochs=2, heads=["en", "de"], tasks=["en:en", "de:de", "de:en", "zh:en"])
    train(one)
    two = _cfg(
        corpus,
        root / "stage2",
        epochs=1,
        heads=["en", "de", "zh"],
        tasks=["en:zh", "de:zh", "zh:zh"],
        freeze_encoder=True,
        init=str(root / "stage1" / "last.pt"),
    )
    train(two)
    return root / "stage1" / "last.pt", root / "stage2" / "last.pt"


def test_stage_one_trains_every_task_with_the_lid(stages) -> None:
    first, _ = stages
    model, ck = load_model(first)
    assert model.head_names == ["en", "de"] and model.cfg.lid_languages == list(LANGS)
    assert set(ck["tokenizers"]) == {"en", "de"}
    log = [r for r in ck["state"]["log"] if "loss" in r]
    assert {r["task"] for r in log} == {"en:en", "de:de", "de:en", "zh:en"}
    assert all(math.isfinite(r["loss"]) and r["lid"] > 0 for r in log)
    assert all(("ctc" in r) == (r["task"] in ("en:en", "de:de")) for r in log), "CTC only on caption tasks"
    dev = [r for r in ck["state"]["log"] if "dev_tasks" in r]
    assert dev and set(dev[-1]["dev_tasks"]) == {"en:en", "de:de", "de:en", "zh:en"}
    stats = model.encoder.subsampling.mean
    assert float(stats.abs().sum()) > 0, "feature statistics were not set"


def test_language_expansion_leaves_the_encoder_and_lid_unchanged(stages) -> None:
    first, second = stages
    a, _ = load_model(first)
    b, ck = load_model(second)
    assert b.head_names == ["en", "de", "zh"]
    sa, sb = a.state_dict(), b.state_dict()
    frozen = [k for k in sa if k.startswith(("encoder.", "lid.", "heads.en.", "heads.de."))]
    moved = [k for k in frozen if not torch.equal(sa[k], sb[k])]
    assert not moved, f"changed in the frozen stage: {moved[:5]}"
    assert {r["task"] for r in ck["state"]["log"] if "loss" in r} == {"en:zh", "de:zh", "zh:zh"}
    fresh = Transducer(b.cfg)
    assert any(not torch.equal(fresh.state_dict()[k], sb[k]) for k in sb if k.startswith("heads.zh.")), "zh head idle"


def test_init_head_maps_a_single_head_checkpoint_onto_a_head(tmp_path) -> None:
    single = Transducer(ModelConfig(vocab_size=20, encoder=TINY_ENCODER, decoder_dim=16, joiner_dim=24))
    torch.save({"model": single.state_dict()}, tmp_path / "en.pt")
    multi = Transducer(_multi())
    n, fresh = init_from(multi, tmp_path / "en.pt", head="en")
    assert n == len(single.state_dict())
    assert torch.equal(multi.heads["en"].joiner.output.weight, single.joiner.output.weight)
    assert torch.equal(multi.encoder.layers[0].attn.qkv.weight, single.encoder.layers[0].attn.qkv.weight)
    assert any(k.startswith("heads.zh.") for k in fresh) and any(k.startswith("lid.") for k in fresh)


def test_bad_task_settings_are_refused(corpus: Path, tmp_path) -> None:
    with pytest.raises(ValueError, match="without a head"):
        train(_cfg(corpus, tmp_path / "a", heads=["en"], tasks=["de:zh"]))
    with pytest.raises(ValueError, match="no training utterances"):
        train(_cfg(corpus, tmp_path / "b", heads=["en"], tasks=["fr:en"]))
    with pytest.raises(ValueError, match="need a multi-head"):
        train(_cfg(corpus, tmp_path / "c", tokenizer=str(LANG_DIR / "en" / "bpe.model")))


# ---- Scores ----


def test_bleu_matches_known_values() -> None:
    ref = "the cat is on the mat"
    assert corpus_bleu([ref], [ref]).score == pytest.approx(100.0)
    # Hand-computed: precisions 5/6, 3/5, 1/4, and no 4-gram match: exp smoothing gives 1 / (2 * 3).
    b = corpus_bleu(["the cat sat on the mat"], [ref])
    assert b.correct == [5, 3, 1, 0] and b.total == [6, 5, 4, 3]
    expected = math.exp((math.log(500 / 6) + math.log(60) + math.log(25) + math.log(100 / 6)) / 4)
    assert b.score == pytest.approx(expected) and b.score == pytest.approx(37.99, abs=0.01)
    # A short hypothesis pays the brevity penalty exp(1 - 6/4).
    short = corpus_bleu(["the cat is on"], [ref])
    assert short.brevity_penalty == pytest.approx(math.exp(1 - 6 / 4)) and short.precisions[0] == 100.0
    assert corpus_bleu(["dog"], [ref]).score == 0.0 and corpus_bleu([""], [ref]).score == 0.0
    # Corpus level: statistics are summed before the geometric mean.
    both = corpus_bleu([ref, "the cat sat on the mat"], [ref, ref])
    assert both.correct == [11, 8, 5, 3] and both.score == pytest.approx(
        math.exp(sum(math.log(100 * c / t) for c, t in zip([11, 8, 5, 3], [12, 10, 8, 6], strict=True)) / 4)
    )
    assert tokenize_13a('He said "hi", then left.') == 'He said " hi " , then left .'
    assert tokenize_13a("3.5 and 1,000 but a.b") == "3.5 and 1,000 but a . b"
    assert tokenize_zh("今天天气很好 ok") == "今 天 天 气 很 好 ok"
    assert tokenizer_for("zh") == "zh" and tokenizer_for("de") == "13a"
    # Chinese is scored on characters: one wrong character of five.
    zh = corpus_bleu(["今天天气好"], ["今天天气很好"], "zh")
    assert zh.correct[0] == 5 and zh.total[0] == 5 and zh.ref_len == 6


def test_translation_lag() -> None:
    assert emission_time(0, 8) == pytest.approx((32 + 3) * 0.01)
    assert emission_time(9, 8) == pytest.approx((64 + 3) * 0.01)
    pieces = ["<blk>", "<cc>", "<unk>", "▁hel", "lo", "▁world", "你好", "▁"]
    assert output_units([3, 4, 5], [2, 5, 9], pieces, "en") == [5, 9]
    assert output_units([6, 7, 2], [1, 4, 6], pieces, "zh") == [1, 1]
    # Two source words, four output units: word 1 is covered by unit 2, word 2 by unit 4.
    assert word_lags([1.0, 2.0], [0.5, 1.5, 2.5, 3.0]) == [0.5, 1.0]
    assert word_lags([1.0], []) == []
    stats = LagStats()
    stats.add([1.0, 2.0], [0.5, 1.5, 2.5, 3.0])
    stats.add([1.0], [])
    assert stats.mean == pytest.approx(0.75) and stats.median == pytest.approx(0.75) and stats.skipped == 1
    assert frames_available(1.0, 8) == 24 and frames_available(2.0, 8) == 48 and frames_available(1.0, -1) == 24


def test_evaluation_report(stages, corpus: Path, tmp_path, capsys) -> None:
    _, second = stages
    out = tmp_path / "eval"
    args = ["--checkpoint", str(second), "--data", str(corpus), "--chunk-ms", "160", "--restrict", "en,de"]
    assert eval_sm2_main([*args, "--out", str(out), "--lang-dir", str(LANG_DIR), "--threads", "1"]) == 0
    report = json.loads((out / "report.json").read_text())
    rows = {(r["source"], r["head"]): r for r in report["results"]}
    assert set(rows) == {(s, h) for s in LANGS for h in LANGS}
    assert all(rows[(s, s)]["kind"] == "caption" and "wer" in rows[(s, s)] for s in LANGS)
    # Stage 2 trained en:zh, de:zh, zh:zh; stage 1 (its --init) en:en, de:de, de:en, zh:en; the rest is zero-shot.
    zero = {k for k, r in rows.items() if r.get("zero_shot")}
    assert zero == {("en", "de"), ("zh", "de")}, zero
    assert all(0 <= r["bleu"] <= 100 and "lag_mean_s" in r for r in report["results"] if r["kind"] == "translation")
    lid = {r["source"]: r for r in report["lid"]}
    assert set(lid) == set(LANGS) and all(0 <= lid[s]["acc_1s"] <= 1 for s in LANGS)
    subsets = {(r["subset"], r["source"]) for r in report["restricted"]}
    assert subsets == {("en,de,zh", "en"), ("en,de,zh", "de"), ("en,de,zh", "zh"), ("en,de", "en"), ("en,de", "de")}
    assert (out / "test-de-en.txt").read_text().count("HYP") == 3
    assert "LID accuracy" in capsys.readouterr().out
    # The bundle's card shows every table of the report.
    bundle = tmp_path / "bundle"
    args = ["--checkpoint", str(second), "--name", "t", "--out", str(bundle), "--lang-dir", str(LANG_DIR)]
    assert export_main([*args, "--eval-report", str(out / "report.json")]) == 0
    card = (bundle / "README.md").read_text()
    assert f"| test | de | en |  | {rows[('de', 'en')]['bleu']:.1f} |" in card, card
    assert f"| test | zh | {lid['zh']['acc_1s'] * 100:.2f}% |" in card, card
    assert "| test | en,de | de |" in card and "WER oracle" in card, card


# ---- Configurable multilingual model: training with random language selections ----


def test_language_selections_hold_the_spoken_language_and_every_size() -> None:
    import random

    from models.nn.cmm import sample_language_masks

    spoken = [i % 4 for i in range(4000)]
    masks = sample_language_masks(spoken, 4, random.Random(0))
    assert masks.shape == (4000, 4) and set(masks.unique().tolist()) == {0.0, 1.0}
    assert all(masks[b, s] == 1 for b, s in enumerate(spoken)), "a selection without its spoken language"
    sizes = torch.bincount(masks.sum(1).long(), minlength=5)[1:] / 4000
    assert float((sizes - 0.25).abs().max()) < 0.03, f"subset sizes not uniform in 1..4: {sizes.tolist()}"
    # Given the size, the other languages are uniform: each non-spoken language is in about half the selections.
    others = masks[torch.tensor(spoken) == 0][:, 1:].mean(0)
    assert float((others - 0.5).abs().max()) < 0.05, others.tolist()


def test_cmm_training_runs_and_trains_the_experts(corpus: Path, tmp_path) -> None:
    from dataclasses import replace

    enc = replace(TINY_ENCODER, cmm_languages=list(LANGS), cmm_rank=0, cmm_every=2)
    cfg = _cfg(corpus, tmp_path / "cmm", epochs=1, max_steps=4, heads=["en", "de"], tasks=["en:en", "de:de", "zh:en"])
    train(replace(cfg, encoder=enc))
    model, ck = load_model(tmp_path / "cmm" / "last.pt")
    assert model.encoder.cmm_languages == list(LANGS) and sorted(model.encoder.experts) == ["1"]
    assert ck["model_config"]["encoder"]["cmm_languages"] == list(LANGS)
    w = model.encoder.experts["1"].down.weight
    assert float(w.detach().abs().max()) > 0, "the experts (zero at the start) got no gradient"
    log = [r for r in ck["state"]["log"] if "loss" in r]
    assert len(log) == 4 and all(math.isfinite(r["loss"]) for r in log)
    assert [r for r in ck["state"]["log"] if "dev_tasks" in r], "no dev decoding (with every language selected)"
    # eval-sm2's restrictions select the subset's experts, beside the universal (all-experts) WER
    out = tmp_path / "cmm-eval"
    args = ["--checkpoint", str(tmp_path / "cmm" / "last.pt"), "--data", str(corpus), "--chunk-ms", "160"]
    assert eval_sm2_main([*args, "--restrict", "en,de", "--out", str(out), "--lang-dir", str(LANG_DIR)]) == 0
    restricted = json.loads((out / "report.json").read_text())["restricted"]
    rows = {(r["subset"], r["source"]): r for r in restricted}
    assert rows[("en,de", "de")]["cmm_experts"] == "en,de" and rows[("en,de", "en")]["cmm_experts"] == "en,de"
    captioned = [r for r in restricted if r["source"] in ("en", "de")]  # the sources with a head of their own
    assert captioned and all(r["wer_oracle_all_experts"] is not None for r in captioned)
    with pytest.raises(ValueError, match="no CMM expert"):
        bad = _cfg(corpus, tmp_path / "bad", heads=["en", "de"], tasks=["en:en", "de:de", "zh:en"])
        train(replace(bad, encoder=replace(enc, cmm_languages=["en", "de"])))
