"""Measure a trained int8 model on a dataset: per-class precision/recall/F1 on single-source windows,
confusion, speech detection under eating/bowl/background at +10/0/-10 dB (mixtures built from the
dataset's verified clips), speech false positives, eating detection alone and under background, false
events on background. Prints the headline numbers and writes evaluation.json, evaluation.md and PNGs.

--split val measures only the validation side of the grouped split the model was trained with (model.json
records it: seed, and for a cross-validation fold which fold), so the numbers match the training report;
the default uses every verified clip. A model.json from before the split was recorded is taken to use
`bowlsense train`'s default split with --seed (default 0).

--baseline OTHER_MODEL_DIR scores another model (same labels and thresholds) on the same windows and adds
each figure's difference, this model minus the baseline, with a 95% interval paired over the same clip
resamples (against_baseline.json): far narrower than either model's own interval, so a retrained model
can be judged against the one it replaces.

examples:
  bowlsense evaluate models/default ../shared/data --split val
  bowlsense evaluate models/default ../shared/data --split val --baseline /tmp/previous/models/default
"""
from __future__ import annotations

import argparse
import pathlib
import sys

HELP = "measure a trained model on a dataset (metrics + privacy, int8 path)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="folder with model.tflite and model.json")
    parser.add_argument("data_dir", metavar="DATA_DIR", help="dataset folder with labels.csv")
    parser.add_argument("--out", metavar="DIR", help="where to write the results (default MODEL_DIR/evaluation)")
    parser.add_argument("--split", choices=("all", "val"), default="all",
                        help="all verified clips (default) or the training run's validation side")
    parser.add_argument("--seed", type=int, help="split seed (default: the one model.json records, else 0)")
    parser.add_argument("--baseline", metavar="MODEL_DIR",
                        help="another model to compare with on the same windows (paired differences)")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ..data.audio import AudioError
    from ..data.dataset import DatasetError
    from ..train import evaluation, report, streamed
    from ..train.examples import Side, TrainingDataError
    from ..train.pipeline import TrainConfig, split_sources
    from ..train.predict import ModelDirError, load_model
    try:
        manifest, model = load_model(args.model_dir)
        recorded = manifest.metrics.get("split") or {}
        seed = args.seed if args.seed is not None else int(recorded.get("seed", 0))
        split = {k: recorded[k] for k in ("val_fraction", "folds", "fold") if k in recorded}
        if args.split == "all":
            split = {"val_fraction": 0.0, "folds": 0}
        config = dataclasses.replace(TrainConfig(), labels=tuple(manifest.labels), seed=seed, **split)
        train, val, gate = split_sources(args.data_dir, config)
        side = val if args.split == "val" else Side.of(train.clips + val.clips, args.data_dir)
        evalset = evaluation.build(side, manifest.labels, seed=seed + 1)
        baseline = _load_baseline(args.baseline, manifest) if args.baseline else None
    except (FileNotFoundError, ModelDirError, DatasetError, AudioError, TrainingDataError, ValueError) as e:
        print(f"bowlsense evaluate: {e}", file=sys.stderr)
        return 2
    print(gate, file=sys.stderr)
    scores = model(evalset.windows.patches)
    measured = {"int8_student": evaluation.measure(evalset, scores, manifest.thresholds)}
    out = pathlib.Path(args.out) if args.out else pathlib.Path(args.model_dir) / "evaluation"
    spread = evaluation.intervals(evalset, scores, manifest.thresholds, seed=seed)
    events = streamed.event_params(manifest.labels, manifest.thresholds, manifest.privacy_labels, manifest.smoothing,
                                   manifest.output.scale, manifest.output.zero_point)
    as_streamed = streamed.measure_streamed(evalset, scores, events, evaluation.clip_groups(evalset),
                                            manifest.output.scale, manifest.output.zero_point)
    report.write_evaluation(out, measured, args.data_dir, args.model_dir, model.backend, len(evalset.windows),
                            spread, as_streamed)
    row = evaluation.summary_row(measured["int8_student"])
    print(json.dumps(row, indent=2))
    print("95% intervals (bootstrap over clips): " + ", ".join(f"{k} {lo:.2f}-{hi:.2f}"
                                                               for k, (lo, hi) in spread.items()),
          file=sys.stderr)  # stdout stays one JSON object for scripts
    print(f"wrote {out}/evaluation.json, evaluation.md and PNGs", file=sys.stderr)
    if baseline is not None:
        _compare(evalset, scores, baseline, manifest.thresholds, seed, out, args.baseline)
    return 0


def _load_baseline(model_dir: str, manifest):
    """The baseline's int8 model, refused when its outputs or thresholds differ from this model's."""
    from ..train.predict import ModelDirError, load_model
    base_manifest, base_model = load_model(model_dir)
    if list(base_manifest.labels) != list(manifest.labels):
        raise ModelDirError(f"baseline {model_dir} outputs {', '.join(base_manifest.labels)}, this model "
                            f"{', '.join(manifest.labels)}: a paired comparison needs the same labels")
    if base_manifest.thresholds != manifest.thresholds:
        raise ModelDirError(f"baseline {model_dir} has other thresholds than this model; the paired "
                            "comparison measures both at the same thresholds")
    return base_model


def _compare(evalset, scores, base_model, thresholds, seed: int, out: pathlib.Path, baseline_dir: str) -> None:
    import json

    from ..train import evaluation
    from ..train.crossval import format_difference, paired_differences
    base = {"int8_student": base_model(evalset.windows.patches)}
    diffs = paired_differences(evalset, [{"int8_student": scores}], [base], thresholds,
                               evaluation.clip_groups(evalset), seed)["int8_student"]
    (out / "against_baseline.json").write_text(json.dumps({"baseline": str(baseline_dir), "int8_student": diffs},
                                                          indent=1) + "\n")
    print(f"against {baseline_dir} (this minus baseline, paired 95% interval over the same clip resamples):",
          file=sys.stderr)
    for key, d in diffs.items():
        print(f"  {key}: {format_difference(d)}", file=sys.stderr)
    print(f"wrote {out}/against_baseline.json", file=sys.stderr)
