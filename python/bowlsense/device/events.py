"""Host mirror of the firmware's event logic (firmware/app/bs_events.c and bs_capture.c), in the same
integer arithmetic, so it gives bit-identical events and capture decisions from the same raw int8 scores.

    params = EventParams.from_hello(dev.hello())       # what the device runs (or build one by hand)
    events = simulate_events(params, scores)           # scores: (n_windows, n_labels) int8
    gate = simulate_capture(params, scores)            # which windows' audio the privacy gate lets out

Rule (per label l, window w; N = params.windows):
    sum(w)   = q(w) + ... + q(w-N+1), windows before the stream count as -128
    off -> on  when sum(w) >= on_sum;  on -> off when sum(w) < off_sum (the event's last window is w-1)
    BEGIN is reported when the event has lasted min_event_windows windows, END when it finishes (with the
    highest raw score inside it); shorter events are dropped and counted. Labels in index order.
Capture gate: window w-1 is decided when window w is scored. Suppressed unless windows w-2, w-1 and w are
all clear (every privacy label's raw score < gate_q; a window before the stream counts as clear); else
dropped unless a non-privacy event was open after window w-1; else sent. The last window is suppressed.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .protocol import Event, Hello

NO_EVIDENCE = -128


@dataclasses.dataclass(frozen=True)
class LabelParams:
    on_sum: int
    off_sum: int
    gate_q: int = 128     # 128: never "speech" (non-privacy labels)
    privacy: bool = False


@dataclasses.dataclass(frozen=True)
class EventParams:
    windows: int
    min_event_windows: int
    labels: tuple[LabelParams, ...]

    @classmethod
    def from_hello(cls, hello: Hello) -> "EventParams":
        return cls(hello.smoothing_windows, hello.min_event_windows,
                   tuple(LabelParams(l.on_sum, l.off_sum, l.gate_q, l.privacy) for l in hello.labels))


class EventTracker:
    """Streaming: push one window's scores at a time, as the device does."""

    def __init__(self, params: EventParams):
        if not 1 <= params.windows <= 16 or params.min_event_windows < 1 or len(params.labels) > 16:
            raise ValueError(f"event parameters out of range: {params}")
        self.p = params
        n = len(params.labels)
        self.history = np.full((n, params.windows), NO_EVIDENCE, dtype=np.int64)
        self.sum = [params.windows * NO_EVIDENCE] * n
        self.active = [False] * n
        self.start = [0] * n
        self.peak = [NO_EVIDENCE] * n
        self.pos = 0
        self.window = 0
        self.short_events = 0

    def _end(self, label: int, last: int) -> list[Event]:
        self.active[label] = False
        if last - self.start[label] + 1 < self.p.min_event_windows:
            self.short_events += 1
            return []
        return [Event("end", label, self.peak[label], self.start[label], last)]

    def push(self, scores) -> list[Event]:
        out: list[Event] = []
        w = self.window
        for l, lp in enumerate(self.p.labels):
            q = int(scores[l])
            if not -128 <= q <= 127:
                raise ValueError(f"score {q} is not int8")
            self.sum[l] += q - int(self.history[l, self.pos])
            self.history[l, self.pos] = q
            if self.active[l]:
                if self.sum[l] < lp.off_sum:
                    out += self._end(l, w - 1)
                elif q > self.peak[l]:
                    self.peak[l] = q
            elif self.sum[l] >= lp.on_sum:
                self.active[l], self.start[l], self.peak[l] = True, w, q
            if self.active[l] and w - self.start[l] + 1 == self.p.min_event_windows:
                out.append(Event("begin", l, self.peak[l], self.start[l], w))
        self.pos = (self.pos + 1) % self.p.windows
        self.window = w + 1
        return out

    def flush(self) -> list[Event]:
        out: list[Event] = []
        for l in range(len(self.p.labels)):
            if self.active[l]:
                out += self._end(l, self.window - 1)
        return out


def simulate_events(params: EventParams, scores) -> list[Event]:
    """All events (begin and end, in device order) for a whole stream of raw window scores."""
    tracker = EventTracker(params)
    out: list[Event] = []
    for row in np.asarray(scores).reshape(-1, len(params.labels)):
        out += tracker.push(row)
    return out + tracker.flush()


@dataclasses.dataclass
class CaptureResult:
    sent: list[int]          # windows whose snippet the gate lets out
    suppressed: list[int]    # windows held back by the privacy rule (counted on the device)
    dropped: list[int]       # privacy-clear windows with no event (counted on the device)


def simulate_capture(params: EventParams, scores) -> CaptureResult:
    """The privacy gate's decision for every window of a stream (see module docstring)."""
    scores = np.asarray(scores).reshape(-1, len(params.labels))
    tracker = EventTracker(params)
    clear: list[bool] = []
    eligible: list[bool] = []
    res = CaptureResult([], [], [])
    for w, row in enumerate(scores):
        tracker.push(row)
        clear.append(all(int(row[l]) < lp.gate_q for l, lp in enumerate(params.labels) if lp.privacy))
        eligible.append(any(tracker.active[l] for l, lp in enumerate(params.labels) if not lp.privacy))
        if w == 0:
            continue
        d = w - 1
        left = True if d == 0 else clear[d - 1]
        if not (left and clear[d] and clear[w]):
            res.suppressed.append(d)
        elif not eligible[d]:
            res.dropped.append(d)
        else:
            res.sent.append(d)
    if len(scores):
        res.suppressed.append(len(scores) - 1)
    return res
