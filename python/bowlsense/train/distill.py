"""Distillation: the student learns the fine-tuned teacher's scores (soft targets) and the verified labels.

target = alpha * teacher probability + (1 - alpha) * label. The labels of single clips and of mixtures are
trustworthy by construction; the teacher adds what a hard label cannot say (how much a window of a long
chewing clip actually sounds like chewing, how audible speech is under a loud tap).
"""
from __future__ import annotations

import pathlib

import numpy as np

from . import fit
from .features import INPUT_RANGE_NATS, to_nats


def inputs(patches_q10: np.ndarray) -> np.ndarray:
    """Float student input: nats, clipped to the int8 input's pinned range (what the int8 model sees)."""
    return np.clip(to_nats(patches_q10), *INPUT_RANGE_NATS)[..., None]


def predict(model, patches_q10: np.ndarray, batch_size: int = 256) -> np.ndarray:
    if len(patches_q10) == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    return model.predict(inputs(patches_q10), batch_size=batch_size, verbose=0).astype(np.float32)


LOG_FLOOR = float(np.log(0.001))  # the front end's output for silence: ln(0 + 0.001)


def spec_augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per batch, in nats: a gain change (a constant added above the silence floor, +-12 dB), one band of
    up to 8 mel channels and one stretch of up to 16 frames set to the floor (SpecAugment's masks).
    None of these adds or removes an event, so targets stay as they are."""
    x = x.copy()
    n = len(x)
    gain = rng.uniform(-1.4, 1.4, size=(n, 1, 1, 1)).astype(np.float32)
    above = x > LOG_FLOOR + 0.05
    x = np.where(above, np.maximum(x + gain, LOG_FLOOR), x)
    for i in range(n):
        f, t = int(rng.integers(0, 9)), int(rng.integers(0, 17))
        f0, t0 = int(rng.integers(0, 64 - f + 1)), int(rng.integers(0, 96 - t + 1))
        x[i, :, f0:f0 + f] = LOG_FLOOR
        x[i, t0:t0 + t, :] = LOG_FLOOR
    return np.clip(x, *INPUT_RANGE_NATS)


def distill(student, train_w, teacher_scores: np.ndarray, evalset, config, checkpoint: pathlib.Path) -> dict:
    alpha = float(config.distill_alpha)
    y = (alpha * teacher_scores + (1 - alpha) * train_w.targets).astype(np.float32)
    single = np.array(evalset.group) == "single"
    val = (inputs(evalset.windows.patches[single]), evalset.windows.targets[single])
    return fit.fit(student, inputs(train_w.patches), y, epochs=config.student_epochs,
                   batch_size=config.batch_size, learning_rate=config.student_lr, checkpoint=checkpoint,
                   desc="student", seed=config.seed + 7, val=val,
                   augment=spec_augment if config.student_augment else None)
