/*
 * bs_frontend runtime: integer-only log-mel, one frame per hop. See README.md for the Q formats and
 * the overflow argument; python/bowlsense/frontend/reference.py is an independent numpy version of
 * the same integer algorithm that the tests compare against bit for bit.
 */
#include "bs_frontend.h"

#include <string.h>

#include "bs_frontend_tables.h"

#define BS_FRONTEND_MAGIC 0x62734645u /* "bsFE" */
#define HALF (BS_FRONTEND_FFT_SIZE / 2)
#define FFT_INPUT_BITS 28   /* |windowed sample| < 2^28: see README.md, "Why int32 cannot overflow" */
#define LOG_FRAC_BITS 24
#define OUT_SHIFT (LOG_FRAC_BITS - BS_FRONTEND_OUTPUT_FRAC_BITS)
/* The mel accumulators hold mel * 2^(MEL_EXPONENT_BASE - b), b = bit length of the frame's peak sample
 * (README.md, "Scale bookkeeping"). */
#define MEL_EXPONENT_BASE 50

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
static int32_t log_q24(uint64_t v, int exponent) {
    int len = bit_length_u64(v);
    uint64_t m = v << (64 - len); /* top bit set; the 63 bits below it are the fraction f */
    uint32_t idx = (uint32_t)(m >> 55) & 0xFFu;
    uint32_t frac = (uint32_t)(m >> 31) & 0xFFFFFFu;
    int32_t lo = bs_frontend_tables_log[idx];
    int32_t hi = bs_frontend_tables_log[idx + 1];
    int32_t mant = lo + (int32_t)(((int64_t)(hi - lo) * frac) >> 24);
    return (int32_t)(len - 1 - exponent) * bs_frontend_tables_ln2_q24 + mant;
}

/* In-place radix-2 decimation-in-time FFT of HALF complex values (interleaved re, im), input in
 * bit-reversed order, halving at every stage so values never grow: a' = a/2 + W b/2, b' = a/2 - W b/2
 * (README.md, "Why int32 cannot overflow"). Output is the DFT / HALF.
 *
 * The first two stages run fused over groups of four: their twiddles are 1 and -i, for which the
 * rounded Q31 products reduce exactly to shifts (W b/2 = b >> 1 for 1; for -i, with the table's
 * cos = 0 and -sin = -2^31, the product rounds to ((im + 1) >> 1, (1 - re) >> 1)). Same bits as the
 * generic stage, without multiplies or per-group loop overhead. */
static void fft_half_scaled(int32_t *z) {
    for (int32_t *q = z; q < z + 2 * HALF; q += 8) {
        /* stage 1: (q0, q1) and (q2, q3), twiddle 1 */
        int32_t h0r = asr_s32(q[0], 1), h0i = asr_s32(q[1], 1), h1r = asr_s32(q[2], 1), h1i = asr_s32(q[3], 1);
        int32_t h2r = asr_s32(q[4], 1), h2i = asr_s32(q[5], 1), h3r = asr_s32(q[6], 1), h3i = asr_s32(q[7], 1);
        int32_t u0r = h0r + h1r, u0i = h0i + h1i, u1r = h0r - h1r, u1i = h0i - h1i;
        int32_t u2r = h2r + h3r, u2i = h2i + h3i, u3r = h2r - h3r, u3i = h2i - h3i;
        /* stage 2: (u0, u2) with twiddle 1, (u1, u3) with twiddle -i */
        int32_t tr = asr_s32(u2r, 1), ti = asr_s32(u2i, 1);
        int32_t ar = asr_s32(u0r, 1), ai = asr_s32(u0i, 1);
        q[0] = ar + tr; q[1] = ai + ti;
        q[4] = ar - tr; q[5] = ai - ti;
        tr = asr_s32(u3i + 1, 1);
        ti = asr_s32(1 - u3r, 1);
        ar = asr_s32(u1r, 1);
        ai = asr_s32(u1i, 1);
        q[2] = ar + tr; q[3] = ai + ti;
        q[6] = ar - tr; q[7] = ai - ti;
    }
    for (int h = 4; h < HALF; h <<= 1) {
        int step = 2 * (HALF / h); /* W_(2h)^j == W_FFT_SIZE^(j * HALF / h); 2 ints per twiddle */
        for (int start = 0; start < HALF; start += 2 * h) {
            int32_t *a = &z[2 * start];
            int32_t *b = a + 2 * h;
            /* j == 0: the twiddle is 1, so W b / 2 is b / 2 without a multiply */
            int32_t ar = asr_s32(a[0], 1), ai = asr_s32(a[1], 1);
            int32_t tr = asr_s32(b[0], 1), ti = asr_s32(b[1], 1);
            a[0] = ar + tr; a[1] = ai + ti;
            b[0] = ar - tr; b[1] = ai - ti;
            const int32_t *w = &bs_frontend_tables_twiddle[step];
            for (int j = 1; j < h; j++, w += step) {
                a += 2;
                b += 2;
                int32_t wr = w[0], wi = w[1];
                tr = mls_q31(mul_q31(b[0], wr), b[1], wi);
                ti = mla_q31(mul_q31(b[0], wi), b[1], wr);
                ar = asr_s32(a[0], 1);
                ai = asr_s32(a[1], 1);
                a[0] = ar + tr; a[1] = ai + ti;
                b[0] = ar - tr; b[1] = ai - ti;
            }
        }
    }
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
    st->magic = BS_FRONTEND_MAGIC;
    return BS_FRONTEND_OK;
}

bs_frontend_status bs_frontend_reset(bs_frontend_state *st) {
    if (!st) return BS_FRONTEND_ERR_NULL;
    if (st->magic != BS_FRONTEND_MAGIC) return BS_FRONTEND_ERR_STATE;
    st->filled = 0;
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

bs_frontend_status bs_frontend_compute_frame(bs_frontend_state *st, const int16_t *window, int16_t *out) {
    if (!st || !window || !out) return BS_FRONTEND_ERR_NULL;
    if (st->magic != BS_FRONTEND_MAGIC) return BS_FRONTEND_ERR_STATE;

    /* Block scaling: find the bit length b of the loudest sample, then window x * 2^(29-b) so the
     * windowed values use 28 bits whatever the level (quiet frames keep their precision). */
    int32_t hi = 0, lo = 0;
    for (int n = 0; n < BS_FRONTEND_WINDOW_SAMPLES; n++) {
        int32_t x = window[n];
        hi = x > hi ? x : hi;
        lo = x < lo ? x : lo;
    }
    uint32_t peak = (uint32_t)(-lo > hi ? -lo : hi);
    int bits = bit_length_u32(peak); /* 0..16 */
    int32_t gain = (int32_t)1 << (FFT_INPUT_BITS + 1 - bits);

    /* Window, scale, and pack the real signal as HALF complex values z[n] = v[2n] + i v[2n+1],
     * written straight into bit-reversed positions; samples past the window are zero padding. */
    int32_t *z = st->fft;
    for (int n = 0; n < BS_FRONTEND_WINDOW_SAMPLES / 2; n++) {
        int r = 2 * bs_frontend_tables_bitrev[n];
        z[r] = mul_q31(window[2 * n] * gain, bs_frontend_tables_window[2 * n]);
        z[r + 1] = mul_q31(window[2 * n + 1] * gain, bs_frontend_tables_window[2 * n + 1]);
    }
    for (int n = BS_FRONTEND_WINDOW_SAMPLES / 2; n < HALF; n++) {
        int r = 2 * bs_frontend_tables_bitrev[n];
        z[r] = 0;
        z[r + 1] = 0;
    }
    fft_half_scaled(z);

    /* Split the half-size complex spectrum Z into the real signal's spectrum (halved):
     * Y[k] / 2 = (Z[k] + conj Z[HALF-k]) / 2 - i (W^k (Z[k] - conj Z[HALF-k])) / 2, then |Y[k] / 2|.
     * The Q31 multiply supplies the second halving. */
    for (int k = bs_frontend_tables_mel_bin_lo; k < bs_frontend_tables_mel_bin_hi; k++) {
        const int32_t *zk = &z[2 * (k & (HALF - 1))];
        const int32_t *zc = &z[2 * ((HALF - k) & (HALF - 1))];
        int32_t er = zk[0] + zc[0], ei = zk[1] - zc[1];
        int32_t dr = zk[0] - zc[0], di = zk[1] + zc[1];
        int32_t wr = bs_frontend_tables_twiddle[2 * k], wi = bs_frontend_tables_twiddle[2 * k + 1];
        int32_t pr = mls_q31(mul_q31(dr, wr), di, wi);
        int32_t pi = mla_q31(mul_q31(dr, wi), di, wr);
        int32_t yr = asr_s32(er, 1) + pi, yi = asr_s32(ei, 1) - pr;
        st->mag[k] = magnitude(yr, yi);
    }

    /* Mel bands: bin k feeds band[k] and band[k] + 1, and band[k] rises by at most one from bin to
     * bin (the generator checks both), so two running sums suffice: the lower one is complete when
     * the band index moves on. */
    for (int b = 0; b < BS_FRONTEND_NUM_MEL; b++) st->mel[b] = 0;
    {
        int cur = bs_frontend_tables_mel_band[bs_frontend_tables_mel_bin_lo];
        uint64_t sum_lo = 0, sum_hi = 0;
        for (int k = bs_frontend_tables_mel_bin_lo; k < bs_frontend_tables_mel_bin_hi; k++) {
            if (bs_frontend_tables_mel_band[k] != cur) {
                st->mel[cur] = sum_lo;
                sum_lo = sum_hi;
                sum_hi = 0;
                cur++;
            }
            uint64_t m = st->mag[k];
            sum_lo += m * bs_frontend_tables_mel_w0[k];
            sum_hi += m * bs_frontend_tables_mel_w1[k];
        }
        st->mel[cur] = sum_lo;
        if (cur + 1 < BS_FRONTEND_NUM_MEL) st->mel[cur + 1] = sum_hi;
    }

    /* mel accumulators hold mel * 2^exponent (see README.md); add the log offset at that scale. */
    int exponent = MEL_EXPONENT_BASE - bits;
    uint64_t offset = (bs_frontend_tables_log_offset_q63 + ((uint64_t)1 << (62 - exponent))) >> (63 - exponent);
    for (int b = 0; b < BS_FRONTEND_NUM_MEL; b++) {
        int32_t l = log_q24(st->mel[b] + offset, exponent);
        out[b] = (int16_t)round_shift_s64(l, OUT_SHIFT);
    }
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
        int16_t *dst = &st->history[st->filled];
        for (size_t i = 0; i < take; i++) dst[i] = pcm[used + i];
        st->filled += (int32_t)take;
        used += take;
        if (st->filled == BS_FRONTEND_WINDOW_SAMPLES) {
            bs_frontend_compute_frame(st, st->history, &out[*frames_out * BS_FRONTEND_NUM_MEL]);
            (*frames_out)++;
            /* keep the overlap; a plain loop, since newlib-nano's memmove goes byte by byte */
            for (int i = 0; i < BS_FRONTEND_WINDOW_SAMPLES - BS_FRONTEND_HOP_SAMPLES; i++)
                st->history[i] = st->history[i + BS_FRONTEND_HOP_SAMPLES];
            st->filled = BS_FRONTEND_WINDOW_SAMPLES - BS_FRONTEND_HOP_SAMPLES;
        }
    }
    return *frames_out ? BS_FRONTEND_OK : BS_FRONTEND_NEED_MORE_INPUT;
}

const char *bs_frontend_config_hash(void) { return bs_frontend_tables_config_hash; }

size_t bs_frontend_state_bytes(void) { return sizeof(bs_frontend_state); }

size_t bs_frontend_table_bytes(void) { return bs_frontend_tables_bytes; }
