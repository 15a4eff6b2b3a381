/*
 * Test tool (host only): replays raw int8 window scores through bs_events and prints the events, so
 * tests can compare the C logic with the Python mirror (bowlsense.device.events) on any score stream.
 *
 *   bs_events_replay WINDOWS MIN_EVENT_WINDOWS ON_SUM,OFF_SUM [ON_SUM,OFF_SUM ...]  < scores.txt
 *
 * stdin: one line per window with one integer (-128..127) per label. stdout: one line per event,
 * "kind label peak start end", then "short N" (events dropped for being too short).
 */
#include <stdio.h>
#include <stdlib.h>

#include "bs_events.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s WINDOWS MIN_EVENT_WINDOWS ON_SUM,OFF_SUM...\n", argv[0]);
        return 2;
    }
    bs_events_params p = {0};
    p.windows = (uint8_t)atoi(argv[1]);
    p.min_event_windows = (uint8_t)atoi(argv[2]);
    p.num_labels = (uint8_t)(argc - 3);
    for (int i = 3; i < argc; ++i) {
        int on = 0;
        int off = 0;
        if (sscanf(argv[i], "%d,%d", &on, &off) != 2) {
            fprintf(stderr, "bad threshold pair %s\n", argv[i]);
            return 2;
        }
        p.label[i - 3].on_sum = on;
        p.label[i - 3].off_sum = off;
    }
    static bs_events_state st;
    if (bs_events_init(&st, &p) != 0) {
        fprintf(stderr, "parameters out of range\n");
        return 2;
    }
    bs_event ev[2 * BS_EVENTS_MAX_LABELS];
    for (;;) {
        int8_t scores[BS_EVENTS_MAX_LABELS];
        for (uint32_t l = 0; l < p.num_labels; ++l) {
            int v;
            if (scanf("%d", &v) != 1) {
                if (l != 0) {
                    fprintf(stderr, "truncated window\n");
                    return 2;
                }
                goto done;
            }
            scores[l] = (int8_t)v;
        }
        uint32_t n = bs_events_push(&st, &p, scores, ev);
        for (uint32_t i = 0; i < n; ++i) {
            printf("%u %u %d %u %u\n", ev[i].kind, ev[i].label, ev[i].peak, ev[i].start, ev[i].end);
        }
    }
done:;
    uint32_t n = bs_events_flush(&st, &p, ev);
    for (uint32_t i = 0; i < n; ++i) {
        printf("%u %u %d %u %u\n", ev[i].kind, ev[i].label, ev[i].peak, ev[i].start, ev[i].end);
    }
    printf("short %u\n", st.short_events);
    return 0;
}
