"""Tiny model sizes shared by the tests: fast on CPU, big enough to exercise every code path."""

from models.encoder import EncoderConfig

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
