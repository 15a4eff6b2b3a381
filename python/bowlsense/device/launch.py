"""Start a device and always stop it: the QEMU image or the host build of the firmware.

    with QemuDevice() as dev:            # boots build/firmware/qemu-mps2-an386/bowlsense.elf
        dev.client.hello()
    with HostDevice(asan=True) as dev:   # build/firmware/host-asan/bowlsense-fw on pipes
        dev.client.hello()

Teardown is belt and braces, because an orphaned QEMU burns a core for good:
  - the context manager (and close()) kills the process on any exit, error or Ctrl-C;
  - every started process is registered with atexit, and SIGTERM/SIGHUP are turned into a clean exit
    when no other handler was installed;
  - on Linux the child gets PR_SET_PDEATHSIG=SIGKILL, so it dies even if Python is killed with -9.
"""
from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref

from .. import paths
from .client import DeviceClient
from .transport import PipeTransport, SerialTransport, TransportClosed

FIRMWARE_DIR = paths.REPO_ROOT / "build" / "firmware"
QEMU_ELF = FIRMWARE_DIR / "qemu-mps2-an386" / "bowlsense.elf"
HOST_BIN = FIRMWARE_DIR / "host" / "bowlsense-fw"
HOST_ASAN_BIN = FIRMWARE_DIR / "host-asan" / "bowlsense-fw"
MACHINES = {"mps2-an386": "cortex-m4", "mps2-an500": "cortex-m7"}

_live: "weakref.WeakSet[_Process]" = weakref.WeakSet()
_handlers_installed = False


def _kill_all() -> None:
    for proc in list(_live):
        proc.close()


def _install_handlers() -> None:
    """atexit always; SIGTERM/SIGHUP -> SystemExit only where nobody else handles them."""
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_kill_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _on_signal)


def _on_signal(signum, _frame):
    _kill_all()
    raise SystemExit(128 + signum)


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when the parent dies (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_firmware(target: str) -> None:
    """`make firmware-<target>` in the repository (quiet unless it fails)."""
    proc = subprocess.run(["make", "--no-print-directory", f"firmware-{target}"], cwd=paths.REPO_ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`make firmware-{target}` failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")


class _Process:
    proc: subprocess.Popen | None = None
    client: DeviceClient | None = None

    def __enter__(self):
        return self

    def __getattr__(self, name):
        # dev.hello(), dev.stream(...): the client's commands directly on the device object
        client = self.__dict__.get("client")
        if client is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(client, name)

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.close()
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        _live.discard(self)

    def __del__(self):
        self.close()


class QemuDevice(_Process):
    """The firmware image in `qemu-system-arm -M mps2-an386` (or mps2-an500), serial on a TCP port.

    -icount shift=0 makes one instruction take 1 ns of virtual time, so the firmware's cycle counts are
    instruction counts and identical run to run. build=True runs `make firmware-qemu` first (a no-op when
    up to date)."""

    def __init__(self, elf=None, machine: str = "mps2-an386", build: bool = True, boot_timeout: float = 20.0,
                 timeout: float = 30.0, qemu: str = "qemu-system-arm"):
        if machine not in MACHINES:
            raise ValueError(f"unknown machine {machine!r}: one of {sorted(MACHINES)}")
        if shutil.which(qemu) is None:
            raise FileNotFoundError(f"{qemu} not found: install qemu-system-arm (Debian: apt-get install "
                                    "--no-install-recommends qemu-system-arm)")
        if elf is None:
            if build:
                build_firmware("qemu")
            elf = QEMU_ELF
        if not os.path.exists(elf):
            raise FileNotFoundError(f"{elf}: firmware image missing; run `make firmware-qemu`")
        _install_handlers()
        self.elf = str(elf)
        self.machine = machine
        self.port = free_port()
        self.url = f"socket://127.0.0.1:{self.port}"
        self.cmd = [qemu, "-M", machine, "-kernel", self.elf, "-display", "none", "-monitor", "none",
                    "-serial", f"tcp:127.0.0.1:{self.port},server=on,wait=on,nodelay=on",
                    "-icount", "shift=0", "-semihosting-config", "enable=on,target=native"]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        _live.add(self)
        try:
            self.client = DeviceClient(self._connect(boot_timeout), timeout=timeout)
            self.client.hello(timeout=boot_timeout)
        except BaseException:
            self.close()
            raise

    def _connect(self, boot_timeout: float):
        deadline = time.monotonic() + boot_timeout
        while True:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                raise RuntimeError(f"QEMU exited with code {self.proc.returncode} before the serial link "
                                   f"opened: {' '.join(self.cmd)}\n{out}")
            try:
                return SerialTransport(self.url, connect_timeout=1.0)
            except TransportClosed:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()


class HostDevice(_Process):
    """The host build of the firmware (same application, serial on stdin/stdout)."""

    def __init__(self, asan: bool = False, binary=None, build: bool = True, timeout: float = 20.0):
        if binary is None:
            if build:
                build_firmware("host-asan" if asan else "host")
            binary = HOST_ASAN_BIN if asan else HOST_BIN
        if not os.path.exists(binary):
            raise FileNotFoundError(f"{binary}: host firmware missing; run `make firmware-host`")
        _install_handlers()
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:exitcode=86",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87")
        self.proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0, env=env,
                                     preexec_fn=_die_with_parent)
        _live.add(self)
        self.client = DeviceClient(PipeTransport(self.proc), timeout=timeout)

    returncode: int | None = None
    stderr_text: str = ""

    def close(self) -> None:
        """EOF on stdin ends the firmware cleanly; its exit code and stderr (sanitizer reports) are kept
        in returncode / stderr_text."""
        proc = self.proc
        if proc is not None:
            try:
                proc.stdin.close()
                proc.wait(timeout=5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        super().close()
        if proc is not None:
            self.returncode = proc.returncode
            try:
                self.stderr_text = proc.stderr.read().decode(errors="replace")
            except (OSError, ValueError):
                pass


def open_device(port: str | None = None, baudrate: int = 115200, machine: str = "mps2-an386",
                timeout: float = 30.0, elf=None):
    """A context manager yielding a DeviceClient: the serial device at `port` (a path or URL such as
    socket://host:port), or, without a port, the QEMU image booted for the occasion: `elf` as it is, or
    by default build/firmware's image, built first if needed."""
    if port:
        if elf:
            raise ValueError("--elf boots a QEMU image; it cannot be combined with --port")
        return _PortDevice(port, baudrate, timeout)
    return QemuDevice(elf=elf, machine=machine, timeout=timeout)


class _PortDevice(_Process):
    def __init__(self, port: str, baudrate: int, timeout: float):
        self.client = DeviceClient(SerialTransport(port, baudrate=baudrate), timeout=timeout)
        self.client.hello()


if sys.platform != "linux":  # pragma: no cover
    def _die_with_parent() -> None:  # noqa: F811 - PR_SET_PDEATHSIG is Linux-only
        pass
