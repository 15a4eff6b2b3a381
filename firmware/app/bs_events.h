/*
 * bs_events: per-label smoothing and hysteresis on raw int8 window scores, in integers only, so the
 * host mirror (bowlsense.device.events) reproduces every event bit for bit.
 *
 * For each label l and window w (one window per 48-frame hop, 0.48 s):
 *   sum_l(w) = q_l(w) + q_l(w-1) + ... + q_l(w-N+1)       (N = windows; windows before the stream
 *                                                          started count as -128, "no evidence")
 *   off -> on   when sum_l(w) >= on_sum_l                  (on_sum = ceil(N * (on / scale + zero_point)))
 *   on  -> off  when sum_l(w) <  off_sum_l                 (the event's last window is then w - 1)
 * so "moving average >= threshold" is decided exactly, with no division. An event is reported when it
 * has lasted min_event_windows windows (BEGIN) and when it ends (END, with its peak raw score); events
 * shorter than that are dropped and counted. Within a window, labels are visited in index order.
 */
#ifndef BS_EVENTS_H
#define BS_EVENTS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    BS_EVENTS_MAX_LABELS = 16,
    BS_EVENTS_MAX_WINDOWS = 16,  /* longest moving average supported */
    BS_EVENTS_NO_EVIDENCE = -128 /* score assumed for windows before the stream started */
};

typedef enum {
    BS_EVENT_BEGIN = 1, /* event reached min_event_windows; end = current window, peak so far */
    BS_EVENT_END = 2    /* event finished; end = its last window (inclusive) */
} bs_event_kind;

typedef struct {
    int32_t on_sum;   /* start when the sum of the last N raw scores >= on_sum */
    int32_t off_sum;  /* stop when it falls below off_sum (off_sum <= on_sum) */
    int16_t gate_q;   /* privacy gate: a window is "speech" when its raw score >= gate_q */
    uint8_t privacy;  /* 1 for privacy labels (speech): never captured, gates capture */
} bs_events_label;

typedef struct {
    uint8_t num_labels;
    uint8_t windows;            /* N of the moving average, 1..BS_EVENTS_MAX_WINDOWS */
    uint8_t min_event_windows;  /* >= 1 */
    bs_events_label label[BS_EVENTS_MAX_LABELS];
} bs_events_params;

typedef struct {
    uint8_t kind;      /* bs_event_kind */
    uint8_t label;
    int8_t peak;       /* highest raw int8 score inside the event */
    uint32_t start;    /* first window index (window w starts at sample 7680 w) */
    uint32_t end;      /* last window index, inclusive */
} bs_event;

typedef struct {
    int8_t history[BS_EVENTS_MAX_LABELS][BS_EVENTS_MAX_WINDOWS];
    int32_t sum[BS_EVENTS_MAX_LABELS];
    uint8_t active[BS_EVENTS_MAX_LABELS];
    uint32_t start[BS_EVENTS_MAX_LABELS];
    int8_t peak[BS_EVENTS_MAX_LABELS];
    uint8_t pos;        /* next history slot */
    uint32_t window;    /* index of the next window to be pushed */
    uint32_t short_events; /* events dropped for being shorter than min_event_windows */
} bs_events_state;

/* Returns 0, or -1 when params are out of range (checked once here, never on the hot path). */
int32_t bs_events_init(bs_events_state *st, const bs_events_params *p);

/* Push one window's raw scores (num_labels values). Writes at most 2 * num_labels events to out and
 * returns how many. */
uint32_t bs_events_push(bs_events_state *st, const bs_events_params *p, const int8_t *scores,
                        bs_event *out);

/* End of stream: every open event ends at the last pushed window. Returns the number written. */
uint32_t bs_events_flush(bs_events_state *st, const bs_events_params *p, bs_event *out);

/* 1 when label l currently has an open event (after the last push). */
uint8_t bs_events_active(const bs_events_state *st, uint32_t label);

#ifdef __cplusplus
}
#endif

#endif /* BS_EVENTS_H */
