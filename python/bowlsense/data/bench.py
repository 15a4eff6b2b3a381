"""Benchmark of the data layer: `python -m bowlsense.data.bench [DATA_DIR]`.

Prints ratios measured in the same run (no absolute thresholds): building patches for planned examples
from a cold feature cache (render + C front end) vs a warm one (read .npy), and loading every verified
clip. Decoding is done before the cache comparison so that only rendering + features are compared.
"""
from __future__ import annotations

import sys
import tempfile
import time


def main(argv=None) -> int:
    from .. import paths
    from . import Dataset, FeatureCache, Sources, group_split, patch_set, plan_examples

    data_dir = (argv or sys.argv[1:] or [str(paths.shared_data_dir())])[0]
    gate = Dataset.load(data_dir).verified()
    print(gate.summary())
    split = group_split(gate.clips, 0.2, 0)
    rir = paths.shared_data_dir() / "rir"
    sources = Sources(split.train, rir if rir.is_dir() else None)
    t = time.perf_counter()
    for c in split.train:
        sources.clip_pcm(c.sha256)
    load_s = time.perf_counter() - t
    plans = plan_examples(split.train, sources, seed=0, augment_per_clip=1, mixtures=100)[:400]
    with tempfile.TemporaryDirectory() as d:
        cache = FeatureCache(d)
        t = time.perf_counter()
        cold = patch_set(plans, sources, cache=cache)
        cold_s = time.perf_counter() - t
        t = time.perf_counter()
        warm = patch_set(plans, sources, cache=cache)
        warm_s = time.perf_counter() - t
    same = bool((cold.patches == warm.patches).all())
    print(f"load {len(split.train)} verified clips: {load_s:.2f} s")
    print(f"{len(plans)} examples -> {len(cold)} patches: cold cache {cold_s:.2f} s, warm cache {warm_s:.2f} s, "
          f"warm is {cold_s / warm_s:.1f}x faster; identical patches: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
