"""How every headline figure of a finished run moves as its thresholds move: the event labels' `on`
threshold swept together (eating caught alone and at 0 dB under background against false events on
background windows), and speech's (speech caught at -10/0/+10 dB against speech false positives).
Reads only the run's scores.npz (`bowlsense crossval` or `bowlsense train` output); nothing is retrained.

It answers whether a missed target is a threshold in the wrong place or scores that do not separate the
classes: it names the thresholds at which every target of a sweep is met, or says that none is. The sweep
chooses nothing; a threshold picked on these scores would look better here than on new recordings.

For a cross-validation run it also says what a chosen threshold scores on recordings it was not chosen
on: each fold's threshold is chosen on the other folds' windows (the best speech caught at -10 dB, or
eating caught at 0 dB under background, among the thresholds whose false alarms meet their target; else
the fewest false alarms) and measured on that fold's, pooled over the folds, beside the run's own.

examples:
  bowlsense thresholds models/crossval
  bowlsense thresholds models/crossval --out models/crossval/thresholds
  bowlsense thresholds /tmp/run --model teacher
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

HELP = "how a finished run's figures move as its thresholds move (from scores.npz, nothing retrained)"
MODELS = ("teacher", "float_student", "int8_student")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="output folder of `bowlsense crossval` or `bowlsense train`")
    parser.add_argument("--model", choices=MODELS, action="append",
                        help="whose scores to sweep; repeat for several (default: teacher and int8_student)")
    parser.add_argument("--out", metavar="DIR",
                        help="also write DIR/thresholds.md, thresholds.json and thresholds.png (the curves)")


def run(args: argparse.Namespace) -> int:
    from ..train import operating
    from ..train.crossval import BaselineError, load_scores, require_evalset
    try:
        loaded = require_evalset(load_scores(args.run))
    except BaselineError as e:
        print(f"bowlsense thresholds: {e}", file=sys.stderr)
        return 2
    models = args.model or operating.DEFAULT_MODELS
    missing = [m for m in models if m not in loaded["scores"]]
    if missing:
        print(f"bowlsense thresholds: {args.run} holds no {', '.join(missing)} scores "
              f"(it has {', '.join(loaded['scores'])})", file=sys.stderr)
        return 2
    result = operating.sweep_run(loaded, models)
    lines = operating.markdown(result)
    print("\n".join(lines))
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "thresholds.md").write_text("\n".join(lines) + "\n\n![operating points](thresholds.png)\n")
        (out / "thresholds.json").write_text(json.dumps(result, indent=1) + "\n")
        operating.plot(out / "thresholds.png", result)
        print(f"wrote {out}/thresholds.md, thresholds.json, thresholds.png", file=sys.stderr)
    return 0
