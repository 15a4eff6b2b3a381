"""The same front end bits from every build: gcc and clang at -O0 and -O3 on x86-64, and Cortex-M4F
(hard float ABI) and Cortex-M0+ (no FPU) under QEMU; plus an ASan + UBSan fuzz of the C API.

Needs gcc, clang, arm-none-eabi-gcc and qemu-system-arm (.ci/run installs them); a missing tool fails
the test with its name rather than skipping it."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from bowlsense.frontend import cortexm
from bowlsense.frontend.reference import reference_logmel
from bowlsense.paths import REPO_ROOT
from frontend_signals import adversarial_signals

FRONTEND = REPO_ROOT / "firmware" / "frontend"
C_TESTS = REPO_ROOT / "tests" / "c"
SOURCES = [str(p) for p in sorted(FRONTEND.glob("*.c"))]
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed; .ci/run installs it (see README, 'Tests')")
    return path


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    """Known vectors: the adversarial signals back to back, as one raw int16 file, and their frames."""
    pcm = np.concatenate(list(adversarial_signals(0.5).values()))
    path = tmp_path_factory.mktemp("vectors") / "in.raw"
    pcm.tofile(path)
    return path, reference_logmel(pcm)


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
@pytest.mark.parametrize("opt", ["-O0", "-O3"])
def test_host_builds_are_bit_exact(tmp_path, vectors, compiler, opt):
    exe = tmp_path / "frontend_pipe"
    subprocess.run([need(compiler), opt, *WARNINGS, f"-I{FRONTEND}", str(C_TESTS / "frontend_pipe.c"),
                    *SOURCES, "-o", str(exe)], check=True)
    raw, expected = vectors
    for chunk in ("1", "7", "1000"):
        out = subprocess.run([str(exe), chunk], stdin=raw.open("rb"), capture_output=True, check=True).stdout
        np.testing.assert_array_equal(np.frombuffer(out, np.int16).reshape(-1, 64), expected)


@pytest.mark.parametrize("cpu", sorted(cortexm.CPU_FLAGS))
def test_cortex_m_builds_are_bit_exact_under_qemu(tmp_path, vectors, cpu):
    need("arm-none-eabi-gcc"), need("qemu-system-arm")
    elf = cortexm.build_elf(cpu, tmp_path / f"frontend_{cpu}.elf")
    raw, expected = vectors
    frames, instructions = cortexm.run_elf(elf, np.fromfile(raw, np.int16), chunk=7)
    np.testing.assert_array_equal(frames, expected)


def test_asan_ubsan_fuzz_of_the_c_api(tmp_path):
    exe = tmp_path / "frontend_fuzz"
    subprocess.run([need("gcc"), "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    *WARNINGS, f"-I{FRONTEND}", str(C_TESTS / "frontend_fuzz.c"), *SOURCES, "-o", str(exe)],
                   check=True)
    result = subprocess.run([str(exe), "100000"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "100000 iterations, no failures" in result.stdout
    assert "runtime error" not in result.stderr and "AddressSanitizer" not in result.stderr


def test_cortex_m4_stage_breakdown_accounts_for_the_measured_instructions(tmp_path):
    """`bowlsense frontend bench` prints where the Cortex-M4 instructions go, from a QEMU instruction trace
    attributed to functions by the ELF's symbol table. Its stages must add up to what the SysTick/icount
    measurement of the same build sees: nothing the front end executes is left out or counted twice."""
    need("arm-none-eabi-gcc"), need("qemu-system-arm"), need("arm-none-eabi-nm")
    from bowlsense.frontend.bench import STAGES

    elf = cortexm.build_elf("cortex-m4f", tmp_path / "frontend.elf")
    rng = np.random.default_rng(3)
    pcm = np.clip(rng.normal(0, 3000, 400 + 9 * 160), -32768, 32767).astype(np.int16)
    _, measured = cortexm.run_elf(elf, pcm, chunk=160)  # calls that completed a frame: 10
    assert len(measured) == 10

    def staged(samples):
        counts = cortexm.profile_elf(elf, samples, chunk=160)
        return counts, sum(counts.get(name, 0) for _, names in STAGES for name in names)

    counts, total = staged(pcm)
    _, filling = staged(pcm[:320])  # the two calls before the first window is full: not in `measured`
    # each measurement is in 40-instruction ticks and includes the harness's call and timer read
    assert abs(total - filling - measured.sum()) <= len(measured) * 60, (total - filling, int(measured.sum()))
    assert all(counts.get(name, 0) > 0 for name in ("window_and_stages_1_2_m4", "stages_7_8",
                                                   "spectrum_magnitude_m4", "mel_sums_m4", "log_mel_m4"))
