"""Speech synthesis with espeak-ng's C library (through ctypes), with exact word timings.

    syn = synthesize("set a timer for ten minutes", voice="en-us", variant="m3", rate=170)
    syn.samples      # (T,) float32 in [-1, 1] at syn.sample_rate (22050 for espeak-ng's own voices, the mbrola
                     # voice's own rate for "mb-*" voices: 16000 for most)
    syn.words        # [WordTiming(word="set", start=0.05, end=0.26), ...], one per whitespace token of the text

What espeak-ng 1.51 does, measured, and what this module relies on:

- A WORD event's `text_position` is 1-based and counts characters (code points) of the UTF-8 text, not bytes;
  `sample` is the index in the message's output where the word begins, including any pause before it.
- espeak's words are not ours: a number makes one event per spoken part ("42" at positions of "4" and "2"),
  a hyphenated word or a contraction makes one event ("well-known", "it's"), so events are mapped to our tokens by
  character offset, and a token's start is its earliest event.
- A WORD event can come before a pause (a clause break), and words begin and end with silence (stop closures,
  the gaps of `word_gap`), so each token's span is trimmed of silent 5 ms frames on both sides.
- mbrola voices ("mb-us1", "mb-de2", ...) run through the same calls and give WORD events too, but their audio comes
  at the diphone database's rate (16 kHz for most, 22050 for mb-es2 and mb-fr4), not the rate espeak_Initialize
  reported: the rate is read with espeak_ng_GetSampleRate after the voice is chosen, in the child that speaks.
- The Mandarin voice to use is cmn-latn-pinyin: plain cmn (= zh) reads most hanzi as English-spelled pinyin with tone
  digits ("da three, kai one"); cmn-latn-pinyin speaks them as Mandarin, with tone sandhi.
- The Mandarin voice speaks each hanzi as one word; spaces between words change nothing in the audio
  (checked: identical samples with and without them), so Chinese text is spoken as given.
- Synthesis state carries over from one call to the next inside the library (the pitch-flutter phase, the echo
  buffer, libc's rand() used by the Klatt voices), so two identical calls in one process give different samples.
  espeak_Terminate does not reset it, and unloading and reloading the library leaks 70-260 KB per call (1.51 opens
  an audio device at every initialization and frees it only in playback mode). Each synthesis therefore runs in a
  child forked from a process in which espeak is initialized but has never spoken: the same arguments give the
  same samples whatever ran before, in any process. Per call this costs about 2 ms for the fork and 5 ms to load
  the voice in the child, against 2 ms for speaking an 8-word sentence.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import faulthandler
import os
import pickle
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Frame for the silence measurements that trim words and the utterance.
_FRAME_SECONDS = 0.005
# A frame is silent when its energy is this far below the utterance's loudest frame.
_SILENCE_DB = 45.0
# Silence kept before the first and after the last word of an utterance.
_MARGIN_SECONDS = 0.05

_SONAME = "libespeak-ng.so.1"
_INSTALL_HINT = "install espeak-ng (apt-get install espeak-ng)"

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EE_OK = 0
_EE_NOT_FOUND = 2
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE, _PARAM_WORDGAP = 1, 3, 4, 7


@dataclass
class WordTiming:
    """One token of the text and its span in seconds from the start of the returned audio."""

    word: str
    start: float
    end: float


@dataclass
class Synthesis:
    """What `synthesize` returns."""

    samples: np.ndarray  # (T,) float32 in [-1, 1]
    sample_rate: int
    words: list[WordTiming]

    @property
    def duration(self) -> float:
        return self.samples.size / self.sample_rate


class SynthesisCrashError(RuntimeError):
    """espeak-ng's synthesis process died (it segfaults on a few text and voice pairs, e.g. zh
    "今天 是 五月 二十九 号 星期一" with cmn+rob at rate 140); another voice usually speaks the same text."""


class _EventId(ctypes.Union):
    _fields_ = (("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8))


class _Event(ctypes.Structure):
    """espeak_EVENT from speak_lib.h."""

    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    )


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class _Engine:
    lib: ctypes.CDLL
    sample_rate: int
    data_path: Path


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def _load_engine() -> _Engine:
    """Loads and initializes espeak-ng once per process. Nothing may synthesize in this process afterwards."""
    global _engine
    with _engine_lock:
        if _engine is None:
            name = ctypes.util.find_library("espeak-ng") or _SONAME
            try:
                lib = ctypes.CDLL(name)
            except OSError as e:
                raise RuntimeError(f"espeak-ng's library {name} cannot be loaded: {e}; {_INSTALL_HINT}") from e
            lib.espeak_Initialize.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
            lib.espeak_Info.argtypes = (ctypes.POINTER(ctypes.c_char_p),)
            lib.espeak_Info.restype = ctypes.c_char_p
            lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
            lib.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
            lib.espeak_SetSynthCallback.argtypes = (_SynthCallback,)
            lib.espeak_Synth.argtypes = (
                ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                ctypes.c_void_p, ctypes.c_void_p,
            )  # fmt: skip
            sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_DONT_EXIT)
            if sample_rate <= 0:
                raise RuntimeError(
                    f"espeak_Initialize failed ({sample_rate}): is espeak-ng-data there? {_INSTALL_HINT}"
                )
            path = ctypes.c_char_p()
            lib.espeak_Info(ctypes.byref(path))
            _engine = _Engine(lib, sample_rate, Path(path.value.decode()))
        return _engine


def sample_rate() -> int:
    """The rate of espeak-ng's output in Hz (22050 for its own voices)."""
    return _load_engine().sample_rate


def list_variants() -> list[str]:
    """Names of the voice variants espeak-ng has (espeak-ng-data/voices/!v), sorted."""
    return sorted(p.name for p in (_load_engine().data_path / "voices" / "!v").iterdir() if p.is_file())


def synthesize(
    text: str,
    voice: str = "en",
    variant: str | None = None,
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    word_gap: int = 0,
) -> Synthesis:
    """Speaks `text` and times each of its whitespace-separated tokens.

    Args:
        text: normalized text: words separated by single spaces (Chinese words too).
        voice: an espeak-ng voice name or language ("en-us", "fr", "cmn"; see `espeak-ng --voices`).
        variant: a variant from espeak-ng-data/voices/!v ("m3", "f2", "klatt"), or None for the voice's own.
        rate: speed in words per minute, 80..450.
        pitch: base pitch, 0..100 (50 normal).
        pitch_range: pitch variation, 0..100 (0 monotone, 50 normal).
        word_gap: extra pause between words in units of 10 ms, 0..100.

    Returns:
        The audio, trimmed to `_MARGIN_SECONDS` of silence on each side, and one timing per token, in order,
        with 0 <= start < end <= duration and starts non-decreasing.

    Raises:
        ValueError: empty text, a parameter out of range, an unknown voice or variant.
        SynthesisCrashError: espeak-ng's synthesis process died.
        RuntimeError: espeak-ng is missing or its synthesis failed.
    """
    tokens = text.split()
    if not tokens:
        raise ValueError("synthesize needs at least one word, got empty text")
    for name, value, lo, hi in (
        ("rate", rate, 80, 450), ("pitch", pitch, 0, 100), ("pitch_range", pitch_range, 0, 100),
        ("word_gap", word_gap, 0, 100),
    ):  # fmt: skip
        if not lo <= value <= hi:
            raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    engine = _load_engine()
    full_name = voice
    if variant is not None:
        if not (engine.data_path / "voices" / "!v" / variant).is_file():
            raise ValueError(f"unknown espeak-ng variant {variant!r}; known: {', '.join(list_variants())}")
        full_name = f"{voice}+{variant}"
    spoken = " ".join(tokens)
    params = ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range), (_PARAM_WORDGAP, word_gap))
    pcm, events, sr = _run_isolated(engine, spoken, full_name, params)
    if pcm.size == 0:
        raise RuntimeError(f"espeak-ng produced no audio for {text!r} with voice {full_name!r}")
    x = pcm.astype(np.float32) / 32768.0
    x, spans = _word_spans(x, sr, tokens, events)
    words = [WordTiming(tok, s / sr, e / sr) for tok, (s, e) in zip(tokens, spans, strict=True)]
    return Synthesis(x, sr, words)


def _run_isolated(
    engine: _Engine, text: str, voice: str, params: tuple[tuple[int, int], ...]
) -> tuple[np.ndarray, list[tuple[int, int]], int]:
    """Runs `_speak` in a forked child so that this process's espeak state stays as initialized.

    Returns:
        pcm: (T,) int16 samples; events: (0-based character offset, sample) of each WORD event; the audio's rate.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        status = 1
        try:
            os.close(read_fd)
            faulthandler.disable()  # a crash here is reported by the parent (SynthesisCrashError), not dumped
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)  # mbrola's per-diphone warnings; errors reach the parent as exceptions
            try:
                result = ("ok", _speak(engine, text, voice, params))
            except Exception as e:  # handed to the parent, which raises it
                result = ("error", e)
            with os.fdopen(write_fd, "wb") as f:
                pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        payload = f.read()
    _, wait_status = os.waitpid(pid, 0)
    if not payload:
        died = _describe_wait_status(wait_status)
        raise SynthesisCrashError(f"espeak-ng synthesis process died ({died}) on {text!r} with voice {voice!r}")
    kind, value = pickle.loads(payload)
    if kind == "error":
        raise value
    pcm_bytes, events, sr = value
    return np.frombuffer(pcm_bytes, dtype=np.int16), events, sr


def _describe_wait_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _speak(
    engine: _Engine, text: str, voice: str, params: tuple[tuple[int, int], ...]
) -> tuple[bytes, list[tuple[int, int]], int]:
    """Synthesizes with espeak-ng in this process (a child of `_run_isolated`): int16 bytes, WORD events and the
    output rate of the chosen voice (an mbrola voice sets its own)."""
    lib = engine.lib
    chunks: list[bytes] = []
    events: list[tuple[int, int]] = []

    def on_synth(wav, n, event_list):  # (short*, int, espeak_EVENT*) -> int
        if wav and n > 0:
            chunks.append(ctypes.string_at(wav, 2 * n))
        i = 0
        while event_list[i].type != _EVENT_LIST_TERMINATED:
            ev = event_list[i]
            if ev.type == _EVENT_WORD:
                events.append((ev.text_position - 1, ev.sample))
            i += 1
        return 0  # go on

    callback = _SynthCallback(on_synth)
    lib.espeak_SetSynthCallback(callback)
    rc = lib.espeak_SetVoiceByName(voice.encode())
    if rc == _EE_NOT_FOUND:
        raise ValueError(f"unknown espeak-ng voice {voice!r}; `espeak-ng --voices` lists them")
    if rc != _EE_OK:
        raise RuntimeError(f"espeak_SetVoiceByName({voice!r}) failed with {rc}")
    for param, value in params:
        rc = lib.espeak_SetParameter(param, value, 0)
        if rc != _EE_OK:
            raise RuntimeError(f"espeak_SetParameter({param}, {value}) failed with {rc}")
    ctypes.CDLL(None).srand(0)  # the Klatt voices' noise comes from libc's rand()
    data = text.encode()
    rc = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    if rc != _EE_OK:
        raise RuntimeError(f"espeak_Synth failed with {rc} on {text!r}")
    return b"".join(chunks), events, _voice_rate(lib, engine.sample_rate)


def _voice_rate(lib: ctypes.CDLL, default: int) -> int:
    """The rate of the current voice's audio (mbrola voices have their own); `default` on older libraries."""
    get = getattr(lib, "espeak_ng_GetSampleRate", None)
    if get is None:
        return default
    get.restype = ctypes.c_int
    rate = int(get())
    return rate if rate > 0 else default


def _word_spans(
    x: np.ndarray, sr: int, tokens: list[str], events: list[tuple[int, int]]
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Turns WORD events into one sample span per token; trims silence off each span and off the utterance.

    Args:
        x: (T,) float32 audio as espeak produced it.
        tokens: the words of the spoken text, which is them joined by single spaces.
        events: (0-based character offset in the spoken text, sample) per espeak WORD event.

    Returns:
        The trimmed audio (T',) and one (start, end) sample span per token in it.
    """
    T = x.size
    offsets = np.cumsum([0] + [len(t) + 1 for t in tokens[:-1]])  # token i starts at character offsets[i]
    starts = np.full(len(tokens), -1, dtype=np.int64)
    for char, sample in events:
        i = int(np.searchsorted(offsets, char, side="right")) - 1  # the token whose span (and space) holds it
        if 0 <= i < len(tokens) and (starts[i] < 0 or sample < starts[i]):
            starts[i] = min(max(sample, 0), T)
    starts = _fill_missing_starts(starts, [len(t) for t in tokens], T)
    ends = np.append(starts[1:], T)

    F = _frame_length(sr)
    threshold = _frame_energy(x, F).max() * 10.0 ** (-_SILENCE_DB / 10.0)
    spans = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        k = np.flatnonzero(_frame_energy(x[s:e], F) > threshold)  # frames counted from s
        if k.size:
            s, e = s + int(k[0]) * F, min(e, s + (int(k[-1]) + 1) * F)
        spans.append((s, e))

    # Exactly `_MARGIN_SECONDS` before the first word and after the last one, padding with zeros where short.
    margin = round(_MARGIN_SECONDS * sr)
    first, last = spans[0][0] - margin, spans[-1][1] + margin
    x = np.pad(x, (max(0, -first), max(0, last - T)))[max(0, first) : max(0, first) + last - first]
    return x, _valid_spans([(s - first, e - first) for s, e in spans], x.size)


def _fill_missing_starts(starts: np.ndarray, lengths: list[int], T: int) -> np.ndarray:
    """Gives tokens that espeak merged into a neighbour (no event of their own) a share of its span by length."""
    starts = starts.copy()
    if starts[0] < 0:
        starts[0] = 0
    starts = np.maximum.accumulate(starts)  # never before an earlier token; missing ones (-1) take the last start
    known = [i for i in range(len(starts)) if i == 0 or starts[i] != starts[i - 1]]
    for a, b in zip(known, [*known[1:], len(starts)], strict=True):
        if b - a > 1:  # tokens a+1..b-1 share token a's span
            end = starts[b] if b < len(starts) else T
            cum = np.cumsum([0, *lengths[a:b]])
            starts[a:b] = starts[a] + (end - starts[a]) * cum[:-1] // cum[-1]
    return starts


def _frame_length(sr: int) -> int:
    return round(_FRAME_SECONDS * sr)


def _frame_energy(x: np.ndarray, F: int) -> np.ndarray:
    """(ceil(T / F),) mean energy of each F-sample frame of (T,) `x`, the last one possibly shorter."""
    if x.size == 0:
        return np.zeros(0)
    sums = np.add.reduceat(x.astype(np.float64) ** 2, np.arange(0, x.size, F))
    counts = np.minimum(F, x.size - np.arange(0, x.size, F))
    return sums / counts


def _valid_spans(spans: list[tuple[int, int]], T: int) -> list[tuple[int, int]]:
    """Clips spans to [0, T] and makes every one non-empty and none start before the previous one."""
    out = []
    prev = 0
    for s, e in spans:
        s = min(max(s, prev), T - 1)
        e = min(max(e, s + 1), T)
        out.append((s, e))
        prev = s
    return out
