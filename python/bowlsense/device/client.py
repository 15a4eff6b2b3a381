"""DeviceClient: requests and replies over any transport (see transport.py), one request at a time.

    with open_device() as dev:               # bowlsense.device.open_device: QEMU unless port= is given
        hello = dev.hello()                  # protocol.Hello: firmware sha, board, model sha256, labels...
        frames, cycles = dev.features(pcm)   # (n, 64) int16 log-mel, bit-exact with bowlsense.frontend
        scores, cycles = dev.infer(patch)    # (num_labels,) int8 raw scores for a (96, 64) int16 patch
        result = dev.stream(pcm, scores=True)  # StreamResult: events, per-window scores, audio, counts
        stats = dev.stats()                  # protocol.Stats: cycles per stage, stack, RAM, privacy counters

Every reply is matched to its request by sequence number. Frames the device sends on its own (EVENT,
SCORES, AUDIO, BOOT) are collected in `unsolicited` (and passed to `on_frame` if set). An ERROR reply
raises DeviceError with the device's code; a missing reply raises DeviceTimeout.
"""
from __future__ import annotations

import dataclasses
import struct
import time
from typing import Callable

import numpy as np

from . import protocol as P


class DeviceError(RuntimeError):
    """The device answered a request with an ERROR frame."""

    def __init__(self, code: int, request: int, seq: int):
        self.code = P.ErrorCode(code) if code in P.ErrorCode._value2member_map_ else code
        self.request = request
        self.seq = seq
        name = getattr(self.code, "name", str(code))
        super().__init__(f"device error {name} for request 0x{request:02x} (seq {seq})")


class DeviceTimeout(TimeoutError):
    """No reply within the timeout."""


@dataclasses.dataclass
class StreamResult:
    events: list[P.Event]            # every EVENT frame, begin and end, in order
    scores: list[P.WindowScores]     # per-window raw scores (when requested)
    audio: list[P.AudioChunk]        # capture-mode snippets the privacy gate let through
    counts: P.StreamCounts           # samples / frames / windows at STREAM_STOP

    @property
    def ended(self) -> list[P.Event]:
        return [e for e in self.events if e.kind == "end"]


class DeviceClient:
    def __init__(self, transport, timeout: float = 20.0):
        self.transport = transport
        self.timeout = timeout
        self._decoder = P.FrameDecoder()
        self._pending: list = []          # decoded items not yet consumed
        self._seq = 0
        self.unsolicited: list[P.Frame] = []
        self.decode_errors: list[P.DecodeError] = []   # frames from the device that failed to decode
        self.framing_errors: list[P.Frame] = []        # ERROR frames with unknown seq (device-side drops)
        self.on_frame: Callable[[P.Frame], None] | None = None

    # ---- low level ------------------------------------------------------------------------------
    def next_seq(self) -> int:
        self._seq = (self._seq + 1) % 0xFFFF   # 0xFFFF is reserved for "unknown"
        return self._seq

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are (robustness tests: garbage, truncated or corrupted frames)."""
        self.transport.write(bytes(data))

    def send(self, msg_type: int, payload: bytes = b"", seq: int | None = None) -> int:
        seq = self.next_seq() if seq is None else seq
        self.transport.write(P.encode_frame(msg_type, seq, payload))
        return seq

    def receive(self, timeout: float) -> P.Frame | None:
        """The next decoded frame from the device, or None after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            while self._pending:
                item = self._pending.pop(0)
                if isinstance(item, P.DecodeError):
                    self.decode_errors.append(item)
                    continue
                return item
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            data = self.transport.read(4096, min(left, 0.5))
            if data:
                self._pending.extend(self._decoder.feed(data))

    def _dispatch_unsolicited(self, frame: P.Frame) -> None:
        self.unsolicited.append(frame)
        if self.on_frame is not None:
            self.on_frame(frame)

    def wait_reply(self, seq: int, request: int, timeout: float | None = None) -> P.Frame:
        """Wait for the reply to `seq`, collecting unsolicited frames meanwhile."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            frame = self.receive(max(0.0, deadline - time.monotonic()))
            if frame is None:
                raise DeviceTimeout(f"no reply to request 0x{request:02x} (seq {seq}) in {timeout:.1f} s")
            if frame.type >= 0xC0 and frame.type != P.MsgType.ERROR:
                self._dispatch_unsolicited(frame)
            elif frame.type == P.MsgType.ERROR:
                code, req = struct.unpack_from("<BB", frame.payload) if len(frame.payload) >= 2 else (0, 0)
                if frame.seq == seq:
                    raise DeviceError(code, req, seq)
                self.framing_errors.append(frame)
            elif frame.seq == seq and frame.type == (request | P.REPLY_FLAG):
                return frame
            # else: a stale reply to an earlier request (after a timeout): ignore

    def request(self, msg_type: int, payload: bytes = b"", timeout: float | None = None) -> P.Frame:
        seq = self.send(msg_type, payload)
        return self.wait_reply(seq, msg_type, timeout)

    def clear(self) -> None:
        """Forget collected unsolicited frames and errors."""
        self.unsolicited.clear()
        self.decode_errors.clear()
        self.framing_errors.clear()

    # ---- commands -------------------------------------------------------------------------------
    def hello(self, timeout: float | None = None) -> P.Hello:
        return P.Hello.parse(self.request(P.MsgType.HELLO, timeout=timeout).payload)

    def stats(self) -> P.Stats:
        return P.Stats.parse(self.request(P.MsgType.STATS).payload)

    def capture(self, on: bool) -> None:
        self.request(P.MsgType.CAPTURE, bytes([1 if on else 0]))

    def reset(self, timeout: float = 10.0) -> None:
        """RESET, then wait for the BOOT frame of the restarted firmware."""
        self.clear()
        self.request(P.MsgType.RESET)
        deadline = time.monotonic() + timeout
        while not any(f.type == P.MsgType.BOOT for f in self.unsolicited):
            frame = self.receive(max(0.0, deadline - time.monotonic()))
            if frame is None:
                raise DeviceTimeout(f"device did not boot again within {timeout} s after RESET")
            if frame.type >= 0xC0 and frame.type != P.MsgType.ERROR:
                self._dispatch_unsolicited(frame)

    @staticmethod
    def _pcm_bytes(pcm) -> bytes:
        arr = np.asarray(pcm)
        if arr.dtype != np.int16 or arr.ndim != 1:
            raise ValueError(f"expected 1-D int16 PCM, got {arr.dtype} with shape {arr.shape}")
        return arr.astype("<i2").tobytes()

    def features(self, pcm, reset: bool = True, chunk: int = P.MAX_PCM_SAMPLES) -> tuple[np.ndarray, int]:
        """Front end on the device: (n_frames, 64) int16 and the total front end cycles. Samples are sent in
        chunks of `chunk` (any size 1..1024; the device's front end keeps its history across them)."""
        if not 1 <= chunk <= P.MAX_PCM_SAMPLES:
            raise ValueError(f"chunk must be 1..{P.MAX_PCM_SAMPLES} samples, got {chunk}")
        data = self._pcm_bytes(pcm)
        frames, cycles = [], 0
        first = True
        for off in range(0, max(len(data), 1), 2 * chunk):
            flags = 1 if (reset and first) else 0
            first = False
            reply = self.request(P.MsgType.FEATURES, bytes([flags]) + data[off:off + 2 * chunk]).payload
            n, c = struct.unpack_from("<HI", reply)
            cycles += c
            frames.append(np.frombuffer(reply, dtype="<i2", count=n * P.NUM_MEL, offset=6).reshape(n, P.NUM_MEL))
        out = np.concatenate(frames) if frames else np.zeros((0, P.NUM_MEL), np.int16)
        return out.astype(np.int16), cycles

    def infer(self, patch, rows_per_frame: int = 16) -> tuple[np.ndarray, int]:
        """Raw int8 scores for one (96, 64) int16 log-mel patch, and the inference cycles."""
        arr = np.asarray(patch)
        if arr.shape != (P.PATCH_FRAMES, P.NUM_MEL) or arr.dtype != np.int16:
            raise ValueError(f"expected an int16 patch of shape (96, 64), got {arr.dtype} {arr.shape}")
        data = arr.astype("<i2").tobytes()
        row_bytes = 2 * P.NUM_MEL
        reply = b""
        for first in range(0, P.PATCH_FRAMES, rows_per_frame):
            n = min(rows_per_frame, P.PATCH_FRAMES - first)
            reply = self.request(P.MsgType.INFER,
                                 bytes([first, n]) + data[first * row_bytes:(first + n) * row_bytes]).payload
        if reply[0] != P.PATCH_FRAMES:
            raise RuntimeError(f"device loaded {reply[0]} rows of 96")
        cycles, n_labels = struct.unpack_from("<IB", reply, 1)
        return np.frombuffer(reply, dtype=np.int8, count=n_labels, offset=6).copy(), cycles

    def stream_start(self, scores: bool = False, mic: bool = False) -> None:
        flags = (P.STREAM_FLAG_SCORES if scores else 0) | (P.STREAM_FLAG_MIC if mic else 0)
        self.request(P.MsgType.STREAM_START, bytes([flags]))

    def stream_pcm(self, pcm) -> P.StreamCounts:
        return P.StreamCounts.parse(self.request(P.MsgType.PCM, self._pcm_bytes(pcm)).payload)

    def stream_stop(self) -> P.StreamCounts:
        return P.StreamCounts.parse(self.request(P.MsgType.STREAM_STOP).payload)

    def stream(self, pcm, scores: bool = False, chunk: int = P.MAX_PCM_SAMPLES, realtime: bool = False,
               on_event: Callable[[P.Event], None] | None = None, progress=None) -> StreamResult:
        """Stream a whole clip: STREAM_START, PCM chunks (stop-and-wait), STREAM_STOP. realtime=True paces
        the chunks at 16 kHz; otherwise as fast as the link and device go. on_event sees events live."""
        arr = np.asarray(pcm)
        self._pcm_bytes(arr[:0])  # validate dtype / rank early
        start_index = len(self.unsolicited)
        seen = start_index
        self.stream_start(scores=scores)
        t0 = time.monotonic()
        try:
            for off in range(0, len(arr), chunk):
                piece = arr[off:off + chunk]
                if realtime:
                    lag = off / 16000 - (time.monotonic() - t0)
                    if lag > 0:
                        time.sleep(lag)
                self.stream_pcm(piece)
                if progress is not None:
                    progress.update(len(piece))
                if on_event is not None:
                    for frame in self.unsolicited[seen:]:
                        if frame.type == P.MsgType.EVENT:
                            on_event(P.Event.parse(frame.payload))
                    seen = len(self.unsolicited)
        finally:
            counts = self.stream_stop()
        frames = self.unsolicited[start_index:]
        if on_event is not None:
            for frame in self.unsolicited[seen:]:
                if frame.type == P.MsgType.EVENT:
                    on_event(P.Event.parse(frame.payload))
        return StreamResult(
            events=[P.Event.parse(f.payload) for f in frames if f.type == P.MsgType.EVENT],
            scores=[P.WindowScores.parse(f.payload) for f in frames if f.type == P.MsgType.SCORES],
            audio=[P.AudioChunk.parse(f.payload) for f in frames if f.type == P.MsgType.AUDIO],
            counts=counts,
        )

    def listen_mic(self, seconds: float, scores: bool = False,
                   on_event: Callable[[P.Event], None] | None = None) -> StreamResult:
        """Boards with a microphone: stream from it for `seconds`, collecting what the device sends."""
        start_index = len(self.unsolicited)
        self.stream_start(scores=scores, mic=True)
        deadline = time.monotonic() + seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                frame = self.receive(min(left, 0.2))
                if frame is None or frame.type < 0xC0 or frame.type == P.MsgType.ERROR:
                    continue
                self._dispatch_unsolicited(frame)
                if on_event is not None and frame.type == P.MsgType.EVENT:
                    on_event(P.Event.parse(frame.payload))
        finally:
            counts = self.stream_stop()
        frames = self.unsolicited[start_index:]
        return StreamResult(
            events=[P.Event.parse(f.payload) for f in frames if f.type == P.MsgType.EVENT],
            scores=[P.WindowScores.parse(f.payload) for f in frames if f.type == P.MsgType.SCORES],
            audio=[P.AudioChunk.parse(f.payload) for f in frames if f.type == P.MsgType.AUDIO],
            counts=counts,
        )

    def close(self) -> None:
        self.transport.close()
