"""Which onnxruntime execution providers to use: CUDA when a GPU is really there, the CPU otherwise.

onnxruntime-gpu lists CUDAExecutionProvider as available even on machines without a GPU or without the CUDA
libraries; a session asked for it then silently runs on the CPU. So "auto" opens a session on a 69-byte probe
model and keeps CUDA only if the session actually got it.
"""

from __future__ import annotations

import base64
import functools

import onnxruntime as ort

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

# An Identity graph, float (1,) -> float (1,), opset 13: onnx.helper.make_graph([make_node("Identity", ["x"],
# ["y"])], ...) serialized. Opening a session on it costs about a millisecond.
_PROBE = base64.b64decode(
    "CAg6OwoQCgF4EgF5IghJZGVudGl0eRIFcHJvYmVaDwoBeBIKCggIARIECgIIAWIPCgF5EgoKCAgBEgQKAggBQgQKABAN"
)


@functools.cache
def cuda_usable() -> bool:
    """True when onnxruntime can run a session on a CUDA device here."""
    if CUDA not in ort.get_available_providers():
        return False
    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # the failure to load CUDA on a CPU-only machine is expected: keep it quiet
    ort.set_default_logger_severity(4)  # the provider bridge logs that failure through the default logger
    try:
        sess = ort.InferenceSession(_PROBE, sess_options=opts, providers=[CUDA, CPU])
    except Exception:
        return False
    finally:
        ort.set_default_logger_severity(2)  # onnxruntime's default: warnings and above
    return sess.get_providers()[0] == CUDA


def select_providers(preference: str = "auto") -> list[str]:
    """Providers for `ort.InferenceSession`.

    Args:
        preference: "auto" (CUDA when usable, else CPU), "cuda" (CUDA required), or "cpu".

    Raises:
        ValueError: an unknown preference, or "cuda" asked for on a machine where CUDA cannot run.
    """
    if preference == "cpu":
        return [CPU]
    if preference == "cuda":
        if not cuda_usable():
            raise ValueError("CUDA was asked for but onnxruntime cannot use a GPU here (no device or no CUDA libs)")
        return [CUDA, CPU]
    if preference == "auto":
        return [CUDA, CPU] if cuda_usable() else [CPU]
    raise ValueError(f"unknown provider preference {preference!r}; use auto, cuda or cpu")
