"""The engine (and so `bowlsense export`) refuses what it cannot run exactly, naming the operator index and
op, and broken .tflite files give a clear error naming the file. The bad models are built here: converted
with Keras or edited through the TFLite schema's object API."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from bowlsense.nn import TfliteError, UnsupportedModelError, load, lower
from bowlsense.nn import testing as T
from bowlsense.nn.tflite import parse


@functools.lru_cache(maxsize=None)
def conv_model(per_channel: bool = True) -> bytes:
    K = T.keras()
    K.utils.set_random_seed(1)
    inp = K.Input((6, 5, 3))
    out = K.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    return T.convert_int8(K.Model(inp, out), (6, 5, 3), per_channel=per_channel)


def refused(data: bytes, *fragments: str) -> str:
    with pytest.raises(UnsupportedModelError) as info:
        lower(parse(data, "bad.tflite"))
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_baseline_conv_model_is_accepted():
    assert [layer.op for layer in lower(parse(conv_model())).layers] == ["CONV_2D_S8"]


def test_unsupported_op_is_named_with_its_index():
    K = T.keras()
    inp = K.Input((6, 5, 3))
    x = K.layers.Conv2D(4, 3, padding="same")(inp)
    out = K.layers.Activation("tanh")(x)
    data = T.convert_int8(K.Model(inp, out), (6, 5, 3))
    refused(data, "bad.tflite", "operator 1 (TANH)", "not supported")


def test_float_tensor_inside_the_graph_is_refused():
    def make_float(m, schema):
        g = m.subgraphs[0]
        g.tensors[g.operators[0].outputs[0]].type = schema.TensorType.FLOAT32
    refused(T.edit_model(conv_model(), make_float), "operator 0 (CONV_2D)", "float32", "int8")


def test_float_model_without_quantize_edge_is_refused():
    K = T.keras()
    inp = K.Input((8,))
    model = K.Model(inp, K.layers.Dense(3)(inp))
    data = T.tf().lite.TFLiteConverter.from_keras_model(model).convert()
    refused(data, "operator 0 (FULLY_CONNECTED)", "float32 model input", "QUANTIZE")


def test_uint8_tensor_is_refused():
    def make_uint8(m, schema):
        g = m.subgraphs[0]
        t = g.tensors[g.operators[0].inputs[0]]
        t.type = schema.TensorType.UINT8
        t.quantization.zeroPoint = [128]
    refused(T.edit_model(conv_model(), make_uint8), "operator 0 (CONV_2D)", "uint8")


def test_per_tensor_conv_weights_are_refused():
    data = conv_model(per_channel=False)
    weights = parse(data).tensors[parse(data).operators[0].inputs[1]]
    assert len(weights.quant.scales) == 1  # the converter really made per-tensor weights
    refused(data, "operator 0 (CONV_2D)", "per-tensor", "per-channel")


@pytest.mark.parametrize("activation", ["TANH", "SIGN_BIT"])
def test_unsupported_fused_activation_is_refused(activation):
    def set_activation(m, schema):
        m.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = \
            getattr(schema.ActivationFunctionType, activation)
    refused(T.edit_model(conv_model(), set_activation), "operator 0 (CONV_2D)", f"fused activation {activation}")


def test_mean_over_channels_is_refused():
    K = T.keras()
    inp = K.Input((4, 4, 6), batch_size=1)
    out = K.layers.Lambda(lambda t: T.tf().reduce_mean(t, axis=3))(inp)
    data = T.convert_int8(K.Model(inp, out), (4, 4, 6))
    refused(data, "(MEAN)", "spatial mean")


def test_missing_file(tmp_path):
    with pytest.raises(TfliteError, match="no such file"):
        load(tmp_path / "nope.tflite")


@pytest.mark.parametrize("cut", [0, 7, 100, 0.5, 0.9, -1])
def test_truncated_file_gives_clear_error(tmp_path, cut):
    data = conv_model()
    n = int(len(data) * cut) if isinstance(cut, float) else (len(data) + cut if cut < 0 else cut)
    path = tmp_path / "truncated.tflite"
    path.write_bytes(data[:n])
    with pytest.raises(TfliteError) as info:
        lower(load(path))
    assert str(path) in str(info.value)


def test_not_a_tflite_file(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(TfliteError, match="not a TFLite flatbuffer"):
        load(path)


@pytest.mark.parametrize("seed", range(12))
def test_corrupted_bytes_never_crash_and_never_pass_silently(tmp_path, seed):
    """Random byte flips in the flatbuffer: either a clear TfliteError/UnsupportedModelError, or a model
    that still lowers (a flip in weight bytes is a valid, different model)."""
    data = bytearray(conv_model())
    rng = np.random.default_rng(seed)
    for pos in rng.integers(8, len(data), size=8):
        data[pos] ^= int(rng.integers(1, 256))
    path = tmp_path / "corrupt.tflite"
    path.write_bytes(bytes(data))
    try:
        graph = lower(load(path))
    except (TfliteError, UnsupportedModelError) as e:
        assert "corrupt.tflite" in str(e)
    else:
        assert graph.layers
