"""model.json: the manifest that travels with model.tflite (ARCHITECTURE.md, "Manifest").

One schema, read by training (writes it), export (checks it against the .tflite), the device client
(checks HELLO against it) and the HIL tests.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import tempfile
from typing import Any

from .frontend.config import FrontendConfig

SCHEMA_VERSION = 1
BACKGROUND = "background"  # not a model output: "no class active"


@dataclasses.dataclass
class Quantization:
    scale: float
    zero_point: int
    shape: list[int]
    dtype: str = "int8"


@dataclasses.dataclass
class Threshold:
    """Hysteresis on the smoothed probability: an event starts at >= on and ends below off."""
    on: float = 0.5
    off: float = 0.35


@dataclasses.dataclass
class Smoothing:
    """Moving average of the last `windows` per-window probabilities (0.48 s hop), per label."""
    windows: int = 3
    min_event_windows: int = 1


@dataclasses.dataclass
class Manifest:
    labels: list[str]
    privacy_labels: list[str]
    thresholds: dict[str, Threshold]
    smoothing: Smoothing
    frontend: FrontendConfig
    input: Quantization
    output: Quantization
    tflite_sha256: str
    macs: int = 0
    params: int = 0
    weight_bytes: int = 0
    peak_ram_bytes: int | None = None
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    name: str = "default"
    created_by: str = "bowlsense"
    schema_version: int = SCHEMA_VERSION

    @property
    def frontend_hash(self) -> str:
        return self.frontend.hash

    def validate(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"model.json schema_version {self.schema_version}, expected {SCHEMA_VERSION}")
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"model.json labels must be unique and non-empty, got {self.labels}")
        if BACKGROUND in self.labels:
            raise ValueError("'background' is not a model output: it means no label is active")
        for name in self.privacy_labels:
            if name not in self.labels:
                raise ValueError(f"privacy label {name!r} is not one of the labels {self.labels}")
        missing = set(self.labels) - set(self.thresholds)
        if missing:
            raise ValueError(f"model.json has no threshold for {sorted(missing)}")
        for name, t in self.thresholds.items():
            if not 0.0 <= t.off <= t.on <= 1.0:
                raise ValueError(f"threshold for {name!r} needs 0 <= off <= on <= 1, got {t}")
        if self.output.shape[-1] != len(self.labels):
            raise ValueError(f"output shape {self.output.shape} does not match {len(self.labels)} labels")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["frontend"] = self.frontend.to_dict()
        d["frontend_hash"] = self.frontend_hash
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Manifest":
        d = dict(d)
        stored_hash = d.pop("frontend_hash", None)
        m = cls(
            labels=list(d.pop("labels")),
            privacy_labels=list(d.pop("privacy_labels")),
            thresholds={k: Threshold(**v) for k, v in d.pop("thresholds").items()},
            smoothing=Smoothing(**d.pop("smoothing")),
            frontend=FrontendConfig.from_dict(d.pop("frontend")),
            input=Quantization(**d.pop("input")),
            output=Quantization(**d.pop("output")),
            **d,
        )
        if stored_hash is not None and stored_hash != m.frontend_hash:
            raise ValueError("model.json frontend_hash does not match its frontend config")
        m.validate()
        return m

    def save(self, path: str | os.PathLike) -> None:
        """Atomic write: a crash mid-write leaves the old file intact."""
        write_atomic(pathlib.Path(path), json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Manifest":
        path = pathlib.Path(path)
        if path.is_dir():
            path = path / "model.json"
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no model manifest (train a model with `bowlsense train`)") from None
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a valid bowlsense model.json ({e})") from None


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_atomic(path: pathlib.Path, text: str | bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
