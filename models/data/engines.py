"""Speech synthesizers behind one interface: espeak-ng, mbrola (through espeak-ng), SVOX pico, festival, RHVoice.

    rng = random.Random(0)
    voice = sample_engine_voice("en", "pico", rng, "train")   # EngineVoice(engine="pico", voice="en-US", ...)
    syn = speak("set a timer for ten minutes", voice)         # models.data.espeak.Synthesis: samples, rate, words
    voice.name                                                # "pico:en-US/r0.93/p1.08"

    parley synth "the quick brown fox" --engine festival --voice slt --out fox.wav

What each engine gives, measured here (Debian 12 packages; see ../shared/DATA_SOURCES.md):

| engine | languages | voices | word timings |
| --- | --- | --- | --- |
| espeak | en de es fr it zh | accents x variants x prosody (`models.data.voices`) | exact (WORD events) |
| mbrola | en de fr it | diphone databases mb-* | derived: `models.data.align` (see below) |
| festival | en it | kal, ked, slt (HTS); lp, pc | exact (the Word relation's word_start/word_end) |
| pico | en de es fr it | one per locale (en-US, en-GB, ...) | derived: `models.data.align` (DTW to espeak-ng) |
| rhvoice | en | alan, bdl, clb, slt | derived: `models.data.align` |

mbrola under espeak-ng's library gives one WORD event per utterance (the first word), whatever the text, so its
word timings are derived like pico's; a wrong rate is avoided by reading it after the voice is chosen.

Speaker variety: every engine draws its speed, and pitch where the engine takes one, per utterance. Voices are held
out per engine (`TEST_VOICES`): the test splits hear only those, train and dev never do. A language with one voice
in an engine (pico's de/es/fr/it) holds out a pitch range instead. RHVoice is held out whole (`HELD_OUT_ENGINES`):
no training split ever uses it, so it measures generalization to an unheard synthesizer.

Engines run as subprocesses (pico2wave, RHVoice-test, one persistent festival per voice and process) or through
espeak-ng's library (`models.data.espeak`); the same voice and text always give the same samples.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.data import espeak
from models.data.espeak import Synthesis, WordTiming
from models.data.voices import TEST_SPLITS, Voice, sample_voice

# What `parley corpus open` uses unless told otherwise: the corpus's engines since it was first built (adding one here
# would change every later draw of a seed). flite adds four English speakers for training only (no test voice).
DEFAULT_ENGINES = ("espeak", "mbrola", "festival", "pico", "rhvoice")
ENGINES = (*DEFAULT_ENGINES, "flite")
HELD_OUT_ENGINES = ("rhvoice",)  # never in train or dev: the cross-synthesizer test set

# Voices per engine and language: (train and dev voices, test-only voices).
VOICES: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "mbrola": {
        # mb-us3 has no diphones with espeak-ng's O2 ("on", "long"): mbrola puts silence there. Not used.
        "en": (("mb-us1", "mb-us2"), ("mb-en1",)),
        "de": (("mb-de1", "mb-de2", "mb-de4"), ("mb-de6",)),
        # No Spanish mbrola voice: espeak-ng 1.51's es voices ask mb-es1/es2/mx2 for stressed-vowel diphones they
        # lack ("d-e/", "J-o/") and mb-es4 for the trill ("R2-a"); mbrola replaces each with silence.
        "fr": (("mb-fr1",), ("mb-fr4",)),
        "it": (("mb-it3",), ("mb-it4",)),
    },
    "festival": {
        "en": (("kal", "slt"), ("ked",)),
        "it": (("lp",), ("pc",)),
    },
    "pico": {
        "en": (("en-US",), ("en-GB",)),
        "de": (("de-DE",), ("de-DE",)),
        "es": (("es-ES",), ("es-ES",)),
        "fr": (("fr-FR",), ("fr-FR",)),
        "it": (("it-IT",), ("it-IT",)),
    },
    "rhvoice": {
        "en": ((), ("alan", "bdl", "clb", "slt")),  # evgeniy-eng and lyubov are CC-BY-NC-ND: not used
    },
    # flite's built-in voices (CMU, BSD-like license): rms and awb are speakers no other engine has; slt and kal16 are
    # festival's slt and kal persons through another synthesizer. Training only: the test splits keep their voices.
    "flite": {
        "en": (("rms", "awb", "slt", "kal16"), ()),
    },
}

# Training-only speakers that a corpus draws only when asked for them by name (`parley corpus open --voices`): adding
# them to VOICES would change every later draw of the seed's corpus. festival's rab and don (British men; don is a
# minimal 10 kHz voice) and mbrola's us3 (an American man) through festival's own phone set, which has the diphones
# that espeak-ng's phonemes ask of it in vain; mbrola's us1 and us2 (training speakers of the mbrola engine) through
# festival's front end, phrasing and intonation instead of espeak-ng's. None is a test voice of any engine.
# And mbrola's German, French, Romanian and Dutch speakers reading English (espeak-ng's mb-*-en voices map English
# phonemes onto each speaker's own diphones): accented English, five persons no English voice has. On 300 dev
# sentences they lack 0-6 of the diphones asked of them, which mbrola replaces with silence; de2-en and de3-en lack 239
# and sw2-en 186: not used. de6 and fr4 are German's and French's test speakers: not used either.
EXTRA_VOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "festival": {"en": ("rab", "don", "us3", "us1", "us2")},
    "mbrola": {"en": ("mb-de4-en", "mb-de5-en", "mb-fr1-en", "mb-ro1-en", "mb-nl2-en")},
}

# festival's voice functions and Debian packages.
_FESTIVAL_VOICES = {
    "kal": "voice_kal_diphone",
    "rab": "voice_rab_diphone",
    "don": "voice_don_diphone",
    "us3": "voice_us3_mbrola",
    "us1": "voice_us1_mbrola",
    "us2": "voice_us2_mbrola",
    "ked": "voice_ked_diphone",
    "slt": "voice_cmu_us_slt_arctic_hts",
    "lp": "voice_lp_diphone",
    "pc": "voice_pc_diphone",
}
# The programs each engine runs, for `available`.
_PROGRAMS = {"festival": "festival", "pico": "pico2wave", "rhvoice": "RHVoice-test", "flite": "flite"}
_MBROLA_DIRS = (Path("/usr/share/mbrola"), Path("/usr/share/mbrola/voices"))

# Relative speed and pitch drawn per utterance (1.0 = the engine's default). Where a language has one voice in an
# engine, test pitches come from outside the train range so that test speakers still differ from train ones.
RATE = (0.85, 1.2)
PITCH_TRAIN = (0.9, 1.12)
PITCH_TEST = ((0.78, 0.88), (1.14, 1.3))
MBROLA_PITCH = (0.8, 1.2)  # mbrola's pitch comes from espeak-ng's prosody, one range for every split


@dataclass(frozen=True)
class EngineVoice:
    """One synthetic speaker of any engine: what `speak` needs besides the text."""

    engine: str
    language: str
    voice: str  # the engine's voice name: "mb-us1", "en-GB", "slt"; for espeak the accent ("en-us")
    rate: float = 1.0
    pitch: float = 1.0
    espeak_voice: Voice | None = None  # espeak only: the full speaker (variant, prosody)

    @property
    def name(self) -> str:
        """Compact and unique, for manifests: "festival:slt/r1.05", "espeak:en-us+m3/p55/pr60/r170/g1"."""
        if self.espeak_voice is not None:
            return f"espeak:{self.espeak_voice.name}"
        return f"{self.engine}:{self.voice}/r{self.rate:.2f}/p{self.pitch:.2f}"


def available(engine: str) -> bool:
    """True when this machine can run `engine` (its program, library or voice data is installed)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    if engine == "espeak":
        try:
            espeak.sample_rate()
        except RuntimeError:
            return False
        return True
    if engine == "mbrola":
        return shutil.which("mbrola") is not None and any((d / "us1").exists() for d in _MBROLA_DIRS)
    return shutil.which(_PROGRAMS[engine]) is not None


def languages(engine: str) -> tuple[str, ...]:
    """The languages `engine` speaks."""
    if engine == "espeak":
        from models.data.voices import VOICES as ESPEAK_VOICES

        return tuple(ESPEAK_VOICES)
    return tuple(VOICES[engine])


def voices_for(engine: str, language: str, split: str, only: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The voices `engine` may use for `language` in `split` (test splits: the held-out ones only). With `only`, those
    of them named there, and in train and dev also the training-only `EXTRA_VOICES` named there."""
    if engine in HELD_OUT_ENGINES and split not in TEST_SPLITS:
        return ()
    if engine not in VOICES or language not in VOICES[engine]:
        return ()
    train, test = VOICES[engine][language]
    if not only:
        return test if split in TEST_SPLITS else train
    pool = test if split in TEST_SPLITS else train + EXTRA_VOICES.get(engine, {}).get(language, ())
    return tuple(v for v in pool if v in only)


def training_only_voices() -> set[str]:
    """The names in `EXTRA_VOICES`, every engine and language."""
    return {v for langs in EXTRA_VOICES.values() for group in langs.values() for v in group}


def known_voices() -> set[str]:
    """Every voice name of every non-espeak engine and language, training-only ones included (for `--voices`)."""
    names = {v for langs in VOICES.values() for pair in langs.values() for group in pair for v in group}
    return names | training_only_voices()


def sample_engine_voice(
    language: str, engine: str, rng: random.Random, split: str, only: tuple[str, ...] = ()
) -> EngineVoice:
    """Draws a speaker of `engine` for one utterance of `split`; the same rng state gives the same voice. `only`
    restricts the draw to the named voices (`voices_for`).

    Raises:
        ValueError: `engine` has no voice for `language` in `split` (a held-out engine outside the test splits).
    """
    if engine == "espeak":
        v = sample_voice(language, rng, split)
        return EngineVoice("espeak", language, v.espeak_voice, espeak_voice=v)
    names = voices_for(engine, language, split, only)
    if not names:
        raise ValueError(f"engine {engine!r} has no {language!r} voice for the {split!r} split")
    voice = rng.choice(names)
    rate = round(rng.uniform(*RATE), 2)
    if engine == "mbrola":  # espeak-ng's prosody drives mbrola: words per minute and pitch 0..100
        return EngineVoice(engine, language, voice, rate=rate, pitch=round(rng.uniform(*MBROLA_PITCH), 2))
    single = VOICES[engine][language][0] == VOICES[engine][language][1]
    pitch = rng.uniform(*rng.choice(PITCH_TEST)) if split in TEST_SPLITS and single else rng.uniform(*PITCH_TRAIN)
    return EngineVoice(engine, language, voice, rate=rate, pitch=round(pitch, 2))


def speak(text: str, voice: EngineVoice) -> Synthesis:
    """Speaks normalized `text` (words separated by single spaces) with `voice`; one timing per token.

    Raises:
        ValueError: empty text, or a voice the engine lacks.
        RuntimeError: the engine is missing or failed.
        models.data.espeak.SynthesisCrashError: espeak-ng (or mbrola under it) crashed on this text.
        EngineError: another engine failed or hung on this text.
    """
    if not text.split():
        raise ValueError("speak needs at least one word, got empty text")
    if voice.engine == "espeak":
        assert voice.espeak_voice is not None, "an espeak EngineVoice carries its models.data.voices.Voice"
        return espeak.synthesize(text, **voice.espeak_voice.synth_kwargs())
    if voice.engine == "mbrola":
        syn = espeak.synthesize(text, voice=voice.voice, rate=round(170 * voice.rate), pitch=round(50 * voice.pitch))
        from models.data.align import transfer_timings

        return Synthesis(
            syn.samples, syn.sample_rate, transfer_timings(text, voice.language, syn.samples, syn.sample_rate)
        )
    if voice.engine == "festival":
        return _festival(text, voice)
    if voice.engine == "pico":
        x, sr = _pico(text, voice)
    elif voice.engine == "rhvoice":
        x, sr = _rhvoice(text, voice)
    elif voice.engine == "flite":
        x, sr = _flite(text, voice)
    else:
        raise ValueError(f"unknown engine {voice.engine!r}; known: {', '.join(ENGINES)}")
    from models.data.align import transfer_timings

    x = _trim(x, sr)
    return Synthesis(x, sr, transfer_timings(text, voice.language, x, sr))


def _trim(x: np.ndarray, sr: int, margin_s: float = 0.05, floor_db: float = 45.0) -> np.ndarray:
    """Cuts leading and trailing silence down to `margin_s`, as models.data.espeak does for its own output."""
    F = round(0.005 * sr)
    n = x.size // F
    if n == 0:
        return x
    e = (x[: n * F].astype(np.float64).reshape(n, F) ** 2).mean(axis=1)
    loud = np.flatnonzero(e > e.max() * 10 ** (-floor_db / 10))
    m = round(margin_s * sr)
    return x[max(0, int(loud[0]) * F - m) : min(x.size, (int(loud[-1]) + 1) * F + m)]


class EngineError(RuntimeError):
    """A synthesizer failed or hung on one text (RHVoice-test hangs on a few sentences); another voice or engine
    usually speaks it."""


_TIMEOUT_S = 20.0  # a sentence takes well under a second; a hung engine is killed after this


def _run(cmd: list[str], stdin: str | None = None) -> None:
    try:
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except FileNotFoundError as e:
        raise RuntimeError(f"{cmd[0]} is not installed: {e}") from e
    except subprocess.TimeoutExpired as e:
        raise EngineError(f"{cmd[0]} hung for {_TIMEOUT_S:.0f} s on {(stdin or cmd[-1])[:80]!r}") from e
    if r.returncode != 0:
        raise EngineError(f"{cmd[0]} failed ({r.returncode}): {r.stderr.strip()[:300]}")


def _read_wav(path: str) -> tuple[np.ndarray, int]:
    from parley.audio import read_wav

    x, sr = read_wav(path)
    if x.size == 0:
        raise RuntimeError(f"the engine wrote no audio to {path}")
    return x.astype(np.float32), sr


def _pico(text: str, voice: EngineVoice) -> tuple[np.ndarray, int]:
    """pico2wave with its markup for speed and pitch (percent of default)."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "o.wav")
        markup = (
            f"<speed level='{round(100 * voice.rate)}'><pitch level='{round(100 * voice.pitch)}'>{text}</pitch></speed>"
        )
        _run(["pico2wave", "-l", voice.voice, "-w", out, markup])
        return _read_wav(out)


def _rhvoice(text: str, voice: EngineVoice) -> tuple[np.ndarray, int]:
    """RHVoice-test reading stdin; -r and -t are percentages of default speed and pitch."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "o.wav")
        cmd = ["RHVoice-test", "-p", voice.voice, "-r", str(round(100 * voice.rate))]
        _run([*cmd, "-t", str(round(100 * voice.pitch)), "-o", out], stdin=text + "\n")
        return _read_wav(out)


# Mean F0 (Hz) of the flite voices that take a target F0, which `pitch` scales: the diphone voice only (the clustergen
# voices rms, awb and slt ignore it and keep their own).
_FLITE_F0 = {"kal16": 105.0}


def _flite(text: str, voice: EngineVoice) -> tuple[np.ndarray, int]:
    """flite with its duration stretch (1 / rate) and, where the voice takes one, a target mean F0 (`_FLITE_F0`)."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "o.wav")
        cmd = ["flite", "-voice", voice.voice, "-t", text, "-o", out]
        cmd += ["--setf", f"duration_stretch={1 / voice.rate:.3f}"]
        if voice.voice in _FLITE_F0:
            cmd += ["--setf", f"int_f0_target_mean={round(_FLITE_F0[voice.voice] * voice.pitch)}"]
        _run(cmd)
        return _read_wav(out)


class _Festival:
    """A persistent `festival --pipe` with one voice selected (starting festival and loading a voice costs ~0.3 s,
    more than speaking a sentence). stdbuf makes its stdout line-buffered so that replies can be read back."""

    def __init__(self, voice: str) -> None:
        if voice not in _FESTIVAL_VOICES:
            raise ValueError(f"unknown festival voice {voice!r}; known: {', '.join(_FESTIVAL_VOICES)}")
        prefix = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []
        try:
            self.proc = subprocess.Popen(
                [*prefix, "festival", "--pipe"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                encoding="latin-1",  # festival reads bytes as Latin-1: UTF-8 accents would be two odd characters
                errors="replace",
                bufsize=1,
            )
        except FileNotFoundError as e:
            raise RuntimeError(f"festival is not installed: {e}") from e
        self._send(f"({_FESTIVAL_VOICES[voice]})\n")

    def _send(self, cmd: str) -> list[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(cmd + '(format t "@@END\\n")\n')
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("festival exited unexpectedly")
            if line.strip() == "@@END":
                return lines
            lines.append(line.strip())

    def say(self, text: str, stretch: float, out: str) -> list[tuple[float, float]]:
        """Writes `out` (RIFF WAV) and returns (start, end) of each word festival saw, in seconds."""
        quoted = text.replace("\\", " ").replace('"', " ")
        lines = self._send(
            f"(Parameter.set 'Duration_Stretch {stretch:.3f})\n"
            f'(set! utt (SynthText "{quoted}"))\n'
            f'(utt.save.wave utt "{out}" \'riff)\n'
            '(mapcar (lambda (w) (format t "W %f %f\\n" (item.feat w "word_start") (item.feat w "word_end")))'
            " (utt.relation.items utt 'Word))\n"
        )
        return [(float(a), float(b)) for _, a, b in (ln.split() for ln in lines if ln.startswith("W "))]


_festivals: dict[tuple[int, str], _Festival] = {}
_festival_lock = threading.Lock()


def _festival(text: str, voice: EngineVoice) -> Synthesis:
    key = (os.getpid(), voice.voice)  # a forked worker starts its own
    with _festival_lock:
        if key not in _festivals:
            _festivals[key] = _Festival(voice.voice)
        fest = _festivals[key]
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "o.wav")
            spans = fest.say(text, 1.0 / voice.rate, out)
            if not os.path.exists(out):
                raise EngineError(f"festival ({voice.voice}) wrote no audio for {text[:80]!r}")
            x, sr = _read_wav(out)
    tokens = text.split()
    if len(spans) != len(tokens):  # festival split or merged words (it tokenizes "don't", numbers): derive instead
        from models.data.align import transfer_timings

        x = _trim(x, sr)
        return Synthesis(x, sr, transfer_timings(text, voice.language, x, sr))
    m = 0.05
    a = max(0.0, spans[0][0] - m)
    b = min(x.size / sr, spans[-1][1] + m)
    x = x[round(a * sr) : round(b * sr)]
    T = x.size / sr
    words = [
        WordTiming(t, min(max(s - a, 0.0), T), min(max(e - a, 0.0), T))
        for t, (s, e) in zip(tokens, spans, strict=False)
    ]
    return Synthesis(x, sr, words)


def main(argv: list[str] | None = None) -> int:
    """`parley synth`: one sentence through any engine into a 16 kHz WAV file, word timings printed as JSON."""
    import argparse
    import json

    from parley.audio import write_wav
    from parley.features import SAMPLE_RATE
    from parley.resample import resample

    p = argparse.ArgumentParser(
        prog="parley synth",
        description="Speak one sentence into a 16 kHz WAV file with any of Parley's synthesizers; print the word "
        "timings.\n\n"
        '    parley synth "set a timer for ten minutes" --voice en-us --variant m3 --out timer.wav\n'
        '    parley synth "the quick brown fox" --engine festival --voice slt --out fox.wav\n'
        '    parley synth "guten morgen" --engine pico --language de --out gm.wav',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("text", help="the sentence (normalized: lowercase words separated by spaces)")
    p.add_argument("--engine", default="espeak", choices=ENGINES, help="synthesizer (default: espeak)")
    p.add_argument("--language", default="en", help="en, de, es, fr, it or zh (default: en)")
    p.add_argument(
        "--voice",
        default=None,
        help="the engine's voice: espeak accent (en-us, de, cmn-latn-pinyin), mbrola mb-us1, festival "
        "kal/slt/ked/lp/pc, pico en-US/de-DE, rhvoice slt/alan/bdl/clb (default: the language's first)",
    )
    p.add_argument("--variant", default=None, help="espeak only: voice variant, e.g. m3, f2, klatt")
    p.add_argument("--rate", type=float, default=1.0, help="relative speed, 1.0 = the engine's default")
    p.add_argument("--pitch", type=float, default=1.0, help="relative pitch where the engine takes one")
    p.add_argument("--out", default="synth.wav", help="output WAV file (default: synth.wav)")
    a = p.parse_args(argv)
    if not available(a.engine):
        p.error(f"engine {a.engine} is not installed here (see README: Data)")
    try:
        if a.engine == "espeak":
            accent = a.voice or sample_voice(a.language, random.Random(0), "train").espeak_voice
            ev = Voice(a.language, accent, a.variant, round(50 * a.pitch), round(175 * a.rate), 50, 0)
            voice = EngineVoice("espeak", a.language, accent, espeak_voice=ev)
        else:
            names = VOICES[a.engine].get(a.language)
            if not names:
                p.error(f"engine {a.engine} does not speak {a.language!r}; it speaks {', '.join(languages(a.engine))}")
            voice = EngineVoice(a.engine, a.language, a.voice or (names[0] or names[1])[0], a.rate, a.pitch)
        syn = speak(a.text, voice)
    except ValueError as e:
        p.error(str(e))
    write_wav(a.out, resample(syn.samples, syn.sample_rate, SAMPLE_RATE), SAMPLE_RATE)
    print(
        json.dumps(
            {
                "audio": a.out,
                "voice": voice.name,
                "duration": round(syn.duration, 3),
                "words": [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)} for w in syn.words],
            },
            ensure_ascii=False,
        )
    )
    return 0
