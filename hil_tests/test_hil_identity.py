"""The device says who it is (HELLO) and that matches the host: front end, model, labels, and the event
and privacy-gate parameters it derived from model.json. (The harness already stops the run when the
hashes differ; these checks say so per item, and check what the harness does not.)"""
from __future__ import annotations

import numpy as np
import pytest

from bowlsense.device import protocol as P
from bowlsense.frontend import FrontendConfig


@pytest.mark.quick
def test_hello_identifies_the_build(dut, report):
    h = dut.client.hello()
    print(f"\n{dut.board} ({dut.backend}): firmware {h.fw_version} git {h.git_sha}, protocol {h.protocol_version}, "
          f"cycles in {h.cycle_unit.name.lower()} (resolution {h.cycle_resolution}), model "
          f"{h.model_sha256[:16] or 'none'}, labels {h.label_names}")
    assert h.protocol_version == P.VERSION
    assert h.max_payload == P.MAX_PAYLOAD
    assert h.frontend_hash == FrontendConfig().hash
    assert h.git_sha and h.git_sha != "unknown", "the firmware does not report the git sha it was built from"
    if dut.is_qemu:
        assert h.cycle_unit == P.CycleUnit.INSTRUCTIONS, "QEMU under -icount counts instructions"
    assert h == dut.hello, "HELLO changed during the run"


def _smallest_q(prob: float, scale: float, zero_point: int) -> int:
    """Smallest int8-domain value whose dequantized probability reaches prob (float64 arithmetic; may lie
    outside int8: then no int8 score ever reaches it / every score does)."""
    q = -200
    while q < 200 and scale * (q - zero_point) < prob:
        q += 1
    return q


@pytest.mark.quick
def test_event_and_gate_parameters_follow_model_json(dut, host_model):
    """The device's integer thresholds mean what model.json's probabilities say. For every reachable
    sum S of N window scores: S >= on_sum exactly when the mean probability scale * (S/N - zp) reaches
    `on` (likewise off_sum / `off`), and a privacy label's gate_q gates every raw score at or above
    its `on` threshold. Checked over the whole integer range rather than against a formula."""
    m = host_model.manifest
    h = dut.client.hello()
    n = h.smoothing_windows
    assert n == m.smoothing.windows and h.min_event_windows == m.smoothing.min_event_windows
    scale, zp = float(m.output.scale), int(m.output.zero_point)
    sums = np.arange(-128 * n, 127 * n + 1)
    mean_prob = scale * (sums / n - zp)
    bad = []
    for label, info in zip(m.labels, h.labels):
        t = m.thresholds[label]
        assert info.name == label
        assert info.privacy == (label in m.privacy_labels), f"{label}: privacy flag differs"
        for what, thr, device_sum in (("on", t.on, info.on_sum), ("off", t.off, info.off_sum)):
            host_rule = mean_prob >= thr - 1e-12
            dev_rule = sums >= device_sum
            differ = sums[host_rule != dev_rule]
            if len(differ):
                k = int(differ[0])
                bad.append(f"{label} {what}={thr}: the device compares the sum of {n} raw scores with {device_sum}; "
                           f"a sum of {k} (mean probability {scale * (k / n - zp):.5f}) is "
                           f"{'at or above' if host_rule[sums == k][0] else 'below'} {thr} by model.json's rule but "
                           f"{'at or above' if dev_rule[sums == k][0] else 'below'} the device's "
                           f"({len(differ)} sums differ). PROTOCOL.md sets {what}_sum = N * {what}_q, which rounds the "
                           f"threshold before averaging; model.json's rule needs the smallest S with "
                           f"scale * (S / N - zero_point) >= {what}")
        if info.privacy:
            # Every window the host calls speech (probability >= on) must be gated; the firmware may gate
            # more (it uses the lower `off` level), never less.
            on_q = _smallest_q(t.on, scale, zp)
            print(f"\n{label}: gate_q {info.gate_q} (on threshold reached at {on_q}, off at "
                  f"{_smallest_q(t.off, scale, zp)})")
            if info.gate_q > on_q:
                bad.append(f"{label}: gate_q {info.gate_q} lets scores {on_q}..{info.gate_q - 1} out, which reach "
                           f"the on threshold {t.on}")
    assert not bad, "\n".join(bad)
