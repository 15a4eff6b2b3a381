/*
 * bs_frontend: fixed-point log-mel front end (YAMNet's parameters), shared by the firmware and the
 * Python package (through cffi). Integer arithmetic only on the runtime path, so every compiler,
 * optimisation level and CPU produces the same bits.
 *
 * Pipeline per 10 ms hop (see README.md in this folder for the Q-format table):
 *   int16 PCM -> 400-sample periodic Hann (Q15) with block scaling -> 512-point real FFT (int32,
 *   Q30 twiddles) -> magnitude (integer sqrt) -> 64 HTK mel bands 125-7500 Hz (Q15 weights) ->
 *   ln(mel + 0.001) -> int16 in Q10 (1/1024 nat per LSB).
 *
 * Memory is owned by the caller: bs_frontend_state holds history and scratch (no malloc, no stdio).
 */
#ifndef BS_FRONTEND_H
#define BS_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Compile-time shape of the front end. The tables in bs_frontend_tables.c are generated for exactly
 * these values from the Python FrontendConfig (the single source of truth). */
enum {
    BS_FRONTEND_SAMPLE_RATE_HZ = 16000,
    BS_FRONTEND_WINDOW_SAMPLES = 400,
    BS_FRONTEND_HOP_SAMPLES = 160,
    BS_FRONTEND_FFT_SIZE = 512,
    BS_FRONTEND_NUM_BINS = 257,      /* FFT_SIZE / 2 + 1 */
    BS_FRONTEND_NUM_MEL = 64,
    BS_FRONTEND_LOWER_HZ = 125,
    BS_FRONTEND_UPPER_HZ = 7500,
    BS_FRONTEND_OUTPUT_FRAC_BITS = 10 /* output Q format: value / 1024 = natural log in nats */
};

/* One status enum for the library: 0 is success, negatives are errors. */
typedef enum {
    BS_FRONTEND_OK = 0,
    BS_FRONTEND_NEED_MORE_INPUT = 1, /* not an error: all input consumed, no frame completed */
    BS_FRONTEND_ERR_NULL = -1,       /* a required pointer was NULL */
    BS_FRONTEND_ERR_CONFIG = -2,     /* configuration differs from the compiled tables */
    BS_FRONTEND_ERR_LENGTH = -3,     /* zero length, or output capacity too small */
    BS_FRONTEND_ERR_STATE = -4       /* state not initialised (or corrupted) */
} bs_frontend_status;

/* Runtime description of the front end; must equal the compiled configuration. */
typedef struct {
    int32_t sample_rate_hz;
    int32_t window_samples;
    int32_t hop_samples;
    int32_t fft_size;
    int32_t num_mel;
    int32_t lower_hz;
    int32_t upper_hz;
} bs_frontend_config;

/* Caller-owned state. Fields are private; the struct is public only so callers can allocate it
 * statically (firmware) or with ffi.new (Python). */
typedef struct {
    uint32_t magic;                                 /* set by init, checked on every call */
    int32_t filled;                                 /* samples currently in history[] */
    int16_t history[BS_FRONTEND_WINDOW_SAMPLES];    /* last samples of the stream */
    int32_t fft[BS_FRONTEND_FFT_SIZE];              /* scratch: interleaved re/im, 256 complex */
    uint32_t mag[BS_FRONTEND_NUM_BINS];             /* scratch: magnitude spectrum */
    uint64_t mel[BS_FRONTEND_NUM_MEL];              /* scratch: mel accumulators */
    uint16_t block_peak[BS_FRONTEND_WINDOW_SAMPLES / 80]; /* OR of |x| over each 80-sample block of history[] */
    uint8_t mel_bins[BS_FRONTEND_NUM_MEL];          /* set at init: bins whose first band is each band */
    uint8_t mel_first, mel_bands;                   /* set at init: bands those bins cover (0: unused) */
} bs_frontend_state;

/* Fill *cfg with the compiled configuration. Returns BS_FRONTEND_ERR_NULL if cfg is NULL. */
bs_frontend_status bs_frontend_default_config(bs_frontend_config *cfg);

/* Validate cfg against the compiled tables and clear the state. */
bs_frontend_status bs_frontend_init(bs_frontend_state *st, const bs_frontend_config *cfg);

/* Forget all history: the next frame needs a full window of new samples. */
bs_frontend_status bs_frontend_reset(bs_frontend_state *st);

/* Number of frames that feeding n more samples would complete (for sizing an output buffer).
 * Returns a negative status on error. */
int32_t bs_frontend_frames_for(const bs_frontend_state *st, size_t n);

/*
 * Feed n samples (any n >= 1, any chunking), writing each completed frame of NUM_MEL int16 Q10
 * values to out (row after row). out_capacity is the number of frames out can hold; if feeding n
 * samples would complete more frames than that, nothing is consumed and BS_FRONTEND_ERR_LENGTH is
 * returned. *frames_out receives the number of frames written.
 * Returns BS_FRONTEND_OK if at least one frame was written, BS_FRONTEND_NEED_MORE_INPUT otherwise.
 */
bs_frontend_status bs_frontend_process(bs_frontend_state *st, const int16_t *pcm, size_t n,
                                       int16_t *out, size_t out_capacity, size_t *frames_out);

/* Compute one frame from exactly WINDOW_SAMPLES samples, independent of any history (the building
 * block of bs_frontend_process; used by tests and the device's FEATURES command). */
bs_frontend_status bs_frontend_compute_frame(bs_frontend_state *st, const int16_t *window,
                                             int16_t *out);

/* Hex sha256 (64 chars + NUL) of the canonical configuration the tables were generated from; equals
 * FrontendConfig.hash in Python, travels in the model manifest and the firmware's HELLO. */
const char *bs_frontend_config_hash(void);

/* Bytes of RAM the caller must provide (sizeof(bs_frontend_state)) and of const tables in flash. */
size_t bs_frontend_state_bytes(void);
size_t bs_frontend_table_bytes(void);

#ifdef __cplusplus
}
#endif

#endif /* BS_FRONTEND_H */
