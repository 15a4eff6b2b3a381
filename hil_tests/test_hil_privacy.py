"""Privacy gate in capture mode. The stream alternates eating and bowl sounds alone with the same
sounds with speech mixed under them or as loud (-6 and 0 dB speech-to-sound). Whatever the model makes of
it, the device must never emit audio for a window it scored as speech, nor for the windows on either
side of one (guard windows), and its counters must match the host's replay of the gate
(bowlsense.device.events.simulate_capture) on the device's own scores. Every emitted sample must be the
stream's own sample at that position: the only audio that leaves is the gated snippet."""
from __future__ import annotations

import numpy as np

from bowlsense.device import protocol as P
from bowlsense.device.events import EventParams, simulate_capture

from hil_support import RATE, clips_with, fit, load_clip, mix, stats_delta

SEGMENT_S = 3


def speech_run(clips, n: int) -> np.ndarray:
    """n samples of consecutive speech utterances."""
    return fit(np.concatenate([load_clip(c) for c in clips] * 4), n)


def mixed_stream():
    """(pcm, speech_mask): eating, eating+speech (0 dB), bowl, bowl+speech (0 dB), eating+speech (-6 dB), bowl."""
    n = SEGMENT_S * RATE
    eating = [fit(load_clip(c), n) for c in clips_with("eating", 2, min_s=SEGMENT_S)]
    bowl = [fit(load_clip(c), n) for c in clips_with("bowl", 2, min_s=SEGMENT_S)]
    speech = clips_with("speech", 12, max_s=1.2)
    plan = [(eating[0], None), (eating[1], 0.0), (bowl[0], None), (bowl[1], 0.0), (eating[0], -6.0), (bowl[0], None)]
    parts, mask = [], []
    for i, (base, snr) in enumerate(plan):
        if snr is None:
            parts.append(base)
            mask.append(np.zeros(n, bool))
        else:
            parts.append(mix(base, speech_run(speech[i:i + 4], n), snr))
            mask.append(np.ones(n, bool))
    return np.concatenate(parts), np.concatenate(mask)


def test_capture_never_emits_speech_windows_or_their_guards(dut, host_model, report):
    h = dut.hello
    pcm, speech_mask = mixed_stream()
    privacy = [i for i, info in enumerate(h.labels) if info.privacy]
    assert privacy, "the model has no privacy label: nothing to gate"
    c = dut.client
    c.capture(True)
    try:
        before = dut.stats()
        res, raw = dut.stream(pcm)
        after = dut.stats()
    finally:
        c.capture(False)
    d = stats_delta(before, after)
    speech = np.array([any(int(row[l]) >= h.labels[l].gate_q for l in privacy) for row in raw])
    sent_windows = sorted({a.window for a in res.audio})
    problems = []
    for w in sent_windows:
        near = [k for k in (w - 1, w, w + 1) if 0 <= k < len(raw)]
        if w + 1 >= len(raw):
            problems.append(f"window {w}: sent although it is the last window (its right guard was never scored)")
        if any(speech[k] for k in near):
            problems.append(f"window {w}: audio sent though the device scored speech in windows "
                            f"{[k for k in near if speech[k]]} (raw scores {raw[near].tolist()})")
    # each snippet: its own samples, at its own place, whole
    for w in sent_windows:
        parts = sorted((a for a in res.audio if a.window == w), key=lambda a: a.first_sample)
        first = w * P.WINDOW_HOP_SAMPLES + P.WINDOW_SAMPLES // 2 - h.snippet_samples // 2
        got = np.frombuffer(b"".join(a.samples for a in parts), "<i2")
        if parts[0].first_sample != first or len(got) != h.snippet_samples:
            problems.append(f"window {w}: snippet at {parts[0].first_sample} with {len(got)} samples, expected "
                            f"{h.snippet_samples} at {first}")
        elif not np.array_equal(got, pcm[first:first + h.snippet_samples]):
            problems.append(f"window {w}: snippet samples are not the stream's samples")
    gate = simulate_capture(EventParams.from_hello(h), raw)
    counts = {k: d[f"capture_{k}"] for k in ("sent", "suppressed", "dropped")}
    expected = {"sent": len(gate.sent), "suppressed": len(gate.suppressed), "dropped": len(gate.dropped)}
    leaked_truth = sum(speech_mask[a.first_sample:a.first_sample + len(a.samples) // 2].any() for a in res.audio)
    print(f"\n{len(raw)} windows, {int(speech.sum())} scored as speech; sent {counts['sent']}, suppressed "
          f"{counts['suppressed']}, dropped {counts['dropped']} (host replay {expected}); audio frames overlapping "
          f"mixed-in speech the model missed: {leaked_truth}")
    report.section("privacy", {"windows": len(raw), "speech_windows": int(speech.sum()), "device": counts,
                               "host": expected, "audio_frames_over_mixed_speech": int(leaked_truth)})
    assert not problems, "\n".join(problems[:10])
    assert sent_windows == gate.sent, f"device sent windows {sent_windows}, the host's replay {gate.sent}"
    assert counts == expected
    assert speech.any(), "the device scored no window as speech: the gate was never exercised"
    assert counts["sent"] > 0, "no snippet was sent at all: the check cannot tell a gate from a closed door"
