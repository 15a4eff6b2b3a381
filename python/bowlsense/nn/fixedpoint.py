"""TFLite's quantization arithmetic in Python integers, for what export precomputes on the host:
requantization multipliers (QuantizeMultiplier), activation ranges, and the lookup tables that the
C engine uses for LOGISTIC, int8 requantize and SOFTMAX's exponentials (gemmlowp fixed point).

Everything here mirrors the TFLite reference implementation operation by operation (int32
wrap-around and rounding included); the tests check the resulting tables against tflite_micro over
every int8 input.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def wrap32(x: int) -> int:
    """Two's-complement int32 wrap-around (what the reference's raw int32 adds do)."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def tflite_round(x: float) -> int:
    """std::round / TfLiteRound: halves away from zero."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = q * 2^shift / 2^31 with q in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = tflite_round(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 30:
        raise ValueError(f"requantization multiplier {real} is too large for int32 fixed point")
    return q_fixed, shift


def srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    t = ab + nudge
    q = abs(t) >> 31  # C++ division truncates toward zero
    return wrap32(q if t >= 0 else -q)


def rdbp(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x: int, multiplier: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier (double rounding, the default build)."""
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    return rdbp(srdhm(wrap32(x * (1 << left)), multiplier), right)


# Right shifts (1..REQUANT_MAX_RIGHT) a layer must use on every channel to get a requant table: with the
# output offset folded in, |K| <= 2^(30 + r) + 2^30 + 128 * 2^(31 + r), and |acc * m| < 2^62, so the 64-bit
# sum cannot overflow for r <= 20.
REQUANT_MAX_RIGHT = 20


def requant_table(multipliers, shifts, output_offset: int) -> np.ndarray | None:
    """Per-channel constants of bs_nn's single-rounding requantization, (channels, 4) int32
    {m, r - 1, K_lo, K_hi} with K = 2^30 + 2^(30 + r) + output_offset * 2^(31 + r), r = -shift; or None
    when a channel shifts left or by 0 or more than REQUANT_MAX_RIGHT (the kernels then use the general path).

    Why it is exact: with h = SaturatingRoundingDoublingHighMul(acc, m) = floor((acc * m + 2^30) / 2^31)
    (m >= 0, no saturating case), RoundingDivideByPOT(h, r) = floor((h + 2^(r-1) - [h < 0]) / 2^r), and
    floor((floor(A / B) + c) / D) = floor((A + c * B) / (B * D)) for integers, so
    MultiplyByQuantizedMultiplier(acc, m, -r) + offset = floor((acc * m + K - [h < 0] * 2^31) / 2^(31 + r)).
    [h < 0] may be replaced by [acc < 0]: they differ only when acc < 0 and h = 0, where both constants
    give 0. See requant_apply and bs_nn_requant in bs_nn.c."""
    m = np.asarray(multipliers, np.int64)
    s = np.asarray(shifts, np.int64)
    if m.size == 0 or np.any(s >= 0) or np.any(s < -REQUANT_MAX_RIGHT) or np.any(m < 0) or np.any(m > INT32_MAX):
        return None
    rows = []
    for mi, si in zip(m.tolist(), s.tolist()):
        r = -si
        k = (1 << 30) + (1 << (30 + r)) + output_offset * (1 << (31 + r))
        k_lo = wrap32(k & 0xFFFFFFFF)
        k_hi = k >> 32
        assert INT32_MIN <= k_hi <= INT32_MAX
        rows.append((mi, r - 1, k_lo, k_hi))
    return np.array(rows, np.int64).astype(np.int32)


def requant_apply(acc: int, row) -> int:
    """The table's arithmetic in Python integers (before the activation clamp): what bs_nn computes."""
    m, rm1, k_lo, k_hi = (int(v) for v in row)
    k = (k_hi << 32) + (k_lo & 0xFFFFFFFF)
    x = acc * m + k - ((1 << 31) if acc < 0 else 0)
    return x >> (32 + rm1)


def sat_rounding_mul_pot(x: int, exponent: int) -> int:
    """gemmlowp SaturatingRoundingMultiplyByPOT."""
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbp(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return wrap32(x << exponent)


# -- gemmlowp fixed-point functions on raw int32 values; `ib` = integer bits of the input ---------

def _fmul(a: int, b: int) -> int:
    return srdhm(a, b)


def _add(a: int, b: int) -> int:
    return wrap32(a + b)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    constant_term = 1895147668  # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883
    x = _add(a, 1 << 28)  # + 1/8
    x2 = _fmul(x, x)
    x3 = _fmul(x2, x)
    x4 = _fmul(x2, x2)
    x4_over_4 = sat_rounding_mul_pot(x4, -2)
    poly = sat_rounding_mul_pot(_add(_fmul(_add(x4_over_4, x3), constant_1_over_3), x2), -1)
    return _add(constant_term, _fmul(constant_term, _add(x, poly)))


_EXP_BARREL = [(-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242)]


def exp_on_negative_values(a: int, ib: int) -> int:
    """exp(a) for a <= 0 given in Q(ib).(31-ib); result raw Q0.31."""
    frac_bits = 31 - ib
    one_quarter = 1 << (frac_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = _add(a & mask, -one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        sat_rounding_mul_pot(a_mod_quarter_minus_one_quarter, ib))
    remainder = _add(a_mod_quarter_minus_one_quarter, -a)
    for exponent, multiplier in _EXP_BARREL:
        if ib > exponent:
            if remainder & (1 << (frac_bits + exponent)):
                result = _fmul(result, multiplier)
    if ib > 5:
        clamp = -(1 << (36 - ib))
        if a < clamp:
            result = 0
    if a == 0:
        result = INT32_MAX
    return result


def one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    # gemmlowp RoundingHalfSum: (a + b + sign) / 2 in int64, C++ division truncating toward zero.
    t = a + INT32_MAX
    t += 1 if t >= 0 else -1
    half_denominator = wrap32(t // 2 if t >= 0 else -((-t) // 2))
    x = _add(1515870810, _fmul(half_denominator, -1010580540))
    for _ in range(3):
        one_minus = _add(1 << 29, -_fmul(half_denominator, x))
        x = _add(x, sat_rounding_mul_pot(_fmul(x, one_minus), 2))
    return sat_rounding_mul_pot(x, 1)


def logistic(a: int, ib: int) -> int:
    """gemmlowp logistic of Q(ib) input -> raw Q0.31."""
    if a == 0:
        return 1 << 30
    abs_a = a if a > 0 else wrap32(-a)
    positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap32(-abs_a), ib))
    return positive if a > 0 else _add(INT32_MAX, -positive)


# -- per-op precomputation ------------------------------------------------------------------------

def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 outputs."""
    scale = np.float32(scale)

    def q(f: float) -> int:
        return zero_point + tflite_round(float(np.float32(f) / scale))

    lo, hi = -128, 127
    if activation == "NONE":
        return lo, hi
    if activation == "RELU":
        return max(lo, q(0.0)), hi
    if activation == "RELU6":
        return max(lo, q(0.0)), min(hi, q(6.0))
    if activation == "RELU_N1_TO_1":
        return max(lo, q(-1.0)), min(hi, q(1.0))
    raise ValueError(f"unsupported fused activation {activation}")


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1) * (1 << (total_signed_bits - input_integer_bits))
                          / (1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def logistic_lut(input_scale: float, input_zero_point: int) -> np.ndarray:
    """int8 LOGISTIC as TFLite's reference_integer_ops::Logistic, for every int8 input (index v+128).
    The output quantization is fixed by the spec: scale 1/256, zero point -128."""
    input_integer_bits = 4
    real = float(np.float32(input_scale)) * float(1 << (31 - input_integer_bits))
    q, left_shift = math.frexp(real)
    multiplier = tflite_round(q * (1 << 31))
    radius = calculate_input_radius(input_integer_bits, left_shift, 31)
    out = np.empty(256, dtype=np.int8)
    for v in range(-128, 128):
        x = v - input_zero_point
        if x <= -radius:
            r = -128
        elif x >= radius:
            r = 127
        else:
            x_q4 = mbqm(x, multiplier, left_shift)
            r = rdbp(logistic(x_q4, input_integer_bits), 31 - 8) - 128
            r = min(max(r, -128), 127)
        out[v + 128] = r
    return out


def requantize_lut(input_scale: float, input_zero_point: int, output_scale: float,
                   output_zero_point: int) -> np.ndarray:
    """int8 -> int8 QUANTIZE (TFLite Requantize) for every int8 input."""
    multiplier, shift = quantize_multiplier(float(np.float32(input_scale)) / float(np.float32(output_scale)))
    out = np.empty(256, dtype=np.int8)
    for v in range(-128, 128):
        r = mbqm(v - input_zero_point, multiplier, shift) + output_zero_point
        out[v + 128] = min(max(r, -128), 127)
    return out


def softmax_exp_lut(beta: float, input_scale: float) -> np.ndarray:
    """exp_on_negative_values of every possible (x - max) in -255..0, as TFLite's int8 Softmax
    computes it (PreprocessSoftmaxScaling with 5 integer bits), 0 below diff_min. Index: max - x."""
    scaled_diff_integer_bits = 5
    max_real = float((1 << 31) - 1)
    real = min(float(beta) * float(np.float32(input_scale)) * (1 << (31 - scaled_diff_integer_bits)), max_real)
    multiplier, left_shift = quantize_multiplier(real)  # QuantizeMultiplierGreaterThanOne
    if left_shift < 0:
        raise ValueError("softmax input scale too small for TFLite's fixed-point softmax")
    diff_min = -calculate_input_radius(scaled_diff_integer_bits, left_shift)
    lut = np.zeros(256, dtype=np.int32)
    for d in range(256):
        diff = -d
        if diff >= diff_min:
            rescaled = srdhm(wrap32(diff * (1 << left_shift)), multiplier)
            lut[d] = exp_on_negative_values(rescaled, scaled_diff_integer_bits)
    return lut


def round_half_away_f32(x: np.ndarray) -> np.ndarray:
    """TfLiteRound on float32 values (numpy's round is half-to-even)."""
    # In float64 so that adding 0.5 cannot round (every float32 is exact there).
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.float32)
