/*
 * Test driver: int16 little-endian PCM on stdin -> int16 log-mel frames on stdout, fed to the front end
 * in chunks of argv[1] samples (default 160). Built by the tests with several compilers, -O levels
 * and for Cortex-M (semihosting stdio under QEMU), to show every build gives the same bits.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bs_frontend.h"

#define MAX_CHUNK 4096

static bs_frontend_state state;
static int16_t pcm[MAX_CHUNK];
static int16_t frames[(MAX_CHUNK / BS_FRONTEND_HOP_SAMPLES + 2) * BS_FRONTEND_NUM_MEL];

int main(int argc, char **argv) {
    size_t chunk = argc > 1 ? (size_t)atoi(argv[1]) : 160;
    if (chunk < 1 || chunk > MAX_CHUNK) return 2;
    bs_frontend_config cfg;
    bs_frontend_default_config(&cfg);
    if (bs_frontend_init(&state, &cfg) != BS_FRONTEND_OK) return 3;
    for (;;) {
        size_t n = fread(pcm, sizeof(int16_t), chunk, stdin);
        if (n == 0) break;
        size_t written = 0;
        bs_frontend_status st = bs_frontend_process(&state, pcm, n, frames,
                                                    sizeof(frames) / sizeof(frames[0]) / BS_FRONTEND_NUM_MEL, &written);
        if (st < 0) return 4;
        fwrite(frames, sizeof(int16_t) * BS_FRONTEND_NUM_MEL, written, stdout);
    }
    fflush(stdout);
    return 0;
}
