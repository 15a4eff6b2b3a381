"""The serial protocol's host side: framing (COBS + CRC-16), message types and payload layouts.

This is the Python twin of firmware/proto/bs_proto.c; the byte layouts are specified once in
firmware/proto/PROTOCOL.md. Pure Python, no I/O: `DeviceClient` (client.py) does the talking.

    wire = encode_frame(MsgType.HELLO, seq=1)            # bytes ending in the 0x00 delimiter
    dec = FrameDecoder()
    for item in dec.feed(data):                          # any chunking
        if isinstance(item, Frame): ...                  # a valid frame
        else: ...                                        # a DecodeError (dropped frame, and why)
"""
from __future__ import annotations

import dataclasses
import enum
import struct

VERSION = 1
HEADER_BYTES = 6
CRC_BYTES = 2
MAX_PAYLOAD = 2560
MAX_FRAME = HEADER_BYTES + MAX_PAYLOAD + CRC_BYTES
MAX_WIRE = MAX_FRAME + MAX_FRAME // 254 + 2   # COBS overhead + delimiter (bs_proto.h: BS_PROTO_MAX_WIRE)
SEQ_UNKNOWN = 0xFFFF
MAX_PCM_SAMPLES = 1024                        # per FEATURES / PCM request
PATCH_FRAMES = 96
NUM_MEL = 64
WINDOW_HOP_SAMPLES = 7680                     # 48 frames x 160 samples
WINDOW_SAMPLES = 15600                        # 95 x 160 + 400


class MsgType(enum.IntEnum):
    HELLO = 0x01
    FEATURES = 0x02
    INFER = 0x03
    STREAM_START = 0x04
    PCM = 0x05
    STREAM_STOP = 0x06
    CAPTURE = 0x07
    STATS = 0x08
    RESET = 0x09
    BOOT = 0xC0
    EVENT = 0xC1
    SCORES = 0xC2
    AUDIO = 0xC3
    ERROR = 0xFF


REPLY_FLAG = 0x80


class ErrorCode(enum.IntEnum):
    NONE = 0
    BAD_CRC = 1
    OVERSIZED = 2
    MALFORMED = 3
    BAD_VERSION = 4
    UNKNOWN_TYPE = 5
    WRONG_STATE = 6
    BAD_ARG = 7
    NO_MODEL = 8
    INTERNAL = 9


class CycleUnit(enum.IntEnum):
    CYCLES = 0
    INSTRUCTIONS = 1
    NANOSECONDS = 2


STREAM_FLAG_SCORES = 1
STREAM_FLAG_MIC = 2


# ---- checksums and COBS -------------------------------------------------------------------------------

def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor)."""
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def cobs_encode(data: bytes) -> bytes:
    """COBS without the delimiter; identical bytes to bs_proto_encode (a full 254-byte block is
    followed by a new code byte even at the end)."""
    out = bytearray([0])
    code_at, code = 0, 1
    for b in data:
        if b == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
        else:
            out.append(b)
            code += 1
            if code == 0xFF:
                out[code_at] = code
                code_at, code = len(out), 1
                out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of cobs_encode; raises ValueError on a malformed block."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        i += 1
        if code == 0:
            raise ValueError("zero byte inside a COBS block")
        run = code - 1
        if run > n - i:
            raise ValueError("COBS block runs past the end of the frame")
        block = data[i:i + run]
        if 0 in block:
            raise ValueError("zero byte inside a COBS block")
        out += block
        i += run
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


# ---- frames -------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes

    @property
    def name(self) -> str:
        base = self.type & ~REPLY_FLAG if self.type < 0xC0 else self.type
        try:
            text = MsgType(base).name
        except ValueError:
            text = f"0x{self.type:02x}"
        return text + ("_REPLY" if self.type < 0xC0 and self.type & REPLY_FLAG else "")


@dataclasses.dataclass(frozen=True)
class DecodeError:
    """A frame the decoder dropped (mirrors the device's reasons)."""
    code: ErrorCode
    raw: bytes


def encode_frame(msg_type: int, seq: int = 0, payload: bytes = b"", version: int = VERSION) -> bytes:
    """One wire frame: COBS(header + payload + crc) + 0x00."""
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the protocol maximum of {MAX_PAYLOAD}")
    body = struct.pack("<BBHH", version, msg_type, seq & 0xFFFF, len(payload)) + payload
    body += struct.pack("<H", crc16(body))
    return cobs_encode(body) + b"\x00"


def decode_body(raw: bytes) -> Frame | DecodeError:
    """Decode the bytes between two delimiters (without them)."""
    if len(raw) > MAX_WIRE:
        return DecodeError(ErrorCode.OVERSIZED, raw)
    try:
        body = cobs_decode(raw)
    except ValueError:
        return DecodeError(ErrorCode.MALFORMED, raw)
    if len(body) < HEADER_BYTES + CRC_BYTES:
        return DecodeError(ErrorCode.MALFORMED, raw)
    if crc16(body[:-CRC_BYTES]) != struct.unpack_from("<H", body, len(body) - CRC_BYTES)[0]:
        return DecodeError(ErrorCode.BAD_CRC, raw)
    version, msg_type, seq, length = struct.unpack_from("<BBHH", body)
    if length + HEADER_BYTES + CRC_BYTES != len(body):
        return DecodeError(ErrorCode.MALFORMED, raw)
    if version != VERSION:
        return DecodeError(ErrorCode.BAD_VERSION, raw)
    return Frame(msg_type, seq, body[HEADER_BYTES:-CRC_BYTES])


class FrameDecoder:
    """Streaming decoder: feed any chunks, get frames and decode errors in order. Resynchronises on every
    delimiter; a run longer than MAX_WIRE is dropped as one OVERSIZED error at its delimiter."""

    def __init__(self):
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[Frame | DecodeError]:
        out: list[Frame | DecodeError] = []
        data = bytes(data)
        start = 0
        while True:
            end = data.find(b"\x00", start)
            if end < 0:
                self._append(data[start:])
                return out
            self._append(data[start:end])
            if self._discarding:
                out.append(DecodeError(ErrorCode.OVERSIZED, b""))
            elif self._buf:
                out.append(decode_body(bytes(self._buf)))
            self._buf.clear()
            self._discarding = False
            start = end + 1

    def _append(self, data: bytes) -> None:
        if self._discarding:
            return
        self._buf += data
        if len(self._buf) > MAX_WIRE:
            self._discarding = True
            self._buf.clear()


# ---- payloads -----------------------------------------------------------------------------------------

def _read_str(payload: bytes, pos: int) -> tuple[str, int]:
    n = payload[pos]
    return payload[pos + 1:pos + 1 + n].decode("utf-8", "replace"), pos + 1 + n


@dataclasses.dataclass(frozen=True)
class LabelInfo:
    name: str
    privacy: bool
    gate_q: int    # raw score >= gate_q makes a window "speech" for the capture gate
    on_sum: int    # event starts when the sum of the last `windows` raw scores >= on_sum
    off_sum: int   # and ends when it falls below off_sum


@dataclasses.dataclass(frozen=True)
class Hello:
    protocol_version: int
    cycle_unit: CycleUnit
    max_payload: int
    core_clock_hz: int
    cycle_resolution: int
    model_present: bool
    smoothing_windows: int
    min_event_windows: int
    snippet_samples: int
    fw_version: str
    git_sha: str
    board: str
    model_sha256: str
    frontend_hash: str          # the front end compiled into the firmware
    model_frontend_hash: str    # the front end the model was trained with ("" without a model)
    labels: tuple[LabelInfo, ...]

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @classmethod
    def parse(cls, p: bytes) -> "Hello":
        (ver, unit, max_payload, clock, resolution, present, n_labels, windows, min_ev,
         snippet) = struct.unpack_from("<BBHIIBBBBI", p)
        pos = struct.calcsize("<BBHIIBBBBI")
        strings = []
        for _ in range(6):
            s, pos = _read_str(p, pos)
            strings.append(s)
        labels = []
        for _ in range(n_labels):
            privacy, gate_q, on_sum, off_sum = struct.unpack_from("<Bhii", p, pos)
            pos += struct.calcsize("<Bhii")
            name, pos = _read_str(p, pos)
            labels.append(LabelInfo(name, bool(privacy), gate_q, on_sum, off_sum))
        return cls(ver, CycleUnit(unit), max_payload, clock, resolution, bool(present), windows, min_ev,
                   snippet, *strings, tuple(labels))


# STATS reply: (name, struct code) in wire order (PROTOCOL.md, "STATS").
STATS_FIELDS = [
    ("cycle_unit", "I"), ("rx_frames", "I"), ("rx_bad_crc", "I"), ("rx_oversized", "I"),
    ("rx_malformed", "I"), ("request_errors", "I"), ("tx_frames", "I"),
    ("fe_hops", "I"), ("fe_cycles_total", "Q"), ("fe_cycles_max", "I"), ("quant_cycles_total", "Q"),
    ("infer_count", "I"), ("infer_cycles_total", "Q"), ("infer_cycles_max", "I"),
    ("post_cycles_total", "Q"), ("loop_cycles_total", "Q"), ("stream_samples", "Q"), ("events", "I"), ("short_events", "I"),
    ("capture_sent", "I"), ("capture_suppressed", "I"), ("capture_dropped", "I"),
    ("internal_errors", "I"), ("stack_used_bytes", "I"), ("stack_size_bytes", "I"),
    ("static_ram_bytes", "I"), ("flash_bytes", "I"), ("arena_bytes", "I"), ("app_state_bytes", "I"),
]
STATS_FORMAT = "<" + "".join(code for _, code in STATS_FIELDS)


@dataclasses.dataclass(frozen=True)
class Stats:
    values: dict

    def __getattr__(self, name):
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def parse(cls, p: bytes) -> "Stats":
        vals = struct.unpack_from(STATS_FORMAT, p)
        return cls(dict(zip((name for name, _ in STATS_FIELDS), vals)))

    @property
    def fe_cycles_per_hop(self) -> float:
        return self.fe_cycles_total / self.fe_hops if self.fe_hops else 0.0

    @property
    def infer_cycles_per_patch(self) -> float:
        return self.infer_cycles_total / self.infer_count if self.infer_count else 0.0

    @property
    def loop_cycles_per_audio_second(self) -> float:
        """Streaming compute (front end + quantize + inference + smoothing/gate, serial I/O excluded) per
        second of audio streamed, in this device's cycle unit."""
        return self.loop_cycles_total / (self.stream_samples / 16000) if self.stream_samples else 0.0


@dataclasses.dataclass(frozen=True)
class Event:
    """One EVENT frame. kind: "begin" (event confirmed) or "end" (event finished)."""
    kind: str
    label: int
    peak: int
    start: int     # first window index (window w starts at w * 0.48 s)
    end: int       # last window index, inclusive

    @classmethod
    def parse(cls, p: bytes) -> "Event":
        kind, label, peak, _, start, end = struct.unpack("<BBbBII", p)
        return cls({1: "begin", 2: "end"}.get(kind, str(kind)), label, peak, start, end)

    @property
    def start_s(self) -> float:
        return self.start * WINDOW_HOP_SAMPLES / 16000

    @property
    def end_s(self) -> float:
        return (self.end * WINDOW_HOP_SAMPLES + WINDOW_SAMPLES) / 16000


@dataclasses.dataclass(frozen=True)
class WindowScores:
    window: int
    cycles: int
    scores: tuple[int, ...]

    @classmethod
    def parse(cls, p: bytes) -> "WindowScores":
        window, cycles, n = struct.unpack_from("<IIB", p)
        return cls(window, cycles, tuple(struct.unpack_from(f"<{n}b", p, 9)))


@dataclasses.dataclass(frozen=True)
class AudioChunk:
    window: int
    first_sample: int
    samples: bytes  # int16 little-endian

    @classmethod
    def parse(cls, p: bytes) -> "AudioChunk":
        window, first = struct.unpack_from("<II", p)
        return cls(window, first, bytes(p[8:]))


@dataclasses.dataclass(frozen=True)
class StreamCounts:
    samples: int
    frames: int
    windows: int

    @classmethod
    def parse(cls, p: bytes) -> "StreamCounts":
        return cls(*struct.unpack("<III", p))
