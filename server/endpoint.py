"""Endpointing: when a stream's open segment is over, so its text becomes final and a new segment begins.

sherpa-onnx's three rules, decided from what the transducer search did, not from audio energy: a frame is "silence"
when the search emitted no token on it (blank). Each rule has (must_contain_nonsilence, min_trailing_silence,
min_utterance_length); an endpoint fires when any rule holds:

    rule 1  2.4 s of trailing blanks, speech or not      a long pause, or nothing said at all
    rule 2  1.2 s of trailing blanks after some speech   the usual end of a sentence
    rule 3  a segment of 20 s                            a cap, so a monologue still gets finals

The engine feeds each decoded chunk's per-frame "emitted a token" flags and checks `endpoint` after the chunk, as
sherpa-onnx does (rules are evaluated per chunk, not per frame):

    >>> det = EndpointDetector(EndpointConfig(), frame_shift_s=0.04)
    >>> if det.accept(emitted):        # (C,) bool, one per encoder frame of the chunk
    ...     send(final(det.segment_start_s, det.segment_end_s)); det.reset()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class EndpointRule:
    """One rule: it holds when every one of its conditions holds.

    Attributes:
        must_contain_nonsilence: the segment must contain at least one emitted token.
        min_trailing_silence: seconds of blank frames at the segment's end, at least.
        min_utterance_length: seconds of segment, at least.
    """

    must_contain_nonsilence: bool
    min_trailing_silence: float
    min_utterance_length: float

    def holds(self, contains_nonsilence: bool, trailing_silence: float, utterance_length: float) -> bool:
        return (
            (contains_nonsilence or not self.must_contain_nonsilence)
            and trailing_silence >= self.min_trailing_silence
            and utterance_length >= self.min_utterance_length
        )


@dataclass(frozen=True)
class EndpointConfig:
    """The three rules (sherpa-onnx's defaults), or none when `enabled` is false."""

    rule1: EndpointRule = field(default_factory=lambda: EndpointRule(False, 2.4, 0.0))
    rule2: EndpointRule = field(default_factory=lambda: EndpointRule(True, 1.2, 0.0))
    rule3: EndpointRule = field(default_factory=lambda: EndpointRule(False, 0.0, 20.0))
    enabled: bool = True

    @classmethod
    def from_seconds(
        cls, rule1_silence: float = 2.4, rule2_silence: float = 1.2, rule3_length: float = 20.0, enabled: bool = True
    ) -> EndpointConfig:
        """The rules from their one number each (what Settings holds).

        Raises:
            ValueError: a negative time, or a zero rule 3 length (it would end every chunk's segment).
        """
        if rule1_silence < 0 or rule2_silence < 0:
            raise ValueError(f"endpoint silences must be >= 0 s, got rule1 {rule1_silence}, rule2 {rule2_silence}")
        if rule3_length <= 0:
            raise ValueError(f"endpoint rule 3 length must be > 0 s, got {rule3_length}")
        return cls(
            EndpointRule(False, rule1_silence, 0.0),
            EndpointRule(True, rule2_silence, 0.0),
            EndpointRule(False, 0.0, rule3_length),
            enabled,
        )

    @property
    def rules(self) -> tuple[EndpointRule, EndpointRule, EndpointRule]:
        return self.rule1, self.rule2, self.rule3

    def replaced(
        self,
        enabled: bool = True,
        silence_s: float | None = None,
        silence_after_speech_s: float | None = None,
        max_segment_s: float | None = None,
    ) -> EndpointConfig:
        """These rules with the times given replaced (None: kept), on or off: a stream's own (the start message's
        "endpointing"). `silence_s` is rule 1's trailing silence, `silence_after_speech_s` rule 2's, `max_segment_s`
        rule 3's length.

        Raises:
            ValueError: see `from_seconds`.
        """
        return EndpointConfig.from_seconds(
            self.rule1.min_trailing_silence if silence_s is None else silence_s,
            self.rule2.min_trailing_silence if silence_after_speech_s is None else silence_after_speech_s,
            self.rule3.min_utterance_length if max_segment_s is None else max_segment_s,
            enabled,
        )

    def describe(self) -> dict | bool:
        """The rules as a ready message says them: false when off, else their three times in seconds."""
        if not self.enabled:
            return False
        return {
            "silence_s": self.rule1.min_trailing_silence,
            "silence_after_speech_s": self.rule2.min_trailing_silence,
            "max_segment_s": self.rule3.min_utterance_length,
        }


def which_rule(
    config: EndpointConfig, contains_nonsilence: bool, trailing_silence: float, utterance_length: float
) -> int | None:
    """The first rule (1, 2 or 3) that holds, or None. Times in seconds."""
    if not config.enabled:
        return None
    for i, rule in enumerate(config.rules, start=1):
        if rule.holds(contains_nonsilence, trailing_silence, utterance_length):
            return i
    return None


class EndpointDetector:
    """One stream's endpoint state: frames decoded in the open segment, trailing blanks, whether it has speech.

    Times are kept in encoder frames and turned into seconds with `frame_shift_s`, so they are exact multiples of
    the frame shift (no float drift over a long stream).

    Args:
        config: the rules.
        frame_shift_s: seconds per encoder output frame (fbank shift times subsampling, e.g. 0.04).
    """

    def __init__(self, config: EndpointConfig, frame_shift_s: float) -> None:
        if frame_shift_s <= 0:
            raise ValueError(f"frame_shift_s must be > 0, got {frame_shift_s}")
        self.config = config
        self.frame_shift_s = float(frame_shift_s)
        self.frames_total = 0  # encoder frames decoded since the stream started
        self.segment_start_frame = 0  # frames_total when the open segment began
        self.trailing_blank_frames = 0
        self.last_token_frame: int | None = None  # stream frame index of the segment's last emitted token
        self.rule: int | None = None  # the rule that fired at the last accept(), if any

    @property
    def segment_frames(self) -> int:
        return self.frames_total - self.segment_start_frame

    @property
    def contains_speech(self) -> bool:
        return self.last_token_frame is not None

    @property
    def trailing_silence_s(self) -> float:
        return self.trailing_blank_frames * self.frame_shift_s

    @property
    def utterance_length_s(self) -> float:
        return self.segment_frames * self.frame_shift_s

    @property
    def segment_start_s(self) -> float:
        """The open segment's start, seconds from the stream's start."""
        return self.segment_start_frame * self.frame_shift_s

    @property
    def segment_end_s(self) -> float:
        """How far the stream is decoded: the open segment's end so far."""
        return self.frames_total * self.frame_shift_s

    @property
    def last_speech_end_s(self) -> float | None:
        """The end of the frame that emitted the segment's last token, or None without tokens."""
        return None if self.last_token_frame is None else (self.last_token_frame + 1) * self.frame_shift_s

    def accept(self, emitted: Sequence[bool] | np.ndarray) -> bool:
        """Counts one decoded chunk and says whether the segment has reached an endpoint.

        Args:
            emitted: `(C,)` one flag per encoder frame of the chunk, true where the search emitted a token.

        Returns:
            True when a rule holds after this chunk (`rule` says which). The caller closes the segment and then
            calls `reset()`; until then, further chunks keep counting into the same segment.
        """
        flags = np.asarray(emitted, dtype=bool).reshape(-1)  # (C,)
        hits = np.flatnonzero(flags)
        if hits.size:
            self.last_token_frame = self.frames_total + int(hits[-1])
            self.trailing_blank_frames = int(flags.size - 1 - hits[-1])
        else:
            self.trailing_blank_frames += int(flags.size)
        self.frames_total += int(flags.size)
        self.rule = which_rule(self.config, self.contains_speech, self.trailing_silence_s, self.utterance_length_s)
        return self.rule is not None

    @property
    def endpoint(self) -> bool:
        return self.rule is not None

    def reset(self) -> None:
        """Starts a new segment at the current frame (after an endpoint closed the previous one)."""
        self.segment_start_frame = self.frames_total
        self.trailing_blank_frames = 0
        self.last_token_frame = None
        self.rule = None
