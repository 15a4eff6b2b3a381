"""`bowlsense data check`: everything that can be wrong with a dataset folder, each problem naming the
file, plus a per-label summary. Nothing is changed on disk."""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import os
import pathlib

from .audio import EXTENSIONS, AudioError, decode_pcm16, read_bytes
from .dataset import LABELS_CSV, REJECTED, VERIFIED, Dataset
from .labels import BACKGROUND, PRODUCT_LABELS, format_labels

ERROR, WARNING = "error", "warning"


@dataclasses.dataclass(frozen=True)
class Problem:
    path: str
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        return f"{self.severity.upper()}: {self.path}: {self.message}"


@dataclasses.dataclass
class LabelSummary:
    verified: int = 0
    unverified: int = 0
    rejected: int = 0
    seconds: float = 0.0          # of clips that decoded
    rates: collections.Counter = dataclasses.field(default_factory=collections.Counter)


@dataclasses.dataclass
class CheckReport:
    root: pathlib.Path
    problems: list[Problem]
    labels: dict[str, LabelSummary]
    clips: int

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary_table(self) -> str:
        rows = [("label", "verified", "unverified", "rejected", "duration", "sample rates")]
        for name in sorted(self.labels):
            s = self.labels[name]
            rates = ", ".join(f"{r / 1000:g} kHz x{n}" for r, n in sorted(s.rates.items()))
            rows.append((name, str(s.verified), str(s.unverified), str(s.rejected),
                         f"{s.seconds / 60:.1f} min", rates))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows)


def check_dataset(root: str | os.PathLike, known_labels=PRODUCT_LABELS, progress: bool = False) -> CheckReport:
    """Check labels.csv and every file it lists. Raises DatasetError only when labels.csv itself cannot
    be read; every other problem becomes a Problem in the report."""
    ds = Dataset.load(root)
    problems: list[Problem] = []
    labels: dict[str, LabelSummary] = collections.defaultdict(LabelSummary)
    known = set(known_labels)
    seen_paths: dict[str, int] = {}
    by_sha: dict[str, list] = collections.defaultdict(list)

    clips = ds.clips
    if progress:
        from tqdm import tqdm
        clips = tqdm(clips, desc="checking clips", unit="clip")
    for clip in clips:
        where = clip.path
        norm = os.path.normpath(clip.path)
        if norm in seen_paths:
            problems.append(Problem(where, f"listed twice in {LABELS_CSV} (lines {seen_paths[norm]} and {clip.line})"))
        seen_paths.setdefault(norm, clip.line)

        if not clip.labels:
            problems.append(Problem(where, "no label"))
        unknown = [l for l in clip.labels if l not in known]
        if unknown:
            problems.append(Problem(where, f"unknown label(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"))
        if BACKGROUND in clip.labels and len(clip.labels) > 1:
            problems.append(Problem(where, f"'{format_labels(clip.labels)}': background means no event, it "
                                           "cannot go with other labels"))

        for name in clip.labels or ("(none)",):
            s = labels[name]
            if clip.status == VERIFIED:
                s.verified += 1
            elif clip.status == REJECTED:
                s.rejected += 1
            else:
                s.unverified += 1

        if clip.status == VERIFIED and not clip.verified_by and "verified_by" in ds.columns:
            problems.append(Problem(where, "verified, but nobody is recorded in verified_by", WARNING))
        try:
            data = read_bytes(clip.abspath)
        except AudioError as e:
            problems.append(Problem(where, e.reason))
            continue
        actual = hashlib.sha256(data).hexdigest()
        if not clip.sha256:
            problems.append(Problem(where, f"no sha256 recorded (file is {actual})",
                                    ERROR if clip.verified else WARNING))
        elif clip.sha256 != actual:
            problems.append(Problem(where, f"sha256 mismatch: labels.csv has {clip.sha256[:12]}..., file is "
                                           f"{actual[:12]}... (changed after labelling)"))
        by_sha[actual].append(clip)
        try:
            pcm, info = decode_pcm16(clip.abspath, data)
        except AudioError as e:
            problems.append(Problem(where, e.reason))
            continue
        for name in clip.labels or ("(none)",):
            labels[name].seconds += len(pcm) / 16000
            labels[name].rates[info.sample_rate] += 1
        if not pcm.any():
            problems.append(Problem(where, "digital silence (every sample is zero)", WARNING))

    for sha, same in by_sha.items():
        label_sets = {tuple(sorted(c.labels)) for c in same}
        if len(label_sets) > 1:
            desc = "; ".join(f"{c.path} = {format_labels(c.labels)}" for c in same)
            problems.append(Problem(same[0].path, f"the same audio (sha256 {sha[:12]}...) has conflicting "
                                                  f"labels: {desc}"))
        elif len(same) > 1:
            problems.append(Problem(same[0].path, "the same audio is listed under several paths: " +
                                    ", ".join(c.path for c in same[1:]), WARNING))

    # Audio beside listed clips but not listed itself is probably forgotten. Folders with no listed clip
    # at all (e.g. rir/ with impulse responses for augmentation) are someone else's business.
    listed = {os.path.normpath(str(c.abspath.resolve())) for c in ds.clips}
    folders = {os.path.dirname(p) for p in listed}
    for folder in sorted(folders):
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            p = pathlib.Path(folder) / name
            if p.suffix.lower() not in EXTENSIONS or not p.is_file() or os.path.normpath(str(p)) in listed:
                continue
            try:
                shown = str(p.relative_to(ds.root.resolve()))
            except ValueError:
                shown = str(p)
            problems.append(Problem(shown, f"audio file not listed in {LABELS_CSV}", WARNING))
    return CheckReport(ds.root, problems, dict(labels), len(ds.clips))
