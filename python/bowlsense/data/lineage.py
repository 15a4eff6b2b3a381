"""Lineage: every training example is a recipe over verified clips, and the recipe regenerates it.

A recipe is a small JSON tree. Leaves name source files by sha256; inner nodes name an operation and
every parameter it used, drawn beforehand from the node's seed:

    {"op": "clip", "sha256": ..., "path": ..., "labels": [...]}
    {"op": "mix", "seed": s, "snr_db": x, "length_max": n, "signal_position": u, "noise_position": v,
     "signal": <recipe>, "noise": <recipe>}                                   (see mixtures.py)
    {"op": "augment", "seed": s, "time_stretch_rate": r | null, "pitch_semitones": p | null,
     "rir": {"sha256", "path"} | null, "noise": {"sha256", "path", "snr_db", "position"} | null,
     "gain_db": g, "input": <recipe>}                                          (see augment.py)
    {"op": "place", "seed": s, "length": n, "position": u, "input": <recipe>}  (see excerpt.py)

Because all parameters are written down, rendering needs no random numbers: `regenerate(lineage,
sources)` gives the same int16 samples as when the example was first made, and a feature cache can key on
the recipe without rendering it. Rendering only reads audio through `Sources`, which holds verified clips
(sha256-checked on load) and impulse responses, so a recipe cannot smuggle in an unverified clip.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import pathlib
from typing import Iterable

import numpy as np

from .audio import EXTENSIONS, load_audio
from .dataset import Clip
from .labels import BACKGROUND, union


class TrustError(ValueError):
    """An unverified clip was offered where only verified audio may go."""


def canonical_json(obj) -> str:
    # Floats print with repr (shortest exact round trip), so a recipe survives JSON unchanged.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclasses.dataclass(frozen=True)
class Lineage:
    """A recipe (see module docstring) with the facts derived from it."""

    recipe: dict

    @property
    def key(self) -> str:
        """sha256 of the canonical recipe: equal recipes give equal samples."""
        return hashlib.sha256(canonical_json(self.recipe).encode()).hexdigest()

    @property
    def audio_key(self) -> str:
        """sha256 of only what determines the samples (file names and labels left out): the same audio
        moved or relabelled keeps its key, so cached features stay valid."""
        return hashlib.sha256(canonical_json(samples_recipe(self.recipe)).encode()).hexdigest()

    @property
    def labels(self) -> tuple[str, ...]:
        return recipe_labels(self.recipe)

    @property
    def parents(self) -> tuple[str, ...]:
        """sha256 of every file the example was made from: clips, noise clips, impulse responses."""
        out: list[str] = []
        _walk_files(self.recipe, out)
        return tuple(dict.fromkeys(out))

    @property
    def clip_parents(self) -> tuple[str, ...]:
        """sha256 of the labelled clips whose labels the example carries (not noise or RIRs)."""
        out: list[str] = []
        _walk_clips(self.recipe, out)
        return tuple(dict.fromkeys(out))

    def to_json(self) -> str:
        return canonical_json(self.recipe)

    @classmethod
    def from_json(cls, text: str) -> "Lineage":
        return cls(json.loads(text))

    def describe(self) -> str:
        return describe(self.recipe)


_NOT_AUDIO = ("path", "labels")


def samples_recipe(recipe):
    """The recipe without the fields that do not change samples (paths, labels), recursively."""
    if isinstance(recipe, dict):
        return {k: samples_recipe(v) for k, v in recipe.items() if k not in _NOT_AUDIO}
    if isinstance(recipe, list):
        return [samples_recipe(v) for v in recipe]
    return recipe


def recipe_labels(recipe: dict) -> tuple[str, ...]:
    op = recipe["op"]
    if op == "clip":
        return tuple(recipe["labels"]) or (BACKGROUND,)
    if op == "mix":
        return union(recipe_labels(recipe["signal"]), recipe_labels(recipe["noise"]))
    if op == "augment":
        return recipe_labels(recipe["input"])  # added noise is verified background: no events
    if op == "place":
        return recipe_labels(recipe["input"])
    raise ValueError(f"unknown recipe op {op!r}")


def _walk_clips(r: dict, out: list[str]) -> None:
    if r["op"] == "clip":
        out.append(r["sha256"])
    elif r["op"] == "mix":
        _walk_clips(r["signal"], out)
        _walk_clips(r["noise"], out)
    elif r["op"] in ("augment", "place"):
        _walk_clips(r["input"], out)


def _walk_files(r: dict, out: list[str]) -> None:
    if r["op"] == "clip":
        out.append(r["sha256"])
    elif r["op"] == "mix":
        _walk_files(r["signal"], out)
        _walk_files(r["noise"], out)
    elif r["op"] == "augment":
        _walk_files(r["input"], out)
        for extra in ("noise", "rir"):
            if r.get(extra):
                out.append(r[extra]["sha256"])
    elif r["op"] == "place":
        _walk_files(r["input"], out)


def describe(r: dict) -> str:
    """One line a person can read: what was done to which files."""
    op = r["op"]
    if op == "clip":
        return f"{r['path']}"
    if op == "mix":
        return f"mix({describe(r['signal'])} over {describe(r['noise'])} at {r['snr_db']:+.1f} dB)"
    if op == "place":
        return f"place({describe(r['input'])}: {r['length']} samples at {r['position']:.3f})"
    parts = []
    if r.get("time_stretch_rate") is not None:
        parts.append(f"stretch x{r['time_stretch_rate']:.3f}")
    if r.get("pitch_semitones") is not None:
        parts.append(f"pitch {r['pitch_semitones']:+.2f} st")
    if r.get("rir"):
        parts.append(f"room {pathlib.PurePath(r['rir']['path']).name}")
    if r.get("noise"):
        parts.append(f"noise {pathlib.PurePath(r['noise']['path']).name} at {r['noise']['snr_db']:.1f} dB")
    parts.append(f"gain {r.get('gain_db', 0.0):+.1f} dB")
    return f"augment({describe(r['input'])}: {', '.join(parts)})"


def clip_recipe(clip: Clip) -> dict:
    if not clip.verified:
        raise TrustError(f"{clip.path}: not verified; only verified clips become training examples")
    return {"op": "clip", "sha256": clip.sha256, "path": clip.path, "labels": list(clip.events)}


def rir_files(folder: str | os.PathLike | None) -> list[pathlib.Path]:
    if folder is None:
        return []
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: impulse response folder not found")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS)


class Sources:
    """The audio a recipe may read: verified clips (by sha256) and impulse responses.

    Build it from the clips of ONE side of a split, so that augmentation of training examples only
    draws background noise from training clips. Decoded audio is kept in memory (a few hundred clips
    at 16 kHz are tens of MB)."""

    def __init__(self, clips: Iterable[Clip], rir_dir: str | os.PathLike | None = None):
        self.clips: dict[str, Clip] = {}
        for c in clips:
            if not c.verified:
                raise TrustError(f"{c.path}: not verified; Sources only accepts clips that passed the "
                                 "trust gate (Dataset.verified())")
            if not c.sha256:
                raise TrustError(f"{c.path}: no sha256 recorded")
            self.clips.setdefault(c.sha256, c)
        self.rirs: dict[str, pathlib.Path] = {}
        from ..manifest import sha256_file
        for p in rir_files(rir_dir):
            self.rirs.setdefault(sha256_file(p), p)
        self._pcm: dict[str, np.ndarray] = {}

    @functools.cached_property  # the clips are fixed at construction; planning asks once per example
    def background(self) -> list[Clip]:
        """Verified clips with no event: what augmentation may add as background noise."""
        return [c for c in self.clips.values() if not c.events]

    def clip_pcm(self, sha256: str) -> np.ndarray:
        if sha256 not in self._pcm:
            clip = self.clips.get(sha256)
            if clip is None:
                raise TrustError(f"sha256 {sha256[:12]}... is not a verified clip of this source set")
            self._pcm[sha256] = clip.load()
        return self._pcm[sha256]

    def rir_pcm(self, sha256: str) -> np.ndarray:
        key = "rir:" + sha256
        if key not in self._pcm:
            path = self.rirs.get(sha256)
            if path is None:
                raise KeyError(f"impulse response with sha256 {sha256[:12]}... is not in the RIR folder")
            self._pcm[key] = load_audio(path, expected_sha256=sha256)
        return self._pcm[key]

    def render(self, recipe: dict) -> np.ndarray:
        """The int16 samples a recipe describes."""
        op = recipe["op"]
        if op == "clip":
            return self.clip_pcm(recipe["sha256"])
        if op == "mix":
            from .mixtures import render_mix
            return render_mix(recipe, self.render(recipe["signal"]), self.render(recipe["noise"]))
        if op == "augment":
            from .augment import render_augment
            return render_augment(recipe, self.render(recipe["input"]), self)
        if op == "place":
            from .excerpt import render_place
            return render_place(recipe, self.render(recipe["input"]))
        raise ValueError(f"unknown recipe op {op!r}")


def regenerate(lineage: Lineage | dict | str, sources: Sources) -> np.ndarray:
    """Rebuild an example's exact int16 samples from its lineage (object, recipe dict or JSON)."""
    if isinstance(lineage, str):
        lineage = Lineage.from_json(lineage)
    recipe = lineage.recipe if isinstance(lineage, Lineage) else lineage
    return sources.render(recipe)
