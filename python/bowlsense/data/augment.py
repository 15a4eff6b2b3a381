"""Seeded augmentation whose every parameter is written into the example's lineage.

The chain, in order, each step applied with its probability (AugmentConfig holds the ranges):

    step             probability  range                     implementation
    time stretch     0.5          rate 0.9 .. 1.1           audiomentations.TimeStretch (signalsmith)
    pitch shift      0.5          -2 .. +2 semitones        audiomentations.PitchShift (signalsmith)
    room (RIR)       0.3          a file of the RIR folder  mixing.convolve_rir (level kept)
    background noise 0.5          5 .. 30 dB SNR            a verified background clip (mixing.mix_pcm)
    gain             1.0          -6 .. +6 dB               audiomentations.Gain, then peak-limited

Parameters are drawn first, from numpy's Generator seeded with the node's seed, and the audiomentations
transforms are then built with min == max and p = 1, so they compute exactly the recorded values and
no global random state matters. They still draw from Python's global `random` (and may from numpy's
legacy one) as they run; render_augment puts both back, so rendering leaves nothing behind that another
draw in the process would see (Keras draws initial weights from Python's `random`). Noise and impulse
responses do not go through audiomentations' own file loaders: they are read through `Sources`, so noise
is a verified, sha256-checked background clip and both are named by sha256 in the lineage.

None of these change what is in a clip, so the labels are the input's labels.
"""
from __future__ import annotations

import dataclasses
import random
import threading

import numpy as np

from .lineage import Lineage, Sources
from .mixing import convolve_rir, limit_peak, mix_pcm, to_int16

SAMPLE_RATE = 16000


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    time_stretch_p: float = 0.5
    time_stretch_rate: tuple[float, float] = (0.9, 1.1)
    pitch_p: float = 0.5
    pitch_semitones: tuple[float, float] = (-2.0, 2.0)
    rir_p: float = 0.3
    noise_p: float = 0.5
    noise_snr_db: tuple[float, float] = (5.0, 30.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)

    def __post_init__(self):
        for name in ("time_stretch_p", "pitch_p", "rir_p", "noise_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"AugmentConfig.{name} must be a probability, got {getattr(self, name)}")
        for name in ("time_stretch_rate", "pitch_semitones", "noise_snr_db", "gain_db"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"AugmentConfig.{name} must be (low, high), got {(lo, hi)}")
        if self.time_stretch_rate[0] <= 0:
            raise ValueError("time stretch rates must be positive")


DEFAULT_AUGMENT = AugmentConfig()


def plan_augment(recipe: dict, seed: int, sources: Sources, config: AugmentConfig = DEFAULT_AUGMENT) -> dict:
    """An augment recipe over `recipe`, every parameter drawn now from `seed`."""
    rng = np.random.default_rng(seed)
    # Draw every value whether or not its step applies, so changing one probability does not shift
    # the values of the other steps for the same seed.
    apply = rng.random(4)
    rate = float(rng.uniform(*config.time_stretch_rate))
    semitones = float(rng.uniform(*config.pitch_semitones))
    rir_pick, noise_pick = rng.random(2)
    snr = float(rng.uniform(*config.noise_snr_db))
    position = float(rng.random())
    gain = float(rng.uniform(*config.gain_db))

    rirs = sorted(sources.rirs.items(), key=lambda kv: str(kv[1]))
    noises = sorted(sources.background, key=lambda c: c.path)
    node = {"op": "augment", "seed": int(seed),
            "time_stretch_rate": rate if apply[0] < config.time_stretch_p else None,
            "pitch_semitones": semitones if apply[1] < config.pitch_p else None,
            "rir": None, "noise": None, "gain_db": gain, "input": recipe}
    if rirs and apply[2] < config.rir_p:
        sha, path = rirs[int(rir_pick * len(rirs))]
        node["rir"] = {"sha256": sha, "path": path.name}
    if noises and apply[3] < config.noise_p:
        clip = noises[int(noise_pick * len(noises))]
        node["noise"] = {"sha256": clip.sha256, "path": clip.path, "snr_db": snr, "position": position}
    return node


def augment(lineage: Lineage, seed: int, sources: Sources, config: AugmentConfig = DEFAULT_AUGMENT) -> Lineage:
    return Lineage(plan_augment(lineage.recipe, seed, sources, config))


def render_augment(recipe: dict, pcm: np.ndarray, sources: Sources) -> np.ndarray:
    with _global_random_kept:
        return _render_augment(recipe, pcm, sources)


class _GlobalRandomKept:
    """Python's and numpy's global random states put back as they were before the first of any
    overlapping renders began. The feature cache renders on several threads at once: each saving and
    restoring on its own could put back a state another thread had already moved, so the states are saved
    when the first render enters and restored when the last one leaves."""

    def __init__(self):
        self._lock = threading.Lock()
        self._inside = 0
        self._saved = None

    def __enter__(self):
        with self._lock:
            if self._inside == 0:
                self._saved = (random.getstate(), np.random.get_state())
            self._inside += 1

    def __exit__(self, *exc):
        with self._lock:
            self._inside -= 1
            if self._inside == 0:
                random.setstate(self._saved[0])
                np.random.set_state(self._saved[1])


_global_random_kept = _GlobalRandomKept()


def _render_augment(recipe: dict, pcm: np.ndarray, sources: Sources) -> np.ndarray:
    from audiomentations import Gain, PitchShift, TimeStretch

    x = np.asarray(pcm, dtype=np.int16)
    rate = recipe.get("time_stretch_rate")
    if rate is not None:
        t = TimeStretch(min_rate=rate, max_rate=rate, leave_length_unchanged=False, p=1.0)
        x = _through(t, x)
    semitones = recipe.get("pitch_semitones")
    if semitones is not None:
        x = _through(PitchShift(min_semitones=semitones, max_semitones=semitones, p=1.0), x)
    if recipe.get("rir"):
        x = convolve_rir(x, sources.rir_pcm(recipe["rir"]["sha256"]))
    noise = recipe.get("noise")
    if noise:
        bg = sources.clip_pcm(noise["sha256"])
        x = mix_pcm(x, bg, float(noise["snr_db"]), len(x), 0.0, float(noise["position"]))
    g = float(recipe["gain_db"])
    y = Gain(min_gain_db=g, max_gain_db=g, p=1.0)(x.astype(np.float32) / 32768.0, SAMPLE_RATE)
    return to_int16(limit_peak(np.asarray(y, dtype=np.float64) * 32768.0))


def _through(transform, x: np.ndarray) -> np.ndarray:
    y = transform(x.astype(np.float32) / 32768.0, SAMPLE_RATE)
    return to_int16(limit_peak(np.asarray(y, dtype=np.float64) * 32768.0))
