/*
 * bs_nn runtime: graph validation and the int8 kernels. Every kernel reproduces the arithmetic of
 * TFLite Micro's reference kernel for the same op (see README.md for the op table); where ours is
 * organised differently (input zero point folded into the bias, virtual padding, lookup tables), the
 * result is still identical in every bit because int32 addition is associative modulo 2^32.
 *
 * No malloc, no stdio, no libm. Freestanding apart from <stdint.h>.
 */
#include "bs_nn.h"

#include "bs_nn_fixedpoint.h"

/* On the host (cffi build, -O2) the kernels' inner loops only vectorize at -O3. Device builds keep their
 * own flags: -O3 there would grow flash and may emit memcpy/memset calls a -nostdlib build lacks. */
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__aarch64__))
#pragma GCC optimize("O3")
#endif

#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
#include <arm_acle.h>
#include <stddef.h>
#define BS_NN_USE_DSP 1
#else
#define BS_NN_USE_DSP 0
#endif

/* Depthwise kernels accumulate this many channels at once in a stack array. */
enum { BS_NN_DW_CHUNK = 32 };

/* ---------------------------------------------------------------------------------------------- */
/* Inner loops                                                                                     */

#if BS_NN_USE_DSP
static inline uint32_t bs_nn_read_u32(const int8_t *p)
{
    uint32_t v;
    __builtin_memcpy(&v, p, 4); /* one unaligned LDR on Cortex-M4 */
    return v;
}
#endif

/* acc + sum(a[i] * b[i]) for i < n. On cores with the DSP extension, four products per two SMLADs:
 * SXTB16 sign-extends bytes 0 and 2 (and, after a rotate by 8, bytes 1 and 3) into int16 pairs. */
static inline int32_t bs_nn_dot_s8(const int8_t *a, const int8_t *b, int32_t n, int32_t acc)
{
#if BS_NN_USE_DSP
    while (n >= 4) {
        const uint32_t wa = bs_nn_read_u32(a);
        const uint32_t wb = bs_nn_read_u32(b);
        const int16x2_t a02 = __sxtb16((int8x4_t)wa);
        const int16x2_t a13 = __sxtb16((int8x4_t)((wa >> 8) | (wa << 24)));
        const int16x2_t b02 = __sxtb16((int8x4_t)wb);
        const int16x2_t b13 = __sxtb16((int8x4_t)((wb >> 8) | (wb << 24)));
        acc = __smlad(a02, b02, acc);
        acc = __smlad(a13, b13, acc);
        a += 4;
        b += 4;
        n -= 4;
    }
#endif
    for (; n > 0; --n) {
        acc += (int32_t)*a++ * (int32_t)*b++;
    }
    return acc;
}

/* Four dot products of one input vector x with four weight rows w, w + stride, w + 2*stride, w + 3*stride:
 * the input is loaded (and, on the DSP path, sign-extended) once for four output channels. */
static inline void bs_nn_dot4_s8(const int8_t *x, const int8_t *w, int32_t stride, int32_t n, int32_t acc[4])
{
    const int8_t *w0 = w, *w1 = w + stride, *w2 = w + 2 * stride, *w3 = w + 3 * stride;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t i = 0;
#if BS_NN_USE_DSP
    for (; i + 4 <= n; i += 4) {
        const uint32_t wx = bs_nn_read_u32(x + i);
        const int16x2_t x02 = __sxtb16((int8x4_t)wx);
        const int16x2_t x13 = __sxtb16((int8x4_t)((wx >> 8) | (wx << 24)));
        uint32_t ww = bs_nn_read_u32(w0 + i);
        a0 = __smlad(x02, __sxtb16((int8x4_t)ww), a0);
        a0 = __smlad(x13, __sxtb16((int8x4_t)((ww >> 8) | (ww << 24))), a0);
        ww = bs_nn_read_u32(w1 + i);
        a1 = __smlad(x02, __sxtb16((int8x4_t)ww), a1);
        a1 = __smlad(x13, __sxtb16((int8x4_t)((ww >> 8) | (ww << 24))), a1);
        ww = bs_nn_read_u32(w2 + i);
        a2 = __smlad(x02, __sxtb16((int8x4_t)ww), a2);
        a2 = __smlad(x13, __sxtb16((int8x4_t)((ww >> 8) | (ww << 24))), a2);
        ww = bs_nn_read_u32(w3 + i);
        a3 = __smlad(x02, __sxtb16((int8x4_t)ww), a3);
        a3 = __smlad(x13, __sxtb16((int8x4_t)((ww >> 8) | (ww << 24))), a3);
    }
#endif
    for (; i < n; ++i) {
        const int32_t xi = x[i];
        a0 += xi * w0[i];
        a1 += xi * w1[i];
        a2 += xi * w2[i];
        a3 += xi * w3[i];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Sum of n weights, for taps that fall into the padding. */
static inline int32_t bs_nn_sum_s8(const int8_t *w, int32_t n)
{
    int32_t s = 0;
    for (int32_t i = 0; i < n; ++i) {
        s += w[i];
    }
    return s;
}

static inline int8_t bs_nn_requantize(int32_t acc, int32_t multiplier, int32_t shift,
                                      int32_t output_offset, int32_t act_min, int32_t act_max)
{
    acc = bs_nn_mbqm(acc, multiplier, shift) + output_offset;
    return (int8_t)bs_nn_clamp(acc, act_min, act_max);
}

/* Host builds (cffi, x86-64 Linux, gcc) get an AVX2 clone of the block requantization, chosen when the
 * library loads (function multiversioning); the C is the same, so the bits are too. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define BS_NN_HOST_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define BS_NN_HOST_CLONES
#endif

/* Output channels are accumulated in blocks of this many int32 before one requantization pass. */
enum { BS_NN_REQ_BLOCK = 64 };

/* bs_nn_requantize over n consecutive channels, written without data-dependent branches so compilers
 * vectorize it (variable per-lane shifts). Multipliers are in [0, 2^31) (bs_nn_check), so
 * SaturatingRoundingDoublingHighMul's one saturating case (both operands INT32_MIN) cannot occur. */
BS_NN_HOST_CLONES
static void bs_nn_requantize_block(const int32_t *acc, const int32_t *mult, const int32_t *shift, int32_t n,
                                   int32_t off, int32_t lo, int32_t hi, int8_t *out)
{
    for (int32_t i = 0; i < n; ++i) {
        const int32_t s = shift[i];
        const int32_t left = s > 0 ? s : 0;
        const int32_t right = s > 0 ? 0 : -s;
        const int32_t x = (int32_t)((uint32_t)acc[i] << left);
        const int32_t h = (int32_t)bs_nn_asr64((int64_t)x * (int64_t)mult[i] + ((int64_t)1 << 30), 31);
        const int32_t mask = (int32_t)(((uint32_t)1 << right) - 1u);
        const int32_t remainder = h & mask;
        const int32_t threshold = (mask >> 1) + (h < 0 ? 1 : 0);
        int32_t v = bs_nn_asr32(h, right) + (remainder > threshold ? 1 : 0) + off;
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        out[i] = (int8_t)v;
    }
}

/* Longest CONV_2D filter (kernel_h x kernel_w x C taps) stored as weights16 (bs_nn.h); the two-pixel kernel
 * widens that many inputs of two pixels on the stack (2 KB at most). Mirrors lower.COL_MAX. */
enum { BS_NN_COL_MAX = 256 };

/* A requant row {m, r-1, K_lo, K_hi} applied to one accumulator: (acc*m + K - [acc<0]*2^31) >> (31 + r),
 * which is TFLite's MultiplyByQuantizedMultiplier(acc, m, -r) + output offset (derivation in
 * bowlsense.nn.fixedpoint.requant_table; r <= 20 keeps the 64-bit sum far from overflow). Not clamped. */
static inline int32_t bs_nn_requant_row(int32_t acc, const int32_t *q)
{
#if BS_NN_USE_DSP
    /* Two SMLALs: acc * m, then 1 * -2^31 when acc < 0, both into the 64-bit constant K. */
    uint32_t lo = (uint32_t)q[2];
    int32_t hi = q[3];
    __asm__("smlal %0, %1, %2, %3" : "+r"(lo), "+r"(hi) : "r"(acc), "r"(q[0]));
    __asm__("smlal %0, %1, %2, %3" : "+r"(lo), "+r"(hi) : "r"((uint32_t)acc >> 31), "r"(INT32_MIN));
    return bs_nn_asr32(hi, q[1]);
#else
    const int64_t k = (int64_t)q[3] * ((int64_t)1 << 32) + (int64_t)(uint32_t)q[2];
    const int64_t x = k + (int64_t)acc * (int64_t)q[0] - (acc < 0 ? ((int64_t)1 << 31) : 0);
    /* the high word, then a 32-bit shift: the same floor as one 64-bit shift by 32 + r - 1, without a
     * variable 64-bit shift (a library call on cores without one) */
    return bs_nn_asr32((int32_t)bs_nn_asr64(x, 32), q[1]);
#endif
}

/* Requantize n consecutive channels c0.. of layer L: through its requant table when it has one, else
 * bs_nn_requantize_block. */
BS_NN_HOST_CLONES
static void bs_nn_requantize_table(const int32_t *acc, const int32_t *q, int32_t n, int32_t lo, int32_t hi,
                                   int8_t *out)
{
    for (int32_t i = 0; i < n; ++i, q += 4) {
        int32_t v = bs_nn_requant_row(acc[i], q);
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        out[i] = (int8_t)v;
    }
}

static void bs_nn_requantize_layer(const bs_nn_layer *L, const int32_t *acc, int32_t c0, int32_t n, int8_t *out)
{
    if (L->requant != 0) {
        bs_nn_requantize_table(acc, L->requant + 4 * c0, n, L->act_min, L->act_max, out);
    } else {
        bs_nn_requantize_block(acc, L->multiplier + c0, L->shift + c0, n, L->output_offset, L->act_min,
                               L->act_max, out);
    }
}

/* One output channel's value from its accumulator, for kernels that requantize as they go. */
static inline int8_t bs_nn_requantize_one(const bs_nn_layer *L, int32_t oc, int32_t acc)
{
    int32_t v;
    if (L->requant != 0) {
        v = bs_nn_requant_row(acc, L->requant + 4 * oc);
    } else {
        v = bs_nn_mbqm(acc, L->multiplier[oc], L->shift[oc]) + L->output_offset;
    }
    return (int8_t)bs_nn_clamp(v, L->act_min, L->act_max);
}

/* ---------------------------------------------------------------------------------------------- */
/* Cortex-M DSP matrix kernel (CMSIS-NN's idea: widen the input once, two channels x two pixels)  */

#if BS_NN_USE_DSP
/* SXTB16 of bytes 1 and 3: one SXTB16 with its built-in rotate (gcc does not fold a separate ROR into it,
 * and arm_acle.h has no rotating form). */
static inline int16x2_t bs_nn_sxtb16_13(uint32_t x)
{
    int16x2_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* Requantization of one accumulator without a requant table, TFLite's MultiplyByQuantizedMultiplier + offset +
 * clamp, written for Cortex-M4 (one SMLAL, no division, no 64-bit shifts):
 *   h = SaturatingRoundingDoublingHighMul(acc << left, m) = (x * m + 2^30) >> 31 (exact: m is in
 *       [0, 2^31), so the saturating case cannot occur and h > INT32_MIN);
 *   RoundingDivideByPOT(h, r) for r = -s >= 1 is round-half-away-from-zero of h / 2^r, which equals
 *       t = (h - [h < 0]) >> (r - 1), then (t >> 1) + (t & 1). */
static inline int32_t bs_nn_requantize_dsp(int32_t acc, int32_t m, int32_t s, int32_t off, int32_t lo, int32_t hi)
{
    const int32_t left = s & ~(s >> 31); /* max(s, 0) */
    const int32_t x = (int32_t)((uint32_t)acc << left);
    int32_t h = (int32_t)bs_nn_asr64((int64_t)x * (int64_t)m + ((int64_t)1 << 30), 31);
    if (s < 0) {
        const int32_t t = bs_nn_asr32(h + bs_nn_asr32(h, 31), ~s); /* ~s = r - 1, in 0..30 */
        h = bs_nn_asr32(t, 1) + (t & 1);
    }
    h += off;
    h = h < lo ? lo : h;
    return h > hi ? hi : h;
}

/* How a layer requantizes on this path: with its table and the clamp to the int8 range only (one SSAT; the
 * student's every layer), with its table and the activation clamp, or without a table. */
enum { BS_NN_RQ_TABLE_S8 = 0, BS_NN_RQ_TABLE = 1, BS_NN_RQ_GENERAL = 2 };

static int bs_nn_requant_mode(const bs_nn_layer *L)
{
    if (L->requant == 0) {
        return BS_NN_RQ_GENERAL;
    }
    return L->act_min == -128 && L->act_max == 127 ? BS_NN_RQ_TABLE_S8 : BS_NN_RQ_TABLE;
}

static inline int8_t bs_nn_requantize_one_dsp(const bs_nn_layer *L, int32_t oc, int32_t acc, int mode)
{
    if (mode == BS_NN_RQ_TABLE_S8) {
        return (int8_t)__ssat(bs_nn_requant_row(acc, L->requant + 4 * oc), 8);
    }
    if (mode == BS_NN_RQ_TABLE) {
        return (int8_t)bs_nn_clamp(bs_nn_requant_row(acc, L->requant + 4 * oc), L->act_min, L->act_max);
    }
    return (int8_t)bs_nn_requantize_dsp(acc, L->multiplier[oc], L->shift[oc], L->output_offset, L->act_min,
                                        L->act_max);
}

/* n consecutive channels c0.. of one pixel: a loop of its own so the mode test leaves the inner loop. */
static void bs_nn_requantize_block_dsp(const bs_nn_layer *L, const int32_t *acc, int32_t c0, int32_t n, int mode,
                                       int8_t *out)
{
    if (mode == BS_NN_RQ_TABLE_S8) {
        const int32_t *q = L->requant + 4 * c0;
        for (int32_t i = 0; i < n; ++i, q += 4) {
            out[i] = (int8_t)__ssat(bs_nn_requant_row(acc[i], q), 8);
        }
        return;
    }
    for (int32_t i = 0; i < n; ++i) {
        out[i] = bs_nn_requantize_one_dsp(L, c0 + i, acc[i], mode);
    }
}

/* Widens the k filter inputs of two pixels (int8; x1 may equal x0) into int16 pairs in the order SXTB16
 * produces from a word, which is the order of weights16: per group of 4 inputs the words (x0[0], x0[2]),
 * (x0[1], x0[3]), (x1[0], x1[2]), (x1[1], x1[3]). A last partial group is padded with zeros (its weights
 * are zero too). The raw int8 values, not offset: the input zero point is folded into the bias. */
static void bs_nn_widen_pair(const int8_t *x0, const int8_t *x1, int32_t k, uint32_t *col)
{
    int32_t i = 0;
    for (; i + 4 <= k; i += 4, col += 4) {
        const uint32_t a = bs_nn_read_u32(x0 + i), b = bs_nn_read_u32(x1 + i);
        col[0] = (uint32_t)__sxtb16((int8x4_t)a);
        col[1] = (uint32_t)bs_nn_sxtb16_13(a);
        col[2] = (uint32_t)__sxtb16((int8x4_t)b);
        col[3] = (uint32_t)bs_nn_sxtb16_13(b);
    }
    if (i < k) {
        uint32_t a = 0, b = 0;
        for (int32_t j = 0; i + j < k; ++j) {
            a |= (uint32_t)(uint8_t)x0[i + j] << (8 * j);
            b |= (uint32_t)(uint8_t)x1[i + j] << (8 * j);
        }
        col[0] = (uint32_t)__sxtb16((int8x4_t)a);
        col[1] = (uint32_t)bs_nn_sxtb16_13(a);
        col[2] = (uint32_t)__sxtb16((int8x4_t)b);
        col[3] = (uint32_t)bs_nn_sxtb16_13(b);
    }
}

/* One group of 4 taps for two channels x two pixels: two LDRDs bring the group's widened inputs of both pixels
 * (p02, p13, q02, q13), each further LDRD one channel's two weight words; 8 SMLADs, 16 MACs in 12
 * instructions. (The layers of the common case run bs_nn_pairs_s8_m4, which loads the inputs with one LDM.) */
#define BS_NN_MAC2X2_GROUP                                  \
    "ldrd %[p0], %[p1], [%[c]], #8\n\t"                     \
    "ldrd %[q0], %[q1], [%[c]], #8\n\t"                     \
    "ldrd %[x], %[y], [%[w]], #8\n\t"                       \
    "smlad %[a00], %[x], %[p0], %[a00]\n\t"                 \
    "smlad %[a00], %[y], %[p1], %[a00]\n\t"                 \
    "smlad %[a01], %[x], %[q0], %[a01]\n\t"                 \
    "smlad %[a01], %[y], %[q1], %[a01]\n\t"                 \
    "ldrd %[x], %[y], [%[w]], #8\n\t"                       \
    "smlad %[a10], %[x], %[p0], %[a10]\n\t"                 \
    "smlad %[a10], %[y], %[p1], %[a10]\n\t"                 \
    "smlad %[a11], %[x], %[q0], %[a11]\n\t"                 \
    "smlad %[a11], %[y], %[q1], %[a11]\n\t"

/* acc {a00, a01, a10, a11} (a<channel><pixel>) += weights16 block w of a channel pair . col, over `groups`
 * groups of 4 taps (>= 1). Two groups per loop pass after an odd first one.
 *
 * Overflow: each SMLAD adds two products of int8 values (|p| <= 2^14) to the int32 sum; a filter of k <=
 * BS_NN_COL_MAX taps adds at most k x 2^14 to the folded bias, far inside int32, so the sum is exact and
 * equals the reference's in any order. */
static inline void bs_nn_mac2x2_dsp(const uint32_t *col, const int16_t *w, int32_t groups, int32_t acc[4])
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    uint32_t x, y, p0, p1, q0, q1;
    __asm__ volatile(
        "lsrs %[n], %[n], #1\n\t"
        "bcc 2f\n\t"
        BS_NN_MAC2X2_GROUP
        "2:\n\t"
        "cmp %[n], #0\n\t"
        "beq 3f\n\t"
        "1:\n\t"
        BS_NN_MAC2X2_GROUP
        BS_NN_MAC2X2_GROUP
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "3:\n\t"
        : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [c] "+r"(col), [w] "+r"(w),
          [n] "+r"(groups), [x] "=&r"(x), [y] "=&r"(y), [p0] "=&r"(p0), [p1] "=&r"(p1), [q0] "=&r"(q0),
          [q1] "=&r"(q1)
        :
        : "cc", "memory");
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* The odd last channel of a layer: one channel x two pixels (weights16: 4 values per group). */
static inline void bs_nn_mac1x2_dsp(const uint32_t *col, const int16_t *w, int32_t groups, int32_t acc[2])
{
    int32_t a0 = acc[0], a1 = acc[1];
    for (; groups > 0; --groups, col += 4, w += 4) {
        const uint32_t x = bs_nn_read_u32((const int8_t *)w), y = bs_nn_read_u32((const int8_t *)(w + 2));
        a0 = __smlad((int16x2_t)x, (int16x2_t)col[0], a0);
        a0 = __smlad((int16x2_t)y, (int16x2_t)col[1], a0);
        a1 = __smlad((int16x2_t)x, (int16x2_t)col[2], a1);
        a1 = __smlad((int16x2_t)y, (int16x2_t)col[3], a1);
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Cortex-M4 assembly kernels for the two hot loops (gcc spills around inline assembly that needs 13 of the 14
 * registers, so these own all of them). Each takes one argument block; bit-exactness is that of the C they
 * replace: the same SMLAD/SMLABB sums (exact in int32, see bs_nn_mac2x2_dsp) and bs_nn_requant_row. */

/* bs_nn_requant_row + SSAT + STRB of accumulator ACC with its requant row {m, r-1, K_lo, K_hi} already in
 * r4..r7 and -2^31 in register NEG: 6 instructions, ACC, r6 and r7 consumed. */
#define BS_NN_ASM_RQ(ACC, NEG, STORE)     \
    "smlal r6, r7, " ACC ", r4\n\t"       \
    "lsr " ACC ", " ACC ", #31\n\t"       \
    "smlal r6, r7, " ACC ", " NEG "\n\t"  \
    "asr r7, r7, r5\n\t"                  \
    "ssat r7, #8, r7\n\t"                 \
    STORE "\n\t"

/* The same where no register is free for -2^31: r4 (m) becomes it after the first SMLAL. 7 instructions. */
#define BS_NN_ASM_RQ_R4(ACC, STORE)       \
    "smlal r6, r7, " ACC ", r4\n\t"       \
    "mov r4, #0x80000000\n\t"             \
    "lsr " ACC ", " ACC ", #31\n\t"       \
    "smlal r6, r7, " ACC ", r4\n\t"       \
    "asr r7, r7, r5\n\t"                  \
    "ssat r7, #8, r7\n\t"                 \
    STORE "\n\t"

/* One group of 4 taps of the two-channel x two-pixel kernel (bs_nn_mac2x2_dsp with fixed registers): r4..r7 the
 * widened inputs (p02, p13, q02, q13), r8 r9 one channel's weight words, r0..r3 a00 a01 a10 a11. */
#define BS_NN_MAC2X2_ASM                  \
    "ldmia r10!, {r4, r5, r6, r7}\n\t"    \
    "ldrd r8, r9, [r11], #8\n\t"          \
    "smlad r0, r8, r4, r0\n\t"            \
    "smlad r0, r9, r5, r0\n\t"            \
    "smlad r1, r8, r6, r1\n\t"            \
    "smlad r1, r9, r7, r1\n\t"            \
    "ldrd r8, r9, [r11], #8\n\t"          \
    "smlad r2, r8, r4, r2\n\t"            \
    "smlad r2, r9, r5, r2\n\t"            \
    "smlad r3, r8, r6, r3\n\t"            \
    "smlad r3, r9, r7, r3\n\t"

/* One 3x3 depthwise tap of 4 channels: the tap's input pointer (taps[OFF / 4]), its 4 int8 inputs at byte c
 * (r9), the two pre-widened weight words; SXTB16 splits inputs into (c0, c2), (c1, c3). */
#define BS_NN_ASM_DW_TAP(OFF)             \
    "ldr r4, [r8, #" OFF "]\n\t"          \
    "ldr r5, [r4, r9]\n\t"                \
    "ldrd r6, r7, [r10], #8\n\t"          \
    "sxtb16 r4, r5\n\t"                   \
    "sxtb16 r5, r5, ror #8\n\t"           \
    "smlabb r0, r4, r6, r0\n\t"           \
    "smlatt r2, r4, r6, r2\n\t"           \
    "smlabb r1, r5, r7, r1\n\t"           \
    "smlatt r3, r5, r7, r3\n\t"

/* Arguments of bs_nn_dw3x3_s8_m4: one output pixel of a 3x3 depthwise layer with weights16 and a requant table
 * (BS_NN_RQ_TABLE_S8), oc channels (a multiple of 4). */
typedef struct {
    const int8_t *const *taps; /* 9 input pixel pointers (bs_nn_depthwise_taps) */
    const uint32_t *w;         /* weights16: per group of 4 channels, 9 taps x 2 words */
    const int32_t *bias;
    const int32_t *q;          /* requant rows */
    int8_t *o;
    int32_t oc;
} bs_nn_dw3x3_args;

void bs_nn_dw3x3_s8_m4(const bs_nn_dw3x3_args *args);

/* r0..r3 accumulators (LDM of 4 biases), r4..r7 scratch, r8 taps, r9 channel offset, r10 weights, r11 biases,
 * r12 requant rows, lr output; the channel count on the stack. 118 instructions per 4 channels (36 MACs and 4
 * requantizations). */
__asm__(".syntax unified\n\t"
        ".section .text.bs_nn_dw3x3_s8_m4,\"ax\",%progbits\n\t"
        ".align 2\n\t"
        ".global bs_nn_dw3x3_s8_m4\n\t"
        ".hidden bs_nn_dw3x3_s8_m4\n\t"
        ".thumb\n\t"
        ".thumb_func\n\t"
        ".type bs_nn_dw3x3_s8_m4, %function\n"
        "bs_nn_dw3x3_s8_m4:\n\t"
        "push {r4-r11, lr}\n\t"
        "ldr r4, [r0, #20]\n\t"
        "ldr r8, [r0, #0]\n\t"
        "ldr r10, [r0, #4]\n\t"
        "ldr r11, [r0, #8]\n\t"
        "ldr r12, [r0, #12]\n\t"
        "ldr lr, [r0, #16]\n\t"
        "push {r4}\n\t"
        "movs r9, #0\n"
        "1:\n\t"
        "ldmia r11!, {r0, r1, r2, r3}\n\t"
        BS_NN_ASM_DW_TAP("0") BS_NN_ASM_DW_TAP("4") BS_NN_ASM_DW_TAP("8") BS_NN_ASM_DW_TAP("12")
        BS_NN_ASM_DW_TAP("16") BS_NN_ASM_DW_TAP("20") BS_NN_ASM_DW_TAP("24") BS_NN_ASM_DW_TAP("28")
        BS_NN_ASM_DW_TAP("32")
        "ldmia r12!, {r4, r5, r6, r7}\n\t" BS_NN_ASM_RQ_R4("r0", "strb r7, [lr], #1")
        "ldmia r12!, {r4, r5, r6, r7}\n\t" BS_NN_ASM_RQ_R4("r1", "strb r7, [lr], #1")
        "ldmia r12!, {r4, r5, r6, r7}\n\t" BS_NN_ASM_RQ_R4("r2", "strb r7, [lr], #1")
        "ldmia r12!, {r4, r5, r6, r7}\n\t" BS_NN_ASM_RQ_R4("r3", "strb r7, [lr], #1")
        "adds r9, r9, #4\n\t"
        "ldr r4, [sp]\n\t"
        "cmp r9, r4\n\t"
        "blt 1b\n\t"
        "add sp, sp, #4\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size bs_nn_dw3x3_s8_m4, .-bs_nn_dw3x3_s8_m4\n\t"
        ".text");

/* Arguments of bs_nn_pairs_s8_m4: all output channels (pairs of them) of two pixels from their widened
 * inputs, weights16 and a requant table (BS_NN_RQ_TABLE_S8). The pointers advance as the kernel runs. */
typedef struct {
    const int32_t *bias;
    const int32_t *q;          /* requant rows */
    int8_t *o0, *o1;           /* o1 may equal o0 (then both pixels' inputs are the same) */
    const uint32_t *col;       /* bs_nn_widen_pair */
    int32_t groups;            /* kp / 4 >= 1 */
    int32_t pairs;             /* OC / 2 >= 1 */
    const int16_t *w;          /* weights16 */
} bs_nn_pairs_args;

void bs_nn_pairs_s8_m4(bs_nn_pairs_args *args);

/* The assembly reads these structs at fixed offsets (C99 has no static_assert: a negative array size fails). */
typedef char bs_nn_pairs_args_layout[(offsetof(bs_nn_pairs_args, groups) == 20 && offsetof(bs_nn_pairs_args, w) == 28 &&
                                      sizeof(void *) == 4) ? 1 : -1];
typedef char bs_nn_dw3x3_args_layout[(offsetof(bs_nn_dw3x3_args, o) == 16 && offsetof(bs_nn_dw3x3_args, oc) == 20)
                                         ? 1 : -1];

/* r0..r3 accumulators a00 a01 a10 a11 (a<channel><pixel>), r4..r7 the group's widened inputs (LDM), r8 r9 a
 * channel's two weight words, r10 col, r11 weights, r12 group count, lr the argument block. */
__asm__(".syntax unified\n\t"
        ".section .text.bs_nn_pairs_s8_m4,\"ax\",%progbits\n\t"
        ".align 2\n\t"
        ".global bs_nn_pairs_s8_m4\n\t"
        ".hidden bs_nn_pairs_s8_m4\n\t"
        ".thumb\n\t"
        ".thumb_func\n\t"
        ".type bs_nn_pairs_s8_m4, %function\n"
        "bs_nn_pairs_s8_m4:\n\t"
        "push {r4-r11, lr}\n\t"
        "mov lr, r0\n\t"
        "ldr r11, [lr, #28]\n"
        "1:\n\t"
        "ldr r12, [lr, #0]\n\t"
        "ldrd r0, r2, [r12], #8\n\t"
        "str r12, [lr, #0]\n\t"
        "mov r1, r0\n\t"
        "mov r3, r2\n\t"
        "ldr r10, [lr, #16]\n\t"
        "ldr r12, [lr, #20]\n\t"
        "lsrs r12, r12, #1\n\t"
        "bcc 2f\n\t"
        BS_NN_MAC2X2_ASM
        "2:\n\t"
        "cmp r12, #0\n\t"
        "beq 4f\n"
        "3:\n\t"
        BS_NN_MAC2X2_ASM
        BS_NN_MAC2X2_ASM
        "subs r12, r12, #1\n\t"
        "bne 3b\n"
        "4:\n\t"
        "ldr r12, [lr, #4]\n\t"
        "ldr r9, [lr, #8]\n\t"
        "ldr r10, [lr, #12]\n\t"
        "mov r8, #0x80000000\n\t"
        "ldmia r12!, {r4, r5, r6, r7}\n\t" BS_NN_ASM_RQ("r0", "r8", "strb r7, [r9], #1")
        "ldrd r6, r7, [r12, #-8]\n\t" BS_NN_ASM_RQ("r1", "r8", "strb r7, [r10], #1")
        "ldmia r12!, {r4, r5, r6, r7}\n\t" BS_NN_ASM_RQ("r2", "r8", "strb r7, [r9], #1")
        "ldrd r6, r7, [r12, #-8]\n\t" BS_NN_ASM_RQ("r3", "r8", "strb r7, [r10], #1")
        "str r12, [lr, #4]\n\t"
        "str r9, [lr, #8]\n\t"
        "str r10, [lr, #12]\n\t"
        "ldr r12, [lr, #24]\n\t"
        "subs r12, r12, #1\n\t"
        "str r12, [lr, #24]\n\t"
        "bne 1b\n\t"
        "str r11, [lr, #28]\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size bs_nn_pairs_s8_m4, .-bs_nn_pairs_s8_m4\n\t"
        ".text");

/* bs_nn_pair16_dsp for a layer with a requant table and the int8 clamp (BS_NN_RQ_TABLE_S8): each channel's
 * row {m, r-1, K} is loaded once for both pixels, and its four outputs need no per-output dispatch. o1 is
 * never NULL here (the caller passes o0 for a missing second pixel, whose inputs, and so outputs, then equal
 * the first's). */
static void bs_nn_pair16_s8_dsp(const int32_t *bias, const int16_t *w, const int32_t *q, const uint32_t *col,
                                int32_t kp, int32_t OC, int8_t *o0, int8_t *o1)
{
    const int32_t groups = kp >> 2;
    const int32_t oc = OC & ~1;
    if (oc > 0) {
        bs_nn_pairs_args args = {bias, q, o0, o1, col, groups, OC >> 1, w};
        bs_nn_pairs_s8_m4(&args);
        w = args.w;
        q += 4 * oc;
    }
    if (oc < OC) {
        int32_t acc[2] = {bias[oc], bias[oc]};
        bs_nn_mac1x2_dsp(col, w, groups, acc);
        o0[oc] = (int8_t)__ssat(bs_nn_requant_row(acc[0], q), 8);
        o1[oc] = (int8_t)__ssat(bs_nn_requant_row(acc[1], q), 8);
    }
}

/* All OC outputs of two pixels from their widened inputs col (bs_nn_widen_pair, kp = k rounded up to 4)
 * with the layer's weights16: two channels x two pixels per pass, each requantized as soon as its sum is
 * done. o1 may be NULL (odd last pixel: its outputs are computed and dropped). */
static void bs_nn_pair16_dsp(const bs_nn_layer *L, const uint32_t *col, int32_t kp, int32_t OC, int mode,
                             int8_t *o0, int8_t *o1)
{
    const int32_t *const bias = L->bias;
    const int16_t *w = L->weights16;
    const int32_t groups = kp >> 2;
    if (mode == BS_NN_RQ_TABLE_S8) {
        bs_nn_pair16_s8_dsp(bias, w, L->requant, col, kp, OC, o0, o1 != 0 ? o1 : o0);
        return;
    }
    int32_t oc = 0;
    for (; oc + 2 <= OC; oc += 2, w += 2 * kp) {
        int32_t acc[4] = {bias[oc], bias[oc], bias[oc + 1], bias[oc + 1]};
        bs_nn_mac2x2_dsp(col, w, groups, acc);
        o0[oc] = bs_nn_requantize_one_dsp(L, oc, acc[0], mode);
        o0[oc + 1] = bs_nn_requantize_one_dsp(L, oc + 1, acc[2], mode);
        if (o1 != 0) {
            o1[oc] = bs_nn_requantize_one_dsp(L, oc, acc[1], mode);
            o1[oc + 1] = bs_nn_requantize_one_dsp(L, oc + 1, acc[3], mode);
        }
    }
    if (oc < OC) {
        int32_t acc[2] = {bias[oc], bias[oc]};
        bs_nn_mac1x2_dsp(col, w, groups, acc);
        o0[oc] = bs_nn_requantize_one_dsp(L, oc, acc[0], mode);
        if (o1 != 0) {
            o1[oc] = bs_nn_requantize_one_dsp(L, oc, acc[1], mode);
        }
    }
}
#endif

/* ---------------------------------------------------------------------------------------------- */
/* Kernels                                                                                         */

/* Patches up to this many bytes are gathered on the stack (with padding filled in), so one contiguous
 * dot product per output channel covers the whole filter. */
enum { BS_NN_PATCH_MAX = 1024 };

/* Output channels of one pixel from a contiguous patch of k bytes (int8 weights [OC][k]). */
static void bs_nn_conv_pixel(const bs_nn_layer *L, const int8_t *patch, int32_t k, int32_t OC, int8_t *o)
{
    const int32_t *const bias = L->bias;
    const int8_t *const weights = L->weights;
    int32_t acc[BS_NN_REQ_BLOCK];
    for (int32_t oc0 = 0; oc0 < OC; oc0 += BS_NN_REQ_BLOCK) {
        const int32_t n = OC - oc0 < BS_NN_REQ_BLOCK ? OC - oc0 : BS_NN_REQ_BLOCK;
        int32_t j = 0;
        for (; j + 4 <= n; j += 4) {
            const int32_t oc = oc0 + j;
            acc[j] = bias[oc];
            acc[j + 1] = bias[oc + 1];
            acc[j + 2] = bias[oc + 2];
            acc[j + 3] = bias[oc + 3];
            bs_nn_dot4_s8(patch, weights + oc * k, k, k, acc + j);
        }
        for (; j < n; ++j) {
            acc[j] = bs_nn_dot_s8(patch, weights + (oc0 + j) * k, k, bias[oc0 + j]);
        }
        bs_nn_requantize_layer(L, acc, oc0, n, o + oc0);
    }
}

/* Output channels of one pixel from a contiguous patch of k <= BS_NN_COL_MAX bytes with the layer's
 * weights16 (portable C: host and cores without the DSP extension). */
static void bs_nn_conv_pixel16(const bs_nn_layer *L, const int8_t *x, int32_t k, int32_t OC, int8_t *o)
{
    const int32_t kp = (k + 3) & ~3;
    int8_t xp[BS_NN_COL_MAX]; /* the patch with its last group padded with zeros */
    int32_t acc[BS_NN_REQ_BLOCK];
    for (int32_t i = 0; i < kp; ++i) {
        xp[i] = i < k ? x[i] : 0;
    }
    for (int32_t oc0 = 0; oc0 < OC; oc0 += BS_NN_REQ_BLOCK) {
        const int32_t n = OC - oc0 < BS_NN_REQ_BLOCK ? OC - oc0 : BS_NN_REQ_BLOCK; /* even unless the last */
        for (int32_t j = 0; j < n; j += 2) {
            const int32_t oc = oc0 + j;
            const int16_t *w = L->weights16 + oc * kp;
            if (oc + 1 < OC) {
                int32_t a = L->bias[oc], b = L->bias[oc + 1];
                for (int32_t i = 0; i < kp; i += 4, w += 8) {
                    a += w[0] * xp[i] + w[1] * xp[i + 2] + w[2] * xp[i + 1] + w[3] * xp[i + 3];
                    b += w[4] * xp[i] + w[5] * xp[i + 2] + w[6] * xp[i + 1] + w[7] * xp[i + 3];
                }
                acc[j] = a;
                acc[j + 1] = b;
            } else {
                int32_t a = L->bias[oc];
                for (int32_t i = 0; i < kp; i += 4, w += 4) {
                    a += w[0] * xp[i] + w[1] * xp[i + 2] + w[2] * xp[i + 1] + w[3] * xp[i + 3];
                }
                acc[j] = a;
            }
        }
        bs_nn_requantize_layer(L, acc, oc0, n, o + oc0);
    }
}

/* A 1x1 stride-1 convolution whose output occupies its input's buffer. Pixels run forward when the output
 * pixel is no wider than the input pixel (a write only covers input pixels already read) and backward
 * otherwise (a write only covers input pixels at or after its own, all already read). */
static void bs_nn_pointwise_in_place_s8(const bs_nn_layer *L, int32_t pixels, int32_t C, int32_t OC, int8_t *buf)
{
    const int forward = OC <= C;
#if BS_NN_USE_DSP
    if (L->weights16 != 0) {
        /* Two pixels at a time, widened into col before either output is written: the outputs of pixels
         * p, p + 1 cover only input pixels already read (forward: at or before p + 1; backward, pairs
         * (p - 1, p) in descending order: at or after p - 1). */
        uint32_t col[BS_NN_COL_MAX];
        const int mode = bs_nn_requant_mode(L);
        for (int32_t i = 0; i < pixels; i += 2) {
            const int two = i + 1 < pixels;
            int32_t p = forward ? i : pixels - 2 - i;
            if (!two) {
                p = forward ? i : 0;
            }
            const int8_t *x0 = buf + p * C, *x1 = two ? x0 + C : x0;
            bs_nn_widen_pair(x0, x1, C, col);
            bs_nn_pair16_dsp(L, col, (C + 3) & ~3, OC, mode, buf + p * OC, two ? buf + (p + 1) * OC : 0);
        }
        return;
    }
#endif
    int8_t tmp[BS_NN_PATCH_MAX];
    for (int32_t i = 0; i < pixels; ++i) {
        const int32_t p = forward ? i : pixels - 1 - i;
        if (L->weights != 0) {
            bs_nn_conv_pixel(L, buf + p * C, C, OC, tmp);
        } else {
            bs_nn_conv_pixel16(L, buf + p * C, C, OC, tmp);
        }
        for (int32_t c = 0; c < OC; ++c) {
            buf[p * OC + c] = tmp[c];
        }
    }
}

/*
 * TFLite's ConvPerChannel accumulates filter * (input + input_offset) over the taps inside the
 * image. Here bias[oc] already holds bias + input_offset * sum(all taps of oc), so the inner loop is
 * a plain int8 dot product; a tap in the padding contributes filter * (-input_offset), which cancels
 * its share of the folded term exactly (the gathered patch holds -input_offset there).
 */
/* The filter window of one output pixel, input row iy0 / column ix0 at its top left, gathered into patch
 * (kh x kw x C bytes), with -input_offset where the window lies in the padding. */
static void bs_nn_gather_patch(const bs_nn_layer *L, const bs_nn_tensor *ti, const int8_t *in, int32_t iy0,
                               int32_t ix0, int8_t *p)
{
    const int32_t H = ti->h, W = ti->w, C = ti->c;
    const int8_t pad = (int8_t)(-L->input_offset);
    const int32_t kh = L->kernel_h, span = L->kernel_w * C; /* bytes of one filter row */
    if (L->dilation_w == 1 && iy0 >= 0 && iy0 + (kh - 1) * L->dilation_h < H && ix0 >= 0 && ix0 + L->kernel_w <= W) {
        /* the window lies inside the image: kernel_h contiguous runs (the stem: 3 runs of 3 bytes) */
        const int8_t *src = in + (iy0 * W + ix0) * C;
        const int32_t step = L->dilation_h * W * C;
        if (span == 3) { /* a 1-channel 3-wide filter (the stem): the run unrolled */
            for (int32_t ky = 0; ky < kh; ++ky, src += step, p += 3) {
                p[0] = src[0];
                p[1] = src[1];
                p[2] = src[2];
            }
            return;
        }
        for (int32_t ky = 0; ky < kh; ++ky, src += step, p += span) {
            for (int32_t i = 0; i < span; ++i) {
                p[i] = src[i];
            }
        }
        return;
    }
    for (int32_t ky = 0; ky < L->kernel_h; ++ky) {
        const int32_t iy = iy0 + ky * L->dilation_h;
        for (int32_t kx = 0; kx < L->kernel_w; ++kx, p += C) {
            const int32_t ix = ix0 + kx * L->dilation_w;
            if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                const int8_t *src = in + (iy * W + ix) * C;
                for (int32_t c = 0; c < C; ++c) {
                    p[c] = src[c];
                }
            } else {
                for (int32_t c = 0; c < C; ++c) {
                    p[c] = pad;
                }
            }
        }
    }
}

#if BS_NN_USE_DSP
/* bs_nn_widen_pair of two 3x3 windows of a 1-channel image (top-left pixels a and b, rows `stride` bytes
 * apart) read straight from the image: taps t0..t8 (row by row) make the groups (t0 t1 t2 t3), (t4 t5 t6 t7),
 * (t8 0 0 0), each as the int16 pairs (x0, x2), (x1, x3) that SXTB16 would give. */
static void bs_nn_widen_stem_pair(const int8_t *a, const int8_t *b, int32_t stride, uint32_t *col)
{
    for (int32_t px = 0; px < 2; ++px, a = b) {
        const int8_t *r0 = a, *r1 = a + stride, *r2 = a + 2 * stride;
        uint32_t *c = col + 2 * px; /* pixel 0 in words 0, 1 of each group, pixel 1 in words 2, 3 */
        c[0] = (uint32_t)(uint16_t)r0[0] | ((uint32_t)(uint16_t)r0[2] << 16);
        c[1] = (uint32_t)(uint16_t)r0[1] | ((uint32_t)(uint16_t)r1[0] << 16);
        c[4] = (uint32_t)(uint16_t)r1[1] | ((uint32_t)(uint16_t)r2[0] << 16);
        c[5] = (uint32_t)(uint16_t)r1[2] | ((uint32_t)(uint16_t)r2[1] << 16);
        c[8] = (uint32_t)(uint16_t)r2[2];
        c[9] = 0;
    }
}

/* Output row oy of a convolution with weights16, two pixels at a time through bs_nn_pair16_dsp. */
static void bs_nn_conv_row_dsp(const bs_nn_layer *L, const bs_nn_tensor *ti, const bs_nn_tensor *to,
                               const int8_t *in, int32_t oy, int8_t *o)
{
    const int32_t W = ti->w, C = ti->c;
    const int32_t OW = to->w, OC = to->c;
    const int32_t k = L->kernel_h * L->kernel_w * C;
    const int pointwise = L->kernel_h == 1 && L->kernel_w == 1 && L->pad_top == 0 && L->pad_left == 0;
    const int32_t iy0 = oy * L->stride_h - L->pad_top;
    const int mode = bs_nn_requant_mode(L);
    /* a 1-channel 3x3 filter (the stem): windows inside the image go straight into col */
    const int stem = C == 1 && L->kernel_h == 3 && L->kernel_w == 3 && L->dilation_h == 1 && L->dilation_w == 1;
    uint32_t col[BS_NN_COL_MAX];
    int8_t patch[2 * BS_NN_COL_MAX];
    for (int32_t ox = 0; ox < OW; ox += 2, o += 2 * OC) {
        const int32_t ix0 = ox * L->stride_w - L->pad_left;
        const int two = ox + 1 < OW;
        const int32_t ix1 = two ? ix0 + L->stride_w : ix0;
        const int8_t *x0, *x1;
        if (stem && iy0 >= 0 && iy0 + 2 < ti->h && ix0 >= 0 && ix1 + 2 < W) {
            bs_nn_widen_stem_pair(in + iy0 * W + ix0, in + iy0 * W + ix1, W, col);
            bs_nn_pair16_dsp(L, col, 12, OC, mode, o, two ? o + OC : 0);
            continue;
        }
        if (pointwise) {
            x0 = in + (iy0 * W + ix0) * C;
            x1 = in + (iy0 * W + ix1) * C;
        } else {
            bs_nn_gather_patch(L, ti, in, iy0, ix0, patch);
            bs_nn_gather_patch(L, ti, in, iy0, ix1, patch + BS_NN_COL_MAX);
            x0 = patch;
            x1 = patch + BS_NN_COL_MAX;
        }
        bs_nn_widen_pair(x0, x1, k, col);
        bs_nn_pair16_dsp(L, col, (k + 3) & ~3, OC, mode, o, two ? o + OC : 0);
    }
}
#endif

/* Output row oy of a convolution into o (OW x OC bytes). */
static void bs_nn_conv_row_s8(const bs_nn_layer *L, const bs_nn_tensor *ti, const bs_nn_tensor *to,
                              const int8_t *in, int32_t oy, int8_t *o)
{
    const int32_t H = ti->h, W = ti->w, C = ti->c;
    const int32_t OW = to->w, OC = to->c;
    const int32_t kh = L->kernel_h, kw = L->kernel_w;
    const int32_t dh = L->dilation_h, dw = L->dilation_w;
    const int32_t pad_value = -L->input_offset;
    const int32_t filter_size = kh * kw * C;
    const int pointwise = kh == 1 && kw == 1 && L->pad_top == 0 && L->pad_left == 0;
    const int32_t iy0 = oy * L->stride_h - L->pad_top;
    int8_t patch[BS_NN_PATCH_MAX];

#if BS_NN_USE_DSP
    if (L->weights16 != 0) { /* filter_size <= BS_NN_COL_MAX (bs_nn_check) */
        bs_nn_conv_row_dsp(L, ti, to, in, oy, o);
        return;
    }
#else
    if (L->weights == 0) { /* weights16 only (an exported graph); filter_size <= BS_NN_COL_MAX */
        for (int32_t ox = 0; ox < OW; ++ox, o += OC) {
            const int32_t ix0 = ox * L->stride_w - L->pad_left;
            if (pointwise) {
                bs_nn_conv_pixel16(L, in + (iy0 * W + ix0) * C, C, OC, o);
            } else {
                bs_nn_gather_patch(L, ti, in, iy0, ix0, patch);
                bs_nn_conv_pixel16(L, patch, filter_size, OC, o);
            }
        }
        return;
    }
#endif
    for (int32_t ox = 0; ox < OW; ++ox, o += OC) {
        const int32_t ix0 = ox * L->stride_w - L->pad_left;
        if (pointwise) {
            bs_nn_conv_pixel(L, in + (iy0 * W + ix0) * C, C, OC, o);
        } else if (filter_size <= BS_NN_PATCH_MAX) {
            bs_nn_gather_patch(L, ti, in, iy0, ix0, patch);
            bs_nn_conv_pixel(L, patch, filter_size, OC, o);
        } else {
            /* Large filters: accumulate tap by tap straight from the input. */
            for (int32_t oc = 0; oc < OC; ++oc) {
                const int8_t *w = L->weights + oc * filter_size;
                int32_t acc = L->bias[oc];
                for (int32_t ky = 0; ky < kh; ++ky) {
                    const int32_t iy = iy0 + ky * dh;
                    for (int32_t kx = 0; kx < kw; ++kx) {
                        const int32_t ix = ix0 + kx * dw;
                        const int8_t *wt = w + (ky * kw + kx) * C;
                        if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                            acc = bs_nn_dot_s8(in + (iy * W + ix) * C, wt, C, acc);
                        } else {
                            acc += pad_value * bs_nn_sum_s8(wt, C);
                        }
                    }
                }
                o[oc] = bs_nn_requantize_one(L, oc, acc);
            }
        }
    }
}

static void bs_nn_conv_s8(const bs_nn_layer *L, const bs_nn_tensor *ti, const bs_nn_tensor *to,
                          const int8_t *in, int8_t *out)
{
    if ((const int8_t *)out == in) { /* planned in place: bs_nn_check verified it is a 1x1 stride-1 conv */
        bs_nn_pointwise_in_place_s8(L, ti->h * ti->w, ti->c, to->c, out);
        return;
    }
    for (int32_t oy = 0; oy < to->h; ++oy) {
        bs_nn_conv_row_s8(L, ti, to, in, oy, out + oy * to->w * to->c);
    }
}

/* A convolution fused into the depthwise layer after it: its output rows are computed on demand. */
typedef struct {
    const bs_nn_layer *layer;
    const bs_nn_tensor *input;
    const bs_nn_tensor *output;
    const int8_t *data;        /* the convolution's input in the arena */
} bs_nn_producer;

/* One output row of a depthwise convolution. rows[ky] points at the input row under filter row ky, or is
 * NULL in the padding. Output channel oc reads input channel oc / depth_multiplier. Weights [kh][kw][OC],
 * so one tap of BS_NN_DW_CHUNK channels is contiguous in both input (multiplier 1) and weights; or, when the
 * layer has weights16 (multiplier 1, OC a multiple of 4), per group of 4 channels and per tap t the int16
 * values w_t(c0), w_t(c2), w_t(c1), w_t(c3): SXTB16's order, so a group's taps are one contiguous run. */
enum { BS_NN_DW_MAX_TAPS = 64 };

/* The input pixel under each filter tap of output column ox (a row of pad values in the padding). */
static void bs_nn_depthwise_taps(const bs_nn_layer *L, const int8_t *const *rows, int32_t W, int32_t C, int32_t ox,
                                 const int8_t *pad, const int8_t **taps)
{
    const int32_t kh = L->kernel_h, kw = L->kernel_w, dw = L->dilation_w;
    const int32_t ix0 = ox * L->stride_w - L->pad_left;
    if (kh == 3 && kw == 3 && dw == 1 && ix0 >= 0 && ix0 + 2 < W && rows[0] != 0 && rows[1] != 0 && rows[2] != 0) {
        /* 3x3 inside the image (most pixels): three consecutive input pixels of each row */
        for (int32_t ky = 0; ky < 3; ++ky, taps += 3) {
            const int8_t *x = rows[ky] + ix0 * C;
            taps[0] = x;
            taps[1] = x + C;
            taps[2] = x + 2 * C;
        }
        return;
    }
    for (int32_t ky = 0; ky < kh; ++ky) {
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ix = ix0 + kx * dw;
            taps[ky * kw + kx] = (rows[ky] != 0 && ix >= 0 && ix < W) ? rows[ky] + ix * C : pad;
        }
    }
}

#if BS_NN_USE_DSP
/* Cortex-M with DSP, one output pixel, weights16: four channels at a time with the accumulators in registers.
 * One 32-bit load brings four channels of input; SXTB16 splits them into (c0, c2) and (c1, c3) halfword pairs,
 * which SMLABB / SMLATT multiply with the matching halves of the two pre-widened weight words (channels never
 * mix). 9 instructions per tap and 4 channels; each group is requantized as soon as it is done. */
static void bs_nn_depthwise_pixel16_dsp(const bs_nn_layer *L, const int8_t *const *taps, int32_t ntaps, int32_t OC,
                                        int mode, int8_t *o)
{
    const uint32_t *w = (const uint32_t *)(const void *)L->weights16;
    const int32_t *const bias = L->bias;
    for (int32_t c = 0; c < OC; c += 4) {
        int32_t a0 = bias[c], a1 = bias[c + 1], a2 = bias[c + 2], a3 = bias[c + 3];
        for (int32_t t = 0; t < ntaps; ++t, w += 2) {
            const uint32_t x = bs_nn_read_u32(taps[t] + c);
            const int32_t x02 = (int32_t)__sxtb16((int8x4_t)x), x13 = (int32_t)bs_nn_sxtb16_13(x);
            a0 = __smlabb(x02, (int32_t)w[0], a0);
            a2 = __smlatt(x02, (int32_t)w[0], a2);
            a1 = __smlabb(x13, (int32_t)w[1], a1);
            a3 = __smlatt(x13, (int32_t)w[1], a3);
        }
        o[c] = bs_nn_requantize_one_dsp(L, c, a0, mode);
        o[c + 1] = bs_nn_requantize_one_dsp(L, c + 1, a1, mode);
        o[c + 2] = bs_nn_requantize_one_dsp(L, c + 2, a2, mode);
        o[c + 3] = bs_nn_requantize_one_dsp(L, c + 3, a3, mode);
    }
}

/* bs_nn_depthwise_pixel16_dsp for the common case, a 3x3 filter requantized with a table to the int8 range
 * (BS_NN_RQ_TABLE_S8): the assembly kernel bs_nn_dw3x3_s8_m4. */
static void bs_nn_depthwise_pixel3x3_s8_dsp(const int32_t *bias, const uint32_t *w, const int32_t *q,
                                            const int8_t *const *taps, int32_t OC, int8_t *o)
{
    const bs_nn_dw3x3_args args = {taps, w, bias, q, o, OC};
    bs_nn_dw3x3_s8_m4(&args);
}

/* The same with int8 weights [taps][OC] (a graph without weights16): SXTB16 on the weights too. */
static inline void bs_nn_depthwise_group_dsp(const int8_t *const *taps, int32_t ntaps, const int8_t *wt, int32_t OC,
                                             int32_t c, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (int32_t t = 0; t < ntaps; ++t, wt += OC) {
        const uint32_t xw = bs_nn_read_u32(taps[t] + c);
        const uint32_t ww = bs_nn_read_u32(wt);
        const int16x2_t x02 = __sxtb16((int8x4_t)xw), x13 = bs_nn_sxtb16_13(xw);
        const int16x2_t w02 = __sxtb16((int8x4_t)ww), w13 = bs_nn_sxtb16_13(ww);
        a0 = __smlabb((int32_t)x02, (int32_t)w02, a0);
        a2 = __smlatt((int32_t)x02, (int32_t)w02, a2);
        a1 = __smlabb((int32_t)x13, (int32_t)w13, a1);
        a3 = __smlatt((int32_t)x13, (int32_t)w13, a3);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

static void bs_nn_depthwise_pixel_dsp(const bs_nn_layer *L, const int8_t *const *taps, int32_t ntaps, int32_t OC,
                                      int mode, int8_t *o)
{
    int32_t acc[BS_NN_REQ_BLOCK];
    for (int32_t c0 = 0; c0 < OC; c0 += BS_NN_REQ_BLOCK) {
        const int32_t n = OC - c0 < BS_NN_REQ_BLOCK ? OC - c0 : BS_NN_REQ_BLOCK; /* a multiple of 4 */
        for (int32_t j = 0; j < n; j += 4) {
            acc[j] = L->bias[c0 + j];
            acc[j + 1] = L->bias[c0 + j + 1];
            acc[j + 2] = L->bias[c0 + j + 2];
            acc[j + 3] = L->bias[c0 + j + 3];
            bs_nn_depthwise_group_dsp(taps, ntaps, L->weights + c0 + j, OC, c0 + j, acc + j);
        }
        bs_nn_requantize_block_dsp(L, acc, c0, n, mode, o + c0);
    }
}

static int bs_nn_depthwise_row_dsp(const bs_nn_layer *L, const int8_t *const *rows, int32_t W, int32_t C,
                                   int32_t OW, int32_t OC, int8_t *o)
{
    const int32_t ntaps = L->kernel_h * L->kernel_w;
    const int8_t *taps[BS_NN_DW_MAX_TAPS];
    int8_t pad[BS_NN_PATCH_MAX];
    if (L->depth_multiplier != 1 || (OC & 3) != 0 || ntaps > BS_NN_DW_MAX_TAPS || C > BS_NN_PATCH_MAX) {
        return 0;
    }
    for (int32_t c = 0; c < C; ++c) {
        pad[c] = (int8_t)(-L->input_offset);
    }
    const int mode = bs_nn_requant_mode(L);
    for (int32_t ox = 0; ox < OW; ++ox, o += OC) {
        bs_nn_depthwise_taps(L, rows, W, C, ox, pad, taps);
        if (L->weights16 != 0 && ntaps == 9 && mode == BS_NN_RQ_TABLE_S8) {
            bs_nn_depthwise_pixel3x3_s8_dsp(L->bias, (const uint32_t *)(const void *)L->weights16, L->requant, taps,
                                            OC, o);
        } else if (L->weights16 != 0) {
            bs_nn_depthwise_pixel16_dsp(L, taps, ntaps, OC, mode, o);
        } else {
            bs_nn_depthwise_pixel_dsp(L, taps, ntaps, OC, mode, o);
        }
    }
    return 1;
}
#endif

/* Portable depthwise row with weights16 (multiplier 1, OC a multiple of 4). */
static void bs_nn_depthwise_row16(const bs_nn_layer *L, const int8_t *const *rows, int32_t W, int32_t C,
                                  int32_t OW, int32_t OC, int8_t *o)
{
    const int32_t ntaps = L->kernel_h * L->kernel_w;
    const int8_t *taps[BS_NN_DW_MAX_TAPS];
    int8_t pad[BS_NN_PATCH_MAX];
    int32_t acc[4];
    for (int32_t c = 0; c < C; ++c) {
        pad[c] = (int8_t)(-L->input_offset);
    }
    for (int32_t ox = 0; ox < OW; ++ox, o += OC) {
        bs_nn_depthwise_taps(L, rows, W, C, ox, pad, taps);
        const int16_t *w = L->weights16;
        for (int32_t c = 0; c < OC; c += 4) {
            for (int32_t i = 0; i < 4; ++i) {
                acc[i] = L->bias[c + i];
            }
            for (int32_t t = 0; t < ntaps; ++t, w += 4) {
                const int8_t *x = taps[t] + c;
                acc[0] += w[0] * x[0];
                acc[2] += w[1] * x[2];
                acc[1] += w[2] * x[1];
                acc[3] += w[3] * x[3];
            }
            for (int32_t i = 0; i < 4; ++i) {
                o[c + i] = bs_nn_requantize_one(L, c + i, acc[i]);
            }
        }
    }
}


static void bs_nn_depthwise_row_s8(const bs_nn_layer *L, const int8_t *const *rows, int32_t W, int32_t C,
                                   int32_t OW, int32_t OC, int8_t *o)
{
#if BS_NN_USE_DSP
    if (bs_nn_depthwise_row_dsp(L, rows, W, C, OW, OC, o)) {
        return;
    }
#endif
    if (L->weights == 0) { /* weights16 only (an exported graph) */
        bs_nn_depthwise_row16(L, rows, W, C, OW, OC, o);
        return;
    }
    const int32_t kh = L->kernel_h, kw = L->kernel_w;
    const int32_t dw = L->dilation_w;
    const int32_t dm = L->depth_multiplier;
    const int32_t pad_value = -L->input_offset;
    int32_t acc[BS_NN_DW_CHUNK];

    for (int32_t ox = 0; ox < OW; ++ox, o += OC) {
        const int32_t ix0 = ox * L->stride_w - L->pad_left;
        for (int32_t c0 = 0; c0 < OC; c0 += BS_NN_DW_CHUNK) {
            const int32_t n = OC - c0 < BS_NN_DW_CHUNK ? OC - c0 : BS_NN_DW_CHUNK;
            for (int32_t i = 0; i < n; ++i) {
                acc[i] = L->bias[c0 + i];
            }
            for (int32_t ky = 0; ky < kh; ++ky) {
                for (int32_t kx = 0; kx < kw; ++kx) {
                    const int32_t ix = ix0 + kx * dw;
                    const int8_t *wt = L->weights + (ky * kw + kx) * OC + c0;
                    if (rows[ky] != 0 && ix >= 0 && ix < W) {
                        const int8_t *x = rows[ky] + ix * C;
                        if (dm == 1) {
                            x += c0;
                            for (int32_t i = 0; i < n; ++i) {
                                /* |w * x| <= 2^14 fits int16: lets a vectorizer multiply in 16-bit lanes */
                                acc[i] += (int16_t)(wt[i] * x[i]);
                            }
                        } else {
                            for (int32_t i = 0; i < n; ++i) {
                                acc[i] += (int32_t)wt[i] * (int32_t)x[(c0 + i) / dm];
                            }
                        }
                    } else {
                        for (int32_t i = 0; i < n; ++i) {
                            acc[i] += (int32_t)wt[i] * pad_value;
                        }
                    }
                }
            }
            bs_nn_requantize_layer(L, acc, c0, n, o + c0);
        }
    }
}

/* Depthwise convolution. Input rows come from one of three places: straight from the input tensor; from
 * a ring of kernel_h rows in the scratch tensor, copied there first, when the plan puts the output over
 * the input (output row oy is written over the start of the buffer, which bs_nn_check has verified only
 * covers input rows already copied); or from the same ring, computed there row by row by the convolution
 * fused into this layer (`producer`), whose output tensor then never exists in full. */
static void bs_nn_depthwise_s8(const bs_nn_layer *L, const bs_nn_tensor *ti, const bs_nn_tensor *to,
                               const int8_t *in, int8_t *out, int8_t *ring, const bs_nn_producer *producer)
{
    const int32_t H = ti->h, W = ti->w, C = ti->c;
    const int32_t OH = to->h, OW = to->w, OC = to->c;
    const int32_t kh = L->kernel_h, dh = L->dilation_h;
    const int32_t row_bytes = W * C;
    const int use_ring = producer != 0 || (const int8_t *)out == in;
    const int8_t *rows[16];
    int32_t next_row = 0;

    for (int32_t oy = 0; oy < OH; ++oy) {
        const int32_t iy0 = oy * L->stride_h - L->pad_top;
        if (use_ring) {
            const int32_t last = iy0 + (kh - 1) * dh < H - 1 ? iy0 + (kh - 1) * dh : H - 1;
            for (; next_row <= last; ++next_row) {
                int8_t *dst = ring + (next_row % kh) * row_bytes;
                if (producer != 0) {
                    bs_nn_conv_row_s8(producer->layer, producer->input, producer->output, producer->data,
                                      next_row, dst);
                } else {
                    const int8_t *src = in + next_row * row_bytes;
                    for (int32_t i = 0; i < row_bytes; ++i) {
                        dst[i] = src[i];
                    }
                }
            }
        }
        for (int32_t ky = 0; ky < kh; ++ky) {
            const int32_t iy = iy0 + ky * dh;
            if (iy < 0 || iy >= H) {
                rows[ky] = 0;
            } else {
                rows[ky] = use_ring ? ring + (iy % kh) * row_bytes : in + iy * row_bytes;
            }
        }
        bs_nn_depthwise_row_s8(L, rows, W, C, OW, OC, out + oy * OW * OC);
    }
}

static void bs_nn_fully_connected_s8(const bs_nn_layer *L, const bs_nn_tensor *ti,
                                     const bs_nn_tensor *to, const int8_t *in, int8_t *out)
{
    const int32_t n_in = ti->h * ti->w * ti->c;
    const int32_t n_out = to->h * to->w * to->c;
    int32_t acc[BS_NN_REQ_BLOCK];
    for (int32_t oc0 = 0; oc0 < n_out; oc0 += BS_NN_REQ_BLOCK) {
        const int32_t n = n_out - oc0 < BS_NN_REQ_BLOCK ? n_out - oc0 : BS_NN_REQ_BLOCK;
        for (int32_t j = 0; j < n; ++j) {
            acc[j] = bs_nn_dot_s8(in, L->weights + (oc0 + j) * n_in, n_in, L->bias[oc0 + j]);
        }
        bs_nn_requantize_block(acc, L->multiplier + oc0, L->shift + oc0, n, L->output_offset, L->act_min,
                               L->act_max, out + oc0);
    }
}

/* TFLite's int8 MEAN (QuantizedMeanOrSum): the raw sum minus zero point x count, rescaled once with
 * a multiplier that already includes 1/count. */
static void bs_nn_mean_s8(const bs_nn_layer *L, const bs_nn_tensor *ti, const bs_nn_tensor *to,
                          const int8_t *in, int8_t *out)
{
    const int32_t count = ti->h * ti->w;
    const int32_t C = ti->c;
    (void)to;
    for (int32_t c = 0; c < C; ++c) {
        int32_t sum = L->input_offset * count;
        for (int32_t p = 0; p < count; ++p) {
            sum += in[p * C + c];
        }
        out[c] = bs_nn_requantize(sum, L->output_multiplier, L->output_shift, L->output_offset, -128, 127);
    }
}

/* Window of a pooling output clipped to the image: [*start, *end) in filter coordinates. */
static inline void bs_nn_clip_window(int32_t origin, int32_t k, int32_t size, int32_t *start,
                                     int32_t *end)
{
    *start = origin < 0 ? -origin : 0;
    *end = size - origin < k ? size - origin : k;
}

static void bs_nn_pool_s8(const bs_nn_layer *L, const bs_nn_tensor *ti, const bs_nn_tensor *to,
                          const int8_t *in, int8_t *out, int is_max)
{
    const int32_t W = ti->w, C = ti->c;
    for (int32_t oy = 0; oy < to->h; ++oy) {
        const int32_t iy0 = oy * L->stride_h - L->pad_top;
        int32_t y0, y1;
        bs_nn_clip_window(iy0, L->kernel_h, ti->h, &y0, &y1);
        for (int32_t ox = 0; ox < to->w; ++ox) {
            const int32_t ix0 = ox * L->stride_w - L->pad_left;
            int32_t x0, x1;
            bs_nn_clip_window(ix0, L->kernel_w, W, &x0, &x1);
            int8_t *o = out + (oy * to->w + ox) * C;
            for (int32_t c = 0; c < C; ++c) {
                int32_t acc = is_max ? -128 : 0;
                int32_t count = 0;
                for (int32_t fy = y0; fy < y1; ++fy) {
                    const int8_t *row = in + ((iy0 + fy) * W + ix0) * C + c;
                    for (int32_t fx = x0; fx < x1; ++fx) {
                        const int32_t v = row[fx * C];
                        if (is_max) {
                            acc = v > acc ? v : acc;
                        } else {
                            acc += v;
                        }
                        ++count;
                    }
                }
                if (!is_max && count > 0) {
                    /* Round to nearest, ties away from zero, as the reference AveragePool. */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                }
                o[c] = (int8_t)bs_nn_clamp(acc, L->act_min, L->act_max);
            }
        }
    }
}

/* TFLite's quantized ADD: both inputs shifted left by left_shift (20), rescaled to a common scale,
 * summed, rescaled to the output. */
static void bs_nn_add_s8(const bs_nn_layer *L, int32_t n, const int8_t *a, const int8_t *b,
                         int8_t *out)
{
    for (int32_t i = 0; i < n; ++i) {
        const int32_t va = (int32_t)((uint32_t)(a[i] + L->input_offset) << L->left_shift);
        const int32_t vb = (int32_t)((uint32_t)(b[i] + L->input2_offset) << L->left_shift);
        const int32_t sa = bs_nn_mbqm(va, L->input_multiplier, L->input_shift);
        const int32_t sb = bs_nn_mbqm(vb, L->input2_multiplier, L->input2_shift);
        out[i] = bs_nn_requantize(sa + sb, L->output_multiplier, L->output_shift, L->output_offset,
                                  L->act_min, L->act_max);
    }
}

static void bs_nn_lut_s8(const int8_t *lut, int32_t n, const int8_t *in, int8_t *out)
{
    for (int32_t i = 0; i < n; ++i) {
        out[i] = lut[(int32_t)in[i] + 128];
    }
}

static int bs_nn_clz32(uint32_t x)
{
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* gemmlowp SaturatingRoundingMultiplyByPOT with a positive exponent: a saturating left shift. */
static int32_t bs_nn_sat_shl(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)(((uint32_t)1 << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

static inline int32_t bs_nn_wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: Newton-Raphson for 1 / (1 + a), a and result raw Q0.31
 * (the result in Q0.31 is 1 / (1 + a) / 2 ... scaled as gemmlowp defines it). */
static int32_t bs_nn_one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + (int64_t)INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = bs_nn_wrap_add(1515870810, bs_nn_srdhm(half_denominator, -1010580540)); /* Q2.29 */
    for (int i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = bs_nn_srdhm(half_denominator, x);
        const int32_t one_minus = bs_nn_wrap_add((int32_t)1 << 29, -half_denominator_times_x);
        x = bs_nn_wrap_add(x, bs_nn_sat_shl(bs_nn_srdhm(x, one_minus), 2));
    }
    return bs_nn_sat_shl(x, 1);
}

/* TFLite's int8 Softmax. exp_lut[d] holds exp_on_negative_values of the rescaled difference -d
 * (raw Q0.31), or 0 where -d < diff_min, which yields exactly the reference's -128 output. */
static void bs_nn_softmax_s8(const bs_nn_layer *L, const bs_nn_tensor *ti, const int8_t *in,
                             int8_t *out)
{
    const int32_t depth = ti->c;
    const int32_t rows = ti->h * ti->w;
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = in + r * depth;
        int8_t *o = out + r * depth;
        int32_t max = -128;
        for (int32_t c = 0; c < depth; ++c) {
            max = x[c] > max ? x[c] : max;
        }
        int32_t sum = 0; /* Q12.19 */
        for (int32_t c = 0; c < depth; ++c) {
            sum = bs_nn_wrap_add(sum, bs_nn_rdbp(L->exp_lut[max - x[c]], 12));
        }
        const int headroom_plus_one = bs_nn_clz32((uint32_t)sum);
        const int num_bits_over_unit = 12 - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum << headroom_plus_one) - ((uint32_t)1 << 31));
        const int32_t shifted_scale = bs_nn_one_over_one_plus_x(shifted_sum_minus_one);
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t e = L->exp_lut[max - x[c]];
            const int32_t v = bs_nn_rdbp(bs_nn_srdhm(shifted_scale, e), num_bits_over_unit + 31 - 8);
            o[c] = (int8_t)bs_nn_clamp(v - 128, -128, 127);
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Graph                                                                                           */

static int32_t bs_nn_tensor_size(const bs_nn_tensor *t) { return t->h * t->w * t->c; }

static int bs_nn_tensor_ok(const bs_nn_graph *g, int32_t index)
{
    return index >= 0 && index < g->num_tensors;
}

/* Can a depthwise layer write its output over its input (see bs_nn_depthwise_s8)? Every output row must
 * only overwrite input rows that are already copied into the ring, and the ring must hold the window. */
static int bs_nn_depthwise_in_place_ok(const bs_nn_graph *graph, const bs_nn_layer *L)
{
    const bs_nn_tensor *ti = &graph->tensors[L->input];
    const bs_nn_tensor *to = &graph->tensors[L->output];
    if (L->scratch < 0 || L->depth_multiplier != 1 || L->dilation_h != 1 || ti->c != to->c ||
        L->pad_top >= L->kernel_h || L->kernel_h > 16 ||
        bs_nn_tensor_size(&graph->tensors[L->scratch]) < L->kernel_h * ti->w * ti->c) {
        return 0;
    }
    for (int32_t oy = 0; oy < to->h; ++oy) {
        const int32_t last = oy * L->stride_h - L->pad_top + L->kernel_h - 1;
        const int32_t copied = (last < ti->h - 1 ? last : ti->h - 1) + 1;
        if ((int64_t)(oy + 1) * to->w * to->c > (int64_t)copied * ti->w * ti->c) {
            return 0;
        }
    }
    return 1;
}

/* Is tensor `index` the output of a fused convolution (never stored in the arena)? */
static int bs_nn_is_streamed(const bs_nn_graph *graph, int32_t index)
{
    for (int32_t i = 0; i < graph->num_layers; ++i) {
        if (graph->layers[i].fused && graph->layers[i].output == index) {
            return 1;
        }
    }
    return 0;
}

/* A fused layer is a convolution whose output only the next layer, a depthwise convolution, reads, through
 * a ring of its kernel_h rows in its scratch tensor. */
static int bs_nn_fusion_ok(const bs_nn_graph *graph, int32_t index)
{
    const bs_nn_layer *P = &graph->layers[index];
    if (P->op != BS_NN_OP_CONV_2D_S8 || index + 1 >= graph->num_layers || P->output == graph->output_tensor ||
        P->output == graph->input_tensor) {
        return 0;
    }
    const bs_nn_layer *D = &graph->layers[index + 1];
    const bs_nn_tensor *mid = &graph->tensors[P->output];
    if (D->op != BS_NN_OP_DEPTHWISE_CONV_2D_S8 || D->fused || D->input != P->output || D->scratch < 0 ||
        D->kernel_h > 16 || D->dilation_h != 1 ||
        bs_nn_tensor_size(&graph->tensors[D->scratch]) < D->kernel_h * mid->w * mid->c) {
        return 0;
    }
    for (int32_t j = 0; j < graph->num_layers; ++j) {
        const bs_nn_layer *L = &graph->layers[j];
        if (j != index + 1 && (L->input == P->output || L->input2 == P->output)) {
            return 0;
        }
    }
    return 1;
}

bs_nn_status bs_nn_check(const bs_nn_graph *graph, const uint8_t *arena, uint32_t arena_size)
{
    if (graph == 0 || graph->tensors == 0 || graph->layers == 0) {
        return BS_NN_ERR_NULL;
    }
    if (graph->version != BS_NN_GRAPH_VERSION) {
        return BS_NN_ERR_VERSION;
    }
    if (arena != 0 && (arena_size < graph->arena_bytes ||
                       ((uintptr_t)arena % BS_NN_ARENA_ALIGN) != 0)) {
        return BS_NN_ERR_ARENA;
    }
    if (!bs_nn_tensor_ok(graph, graph->input_tensor) || !bs_nn_tensor_ok(graph, graph->output_tensor)) {
        return BS_NN_ERR_GRAPH;
    }
    for (int32_t i = 0; i < graph->num_layers; ++i) {
        const bs_nn_layer *L = &graph->layers[i];
        if (!bs_nn_tensor_ok(graph, L->input) || !bs_nn_tensor_ok(graph, L->output) ||
            (L->input2 != -1 && !bs_nn_tensor_ok(graph, L->input2)) ||
            (L->scratch != -1 && !bs_nn_tensor_ok(graph, L->scratch))) {
            return BS_NN_ERR_GRAPH;
        }
    }
    for (int32_t i = 0; i < graph->num_tensors; ++i) {
        const bs_nn_tensor *t = &graph->tensors[i];
        if (t->h <= 0 || t->w <= 0 || t->c <= 0) {
            return BS_NN_ERR_GRAPH;
        }
        if (bs_nn_is_streamed(graph, i)) {
            continue; /* never stored: produced row by row inside the next layer */
        }
        if (t->offset % BS_NN_ARENA_ALIGN != 0 || t->offset > graph->arena_bytes ||
            (uint32_t)bs_nn_tensor_size(t) > graph->arena_bytes - t->offset) {
            return BS_NN_ERR_GRAPH;
        }
    }
    for (int32_t i = 0; i < graph->num_layers; ++i) {
        const bs_nn_layer *L = &graph->layers[i];
        const bs_nn_tensor *ti = &graph->tensors[L->input];
        const bs_nn_tensor *to = &graph->tensors[L->output];
        const int in_place = ti->offset == to->offset && !bs_nn_is_streamed(graph, L->input) &&
                             !bs_nn_is_streamed(graph, L->output);
        if (L->fused && !bs_nn_fusion_ok(graph, i)) {
            return BS_NN_ERR_GRAPH;
        }
        switch (L->op) {
        case BS_NN_OP_CONV_2D_S8:
        case BS_NN_OP_DEPTHWISE_CONV_2D_S8:
        case BS_NN_OP_FULLY_CONNECTED_S8:
            /* weights16 (with or instead of weights): a CONV_2D whose filter fits the two-pixel kernel, or a
             * multiplier-1 DEPTHWISE_CONV_2D with channels in groups of 4 */
            if ((L->weights16 != 0 && L->op == BS_NN_OP_FULLY_CONNECTED_S8) ||
                (L->weights16 != 0 && L->op == BS_NN_OP_CONV_2D_S8 &&
                 L->kernel_h * L->kernel_w * ti->c > BS_NN_COL_MAX) ||
                (L->weights16 != 0 && L->op == BS_NN_OP_DEPTHWISE_CONV_2D_S8 &&
                 (L->depth_multiplier != 1 || (to->c & 3) != 0 || L->kernel_h * L->kernel_w > BS_NN_DW_MAX_TAPS ||
                  ti->c > BS_NN_PATCH_MAX)) ||
                (L->weights == 0 && L->weights16 == 0) || L->bias == 0 || L->multiplier == 0 || L->shift == 0 ||
                (L->requant != 0 && L->op == BS_NN_OP_FULLY_CONNECTED_S8)) {
                return BS_NN_ERR_GRAPH;
            }
            const int32_t channels = L->op == BS_NN_OP_FULLY_CONNECTED_S8 ? bs_nn_tensor_size(to) : to->c;
            for (int32_t c = 0; c < channels; ++c) {
                if (L->multiplier[c] < 0 || L->shift[c] < -31 || L->shift[c] > 30) {
                    return BS_NN_ERR_GRAPH;
                }
                /* a requant row: the channel's multiplier, r - 1 = -shift - 1 in 0..19 (bs_nn_requant_row) */
                const int32_t *q = L->requant != 0 ? L->requant + 4 * c : 0;
                if (q != 0 && (q[0] != L->multiplier[c] || q[1] != -L->shift[c] - 1 || q[1] < 0 || q[1] > 19)) {
                    return BS_NN_ERR_GRAPH;
                }
            }
            if (L->kernel_h > 16) {
                return BS_NN_ERR_GRAPH;
            }
            if (in_place && L->op == BS_NN_OP_CONV_2D_S8 &&
                (L->kernel_h != 1 || L->kernel_w != 1 || L->stride_h != 1 || L->stride_w != 1 ||
                 L->pad_top != 0 || L->pad_left != 0 || to->c > BS_NN_PATCH_MAX)) {
                return BS_NN_ERR_GRAPH;
            }
            if (in_place && L->op == BS_NN_OP_DEPTHWISE_CONV_2D_S8 && !bs_nn_depthwise_in_place_ok(graph, L)) {
                return BS_NN_ERR_GRAPH;
            }
            if (in_place && L->op == BS_NN_OP_FULLY_CONNECTED_S8) {
                return BS_NN_ERR_GRAPH;
            }
            break;
        case BS_NN_OP_ADD_S8:
            if (!bs_nn_tensor_ok(graph, L->input2) ||
                bs_nn_tensor_size(&graph->tensors[L->input2]) !=
                    bs_nn_tensor_size(&graph->tensors[L->output])) {
                return BS_NN_ERR_GRAPH;
            }
            break;
        case BS_NN_OP_LUT_S8:
            if (L->lut == 0) {
                return BS_NN_ERR_GRAPH;
            }
            break;
        case BS_NN_OP_SOFTMAX_S8:
            if (L->exp_lut == 0 || in_place) {
                return BS_NN_ERR_GRAPH;
            }
            break;
        case BS_NN_OP_MEAN_S8:
        case BS_NN_OP_AVERAGE_POOL_2D_S8:
        case BS_NN_OP_MAX_POOL_2D_S8:
            if (in_place) {
                return BS_NN_ERR_GRAPH;
            }
            break;
        case BS_NN_OP_RESHAPE:
            break;
        default:
            return BS_NN_ERR_OP;
        }
    }
    return BS_NN_OK;
}

static void bs_nn_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    if (dst != src) {
        for (int32_t i = 0; i < n; ++i) {
            dst[i] = src[i];
        }
    }
}

static void bs_nn_run_layer(const bs_nn_graph *g, int32_t index, uint8_t *arena)
{
    const bs_nn_layer *L = &g->layers[index];
    const bs_nn_tensor *ti = &g->tensors[L->input];
    const bs_nn_tensor *to = &g->tensors[L->output];
    const int8_t *in = (const int8_t *)(arena + ti->offset);
    int8_t *out = (int8_t *)(arena + to->offset);
    bs_nn_producer producer;
    if (L->fused) {
        return; /* runs inside the next layer */
    }
    if (index > 0 && g->layers[index - 1].fused) {
        const bs_nn_layer *P = &g->layers[index - 1];
        producer.layer = P;
        producer.input = &g->tensors[P->input];
        producer.output = ti;
        producer.data = (const int8_t *)(arena + producer.input->offset);
    }
    switch (L->op) {
    case BS_NN_OP_CONV_2D_S8:
        bs_nn_conv_s8(L, ti, to, in, out);
        break;
    case BS_NN_OP_DEPTHWISE_CONV_2D_S8:
        bs_nn_depthwise_s8(L, ti, to, in, out,
                           L->scratch >= 0 ? (int8_t *)(arena + g->tensors[L->scratch].offset) : 0,
                           index > 0 && g->layers[index - 1].fused ? &producer : 0);
        break;
    case BS_NN_OP_FULLY_CONNECTED_S8:
        bs_nn_fully_connected_s8(L, ti, to, in, out);
        break;
    case BS_NN_OP_MEAN_S8:
        bs_nn_mean_s8(L, ti, to, in, out);
        break;
    case BS_NN_OP_AVERAGE_POOL_2D_S8:
        bs_nn_pool_s8(L, ti, to, in, out, 0);
        break;
    case BS_NN_OP_MAX_POOL_2D_S8:
        bs_nn_pool_s8(L, ti, to, in, out, 1);
        break;
    case BS_NN_OP_ADD_S8:
        bs_nn_add_s8(L, bs_nn_tensor_size(to), in,
                     (const int8_t *)(arena + g->tensors[L->input2].offset), out);
        break;
    case BS_NN_OP_RESHAPE:
        bs_nn_copy(out, in, bs_nn_tensor_size(to));
        break;
    case BS_NN_OP_LUT_S8:
        bs_nn_lut_s8(L->lut, bs_nn_tensor_size(to), in, out);
        break;
    case BS_NN_OP_SOFTMAX_S8:
        bs_nn_softmax_s8(L, ti, in, out);
        break;
    default:
        break; /* rejected by bs_nn_check */
    }
}

bs_nn_status bs_nn_invoke_hooked(const bs_nn_graph *graph, uint8_t *arena, uint32_t arena_size,
                                 const int8_t *input, int8_t *output,
                                 bs_nn_layer_hook hook, void *user)
{
    if (arena == 0) {
        return BS_NN_ERR_NULL;
    }
    const bs_nn_status status = bs_nn_check(graph, arena, arena_size);
    if (status != BS_NN_OK) {
        return status;
    }
    const bs_nn_tensor *ti = &graph->tensors[graph->input_tensor];
    const bs_nn_tensor *to = &graph->tensors[graph->output_tensor];
    if (input != 0) {
        bs_nn_copy((int8_t *)(arena + ti->offset), input, bs_nn_tensor_size(ti));
    }
    for (int32_t i = 0; i < graph->num_layers; ++i) {
        if (hook != 0) {
            hook(user, i, 0);
        }
        bs_nn_run_layer(graph, i, arena);
        if (hook != 0) {
            hook(user, i, 1);
        }
    }
    if (output != 0) {
        bs_nn_copy(output, (const int8_t *)(arena + to->offset), bs_nn_tensor_size(to));
    }
    return BS_NN_OK;
}

bs_nn_status bs_nn_invoke(const bs_nn_graph *graph, uint8_t *arena, uint32_t arena_size,
                          const int8_t *input, int8_t *output)
{
    return bs_nn_invoke_hooked(graph, arena, arena_size, input, output, 0, 0);
}

int8_t *bs_nn_input(const bs_nn_graph *graph, uint8_t *arena)
{
    if (graph == 0 || arena == 0 || !bs_nn_tensor_ok(graph, graph->input_tensor)) {
        return 0;
    }
    return (int8_t *)(arena + graph->tensors[graph->input_tensor].offset);
}

int8_t *bs_nn_output(const bs_nn_graph *graph, uint8_t *arena)
{
    if (graph == 0 || arena == 0 || !bs_nn_tensor_ok(graph, graph->output_tensor)) {
        return 0;
    }
    return (int8_t *)(arena + graph->tensors[graph->output_tensor].offset);
}

int32_t bs_nn_input_size(const bs_nn_graph *graph)
{
    if (graph == 0 || graph->tensors == 0) {
        return BS_NN_ERR_NULL;
    }
    if (!bs_nn_tensor_ok(graph, graph->input_tensor)) {
        return BS_NN_ERR_GRAPH;
    }
    return bs_nn_tensor_size(&graph->tensors[graph->input_tensor]);
}

int32_t bs_nn_output_size(const bs_nn_graph *graph)
{
    if (graph == 0 || graph->tensors == 0) {
        return BS_NN_ERR_NULL;
    }
    if (!bs_nn_tensor_ok(graph, graph->output_tensor)) {
        return BS_NN_ERR_GRAPH;
    }
    return bs_nn_tensor_size(&graph->tensors[graph->output_tensor]);
}

uint32_t bs_nn_layer_macs(const bs_nn_graph *graph, int32_t layer_index)
{
    if (graph == 0 || graph->layers == 0 || layer_index < 0 || layer_index >= graph->num_layers) {
        return 0;
    }
    const bs_nn_layer *L = &graph->layers[layer_index];
    const bs_nn_tensor *ti = &graph->tensors[L->input];
    const uint32_t out = (uint32_t)bs_nn_tensor_size(&graph->tensors[L->output]);
    switch (L->op) {
    case BS_NN_OP_CONV_2D_S8:
        return out * (uint32_t)(L->kernel_h * L->kernel_w * ti->c);
    case BS_NN_OP_DEPTHWISE_CONV_2D_S8:
        return out * (uint32_t)(L->kernel_h * L->kernel_w);
    case BS_NN_OP_FULLY_CONNECTED_S8:
        return out * (uint32_t)bs_nn_tensor_size(ti);
    default:
        return 0;
    }
}

const char *bs_nn_status_name(bs_nn_status status)
{
    switch (status) {
    case BS_NN_OK:
        return "ok";
    case BS_NN_ERR_NULL:
        return "NULL pointer";
    case BS_NN_ERR_VERSION:
        return "graph generated for another engine version";
    case BS_NN_ERR_ARENA:
        return "arena too small or misaligned";
    case BS_NN_ERR_OP:
        return "unknown op in graph";
    case BS_NN_ERR_GRAPH:
        return "inconsistent graph";
    default:
        return "unknown status";
    }
}
