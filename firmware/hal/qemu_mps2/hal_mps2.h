/* Internal to the QEMU mps2 port. */
#ifndef BS_HAL_MPS2_H
#define BS_HAL_MPS2_H

#include <stdint.h>

enum { BS_MPS2_STACK_PAINT = 0xC5AC5AC5u };

void bs_mps2_semihost_exit(uint32_t code);

#endif
