"""Sample-level operations used by mixtures and augmentation. Pure functions on int16 PCM, so a recipe
(lineage) that names their parameters reproduces the same samples.
"""
from __future__ import annotations

import numpy as np

FULL_SCALE = 32768.0
# Below this active RMS (-70 dBFS) a clip counts as silent: an SNR relative to it means nothing.
SILENT_RMS = FULL_SCALE * 10 ** (-70 / 20)
# Peak a mixture may reach before the whole mixture is scaled down (instead of clipping).
PEAK_LIMIT = 0.98 * 32767


def active_rms(pcm: np.ndarray, frame: int = 400) -> float:
    """RMS over the louder half of 25 ms frames. A one-word clip padded with silence and a continuous
    sound at the same loudness then get the same level, which is what an SNR should compare."""
    x = np.asarray(pcm, dtype=np.float64)
    if len(x) == 0:
        return 0.0
    n = max(1, len(x) // frame)
    # np.array_split(x, n)'s frames, as two 2-D views (the first len % n frames are one sample longer), so
    # numpy sums each row the way it sums a 1-D frame: the same energies to the last bit, without a
    # Python loop over thousands of frames (mixing spent most of its time there).
    size, longer = divmod(len(x), n)
    head = x[:longer * (size + 1)].reshape(longer, size + 1)
    tail = x[longer * (size + 1):].reshape(n - longer, size)
    energies = np.concatenate([np.mean(np.square(head), axis=1), np.mean(np.square(tail), axis=1)])
    loud = energies[energies >= np.median(energies)]
    return float(np.sqrt(np.mean(loud)))


def free_range(n: int, length: int) -> int:
    """How many start positions a clip of n samples has in (or, if longer, across) a window of length."""
    return abs(length - n)


def offset_from_position(position: float, n: int, length: int) -> int:
    """position in [0, 1) -> an integer offset in [0, free_range]; recorded as a fraction so a recipe can
    be planned without knowing lengths that only rendering reveals (e.g. after a time stretch)."""
    if not 0.0 <= position < 1.0:
        raise ValueError(f"position must be in [0, 1), got {position}")
    return int(np.floor(position * (free_range(n, length) + 1)))


def place(pcm: np.ndarray, length: int, position: float) -> np.ndarray:
    """Fit a clip into a window of `length` samples (float64): a shorter clip is placed at the offset
    and padded with silence; a longer one is cropped starting at the offset."""
    x = np.asarray(pcm, dtype=np.float64)
    off = offset_from_position(position, len(x), length)
    if len(x) <= length:
        out = np.zeros(length)
        out[off:off + len(x)] = x
        return out
    return x[off:off + length].copy()


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def limit_peak(x: np.ndarray) -> np.ndarray:
    """Scale the whole signal down if it would clip; a mixture keeps both parents audible."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return x * (PEAK_LIMIT / peak) if peak > PEAK_LIMIT else x


def noise_gain(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> float:
    """Gain for `noise` so that active_rms(signal) / active_rms(noise * gain) = 10^(snr_db/20).
    1.0 when either side is silent (there is no level to relate to)."""
    s, n = active_rms(signal), active_rms(noise)
    if s < SILENT_RMS or n < SILENT_RMS:
        return 1.0
    return s / (n * 10 ** (snr_db / 20.0))


def mix_pcm(signal: np.ndarray, noise: np.ndarray, snr_db: float, length: int,
            signal_position: float, noise_position: float) -> np.ndarray:
    """signal + noise at snr_db (signal over noise, levels from each parent's own active RMS), both
    placed into `length` samples; peak-limited, rounded to int16."""
    g = noise_gain(signal, noise, snr_db)
    y = place(signal, length, signal_position) + g * place(noise, length, noise_position)
    return to_int16(limit_peak(y))


def convolve_rir(pcm: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Reverberate with a room impulse response: aligned to its direct path (the strongest tap) so the
    event does not move in time, same length and active RMS as the input."""
    from scipy.signal import fftconvolve

    x = np.asarray(pcm, dtype=np.float64)
    h = np.asarray(rir, dtype=np.float64)
    if not np.any(h):
        raise ValueError("impulse response is all zeros")
    delay = int(np.argmax(np.abs(h)))
    y = fftconvolve(x, h)[delay:delay + len(x)]
    before, after = active_rms(x), active_rms(y)
    if after > 0:
        y = y * (before / after)
    return to_int16(limit_peak(y))
