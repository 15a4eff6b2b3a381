"""The shared fixed-point log-mel front end: the C library in firmware/frontend, called through cffi,
so training sees exactly the bits the device computes.

    fe = Frontend()
    frames = fe.process(pcm_int16)          # (n_frames, 64) int16, Q10 nats
    patches = fe.patches(frames)            # (n_patches, 96, 64) int16, hop 48 frames
    nats = fe.to_float(frames)              # float32 log-mel in nats
"""
from __future__ import annotations

import numpy as np

from .config import DEFAULT_CONFIG, FrontendConfig

__all__ = ["DEFAULT_CONFIG", "Frontend", "FrontendConfig", "FrontendError", "patches", "to_float"]


class FrontendError(RuntimeError):
    """The C library returned an error status."""


def _lib():
    try:
        from . import _frontend_cffi
    except ImportError as e:  # pragma: no cover - only when the package was not installed
        raise ImportError(
            "bowlsense's C front end is not compiled: install the package (pip install -e .) "
            "so cffi builds it from firmware/frontend"
        ) from e
    return _frontend_cffi.ffi, _frontend_cffi.lib


def to_float(frames: np.ndarray, config: FrontendConfig = DEFAULT_CONFIG) -> np.ndarray:
    """int16 Q-format log-mel -> float32 nats."""
    return np.asarray(frames, dtype=np.float32) * np.float32(config.output_scale)


def patches(frames: np.ndarray, config: FrontendConfig = DEFAULT_CONFIG) -> np.ndarray:
    """Cut (n_frames, num_mel) into (n_patches, patch_frames, num_mel) windows at patch_hop_frames.

    Only whole patches are returned; a clip shorter than one patch gives zero patches."""
    frames = np.asarray(frames)
    if frames.ndim != 2 or frames.shape[1] != config.num_mel:
        raise ValueError(f"expected frames of shape (n, {config.num_mel}), got {frames.shape}")
    n = 0 if len(frames) < config.patch_frames else 1 + (len(frames) - config.patch_frames) // config.patch_hop_frames
    if n == 0:
        return np.zeros((0, config.patch_frames, config.num_mel), dtype=frames.dtype)
    idx = np.arange(n)[:, None] * config.patch_hop_frames + np.arange(config.patch_frames)[None, :]
    return frames[idx]


class Frontend:
    """Streaming wrapper around one C bs_frontend_state."""

    def __init__(self, config: FrontendConfig = DEFAULT_CONFIG):
        self.config = config
        self._ffi, self._lib = _lib()
        self._state = self._ffi.new("bs_frontend_state *")
        cfg = self._ffi.new("bs_frontend_config *")
        for field in ("sample_rate_hz", "window_samples", "hop_samples", "fft_size", "num_mel",
                      "lower_hz", "upper_hz"):
            setattr(cfg, field, getattr(config, field))
        self._check(self._lib.bs_frontend_init(self._state, cfg), "init")
        compiled = self._ffi.string(self._lib.bs_frontend_config_hash()).decode()
        if compiled != config.hash:
            raise ValueError(
                f"front end config hash {config.hash[:12]} does not match the compiled tables "
                f"({compiled[:12]}); regenerate them with `python -m bowlsense.frontend.tables --write`"
            )

    # -- status handling -------------------------------------------------------------------------
    def _check(self, status: int, what: str) -> int:
        if status < 0:
            names = {-1: "NULL pointer", -2: "configuration mismatch", -3: "bad length", -4: "bad state"}
            raise FrontendError(f"bs_frontend_{what} failed: {names.get(status, status)}")
        return status

    def _validate(self, pcm, sample_rate: int | None) -> np.ndarray:
        if sample_rate is not None and sample_rate != self.config.sample_rate_hz:
            raise ValueError(
                f"expected {self.config.sample_rate_hz} Hz audio, got {sample_rate} Hz; "
                "resample first (bowlsense.data loads any file as 16 kHz mono int16)"
            )
        arr = np.asarray(pcm)
        if arr.dtype != np.int16:
            raise ValueError(f"expected int16 PCM samples, got dtype {arr.dtype}")
        if arr.ndim != 1:
            raise ValueError(f"expected mono PCM as a 1-D array, got shape {arr.shape}")
        return np.ascontiguousarray(arr)

    # -- public API --------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget history: the next frame needs a full window of new samples."""
        self._check(self._lib.bs_frontend_reset(self._state), "reset")

    def push(self, pcm, sample_rate: int | None = None) -> np.ndarray:
        """Streaming: feed any number of samples, get the frames they complete (possibly none)."""
        arr = self._validate(pcm, sample_rate)
        n_frames = self._check(self._lib.bs_frontend_frames_for(self._state, len(arr)), "frames_for")
        out = np.empty((n_frames, self.config.num_mel), dtype=np.int16)
        if len(arr) == 0:
            return out
        written = self._ffi.new("size_t *")
        self._check(
            self._lib.bs_frontend_process(
                self._state,
                self._ffi.cast("const int16_t *", arr.ctypes.data), len(arr),
                self._ffi.cast("int16_t *", out.ctypes.data), n_frames, written,
            ),
            "process",
        )
        assert written[0] == n_frames
        return out

    def process(self, pcm, sample_rate: int | None = None) -> np.ndarray:
        """A whole clip from a fresh state: (n_frames, num_mel) int16 in Q10 nats."""
        self.reset()
        frames = self.push(pcm, sample_rate)
        self.reset()
        return frames

    def to_float(self, frames: np.ndarray) -> np.ndarray:
        return to_float(frames, self.config)

    def patches(self, frames: np.ndarray) -> np.ndarray:
        return patches(frames, self.config)

    @property
    def state_bytes(self) -> int:
        return int(self._lib.bs_frontend_state_bytes())

    @property
    def table_bytes(self) -> int:
        return int(self._lib.bs_frontend_table_bytes())
