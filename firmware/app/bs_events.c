/* bs_events: integer smoothing + hysteresis (see bs_events.h for the exact rule). */
#include "bs_events.h"

int32_t bs_events_init(bs_events_state *st, const bs_events_params *p)
{
    if (!st || !p || p->num_labels > BS_EVENTS_MAX_LABELS || p->windows < 1 ||
        p->windows > BS_EVENTS_MAX_WINDOWS || p->min_event_windows < 1) {
        return -1;
    }
    for (uint32_t l = 0; l < BS_EVENTS_MAX_LABELS; ++l) {
        for (uint32_t i = 0; i < BS_EVENTS_MAX_WINDOWS; ++i) {
            st->history[l][i] = (int8_t)BS_EVENTS_NO_EVIDENCE;
        }
        st->sum[l] = (int32_t)p->windows * BS_EVENTS_NO_EVIDENCE;
        st->active[l] = 0;
        st->start[l] = 0;
        st->peak[l] = (int8_t)BS_EVENTS_NO_EVIDENCE;
    }
    st->pos = 0;
    st->window = 0;
    st->short_events = 0;
    return 0;
}

static uint32_t end_event(bs_events_state *st, const bs_events_params *p, uint32_t l, uint32_t last,
                          bs_event *out)
{
    st->active[l] = 0;
    if (last - st->start[l] + 1u < p->min_event_windows) {
        st->short_events++;
        return 0;
    }
    out->kind = BS_EVENT_END;
    out->label = (uint8_t)l;
    out->peak = st->peak[l];
    out->start = st->start[l];
    out->end = last;
    return 1;
}

uint32_t bs_events_push(bs_events_state *st, const bs_events_params *p, const int8_t *scores,
                        bs_event *out)
{
    uint32_t n = 0;
    uint32_t w = st->window;
    for (uint32_t l = 0; l < p->num_labels; ++l) {
        int8_t q = scores[l];
        st->sum[l] += (int32_t)q - st->history[l][st->pos];
        st->history[l][st->pos] = q;
        const bs_events_label *lp = &p->label[l];
        if (st->active[l]) {
            if (st->sum[l] < lp->off_sum) {
                n += end_event(st, p, l, w - 1u, &out[n]);
            } else if (q > st->peak[l]) {
                st->peak[l] = q;
            }
        } else if (st->sum[l] >= lp->on_sum) {
            st->active[l] = 1;
            st->start[l] = w;
            st->peak[l] = q;
        }
        if (st->active[l] && w - st->start[l] + 1u == p->min_event_windows) {
            out[n].kind = BS_EVENT_BEGIN;
            out[n].label = (uint8_t)l;
            out[n].peak = st->peak[l];
            out[n].start = st->start[l];
            out[n].end = w;
            n++;
        }
    }
    st->pos = (uint8_t)((st->pos + 1u) % p->windows);
    st->window = w + 1u;
    return n;
}

uint32_t bs_events_flush(bs_events_state *st, const bs_events_params *p, bs_event *out)
{
    uint32_t n = 0;
    for (uint32_t l = 0; l < p->num_labels; ++l) {
        if (st->active[l]) {
            n += end_event(st, p, l, st->window - 1u, &out[n]);
        }
    }
    return n;
}

uint8_t bs_events_active(const bs_events_state *st, uint32_t label)
{
    return label < BS_EVENTS_MAX_LABELS ? st->active[label] : 0;
}
