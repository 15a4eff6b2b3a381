"""Run an exported model (bs_model_*.c from `bowlsense export`) with the engine on an emulated Cortex-M
(QEMU mps2-an386, bare metal, I/O through Arm semihosting), for the bit-exactness test on the device
build and for per-layer instruction counts.

Under `-icount shift=0` one instruction takes 1 ns of virtual time and SysTick counts at 25 MHz, so one
tick is 40 instructions (ARCHITECTURE.md, "Timing"). The harness reads its arguments with
SYS_GET_CMDLINE ("KERNEL IN.raw OUT.raw"), runs every input of IN.raw through bs_nn_invoke_hooked, and
writes the int8 outputs to OUT.raw and uint32 ticks per layer to OUT.raw.ticks.
"""
from __future__ import annotations

import pathlib
import subprocess
import tempfile
from typing import TYPE_CHECKING

import numpy as np

from ..frontend.cortexm import CPU_FLAGS, HARNESS_DIR, INSTRUCTIONS_PER_TICK, ToolMissing, need  # noqa: F401
from ..paths import REPO_ROOT

if TYPE_CHECKING:
    from .lower import Graph

NN_DIR = REPO_ROOT / "firmware" / "nn"
LINK_SCRIPT = HARNESS_DIR / "link.ld"  # the test harnesses' bare-metal QEMU layout

HARNESS = r"""
#include <stddef.h>
#include <stdint.h>
#include "bs_model.h"

#include "semihost_rt.h"

static uint8_t arena[BS_MODEL_ARENA_BYTES] __attribute__((aligned(16)));
static int8_t input[BS_MODEL_INPUT_SIZE];
static int8_t output[BS_MODEL_OUTPUT_SIZE];
static uint32_t ticks[256];
static uint32_t start_tick;
static char cmdline[512];
static char ticks_path[520];

static void hook(void *user, int32_t layer, int32_t finished) {
    (void)user;
    if (!finished) {
        start_tick = SYST_CVR;
    } else if (layer < 256) {
        ticks[layer] = (start_tick - SYST_CVR) & 0xFFFFFFu; /* counts down, 24 bits */
    }
}

int main(void) {
    int32_t cmd_args[2] = {(int32_t)(uintptr_t)cmdline, sizeof(cmdline) - 1};
    if (semihost(SYS_GET_CMDLINE, cmd_args) != 0) exit_with(10);
    char *words[3] = {0};
    int count = 0;
    for (char *p = cmdline; *p && count < 3;) {
        while (*p == ' ') *p++ = 0;
        if (!*p) break;
        words[count++] = p;
        while (*p && *p != ' ') p++;
    }
    if (count < 3) exit_with(11);
    size_t len = length(words[2]);
    for (size_t i = 0; i < len; i++) ticks_path[i] = words[2][i];
    for (size_t i = 0; i < 7; i++) ticks_path[len + i] = ".ticks"[i];
    int32_t in = open_file(words[1], 1), out = open_file(words[2], 5), tk = open_file(ticks_path, 5);
    if (in < 0 || out < 0 || tk < 0) exit_with(13);
    if (bs_nn_check(&bs_model_graph, arena, sizeof arena) != BS_NN_OK) exit_with(14);
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u;
    for (;;) {
        int32_t rd[3] = {in, (int32_t)(uintptr_t)input, (int32_t)sizeof input};
        if (semihost(SYS_READ, rd) != 0) break; /* returns the number of bytes NOT read */
        if (bs_nn_invoke_hooked(&bs_model_graph, arena, sizeof arena, input, output, hook, 0) != BS_NN_OK) exit_with(15);
        int32_t wr[3] = {out, (int32_t)(uintptr_t)output, (int32_t)sizeof output};
        if (semihost(SYS_WRITE, wr) != 0) exit_with(16);
        int32_t wt[3] = {tk, (int32_t)(uintptr_t)ticks, (int32_t)(bs_model_graph.num_layers * sizeof(uint32_t))};
        if (semihost(SYS_WRITE, wt) != 0) exit_with(17);
    }
    semihost(SYS_CLOSE, &in);
    semihost(SYS_CLOSE, &out);
    semihost(SYS_CLOSE, &tk);
    exit_with(0);
    return 0;
}
"""


def write_model_c(data: bytes, out: pathlib.Path) -> Graph:
    """bs_model.h / bs_model_graph.c / bs_model_tflite.c for any int8 .tflite (a test model without a
    model.json: one placeholder label per output value), the files `bowlsense export` writes, for the
    harness. Returns the lowered graph."""
    import hashlib
    import types

    from ..export.model_c import graph_c, header, tflite_c
    from ..frontend.config import DEFAULT_CONFIG
    from .lower import lower
    from .tflite import parse

    graph = lower(parse(data, "test model"))
    labels = [f"o{i}" for i in range(graph.output.size)]
    manifest = types.SimpleNamespace(
        name="harness test model", labels=labels, privacy_labels=[], frontend_hash=DEFAULT_CONFIG.hash,
        smoothing=types.SimpleNamespace(windows=1, min_event_windows=1),
        thresholds={lab: types.SimpleNamespace(on=0.5, off=0.3) for lab in labels})
    sha = hashlib.sha256(data).hexdigest()
    graph.tflite_sha256 = sha
    inputs = [("model.tflite", sha)]
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bs_model.h").write_text(header(manifest, graph, len(data), inputs))
    (out / "bs_model_graph.c").write_text(graph_c(manifest, graph, inputs, progress=False))
    (out / "bs_model_tflite.c").write_text(tflite_c(data, sha, inputs))
    return graph


def build_elf(model_c_dir: pathlib.Path, cpu: str, out: pathlib.Path, opt: str = "-O2") -> pathlib.Path:
    """Link the harness, the exported model and the engine into a bare-metal ELF for QEMU."""
    model_c_dir = pathlib.Path(model_c_dir)
    harness = out.with_suffix(".harness.c")
    harness.write_text(HARNESS)
    sources = [str(harness), str(model_c_dir / "bs_model_graph.c"), str(model_c_dir / "bs_model_tflite.c"),
               *sorted(str(p) for p in NN_DIR.glob("*.c"))]
    subprocess.run([need("arm-none-eabi-gcc"), "-std=c99", opt, "-mthumb", *CPU_FLAGS[cpu],
                    "-Wall", "-Wextra", "-Werror", "-ffreestanding", "-fno-tree-loop-distribute-patterns",
                    "-nostartfiles", "-T", str(LINK_SCRIPT), f"-I{model_c_dir}", f"-I{NN_DIR}", f"-I{HARNESS_DIR}", *sources,
                    "--specs=nano.specs", "-lc", "-lgcc", "-o", str(out)], check=True, capture_output=True, text=True)
    return out


def run_elf(elf: pathlib.Path, inputs: np.ndarray, output_size: int, num_layers: int,
            timeout: float = 600) -> tuple[np.ndarray, np.ndarray]:
    """Run int8 inputs (n, input size) through the ELF under QEMU. Returns (outputs (n, output_size) int8,
    instructions per layer (n, num_layers))."""
    inputs = np.ascontiguousarray(inputs, dtype=np.int8).reshape(len(inputs), -1)
    with tempfile.TemporaryDirectory(prefix="bs_nn_qemu_") as tmp:
        tmp = pathlib.Path(tmp)
        inputs.tofile(tmp / "in.raw")
        cmd = [need("qemu-system-arm"), "-icount", "shift=0", "-M", "mps2-an386", "-display", "none",
               "-serial", "null", "-monitor", "none", "-semihosting-config", "enable=on,target=native",
               "-kernel", str(elf), "-append", f"{tmp / 'in.raw'} {tmp / 'out.raw'}"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"engine harness exited with {result.returncode} under QEMU: {result.stderr[-2000:]}")
        outputs = np.fromfile(tmp / "out.raw", np.int8).reshape(-1, output_size)
        ticks = np.fromfile(tmp / "out.raw.ticks", np.uint32).reshape(-1, num_layers)
    return outputs, ticks.astype(np.int64) * INSTRUCTIONS_PER_TICK
