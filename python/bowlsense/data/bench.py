"""Benchmark of the data layer: `python -m bowlsense.data.bench [DATA_DIR]`.

Prints ratios measured in the same run (no absolute thresholds): building patches for planned examples
from a cold feature cache (render + C front end) on one thread and on one thread per CPU, vs a warm cache
(read .npy), and loading every verified clip. Decoding is done before the cache comparison so that only
rendering + features are compared. Each cold build runs `--repeat` times into a fresh cache, alternating
one thread and all threads, and the medians are compared.
"""
from __future__ import annotations

import sys
import tempfile
import time


def main(argv=None) -> int:
    from .. import paths
    from . import Dataset, FeatureCache, Sources, group_split, patch_set, plan_examples

    import argparse
    import os
    import statistics

    parser = argparse.ArgumentParser(prog="python -m bowlsense.data.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", default=str(paths.shared_data_dir()))
    parser.add_argument("--repeat", type=int, default=3, help="cold builds per thread count (default 3)")
    args = parser.parse_args(argv)
    data_dir = args.data_dir
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
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    times: dict[int, list[float]] = {1: [], threads: []}
    results = []
    for _ in range(args.repeat):
        for workers in times:
            with tempfile.TemporaryDirectory() as d:
                cache = FeatureCache(d)
                t = time.perf_counter()
                results.append(patch_set(plans, sources, cache=cache, workers=workers))
                times[workers].append(time.perf_counter() - t)
                t = time.perf_counter()
                warm = patch_set(plans, sources, cache=cache)
                warm_s = time.perf_counter() - t
    same = all((r.patches == results[0].patches).all() and r.origin == results[0].origin for r in results + [warm])
    one, many = statistics.median(times[1]), statistics.median(times[threads])
    print(f"load {len(split.train)} verified clips: {load_s:.2f} s")
    print(f"{len(plans)} examples -> {len(warm)} patches, median of {args.repeat} cold builds: one thread {one:.2f} s, "
          f"{threads} threads {many:.2f} s ({one / many:.2f}x); warm cache {warm_s:.2f} s "
          f"({one / warm_s:.1f}x faster than cold on one thread); identical patches: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
