"""Build tiny full-int8 .tflite models with Keras and run the tflite_micro oracle: used by the engine's
tests and benchmark. Imports TensorFlow (slow), so nothing else in bowlsense.nn imports this module.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile

import numpy as np


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


class Oracle:
    """tflite_micro's interpreter (TFLite Micro reference kernels) on one model."""

    def __init__(self, model: bytes | str | os.PathLike):
        from tflite_micro.python.tflite_micro import runtime
        if isinstance(model, (bytes, bytearray)):
            self.interp = runtime.Interpreter.from_bytes(bytes(model))
        else:
            self.interp = runtime.Interpreter.from_file(str(model))
        self.input_details = self.interp.get_input_details(0)

    def invoke(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x).reshape(self.input_details["shape"])
        self.interp.set_input(x.astype(self.input_details["dtype"]), 0)
        self.interp.invoke()
        return self.interp.get_output(0).copy()

    def arena_used_bytes(self) -> int:
        """The arena TFLite Micro needs for this model (print_allocations(), which writes to C stderr)."""
        text = capture_c_stderr(self.interp.print_allocations)
        m = re.search(r"\[RecordingMicroAllocator\] Arena allocation total (\d+) bytes", text)
        if not m:
            raise RuntimeError(f"could not read the arena size from print_allocations():\n{text}")
        return int(m.group(1))


def capture_c_stderr(fn) -> str:
    """Run fn() and return what C code wrote to file descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode(errors="replace")
