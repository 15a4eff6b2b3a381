/*
 * The per-board part of the Arduino-framework ports (nrf52840/, rp2040/, stm32l4/): what differs between
 * boards. arduino/bs_hal_arduino.cpp implements hal.h on top of it (USB serial, setup()/loop()).
 * Built only by PlatformIO (toolchain/platformio/platformio.ini), never by `make firmware`.
 */
#ifndef BS_BOARD_H
#define BS_BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "hal.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const bs_hal_info bs_board_info;

void bs_board_init(void);               /* cycle counter, watchdog */
uint32_t bs_board_cycles(void);
void bs_board_watchdog_kick(void);
void bs_board_stack_bounds(uint32_t **limit, uint32_t **top); /* lowest and one-past-highest word */
int32_t bs_board_mic_start(void);       /* 0 when capture started, -1 without a microphone */
int32_t bs_board_mic_read(int16_t *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* BS_BOARD_H */
