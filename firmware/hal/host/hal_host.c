/*
 * Host port: the firmware as a Linux process, for fast tests and sanitizer builds.
 *
 *   bowlsense-fw            serial link on stdin (requests) / stdout (replies), binary
 *   bowlsense-fw --pty      opens a pseudo-terminal, prints its path on stderr, and talks there
 *                           (pyserial can open it like a real port)
 *
 * The cycle counter is CLOCK_MONOTONIC in nanoseconds (not deterministic); stack and memory figures
 * are not available here and read as 0.
 */
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 600
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "bs_app.h"
#include "hal.h"

static int rx_fd = 0;
static int tx_fd = 1;
static int is_pty = 0; /* a pty reads EIO until the other side opens it: not an error */

static const bs_hal_info info = {"host", 0, BS_HAL_UNIT_NANOSECONDS, 1};

void bs_hal_init(void)
{
    signal(SIGPIPE, SIG_IGN); /* a vanished reader shows up as a write error, handled below */
}

const bs_hal_info *bs_hal_get_info(void)
{
    return &info;
}

int32_t bs_hal_serial_read(uint8_t *buf, size_t cap)
{
    struct pollfd p = {rx_fd, POLLIN, 0};
    int r = poll(&p, 1, 0);
    if (r <= 0) {
        return 0;
    }
    ssize_t n = read(rx_fd, buf, cap);
    if (n > 0) {
        return (int32_t)n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR || (is_pty && errno == EIO))) {
        return 0;
    }
    return -1; /* EOF or a dead link */
}

void bs_hal_serial_write(const uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(tx_fd, buf, n);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            exit(0); /* the host side closed the link */
        }
        buf += w;
        n -= (size_t)w;
    }
}

void bs_hal_wait_for_event(void)
{
    struct pollfd p = {rx_fd, POLLIN, 0};
    int r = poll(&p, 1, 100);
    if (r > 0 && is_pty && (p.revents & POLLHUP)) {
        usleep(10000); /* no one on the other side yet: do not spin */
    }
}

uint32_t bs_hal_cycles(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

void bs_hal_watchdog_kick(void) {}

void bs_hal_system_reset(void) {}

uint32_t bs_hal_stack_size(void)
{
    return 0;
}

uint32_t bs_hal_stack_used(void)
{
    return 0;
}

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
    return -1;
}

int32_t bs_hal_mic_read(int16_t *out, size_t cap)
{
    (void)out;
    (void)cap;
    return 0;
}

static int open_pty(void)
{
    int fd = posix_openpt(O_RDWR | O_NOCTTY);
    if (fd < 0 || grantpt(fd) != 0 || unlockpt(fd) != 0) {
        perror("bowlsense-fw: cannot open a pseudo-terminal");
        exit(2);
    }
    struct termios t;
    if (tcgetattr(fd, &t) == 0) {
        cfmakeraw(&t); /* binary-safe: no echo, no line discipline */
        tcsetattr(fd, TCSANOW, &t);
    }
    fprintf(stderr, "%s\n", ptsname(fd));
    fflush(stderr);
    return fd;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--pty") == 0) {
            rx_fd = tx_fd = open_pty();
            is_pty = 1;
        } else {
            fprintf(stderr, "usage: %s [--pty]\n  serial link on stdin/stdout, or on a new pty\n",
                    argv[0]);
            return 2;
        }
    }
    bs_hal_init();
    return (int)bs_app_run();
}
