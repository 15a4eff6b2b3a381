/*
 * Raspberry Pi Pico (RP2040, Cortex-M0+ at 125 MHz, no FPU, no DWT): cycles from the 1 MHz system timer
 * (x125, so the resolution is 125 cycles), the RP2040 watchdog, no microphone (PCM comes over USB serial).
 */
#include <Arduino.h>

extern "C" {
#include "bs_board.h"
#include "hardware/timer.h"
#include "hardware/watchdog.h"
}

extern "C" const bs_hal_info bs_board_info = {"pico", 125000000u, BS_HAL_UNIT_CYCLES, 125u};

/* pico-sdk's memmap_default.ld, which the Arduino-mbed RP2040 core links with */
extern "C" uint32_t __StackLimit, __StackTop;

extern "C" void bs_board_init(void)
{
    watchdog_enable(2000, 1); /* 2 s; paused while a debugger halts the core */
}

extern "C" uint32_t bs_board_cycles(void)
{
    return time_us_32() * 125u; /* wraps consistently modulo 2^32 */
}

extern "C" void bs_board_watchdog_kick(void)
{
    watchdog_update();
}

extern "C" void bs_board_stack_bounds(uint32_t **limit, uint32_t **top)
{
    *limit = &__StackLimit;
    *top = &__StackTop;
}

extern "C" int32_t bs_board_mic_start(void)
{
    return -1;
}

extern "C" int32_t bs_board_mic_read(int16_t *out, size_t cap)
{
    (void)out;
    (void)cap;
    return 0;
}
