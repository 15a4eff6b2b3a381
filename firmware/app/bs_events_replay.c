/*
 * Test tool (host only): replays raw int8 window scores through bs_events and bs_capture exactly as the
 * application does, so tests can compare the C logic with the Python mirror (bowlsense.device.events).
 *
 *   bs_events_replay WINDOWS MIN_EVENT_WINDOWS ON,OFF,GATE,PRIVACY [...]  < scores.txt
 *
 * stdin: one line per window with one integer (-128..127) per label. A synthetic PCM stream
 * (sample i has value i mod 32749) is fed to the capture gate in step with the windows (window w is
 * scored after sample 7680 w + 15600), so snippet placement is checked too. stdout, one line each:
 *   event KIND LABEL PEAK START END
 *   capture WINDOW FIRST_SAMPLE_VALUE LAST_SAMPLE_VALUE     (a snippet the gate let out)
 *   short N / sent N / suppressed N / dropped N              (counters at the end)
 */
#include <stdio.h>
#include <stdlib.h>

#include "bs_capture.h"
#include "bs_events.h"

static bs_events_state st;
static bs_capture_state cap;
static uint32_t fed; /* synthetic PCM samples given to the gate so far */

static void feed_pcm_until(uint32_t end)
{
    int16_t buf[1000];
    while (fed < end) {
        uint32_t n = end - fed < 1000u ? end - fed : 1000u;
        for (uint32_t i = 0; i < n; ++i) {
            buf[i] = (int16_t)((fed + i) % 32749u);
        }
        bs_capture_pcm(&cap, fed, buf, n);
        fed += n;
    }
}

static void print_events(const bs_event *ev, uint32_t n)
{
    for (uint32_t i = 0; i < n; ++i) {
        printf("event %u %u %d %u %u\n", ev[i].kind, ev[i].label, ev[i].peak, ev[i].start, ev[i].end);
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s WINDOWS MIN_EVENT_WINDOWS ON,OFF,GATE,PRIVACY...\n", argv[0]);
        return 2;
    }
    bs_events_params p = {0};
    p.windows = (uint8_t)atoi(argv[1]);
    p.min_event_windows = (uint8_t)atoi(argv[2]);
    p.num_labels = (uint8_t)(argc - 3);
    for (int i = 3; i < argc; ++i) {
        int on = 0, off = 0, gate = 0, privacy = 0;
        if (sscanf(argv[i], "%d,%d,%d,%d", &on, &off, &gate, &privacy) != 4) {
            fprintf(stderr, "bad label parameters %s\n", argv[i]);
            return 2;
        }
        p.label[i - 3] = (bs_events_label){on, off, (int16_t)gate, (uint8_t)privacy};
    }
    if (p.num_labels > BS_EVENTS_MAX_LABELS || bs_events_init(&st, &p) != 0) {
        fprintf(stderr, "parameters out of range\n");
        return 2;
    }
    bs_capture_reset(&cap);
    bs_event ev[2 * BS_EVENTS_MAX_LABELS];
    for (uint32_t w = 0;; ++w) {
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
        feed_pcm_until(w * BS_CAPTURE_HOP_SAMPLES + BS_CAPTURE_WINDOW_SAMPLES);
        uint32_t n = bs_events_push(&st, &p, scores, ev);
        uint8_t clear = 1, eligible = 0;
        for (uint32_t l = 0; l < p.num_labels; ++l) {
            if (p.label[l].privacy) {
                clear = (int16_t)scores[l] >= p.label[l].gate_q ? 0 : clear;
            } else if (bs_events_active(&st, l)) {
                eligible = 1;
            }
        }
        const int16_t *snippet = NULL;
        uint32_t window = 0;
        int32_t send = bs_capture_window(&cap, clear, eligible, &snippet, &window);
        print_events(ev, n);
        if (send) {
            printf("capture %u %d %d\n", window, snippet[0], snippet[BS_CAPTURE_SNIPPET - 1]);
        }
    }
done:;
    uint32_t n = bs_events_flush(&st, &p, ev);
    print_events(ev, n);
    bs_capture_finish(&cap);
    printf("short %u\nsent %u\nsuppressed %u\ndropped %u\n", st.short_events, cap.sent, cap.suppressed,
           cap.dropped);
    return 0;
}
