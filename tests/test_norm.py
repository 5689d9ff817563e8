"""models/nn/norm.py: the LayerNorm that exports as elementary ops computes what nn.LayerNorm computes."""

import torch
from torch import nn

from models.nn.norm import LayerNorm


def test_exported_form_equals_the_fused_kernel(monkeypatch) -> None:
    torch.manual_seed(0)
    norm = LayerNorm(24)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    ref = nn.LayerNorm(24)
    ref.load_state_dict(norm.state_dict())  # the same parameters, the same checkpoint keys
    x = 3 * torch.randn(2, 7, 24) + 1
    fused = norm(x)
    assert torch.equal(fused, ref(x))
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    exported = norm(x)
    assert not torch.equal(exported, fused)  # another computation (so the export path really ran) ...
    assert torch.allclose(exported, fused, atol=1e-5)  # ... of the same function
