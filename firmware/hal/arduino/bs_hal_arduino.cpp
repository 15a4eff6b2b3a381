/*
 * hal.h for Arduino-framework boards: serial over USB CDC (`Serial`), setup()/loop() driving bs_app,
 * stack painting, and the board specifics from bs_board.h. Only PlatformIO builds this folder.
 */
#include <Arduino.h>

extern "C" {
#include "bs_app.h"
#include "bs_board.h"
#include "hal.h"
}

#ifndef BS_SERIAL_BAUD
#define BS_SERIAL_BAUD 115200
#endif

static const uint32_t kPaint = 0xC5AC5AC5u;

extern "C" {

void bs_hal_init(void)
{
    Serial.begin(BS_SERIAL_BAUD);
    bs_board_init();
    /* Paint the unused part of the stack (below the current frame) for the high-water mark. */
    uint32_t *limit = 0;
    uint32_t *top = 0;
    bs_board_stack_bounds(&limit, &top);
    uint32_t here = 0;
    for (uint32_t *p = limit; p && p < (uint32_t *)((uintptr_t)&here - 256u); ++p) {
        *p = kPaint;
    }
}

const bs_hal_info *bs_hal_get_info(void)
{
    return &bs_board_info;
}

int32_t bs_hal_serial_read(uint8_t *buf, size_t cap)
{
    size_t n = 0;
    while (n < cap && Serial.available() > 0) {
        int c = Serial.read();
        if (c < 0) {
            break;
        }
        buf[n++] = (uint8_t)c;
    }
    return (int32_t)n;
}

void bs_hal_serial_write(const uint8_t *buf, size_t n)
{
    Serial.write(buf, n);
}

void bs_hal_wait_for_event(void)
{
    /* USB CDC and PDM run from interrupts: sleeping until the next one is safe. */
    __asm__ volatile("wfi");
}

uint32_t bs_hal_cycles(void)
{
    return bs_board_cycles();
}

void bs_hal_watchdog_kick(void)
{
    bs_board_watchdog_kick();
}

void bs_hal_system_reset(void)
{
    __asm__ volatile("dsb" ::: "memory");
    *(volatile uint32_t *)0xE000ED0Cu = 0x05FA0004u; /* AIRCR: VECTKEY | SYSRESETREQ */
    for (;;) {
    }
}

uint32_t bs_hal_stack_size(void)
{
    uint32_t *limit = 0;
    uint32_t *top = 0;
    bs_board_stack_bounds(&limit, &top);
    return (uint32_t)((uintptr_t)top - (uintptr_t)limit);
}

uint32_t bs_hal_stack_used(void)
{
    uint32_t *limit = 0;
    uint32_t *top = 0;
    bs_board_stack_bounds(&limit, &top);
    const uint32_t *p = limit;
    while (p && p < top && *p == kPaint) {
        ++p;
    }
    return (uint32_t)((uintptr_t)top - (uintptr_t)p);
}

/* Static RAM and flash come from the build's size report on boards (linker symbols differ per core). */
uint32_t bs_hal_static_ram_bytes(void)
{
    return 0;
}

uint32_t bs_hal_flash_bytes(void)
{
    return 0;
}

int32_t bs_hal_mic_start(void)
{
    return bs_board_mic_start();
}

int32_t bs_hal_mic_read(int16_t *out, size_t cap)
{
    return bs_board_mic_read(out, cap);
}

} /* extern "C" */

void setup()
{
    bs_hal_init();
    bs_app_init();
}

void loop()
{
    int32_t n = bs_app_poll();
    bs_hal_watchdog_kick();
    if (n == 0) {
        bs_hal_wait_for_event();
    }
}
