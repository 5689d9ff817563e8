import pytest

from server.endpoint import EndpointConfig, EndpointDetector, EndpointRule, which_rule

SHIFT = 0.04  # s per encoder frame


def blanks(seconds: float) -> list[bool]:
    return [False] * round(seconds / SHIFT)


def speech(seconds: float) -> list[bool]:
    return [True] * round(seconds / SHIFT)


def test_rules_as_sherpa_onnx_defines_them() -> None:
    c = EndpointConfig()
    assert which_rule(c, False, 2.39, 5.0) is None
    assert which_rule(c, False, 2.4, 2.4) == 1
    assert which_rule(c, True, 1.19, 3.0) is None
    assert which_rule(c, True, 1.2, 3.0) == 2
    assert which_rule(c, True, 0.0, 20.0) == 3
    assert which_rule(c, False, 0.0, 19.9) is None
    assert which_rule(EndpointConfig(enabled=False), True, 10.0, 60.0) is None
    assert EndpointRule(True, 1.0, 2.0).holds(True, 1.0, 2.0)
    assert not EndpointRule(True, 1.0, 2.0).holds(False, 1.0, 2.0)


def test_rule2_after_speech() -> None:
    det = EndpointDetector(EndpointConfig(), SHIFT)
    assert not det.accept(blanks(0.32))
    assert not det.accept(speech(0.08) + blanks(0.24))
    assert det.contains_speech and det.trailing_silence_s == pytest.approx(0.24)
    assert det.last_speech_end_s == pytest.approx(0.40)
    assert not det.accept(blanks(0.8))
    assert det.accept(blanks(0.32))  # 1.36 s of trailing blanks
    assert det.rule == 2 and det.endpoint
    assert (det.segment_start_s, det.segment_end_s) == pytest.approx((0.0, 1.76))
    det.reset()
    assert det.segment_start_s == pytest.approx(1.76) and not det.contains_speech and not det.endpoint
    assert det.trailing_silence_s == 0 and det.utterance_length_s == 0


def test_rule1_in_silence_only() -> None:
    det = EndpointDetector(EndpointConfig(), SHIFT)
    fired = [det.accept(blanks(0.32)) for _ in range(8)]
    assert fired == [False] * 7 + [True] and det.rule == 1  # 2.56 s >= 2.4 s
    assert det.last_speech_end_s is None


def test_rule3_caps_long_speech() -> None:
    det = EndpointDetector(EndpointConfig.from_seconds(rule3_length=2.0), SHIFT)
    chunks = 0
    while not det.accept([True, False, True, False, True, False, True, False]):
        chunks += 1
    assert det.rule == 3 and det.utterance_length_s == pytest.approx(2.24) and chunks == 6


def test_tokens_at_chunk_end_reset_trailing_silence() -> None:
    det = EndpointDetector(EndpointConfig(), SHIFT)
    det.accept([*blanks(1.0), True])
    assert det.trailing_blank_frames == 0
    det.accept([False, False, True, False])
    assert det.trailing_blank_frames == 1 and det.last_token_frame == det.frames_total - 2


def test_bad_configs() -> None:
    with pytest.raises(ValueError):
        EndpointConfig.from_seconds(rule1_silence=-1)
    with pytest.raises(ValueError):
        EndpointConfig.from_seconds(rule3_length=0)
    with pytest.raises(ValueError):
        EndpointDetector(EndpointConfig(), 0)


def test_a_stream_s_own_rules_replace_the_times_it_names() -> None:
    server = EndpointConfig.from_seconds(3.0, 1.0, 15.0)
    mine = server.replaced(silence_after_speech_s=0.4)
    assert mine.describe() == {"silence_s": 3.0, "silence_after_speech_s": 0.4, "max_segment_s": 15.0}
    assert server.replaced(False).describe() is False and not server.replaced(False).enabled
    # an object turns endpointing on even where the server has it off
    assert EndpointConfig(enabled=False).replaced(max_segment_s=5.0).describe()["max_segment_s"] == 5.0
    with pytest.raises(ValueError, match="rule 3"):
        server.replaced(max_segment_s=0.0)
