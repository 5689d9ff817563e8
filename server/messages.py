"""Protocol version 1's partial and final messages (docs/protocol.md) of the recognizer's typed results: the one
mapping, used by the /v1/stream session (server/session.py) and the transcript of POST /v1/transcribe.

Other protocols map the same results their own way (server/vosk.py); the recognizer knows none of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from server.protocol import Word, final_message, partial_message, transcript_response
from server.recognizer import Final, Partial, Result


def result_message(result: Result) -> dict:
    """A result as a partial or final message: a multilingual stream's `language` and `translations`, a multi-talker
    stream's `speakers`, and its partials' `words` too (a live caption colours each word by its talker before the
    segment closes)."""
    extra: dict[str, Any] = {}
    if result.speakers is not None:
        extra["speakers"] = [{"speaker": c, "text": text} for c, text in enumerate(result.speakers)]
    if result.language is not None:
        extra["language"] = result.language
    if result.translations is not None:
        extra["translations"] = dict(result.translations)
    words = [Word(w.text, w.start, w.end, w.speaker, w.conf, w.talker) for w in result.words]
    if isinstance(result, Final):
        if result.display is not None:
            extra["display"] = result.display
        if result.talkers is not None:
            extra["talkers"] = list(result.talkers)
        if result.alternatives is not None:
            extra["alternatives"] = [{"text": t, "confidence": round(p, 3)} for t, p in result.alternatives]
        return final_message(result.segment, result.text, result.start, result.end, words, **extra)
    if result.speakers is not None:
        extra["words"] = [w.to_dict() for w in words]
    if isinstance(result, Partial) and result.stable is not None:
        extra["stable"] = result.stable
    return partial_message(result.segment, result.text, result.start, result.end, **extra)


def multichannel_transcript(model: str, duration: float, channels: Sequence[Sequence[Final]]) -> dict:
    """The POST /v1/transcribe body of a recording whose channels were transcribed one by one (`channels[c]`:
    channel c's finals): every final marked with its `channel`, all in order of start time (channel order among
    equal starts), and `channels`, each channel's own transcript (its finals' text, and `display` where they have
    it), since the top-level text interleaves them."""
    finals = sorted(
        ({**result_message(f), "channel": c} for c, own in enumerate(channels) for f in own),
        key=lambda m: (m["start"], m["channel"]),
    )
    summary = []
    for c in range(len(channels)):
        own = [f for f in finals if f["channel"] == c and f["text"]]
        entry: dict[str, Any] = {"channel": c, "text": " ".join(f["text"] for f in own)}
        if any("display" in f for f in own):
            entry["display"] = " ".join(f.get("display", f["text"]) for f in own)
        summary.append(entry)
    return transcript_response(model, duration, finals, channels=summary)


def log_confidence(conf: float) -> float:
    """A word's confidence as a log probability (floored at 1e-6: a confidence of 0 has no log)."""
    return math.log(max(float(conf), 1e-6))


def word_logprobs(words: Sequence[Mapping[str, Any]], first: bool = True) -> list[dict]:
    """Words of a final message (`{"word", "conf", ...}`) as OpenAI's `logprobs` entries: a token per word (with the
    space before it, as OpenAI's tokens carry it, except the text's first), its UTF-8 bytes, and the log of the
    word's confidence (the least probability of its tokens on the search's path) as `logprob`.

    Args:
        first: the words start the text (no space before the first).
    """
    out = []
    for i, w in enumerate(words):
        token = ("" if first and i == 0 else " ") + str(w["word"])
        conf = w.get("conf")
        logprob = log_confidence(conf) if conf is not None else 0.0
        out.append({"token": token, "logprob": round(logprob, 4), "bytes": list(token.encode())})
    return out
