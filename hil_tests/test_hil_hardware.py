"""Checks that only mean something on a real board (--port): wall-clock latency in milliseconds and the
microphone. On QEMU they are skipped with that reason (QEMU's time is virtual and it has no microphone);
everything QEMU can measure is measured in instructions by the other checks."""
from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from bowlsense.device import DeviceError
from bowlsense.device import protocol as P

from hil_support import RATE, clips_with, load_clip

pytestmark = pytest.mark.hardware


def test_wallclock_latency_ms(dut, report):
    """Round trip of HELLO, and from the PCM request that completes a window to that window's SCORES
    frame (the delay the device adds to a detection), in milliseconds of wall-clock time."""
    c = dut.client
    rtt = []
    for _ in range(20):
        t0 = time.perf_counter()
        c.hello()
        rtt.append(1000 * (time.perf_counter() - t0))
    report.metric("hello_round_trip_ms", round(statistics.median(rtt), 2), "ms", note=f"max {max(rtt):.2f}")
    pcm = np.resize(load_clip(clips_with("eating", 1)[0]), 3 * P.WINDOW_HOP_SAMPLES + P.WINDOW_SAMPLES)
    c.stream_start(scores=True)
    delays = []
    try:
        n_before = len(c.unsolicited)
        for off in range(0, len(pcm), 480):
            t0 = time.perf_counter()
            c.stream_pcm(pcm[off:off + 480])
            new = [f for f in c.unsolicited[n_before:] if f.type == P.MsgType.SCORES]
            n_before = len(c.unsolicited)
            if new:
                delays.append(1000 * (time.perf_counter() - t0))
    finally:
        c.stream_stop()
    if dut.hello.model_present:
        assert delays, "no SCORES frame while streaming"
        report.metric("window_to_scores_ms", round(statistics.median(delays), 2), "ms",
                      target=1000 * P.WINDOW_HOP_SAMPLES / RATE, op="<",
                      note="PCM request that completes a window -> its SCORES frame; must stay under the 480 ms hop")
        assert statistics.median(delays) < 1000 * P.WINDOW_HOP_SAMPLES / RATE


def test_microphone_stream(dut, report):
    """STREAM from the board's microphone for 3 s: the device counts about 3 s of samples and scores
    its windows."""
    c = dut.client
    try:
        c.stream_start(scores=True, mic=True)
    except DeviceError as e:
        if e.code == P.ErrorCode.BAD_ARG:
            pytest.skip(f"{dut.board} has no microphone (STREAM_START with the microphone flag: BAD_ARG)")
        raise
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < 3.0:
            c.receive(0.1)
    finally:
        counts = c.stream_stop()
    seconds = time.perf_counter() - t0
    report.metric("microphone_samples_per_second", round(counts.samples / seconds), "Hz", note=f"{counts.windows} windows")
    assert abs(counts.samples / seconds - RATE) < 0.1 * RATE, f"{counts.samples} samples in {seconds:.2f} s"
    assert counts.windows >= 4
