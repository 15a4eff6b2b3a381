"""The firmware's smoothing/hysteresis/privacy-gate logic (C, bs_events.c + bs_capture.c, run through the
host tool build/firmware/host/bs_events_replay, built with ASan/UBSan) against the Python mirror
bowlsense.device.events: identical events, capture decisions and counters on random and adversarial score
streams. Plus hand-checkable cases worked out from the rule in the docstrings."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from bowlsense.device.events import EventParams, LabelParams, simulate_capture, simulate_events
from bowlsense.device.launch import FIRMWARE_DIR, build_firmware
from bowlsense.device.protocol import Event, WINDOW_HOP_SAMPLES

REPLAY = FIRMWARE_DIR / "host" / "bs_events_replay"
SNIPPET = 2048
SNIPPET_OFFSET = 15600 // 2 - SNIPPET // 2


@pytest.fixture(scope="module")
def replay():
    build_firmware("host")
    return REPLAY


def run_c(replay, params: EventParams, scores: np.ndarray):
    args = [str(replay), str(params.windows), str(params.min_event_windows)]
    args += [f"{l.on_sum},{l.off_sum},{l.gate_q},{int(l.privacy)}" for l in params.labels]
    text = "\n".join(" ".join(str(int(v)) for v in row) for row in scores) + "\n"
    proc = subprocess.run(args, input=text, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    events, captures, counters = [], [], {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts[0] == "event":
            kind, label, peak, start, end = map(int, parts[1:])
            events.append(Event({1: "begin", 2: "end"}[kind], label, peak, start, end))
        elif parts[0] == "capture":
            captures.append(tuple(map(int, parts[1:])))
        else:
            counters[parts[0]] = int(parts[1])
    return events, captures, counters


def random_params(rng, n_labels):
    windows = int(rng.integers(1, 17))
    labels = []
    for l in range(n_labels):
        on_q = int(rng.integers(-128, 129))
        off_q = int(rng.integers(-128, on_q + 1))
        labels.append(LabelParams(windows * on_q, windows * off_q, int(rng.integers(-128, 129)), l == 0))
    return EventParams(windows, int(rng.integers(1, 5)), tuple(labels))


def check_same(replay, params, scores):
    c_events, c_captures, c_counts = run_c(replay, params, scores)
    py_events = simulate_events(params, scores)
    assert c_events == py_events
    gate = simulate_capture(params, scores)
    assert [w for w, _, _ in c_captures] == gate.sent
    assert c_counts["sent"] == len(gate.sent)
    assert c_counts["suppressed"] == len(gate.suppressed)
    assert c_counts["dropped"] == len(gate.dropped)
    # The snippet of window w is the 2048 samples centred in it (synthetic PCM: sample i = i % 32749).
    for w, first, last in c_captures:
        s0 = w * WINDOW_HOP_SAMPLES + SNIPPET_OFFSET
        assert (first, last) == (s0 % 32749, (s0 + SNIPPET - 1) % 32749)
    return c_events, gate


def test_random_streams_match_mirror(replay):
    rng = np.random.default_rng(1234)
    for trial in range(60):
        n_labels = int(rng.integers(1, 6))
        params = random_params(rng, n_labels)
        n = int(rng.integers(0, 120))
        if trial % 3 == 0:   # bursts: long runs of high or low scores make real events
            scores = np.repeat(rng.choice([-128, -20, 60, 127], size=(n // 6 + 1, n_labels)), 6, axis=0)[:n]
        else:
            scores = rng.integers(-128, 128, size=(n, n_labels))
        check_same(replay, params, scores)


def test_extremes_and_max_labels(replay):
    windows = 16
    params = EventParams(windows, 1, tuple(LabelParams(windows * 127, windows * -128, 127, l % 2 == 0)
                                            for l in range(16)))
    scores = np.array([[127] * 16] * 20 + [[-128] * 16] * 20 + [[127, -128] * 8] * 20)
    events, _ = check_same(replay, params, scores)
    assert events, "saturated scores must open events"


def test_hand_checked_hysteresis(replay):
    # N=2, on when the 2-window sum >= 100 (average >= 50), off when it drops below 0 (average < 0).
    params = EventParams(2, 2, (LabelParams(100, 0),))
    scores = np.array([[-128], [60], [60], [-10], [5], [-128], [127], [-128], [-128]])
    # sums: -256, -68, 120 (on, w=2), 50, -5 (off: last=3), -123, -1, -1, -256
    # event 2..3 lasts 2 windows = min_event_windows -> begin at w=3, end (2, 3) peak 60;
    # w=6 sum -1 never reaches 100 -> nothing else.
    expected = [Event("begin", 0, 60, 2, 3), Event("end", 0, 60, 2, 3)]
    events, _ = check_same(replay, params, scores)
    assert events == expected


def test_short_event_dropped_and_open_event_flushed(replay):
    params = EventParams(1, 3, (LabelParams(0, 0),))
    scores = np.array([[10], [-10], [10], [10], [10], [10]])
    # w0 on -> w1 off: 1 window < 3, dropped; w2..w5 open at the end: begin at w4, end (2, 5) at flush.
    events, _ = check_same(replay, params, scores)
    assert events == [Event("begin", 0, 10, 2, 4), Event("end", 0, 10, 2, 5)]
    _, _, counts = run_c(replay, params, scores)
    assert counts["short"] == 1


def test_privacy_gate_guard_windows(replay):
    # label 0: speech (privacy, gate at raw >= 0); label 1: eating, on whenever its score >= 0.
    params = EventParams(1, 1, (LabelParams(10_000, 10_000, 0, True), LabelParams(0, 0)))
    speech = [-100] * 12
    speech[5] = 50                        # one window scored as speech
    eating = [100] * 12
    scores = np.array(list(zip(speech, eating)))
    gate = simulate_capture(params, scores)
    # speech at 5 blocks 4, 5, 6 (guards); window 11 is the last (never decided)
    assert gate.suppressed == [4, 5, 6, 11]
    assert gate.sent == [0, 1, 2, 3, 7, 8, 9, 10]
    check_same(replay, params, scores)
    # no event open: clear windows are dropped, not sent
    quiet = np.array(list(zip([-100] * 5, [-100] * 5)))
    gate = simulate_capture(params, quiet)
    assert gate.sent == [] and gate.dropped == [0, 1, 2, 3] and gate.suppressed == [4]
    check_same(replay, params, quiet)
