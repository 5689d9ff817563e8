"""LayerNorm whose ONNX export is elementary ops instead of onnxruntime's fused LayerNormalization kernel.

The same parameters and the same function as `nn.LayerNorm` over the last axis `(..., D)`; PyTorch runs the fused
kernel. The export writes mean, centred square, mean, reciprocal square root and the affine map, because the
fused kernel's float rounding differs between onnxruntime releases (1 ulp between 1.28 and 1.31, docs/bundles.md),
and in an int8 encoder such a difference moves activations across quantization steps: the bundle's transcripts then
depend on which onnxruntime build runs it (Parley's or sherpa-onnx's).
"""

from __future__ import annotations

import torch
from torch import nn


class LayerNorm(nn.LayerNorm):
    """`nn.LayerNorm` over the last axis, exported as elementary ops (module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.onnx.is_in_onnx_export():
            return super().forward(x)
        mean = x.mean(dim=-1, keepdim=True)
        d = x - mean
        var = (d * d).mean(dim=-1, keepdim=True)
        y = d * torch.rsqrt(var + self.eps)
        return y * self.weight + self.bias if self.elementwise_affine else y
