"""Single-op int8 models (built with Keras, converted to full int8) run by the C engine through cffi must
equal tflite_micro's output exactly, on random int8 inputs and on adversarial ones: all -128, all 127,
every int8 value in turn (element-wise ops see all 256 inputs), with zero points at the extremes where
the calibration range is one-sided."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from bowlsense.nn import Engine, lower
from bowlsense.nn.tflite import parse

from bowlsense.nn import testing as T  # imports TensorFlow only when a model is built

N_RANDOM = 300


@functools.lru_cache(maxsize=None)
def model(name: str) -> bytes:
    return T.build_single_op(name)


def adversarial_inputs(shape, n_random: int, seed: int):
    size = int(np.prod(shape))
    rng = np.random.default_rng(seed)
    yield np.full(shape, -128, np.int8)
    yield np.full(shape, 127, np.int8)
    yield (np.arange(size) % 256 - 128).astype(np.int8).reshape(shape)   # every int8 value
    yield np.where(rng.random(size) < 0.5, -128, 127).astype(np.int8).reshape(shape)  # saturating
    for _ in range(n_random):
        yield rng.integers(-128, 128, size=shape, dtype=np.int16).astype(np.int8)


@pytest.mark.parametrize("name", sorted(T.SINGLE_OP_MODELS))
def test_single_op_model_is_bit_exact_with_tflite_micro(name):
    data = model(name)
    engine = Engine(lower(parse(data, name)))
    oracle = T.Oracle(data)
    for i, x in enumerate(adversarial_inputs(engine.input_shape, N_RANDOM, seed=len(name))):
        got = engine.invoke(x)
        want = oracle.invoke(x).reshape(got.shape)
        assert got.dtype == want.dtype == np.int8
        if not np.array_equal(got, want):
            diff = np.flatnonzero(got != want)
            pytest.fail(f"{name}: input {i}: {diff.size} of {got.size} outputs differ, first at {diff[0]}: "
                        f"engine {got.reshape(-1)[diff[0]]} tflite_micro {want.reshape(-1)[diff[0]]}")


CONV_MODELS = sorted(n for n in T.SINGLE_OP_MODELS if n.startswith(("conv", "depthwise")))


@pytest.mark.parametrize("name", CONV_MODELS)
def test_device_layout_is_bit_exact_with_tflite_micro(name):
    """The arrays an exported graph carries (packed weights16 without the int8 weights, requant tables) run
    by the portable kernels, as on a core without the DSP extension."""
    data = model(name)
    graph = lower(parse(data, name))
    engine, host = Engine(graph, device_layout=True), Engine(graph)
    oracle = T.Oracle(data)
    for i, x in enumerate(adversarial_inputs(engine.input_shape, 60, seed=len(name) + 1)):
        got = engine.invoke(x)
        np.testing.assert_array_equal(got, oracle.invoke(x).reshape(got.shape), err_msg=f"{name}: input {i}")
        np.testing.assert_array_equal(got, host.invoke(x), err_msg=f"{name}: input {i} (host layout)")


def test_device_layouts_are_exercised():
    """The zoo has layers with packed weights (odd channel counts, filters not a multiple of 4 taps,
    a non-3x3 depthwise), layers without, and layers with and without requant tables."""
    layers = [layer for n in CONV_MODELS for layer in lower(parse(model(n), n)).layers]
    packed = [layer for layer in layers if "weights16" in layer.arrays]
    assert any(layer.op == "CONV_2D_S8" for layer in packed) and any(layer.op == "DEPTHWISE_CONV_2D_S8" for layer in packed)
    assert any(layer.op == "DEPTHWISE_CONV_2D_S8" and "weights16" not in layer.arrays for layer in layers)
    assert any(len(layer.arrays["bias"]) % 2 for layer in packed if layer.op == "CONV_2D_S8")
    assert any("requant" in layer.arrays for layer in layers)


def test_zero_points_at_the_extremes_are_covered():
    """The zoo is meant to exercise zero points -128 and 127 (one-sided calibration ranges)."""
    zps = {lower(parse(model(n), n)).input.zero_point for n in sorted(T.SINGLE_OP_MODELS)}
    assert -128 in zps and 127 in zps


def test_every_supported_kernel_is_exercised():
    ops = {layer.op for n in T.SINGLE_OP_MODELS for layer in lower(parse(model(n), n)).layers}
    assert ops == {"CONV_2D_S8", "DEPTHWISE_CONV_2D_S8", "FULLY_CONNECTED_S8", "MEAN_S8", "AVERAGE_POOL_2D_S8",
                   "MAX_POOL_2D_S8", "ADD_S8", "RESHAPE", "LUT_S8", "SOFTMAX_S8"}


@pytest.mark.parametrize("scale,zero_point", [(0.37, 90), (0.004, -128), (1.9, 127)])
def test_int8_requantize_quantize_op_is_bit_exact(scale, zero_point):
    """QUANTIZE between two int8 tensors (a requantize), made by turning the LOGISTIC of a model into
    QUANTIZE with a new output scale and zero point; its lookup table must match on all 256 inputs."""
    def to_quantize(m, schema):
        m.operatorCodes[0].builtinCode = schema.BuiltinOperator.QUANTIZE
        m.operatorCodes[0].deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE
        g = m.subgraphs[0]
        g.operators[0].builtinOptionsType = 0
        g.operators[0].builtinOptions = None
        out = g.tensors[g.outputs[0]]
        out.quantization.scale = [scale]
        out.quantization.zeroPoint = [zero_point]

    data = T.edit_model(model("logistic"), to_quantize)
    graph = lower(parse(data, "requantize"))
    assert [layer.source_op for layer in graph.layers] == ["QUANTIZE"]
    engine, oracle = Engine(graph), T.Oracle(data)
    for x in adversarial_inputs(engine.input_shape, 20, seed=3):
        np.testing.assert_array_equal(engine.invoke(x), oracle.invoke(x).reshape(engine.output_shape))


def test_in_place_kernels_are_exercised_by_the_zoo():
    """The memory plan runs some layers in place (output over input); the bit-exact tests above must
    cover each such kernel path, including an in-place depthwise with stride 2."""
    in_place = set()
    for name in T.SINGLE_OP_MODELS:
        graph = lower(parse(model(name), name))
        for layer in graph.layers:
            if graph.tensors[layer.input].offset == graph.tensors[layer.output].offset:
                in_place.add((layer.op, layer.ints.get("stride_h")))
    assert {("CONV_2D_S8", 1), ("DEPTHWISE_CONV_2D_S8", 1), ("DEPTHWISE_CONV_2D_S8", 2), ("ADD_S8", None),
            ("LUT_S8", None)} <= in_place, in_place


@pytest.mark.parametrize("name", ["conv_1x1_relu6", "depthwise_same_s2_even", "add_relu"])
def test_plan_without_in_place_gives_the_same_bits_and_more_ram(name):
    from bowlsense.nn.plan import plan_arena
    graph = lower(parse(model(name), name))
    in_place_bytes = graph.arena_bytes
    separate = lower(parse(model(name), name))
    plan_arena(separate, in_place=False)
    layer = graph.layers[-1]
    assert graph.tensors[layer.input].offset == graph.tensors[layer.output].offset  # really in place
    assert separate.arena_bytes >= in_place_bytes  # (a depthwise ring can cost what it saves on tiny inputs)
    a, b = Engine(graph), Engine(separate)
    for x in adversarial_inputs(a.input_shape, 10, seed=9):
        np.testing.assert_array_equal(a.invoke(x), b.invoke(x))
