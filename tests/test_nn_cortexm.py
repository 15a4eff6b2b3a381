"""The engine on the device build: the default student (models/default), exported, compiled for
Cortex-M4F (DSP path: SMLAD, SMLABB/SMLATT) and Cortex-M0+ (portable C), runs under QEMU (mps2-an386,
bare metal, semihosting) to the same bits as tflite_micro. Instructions per layer and per MAC on the M4 (QEMU -icount, 40 instructions per
SysTick tick) are printed as the issue's benchmark; they are measurements, not asserted."""
from __future__ import annotations

import numpy as np
import pytest

from bowlsense.export import export_model
from bowlsense.nn import cortexm
from bowlsense.nn import testing as T
from bowlsense.paths import default_model_dir


def student_tflite() -> bytes:
    return (default_model_dir() / "model.tflite").read_bytes()


@pytest.fixture(scope="module")
def exported_student(tmp_path_factory):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        cortexm.need(tool)  # fails (does not skip) when the toolchain is missing
    out = tmp_path_factory.mktemp("student_c")
    result = export_model(default_model_dir(), out, progress=False)
    return out, result.graph


@pytest.mark.parametrize("cpu", sorted(cortexm.CPU_FLAGS))
def test_cortex_m_build_is_bit_exact_with_tflite_micro(exported_student, tmp_path, cpu, capsys):
    out, graph = exported_student
    elf = cortexm.build_elf(out, cpu, tmp_path / f"nn_{cpu}.elf")
    rng = np.random.default_rng(11)
    inputs = np.stack([np.full(graph.input.size, -128, np.int8), np.full(graph.input.size, 127, np.int8)] +
                      [rng.integers(-128, 128, size=graph.input.size, dtype=np.int16).astype(np.int8)
                       for _ in range(6)])
    outputs, instructions = cortexm.run_elf(elf, inputs, graph.output.size, len(graph.layers))
    oracle = T.Oracle(student_tflite())
    for i, x in enumerate(inputs):
        want = oracle.invoke(x.reshape(graph.input_shape)).reshape(-1)
        np.testing.assert_array_equal(outputs[i], want, err_msg=f"{cpu}: input {i}")
    # Requantization and clamping branch on the data, so counts vary a little between inputs: report
    # the median input.
    per_layer = np.median(instructions, axis=0).astype(np.int64)
    macs = graph.macs()
    with capsys.disabled():
        print(f"\n[nn cortex-m] {cpu}: {per_layer.sum():,} instructions per inference, {macs:,} MACs, "
              f"{per_layer.sum() / macs:.2f} instructions/MAC (QEMU icount, +-40 per layer)")
        if cpu == "cortex-m4f":
            for i, layer in enumerate(graph.layers):
                if layer.fused:  # runs inside the next layer: reported there, together
                    print(f"    layer {i:2d} {layer.op:22s} (fused: computed row by row inside layer {i + 1})")
                    continue
                m = graph.layer_macs(layer)
                name = layer.op
                if i > 0 and graph.layers[i - 1].fused:
                    m += graph.layer_macs(graph.layers[i - 1])
                    name = f"+{layer.op}"
                ratio = f"{per_layer[i] / m:.2f}/MAC" if m else ""
                print(f"    layer {i:2d} {name:22s} {per_layer[i]:>10,} instr {m:>10,} MACs {ratio}")


SINGLE_OP_CONV = sorted(n for n in T.SINGLE_OP_MODELS if n.startswith(("conv", "depthwise")))


@pytest.fixture(scope="module")
def single_op_m4_elfs(tmp_path_factory):
    """Every conv / depthwise single-op model of the test zoo, exported and built for Cortex-M4F: the DSP
    kernels' edge cases (odd channel counts, filters whose taps are not a multiple of 4, padding, strides,
    a 3x5 depthwise, depth multiplier 2, ReLU6's clamp) that the student does not have."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        cortexm.need(tool)
    root = tmp_path_factory.mktemp("single_op_m4")
    built = {}
    for name in SINGLE_OP_CONV:
        data = T.build_single_op(name)
        graph = cortexm.write_model_c(data, root / f"{name}_c")
        built[name] = (cortexm.build_elf(root / f"{name}_c", "cortex-m4f", root / f"{name}.elf"), graph, data)
    return built


@pytest.mark.parametrize("name", SINGLE_OP_CONV)
def test_single_op_models_on_cortex_m4_are_bit_exact(single_op_m4_elfs, name):
    elf, graph, data = single_op_m4_elfs[name]
    rng = np.random.default_rng(len(name))
    size = graph.input.size
    inputs = np.stack([np.full(size, -128, np.int8), np.full(size, 127, np.int8),
                       (np.arange(size) % 256 - 128).astype(np.int8),
                       np.where(rng.random(size) < 0.5, -128, 127).astype(np.int8)]
                      + [rng.integers(-128, 128, size=size, dtype=np.int16).astype(np.int8) for _ in range(12)])
    outputs, _ = cortexm.run_elf(elf, inputs, graph.output.size, len(graph.layers))
    oracle = T.Oracle(data)
    for i, x in enumerate(inputs):
        want = oracle.invoke(x.reshape(graph.input_shape)).reshape(-1)
        np.testing.assert_array_equal(outputs[i], want, err_msg=f"{name} on Cortex-M4F: input {i}")
