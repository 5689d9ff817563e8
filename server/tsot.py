"""t-SOT (token-level serialized output training) at runtime: a multi-talker head's text split into virtual channels.

A multi-talker head emits the words of up to two overlapping talkers in one stream, in the order their words end,
with the channel-change token ``<cc>`` wherever the emitting channel changes (models/data/tsot.py makes these labels).
The stream starts on channel 0 and every ``<cc>`` switches to the other channel, so

    split_channels("hello there <cc> hi <cc> how are you")  ->  [["hello", "there", "how", "are", "you"], ["hi"]]

A channel is a *virtual* channel, not an identity: a talker keeps the channel it started on until its utterance
ends, and a later talker may reuse a freed channel. Results call the channel "speaker" (docs/protocol.md).

No torch here: the server imports this module; models/data/tsot.py and models/eval/evaluate_tsot.py reuse it.
"""

from __future__ import annotations

from collections.abc import Sequence

from parley.contract import CHANNEL_CHANGE, NUM_CHANNELS


def channel_sequence(words: Sequence[str]) -> list[int]:
    """The channel of every item of a serialized word sequence (``<cc>`` items get the channel they switch to).

    Args:
        words: the serialized text split on white space, ``<cc>`` marks included.

    Returns:
        One channel (0 or 1) per item, the same length as `words`.
    """
    channel, out = 0, []
    for w in words:
        if w == CHANNEL_CHANGE:
            channel = (channel + 1) % NUM_CHANNELS
        out.append(channel)
    return out


def serialized_words(text: str) -> list[str]:
    """A serialized text's words and ``<cc>`` marks, a mark glued to its neighbours (as sherpa-onnx writes it:
    ``"there<cc> hi"``) included."""
    return text.replace(CHANNEL_CHANGE, f" {CHANNEL_CHANGE} ").split()


def split_channels(text: str | Sequence[str]) -> list[list[str]]:
    """The inverse of serialization: serialized text (or its words) -> the word list of each of the two channels.

    A ``<cc>`` glued to its neighbours counts as well: sherpa-onnx joins a head's tokens without spaces except at
    word starts, so it writes ``"there<cc> hi"`` where Parley writes ``"there <cc> hi"``.
    """
    items = serialized_words(text) if isinstance(text, str) else list(text)
    out: list[list[str]] = [[] for _ in range(NUM_CHANNELS)]
    for w, c in zip(items, channel_sequence(items), strict=True):
        if w != CHANNEL_CHANGE:
            out[c].append(w)
    return out


def strip_channel_changes(text: str) -> str:
    """The serialized text without its ``<cc>`` marks: every talker's words in the order they were emitted."""
    return " ".join(w for w in serialized_words(text) if w != CHANNEL_CHANGE)


def speakers_field(text: str) -> list[dict]:
    """The ``"speakers"`` field of a result: ``[{"speaker": 0, "text": ...}, {"speaker": 1, "text": ...}]``."""
    return [{"speaker": c, "text": " ".join(ws)} for c, ws in enumerate(split_channels(text))]
