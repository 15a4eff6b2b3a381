/*
 * ST NUCLEO-L4R5ZI (STM32L4R5ZI, Cortex-M4F at 120 MHz): DWT cycle counter, IWDG watchdog, serial on the
 * ST-LINK virtual COM port (LPUART1, what stm32duino maps to `Serial` on this board), no microphone.
 */
#include <Arduino.h>

extern "C" {
#include "bs_board.h"
}

extern "C" const bs_hal_info bs_board_info = {"nucleo_l4r5zi", 120000000u, BS_HAL_UNIT_CYCLES, 1u};

/* stm32duino's linker script: the stack grows down from _estack; _Min_Stack_Size is what it reserves */
extern "C" uint32_t _estack, _Min_Stack_Size;

#define REG(a) (*(volatile uint32_t *)(a))
#define IWDG_KR REG(0x40003000u)
#define IWDG_PR REG(0x40003004u)
#define IWDG_RLR REG(0x40003008u)

extern "C" void bs_board_init(void)
{
    REG(0xE000EDFCu) |= 1u << 24; /* DEMCR.TRCENA */
    REG(0xE0001004u) = 0;         /* DWT_CYCCNT */
    REG(0xE0001000u) |= 1u;       /* DWT_CTRL.CYCCNTENA */
    IWDG_KR = 0xCCCCu;            /* start (LSI 32 kHz) */
    IWDG_KR = 0x5555u;            /* unlock PR/RLR */
    IWDG_PR = 4u;                 /* /64: 500 Hz */
    IWDG_RLR = 1000u;             /* 2 s */
    IWDG_KR = 0xAAAAu;
}

extern "C" uint32_t bs_board_cycles(void)
{
    return REG(0xE0001004u);
}

extern "C" void bs_board_watchdog_kick(void)
{
    IWDG_KR = 0xAAAAu;
}

extern "C" void bs_board_stack_bounds(uint32_t **limit, uint32_t **top)
{
    *top = &_estack;
    *limit = (uint32_t *)((uintptr_t)&_estack - (uintptr_t)&_Min_Stack_Size);
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
