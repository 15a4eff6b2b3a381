"""report.md and its PNGs: per-class precision/recall/F1, confusion matrices, privacy curves and training
curves for the teacher, the float student and the int8 student."""
from __future__ import annotations

import pathlib

import numpy as np

from .evaluation import CURVE_SNRS, OTHERS, TARGETS, clip_groups, summary_row

MODELS = ("teacher", "float_student", "int8_student")
TITLES = {"teacher": "teacher (fine-tuned YAMNet)", "float_student": "student (float)",
          "int8_student": "student (int8)"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_curves(path, histories: dict, training_labels: dict | None = None) -> None:
    """training_labels: for a model whose training loss holds more than the cross-entropy, what it holds."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(histories), figsize=(5 * len(histories), 3.5))
    for ax, (name, h) in zip(np.atleast_1d(axes), histories.items()):
        ax.plot(range(1, len(h["loss"]) + 1), h["loss"], label=(training_labels or {}).get(name, "training"))
        if h.get("val_loss"):
            ax.plot(range(1, len(h["val_loss"]) + 1), h["val_loss"], label="validation (single windows)")
        ax.set_title(f"{name}: binary cross-entropy")
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_per_class(path, measured: dict, labels) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.5), sharey=True)
    x = np.arange(len(labels))
    for ax, metric in zip(axes, ("precision", "recall", "f1")):
        names = [n for n in MODELS if n in measured]
        for j, name in enumerate(names):
            vals = [measured[name]["per_class"][l][metric] for l in labels]
            ax.bar(x + (j - (len(names) - 1) / 2) * 0.27, vals, 0.27, label=TITLES[name])
        ax.set_xticks(x, labels)
        ax.set_title(metric)
        ax.set_ylim(0, 1.05)
    axes[0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_confusion(path, measured: dict) -> None:
    plt = _plt()
    names = [n for n in MODELS if n in measured]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        c = measured[name]["confusion"]
        m = np.array(c["matrix"], dtype=float)
        norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(c["classes"])), c["classes"], rotation=30)
        ax.set_yticks(range(len(c["classes"])), c["classes"])
        for i in range(len(m)):
            for j in range(len(m)):
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black")
        ax.set_title(TITLES[name])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_privacy(path, measured: dict) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, len(OTHERS) + 1, figsize=(16, 3.5), sharey=True)
    for ax, other in zip(axes, ("all",) + OTHERS):
        for name in [n for n in MODELS if n in measured]:
            curve = measured[name].get("privacy_curve", {})
            ys = [curve.get(f"{s:+.0f}", {}).get(other) for s in CURVE_SNRS]
            ax.plot(CURVE_SNRS, [np.nan if y is None else y for y in ys], marker="o", label=TITLES[name])
        ax.axhline(0.97, color="grey", lw=0.5, ls="--")
        ax.set_title(f"speech detected over {other}")
        ax.set_xlabel("speech-to-other SNR (dB)")
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("fraction of windows")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _fmt_ci(v, interval) -> str:
    """A figure with its clip-bootstrap 95% interval, when there is one."""
    if v is None or not interval:
        return _fmt(v)
    return f"{v:.3f} [{interval[0]:.2f}, {interval[1]:.2f}]"


def _target_ok(key, value, teacher_f1=None) -> str:
    if value is None:
        return ""
    if key == "macro_f1":
        return ""
    goal = TARGETS.get(key)
    if goal is None:
        return ""
    lower_is_better = key in ("speech_false_positive", "background_false_event")
    ok = value <= goal if lower_is_better else value >= goal
    return ("<= " if lower_is_better else ">= ") + f"{goal:g} " + ("ok" if ok else "MISSED")


def metrics_table(measured: dict, spread: dict | None = None) -> list[str]:
    """Headline numbers of the three models against the targets; with `spread` (evaluation.intervals per
    model) each figure carries its 95% interval."""
    spread = spread or {}
    rows = {name: summary_row(measured[name]) for name in MODELS}
    keys = list(rows["teacher"])
    lines = ["| metric | teacher | float student | int8 student | int8 - float | target (int8) |",
             "|---|---|---|---|---|---|"]
    for k in keys:
        t, f, q = rows["teacher"].get(k), rows["float_student"].get(k), rows["int8_student"].get(k)
        d = None if f is None or q is None else q - f
        target = _target_ok(k, q)
        if k == "macro_f1":
            gap = None if t is None or q is None else t - q
            target = (f"teacher >= 0.95 {'ok' if t is not None and t >= 0.95 else 'MISSED'}; int8 within 0.03 of "
                      f"teacher {'ok' if gap is not None and gap <= 0.03 else 'MISSED'}")
        t, f, q = (_fmt_ci(v, spread.get(name, {}).get(k)) for v, name in zip((t, f, q), MODELS))
        lines.append(f"| {k} | {t} | {f} | {q} | {'n/a' if d is None else f'{d:+.3f}'} | {target} |")
    return lines


STREAMED_INTRO = ("Each validation clip streamed on its own through the device's event logic (moving average, "
                  "hysteresis, minimum event length and privacy gate, as the firmware computes them; "
                  "train/streamed.py): what a user would see. Mixtures are single windows and are not streamed. "
                  "A spoken word of about a second fills one or two windows, too few to lift the moving average "
                  "to `on`, so a speech event is seldom reported for it; the privacy gate acts on each window's "
                  "own score and holds the word back all the same.")
STREAMED_ROWS = (("background_in_false_event", "background windows inside a reported event"),
                 ("false_events_per_hour", "events reported per hour of background clips"),
                 ("speech_held", "speech windows the privacy gate holds back"),
                 ("speech_sent", "speech windows the privacy gate lets out (leaked)"))


def streamed_table(streamed: dict) -> list[str]:
    """train/streamed.py's figures, one column per model present."""
    models = [m for m in MODELS if m in streamed]
    lines = ["| as streamed | " + " | ".join(TITLES[m] for m in models) + " |", "|---|" + "---|" * len(models)]
    for key, title in STREAMED_ROWS:
        vals = [streamed[m].get(key) for m in models]
        if all(v is None for v in vals):
            continue
        fmt = (lambda v: "n/a" if v is None else f"{v:.0f}") if key == "false_events_per_hour" else _fmt
        lines.append(f"| {title} | " + " | ".join(fmt(v) for v in vals) + " |")
    for label in streamed[models[0]]["clips_reported"]:
        vals = [streamed[m]["clips_reported"].get(label) for m in models]
        lines.append(f"| {label} clips reported as {label} | " + " | ".join(_fmt(v) for v in vals) + " |")
    hours = streamed[models[0]].get("background_hours")
    if hours is not None:
        lines += ["", f"Background streamed: {hours * 60:.1f} minutes."]
    return lines


def per_class_table(measured: dict, labels) -> list[str]:
    """Precision, recall, F1 and support of each label for the three models."""
    lines = ["| label | model | precision | recall | F1 | support |", "|---|---|---|---|---|---|"]
    for l in labels:
        for name in MODELS:
            p = measured[name]["per_class"][l]
            lines.append(f"| {l} | {TITLES[name]} | {p['precision']:.3f} | {p['recall']:.3f} | {p['f1']:.3f} | "
                         f"{p['support']} |")
    return lines


def write(out_dir, measured, histories, manifest, config, timings, gate_summary, evalset, q, cost, backend,
          spread: dict | None = None) -> None:
    out = pathlib.Path(out_dir)
    labels = list(config.labels)
    plot_curves(out / "training_curves.png", histories,
                {"student": f"training (+ {config.distill_embedding:g} x embedding error)"}
                if config.distill_embedding else None)
    plot_per_class(out / "per_class.png", measured, labels)
    plot_confusion(out / "confusion.png", measured)
    plot_privacy(out / "privacy.png", measured)
    from .pipeline import peak_rss_mb, split_name
    lines = [
        "# bowlsense model report", "",
        f"Labels: {', '.join(labels)} (independent sigmoids; background = none active). Privacy labels: "
        f"{', '.join(manifest.privacy_labels)}.", "",
        f"- Data: {gate_summary}; {evalset.windows.patches.shape[0]} evaluation windows built from the "
        f"validation side of a split grouped by source recording (seed {config.seed}{split_name(config)}).",
        f"- Student: {cost['macs']:,} MACs per patch, {cost['weight_bytes']:,} bytes of int8 weights, "
        f"{cost['params']:,} parameters; int8 input scale {q['input']['scale']:.6f} zero point "
        f"{q['input']['zero_point']} (pinned to the front end's range), output scale {q['output']['scale']:.6f} "
        f"zero point {q['output']['zero_point']}.",
        f"- int8 scores computed with: {backend}; peak activation RAM of the engine's static plan: "
        f"{manifest.peak_ram_bytes if manifest.peak_ram_bytes is not None else 'n/a'} bytes.",
        f"- model.tflite sha256 {manifest.tflite_sha256}; front end hash {manifest.frontend_hash[:16]}.",
        "- Thresholds (on / off): " + ", ".join(f"{l} {t.on:g} / {t.off:g}" for l, t in manifest.thresholds.items())
        + ". Speech's is low a priori (a missed word leaks audio, a false alarm only pauses it). "
        + (f"{' and '.join(l for l, _ in config.label_threshold)} have their own (--threshold; by default "
           "drinking's and bowl's are raised: no target names them, and their false alarms on background are "
           "false events). " if config.label_threshold else "")
        + "Detection below is per window, at `on`, before smoothing; how each figure moves as the thresholds "
        f"move: `bowlsense thresholds {out}`.", "",
        "## Headline metrics", "",
        *metrics_table(measured, spread), "",
        "Speech false positives are counted over every speech-free window (single clips and mixtures); "
        "background false events over single background windows.", "",
        *([f"In brackets: 95% intervals from a bootstrap over the {len(set(clip_groups(evalset)))} validation "
           "clips (windows of one clip rise and fall together, so clips are resampled, not windows). A target "
           "inside a figure's interval is neither clearly met nor clearly missed.", ""] if spread else []),
        "## Per class (single-source validation windows)", "",
        *per_class_table(measured, labels),
    ]
    lines += ["", "![per class](per_class.png)", "", "## Confusion (single-label windows)", "",
              "![confusion](confusion.png)", "", "## Privacy: speech detected under other sounds", "",
              "| SNR | " + " | ".join(TITLES[n] for n in MODELS) + " |", "|---|---|---|---|"]
    for snr in CURVE_SNRS:
        vals = [measured[n].get("privacy_curve", {}).get(f"{snr:+.0f}", {}).get("all") for n in MODELS]
        lines.append(f"| {snr:+.0f} dB | " + " | ".join(_fmt(v) for v in vals) + " |")
    lines += ["", "![privacy](privacy.png)"]
    if manifest.metrics.get("streamed"):
        lines += ["", "## As the device reports it", "", STREAMED_INTRO, "", *streamed_table(manifest.metrics["streamed"])]
    lines += ["", "## Training", "", "![training curves](training_curves.png)", "",
              "Times of this invocation: a stage resumed from a finished checkpoint (a rerun) takes seconds.", "",
              "| stage | wall seconds | CPU seconds (this process, all threads) |", "|---|---|---|"]
    cpu = timings.get("cpu", {})
    lines += [f"| {k} | {v:.1f} | {_fmt_s(cpu.get(k))} |" for k, v in timings.items() if k != "cpu"]
    lines += ["", f"Peak resident memory of the training process: {peak_rss_mb():.0f} MB.", "",
              "Configuration:", "", "```", *(f"{k}: {v}" for k, v in config.to_dict().items()), "```", ""]
    from ..manifest import write_atomic
    write_atomic(out / "report.md", "\n".join(lines))


def _fmt_s(v) -> str:
    return "" if v is None else f"{v:.1f}"


def write_evaluation(out_dir, measured: dict, data_dir, model_dir, backend: str, n_windows: int,
                     spread: dict | None = None, streamed: dict | None = None) -> None:
    """`bowlsense evaluate`: the same measurements for the shipped int8 model on any dataset."""
    import json

    from ..manifest import write_atomic
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_per_class(out / "per_class.png", measured, list(measured["int8_student"]["per_class"]))
    plot_confusion(out / "confusion.png", measured)
    plot_privacy(out / "privacy.png", measured)
    m = measured["int8_student"]
    row = summary_row(m)
    spread = spread or {}
    lines = [f"# Evaluation of {model_dir} on {data_dir}", "", f"{n_windows} windows; int8 path: {backend}.",
             *(["In brackets: 95% intervals from a bootstrap over the dataset's clips."] if spread else []), "",
             "| metric | int8 student | target |", "|---|---|---|"]
    lines += [f"| {k} | {_fmt_ci(v, spread.get(k))} | {_target_ok(k, v)} |" for k, v in row.items()]
    lines += ["", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    lines += [f"| {l} | {p['precision']:.3f} | {p['recall']:.3f} | {p['f1']:.3f} | {p['support']} |"
              for l, p in m["per_class"].items()]
    if streamed:
        lines += ["", STREAMED_INTRO, "", *streamed_table({"int8_student": streamed})]
    lines += ["", "![per class](per_class.png)", "", "![confusion](confusion.png)", "", "![privacy](privacy.png)", ""]
    write_atomic(out / "evaluation.md", "\n".join(lines))
    write_atomic(out / "evaluation.json", json.dumps({"summary": row, "interval_95": spread, "details": m,
                                                      "streamed": streamed}, indent=2, sort_keys=True) + "\n")
