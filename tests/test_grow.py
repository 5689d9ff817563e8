from dataclasses import replace
from pathlib import Path

import pytest
import torch

from models.nn.checkpoint import init_from
from models.nn.encoder import PAD_LENGTH
from models.nn.transducer import ModelConfig, Transducer
from models.train.grow import BRANCH_OUTPUTS, grow_checkpoint, grow_state, insertion_points, main
from parley.contract import SUBSAMPLING
from tests._tiny import TINY_ENCODER


def _trained_like(layers: int, seed: int) -> Transducer:
    """A tiny model with no zero weights anywhere (random, as a trained one is), in eval mode."""
    torch.manual_seed(seed)
    model = Transducer(ModelConfig(vocab_size=20, encoder=replace(TINY_ENCODER, num_layers=layers)))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def test_insertion_points_spread_the_new_layers() -> None:
    assert insertion_points(8, 12) == [1, 3, 5, 7]
    assert insertion_points(2, 3) == [1]
    assert insertion_points(3, 9) == [0, 0, 1, 1, 2, 2]  # more than doubling: two after each
    assert insertion_points(8, 10) == [3, 7]
    for old, new in [(1, 4), (5, 7), (6, 16)]:
        points = insertion_points(old, new)
        assert len(points) == new - old and all(0 <= p < old for p in points)
    with pytest.raises(ValueError, match="more layers"):
        insertion_points(8, 8)


@pytest.mark.parametrize("layers", [3, 5])
def test_the_grown_model_computes_what_the_old_one_did_full_and_streaming(tmp_path: Path, layers: int) -> None:
    old = _trained_like(2, seed=layers)
    path = tmp_path / "old.pt"
    torch.save({"model": old.state_dict(), "from_bundle": "bundles/x", "bundle_training": {"steps": 7}}, path)
    grown_ck = grow_checkpoint(path, layers)
    assert grown_ck["grown"]["layers"] == [2, layers] and grown_ck["from_bundle"] == "bundles/x"
    torch.save(grown_ck, tmp_path / "grown.pt")

    new = Transducer(replace(old.cfg, encoder=replace(old.cfg.encoder, num_layers=layers))).eval()
    _, fresh = init_from(new, tmp_path / "grown.pt")
    assert not [k for k in fresh if k.startswith("encoder.")], fresh  # every encoder tensor came from the file
    chunk, left = 2, 2
    T = SUBSAMPLING * chunk * 6 + PAD_LENGTH
    x = torch.randn(2, T, 80)
    lengths = torch.tensor([T, T - 24])
    with torch.no_grad():
        a, la = old.encoder(x, lengths, chunk, left)
        b, lb = new.encoder(x, lengths, chunk, left)
        sa, _ = old.encoder.stream(x, lengths, chunk, left)
        sb, _ = new.encoder.stream(x, lengths, chunk, left)
    assert torch.equal(la, lb)
    assert float((a - b).abs().max()) < 1e-5 and float((sa - sb).abs().max()) < 1e-5
    assert float(a.abs().mean()) > 0.1  # not equal because both are zero


def test_new_layers_are_copies_with_silent_branches_and_they_learn() -> None:
    old = _trained_like(2, seed=0)
    state, points = grow_state(old.state_dict(), 3)
    assert points == [1]
    for name, v in old.state_dict().items():
        if name.startswith("encoder.layers.1."):
            new_name = name.replace("encoder.layers.1.", "encoder.layers.2.")
            silent = any(f".{b}." in name for b in BRANCH_OUTPUTS)
            assert torch.equal(state[new_name], torch.zeros_like(v) if silent else v), name
    # The zero output maps get a gradient at once, so the new layer does not stay the identity.
    new = Transducer(replace(old.cfg, encoder=replace(old.cfg.encoder, num_layers=3)))
    new.load_state_dict(state)
    T = SUBSAMPLING * 8 + PAD_LENGTH
    out, _ = new.encoder(torch.randn(1, T, 80), torch.tensor([T]), 2, 2)
    out.pow(2).sum().backward()
    for b in BRANCH_OUTPUTS:
        grad = new.encoder.layers[2].get_submodule(b).weight.grad
        assert grad is not None and float(grad.abs().max()) > 0, b


def test_errors_and_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="no encoder layers"):
        grow_state({"decoder.embedding.weight": torch.zeros(3, 2)}, 4)
    with pytest.raises(ValueError, match="experts"):
        grow_state({"encoder.experts.1.down.weight": torch.zeros(2, 2)}, 4)
    path = tmp_path / "old.pt"
    torch.save({"model": _trained_like(2, seed=1).state_dict()}, path)
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(path), "--layers", "2", "--out", str(tmp_path / "g.pt")])
    assert "more layers" in capsys.readouterr().err
    assert main(["--checkpoint", str(path), "--layers", "4", "--out", str(tmp_path / "g.pt")]) == 0
    assert "2 -> 4 encoder layers, new ones after old layers [0, 1]" in capsys.readouterr().out
    assert sum(k.endswith("ff1.net.3.weight") for k in torch.load(tmp_path / "g.pt")["model"]) == 4


def test_the_model_card_lineage_says_the_encoder_was_grown(tmp_path: Path) -> None:
    from export.bundle import _earlier_stages

    path = tmp_path / "old.pt"
    torch.save({"model": _trained_like(2, seed=2).state_dict(), "from_bundle": "bundles/en-open"}, path)
    torch.save(grow_checkpoint(path, 3), tmp_path / "grown.pt")
    stages = _earlier_stages({"init": str(tmp_path / "grown.pt")})
    assert stages[0]["from_bundle"] == "en-open" and stages[0]["grown"] == [2, 3]
