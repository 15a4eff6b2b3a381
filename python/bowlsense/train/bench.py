"""Benchmark of training steps: `python -m bowlsense.train.bench [--steps N] [--rounds N] [--yamnet PATH]
[--live-teacher | --prefetch]`.

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

With --prefetch it times the live student's training (fit.fit with distill.live_teacher_batches, as
`bowlsense train` runs it) with the next batch made in a worker thread while this one trains (fit.batches)
against making each batch in turn: each way trains a fresh student from the same weights for one short
epoch per round, alternating, and the script prints the median seconds per step, their ratio, and the
largest difference between the two students' weights at the end (0: the same training).
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
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--live-teacher", action="store_true",
                        help="time the live teacher's pass instead (the whole teacher scoring one student batch), "
                             "as one traced graph against Keras's layer-by-layer eager calls")
    which.add_argument("--prefetch", action="store_true",
                        help="time the live student's training with the next batch made while this one trains, "
                             "against making each batch in turn")
    args = parser.parse_args(argv)
    if args.live_teacher:
        return bench_live_teacher(args)
    if args.prefetch:
        return bench_prefetch(args)
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


def default_teacher(yamnet_source):
    """The teacher as `bowlsense train` builds it with the default recipe, its head untrained: (Teacher, TrainConfig)."""
    from . import teacher
    from . import weights as wl
    from .pipeline import TrainConfig

    config = TrainConfig()
    weights = wl.load(wl.resolve_source(yamnet_source))
    return teacher.Teacher(teacher.build_frozen(weights, config.unfrozen_blocks),
                           teacher.build_top(weights, config.unfrozen_blocks, len(config.labels))), config


def bench_live_teacher(args) -> int:
    """Teacher.scores_from_nats (one traced graph) against Teacher.scores_eagerly, same batch, alternating."""
    from .yamnet import NUM_MEL, PATCH_FRAMES

    tch, _ = default_teacher(args.yamnet)
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


def bench_prefetch(args) -> int:
    """fit.fit of the live student with prefetch on and off: same start, same batches, alternating rounds."""
    import pathlib
    import tempfile

    import keras

    from . import distill, fit
    from .student import build_student
    from .yamnet import NUM_MEL, PATCH_FRAMES

    tch, config = default_teacher(args.yamnet)
    n_labels = len(config.labels)
    rng = np.random.default_rng(0)
    n = args.steps * args.batch_size  # one epoch of `steps` batches
    x = rng.uniform(-7.0, 8.0, (n, PATCH_FRAMES, NUM_MEL, 1)).astype(np.float32)
    labels = rng.integers(0, 2, (n, n_labels)).astype(np.float32)
    y = np.concatenate([labels, np.zeros_like(labels)], axis=1)  # the teacher's columns are filled per batch
    augment = distill.live_teacher_batches(tch, n_labels, config.student_mix, config.student_augment)
    loss = distill.tempered_loss(n_labels, config.distill_alpha, config.label_temperatures(), config.label_weights())
    tch.scores_from_nats(x[:args.batch_size, ..., 0])  # traces the teacher's graph outside the timing

    def train(prefetch: bool, folder: pathlib.Path):
        keras.utils.set_random_seed(0)
        student = build_student(n_labels, config.student)
        t = time.perf_counter()
        fit.fit(student, x, y, epochs=1, batch_size=args.batch_size, learning_rate=config.student_lr,
                checkpoint=folder, desc="student", seed=0, loss=loss, augment=augment, prefetch=prefetch)
        return (time.perf_counter() - t) / args.steps, student.get_weights()

    ways = {"in turn": False, "prefetch": True}
    times: dict[str, list[float]] = {name: [] for name in ways}
    final = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, prefetch in ways.items():
                seconds, final[name] = train(prefetch, pathlib.Path(tmp) / f"{name}-{r}")
                times[name].append(seconds)
    median = {name: statistics.median(t) for name, t in times.items()}
    diff = max(float(np.abs(a - b).max()) for a, b in zip(final["in turn"], final["prefetch"]))
    print(f"live student, batch {args.batch_size}, one epoch of {args.steps} steps per round, median of "
          f"{args.rounds} rounds each (the first step traces the training step and counts):")
    for name in ways:
        print(f"  {name}: {median[name] * 1000:.1f} ms per step")
    print(f"  prefetch is {median['in turn'] / median['prefetch']:.2f}x as fast; "
          f"largest weight difference after training {diff:.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
