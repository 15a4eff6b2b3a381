"""Training and evaluation windows, planned and rendered by the data layer (bowlsense.data).

Every window is a data-layer lineage: a recipe over verified clips named by sha256, with every transform
parameter written down (clip, place, mix, augment; see data/lineage.py). This module only decides WHICH
examples to plan (how many of each kind, from which clips, at which SNRs); the data layer renders them,
caches their front end frames (FeatureCache: keyed by the parents' sha256, the transform parameters and
the front end config hash) and cuts them into patches (patch_set). Each window's `lineage` entry is the
patch_set origin JSON ({"recipe": ..., "window": k}), so `bowlsense.data.regenerate_patch(origin,
sources)` rebuilds the exact patch from verified clips, and the labels follow from the recipe (a
mixture's labels are the union of its parents').

Kinds of window (all made after the grouped split, from one side's clips only):
  single     every 0.96 s window of every clip, labelled like its clip
  augmented  one window of a clip at a drawn position, then the data layer's augmentation chain
             (time stretch, pitch, room, verified background noise, gain)
  mixture    one window of a target clip over one window of another clip at a drawn SNR (mixtures.py's
             convention: each part's active RMS, here over its one-window excerpt)
Excerpts of short background clips centred in silence count as augmented.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Sequence

import numpy as np

from ..data.augment import AugmentConfig, plan_augment
from ..data.cache import FeatureCache
from ..data.dataset import Clip
from ..data.excerpt import plan_place
from ..data.labels import BACKGROUND
from ..data.lineage import Lineage, Sources, clip_recipe
from ..data.mixtures import node_seed, plan_mix
from ..data.plan import patch_set
from .features import PATCH_SAMPLES

# Names the planning scheme in the training run's cache keys: a change to what is planned bumps it.
PLAN_VERSION = "data-layer-1"

# Augmentation of training windows: the data layer's chain, with a wider gain range (-20..+6 dB) because
# a bowl on the floor two metres away is far quieter than the recordings.
TRAIN_AUGMENT = AugmentConfig(gain_db=(-20.0, 6.0))


class TrainingDataError(ValueError):
    """The dataset cannot train or evaluate the requested labels; the message says what to do."""


@dataclasses.dataclass
class Side:
    """One side of the grouped split: its verified clips and the Sources that may render them."""
    clips: list[Clip]
    sources: Sources

    @classmethod
    def of(cls, clips: Sequence[Clip], data_dir) -> "Side":
        rir = pathlib.Path(data_dir) / "rir"
        return cls(list(clips), Sources(clips, rir_dir=rir if rir.is_dir() else None))


@dataclasses.dataclass
class Planned:
    """Examples of one kind, planned but not rendered. max_windows: patches kept per example."""
    lineages: list[Lineage]
    kind: str
    snr_db: list[float] | None = None
    max_windows: int | None = 1


@dataclasses.dataclass
class Windows:
    """A batch of model inputs with targets and lineage. patches: (n, 96, 64) int16 Q10."""
    patches: np.ndarray
    targets: np.ndarray          # (n, n_labels) float32 multi-hot
    kind: list[str]              # single | augmented | mixture
    lineage: list[str]           # patch_set origin JSON: {"recipe": <lineage recipe>, "window": k}
    snr_db: np.ndarray           # NaN for single-source windows

    @classmethod
    def empty(cls, n_labels: int) -> "Windows":
        return cls(np.zeros((0, 96, 64), np.int16), np.zeros((0, n_labels), np.float32), [], [],
                   np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.patches)

    @staticmethod
    def concat(parts: list["Windows"]) -> "Windows":
        parts = [p for p in parts if len(p)]
        if not parts:
            raise TrainingDataError("no windows to concatenate")
        return Windows(np.concatenate([p.patches for p in parts]), np.concatenate([p.targets for p in parts]),
                       sum((p.kind for p in parts), []), sum((p.lineage for p in parts), []),
                       np.concatenate([p.snr_db for p in parts]))

    def select(self, mask) -> "Windows":
        idx = np.flatnonzero(mask)
        return Windows(self.patches[idx], self.targets[idx], [self.kind[i] for i in idx],
                       [self.lineage[i] for i in idx], self.snr_db[idx])

    def describe(self, i: int) -> str:
        """One readable line: what window i was made of."""
        o = json.loads(self.lineage[i])
        return f"{Lineage(o['recipe']).describe()} [window {o['window']}]"


def render(planned: Planned, sources: Sources, labels, cache: FeatureCache | None = None,
           progress: str | None = None) -> Windows:
    """The planned examples as model inputs, through the data layer's feature cache and patch_set."""
    if not planned.lineages:
        return Windows.empty(len(labels))
    batch = patch_set(planned.lineages, sources, tuple(labels), cache, max_windows=planned.max_windows,
                      progress=f"{progress}: {planned.kind}" if progress else False)
    if progress:
        print(f"{progress}: {len(planned.lineages)} {planned.kind} examples -> {len(batch)} windows", flush=True)
    n = len(batch)
    if planned.snr_db is not None:
        if n != len(planned.lineages):
            raise AssertionError("one-window examples gave more than one window each")
        snr = np.array(planned.snr_db, np.float32)
    else:
        snr = np.full(n, np.nan, np.float32)
    return Windows(batch.patches, batch.targets, [planned.kind] * n, list(batch.origin), snr)


def by_label(clips: Sequence[Clip], label: str) -> list[Clip]:
    if label == BACKGROUND:
        return [c for c in clips if not c.events]
    return [c for c in clips if label in c.labels]


def window_of(clip: Clip, seed: int) -> dict:
    """One window's worth of a clip at a drawn position (a shorter clip sits at that offset in silence)."""
    return plan_place(clip_recipe(clip), PATCH_SAMPLES, seed)


def plan_single(clips: Sequence[Clip]) -> Planned:
    """Every clip as it is; rendered into all of its windows (short clips centred in one)."""
    return Planned([Lineage(clip_recipe(c)) for c in clips], "single", None, max_windows=None)


def plan_mixtures(targets: Sequence[Clip], others: Sequence[Clip], snrs, n: int, seed: int, tag: str,
                  kind: str = "mixture") -> Planned:
    """n one-window mixtures: a random target clip over a random other clip at an SNR drawn uniformly from
    `snrs` = (low, high), or exactly `snrs` when it is a number. Mixture i depends only on (seed, tag, i)."""
    if not targets or not others or n <= 0:
        return Planned([], kind, [])
    lo, hi = (float(snrs), float(snrs)) if np.isscalar(snrs) else (float(snrs[0]), float(snrs[1]))
    out, snr_out = [], []
    for i in range(n):
        rng = np.random.default_rng(node_seed(seed, tag, "pick", i))
        t = targets[int(rng.integers(len(targets)))]
        o = others[int(rng.integers(len(others)))]
        recipe = plan_mix(window_of(t, node_seed(seed, tag, "target", i)),
                          window_of(o, node_seed(seed, tag, "other", i)),
                          node_seed(seed, tag, "mix", i), snr_db_range=(lo, hi), length_max=PATCH_SAMPLES)
        out.append(Lineage(recipe))
        snr_out.append(recipe["snr_db"])
    return Planned(out, kind, snr_out)


def plan_augmented(clips: Sequence[Clip], n: int, seed: int, sources: Sources,
                   config: AugmentConfig = TRAIN_AUGMENT, balance: Sequence[str] | None = None) -> Planned:
    """n windows: a random clip, one window of it at a drawn position, through the augmentation chain.
    None of these steps can add or remove an event: the labels are the clip's.

    balance: labels (BACKGROUND for clips with no event) to draw evenly from: each window first picks one
    of them, then a clip carrying it. Without it clips are drawn uniformly, and a dataset with 175 spoken
    digits and 25 eating clips gets seven augmented speech windows for every eating one."""
    groups = [by_label(clips, l) for l in balance] if balance else [list(clips)]
    groups = [g for g in groups if g]
    out = []
    for i in range(n if groups else 0):
        rng = np.random.default_rng(node_seed(seed, "augment", "pick", i))
        group = groups[int(rng.integers(len(groups)))] if len(groups) > 1 else groups[0]
        c = group[int(rng.integers(len(group)))]
        base = window_of(c, node_seed(seed, "augment", "window", i))
        out.append(Lineage(plan_augment(base, node_seed(seed, "augment", i), sources, config)))
    return Planned(out, "augmented")


def plan_silence_crops(clips: Sequence[Clip], n: int, seed: int) -> Planned:
    """n windows of a short excerpt (0.25-0.9 s) of a background clip, placed in digital silence.

    Short clips (spoken digits, commands) reach the model surrounded by silence, and nothing else would;
    without these windows a model learns "a sound surrounded by silence is speech". Only background clips
    are cut this way: an excerpt of background is still background, while an excerpt of an eating clip
    may hold no chewing at all."""
    out = []
    for i in range(n if clips else 0):
        rng = np.random.default_rng(node_seed(seed, "silence", "pick", i))
        c = clips[int(rng.integers(len(clips)))]
        length = int(rng.uniform(0.25, 0.9) * 16000)
        short = plan_place(clip_recipe(c), length, node_seed(seed, "silence", "excerpt", i))
        out.append(Lineage(plan_place(short, PATCH_SAMPLES, node_seed(seed, "silence", "window", i))))
    return Planned(out, "augmented")
