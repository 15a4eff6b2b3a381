"""Host-side framing (bowlsense.device.protocol): COBS + CRC-16 round trips, the published CRC check value,
and the decoder's handling of garbage, corruption, truncation and oversized runs."""
from __future__ import annotations

import random
import struct

import pytest

from bowlsense.device import protocol as P


def test_crc16_ccitt_false_check_value():
    # The catalogue check value of CRC-16/CCITT-FALSE (a.k.a. CRC-16/IBM-3740) over "123456789".
    assert P.crc16(b"123456789") == 0x29B1


@pytest.mark.parametrize("n", [0, 1, 2, 253, 254, 255, 256, 507, 508, 509, 1000, P.MAX_PAYLOAD])
def test_cobs_round_trip_sizes(n):
    rng = random.Random(n)
    for pattern in ("random", "zeros", "nonzero"):
        if pattern == "random":
            data = bytes(rng.randrange(256) for _ in range(n))
        elif pattern == "zeros":
            data = bytes(n)
        else:
            data = bytes(rng.randrange(1, 256) for _ in range(n))
        enc = P.cobs_encode(data)
        assert 0 not in enc
        assert len(enc) <= len(data) + len(data) // 254 + 1
        assert P.cobs_decode(enc) == data


def test_frame_round_trip_any_chunking():
    rng = random.Random(7)
    frames = [(rng.choice(list(P.MsgType)), rng.randrange(0xFFFF),
               bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 5, 254, 255, 1000, P.MAX_PAYLOAD]))))
              for _ in range(40)]
    wire = b"".join(P.encode_frame(t, s, p) for t, s, p in frames)
    assert all(len(P.encode_frame(t, s, p)) <= P.MAX_WIRE for t, s, p in frames)
    for chunk in (1, 3, 255, 4096, len(wire)):
        dec = P.FrameDecoder()
        out = []
        for i in range(0, len(wire), chunk):
            out += dec.feed(wire[i:i + chunk])
        assert [(f.type, f.seq, f.payload) for f in out] == [(int(t), s, p) for t, s, p in frames]


def test_payload_limit_enforced():
    with pytest.raises(ValueError):
        P.encode_frame(P.MsgType.PCM, 1, bytes(P.MAX_PAYLOAD + 1))


def test_decoder_reports_each_kind_of_damage_and_resyncs():
    good = P.encode_frame(P.MsgType.HELLO, 5)
    body = P.cobs_decode(good[:-1])
    flipped = bytearray(body)
    flipped[3] ^= 0x10
    bad_crc = P.cobs_encode(bytes(flipped)) + b"\x00"
    truncated = good[:4] + b"\x00"
    wrong_len = bytearray(body[:-2])
    wrong_len[4] = 9   # claims 9 payload bytes, has 0
    wrong_len = bytes(wrong_len) + struct.pack("<H", P.crc16(bytes(wrong_len)))
    bad_version = bytearray(body[:-2])
    bad_version[0] = 2
    bad_version = bytes(bad_version) + struct.pack("<H", P.crc16(bytes(bad_version)))
    oversized = b"\x01" * (P.MAX_WIRE + 10) + b"\x00"
    stream = (b"\x00\x00" + bad_crc + good + truncated + good + P.cobs_encode(wrong_len) + b"\x00"
              + P.cobs_encode(bad_version) + b"\x00" + oversized + good)
    out = P.FrameDecoder().feed(stream)
    kinds = [o.code if isinstance(o, P.DecodeError) else "frame" for o in out]
    assert kinds == [P.ErrorCode.BAD_CRC, "frame", P.ErrorCode.MALFORMED, "frame", P.ErrorCode.MALFORMED,
                     P.ErrorCode.BAD_VERSION, P.ErrorCode.OVERSIZED, "frame"]


def test_random_garbage_never_yields_a_frame_by_accident_and_never_raises():
    rng = random.Random(99)
    dec = P.FrameDecoder()
    frames = 0
    for _ in range(200):
        items = dec.feed(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600))))
        frames += sum(isinstance(i, P.Frame) for i in items)
    # a random run passes CRC-16 and the length check with probability < 2^-16 per candidate
    assert frames == 0
    assert isinstance(dec.feed(b"\x00" + P.encode_frame(P.MsgType.STATS, 3))[-1], P.Frame)
