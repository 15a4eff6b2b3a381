"""Events: a 60 s stream built from several verified clips gives, on the device, the same event list
(label, begin/end, first and last window, peak score) as the host's simulation of the smoothing and
hysteresis (bowlsense.device.events) run on the host's own scores for the same audio, with the event
parameters the device reports (whose meaning test_hil_identity checks against model.json)."""
from __future__ import annotations

import numpy as np

from bowlsense.data.labels import BACKGROUND
from bowlsense.device.events import EventParams, simulate_events

from hil_support import RATE, clips_with, fit, host_patches, load_clip

STREAM_S = 60


def sixty_seconds(labels) -> tuple[np.ndarray, list[str]]:
    """Clips of every label and background in turn (speech utterances in runs of four), cut to 60 s."""
    pools = {l: clips_with(l, 8 if l == "speech" else 2, max_s=5.0, min_s=0.0 if l == "speech" else 2.0)
             for l in list(labels) + [BACKGROUND]}
    order = [BACKGROUND] + [l for l in labels] + [BACKGROUND] + [l for l in reversed(labels)]
    parts, names, used = [], [], {l: 0 for l in pools}
    total = 0
    while total < STREAM_S * RATE:
        for label in order:
            take = 4 if label == "speech" else 1
            for _ in range(take):
                clip = pools[label][used[label] % len(pools[label])]
                used[label] += 1
                pcm = load_clip(clip)
                parts.append(pcm)
                names.append(clip.path)
                total += len(pcm)
    return fit(np.concatenate(parts), STREAM_S * RATE), names


def test_events_60s_stream_match_host_simulation(dut, host_model, report):
    pcm, names = sixty_seconds(host_model.labels)
    res, raw = dut.stream(pcm)
    expected_scores = host_model.scores(host_patches(pcm))
    np.testing.assert_array_equal(raw, expected_scores, err_msg="device window scores differ from the host's")
    params = EventParams.from_hello(dut.hello)
    expected = simulate_events(params, expected_scores)
    ends = [e for e in expected if e.kind == "end"]
    print(f"\n60 s from {len(names)} clips: {len(raw)} windows, {len(ends)} events on the host: " +
          ", ".join(f"{host_model.labels[e.label]} {e.start_s:.2f}-{e.end_s:.2f} s" for e in ends[:12]))
    report.metric("events_in_60s_stream", len(ends), "", note=f"{len(res.ended)} on the device")
    assert ends, "the 60 s stream produced no event on the host: the check would prove nothing"
    first = next((i for i, (a, b) in enumerate(zip(res.events, expected)) if a != b), None)
    assert res.events == expected, (
        f"device events differ from the host simulation (first difference at {first}): device "
        f"{res.events[first:first + 3] if first is not None else res.events[len(expected):][:3]}, host "
        f"{expected[first:first + 3] if first is not None else expected[len(res.events):][:3]}")
