"""The int8 inference engine (C, firmware/nn) on the host, bit-exact with TensorFlow Lite Micro.

    engine = Engine.from_tflite("models/default/model.tflite")   # or a model directory
    scores_q = engine.invoke(features_int8)          # one input, shape of the model input
    scores_q = engine.invoke_batch(batch_int8)       # (n, *input shape)
    probs = engine.invoke_float(x_float32)           # models with float QUANTIZE/DEQUANTIZE edges
    engine.arena_bytes                               # peak activation RAM of the static plan

The .tflite is parsed and lowered in Python (bowlsense.nn.tflite, .lower); `bowlsense export` writes the
same lowered graph as C for the firmware.
"""
from __future__ import annotations

from .engine import Engine, EngineError
from .lower import Graph, UnsupportedModelError, lower
from .tflite import TfliteError, load

__all__ = ["Engine", "EngineError", "Graph", "TfliteError", "UnsupportedModelError", "load", "lower",
           "load_graph"]


def load_graph(path) -> Graph:
    """Parse and lower a .tflite file (refusing what the engine cannot run)."""
    return lower(load(path))
