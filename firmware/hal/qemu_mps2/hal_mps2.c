/*
 * QEMU mps2-an386 (Cortex-M4F) / mps2-an500 (Cortex-M7) port.
 *
 * Serial: CMSDK APB UART0 at 0x40004000. QEMU holds incoming bytes while the one-byte RX register is
 * full, so nothing is lost: the RX interrupt moves bytes into a ring, and when the ring is full it stops
 * taking them (the host then waits) until the main loop has drained it.
 * Cycle counter: CMSDK TIMER0 at 0x40000000 counts down at 25 MHz. Under `-icount shift=0` one
 * instruction takes 1 ns of virtual time, so one tick is 40 instructions: bs_hal_cycles() reports
 * instructions with a resolution of 40. (QEMU has no DWT: CYCCNT never counts.)
 */
#include <stddef.h>

#include "hal.h"
#include "hal_mps2.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define UART0_BASE 0x40004000u
#define UART_DATA REG(UART0_BASE + 0x00u)
#define UART_STATE REG(UART0_BASE + 0x04u)
#define UART_CTRL REG(UART0_BASE + 0x08u)
#define UART_INTCLEAR REG(UART0_BASE + 0x0Cu)
#define UART_BAUDDIV REG(UART0_BASE + 0x10u)
#define UART_STATE_TXFULL 1u
#define UART_STATE_RXFULL 2u
#define UART_CTRL_TXEN 1u
#define UART_CTRL_RXEN 2u
#define UART_CTRL_RXINTEN 8u
#define UART_INT_RX 2u

#define TIMER0_BASE 0x40000000u
#define TIMER_CTRL REG(TIMER0_BASE + 0x00u)
#define TIMER_VALUE REG(TIMER0_BASE + 0x04u)
#define TIMER_RELOAD REG(TIMER0_BASE + 0x08u)

#define NVIC_ISER0 REG(0xE000E100u)
#define SCB_AIRCR REG(0xE000ED0Cu)

#define TICK_INSTRUCTIONS 40u /* 25 MHz tick under -icount shift=0 (1 ns per instruction) */

#ifndef BS_BOARD_NAME
#define BS_BOARD_NAME "qemu-mps2-an386"
#endif

extern uint32_t __etext, __data_start__, __data_end__, __bss_end__;
extern uint32_t __stack_limit, __stack_top;

static const bs_hal_info info = {BS_BOARD_NAME, 25000000u, BS_HAL_UNIT_INSTRUCTIONS, TICK_INSTRUCTIONS};

enum { RX_RING = 512 };
static volatile uint8_t rx_ring[RX_RING];
static volatile uint32_t rx_head; /* written by the interrupt */
static volatile uint32_t rx_tail; /* written by the main loop */

static inline void irq_off(void)
{
    __asm__ volatile("cpsid i" ::: "memory");
}

static inline void irq_on(void)
{
    __asm__ volatile("cpsie i" ::: "memory");
}

/* Move bytes from the UART into the ring while there is room. Returns 0 if the ring filled up. */
static uint32_t drain_uart(void)
{
    while (UART_STATE & UART_STATE_RXFULL) {
        uint32_t next = (rx_head + 1u) % RX_RING;
        if (next == rx_tail) {
            return 0;
        }
        rx_ring[rx_head] = (uint8_t)UART_DATA;
        rx_head = next;
    }
    return 1;
}

void bs_mps2_uart0_rx_irq(void)
{
    UART_INTCLEAR = UART_INT_RX; /* clear first: a byte arriving after the drain raises it again */
    if (!drain_uart()) {
        UART_CTRL &= ~UART_CTRL_RXINTEN; /* ring full: let QEMU hold the rest; main loop re-enables */
    }
}

void bs_hal_init(void)
{
    TIMER_CTRL = 0;
    TIMER_RELOAD = 0xFFFFFFFFu;
    TIMER_VALUE = 0xFFFFFFFFu;
    TIMER_CTRL = 1u; /* enable, no interrupt */

    rx_head = rx_tail = 0;
    UART_BAUDDIV = 16u;
    UART_CTRL = UART_CTRL_TXEN | UART_CTRL_RXEN | UART_CTRL_RXINTEN;
    NVIC_ISER0 = 1u << 0; /* UART0 RX is IRQ 0 on mps2-an385/an386/an500 */
}

const bs_hal_info *bs_hal_get_info(void)
{
    return &info;
}

int32_t bs_hal_serial_read(uint8_t *buf, size_t cap)
{
    size_t n = 0;
    irq_off();
    (void)drain_uart();
    while (n < cap && rx_tail != rx_head) {
        buf[n++] = rx_ring[rx_tail];
        rx_tail = (rx_tail + 1u) % RX_RING;
    }
    UART_CTRL |= UART_CTRL_RXINTEN;
    irq_on();
    return (int32_t)n;
}

void bs_hal_serial_write(const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        while (UART_STATE & UART_STATE_TXFULL) {
        }
        UART_DATA = buf[i];
    }
}

void bs_hal_wait_for_event(void)
{
    /* Interrupts masked while checking, so a byte cannot slip in between the check and the WFI; a
     * pending interrupt still wakes WFI with PRIMASK set. */
    irq_off();
    if (rx_tail == rx_head && !(UART_STATE & UART_STATE_RXFULL)) {
        __asm__ volatile("wfi" ::: "memory");
    }
    irq_on();
}

uint32_t bs_hal_cycles(void)
{
    /* Counts down; the product wraps modulo 2^32 consistently, so differences stay exact. */
    return (0xFFFFFFFFu - TIMER_VALUE) * TICK_INSTRUCTIONS;
}

void bs_hal_watchdog_kick(void) {}

void bs_hal_system_reset(void)
{
    __asm__ volatile("dsb" ::: "memory");
    SCB_AIRCR = 0x05FA0004u; /* VECTKEY | SYSRESETREQ */
    __asm__ volatile("dsb" ::: "memory");
    for (;;) {
    }
}

uint32_t bs_hal_stack_size(void)
{
    return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)&__stack_limit);
}

uint32_t bs_hal_stack_used(void)
{
    const uint32_t *p = &__stack_limit;
    while (p < &__stack_top && *p == BS_MPS2_STACK_PAINT) {
        ++p;
    }
    return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)p);
}

uint32_t bs_hal_static_ram_bytes(void)
{
    return (uint32_t)((uintptr_t)&__bss_end__ - (uintptr_t)&__data_start__);
}

uint32_t bs_hal_flash_bytes(void)
{
    return (uint32_t)((uintptr_t)&__etext + ((uintptr_t)&__data_end__ - (uintptr_t)&__data_start__));
}

int32_t bs_hal_mic_start(void)
{
    return -1; /* no microphone: audio comes over the serial link */
}

int32_t bs_hal_mic_read(int16_t *out, size_t cap)
{
    (void)out;
    (void)cap;
    return 0;
}
