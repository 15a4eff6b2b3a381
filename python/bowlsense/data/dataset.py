"""A dataset is a folder with labels.csv: one row per clip, who verified it, and the sha256 of the bytes
they verified. Only verified clips pass the trust gate, and a verified clip whose file has changed since
is refused when it is loaded.

labels.csv columns (the format of ../shared/data/labels.csv, plus optional ones this module writes):

    path         file relative to the folder (posix separators)
    label        one or more of the labels, ';'-separated ("background" alone when no event happens)
    verified     yes | no | rejected          (only "yes" passes the trust gate)
    sha256       of the file's bytes when it was labelled
    source       where the recording comes from (also used to group splits, see splits.py)
    license, note
    verified_by, verified_at   who said yes/rejected and when (UTC, ISO 8601)   [optional]
    group        explicit split group, overrides the one derived from path/source   [optional]

Unknown extra columns are kept as they are when the file is rewritten.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import os
import pathlib
from typing import Iterator

import numpy as np

from ..manifest import write_atomic
from .audio import AudioError, load_audio
from .labels import events, format_labels, parse_labels

LABELS_CSV = "labels.csv"
REQUIRED_COLUMNS = ("path", "label", "verified", "sha256", "source", "license", "note")
OPTIONAL_COLUMNS = ("verified_by", "verified_at", "group")
VERIFIED, UNVERIFIED, REJECTED = "yes", "no", "rejected"
_STATES = {"yes": VERIFIED, "true": VERIFIED, "1": VERIFIED, "y": VERIFIED,
           "no": UNVERIFIED, "false": UNVERIFIED, "0": UNVERIFIED, "n": UNVERIFIED, "": UNVERIFIED,
           "rejected": REJECTED, "reject": REJECTED}


class DatasetError(ValueError):
    """labels.csv is missing or malformed; the message names the file (and line)."""


@dataclasses.dataclass(frozen=True)
class Clip:
    path: str                       # relative to the dataset folder, as written in labels.csv
    labels: tuple[str, ...]         # as labelled; ("background",) when no event happens
    status: str = UNVERIFIED        # yes | no | rejected
    sha256: str = ""
    source: str = ""
    license: str = ""
    note: str = ""
    verified_by: str = ""
    verified_at: str = ""
    group: str = ""                 # explicit split group ("" = derive it, see splits.group_key)
    root: pathlib.Path = dataclasses.field(default=pathlib.Path("."), compare=False, repr=False)
    extra: tuple[tuple[str, str], ...] = dataclasses.field(default=(), compare=False, repr=False)
    line: int = dataclasses.field(default=0, compare=False, repr=False)  # 1-based line in labels.csv

    @property
    def verified(self) -> bool:
        return self.status == VERIFIED

    @property
    def events(self) -> tuple[str, ...]:
        """Event labels (background dropped): the clip's multi-label training target."""
        return events(self.labels)

    @property
    def abspath(self) -> pathlib.Path:
        p = pathlib.Path(self.path)
        return p if p.is_absolute() else self.root / p

    def load(self) -> np.ndarray:
        """16 kHz mono int16, after checking the bytes are still the ones that were labelled."""
        if not self.sha256:
            raise AudioError(self.abspath, "labels.csv records no sha256 for this clip, so nobody can tell "
                                           "whether it is the audio that was labelled (run `bowlsense data "
                                           "verify` to record it)")
        return load_audio(self.abspath, expected_sha256=self.sha256)

    def row(self) -> dict[str, str]:
        d = {"path": self.path, "label": format_labels(self.labels), "verified": self.status,
             "sha256": self.sha256, "source": self.source, "license": self.license, "note": self.note,
             "verified_by": self.verified_by, "verified_at": self.verified_at, "group": self.group}
        d.update(dict(self.extra))
        return d


@dataclasses.dataclass(frozen=True)
class TrustGate:
    """What the trust gate let through. Unpacks as `clips, left_out = dataset.verified()`."""

    clips: list[Clip]
    left_out_clips: list[Clip]

    @property
    def left_out(self) -> int:
        return len(self.left_out_clips)

    def __iter__(self):
        return iter((self.clips, self.left_out))

    def summary(self) -> str:
        rejected = sum(1 for c in self.left_out_clips if c.status == REJECTED)
        why = f" ({rejected} rejected, {self.left_out - rejected} not yet verified)" if self.left_out else ""
        return (f"trust gate: using {len(self.clips)} verified clips, left out {self.left_out} "
                f"unverified{why}")


class Dataset:
    """The rows of one labels.csv. Construct with Dataset.load(folder)."""

    def __init__(self, root: str | os.PathLike, clips: list[Clip], columns: list[str] | None = None):
        self.root = pathlib.Path(root)
        self.clips = list(clips)
        self.columns = list(columns) if columns else list(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)

    # -- reading --------------------------------------------------------------------------------------
    @classmethod
    def load(cls, root: str | os.PathLike) -> "Dataset":
        root = pathlib.Path(root)
        # Accept the folder or the labels.csv inside it (a CSV elsewhere names paths relative to itself).
        csv_path = root if root.suffix == ".csv" and not root.is_dir() else root / LABELS_CSV
        root = csv_path.parent
        try:
            text = csv_path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise DatasetError(f"{csv_path}: no labels.csv here (make one with `bowlsense data import` "
                               "or `bowlsense data demo`)") from None
        except UnicodeDecodeError as e:
            raise DatasetError(f"{csv_path}: not UTF-8 text ({e})") from None
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in ("path", "label", "verified") if c not in header]
        if missing:
            raise DatasetError(f"{csv_path}: header lacks column(s) {', '.join(missing)}; expected "
                               f"{','.join(REQUIRED_COLUMNS)}")
        reader.fieldnames = header
        known = set(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
        clips = []
        for row in reader:
            line = reader.line_num
            if None in row:
                raise DatasetError(f"{csv_path}:{line}: more cells than header columns")
            row = {k: (v or "").strip() for k, v in row.items()}
            state = _STATES.get(row["verified"].lower())
            if state is None:
                raise DatasetError(f"{csv_path}:{line}: verified must be yes, no or rejected, "
                                   f"got {row['verified']!r}")
            if not row["path"]:
                raise DatasetError(f"{csv_path}:{line}: empty path")
            clips.append(Clip(
                path=row["path"], labels=parse_labels(row["label"]), status=state,
                sha256=row.get("sha256", "").lower(), source=row.get("source", ""),
                license=row.get("license", ""), note=row.get("note", ""),
                verified_by=row.get("verified_by", ""), verified_at=row.get("verified_at", ""),
                group=row.get("group", ""), root=root,
                extra=tuple((k, v) for k, v in row.items() if k not in known), line=line,
            ))
        columns = list(REQUIRED_COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in header] + \
            [c for c in header if c not in known]
        return cls(root, clips, columns)

    @property
    def csv_path(self) -> pathlib.Path:
        return self.root / LABELS_CSV

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self) -> Iterator[Clip]:
        return iter(self.clips)

    def find(self, path: str | os.PathLike) -> Clip:
        """The row for a file given relative to the dataset, absolute, or relative to the cwd."""
        wanted = pathlib.Path(path)
        candidates = {os.path.normpath(str(wanted))}
        for p in (wanted, pathlib.Path.cwd() / wanted):
            try:
                candidates.add(os.path.normpath(str(p.resolve().relative_to(self.root.resolve()))))
            except ValueError:
                pass
        for clip in self.clips:
            if os.path.normpath(clip.path) in candidates:
                return clip
        raise KeyError(f"{path}: not listed in {self.csv_path}")

    def verified(self) -> TrustGate:
        """The trust gate: verified clips only, and what was left out. There is deliberately no option
        to let unverified clips through; verify them first (`bowlsense data verify`)."""
        keep = [c for c in self.clips if c.verified]
        return TrustGate(keep, [c for c in self.clips if not c.verified])

    def label_names(self) -> tuple[str, ...]:
        """Event labels present among verified clips, in first-seen order."""
        out: list[str] = []
        for c in self.clips:
            if c.verified:
                out.extend(l for l in c.events if l not in out)
        return tuple(out)

    # -- writing --------------------------------------------------------------------------------------
    def replace(self, old: Clip, new: Clip) -> None:
        i = self.clips.index(old)
        self.clips[i] = new

    def to_csv(self) -> str:
        columns = list(self.columns)
        for c in OPTIONAL_COLUMNS:  # write the who/when columns once anybody has verified anything
            if c not in columns and any(getattr(clip, c) for clip in self.clips):
                columns.insert(len(REQUIRED_COLUMNS), c)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for clip in self.clips:
            writer.writerow(clip.row())
        return buf.getvalue()

    def save(self) -> None:
        """Atomic rewrite: a crash mid-write leaves the previous labels.csv intact."""
        write_atomic(self.csv_path, self.to_csv())
