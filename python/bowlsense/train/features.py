"""Audio -> model input, the same way on the host and on the device.

PCM (16 kHz int16) -> the shared C front end (bowlsense.frontend, via cffi) -> int16 Q10 log-mel frames
-> 96x64 patches every 48 frames (0.96 s windows, 0.48 s hop). The teacher reads patches as float nats;
the int8 student reads them requantized with its input scale and zero point (quantize_input), which is
the arithmetic of TFLite's QUANTIZE op and what the firmware does with the front end's output.
"""
from __future__ import annotations

import functools

import numpy as np

from ..frontend import DEFAULT_CONFIG

WINDOW_S = DEFAULT_CONFIG.patch_frames * DEFAULT_CONFIG.hop_samples / DEFAULT_CONFIG.sample_rate_hz  # 0.96
HOP_S = DEFAULT_CONFIG.patch_hop_frames * DEFAULT_CONFIG.hop_samples / DEFAULT_CONFIG.sample_rate_hz  # 0.48
# Samples that make exactly one patch: one analysis window plus 95 hops.
PATCH_SAMPLES = DEFAULT_CONFIG.window_samples + (DEFAULT_CONFIG.patch_frames - 1) * DEFAULT_CONFIG.hop_samples
HOP_SAMPLES = DEFAULT_CONFIG.patch_hop_frames * DEFAULT_CONFIG.hop_samples

# The front end's output range in nats, which the student's int8 input is calibrated to (not to whatever
# the training data happens to hold): ln(0 + 0.001) = -6.91 is digital silence; a full-scale signal stays
# below about +7.
INPUT_RANGE_NATS = (-7.0, 8.0)


@functools.lru_cache(maxsize=1)
def frontend():
    from ..frontend import Frontend
    return Frontend()


def pcm_patches(pcm: np.ndarray, pad_short: bool = True) -> np.ndarray:
    """int16 PCM -> (n, 96, 64) int16 Q10 patches. A clip shorter than one window is centred in digital
    silence (pad_short) so that short utterances still give one window, as they would on the device."""
    pcm = np.asarray(pcm, dtype=np.int16)
    if pad_short and len(pcm) < PATCH_SAMPLES:
        pad = PATCH_SAMPLES - len(pcm)
        pcm = np.concatenate([np.zeros(pad // 2, np.int16), pcm, np.zeros(pad - pad // 2, np.int16)])
    fe = frontend()
    return fe.patches(fe.process(pcm))


def clip_patches(path) -> np.ndarray:
    """Any audio file -> (n, 96, 64) int16 Q10 patches, through the data layer's deterministic loader."""
    from ..data.audio import load_audio
    return pcm_patches(load_audio(path))


def to_nats(patches: np.ndarray) -> np.ndarray:
    return np.asarray(patches, dtype=np.float32) * np.float32(DEFAULT_CONFIG.output_scale)


def quantize_input(patches_q10: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Q10 int16 patches -> the int8 model input: TFLite QUANTIZE arithmetic, round(x / scale) + zero_point
    in float32 with ties away from zero, clamped to int8. The firmware applies the same to each frame."""
    x = to_nats(patches_q10) / np.float32(scale)
    q = np.sign(x) * np.floor(np.abs(x) + np.float32(0.5))
    return np.clip(q + zero_point, -128, 127).astype(np.int8)
