"""Estimate how the training recipe does on unseen recordings: k-fold cross-validation grouped by source
recording. The recipe (the same options as `bowlsense train`) is trained once per fold with that fold's
clips held out; every verified clip is validated exactly once, and the figures are pooled over the folds
with clip-bootstrap 95% intervals (about half as wide as one split's).

Writes OUT/crossval.md, crossval.json and PNGs (folds.png: each fold against the pooled figure and the
target), and OUT/fold-N/ with each fold's model and full training report. Each fold resumes from its
checkpoints like `bowlsense train`, so an interrupted run picks up where it stopped. It takes k training
runs: about 40 minutes for 4 folds of ../shared/data on a 2-core machine. YAMNet weights are found as
for `bowlsense train` (--yamnet, $BOWLSENSE_YAMNET, ../shared/yamnet).

To judge a change to the recipe, give --baseline an earlier run's folder: both are scored on the same
windows, and crossval.md adds each figure's difference with the interval of the difference (paired over the
same clip resamples, much narrower than either run's own interval). That interval says nothing about
training randomness: retrain the baseline recipe with another --student-seed and give both runs as
--baseline, and the report also says how far retraining alone moved each figure. A change to the teacher's
recipe is judged the same way with --teacher-seed (a new teacher on the same windows) and `bowlsense compare
--model teacher`. To compare several runs of one recipe with several of another once they are finished,
use `bowlsense compare` (nothing retrained).

examples:
  bowlsense crossval ../shared/data --out models/crossval --folds 4
  bowlsense crossval ../shared/data --out /tmp/cv-timemax --student-pool time_max --baseline models/crossval
  bowlsense crossval ../shared/data --out /tmp/cv-seed1 --student-seed 1 --baseline models/crossval
  bowlsense crossval ../shared/data --out /tmp/cv-timemax --student-pool time_max \
      --baseline models/crossval --baseline /tmp/cv-seed1
  bowlsense crossval ../shared/data --out /tmp/cv-teacher1 --teacher-seed 1 --baseline models/crossval
"""
from __future__ import annotations

import argparse
import sys

from .train import add_recipe_arguments, config_from_args, user_errors

HELP = "k-fold cross-validation of the training recipe, grouped by source recording"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data_dir", metavar="DATA_DIR", help="dataset folder with labels.csv")
    parser.add_argument("--out", metavar="DIR", required=True, help="where to write the folds and the pooled report")
    parser.add_argument("--folds", type=int, default=4, help="number of folds, at least 2 (default 4)")
    add_recipe_arguments(parser)
    parser.add_argument("--baseline", metavar="DIR", action="append",
                        help="an earlier crossval output folder: report this run's paired differences against it. "
                             "Repeat it for runs of one recipe that differ only in --student-seed or "
                             "--teacher-seed: the baseline is their mean, and the report says how far apart they are "
                             "(training noise)")
    parser.add_argument("--work", metavar="DIR",
                        help="checkpoint folder; fold N uses DIR/fold-N (default: one per fold under .cache/train)")
    parser.add_argument("--restart", action="store_true", help="discard every fold's checkpoints first")


def run(args: argparse.Namespace) -> int:
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.folds < 2:
        print(f"bowlsense crossval: --folds must be at least 2, got {args.folds}", file=sys.stderr)
        return 2
    from ..train.crossval import BaselineError, crossval
    try:
        summary = crossval(args.data_dir, args.out, args.yamnet, config_from_args(args), args.folds, args.restart,
                           args.work, args.baseline)
    except user_errors() + (BaselineError,) as e:
        print(f"bowlsense crossval: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/crossval.md, crossval.json ({summary['validated_clips']} clips validated over "
          f"{summary['folds']} folds, {summary['seconds']['total']:.0f} s)")
    for name, row in summary["pooled"].items():
        print(f"  {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if v is not None))
    return 0
