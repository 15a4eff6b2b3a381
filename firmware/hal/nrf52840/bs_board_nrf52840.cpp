/*
 * Arduino Nano 33 BLE Sense (nRF52840, Cortex-M4F at 64 MHz): DWT cycle counter, nRF WDT watchdog,
 * PDM microphone (MP34DT05) at 16 kHz mono through the Arduino PDM library.
 */
#include <Arduino.h>
#include <PDM.h>

extern "C" {
#include "bs_board.h"
}

extern "C" const bs_hal_info bs_board_info = {"nano33ble", 64000000u, BS_HAL_UNIT_CYCLES, 1u};

/* mbed's GCC linker script for the nRF52840 */
extern "C" uint32_t __StackLimit, __StackTop;

#define REG(a) (*(volatile uint32_t *)(a))

enum { MIC_RING = 4096 }; /* samples: 256 ms, well above one PDM callback */
static volatile int16_t mic_ring[MIC_RING];
static volatile uint32_t mic_head, mic_tail;

static void on_pdm()
{
    int16_t buf[256];
    int bytes = PDM.available();
    while (bytes > 0) {
        int n = PDM.read(buf, bytes < (int)sizeof buf ? bytes : (int)sizeof buf);
        for (int i = 0; i < n / 2; ++i) {
            uint32_t next = (mic_head + 1u) % MIC_RING;
            if (next == mic_tail) {
                break; /* the app fell behind: newest samples are dropped */
            }
            mic_ring[mic_head] = buf[i];
            mic_head = next;
        }
        bytes -= n;
    }
}

extern "C" void bs_board_init(void)
{
    REG(0xE000EDFCu) |= 1u << 24; /* DEMCR.TRCENA */
    REG(0xE0001004u) = 0;         /* DWT_CYCCNT */
    REG(0xE0001000u) |= 1u;       /* DWT_CTRL.CYCCNTENA */
    /* WDT (base 0x40010000): 2 s at 32.768 kHz, keeps running while the CPU sleeps, RR[0] enabled */
    REG(0x4001050Cu) = 1u;          /* CONFIG: run in sleep */
    REG(0x40010504u) = 2u * 32768u; /* CRV */
    REG(0x40010508u) = 1u;          /* RREN */
    REG(0x40010000u) = 1u;          /* TASKS_START */
}

extern "C" uint32_t bs_board_cycles(void)
{
    return REG(0xE0001004u);
}

extern "C" void bs_board_watchdog_kick(void)
{
    REG(0x40010600u) = 0x6E524635u; /* RR[0] reload value */
}

extern "C" void bs_board_stack_bounds(uint32_t **limit, uint32_t **top)
{
    *limit = &__StackLimit;
    *top = &__StackTop;
}

extern "C" int32_t bs_board_mic_start(void)
{
    mic_head = mic_tail = 0;
    PDM.onReceive(on_pdm);
    return PDM.begin(1, 16000) ? 0 : -1;
}

extern "C" int32_t bs_board_mic_read(int16_t *out, size_t cap)
{
    size_t n = 0;
    while (n < cap && mic_tail != mic_head) {
        out[n++] = mic_ring[mic_tail];
        mic_tail = (mic_tail + 1u) % MIC_RING;
    }
    return (int32_t)n;
}
