"""Host wrapper of the C engine: builds a bs_nn_graph in cffi memory from a lowered Graph and runs it."""
from __future__ import annotations

import os
import pathlib

import numpy as np

from .fixedpoint import round_half_away_f32
from .lower import ARRAY_FIELDS, INT_FIELDS, OP_CODES, Graph, device_arrays, lower
from .tflite import load

GRAPH_VERSION = 2  # BS_NN_GRAPH_VERSION in bs_nn.h


class EngineError(RuntimeError):
    """The C engine returned an error status."""


def _lib():
    try:
        from . import _nn_cffi
    except ImportError as e:  # pragma: no cover - only when the package was not installed
        raise ImportError("bowlsense's C engine is not compiled: run `make setup` (pip install -e .) so cffi "
                          "builds it from firmware/nn") from e
    return _nn_cffi.ffi, _nn_cffi.lib


class Engine:
    """One lowered model in C memory plus its arena. Not thread-safe (one arena)."""

    def __init__(self, graph: Graph, device_layout: bool = False):
        """device_layout: give the C graph only the arrays a device build has (bowlsense export's), so the
        portable kernels run from the packed weights16 as a core without the DSP extension does; by default
        the int8 weights are kept as well and the host runs its faster int8 paths."""
        self.graph = graph
        self._ffi, self._lib = ffi, lib = _lib()
        self._keep = []  # cffi buffers the C structs point into
        tensors = ffi.new("bs_nn_tensor[]", len(graph.tensors))
        for i, t in enumerate(graph.tensors):
            tensors[i].offset = t.offset
            tensors[i].h, tensors[i].w, tensors[i].c = t.h, t.w, t.c
            tensors[i].zero_point = t.zero_point
        layers = ffi.new("bs_nn_layer[]", max(len(graph.layers), 1))
        for i, layer in enumerate(graph.layers):
            c = layers[i]
            c.op = OP_CODES[layer.op]
            c.input, c.input2, c.output = layer.input, layer.input2, layer.output
            c.source_index = layer.source_index
            c.scratch = layer.scratch
            c.fused = int(layer.fused)
            c.dilation_h = c.dilation_w = c.depth_multiplier = 1
            for name in INT_FIELDS:
                if name in layer.ints:
                    setattr(c, name, int(layer.ints[name]))
            arrays = device_arrays(layer) if device_layout else layer.arrays
            for name, dtype in ARRAY_FIELDS.items():
                if name in arrays:
                    arr = np.ascontiguousarray(arrays[name], dtype=dtype)
                    buf = ffi.new(f"{ffi.getctype(ffi.typeof(getattr(c, name)).item)}[]", max(arr.size, 1))
                    ffi.memmove(buf, arr.tobytes(), arr.nbytes)
                    self._keep.append(buf)
                    setattr(c, name, buf)
        self._keep += [tensors, layers]
        g = self._graph = ffi.new("bs_nn_graph *")
        g.version = GRAPH_VERSION
        g.arena_bytes = graph.arena_bytes
        g.num_tensors, g.tensors = len(graph.tensors), tensors
        g.num_layers, g.layers = len(graph.layers), layers
        g.input_tensor, g.output_tensor = graph.input_tensor, graph.output_tensor
        # 16 extra bytes so the arena can start on a 16-byte boundary whatever malloc returns.
        self._arena_raw = ffi.new("uint8_t[]", graph.arena_bytes + 16)
        address = int(ffi.cast("uintptr_t", self._arena_raw))
        self._arena = self._arena_raw + ((-address) % 16)
        self._check(lib.bs_nn_check(g, self._arena, graph.arena_bytes), "check")
        self.input_size = graph.input.size
        self.output_size = graph.output.size
        self._in = ffi.new("int8_t[]", self.input_size)
        self._out = ffi.new("int8_t[]", self.output_size)

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_tflite(cls, path: str | os.PathLike, device_layout: bool = False) -> "Engine":
        """From a .tflite file, or a model directory holding model.tflite."""
        path = pathlib.Path(path)
        if path.is_dir():
            path = path / "model.tflite"
        return cls(lower(load(path)), device_layout=device_layout)

    # -- properties --------------------------------------------------------------------------------
    @property
    def arena_bytes(self) -> int:
        return self.graph.arena_bytes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.graph.input_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.graph.output_shape

    @property
    def macs(self) -> int:
        return self.graph.macs()

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            name = self._ffi.string(self._lib.bs_nn_status_name(status)).decode()
            raise EngineError(f"bs_nn_{what} failed: {name} ({status})")

    # -- running -----------------------------------------------------------------------------------
    def invoke(self, x: np.ndarray) -> np.ndarray:
        """One int8 input (any shape with the model input's element count) -> int8 output, shaped
        like the model's int8 output."""
        x = np.asarray(x)
        if x.dtype != np.int8:
            raise TypeError(f"engine input must be int8, got {x.dtype} (use invoke_float for float models)")
        if x.size != self.input_size:
            raise ValueError(f"engine input has {x.size} elements, the model takes {self.input_size} "
                             f"(shape {list(self.input_shape)})")
        x = np.ascontiguousarray(x)
        self._ffi.memmove(self._in, x.tobytes(), x.nbytes)
        self._check(self._lib.bs_nn_invoke(self._graph, self._arena, self.arena_bytes, self._in, self._out), "invoke")
        out = np.frombuffer(self._ffi.buffer(self._out), dtype=np.int8).copy()
        return out.reshape(self.output_shape)

    def invoke_batch(self, xs: np.ndarray) -> np.ndarray:
        """(n, ...) int8 inputs -> (n, *output shape[1:]) int8 outputs."""
        xs = np.asarray(xs)
        outs = [self.invoke(x) for x in xs]
        return np.stack(outs).reshape((len(xs),) + tuple(self.output_shape[1:])) if outs else \
            np.zeros((0,) + tuple(self.output_shape[1:]), np.int8)

    # -- float edges (QUANTIZE / DEQUANTIZE), as TFLite computes them --------------------------------
    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        edge = self.graph.input_float
        scale, zp = (edge.scale, edge.zero_point) if edge else (self.graph.input.scale, self.graph.input.zero_point)
        q = round_half_away_f32(np.asarray(x, np.float32) / np.float32(scale)).astype(np.float64) + zp
        return np.clip(q, -128, 127).astype(np.int8)

    def dequantize_output(self, q: np.ndarray) -> np.ndarray:
        edge = self.graph.output_float
        scale, zp = (edge.scale, edge.zero_point) if edge else (self.graph.output.scale, self.graph.output.zero_point)
        return (np.float64(np.float32(scale)) * (np.asarray(q, np.int64) - zp)).astype(np.float32)

    def invoke_float(self, x: np.ndarray) -> np.ndarray:
        """float32 input -> float32 output through the model's quantization (the QUANTIZE/DEQUANTIZE
        edges of a float-interface model, or the int8 interface's scale and zero point)."""
        return self.dequantize_output(self.invoke(self.quantize_input(x)))
