/*
 * bs_capture: the privacy gate of the opt-in capture mode, the only path by which audio leaves the
 * device.
 *
 * Window w (one per 48-frame hop) covers stream samples [7680 w, 7680 w + 15600). Its snippet is the
 * BS_CAPTURE_SNIPPET_SAMPLES samples centred in it. When window w+1 has been scored, window w is
 * decided:
 *   - suppressed (counted) unless windows w-1, w and w+1 are all "clear": every privacy label's raw
 *     score below its gate level (gate_q). A window before the stream start counts as clear (there is
 *     no audio there to leak); the last window of a stream is never decided, so it is suppressed.
 *   - otherwise dropped (counted) unless a non-privacy label had an open event after window w;
 *   - otherwise sent.
 * Only snippets are ever held in RAM (three slots), never the whole stream.
 */
#ifndef BS_CAPTURE_H
#define BS_CAPTURE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef BS_CAPTURE_SNIPPET_SAMPLES
#define BS_CAPTURE_SNIPPET_SAMPLES 2048
#endif

enum {
    BS_CAPTURE_HOP_SAMPLES = 7680,     /* 48 frames x 160 samples */
    BS_CAPTURE_WINDOW_SAMPLES = 15600, /* 95 x 160 + 400 */
    BS_CAPTURE_SLOTS = 3,
    BS_CAPTURE_SNIPPET = BS_CAPTURE_SNIPPET_SAMPLES,
    /* first sample of window w's snippet is 7680 w + BS_CAPTURE_SNIPPET_OFFSET */
    BS_CAPTURE_SNIPPET_OFFSET = BS_CAPTURE_WINDOW_SAMPLES / 2 - BS_CAPTURE_SNIPPET_SAMPLES / 2
};

typedef struct {
    int16_t slot[BS_CAPTURE_SLOTS][BS_CAPTURE_SNIPPET];
    uint32_t slot_window[BS_CAPTURE_SLOTS];
    uint32_t slot_fill[BS_CAPTURE_SLOTS];
    uint8_t clear[4];          /* clear flag of window w, at index w % 4 */
    uint8_t eligible[4];       /* a non-privacy event was open after window w, at index w % 4 */
    uint32_t windows;          /* windows scored so far */
    uint32_t sent, suppressed, dropped;
} bs_capture_state;

/* Everything, counters included (boot). */
void bs_capture_reset(bs_capture_state *st);

/* A new stream: forget snippets and window flags, keep the counters (they count since boot). */
void bs_capture_start(bs_capture_state *st);

/* Offer stream samples [first, first + n): the ones inside a snippet are copied to its slot. */
void bs_capture_pcm(bs_capture_state *st, uint32_t first, const int16_t *pcm, uint32_t n);

/* Window w = st->windows has been scored. Decides window w - 1; returns 1 and sets *snippet and
 * *window when its snippet may be sent (BS_CAPTURE_SNIPPET samples), else 0. */
int32_t bs_capture_window(bs_capture_state *st, uint8_t clear, uint8_t eligible,
                          const int16_t **snippet, uint32_t *window);

/* End of stream: the undecided last window is suppressed. */
void bs_capture_finish(bs_capture_state *st);

#ifdef __cplusplus
}
#endif

#endif /* BS_CAPTURE_H */
