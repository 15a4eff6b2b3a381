"""The firmware's protocol handling (C: bs_proto.c + bs_app.c), exercised through the host build of the
firmware and its ASan/UBSan build: replies byte-identical to the Python encoder, every kind of damaged or
unexpected input answered or dropped with the right error, the device still answering afterwards, and
no sanitizer report."""
from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from bowlsense.device import DeviceError, HostDevice
from bowlsense.device import protocol as P
from bowlsense.frontend import Frontend


@pytest.fixture(params=["host", "host-asan"])
def dev(request):
    d = HostDevice(asan=request.param == "host-asan")
    yield d
    d.close()
    assert d.returncode == 0, f"firmware exited with {d.returncode}:\n{d.stderr_text}"
    assert "runtime error" not in d.stderr_text and "AddressSanitizer" not in d.stderr_text, d.stderr_text


def read_raw_frames(client, count, timeout=10.0):
    raw = b""
    while raw.count(b"\x00") < count:
        chunk = client.transport.read(4096, timeout)
        assert chunk, f"timed out with {raw!r}"
        raw += chunk
    return [r + b"\x00" for r in raw.split(b"\x00")[:count]]


def test_boot_then_hello_bytes_match_python_encoder(dev):
    c = dev.client
    seq = c.send(P.MsgType.HELLO)
    boot, reply = read_raw_frames(c, 2)
    for raw in (boot, reply):
        frame = P.decode_body(raw[:-1])
        assert isinstance(frame, P.Frame)
        assert P.encode_frame(frame.type, frame.seq, frame.payload) == raw
    assert P.decode_body(boot[:-1]).type == P.MsgType.BOOT
    frame = P.decode_body(reply[:-1])
    assert (frame.type, frame.seq) == (P.MsgType.HELLO | P.REPLY_FLAG, seq)
    hello = P.Hello.parse(frame.payload)
    assert hello.board == "host" and hello.protocol_version == P.VERSION
    assert hello.max_payload == P.MAX_PAYLOAD
    assert hello.frontend_hash == Frontend().config.hash


def expect_error(c, code, fn):
    with pytest.raises(DeviceError) as e:
        fn()
    assert e.value.code == code


def test_every_bad_input_gets_its_answer_and_device_recovers(dev):
    c = dev.client
    hello = c.hello()
    good = P.encode_frame(P.MsgType.HELLO, 77)
    body = bytearray(P.cobs_decode(good[:-1]))
    body[2] ^= 0x01                                     # corrupt the seq: CRC no longer matches
    c.send_raw(P.cobs_encode(bytes(body)) + b"\x00")
    c.send_raw(good[:5] + b"\x00")                      # truncated frame
    c.send_raw(bytes(range(1, 256)) * 12 + b"\x00")     # oversized run (3060 bytes)
    c.send_raw(b"\x00\x00\x00")                         # empty frames: silently ignored
    bad_version = bytearray(P.cobs_decode(P.encode_frame(P.MsgType.HELLO, 9)[:-1])[:-2])
    bad_version[0] = 7
    c.send_raw(P.cobs_encode(bytes(bad_version) + struct.pack("<H", P.crc16(bytes(bad_version)))) + b"\x00")
    assert c.hello() == hello
    codes = [struct.unpack_from("<B", f.payload)[0] for f in c.framing_errors]
    # the bad-version error carries that frame's seq (9), which no pending request has
    assert codes == [P.ErrorCode.BAD_CRC, P.ErrorCode.MALFORMED, P.ErrorCode.OVERSIZED, P.ErrorCode.BAD_VERSION]
    assert [f.seq for f in c.framing_errors] == [P.SEQ_UNKNOWN, P.SEQ_UNKNOWN, P.SEQ_UNKNOWN, 9]
    expect_error(c, P.ErrorCode.UNKNOWN_TYPE, lambda: c.request(0x3F))
    expect_error(c, P.ErrorCode.WRONG_STATE, lambda: c.stream_pcm(np.zeros(10, np.int16)))
    expect_error(c, P.ErrorCode.WRONG_STATE, lambda: c.stream_stop())
    expect_error(c, P.ErrorCode.BAD_ARG, lambda: c.request(P.MsgType.FEATURES, b"\x00\x01"))
    expect_error(c, P.ErrorCode.BAD_ARG, lambda: c.request(P.MsgType.FEATURES, b"\x00" + bytes(2 * 1025)))
    expect_error(c, P.ErrorCode.BAD_ARG, lambda: c.request(P.MsgType.CAPTURE, b"\x02"))
    expect_error(c, P.ErrorCode.BAD_ARG, lambda: c.request(P.MsgType.STREAM_START, b"\x80"))
    if not hello.model_present:
        expect_error(c, P.ErrorCode.NO_MODEL, lambda: c.infer(np.zeros((96, 64), np.int16)))
    else:
        expect_error(c, P.ErrorCode.BAD_ARG, lambda: c.request(P.MsgType.INFER, bytes([5, 1]) + bytes(128)))
    c.stream_start()
    expect_error(c, P.ErrorCode.WRONG_STATE, lambda: c.stream_start())
    expect_error(c, P.ErrorCode.WRONG_STATE, lambda: c.features(np.zeros(400, np.int16)))
    expect_error(c, P.ErrorCode.WRONG_STATE, lambda: c.capture(True))
    expect_error(c, P.ErrorCode.BAD_ARG, lambda: c.request(P.MsgType.PCM, b"\x01"))
    c.stream_stop()
    stats = c.stats()
    assert (stats.rx_bad_crc, stats.rx_oversized, stats.rx_malformed) == (1, 1, 2)
    assert stats.request_errors == 12
    assert stats.internal_errors == 0
    assert c.hello() == hello


def test_fuzz_interleaved_with_valid_requests(dev):
    c = dev.client
    hello = c.hello()
    rng = random.Random(2024)
    valid = [P.encode_frame(t, 100 + i, p) for i, (t, p) in enumerate(
        [(P.MsgType.HELLO, b""), (P.MsgType.STATS, b""), (P.MsgType.FEATURES, b"\x01" + bytes(800))])]
    for i in range(600):
        kind = rng.randrange(5)
        if kind == 0:
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        elif kind == 1:                                # a valid frame with flipped bits
            junk = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 4)):
                junk[rng.randrange(len(junk))] ^= 1 << rng.randrange(8)
        elif kind == 2:                                # truncated
            v = rng.choice(valid)
            junk = v[:rng.randrange(1, len(v) - 1)]
        elif kind == 3:                                # unknown / reply-typed / device-typed requests
            junk = P.encode_frame(rng.choice([0x00, 0x0A, 0x3F, 0x81, 0xC1, 0xFF]), rng.randrange(0xFFFF),
                                  bytes(rng.randrange(256) for _ in range(rng.randrange(20))))
        else:                                          # long runs without a delimiter
            junk = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(100, 4000)))
        c.send_raw(bytes(junk) + b"\x00")
        if i % 25 == 0:
            assert c.hello() == hello
    assert c.hello() == hello
    stats = c.stats()
    assert stats.internal_errors == 0
    assert stats.rx_frames >= 600 // 25


def test_features_bit_exact_in_odd_chunks(dev):
    rng = np.random.default_rng(5)
    t = np.arange(8000) / 16000
    pcm = np.concatenate([
        (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16),
        rng.integers(-32768, 32768, 3000).astype(np.int16),
        np.full(700, 32767, np.int16), np.zeros(500, np.int16)])
    expected = Frontend().process(pcm)
    for chunk in (7, 160, 1000, 1024):
        frames, _ = dev.client.features(pcm, chunk=chunk)
        assert frames.dtype == np.int16
        np.testing.assert_array_equal(frames, expected)


def test_stream_counts_and_reset(dev):
    c = dev.client
    n = 40_000
    result = c.stream(np.zeros(n, np.int16), chunk=999)
    frames = (n - 400) // 160 + 1
    assert (result.counts.samples, result.counts.frames) == (n, frames)
    assert result.counts.windows == (frames - 96) // 48 + 1
    c.reset()
    assert c.stats().rx_frames == 1   # counters start over after the reset


def test_host_build_on_a_pty_through_pyserial():
    """`bowlsense-fw --pty` prints a pseudo-terminal path; pyserial opens it like a real port."""
    import subprocess
    from bowlsense.device import DeviceClient
    from bowlsense.device.launch import HOST_BIN, build_firmware
    from bowlsense.device.transport import SerialTransport
    build_firmware("host")
    proc = subprocess.Popen([str(HOST_BIN), "--pty"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        path = proc.stderr.readline().strip()
        assert path.startswith("/dev/pts/"), path
        client = DeviceClient(SerialTransport(path, baudrate=115200), timeout=10)
        try:
            assert client.hello().board == "host"
            frames, _ = client.features(np.zeros(800, np.int16))
            assert frames.shape == (3, 64)
        finally:
            client.close()
    finally:
        proc.kill()
        proc.wait()
