/*
 * bs_app: the device application, identical on every port.
 *
 *   serial bytes -> bs_proto decoder -> request handlers (HELLO, FEATURES, INFER, STREAM, CAPTURE,
 *   STATS, RESET; see firmware/proto/PROTOCOL.md)
 *   STREAM: PCM (serial chunks, or the microphone on boards that have one)
 *     -> front end every 160 samples -> int8 row into a ring of 96 frames
 *     -> every 48 frames: inference on the ring -> bs_events (smoothing + hysteresis) -> EVENT frames
 *     -> in capture mode: bs_capture (privacy gate) -> AUDIO frames for windows it lets through
 *
 * Everything is static: the memory map is fixed at link time (see bs_app_static_bytes()).
 */
#ifndef BS_APP_H
#define BS_APP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Written by the build (build/firmware/<target>/gen/bs_build_info.c). */
extern const char bs_build_git_sha[];
extern const char bs_build_fw_version[];

/* Reset all application state and send the BOOT frame. */
void bs_app_init(void);

/* One main-loop iteration: read serial, handle complete frames, read the microphone when streaming
 * from it. Returns 0 normally, a negative value when the link is gone (host: exit). */
int32_t bs_app_poll(void);

/* The main loop: init, then poll and sleep until input arrives. Returns only when the link is gone. */
int32_t bs_app_run(void);

#ifdef __cplusplus
}
#endif

#endif /* BS_APP_H */
