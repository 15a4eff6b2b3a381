"""Train the detector from verified clips: fine-tune YAMNet (the teacher), distil a small student, quantize
it to int8, and write MODEL_DIR/model.tflite, model.json and report.md (+ PNGs).

Only clips marked verified=yes in DATA_DIR/labels.csv are used. The validation split is grouped by source
recording; mixtures for training and for the privacy evaluation are built from each side's clips only.
Stages are checkpointed in a work folder: rerun the same command after an interruption to resume.

YAMNet weights: --yamnet SOURCE, else $BOWLSENSE_YAMNET, else ../shared/yamnet. SOURCE is a YAMNet .tflite
file, Google's yamnet.h5, a SavedModel folder, or a TF Hub handle cached in $TFHUB_CACHE_DIR.

example:
  bowlsense train ../shared/data --out models/default
"""
from __future__ import annotations

import argparse
import sys

HELP = "fine-tune YAMNet, distil and quantize the student, write model + report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data_dir", metavar="DATA_DIR", help="dataset folder with labels.csv")
    parser.add_argument("--out", metavar="MODEL_DIR", required=True, help="where to write the model and report")
    add_recipe_arguments(parser)
    parser.add_argument("--work", metavar="DIR", help="checkpoint folder (default: .cache/train/<inputs hash>)")
    parser.add_argument("--restart", action="store_true", help="discard checkpoints and train from scratch")


def _between(low: float, high: float):
    """An argparse type: a number from low to high (argparse itself reports text that is no number)."""
    def number(text: str) -> float:
        value = float(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {text}")
        return value
    return number


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _at_least_one(text: str) -> float:
    value = float(text)
    if not value >= 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def _label_number(what: str, example: str, valid, rule: str):
    """An argparse type: 'LABEL=NUMBER' -> (label, number), the number checked by valid (rule says how)."""
    def pair(text: str) -> tuple[str, float]:
        label, sep, value = text.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not label.strip() or number is None:
            raise argparse.ArgumentTypeError(f"expected LABEL={what.upper()}, like {example}; got {text!r}")
        if not valid(number):
            raise argparse.ArgumentTypeError(f"the {what} must be {rule}, got {text!r}")
        return label.strip(), number
    return pair


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def _blocks(text: str) -> tuple[tuple[int, int], ...]:
    """'2:48,1:48,2:96' -> ((2, 48), (1, 48), (2, 96)): (stride, filters) per depthwise-separable block."""
    try:
        blocks = tuple((int(s), int(f)) for s, f in (item.split(":") for item in text.split(",")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected STRIDE:FILTERS pairs separated by commas, like 2:48,1:48; "
                                         f"got {text!r}") from None
    if any(s not in (1, 2) or f < 1 for s, f in blocks):
        raise argparse.ArgumentTypeError(f"each block's stride must be 1 or 2 and its filters at least 1; got {text!r}")
    return blocks


def _snr_range(text: str) -> tuple[float, float]:
    """'0,15' -> (0.0, 15.0): the SNR range, in dB, training mixtures are drawn from."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in dB, like -5,15; got {text!r}") from None
    if not lo <= hi:
        raise argparse.ArgumentTypeError(f"LOW must not exceed HIGH; got {text!r}")
    return lo, hi


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how to train (shared with `bowlsense crossval`). Each default shown in --help is
    read from TrainConfig, the one place it is set."""
    from ..train.pipeline import TrainConfig  # light: no TensorFlow until a model is built
    d = TrainConfig()
    parser.add_argument("--yamnet", metavar="SOURCE", help="YAMNet weights (see above)")
    parser.add_argument("--labels", help=f"comma-separated model outputs (default {','.join(d.labels)})")
    parser.add_argument("--seed", type=int, default=0, help="seed for the split, augmentation and training")
    parser.add_argument("--student-seed", type=int, default=0, metavar="N",
                        help="reseed only the student's training (weights, batch order, augmentation); the split "
                             "and teacher stay those of --seed. Comparing runs that differ only here measures "
                             "training noise (default 0)")
    parser.add_argument("--teacher-seed", type=int, default=0, metavar="N",
                        help="reseed only the teacher's fine-tuning (head, dropout, batch order); the split, "
                             "windows and frozen YAMNet layers stay those of --seed, and the student distils the "
                             "new teacher. Runs that differ only here measure the teacher's training noise "
                             "(default 0)")
    parser.add_argument("--unfrozen-blocks", type=int,
                        help=f"top YAMNet blocks fine-tuned, 0-13 (default {d.unfrozen_blocks})")
    parser.add_argument("--event-snr", type=_snr_range, metavar="LOW,HIGH",
                        help="dB range of the training mixtures of an event (eating, bowl, drinking) over "
                             f"background (default {','.join(f'{v:g}' for v in d.event_snr_db)}); labelled "
                             "with the event however faint it is")
    parser.add_argument("--speech-snr", type=_snr_range, metavar="LOW,HIGH",
                        help="dB range of the training mixtures of speech over other sounds (default "
                             f"{','.join(f'{v:g}' for v in d.speech_snr_db)}); labelled speech however faint")
    parser.add_argument("--head-prior", action="store_true",
                        help="start the teacher's new head as YAMNet's own AudioSet classifier for the nearest "
                             "classes (Chewing, Water tap, Dishes, Speech, ...) instead of from random weights")
    parser.add_argument("--teacher-lr", type=_positive, metavar="RATE",
                        help=f"the teacher's fine-tuning learning rate (Adam; default {d.teacher_lr:g})")
    parser.add_argument("--teacher-mask", type=_between(0.0, 0.5), metavar="P",
                        help="while the teacher fine-tunes, zero each time row and each frequency column of YAMNet's "
                             f"frozen layers' output with probability P, 0-0.5 (default {d.teacher_mask:g}: off)")
    parser.add_argument("--teacher-anchor", type=_non_negative, metavar="A",
                        help="while the teacher fine-tunes, add A * sum((w - w0)^2) over the unfrozen YAMNet weights to "
                             "its loss, w0 the pretrained value (L2-SP: weight decay towards YAMNet, not towards zero; "
                             f"default {d.teacher_anchor:g}: off)")
    parser.add_argument("--teacher-epochs", type=int, help=f"teacher fine-tune epochs (default {d.teacher_epochs})")
    parser.add_argument("--student-epochs", type=int,
                        help=f"student distillation epochs (default {d.student_epochs})")
    parser.add_argument("--student-lr", type=_positive, metavar="RATE",
                        help=f"the student's peak learning rate (Adam, cosine decay over its epochs; default "
                             f"{d.student_lr:g})")
    parser.add_argument("--max-macs", type=int, help=f"student MAC budget per patch (default {d.student.max_macs})")
    parser.add_argument("--max-weight-bytes", type=int,
                        help=f"student int8 weight budget (default {d.student.max_weight_bytes})")
    parser.add_argument("--distill-alpha", type=_between(0.0, 1.0),
                        help=f"weight of the teacher's scores in the student's target, 0-1 (default "
                             f"{d.distill_alpha:g}; the rest is the verified label)")
    parser.add_argument("--distill-embedding", type=_non_negative, metavar="WEIGHT",
                        help="also teach the student YAMNet's embedding of each window, with this weight against "
                             f"the scores' loss (default {d.distill_embedding:g}; 0 turns it off)")
    parser.add_argument("--distill-temperature", type=_at_least_one, metavar="T",
                        help="soften the teacher's logits by T in the student's target, Hinton-style: T^2-weighted "
                             f"cross-entropy at temperature T beside the verified labels (default "
                             f"{d.distill_temperature:g}; 1 takes the teacher's scores as they are)")
    parser.add_argument("--privacy-temperature", type=_at_least_one, metavar="T",
                        help="the privacy labels' (speech's) own distillation temperature (default: "
                             "--distill-temperature's)")
    parser.add_argument("--label-weight", type=_label_number("weight", "speech=3", lambda w: w > 0, "more than 0"),
                        action="append", metavar="LABEL=W",
                        help="LABEL's terms count W times in the student's loss, every other label's once; "
                             "repeat for several labels (default: none, all once)")
    own = ", ".join(f"{l}={t:g}" for l, t in d.label_threshold)
    parser.add_argument("--threshold", type=_label_number("threshold", "bowl=0.9", lambda t: 0 < t <= 1,
                                                          "more than 0 and at most 1"),
                        action="append", metavar="LABEL=ON",
                        help=f"LABEL's own `on` threshold in the model (its `off` keeps the default ratio); repeat "
                             f"for several labels. Default: {own}; the other event labels {d.threshold_on:g}, "
                             f"{', '.join(d.privacy_labels)} {d.privacy_threshold_on:g}. Only decides from the "
                             "scores: a rerun with another threshold reuses the checkpoints")
    parser.add_argument("--student-transfer", type=_non_negative_int, metavar="N",
                        help="N more augmented and mixed windows from the training clips for the student alone, "
                             f"scored by the teacher (default {d.student_transfer})")
    parser.add_argument("--teacher-transfer", action="store_true",
                        help="the teacher fine-tunes on the transfer windows too (twice the augmented and mixed "
                             "windows), instead of only scoring them; needs --student-transfer N > 0")
    parser.add_argument("--live-teacher", action=argparse.BooleanOptionalAction,
                        help="the teacher scores every student batch as the student sees it (after SpecAugment "
                             "and --student-mix), a YAMNet pass per batch; --no-live-teacher scores each window "
                             f"once beforehand, a faster run (default {'on' if d.live_teacher else 'off'})")
    parser.add_argument("--student-mix", type=_between(0.0, 1.0), metavar="F",
                        help="with the live teacher: this fraction of each student batch mixed pairwise on the "
                             f"features, -6 to +6 dB, labels the union (default {d.student_mix:g}: none)")
    default_blocks = ",".join(f"{s}:{f}" for s, f in d.student.blocks)
    parser.add_argument("--student-blocks", type=_blocks, metavar="S:F,...",
                        help=f"the student's depthwise-separable blocks as stride:filters (default {default_blocks}); "
                             "checked against --max-macs and --max-weight-bytes")
    parser.add_argument("--student-stem", type=_positive_int, metavar="FILTERS",
                        help=f"filters of the student's first convolution (default {d.student.stem_filters}); "
                             "checked against --max-macs and --max-weight-bytes like the blocks")
    parser.add_argument("--student-pool", choices=("mean", "time_max"),
                        help=f"student pooling: mean (global mean) or time_max (mean over frequency, max over "
                             f"time); default {d.student.pool}")
    parser.add_argument("--student-dropout", type=_between(0.0, 0.9), metavar="P",
                        help="drop each of the student's pooled features with probability P before its dense head, "
                             f"while training only (default {d.student.dropout:g}: none)")
    parser.add_argument("--quick", action="store_true",
                        help="a small, fast run (fewer mixtures, epochs and fine-tuned blocks) for smoke tests")


# Recipe options whose value, when given, is a TrainConfig field as it is (argparse destination -> field).
# The options that need more than a copy (--quick, --labels, --threshold) are handled in config_from_args;
# tests/test_train_pipeline.py checks that every recipe option reaches the config.
TRAIN_FIELDS = {
    "unfrozen_blocks": "unfrozen_blocks", "teacher_lr": "teacher_lr", "head_prior": "head_prior",
    "event_snr": "event_snr_db", "speech_snr": "speech_snr_db", "teacher_mask": "teacher_mask",
    "teacher_anchor": "teacher_anchor", "teacher_epochs": "teacher_epochs", "student_epochs": "student_epochs",
    "student_lr": "student_lr",
    "distill_alpha": "distill_alpha",
    "distill_embedding": "distill_embedding", "distill_temperature": "distill_temperature",
    "privacy_temperature": "privacy_temperature", "label_weight": "label_weight",
    "student_transfer": "student_transfer", "teacher_transfer": "teacher_transfer",
    "live_teacher": "live_teacher", "student_mix": "student_mix",
}
# The same for the student's architecture and budgets (StudentConfig, TrainConfig.student).
STUDENT_FIELDS = {
    "max_macs": "max_macs", "max_weight_bytes": "max_weight_bytes", "student_pool": "pool",
    "student_blocks": "blocks", "student_stem": "stem_filters", "student_dropout": "dropout",
}


def _given(args, fields: dict) -> dict:
    """{field: value} for the options of `fields` given on the command line (an option not given is None;
    a flag not given is False, its field's default too). Repeated options arrive as lists, fields hold tuples."""
    values = {field: getattr(args, dest) for dest, field in fields.items()}
    return {field: tuple(v) if isinstance(v, list) else v for field, v in values.items() if v is not None}


def config_from_args(args):
    import dataclasses

    from ..train.pipeline import TrainConfig
    cfg = TrainConfig()
    changes = {"seed": args.seed, "student_seed": args.student_seed, "teacher_seed": args.teacher_seed}
    if args.quick:
        changes.update(augmented=40, silence_crops=20, speech_mixtures=80, event_mixtures=30, background_mixtures=20,
                       teacher_epochs=2, unfrozen_blocks=2,
                       student_epochs=2, student_transfer=0, eval_privacy=6, eval_curve=2, eval_eating_bg=8)
    if args.labels:
        changes["labels"] = tuple(l.strip() for l in args.labels.split(",") if l.strip())
        changes["privacy_labels"] = tuple(l for l in cfg.privacy_labels if l in changes["labels"])
    changes.update(_given(args, TRAIN_FIELDS))
    labels = changes.get("labels", cfg.labels)
    own = {l: t for l, t in cfg.label_threshold if l in labels}  # the defaults of the labels trained
    own.update(args.threshold or ())  # a label this model lacks is refused by check_recipe
    changes["label_threshold"] = tuple(own.items())
    changes["student"] = dataclasses.replace(cfg.student, **_given(args, STUDENT_FIELDS))
    return dataclasses.replace(cfg, **changes)


def user_errors() -> tuple:
    """The errors that mean bad input (named in their message), not a bug: reported in one line, exit 2."""
    from ..data.audio import AudioError
    from ..data.dataset import DatasetError
    from ..train.examples import TrainingDataError
    from ..train.fit import CheckpointError
    from ..train.pipeline import RecipeError
    from ..train.student import BudgetError
    from ..train.weights import YamnetWeightsError
    return (YamnetWeightsError, TrainingDataError, DatasetError, AudioError, CheckpointError, BudgetError,
            RecipeError)


def run(args: argparse.Namespace) -> int:
    import os
    import time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ..train.pipeline import peak_rss_mb, train
    t0 = time.perf_counter()
    try:
        metrics = train(args.data_dir, args.out, args.yamnet, config_from_args(args), args.work, args.restart)
    except user_errors() as e:
        print(f"bowlsense train: {e}", file=sys.stderr)
        return 2
    s = metrics["summary"]
    print(f"wrote {args.out}/model.tflite, model.json, report.md in {time.perf_counter() - t0:.0f} s "
          f"(peak memory {peak_rss_mb():.0f} MB)")
    for name, row in s.items():
        print(f"  {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if v is not None))
    return 0
