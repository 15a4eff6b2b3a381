"""Full-int8 TFLite for the student, and the integer path that runs it.

Conversion: TFLiteConverter with int8 input and output, per-channel int8 weights, calibrated on verified
training windows. The input range is pinned to the front end's range (features.INPUT_RANGE_NATS), not to
whatever the calibration windows hold: one calibration window carries the two extremes in two cells, so
the input scale and zero point are the same for every dataset and the device can requantize the front
end's output without knowing what the model was trained on.

Running: bowlsense.nn.Engine (the project's C engine, bit-exact with TFLite Micro) when it is installed,
else TFLite Micro's own Python interpreter, which gives the same bits.
"""
from __future__ import annotations

import numpy as np

from .features import INPUT_RANGE_NATS, quantize_input, to_nats

ENGINE_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D",
              "ADD", "RESHAPE", "LOGISTIC", "SOFTMAX"}


class QuantizationError(RuntimeError):
    pass


def representative(patches_q10: np.ndarray, n: int = 300, seed: int = 0):
    """Calibration generator: up to n training windows plus one that spans the pinned input range."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(patches_q10), size=min(n, len(patches_q10)), replace=False)
    pin = to_nats(patches_q10[idx[0]]).copy()
    pin[0, 0], pin[0, 1] = INPUT_RANGE_NATS

    def gen():
        yield [pin[None, :, :, None]]
        for i in idx:
            yield [to_nats(patches_q10[i])[None, :, :, None]]
    return gen


def convert(model, patches_q10: np.ndarray, seed: int = 0) -> bytes:
    import keras
    import tensorflow as tf
    if any(isinstance(layer, keras.layers.Reshape) for layer in model.layers):
        # The device runs one patch at a time. With the batch left open a Reshape converts into ops that
        # compute its shape at run time (SHAPE, STRIDED_SLICE, PACK), which the engine does not run; a
        # batch-1 view makes the shape static and the reshape folds away. Models without a Reshape convert
        # as they are, so their bytes (models/default's among them) stay what they were.
        inp = keras.Input(model.input_shape[1:], batch_size=1, name="log_mel")
        model = keras.Model(inp, model(inp), name=model.name)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(patches_q10, seed=seed)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):  # Keras' export prints every captured tensor
        flatbuffer = converter.convert()
    check(flatbuffer)
    return flatbuffer


def details(flatbuffer: bytes) -> dict:
    """Ops, input and output quantization of an int8 TFLite model."""
    import warnings

    import tensorflow as tf
    with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice, once per call
        warnings.simplefilter("ignore", UserWarning)
        it = tf.lite.Interpreter(model_content=flatbuffer,
                                 experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    return {
        "ops": [op["op_name"] for op in it._get_ops_details()],
        "input": {"scale": float(inp["quantization"][0]), "zero_point": int(inp["quantization"][1]),
                  "shape": [int(s) for s in inp["shape"]], "dtype": np.dtype(inp["dtype"]).name},
        "output": {"scale": float(out["quantization"][0]), "zero_point": int(out["quantization"][1]),
                   "shape": [int(s) for s in out["shape"]], "dtype": np.dtype(out["dtype"]).name},
    }


def edge_quantization(tensor) -> dict:
    """details()'s entry for one input or output tensor, read from a bowlsense.nn.tflite Tensor."""
    if tensor.quant is None:
        raise QuantizationError(f"tensor {tensor.name!r} is {tensor.dtype} without quantization; expected int8")
    return {"scale": tensor.scale, "zero_point": tensor.zero_point,
            "shape": [int(s) for s in tensor.shape], "dtype": tensor.dtype}


def check(flatbuffer: bytes) -> dict:
    """Re-check what was written: int8 edges, engine ops only, input range pinned."""
    d = details(flatbuffer)
    bad = [f"{op} (operator {i})" for i, op in enumerate(d["ops"]) if op not in ENGINE_OPS]
    if bad:
        raise QuantizationError(f"the int8 student uses ops the engine cannot run: {', '.join(bad)}")
    for edge in ("input", "output"):
        if d[edge]["dtype"] != "int8":
            raise QuantizationError(f"the student's {edge} is {d[edge]['dtype']}, expected int8")
    lo = d["input"]["scale"] * (-128 - d["input"]["zero_point"])
    hi = d["input"]["scale"] * (127 - d["input"]["zero_point"])
    want_lo, want_hi = INPUT_RANGE_NATS
    step = d["input"]["scale"]
    if abs(lo - want_lo) > 2 * step or abs(hi - want_hi) > 2 * step:
        raise QuantizationError(f"int8 input covers [{lo:.2f}, {hi:.2f}] nats, not the front end's pinned "
                                f"range [{want_lo}, {want_hi}]")
    return d


class Int8Model:
    """Runs an int8 .tflite on int16 Q10 patches through the integer path the device uses."""

    def __init__(self, flatbuffer: bytes):
        self.flatbuffer = bytes(flatbuffer)
        self.backend = None
        self.arena_bytes = None
        try:
            from ..nn import Engine, lower  # the project's C engine (bit-exact with TFLite Micro)
            from ..nn.tflite import parse
        except ImportError:
            Engine = None
        if Engine is not None:
            # The edges' quantization comes from the project's own flatbuffer reader, not from
            # tf.lite.Interpreter (details()): `bowlsense predict` and `evaluate` then never import
            # TensorFlow, which alone took about 4 s of every call.
            graph = parse(self.flatbuffer, "student.tflite")
            self.input_q, self.output_q = (edge_quantization(graph.tensors[graph.inputs[0]]),
                                           edge_quantization(graph.tensors[graph.outputs[0]]))
            self._engine = Engine(lower(graph))
            self.backend = "bowlsense.nn.Engine"
            self.arena_bytes = int(self._engine.arena_bytes)  # peak activation RAM of the static plan
        else:
            d = details(self.flatbuffer)
            self.input_q, self.output_q = d["input"], d["output"]
            from tflite_micro.python.tflite_micro import runtime
            self._engine = runtime.Interpreter.from_bytes(self.flatbuffer)
            self.backend = "tflite_micro (bowlsense.nn.Engine not installed; same bits)"

    def invoke_int8(self, x: np.ndarray) -> np.ndarray:
        """One int8 input [96, 64] -> int8 output [labels]."""
        x = np.ascontiguousarray(x.reshape(self.input_q["shape"]), dtype=np.int8)
        if self.backend == "bowlsense.nn.Engine":
            return np.asarray(self._engine.invoke(x), dtype=np.int8).reshape(-1)
        self._engine.set_input(x, 0)
        self._engine.invoke()
        return np.asarray(self._engine.get_output(0), dtype=np.int8).reshape(-1)

    def quantize(self, patches_q10: np.ndarray) -> np.ndarray:
        return quantize_input(patches_q10, self.input_q["scale"], self.input_q["zero_point"])

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.asarray(q, np.float32) - self.output_q["zero_point"]) * np.float32(self.output_q["scale"])

    def int8_scores(self, patches_q10: np.ndarray) -> np.ndarray:
        xq = self.quantize(patches_q10)
        n = self.output_q["shape"][-1]
        out = np.empty((len(xq), n), np.int8)
        for i in range(len(xq)):
            out[i] = self.invoke_int8(xq[i])
        return out

    def __call__(self, patches_q10: np.ndarray) -> np.ndarray:
        return self.dequantize(self.int8_scores(patches_q10))
