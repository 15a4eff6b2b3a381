"""Compare finished runs of two recipes (`bowlsense crossval` or `bowlsense train`), each retrained with
several --student-seed values: the mean of the RUNs against the mean of the --baseline runs, every figure paired over the same evaluation
windows and the same clip resamples, with how far apart each side's own runs are. Nothing is trained;
only the runs' scores.npz are read (under a minute for five crossval runs of ../shared/data). Runs of
`bowlsense train` compare the same way on their one validation split: fewer clips, wider intervals.

A second table reads each run's trade-off at equal false alarms: the most eating caught at 0 dB under
background with at most 5, 8, 10, 12 or 15% of background windows firing, and the most speech caught at
-10 dB with at most 1, 2 or 3% speech false positives, over the threshold sweeps of `bowlsense thresholds`.
A recipe that only trades detection for false alarms moves the first table and leaves this one level.

One run per recipe is not evidence: on ../shared/data, retraining the same student with another seed moved
speech caught at -10 dB by 0.037, an interval that excludes 0 included. A difference is worth acting on
when it is larger than both sides' spreads, in the same direction as its interval.

examples:
  bowlsense compare /tmp/cv-new-s0 /tmp/cv-new-s1 --baseline models/crossval --baseline /tmp/cv-seed1
  bowlsense compare /tmp/cv-new-s0 /tmp/cv-new-s1 --baseline models/crossval --out /tmp/new-vs-default
  bowlsense compare /tmp/new-s0 /tmp/new-s1 --baseline /tmp/default-s0 --baseline /tmp/default-s1
  bowlsense compare models/crossval --baseline /tmp/cv-at-0.5 --own-thresholds
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

HELP = "compare finished crossval or train runs of two recipes over several training seeds (nothing is retrained)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", metavar="RUN", nargs="+",
                        help="output folders of `bowlsense crossval` (or `bowlsense train`) runs of the recipe under test")
    parser.add_argument("--baseline", metavar="DIR", action="append", required=True,
                        help="output folder of a run of the recipe to compare against; repeat it for several seeds")
    parser.add_argument("--model", choices=("teacher", "float_student", "int8_student"), default="int8_student",
                        help="whose scores to compare (default int8_student, what the device runs)")
    parser.add_argument("--own-thresholds", action="store_true",
                        help="measure each run at the thresholds it was saved with (to judge a change of "
                             "thresholds); by default all are measured at the first run's, and runs saved at "
                             "other thresholds are refused")
    parser.add_argument("--out", metavar="DIR", help="also write DIR/compare.md and DIR/compare.json")


def table(result: dict, model: str) -> list[str]:
    from ..train.crossval import format_difference
    rows = result["against_baseline"].get(model)
    if rows is None:
        raise KeyError(model)
    lines = [f"{model}: mean of {len(result['runs'])} run(s) minus mean of {len(result['baselines'])} baseline(s), "
             f"{result['windows']} windows of {result['clips']} clips; 95% interval paired over clip resamples"
             + ("; each run at its own thresholds" if result.get("own_thresholds") else ""),
             "", "| figure | difference |", "|---|---|"]
    lines += [f"| {key} | {format_difference(d)} |" for key, d in rows.items()]
    curves = result.get("at_equal_false_alarms", {}).get(model)
    if curves:
        lines += ["", f"{model} at equal false alarms: each run's best detection over the threshold sweeps of "
                  "`bowlsense thresholds` with false alarms within the budget (- where no threshold is). A recipe "
                  "that only trades detection for false alarms leaves these level.",
                  "", "| figure | runs | baselines | difference |", "|---|---|---|---|"]
        for point, d in curves.items():
            runs, bases = (", ".join("-" if v is None else f"{v:.3f}" for v in side) for side in (d["runs"], d["baselines"]))
            diff = "-" if d["difference"] is None else f"{d['difference']:+.3f}"
            lines.append(f"| {point} | {runs} | {bases} | {diff} |")
    return lines


def run(args: argparse.Namespace) -> int:
    from ..train.crossval import BaselineError, compare_runs
    try:
        result = compare_runs(args.runs, args.baseline, own_thresholds=args.own_thresholds)
        lines = table(result, args.model)
    except BaselineError as e:
        print(f"bowlsense compare: {e}", file=sys.stderr)
        return 2
    except KeyError:
        print(f"bowlsense compare: the runs hold no {args.model} scores", file=sys.stderr)
        return 2
    print("\n".join(lines))
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(json.dumps(result, indent=1) + "\n")
        (out / "compare.md").write_text("# bowlsense compare\n\nRuns: " + ", ".join(result["runs"]) +
                                        "\n\nBaselines: " + ", ".join(result["baselines"]) + "\n\n" +
                                        "\n".join(lines) + "\n")
        print(f"wrote {out}/compare.md, compare.json", file=sys.stderr)
    return 0
