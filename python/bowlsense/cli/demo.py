"""The main job end to end, resumable: data -> YAMNet teacher fine-tune -> student distillation -> int8
-> C export -> firmware -> QEMU -> sample clips streamed through the device -> report.

Where things come from:
  data    $BOWLSENSE_DATA, else ../shared/data, else a synthetic demo set (`bowlsense data demo`)
  YAMNet  $BOWLSENSE_YAMNET, else ../shared/yamnet, else TF Hub when online (see `bowlsense train -h`)

Everything is written under --work (default build/demo). Each stage says what it does and reuses what
an earlier run finished (training resumes from its checkpoints), so an interrupted demo continues when
run again. `make demo` runs this after creating the virtualenv.

example:
  bowlsense demo
  bowlsense demo --work /tmp/demo --data my_clips/
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import time

from .. import paths

HELP = "run the whole pipeline end to end (what `make demo` does)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work", type=pathlib.Path, default=paths.REPO_ROOT / "build" / "demo",
                        help="output folder (default build/demo)")
    parser.add_argument("--data", type=pathlib.Path, default=None, help="dataset folder (see above)")
    parser.add_argument("--yamnet", default=None, help="YAMNet weights (see `bowlsense train -h`)")
    parser.add_argument("--clips", type=int, default=4, help="sample clips to stream through the device")


class Stage:
    """Prints a numbered header and the time a stage took."""

    count = 0

    def __init__(self, title: str):
        Stage.count += 1
        self.title = title
        self.number = Stage.count

    def __enter__(self):
        print(f"\n== [{self.number}] {self.title}", flush=True)
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            print(f"   done in {time.monotonic() - self.start:.0f} s", flush=True)


def _bowlsense(*args: str, capture: bool = False) -> str:
    """Run a bowlsense command as a user would, showing its output as it comes (events appear live);
    with capture, also return that output for the report. Stop the demo if the command fails."""
    cmd = [sys.executable, "-m", "bowlsense", *map(str, args)]
    print("   $ bowlsense " + " ".join(map(str, args)), flush=True)
    if capture:
        lines = []
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
            for line in proc.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                lines.append(line)
        returncode = proc.returncode
    else:
        returncode = subprocess.run(cmd).returncode
    if returncode != 0:
        raise SystemExit(f"demo stopped: `bowlsense {' '.join(map(str, args))}` failed "
                         f"(exit {returncode}); fix the problem above and run the demo again to continue")
    return "".join(lines) if capture else ""


def _choose_data(args) -> tuple[pathlib.Path, str]:
    if args.data:
        return args.data, "--data"
    if os.environ.get("BOWLSENSE_DATA"):
        return pathlib.Path(os.environ["BOWLSENSE_DATA"]), "$BOWLSENSE_DATA"
    if (paths.shared_data_dir() / "labels.csv").exists():
        return paths.shared_data_dir(), "../shared/data (real, human-verified clips)"
    return args.work / "synthetic_data", "synthetic demo set (no real data found)"


def _fingerprint(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(str(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _sample_clips(data: pathlib.Path, count: int) -> list[pathlib.Path]:
    """A few verified clips of different labels, for the device to hear."""
    from ..data import Dataset

    from ..data.audio import inspect_audio

    gate = Dataset.load(data).verified()
    chosen, seen = [], set()
    for clip in sorted(gate.clips, key=lambda c: c.path):
        label = ";".join(clip.labels)
        if label not in seen and inspect_audio(clip.abspath).duration_s <= 12:
            seen.add(label)
            chosen.append(clip.abspath)
        if len(chosen) >= count:
            break
    return chosen


def run(args: argparse.Namespace) -> int:
    work: pathlib.Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    data, origin = _choose_data(args)

    with Stage(f"data: {origin}"):
        if not (data / "labels.csv").exists():
            if args.data or os.environ.get("BOWLSENSE_DATA"):
                raise SystemExit(f"demo stopped: {data}/labels.csv not found")
            _bowlsense("data", "demo", data)
        else:
            print(f"   using {data}")
        _bowlsense("data", "check", data)

    model = work / "model"
    with Stage("train: fine-tune YAMNet, distil the student, quantize to int8"):
        train_args = ["train", data, "--out", model, "--work", work / "train"]
        if args.yamnet:
            train_args += ["--yamnet", args.yamnet]
        stamp = model / ".demo_inputs"
        want = _fingerprint(data.resolve(), (data / "labels.csv").read_bytes(), args.yamnet,
                            os.environ.get("BOWLSENSE_YAMNET"))
        if (model / "model.json").exists() and stamp.exists() and stamp.read_text() == want:
            print(f"   reusing {model} from an earlier run (delete it to train again)")
        else:
            _bowlsense(*train_args)
            stamp.write_text(want)

    model_c = work / "model_c"
    with Stage("export: C model arrays for the firmware"):
        _bowlsense("export", model, model_c)

    # The demo's firmware gets its own build folder: build/firmware stays the image of models/default
    # that `make test` and the device commands use.
    firmware = work / "firmware"
    elf = firmware / "qemu-mps2-an386" / "bowlsense.elf"
    with Stage("firmware: Cortex-M4F image for QEMU mps2-an386"):
        result = subprocess.run(["make", "--no-print-directory", "firmware-qemu", "firmware-size",
                                 f"FW_MODEL={model}", f"FW_BUILD={firmware}"], cwd=paths.REPO_ROOT)
        if result.returncode != 0:
            raise SystemExit("demo stopped: the firmware build failed (see above)")

    clips = _sample_clips(data, args.clips)
    with Stage(f"device: boot QEMU, stream {len(clips)} clips, events as they happen"):
        _bowlsense("device", "info", "--elf", elf)
        listen = _bowlsense("device", "listen", "--elf", elf, *clips, capture=True)
    with Stage("device: instructions per stage, load, memory"):
        bench = _bowlsense("device", "bench", "--elf", elf, capture=True)

    with Stage("report"):
        report = write_report(work, model, data, origin, listen, bench, time.monotonic() - started)
        print(f"   {report}")
    print(summary(model, bench))
    print(f"\ndemo finished in {(time.monotonic() - started) / 60:.1f} min; report: {report}")
    return 0


def _metrics(model: pathlib.Path) -> dict:
    return json.loads((model / "model.json").read_text()).get("metrics", {})


# Metrics of the training report, in the order a reader asks about them, and which way is better. Each
# target in model.json has the metric's name, except macro-F1's, which is the teacher's.
_SUMMARY_ROWS = [
    ("macro_f1", "higher"),
    ("speech_detect_+10dB", "higher"),
    ("speech_detect_+0dB", "higher"),
    ("speech_detect_-10dB", "higher"),
    ("speech_false_positive", "lower"),
    ("eating_detect_alone", "higher"),
    ("eating_detect_0dB_under_background", "higher"),
    ("background_false_event", "lower"),
]
_MODELS = ("teacher", "float_student", "int8_student")


def summary(model: pathlib.Path, bench_text: str = "") -> str:
    """The headline figures: one table of accuracy and privacy for teacher, float and int8 student
    against the targets (from model.json), then the device's instructions and memory (from bench)."""
    metrics = _metrics(model)
    per_model = metrics.get("summary", {})
    targets = metrics.get("targets", {})
    lines = ["", f"== summary: {metrics.get('evaluated_on', 'validation split')}",
             f"   {'':36s}{'teacher':>9s}{'float':>9s}{'int8':>9s}   target"]
    for key, better in _SUMMARY_ROWS:
        values = [per_model.get(m, {}).get(key) for m in _MODELS]
        if all(v is None for v in values):
            continue
        cells = "".join(f"{v:9.3f}" if isinstance(v, (int, float)) else f"{'-':>9s}" for v in values)
        target = targets.get("teacher_macro_f1" if key == "macro_f1" else key)
        goal = "" if target is None else (">= " if better == "higher" else "<= ") + f"{target:g}"
        if key == "macro_f1" and "student_macro_f1_gap" in targets:
            goal += f" (teacher), int8 within {targets['student_macro_f1_gap']:g}"
        spread = metrics.get("interval_95", {}).get("int8_student", {}).get(key)
        if spread:  # how far the split's few clips leave the int8 figure uncertain
            goal = f"{goal:42s} int8 95% interval {spread[0]:.2f}-{spread[1]:.2f}"
        lines.append(f"   {key:36s}{cells}   {goal}".rstrip())
    device = [line.rstrip() for line in bench_text.splitlines() if line.startswith("  ")]
    if device:
        lines += ["", "== device (Cortex-M4 on QEMU, from `bowlsense device bench`)"] + [" " + d for d in device]
    return "\n".join(lines)


def write_report(work, model, data, origin, listen_text, bench_text, seconds) -> pathlib.Path:
    """One self-contained HTML page: the training report's figures inlined, device output verbatim."""
    import base64
    import html

    parts = [f"<h1>bowlsense demo</h1><p>data: {html.escape(str(data))} ({html.escape(origin)}); "
             f"total time {seconds / 60:.1f} min</p>"]
    report_md = model / "report.md"
    if report_md.exists():
        parts.append(f"<h2>training report</h2><pre>{html.escape(report_md.read_text())}</pre>")
    for png in sorted(model.glob("*.png")):
        b64 = base64.b64encode(png.read_bytes()).decode()
        parts.append(f"<h3>{html.escape(png.name)}</h3><img src='data:image/png;base64,{b64}' style='max-width:900px'>")
    parts.append(f"<h2>device: streamed clips</h2><pre>{html.escape(listen_text)}</pre>")
    parts.append(f"<h2>device: instructions and memory</h2><pre>{html.escape(bench_text)}</pre>")
    out = work / "report.html"
    out.write_text("<!doctype html><meta charset='utf-8'><title>bowlsense demo</title>"
                   "<body style='font-family:sans-serif;max-width:1000px;margin:auto'>" + "".join(parts))
    return out
