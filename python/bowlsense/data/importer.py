"""`bowlsense data import`: a folder of <label>/ folders becomes a dataset folder with labels.csv.

    SRC/eating/a.wav, SRC/speech/b.flac, SRC/eating+speech/c.wav  ->  OUT/audio/<label>/..., OUT/labels.csv

Folder names are labels ('+' joins several). Every imported clip is unverified until a person says
otherwise (`bowlsense data verify`). Files are copied unchanged (the sha256 is of the original bytes);
files that do not decode are reported and left out. Importing again adds only what is new.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import shutil

from .audio import EXTENSIONS, AudioError, decode_pcm16, read_bytes
from .dataset import UNVERIFIED, Clip, Dataset, DatasetError
from .labels import BACKGROUND, PRODUCT_LABELS
from .verify import locked


@dataclasses.dataclass
class ImportResult:
    added: list[Clip]
    already: int
    problems: list[str]
    warnings: list[str]


def _labels_of(folder_name: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip().lower() for p in folder_name.split("+") if p.strip()))


def import_folders(src: str | os.PathLike, out: str | os.PathLike, known_labels=PRODUCT_LABELS,
                   progress: bool = False) -> ImportResult:
    src, out = pathlib.Path(src), pathlib.Path(out)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such folder")
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    warnings: list[str] = []
    jobs: list[tuple[pathlib.Path, tuple[str, ...], str]] = []
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        labels = _labels_of(folder.name)
        unknown = [l for l in labels if l not in known_labels]
        if unknown:
            problems.append(f"{folder}: folder name is not a label ({', '.join(unknown)}); known: "
                            f"{', '.join(known_labels)}")
            continue
        if BACKGROUND in labels and len(labels) > 1:
            problems.append(f"{folder}: background means no event, it cannot go with other labels")
            continue
        for f in sorted(folder.rglob("*")):
            if f.is_file() and f.suffix.lower() in EXTENSIONS:
                rel = pathlib.PurePosixPath("audio", folder.name, *f.relative_to(folder).parts)
                jobs.append((f, labels, str(rel)))
            elif f.is_file() and not f.name.startswith("."):
                warnings.append(f"{f}: not an audio file ({', '.join(EXTENSIONS)}), skipped")
    for f in sorted(p for p in src.iterdir() if p.is_file()):
        warnings.append(f"{f}: not inside a <label>/ folder, skipped")

    with locked(out):
        try:
            ds = Dataset.load(out)
        except DatasetError:
            if (out / "labels.csv").exists():
                raise
            ds = Dataset(out, [])
        listed = {os.path.normpath(c.path) for c in ds.clips}
        added: list[Clip] = []
        already = 0
        if progress:
            from tqdm import tqdm
            jobs = tqdm(jobs, desc="importing", unit="file")
        for f, labels, rel in jobs:
            if os.path.normpath(rel) in listed:
                already += 1
                continue
            try:
                data = read_bytes(f)
                decode_pcm16(f, data)
            except AudioError as e:
                problems.append(str(e))
                continue
            dst = out / rel
            if dst.exists() and dst.read_bytes() != data:
                problems.append(f"{f}: {dst} exists with different content and is not in labels.csv; "
                                "move it away first")
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst)
            clip = Clip(rel, labels, UNVERIFIED, hashlib.sha256(data).hexdigest(),
                        source=f"imported from {f.parent}", root=out)
            ds.clips.append(clip)
            added.append(clip)
        if added or not ds.csv_path.exists():
            ds.save()
    return ImportResult(added, already, problems, warnings)
