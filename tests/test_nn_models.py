"""Whole models through the C engine (cffi) against tflite_micro, bit for bit: (a) the trained default
student (models/default) and a student-like DS-CNN built here with Keras and converted to full int8
(int8 in/out, per-channel weights), (b) Coral's int8 YAMNet from ../shared (all 521 outputs), on random
int8 inputs and on real front end features."""
from __future__ import annotations

import csv
import functools

import numpy as np
import pytest

from bowlsense.frontend import Frontend, patches, to_float
from bowlsense.nn import Engine, lower
from bowlsense.nn import testing as T
from bowlsense.nn.tflite import parse
from bowlsense.paths import default_model_dir

N_RANDOM_STUDENT = 1000   # the default student, as the issue asks
N_RANDOM_BUILT = 300      # the DS-CNN built here (its conversion is also exercised by other tests)


@functools.lru_cache(maxsize=None)
def student_tflite() -> bytes:
    # Calibrated on the front end's range of log-mel values (nats), as training does.
    return T.convert_int8(T.ds_cnn(num_labels=4), (96, 64, 1), low=-7.0, high=4.0, n_calibration=8)


def real_feature_patches(shared_data_dir, n_clips: int = 4) -> np.ndarray:
    """Front end log-mel patches (float nats, 96x64) of real clips, one per label as far as labels go
    (clips shorter than one patch are passed over)."""
    from bowlsense.data.audio import load_audio
    rows = list(csv.DictReader(open(shared_data_dir / "labels.csv")))
    fe = Frontend()
    out, seen = [], set()
    for row in rows:
        if row["label"] in seen:
            continue
        fe.reset()
        p = patches(fe.process(load_audio(shared_data_dir / row["path"])))
        if len(p) == 0:
            continue
        seen.add(row["label"])
        out.append(to_float(p[len(p) // 2]))
        if len(out) == n_clips:
            break
    assert len(out) >= min(n_clips, 2), "not enough real clips of at least 0.96 s in ../shared/data"
    return np.stack(out)


def test_student_like_ds_cnn_is_int8_per_channel():
    graph = lower(parse(student_tflite(), "student"))
    assert graph.input_float is None and graph.output_float is None  # int8 in and out
    ops = [layer.op for layer in graph.layers]
    assert ops.count("DEPTHWISE_CONV_2D_S8") == 4 and ops.count("CONV_2D_S8") == 5
    assert ops[-2:] == ["FULLY_CONNECTED_S8", "LUT_S8"]


def test_student_like_ds_cnn_bit_exact_on_random_inputs():
    data = student_tflite()
    engine, oracle = Engine(lower(parse(data, "student"))), T.Oracle(data)
    rng = np.random.default_rng(1234)
    for i in range(N_RANDOM_BUILT):
        x = rng.integers(-128, 128, size=engine.input_shape, dtype=np.int16).astype(np.int8)
        got, want = engine.invoke(x), oracle.invoke(x)
        assert np.array_equal(got, want.reshape(got.shape)), f"random input {i}: {got} != {want}"


def test_student_like_ds_cnn_bit_exact_on_real_features(shared_data_dir):
    data = student_tflite()
    engine, oracle = Engine(lower(parse(data, "student"))), T.Oracle(data)
    feats = real_feature_patches(shared_data_dir)
    for i, f in enumerate(feats):
        x = engine.quantize_input(f.reshape(engine.input_shape))
        assert len(np.unique(x)) > 20  # real spectro-temporal structure, not a saturated block
        got, want = engine.invoke(x), oracle.invoke(x)
        np.testing.assert_array_equal(got, want.reshape(got.shape), err_msg=f"real patch {i}")


@pytest.fixture(scope="module")
def yamnet(yamnet_dir):
    path = yamnet_dir / "yamnet_int8_logmel_in.tflite"
    return Engine.from_tflite(path), T.Oracle(path)


def test_yamnet_float_edges_and_shape(yamnet):
    engine, _ = yamnet
    assert engine.graph.input_float is not None and engine.graph.output_float is not None
    assert engine.input_shape == (1, 96, 64) and engine.output_shape == (1, 521)
    assert engine.macs > 60_000_000


def test_yamnet_all_521_outputs_bit_exact(yamnet, yamnet_dir, shared_data_dir):
    engine, oracle = yamnet
    coral = np.fromfile(yamnet_dir / "coral_test_logmel_f32.bin", dtype="<f4").reshape(1, 96, 64)
    rng = np.random.default_rng(7)
    inputs = [coral] + list(real_feature_patches(shared_data_dir, 3)[:, None]) + \
        [rng.uniform(-8, 4, size=(1, 96, 64)).astype(np.float32) for _ in range(2)]
    for i, x in enumerate(inputs):
        want = oracle.invoke(x)
        got = engine.invoke_float(x)
        assert got.shape == want.shape == (1, 521)
        np.testing.assert_array_equal(got, want, err_msg=f"YAMNet input {i}")
    # Coral's test clip is speech: class 0 must win, as in TFLite.
    assert int(np.argmax(engine.invoke_float(coral))) == 0


@pytest.fixture(scope="module")
def default_student():
    path = default_model_dir() / "model.tflite"
    if not path.exists():
        pytest.fail(f"{path} is missing: the trained default student is part of the repository (make model)")
    return Engine.from_tflite(path), T.Oracle(path)


@pytest.mark.slow
def test_default_student_bit_exact_on_1000_random_inputs(default_student):
    engine, oracle = default_student
    rng = np.random.default_rng(99)
    for i in range(N_RANDOM_STUDENT):
        x = rng.integers(-128, 128, size=engine.input_shape, dtype=np.int16).astype(np.int8)
        got, want = engine.invoke(x), oracle.invoke(x)
        assert np.array_equal(got, want.reshape(got.shape)), f"random input {i}: {got} != {want}"


def test_default_student_bit_exact_on_real_features(default_student, shared_data_dir):
    engine, oracle = default_student
    feats = real_feature_patches(shared_data_dir, 6)
    for i, f in enumerate(feats):
        x = engine.quantize_input(f.reshape(engine.input_shape))
        got, want = engine.invoke(x), oracle.invoke(x)
        np.testing.assert_array_equal(got, want.reshape(got.shape), err_msg=f"real patch {i}")


def test_default_student_device_layout_bit_exact(default_student, shared_data_dir):
    """The exported arrays (packed weights16 alone, requant tables) through the portable kernels, as the
    Cortex-M0+ build runs them."""
    engine, oracle = default_student
    device = Engine(engine.graph, device_layout=True)
    rng = np.random.default_rng(5)
    xs = [engine.quantize_input(f.reshape(engine.input_shape)) for f in real_feature_patches(shared_data_dir, 3)]
    xs += [rng.integers(-128, 128, size=engine.input_shape, dtype=np.int16).astype(np.int8) for _ in range(40)]
    for i, x in enumerate(xs):
        got = device.invoke(x)
        np.testing.assert_array_equal(got, oracle.invoke(x).reshape(got.shape), err_msg=f"input {i}")


@pytest.mark.parametrize("fuse,in_place", [(True, True), (True, False), (False, True), (False, False)])
def test_every_memory_plan_gives_the_same_bits(default_student, fuse, in_place):
    """Fused conv->depthwise rows, in-place layers, or neither: the plan changes where bytes live, never
    the result (each variant checked against tflite_micro)."""
    from bowlsense.nn.plan import plan_arena
    engine, oracle = default_student
    graph = lower(parse((default_model_dir() / "model.tflite").read_bytes(), "default"))
    plan_arena(graph, in_place=in_place, fuse=fuse)
    if fuse:
        assert any(layer.fused for layer in graph.layers)
    variant = Engine(graph)
    rng = np.random.default_rng(5)
    for _ in range(20):
        x = rng.integers(-128, 128, size=engine.input_shape, dtype=np.int16).astype(np.int8)
        np.testing.assert_array_equal(variant.invoke(x), oracle.invoke(x).reshape(engine.output_shape))


def test_fused_plan_on_yamnet_is_used_and_smaller(yamnet, yamnet_dir):
    from bowlsense.nn.plan import plan_arena
    engine, _ = yamnet
    assert any(layer.fused for layer in engine.graph.layers)
    graph = lower(parse((yamnet_dir / "yamnet_int8_logmel_in.tflite").read_bytes(), "yamnet"))
    fused = graph.arena_bytes
    plan_arena(graph, fuse=False)
    assert fused < graph.arena_bytes
