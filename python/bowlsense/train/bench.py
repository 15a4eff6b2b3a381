"""Benchmark of a student training step: `python -m bowlsense.train.bench [--steps N] [--rounds N]`.

Trains the default student on random patches, once with Keras's batch norm layers and once with the fused
ones it is built with (fused_bn.py), in alternating rounds so that both see the same machine load, and
prints each side's median seconds per step and their ratio. Both start from the same weights; their losses
after the same steps are printed too, as a check that they train alike (they differ by float rounding).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bowlsense.train.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per round (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side, alternating (default 3)")
    parser.add_argument("--batch-size", type=int, default=64, help="patches per step (default 64, as trained)")
    args = parser.parse_args(argv)
    import keras

    from .pipeline import TrainConfig
    from .student import build_student

    config = TrainConfig()
    rng = np.random.default_rng(0)
    x = rng.uniform(-6.9, 3.0, (args.batch_size, 96, 64, 1)).astype(np.float32)
    y = rng.integers(0, 2, (args.batch_size, len(config.labels))).astype(np.float32)
    models = {}
    for name, fused in (("keras batch norm", False), ("fused batch norm", True)):
        keras.utils.set_random_seed(0)
        models[name] = build_student(len(config.labels), config.student, fused_batch_norm=fused)
        models[name].compile(optimizer=keras.optimizers.Adam(config.student_lr),
                             loss=keras.losses.BinaryCrossentropy())
        models[name].train_on_batch(x, y)  # traces the step outside the timing
    times: dict[str, list[float]] = {name: [] for name in models}
    losses: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, model in models.items():
            for _ in range(args.steps):
                t = time.perf_counter()
                losses[name] = float(np.ravel(model.train_on_batch(x, y))[0])
                times[name].append(time.perf_counter() - t)
    (slow_name, slow), (fast_name, fast) = [(n, statistics.median(t)) for n, t in times.items()]
    steps = 1 + args.rounds * args.steps
    print(f"student training step, batch {args.batch_size}, median of {args.rounds * args.steps} steps each:")
    for name, median in ((slow_name, slow), (fast_name, fast)):
        print(f"  {name}: {median * 1000:.1f} ms per step, loss after {steps} steps {losses[name]:.4f}")
    print(f"  fused is {slow / fast:.2f}x as fast")
    return 0


if __name__ == "__main__":
    sys.exit(main())
