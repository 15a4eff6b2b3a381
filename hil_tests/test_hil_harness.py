"""The harness itself: Ctrl-C (SIGINT) or a hard kill of a HIL run never leaves a QEMU behind.
A run of the quick subset is started in a child pytest, interrupted once its QEMU is up, and the QEMU
process must be gone afterwards (an orphaned QEMU burns a core for good)."""
from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from bowlsense import paths


def _children(pid: int) -> list[tuple[int, str]]:
    out = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        if ppid == pid:
            out.append((int(stat.parent.name), comm))
    return out


def _alive(pid: int) -> bool:
    try:
        text = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_interrupted_run_leaves_no_qemu(request, tmp_path, sig):
    if request.config.getoption("--port"):
        pytest.skip("harness self-check of the QEMU backend (this run uses --port)")
    cmd = [sys.executable, "-m", "pytest", str(pathlib.Path(__file__).parent), "-q", "-p", "no:cacheprovider",
           "-m", "quick", "-k", "frontend_bit_exact_adversarial", "--hil-report", str(tmp_path)]
    proc = subprocess.Popen(cmd, cwd=paths.REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        qemu = []
        while not qemu and time.monotonic() < deadline and proc.poll() is None:
            qemu = [pid for pid, comm in _children(proc.pid) if comm.startswith("qemu-system")]
            time.sleep(0.2)
        assert qemu, f"the child run never started QEMU:\n{proc.stdout.read().decode(errors='replace')[-2000:]}"
        time.sleep(1.0)                       # mid-test: FEATURES requests in flight
        os.kill(proc.pid, sig)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 10
        while _alive(qemu[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(qemu[0]), f"QEMU (pid {qemu[0]}) outlived the interrupted run"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
