"""The link survives abuse: random bytes, flipped bits, truncated frames, oversized runs and lengths,
wrong versions, unknown commands and commands in the wrong state, interleaved with valid requests.

Every valid request must be answered correctly (HELLO identical, FEATURES bit-exact with the host front
end, STATS parseable, CAPTURE acknowledged), the device must keep answering, and its STATS must show
exactly the drops the host predicts and no internal error. The expected ERROR replies are predicted by
running the same bytes through the host's decoder (bowlsense.device.protocol.FrameDecoder), which
mirrors the device's; the test checks the device's ERROR replies, in order, against that prediction.

A RESET in the middle of a stream brings the device back to a clean idle state that computes the same
bits as before.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest

from bowlsense.device import DeviceError
from bowlsense.device import protocol as P

from hil_support import RATE, clips_with, fit, host_frames, host_patches, load_clip, stats_delta

GARBAGE_SEQ = 0xF000          # intact garbage frames carry seqs from here: never a pending request's
KNOWN = {t.value for t in P.MsgType}
SAFE_VALID = (P.MsgType.HELLO, P.MsgType.STATS, P.MsgType.CAPTURE, P.MsgType.FEATURES)


def _body(version: int, msg_type: int, seq: int, payload: bytes, length: int | None = None) -> bytes:
    """An unencoded frame with a correct CRC (length field may lie)."""
    head = struct.pack("<BBHH", version, msg_type, seq, len(payload) if length is None else length)
    return head + payload + struct.pack("<H", P.crc16(head + payload))


def _wire(body: bytes) -> bytes:
    return P.cobs_encode(body) + b"\x00"


class Traffic:
    """A deterministic mix of bad frames, each checked (with the host decoder) not to be a frame that
    could change the device's state."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.kinds: dict[str, int] = {}
        self.seq = GARBAGE_SEQ

    def _seq(self) -> int:
        self.seq = GARBAGE_SEQ + (self.seq - GARBAGE_SEQ + 1) % 0x0FFF
        return self.seq

    def _valid_wire(self) -> bytes:
        r = self.rng
        t = SAFE_VALID[r.integers(len(SAFE_VALID))]
        payload = {P.MsgType.HELLO: b"", P.MsgType.STATS: b"", P.MsgType.CAPTURE: b"\x00",
                   P.MsgType.FEATURES: b"\x00" + r.integers(0, 256, 2 * int(r.integers(1, 40)), dtype=np.uint8).tobytes()}[t]
        return P.encode_frame(t, self._seq(), payload)

    def item(self) -> tuple[str, bytes]:
        r = self.rng
        roll = r.random()
        if roll < 0.25:
            kind, data = "random", r.integers(0, 256, int(r.integers(1, 80)), dtype=np.uint8).tobytes() + b"\x00"
        elif roll < 0.45:
            w = bytearray(self._valid_wire())
            for _ in range(int(r.integers(1, 4))):
                i = int(r.integers(0, len(w) - 1))
                w[i] ^= 1 << int(r.integers(0, 8))
            kind, data = "bitflip", bytes(w) if w.endswith(b"\x00") else bytes(w) + b"\x00"
        elif roll < 0.62:
            w = self._valid_wire()
            kind, data = "truncated", w[:int(r.integers(1, len(w) - 1))] + b"\x00"
        elif roll < 0.625:
            kind, data = "oversized_run", bytes(r.integers(1, 256, int(r.integers(P.MAX_WIRE + 1, P.MAX_WIRE + 400)),
                                                           dtype=np.uint8)) + b"\x00"
        elif roll < 0.63:
            n = P.MAX_PAYLOAD + int(r.integers(1, 64))   # an honest frame, just too big
            kind, data = "oversized_frame", _wire(_body(P.VERSION, P.MsgType.HELLO, self._seq(),
                                                        r.integers(0, 256, n, dtype=np.uint8).tobytes()))
        elif roll < 0.72:
            lie = int(r.choice([P.MAX_PAYLOAD + 1, 0xFFFF, int(r.integers(41, 3000))]))
            kind, data = "length_lies", _wire(_body(P.VERSION, P.MsgType.HELLO, self._seq(),
                                                    r.integers(0, 256, int(r.integers(0, 40)), dtype=np.uint8).tobytes(),
                                                    length=lie))
        elif roll < 0.76:
            kind, data = "bad_version", _wire(_body(int(r.choice([0, 2, 0x81, 0xFF])), P.MsgType.HELLO, self._seq(), b""))
        elif roll < 0.92:
            t = int(r.integers(0, 256))
            while t in (1, 2, 3, 4, 5, 6, 7, 8, 9):
                t = int(r.integers(0, 256))
            kind, data = "unknown_command", P.encode_frame(t, self._seq(), r.integers(0, 256, int(r.integers(0, 30)),
                                                                                       dtype=np.uint8).tobytes())
        elif roll < 0.96:
            t = int(r.choice([P.MsgType.PCM, P.MsgType.STREAM_STOP]))    # idle device: WRONG_STATE
            kind, data = "wrong_state", P.encode_frame(t, self._seq(), b"\x01\x00" if t == P.MsgType.PCM else b"")
        else:
            t, payload = [(P.MsgType.FEATURES, b"\x00\x01"), (P.MsgType.CAPTURE, b"\x02"),
                          (P.MsgType.CAPTURE, b""), (P.MsgType.FEATURES, b"")][int(r.integers(0, 4))]
            kind, data = "bad_argument", P.encode_frame(t, self._seq(), payload)
        return kind, data

    def next(self) -> tuple[str, bytes, list]:
        """(kind, bytes, what a fresh decoder makes of them), never a frame that changes state."""
        while True:
            kind, data = self.item()
            decoded = P.FrameDecoder().feed(data)
            if all(isinstance(d, P.DecodeError) or _harmless(d) for d in decoded):
                self.kinds[kind] = self.kinds.get(kind, 0) + 1
                return kind, data, decoded


def _harmless(frame: P.Frame) -> bool:
    """Frames the device answers with an error or a pure reply; anything else is regenerated."""
    if frame.type not in KNOWN or frame.type & P.REPLY_FLAG:
        return frame.seq >= GARBAGE_SEQ
    if frame.type in (P.MsgType.HELLO, P.MsgType.STATS):
        return frame.seq >= GARBAGE_SEQ
    if frame.type == P.MsgType.CAPTURE:
        return frame.payload in (b"\x00", b"", b"\x02")
    if frame.type in (P.MsgType.PCM, P.MsgType.STREAM_STOP):
        return frame.seq >= GARBAGE_SEQ
    if frame.type == P.MsgType.FEATURES:
        return frame.seq >= GARBAGE_SEQ
    return False


def _expected_reply(frame: P.Frame) -> int | None:
    """The error code the device answers a harmless intact frame with (None: a normal reply)."""
    t, p = frame.type, frame.payload
    if t not in (1, 2, 3, 4, 5, 6, 7, 8, 9):
        return P.ErrorCode.UNKNOWN_TYPE
    if t in (P.MsgType.PCM, P.MsgType.STREAM_STOP):
        return P.ErrorCode.WRONG_STATE
    if t == P.MsgType.CAPTURE:
        return None if p == b"\x00" else P.ErrorCode.BAD_ARG
    if t == P.MsgType.FEATURES:
        ok = len(p) >= 1 and (len(p) - 1) % 2 == 0 and (len(p) - 1) // 2 <= P.MAX_PCM_SAMPLES
        return None if ok else P.ErrorCode.BAD_ARG
    return None


def _hammer(dut, frames: int, valid_every: int, seed: int):
    c = dut.client
    hello = dut.hello
    rng = np.random.default_rng(seed + 1)
    traffic = Traffic(seed)
    c.clear()
    before = dut.stats()
    predicted: list[int] = []       # error codes of the device's ERROR replies, in order
    stray_replies = 0               # normal replies to intact garbage frames (ignored by the client)
    intact = 0                      # intact frames among the garbage (counted in rx_frames)
    counts = {"bad_crc": 0, "oversized": 0, "malformed": 0, "request_errors": 0}
    valid = 0
    for i in range(frames):
        kind, data, decoded = traffic.next()
        c.send_raw(data)
        for d in decoded:
            if isinstance(d, P.DecodeError):
                predicted.append(d.code)
                key = {P.ErrorCode.BAD_CRC: "bad_crc", P.ErrorCode.OVERSIZED: "oversized"}.get(d.code, "malformed")
                counts[key] += 1
            else:
                intact += 1
                code = _expected_reply(d)
                if code is None:
                    stray_replies += 1
                else:
                    predicted.append(code)
                    counts["request_errors"] += 1
        if (i + 1) % valid_every == 0:
            valid += 1
            which = valid % 4
            if which == 0:
                assert c.hello(timeout=10.0) == hello, f"HELLO changed after {i + 1} bad frames"
            elif which == 1:
                pcm = rng.integers(-32768, 32768, 560, dtype=np.int64).astype(np.int16)
                frames_dev, _ = c.features(pcm, reset=True)
                np.testing.assert_array_equal(frames_dev, host_frames(pcm),
                                              err_msg=f"FEATURES wrong after {i + 1} bad frames")
            elif which == 2:
                s = c.stats()
                assert s.internal_errors == before.internal_errors, f"internal error after {i + 1} bad frames"
            else:
                c.capture(False)
    c.hello(timeout=10.0)
    valid += 1
    after = dut.stats()
    d = stats_delta(before, after)
    got = [f.payload[0] for f in c.framing_errors]
    return traffic, predicted, got, counts, d, valid, intact, stray_replies


def _check(traffic, predicted, got, counts, d, valid, intact, frames):
    print(f"\n{frames} bad frames ({', '.join(f'{k} {v}' for k, v in sorted(traffic.kinds.items()))}); "
          f"{valid} valid requests answered; device counted bad_crc {d['rx_bad_crc']}, oversized "
          f"{d['rx_oversized']}, malformed {d['rx_malformed']}, request errors {d['request_errors']}")
    assert len(got) == len(predicted), f"{len(got)} ERROR replies from the device, host predicts {len(predicted)}"
    first = next((i for i, (a, b) in enumerate(zip(got, predicted)) if a != b), None)
    assert first is None, f"ERROR reply {first}: device code {got[first]}, host predicts {predicted[first]}"
    assert d["rx_bad_crc"] == counts["bad_crc"]
    assert d["rx_oversized"] == counts["oversized"]
    assert d["rx_malformed"] == counts["malformed"]
    # + the STATS that reads `after` (the requests inside count as valid frames)
    assert d["request_errors"] == counts["request_errors"]
    assert d["rx_frames"] == intact + valid + 1
    assert d["internal_errors"] == 0, "STATS reports internal errors"


def test_10000_bad_frames_interleaved_with_valid_requests(dut):
    frames = 10_000
    out = _hammer(dut, frames, valid_every=20, seed=7)
    _check(*out[:7], frames)


@pytest.mark.quick
@pytest.mark.quick_variant("test_10000_bad_frames_interleaved_with_valid_requests")
def test_1000_bad_frames_quick(dut):
    frames = 1_000
    out = _hammer(dut, frames, valid_every=10, seed=11)
    _check(*out[:7], frames)


@pytest.mark.quick
def test_reset_mid_stream_recovers(dut, request):
    c = dut.client
    pcm = fit(np.concatenate([load_clip(x) for x in clips_with("eating", 1)]), int(2.5 * RATE))
    c.stream_start(scores=True)
    for off in range(0, 8 * 1024, 1024):
        c.stream_pcm(pcm[off:off + 1024])
    c.reset()                                     # waits for the BOOT frame of the restarted firmware
    assert c.hello() == dut.hello
    with pytest.raises(DeviceError) as e:         # the stream did not survive the reset
        c.stream_stop()
    assert e.value.code == P.ErrorCode.WRONG_STATE
    s = c.stats()
    assert s.stream_samples == 0 and s.internal_errors == 0, "RESET did not start the firmware afresh"
    frames, _ = c.features(pcm[:4000], reset=True)
    np.testing.assert_array_equal(frames, host_frames(pcm[:4000]), err_msg="front end wrong after RESET")
    res, raw = dut.stream(pcm)
    assert (res.counts.samples, res.counts.frames) == (len(pcm), len(host_frames(pcm)))
    if dut.hello.model_present:   # the model's scores too (without a model the model checks fail elsewhere)
        model = request.getfixturevalue("host_model")
        expected = model.scores(host_patches(pcm))
        np.testing.assert_array_equal(raw, expected, err_msg="scores after RESET differ from the host's")
