/*
 * Bare-metal runtime for the QEMU mps2-an386 test harnesses (front end and engine): reset handler and
 * vector table, Arm semihosting calls on host files, SysTick registers. Each harness defines main().
 * Test-only: the application firmware has its own startup under firmware/hal.
 */
#ifndef BS_SEMIHOST_RT_H
#define BS_SEMIHOST_RT_H

#include <stddef.h>
#include <stdint.h>

extern uint32_t __bss_start, __bss_end, __stack_top;
int main(void);

void reset_handler(void) {
    for (uint32_t *p = &__bss_start; p < &__bss_end; p++) *p = 0;
#if defined(__ARM_FP)
    /* enable CP10/CP11 so hard-float code may run */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
#endif
    main();
    for (;;) {}
}

static void default_handler(void) { for (;;) {} }

typedef void (*handler)(void);
__attribute__((section(".vectors"), used)) static const handler vectors[4] = {
    (handler)(uintptr_t)&__stack_top, reset_handler, default_handler, default_handler,
};

static int32_t semihost(int32_t op, const void *arg) {
    register int32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

enum { SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_WRITE = 0x05, SYS_READ = 0x06, SYS_GET_CMDLINE = 0x15,
       SYS_EXIT_EXTENDED = 0x20 };

static void exit_with(int32_t code) {
    int32_t args[2] = {0x20026 /* ADP_Stopped_ApplicationExit */, code};
    semihost(SYS_EXIT_EXTENDED, args);
    for (;;) {}
}

static size_t length(const char *s) { size_t n = 0; while (s[n]) n++; return n; }

static int32_t open_file(const char *path, int32_t mode) {
    int32_t args[3] = {(int32_t)(uintptr_t)path, mode, (int32_t)length(path)};
    return semihost(SYS_OPEN, args);
}

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

#endif /* BS_SEMIHOST_RT_H */
