"""The QEMU launcher never leaves QEMU behind: on an exception in the with-block, on Ctrl-C (SIGINT),
SIGTERM, and even when the Python process is killed with SIGKILL (PR_SET_PDEATHSIG). Also: a port that
does not answer gives a clear error, and the CLI's device commands run against the booted image."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from bowlsense.cli import main as cli_main
from bowlsense.device import QemuDevice
from bowlsense.device.launch import build_firmware
from bowlsense.device.transport import SerialTransport, TransportClosed
from bowlsense.paths import REPO_ROOT


@pytest.fixture(scope="module", autouse=True)
def built():
    build_firmware("qemu")


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/status") as f:
                if any(line.startswith("State:") and "Z" in line for line in f):
                    return True   # exited; waiting to be reaped by its new parent
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_exception_in_block_kills_qemu():
    with pytest.raises(RuntimeError):
        with QemuDevice(build=False) as dev:
            pid = dev.proc.pid
            dev.hello()
            raise RuntimeError("boom")
    assert gone(pid)


# The child restores Python's Ctrl-C handler, as a program started from a terminal has it: a test run
# launched in the background by a non-interactive shell (`nohup ... &`, some CI runners) inherits SIGINT
# ignored, and Python then installs no KeyboardInterrupt handler, so SIGINT would never reach the launcher.
SCRIPT = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from bowlsense.device import QemuDevice
with QemuDevice(build=False) as dev:
    dev.hello()
    print(dev.proc.pid, flush=True)
    time.sleep(120)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_signals_to_the_host_process_kill_qemu(sig):
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip().isdigit(), proc.stderr.read()
        qemu_pid = int(line)
        assert not gone(qemu_pid, timeout=0.2)
        proc.send_signal(sig)
        proc.wait(timeout=60)  # generous: CI machines may be loaded; the check is that QEMU goes, not how fast
        assert gone(qemu_pid), f"QEMU {qemu_pid} survived {sig.name}"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_unreachable_port_is_a_clear_error():
    with pytest.raises(TransportClosed, match="cannot open serial port"):
        SerialTransport("/dev/does-not-exist-bowlsense")


def test_cli_device_commands(capsys):
    assert cli_main(["device", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["board"] == "qemu-mps2-an386" and info["cycle_unit"] == "instructions"
    assert cli_main(["device", "bench", "--seconds", "2", "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["unit"] == "instructions" and bench["frontend_per_hop"] > 0
    assert bench["audio_seconds"] == 2.0 and bench["stack_used_bytes"] > 0
    assert (bench["inference_per_patch"] is None) == (not info["model_present"])


def test_elf_and_port_together_are_refused():
    from bowlsense.device import open_device
    with pytest.raises(ValueError, match="--elf boots a QEMU image"):
        open_device(port="socket://127.0.0.1:9", elf="build/firmware/qemu-mps2-an386/bowlsense.elf")


def test_device_command_boots_the_elf_it_is_given(tmp_path, capsys):
    """--elf boots that image as it is, with no build: a missing file is named, not built."""
    missing = tmp_path / "other.elf"
    assert cli_main(["device", "info", "--elf", str(missing)]) == 1
    err = capsys.readouterr().err
    assert "other.elf" in err and "firmware image missing" in err
