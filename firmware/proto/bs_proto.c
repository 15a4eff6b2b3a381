/* bs_proto: COBS framing with CRC-16 (see bs_proto.h and PROTOCOL.md). */
#include "bs_proto.h"

void bs_proto_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

void bs_proto_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

uint16_t bs_proto_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | ((uint16_t)p[1] << 8));
}

uint32_t bs_proto_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

uint16_t bs_proto_crc16(uint16_t crc, const uint8_t *data, size_t n)
{
    /* Bitwise on purpose: 2.5 KiB frames at serial speed do not need the 512-byte table. */
    for (size_t i = 0; i < n; ++i) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (int b = 0; b < 8; ++b) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

void bs_proto_decoder_init(bs_proto_decoder *d)
{
    d->fill = 0;
    d->discarding = 0;
    d->type = 0;
    d->seq = BS_PROTO_SEQ_UNKNOWN;
    d->len = 0;
    d->payload = 0;
    d->error = BS_ERR_NONE;
}

/* Decode COBS in place (the output never overtakes the input). Returns the decoded length or -1. */
static int32_t cobs_decode_in_place(uint8_t *buf, uint32_t n)
{
    uint32_t in = 0;
    uint32_t out = 0;
    while (in < n) {
        uint8_t code = buf[in++];
        if (code == 0) {
            return -1;
        }
        uint32_t run = (uint32_t)code - 1u;
        if (run > n - in) {
            return -1; /* block claims more bytes than arrived: truncated */
        }
        for (uint32_t i = 0; i < run; ++i) {
            uint8_t b = buf[in++];
            if (b == 0) {
                return -1;
            }
            buf[out++] = b;
        }
        /* A block shorter than 254 data bytes stands for a zero, except at the very end. */
        if (code != 0xFFu && in < n) {
            buf[out++] = 0;
        }
    }
    return (int32_t)out;
}

static bs_proto_status finish_frame(bs_proto_decoder *d)
{
    uint32_t n = d->fill;
    d->fill = 0;
    d->seq = BS_PROTO_SEQ_UNKNOWN;
    d->type = 0;
    d->len = 0;
    d->payload = 0;
    if (d->discarding) {
        d->discarding = 0;
        d->error = BS_ERR_OVERSIZED;
        return BS_PROTO_ERROR;
    }
    if (n == 0) {
        return BS_PROTO_EMPTY;
    }
    int32_t m = cobs_decode_in_place(d->buf, n);
    if (m < (int32_t)(BS_PROTO_HEADER_BYTES + BS_PROTO_CRC_BYTES)) {
        d->error = BS_ERR_MALFORMED;
        return BS_PROTO_ERROR;
    }
    const uint8_t *f = d->buf;
    uint16_t len = bs_proto_get_u16(f + 4);
    uint16_t crc = bs_proto_crc16(0xFFFFu, f, (size_t)m - BS_PROTO_CRC_BYTES);
    if (crc != bs_proto_get_u16(f + m - BS_PROTO_CRC_BYTES)) {
        /* Nothing in a corrupted frame can be trusted, seq included. */
        d->error = BS_ERR_BAD_CRC;
        return BS_PROTO_ERROR;
    }
    d->type = f[1];
    d->seq = bs_proto_get_u16(f + 2);
    if ((uint32_t)len + BS_PROTO_HEADER_BYTES + BS_PROTO_CRC_BYTES != (uint32_t)m) {
        d->error = BS_ERR_MALFORMED;
        return BS_PROTO_ERROR;
    }
    if (f[0] != BS_PROTO_VERSION) {
        d->error = BS_ERR_BAD_VERSION;
        return BS_PROTO_ERROR;
    }
    d->len = len;
    d->payload = f + BS_PROTO_HEADER_BYTES;
    d->error = BS_ERR_NONE;
    return BS_PROTO_FRAME;
}

bs_proto_status bs_proto_feed(bs_proto_decoder *d, uint8_t byte)
{
    if (byte == 0) {
        return finish_frame(d);
    }
    if (d->discarding) {
        return BS_PROTO_MORE;
    }
    if (d->fill >= sizeof d->buf) {
        d->discarding = 1; /* report once, at the delimiter that ends it */
        return BS_PROTO_MORE;
    }
    d->buf[d->fill++] = byte;
    return BS_PROTO_MORE;
}

size_t bs_proto_encode(uint8_t type, uint16_t seq, const uint8_t *payload, size_t len, uint8_t *out,
                       size_t out_capacity)
{
    if (len > BS_PROTO_MAX_PAYLOAD) {
        return 0;
    }
    size_t frame_len = BS_PROTO_HEADER_BYTES + len + BS_PROTO_CRC_BYTES;
    size_t need = frame_len + frame_len / 254u + 2u;
    if (out_capacity < need) {
        return 0;
    }
    uint8_t header[BS_PROTO_HEADER_BYTES];
    header[0] = BS_PROTO_VERSION;
    header[1] = type;
    bs_proto_put_u16(header + 2, seq);
    bs_proto_put_u16(header + 4, (uint16_t)len);
    uint16_t crc = bs_proto_crc16(0xFFFFu, header, sizeof header);
    crc = bs_proto_crc16(crc, payload, len);
    uint8_t trailer[BS_PROTO_CRC_BYTES];
    bs_proto_put_u16(trailer, crc);

    /* COBS over the three pieces without assembling the frame first. */
    size_t code_at = 0;
    size_t o = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < frame_len; ++i) {
        uint8_t b;
        if (i < BS_PROTO_HEADER_BYTES) {
            b = header[i];
        } else if (i < BS_PROTO_HEADER_BYTES + len) {
            b = payload[i - BS_PROTO_HEADER_BYTES];
        } else {
            b = trailer[i - BS_PROTO_HEADER_BYTES - len];
        }
        if (b == 0) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
        } else {
            out[o++] = b;
            if (++code == 0xFFu) {
                out[code_at] = code;
                code_at = o++;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    out[o++] = 0;
    return o;
}
