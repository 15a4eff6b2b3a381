/*
 * Startup for QEMU mps2-an386 / mps2-an500: vector table, .data/.bss initialisation, FPU enable, stack
 * painting, and a fault handler that ends QEMU through semihosting with a non-zero exit code (so a
 * crash fails a test instead of hanging it).
 */
#include <stdint.h>

#include "hal_mps2.h"

extern uint32_t __etext, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack_limit, __stack_top;
extern int main(void);

void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void bs_mps2_uart0_rx_irq(void);

/* Semihosting SYS_EXIT_EXTENDED: QEMU exits with `code` (needs -semihosting-config enable=on). */
void bs_mps2_semihost_exit(uint32_t code)
{
    uint32_t block[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, code};
    register uint32_t r0 __asm__("r0") = 0x20u;
    register uint32_t *r1 __asm__("r1") = block;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}

void Default_Handler(void)
{
    bs_mps2_semihost_exit(3);
}

void HardFault_Handler(void)
{
    bs_mps2_semihost_exit(2);
}

#define VECTORS (16 + 32)
__attribute__((section(".isr_vector"), used)) static void (*const vectors[VECTORS])(void) = {
    (void (*)(void))(&__stack_top),
    Reset_Handler,
    Default_Handler,   /* NMI */
    HardFault_Handler,
    HardFault_Handler, /* MemManage (M3+) */
    HardFault_Handler, /* BusFault */
    HardFault_Handler, /* UsageFault */
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMon */
    0,
    Default_Handler, /* PendSV */
    Default_Handler, /* SysTick */
    bs_mps2_uart0_rx_irq, /* IRQ 0: UART0 RX */
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler,
};

void Reset_Handler(void)
{
    /* Plain loops: built with -fno-tree-loop-distribute-patterns so GCC keeps them loops. */
    uint32_t *src = &__etext;
    for (uint32_t *dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0;
    }
#if defined(__ARM_FP)
    /* CP10/CP11 full access before any floating-point instruction. */
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20);
    __asm__ volatile("dsb\n isb" ::: "memory");
#endif
    /* Paint the stack below the current frame; the high-water mark is the deepest overwritten word. */
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = &__stack_limit; (uint32_t)p < sp - 64u; ++p) {
        *p = BS_MPS2_STACK_PAINT;
    }
    main();
    bs_mps2_semihost_exit(0);
}
