"""espeak-ng synthesis (models/data/espeak.py) and the speaker sampler (models/data/voices.py)."""

import random
from itertools import pairwise

import numpy as np
import pytest

from models.data import espeak, voices

try:
    espeak.sample_rate()
except RuntimeError as e:  # espeak-ng not installed
    pytest.skip(str(e), allow_module_level=True)


def _energy_inside(syn: espeak.Synthesis) -> tuple[float, float]:
    """(share of the signal's energy inside word spans, largest mean power of a gap between words / speech's)."""
    x = syn.samples.astype(np.float64) ** 2
    sr = syn.sample_rate
    inside = np.zeros(x.size, dtype=bool)
    for w in syn.words:
        inside[round(w.start * sr) : round(w.end * sr)] = True
    speech_power = x[inside].mean()
    gaps = [x[round(a.end * sr) : round(b.start * sr)] for a, b in pairwise(syn.words)]
    gap_power = max((g.mean() for g in gaps if g.size), default=0.0)
    return x[inside].sum() / x.sum(), gap_power / speech_power


def _check_timings(syn: espeak.Synthesis, text: str) -> None:
    tokens = text.split()
    assert [w.word for w in syn.words] == tokens
    for a, b in pairwise(syn.words):
        assert a.end <= b.start, (a, b)
    for w in syn.words:
        assert 0.0 <= w.start < w.end <= syn.duration, (w, syn.duration)


def test_synthesis_is_float_audio_at_espeak_rate():
    syn = espeak.synthesize("turn on the lights in the kitchen")
    assert syn.sample_rate == espeak.sample_rate() == 22050
    assert syn.samples.dtype == np.float32 and syn.samples.ndim == 1
    assert 1.0 < syn.duration < 4.0, syn.duration
    assert np.abs(syn.samples).max() <= 1.0
    assert np.sqrt(np.mean(syn.samples**2)) > 0.02


@pytest.mark.parametrize(
    ("text", "voice", "variant"),
    [
        ("set a timer for ten minutes in the kitchen", "en-us", None),
        ("it's a well-known café with 42 tables", "en", "m3"),
        ("allume la lumière de la cuisine à sept heures", "fr", "f2"),
        ("stell einen wecker für sieben uhr morgen früh", "de", "klatt"),
        ("打开 厨房 的 灯 然后 设置 一个 十 分钟 的 计时器", "cmn", None),
    ],
)
def test_word_spans_hold_the_speech(text, voice, variant):
    syn = espeak.synthesize(text, voice=voice, variant=variant, word_gap=10)
    _check_timings(syn, text)
    inside, gap = _energy_inside(syn)
    assert inside >= 0.95, f"only {inside:.3f} of the energy lies inside word spans"
    assert gap < 1e-3, f"a gap between words has {gap:.2e} of the speech's power"


def test_timings_without_word_gap_and_utterance_margin():
    text = "what is the weather like in paris tomorrow"
    syn = espeak.synthesize(text, voice="en-us", variant="f3", rate=200)
    _check_timings(syn, text)
    assert _energy_inside(syn)[0] >= 0.95
    margin = 0.05
    assert abs(syn.words[0].start - margin) < 1e-3, syn.words[0]
    assert abs(syn.duration - syn.words[-1].end - margin) < 1e-3, (syn.words[-1], syn.duration)


def test_same_arguments_give_identical_samples_whatever_ran_before():
    args = {"text": "set an alarm for seven", "voice": "en-us", "variant": "f3", "pitch": 60}
    first = espeak.synthesize(**args)
    espeak.synthesize("something else entirely", voice="fr", variant="klatt2", rate=300)
    again = espeak.synthesize(**args)
    assert np.array_equal(first.samples, again.samples)
    assert first.words == again.words


def test_parameters_change_the_speech():
    text = "play some music in the living room"
    slow, fast = espeak.synthesize(text, rate=120), espeak.synthesize(text, rate=300)
    assert fast.duration < 0.7 * slow.duration, (fast.duration, slow.duration)
    gapped = espeak.synthesize(text, word_gap=20)
    assert gapped.duration > espeak.synthesize(text).duration + 6 * 0.15


def test_bad_requests_are_refused_clearly():
    with pytest.raises(ValueError, match="unknown espeak-ng voice 'xx-nowhere'"):
        espeak.synthesize("hello", voice="xx-nowhere")
    with pytest.raises(ValueError, match="unknown espeak-ng variant 'm99'"):
        espeak.synthesize("hello", variant="m99")
    with pytest.raises(ValueError, match="rate must be in"):
        espeak.synthesize("hello", rate=1000)
    with pytest.raises(ValueError, match="at least one word"):
        espeak.synthesize("   ")


def test_tokens_without_events_share_their_neighbours_span():
    # espeak merged tokens 1 and 2 into token 0's word; token 3 has its own event.
    starts = espeak._fill_missing_starts(np.array([10, -1, -1, 100]), [2, 4, 2, 3], T=200)
    assert starts.tolist() == [10, 32, 77, 100]
    assert espeak._fill_missing_starts(np.array([-1, 50]), [1, 1], T=80).tolist() == [0, 50]


def test_every_voice_and_variant_exists_in_espeak():
    known = set(espeak.list_variants())
    variants = {v for v in (*voices.MALE_VARIANTS, *voices.FEMALE_VARIANTS) if v is not None}
    assert variants <= known, variants - known
    for language, names in voices.VOICES.items():
        for name in names:
            text = "打开 灯" if language == "zh" else "hello"
            assert espeak.synthesize(text, voice=name).duration > 0.2, name


def test_test_variants_are_reserved_for_test_splits():
    assert set(voices.TEST_VARIANTS).isdisjoint(voices.train_variants())
    rng = random.Random(0)
    for split in voices.SPLITS:
        drawn = {voices.sample_voice(lang, rng, split).variant for lang in voices.VOICES for _ in range(300)}
        if split in voices.TEST_SPLITS:
            assert drawn == set(voices.TEST_VARIANTS), (split, drawn)
        else:
            assert drawn.isdisjoint(voices.TEST_VARIANTS), (split, drawn & set(voices.TEST_VARIANTS))


def test_sample_voice_is_deterministic_and_in_range():
    a = [voices.sample_voice("en", random.Random(7), "train") for _ in range(3)]
    assert a[0] == a[1] == a[2]
    rng = random.Random(1)
    for _ in range(200):
        v = voices.sample_voice("zh", rng, "dev")
        assert v.espeak_voice == "cmn-latn-pinyin" and voices.PITCH[0] <= v.pitch <= voices.PITCH[1]
        assert voices.RATE[0] <= v.rate <= voices.RATE[1] and v.word_gap in voices.WORD_GAPS
    v = voices.Voice("en", "en-us", "m3", pitch=55, rate=170, pitch_range=60, word_gap=1)
    assert v.name == "en-us+m3/p55/pr60/r170/g1"
    assert espeak.synthesize("hello there", **v.synth_kwargs()).words[1].word == "there"
    with pytest.raises(ValueError, match="no voices for language"):
        voices.sample_voice("xx", rng, "train")
    with pytest.raises(ValueError, match="unknown split"):
        voices.sample_voice("en", rng, "valid")
