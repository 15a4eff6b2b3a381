"""Export-time layouts of the Cortex-M kernels: the requant table (single-rounding form of TFLite's double
rounding, bowlsense.nn.fixedpoint.requant_table) against TFLite's MultiplyByQuantizedMultiplier, and the
packed int16 CONV_2D weights (lower.pack_conv_weights16) against the OHWI weights they come from. The C
kernels that read them are checked end to end against tflite_micro in test_nn_ops / test_nn_models /
test_nn_cortexm."""
from __future__ import annotations

import numpy as np
import pytest

from bowlsense.nn import fixedpoint as fp
from bowlsense.nn.lower import pack_conv_weights16, unpack_conv_weights16

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _accumulators(rng: np.random.Generator, n: int) -> list[int]:
    """Edge values, small values (where the rounding ties sit) and the whole int32 range."""
    edges = [INT32_MIN, INT32_MIN + 1, INT32_MAX, -1, 0, 1, -2, 2]
    return edges + rng.integers(-4096, 4097, n).tolist() + rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True).tolist()


@pytest.mark.parametrize("r", range(1, fp.REQUANT_MAX_RIGHT + 1))
def test_requant_table_equals_multiply_by_quantized_multiplier(r):
    rng = np.random.default_rng(r)
    multipliers = [0, 1 << 30, INT32_MAX, (1 << 30) + 1] + rng.integers(1 << 30, 1 << 31, 6).tolist()
    for m in multipliers:
        for off in (-128, -1, 0, 5, 127):
            row = fp.requant_table([m], [-r], off)[0]
            for acc in _accumulators(rng, 300):
                want = fp.mbqm(acc, m, -r) + off
                assert fp.requant_apply(acc, row) == want, (acc, m, r, off)


def test_requant_ties_exhaustively_near_zero():
    """Every accumulator in a window around zero and around each rounding boundary, small shifts."""
    for r in (1, 2, 3, 7):
        for m in (1 << 30, 1518500250, INT32_MAX):
            row = fp.requant_table([m], [-r], -3)[0]
            for acc in range(-3000, 3001):
                assert fp.requant_apply(acc, row) == fp.mbqm(acc, m, -r) - 3, (acc, m, r)


def test_requant_table_refuses_what_it_cannot_express():
    assert fp.requant_table([1 << 30], [0], 0) is None          # no right shift
    assert fp.requant_table([1 << 30], [3], 0) is None          # a left shift
    assert fp.requant_table([1 << 30, 1 << 30], [-5, -21], 0) is None  # beyond REQUANT_MAX_RIGHT
    assert fp.requant_table([1 << 30], [-20], 127) is not None


@pytest.mark.parametrize("oc,k", [(1, 1), (2, 4), (3, 5), (24, 9), (7, 12), (48, 24), (5, 255), (4, 256)])
def test_packed_weights_round_trip_and_order(oc, k):
    rng = np.random.default_rng(oc * 1000 + k)
    w = rng.integers(-128, 128, (oc, k)).astype(np.int8)
    w[0, 0], w[-1, -1] = -128, 127
    packed = pack_conv_weights16(w)
    kp = (k + 3) // 4 * 4
    assert packed.dtype == np.int16 and packed.size == oc * kp
    assert np.array_equal(unpack_conv_weights16(packed, oc, k), w)
    # the documented order: per channel pair and group of 4 taps, a0 a2 a1 a3 b0 b2 b1 b3
    padded = np.zeros((oc, kp), np.int16)
    padded[:, :k] = w
    if oc >= 2:
        assert packed[:8].tolist() == [padded[0, i] for i in (0, 2, 1, 3)] + [padded[1, i] for i in (0, 2, 1, 3)]
    if oc % 2:
        assert packed[-4:].tolist() == [padded[-1, kp - 4 + i] for i in (0, 2, 1, 3)]


@pytest.mark.parametrize("taps,oc", [(9, 4), (9, 24), (1, 8), (25, 128)])
def test_packed_depthwise_weights_round_trip_and_order(taps, oc):
    from bowlsense.nn.lower import pack_depthwise_weights16, unpack_depthwise_weights16
    rng = np.random.default_rng(taps * 1000 + oc)
    w = rng.integers(-128, 128, (taps, oc)).astype(np.int8)
    packed = pack_depthwise_weights16(w)
    assert packed.dtype == np.int16 and packed.size == taps * oc
    assert np.array_equal(unpack_depthwise_weights16(packed, taps, oc), w)
    # the documented order: per group of 4 channels, tap after tap: w_t(c0) w_t(c2) w_t(c1) w_t(c3)
    first_group = packed[:4 * taps].reshape(taps, 4)
    assert first_group.tolist() == [[w[t, i] for i in (0, 2, 1, 3)] for t in range(taps)]
