"""Front end bit-exact on the device: int16 log-mel frames from FEATURES equal the host's C front end
(cffi) for real clips and the front end tests' adversarial signals, sent in odd chunk sizes (1, 3, 159,
161, 1021 samples...) so frames straddle requests and the device must keep its history across them."""
from __future__ import annotations

import numpy as np
import pytest

from hil_support import adversarial_signals, clips_with, device_frames_odd_chunks, host_frames, load_clip


def _compare(dut, name, pcm):
    frames, cycles, requests = device_frames_odd_chunks(dut.client, pcm)
    expected = host_frames(pcm)
    assert frames.shape == expected.shape, f"{name}: device made {frames.shape[0]} frames, host {expected.shape[0]}"
    diff = np.argwhere(frames != expected)
    assert not len(diff), (f"{name}: {len(diff)} values differ, first at frame {diff[0][0]} band {diff[0][1]}: "
                           f"device {frames[tuple(diff[0])]} host {expected[tuple(diff[0])]}")
    return len(expected), cycles, requests


@pytest.mark.quick
def test_frontend_bit_exact_adversarial(dut):
    signals = adversarial_signals(seconds=0.5)
    total = 0
    for name, pcm in signals.items():
        n, _, requests = _compare(dut, name, pcm)
        total += n
    print(f"\n{len(signals)} adversarial signals, {total} frames: device == host")


def test_frontend_bit_exact_real_clips(dut):
    clips = clips_with("speech", 2, max_s=2.0) + clips_with("eating", 1) + clips_with("bowl", 1) + \
        clips_with("background", 1, min_s=2.0)
    total = 0
    for clip in clips:
        pcm = load_clip(clip)[:16000 * 2]
        n, _, _ = _compare(dut, clip.path, pcm)
        total += n
    print(f"\n{len(clips)} real clips ({', '.join(c.labels[0] for c in clips)}), {total} frames: device == host")
