"""What the device would report: every validation clip streamed through the device's own event logic.

evaluation.measure() reads each window's score against the `on` threshold, before smoothing: the strictest
reading, and the one the targets are stated in. The device does more before anything leaves it: a moving
average over Smoothing.windows windows with hysteresis (on / off), events shorter than min_event_windows
dropped, and the privacy gate (device/events.py, the firmware's integer rule, bit for bit). These figures
stream each single clip on its own through that rule, as a freshly started device would hear it (no
evidence before the clip), so they say what a user sees:

  background_in_false_event   share of background windows inside a reported event of any label
  false_events_per_hour       reported events begun on background clips, per hour of background streamed
  clips_reported              per label, share of its clips in which an event of that label was reported
  speech_held                 share of speech windows the privacy gate holds back (never leaves the device)
  speech_sent                 share of speech windows the gate lets out (a leak: should be 0)

Scores are taken to the int8 output's steps first (TFLite's int8 LOGISTIC output: scale 1/256, zero
point -128), exact for the int8 student and the nearest step for the float models. Mixtures are single
windows and cannot be streamed; they stay with evaluation.measure().
"""
from __future__ import annotations

import json

import numpy as np

from ..device.events import EventParams, LabelParams, simulate_capture, simulate_events
from ..export.model_c import threshold_q, threshold_sum
from ..manifest import Smoothing
from .evaluation import on_off

OUTPUT_SCALE, OUTPUT_ZERO_POINT = 1.0 / 256, -128  # TFLite int8 LOGISTIC output
HOP_SECONDS = 0.48


def event_params(labels, thresholds: dict, privacy_labels, smoothing: Smoothing = Smoothing(),
                 scale: float = OUTPUT_SCALE, zero_point: int = OUTPUT_ZERO_POINT) -> EventParams:
    """The device's event parameters for these thresholds, computed as the C export computes them."""
    out = []
    for label in labels:
        on, off = on_off(thresholds[label])
        private = label in privacy_labels
        out.append(LabelParams(threshold_sum(on, scale, zero_point, smoothing.windows),
                               threshold_sum(off, scale, zero_point, smoothing.windows),
                               threshold_q(off, scale, zero_point) if private else 128, private))
    return EventParams(smoothing.windows, smoothing.min_event_windows, tuple(out))


def to_int8(scores: np.ndarray, scale: float = OUTPUT_SCALE, zero_point: int = OUTPUT_ZERO_POINT) -> np.ndarray:
    """Probabilities back to the int8 output's raw values (exact for dequantized int8 scores)."""
    return np.clip(np.round(np.asarray(scores, np.float64) / scale) + zero_point, -128, 127).astype(np.int64)


def clip_streams(evalset, groups) -> list[np.ndarray]:
    """Window indices of each single clip, in stream order."""
    single = np.flatnonzero(np.array(evalset.group) == "single")
    order = {}
    for i in single:
        order.setdefault(groups[i], []).append((json.loads(evalset.windows.lineage[i]).get("window", 0), i))
    return [np.array([i for _, i in sorted(v)]) for _, v in sorted(order.items())]


def measure_streamed(evalset, scores: np.ndarray, params: EventParams, groups, scale: float = OUTPUT_SCALE,
                     zero_point: int = OUTPUT_ZERO_POINT) -> dict:
    """The figures of the module docstring for one model's scores; groups: clip of each window
    (evaluation.clip_groups)."""
    labels = list(evalset.labels)
    q = to_int8(scores, scale, zero_point)
    truth = evalset.windows.targets > 0.5
    bg_windows = bg_in_event = bg_begins = bg_stream = 0
    reported = {l: [] for l in labels}
    speech = labels.index("speech") if "speech" in labels and params.labels[labels.index("speech")].privacy else None
    speech_windows = speech_held = speech_sent = 0
    for idx in clip_streams(evalset, groups):
        events = [e for e in simulate_events(params, q[idx]) if e.kind == "end"]  # every event, closed
        inside = np.zeros((len(idx), len(labels)), bool)
        for e in events:
            inside[e.start:e.end + 1, e.label] = True
        clip_truth = truth[idx]
        background = ~clip_truth.any(axis=1)
        bg_windows += int(background.sum())
        bg_in_event += int((inside.any(axis=1) & background).sum())
        if background.all():
            bg_begins += len(events)
            bg_stream += len(idx)
        for k, label in enumerate(labels):
            if clip_truth[:, k].any():
                reported[label].append(bool(inside[:, k].any()))
        if speech is not None and clip_truth[:, speech].any():
            gate = simulate_capture(params, q[idx])
            talking = clip_truth[:, speech]
            speech_windows += int(talking.sum())
            speech_held += int(talking[gate.suppressed].sum())
            speech_sent += int(talking[gate.sent].sum())
    out = {"background_in_false_event": bg_in_event / bg_windows if bg_windows else None,
           "false_events_per_hour": bg_begins / (bg_stream * HOP_SECONDS / 3600) if bg_stream else None,
           "clips_reported": {l: float(np.mean(v)) if v else None for l, v in reported.items()},
           "background_hours": bg_stream * HOP_SECONDS / 3600}
    if speech is not None:
        out["speech_held"] = speech_held / speech_windows if speech_windows else None
        out["speech_sent"] = speech_sent / speech_windows if speech_windows else None
    return out
