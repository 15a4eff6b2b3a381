"""`bowlsense data verify`: a person vouches for (or rejects) clips, and labels.csv records who and when.

The sha256 of the bytes the person heard is recorded with the verdict, so a file swapped afterwards no
longer counts as verified. labels.csv is rewritten atomically under an exclusive lock, so a crash loses
nothing and two people verifying at once do not overwrite each other's verdicts.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import getpass
import hashlib
import os
import pathlib
from typing import Callable, Sequence

from .audio import AudioError, decode_pcm16, read_bytes
from .dataset import REJECTED, VERIFIED, Clip, Dataset
from .labels import BACKGROUND, PRODUCT_LABELS, format_labels, parse_labels


class VerifyError(ValueError):
    pass


@contextlib.contextmanager
def locked(root: str | os.PathLike):
    """Exclusive lock on <root>/.labels.csv.lock for a read-modify-write of labels.csv."""
    import fcntl

    lock_path = pathlib.Path(root) / ".labels.csv.lock"
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _check_labels(labels: tuple[str, ...], known) -> None:
    if not labels:
        raise VerifyError("--label is empty")
    unknown = [l for l in labels if l not in known]
    if unknown:
        raise VerifyError(f"unknown label(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if BACKGROUND in labels and len(labels) > 1:
        raise VerifyError("background means no event: it cannot go with other labels")


def set_verdict(root: str | os.PathLike, paths: Sequence[str | os.PathLike], *, by: str | None = None,
                label: str | None = None, reject: bool = False, update_sha: bool = False,
                known_labels=PRODUCT_LABELS, when: str | None = None,
                log: Callable[[str], None] = lambda s: None) -> list[Clip]:
    """Mark `paths` verified (or rejected) by `by`, optionally relabelled; returns the new rows.
    All or nothing: any bad path or unreadable file raises VerifyError and labels.csv is unchanged."""
    if not by:
        try:
            by = getpass.getuser()
        except (OSError, KeyError):  # no login name (some containers): make the person say who they are
            raise VerifyError("cannot tell who you are: pass --by NAME") from None
    by = by.strip()
    if not by or "\n" in by:
        raise VerifyError(f"--by must name a person, got {by!r}")
    when = when or now_utc()
    new_labels = parse_labels(label) if label is not None else None
    if new_labels is not None:
        _check_labels(new_labels, known_labels)
    with locked(pathlib.Path(root) if pathlib.Path(root).is_dir() else pathlib.Path(root).parent):
        ds = Dataset.load(root)
        changed: list[Clip] = []
        errors: list[str] = []
        for path in paths:
            try:
                clip = ds.find(path)
            except KeyError as e:
                errors.append(str(e.args[0]))
                continue
            try:
                data = read_bytes(clip.abspath)
                actual = hashlib.sha256(data).hexdigest()
                if not reject:
                    decode_pcm16(clip.abspath, data)  # nobody can vouch for audio that does not play
            except AudioError as e:
                errors.append(str(e))
                continue
            if clip.sha256 and clip.sha256 != actual and not update_sha:
                errors.append(f"{clip.abspath}: sha256 mismatch: the file changed since it was labelled "
                              f"(listen to it again and pass --update-sha to vouch for the new bytes)")
                continue
            labels = new_labels if new_labels is not None else clip.labels
            if not reject:
                try:
                    _check_labels(labels, known_labels)
                except VerifyError as e:
                    errors.append(f"{clip.abspath}: {e} (pass --label)")
                    continue
            new = dataclasses.replace(clip, labels=labels, status=REJECTED if reject else VERIFIED,
                                      sha256=actual, verified_by=by, verified_at=when)
            ds.replace(clip, new)
            changed.append(new)
            log(f"{'rejected' if reject else 'verified'} {clip.path} as {format_labels(labels)} by {by}")
        if errors:
            raise VerifyError("nothing was changed:\n  " + "\n  ".join(errors))
        ds.save()
    return changed
