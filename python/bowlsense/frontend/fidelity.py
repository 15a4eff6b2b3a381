"""The fidelity reference: YAMNet's published front end in float64 numpy.

tf.signal.stft(x, 400, 160, 512, periodic Hann, pad_end=False) -> |.| ->
linear_to_mel_weight_matrix(64, 257, 16000, 125, 7500) -> log(mel + 0.001), with x = pcm / 32768.
Agrees with tf.signal to about 1e-5 nats (../shared/yamnet/README.md); the fixed-point front end is
measured against it.
"""
from __future__ import annotations

import numpy as np

from .config import DEFAULT_CONFIG, FrontendConfig
from .tables import mel_weight_matrix, periodic_hann


def float_logmel(pcm: np.ndarray, config: FrontendConfig = DEFAULT_CONFIG) -> np.ndarray:
    """int16 (or float in [-1, 1)) samples -> float64 (n_frames, num_mel) log-mel in nats."""
    x = np.asarray(pcm)
    x = x.astype(np.float64) / 32768.0 if x.dtype == np.int16 else x.astype(np.float64)
    n_frames = 0 if len(x) < config.window_samples else 1 + (len(x) - config.window_samples) // config.hop_samples
    if n_frames == 0:
        return np.zeros((0, config.num_mel))
    idx = np.arange(n_frames)[:, None] * config.hop_samples + np.arange(config.window_samples)[None, :]
    frames = x[idx] * periodic_hann(config.window_samples)
    spectrum = np.abs(np.fft.rfft(frames, n=config.fft_size, axis=1))
    return np.log(spectrum @ mel_weight_matrix(config) + config.log_offset)
