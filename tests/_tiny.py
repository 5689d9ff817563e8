"""Tiny model sizes shared by the tests: fast on CPU, big enough to exercise every code path."""

from dataclasses import asdict
from pathlib import Path

from models.data.augment import AugmentConfig
from models.data.corpus import CorpusConfig
from models.nn.checkpoint import save_checkpoint
from models.nn.encoder import EncoderConfig

# About 40 s of English train audio plus small dev/test sets, clean speech (the `tiny_corpus` fixture).
TINY_CORPUS = CorpusConfig(
    languages=("en",), hours=0.012, dev=6, test=6, test_unseen=6, seed=0, augment=AugmentConfig.disabled()
)

TINY_ENCODER = EncoderConfig(
    d_model=32,
    num_layers=2,
    num_heads=4,
    ff_dim=64,
    conv_kernel=5,
    subsampling_channels=8,
    rel_pos_clip=16,
    dropout=0.0,
)


def save_untrained_checkpoint(path: Path, model, cfg, tokenizer: str, **extra) -> Path:
    """Writes `model` (with TrainConfig `cfg`) as `parley train` would at step 0; `extra` adds top-level keys."""
    return save_checkpoint(path, model, asdict(cfg), tokenizer, **extra)


def tiny_train_config(corpus: Path, tokenizer: Path | str, exp: Path, **kw):
    """A `TrainConfig` that trains the tiny model on the `tiny_corpus` fixture in seconds; `kw` overrides."""
    from models.train.train import TrainConfig

    base = dict(
        train=[str(corpus / "en" / "train.jsonl")],
        dev=[str(corpus / "en" / "dev.jsonl")],
        tokenizer=str(tokenizer),
        exp_dir=str(exp),
        encoder=TINY_ENCODER,
        decoder_dim=32,
        joiner_dim=32,
        max_seconds=12.0,
        warmup_steps=5,
        lr=3e-3,
        num_workers=0,
        checkpoint_every=5,
        dev_utts=4,
        threads=1,
    )
    return TrainConfig(**{**base, **kw})
