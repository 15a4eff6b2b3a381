"""Build and run the front end on an emulated Cortex-M (QEMU mps2-an386) through the semihosting test
harness in tests/c/cortexm: used by the build-matrix tests and by `bowlsense frontend bench`."""
from __future__ import annotations

import bisect
import collections
import pathlib
import re
import shutil
import subprocess
import tempfile

import numpy as np

from ..paths import REPO_ROOT

FRONTEND_DIR = REPO_ROOT / "firmware" / "frontend"
HARNESS_DIR = REPO_ROOT / "tests" / "c" / "cortexm"
CPU_FLAGS = {
    "cortex-m4f": ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    "cortex-m0plus": ["-mcpu=cortex-m0plus", "-mfloat-abi=soft"],
}
INSTRUCTIONS_PER_TICK = 40  # -icount shift=0: 1 instruction per ns; SysTick runs at 25 MHz


class ToolMissing(RuntimeError):
    pass


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ToolMissing(f"{tool} is not installed (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi "
                          "qemu-system-arm; .ci/run and `make setup-system` install them)")
    return path


def build_elf(cpu: str, out: pathlib.Path, opt: str = "-O2") -> pathlib.Path:
    sources = sorted(str(p) for p in FRONTEND_DIR.glob("*.c"))
    subprocess.run([
        need("arm-none-eabi-gcc"), "-std=c99", opt, "-mthumb", *CPU_FLAGS[cpu],
        "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffreestanding", "-fno-tree-loop-distribute-patterns",
        "-nostartfiles", "-T", str(HARNESS_DIR / "link.ld"), f"-I{FRONTEND_DIR}",
        str(HARNESS_DIR / "frontend_semihost.c"), *sources, "--specs=nano.specs", "-lc", "-lgcc", "-o", str(out),
    ], check=True)
    return out


def run_elf(elf: pathlib.Path, pcm: np.ndarray, chunk: int = 160, icount: bool = True,
            timeout: float = 300) -> tuple[np.ndarray, np.ndarray]:
    """Feed pcm through the harness under QEMU; returns (frames int16 (n, 64), instructions per call that
    completed one frame). ARMv6-M (M0+) code is a subset of ARMv7E-M and runs on the M4 machine."""
    with tempfile.TemporaryDirectory(prefix="bs_fe_qemu_") as tmp:
        tmp = pathlib.Path(tmp)
        np.asarray(pcm, dtype=np.int16).tofile(tmp / "in.raw")
        cmd = [need("qemu-system-arm"), "-M", "mps2-an386", "-display", "none", "-serial", "null",
               "-monitor", "none", "-semihosting-config", "enable=on,target=native", "-kernel", str(elf),
               "-append", f"{tmp / 'in.raw'} {tmp / 'out.raw'} {chunk}"]
        if icount:
            cmd[1:1] = ["-icount", "shift=0"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"front end harness exited with {result.returncode} under QEMU: {result.stderr[-2000:]}")
        frames = np.fromfile(tmp / "out.raw", np.int16).reshape(-1, 64)
        ticks = np.fromfile(tmp / "out.raw.ticks", np.uint32)
    return frames, ticks.astype(np.int64) * INSTRUCTIONS_PER_TICK


def _function_ranges(elf: pathlib.Path) -> tuple[list[int], list[tuple[int, str]]]:
    """Start addresses and (end, name) of the ELF's functions, from its symbol table (arm-none-eabi-nm)."""
    out = subprocess.run([need("arm-none-eabi-nm"), "-S", "--defined-only", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    funcs = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT":
            start = int(parts[0], 16) & ~1
            funcs.append((start, start + int(parts[1], 16), parts[3]))
    funcs.sort()
    return [f[0] for f in funcs], [(f[1], f[2]) for f in funcs]


def profile_elf(elf: pathlib.Path, pcm: np.ndarray, chunk: int = 160, timeout: float = 120) -> dict[str, int]:
    """Instructions executed per function (inlined code counts in its caller) while the harness feeds pcm:
    QEMU runs one instruction per translation block (-singlestep) and logs every block it executes
    (-d exec,nochain), so the log has one line per instruction with its address."""
    starts, ends = _function_ranges(elf)
    with tempfile.TemporaryDirectory(prefix="bs_fe_prof_") as tmp:
        tmp = pathlib.Path(tmp)
        np.asarray(pcm, dtype=np.int16).tofile(tmp / "in.raw")
        log = tmp / "exec.log"
        cmd = [need("qemu-system-arm"), "-M", "mps2-an386", "-display", "none", "-serial", "null", "-monitor", "none",
               "-semihosting-config", "enable=on,target=native", "-singlestep", "-d", "exec,nochain", "-D", str(log),
               "-kernel", str(elf), "-append", f"{tmp / 'in.raw'} {tmp / 'out.raw'} {chunk}"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"profiling run exited with {result.returncode} under QEMU: {result.stderr[-2000:]}")
        pcs: collections.Counter = collections.Counter()
        pattern = re.compile(r"\[[0-9a-f]+/([0-9a-f]+)/")
        with log.open() as f:
            for line in f:
                m = pattern.search(line)
                if m:
                    pcs[int(m.group(1), 16)] += 1
    counts: collections.Counter = collections.Counter()
    for pc, n in pcs.items():
        i = bisect.bisect_right(starts, pc) - 1
        name = ends[i][1] if i >= 0 and pc < ends[i][0] else "?"
        counts[name] += n
    return dict(counts)
