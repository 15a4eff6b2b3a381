"""Distillation: the student learns the fine-tuned teacher's scores (soft targets) and the verified labels.

The loss is alpha * T^2 * cross-entropy(sigmoid(teacher logit / T), sigmoid(student logit / T))
+ (1 - alpha) * cross-entropy(label, student score), T = config.distill_temperature (Hinton et al.). The
labels of single clips and of mixtures are trustworthy by construction; the teacher adds what a hard label
cannot say (how much a window of a long chewing clip actually sounds like chewing, how audible speech is
under a loud tap, that a tap sounds more like a drink than like chewing).

Why T > 1: the teacher was fine-tuned on these very clips. Its scores on the training windows are the
labels to within 0.001 (about 0.01 on fresh augmentations of them; `bowlsense train` prints both), so with T = 1
the student learns the labels and next to nothing else. What the teacher learnt beyond them survives only
in how far below zero its logits for the absent labels lie, and dividing by T brings that into range.
T = 1 is cross-entropy against alpha * teacher score + (1 - alpha) * label, the recipe before.
With config.label_weight, both terms of a named label count that many times, the other labels' once:
more of the student's training signal for one label (speech, whose misses leak audio).

With config.distill_embedding > 0 the student also learns YAMNet's pretrained 1024-d embedding of each
window: a linear probe on the student's pooled features regresses the (standardised) embedding, weighted
by distill_embedding against the scores' cross-entropy. Four scores say little about a window; the
embedding says how a network trained on two million AudioSet clips hears it (tap water, dishes, frying),
and it is the pretrained one, not the fine-tuned one, so it was not fitted to these training windows.
The probe is for training only: the exported student is the scores output alone.

With config.live_teacher the teacher scores every training batch as the student sees it, after SpecAugment
and, with config.student_mix > 0, after mixing pairs of the batch's windows (mix_pairs): the two always
agree on the input, the "consistent teaching" of Beyer et al. (2022, "Knowledge distillation: a good
teacher is patient and consistent"). Without it the teacher's scores belong to the window before its
masks, and each epoch shows the student the same fixed pairs of window and target, which a longer
training only memorises (24 student epochs measured worse than 12, train/README.md). Mixing gives the student
new inputs every batch, each with the teacher's opinion of it.
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


MIX_GAIN_DB = (-6.0, 6.0)  # the partner window's level, relative to its own: both stay audible


def mix_pairs(x: np.ndarray, labels: np.ndarray, fraction: float, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray]:
    """Replace `fraction` of a batch by mixtures: each chosen window plus another window of the batch at a
    gain drawn from MIX_GAIN_DB, computed on the features. The front end's output is ln(mel magnitude +
    0.001); the magnitudes of two uncorrelated sounds add in power, so the mixture's mel magnitude is
    sqrt(a^2 + (g b)^2) per band (an approximation: mel bands sum FFT bins, and the sounds' phases are
    not tracked). Labels: the union of the two windows' verified labels, both being audible at these gains.
    x: (n, 96, 64, 1) nats; returns new arrays."""
    x, labels = x.copy(), labels.copy()
    n = len(x)
    k = int(round(fraction * n))
    if k == 0 or n < 2:
        return x, labels
    chosen = rng.choice(n, size=k, replace=False)
    partner = (chosen + rng.integers(1, n, size=k)) % n  # never the window itself
    gain = (10.0 ** (rng.uniform(*MIX_GAIN_DB, size=(k, 1, 1, 1)) / 20.0)).astype(np.float32)
    floor = np.float32(np.exp(LOG_FLOOR))
    a = np.maximum(np.exp(x[chosen]) - floor, 0.0)
    b = np.maximum(np.exp(x[partner]) - floor, 0.0) * gain
    x[chosen] = np.clip(np.log(np.sqrt(a * a + b * b) + floor), *INPUT_RANGE_NATS)
    labels[chosen] = np.maximum(labels[chosen], labels[partner])
    return x, labels


def live_teacher_batches(teacher, n_labels: int, mix: float, augment: bool):
    """fit's augment callback for config.live_teacher: mix (mix_pairs), mask (spec_augment), then the
    teacher's logits of the result replace the targets' teacher columns (y is (labels, teacher logits))."""
    def batch(x, y, rng):
        labels = y[:, :n_labels]
        if mix > 0:
            x, labels = mix_pairs(x, labels, mix, rng)
        if augment:
            x = spec_augment(x, rng)
        return x, np.concatenate([labels, logits(teacher.scores_from_nats(x[..., 0]))], axis=1)
    return batch


def with_embedding_probe(student, embedding_size: int):
    """A training model: the student's scores followed by a linear probe of its pooled features, in one
    output (n, labels + embedding_size). It shares the student's layers, so training it trains the student."""
    import keras
    probe = keras.layers.Dense(embedding_size, name="embedding_probe")(student.get_layer("pool").output)
    return keras.Model(student.input, keras.layers.Concatenate(name="scores_and_probe")([student.output, probe]),
                       name="student_with_probe")


def scores_and_embedding_loss(n_labels: int, weight: float):
    """Cross-entropy of the scores (the first n_labels columns) + weight * mean squared error of the probe."""
    import keras
    bce = keras.losses.BinaryCrossentropy()

    def loss(y_true, y_pred):
        squared = keras.ops.square(y_true[:, n_labels:] - y_pred[:, n_labels:])
        return bce(y_true[:, :n_labels], y_pred[:, :n_labels]) + weight * keras.ops.mean(squared)
    return loss


def teacher_beyond_labels(scores: np.ndarray, labels: np.ndarray, what: str) -> str:
    """One line: how far the teacher's scores on the student's windows are from the verified labels, i.e.
    how much the student could learn from it that the labels do not already say."""
    gap = np.abs(scores - labels)
    return (f"teacher on the {what}: scores {gap.mean():.4f} from the labels on average, "
            f"{(gap > 0.5).any(axis=1).mean():.1%} of windows on the other side of 0.5")


def logits(probabilities: np.ndarray) -> np.ndarray:
    """The teacher's logits back from its sigmoid scores (float32 saturates at about +-16.6)."""
    p = np.clip(probabilities.astype(np.float64), 1e-7, 1 - 1e-7)
    return (np.log(p) - np.log1p(-p)).astype(np.float32)


def tempered_loss(n_labels: int, alpha: float, temperature, label_weight=1.0):
    """alpha * T^2 * cross-entropy(sigmoid(teacher logit / T), sigmoid(student logit / T))
    + (1 - alpha) * cross-entropy(label, student score), each label's terms times its label_weight,
    averaged over labels and windows. temperature and label_weight: one value for every label, or one per
    label. y_true is (labels, teacher logits); the student's logits are recovered from its sigmoid output."""
    import keras
    ops, eps = keras.ops, 1e-7
    t = np.broadcast_to(np.asarray(temperature, np.float32), (n_labels,)).copy()
    w = np.broadcast_to(np.asarray(label_weight, np.float32), (n_labels,)).copy()

    def xent(target, p, weight=1.0):
        p = ops.clip(p, eps, 1 - eps)
        return -ops.mean(weight * (target * ops.log(p) + (1 - target) * ops.log(1 - p)))

    def loss(y_true, y_pred):
        p = ops.clip(y_pred[:, :n_labels], eps, 1 - eps)
        student_logit = ops.log(p) - ops.log(1 - p)
        soft = xent(ops.sigmoid(y_true[:, n_labels:2 * n_labels] / t), ops.sigmoid(student_logit / t), w * t * t)
        return alpha * soft + (1 - alpha) * xent(y_true[:, :n_labels], p, w)
    return loss


def standardise(embedding: np.ndarray) -> np.ndarray:
    """Each dimension to mean 0, standard deviation 1 over the training windows (dead dimensions to 0)."""
    std = embedding.std(axis=0)
    return ((embedding - embedding.mean(axis=0)) / np.where(std > 1e-6, std, 1.0)).astype(np.float32)


def distill(student, train_w, teacher_scores: np.ndarray, evalset, config, checkpoint: pathlib.Path,
            embedding: np.ndarray | None = None, teacher=None) -> dict:
    """Train `student` in place; `embedding` (YAMNet's, per training window) is used when
    config.distill_embedding > 0, `teacher` (train.teacher.Teacher) when config.live_teacher."""
    alpha = float(config.distill_alpha)
    model, loss = student, None
    augment = (lambda x, y, rng: (spec_augment(x, rng), y)) if config.student_augment else None
    if config.live_teacher:
        if teacher is None:
            raise ValueError("live_teacher needs the teacher")
        augment = live_teacher_batches(teacher, train_w.targets.shape[1], config.student_mix, config.student_augment)
    if config.tempered or config.weighted or config.live_teacher:
        assert config.distill_embedding == 0  # refused before training starts (pipeline.check_recipe)
        y = np.concatenate([train_w.targets.astype(np.float32), logits(teacher_scores)], axis=1)
        loss = tempered_loss(train_w.targets.shape[1], alpha, config.label_temperatures(), config.label_weights())
    else:
        y = (alpha * teacher_scores + (1 - alpha) * train_w.targets).astype(np.float32)
    if config.distill_embedding > 0:
        if embedding is None:
            raise ValueError("distill_embedding > 0 needs YAMNet's embedding of every training window")
        model = with_embedding_probe(student, embedding.shape[1])
        loss = scores_and_embedding_loss(y.shape[1], float(config.distill_embedding))
        y = np.concatenate([y, standardise(embedding)], axis=1)
    single = np.array(evalset.group) == "single"
    val = (inputs(evalset.windows.patches[single]), evalset.windows.targets[single])
    return fit.fit(model, inputs(train_w.patches), y, epochs=config.student_epochs,
                   batch_size=config.batch_size, learning_rate=config.student_lr, checkpoint=checkpoint,
                   desc="student", seed=config.student_rng_seed + 7, val=val, loss=loss,
                   augment=augment)
