import itertools
import json
import math
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from models.nn.checkpoint import load_model
from models.train.train import TrainConfig, draw_attention_limits, lr_at, model_config, rnnt_loss_scales, train
from tests._tiny import TINY_ENCODER, tiny_train_config

ROOT = Path(__file__).resolve().parents[1]
TINY = TINY_ENCODER


def _cfg(corpus: Path, tokenizer: Path, exp: Path, **kw) -> TrainConfig:
    return tiny_train_config(corpus, tokenizer, exp, **kw)


def test_tiny_cpu_training_learns_checkpoints_and_resumes(tiny_corpus, tiny_tokenizer, tmp_path) -> None:
    cfg = _cfg(tiny_corpus, tiny_tokenizer, tmp_path / "exp", epochs=4, augment=False)
    first = train(cfg)
    exp = Path(cfg.exp_dir)
    for name in ("last.pt", "best.pt", "epoch-1.pt", "curve.png", "log.jsonl", "train_config.json"):
        assert (exp / name).exists(), f"{name} missing after training"
    log = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) == first["step"] and first["dev_wer"] is not None
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, f"loss did not fall: {losses[:3]} ... {losses[-3:]}"
    # Each step logs its batch's audio and the training seconds so far (the throughput on any hardware).
    steps = [r for r in log if "loss" in r]
    assert all(r["audio_s"] > 0 for r in steps)
    assert all(b["seconds"] >= a["seconds"] for a, b in itertools.pairwise(steps)) and steps[-1]["seconds"] > 0
    # Asking for one more epoch resumes from last.pt instead of starting over.
    second = train(replace(cfg, epochs=5))
    assert second["step"] > first["step"]
    model, ck = load_model(exp / "last.pt")
    assert ck["model_config"]["encoder"]["d_model"] == TINY.d_model and ck["state"]["epoch"] == 5
    assert sum(p.numel() for p in model.parameters()) > 0


def test_bf16_mixed_precision_training_learns_and_keeps_fp32_weights(tiny_corpus, tiny_tokenizer, tmp_path) -> None:
    cfg = _cfg(tiny_corpus, tiny_tokenizer, tmp_path / "exp", epochs=3, augment=False, amp="bf16")
    train(cfg)
    log = [json.loads(line) for line in (Path(cfg.exp_dir) / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert all(map(math.isfinite, losses))
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, f"loss did not fall: {losses[:3]} ... {losses[-3:]}"
    model, ck = load_model(Path(cfg.exp_dir) / "last.pt")
    assert ck["train_config"]["amp"] == "bf16"
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    with pytest.raises(ValueError, match="amp 'fp8'"):
        train(replace(cfg, amp="fp8"))


def test_training_from_a_feature_cache_builds_it_once_and_learns(tiny_corpus, tiny_tokenizer, tmp_path) -> None:
    cache = tmp_path / "fbank"
    cfg = _cfg(tiny_corpus, tiny_tokenizer, tmp_path / "exp", epochs=3, feature_cache=str(cache))
    train(cfg)
    n_train = len((tiny_corpus / "en" / "train.jsonl").read_text().splitlines())
    assert len((cache / "index.jsonl").read_text().splitlines()) == n_train
    log = [json.loads(line) for line in (Path(cfg.exp_dir) / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, f"loss did not fall: {losses[:3]} ... {losses[-3:]}"
    stamp = (cache / "feats.f16").stat().st_mtime_ns
    train(replace(cfg, exp_dir=str(tmp_path / "exp2"), epochs=1))  # a second run reuses the cache as it is
    assert (cache / "feats.f16").stat().st_mtime_ns == stamp


def test_learning_rate_schedule_and_dynamic_chunks() -> None:
    cfg = TrainConfig([], [], "", "", lr=1e-3, warmup_steps=10)
    assert lr_at(0, 100, cfg) < lr_at(9, 100, cfg) == 1e-3
    assert lr_at(99, 100, cfg) < 0.1 * 1e-3 + 1e-9
    import random

    rng = random.Random(0)
    drawn = {draw_attention_limits(rng, cfg) for _ in range(200)}
    assert (-1, -1) in drawn and len({c for c, _ in drawn}) == len(cfg.chunk_sizes) + 1


def test_kept_steps_are_saved_and_average(tiny_corpus, tiny_tokenizer, tmp_path) -> None:
    from models.train.average import average_checkpoints

    cfg = _cfg(tiny_corpus, tiny_tokenizer, tmp_path / "exp", max_steps=6, checkpoint_every=4, keep_steps=(3, 5, 6))
    train(cfg)
    exp = Path(cfg.exp_dir)
    assert sorted(p.name for p in exp.glob("step-*.pt")) == ["step-3.pt", "step-5.pt", "step-6.pt"]
    steps = [load_model(exp / f"step-{n}.pt")[1]["state"]["step"] for n in (3, 5, 6)]
    assert steps == [3, 5, 6]
    ck = average_checkpoints([exp / "step-3.pt", exp / "step-5.pt", exp / "step-6.pt"])
    w = [load_model(exp / f"step-{n}.pt")[0].state_dict()["joiner.output.weight"] for n in (3, 5, 6)]
    assert torch.allclose(ck["model"]["joiner.output.weight"], sum(w) / 3, atol=1e-6)
    from models.train.train import _parse

    base = ["--train", "t.jsonl", "--dev", "d.jsonl", "--tokenizer", "bpe.model", "--exp-dir", "exp"]
    assert _parse([*base, "--keep-steps", "6000", "7000"]).keep_steps == (6000, 7000)
    assert _parse(base).keep_steps == ()


def test_command_line_sets_the_encoder_dropout() -> None:
    from models.train.train import _parse

    base = ["--train", "t.jsonl", "--dev", "d.jsonl", "--tokenizer", "bpe.model", "--exp-dir", "exp"]
    assert _parse(base).encoder.dropout == TrainConfig([], [], "", "").encoder.dropout > 0
    assert _parse([*base, "--dropout", "0"]).encoder.dropout == 0.0


def test_pruned_modified_training_learns_and_keeps_its_topology(tiny_corpus, tiny_tokenizer, tmp_path) -> None:
    cfg = _cfg(
        tiny_corpus,
        tiny_tokenizer,
        tmp_path / "exp",
        epochs=3,
        augment=False,
        loss="pruned",
        prune_range=3,
        rnnt_type="modified",
        prune_warmup_steps=4,
    )
    train(cfg)
    log = [json.loads(line) for line in (Path(cfg.exp_dir) / "log.jsonl").read_text().splitlines()]
    steps = [r for r in log if "loss" in r]
    assert all(math.isfinite(r["loss"]) for r in steps) and all("simple" in r and "rnnt" in r for r in steps)
    # The total's weights change during the warm-up: the pruned loss itself must fall.
    losses = [r["rnnt"] for r in steps]
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, f"loss did not fall: {losses[:3]} ... {losses[-3:]}"
    model, ck = load_model(Path(cfg.exp_dir) / "last.pt")
    mc = ck["model_config"]
    assert (mc["loss"], mc["prune_range"], mc["rnnt_type"]) == ("pruned", 3, "modified")
    assert model.cfg.max_symbols_per_frame == 1 and model.joiner.simple_am_proj is not None


def test_pruned_loss_scales_warm_up_and_flags_reach_the_model_config() -> None:
    from models.train.train import _parse

    cfg = TrainConfig([], [], "", "", loss="pruned", simple_loss_scale=0.5, prune_warmup_steps=100)
    assert rnnt_loss_scales(0, cfg) == {"simple_scale": 1.0, "pruned_scale": 0.1}
    mid = rnnt_loss_scales(50, cfg)
    assert abs(mid["simple_scale"] - 0.75) < 1e-9 and abs(mid["pruned_scale"] - 0.55) < 1e-9
    assert rnnt_loss_scales(100, cfg) == rnnt_loss_scales(10_000, cfg) == {"simple_scale": 0.5, "pruned_scale": 1.0}
    assert rnnt_loss_scales(0, replace(cfg, prune_warmup_steps=0)) == {"simple_scale": 0.5, "pruned_scale": 1.0}
    assert rnnt_loss_scales(0, TrainConfig([], [], "", "")) == {}  # the full loss has no scales
    base = ["--train", "t.jsonl", "--dev", "d.jsonl", "--tokenizer", "bpe.model", "--exp-dir", "exp"]
    old = _parse(base)  # today's recipes are unchanged: full loss, standard topology
    assert (old.loss, old.rnnt_type) == ("full", "standard")
    new = _parse([*base, "--loss", "pruned", "--prune-range", "4", "--rnnt-type", "modified"])
    mc = model_config(new, 256)
    assert (mc.loss, mc.prune_range, mc.rnnt_type, mc.max_symbols_per_frame) == ("pruned", 4, "modified", 1)
    with pytest.raises(SystemExit):
        _parse([*base, "--rnnt-type", "constrained"])
    with pytest.raises(ValueError, match="prune_range"):
        model_config(replace(new, prune_range=1), 256)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_with_two_cpu_processes(tiny_corpus, tiny_tokenizer, tmp_path) -> None:
    exp = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "models.train.train",
        "--train",
        str(tiny_corpus / "en" / "train.jsonl"),
        "--dev",
        str(tiny_corpus / "en" / "dev.jsonl"),
        "--tokenizer",
        str(tiny_tokenizer),
        "--exp-dir",
        str(exp),
        "--epochs",
        "1",
        "--max-seconds",
        "8",
        "--d-model",
        "32",
        "--layers",
        "1",
        "--heads",
        "4",
        "--ff-dim",
        "64",
        "--subsampling-channels",
        "8",
        "--decoder-dim",
        "32",
        "--joiner-dim",
        "32",
        "--num-workers",
        "0",
        "--dev-utts",
        "2",
        "--threads",
        "1",
    ]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 process(es)" in r.stdout, r.stdout[-2000:]
    assert (exp / "last.pt").exists()
    ck = torch.load(exp / "last.pt", weights_only=False)
    assert ck["state"]["epoch"] == 1 and ck["state"]["step"] > 0


def test_an_epoch_with_fewer_batches_than_the_first_still_ends(tiny_corpus, tiny_tokenizer, tmp_path, monkeypatch):
    # Bucketing can give an epoch one batch fewer than epoch 0; training once took such an epoch for unfinished and
    # went round it forever. Here every epoch after the first loses its last batch.
    import models.train.train as train_module
    from models.train.dataset import DurationBatchSampler

    class Shrinking(DurationBatchSampler):
        passes = 0

        def _batches(self) -> list[list[int]]:
            batches = super()._batches()
            return batches[:-1] if self.epoch > 0 else batches

        def __iter__(self):
            Shrinking.passes += 1
            if Shrinking.passes > 20:
                raise RuntimeError("the epoch loop does not end")
            return super().__iter__()

    monkeypatch.setattr(train_module, "DurationBatchSampler", Shrinking)
    cfg = _cfg(tiny_corpus, tiny_tokenizer, tmp_path / "exp", epochs=3, augment=False)
    result = train(cfg)
    n0 = len(Shrinking(_durations(cfg), cfg.max_seconds, seed=cfg.seed)._batches())
    assert result["step"] == 3 * n0 - 2
    _, ck = load_model(Path(cfg.exp_dir) / "last.pt")
    assert ck["state"]["epoch"] == 3 and ck["state"]["batch"] == 0
    assert all((Path(cfg.exp_dir) / f"epoch-{e}.pt").exists() for e in (1, 2, 3))


def _durations(cfg: TrainConfig) -> list[float]:
    from models.data.manifest import read_manifest

    return [u.duration for m in cfg.train for u in read_manifest(m)]


def _write_manifest_lines(path: Path, lines: list[dict]) -> str:
    base = {"duration": 1.0, "language": "en", "translations": {}}
    path.write_text("".join(json.dumps({**base, **d}) + "\n" for d in lines))
    return str(path)


def test_training_refuses_text_that_is_not_normalized_before_any_work(tmp_path) -> None:
    """A hand-written manifest in upper case would train on <unk>s and score a meaningless dev WER."""
    train_m = _write_manifest_lines(tmp_path / "train.jsonl", [{"id": "a", "audio": "a.wav", "text": "set a timer"}])
    dev_m = _write_manifest_lines(tmp_path / "dev.jsonl", [{"id": "d", "audio": "d.wav", "text": "IT'S THE END."}])
    cfg = TrainConfig(train=[train_m], dev=[dev_m], tokenizer="no-tokenizer-needed", exp_dir=str(tmp_path / "exp"))
    with pytest.raises(ValueError, match=r"dev\.jsonl:1: the text of utterance 'd' is not normalized"):
        train(cfg)
    # t-SOT labels keep their channel changes: the check lets them through (this run then fails on its tokenizer).
    _write_manifest_lines(tmp_path / "dev.jsonl", [{"id": "d", "audio": "d.wav", "text": "hi <cc> yes"}])
    with pytest.raises(Exception, match="no-tokenizer-needed") as e:
        train(cfg)
    assert "not normalized" not in str(e.value)


def test_training_with_a_feature_cache_refuses_one_id_for_two_audio_files(tmp_path) -> None:
    spk1 = _write_manifest_lines(tmp_path / "spk1.jsonl", [{"id": "001", "audio": "spk1/001.wav", "text": "one"}])
    spk2 = _write_manifest_lines(tmp_path / "spk2.jsonl", [{"id": "001", "audio": "spk2/001.wav", "text": "two"}])
    cfg = TrainConfig(
        train=[spk1, spk2],
        dev=[spk1],
        tokenizer="no-tokenizer-needed",
        exp_dir=str(tmp_path / "exp"),
        feature_cache=str(tmp_path / "fbank"),
    )
    with pytest.raises(ValueError, match=r"spk2\.jsonl:1: utterance id '001' is already used at .*spk1\.jsonl:1"):
        train(cfg)
    assert not (tmp_path / "fbank").exists(), "refused before the cache was built"
