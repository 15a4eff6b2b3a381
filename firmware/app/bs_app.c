/* bs_app: request handling and the streaming pipeline (overview in bs_app.h, wire format in
 * firmware/proto/PROTOCOL.md). */
#include "bs_app.h"

#include <stddef.h>

#include "bs_app_model.h"
#include "bs_capture.h"
#include "bs_events.h"
#include "bs_frontend.h"
#include "bs_proto.h"
#include "hal.h"

enum {
    RING_FRAMES = 96,      /* one model patch */
    WINDOW_HOP_FRAMES = 48,
    MAX_PCM_SAMPLES = 1024, /* per FEATURES / PCM request */
    AUDIO_PART_SAMPLES = 1024,
    STATE_IDLE = 0,
    STATE_STREAMING = 1,
    STREAM_FLAG_SCORES = 1,
    STREAM_FLAG_MIC = 2
};

typedef struct {
    uint32_t rx_frames, rx_bad_crc, rx_oversized, rx_malformed, req_errors, tx_frames;
    uint32_t fe_hops, fe_max;
    uint64_t fe_total;
    uint64_t quant_total;
    uint32_t infer_count, infer_max;
    uint64_t infer_total;
    uint64_t post_total;
    uint64_t loop_total; /* streaming only: front end + quantize + infer + post, serial I/O excluded */
    uint64_t stream_samples;
    uint32_t events, short_events, internal_errors; /* short_events: finished streams only */
} app_stats;

typedef struct {
    bs_proto_decoder dec;
    uint8_t tx[BS_PROTO_MAX_WIRE];
    uint8_t out[BS_PROTO_MAX_PAYLOAD]; /* payload being built: one frame at a time */
    uint16_t tx_seq;                   /* numbers the device's unprompted frames */
    uint8_t state, stream_flags, capture_on;
    bs_frontend_state fe;
    int8_t ring[RING_FRAMES][BS_FRONTEND_NUM_MEL];
    uint32_t ring_pos;     /* next row to write == oldest row once the ring is full */
    uint32_t infer_rows;   /* rows loaded by INFER requests */
    uint32_t frames, samples, windows, stream_events;
    bs_events_state ev;
    bs_capture_state cap;
    app_stats st;
    int32_t model_status;
} app_state;

static app_state g;

/* ---- output ------------------------------------------------------------------------------------- */

static void send_frame(uint8_t type, uint16_t seq, const uint8_t *payload, size_t len)
{
    size_t n = bs_proto_encode(type, seq, payload, len, g.tx, sizeof g.tx);
    if (n > 0) {
        bs_hal_serial_write(g.tx, n);
        g.st.tx_frames++;
    }
}

static void send_error_frame(uint16_t seq, uint8_t request_type, bs_proto_error code)
{
    uint8_t p[2] = {(uint8_t)code, request_type};
    send_frame(BS_MSG_ERROR, seq, p, sizeof p);
}

/* Error reply to a frame that arrived intact (unknown type, wrong state, bad argument). */
static void send_error(uint16_t seq, uint8_t request_type, bs_proto_error code)
{
    g.st.req_errors++;
    send_error_frame(seq, request_type, code);
}

static void send_unprompted(uint8_t type, const uint8_t *payload, size_t len)
{
    send_frame(type, g.tx_seq++, payload, len);
}

static uint8_t *put_str(uint8_t *p, const char *s)
{
    size_t n = 0;
    while (s[n] != '\0' && n < 255u) {
        ++n;
    }
    *p++ = (uint8_t)n;
    for (size_t i = 0; i < n; ++i) {
        *p++ = (uint8_t)s[i];
    }
    return p;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    bs_proto_put_u32(p, (uint32_t)(v & 0xFFFFFFFFu));
    bs_proto_put_u32(p + 4, (uint32_t)(v >> 32));
    return p + 8;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    bs_proto_put_u32(p, v);
    return p + 4;
}

/* ---- streaming pipeline -------------------------------------------------------------------------- */

static void reset_pipeline(void)
{
    bs_frontend_reset(&g.fe);
    g.ring_pos = 0;
    g.infer_rows = 0;
    g.frames = 0;
    g.samples = 0;
    g.windows = 0;
    g.stream_events = 0;
    bs_events_init(&g.ev, bs_app_model_params());
    bs_capture_start(&g.cap);
}

static void emit_events(const bs_event *ev, uint32_t n)
{
    for (uint32_t i = 0; i < n; ++i) {
        uint8_t p[12];
        p[0] = ev[i].kind;
        p[1] = ev[i].label;
        p[2] = (uint8_t)ev[i].peak;
        p[3] = 0;
        bs_proto_put_u32(p + 4, ev[i].start);
        bs_proto_put_u32(p + 8, ev[i].end);
        send_unprompted(BS_MSG_EVENT, p, sizeof p);
        if (ev[i].kind == BS_EVENT_END) {
            g.st.events++;
            g.stream_events++;
        }
    }
}

static void emit_snippet(const int16_t *snippet, uint32_t window)
{
    uint32_t first = window * BS_CAPTURE_HOP_SAMPLES + (uint32_t)BS_CAPTURE_SNIPPET_OFFSET;
    for (uint32_t off = 0; off < BS_CAPTURE_SNIPPET; off += AUDIO_PART_SAMPLES) {
        uint32_t n = BS_CAPTURE_SNIPPET - off < AUDIO_PART_SAMPLES ? BS_CAPTURE_SNIPPET - off
                                                                   : AUDIO_PART_SAMPLES;
        uint8_t *p = g.out;
        p = put_u32(p, window);
        p = put_u32(p, first + off);
        for (uint32_t i = 0; i < n; ++i) {
            bs_proto_put_u16(p, (uint16_t)snippet[off + i]);
            p += 2;
        }
        send_unprompted(BS_MSG_AUDIO, g.out, (size_t)(p - g.out));
    }
}

static void on_window(void)
{
    const bs_events_params *params = bs_app_model_params();
    int8_t scores[BS_EVENTS_MAX_LABELS];
    bs_event ev[2 * BS_EVENTS_MAX_LABELS];
    uint32_t w = g.windows++;
    if (!bs_app_model_present()) {
        return; /* front-end-only build: windows are counted, nothing is scored */
    }
    uint32_t t0 = bs_hal_cycles();
    int32_t rc = bs_app_model_infer((const int8_t (*)[BS_FRONTEND_NUM_MEL])g.ring, g.ring_pos, scores);
    uint32_t dt = bs_hal_cycles() - t0;
    if (rc != 0) {
        g.st.internal_errors++;
        return;
    }
    g.st.infer_count++;
    g.st.infer_total += dt;
    g.st.loop_total += dt;
    if (dt > g.st.infer_max) {
        g.st.infer_max = dt;
    }
    if (g.stream_flags & STREAM_FLAG_SCORES) {
        uint8_t *p = g.out;
        p = put_u32(p, w);
        p = put_u32(p, dt);
        *p++ = params->num_labels;
        for (uint32_t l = 0; l < params->num_labels; ++l) {
            *p++ = (uint8_t)scores[l];
        }
        send_unprompted(BS_MSG_SCORES, g.out, (size_t)(p - g.out));
    }

    t0 = bs_hal_cycles();
    uint32_t n = bs_events_push(&g.ev, params, scores, ev);
    const int16_t *snippet = NULL;
    uint32_t snippet_window = 0;
    int32_t send_snippet = 0;
    if (g.capture_on) {
        uint8_t clear = 1;
        uint8_t eligible = 0;
        for (uint32_t l = 0; l < params->num_labels; ++l) {
            if (params->label[l].privacy) {
                if ((int16_t)scores[l] >= params->label[l].gate_q) {
                    clear = 0;
                }
            } else if (bs_events_active(&g.ev, l)) {
                eligible = 1;
            }
        }
        send_snippet = bs_capture_window(&g.cap, clear, eligible, &snippet, &snippet_window);
    }
    uint32_t dp = bs_hal_cycles() - t0;
    g.st.post_total += dp;
    g.st.loop_total += dp;
    emit_events(ev, n);
    if (send_snippet) {
        emit_snippet(snippet, snippet_window);
    }
}

static void on_frame(const int16_t *frame)
{
    uint32_t t0 = bs_hal_cycles();
    bs_app_model_quantize(frame, g.ring[g.ring_pos], BS_FRONTEND_NUM_MEL);
    uint32_t dq = bs_hal_cycles() - t0;
    g.st.quant_total += dq;
    g.st.loop_total += dq;
    g.ring_pos = (g.ring_pos + 1u) % RING_FRAMES;
    g.frames++;
    if (g.frames >= RING_FRAMES && (g.frames - RING_FRAMES) % WINDOW_HOP_FRAMES == 0) {
        on_window();
    }
}

/* Feed stream samples through the whole pipeline. At most 160 samples go to the front end at a time,
 * so each call completes at most one frame and its cycles are attributed to that hop. */
static void stream_samples(const int16_t *pcm, uint32_t n)
{
    while (n > 0) {
        uint32_t piece = n < BS_FRONTEND_HOP_SAMPLES ? n : BS_FRONTEND_HOP_SAMPLES;
        if (g.capture_on) {
            bs_capture_pcm(&g.cap, g.samples, pcm, piece);
        }
        int16_t frame[BS_FRONTEND_NUM_MEL];
        size_t made = 0;
        uint32_t t0 = bs_hal_cycles();
        bs_frontend_status s = bs_frontend_process(&g.fe, pcm, piece, frame, 1, &made);
        uint32_t dt = bs_hal_cycles() - t0;
        g.st.fe_total += dt;
        g.st.loop_total += dt;
        g.samples += piece;
        g.st.stream_samples += piece;
        pcm += piece;
        n -= piece;
        if (s < 0) {
            g.st.internal_errors++;
            continue;
        }
        if (made) {
            g.st.fe_hops++;
            if (dt > g.st.fe_max) {
                g.st.fe_max = dt;
            }
            on_frame(frame);
        }
    }
}

/* ---- request handlers ------------------------------------------------------------------------------ */

static void handle_hello(uint16_t seq)
{
    const bs_hal_info *info = bs_hal_get_info();
    const bs_events_params *params = bs_app_model_params();
    uint8_t *p = g.out;
    *p++ = BS_PROTO_VERSION;
    *p++ = (uint8_t)info->cycle_unit;
    bs_proto_put_u16(p, BS_PROTO_MAX_PAYLOAD);
    p += 2;
    p = put_u32(p, info->core_clock_hz);
    p = put_u32(p, info->cycle_resolution);
    *p++ = (uint8_t)bs_app_model_present();
    *p++ = params->num_labels;
    *p++ = params->windows;
    *p++ = params->min_event_windows;
    p = put_u32(p, BS_CAPTURE_SNIPPET);
    p = put_str(p, bs_build_fw_version);
    p = put_str(p, bs_build_git_sha);
    p = put_str(p, info->board);
    p = put_str(p, bs_app_model_sha256());
    p = put_str(p, bs_frontend_config_hash());
    p = put_str(p, bs_app_model_frontend_hash());
    for (uint32_t l = 0; l < params->num_labels; ++l) {
        const bs_events_label *lp = &params->label[l];
        *p++ = lp->privacy;
        bs_proto_put_u16(p, (uint16_t)lp->gate_q);
        p += 2;
        p = put_u32(p, (uint32_t)lp->on_sum);
        p = put_u32(p, (uint32_t)lp->off_sum);
        p = put_str(p, bs_app_model_label(l));
    }
    send_frame(BS_MSG_HELLO | BS_MSG_REPLY_FLAG, seq, g.out, (size_t)(p - g.out));
}

static void handle_features(uint16_t seq, const uint8_t *pl, uint16_t len)
{
    if (g.state != STATE_IDLE) {
        send_error(seq, BS_MSG_FEATURES, BS_ERR_WRONG_STATE);
        return;
    }
    if (len < 1 || (len - 1u) % 2u != 0 || (len - 1u) / 2u > MAX_PCM_SAMPLES) {
        send_error(seq, BS_MSG_FEATURES, BS_ERR_BAD_ARG);
        return;
    }
    if (pl[0] & 1u) {
        bs_frontend_reset(&g.fe);
    }
    uint32_t n = (len - 1u) / 2u;
    uint8_t *p = g.out + 6; /* frames go after the count and the cycles */
    uint32_t frames = 0;
    uint32_t cycles = 0;
    for (uint32_t i = 0; i < n;) {
        /* Unpack up to one hop at a time (the payload may be unaligned), as in streaming. */
        int16_t pcm[BS_FRONTEND_HOP_SAMPLES];
        uint32_t piece = n - i < BS_FRONTEND_HOP_SAMPLES ? n - i : BS_FRONTEND_HOP_SAMPLES;
        for (uint32_t k = 0; k < piece; ++k) {
            pcm[k] = (int16_t)bs_proto_get_u16(pl + 1 + 2u * (i + k));
        }
        int16_t frame[BS_FRONTEND_NUM_MEL];
        size_t made = 0;
        uint32_t t0 = bs_hal_cycles();
        bs_frontend_status s = bs_frontend_process(&g.fe, pcm, piece, frame, 1, &made);
        uint32_t dt = bs_hal_cycles() - t0;
        cycles += dt;
        g.st.fe_total += dt;
        if (s < 0) {
            g.st.internal_errors++;
            send_error(seq, BS_MSG_FEATURES, BS_ERR_INTERNAL);
            return;
        }
        if (made) {
            g.st.fe_hops++;
            if (dt > g.st.fe_max) {
                g.st.fe_max = dt;
            }
            for (uint32_t k = 0; k < BS_FRONTEND_NUM_MEL; ++k) {
                bs_proto_put_u16(p, (uint16_t)frame[k]);
                p += 2;
            }
            frames++;
        }
        i += piece;
    }
    bs_proto_put_u16(g.out, (uint16_t)frames);
    bs_proto_put_u32(g.out + 2, cycles);
    send_frame(BS_MSG_FEATURES | BS_MSG_REPLY_FLAG, seq, g.out, (size_t)(p - g.out));
}

static void handle_infer(uint16_t seq, const uint8_t *pl, uint16_t len)
{
    if (g.state != STATE_IDLE) {
        send_error(seq, BS_MSG_INFER, BS_ERR_WRONG_STATE);
        return;
    }
    if (!bs_app_model_present()) {
        send_error(seq, BS_MSG_INFER, g.model_status < 0 ? BS_ERR_INTERNAL : BS_ERR_NO_MODEL);
        return;
    }
    if (len < 2) {
        send_error(seq, BS_MSG_INFER, BS_ERR_BAD_ARG);
        return;
    }
    uint32_t first = pl[0];
    uint32_t rows = pl[1];
    if (first == 0) {
        g.infer_rows = 0; /* a new patch starts: forget a partial one */
    }
    if (rows == 0 || first != g.infer_rows || first + rows > RING_FRAMES ||
        len != 2u + rows * BS_FRONTEND_NUM_MEL * 2u) {
        send_error(seq, BS_MSG_INFER, BS_ERR_BAD_ARG);
        return;
    }
    for (uint32_t r = 0; r < rows; ++r) {
        int16_t row[BS_FRONTEND_NUM_MEL];
        for (uint32_t k = 0; k < BS_FRONTEND_NUM_MEL; ++k) {
            row[k] = (int16_t)bs_proto_get_u16(pl + 2 + 2u * (r * BS_FRONTEND_NUM_MEL + k));
        }
        bs_app_model_quantize(row, g.ring[first + r], BS_FRONTEND_NUM_MEL);
    }
    g.infer_rows = first + rows;
    uint8_t *p = g.out;
    *p++ = (uint8_t)g.infer_rows;
    if (g.infer_rows == RING_FRAMES) {
        const bs_events_params *params = bs_app_model_params();
        int8_t scores[BS_EVENTS_MAX_LABELS];
        uint32_t t0 = bs_hal_cycles();
        int32_t rc = bs_app_model_infer((const int8_t (*)[BS_FRONTEND_NUM_MEL])g.ring, 0, scores);
        uint32_t dt = bs_hal_cycles() - t0;
        g.infer_rows = 0;
        if (rc != 0) {
            g.st.internal_errors++;
            send_error(seq, BS_MSG_INFER, BS_ERR_INTERNAL);
            return;
        }
        g.st.infer_count++;
        g.st.infer_total += dt;
        if (dt > g.st.infer_max) {
            g.st.infer_max = dt;
        }
        p = put_u32(p, dt);
        *p++ = params->num_labels;
        for (uint32_t l = 0; l < params->num_labels; ++l) {
            *p++ = (uint8_t)scores[l];
        }
    }
    send_frame(BS_MSG_INFER | BS_MSG_REPLY_FLAG, seq, g.out, (size_t)(p - g.out));
}

static void handle_stream_start(uint16_t seq, const uint8_t *pl, uint16_t len)
{
    if (g.state != STATE_IDLE) {
        send_error(seq, BS_MSG_STREAM_START, BS_ERR_WRONG_STATE);
        return;
    }
    if (len != 1 || (pl[0] & ~(uint32_t)(STREAM_FLAG_SCORES | STREAM_FLAG_MIC)) != 0) {
        send_error(seq, BS_MSG_STREAM_START, BS_ERR_BAD_ARG);
        return;
    }
    if ((pl[0] & STREAM_FLAG_MIC) && bs_hal_mic_start() != 0) {
        send_error(seq, BS_MSG_STREAM_START, BS_ERR_BAD_ARG); /* this board has no microphone */
        return;
    }
    reset_pipeline();
    g.stream_flags = pl[0];
    g.state = STATE_STREAMING;
    uint8_t p[1] = {g.stream_flags};
    send_frame(BS_MSG_STREAM_START | BS_MSG_REPLY_FLAG, seq, p, sizeof p);
}

static void send_stream_counts(uint8_t type, uint16_t seq)
{
    uint8_t p[12];
    bs_proto_put_u32(p, g.samples);
    bs_proto_put_u32(p + 4, g.frames);
    bs_proto_put_u32(p + 8, g.windows);
    send_frame(type, seq, p, sizeof p);
}

static void handle_pcm(uint16_t seq, const uint8_t *pl, uint16_t len)
{
    if (g.state != STATE_STREAMING || (g.stream_flags & STREAM_FLAG_MIC)) {
        send_error(seq, BS_MSG_PCM, BS_ERR_WRONG_STATE);
        return;
    }
    if (len == 0 || len % 2u != 0 || len / 2u > MAX_PCM_SAMPLES) {
        send_error(seq, BS_MSG_PCM, BS_ERR_BAD_ARG);
        return;
    }
    uint32_t n = len / 2u;
    for (uint32_t i = 0; i < n;) {
        int16_t pcm[BS_FRONTEND_HOP_SAMPLES];
        uint32_t piece = n - i < BS_FRONTEND_HOP_SAMPLES ? n - i : BS_FRONTEND_HOP_SAMPLES;
        for (uint32_t k = 0; k < piece; ++k) {
            pcm[k] = (int16_t)bs_proto_get_u16(pl + 2u * (i + k));
        }
        stream_samples(pcm, piece);
        i += piece;
    }
    send_stream_counts(BS_MSG_PCM | BS_MSG_REPLY_FLAG, seq);
}

static void handle_stream_stop(uint16_t seq, uint16_t len)
{
    if (g.state != STATE_STREAMING) {
        send_error(seq, BS_MSG_STREAM_STOP, BS_ERR_WRONG_STATE);
        return;
    }
    if (len != 0) {
        send_error(seq, BS_MSG_STREAM_STOP, BS_ERR_BAD_ARG);
        return;
    }
    bs_event ev[BS_EVENTS_MAX_LABELS];
    uint32_t n = bs_events_flush(&g.ev, bs_app_model_params(), ev);
    emit_events(ev, n);
    g.st.short_events += g.ev.short_events;
    g.ev.short_events = 0;
    if (g.capture_on && bs_app_model_present()) {
        bs_capture_finish(&g.cap);
    }
    g.state = STATE_IDLE;
    send_stream_counts(BS_MSG_STREAM_STOP | BS_MSG_REPLY_FLAG, seq);
}

static void handle_capture(uint16_t seq, const uint8_t *pl, uint16_t len)
{
    if (g.state != STATE_IDLE) {
        send_error(seq, BS_MSG_CAPTURE, BS_ERR_WRONG_STATE);
        return;
    }
    if (len != 1 || pl[0] > 1u) {
        send_error(seq, BS_MSG_CAPTURE, BS_ERR_BAD_ARG);
        return;
    }
    g.capture_on = pl[0];
    send_frame(BS_MSG_CAPTURE | BS_MSG_REPLY_FLAG, seq, &g.capture_on, 1);
}

static void handle_stats(uint16_t seq)
{
    const bs_hal_info *info = bs_hal_get_info();
    uint8_t *p = g.out;
    p = put_u32(p, (uint32_t)info->cycle_unit);
    p = put_u32(p, g.st.rx_frames);
    p = put_u32(p, g.st.rx_bad_crc);
    p = put_u32(p, g.st.rx_oversized);
    p = put_u32(p, g.st.rx_malformed);
    p = put_u32(p, g.st.req_errors);
    p = put_u32(p, g.st.tx_frames);
    p = put_u32(p, g.st.fe_hops);
    p = put_u64(p, g.st.fe_total);
    p = put_u32(p, g.st.fe_max);
    p = put_u64(p, g.st.quant_total);
    p = put_u32(p, g.st.infer_count);
    p = put_u64(p, g.st.infer_total);
    p = put_u32(p, g.st.infer_max);
    p = put_u64(p, g.st.post_total);
    p = put_u64(p, g.st.loop_total);
    p = put_u64(p, g.st.stream_samples);
    p = put_u32(p, g.st.events);
    p = put_u32(p, g.st.short_events + g.ev.short_events);
    p = put_u32(p, g.cap.sent);
    p = put_u32(p, g.cap.suppressed);
    p = put_u32(p, g.cap.dropped);
    p = put_u32(p, g.st.internal_errors);
    p = put_u32(p, bs_hal_stack_used());
    p = put_u32(p, bs_hal_stack_size());
    p = put_u32(p, bs_hal_static_ram_bytes());
    p = put_u32(p, bs_hal_flash_bytes());
    p = put_u32(p, bs_app_model_arena_bytes());
    p = put_u32(p, (uint32_t)sizeof g);
    send_frame(BS_MSG_STATS | BS_MSG_REPLY_FLAG, seq, g.out, (size_t)(p - g.out));
}

static void handle_frame(uint8_t type, uint16_t seq, const uint8_t *pl, uint16_t len)
{
    g.st.rx_frames++;
    switch (type) {
    case BS_MSG_HELLO:
        handle_hello(seq);
        break;
    case BS_MSG_FEATURES:
        handle_features(seq, pl, len);
        break;
    case BS_MSG_INFER:
        handle_infer(seq, pl, len);
        break;
    case BS_MSG_STREAM_START:
        handle_stream_start(seq, pl, len);
        break;
    case BS_MSG_PCM:
        handle_pcm(seq, pl, len);
        break;
    case BS_MSG_STREAM_STOP:
        handle_stream_stop(seq, len);
        break;
    case BS_MSG_CAPTURE:
        handle_capture(seq, pl, len);
        break;
    case BS_MSG_STATS:
        handle_stats(seq);
        break;
    case BS_MSG_RESET:
        send_frame(BS_MSG_RESET | BS_MSG_REPLY_FLAG, seq, NULL, 0);
        bs_hal_system_reset(); /* returns only on the host, which then starts over */
        bs_app_init();
        break;
    default:
        send_error(seq, type, BS_ERR_UNKNOWN_TYPE);
        break;
    }
}

/* ---- main loop -------------------------------------------------------------------------------------- */

void bs_app_init(void)
{
    bs_proto_decoder_init(&g.dec);
    g.tx_seq = 0;
    g.state = STATE_IDLE;
    g.stream_flags = 0;
    g.capture_on = 0;
    g.st = (app_stats){0};
    bs_frontend_config cfg;
    bs_frontend_default_config(&cfg);
    if (bs_frontend_init(&g.fe, &cfg) != BS_FRONTEND_OK) {
        g.st.internal_errors++;
    }
    g.model_status = bs_app_model_init();
    bs_capture_reset(&g.cap);
    reset_pipeline();
    uint8_t p[1] = {BS_PROTO_VERSION};
    send_unprompted(BS_MSG_BOOT, p, sizeof p);
}

int32_t bs_app_poll(void)
{
    uint8_t buf[64];
    int32_t n = bs_hal_serial_read(buf, sizeof buf);
    if (n < 0) {
        return -1;
    }
    for (int32_t i = 0; i < n; ++i) {
        bs_proto_status s = bs_proto_feed(&g.dec, buf[i]);
        if (s == BS_PROTO_FRAME) {
            handle_frame(g.dec.type, g.dec.seq, g.dec.payload, g.dec.len);
        } else if (s == BS_PROTO_ERROR) {
            if (g.dec.error == BS_ERR_BAD_CRC) {
                g.st.rx_bad_crc++;
            } else if (g.dec.error == BS_ERR_OVERSIZED) {
                g.st.rx_oversized++;
            } else {
                g.st.rx_malformed++;
            }
            send_error_frame(g.dec.seq, g.dec.type, g.dec.error);
        }
    }
    if (g.state == STATE_STREAMING && (g.stream_flags & STREAM_FLAG_MIC)) {
        int16_t pcm[BS_FRONTEND_HOP_SAMPLES];
        int32_t m = bs_hal_mic_read(pcm, BS_FRONTEND_HOP_SAMPLES);
        if (m > 0) {
            stream_samples(pcm, (uint32_t)m);
            n += m;
        }
    }
    return n;
}

int32_t bs_app_run(void)
{
    bs_app_init();
    for (;;) {
        int32_t n = bs_app_poll();
        if (n < 0) {
            return 0;
        }
        bs_hal_watchdog_kick();
        if (n == 0) {
            bs_hal_wait_for_event();
        }
    }
}
