"""The front end's configuration: the single source of truth for every number the C tables, the
model manifest and the firmware's HELLO carry."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json


@dataclasses.dataclass(frozen=True)
class FrontendConfig:
    """YAMNet's published front end, in the fixed-point form bowlsense computes it."""

    sample_rate_hz: int = 16000
    window_samples: int = 400          # 25 ms periodic Hann
    hop_samples: int = 160             # 10 ms
    fft_size: int = 512
    num_mel: int = 64
    lower_hz: int = 125
    upper_hz: int = 7500
    log_offset: float = 0.001          # ln(mel + log_offset), samples scaled to [-1, 1)
    output_frac_bits: int = 10         # int16 output: value / 2**10 = nats
    patch_frames: int = 96             # 0.96 s model input
    patch_hop_frames: int = 48         # 0.48 s between patches
    # Bump when the integer algorithm changes in a way that changes output bits: it is part of the hash,
    # so feature caches and models trained on the old bits are invalidated.
    algorithm_version: int = 3

    @property
    def num_bins(self) -> int:
        return self.fft_size // 2 + 1

    @property
    def output_scale(self) -> float:
        """Nats per output LSB."""
        return 1.0 / (1 << self.output_frac_bits)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @functools.cached_property  # frozen, so it cannot go stale; the feature cache asks for it per example
    def hash(self) -> str:
        """Stable sha256 (hex) of the canonical JSON: equal configs hash equal on every machine."""
        return hashlib.sha256(self.canonical_json().encode("ascii")).hexdigest()

    @classmethod
    def from_dict(cls, d: dict) -> "FrontendConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown front end config keys: {sorted(unknown)}")
        return cls(**d)


DEFAULT_CONFIG = FrontendConfig()
