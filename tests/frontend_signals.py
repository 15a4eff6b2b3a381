"""Adversarial test signals for the front end (16 kHz int16), shared by the host, build-matrix and HIL tests."""
from __future__ import annotations

import numpy as np

RATE = 16000


def adversarial_signals(seconds: float = 1.0) -> dict[str, np.ndarray]:
    n = int(RATE * seconds)
    t = np.arange(n) / RATE
    rng = np.random.default_rng(20261126)
    impulses = np.zeros(n, dtype=np.int16)
    impulses[::1234] = 32767
    impulses[617::2468] = -32768
    # logarithmic sweep 20 Hz -> 8 kHz
    f0, f1 = 20.0, 8000.0
    phase = 2 * np.pi * f0 * seconds / np.log(f1 / f0) * (np.exp(t / seconds * np.log(f1 / f0)) - 1)
    return {
        "silence": np.zeros(n, dtype=np.int16),
        "dc_positive": np.full(n, 32767, dtype=np.int16),
        "dc_negative": np.full(n, -32768, dtype=np.int16),
        "square_full_scale": np.where(np.sin(2 * np.pi * 440 * t) >= 0, 32767, -32768).astype(np.int16),
        "clipped_sine": np.clip(60000 * np.sin(2 * np.pi * 250 * t), -32768, 32767).astype(np.int16),
        "impulses": impulses,
        "white_noise": np.clip(rng.normal(0, 8000, n), -32768, 32767).astype(np.int16),
        "quiet_noise": rng.integers(-2, 3, n).astype(np.int16),
        "sweep": (30000 * np.sin(phase)).astype(np.int16),
        "random_int16": rng.integers(-32768, 32768, n, dtype=np.int64).astype(np.int16),
        "nyquist": (np.where(np.arange(n) % 2 == 0, 1, -1) * 20000).astype(np.int16),
    }
