"""From verified clips to a deterministic list of training examples (lineages).

    gate = Dataset.load(folder).verified(); print(gate.summary())
    split = group_split(gate.clips, val_fraction=0.2, seed=0)
    sources = Sources(split.train, rir_dir=shared_data_dir() / "rir")
    for lin in plan_examples(split.train, sources, seed=0, augment_per_clip=2, mixtures=300):
        pcm = sources.render(lin.recipe)           # or FeatureCache().frames(lin, sources)
        target = multi_hot(lin.labels)

Planning reads no audio, so it is instant; rendering happens when (and if) an example is needed.
`patch_set` turns lineages into model inputs: (n, 96, 64) int16 patches, multi-hot targets, and for
each patch the lineage JSON plus its window index, enough to regenerate that exact patch.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Iterable, Sequence

import numpy as np

from .augment import DEFAULT_AUGMENT, AugmentConfig, plan_augment
from .cache import FeatureCache
from .dataset import Clip
from .labels import EVENT_LABELS, multi_hot
from .lineage import Lineage, Sources, TrustError, clip_recipe
from .mixtures import SNR_DB_RANGE, node_seed, plan_mixtures


def plan_examples(clips: Iterable[Clip], sources: Sources, seed: int, *, augment_per_clip: int = 1,
                  mixtures: int = 0, augment_mixtures: bool = True, snr_db_range=SNR_DB_RANGE,
                  config: AugmentConfig = DEFAULT_AUGMENT) -> list[Lineage]:
    """Every clip as it is, `augment_per_clip` augmented copies of each, and `mixtures` speech-under-
    other-sound mixtures (each augmented once more when augment_mixtures). Clips must be verified and
    in `sources`."""
    clips = list(clips)
    out: list[Lineage] = []
    for c in clips:
        if c.sha256 not in sources.clips:
            raise TrustError(f"{c.path}: not among the verified clips of these sources")
        base = clip_recipe(c)
        out.append(Lineage(base))
        for k in range(augment_per_clip):
            out.append(Lineage(plan_augment(base, node_seed(seed, "augment", c.sha256, k), sources, config)))
    for i, lin in enumerate(plan_mixtures(clips, mixtures, node_seed(seed, "mixtures"),
                                          snr_db_range=snr_db_range)):
        if augment_mixtures:
            lin = Lineage(plan_augment(lin.recipe, node_seed(seed, "augment-mix", i), sources, config))
        out.append(lin)
    return out


@dataclasses.dataclass
class PatchSet:
    patches: np.ndarray          # (n, patch_frames, num_mel) int16 Q10, the model's input before int8
    targets: np.ndarray          # (n, len(labels)) float32 multi-hot
    origin: list[str]            # per patch: JSON {"recipe": ..., "window": k}; regenerates the patch

    def __len__(self) -> int:
        return len(self.patches)


def windows_to_keep(n: int, max_windows: int | None) -> np.ndarray:
    """Evenly spread window indices when an example has more than max_windows (a 95 s recording would
    otherwise outweigh a hundred short clips). Deterministic: no random choice."""
    if max_windows is None or n <= max_windows:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_windows).round().astype(int))


def patch_set(lineages: Sequence[Lineage], sources: Sources, labels: Sequence[str] = EVENT_LABELS,
              cache: FeatureCache | None = None, max_windows: int | None = 8,
              progress: bool | str = False, workers: int | None = None) -> PatchSet:
    """Render (or read from the cache) every example's front end frames and cut them into patches.
    progress: True or a description shows a progress bar while examples are computed. workers: threads
    that compute missing examples (FeatureCache.frames_many; default one per CPU)."""
    cache = cache or FeatureCache()
    fe = cache.frontend
    parts, targets, origin = [], [], []
    all_frames = cache.frames_many(lineages, sources, workers=workers,
                                   progress="features" if progress is True else progress or None)
    for lin, frames in zip(lineages, all_frames):
        patches = fe.patches(frames)
        keep = windows_to_keep(len(patches), max_windows)
        parts.append(patches[keep])
        targets.append(np.repeat(multi_hot(lin.labels, tuple(labels))[None], len(keep), axis=0))
        origin.extend(json.dumps({"recipe": lin.recipe, "window": int(k)}, sort_keys=True) for k in keep)
    cfg = fe.config
    if not parts:
        return PatchSet(np.zeros((0, cfg.patch_frames, cfg.num_mel), np.int16),
                        np.zeros((0, len(labels)), np.float32), [])
    return PatchSet(np.concatenate(parts), np.concatenate(targets), origin)


def regenerate_patch(origin: str, sources: Sources, frontend=None) -> np.ndarray:
    """The exact (patch_frames, num_mel) int16 patch a PatchSet origin entry describes."""
    from ..frontend import Frontend
    from .cache import pad_centred

    fe = frontend or Frontend()
    o = json.loads(origin)
    c = fe.config
    pcm = pad_centred(sources.render(o["recipe"]), c.window_samples + (c.patch_frames - 1) * c.hop_samples)
    return fe.patches(fe.process(pcm))[o["window"]]
