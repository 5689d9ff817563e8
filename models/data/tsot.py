"""t-SOT labels: the words of overlapping utterances serialized into one token stream with channel changes.

Serialization (Kanda et al., "Streaming multi-talker ASR with token-level serialized output training", 2022):

1. Virtual channels. Utterances are taken in order of their start time; each gets the lowest-numbered channel that
   is free at its start, a channel being free once the utterance on it has ended (its last word's end <= the new
   utterance's first word's start). With at most two utterances overlapping at any time, channels 0 and 1 suffice;
   a third overlapping utterance raises `ValueError`. So the first talker is channel 0, an overlapping second talker
   channel 1, and a talker who starts after the first one finished reuses channel 0.
2. Order. All words of all utterances are sorted by end time (ties: start time, then channel).
3. ``<cc>``. Wherever two consecutive words come from different channels, ``<cc>`` goes between them. The stream
   starts on channel 0 (the first word always is: the earliest-starting utterance takes channel 0 and ends its first
   word first unless overlapped inside it; if not, a leading ``<cc>`` switches to channel 1).

The inverse (`server.tsot.split_channels`) starts on channel 0 and toggles at every ``<cc>``.

    >>> serialize([("a", [Word("hi", 0.0, 0.3), Word("there", 0.4, 0.8)]), ("b", [Word("yes", 0.5, 0.7)])]).text
    'hi <cc> yes <cc> there'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.data.manifest import Word
from parley.contract import CHANNEL_CHANGE, NUM_CHANNELS
from server.tsot import split_channels


@dataclass(frozen=True)
class TaggedWord:
    """One word of a mixture: its virtual channel, the talker it came from, and its span in the mixture (seconds)."""

    word: str
    channel: int
    speaker: str
    start: float
    end: float

    def to_dict(self) -> dict:
        return {
            "word": self.word,
            "channel": self.channel,
            "speaker": self.speaker,
            "start": round(self.start, 4),
            "end": round(self.end, 4),
        }


@dataclass(frozen=True)
class Serialized:
    """A t-SOT label: `text` with ``<cc>`` marks, and the words in serialized order."""

    text: str
    words: list[TaggedWord]

    def channel_texts(self) -> list[str]:
        """The reference text of each virtual channel (what cpWER compares the channels' outputs with)."""
        return [" ".join(ws) for ws in split_channels(self.text)]


def assign_channels(spans: Sequence[tuple[float, float]]) -> list[int]:
    """Virtual channel of each utterance from its (start, end) span; see rule 1 of the module docstring.

    Raises:
        ValueError: more than two utterances overlap at one time.
    """
    busy_until = [float("-inf")] * NUM_CHANNELS
    out = [0] * len(spans)
    for i in sorted(range(len(spans)), key=lambda k: (spans[k][0], k)):
        start, end = spans[i]
        free = [c for c in range(NUM_CHANNELS) if busy_until[c] <= start]
        if not free:
            raise ValueError(f"more than {NUM_CHANNELS} utterances overlap at {start:.2f} s: t-SOT serializes two")
        out[i] = free[0]
        busy_until[free[0]] = end
    return out


def serialize(utterances: Sequence[tuple[str, Sequence[Word]]]) -> Serialized:
    """The t-SOT label of utterances given as (speaker, words with times in the mixture), in any order.

    Utterances without words are ignored. See the module docstring for the rules.
    """
    utts = [(spk, list(ws)) for spk, ws in utterances if ws]
    channels = assign_channels([(ws[0].start, ws[-1].end) for _, ws in utts])
    tagged = [
        TaggedWord(w.word, c, spk, w.start, w.end) for (spk, ws), c in zip(utts, channels, strict=True) for w in ws
    ]
    tagged.sort(key=lambda w: (w.end, w.start, w.channel))
    parts: list[str] = []
    channel = 0
    for w in tagged:
        if w.channel != channel:
            parts.append(CHANNEL_CHANGE)
            channel = w.channel
        parts.append(w.word)
    return Serialized(" ".join(parts), tagged)
