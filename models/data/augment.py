"""Audio augmentation for synthetic speech, aimed at real audio: noise, gain, rooms, channels, speakers, in numpy.

    rng = np.random.default_rng(seed)
    y = augment(x, 16000, rng, AugmentConfig())          # (T,) float32 in, (T,) float32 in [-1, 1] out
    y, applied = augment_logged(x, 16000, rng, AugmentConfig.open_domain())   # applied: ["vtlp", "telephone", ...]

Effects: additive noise (white, pink, brown, mains hum, babble) at an SNR; gain; room reverberation (synthetic
exponentially decaying responses with early reflections); vocal-tract-length and pitch perturbation (the spectrum
warped along frequency, `vtlp`); a telephone channel (300-3400 Hz band, an 8 kHz round trip, G.711 mu-law); and a
lossy-codec-like channel (band limit, coarse spectral quantization, dropped high bands; `codec`). Which of them an
utterance got is logged in its manifest (`augment`), so WER can be reported per condition.

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
    # Drawn only when their probability is above 0, so older configs give the same audio as before they existed.
    vtlp_prob: float = 0.0
    vtlp_alpha: tuple[float, float] = (0.88, 1.14)  # frequency warp factor: < 1 longer tract, > 1 shorter
    telephone_prob: float = 0.0
    codec_prob: float = 0.0
    codec_cutoff_hz: tuple[float, float] = (3500.0, 7000.0)

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
    def open_domain(cls) -> AugmentConfig:
        """The open-domain corpus's mix (models.data.opencorpus): stronger and more varied noise, more rooms, telephone
        and codec channels, speaker perturbation; about one utterance in six comes out untouched."""
        return cls(
            noise_prob=0.55, snr_db=(0.0, 30.0), gain_prob=0.8, gain_db=(-20.0, 4.0), reverb_prob=0.35,
            rt60=(0.1, 1.0), drr_db=(-3.0, 12.0), vtlp_prob=0.4, telephone_prob=0.15, codec_prob=0.12,
        )  # fmt: skip

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
    return augment_logged(samples, sample_rate, rng, config)[0]


def augment_logged(
    samples: np.ndarray, sample_rate: int, rng: np.random.Generator, config: AugmentConfig
) -> tuple[np.ndarray, list[str]]:
    """`augment`, also returning the names of the effects applied, in order ("vtlp", "reverb", "noise:pink",
    "telephone", "codec", "gain"); the length never changes, so word timings stay valid."""
    if samples.ndim != 1:
        raise ValueError(f"augment expects (T,) mono audio, got shape {samples.shape}")
    x = samples.astype(np.float32, copy=True)
    applied: list[str] = []
    if x.size == 0:
        return x, applied
    if config.vtlp_prob > 0 and rng.random() < config.vtlp_prob:
        x = vtlp(x, rng.uniform(*config.vtlp_alpha))
        applied.append("vtlp")
    if rng.random() < config.reverb_prob:
        x = reverberate(x, sample_rate, rng, rt60=rng.uniform(*config.rt60), drr_db=rng.uniform(*config.drr_db))
        applied.append("reverb")
    if rng.random() < config.noise_prob:
        kind = config.noise_kinds[rng.integers(len(config.noise_kinds))]
        x = add_noise(x, sample_rate, rng, snr_db=rng.uniform(*config.snr_db), kind=kind)
        applied.append(f"noise:{kind}")
    if config.telephone_prob > 0 and rng.random() < config.telephone_prob:
        x = telephone(x, sample_rate)
        applied.append("telephone")
    elif config.codec_prob > 0 and rng.random() < config.codec_prob:
        x = codec(x, sample_rate, rng, cutoff_hz=rng.uniform(*config.codec_cutoff_hz))
        applied.append("codec")
    if rng.random() < config.gain_prob:
        x = x * np.float32(10.0 ** (rng.uniform(*config.gain_db) / 20.0))
        applied.append("gain")
    peak = float(np.max(np.abs(x)))
    if peak > 1.0:
        x = x / np.float32(peak)
    return np.clip(x, -1.0, 1.0).astype(np.float32, copy=False), applied


_STFT = 512  # frame of the spectral effects (32 ms at 16 kHz)
_HOP = 128


def _stft(x: np.ndarray) -> np.ndarray:
    """(T,) -> (N, _STFT // 2 + 1) complex frames of a Hann-windowed STFT (T padded to whole hops)."""
    pad = np.pad(x.astype(np.float64), (_STFT, _STFT + (-x.size) % _HOP))
    idx = np.arange(0, pad.size - _STFT + 1, _HOP)[:, None] + np.arange(_STFT)
    return np.fft.rfft(pad[idx] * np.hanning(_STFT), axis=1)


def _istft(frames: np.ndarray, T: int) -> np.ndarray:
    """Inverse of `_stft` by weighted overlap-add; returns (T,) float32."""
    w = np.hanning(_STFT)
    y = np.fft.irfft(frames, _STFT, axis=1) * w
    n = (frames.shape[0] - 1) * _HOP + _STFT
    out, norm = np.zeros(n), np.zeros(n)
    for i in range(frames.shape[0]):
        out[i * _HOP : i * _HOP + _STFT] += y[i]
        norm[i * _HOP : i * _HOP + _STFT] += w**2
    out = out / np.maximum(norm, 1e-8)
    return out[_STFT : _STFT + T].astype(np.float32)


def vtlp(samples: np.ndarray, alpha: float) -> np.ndarray:
    """(T,) -> (T,): every frequency multiplied by `alpha`, timing untouched: formants and harmonics move together,
    as with a shorter (alpha > 1) or longer vocal tract and a higher or lower voice.

    A phase vocoder: each output bin k takes the magnitude of input frequency k / alpha, and its phase advances by
    alpha times that input frequency's measured advance per hop, so a sinusoid comes out at alpha times its
    frequency instead of keeping it."""
    S = _stft(samples)  # (N, K)
    K = S.shape[1]
    omega = 2 * np.pi * np.arange(K) * _HOP / _STFT  # expected phase advance per hop of each bin
    phase = np.angle(S)
    dphi = np.diff(phase, axis=0, prepend=phase[:1]) - omega
    advance = omega + (dphi + np.pi) % (2 * np.pi) - np.pi  # (N, K) measured advance per hop
    src = np.arange(K) / alpha
    lo = np.clip(np.floor(src).astype(int), 0, K - 1)
    hi = np.clip(lo + 1, 0, K - 1)
    frac = np.clip(src - lo, 0.0, 1.0)
    mag = np.abs(S)
    warped = mag[:, lo] * (1 - frac) + mag[:, hi] * frac
    warped[:, src > K - 1] = 0.0
    adv = alpha * (advance[:, lo] * (1 - frac) + advance[:, hi] * frac)
    adv[0] = phase[0, lo]
    return _istft(warped * np.exp(1j * np.cumsum(adv, axis=0)), samples.size)


def telephone(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """(T,) -> (T,): a narrowband phone line: 300-3400 Hz, an 8 kHz round trip, 8-bit G.711 mu-law."""
    from parley.resample import resample

    n = samples.size
    spec = np.fft.rfft(samples.astype(np.float64))
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    spec[(f < 300.0) | (f > 3400.0)] = 0.0
    x = np.fft.irfft(spec, n).astype(np.float32)
    narrow = resample(x, sample_rate, 8000)
    peak = max(float(np.max(np.abs(narrow))), 1e-6)
    mu = 255.0
    y = narrow / peak
    code = np.round(np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu) * 127.0) / 127.0
    narrow = (np.sign(code) * np.expm1(np.abs(code) * np.log1p(mu)) / mu * peak).astype(np.float32)
    out = resample(narrow, 8000, sample_rate)
    return np.pad(out, (0, max(0, n - out.size)))[:n].astype(np.float32)


def codec(samples: np.ndarray, sample_rate: int, rng: np.random.Generator, cutoff_hz: float) -> np.ndarray:
    """(T,) -> (T,): what low-bitrate perceptual codecs leave: no highs above `cutoff_hz`, magnitudes quantized
    coarsely on a log scale, and the weakest bins of each frame (holes in the spectrum) dropped."""
    S = _stft(samples)
    f = np.fft.rfftfreq(_STFT, 1.0 / sample_rate)
    S[:, f > cutoff_hz] = 0.0
    mag, phase = np.abs(S), np.angle(S)
    step_db = rng.uniform(1.5, 4.0)
    db = 20 * np.log10(mag + 1e-9)
    db = np.round(db / step_db) * step_db
    floor = np.percentile(db, rng.uniform(30, 60), axis=1, keepdims=True)  # per frame
    mag = np.where(db > floor, 10 ** (db / 20), 0.0)
    return _istft(mag * np.exp(1j * phase), samples.size)


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
