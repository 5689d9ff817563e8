"""Audio augmentation for synthetic speech: additive noise, gain and room reverberation, in numpy.

    rng = np.random.default_rng(seed)
    y = augment(x, 16000, rng, AugmentConfig())          # (T,) float32 in, (T,) float32 in [-1, 1] out

No noise or impulse-response corpora are needed: noises (white, pink, brown, mains hum, babble-like) and room
responses are generated from `rng`, so the same generator state gives the same output. The length never changes and
reverberation is causal with the direct path at lag 0, so word timings of the input stay valid.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

NOISE_KINDS = ("white", "pink", "brown", "hum", "babble")

# Brown and pink noise spectra are flat below this, so their power does not pile up below hearing.
_NOISE_FLOOR_HZ = 20.0
# Babble: talkers summed, their syllable rate and speech band.
_BABBLE_TALKERS = (3, 8)
_SYLLABLES_PER_SECOND = 4.0
_SPEECH_BAND_HZ = (150.0, 4000.0)
# Reverberation tail starts after the direct path by this much (first reflections), in seconds.
_PREDELAY = (0.001, 0.01)


@dataclass(frozen=True)
class AugmentConfig:
    """Which effects `augment` applies, how often, and how strongly. Ranges are (low, high), drawn uniformly."""

    noise_prob: float = 0.6
    noise_kinds: tuple[str, ...] = NOISE_KINDS
    snr_db: tuple[float, float] = (5.0, 30.0)  # speech power over the whole utterance to noise power
    gain_prob: float = 0.8
    gain_db: tuple[float, float] = (-10.0, 4.0)
    reverb_prob: float = 0.3
    rt60: tuple[float, float] = (0.1, 0.7)  # seconds for the tail to decay by 60 dB
    drr_db: tuple[float, float] = (0.0, 12.0)  # direct path energy over reverberant tail energy

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_prob") and not 0.0 <= value <= 1.0:
                raise ValueError(f"AugmentConfig.{f.name} must be in [0, 1], got {value}")
            if isinstance(value, tuple) and f.name != "noise_kinds" and (len(value) != 2 or value[0] > value[1]):
                raise ValueError(f"AugmentConfig.{f.name} must be (low, high) with low <= high, got {value}")
        unknown = set(self.noise_kinds) - set(NOISE_KINDS)
        if unknown or not self.noise_kinds:
            raise ValueError(
                f"AugmentConfig.noise_kinds must be a non-empty subset of {NOISE_KINDS}, got {self.noise_kinds}"
            )
        if self.rt60[0] <= 0:
            raise ValueError(f"AugmentConfig.rt60 must be positive, got {self.rt60}")

    @classmethod
    def disabled(cls) -> AugmentConfig:
        """A config under which `augment` returns its input unchanged."""
        return cls(noise_prob=0.0, gain_prob=0.0, reverb_prob=0.0)

    @classmethod
    def from_dict(cls, d: dict) -> AugmentConfig:
        """Inverse of `dataclasses.asdict`, also after a JSON round trip (lists back to tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def augment(samples: np.ndarray, sample_rate: int, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Applies reverberation, then noise, then gain, each with its probability in `config`.

    Args:
        samples: (T,) audio in [-1, 1].
        sample_rate: in Hz.
        rng: the only source of randomness.
        config: see `AugmentConfig`; `AugmentConfig.disabled()` makes this a copy.

    Returns:
        (T,) float32, scaled down where it would otherwise leave [-1, 1].
    """
    if samples.ndim != 1:
        raise ValueError(f"augment expects (T,) mono audio, got shape {samples.shape}")
    x = samples.astype(np.float32, copy=True)
    if x.size == 0:
        return x
    if rng.random() < config.reverb_prob:
        x = reverberate(x, sample_rate, rng, rt60=rng.uniform(*config.rt60), drr_db=rng.uniform(*config.drr_db))
    if rng.random() < config.noise_prob:
        kind = config.noise_kinds[rng.integers(len(config.noise_kinds))]
        x = add_noise(x, sample_rate, rng, snr_db=rng.uniform(*config.snr_db), kind=kind)
    if rng.random() < config.gain_prob:
        x = x * np.float32(10.0 ** (rng.uniform(*config.gain_db) / 20.0))
    peak = float(np.max(np.abs(x)))
    if peak > 1.0:
        x = x / np.float32(peak)
    return np.clip(x, -1.0, 1.0).astype(np.float32, copy=False)


def add_noise(samples: np.ndarray, sample_rate: int, rng: np.random.Generator, snr_db: float, kind: str) -> np.ndarray:
    """(T,) float32 `samples` plus `kind` noise scaled to `snr_db` below their mean power (not clipped)."""
    power = float(np.mean(samples.astype(np.float64) ** 2))
    if power == 0.0:
        return samples.astype(np.float32, copy=True)
    noise = make_noise(kind, samples.size, sample_rate, rng)
    return (samples + noise * np.sqrt(power * 10.0 ** (-snr_db / 10.0))).astype(np.float32)


def make_noise(kind: str, length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """(T,) float64 noise of unit mean power, T = `length`.

    Kinds: "white"; "pink" (power ~ 1/f) and "brown" (~ 1/f^2), flat below 20 Hz; "hum": 50 or 60 Hz mains with
    decaying harmonics; "babble": several speech-band noises, each switched on and off at a syllable rate.
    """
    if kind == "white":
        noise = rng.standard_normal(length)
    elif kind in ("pink", "brown"):
        noise = _colored_noise(length, sample_rate, rng, exponent=1.0 if kind == "pink" else 2.0)
    elif kind == "hum":
        noise = _hum(length, sample_rate, rng)
    elif kind == "babble":
        noise = _babble(length, sample_rate, rng)
    else:
        raise ValueError(f"unknown noise kind {kind!r}; known: {', '.join(NOISE_KINDS)}")
    power = np.mean(noise**2)
    return noise / np.sqrt(power) if power > 0 else noise


def reverberate(
    samples: np.ndarray, sample_rate: int, rng: np.random.Generator, rt60: float, drr_db: float
) -> np.ndarray:
    """(T,) float32: `samples` convolved with a synthetic room response, cut to T, at the input's mean power."""
    rir = room_impulse_response(sample_rate, rng, rt60, drr_db)
    T = samples.size
    n = 1 << int(np.ceil(np.log2(T + rir.size - 1)))
    wet = np.fft.irfft(np.fft.rfft(samples, n) * np.fft.rfft(rir, n), n)[:T]
    power_in, power_out = np.mean(samples.astype(np.float64) ** 2), np.mean(wet**2)
    if power_out > 0:
        wet *= np.sqrt(power_in / power_out)
    return wet.astype(np.float32)


def room_impulse_response(sample_rate: int, rng: np.random.Generator, rt60: float, drr_db: float) -> np.ndarray:
    """(L,) impulse response: 1 at lag 0 (the direct path), then exponentially decaying noise (the room).

    The tail decays by 60 dB in `rt60` seconds, starts a few milliseconds after the direct path, and carries
    `drr_db` less energy than it.
    """
    predelay = round(rng.uniform(*_PREDELAY) * sample_rate)
    tail_len = max(1, round(rt60 * sample_rate))
    t = np.arange(tail_len) / sample_rate
    tail = rng.standard_normal(tail_len) * np.exp(-np.log(1000.0) * t / rt60)  # amplitude -60 dB at rt60
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(tail**2))
    rir = np.zeros(predelay + tail_len)
    rir[0] = 1.0
    rir[predelay:] += tail
    return rir


def _colored_noise(length: int, sample_rate: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """(T,) noise whose power falls as 1/f^exponent above `_NOISE_FLOOR_HZ`."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    f = np.maximum(np.fft.rfftfreq(length, 1.0 / sample_rate), _NOISE_FLOOR_HZ)
    spectrum *= f ** (-exponent / 2.0)
    spectrum[0] = 0.0
    return np.fft.irfft(spectrum, length)


def _hum(length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """(T,) mains hum: 50 or 60 Hz and its harmonics below Nyquist, amplitudes falling with a random slope."""
    f0 = 50.0 if rng.random() < 0.5 else 60.0
    harmonics = np.arange(1, min(12, int(sample_rate / 2 / f0)) + 1)
    amplitudes = harmonics ** -rng.uniform(0.5, 2.0) * rng.uniform(0.5, 1.0, harmonics.size)
    phases = rng.uniform(0.0, 2 * np.pi, harmonics.size)
    rotation = np.exp(2j * np.pi * f0 / sample_rate * np.arange(length))  # harmonic k is rotation**k: no sin per k
    power = np.ones(length, dtype=complex)
    out = np.zeros(length)
    for amplitude, phase in zip(amplitudes, phases, strict=True):
        power *= rotation
        out += amplitude * (power * np.exp(1j * phase)).imag
    return out


def _babble(length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """(T,) crowd-like noise: a few talkers of speech-band noise, each with a random syllable-rate envelope."""
    f = np.fft.rfftfreq(length, 1.0 / sample_rate)
    lo, hi = _SPEECH_BAND_HZ
    band = ((f >= lo) & (f <= hi)) / np.sqrt(np.maximum(f, lo))  # speech band, falling like pink noise
    n_points = max(2, round(length / sample_rate * _SYLLABLES_PER_SECOND * 2) + 1)
    grid = np.linspace(0, length - 1, n_points)
    out = np.zeros(length)
    for _ in range(rng.integers(_BABBLE_TALKERS[0], _BABBLE_TALKERS[1] + 1)):
        voice = np.fft.irfft(np.fft.rfft(rng.standard_normal(length)) * band, length)
        envelope = np.interp(np.arange(length), grid, rng.random(n_points) ** 2)
        out += voice * envelope
    return out
