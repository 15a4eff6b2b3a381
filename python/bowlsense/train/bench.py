"""Benchmark of training steps: `python -m bowlsense.train.bench [--steps N] [--rounds N] [--yamnet PATH]`.

Times a training step of the teacher's fine-tuned top (YAMNet's unfrozen blocks and the head, on cached
activations) as trained (pointwise convolutions as PointwiseConv2D, pointwise.py) and with those layers
training through Conv2D's own code (pointwise.train_as_matmul), from the same weights on the same random
batch. (The student keeps Keras's Conv2D: at its few channels and larger maps the two train equally fast.)
The two run in alternating rounds so that both see the same machine load; the script prints each one's
median seconds per step and their ratio, and the loss after the same steps (close, not equal: rounding
differs from the first step and grows over steps of fitting one batch; tests/test_train_units.py checks one
step's outputs and gradients).

With --live-teacher it times instead the live teacher's pass (distill.live_teacher_batches: the whole
teacher scoring one student batch) as one traced graph against Keras's eager layer-by-layer calls, the
same way, and prints the largest difference between their scores.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def time_steps(models: dict, x: np.ndarray, y: np.ndarray, steps: int, rounds: int) -> dict:
    """{name: (median seconds per step, loss after the last step)}; models train in alternating rounds."""
    for model in models.values():
        model.train_on_batch(x, y)  # traces the step outside the timing
    times: dict[str, list[float]] = {name: [] for name in models}
    losses: dict[str, float] = {}
    for _ in range(rounds):
        for name, model in models.items():
            for _ in range(steps):
                t = time.perf_counter()
                losses[name] = float(np.ravel(model.train_on_batch(x, y))[0])
                times[name].append(time.perf_counter() - t)
    return {name: (statistics.median(times[name]), losses[name]) for name in models}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bowlsense.train.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per model, alternating (default 3)")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per step (default 64, as trained)")
    parser.add_argument("--yamnet", help="YAMNet weights for the teacher (default: as `bowlsense train` finds them)")
    parser.add_argument("--live-teacher", action="store_true",
                        help="time the live teacher's pass instead (the whole teacher scoring one student batch), "
                             "as one traced graph against Keras's layer-by-layer eager calls")
    args = parser.parse_args(argv)
    if args.live_teacher:
        return bench_live_teacher(args)
    import keras

    from . import teacher
    from . import weights as wl
    from .pipeline import TrainConfig
    from .pointwise import train_as_matmul

    config = TrainConfig()
    n_labels = len(config.labels)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (args.batch_size, n_labels)).astype(np.float32)
    weights = wl.load(wl.resolve_source(args.yamnet))

    def build(matmul: bool):
        keras.utils.set_random_seed(0)  # the same initial weights (and dropout draws) for both
        model = teacher.build_top(weights, config.unfrozen_blocks, n_labels)
        train_as_matmul(model, matmul)
        model.compile(optimizer=keras.optimizers.Adam(config.teacher_lr), loss=keras.losses.BinaryCrossentropy())
        return model

    models = {"Conv2D": build(False), "PointwiseConv2D": build(True)}
    # Frozen activations are ReLU6 outputs: 0..6.
    x = rng.uniform(0.0, 6.0, (args.batch_size,) + tuple(models["Conv2D"].input.shape[1:])).astype(np.float32)
    result = time_steps(models, x, y, args.steps, args.rounds)
    print(f"teacher top training step, batch {args.batch_size}, median of {args.rounds * args.steps} steps each:")
    for name, (median, loss) in result.items():
        print(f"  {name}: {median * 1000:.1f} ms per step, loss after {1 + args.rounds * args.steps} steps {loss:.5f}")
    print(f"  PointwiseConv2D is {result['Conv2D'][0] / result['PointwiseConv2D'][0]:.2f}x as fast")
    return 0


def bench_live_teacher(args) -> int:
    """Teacher.scores_from_nats (one traced graph) against Teacher.scores_eagerly, same batch, alternating."""
    from . import teacher
    from . import weights as wl
    from .pipeline import TrainConfig
    from .yamnet import NUM_MEL, PATCH_FRAMES

    config = TrainConfig()
    weights = wl.load(wl.resolve_source(args.yamnet))
    tch = teacher.Teacher(teacher.build_frozen(weights, config.unfrozen_blocks),
                          teacher.build_top(weights, config.unfrozen_blocks, len(config.labels)))
    # Log-mel patches in nats, across the front end's range.
    x = np.random.default_rng(0).uniform(-7.0, 8.0, (args.batch_size, PATCH_FRAMES, NUM_MEL)).astype(np.float32)
    ways = {"eager": lambda: np.asarray(tch.scores_eagerly(x)), "graph": lambda: tch.scores_from_nats(x)}
    outputs = {name: run() for name, run in ways.items()}  # the first call traces the graph, untimed
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, run in ways.items():
            for _ in range(args.steps):
                t = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"live teacher, one batch of {args.batch_size}, median of {args.rounds * args.steps} calls each:")
    for name in ways:
        print(f"  {name}: {median[name] * 1000:.1f} ms per batch")
    print(f"  graph is {median['eager'] / median['graph']:.2f}x as fast; "
          f"largest score difference {np.abs(outputs['eager'] - outputs['graph']).max():.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
