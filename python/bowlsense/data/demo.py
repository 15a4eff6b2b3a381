"""`bowlsense data demo`: a small synthetic dataset, so the whole pipeline runs on a machine with no data.

IT IS A DEMO. The sounds are procedural stand-ins, not recordings; a model trained on them proves the
pipeline works end to end, not that it hears a real dog. Labels are right by construction, so the clips
are written as verified, by "bowlsense demo (synthetic)", and `source` says synthetic.

    eating      crunch bursts: chews of 2-6 band-passed noise cracks with a low thud, 2-4 chews
    drinking    lapping: 3-6 laps per second, each a rising-pitch liquid blip plus a splash
    bowl        metallic clinks: 1-3 strikes of inharmonic partials (free-plate ratios) decaying with 0.1-0.5 s time constants,
                sometimes a short scrape
    background  room tone (pink/brown noise), mains hum (50 or 60 Hz + harmonics), coloured noise
    speech      espeak-ng, several voices and sentences, when installed; otherwise a formant babble (a
                glottal pulse train through vowel formants at a syllable rate of about 4 Hz)

Every clip is 16 kHz mono 16-bit WAV with quiet room tone under it, 1.5-3 s long. Everything derives
from the seed, so two runs write identical bytes (espeak-ng is deterministic for a given version).
Groups (the `group` column) are demo "sessions" of a few clips, and speakers for speech, so grouped
splits behave as on real data.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
from typing import Callable

import numpy as np

from .audio import AudioError, decode_pcm16, write_wav
from .dataset import VERIFIED, Clip, Dataset
from .mixing import to_int16

SR = 16000
CLASSES = ("eating", "drinking", "bowl", "background", "speech")
SESSION = 5  # clips per demo session (split group)
VERIFIER = "bowlsense demo (synthetic: labels by construction)"
README = """# bowlsense demo dataset (synthetic)

This folder was written by `bowlsense data demo`. Every clip is SYNTHETIC: procedural crunches
(eating), lapping (drinking), metallic clinks (bowl), room tone/hum/noise (background) and espeak-ng or
formant-babble speech. It exists so the pipeline runs end to end on a machine with no recordings. A
model trained on it demonstrates the pipeline, not real-world accuracy. Replace it with real, verified
clips (`bowlsense data import`, then `bowlsense data verify`).
"""

SENTENCES = ["good boy, where is your bowl", "dinner is ready", "do you want some water",
             "who is a hungry puppy", "sit down and wait", "I will fill it up in a minute",
             "no, that is not yours", "let us go for a walk after dinner", "are you thirsty again",
             "the kibble is in the cupboard"]
VOICES = ["en-us+m3", "en-us+f2", "en-gb+m1", "en-gb-scotland+f4", "en-029+m5", "en-gb-x-rp+f1"]


def _pink(rng, n, exponent=1.0) -> np.ndarray:
    """Noise with power falling as 1/f^exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.arange(n // 2 + 1, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / f ** (exponent / 2), n)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def _bandpass(x, lo, hi) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / SR)
    spec[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spec, len(x))


def _db(level_db: float) -> float:
    return 32768 * 10 ** (level_db / 20)


def eating(rng, n) -> np.ndarray:
    y = np.zeros(n)
    chews = rng.integers(2, 5)
    for c in range(chews):
        start = int((c + rng.uniform(0.1, 0.6)) * n / (chews + 0.5))
        for _ in range(rng.integers(2, 7)):
            t0 = start + int(rng.uniform(0, 0.18) * SR)
            L = int(rng.uniform(0.02, 0.08) * SR)
            if t0 + L >= n:
                continue
            burst = _bandpass(rng.standard_normal(L), rng.uniform(800, 1500), rng.uniform(4000, 7000))
            burst *= np.exp(-np.arange(L) / (L / rng.uniform(3, 6)))
            y[t0:t0 + L] += burst * _db(rng.uniform(-22, -12)) / (np.abs(burst).max() + 1e-9)
        L = int(0.06 * SR)
        if start + L < n:  # jaw thud
            t = np.arange(L) / SR
            y[start:start + L] += np.sin(2 * np.pi * rng.uniform(60, 120) * t) * np.exp(-t * 40) * _db(-24)
    return y


def drinking(rng, n) -> np.ndarray:
    y = np.zeros(n)
    rate = rng.uniform(3, 6)
    t_lap = rng.uniform(0, 0.1)
    while t_lap < n / SR - 0.1:
        L = int(rng.uniform(0.04, 0.09) * SR)
        t = np.arange(L) / SR
        f0 = rng.uniform(250, 600)
        glide = f0 * (1 + rng.uniform(1, 3) * t / t[-1])        # a bubble's pitch rises as it closes
        blip = np.sin(2 * np.pi * np.cumsum(glide) / SR) * np.sin(np.pi * t / t[-1]) ** 2
        splash = _bandpass(rng.standard_normal(L), 1500, 6000) * np.exp(-t * 60) * 0.3
        i = int(t_lap * SR)
        y[i:i + L] += (blip + splash) * _db(rng.uniform(-20, -12))
        t_lap += 1 / rate * rng.uniform(0.8, 1.2)
    return y


def bowl(rng, n) -> np.ndarray:
    y = np.zeros(n)
    ratios = np.array([1.0, 2.756, 5.404, 8.933, 13.34])     # vibrating free plate / bowl partials
    for _ in range(rng.integers(1, 4)):
        i = int(rng.uniform(0.05, 0.6) * n)
        L = n - i
        t = np.arange(L) / SR
        f0 = rng.uniform(700, 2200)
        decay = rng.uniform(0.1, 0.5)
        strike = np.zeros(L)
        for k, r in enumerate(ratios):
            if f0 * r < 7800:
                strike += np.sin(2 * np.pi * f0 * r * t + rng.uniform(0, 6.28)) * \
                    np.exp(-t / (decay / (1 + 0.7 * k))) / (1 + k)
        y[i:] += strike * _db(rng.uniform(-16, -8)) / (np.abs(strike).max() + 1e-9)
    if rng.random() < 0.4:  # the bowl pushed over the floor
        L = int(rng.uniform(0.2, 0.5) * SR)
        i = int(rng.uniform(0, max(1, n - L)))
        scrape = _bandpass(rng.standard_normal(L), 2000, 7000) * np.hanning(L)
        y[i:i + L] += scrape * _db(-30)
    return y


def background(rng, n) -> np.ndarray:
    kind = rng.integers(3)
    if kind == 0:  # room tone
        return _pink(rng, n, rng.choice([1.0, 2.0])) * _db(rng.uniform(-50, -38))
    if kind == 1:  # mains hum + harmonics over faint noise
        t = np.arange(n) / SR
        f = rng.choice([50.0, 60.0])
        hum = sum(np.sin(2 * np.pi * f * h * t + rng.uniform(0, 6.28)) / h for h in range(1, 6))
        return hum * _db(rng.uniform(-40, -30)) + _pink(rng, n, 1.0) * _db(-55)
    return _pink(rng, n, rng.uniform(0.0, 2.0)) * _db(rng.uniform(-36, -24))  # coloured noise


def babble(rng, n) -> np.ndarray:
    """Vowel-like syllables: a jittered glottal pulse train through three formant resonators."""
    from scipy.signal import lfilter

    vowels = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410)]
    f0 = rng.uniform(95, 230)
    y = np.zeros(n)
    t = int(rng.uniform(0.05, 0.25) * SR)
    while t < n - int(0.15 * SR):
        L = min(int(rng.uniform(0.12, 0.28) * SR), n - t)
        period = SR / (f0 * rng.uniform(0.9, 1.1))
        pulses = np.zeros(L)
        pulses[np.arange(0, L, period).astype(int)] = 1.0
        src = lfilter([1.0], [1.0, -0.95], pulses)         # glottal roll-off
        out = np.zeros(L)
        for fc, bw in zip(vowels[rng.integers(len(vowels))], (80, 100, 120)):
            r = np.exp(-np.pi * bw / SR)
            out += lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / SR), r * r], src)
        out *= np.hanning(L)
        y[t:t + L] += out / (np.abs(out).max() + 1e-9) * _db(rng.uniform(-16, -10))
        t += L + int(rng.uniform(0.02, 0.12) * SR)
    return y


def espeak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray | None:
    import tempfile

    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav = pathlib.Path(tmp) / "say.wav"
        done = subprocess.run([exe, "-w", str(wav), "-v", voice, "-s", str(speed), "-p", str(pitch), text],
                              capture_output=True, timeout=30)
        if done.returncode != 0 or not wav.exists():
            return None
        try:
            return decode_pcm16(f"espeak-ng {voice}", wav.read_bytes())[0].astype(np.float64)
        except AudioError:
            return None


def make_demo(out: str | os.PathLike, per_class: int = 30, seed: int = 0, use_espeak: bool = True,
              progress: bool = False) -> Dataset:
    """Write the demo dataset to `out` (audio/<class>/*.wav, labels.csv, README.md); returns it."""
    out = pathlib.Path(out)
    readme = out / "README.md"
    is_demo = readme.exists() and readme.read_text(errors="replace").startswith("# bowlsense demo dataset")
    if (out / "labels.csv").exists() and not is_demo:
        raise FileExistsError(f"{out}: already holds a dataset that is not a bowlsense demo; pick another folder")
    synth: dict[str, Callable] = {"eating": eating, "drinking": drinking, "bowl": bowl, "background": background}
    have_espeak = use_espeak and shutil.which("espeak-ng") is not None
    jobs = [(label, i) for label in CLASSES for i in range(per_class)]
    if progress:
        from tqdm import tqdm
        jobs = tqdm(jobs, desc="synthesising demo clips", unit="clip")
    clips: list[Clip] = []
    for label, i in jobs:
        h = hashlib.sha256(f"{seed}:{label}:{i}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(h[:8], "little"))
        n = int(rng.uniform(1.5, 3.0) * SR)
        group = f"demo-{label}-session{i // SESSION}"
        how = "procedural"
        if label == "speech":
            voice = VOICES[i % len(VOICES)]
            group = f"demo-speaker-{voice}"
            y = None
            if have_espeak:
                y = espeak(SENTENCES[(i // len(VOICES)) % len(SENTENCES)], voice,
                           int(rng.integers(130, 190)), int(rng.integers(30, 70)))
                how = "espeak-ng"
            if y is None:
                y, how = babble(rng, n), "formant babble"
            else:
                n = max(n, len(y) + int(0.3 * SR))
                pad = int(rng.integers(0, n - len(y) + 1))
                y = np.concatenate([np.zeros(pad), y, np.zeros(n - len(y) - pad)])
        else:
            y = synth[label](rng, n)
        y = y + _pink(rng, n, 1.5) * _db(-62)          # every microphone hears some room
        rel = f"audio/{label}/demo_{label}_{i:03d}.wav"
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, to_int16(y))
        clips.append(Clip(rel, (label,), VERIFIED, hashlib.sha256(path.read_bytes()).hexdigest(),
                          source=f"synthetic: bowlsense data demo ({how}), seed {seed}", license="CC0-1.0",
                          note="synthetic demo clip, not a recording", verified_by=VERIFIER, group=group,
                          root=out))
    (out / "README.md").write_text(README)
    ds = Dataset(out, clips)
    ds.save()
    return ds
