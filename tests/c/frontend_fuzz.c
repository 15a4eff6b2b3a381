/*
 * Robustness fuzz for the front end, built with ASan + UBSan by the tests: random configurations
 * (mostly invalid), NULL pointers, zero and odd lengths, random chunking and random samples. Any
 * sanitizer report aborts (-fno-sanitize-recover); the API contract is asserted explicitly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bs_frontend.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t next_u32(void) { /* xorshift64*: deterministic across platforms */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

#define FAIL(msg) do { fprintf(stderr, "iteration %ld: %s\n", it, msg); return 1; } while (0)

int main(int argc, char **argv) {
    long iterations = argc > 1 ? atol(argv[1]) : 100000;
    static int16_t pcm[2048];
    static int16_t out[16 * BS_FRONTEND_NUM_MEL];
    bs_frontend_state *st = malloc(sizeof(*st));
    for (long it = 0; it < iterations; it++) {
        bs_frontend_config cfg;
        bs_frontend_default_config(&cfg);
        int corrupt = (next_u32() & 3) == 0;
        if (corrupt) { /* one field off by a random amount */
            int32_t delta = ((int32_t)(next_u32() % 2001) - 1000) | 1; /* odd, so never 0 */
            switch (next_u32() % 7) {
            case 0: cfg.sample_rate_hz += delta; break;
            case 1: cfg.window_samples += delta; break;
            case 2: cfg.hop_samples += delta; break;
            case 3: cfg.fft_size += delta; break;
            case 4: cfg.num_mel += delta; break;
            case 5: cfg.lower_hz += delta; break;
            default: cfg.upper_hz += delta; break;
            }
        }
        memset(st, (int)(next_u32() & 0xFF), sizeof(*st)); /* garbage before init */
        bs_frontend_status s = bs_frontend_init(st, &cfg);
        if (corrupt && s != BS_FRONTEND_ERR_CONFIG) FAIL("bad config accepted");
        if (!corrupt && s != BS_FRONTEND_OK) FAIL("good config rejected");
        if (bs_frontend_init(NULL, &cfg) != BS_FRONTEND_ERR_NULL) FAIL("NULL state accepted");
        if (bs_frontend_init(st, NULL) != BS_FRONTEND_ERR_NULL) FAIL("NULL config accepted");
        size_t written = 99;
        if (corrupt) { /* every call on an uninitialised state must refuse, not crash */
            if (bs_frontend_process(st, pcm, 10, out, 16, &written) != BS_FRONTEND_ERR_STATE) FAIL("process on bad state");
            if (bs_frontend_reset(st) != BS_FRONTEND_ERR_STATE) FAIL("reset on bad state");
            if (bs_frontend_compute_frame(st, pcm, out) != BS_FRONTEND_ERR_STATE) FAIL("frame on bad state");
            continue;
        }
        int amplitude_bits = (int)(next_u32() % 17);
        for (int rounds = (int)(next_u32() % 4); rounds >= 0; rounds--) {
            size_t n = next_u32() % 2049;
            for (size_t i = 0; i < n; i++) {
                int32_t v = (int32_t)(next_u32() & 0xFFFF) - 32768;
                pcm[i] = (int16_t)(amplitude_bits >= 16 ? v : v >> (16 - amplitude_bits));
            }
            int32_t expect = bs_frontend_frames_for(st, n);
            if (expect < 0) FAIL("frames_for failed");
            size_t cap = next_u32() % 16;
            int null_out = (next_u32() % 8) == 0;
            s = bs_frontend_process(st, n ? pcm : NULL, n, null_out ? NULL : out, cap, &written);
            if (n == 0) {
                if (s != BS_FRONTEND_ERR_NULL && s != BS_FRONTEND_ERR_LENGTH) FAIL("zero length accepted");
            } else if ((size_t)expect > cap) {
                if (s != BS_FRONTEND_ERR_LENGTH || written != 0) FAIL("overflowing output accepted");
            } else if (null_out && expect > 0) {
                if (s != BS_FRONTEND_ERR_NULL) FAIL("NULL output accepted");
            } else {
                if (s < 0 || written != (size_t)expect) FAIL("frame count differs from frames_for");
                for (size_t i = 0; i < written * BS_FRONTEND_NUM_MEL; i++)
                    if (out[i] < -7200 || out[i] > 12000) FAIL("log-mel value out of range");
            }
        }
        if (bs_frontend_process(st, pcm, 1, out, 16, NULL) != BS_FRONTEND_ERR_NULL) FAIL("NULL frames_out accepted");
        if (bs_frontend_compute_frame(st, NULL, out) != BS_FRONTEND_ERR_NULL) FAIL("NULL window accepted");
        if (bs_frontend_reset(NULL) != BS_FRONTEND_ERR_NULL) FAIL("NULL reset accepted");
    }
    free(st);
    printf("fuzz: %ld iterations, no failures\n", iterations);
    return 0;
}
