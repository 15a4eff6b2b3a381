"""`bowlsense crossval`: the training recipe measured on every verified clip, not on one quarter of them.

One validation split of ../shared/data holds about 100 clips (9 of them eating, 3 drinking), so each figure
of a training report has a wide interval and moves by up to 0.2 with the split seed. Cross-validation
trains the same recipe k times, each time holding out one fold of group_folds (whole recordings), so
every clip is validated exactly once, by a model that never heard its recording. The k evaluation sets
and each model's scores on them are pooled and measured as one: the pooled figures estimate what the
recipe does on unseen recordings, and their clip-bootstrap intervals are about half as wide (four times
the clips). Each fold also writes its own full report (OUT/fold-N/).

A change to the recipe is judged against a baseline cross-validation run (`baseline=`): both are scored
on the very same evaluation windows (OUT/scores.npz), so the difference is measured pairwise, clip
resample by clip resample, and its interval is far narrower than either run's own. That interval covers
which clips happen to be validated, not the randomness of training itself: a run that differs from the
baseline only in `student_seed` (or, for the teacher, `teacher_seed`) shows how far retraining alone moves
each figure, and a recipe change is evidence only where it moves a figure further than that. Several
baseline runs (one recipe, several seeds) are compared as their mean, with their own spread reported
beside each difference.

What is estimated is the recipe, not one particular trained model: models/default, trained on the usual
split's training side, is one more draw of the same recipe.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import time

import numpy as np

from . import evaluation, operating, report, streamed
from .examples import Windows
from .pipeline import TrainConfig, Trained, peak_rss_mb, train_and_measure

FOLD_FIGURES = ("macro_f1", "background_false_event", "speech_detect_-10dB", "speech_false_positive",
                "eating_detect_alone", "eating_detect_0dB_under_background")


def pool(results: list[Trained]) -> tuple[evaluation.EvalSet, dict[str, np.ndarray]]:
    """The folds' evaluation sets as one, with each model's scores stacked in the same order."""
    if not results:
        raise ValueError("no folds to pool")
    labels = results[0].evalset.labels
    if any(r.evalset.labels != labels for r in results):
        raise ValueError("folds were trained for different labels")
    windows = Windows.concat([r.evalset.windows for r in results])
    group = [g for r in results for g in r.evalset.group]
    other = [o for r in results for o in r.evalset.other]
    scores = {name: np.concatenate([r.scores[name] for r in results]) for name in results[0].scores}
    return evaluation.EvalSet(labels, windows, group, other), scores


class BaselineError(ValueError):
    """A baseline run that cannot be compared with this one; the message says why."""


def crossval(data_dir, out_dir, yamnet_source=None, config: TrainConfig = TrainConfig(), folds: int = 4,
             restart: bool = False, work_dir=None, baseline=None) -> dict:
    """Train every fold (each resumable like `bowlsense train`; with work_dir, fold N checkpoints in
    work_dir/fold-N), pool, write OUT/crossval.{md,json}, scores.npz and PNGs; with `baseline` (an earlier
    crossval output folder, or a list of runs of one recipe) also the paired differences against it.
    Returns what crossval.json holds."""
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    baselines = [baseline] if isinstance(baseline, (str, pathlib.Path)) else list(baseline or [])
    bases = [load_scores(b) for b in baselines]  # a bad baseline stops the run before training
    import keras
    out = pathlib.Path(out_dir)
    t0, c0 = time.perf_counter(), time.process_time()
    results, fold_seconds = [], []
    for fold in range(folds):
        print(f"==== fold {fold + 1}/{folds}", flush=True)
        t = time.perf_counter()
        work = pathlib.Path(work_dir) / f"fold-{fold + 1}" if work_dir else None
        results.append(train_and_measure(data_dir, out / f"fold-{fold + 1}", yamnet_source,
                                         dataclasses.replace(config, folds=folds, fold=fold), work, restart))
        fold_seconds.append(time.perf_counter() - t)
        keras.backend.clear_session()  # each fold builds fresh models; free the last fold's graphs
    evalset, scores = pool(results)
    thresholds = results[0].thresholds
    measured = {name: evaluation.measure(evalset, s, thresholds) for name, s in scores.items()}
    groups = evaluation.clip_groups(evalset)
    single = np.array(evalset.group) == "single"
    fold_of_window = np.repeat(np.arange(folds), [len(r.evalset.windows) for r in results])
    spread = {name: evaluation.intervals(evalset, s, thresholds, groups=groups, seed=config.seed)
              for name, s in scores.items()}
    events = streamed.event_params(config.labels, thresholds, config.privacy_labels)
    summary = {
        "folds": folds,
        "seed": config.seed,
        "validated_clips": int(len(np.unique(groups[single]))),
        "validated_per_fold": [int(len(np.unique(groups[single & (fold_of_window == f)]))) for f in range(folds)],
        "windows": int(len(evalset.windows)),
        "pooled": {name: evaluation.summary_row(m) for name, m in measured.items()},
        "pooled_per_class": {name: m["per_class"] for name, m in measured.items()},
        "interval_95": spread,
        "interval_method": f"bootstrap over all validated clips ({evaluation.BOOTSTRAP_RESAMPLES} resamples; a "
                           "mixture goes with its target clip)",
        "streamed": {name: streamed.measure_streamed(evalset, s, events, groups) for name, s in scores.items()},
        "per_fold": [r.metrics["summary"] for r in results],
        "targets": evaluation.TARGETS,
        "seconds": {"folds": fold_seconds, "total": time.perf_counter() - t0,
                    "cpu_total": time.process_time() - c0},
        "peak_memory_mb": peak_rss_mb(),
        "config": config.to_dict(),
    }
    from ..data.dataset import Dataset
    dataset = Dataset.load(data_dir)
    clips_by_sha = {c.sha256: c for c in dataset.verified().clips}
    summary["clips_most_wrong"] = clips_most_wrong(evalset, scores["int8_student"], thresholds, groups, clips_by_sha)
    add_what_yamnet_hears(summary["clips_most_wrong"], dataset.csv_path.parent, yamnet_source)
    if bases:
        for base in bases:
            check_same_windows(base, evalset)
        summary["baseline"] = ", ".join(map(str, baselines))
        summary["against_baseline"] = paired_differences(evalset, [scores], [b["scores"] for b in bases],
                                                         thresholds, groups, config.seed)
    out.mkdir(parents=True, exist_ok=True)
    save_scores(out / "scores.npz", evalset, scores, thresholds, groups, fold=fold_of_window)
    (out / "crossval.json").write_text(json.dumps(summary, indent=1) + "\n")
    write_report(out, summary, measured, spread, evalset)
    return summary


def clips_most_wrong(evalset, scores: np.ndarray, thresholds: dict, groups, clips_by_sha: dict,
                     n: int = 12) -> list[dict]:
    """The n validated clips with the most wrong single windows (any label missed or falsely reported),
    each with what went wrong: where a person should listen first (a mislabelled clip, a sound the
    labels do not cover, a recording unlike any in training)."""
    labels = list(evalset.labels)
    on = evaluation.on_thresholds(thresholds, labels)
    single = np.flatnonzero(np.array(evalset.group) == "single")
    truth = evalset.windows.targets[single] > 0.5
    pred = scores[single] >= on
    rows: dict[str, dict] = {}
    for k, sha in enumerate(groups[single]):
        r = rows.setdefault(sha, {"windows": 0, "wrong": 0, "missed": {}, "false": {}})
        r["windows"] += 1
        if (pred[k] != truth[k]).any():
            r["wrong"] += 1
        for i, l in enumerate(labels):
            if truth[k, i] and not pred[k, i]:
                r["missed"][l] = r["missed"].get(l, 0) + 1
            elif pred[k, i] and not truth[k, i]:
                r["false"][l] = r["false"].get(l, 0) + 1
    ranked = sorted((r for r in rows.items() if r[1]["wrong"]), key=lambda kv: (-kv[1]["wrong"], kv[0]))[:n]
    out = []
    for sha, r in ranked:
        clip = clips_by_sha.get(sha)
        out.append({"path": clip.path if clip else sha, "labels": list(clip.labels) if clip else [],
                    "note": clip.note if clip else "", **r})
    return out


def add_what_yamnet_hears(rows: list[dict], data_folder: pathlib.Path, yamnet_source=None) -> None:
    """Give each row of clips_most_wrong pretrained YAMNet's top AudioSet classes for its clip ("yamnet_hears",
    see teacher.what_yamnet_hears), a second opinion a reviewer can compare with the label. Left out, with a
    message, when YAMNet's class names are not beside the weights."""
    from . import teacher, yamnet
    from . import weights as wl
    from .features import clip_patches
    names = wl.class_names(yamnet_source)
    if names is None:
        print(f"note: no {wl.CLASS_MAP} beside the YAMNet weights; the review list goes without YAMNet's opinion",
              flush=True)
        return
    model = yamnet.build_yamnet(wl.load(yamnet_source))
    for row in rows:
        path = data_folder / row["path"]
        if path.is_file():
            row["yamnet_hears"] = teacher.what_yamnet_hears(model, clip_patches(path), names)


def save_scores(path: pathlib.Path, evalset, scores: dict, thresholds: dict, groups, fold=None) -> None:
    """Each model's pooled scores with all that measuring them again takes, so finished runs can be compared
    later without the data (`bowlsense compare`): every window's lineage (what runs are matched on, window
    for window), targets, SNR, group and mixture partner, the clip it stands or falls with, and the
    thresholds; for a cross-validation run also the fold that validated each window (`bowlsense
    thresholds` chooses thresholds on the other folds with it)."""
    on_off = {l: dict(zip(("on", "off"), evaluation.on_off(t))) for l, t in thresholds.items()}
    w = evalset.windows
    np.savez_compressed(path, lineage=np.array(w.lineage), labels=np.array(evalset.labels), targets=w.targets,
                        snr_db=w.snr_db, group=np.array(evalset.group), other=np.array(evalset.other),
                        clip=np.asarray(groups), thresholds=np.array(json.dumps(on_off)),
                        **({} if fold is None else {"fold": np.asarray(fold, np.int16)}),
                        **{f"scores_{name}": s for name, s in scores.items()})


def load_scores(folder) -> dict:
    """A finished run's scores.npz: {"lineage", "labels", "scores": {model: (n, labels)}}, and, from runs
    written since it was saved, "evalset", "groups" and "thresholds" (what compare_runs measures with)."""
    path = pathlib.Path(folder) / "scores.npz"
    try:
        with np.load(path) as z:
            run = {"path": str(folder), "lineage": z["lineage"], "labels": tuple(z["labels"].tolist()),
                   "scores": {k[len("scores_"):]: z[k] for k in z.files if k.startswith("scores_")}}
            if "targets" in z.files:
                n = len(z["targets"])
                windows = Windows(np.zeros((0, 96, 64), np.int16), z["targets"], [], z["lineage"].tolist(),
                                  z["snr_db"])
                run["evalset"] = evaluation.EvalSet(run["labels"], windows, z["group"].tolist(), z["other"].tolist())
                run["groups"] = z["clip"]
                run["thresholds"] = json.loads(str(z["thresholds"]))
                if "fold" in z.files:
                    run["fold"] = z["fold"]
                if not all(len(a) == n for a in (z["lineage"], z["snr_db"], z["group"], z["clip"],
                                                 *run["scores"].values(), *([run["fold"]] if "fold" in run else []))):
                    raise ValueError("arrays of different lengths")
            return run
    except (OSError, KeyError, ValueError) as e:
        raise BaselineError(f"{path} is missing or unreadable ({type(e).__name__}); give the output "
                            "folder of an earlier `bowlsense crossval` or `bowlsense train` run") from None


def heldout_clip_scores(folder, model: str = "int8_student") -> tuple[dict[str, np.ndarray], list[str]]:
    """({clip sha256: (windows, labels) scores}, labels) from a finished run's scores.npz: each validated
    clip's single windows as the run scored them. In a cross-validation run every clip was scored by the
    fold's model that never heard its recording, so a clip the labels and the model disagree on is not one
    the model memorised: what `bowlsense data audit --heldout` ranks clips by. Clips the run did not
    validate have no entry."""
    run = require_evalset(load_scores(folder))
    if model not in run["scores"]:
        raise BaselineError(f"{run['path']}/scores.npz has no {model} scores (it has: "
                            f"{', '.join(sorted(run['scores']))})")
    scores, groups = run["scores"][model], run["groups"]
    single = np.flatnonzero(np.array(run["evalset"].group) == "single")
    return ({str(sha): scores[single[groups[single] == sha]] for sha in np.unique(groups[single])},
            list(run["labels"]))


def require_evalset(run: dict) -> dict:
    """A loaded run (load_scores) that can be measured again: its scores.npz holds the evaluation windows."""
    if "evalset" not in run:
        raise BaselineError(f"{run['path']}/scores.npz predates saved evaluation windows; rerun the command "
                            "that wrote it (it resumes from the checkpoints and only scores again)")
    return run


def check_same_windows(run: dict, evalset) -> None:
    """A run (load_scores) can be compared with this evaluation set only if it scored the very same windows."""
    if run["labels"] != tuple(evalset.labels) or not np.array_equal(run["lineage"], np.array(evalset.windows.lineage)):
        raise BaselineError(f"{run.get('path', 'the baseline')} was scored on other evaluation windows (other "
                            "data, labels, folds or seed); run both with the same dataset, --folds and --seed")


def paired_differences(evalset, runs: list[dict], bases: list[dict], thresholds: dict, groups, seed: int,
                       n: int = evaluation.BOOTSTRAP_RESAMPLES) -> dict:
    """{model: {figure: {"difference": runs - bases, "interval_95": [lo, hi]}}}: every run measured on the
    same windows and the same clip resamples, so what the clips have in common cancels out.

    `runs` and `bases` are lists of {model: scores} on `evalset`: runs of one recipe each, differing only in
    training randomness (--student-seed). Each side is their mean, and a side of two or more runs adds how
    far apart they are ("retraining_spread" for the baseline, "runs_spread" for the runs; max - min): the
    size of a difference that retraining alone produces."""
    draws = evaluation.clip_resamples(groups, n, seed)
    out = {}
    for name in runs[0]:
        if any(name not in side for side in (*runs, *bases)):
            continue
        measured = [[evaluation.summary_row(evaluation.measure(evalset, r[name], thresholds)) for r in side]
                    for side in (runs, bases)]
        drawn = [[evaluation.resampled_rows(evalset, r[name], thresholds, draws) for r in side]
                 for side in (runs, bases)]
        row = {}
        for k in measured[0][0]:
            if any(m.get(k) is None for side in measured for m in side):
                continue
            d = [float(np.mean([r[i][k] for r in drawn[0]]) - np.mean([r[i][k] for r in drawn[1]]))
                 for i in range(len(draws)) if all(r[i].get(k) is not None for side in drawn for r in side)] or [0.0]
            row[k] = {"difference": float(np.mean([m[k] for m in measured[0]]) - np.mean([m[k] for m in measured[1]])),
                      "interval_95": [float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))]}
            for side, key in zip(measured, ("runs_spread", "retraining_spread")):
                if len(side) > 1:
                    row[k][key] = float(max(m[k] for m in side) - min(m[k] for m in side))
        out[name] = row
    return out


def at_equal_false_alarms(evalset, runs: list[tuple[dict, dict]], bases: list[tuple[dict, dict]]) -> dict:
    """{model: {point: {"runs": [...], "baselines": [...], "difference": mean runs - mean bases}}}: each
    run's trade-off curves read at fixed false alarms (operating.trade_off). `runs` and `bases` are lists of
    ({model: scores}, thresholds). A difference here is a move of the trade-off itself; a recipe that only
    trades detection for false alarms moves the figures at the run's thresholds, not these. No interval:
    each value is the best of a sweep over the same scores, read per run; the sides' spreads say how
    much retraining alone moves it. A point some run cannot reach at any threshold has no difference."""
    out = {}
    for name in runs[0][0]:
        if any(name not in scores for scores, _ in (*runs, *bases)):
            continue
        read = [[operating.trade_off(evalset, scores[name], thresholds) for scores, thresholds in side]
                for side in (runs, bases)]
        rows = {}
        for point in read[0][0]:
            values = [[r[point] for r in side] for side in read]
            reached = all(v is not None for side in values for v in side)
            rows[point] = {"runs": values[0], "baselines": values[1],
                           "difference": float(np.mean(values[0]) - np.mean(values[1])) if reached else None}
        out[name] = rows
    return out


def compare_runs(run_dirs, baseline_dirs, seed: int = 0, own_thresholds: bool = False) -> dict:
    """Finished crossval runs of one recipe (several --student-seed values) against those of another, from
    their scores.npz alone: {"runs", "baselines", "windows", "clips", "against_baseline": paired_differences,
    "at_equal_false_alarms": at_equal_false_alarms}.
    All are measured at one set of thresholds, and runs saved at others are refused; with own_thresholds each
    is measured at the thresholds it was saved with instead (a change of thresholds is a change of recipe)."""
    runs = [load_scores(d) for d in run_dirs]
    bases = [load_scores(d) for d in baseline_dirs]
    if not runs or not bases:
        raise BaselineError("give at least one run and one --baseline")
    first = require_evalset(runs[0])
    for other in (*runs[1:], *bases):
        check_same_windows(other, first["evalset"])
        if not own_thresholds and "thresholds" in other and other["thresholds"] != first["thresholds"]:
            raise BaselineError(f"{other['path']} was measured at other thresholds than {first['path']}; "
                                "--own-thresholds measures each run at its own")
    groups = first["groups"]
    thresholds = first["thresholds"]
    # The sweeps need the scores themselves, before own_thresholds turns them into decisions.
    swept = [[(r["scores"], r.get("thresholds", thresholds) if own_thresholds else thresholds) for r in side]
             for side in (runs, bases)]
    if own_thresholds:
        runs, bases = [[_decided(r) for r in side] for side in (runs, bases)]
        thresholds = {l: {"on": 0.5, "off": 0.5} for l in first["labels"]}
    return {"runs": [r["path"] for r in runs], "baselines": [b["path"] for b in bases],
            "windows": int(len(groups)), "clips": int(len(np.unique(groups))), "own_thresholds": own_thresholds,
            "against_baseline": paired_differences(first["evalset"], [r["scores"] for r in runs],
                                                   [b["scores"] for b in bases], thresholds, groups, seed),
            "at_equal_false_alarms": at_equal_false_alarms(first["evalset"], *swept)}


def _decided(run: dict) -> dict:
    """A loaded run with every score replaced by its decision at the run's own `on` thresholds (1 or 0):
    measured at 0.5, these give exactly the figures of the scores at those thresholds, since every figure
    reads only whether a score reaches its threshold."""
    if "thresholds" not in run:
        raise BaselineError(f"{run['path']} does not record its thresholds; it cannot be measured at its own")
    on = evaluation.on_thresholds(run["thresholds"], run["labels"])
    return {**run, "scores": {m: (s >= on).astype(np.float32) for m, s in run["scores"].items()}}


def format_difference(d: dict) -> str:
    """One paired_differences entry as "+0.012 [-0.004, +0.030]" (and "; runs 0.015 apart; baselines 0.020 apart")."""
    text = f"{d['difference']:+.3f} [{d['interval_95'][0]:+.3f}, {d['interval_95'][1]:+.3f}]"
    if "runs_spread" in d:
        text += f"; runs {d['runs_spread']:.3f} apart"
    if "retraining_spread" in d:
        text += f"; baselines {d['retraining_spread']:.3f} apart"
    return text


def plot_folds(path, summary: dict) -> None:
    """One panel per headline figure: each fold's int8 student (dots), the pooled value with its interval
    (bar) and the target (dashed)."""
    plt = report._plt()
    fig, axes = plt.subplots(1, len(FOLD_FIGURES), figsize=(3 * len(FOLD_FIGURES), 3.2))
    for ax, key in zip(axes, FOLD_FIGURES):
        for x, name in enumerate(report.MODELS):
            per = [f[name].get(key) for f in summary["per_fold"]]
            per = [v for v in per if v is not None]
            ax.scatter([x] * len(per), per, s=14, color="grey", zorder=3)
            pooled = summary["pooled"][name].get(key)
            lo_hi = summary["interval_95"][name].get(key)
            if pooled is not None:
                err = None if not lo_hi else [[pooled - lo_hi[0]], [lo_hi[1] - pooled]]
                ax.errorbar([x], [pooled], yerr=err, fmt="o", color="C0", capsize=4, zorder=4)
        goal = summary["targets"].get("teacher_macro_f1" if key == "macro_f1" else key)
        if goal is not None:
            ax.axhline(goal, color="C3", lw=0.8, ls="--")
        ax.set_xticks(range(len(report.MODELS)), ["teacher", "float", "int8"])
        ax.set_title(key.replace("_", " "), fontsize=8)
        ax.set_ylim(-0.02, 1.02)
    fig.suptitle("cross-validation: folds (grey), pooled with 95% interval (blue), target (red)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    report._plt().close(fig)


def write_report(out: pathlib.Path, summary: dict, measured: dict, spread: dict, evalset) -> None:
    labels = list(evalset.labels)
    report.plot_per_class(out / "per_class.png", measured, labels)
    report.plot_confusion(out / "confusion.png", measured)
    report.plot_privacy(out / "privacy.png", measured)
    plot_folds(out / "folds.png", summary)
    k = summary["folds"]
    lines = [
        f"# bowlsense cross-validation ({k} folds)", "",
        f"The training recipe trained {k} times, each fold's validation clips held out (whole recordings; "
        f"`group_folds`, seed {summary['seed']}). Every verified clip of a label with two or more recordings is "
        f"validated once: {summary['validated_clips']} clips, {summary['windows']} evaluation windows including "
        "the mixtures each fold builds from its own validation clips. Figures are pooled over the folds; "
        "this estimates the recipe on unseen recordings, not one particular model. Each fold's own report is in "
        "fold-N/report.md.", "",
        "## Pooled", "",
        *report.metrics_table(measured, spread), "",
        f"In brackets: 95% intervals, {summary['interval_method']}. How each figure moves as the thresholds "
        f"move, and whether any threshold meets the targets: `bowlsense thresholds {out}`.", "",
        "## Per fold (int8 student; teacher in parentheses)", "",
        "| fold | " + " | ".join(FOLD_FIGURES) + " |",
        "|---|" + "---|" * len(FOLD_FIGURES),
    ]
    for i, f in enumerate(summary["per_fold"], start=1):
        cells = [f"{report._fmt(f['int8_student'].get(key))} ({report._fmt(f['teacher'].get(key))})"
                 for key in FOLD_FIGURES]
        lines.append(f"| {i} | " + " | ".join(cells) + " |")
    if summary.get("against_baseline"):
        lines += ["", f"## Against the baseline ({summary['baseline']})", "",
                  "This run minus the baseline, on the same evaluation windows; in brackets the 95% interval of the "
                  "difference over the same clip resamples. An interval that excludes 0 is not an accident of which clips "
                  "were validated, but it does not cover training randomness. Given several baselines (one recipe "
                  "retrained with other --student-seed or --teacher-seed values) the baseline is their mean, and "
                  "\"apart\" says how far those runs are from each other: a difference no larger than that is what "
                  "retraining alone does.",
                  "",
                  "| figure | " + " | ".join(report.TITLES[n] for n in summary["against_baseline"]) + " |",
                  "|---|" + "---|" * len(summary["against_baseline"])]
        keys = list(next(iter(summary["against_baseline"].values())))
        for key in keys:
            cells = []
            for name, rows in summary["against_baseline"].items():
                r = rows.get(key)
                cells.append("n/a" if r is None else
                             format_difference(r))
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    if summary.get("streamed"):
        lines += ["", "## As the device reports it", "", report.STREAMED_INTRO, "",
                  *report.streamed_table(summary["streamed"])]
    lines += ["", "## Clips most often wrong (int8 student, single windows)", "",
              "Where to listen first: a clip that is wrong in most of its windows may be mislabelled, hold a sound "
              "the labels do not cover, or be unlike anything in training. Every validated clip in order of "
              "how far its held-out scores are from its labels, with spectrogram and audio: "
              f"`bowlsense data audit DATA_DIR --out audit.html --heldout {out}`.", "",
              "The last column is pretrained YAMNet's opinion, independent of these labels: its top AudioSet "
              "classes over the clip's windows, with the share of windows each wins.", "",
              "| clip | label | note | wrong windows | missed | falsely reported | YAMNet hears |",
              "|---|---|---|---|---|---|---|"]
    for c in summary.get("clips_most_wrong", []):
        missed = ", ".join(f"{l} {k}" for l, k in c["missed"].items()) or "-"
        false = ", ".join(f"{l} {k}" for l, k in c["false"].items()) or "-"
        hears = ", ".join(f"{name} {share:.0%}" for name, share in c.get("yamnet_hears", [])) or "-"
        lines.append(f"| {c['path']} | {';'.join(c['labels'])} | {c['note'][:40]} | {c['wrong']} of {c['windows']} | "
                     f"{missed} | {false} | {hears} |")
    lines += ["", "![folds](folds.png)", "",
              "## Per class, pooled (single-source windows)", "",
              *report.per_class_table(measured, labels)]
    lines += ["", "![per class](per_class.png)", "", "![confusion](confusion.png)", "", "![privacy](privacy.png)", "",
              "## Cost", "",
              "Wall seconds of this invocation: a fold that resumes from finished checkpoints (a rerun) takes a "
              "fraction of a full training run.", "",
              "| fold | wall seconds |", "|---|---|",
              *[f"| {i} | {s:.0f} |" for i, s in enumerate(summary["seconds"]["folds"], start=1)],
              f"| total | {summary['seconds']['total']:.0f} (CPU {summary['seconds']['cpu_total']:.0f}) |", "",
              f"Peak resident memory: {summary['peak_memory_mb']:.0f} MB.", ""]
    (out / "crossval.md").write_text("\n".join(lines))
