"""From verified clips to a deterministic list of training examples (lineages).

    gate = Dataset.load(folder).verified(); print(gate.summary())
    split = group_split(gate.clips, val_fraction=0.2, seed=0)
    sources = Sources(split.train, rir_dir=shared_data_dir() / "rir")
    for lin in plan_examples(split.train, sources, seed=0, augment_per_clip=2, mixtures=300):
        pcm = sources.render(lin.recipe)           # or FeatureCache().frames(lin, sources)
        target = multi_hot(lin.labels)

Planning reads no audio, so it is instant; rendering happens when (and if) an example is needed.
"""
from __future__ import annotations

from typing import Iterable

from .augment import DEFAULT_AUGMENT, AugmentConfig, plan_augment
from .dataset import Clip
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
