import numpy as np
import pytest

from parley.features import FBANK_BACKENDS, FbankConfig, StreamingFbank, check_fbank_backend, compute_fbank, num_frames


def _speechlike(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def _knf_frames(x: np.ndarray, config: FbankConfig) -> np.ndarray:
    """kaldi-native-fbank's frames of one pass over 16 kHz `x` (what sherpa-onnx computes): `(T, num_bins)`."""
    import kaldi_native_fbank as knf

    ref = knf.OnlineFbank(config.knf_options())
    ref.accept_waveform(16000, x)
    ref.input_finished()
    frames = [ref.get_frame(i) for i in range(ref.num_frames_ready)]
    return np.array(frames, dtype=np.float32).reshape(-1, config.num_bins)


@pytest.mark.parametrize("backend", FBANK_BACKENDS)
@pytest.mark.parametrize("rate", [16000, 8000, 44100, 48000])
def test_random_pieces_give_the_same_frames_as_one_call(rate: int, backend: str) -> None:
    x = _speechlike(1.37, rate)
    whole = compute_fbank(x, rate, backend=backend)
    rng = np.random.default_rng(rate)
    fb = StreamingFbank(input_rate=rate, backend=backend)
    got, i = [], 0
    while i < x.size:
        k = int(rng.integers(1, 4000))
        fb.accept(x[i : i + k])
        i += k
        if rng.random() < 0.5:
            got.append(fb.pop_frames())
    fb.finish()
    got.append(fb.pop_frames())
    streamed = np.concatenate(got)
    assert streamed.shape == whole.shape == (num_frames(int(np.ceil(x.size * 16000 / rate))), 80)
    diff = float(np.abs(streamed - whole).max())
    assert diff == 0.0, f"streamed vs one call: max abs diff {diff}"


def test_frames_are_ready_before_the_end_and_are_final() -> None:
    x = _speechlike(1.0, 16000)
    fb = StreamingFbank()
    fb.accept(x[:8000])
    early = fb.pop_frames()
    assert early.shape[0] >= 48, "half a second of audio should give about 50 frames before finish()"
    assert np.array_equal(early, compute_fbank(x, 16000)[: early.shape[0]])


def test_sherpa_onnx_defaults_and_scale() -> None:
    cfg = FbankConfig()
    assert (cfg.sample_rate, cfg.num_bins, cfg.frame_length_ms, cfg.frame_shift_ms) == (16000, 80, 25.0, 10.0)
    assert cfg.dither == 0.0 and cfg.snip_edges is False
    assert FbankConfig.from_dict(cfg.to_dict()) == cfg
    # Samples in [-1, 1]: a full-scale sine has log-mel energies far below the int16-scaled ones (about 2 ln 32768).
    x = _speechlike(0.5, 16000)
    loud = compute_fbank(x * 32768, 16000)
    assert float(np.median(loud - compute_fbank(x, 16000))) == pytest.approx(2 * np.log(32768), abs=0.05)
    assert compute_fbank(x, 16000).shape == (50, 80)


def test_unsupported_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="not supported"):
        StreamingFbank(input_rate=4000)
    with pytest.raises(ValueError, match="not supported"):
        StreamingFbank(input_rate=384000)


@pytest.mark.parametrize("config", [FbankConfig(), FbankConfig(high_freq=-400.0), FbankConfig(num_bins=40)])
@pytest.mark.parametrize("seconds", [0.004, 0.02, 0.5, 1.37])
def test_frames_equal_kaldi_native_fbank(config: FbankConfig, seconds: float) -> None:
    """The numpy fbank is kaldi-native-fbank's (what sherpa-onnx computes), to float32 rounding: also for inputs
    shorter than a frame, whose windows mirror more than once."""
    x = _speechlike(seconds, 16000, seed=3)
    want = _knf_frames(x, config)
    got = compute_fbank(x, 16000, config)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert float(np.abs(got - want).max(initial=0.0)) < 2e-3
    assert float(np.abs(got - want).mean()) < 2e-5 if got.size else True


@pytest.mark.parametrize("config", [FbankConfig(), FbankConfig(high_freq=-400.0), FbankConfig(num_bins=40)])
@pytest.mark.parametrize("seconds", [0.004, 0.02, 0.5, 1.37])
def test_kaldi_native_fbank_backend_gives_its_frames_to_the_bit(config: FbankConfig, seconds: float) -> None:
    """`backend="kaldi-native-fbank"` (the server's --fbank) computes each span in one snip-edges pass with the edges
    mirrored by StreamingFbank: the frames of one kaldi-native-fbank pass over the utterance, exactly."""
    x = _speechlike(seconds, 16000, seed=4)
    want = _knf_frames(x, config)
    got = compute_fbank(x, 16000, config, backend="kaldi-native-fbank")
    assert got.shape == want.shape
    assert np.array_equal(got, want)
    if seconds > 0.1:  # and the numpy backend's frames are not these to the bit (why the choice exists)
        assert not np.array_equal(compute_fbank(x, 16000, config), want)


def test_unknown_or_missing_fbank_backend_is_refused(monkeypatch) -> None:
    with pytest.raises(ValueError, match="backend 'torchaudio' unknown: expected one of numpy, kaldi-native-fbank"):
        check_fbank_backend("torchaudio")
    with pytest.raises(ValueError, match="expected one of"):
        StreamingFbank(backend="knf")
    import sys

    monkeypatch.setitem(sys.modules, "kaldi_native_fbank", None)  # import fails as if not installed
    with pytest.raises(ValueError, match="pip install kaldi-native-fbank"):
        check_fbank_backend("kaldi-native-fbank")
