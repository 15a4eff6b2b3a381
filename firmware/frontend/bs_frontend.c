/*
 * bs_frontend runtime: integer-only log-mel, one frame per hop. See README.md for the Q formats and
 * the overflow argument; python/bowlsense/frontend/reference.py is an independent numpy version of
 * the same integer algorithm that the tests compare against bit for bit.
 */
#include "bs_frontend.h"

#include <string.h>

#include "bs_frontend_tables.h"

#define BS_FRONTEND_MAGIC 0x62734645u /* "bsFE" */

/* Cortex-M4 (ARMv7E-M with the DSP extension) gets hand-scheduled loops for the hot stages, each a
 * naked function doing exactly the operations of the portable C next to it (the tests compare the
 * QEMU-run M4 build with the numpy reference bit for bit); every other target compiles the C. */
#if defined(__ARM_ARCH_7EM__) && defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
#define BS_FRONTEND_M4_ASM 1
#endif
#define HALF (BS_FRONTEND_FFT_SIZE / 2)
#define FFT_INPUT_BITS 28   /* |windowed sample| < 2^28: see README.md, "Why int32 cannot overflow" */
#define LOG_FRAC_BITS 24
#define OUT_SHIFT (LOG_FRAC_BITS - BS_FRONTEND_OUTPUT_FRAC_BITS)
/* The mel accumulators hold mel * 2^(MEL_EXPONENT_BASE - b), b = bit length of the frame's peak sample
 * (README.md, "Scale bookkeeping"). */
#define MEL_EXPONENT_BASE 50
/* The OR of the window's |x| (abs_or) is kept per block of PEAK_BLOCK samples of history[] (a divisor
 * of window and hop), accumulated as samples arrive (on Cortex-M4 while they are copied in, 16 at a
 * time): the OR of the blocks' values is the window's. */
#define PEAK_BLOCK 80
#define PEAK_BLOCKS (BS_FRONTEND_WINDOW_SAMPLES / PEAK_BLOCK)
#define KEPT_BLOCKS ((BS_FRONTEND_WINDOW_SAMPLES - BS_FRONTEND_HOP_SAMPLES) / PEAK_BLOCK)
/* history[] is word-aligned (after two int32 fields) and the overlap is a whole number of 16-sample
 * LDM/STM blocks, so the M4 overlap shift needs no alignment check */
typedef char bs_check_overlap_copy[(BS_FRONTEND_WINDOW_SAMPLES - BS_FRONTEND_HOP_SAMPLES) % 16 == 0 &&
                                   BS_FRONTEND_HOP_SAMPLES % 2 == 0 &&
                                   offsetof(bs_frontend_state, history) % 4 == 0 ? 1 : -1];
typedef char bs_check_peak_blocks[BS_FRONTEND_WINDOW_SAMPLES % PEAK_BLOCK == 0 &&
                                  BS_FRONTEND_HOP_SAMPLES % PEAK_BLOCK == 0 && PEAK_BLOCK % 16 == 0 ? 1 : -1];
typedef char bs_check_block_peak_field[sizeof(((bs_frontend_state *)0)->block_peak) ==
                                       PEAK_BLOCKS * sizeof(uint16_t) ? 1 : -1];

/* Arithmetic right shift. C99 leaves >> of negative values implementation-defined; every compiler
 * this project supports (gcc, clang; x86-64, Arm) shifts arithmetically, and the numpy reference does
 * the same. All right shifts of signed values go through these two helpers. */
static inline int32_t asr_s32(int32_t x, int shift) { return x >> shift; }
static inline int64_t round_shift_s64(int64_t x, int shift) {
    return (x + ((int64_t)1 << (shift - 1))) >> shift;
}

/* Q31 multiplies, rounded: the Cortex-M4 DSP instructions SMMULR / SMMLAR / SMMLSR, or portable C
 * with exactly their semantics (the products never overflow int64 for the ranges used here).
 *   mul_q31(a, b)        = round(a * b / 2^32)
 *   mla_q31(acc, a, b)   = round((acc * 2^32 + a * b) / 2^32)
 *   mls_q31(acc, a, b)   = round((acc * 2^32 - a * b) / 2^32) */
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
static inline int32_t mul_q31(int32_t a, int32_t b) {
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
static inline int32_t mla_q31(int32_t acc, int32_t a, int32_t b) {
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
static inline int32_t mls_q31(int32_t acc, int32_t a, int32_t b) {
    int32_t r;
    __asm__("smmlsr %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
#else
static inline int32_t mul_q31(int32_t a, int32_t b) {
    return (int32_t)(((int64_t)a * b + 0x80000000LL) >> 32);
}
static inline int32_t mla_q31(int32_t acc, int32_t a, int32_t b) {
    return (int32_t)(((int64_t)acc * 4294967296LL + (int64_t)a * b + 0x80000000LL) >> 32);
}
static inline int32_t mls_q31(int32_t acc, int32_t a, int32_t b) {
    return (int32_t)(((int64_t)acc * 4294967296LL - (int64_t)a * b + 0x80000000LL) >> 32);
}
#endif

static inline int bit_length_u32(uint32_t x) {
#if defined(__GNUC__) || defined(__clang__)
    return x ? 32 - __builtin_clz(x) : 0;
#else
    int n = 0;
    while (x) { n++; x >>= 1; }
    return n;
#endif
}

static inline int bit_length_u64(uint64_t x) {
    uint32_t hi = (uint32_t)(x >> 32);
    return hi ? 32 + bit_length_u32(hi) : bit_length_u32((uint32_t)x);
}

/* |re + i im| for |re|, |im| < 2^31, to ~15 significant bits, in 32-bit arithmetic and without
 * division: drop low bits until both parts fit 15 bits (so the sum of squares fits 31), normalise
 * that sum to [2^30, 2^32) by an even shift, interpolate sqrt linearly in a 257-entry table (error
 * below 0.25 LSB of the 16-bit root), shift back. The numpy reference repeats these steps. */
static uint32_t magnitude(int32_t re, int32_t im) {
    uint32_t a = (uint32_t)(re < 0 ? -(int64_t)re : re);
    uint32_t b = (uint32_t)(im < 0 ? -(int64_t)im : im);
    int drop = bit_length_u32(a | b) - 15;
    if (drop < 0) drop = 0;
    a >>= drop;
    b >>= drop;
    uint32_t n = a * a + b * b; /* < 2^31 */
    if (n == 0) return 0;
    int up = (32 - bit_length_u32(n)) >> 1; /* n << 2 up lies in [2^30, 2^32) */
    n <<= 2 * up;
    uint32_t i = n >> 24, frac = (n >> 8) & 0xFFFFu;
    uint32_t lo = bs_frontend_tables_sqrt[i];
    uint32_t r = lo + (((bs_frontend_tables_sqrt[i + 1] - lo) * frac) >> 16); /* ~ sqrt(n) * 2^up */
    int shift = drop - up;
    if (shift >= 0) return r << shift;
    return (r + (1u << (-shift - 1))) >> (-shift);
}

/* ln(v * 2^-exponent) in Q24: v = 2^(L-1) * (1 + f), ln = (L-1-exponent) ln 2 + ln(1+f), with
 * ln(1+f) interpolated linearly in a 257-entry table (error < 2e-6 nats). v > 0. */
static inline int32_t log_q24(uint64_t v, int exponent) {
    int len = bit_length_u64(v);
    uint64_t m = v << (64 - len); /* top bit set; the 63 bits below it are the fraction f */
    uint32_t idx = (uint32_t)(m >> 55) & 0xFFu;
    uint32_t frac = (uint32_t)(m >> 31) & 0xFFFFFFu;
    int32_t lo = bs_frontend_tables_log[idx];
    int32_t hi = bs_frontend_tables_log[idx + 1];
    int32_t mant = lo + (int32_t)(((int64_t)(hi - lo) * frac) >> 24);
    return (int32_t)(len - 1 - exponent) * bs_frontend_tables_ln2_q24 + mant;
}

/* The FFT: 256-point complex, radix-2 decimation in time, input in bit-reversed order, halving at every
 * stage so values never grow (README.md, "Why int32 cannot overflow"): a' = a/2 + W b/2,
 * b' = a/2 - W b/2, with W b/2 from rounded Q31 products, except for the twiddle 1, which the algorithm
 * applies as a shift (b >> 1). Output is the DFT / HALF.
 *
 * The eight radix-2 stages run as four passes of two stages each, fused over groups of four values
 * held in registers: every value is loaded and stored once per two stages, and each butterfly still
 * rounds exactly as its radix-2 stage does (python/bowlsense/frontend/reference.py computes them stage
 * by stage). The first pass also windows the samples. */

#if defined(__GNUC__) || defined(__clang__)
#define BS_ALWAYS_INLINE inline __attribute__((always_inline))
#define BS_NOINLINE __attribute__((noinline))
#else
#define BS_ALWAYS_INLINE inline
#define BS_NOINLINE
#endif

/* One butterfly with twiddle (wr, wi) from the table. */
static BS_ALWAYS_INLINE void butterfly(int32_t *ar, int32_t *ai, int32_t *br, int32_t *bi, int32_t wr,
                                       int32_t wi) {
    int32_t tr = mls_q31(mul_q31(*br, wr), *bi, wi);
    int32_t ti = mla_q31(mul_q31(*br, wi), *bi, wr);
    int32_t hr = asr_s32(*ar, 1), hi = asr_s32(*ai, 1);
    *ar = hr + tr; *ai = hi + ti;
    *br = hr - tr; *bi = hi - ti;
}

/* The butterfly with twiddle 1: W b/2 = b >> 1. */
static BS_ALWAYS_INLINE void butterfly_1(int32_t *ar, int32_t *ai, int32_t *br, int32_t *bi) {
    int32_t tr = asr_s32(*br, 1), ti = asr_s32(*bi, 1);
    int32_t hr = asr_s32(*ar, 1), hi = asr_s32(*ai, 1);
    *ar = hr + tr; *ai = hi + ti;
    *br = hr - tr; *bi = hi - ti;
}

/* The butterfly with twiddle -i: the table holds cos = 0 and -sin = -2^31 for it, for which the
 * rounded products reduce exactly to W b/2 = ((bi + 1) >> 1, (1 - br) >> 1). */
static BS_ALWAYS_INLINE void butterfly_minus_i(int32_t *ar, int32_t *ai, int32_t *br, int32_t *bi) {
    int32_t tr = asr_s32(*bi + 1, 1), ti = asr_s32(1 - *br, 1);
    int32_t hr = asr_s32(*ar, 1), hi = asr_s32(*ai, 1);
    *ar = hr + tr; *ai = hi + ti;
    *br = hr - tr; *bi = hi - ti;
}

/* The complex value x[0] + i x[1] times gain and the window pair w[0], w[1], rounded like SMMULR. */
static BS_ALWAYS_INLINE void windowed(const int16_t *x, const int32_t *w, int32_t gain, int32_t *re,
                                      int32_t *im) {
    *re = mul_q31(x[0] * gain, w[0]);
    *im = mul_q31(x[1] * gain, w[1]);
}

/* Bit-reversed positions 4g .. 4g+3 hold inputs n0, n0 + HALF/2, n0 + HALF/4, n0 + 3 HALF/4
 * (n0 = bitrev[4g] < HALF/4): the first three always lie inside the window; the fourth is zero padding
 * when it lies past it (has_q3 = 0), which lets the compiler drop its arithmetic. The window pointer
 * aims at input n0 + 3 HALF/8 so that all four offsets fit one LDRD (+-1020 bytes). */
typedef char bs_check_first_three_inside_window[3 * HALF / 4 <= BS_FRONTEND_WINDOW_SAMPLES / 2 ? 1 : -1];
#define WMID (3 * HALF / 4) /* ints from input n0's window pair to the pointer */

static BS_ALWAYS_INLINE void window_group_stages_1_2(int32_t *q, const int16_t *x, const int32_t *w,
                                                     int32_t gain, int has_q3) {
    int32_t r0, i0, r1, i1, r2, i2, r3 = 0, i3 = 0;
    windowed(x, w - WMID, gain, &r0, &i0);
    windowed(x + HALF, w - WMID + HALF, gain, &r1, &i1);
    windowed(x + HALF / 2, w - WMID + HALF / 2, gain, &r2, &i2);
    if (has_q3) windowed(x + 3 * HALF / 2, w - WMID + 3 * HALF / 2, gain, &r3, &i3);
    butterfly_1(&r0, &i0, &r1, &i1);       /* stage 1: twiddle 1 */
    butterfly_1(&r2, &i2, &r3, &i3);
    butterfly_1(&r0, &i0, &r2, &i2);       /* stage 2: twiddles 1 and -i */
    butterfly_minus_i(&r1, &i1, &r3, &i3);
    q[0] = r0; q[1] = i0; q[2] = r1; q[3] = i1;
    q[4] = r2; q[5] = i2; q[6] = r3; q[7] = i3;
}

/* Window and scale the frame, pack it as HALF complex values z[n] = v[2n] + i v[2n+1] in bit-reversed
 * order (zero past the window) and run the first two stages, whose twiddles are 1 and -i. */
#ifndef BS_FRONTEND_M4_ASM
static BS_NOINLINE void window_and_stages_1_2_c(int32_t *z, const int16_t *x, int32_t gain) {
    for (int32_t *q = z; q < z + 2 * HALF; q += 8) {
        int n0 = bs_frontend_tables_bitrev[(q - z) / 2];
        const int32_t *w = bs_frontend_tables_window + 2 * n0 + WMID;
        if (n0 + 3 * HALF / 4 < BS_FRONTEND_WINDOW_SAMPLES / 2)
            window_group_stages_1_2(q, x + 2 * n0, w, gain, 1);
        else
            window_group_stages_1_2(q, x + 2 * n0, w, gain, 0);
    }
}
#else
/* window_and_stages_1_2_c() for Cortex-M4: about 52 instructions per group of four where the compiler
 * needs about 70. Eight groups per loop turn, unrolled: of groups g = 8 i .. 8 i + 7, only the first
 * has n0 = bitrev[4g] < 8, the one whose fourth input lies inside the window, so no group tests n0.
 * Arguments: r0 = z, r1 = x, r2 = gain, r3 = bitrev, [sp] = &window[WMID]. Registers: r12 = &x[2 n0],
 * lr = &window[2 n0 + WMID] (offsets fit LDRSH and LDRD), r4-r11 the four complex values.
 * Stack: [sp] window + WMID, [sp, #4] end of z. */
typedef char bs_check_window_asm_shape[HALF == 256 && WMID == 192 && BS_FRONTEND_WINDOW_SAMPLES == 400 ? 1 : -1];
#define U __attribute__((unused))
/* Start group g: n0 = bitrev[4g], r12 = &x[2 n0], lr = &window[2 n0] + 768 bytes. */
#define BS_WIN_HEAD \
        "ldrb   r4, [r3], #4\n\t"            /* n0 = bitrev[4g] */ \
        "add    r12, r1, r4, lsl #2\n\t"     /* &x[2 n0] */ \
        "ldr    lr, [sp]\n\t" \
        "add    lr, lr, r4, lsl #3\n\t"      /* &window[2 n0] + 768 bytes */ \

/* Window inputs n0, n0 + 128 (stage 1 on them) and n0 + 64. */
#define BS_WIN_INPUTS_0_1_2 \
        /* input n0 */ \
        "ldrsh  r4, [r12]\n\t" \
        "ldrsh  r5, [r12, #2]\n\t" \
        "ldrd   r8, r9, [lr, #-768]\n\t" \
        "mul    r4, r4, r2\n\t" \
        "mul    r5, r5, r2\n\t" \
        "smmulr r4, r4, r8\n\t" \
        "smmulr r5, r5, r9\n\t" \
        /* input n0 + 128 */ \
        "ldrsh  r6, [r12, #512]\n\t" \
        "ldrsh  r7, [r12, #514]\n\t" \
        "ldrd   r8, r9, [lr, #256]\n\t" \
        "mul    r6, r6, r2\n\t" \
        "mul    r7, r7, r2\n\t" \
        "smmulr r6, r6, r8\n\t" \
        "smmulr r7, r7, r9\n\t" \
        /* stage 1 on (q0, q1), twiddle 1 */ \
        "asr    r8, r6, #1\n\t" "rsb    r6, r8, r4, asr #1\n\t" "add    r4, r8, r4, asr #1\n\t" \
        "asr    r8, r7, #1\n\t" "rsb    r7, r8, r5, asr #1\n\t" "add    r5, r8, r5, asr #1\n\t" \
        /* input n0 + 64 */ \
        "ldrsh  r8, [r12, #256]\n\t" \
        "ldrsh  r9, [r12, #258]\n\t" \
        "ldrd   r10, r11, [lr, #-256]\n\t" \
        "mul    r8, r8, r2\n\t" \
        "mul    r9, r9, r2\n\t" \
        "smmulr r8, r8, r10\n\t" \
        "smmulr r9, r9, r11\n\t" \

/* Input n0 + 192 inside the window: stage 1 on (q2, q3), stage 2, store. */
#define BS_WIN_FULL_TAIL \
        /* input n0 + 192, then stage 1 on (q2, q3) */ \
        "ldrsh  r10, [r12, #768]\n\t" \
        "ldrsh  r11, [r12, #770]\n\t" \
        "mul    r10, r10, r2\n\t" \
        "mul    r11, r11, r2\n\t" \
        "ldr    r12, [lr, #768]\n\t" \
        "smmulr r10, r10, r12\n\t" \
        "ldr    r12, [lr, #772]\n\t" \
        "smmulr r11, r11, r12\n\t" \
        "asr    r12, r10, #1\n\t" "rsb    r10, r12, r8, asr #1\n\t" "add    r8, r12, r8, asr #1\n\t" \
        "asr    r12, r11, #1\n\t" "rsb    r11, r12, r9, asr #1\n\t" "add    r9, r12, r9, asr #1\n\t" \
        /* stage 2: (q0, q2) with twiddle 1, (q1, q3) with -i */ \
        "asr    r12, r8, #1\n\t" "rsb    r8, r12, r4, asr #1\n\t" "add    r4, r12, r4, asr #1\n\t" \
        "asr    r12, r9, #1\n\t" "rsb    r9, r12, r5, asr #1\n\t" "add    r5, r12, r5, asr #1\n\t" \
        "add    r12, r11, #1\n\t" "asr    r12, r12, #1\n\t"     /* tr = (bi + 1) >> 1 */ \
        "rsb    r11, r10, #1\n\t" "asr    r11, r11, #1\n\t"     /* ti = (1 - br) >> 1 */ \
        "rsb    r10, r12, r6, asr #1\n\t" "add    r6, r12, r6, asr #1\n\t" \
        "rsb    r12, r11, r7, asr #1\n\t" "add    r7, r11, r7, asr #1\n\t" \
        "strd   r4, r5, [r0], #8\n\t" \
        "strd   r6, r7, [r0], #8\n\t" \
        "strd   r8, r9, [r0], #8\n\t" \
        "strd   r10, r12, [r0], #8\n\t" \

/* Input n0 + 192 is zero padding: stage 1 gives q3 = q2 = q2 >> 1; stage 2, store. */
#define BS_WIN_ZERO_TAIL \
        "mov    r12, #1\n\t"                 /* (q1, q3) with -i: tr = ((q2i >> 1) + 1) >> 1, */ \
        "add    r10, r12, r9, asr #1\n\t"    /* ti = (1 - (q2r >> 1)) >> 1 */ \
        "asr    r10, r10, #1\n\t" \
        "sub    r11, r12, r8, asr #1\n\t" \
        "asr    r11, r11, #1\n\t" \
        "rsb    r12, r10, r6, asr #1\n\t" "add    r6, r10, r6, asr #1\n\t" \
        "rsb    r10, r11, r7, asr #1\n\t" "add    r7, r11, r7, asr #1\n\t" \
        "asr    r11, r8, #2\n\t"             /* (q0, q2) with 1: W q2 / 2 = (q2 >> 1) >> 1 */ \
        "rsb    r8, r11, r4, asr #1\n\t" "add    r4, r11, r4, asr #1\n\t" \
        "asr    r11, r9, #2\n\t" \
        "rsb    r9, r11, r5, asr #1\n\t" "add    r5, r11, r5, asr #1\n\t" \
        "strd   r4, r5, [r0], #8\n\t" \
        "strd   r6, r7, [r0], #8\n\t" \
        "strd   r8, r9, [r0], #8\n\t" \
        "strd   r12, r10, [r0], #8\n\t" \

__attribute__((naked, noinline)) static void window_and_stages_1_2_m4(U int32_t *z, U const int16_t *x,
                                                                      U int32_t gain, U const uint8_t *bitrev,
                                                                      U const int32_t *window_mid) {
    __asm__ volatile(
        "push   {r4-r11, lr}\n\t"
        "sub    sp, sp, #8\n\t"
        "ldr    r4, [sp, #44]\n\t"           /* window + WMID */
        "str    r4, [sp]\n\t"
        "add    r4, r0, #4 * 2 * 256\n\t"
        "str    r4, [sp, #4]\n"
        "2:\n\t"                             /* eight groups: g = 8 i has n0 < 8, the others n0 >= 8 */
        BS_WIN_HEAD BS_WIN_INPUTS_0_1_2 BS_WIN_FULL_TAIL
        BS_WIN_HEAD BS_WIN_INPUTS_0_1_2 BS_WIN_ZERO_TAIL
        BS_WIN_HEAD BS_WIN_INPUTS_0_1_2 BS_WIN_ZERO_TAIL
        BS_WIN_HEAD BS_WIN_INPUTS_0_1_2 BS_WIN_ZERO_TAIL
        BS_WIN_HEAD BS_WIN_INPUTS_0_1_2 BS_WIN_ZERO_TAIL
        BS_WIN_HEAD BS_WIN_INPUTS_0_1_2 BS_WIN_ZERO_TAIL
        BS_WIN_HEAD BS_WIN_INPUTS_0_1_2 BS_WIN_ZERO_TAIL
        BS_WIN_HEAD BS_WIN_INPUTS_0_1_2 BS_WIN_ZERO_TAIL
        "ldr    r4, [sp, #4]\n\t"
        "cmp    r0, r4\n\t"
        "bne    2b\n\t"
        "add    sp, sp, #8\n\t"
        "pop    {r4-r11, pc}\n\t");
}
#undef U
#endif

static void window_and_stages_1_2(int32_t *z, const int16_t *x, int32_t gain) {
#ifdef BS_FRONTEND_M4_ASM
    window_and_stages_1_2_m4(z, x, gain, bs_frontend_tables_bitrev, bs_frontend_tables_window + WMID);
#else
    window_and_stages_1_2_c(z, x, gain);
#endif
}

/* Two radix-2 stages with butterfly spans h and 2h, over groups of four values z[j], z[j+h], z[j+2h],
 * z[j+3h]: the first stage pairs (0,1) and (2,3) with W_2h^j, the second (0,2) with W_4h^j and (1,3)
 * with W_4h^(j+h). Twiddle W_M^j is table entry j * FFT_SIZE / M; W_4h^h = W_FFT_SIZE^(HALF/2) = -i.
 * Pointers aim at the middle of what they address so that every offset fits one load or store
 * instruction (LDRD/STRD reach +-1020 bytes on Cortex-M). */
static BS_ALWAYS_INLINE void fused_stages(int32_t *z, int h) {
    const int step1 = 2 * (HALF / h), step2 = HALF / h; /* ints per j in the table (re, im pairs) */
    for (int32_t *p = z + 3 * h; p < z + 2 * HALF; p += 8 * h) {
        int32_t *q = p; /* the four values are q[-3h], q[-h], q[h], q[3h] (re, im each) */
        {
            int32_t r0 = q[-3 * h], i0 = q[-3 * h + 1], r1 = q[-h], i1 = q[-h + 1];
            int32_t r2 = q[h], i2 = q[h + 1], r3 = q[3 * h], i3 = q[3 * h + 1];
            butterfly_1(&r0, &i0, &r1, &i1);
            butterfly_1(&r2, &i2, &r3, &i3);
            butterfly_1(&r0, &i0, &r2, &i2);
            butterfly_minus_i(&r1, &i1, &r3, &i3);
            q[-3 * h] = r0; q[-3 * h + 1] = i0; q[-h] = r1; q[-h + 1] = i1;
            q[h] = r2; q[h + 1] = i2; q[3 * h] = r3; q[3 * h + 1] = i3;
        }
        const int32_t *w1 = bs_frontend_tables_twiddle + step1;
        const int32_t *w2 = bs_frontend_tables_twiddle + step2 + HALF / 2; /* W_4h^j at w2[-HALF/2] */
        for (q += 2; q < p + 2 * h; q += 2, w1 += step1, w2 += step2) {
            int32_t r0 = q[-3 * h], i0 = q[-3 * h + 1], r1 = q[-h], i1 = q[-h + 1];
            int32_t r2 = q[h], i2 = q[h + 1], r3 = q[3 * h], i3 = q[3 * h + 1];
            butterfly(&r0, &i0, &r1, &i1, w1[0], w1[1]);
            butterfly(&r2, &i2, &r3, &i3, w1[0], w1[1]);
            butterfly(&r0, &i0, &r2, &i2, w2[-HALF / 2], w2[-HALF / 2 + 1]);
            butterfly(&r1, &i1, &r3, &i3, w2[HALF / 2], w2[HALF / 2 + 1]);
            q[-3 * h] = r0; q[-3 * h + 1] = i0; q[-h] = r1; q[-h + 1] = i1;
            q[h] = r2; q[h + 1] = i2; q[3 * h] = r3; q[3 * h + 1] = i3;
        }
    }
}

/* Separate functions: inlined into one big body, the compiler runs out of registers for the loops. */
#ifdef BS_FRONTEND_M4_ASM
#define U __attribute__((unused)) /* naked functions read their arguments from r0-r3 */
/* fused_stages() for Cortex-M4, about 44 instructions per group of four values (four groups per loop
 * turn; h - 4 must be a multiple of 4) where the compiler needs about 60 (it spills: the loop needs all
 * 14 registers, so these are naked functions). The butterflies are butterfly(), butterfly_1() and
 * butterfly_minus_i(), operation for operation:
 *   smmulr t, br, wr; smmulr br, br, wi; smmlsr t, bi, wi, t (tr); smmlar bi, bi, wr, br (ti);
 *   a' = tr + (ar >> 1), b' = (ar >> 1) - tr (ADD/RSB with shifted operand), same for the imaginary parts.
 * r0 points at the middle of the four values (offsets -12h, -4h, 4h, 12h bytes fit LDRD/STRD), r1 at
 * W_2h^j (S1 bytes per j), r2 at W_4h^j + 512 bytes (S2 bytes per j; W_4h^(j+h) is 1024 bytes on).
 * Stack: [sp] end of the group's j loop, [sp, #4] end of the groups, [sp, #8] twiddle table. */
/* One group of four values DO bytes past r0 (offsets -12h, -4h, 4h, 12h), with W_2h^j, W_4h^j and
 * W_4h^(j+h) at the addresses W1, W2, W3 (operand text). Uses r3-r12 and lr. */
#define BS_FUSED_BODY_ASM(H, DO, W1, W2, W3) \
    "ldrd   r4, r5, [r0, #-12*" #H "+" #DO "]\n\t" \
    "ldrd   r6, r7, [r0, #-4*" #H "+" #DO "]\n\t" \
    "ldrd   r12, lr, " W1 "\n\t" \
    "smmulr r3, r6, r12\n\t" "smmulr r6, r6, lr\n\t" "smmlsr r3, r7, lr, r3\n\t" "smmlar r7, r7, r12, r6\n\t" \
    "rsb    r6, r3, r4, asr #1\n\t" "add    r4, r3, r4, asr #1\n\t" \
    "rsb    r3, r7, r5, asr #1\n\t" "add    r5, r7, r5, asr #1\n\t" /* q1 = (r6, r3) */ \
    "ldrd   r8, r9, [r0, #4*" #H "+" #DO "]\n\t" \
    "ldrd   r10, r11, [r0, #12*" #H "+" #DO "]\n\t" \
    "smmulr r7, r10, r12\n\t" "smmulr r10, r10, lr\n\t" "smmlsr r7, r11, lr, r7\n\t" "smmlar r11, r11, r12, r10\n\t" \
    "rsb    r10, r7, r8, asr #1\n\t" "add    r8, r7, r8, asr #1\n\t" \
    "rsb    r7, r11, r9, asr #1\n\t" "add    r9, r11, r9, asr #1\n\t" /* q3 = (r10, r7) */ \
    "ldrd   r12, lr, " W2 "\n\t" \
    "smmulr r11, r8, r12\n\t" "smmulr r8, r8, lr\n\t" "smmlsr r11, r9, lr, r11\n\t" "smmlar r9, r9, r12, r8\n\t" \
    "rsb    r8, r11, r4, asr #1\n\t" "add    r4, r11, r4, asr #1\n\t" \
    "rsb    r11, r9, r5, asr #1\n\t" "add    r5, r9, r5, asr #1\n\t" /* q2 = (r8, r11) */ \
    "strd   r4, r5, [r0, #-12*" #H "+" #DO "]\n\t" \
    "strd   r8, r11, [r0, #4*" #H "+" #DO "]\n\t" \
    "ldrd   r12, lr, " W3 "\n\t" \
    "smmulr r4, r10, r12\n\t" "smmulr r10, r10, lr\n\t" "smmlsr r4, r7, lr, r4\n\t" "smmlar r7, r7, r12, r10\n\t" \
    "rsb    r10, r4, r6, asr #1\n\t" "add    r6, r4, r6, asr #1\n\t" \
    "rsb    r4, r7, r3, asr #1\n\t" "add    r3, r7, r3, asr #1\n\t" \
    "strd   r6, r3, [r0, #-4*" #H "+" #DO "]\n\t" \
    "strd   r10, r4, [r0, #12*" #H "+" #DO "]\n\t" \

/* One group at j: r1 steps to W_2h^(j+1), W_4h^j at r2 - 512 + WO. */
#define BS_FUSED_ITERATION_ASM(H, S1, DO, WO) \
    BS_FUSED_BODY_ASM(H, DO, "[r1], #" #S1, "[r2, #-512+" #WO "]", "[r2, #512+" #WO "]")

/* The group at j = 0 (twiddles 1, 1, 1, -i: shifts and the -i shortcut), at r0. Uses r3-r11. */
#define BS_FUSED_J0_ASM(H) \
    "ldrd   r4, r5, [r0, #-12*" #H "]\n\t" \
    "ldrd   r6, r7, [r0, #-4*" #H "]\n\t" \
    "ldrd   r8, r9, [r0, #4*" #H "]\n\t" \
    "ldrd   r10, r11, [r0, #12*" #H "]\n\t" \
    "asr    r3, r6, #1\n\t" "rsb    r6, r3, r4, asr #1\n\t" "add    r4, r3, r4, asr #1\n\t" \
    "asr    r3, r7, #1\n\t" "rsb    r7, r3, r5, asr #1\n\t" "add    r5, r3, r5, asr #1\n\t" \
    "asr    r3, r10, #1\n\t" "rsb    r10, r3, r8, asr #1\n\t" "add    r8, r3, r8, asr #1\n\t" \
    "asr    r3, r11, #1\n\t" "rsb    r11, r3, r9, asr #1\n\t" "add    r9, r3, r9, asr #1\n\t" \
    "asr    r3, r8, #1\n\t" "rsb    r8, r3, r4, asr #1\n\t" "add    r4, r3, r4, asr #1\n\t" \
    "asr    r3, r9, #1\n\t" "rsb    r9, r3, r5, asr #1\n\t" "add    r5, r3, r5, asr #1\n\t" \
    "add    r3, r11, #1\n\t" "asr    r3, r3, #1\n\t"   /* tr = (bi + 1) >> 1 */ \
    "rsb    r11, r10, #1\n\t" "asr    r11, r11, #1\n\t" /* ti = (1 - br) >> 1 */ \
    "rsb    r10, r3, r6, asr #1\n\t" "add    r6, r3, r6, asr #1\n\t" \
    "rsb    r3, r11, r7, asr #1\n\t" "add    r7, r11, r7, asr #1\n\t" \
    "strd   r4, r5, [r0, #-12*" #H "]\n\t" \
    "strd   r6, r7, [r0, #-4*" #H "]\n\t" \
    "strd   r8, r9, [r0, #4*" #H "]\n\t" \
    "strd   r10, r3, [r0, #12*" #H "]\n\t"

#define BS_FUSED_STAGES_ASM(H, S1, S2) \
    "push   {r4-r11, lr}\n\t" \
    "sub    sp, sp, #16\n\t" \
    "add    r0, r0, #12*" #H "\n\t" \
    "str    r1, [sp, #8]\n\t" \
    "add    r3, r0, #4 * 2 * 256\n\t" \
    "str    r3, [sp, #4]\n" \
    "2:\n\t" /* j = 0: twiddles 1, 1, 1, -i */ \
    BS_FUSED_J0_ASM(H) \
    "add    r3, r0, #8*" #H "\n\t" \
    "str    r3, [sp]\n\t" \
    "ldr    r1, [sp, #8]\n\t" \
    "add    r2, r1, #512 + " #S2 "\n\t" \
    "add    r1, r1, #" #S1 "\n\t" \
    "add    r0, r0, #8\n" \
    BS_FUSED_ITERATION_ASM(H, S1, 0, 0) /* j = 1, 2, 3 */ \
    BS_FUSED_ITERATION_ASM(H, S1, 8, S2) \
    BS_FUSED_ITERATION_ASM(H, S1, 16, 2*S2) \
    "add    r0, r0, #24\n\t" \
    "add    r2, r2, #3*" #S2 "\n" \
    "1:\n\t" /* j = 4 .. h-1, four per turn */ \
    BS_FUSED_ITERATION_ASM(H, S1, 0, 0) \
    BS_FUSED_ITERATION_ASM(H, S1, 8, S2) \
    BS_FUSED_ITERATION_ASM(H, S1, 16, 2*S2) \
    BS_FUSED_ITERATION_ASM(H, S1, 24, 3*S2) \
    "add    r0, r0, #32\n\t" \
    "add    r2, r2, #4*" #S2 "\n\t" \
    "ldr    r4, [sp]\n\t" \
    "cmp    r0, r4\n\t" \
    "bne    1b\n\t" \
    "add    r0, r0, #24*" #H "\n\t" /* next group */ \
    "ldr    r3, [sp, #4]\n\t" \
    "cmp    r0, r3\n\t" \
    "bne    2b\n\t" \
    "add    sp, sp, #16\n\t" \
    "pop    {r4-r11, pc}\n\t"

/* Stages 3-4 (h = 4): the four j of each group unrolled, twiddles at fixed offsets from r1 = table
 * and r2 = table + 1024 bytes (W_8^j at 512 j bytes, W_16^j at 256 j, W_16^(j+4) at 1024 + 256 j). */
__attribute__((naked, noinline)) static void stages_3_4(U int32_t *z, U const int32_t *tw) {
    __asm__ volatile(
        "push   {r4-r11, lr}\n\t"
        "sub    sp, sp, #8\n\t"
        "add    r0, r0, #12*4\n\t"
        "add    r2, r1, #1024\n\t"
        "add    r3, r0, #4 * 2 * 256\n\t"
        "str    r3, [sp]\n"
        "2:\n\t"
        BS_FUSED_J0_ASM(4)
        BS_FUSED_BODY_ASM(4, 8, "[r1, #512]", "[r1, #256]", "[r2, #256]")
        BS_FUSED_BODY_ASM(4, 16, "[r2]", "[r1, #512]", "[r2, #512]")
        BS_FUSED_BODY_ASM(4, 24, "[r2, #512]", "[r1, #768]", "[r2, #768]")
        "add    r0, r0, #32*4\n\t"
        "ldr    r3, [sp]\n\t"
        "cmp    r0, r3\n\t"
        "bne    2b\n\t"
        "add    sp, sp, #8\n\t"
        "pop    {r4-r11, pc}\n\t");
}
__attribute__((naked, noinline)) static void stages_5_6(U int32_t *z, U const int32_t *tw) {
    __asm__ volatile(BS_FUSED_STAGES_ASM(16, 128, 64));
}
__attribute__((naked, noinline)) static void stages_7_8(U int32_t *z, U const int32_t *tw) {
    __asm__ volatile(BS_FUSED_STAGES_ASM(64, 32, 16));
}
typedef char bs_check_fft_asm_shape[HALF == 256 ? 1 : -1];
#undef U
#else
static BS_NOINLINE void stages_3_4(int32_t *z, const int32_t *tw) { (void)tw; fused_stages(z, 4); }
static BS_NOINLINE void stages_5_6(int32_t *z, const int32_t *tw) { (void)tw; fused_stages(z, 16); }
static BS_NOINLINE void stages_7_8(int32_t *z, const int32_t *tw) { (void)tw; fused_stages(z, 64); }
#endif

static void fft_stages_3_to_8(int32_t *z) {
    stages_3_4(z, bs_frontend_tables_twiddle);
    stages_5_6(z, bs_frontend_tables_twiddle);
    stages_7_8(z, bs_frontend_tables_twiddle);
}

/* The OR of |x[n]| over n_samples samples: its bit length is that of max |x[n]| (an OR's highest set
 * bit is the highest of its operands), which is all the block scaling uses. On Cortex-M4 two samples
 * per word: SSUB16 computes -x per halfword (0x8000, read unsigned 32768, for -32768) and sets the GE
 * flags where -x >= 0, SEL keeps -x there and x elsewhere, so each halfword holds |x|. */
static uint32_t abs_or_c(const int16_t *x, int n_samples) {
    uint32_t acc = 0;
    for (int n = 0; n < n_samples; n++) {
        int32_t v = x[n];
        acc |= (uint32_t)(v < 0 ? -v : v);
    }
    return acc;
}

static BS_NOINLINE uint32_t abs_or(const int16_t *x, int n_samples) {
    uint32_t acc = 0;
#if defined(__ARM_FEATURE_SIMD32) && defined(__GNUC__)
    if (((uintptr_t)x & 3u) == 0 && n_samples % 8 == 0) {
        uint32_t t;
        /* fixed registers in ascending order, as LDM loads them */
        register uint32_t a __asm__("r4"), b __asm__("r5"), c __asm__("r6"), d __asm__("r8");
        const int16_t *p = x;
        for (int n = 0; n < n_samples / 8; n++) {
            __asm__("ldmia %[p]!, {%[a], %[b], %[c], %[d]}\n\t"
                    "ssub16 %[t], %[z], %[a]\n\t" "sel %[t], %[t], %[a]\n\t" "orr %[acc], %[acc], %[t]\n\t"
                    "ssub16 %[t], %[z], %[b]\n\t" "sel %[t], %[t], %[b]\n\t" "orr %[acc], %[acc], %[t]\n\t"
                    "ssub16 %[t], %[z], %[c]\n\t" "sel %[t], %[t], %[c]\n\t" "orr %[acc], %[acc], %[t]\n\t"
                    "ssub16 %[t], %[z], %[d]\n\t" "sel %[t], %[t], %[d]\n\t" "orr %[acc], %[acc], %[t]"
                    : [p] "+r"(p), [acc] "+r"(acc), [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [d] "=&r"(d),
                      [t] "=&r"(t)
                    : [z] "r"(0u)
                    : "cc", "memory");
        }
        return (acc | (acc >> 16)) & 0xFFFFu;
    }
#endif
    return acc | abs_or_c(x, n_samples);
}

#ifdef BS_FRONTEND_M4_ASM
#define U __attribute__((unused))
/* Copy 16 * blocks samples, word-aligned, with 8-register LDM/STM. r0 = dst, r1 = src, r2 = blocks > 0. */
__attribute__((naked, noinline)) static void copy16_m4(U int16_t *dst, U const int16_t *src, U int32_t blocks) {
    __asm__ volatile(
        "push   {r4-r11, lr}\n"
        "1:\n\t"
        "ldmia  r1!, {r4-r11}\n\t"
        "stmia  r0!, {r4-r11}\n\t"
        "subs   r2, r2, #1\n\t"
        "bne    1b\n\t"
        "pop    {r4-r11, pc}\n\t");
}

/* copy16_m4() that also returns the OR of |x| over the samples, folded to 16 bits (see abs_or()). */
__attribute__((naked, noinline)) static uint32_t copy16_abs_or_m4(U int16_t *dst, U const int16_t *src,
                                                                  U int32_t blocks) {
    __asm__ volatile(
        "push   {r4-r11, lr}\n\t"
        "mov    r3, #0\n\t"
        "mov    lr, #0\n"
        "1:\n\t"
        "ldmia  r1!, {r4-r11}\n\t"
        "ssub16 r12, lr, r4\n\t" "sel    r12, r12, r4\n\t" "orr    r3, r3, r12\n\t"
        "ssub16 r12, lr, r5\n\t" "sel    r12, r12, r5\n\t" "orr    r3, r3, r12\n\t"
        "ssub16 r12, lr, r6\n\t" "sel    r12, r12, r6\n\t" "orr    r3, r3, r12\n\t"
        "ssub16 r12, lr, r7\n\t" "sel    r12, r12, r7\n\t" "orr    r3, r3, r12\n\t"
        "ssub16 r12, lr, r8\n\t" "sel    r12, r12, r8\n\t" "orr    r3, r3, r12\n\t"
        "ssub16 r12, lr, r9\n\t" "sel    r12, r12, r9\n\t" "orr    r3, r3, r12\n\t"
        "ssub16 r12, lr, r10\n\t" "sel    r12, r12, r10\n\t" "orr    r3, r3, r12\n\t"
        "ssub16 r12, lr, r11\n\t" "sel    r12, r12, r11\n\t" "orr    r3, r3, r12\n\t"
        "stmia  r0!, {r4-r11}\n\t"
        "subs   r2, r2, #1\n\t"
        "bne    1b\n\t"
        "orr    r0, r3, r3, lsr #16\n\t"
        "uxth   r0, r0\n\t"
        "pop    {r4-r11, pc}\n\t");
}
#undef U
#endif

/* Copy n int16 samples; a word at a time where source and destination share their alignment
 * (newlib-nano's memcpy and memmove go byte by byte). Forward copy: safe for the overlap shift, whose
 * destination lies below its source. */
static void copy_samples(int16_t *dst, const int16_t *src, size_t n) {
#if defined(__GNUC__) || defined(__clang__)
    if ((((uintptr_t)dst ^ (uintptr_t)src) & 3u) == 0) {
        if (((uintptr_t)dst & 3u) && n) { *dst++ = *src++; n--; }
#ifdef BS_FRONTEND_M4_ASM
        if (n >= 16) {
            size_t blocks = n / 16;
            copy16_m4(dst, src, (int32_t)blocks);
            dst += 16 * blocks;
            src += 16 * blocks;
            n -= 16 * blocks;
        }
#endif
        for (; n >= 2; n -= 2, dst += 2, src += 2) {
            uint32_t w;
            __builtin_memcpy(&w, src, 4);
            __builtin_memcpy(dst, &w, 4);
        }
    }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

/* Append n samples to the history and OR their |x| into the peak value of the blocks they land in. */
static void append_samples(bs_frontend_state *st, const int16_t *src, size_t n) {
    while (n > 0) {
        int pos = st->filled, block = pos / PEAK_BLOCK;
        size_t seg = (size_t)(PEAK_BLOCK - pos % PEAK_BLOCK);
        if (seg > n) seg = n;
        int16_t *dst = &st->history[pos];
        uint32_t acc;
#ifdef BS_FRONTEND_M4_ASM
        if (seg % 16 == 0 && (((uintptr_t)dst | (uintptr_t)src) & 3u) == 0) {
            acc = copy16_abs_or_m4(dst, src, (int32_t)(seg / 16));
        } else
#endif
        {
            copy_samples(dst, src, seg);
            acc = abs_or_c(dst, (int)seg);
        }
        st->block_peak[block] = (uint16_t)(st->block_peak[block] | acc);
        st->filled += (int32_t)seg;
        src += seg;
        n -= seg;
    }
}

/* Split the half-size complex spectrum Z into the real signal's spectrum (halved) and take its
 * magnitude, for the bins the mel bands use:
 * Y[k] / 2 = (Z[k] + conj Z[HALF-k]) / 2 - i (W^k (Z[k] - conj Z[HALF-k])) / 2, then |Y[k] / 2|.
 * The Q31 multiply supplies the second halving. */
static void spectrum_magnitude_c(const int32_t *z, uint32_t *mag, int lo, int hi) {
    for (int k = lo; k < hi; k++) {
        const int32_t *zk = &z[2 * (k & (HALF - 1))];
        const int32_t *zc = &z[2 * ((HALF - k) & (HALF - 1))];
        int32_t er = zk[0] + zc[0], ei = zk[1] - zc[1];
        int32_t dr = zk[0] - zc[0], di = zk[1] + zc[1];
        int32_t wr = bs_frontend_tables_twiddle[2 * k], wi = bs_frontend_tables_twiddle[2 * k + 1];
        int32_t pr = mls_q31(mul_q31(dr, wr), di, wi);
        int32_t pi = mla_q31(mul_q31(dr, wi), di, wr);
        int32_t yr = asr_s32(er, 1) + pi, yi = asr_s32(ei, 1) - pr;
        mag[k] = magnitude(yr, yi);
    }
}

#ifdef BS_FRONTEND_M4_ASM
/* The same loop for Cortex-M4, four bins per turn, about 38 instructions per bin where the compiler
 * needs about 60 (all 14 registers in use, so a naked function rather than inline asm). Bins k in
 * [1, HALF), so Z[k] and Z[HALF-k] need no wrap. The magnitude steps are magnitude()'s:
 *  - drop = max(17 - clz(|re| | |im|), 0) by USAT;
 *  - n == 0 gives clz 32, n << 32 == 0 (register shifts use the low byte; 32 and more give 0), table
 *    entry 0 == 0 and frac 0, hence r == 0 and a result of 0, as magnitude() returns;
 *  - SMLAWB adds (frac * d) >> 16 with d = sqrt[i+1] - sqrt[i] read as a signed halfword: d <= 4096
 *    (the table's largest step, from entry 0 to 1), so that is the C code's unsigned product >> 16;
 *  - for shift < 0 the rounded right shift (r + 2^(m-1)) >> m, m = -shift, is computed as
 *    ((r >> (m - 1)) + 1) >> 1, equal for r >= 0 (m - 1 = ~shift).
 * Arguments: r0 = &Z[lo], r1 = &Z[HALF-lo], r2 = &twiddle[lo], r3 = &mag[lo] (&mag[lo - 1] when skip is
 * odd), [sp] = number of bins (> 0), [sp+4] = sqrt table, [sp+8] = skip = bodies of the first turn to
 * skip, (4 - bins % 4) % 4. */
/* One bin of the loop below (split, |Y|, normalise, table sqrt: r in r8, shift in r7), then the left
 * shift into DEST, or for shift < 0 (N set by SUBS) a branch to the rounding right shift at SLOW. */
#define MAG_BIN(SLOW, DEST) \
        "ldrd   r4, r5, [r0], #8\n\t"        /* Z[k] */                                                \
        "ldrd   r6, r7, [r1], #-8\n\t"       /* Z[HALF-k] */                                           \
        "add    r8, r4, r6\n\t"              /* er */                                                  \
        "sub    r4, r4, r6\n\t"              /* dr */                                                  \
        "sub    r6, r5, r7\n\t"              /* ei */                                                  \
        "add    r5, r5, r7\n\t"              /* di */                                                  \
        "ldrd   r7, r9, [r2], #8\n\t"        /* wr, wi */                                              \
        "smmulr r10, r4, r7\n\t"                                                                       \
        "smmulr r4, r4, r9\n\t"                                                                        \
        "smmlsr r10, r5, r9, r10\n\t"        /* pr */                                                  \
        "smmlar r4, r5, r7, r4\n\t"          /* pi */                                                  \
        "add    r8, r4, r8, asr #1\n\t"      /* yr */                                                  \
        "rsb    r6, r10, r6, asr #1\n\t"     /* yi */                                                  \
        "eor    r4, r8, r8, asr #31\n\t"                                                               \
        "sub    r4, r4, r8, asr #31\n\t"     /* a = |yr| */                                            \
        "eor    r5, r6, r6, asr #31\n\t"                                                               \
        "sub    r5, r5, r6, asr #31\n\t"     /* b = |yi| */                                            \
        "orr    r7, r4, r5\n\t"                                                                        \
        "clz    r7, r7\n\t"                                                                            \
        "rsb    r7, r7, #17\n\t"                                                                       \
        "usat   r7, #5, r7\n\t"              /* drop */                                                \
        "lsr    r4, r4, r7\n\t"                                                                        \
        "lsr    r5, r5, r7\n\t"                                                                        \
        "mul    r4, r4, r4\n\t"                                                                        \
        "mla    r4, r5, r5, r4\n\t"          /* n */                                                   \
        "clz    r5, r4\n\t"                                                                            \
        "bic    r5, r5, #1\n\t"              /* 2 up */                                                \
        "lsl    r4, r4, r5\n\t"                                                                        \
        "subs   r7, r7, r5, lsr #1\n\t"      /* shift = drop - up; N flag kept to the branch */        \
        "lsr    r6, r4, #24\n\t"             /* i */                                                   \
        "ubfx   r4, r4, #8, #16\n\t"         /* frac */                                                \
        "add    r6, r12, r6, lsl #2\n\t"                                                               \
        "ldrd   r8, r9, [r6]\n\t"            /* sqrt[i], sqrt[i + 1] */                                \
        "sub    r9, r9, r8\n\t"                                                                        \
        "smlawb r8, r4, r9, r8\n\t"          /* r = sqrt[i] + ((sqrt[i+1] - sqrt[i]) * frac >> 16) */  \
        "bmi    " #SLOW "f\n\t"                                                                        \
        "lsl    " #DEST ", r8, r7\n"
/* shift < 0: DEST = (r + 2^(m-1)) >> m, m = -shift, as ((r >> ~shift) + 1) >> 1; then back to AFTER. */
#define MAG_ROUND(LABEL, DEST, AFTER) \
        #LABEL ":\n\t" \
        "mvn    r5, r7\n\t" \
        "lsr    r6, r8, r5\n\t" \
        "add    r6, r6, #1\n\t" \
        "lsr    " #DEST ", r6, #1\n\t" \
        "b      " #AFTER "b\n\t"
#define U __attribute__((unused)) /* the asm reads the arguments from their registers */
__attribute__((naked, noinline)) static void spectrum_magnitude_m4(U const int32_t *zk, U const int32_t *zc,
                                                                   U const int32_t *w, U uint32_t *mag,
                                                                   U int32_t bins, U const uint32_t *sqrt_table,
                                                                   U int32_t skip) {
    __asm__ volatile(
        "push   {r4-r11, lr}\n\t"
        "ldr    r11, [sp, #36]\n\t"          /* bins */
        "ldr    r12, [sp, #40]\n\t"          /* sqrt table */
        "add    r11, r0, r11, lsl #3\n\t"    /* end of Z[k] */
        "ldr    r4, [sp, #44]\n\t"          /* skip the first bodies of the first turn */
        "cmp    r4, #1\n\t"
        "beq    4f\n\t"
        "cmp    r4, #2\n\t"
        "beq    13f\n\t"
        "cmp    r4, #3\n\t"
        "beq    8f\n"
        "1:\n\t"
        MAG_BIN(3, lr)
        "4:\n\t"
        MAG_BIN(5, r4)
        "6:\n\t"
        "strd   lr, r4, [r3], #8\n\t"
        "13:\n\t"
        MAG_BIN(7, lr)
        "8:\n\t"
        MAG_BIN(9, r4)
        "10:\n\t"
        "strd   lr, r4, [r3], #8\n\t"
        "cmp    r0, r11\n\t"
        "bne    1b\n\t"
        "pop    {r4-r11, pc}\n\t"
        MAG_ROUND(3, lr, 4)
        MAG_ROUND(5, r4, 6)
        MAG_ROUND(7, lr, 8)
        MAG_ROUND(9, r4, 10)
    );
}
#undef U
#undef MAG_BIN
#undef MAG_ROUND
#endif

static void spectrum_magnitude(const int32_t *z, uint32_t *mag) {
    int lo = bs_frontend_tables_mel_bin_lo, hi = bs_frontend_tables_mel_bin_hi;
#ifdef BS_FRONTEND_M4_ASM
    if (lo >= 1 && hi > lo && hi <= HALF) {
        /* the loop does four bins per turn: the first turn starts skip bodies in; the skipped first and
         * third results go to mag[lo - 1], which is unused */
        int bins = hi - lo, skip = (4 - bins % 4) % 4;
        spectrum_magnitude_m4(&z[2 * lo], &z[2 * (HALF - lo)], &bs_frontend_tables_twiddle[2 * lo],
                              &mag[lo - (skip & 1)], bins, bs_frontend_tables_sqrt, skip);
        return;
    }
#endif
    spectrum_magnitude_c(z, mag, lo, hi);
}

/* Mel bands: bin k feeds band[k] and band[k] + 1, and band[k] rises by at most one from bin to bin
 * (the generator checks both), so two running sums suffice: the lower one is complete when the band
 * index moves on. The sums are exact integers, so any grouping gives the same bits. */
static void mel_sums_c(const uint32_t *mag, uint64_t *mel) {
    for (int b = 0; b < BS_FRONTEND_NUM_MEL; b++) mel[b] = 0;
    int cur = bs_frontend_tables_mel_band[bs_frontend_tables_mel_bin_lo];
    uint64_t sum_lo = 0, sum_hi = 0;
    for (int k = bs_frontend_tables_mel_bin_lo; k < bs_frontend_tables_mel_bin_hi; k++) {
        if (bs_frontend_tables_mel_band[k] != cur) {
            mel[cur] = sum_lo;
            sum_lo = sum_hi;
            sum_hi = 0;
            cur++;
        }
        uint64_t m = mag[k];
        sum_lo += m * bs_frontend_tables_mel_w0[k];
        sum_hi += m * bs_frontend_tables_mel_w1[k];
    }
    mel[cur] = sum_lo;
    if (cur + 1 < BS_FRONTEND_NUM_MEL) mel[cur + 1] = sum_hi;
}

#ifdef BS_FRONTEND_M4_ASM
/* mel_sums_c() for Cortex-M4: 7 instructions per bin (UMLAL into the two 64-bit sums; UMULL starts a
 * band's high sum) and 4 per band,
 * the bins of each band counted at init (count_mel_bins). Arguments: r0 = &mag[lo], r1 = &w0[lo],
 * r2 = &w1[lo], r3 = &mel_bins[first], [sp] = &mel[first], [sp+4] = bands (> 0, each with >= 1 bin),
 * [sp+8] = &mel[NUM_MEL]. Stores every band from first to first + bands (that one if it exists: the
 * high sum of the last bins). */
#define U __attribute__((unused))
__attribute__((naked, noinline)) static void mel_sums_m4(U const uint32_t *mag, U const uint16_t *w0,
                                                         U const uint16_t *w1, U const uint8_t *bins,
                                                         U uint64_t *mel, U int32_t bands, U uint64_t *mel_end) {
    __asm__ volatile(
        "push   {r4-r11, lr}\n\t"
        "ldr    r9, [sp, #36]\n\t"           /* &mel[first] */
        "ldr    r10, [sp, #40]\n\t"
        "add    r10, r3, r10\n\t"            /* end of the bin counts */
        "mov    r5, #0\n\t" "mov    r6, #0\n"
        "1:\n\t"                             /* low sum in r5:r6, high sum in r7:r8 */
        "ldrb   r4, [r3], #1\n\t"
        "ldr    r11, [r0], #4\n\t"           /* the band's first bin starts its high sum */
        "ldrh   r12, [r1], #2\n\t"
        "ldrh   lr, [r2], #2\n\t"
        "umlal  r5, r6, r11, r12\n\t"
        "umull  r7, r8, r11, lr\n\t"
        "subs   r4, r4, #1\n\t"
        "beq    12f\n"
        "11:\n\t"
        "ldr    r11, [r0], #4\n\t"
        "ldrh   r12, [r1], #2\n\t"
        "ldrh   lr, [r2], #2\n\t"
        "umlal  r5, r6, r11, r12\n\t"        /* sum_lo += m * w0 */
        "umlal  r7, r8, r11, lr\n\t"         /* sum_hi += m * w1 */
        "subs   r4, r4, #1\n\t"
        "bne    11b\n"
        "12:\n\t"
        "strd   r5, r6, [r9], #8\n\t"        /* band complete; the high sum becomes the low one */
        "cmp    r3, r10\n\t"
        "beq    3f\n"
        "2:\n\t"                             /* the same with the roles of the pairs swapped */
        "ldrb   r4, [r3], #1\n\t"
        "ldr    r11, [r0], #4\n\t"
        "ldrh   r12, [r1], #2\n\t"
        "ldrh   lr, [r2], #2\n\t"
        "umlal  r7, r8, r11, r12\n\t"
        "umull  r5, r6, r11, lr\n\t"
        "subs   r4, r4, #1\n\t"
        "beq    22f\n"
        "21:\n\t"
        "ldr    r11, [r0], #4\n\t"
        "ldrh   r12, [r1], #2\n\t"
        "ldrh   lr, [r2], #2\n\t"
        "umlal  r7, r8, r11, r12\n\t"
        "umlal  r5, r6, r11, lr\n\t"
        "subs   r4, r4, #1\n\t"
        "bne    21b\n"
        "22:\n\t"
        "strd   r7, r8, [r9], #8\n\t"
        "cmp    r3, r10\n\t"
        "bne    1b\n"
        "4:\n\t"                             /* the last high sum, now in r5:r6, feeds the next band */
        "ldr    r11, [sp, #44]\n\t"
        "cmp    r9, r11\n\t"
        "it     ne\n\t"
        "strdne r5, r6, [r9]\n\t"
        "pop    {r4-r11, pc}\n"
        "3:\n\t"
        "mov    r5, r7\n\t" "mov    r6, r8\n\t"
        "b      4b\n\t");
}
#undef U
#endif

static void mel_sums(const bs_frontend_state *st, const uint32_t *mag, uint64_t *mel) {
#ifdef BS_FRONTEND_M4_ASM
    if (st->mel_bands) {
        int first = st->mel_first, next = first + st->mel_bands;
        for (int b = 0; b < first; b++) mel[b] = 0; /* bands no bin feeds */
        mel_sums_m4(&mag[bs_frontend_tables_mel_bin_lo], &bs_frontend_tables_mel_w0[bs_frontend_tables_mel_bin_lo],
                    &bs_frontend_tables_mel_w1[bs_frontend_tables_mel_bin_lo], &st->mel_bins[first], &mel[first],
                    st->mel_bands, &mel[BS_FRONTEND_NUM_MEL]);
        for (int b = next + 1; b < BS_FRONTEND_NUM_MEL; b++) mel[b] = 0; /* bands no bin feeds */
        return;
    }
#else
    (void)st;
#endif
    mel_sums_c(mag, mel);
}

/* Setup for the Cortex-M4 mel loop: how many bins have each band as their first, when the table has
 * the shape mel_sums_c() relies on (bands >= 0 that rise by 0 or 1 from bin to bin, so every band from
 * the first to the last has at least one bin). Otherwise mel_bands stays 0 and the C loop runs. */
static void count_mel_bins(bs_frontend_state *st) {
    int lo = bs_frontend_tables_mel_bin_lo, hi = bs_frontend_tables_mel_bin_hi;
    st->mel_bands = 0;
    if (lo < 0 || hi > BS_FRONTEND_NUM_BINS || hi <= lo) return;
    for (int b = 0; b < BS_FRONTEND_NUM_MEL; b++) st->mel_bins[b] = 0;
    int first = bs_frontend_tables_mel_band[lo], last = bs_frontend_tables_mel_band[hi - 1];
    for (int k = lo; k < hi; k++) {
        int b = bs_frontend_tables_mel_band[k];
        if (b < 0 || b >= BS_FRONTEND_NUM_MEL || st->mel_bins[b] == 255) return;
        int prev = k > lo ? bs_frontend_tables_mel_band[k - 1] : b;
        if (b != prev && b != prev + 1) return;
        st->mel_bins[b]++;
    }
    st->mel_first = (uint8_t)first;
    st->mel_bands = (uint8_t)(last - first + 1);
}

/* out[b] = ln(mel[b] + 0.001) in Q10. The mel accumulators hold mel * 2^exponent (see README.md);
 * the log offset is added at that scale. */
#ifndef BS_FRONTEND_M4_ASM
static void log_mel_c(const uint64_t *mel, int exponent, uint64_t offset, int16_t *out) {
    for (int b = 0; b < BS_FRONTEND_NUM_MEL; b++) {
        int32_t l = log_q24(mel[b] + offset, exponent);
        out[b] = (int16_t)round_shift_s64(l, OUT_SHIFT);
    }
}
#else
/* log_mel_c() for Cortex-M4, two bands per turn, 22 instructions per band. With v = mel + offset split
 * in 32-bit halves and c = clz(hi) (hi != 0), m = v << c has its leading one at bit 63 and
 * len - 1 - exponent = (63 - exponent) - c, so l + 2^13 = K - c ln 2 + mant with
 * K = (63 - exponent) ln 2 + 2^13 per frame. The table needs m[62:31] = X =
 * (hi << (c + 1)) | (lo >> (31 - c)) (register shifts by 32 give 0): idx = X >> 24 and
 * frac = X & 0xFFFFFF. When hi == 0, X = lo << (clz(lo) + 1) and c grows by 32.
 * ((hi - lo) * frac) >> 24 is the high word of UMULL((hi - lo), X << 8) (the product is >= 0: the
 * table rises). |l| < 2^30 (the output range in README.md is about +-8200 in Q10), so the rounding
 * fits 32 bits.
 * Arguments: r0 = mel, r1 = out, r2 = ln 2 (Q24), r3 = log table, [sp] = offset low word,
 * [sp+4] = offset high word, [sp+8] = K. */
typedef char bs_check_log_asm_shape[OUT_SHIFT == 14 && LOG_FRAC_BITS == 24 && BS_FRONTEND_NUM_MEL == 64 ? 1 : -1];
/* One band of the loop below: v = mel + offset, normalised by CLZ (a zero high word branches to SMALL,
 * which rejoins at JOIN), table log with interpolation, rounded and stored as int16. */
#define LOG_BAND(SMALL, JOIN) \
        "ldrd   r4, r5, [r0], #8\n\t"                                                                 \
        "adds   r4, r4, r6\n\t"                                                                       \
        "adcs   r5, r5, r7\n\t"              /* v = mel + offset; Z: high word 0 */                   \
        "beq    " #SMALL "f\n\t"                                                                      \
        "clz    r8, r5\n\t"                  /* c */                                                  \
        "add    r10, r8, #1\n\t"                                                                      \
        "lsl    r5, r5, r10\n\t"                                                                      \
        "rsb    r10, r8, #31\n\t"                                                                     \
        "lsr    r4, r4, r10\n\t"                                                                      \
        "orr    r5, r5, r4\n\t"              /* X = m[62:31] */                                       \
        #JOIN ":\n\t"                                                                                 \
        "lsr    r10, r5, #24\n\t"            /* idx */                                                \
        "add    r10, r3, r10, lsl #2\n\t"                                                             \
        "ldrd   r10, r11, [r10]\n\t"         /* log[idx], log[idx + 1] */                             \
        "sub    r11, r11, r10\n\t"                                                                    \
        "lsl    r5, r5, #8\n\t"              /* frac << 8 */                                          \
        "umull  r4, r5, r11, r5\n\t"         /* r5 = ((hi - lo) * frac) >> 24 */                      \
        "add    r10, r10, r5\n\t"            /* mant */                                               \
        "add    r10, r10, r9\n\t"                                                                     \
        "mls    r10, r8, r2, r10\n\t"        /* l + 2^13 = (63 - exponent - c) ln 2 + mant + 2^13 */  \
        "asr    r10, r10, #14\n\t"                                                                    \
        "strh   r10, [r1], #2\n\t"
/* v < 2^32: normalise the low word instead, then back to JOIN. */
#define LOG_SMALL(LABEL, JOIN) \
        #LABEL ":\n\t"                      /* high word 0: v = lo */ \
        "clz    r8, r4\n\t" \
        "add    r10, r8, #1\n\t" \
        "lsl    r5, r4, r10\n\t"             /* X */ \
        "add    r8, r8, #32\n\t" \
        "b      " #JOIN "b\n\t"
#define U __attribute__((unused))
__attribute__((naked, noinline)) static void log_mel_m4(U const uint64_t *mel, U int16_t *out, U int32_t ln2_q24,
                                                        U const int32_t *log_table, U uint32_t offset_lo,
                                                        U uint32_t offset_hi, U int32_t k_q24) {
    __asm__ volatile(
        "push   {r4-r11, lr}\n\t"
        "ldr    r6, [sp, #36]\n\t"
        "ldr    r7, [sp, #40]\n\t"
        "ldr    r9, [sp, #44]\n\t"
        "add    r12, r0, #8 * 64\n"          /* end of mel */
        "1:\n\t"
        LOG_BAND(5, 6)
        LOG_BAND(7, 8)
        "cmp    r0, r12\n\t"
        "bne    1b\n\t"
        "pop    {r4-r11, pc}\n"
        LOG_SMALL(5, 6)
        LOG_SMALL(7, 8));
}
#undef U
#undef LOG_BAND
#undef LOG_SMALL
#endif

static void log_mel(const uint64_t *mel, int bits, int16_t *out) {
    int exponent = MEL_EXPONENT_BASE - bits;
    uint64_t offset = (bs_frontend_tables_log_offset_q63 + ((uint64_t)1 << (62 - exponent))) >> (63 - exponent);
#ifdef BS_FRONTEND_M4_ASM
    log_mel_m4(mel, out, bs_frontend_tables_ln2_q24, bs_frontend_tables_log, (uint32_t)offset,
               (uint32_t)(offset >> 32), (63 - exponent) * bs_frontend_tables_ln2_q24 + (1 << (OUT_SHIFT - 1)));
#else
    log_mel_c(mel, exponent, offset, out);
#endif
}

static int valid_state(const bs_frontend_state *st) {
    return st->magic == BS_FRONTEND_MAGIC && st->filled >= 0 && st->filled < BS_FRONTEND_WINDOW_SAMPLES;
}

bs_frontend_status bs_frontend_default_config(bs_frontend_config *cfg) {
    if (!cfg) return BS_FRONTEND_ERR_NULL;
    cfg->sample_rate_hz = BS_FRONTEND_SAMPLE_RATE_HZ;
    cfg->window_samples = BS_FRONTEND_WINDOW_SAMPLES;
    cfg->hop_samples = BS_FRONTEND_HOP_SAMPLES;
    cfg->fft_size = BS_FRONTEND_FFT_SIZE;
    cfg->num_mel = BS_FRONTEND_NUM_MEL;
    cfg->lower_hz = BS_FRONTEND_LOWER_HZ;
    cfg->upper_hz = BS_FRONTEND_UPPER_HZ;
    return BS_FRONTEND_OK;
}

bs_frontend_status bs_frontend_init(bs_frontend_state *st, const bs_frontend_config *cfg) {
    if (!st || !cfg) return BS_FRONTEND_ERR_NULL;
    bs_frontend_config want;
    bs_frontend_default_config(&want);
    if (cfg->sample_rate_hz != want.sample_rate_hz || cfg->window_samples != want.window_samples ||
        cfg->hop_samples != want.hop_samples || cfg->fft_size != want.fft_size ||
        cfg->num_mel != want.num_mel || cfg->lower_hz != want.lower_hz || cfg->upper_hz != want.upper_hz) {
        st->magic = 0;
        return BS_FRONTEND_ERR_CONFIG;
    }
    memset(st, 0, sizeof(*st));
    count_mel_bins(st);
    st->magic = BS_FRONTEND_MAGIC;
    return BS_FRONTEND_OK;
}

bs_frontend_status bs_frontend_reset(bs_frontend_state *st) {
    if (!st) return BS_FRONTEND_ERR_NULL;
    if (st->magic != BS_FRONTEND_MAGIC) return BS_FRONTEND_ERR_STATE;
    st->filled = 0;
    for (int b = 0; b < PEAK_BLOCKS; b++) st->block_peak[b] = 0;
    return BS_FRONTEND_OK;
}

int32_t bs_frontend_frames_for(const bs_frontend_state *st, size_t n) {
    if (!st) return BS_FRONTEND_ERR_NULL;
    if (!valid_state(st)) return BS_FRONTEND_ERR_STATE;
    size_t total = (size_t)st->filled + n;
    if (total < BS_FRONTEND_WINDOW_SAMPLES) return 0;
    size_t frames = (total - BS_FRONTEND_WINDOW_SAMPLES) / BS_FRONTEND_HOP_SAMPLES + 1;
    return frames > 0x7FFFFFFF ? BS_FRONTEND_ERR_LENGTH : (int32_t)frames;
}

/* One frame from a full window; peak has the bit length of its loudest |x| (abs_or). Block scaling:
 * b = bit length of the loudest sample; the window is applied to x * 2^(29-b) so the windowed values
 * use 28 bits whatever the level (quiet frames keep their precision). */
static void compute_frame(bs_frontend_state *st, const int16_t *window, uint32_t peak, int16_t *out) {
    int bits = bit_length_u32(peak); /* 0..16 */
    int32_t gain = (int32_t)1 << (FFT_INPUT_BITS + 1 - bits);

    int32_t *z = st->fft;
    window_and_stages_1_2(z, window, gain);
    fft_stages_3_to_8(z);

    spectrum_magnitude(z, st->mag);

    mel_sums(st, st->mag, st->mel);

    log_mel(st->mel, bits, out);
}

bs_frontend_status bs_frontend_compute_frame(bs_frontend_state *st, const int16_t *window, int16_t *out) {
    if (!st || !window || !out) return BS_FRONTEND_ERR_NULL;
    if (st->magic != BS_FRONTEND_MAGIC) return BS_FRONTEND_ERR_STATE;
    compute_frame(st, window, abs_or(window, BS_FRONTEND_WINDOW_SAMPLES), out);
    return BS_FRONTEND_OK;
}

bs_frontend_status bs_frontend_process(bs_frontend_state *st, const int16_t *pcm, size_t n,
                                       int16_t *out, size_t out_capacity, size_t *frames_out) {
    if (!st || !pcm || !frames_out) return BS_FRONTEND_ERR_NULL;
    *frames_out = 0;
    if (!valid_state(st)) return BS_FRONTEND_ERR_STATE;
    if (n == 0) return BS_FRONTEND_ERR_LENGTH;
    int32_t need = bs_frontend_frames_for(st, n);
    if (need < 0) return (bs_frontend_status)need;
    if ((size_t)need > out_capacity) return BS_FRONTEND_ERR_LENGTH;
    if (need > 0 && !out) return BS_FRONTEND_ERR_NULL;

    size_t used = 0;
    while (used < n) {
        size_t space = (size_t)(BS_FRONTEND_WINDOW_SAMPLES - st->filled);
        size_t take = n - used < space ? n - used : space;
        append_samples(st, &pcm[used], take);
        used += take;
        if (st->filled == BS_FRONTEND_WINDOW_SAMPLES) {
            uint32_t peak = 0;
            for (int b = 0; b < PEAK_BLOCKS; b++) peak |= st->block_peak[b];
            compute_frame(st, st->history, peak, &out[*frames_out * BS_FRONTEND_NUM_MEL]);
            (*frames_out)++;
            /* keep the overlap and the values of its blocks */
#ifdef BS_FRONTEND_M4_ASM
            copy16_m4(st->history, &st->history[BS_FRONTEND_HOP_SAMPLES],
                      (BS_FRONTEND_WINDOW_SAMPLES - BS_FRONTEND_HOP_SAMPLES) / 16);
#else
            copy_samples(st->history, &st->history[BS_FRONTEND_HOP_SAMPLES],
                         BS_FRONTEND_WINDOW_SAMPLES - BS_FRONTEND_HOP_SAMPLES);
#endif
            for (int b = 0; b < PEAK_BLOCKS; b++)
                st->block_peak[b] = b < KEPT_BLOCKS ? st->block_peak[b + PEAK_BLOCKS - KEPT_BLOCKS] : 0;
            st->filled = BS_FRONTEND_WINDOW_SAMPLES - BS_FRONTEND_HOP_SAMPLES;
        }
    }
    return *frames_out ? BS_FRONTEND_OK : BS_FRONTEND_NEED_MORE_INPUT;
}

const char *bs_frontend_config_hash(void) { return bs_frontend_tables_config_hash; }

size_t bs_frontend_state_bytes(void) { return sizeof(bs_frontend_state); }

size_t bs_frontend_table_bytes(void) { return bs_frontend_tables_bytes; }
