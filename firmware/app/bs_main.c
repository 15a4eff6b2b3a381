/* Entry point for the Cortex-M ports (the host port has its own main that parses arguments). */
#include "bs_app.h"
#include "hal.h"

int main(void)
{
    bs_hal_init();
    bs_app_run();
    for (;;) {
        bs_hal_wait_for_event(); /* the link never goes away on a board */
    }
}
