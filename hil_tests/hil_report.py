"""The results of one HIL run: results.json and summary.md in the report folder (--hil-report,
default build/hil).

Tests add measured figures with `report.metric(...)` and whole sections (accuracy) with
`report.section(...)`; conftest.py records the outcome of every check and the device's identity.
"""
from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import time

OPS = {"<=": lambda v, t: v <= t, "<": lambda v, t: v < t, ">=": lambda v, t: v >= t,
       "==": lambda v, t: v == t}


class Report:
    def __init__(self, folder: pathlib.Path):
        self.folder = pathlib.Path(folder)
        self.started = time.time()
        self.device: dict = {}
        self.metrics: dict[str, dict] = {}
        self.sections: dict[str, dict] = {}
        self.checks: list[dict] = []
        self.notes: list[str] = []

    def metric(self, name: str, value, unit: str, target=None, op: str = "<=", note: str = "") -> bool | None:
        """Record a figure (and print it, so `pytest -s` shows it). Returns whether it meets its target
        (None when it has none); the test decides what a miss means."""
        ok = None if target is None else bool(OPS[op](value, target))
        self.metrics[name] = {"value": value, "unit": unit, "target": target, "op": op if target is not None else None,
                              "ok": ok, "note": note}
        goal = "" if target is None else f" (target {op} {target:,}{' ' + unit if unit else ''}: " \
                                         f"{'met' if ok else 'MISSED'})"
        print(f"[hil] {name}: {_fmt(value)} {unit}{goal}{' - ' + note if note else ''}")
        return ok

    def section(self, name: str, data: dict) -> None:
        self.sections[name] = data

    def check(self, nodeid: str, outcome: str, duration: float, message: str = "") -> None:
        self.checks.append({"check": nodeid, "outcome": outcome, "seconds": round(duration, 2),
                            "message": message})

    # -- writing ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        counts: dict[str, int] = {}
        for c in self.checks:
            counts[c["outcome"]] = counts.get(c["outcome"], 0) + 1
        return {
            "schema": "bowlsense-hil-results/1",
            "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(),
            "suite_seconds": round(time.time() - self.started, 1),
            "device": self.device,
            "metrics": self.metrics,
            **self.sections,
            "summary": counts,
            "checks": self.checks,
            "notes": self.notes,
        }

    def write(self) -> pathlib.Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = self.to_dict()
        _atomic(self.folder / "results.json", json.dumps(data, indent=2, default=_jsonable) + "\n")
        _atomic(self.folder / "summary.md", markdown(data))
        return self.folder


def _jsonable(v):
    if hasattr(v, "item"):
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


def _atomic(path: pathlib.Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def markdown(d: dict) -> str:
    dev = d.get("device", {})
    s = d.get("summary", {})
    lines = [
        "# bowlsense HIL results", "",
        f"- device: **{dev.get('board', '?')}** via {dev.get('backend', '?')}"
        f"{' ' + dev['port'] if dev.get('port') else ''}",
        f"- firmware: {dev.get('fw_version', '?')} git {dev.get('git_sha', '?')}, cycle unit "
        f"{dev.get('cycle_unit', '?')}",
        f"- model sha256: `{dev.get('model_sha256') or 'none (front-end-only firmware)'}`",
        f"- front end hash: `{dev.get('frontend_hash', '?')}`",
        f"- checks: {s.get('passed', 0)} passed, {s.get('failed', 0)} failed, {s.get('error', 0)} errors, "
        f"{s.get('skipped', 0)} skipped; suite {d.get('suite_seconds', 0):.0f} s", "",
    ]
    if d.get("metrics"):
        lines += ["## Figures", "", "| figure | value | target | |", "|---|---:|---:|---|"]
        for name, m in d["metrics"].items():
            target = "" if m["target"] is None else f"{m['op']} {_fmt(m['target'])}"
            verdict = "" if m["ok"] is None else ("ok" if m["ok"] else "**MISSED**")
            lines.append(f"| {name} | {_fmt(m['value'])} {m['unit']} | {target} | {verdict} |")
        lines.append("")
    acc = d.get("accuracy")
    if acc:
        lines += ["## Accuracy (device stream vs host predict path)", "",
                  f"{acc.get('clips', 0)} verified clips, {acc.get('windows', 0)} windows; decisions identical: "
                  f"{acc.get('identical')}", "", "| label | precision | recall | F1 | support |",
                  "|---|---:|---:|---:|---:|"]
        for label, m in acc.get("per_label", {}).items():
            lines.append(f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
        lines.append("")
    lines += ["## Checks", "", "| check | outcome | s | message |", "|---|---|---:|---|"]
    for c in d.get("checks", []):
        msg = c["message"].replace("|", "\\|").replace("\n", " ")[:160]
        outcome = c["outcome"] if c["outcome"] in ("passed", "skipped") else f"**{c['outcome']}**"
        lines.append(f"| {c['check']} | {outcome} | {c['seconds']} | {msg} |")
    for n in d.get("notes", []):
        lines += ["", f"- {n}"]
    return "\n".join(lines) + "\n"
