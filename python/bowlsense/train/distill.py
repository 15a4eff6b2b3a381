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


def distill(student, train_w, teacher_scores: np.ndarray, evalset, config, checkpoint: pathlib.Path) -> dict:
    alpha = float(config.distill_alpha)
    y = (alpha * teacher_scores + (1 - alpha) * train_w.targets).astype(np.float32)
    single = np.array(evalset.group) == "single"
    val = (inputs(evalset.windows.patches[single]), evalset.windows.targets[single])
    return fit.fit(student, inputs(train_w.patches), y, epochs=config.student_epochs,
                   batch_size=config.batch_size, learning_rate=config.student_lr, checkpoint=checkpoint,
                   desc="student", seed=config.seed + 7, val=val)
