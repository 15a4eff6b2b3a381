/*
 * Fixed-point helpers with exactly the rounding of TFLite's reference kernels (gemmlowp's
 * SaturatingRoundingDoublingHighMul and RoundingDivideByPOT, TFLite's MultiplyByQuantizedMultiplier
 * without TFLITE_SINGLE_ROUNDING). Internal to bs_nn; static inline so every kernel can inline them.
 */
#ifndef BS_NN_FIXEDPOINT_H
#define BS_NN_FIXEDPOINT_H

#include <stdint.h>

/* Arithmetic right shift. C99 leaves >> of a negative value implementation-defined; every compiler
 * we target (gcc, clang, arm-none-eabi-gcc) shifts arithmetically, and this is the one place that
 * relies on it. */
static inline int32_t bs_nn_asr32(int32_t x, int n) { return x >> n; }
static inline int64_t bs_nn_asr64(int64_t x, int n) { return x >> n; }

/* gemmlowp SaturatingRoundingDoublingHighMul: a * b / 2^31 rounded to nearest, ties away from zero,
 * saturating the one overflow case (INT32_MIN^2). gemmlowp adds 2^30 (or 1 - 2^30 for a negative
 * product) and divides truncating toward zero; for every integer x, trunc((x + 1 - 2^30) / 2^31) for
 * x < 0 equals floor((x + 2^30) / 2^31), so one add and an arithmetic shift give the same bits without
 * a branch or a 64-bit division (one SMLAL on Cortex-M4). */
static inline int32_t bs_nn_srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b + ((int64_t)1 << 30);
    return (int32_t)bs_nn_asr64(ab, 31);
}

/* x / 2^exponent rounded to nearest, ties away from zero; exponent in 0..31. */
static inline int32_t bs_nn_rdbp(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return bs_nn_asr32(x, exponent) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier * 2^shift with multiplier a Q31 significand (TFLite MultiplyByQuantizedMultiplier).
 * The left shift wraps like the reference implementation on two's-complement targets. */
static inline int32_t bs_nn_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return bs_nn_rdbp(bs_nn_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

static inline int32_t bs_nn_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

#endif /* BS_NN_FIXEDPOINT_H */
