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
#define FFT_INPUT_BITS 20   /* |windowed sample| < 2^20: see README.md, "Why int32 cannot overflow" */
#define TWIDDLE_FRAC_BITS 30
#define WINDOW_FRAC_BITS 30
#define LOG_FRAC_BITS 24
#define OUT_SHIFT (LOG_FRAC_BITS - BS_FRONTEND_OUTPUT_FRAC_BITS)

/* Arithmetic right shift with round-half-up. C99 leaves >> of negative values implementation-defined;
 * every compiler this project supports (gcc, clang; x86-64, Arm) shifts arithmetically, and the
 * tests compare against a numpy reference that does the same. Kept in one place on purpose. */
static inline int64_t round_shift_s64(int64_t x, int shift) {
    return (x + ((int64_t)1 << (shift - 1))) >> shift;
}

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

/* sqrt of a 64-bit value, ~16 significant bits: normalise to [2^30, 2^32) by an even shift, seed
 * from the top 8 bits, two Newton steps, shift back. Deterministic, not exactly floor(sqrt). */
static uint32_t approx_sqrt_u64(uint64_t p) {
    if (p == 0) return 0;
    int e = bit_length_u64(p) - 32;
    int j = (e + 1) >> 1; /* floor division: p >> 2j (or << -2j) has 31 or 32 bits */
    uint32_t n = (uint32_t)(j >= 0 ? p >> (2 * j) : p << (-2 * j));
    uint32_t r = bs_frontend_tables_sqrt_seed[n >> 24];
    r = (r + n / r) >> 1;
    r = (r + n / r) >> 1;
    if (j >= 0) return r << j;
    return (r + (1u << (-j - 1))) >> (-j);
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

/* In-place radix-2 decimation-in-time FFT of HALF complex values (interleaved re, im), input
 * already in bit-reversed order. Twiddle products are rounded once per complex multiply. */
static void fft_half(int32_t *z) {
    for (int size = 2; size <= HALF; size <<= 1) {
        int h = size >> 1;
        int step = BS_FRONTEND_FFT_SIZE / size; /* W_size^j == W_FFT_SIZE^(j * step) */
        for (int start = 0; start < HALF; start += size) {
            for (int j = 0; j < h; j++) {
                int32_t *a = &z[2 * (start + j)];
                int32_t *b = &z[2 * (start + j + h)];
                int32_t tr, ti;
                if (j == 0) { /* twiddle 1: exact, skip the multiply */
                    tr = b[0];
                    ti = b[1];
                } else {
                    int64_t wr = bs_frontend_tables_twiddle_re[j * step];
                    int64_t wi = bs_frontend_tables_twiddle_im[j * step];
                    tr = (int32_t)round_shift_s64(b[0] * wr - b[1] * wi, TWIDDLE_FRAC_BITS);
                    ti = (int32_t)round_shift_s64(b[0] * wi + b[1] * wr, TWIDDLE_FRAC_BITS);
                }
                int32_t ar = a[0], ai = a[1];
                a[0] = ar + tr;
                a[1] = ai + ti;
                b[0] = ar - tr;
                b[1] = ai - ti;
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

    /* Block scaling: shift so the loudest windowed sample just fits FFT_INPUT_BITS. */
    uint32_t peak = 0;
    for (int n = 0; n < BS_FRONTEND_WINDOW_SAMPLES; n++) {
        int32_t x = window[n];
        uint32_t a = (uint32_t)(x < 0 ? -x : x);
        if (a > peak) peak = a;
    }
    int s = FFT_INPUT_BITS - bit_length_u32(peak); /* 4..20 */

    /* Window, scale, and pack the real signal as HALF complex values z[n] = v[2n] + i v[2n+1],
     * written straight into bit-reversed positions; samples past the window are zero padding. */
    int32_t *z = st->fft;
    for (int n = 0; n < HALF; n++) {
        int32_t v[2] = {0, 0};
        for (int c = 0; c < 2; c++) {
            int idx = 2 * n + c;
            if (idx < BS_FRONTEND_WINDOW_SAMPLES) {
                int64_t prod = (int64_t)window[idx] * bs_frontend_tables_window[idx];
                v[c] = (int32_t)round_shift_s64(prod, WINDOW_FRAC_BITS - s);
            }
        }
        int r = bs_frontend_tables_bitrev[n];
        z[2 * r] = v[0];
        z[2 * r + 1] = v[1];
    }
    fft_half(z);

    /* Split the half-size complex spectrum Z into the real signal's spectrum, doubled:
     * Y[k] = (Z[k] + conj Z[HALF-k]) - i W^k (Z[k] - conj Z[HALF-k]), then |Y[k]|. */
    for (int k = bs_frontend_tables_mel_bin_lo; k < bs_frontend_tables_mel_bin_hi; k++) {
        int k2 = (HALF - k) & (HALF - 1);
        int32_t zr = z[2 * (k & (HALF - 1))], zi = z[2 * (k & (HALF - 1)) + 1];
        int32_t cr = z[2 * k2], ci = -z[2 * k2 + 1];
        int64_t er = (int64_t)zr + cr, ei = (int64_t)zi + ci;
        int64_t dr = (int64_t)zr - cr, di = (int64_t)zi - ci;
        int64_t wr = bs_frontend_tables_twiddle_re[k], wi = bs_frontend_tables_twiddle_im[k];
        int64_t pr = round_shift_s64(dr * wr - di * wi, TWIDDLE_FRAC_BITS);
        int64_t pi = round_shift_s64(dr * wi + di * wr, TWIDDLE_FRAC_BITS);
        int64_t yr = er + pi, yi = ei - pr;
        st->mag[k] = approx_sqrt_u64((uint64_t)(yr * yr) + (uint64_t)(yi * yi));
    }

    /* Mel bands: each bin feeds at most two adjacent bands (HTK triangles overlap pairwise). */
    memset(st->mel, 0, sizeof(st->mel));
    for (int k = bs_frontend_tables_mel_bin_lo; k < bs_frontend_tables_mel_bin_hi; k++) {
        int b = bs_frontend_tables_mel_band[k];
        if (b < 0) continue;
        uint64_t m = st->mag[k];
        st->mel[b] += m * bs_frontend_tables_mel_w0[k];
        if (b + 1 < BS_FRONTEND_NUM_MEL) st->mel[b + 1] += m * bs_frontend_tables_mel_w1[k];
    }

    /* mel accumulators hold mel * 2^exponent (see README.md); add the log offset at that scale. */
    int exponent = 31 + s;
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
        memcpy(&st->history[st->filled], &pcm[used], take * sizeof(int16_t));
        st->filled += (int32_t)take;
        used += take;
        if (st->filled == BS_FRONTEND_WINDOW_SAMPLES) {
            bs_frontend_compute_frame(st, st->history, &out[*frames_out * BS_FRONTEND_NUM_MEL]);
            (*frames_out)++;
            memmove(st->history, &st->history[BS_FRONTEND_HOP_SAMPLES],
                    (BS_FRONTEND_WINDOW_SAMPLES - BS_FRONTEND_HOP_SAMPLES) * sizeof(int16_t));
            st->filled = BS_FRONTEND_WINDOW_SAMPLES - BS_FRONTEND_HOP_SAMPLES;
        }
    }
    return *frames_out ? BS_FRONTEND_OK : BS_FRONTEND_NEED_MORE_INPUT;
}

const char *bs_frontend_config_hash(void) { return bs_frontend_tables_config_hash; }

size_t bs_frontend_state_bytes(void) { return sizeof(bs_frontend_state); }

size_t bs_frontend_table_bytes(void) { return bs_frontend_tables_bytes; }
