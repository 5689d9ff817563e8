r"""`parley hotwords learn`: how a bundle writes each hotword when it hears it, by synthesizing the hotword.

    parley hotwords learn --bundle bundles/en-open --hotwords names.txt --out names.json
    parley serve --hotwords-file names.json        # or each item of names.json in a start message's "hotwords"

A name the model never heard in training comes out as words that sound like it ("lombardi" as "lambary" or "long
bary", "kaminski" as "command ski"), and always much the same words for the same model. Respelling
(server/respell.py) replaces a doubtful run of words that sounds like a hotword; with the model's own ways of writing
the hotword as `sounds_like`, a run is compared with those too, so "lambary" is as close to "lombardi" as "lombardi"
itself, and the search favours them as it favours the hotword, at half its boost (server/plan.py). This is what
AWS Transcribe's custom vocabularies ask their users to write by hand (`SoundsLike`); Parley learns it, because it
can synthesize speech: every hotword is spoken by several voices of several engines, alone and in carrier sentences,
and recognized by the bundle (greedy search, as a stream without hotwords); the words where the
hotword was are its candidates, kept when they sound somewhat like it (`MIN_CLOSENESS` of the sound keys, keys of
`MIN_KEY` letters or more), are not everyday words (`EVERYDAY_LOG_PROB`) and were heard at least `--min-count`
times, the most frequent first. en-open's hotword benchmark: test names 72 -> 91 of 96 said by espeak-ng, 63 -> 79
by the held-out RHVoice (docs/adaptation.md).

The voices are training voices of the open-domain corpus's engines (never a test voice or the held-out engine):
espeak-ng's accents and variants, and where installed SVOX pico, festival, mbrola and flite
(`models.data.engines`), the latter also at `--prosody-draws` drawn training speeds and pitches each (default 0:
on en-open's benchmark 2 bought RHVoice names and cost espeak-ng ones and false alarms). Output: a JSON list of
hotwords in the start message's form, `{"phrase": "lombardi", "sounds_like": ["lambary", "long bary"]}` (a boost
given in --hotwords is kept), which `parley serve --hotwords-file` and a start message's "hotwords" take as they are.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.data.engines import MBROLA_PITCH, PITCH_TRAIN, RATE, EngineVoice, available, speak, voices_for
from models.data.voices import Voice, train_variants
from parley.features import SAMPLE_RATE
from parley.resample import resample
from parley.wer import align
from server.respell import closeness, sound_key

# The hotword alone and after two carrier phrases (a name that ends the sentence: nothing after it to run into);
# none is a frame of benchmarks/bench_hotwords.py.
CARRIERS = ("{}", "this is {}", "i spoke with {}")
MIN_CLOSENESS = 0.4  # sound-key closeness to the hotword of a kept way of writing it
MIN_COUNT = 2  # times a way of writing it must be heard
MIN_KEY = 5  # letters of a kept way of writing's sound key: shorter ones ("fair": "far") are what everyday words sound
MAX_SOUNDS_LIKE = 8  # ways of writing kept per hotword
EXTRA_WORDS = 2  # a way of writing it has at most this many words more than the hotword (server/respell.py's runs)
ENGINES = ("espeak", "pico", "festival", "mbrola", "flite")
ESPEAK_VOICES = 6  # espeak-ng speakers (accent, variant, prosody) drawn from the training ones
PROSODY_DRAWS = 0  # the other engines' voices also at this many drawn training speeds and pitches
# An everyday way of writing is dropped: one whose words the bundle's general LM finds likelier than this (natural log
# per word, each from the sentence's start; en-open's: "lambary" -21.9, "zimon" -19.0, "fair" -13.0, "golden" -11.4,
# "link this" -7.8, "only" -6.6 a word). Respelled, such words would put names into sentences without them.
EVERYDAY_LOG_PROB = -12.0


@dataclass(frozen=True)
class Hotword:
    phrase: str
    boost: float | None = None


def read_hotwords(path: Path) -> list[Hotword]:
    """A hotwords file as `parley serve --hotwords-file` reads it (server/settings.py): text (a phrase a line,
    optionally a tab and its boost; # starts a comment line) or a .json list of start-message hotwords.

    Raises:
        ValueError: a bad boost or JSON item, naming the file (and the line).
    """
    from server.settings import read_hotwords as read_server_hotwords

    return [Hotword(phrase, boost) for phrase, boost in read_server_hotwords(path)]


def learning_voices(
    engines: Sequence[str], espeak_voices: int, seed: int = 0, prosody_draws: int = PROSODY_DRAWS
) -> list[EngineVoice]:
    """The voices that speak the hotwords: each installed engine's English training voices at its default speed and
    pitch and at `prosody_draws` more speeds and pitches drawn (seeded) from the corpus's training ranges, and
    `espeak_voices` espeak-ng speakers drawn from the training accents and variants."""
    rng = random.Random(seed)
    out: list[EngineVoice] = []
    for engine in engines:
        if not available(engine):
            continue
        if engine == "espeak":
            from models.data.voices import VOICES as ACCENTS

            variants = train_variants()
            for _ in range(espeak_voices):
                v = Voice("en", rng.choice(ACCENTS["en"]), rng.choice(variants), 50, rng.randint(150, 190), 50, 0)
                out.append(EngineVoice("espeak", "en", v.espeak_voice, espeak_voice=v))
        else:
            for name in voices_for(engine, "en", "train"):
                out.append(EngineVoice(engine, "en", name))
                for _ in range(prosody_draws):
                    rate = round(rng.uniform(*RATE), 2)
                    pitch = round(rng.uniform(*(MBROLA_PITCH if engine == "mbrola" else PITCH_TRAIN)), 2)
                    out.append(EngineVoice(engine, "en", name, rate=rate, pitch=pitch))
    return out


def slot_words(carrier: str, hyp: Sequence[str]) -> list[str]:
    """The words of `hyp` (a carrier sentence's recognized words) where the carrier's "{}" was: those between the
    last carrier word recognized before it and the first one after it."""
    ref = carrier.format("\0").split()
    k = ref.index("\0")
    lo, hi = -1, len(hyp)
    for r, h in align(ref, hyp):
        if r is not None and h is not None and ref[r] == hyp[h]:
            if r < k:
                lo = max(lo, h)
            elif r > k:
                hi = min(hi, h)
    return list(hyp[lo + 1 : hi])


def ways_of_writing(
    phrase: str,
    heard: Sequence[str],
    min_closeness: float = MIN_CLOSENESS,
    min_count: int = MIN_COUNT,
    limit: int = MAX_SOUNDS_LIKE,
    everyday: Callable[[str], bool] = lambda w: False,
) -> list[str]:
    """The ways of writing `phrase` to keep from what was `heard` where it was said: not the phrase itself, not
    empty, not `everyday` words ("only" for "donnelly" would respell every doubtful "only"), at most EXTRA_WORDS
    words longer, sounding at least `min_closeness` like it with a sound key of MIN_KEY letters or more, heard
    `min_count` times; the most frequent first (then the closest), at most `limit`."""
    key = sound_key(phrase)
    counts = Counter(" ".join(h.split()) for h in heard)
    keep = [
        (n, closeness(sound_key(w), key), w)
        for w, n in counts.items()
        if w
        and w != phrase
        and n >= min_count
        and not everyday(w)
        and len(w.split()) <= len(phrase.split()) + EXTRA_WORDS
        and len(sound_key(w)) >= MIN_KEY
        and closeness(sound_key(w), key) >= min_closeness
    ]
    keep.sort(key=lambda x: (-x[0], -x[1], x[2]))
    return [w for _, _, w in keep[:limit]]


def learn(
    bundle_dir: str | Path,
    phrases: Sequence[str],
    voices: Sequence[EngineVoice],
    carriers: Sequence[str] = CARRIERS,
    batch: int = 32,
    min_count: int = MIN_COUNT,
    limit: int = MAX_SOUNDS_LIKE,
    progress: bool = True,
) -> tuple[dict[str, list[str]], dict[str, dict]]:
    """Each phrase's ways of writing (`ways_of_writing`) by the bundle at `bundle_dir`, and per phrase what was heard
    (counts) and how often the bundle wrote the phrase itself."""
    from server.biasing import phrase_tokens
    from server.bundle import load_bundle
    from server.lm import NgramLM
    from server.transducer import StreamingTransducer, transcribe_many

    bundle = load_bundle(str(bundle_dir), threads=1)
    model = StreamingTransducer(bundle)
    sp = model.heads[0].head.sp
    general = next(
        (
            m.lm
            for m in bundle.lms.values()
            if m.default and isinstance(m.lm, NgramLM) and m.language == model.heads[0].head.language
        ),
        None,
    )

    def everyday(words: str) -> bool:
        """Words the general LM finds likely (`EVERYDAY_LOG_PROB`); without one, a word the tokenizer writes as one
        piece (frequent in its training text, as server/prompt.py judges)."""
        try:
            ids = phrase_tokens(sp, words)
        except ValueError:
            return False
        if general is None:
            return len(words.split()) == 1 and len(ids) == 1
        return general.sentence_log_prob(ids, end=False) / len(words.split()) > EVERYDAY_LOG_PROB

    jobs = [(p, v, c) for p in phrases for v in voices for c in carriers]
    heard: dict[str, list[str]] = {p: [] for p in phrases}
    right: Counter[str] = Counter()
    bar = tqdm(total=len(jobs), desc="hotwords learn", unit="utt", disable=not progress)
    for i in range(0, len(jobs), batch):
        part, audio = [], []
        for p, v, c in jobs[i : i + batch]:
            try:
                s = speak(c.format(p.lower()), v)
            except Exception as e:  # an engine failing on one text: that utterance skipped
                print(f"warning: {v.name} could not say {c.format(p)!r}: {e}", file=sys.stderr)
                continue
            part.append((p, c))
            audio.append(resample(np.asarray(s.samples, dtype=np.float32), s.sample_rate, SAMPLE_RATE))
        for (p, c), t in zip(part, transcribe_many(model, audio, SAMPLE_RATE), strict=True):
            words = " ".join(slot_words(c, t.text.lower().split()))
            heard[p].append(words)
            right[p] += words == " ".join(p.lower().split())
        bar.update(len(jobs[i : i + batch]))
    bar.close()
    out, stats = {}, {}
    for p in phrases:
        low = " ".join(p.lower().split())
        out[p] = ways_of_writing(low, heard[p], min_count=min_count, limit=limit, everyday=everyday)
        stats[p] = {"said": len(heard[p]), "written_right": right[p], "heard": dict(Counter(heard[p]).most_common())}
    return out, stats


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="parley hotwords", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("learn", help="each hotword's sounds_like: how the bundle writes it when it hears it")
    p.add_argument("--bundle", default="bundles/en-open", help="the bundle whose hearing is learned")
    p.add_argument("--hotwords", type=Path, required=True, help="hotwords: text (a phrase a line) or JSON")
    p.add_argument("--out", type=Path, required=True, help="the hotwords with their sounds_like, as JSON")
    p.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES, help="synthesizers used")
    p.add_argument("--espeak-voices", type=int, default=ESPEAK_VOICES, help="espeak-ng speakers drawn")
    p.add_argument(
        "--prosody-draws",
        type=int,
        default=PROSODY_DRAWS,
        help="the other engines' voices also at this many drawn training speeds and pitches",
    )
    p.add_argument("--min-count", type=int, default=MIN_COUNT, help="times a way of writing must be heard")
    p.add_argument("--max-sounds-like", type=int, default=MAX_SOUNDS_LIKE, help="ways of writing kept per hotword")
    p.add_argument("--stats", type=Path, help="also write what was heard for each hotword here (JSON)")
    p.add_argument("--seed", type=int, default=0, help="draws the espeak-ng speakers")
    a = parser.parse_args(argv)
    if not a.hotwords.is_file():
        parser.error(f"--hotwords {a.hotwords}: no such file")
    try:
        hotwords = read_hotwords(a.hotwords)
    except ValueError as e:
        parser.error(f"--hotwords {e}")
    if not hotwords:
        parser.error(f"--hotwords {a.hotwords}: no hotwords in it")
    voices = learning_voices(a.engines, a.espeak_voices, a.seed, a.prosody_draws)
    if not voices:
        parser.error(f"none of the engines {', '.join(a.engines)} is installed here")
    names = sorted({v.engine for v in voices})
    print(f"{len(hotwords)} hotwords x {len(voices)} voices ({', '.join(names)}) x {len(CARRIERS)} carriers")
    from server.bundle import BundleError

    try:  # the bundle is loaded before anything is synthesized
        learned, stats = learn(
            a.bundle, [h.phrase for h in hotwords], voices, min_count=a.min_count, limit=a.max_sounds_like
        )
    except BundleError as e:
        parser.error(f"--bundle {a.bundle}: {e}")
    items = []
    for h in hotwords:
        item: dict = {"phrase": h.phrase}
        if h.boost is not None:
            item["boost"] = h.boost
        item["sounds_like"] = learned[h.phrase]
        items.append(item)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(items, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    right = sum(s["written_right"] for s in stats.values())
    said = sum(s["said"] for s in stats.values())
    print(f"the bundle wrote the hotword itself in {right} of {said} utterances; wrote {a.out}")
    if a.stats:
        a.stats.write_text(json.dumps(stats, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
