"""The event thresholds the export hands the firmware mean exactly what model.json says: for every
reachable sum S of N int8 outputs, S >= threshold_sum(p) exactly when the mean probability
scale * (S / N - zero_point) reaches p (checked over the whole integer range, not against a formula)."""
from __future__ import annotations

import numpy as np
import pytest

from bowlsense.export.model_c import threshold_q, threshold_sum


@pytest.mark.parametrize("windows", [1, 2, 3, 5])
@pytest.mark.parametrize("scale,zero_point", [(1 / 256, -128), (0.00390625, -100), (0.0041, -120)])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.35, 0.5, 0.6, 0.35026, 0.99, 1.0])
def test_sum_threshold_is_the_exact_mean_rule(windows, scale, zero_point, p):
    s = threshold_sum(p, scale, zero_point, windows)
    sums = np.arange(-128 * windows, 127 * windows + 1)
    mean_reaches = scale * (sums / windows - zero_point) >= p
    np.testing.assert_array_equal(sums >= s, mean_reaches)


def test_single_window_sum_equals_the_per_score_threshold():
    for p in np.linspace(0, 1, 41):
        assert threshold_sum(float(p), 1 / 256, -128, 1) == threshold_q(float(p), 1 / 256, -128)
