import numpy as np
import onnxruntime as ort
import pytest

from server import providers


def test_auto_picks_a_provider_that_really_runs() -> None:
    chosen = providers.select_providers("auto")
    assert chosen[-1] == providers.CPU
    sess = ort.InferenceSession(providers._PROBE, providers=chosen)
    assert sess.get_providers()[0] == chosen[0]
    x = np.array([1.5], dtype=np.float32)
    assert sess.run(None, {"x": x})[0].tolist() == [1.5]


def test_cpu_and_bad_preferences() -> None:
    assert providers.select_providers("cpu") == [providers.CPU]
    with pytest.raises(ValueError, match="unknown provider"):
        providers.select_providers("tpu")
    if not providers.cuda_usable():
        with pytest.raises(ValueError, match="cannot use a GPU"):
            providers.select_providers("cuda")
