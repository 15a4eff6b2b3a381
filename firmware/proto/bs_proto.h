/*
 * bs_proto: the serial protocol's framing layer (see PROTOCOL.md in this folder for byte layouts).
 *
 *   frame   = version:u8 type:u8 seq:u16le len:u16le payload[len] crc:u16le
 *   wire    = COBS(frame) 0x00
 *   crc     = CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection) over version..payload
 *
 * The decoder takes bytes one at a time (any chunking), never allocates, and always resynchronises on
 * the next 0x00 delimiter whatever came before it. The encoder writes a complete wire frame into a
 * caller buffer. Shared by the firmware and the host build; the Python twin is bowlsense.device.protocol.
 */
#ifndef BS_PROTO_H
#define BS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    BS_PROTO_VERSION = 1,
    BS_PROTO_HEADER_BYTES = 6,
    BS_PROTO_CRC_BYTES = 2,
    BS_PROTO_MAX_PAYLOAD = 2560,
    BS_PROTO_MAX_FRAME = BS_PROTO_HEADER_BYTES + BS_PROTO_MAX_PAYLOAD + BS_PROTO_CRC_BYTES,
    /* COBS adds one code byte per 254 data bytes plus one; then the trailing delimiter. */
    BS_PROTO_MAX_WIRE = BS_PROTO_MAX_FRAME + BS_PROTO_MAX_FRAME / 254 + 2,
    BS_PROTO_SEQ_UNKNOWN = 0xFFFF
};

/* Message types. Requests come from the host; a reply has the request's type | 0x80 and echoes its
 * seq. Types 0xC0..0xFE are sent by the device unprompted, numbered by its own counter. */
typedef enum {
    BS_MSG_HELLO = 0x01,
    BS_MSG_FEATURES = 0x02,
    BS_MSG_INFER = 0x03,
    BS_MSG_STREAM_START = 0x04,
    BS_MSG_PCM = 0x05,
    BS_MSG_STREAM_STOP = 0x06,
    BS_MSG_CAPTURE = 0x07,
    BS_MSG_STATS = 0x08,
    BS_MSG_RESET = 0x09,
    BS_MSG_REPLY_FLAG = 0x80,
    BS_MSG_BOOT = 0xC0,
    BS_MSG_EVENT = 0xC1,
    BS_MSG_SCORES = 0xC2,
    BS_MSG_AUDIO = 0xC3,
    BS_MSG_ERROR = 0xFF
} bs_msg_type;

/* Error codes carried by a BS_MSG_ERROR frame (first payload byte). */
typedef enum {
    BS_ERR_NONE = 0,
    BS_ERR_BAD_CRC = 1,       /* checksum mismatch: the frame was dropped */
    BS_ERR_OVERSIZED = 2,     /* more than BS_PROTO_MAX_WIRE bytes before a delimiter */
    BS_ERR_MALFORMED = 3,     /* bad COBS, shorter than a header, or len disagrees with the frame */
    BS_ERR_BAD_VERSION = 4,   /* version byte is not BS_PROTO_VERSION */
    BS_ERR_UNKNOWN_TYPE = 5,  /* not a request type this firmware knows */
    BS_ERR_WRONG_STATE = 6,   /* valid request, but not in the current state (e.g. PCM while idle) */
    BS_ERR_BAD_ARG = 7,       /* payload length or a field out of range */
    BS_ERR_NO_MODEL = 8,      /* firmware built without a model: inference unavailable */
    BS_ERR_INTERNAL = 9       /* a library returned an unexpected status */
} bs_proto_error;

/* Decoder status for one fed byte. */
typedef enum {
    BS_PROTO_MORE = 0,        /* byte consumed, no frame finished */
    BS_PROTO_FRAME = 1,       /* a valid frame is available in the decoder (see fields below) */
    BS_PROTO_EMPTY = 2,       /* a lone delimiter (keep-alive / resync): ignore */
    BS_PROTO_ERROR = -1       /* a frame was dropped; error and (if known) seq/type say why */
} bs_proto_status;

/* Caller-owned decoder state. */
typedef struct {
    uint8_t buf[BS_PROTO_MAX_WIRE];  /* raw COBS bytes of the frame being received */
    uint32_t fill;                   /* bytes in buf */
    uint8_t discarding;              /* oversized: drop bytes until the next delimiter */
    /* Valid after BS_PROTO_FRAME (payload points into buf) or BS_PROTO_ERROR (where known). */
    uint8_t type;
    uint16_t seq;
    uint16_t len;
    const uint8_t *payload;
    bs_proto_error error;
} bs_proto_decoder;

/* Clear the decoder (drops any partial frame). */
void bs_proto_decoder_init(bs_proto_decoder *d);

/* Feed one received byte. On BS_PROTO_FRAME the frame's fields stay valid until the next call. */
bs_proto_status bs_proto_feed(bs_proto_decoder *d, uint8_t byte);

/*
 * Build one wire frame (COBS + delimiter) into out. payload may be NULL when len is 0.
 * Returns the number of bytes written, or 0 if len > BS_PROTO_MAX_PAYLOAD or out_capacity is too small
 * (BS_PROTO_MAX_WIRE always suffices).
 */
size_t bs_proto_encode(uint8_t type, uint16_t seq, const uint8_t *payload, size_t len, uint8_t *out,
                       size_t out_capacity);

/* CRC-16/CCITT-FALSE of n bytes, continuing from crc (start with 0xFFFF). */
uint16_t bs_proto_crc16(uint16_t crc, const uint8_t *data, size_t n);

/* Little-endian field helpers, so the app never depends on the CPU's byte order or alignment. */
void bs_proto_put_u16(uint8_t *p, uint16_t v);
void bs_proto_put_u32(uint8_t *p, uint32_t v);
uint16_t bs_proto_get_u16(const uint8_t *p);
uint32_t bs_proto_get_u32(const uint8_t *p);

#ifdef __cplusplus
}
#endif

#endif /* BS_PROTO_H */
