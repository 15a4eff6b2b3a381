"""Build tiny full-int8 .tflite models with Keras and run the tflite_micro oracle: used by the engine's
tests and benchmark. Imports TensorFlow (slow), so nothing else in bowlsense.nn imports this module.
"""
from __future__ import annotations

import contextlib
import io
import os

import numpy as np

from .oracle import Oracle, capture_c_stderr  # noqa: F401  (re-exported for the tests)


def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow
    return tensorflow


def keras():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras
    return tf_keras


def convert_int8(model, input_shape, seed: int = 0, low: float = -3.0, high: float = 3.0,
                 n_calibration: int = 16, io_int8: bool = True, per_channel: bool = True) -> bytes:
    """Full-integer conversion with a uniform random representative set in [low, high]."""
    t = tf()
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(n_calibration):
            yield [rng.uniform(low, high, size=(1,) + tuple(input_shape)).astype(np.float32)]

    converter = t.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [t.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io_int8:
        converter.inference_input_type = t.int8
        converter.inference_output_type = t.int8
    if not per_channel:
        converter._experimental_disable_per_channel = True
    with contextlib.redirect_stderr(io.StringIO()):
        return converter.convert()


# -- model zoo for the tests ---------------------------------------------------------------------------
# name -> (builder(keras) -> keras.Model, input shape (no batch), calibration range). Calibration ranges
# put the input zero point at the extremes on purpose (all-positive -> -128, all-negative -> 127).

def _seq(K, shape, *layers):
    inp = K.Input(shape)
    x = inp
    for layer in layers:
        x = layer(x)
    return K.Model(inp, x)


def _add_model(K, shape):
    inp = K.Input(shape)
    a = K.layers.Conv2D(6, 3, padding="same")(inp)
    b = K.layers.Conv2D(6, 1, padding="same")(inp)
    b = K.layers.Lambda(lambda t: t * 3.0)(b)
    return K.Model(inp, K.layers.ReLU()(K.layers.Add()([a, b])))


def _reshape_model(K, shape):
    inp = K.Input(shape, batch_size=1)  # a static batch keeps RESHAPE's shape constant
    x = K.layers.Conv2D(4, 1)(inp)
    x = K.layers.Reshape((shape[0] * shape[1], 4))(x)
    return K.Model(inp, K.layers.Softmax()(x))  # one softmax row per pixel


SINGLE_OP_MODELS = {
    "conv_same_s1_relu": (lambda K, s: _seq(K, s, K.layers.Conv2D(5, 3, padding="same", activation="relu")),
                          (9, 8, 3), (-3.0, 3.0)),
    "conv_valid_s2": (lambda K, s: _seq(K, s, K.layers.Conv2D(7, 3, strides=2, padding="valid")),
                      (11, 10, 4), (0.0, 5.0)),
    "conv_same_s2_even": (lambda K, s: _seq(K, s, K.layers.Conv2D(8, (5, 3), strides=(2, 2), padding="same")),
                          (12, 10, 2), (-5.0, 0.0)),
    "conv_1x1_relu6": (lambda K, s: _seq(K, s, K.layers.Conv2D(16, 1), K.layers.ReLU(6.0)),
                       (6, 5, 24), (-2.0, 2.0)),
    "conv_stride_hw": (lambda K, s: _seq(K, s, K.layers.Conv2D(3, (3, 2), strides=(1, 3), padding="same")),
                       (7, 11, 5), (-8.0, 8.0)),
    "depthwise_same_s1_relu": (lambda K, s: _seq(K, s, K.layers.DepthwiseConv2D(3, padding="same",
                                                                               activation="relu")),
                               (9, 8, 40), (-3.0, 3.0)),
    "depthwise_valid_s2_dm2": (lambda K, s: _seq(K, s, K.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2)),
                               (11, 10, 3), (0.0, 6.0)),
    "depthwise_same_s2_even": (lambda K, s: _seq(K, s, K.layers.DepthwiseConv2D((3, 5), strides=2, padding="same")),
                               (12, 10, 8), (-6.0, 0.0)),
    "dense_relu": (lambda K, s: _seq(K, s, K.layers.Flatten(), K.layers.Dense(10, activation="relu")),
                   (4, 3, 5), (-3.0, 3.0)),
    "dense_logits": (lambda K, s: _seq(K, s, K.layers.Dense(7)), (20,), (0.0, 9.0)),
    "mean_keepdims": (lambda K, s: _seq(K, s, K.layers.GlobalAveragePooling2D(keepdims=True)),
                      (5, 7, 6), (-2.0, 5.0)),
    "mean": (lambda K, s: _seq(K, s, K.layers.GlobalAveragePooling2D()), (3, 2, 16), (0.0, 4.0)),
    "avgpool_same_s2": (lambda K, s: _seq(K, s, K.layers.AveragePooling2D(3, strides=2, padding="same")),
                        (9, 8, 4), (-3.0, 3.0)),
    "avgpool_valid": (lambda K, s: _seq(K, s, K.layers.AveragePooling2D(2)), (8, 6, 3), (-4.0, 0.0)),
    "maxpool_same_s2": (lambda K, s: _seq(K, s, K.layers.MaxPooling2D(3, strides=2, padding="same")),
                        (9, 8, 4), (-3.0, 3.0)),
    "maxpool_valid": (lambda K, s: _seq(K, s, K.layers.MaxPooling2D((2, 3))), (8, 9, 2), (0.0, 3.0)),
    "add_relu": (_add_model, (6, 5, 3), (-3.0, 3.0)),
    "reshape_softmax_rows": (_reshape_model, (4, 3, 2), (-1.0, 1.0)),
    "logistic": (lambda K, s: _seq(K, s, K.layers.Activation("sigmoid")), (256,), (-10.0, 6.0)),
    "logistic_wide": (lambda K, s: _seq(K, s, K.layers.Activation("sigmoid")), (256,), (-40.0, 40.0)),
    "softmax": (lambda K, s: _seq(K, s, K.layers.Dense(12), K.layers.Softmax()), (8,), (-4.0, 4.0)),
    "softmax_sharp": (lambda K, s: _seq(K, s, K.layers.Softmax()), (5, 30), (-60.0, 60.0)),
}


def build_single_op(name: str) -> bytes:
    builder, shape, (low, high) = SINGLE_OP_MODELS[name]
    K = keras()
    K.utils.set_random_seed(sum(map(ord, name)))
    return convert_int8(builder(K, shape), shape, seed=len(name), low=low, high=high)


def ds_cnn(num_labels: int = 4, width: int = 32, blocks: int = 4, input_shape=(96, 64, 1), seed: int = 0):
    """A small DS-CNN like the student: conv 3x3/2, depthwise-separable blocks with batch norm and ReLU,
    global average pooling, a dense layer and sigmoids (multi-label)."""
    K = keras()
    K.utils.set_random_seed(seed)
    L = K.layers
    inp = K.Input(input_shape)
    x = L.Conv2D(width, 3, strides=2, padding="same", use_bias=False)(inp)
    x = L.ReLU()(L.BatchNormalization()(x))
    for i in range(blocks):
        stride = 2 if i in (1, 3) else 1
        x = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
        x = L.Conv2D(width * (2 if i >= 2 else 1), 1, use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(num_labels)(x)
    out = L.Activation("sigmoid")(x)
    model = K.Model(inp, out)
    # Non-trivial batch-norm statistics so folding gives varied per-channel scales.
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2.0, gamma.shape), rng.normal(0, 0.3, beta.shape),
                               rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 2.0, var.shape)])
    return model


def edit_model(data: bytes, edit) -> bytes:
    """Unpack a .tflite into the schema's object API, let edit(model_t, schema) change it, repack."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    edit(model, schema)
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def write_model_dir(path, data: bytes, labels=("eating", "speech", "dishes"), privacy=("speech",), name="test"):
    """MODEL_DIR as training writes it (model.tflite + model.json) for a converted test model."""
    import pathlib

    from ..frontend.config import DEFAULT_CONFIG
    from ..manifest import Manifest, Quantization, Smoothing, Threshold, sha256_file
    from .lower import lower
    from .tflite import parse

    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.tflite").write_bytes(data)
    g = lower(parse(data))
    labels = list(labels)
    thresholds = {lab: Threshold(0.5, 0.3) for lab in labels}
    if "eating" in thresholds:
        thresholds["eating"] = Threshold(0.6, 0.4)
    if "dishes" in thresholds:
        thresholds["dishes"] = Threshold(1.0, 0.0)
    manifest = Manifest(
        labels=labels, privacy_labels=list(privacy), thresholds=thresholds,
        smoothing=Smoothing(windows=3, min_event_windows=2), frontend=DEFAULT_CONFIG,
        input=Quantization(g.input.scale, g.input.zero_point, list(g.input_shape)),
        output=Quantization(g.output.scale, g.output.zero_point, list(g.output_shape)),
        tflite_sha256=sha256_file(path / "model.tflite"), name=name)
    manifest.save(path / "model.json")
    return path
