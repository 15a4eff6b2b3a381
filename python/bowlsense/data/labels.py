"""The product's label vocabulary and how a `label` cell is parsed.

A clip carries zero or more event labels. "background" is not an event: it is written in labels.csv
for clips where no event happens, and it can never appear next to an event label.
"""
from __future__ import annotations

import numpy as np

from ..manifest import BACKGROUND

EVENT_LABELS: tuple[str, ...] = ("eating", "drinking", "bowl", "speech")
PRODUCT_LABELS: tuple[str, ...] = EVENT_LABELS + (BACKGROUND,)
SEPARATOR = ";"

__all__ = ["BACKGROUND", "EVENT_LABELS", "PRODUCT_LABELS", "format_labels", "parse_labels", "events",
           "multi_hot", "union"]


def parse_labels(cell: str) -> tuple[str, ...]:
    """'speech; eating' -> ('speech', 'eating'): stripped, lower-cased, duplicates dropped, order kept."""
    out: list[str] = []
    for part in (cell or "").split(SEPARATOR):
        name = part.strip().lower()
        if name and name not in out:
            out.append(name)
    return tuple(out)


def format_labels(labels) -> str:
    return SEPARATOR.join(labels)


def events(labels) -> tuple[str, ...]:
    """The event labels only: what the model's sigmoid targets are for this clip."""
    return tuple(l for l in labels if l != BACKGROUND)


def union(*label_sets) -> tuple[str, ...]:
    """Labels of a mixture: every parent's events; no events at all means background."""
    out: list[str] = []
    for labels in label_sets:
        for l in events(labels):
            if l not in out:
                out.append(l)
    return tuple(out) if out else (BACKGROUND,)


def multi_hot(labels, label_names=EVENT_LABELS) -> np.ndarray:
    """float32 target vector over `label_names` (which must not contain background)."""
    if BACKGROUND in label_names:
        raise ValueError("'background' is not a model output: it means no label is active")
    active = set(events(labels))
    return np.array([1.0 if n in active else 0.0 for n in label_names], dtype=np.float32)
