"""Checkpoint averaging (models/train/average.py)."""

from pathlib import Path

import pytest
import torch

from models.nn.checkpoint import load_model, save_checkpoint
from models.nn.transducer import ModelConfig, Transducer
from models.train.average import average_checkpoints, main
from tests._tiny import TINY_ENCODER


def _checkpoint(path: Path, seed: int, step: int, vocab: int = 20) -> tuple[Path, Transducer]:
    torch.manual_seed(seed)
    model = Transducer(ModelConfig(vocab_size=vocab, encoder=TINY_ENCODER, decoder_dim=16, joiner_dim=16))
    state = {"step": step, "epoch": 0, "batch": step, "best_wer": 0.5, "log": [], "train_seconds": 1.0}
    return save_checkpoint(path, model, {"lr": 1e-3}, "bpe.model", state, optimizer={"x": 1}), model


def test_the_mean_of_each_weight_and_the_last_ones_metadata(tmp_path: Path) -> None:
    (a, ma), (b, mb), (c, mc) = (
        _checkpoint(tmp_path / f"{n}.pt", s, s * 100) for n, s in (("a", 1), ("b", 2), ("c", 3))
    )
    ck = average_checkpoints([a, b, c])
    for name, t in mc.state_dict().items():
        want = (ma.state_dict()[name] + mb.state_dict()[name] + t) / 3 if t.is_floating_point() else t
        assert torch.allclose(ck["model"][name], want, atol=1e-6), name
    assert not torch.equal(ck["model"]["joiner.output.weight"], mc.state_dict()["joiner.output.weight"])
    assert ck["state"]["step"] == 300 and ck["optimizer"] == {} and ck["tokenizer"] == "bpe.model"
    assert [x["step"] for x in ck["averaged"]] == [100, 200, 300]
    # the CLI writes a checkpoint that loads like any other
    assert main(["--checkpoints", str(a), str(b), str(c), "--out", str(tmp_path / "avg.pt")]) == 0
    model, loaded = load_model(tmp_path / "avg.pt")
    assert torch.equal(model.state_dict()["joiner.output.weight"], ck["model"]["joiner.output.weight"])
    assert loaded["averaged"] == ck["averaged"]


def test_refuses_one_checkpoint_other_models_and_overwriting(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a, _ = _checkpoint(tmp_path / "a.pt", 1, 100)
    b, _ = _checkpoint(tmp_path / "b.pt", 2, 200, vocab=30)
    with pytest.raises(ValueError, match="at least two"):
        average_checkpoints([a])
    with pytest.raises(ValueError, match="another model's config"):
        average_checkpoints([a, b])
    warm = tmp_path / "warm.pt"
    torch.save({"model": {"joiner.output.weight": torch.zeros(3, 3)}, "from_bundle": "x"}, warm)
    with pytest.raises(ValueError, match="other tensors"):
        average_checkpoints([warm, a])
    with pytest.raises(ValueError, match="no model config"):
        average_checkpoints([a, warm])
    for args, why in (
        (["--checkpoints", str(a), str(a), "--out", str(a)], "must not be one of the checkpoints"),
        (["--checkpoints", str(a), str(tmp_path / "none.pt"), "--out", str(tmp_path / "o.pt")], "no checkpoint at"),
        (["--checkpoints", str(a), str(b), "--out", str(tmp_path / "o.pt")], "another model's config"),
    ):
        with pytest.raises(SystemExit):
            main(args)
        assert why in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()


def test_a_warm_start_from_a_bundle_averages_with_the_run_that_started_from_it(tmp_path: Path) -> None:
    """A soup of the bundle's weights (no config, no training-only heads) and a fine-tune of them."""
    run, model = _checkpoint(tmp_path / "run.pt", 2, 300)
    torch.manual_seed(5)
    start = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    lacking = "joiner.output.bias"  # stands for a head a bundle does not hold
    del start[lacking]
    warm = tmp_path / "init.pt"
    torch.save({"model": start, "from_bundle": "en-open", "bundle_training": {}}, warm)
    ck = average_checkpoints([warm, run])
    w = model.state_dict()["joiner.output.weight"]
    assert torch.allclose(ck["model"]["joiner.output.weight"], (w + start["joiner.output.weight"]) / 2, atol=1e-6)
    assert torch.equal(ck["model"][lacking], model.state_dict()[lacking]), "only the run has it"
    assert ck["model_config"] == torch.load(run, weights_only=False)["model_config"]
    assert [x["step"] for x in ck["averaged"]] == [-1, 300]


def test_a_soup_s_ingredients_are_recorded_and_listed_on_the_card(tmp_path: Path) -> None:
    from export.bundle import _soup_card_lines, training_summary

    run, model = _checkpoint(tmp_path / "run.pt", 2, 300)
    warm = tmp_path / "init.pt"
    torch.save({"model": model.state_dict(), "from_bundle": "bundles/en-open", "bundle_training": {}}, warm)
    ck = average_checkpoints([warm, run])
    assert ck["averaged"][0] == {"path": str(warm), "step": -1, "from_bundle": "en-open"}
    assert set(ck["averaged"][1]) == {"path", "step", "train", "train_hours", "init"}
    summary = training_summary(ck, "pytest")
    assert summary["averaged"] == ck["averaged"]
    lines = _soup_card_lines(summary["averaged"])
    assert lines[0].startswith("- the weights are the element-wise mean of 2 checkpoints")
    assert "the bundle en-open" in lines[1] and f"{run}: step 300" in lines[2]
    assert _soup_card_lines([]) == [] and "averaged" not in training_summary(torch.load(run, weights_only=False), "x")


def test_a_soup_of_a_soup_records_what_the_inner_one_averaged(tmp_path: Path) -> None:
    from export.bundle import _soup_card_lines

    a, _ = _checkpoint(tmp_path / "a.pt", 1, 100)
    b, _ = _checkpoint(tmp_path / "b.pt", 2, 200)
    c, _ = _checkpoint(tmp_path / "c.pt", 3, 300)
    inner = tmp_path / "inner.pt"
    torch.save(average_checkpoints([a, b]), inner)
    outer = average_checkpoints([inner, c])
    assert [x["path"] for x in outer["averaged"][0]["averaged"]] == [str(a), str(b)]
    assert "train" not in outer["averaged"][0], "not the inner soup's last run"
    lines = _soup_card_lines(outer["averaged"])
    assert "itself the mean of 2 checkpoints" in lines[1] and f"{c}: step 300" in lines[2]
