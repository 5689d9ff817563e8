"""Subtitles from a transcription's finals: SubRip (.srt) and WebVTT (.vtt).

    finals = [result_message(f) for f in await engine.recognize(samples, rate)]  # final messages (docs/protocol.md)
    print(render(finals, "srt"))                            # or "vtt"; "json" is the transcript_response body

A final is one utterance; a cue never spans two. A long final is cut into several cues at word boundaries, using its
words' times, so that every cue fits `MAX_LINES` lines of at most `MAX_LINE_CHARS` characters and lasts at most
`MAX_CUE_S` seconds of speech. A cue shorter than `MIN_CUE_S` stays on screen longer, up to the next cue's start.
Where the words carry talkers (streams that asked for them, docs/protocol.md), a cue holds one talker's words and
says whose they are: "[T1] " before its text in SubRip, a WebVTT voice span (`<v Talker 1>`) in WebVTT. Finals of a
multichannel transcription (`"channel"`, POST /v1/transcribe?multichannel=true) say their channel the same way:
"[C1] ", `<v Channel 1>` ("[C1 T2]", `<v Channel 1 Talker 2>` with talkers); their cues may overlap in time, as
people on two channels talk at once. Pure: no model, no sockets.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FORMATS = ("json", "srt", "vtt")  # what POST /v1/transcribe?format= and `parley transcribe --format` accept
MEDIA_TYPES = {"srt": "application/x-subrip; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}
MAX_LINE_CHARS = 42  # the broadcasters' usual limit for a subtitle line (EBU, BBC, Netflix: 37-42)
MAX_LINES = 2  # lines per cue: more cover the picture
MIN_CUE_S = 1.0  # seconds: a shorter cue flashes by before it can be read
MAX_CUE_S = 7.0  # seconds: a longer one is read long before it goes


@dataclass(frozen=True)
class Cue:
    """One subtitle: its time span in seconds and its lines of text."""

    start: float
    end: float
    lines: tuple[str, ...]
    talker: int | None = None  # whose words (a final's talker numbers; None: not known)
    channel: int | None = None  # the recording's channel (multichannel transcriptions; None: not one)


@dataclass(frozen=True)
class _Word:
    text: str
    start: float
    end: float
    talker: int | None = None
    channel: int | None = None

    @property
    def voice(self) -> tuple[int | None, int | None]:
        return self.channel, self.talker


def layout(words: Sequence[str], width: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES) -> list[str] | None:
    """The words as at most `max_lines` lines of at most `width` characters, as balanced as possible (two lines of
    similar length read better than a full line and a stub); None when they do not fit. One word longer than
    `width` is a line of its own (it cannot be cut)."""
    text = " ".join(words)
    if len(text) <= width or len(words) == 1:
        return [text]
    if max_lines < 2:
        return None
    best: list[str] | None = None
    for k in range(1, len(words)):
        rest = layout(words[k:], width, max_lines - 1)
        first = " ".join(words[:k])
        if len(first) > width:
            break
        if rest is None:
            continue
        candidate = [first, *rest]
        if best is None or max(map(len, candidate)) < max(map(len, best)):
            best = candidate
    return best


def _key(token: str) -> str:
    return token.strip(".,;:!?\"'“”‘’«»()[]…-").lower()


def _shown(shown: Sequence[str], words: Sequence[_Word]) -> list[_Word] | None:
    """A final's display tokens on its words' times: word for word where the count is the same, else each word the
    display writes as it is, with what it rewrote between two of them ("$5.50" for "five dollars and fifty cents")
    spanning the words it stands for. None without display, or where a run of display tokens has no word or a run of
    words no display token (the display is then not of these words)."""
    if not shown or not words:
        return None
    if len(shown) == len(words):
        return [_Word(t, w.start, w.end, w.talker, w.channel) for t, w in zip(shown, words, strict=True)]
    matcher = difflib.SequenceMatcher(None, [_key(t) for t in shown], [_key(w.text) for w in words], autojunk=False)
    out: list[_Word] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pairs = zip(shown[i1:i2], words[j1:j2], strict=True)
            out += [_Word(t, w.start, w.end, w.talker, w.channel) for t, w in pairs]
        elif i1 == i2 or j1 == j2:
            return None
        else:
            first, last = words[j1], words[j2 - 1]
            out.append(_Word(" ".join(shown[i1:i2]), first.start, last.end, first.talker, first.channel))
    return out


def _words_of(final: Mapping[str, Any]) -> list[_Word]:
    """A final's words with times; a final with text but no word times gets its words spread evenly over it."""
    c = final.get("channel")
    words = [
        _Word(str(w["word"]), float(w["start"]), float(w["end"]), w.get("talker"), c) for w in final.get("words") or []
    ]
    shown = _shown(str(final.get("display") or "").split(), words)
    if shown is not None:  # punctuated and cased, numbers in digits (docs/protocol.md), on the words' times
        words = shown
    if words or not final.get("text"):
        return words
    texts = str(final["text"]).split()
    start, end = float(final["start"]), float(final["end"])
    step = (end - start) / len(texts)
    return [_Word(t, start + i * step, start + (i + 1) * step, None, c) for i, t in enumerate(texts)]


def cues(finals: Sequence[Mapping[str, Any]]) -> list[Cue]:
    """The cues of a transcription's final messages, in order (see the module docstring for the rules)."""
    groups: list[list[_Word]] = []
    for final in finals:
        current: list[_Word] = []
        for w in _words_of(final):
            if current and (
                layout(_texts([*current, w])) is None
                or w.end - current[0].start > MAX_CUE_S
                or w.voice != current[0].voice
            ):
                groups.append(current)
                current = []
            current.append(w)
        if current:
            groups.append(current)
    out: list[Cue] = []
    for k, g in enumerate(groups):
        start, end = g[0].start, max(g[-1].end, g[0].start)
        following = groups[k + 1][0].start if k + 1 < len(groups) else float("inf")
        end = max(end, min(start + MIN_CUE_S, following))
        lines = layout(_texts(g))
        assert lines is not None, g
        label = _label(g[0].talker, g[0].channel)
        if label:  # the label was laid out as a word: the formats write it their own way
            lines = lines[1:] if lines[0] == label else [lines[0].removeprefix(label + " "), *lines[1:]]
        out.append(Cue(start, end, tuple(lines), g[0].talker, g[0].channel))
    return out


def _label(talker: int | None, channel: int | None = None) -> str:
    """SubRip's label of whose words: talker 0 is "[T1]" (as `parley stream --talkers` prints it), channel 0 "[C1]",
    both "[C1 T1]"; "" for neither."""
    parts = ([f"C{channel + 1}"] if channel is not None else []) + ([f"T{talker + 1}"] if talker is not None else [])
    return f"[{' '.join(parts)}]" if parts else ""


def _voice(talker: int | None, channel: int | None) -> str:
    """WebVTT's voice span of whose words: `<v Channel 1 Talker 2>`; "" for neither."""
    parts = ([f"Channel {channel + 1}"] if channel is not None else []) + (
        [f"Talker {talker + 1}"] if talker is not None else []
    )
    return f"<v {' '.join(parts)}>" if parts else ""


def _texts(words: Sequence[_Word]) -> list[str]:
    """The words a cue's layout fits: its SubRip label first, where it has one (it takes room on the line)."""
    texts = [w.text for w in words]
    label = _label(words[0].talker, words[0].channel) if words else ""
    return [label, *texts] if label else texts


def _timestamp(seconds: float, separator: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def srt(cue_list: Sequence[Cue]) -> str:
    """SubRip text: numbered cues, times as 00:00:01,250."""
    blocks = [
        f"{i}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n"
        + (_label(c.talker, c.channel) + " " if c.talker is not None or c.channel is not None else "")
        + "\n".join(c.lines)
        + "\n"
        for i, c in enumerate(cue_list, 1)
    ]
    return "\n".join(blocks)


def _vtt_escape(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt(cue_list: Sequence[Cue]) -> str:
    """WebVTT text: the WEBVTT header, then cues with times as 00:00:01.250 (markup characters escaped)."""
    blocks = [
        f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n"
        + _voice(c.talker, c.channel)
        + "\n".join(map(_vtt_escape, c.lines))
        + "\n"
        for c in cue_list
    ]
    return "\n".join(["WEBVTT\n", *blocks])


def render(finals: Sequence[Mapping[str, Any]], fmt: str) -> str:
    """The finals as subtitles of format `fmt` ("srt" or "vtt").

    Raises:
        ValueError: another format.
    """
    if fmt == "srt":
        return srt(cues(finals))
    if fmt == "vtt":
        return vtt(cues(finals))
    raise ValueError(f"unknown subtitle format {fmt!r}; use srt or vtt")
