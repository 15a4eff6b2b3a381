"""Operating points: how each headline figure moves as a model's `on` thresholds move, from a finished
run's scores (scores.npz of `bowlsense crossval` or `bowlsense train`), nothing retrained.

Two sweeps, because the targets pull on two different thresholds:
  events   the event labels' (eating, drinking, bowl) `on` moved together: eating caught alone and at 0 dB
           under background against any event falsely reported on background windows, and macro-F1
  privacy  the privacy labels' (speech) `on`: speech caught at -10/0/+10 dB against speech falsely
           reported on speech-free windows
the other labels keep the run's thresholds. Each label's `off` keeps its ratio to `on`; per-window figures
do not read it.

The question this answers is whether a target is missed because the threshold sits in the wrong place
(some threshold meets every target of its sweep) or because the scores do not separate the classes (none
does, and the plot shows how far apart the curves stay). The sweep chooses nothing: a threshold picked on
these scores and measured on them again would flatter the model.

A cross-validation run can also answer what a chosen threshold would score on recordings it was not
chosen on (cross_fitted): for each fold, the threshold is chosen (choose) on the other folds' windows and
measured on that fold's, and the figures are pooled over the folds like the run's own.

The event labels no target names (drinking and bowl; the targets name eating) have no detection rate to
hold up, yet each of their windows that fires on background is a false event. cross_fitted_own gives each
of them its own threshold, chosen the same way on the other folds: the one at which that label's F1 on
single-source windows is best (F1 counts its false alarms on background and on the other labels alike).
"""
from __future__ import annotations

import numpy as np

from . import evaluation
from .evaluation import TARGETS

GRID = tuple(round(float(t), 3) for t in np.arange(0.05, 0.951, 0.05)) + (0.975, 0.99)

# Per sweep: the figures it moves, and which way each target points (True: at least, False: at most).
SWEEPS = {
    "events": {"eating_detect_alone": True, "eating_detect_0dB_under_background": True,
               "background_false_event": False, "macro_f1": True},
    "privacy": {"speech_detect_-10dB": True, "speech_detect_+0dB": True, "speech_detect_+10dB": True,
                "speech_false_positive": False},
}
DEFAULT_MODELS = ("teacher", "int8_student")
# How choose() picks a sweep's threshold: the false-alarm figure it holds to its target, and the detection
# it then makes as high as it can (the hardest detection target of the sweep).
CHOICE = {"events": ("background_false_event", "eating_detect_0dB_under_background"),
          "privacy": ("speech_false_positive", "speech_detect_-10dB")}
# The false-alarm budgets at which `bowlsense compare` reads each sweep's best detection (trade_off): the
# targets (5% false events, 2% speech false positives) and points either side. A recipe that only slides
# along a model's trade-off moves its figures at the run's thresholds, not these.
BUDGETS = {"events": (0.05, 0.08, 0.10, 0.12, 0.15), "privacy": (0.01, 0.02, 0.03)}
# The event labels the targets name (TARGETS: eating caught alone and under background); every other
# event label's threshold only trades its own F1 against false events (cross_fitted_own).
TARGETED = ("eating",)


def _target(key: str, model: str) -> float | None:
    """A figure's absolute target for this model, or None. macro-F1's is the teacher's; the student's is
    relative to its teacher, so it has none here."""
    if key == "macro_f1":
        return TARGETS["teacher_macro_f1"] if model == "teacher" else None
    return TARGETS.get(key)


def swept_labels(sweep: str, labels, privacy_labels) -> list[str]:
    """The labels whose `on` a sweep moves."""
    if sweep == "privacy":
        return [l for l in labels if l in privacy_labels]
    return [l for l in labels if l not in privacy_labels]


def _moved(thresholds: dict, moved: list[str], on: float) -> dict:
    out = {}
    for label, t in thresholds.items():
        t_on, t_off = evaluation.on_off(t)
        out[label] = ({"on": on, "off": on * t_off / t_on} if label in moved else {"on": t_on, "off": t_off})
    return out


def sweep(evalset, scores: np.ndarray, thresholds: dict, which: str, privacy_labels=("speech",),
          grid=GRID) -> list[dict]:
    """One row per threshold of the grid: {"on": t, figure: value} for the figures of sweep `which`."""
    moved = swept_labels(which, evalset.labels, privacy_labels)
    if not moved:
        return []
    rows = []
    for t in grid:
        row = evaluation.summary_row(evaluation.measure(evalset, scores, _moved(thresholds, moved, t)))
        rows.append({"on": float(t), **{k: row.get(k) for k in SWEEPS[which] if k in row}})
    return rows


def choose(rows: list[dict], which: str) -> float:
    """The `on` of a sweep's rows at the best detection whose false alarms meet their target (CHOICE; ties:
    the higher threshold), or, where no threshold keeps false alarms within target, the fewest false
    alarms (ties: the better detection). A Neyman-Pearson choice: the false-alarm target is the constraint."""
    alarm, detect = CHOICE[which]
    target = TARGETS[alarm]

    def det(r):
        return -1.0 if r.get(detect) is None else r[detect]
    within = [r for r in rows if r.get(alarm) is not None and r[alarm] <= target]
    if within:
        return max(within, key=lambda r: (det(r), r["on"]))["on"]
    scored = [r for r in rows if r.get(alarm) is not None] or rows
    return min(scored, key=lambda r: (r.get(alarm) or 0.0, -det(r), -r["on"]))["on"]


def best_within(rows: list[dict], which: str, budget: float) -> float | None:
    """The best detection (CHOICE) among a sweep's rows whose false alarms stay within `budget`; None
    where no threshold of the grid does."""
    alarm, detect = CHOICE[which]
    within = [r[detect] for r in rows
              if r.get(alarm) is not None and r[alarm] <= budget and r.get(detect) is not None]
    return max(within) if within else None


def trade_off(evalset, scores: np.ndarray, thresholds: dict, privacy_labels=("speech",)) -> dict:
    """A model's trade-off curves read at fixed false alarms: {"<detection> at <false alarm> <= b": best
    detection or None} for each sweep and budget (BUDGETS)."""
    out = {}
    for which, budgets in BUDGETS.items():
        rows = sweep(evalset, scores, thresholds, which, privacy_labels)
        alarm, detect = CHOICE[which]
        for b in budgets:
            out[f"{detect} at {alarm} <= {b:g}"] = best_within(rows, which, b)
    return out


def cross_fitted(evalset, scores: np.ndarray, thresholds: dict, fold: np.ndarray, which: str,
                 privacy_labels=("speech",), grid=GRID) -> dict:
    """Each fold's threshold chosen (choose) on the other folds' windows, measured on its own, pooled:
    {"chosen": [on per fold], figure: value} for the figures of sweep `which`."""
    moved = swept_labels(which, evalset.labels, privacy_labels)
    if not moved:
        return {}
    cols = [list(evalset.labels).index(l) for l in moved]
    fold = np.asarray(fold)
    decided = np.array(scores, np.float32, copy=True)
    chosen = []
    for k in np.unique(fold):
        rest = np.flatnonzero(fold != k)
        on = choose(sweep(evaluation.subset(evalset, rest), scores[rest], thresholds, which, privacy_labels,
                          grid), which)
        chosen.append(on)
        # The sweep's figures read only whether a score reaches its threshold: each fold's swept columns
        # turned into that decision (1 or 0) and measured at 0.5 are exactly the pooled decisions.
        mine = np.flatnonzero(fold == k)
        decided[np.ix_(mine, cols)] = scores[np.ix_(mine, cols)] >= on
    row = evaluation.summary_row(evaluation.measure(evalset, decided, _moved(thresholds, moved, 0.5)))
    return {"chosen": chosen, **{k: row.get(k) for k in SWEEPS[which] if k in row}}


def own_labels(labels, privacy_labels) -> list[str]:
    """The event labels no target names: cross_fitted_own chooses each one's threshold by its own F1."""
    return [l for l in swept_labels("events", labels, privacy_labels) if l not in TARGETED]


def f1_best(evalset, scores: np.ndarray, label: str, grid=GRID) -> float:
    """The `on` of the grid at which `label`'s F1 on single-source windows is best (ties: the higher)."""
    k = list(evalset.labels).index(label)
    single = np.array(evalset.group) == "single"
    truth = evalset.windows.targets[single, k] > 0.5
    s = scores[single, k]
    return max(grid, key=lambda t: (evaluation.f1(s >= t, truth), t))


def cross_fitted_own(evalset, scores: np.ndarray, thresholds: dict, fold: np.ndarray,
                     privacy_labels=("speech",), grid=GRID) -> dict:
    """Each own label's (own_labels) threshold chosen per fold by f1_best on the other folds' windows,
    measured on the fold's own, pooled: {"chosen": {label: [on per fold]}, figure: value} for the figures
    of the events sweep; the other labels keep the run's thresholds."""
    own = own_labels(evalset.labels, privacy_labels)
    if not own:
        return {}
    fold = np.asarray(fold)
    decided = np.array(scores, np.float32, copy=True)
    chosen: dict[str, list[float]] = {l: [] for l in own}
    for k in np.unique(fold):
        rest, mine = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        for label in own:
            on = f1_best(evaluation.subset(evalset, rest), scores[rest], label, grid)
            chosen[label].append(on)
            j = list(evalset.labels).index(label)
            decided[mine, j] = scores[mine, j] >= on  # decided, measured at 0.5 below (as cross_fitted)
    at = {l: ({"on": 0.5, "off": 0.5} if l in own else t) for l, t in thresholds.items()}
    row = evaluation.summary_row(evaluation.measure(evalset, decided, at))
    return {"chosen": chosen, **{k: row.get(k) for k in SWEEPS["events"] if k in row}}


def meets(row: dict, model: str) -> dict[str, bool]:
    """Per figure of a sweep row: whether it meets its target (macro-F1 only for the teacher)."""
    out = {}
    for key, value in row.items():
        target = None if key == "on" else _target(key, model)
        if value is None or target is None:
            continue
        at_least = next(s[key] for s in SWEEPS.values() if key in s)
        out[key] = value >= target if at_least else value <= target
    return out


def verdict(rows: list[dict], model: str) -> str:
    """One sentence: the thresholds at which every target of the sweep is met, or the best any reaches."""
    if not rows:
        return "no labels to sweep"
    met = [(r["on"], meets(r, model)) for r in rows]
    ok = [on for on, m in met if all(m.values())]
    if ok:
        return f"every target met at on = {', '.join(f'{t:g}' for t in ok)}"
    most = max(sum(m.values()) for _, m in met)
    n = len(met[0][1])
    best = [on for on, m in met if sum(m.values()) == most]
    return (f"no threshold meets every target: at most {most} of {n} at once "
            f"(on = {', '.join(f'{t:g}' for t in best)})")


def sweep_run(run: dict, models=DEFAULT_MODELS, privacy_labels=("speech",)) -> dict:
    """Both sweeps for each model of a loaded run (crossval.load_scores); models it lacks are left out.
    A cross-validation run (one whose scores.npz records each window's fold) also gets each sweep's
    cross-fitted choice ("chosen_elsewhere") beside the figures at the run's own thresholds ("at_run"),
    and, under "own", each model's cross_fitted_own against the events figures at the run's thresholds."""
    out = {"run": run["path"], "thresholds": run["thresholds"], "privacy_labels": list(privacy_labels),
           "models": {}, "own": {}}
    fold = run.get("fold")
    for model in models:
        if model not in run["scores"]:
            continue
        s = run["scores"][model]
        out["models"][model] = {}
        at_run = evaluation.summary_row(evaluation.measure(run["evalset"], s, run["thresholds"]))
        for which in SWEEPS:
            rows = sweep(run["evalset"], s, run["thresholds"], which, privacy_labels)
            entry = {"rows": rows, "verdict": verdict(rows, model)}
            if fold is not None and rows:
                entry["at_run"] = {k: at_run.get(k) for k in rows[0] if k != "on"}
                entry["chosen_elsewhere"] = cross_fitted(run["evalset"], s, run["thresholds"], fold, which,
                                                         privacy_labels)
            out["models"][model][which] = entry
        own = cross_fitted_own(run["evalset"], s, run["thresholds"], fold, privacy_labels) if fold is not None else {}
        if own:
            out["own"][model] = {"at_run": {k: at_run.get(k) for k in own if k != "chosen"},
                                 "chosen_elsewhere": own}
    return out


def table(rows: list[dict], model: str) -> list[str]:
    """Markdown table of one sweep; a figure that misses its target is marked with *."""
    if not rows:
        return []
    keys = [k for k in rows[0] if k != "on"]
    lines = ["| on | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for r in rows:
        lines.append(f"| {r['on']:g} | " + " | ".join(_cells(r, keys, model)) + " |")
    return lines


def _cells(row: dict, keys: list[str], model: str) -> list[str]:
    """One table row's figures, three decimals, * where a figure misses its target."""
    ok = meets({k: row[k] for k in keys}, model)
    return ["n/a" if row[k] is None else f"{row[k]:.3f}{'' if ok.get(k, True) else '*'}" for k in keys]


def plot(path, result: dict) -> None:
    """One row of panels per model, one column per sweep: each figure against the threshold, its target
    as a dotted line of the same colour, the run's own threshold as a grey vertical line."""
    from .report import TITLES, _plt
    plt = _plt()
    models = list(result["models"])
    fig, axes = plt.subplots(len(models), len(SWEEPS), figsize=(6 * len(SWEEPS), 3.6 * len(models)),
                             squeeze=False, sharey=True)
    for i, model in enumerate(models):
        for j, which in enumerate(SWEEPS):
            ax, rows = axes[i][j], result["models"][model][which]["rows"]
            if not rows:
                ax.set_axis_off()
                continue
            xs = [r["on"] for r in rows]
            for c, key in enumerate(k for k in rows[0] if k != "on"):
                colour = f"C{c}"
                ax.plot(xs, [np.nan if r[key] is None else r[key] for r in rows], color=colour, marker=".", label=key)
                if _target(key, model) is not None:
                    ax.axhline(_target(key, model), color=colour, lw=0.8, ls=":")
            ax.axvline(_run_on(result, which), color="grey", lw=0.8)  # rows exist: the sweep moves a label
            ax.set_title(f"{TITLES.get(model, model)}: {which} thresholds", fontsize=9)
            ax.set_xlabel("on threshold")
            ax.set_ylim(0, 1.02)
            ax.legend(fontsize=6, loc="center left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def markdown(result: dict) -> list[str]:
    chosen = [(m, w, s) for m, sweeps in result["models"].items() for w, s in sweeps.items() if "chosen_elsewhere" in s]
    lines = [f"# Operating points of {result['run']}", "",
             "Each figure as the `on` threshold of the event labels (events) or of speech (privacy) moves, "
             "the other labels at the run's thresholds; * marks a figure that misses its target. Measured "
             "on the run's own validation windows: the sweeps show whether a threshold could meet the targets, "
             "not what a tuned threshold scores on new recordings"
             + ("; the thresholds chosen on other recordings, first, do." if chosen else "."), ""]
    if chosen:
        lines += ["## Thresholds chosen on other recordings", "",
                  "For each fold, the threshold chosen on the other folds' windows and measured on this fold's, "
                  "pooled: what a chosen threshold scores on recordings it was not chosen on. The choice: the "
                  "best " + " / ".join(d for _, d in CHOICE.values()) + " among the thresholds that keep "
                  + " / ".join(a for a, _ in CHOICE.values()) + " within target, or else the fewest false "
                  "alarms. * marks a missed target.", ""]
        for model, which, s in chosen:
            c, keys = s["chosen_elsewhere"], list(s["at_run"])
            lines += [f"### {model}, {which}", "", "| threshold | " + " | ".join(keys) + " |",
                      "|---" * (len(keys) + 1) + "|"]
            for name, row in ((f"the run's ({_run_ons(result, which)})", s["at_run"]),
                              ("chosen elsewhere (" + ", ".join(f"{t:g}" for t in c["chosen"]) + ")", c)):
                lines.append(f"| {name} | " + " | ".join(_cells(row, keys, model)) + " |")
            lines.append("")
    if result.get("own"):
        lines += markdown_own(result)
    for model, sweeps in result["models"].items():
        for which, s in sweeps.items():
            lines += [f"## {model}, {which}", "", f"{s['verdict']}.", ""] + table(s["rows"], model) + [""]
    return lines


def markdown_own(result: dict) -> list[str]:
    """The section of cross_fitted_own: per model, the events figures at the run's thresholds and with each
    untargeted event label's threshold chosen on the other folds."""
    own = own_labels(list(result["thresholds"]), result["privacy_labels"])
    lines = ["## " + ", ".join(own) + ": each its own threshold, chosen on other recordings", "",
             "No target names " + " or ".join(own) + ", yet each of their windows that fires on background is a "
             "false event. For each fold, each of these labels gets the threshold at which its F1 on the other "
             "folds' single-source windows is best, and is measured on this fold's; the other labels keep the "
             "run's thresholds. * marks a missed target.", ""]
    for model, entry in result["own"].items():
        keys = list(entry["at_run"])
        chosen = "; ".join(f"{l} " + ", ".join(f"{t:g}" for t in ts) for l, ts in entry["chosen_elsewhere"]["chosen"].items())
        run_on = _named_ons(result["thresholds"], own)
        lines += [f"### {model}", "", "| threshold | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|",
                  f"| the run's ({run_on}) | " + " | ".join(_cells(entry["at_run"], keys, model)) + " |",
                  f"| chosen elsewhere ({chosen}) | "
                  + " | ".join(_cells(entry["chosen_elsewhere"], keys, model)) + " |", "",
                  "The middle of each label's choices, as `bowlsense train` options: "
                  + " ".join(f"`--threshold {l}={_middle(ts):g}`" for l, ts in entry["chosen_elsewhere"]["chosen"].items())
                  + ".", ""]
    return lines


def _middle(values: list[float]) -> float:
    """The lower median: one of the values themselves, so a point of the grid."""
    return sorted(values)[(len(values) - 1) // 2]


def _run_ons(result: dict, which: str) -> str:
    """The run's `on` thresholds of the labels a sweep moves: "0.5" when they share one, else each by name
    (drinking's and bowl's own thresholds differ from eating's)."""
    moved = swept_labels(which, list(result["thresholds"]), result["privacy_labels"])
    ons = {evaluation.on_off(result["thresholds"][l])[0] for l in moved}
    return f"{ons.pop():g}" if len(ons) == 1 else _named_ons(result["thresholds"], moved)


def _named_ons(thresholds: dict, labels) -> str:
    """"drinking 0.75, bowl 0.95": each label's `on`, by name."""
    return ", ".join(f"{l} {evaluation.on_off(thresholds[l])[0]:g}" for l in labels)


def _run_on(result: dict, which: str) -> float:
    """Where the plot marks the run's own `on` among the labels a sweep moves: the first one's (eating's)."""
    moved = swept_labels(which, list(result["thresholds"]), result["privacy_labels"])
    return evaluation.on_off(result["thresholds"][moved[0]])[0]
