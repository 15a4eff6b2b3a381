/*
 * bs_hal: the only interface between the application and a board. One folder per port, chosen at link
 * time (exactly one port's .c files are compiled into a build):
 *
 *   hal/host/        Linux process; serial link on stdin/stdout or a pseudo-terminal (tests, sanitizers)
 *   hal/qemu_mps2/   QEMU mps2-an386 (Cortex-M4F) / mps2-an500 (M7): CMSDK UART0, TIMER0 under icount
 *   hal/nrf52840/    Arduino Nano 33 BLE Sense: USB CDC serial, PDM microphone, DWT cycle counter
 *   hal/rp2040/      Raspberry Pi Pico: USB CDC serial, SysTick-derived cycle count (M0+ has no DWT)
 *   hal/stm32l4/     NUCLEO-L4R5ZI: ST-LINK VCP (LPUART1), DWT cycle counter, IWDG watchdog
 *
 * All functions are called from the main loop only (never from interrupts) and never fail after
 * bs_hal_init(): a port that cannot start halts in bs_hal_init and reports how it can.
 */
#ifndef BS_HAL_H
#define BS_HAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What one unit of bs_hal_cycles() is, as reported in HELLO. */
typedef enum {
    BS_HAL_UNIT_CYCLES = 0,       /* CPU clock cycles (DWT CYCCNT) */
    BS_HAL_UNIT_INSTRUCTIONS = 1, /* executed instructions (QEMU -icount shift=0: 25 MHz timer x 40) */
    BS_HAL_UNIT_NANOSECONDS = 2   /* wall-clock ns (host build; not deterministic) */
} bs_hal_unit;

/* Static description of the port. */
typedef struct {
    const char *board;       /* e.g. "qemu-mps2-an386", "host", "nano33ble" */
    uint32_t core_clock_hz;  /* CPU clock (0 when not meaningful, e.g. host) */
    bs_hal_unit cycle_unit;  /* unit of bs_hal_cycles() */
    uint32_t cycle_resolution; /* smallest step of bs_hal_cycles() in its unit (QEMU: 40) */
} bs_hal_info;

/* Start clocks, serial link, cycle counter, watchdog; paint the stack (see bs_hal_stack_*). */
void bs_hal_init(void);

const bs_hal_info *bs_hal_get_info(void);

/* Read up to cap received bytes without blocking. Returns the count (0 when none); a negative value
 * means the link is gone for good (host: stdin closed), and the application should exit. */
int32_t bs_hal_serial_read(uint8_t *buf, size_t cap);

/* Send n bytes; blocks until they are handed to the hardware. */
void bs_hal_serial_write(const uint8_t *buf, size_t n);

/* Sleep until something may have happened (serial byte, microphone block): WFI on Cortex-M. Returns at
 * once if input is already pending. Spurious wake-ups are allowed. */
void bs_hal_wait_for_event(void);

/* Free-running counter in bs_hal_info.cycle_unit; wraps modulo 2^32 (differences stay valid). */
uint32_t bs_hal_cycles(void);

/* Watchdog: the main loop kicks it once per iteration; a stuck loop resets the board. No-op on
 * QEMU and host. */
void bs_hal_watchdog_kick(void);

/* Full system reset (QEMU: SYSRESETREQ; host: the process re-execs its own state). Does not return
 * on MCUs; on the host it returns and the app re-initialises itself. */
void bs_hal_system_reset(void);

/* Stack painted at boot with a known pattern: its size and how many bytes were ever used (deepest
 * point found by scanning for the first overwritten word). 0, 0 when the port cannot tell (host). */
uint32_t bs_hal_stack_size(void);
uint32_t bs_hal_stack_used(void);

/* Static RAM (.data + .bss) and flash (.text + .rodata + .data init) of the image, from linker
 * symbols; 0 when unknown (host). */
uint32_t bs_hal_static_ram_bytes(void);
uint32_t bs_hal_flash_bytes(void);

/* Microphone, on boards that have one: start capture at 16 kHz mono, then read whatever blocks are
 * ready (int16 samples). Returns the number of samples copied; 0 when none or no microphone. */
int32_t bs_hal_mic_start(void);
int32_t bs_hal_mic_read(int16_t *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* BS_HAL_H */
