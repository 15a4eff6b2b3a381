"""Train/validation splits grouped by source recording.

Clips cut from one recording (or spoken by one speaker) share a microphone, a room and a voice; if they
land on both sides of a split, validation measures memory instead of generalisation. Each clip gets a
group key, and whole groups go to one side.

How the key is found, first match wins:
  1. the `group` column of labels.csv, when set;
  2. "speaker NAME" in `source` (FSDD rows say "Free Spoken Digit Dataset, speaker george");
  3. the file name, for naming schemes that encode the recording:
       ESC-50 / Kitchen20   FOLD-RECORDING-TAKE-CLASS.wav  (1-202718-A-0.wav, 5-J2-couvert(1).mp4-A-15.wav)
                            -> the recording (Freesound id or file name), whatever the fold;
                            takes A, B, ... of one recording and other classes cut from it stay together
       Speech Commands      WORD_SPEAKERHASH_nohash_N.wav                  -> the speaker hash
       FSDD                 DIGIT_SPEAKER_N.wav                            -> the speaker
  4. otherwise the file itself (a long background recording is one group, however it is windowed later).

`group_folds` cuts the same groups into k folds for cross-validation: every clip is validated exactly
once, by a model that never saw its recording.

Augmented and mixed examples are made after splitting, from each side's clips only.
"""
from __future__ import annotations

import collections
import hashlib
import pathlib
import re
from typing import NamedTuple, Sequence

from .dataset import Clip

_SPEAKER_IN_SOURCE = re.compile(r"\bspeaker[\s:=]+([A-Za-z0-9_-]+)", re.IGNORECASE)
_NAME_PATTERNS = (
    ("esc", re.compile(r"^\d+-(.+)-[A-Z]+-\d+$")),
    ("speech_commands", re.compile(r"^[a-z]+_([0-9a-f]{8})_nohash_\d+$")),
    ("fsdd", re.compile(r"^\d_([a-z]+)_\d+$")),
)


def group_key(clip: Clip) -> str:
    """The recording a clip comes from (see the module docstring for the rules)."""
    if clip.group:
        return f"group:{clip.group}"
    m = _SPEAKER_IN_SOURCE.search(clip.source)
    if m:
        return f"speaker:{m.group(1).lower()}"
    stem = pathlib.PurePosixPath(clip.path.replace("\\", "/")).stem
    for scheme, pattern in _NAME_PATTERNS:
        m = pattern.match(stem)
        if m:
            return f"{scheme}:{m.group(1)}"
    return f"file:{clip.path}"


class Split(NamedTuple):
    train: list[Clip]
    val: list[Clip]


def _order(seed: int, key: str) -> str:
    # A hash per (seed, group) gives an order that does not change when unrelated rows are added.
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def _groups_by_label(clips: Sequence[Clip]) -> tuple[dict[str, list[Clip]], dict[str, list[str]]]:
    """Clips by group key, and group keys by their main label (a group's most common label set)."""
    groups: dict[str, list[Clip]] = collections.defaultdict(list)
    for c in clips:
        groups[group_key(c)].append(c)

    def main_label(members: list[Clip]) -> str:
        counts = collections.Counter(";".join(sorted(c.labels)) for c in members)
        return min(counts, key=lambda k: (-counts[k], k))

    by_label: dict[str, list[str]] = collections.defaultdict(list)
    for key, members in groups.items():
        by_label[main_label(members)].append(key)
    return groups, by_label


def group_split(clips: Sequence[Clip], val_fraction: float = 0.2, seed: int = 0) -> Split:
    """Split clips so that no group has clips on both sides, with about `val_fraction` of each label's
    clips in validation. A label whose clips all come from one group stays in training (there is
    nothing independent to validate it on). Deterministic for a given seed and set of clips."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    groups, by_label = _groups_by_label(clips)
    val_keys: set[str] = set()
    for label, keys in sorted(by_label.items()):
        if len(keys) < 2 or val_fraction == 0.0:
            continue
        keys.sort(key=lambda k: _order(seed, k))
        total = sum(len(groups[k]) for k in keys)
        target = val_fraction * total
        taken = 0
        for k in keys[:-1]:  # the last group always stays in training
            if taken >= target:
                break
            # Take the group if it brings the count closer to the target than leaving it out.
            if abs(taken + len(groups[k]) - target) <= abs(taken - target) or taken == 0:
                val_keys.add(k)
                taken += len(groups[k])
    train = [c for c in clips if group_key(c) not in val_keys]
    val = [c for c in clips if group_key(c) in val_keys]
    return Split(train, val)


def group_folds(clips: Sequence[Clip], k: int, seed: int = 0) -> list[Split]:
    """k splits whose validation sides are disjoint and, together, hold every clip whose label has at least
    two groups; no group has clips on both sides of any split. Within each main label, groups are dealt in
    a seeded order to the fold that has the fewest of that label's clips so far, so each fold validates
    about 1/k of every label. A label whose clips all come from one group is never validated (as in
    group_split). Deterministic for a given seed and set of clips."""
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k}")
    groups, by_label = _groups_by_label(clips)
    fold_of: dict[str, int] = {}
    for label, keys in sorted(by_label.items()):
        if len(keys) < 2:
            continue
        # Largest groups first (a greedy deal balances best that way); the seeded hash breaks ties.
        keys.sort(key=lambda key: (-len(groups[key]), _order(seed, key)))
        filled = [0] * k
        for key in keys:
            fold = min(range(k), key=lambda f: (filled[f], f))
            fold_of[key] = fold
            filled[fold] += len(groups[key])
    return [Split([c for c in clips if fold_of.get(group_key(c)) != f],
                  [c for c in clips if fold_of.get(group_key(c)) == f]) for f in range(k)]
