/* bs_capture: the privacy gate (rule in bs_capture.h). */
#include "bs_capture.h"

typedef char bs_capture_snippet_fits[(BS_CAPTURE_SNIPPET_SAMPLES > 0 &&
                                      BS_CAPTURE_SNIPPET_SAMPLES <= BS_CAPTURE_HOP_SAMPLES) ? 1 : -1];

void bs_capture_reset(bs_capture_state *st)
{
    bs_capture_start(st);
    st->sent = 0;
    st->suppressed = 0;
    st->dropped = 0;
}

void bs_capture_start(bs_capture_state *st)
{
    for (uint32_t i = 0; i < BS_CAPTURE_SLOTS; ++i) {
        st->slot_window[i] = 0xFFFFFFFFu;
        st->slot_fill[i] = 0;
    }
    for (uint32_t i = 0; i < 4; ++i) {
        st->clear[i] = 0;
        st->eligible[i] = 0;
    }
    st->windows = 0;
}

void bs_capture_pcm(bs_capture_state *st, uint32_t first, const int16_t *pcm, uint32_t n)
{
    uint32_t end = first + n;
    uint32_t w = first > (uint32_t)BS_CAPTURE_SNIPPET_OFFSET
                     ? (first - (uint32_t)BS_CAPTURE_SNIPPET_OFFSET) / BS_CAPTURE_HOP_SAMPLES
                     : 0u;
    for (;; ++w) {
        uint32_t s = w * BS_CAPTURE_HOP_SAMPLES + (uint32_t)BS_CAPTURE_SNIPPET_OFFSET;
        if (s >= end) {
            break;
        }
        uint32_t lo = first > s ? first : s;
        uint32_t hi = end < s + BS_CAPTURE_SNIPPET ? end : s + BS_CAPTURE_SNIPPET;
        if (lo >= hi) {
            continue;
        }
        uint32_t k = w % BS_CAPTURE_SLOTS;
        if (lo == s) {
            st->slot_window[k] = w; /* the snippet's first sample: the slot now belongs to window w */
            st->slot_fill[k] = 0;
        }
        if (st->slot_window[k] != w) {
            continue; /* joined mid-snippet (cannot happen in one stream); never send a partial one */
        }
        for (uint32_t i = lo; i < hi; ++i) {
            st->slot[k][i - s] = pcm[i - first];
        }
        st->slot_fill[k] += hi - lo;
    }
}

int32_t bs_capture_window(bs_capture_state *st, uint8_t clear, uint8_t eligible,
                          const int16_t **snippet, uint32_t *window)
{
    uint32_t w = st->windows++;
    st->clear[w % 4u] = clear ? 1u : 0u;
    st->eligible[w % 4u] = eligible ? 1u : 0u;
    if (w == 0) {
        return 0;
    }
    uint32_t d = w - 1u;
    uint8_t left = d == 0 ? 1u : st->clear[(d - 1u) % 4u];
    if (!(left && st->clear[d % 4u] && st->clear[w % 4u])) {
        st->suppressed++;
        return 0;
    }
    uint32_t k = d % BS_CAPTURE_SLOTS;
    if (!st->eligible[d % 4u] || st->slot_window[k] != d || st->slot_fill[k] != BS_CAPTURE_SNIPPET) {
        st->dropped++;
        return 0;
    }
    st->sent++;
    *snippet = st->slot[k];
    *window = d;
    return 1;
}

void bs_capture_finish(bs_capture_state *st)
{
    if (st->windows > 0) {
        st->suppressed++;
    }
}
