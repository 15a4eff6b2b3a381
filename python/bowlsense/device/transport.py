"""Byte transports under DeviceClient: a pyserial port (real devices, `socket://` to QEMU, a pty of the
host build) or the pipes of a host-build process. Each has

    write(data: bytes) -> None
    read(n: int, timeout: float) -> bytes   # 1..n bytes as soon as any arrive; b"" after timeout
    close() -> None
"""
from __future__ import annotations

import os
import select
import subprocess


class TransportClosed(ConnectionError):
    """The other side went away (QEMU exited, the board was unplugged, the process died)."""


class SerialTransport:
    """pyserial `serial_for_url`: /dev/ttyACM0, COM3, socket://127.0.0.1:PORT, ...

    pyserial's `in_waiting` on socket:// only says 0 or 1, so after the first byte the rest is read with
    a zero timeout (returns what has arrived) instead of trusting in_waiting."""

    def __init__(self, url: str, baudrate: int = 115200, connect_timeout: float = 2.0):
        import serial

        self.url = url
        self._socket = url.startswith("socket://")
        try:
            self._ser = serial.serial_for_url(url, baudrate=baudrate, timeout=connect_timeout,
                                              write_timeout=30)
        except (serial.SerialException, OSError, ValueError) as e:
            raise TransportClosed(f"cannot open serial port {url}: {e}") from e
        sock = getattr(self._ser, "_socket", None)
        if self._socket and sock is not None:
            # Small request/reply frames: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms per round
            # trip (QEMU's side is started with nodelay=on for the same reason).
            import socket
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        import serial

        try:
            self._ser.write(data)
            self._ser.flush()
        except (serial.SerialException, OSError) as e:
            raise TransportClosed(f"{self.url}: write failed ({e})") from e

    def read(self, n: int, timeout: float) -> bytes:
        import serial

        try:
            self._ser.timeout = timeout
            first = self._ser.read(1)
            if not first or n <= 1:
                return first
            if self._socket:
                self._ser.timeout = 0
                return first + self._ser.read(n - 1)
            waiting = self._ser.in_waiting
            return first + (self._ser.read(min(n - 1, waiting)) if waiting else b"")
        except (serial.SerialException, OSError) as e:
            raise TransportClosed(f"{self.url}: read failed ({e})") from e

    def close(self) -> None:
        try:
            self._ser.close()
        except Exception:  # closing must never raise during cleanup
            pass


class PipeTransport:
    """stdin/stdout of a running process (the host build of the firmware)."""

    def __init__(self, proc: subprocess.Popen):
        self._proc = proc
        self._rfd = proc.stdout.fileno()
        self._w = proc.stdin

    def write(self, data: bytes) -> None:
        try:
            self._w.write(data)
            self._w.flush()
        except (BrokenPipeError, OSError, ValueError) as e:
            raise TransportClosed(f"host firmware exited (code {self._proc.poll()})") from e

    def read(self, n: int, timeout: float) -> bytes:
        ready, _, _ = select.select([self._rfd], [], [], timeout)
        if not ready:
            return b""
        data = os.read(self._rfd, n)
        if not data:
            raise TransportClosed(f"host firmware exited (code {self._proc.wait()})")
        return data

    def close(self) -> None:
        try:
            self._w.close()
        except Exception:
            pass
