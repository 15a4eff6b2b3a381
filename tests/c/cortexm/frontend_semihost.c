/*
 * Front end on bare-metal Cortex-M under QEMU, I/O through Arm semihosting.
 * Command line (QEMU -append): "IN.raw OUT.raw CHUNK": int16 PCM in, int16 frames out. QEMU puts the
 * kernel's own path first, so the semihosting command line is "KERNEL IN.raw OUT.raw CHUNK".
 * Also writes OUT.raw.ticks: uint32 SysTick ticks per bs_frontend_process call that completed exactly
 * one frame. Under `-icount shift=0` one instruction takes 1 ns and SysTick counts at 25 MHz, so
 * one tick is 40 instructions.
 */
#include <stddef.h>
#include <stdint.h>

#include "bs_frontend.h"
#include "semihost_rt.h"

static char cmdline[512];
static char ticks_path[520];
static uint32_t ticks[4096];
static bs_frontend_state state;
static int16_t pcm[4096];
static int16_t frames[(4096 / BS_FRONTEND_HOP_SAMPLES + 2) * BS_FRONTEND_NUM_MEL];

int main(void) {
    int32_t cmd_args[2] = {(int32_t)(uintptr_t)cmdline, sizeof(cmdline) - 1};
    if (semihost(SYS_GET_CMDLINE, cmd_args) != 0) exit_with(10);
    /* split "KERNEL IN OUT CHUNK" in place */
    char *words[4] = {0};
    int count = 0;
    for (char *p = cmdline; *p && count < 4;) {
        while (*p == ' ') *p++ = 0;
        if (!*p) break;
        words[count++] = p;
        while (*p && *p != ' ') p++;
    }
    if (count < 3) exit_with(11);
    size_t chunk = 160;
    if (count == 4) { chunk = 0; for (const char *c = words[3]; *c; c++) chunk = chunk * 10 + (size_t)(*c - '0'); }
    if (chunk < 1 || chunk > 4096) exit_with(12);

    int32_t in = open_file(words[1], 1 /* "rb" */);
    int32_t out = open_file(words[2], 5 /* "wb" */);
    size_t len = length(words[2]);
    for (size_t i = 0; i < len; i++) ticks_path[i] = words[2][i];
    for (size_t i = 0; i < 7; i++) ticks_path[len + i] = ".ticks"[i];
    int32_t ticks_out = open_file(ticks_path, 5);
    if (in < 0 || out < 0 || ticks_out < 0) exit_with(13);
    size_t n_ticks = 0;
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* enable, processor clock, no interrupt */
    bs_frontend_config cfg;
    bs_frontend_default_config(&cfg);
    if (bs_frontend_init(&state, &cfg) != BS_FRONTEND_OK) exit_with(14);
    for (;;) {
        int32_t rd[3] = {in, (int32_t)(uintptr_t)pcm, (int32_t)(chunk * sizeof(int16_t))};
        int32_t not_read = semihost(SYS_READ, rd);
        size_t n = (chunk * sizeof(int16_t) - (size_t)not_read) / sizeof(int16_t);
        if (n == 0) break;
        size_t written = 0;
        uint32_t start = SYST_CVR;
        bs_frontend_status status = bs_frontend_process(&state, pcm, n, frames, sizeof(frames) / sizeof(frames[0]) / BS_FRONTEND_NUM_MEL,
                                &written);
        uint32_t elapsed = (start - SYST_CVR) & 0xFFFFFFu; /* counts down, 24 bits */
        if (status < 0) exit_with(15);
        if (written == 1 && n_ticks < sizeof(ticks) / sizeof(ticks[0])) ticks[n_ticks++] = elapsed;
        int32_t wr[3] = {out, (int32_t)(uintptr_t)frames, (int32_t)(written * BS_FRONTEND_NUM_MEL * sizeof(int16_t))};
        if (written && semihost(SYS_WRITE, wr) != 0) exit_with(16);
    }
    int32_t wt[3] = {ticks_out, (int32_t)(uintptr_t)ticks, (int32_t)(n_ticks * sizeof(uint32_t))};
    if (n_ticks && semihost(SYS_WRITE, wt) != 0) exit_with(17);
    semihost(SYS_CLOSE, &ticks_out);
    semihost(SYS_CLOSE, &in);
    semihost(SYS_CLOSE, &out);
    exit_with(0);
    return 0;
}
