"""Read a .tflite flatbuffer into plain Python objects: tensors (shape, dtype, quantization, constant
data) and operators (builtin name, inputs, outputs, options).

The schema module comes from the tflite_micro package (imports in a fraction of a second) and, failing
that, from TensorFlow (about 3 s). Every way a file can be broken (not a flatbuffer, truncated,
offsets out of range, inconsistent buffers) ends in a TfliteError naming the file.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib

import numpy as np


class TfliteError(ValueError):
    """The file is not a readable TFLite model."""


@dataclasses.dataclass
class Quant:
    scales: np.ndarray        # float32, one per tensor or per channel
    zero_points: np.ndarray   # int64
    axis: int                 # quantized dimension for per-channel

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1


@dataclasses.dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str                # "int8", "int32", "float32", "uint8", ...
    quant: Quant | None
    data: np.ndarray | None   # constant data (weights, biases, axes), else None

    @property
    def scale(self) -> float:
        return float(self.quant.scales[0])

    @property
    def zero_point(self) -> int:
        return int(self.quant.zero_points[0])

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


@dataclasses.dataclass
class Operator:
    index: int
    op: str                   # builtin name, e.g. "CONV_2D"
    inputs: list[int]         # tensor indices, -1 for an omitted optional input
    outputs: list[int]
    options: dict


@dataclasses.dataclass
class Model:
    path: str
    sha256: str
    data: bytes
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]


_DTYPES = {"FLOAT32": np.float32, "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16,
           "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_, "FLOAT16": np.float16}


def _schema():
    try:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    except ImportError:  # pragma: no cover - tflite_micro is a dependency
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def _enum_names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)}


# Options tables we read, by the BuiltinOptions union name; fields are read through their getters.
_OPTION_FIELDS = {
    "Conv2DOptions": ["Padding", "StrideW", "StrideH", "FusedActivationFunction", "DilationWFactor",
                      "DilationHFactor"],
    "DepthwiseConv2DOptions": ["Padding", "StrideW", "StrideH", "DepthMultiplier",
                               "FusedActivationFunction", "DilationWFactor", "DilationHFactor"],
    "FullyConnectedOptions": ["FusedActivationFunction", "WeightsFormat", "KeepNumDims"],
    "Pool2DOptions": ["Padding", "StrideW", "StrideH", "FilterWidth", "FilterHeight",
                      "FusedActivationFunction"],
    "AddOptions": ["FusedActivationFunction"],
    "ReducerOptions": ["KeepDims"],
    "SoftmaxOptions": ["Beta"],
    "SplitOptions": ["NumSplits"],
    "ReshapeOptions": [],
}


def _read_options(schema, op, union_names) -> dict:
    kind = union_names.get(op.BuiltinOptionsType(), "NONE")
    table = op.BuiltinOptions()
    if kind == "NONE" or table is None or kind not in _OPTION_FIELDS:
        return {"kind": kind}
    obj = getattr(schema, kind)()
    obj.Init(table.Bytes, table.Pos)
    options = {"kind": kind}
    padding = _enum_names(schema.Padding)
    activation = _enum_names(schema.ActivationFunctionType)
    for field in _OPTION_FIELDS[kind]:
        value = getattr(obj, field)()
        if field == "Padding":
            value = padding.get(value, str(value))
        elif field == "FusedActivationFunction":
            value = activation.get(value, str(value))
        options[field] = value
    return options


def load(path: str | os.PathLike) -> Model:
    """Parse a .tflite file (single subgraph)."""
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TfliteError(f"{path}: no such file") from None
    return parse(data, str(path))


def parse(data: bytes, name: str = "<bytes>") -> Model:
    if len(data) < 16:
        raise TfliteError(f"{name}: {len(data)} bytes is too short for a TFLite flatbuffer")
    if data[4:8] != b"TFL3":
        raise TfliteError(f"{name}: not a TFLite flatbuffer (file identifier {data[4:8]!r}, expected b'TFL3')")
    root = int.from_bytes(data[0:4], "little")
    if root + 4 > len(data):
        raise TfliteError(f"{name}: truncated or corrupt (root table at {root} beyond {len(data)} bytes)")
    try:
        return _parse(data, name)
    except TfliteError:
        raise
    except Exception as e:  # flatbuffers raises IndexError, struct.error, ... on bad offsets
        raise TfliteError(f"{name}: truncated or corrupt TFLite flatbuffer ({type(e).__name__}: {e})") from None


def _parse(data: bytes, name: str) -> Model:
    schema = _schema()
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)
    union_names = _enum_names(schema.BuiltinOptions)
    model = schema.Model.GetRootAs(data, 0)
    if model.SubgraphsLength() != 1:
        raise TfliteError(f"{name}: {model.SubgraphsLength()} subgraphs; only single-subgraph models are supported")
    graph = model.Subgraphs(0)

    def buffer_data(index: int) -> bytes | None:
        if index <= 0 or index >= model.BuffersLength():
            return None
        buf = model.Buffers(index)
        if buf.Offset() > 1:  # large-model layout: data after the flatbuffer
            start, size = buf.Offset(), buf.Size()
            if start + size > len(data):
                raise TfliteError(f"{name}: truncated (buffer {index} ends at {start + size}, file has {len(data)} bytes)")
            return data[start:start + size]
        if buf.DataLength() == 0:
            return None
        raw = buf.DataAsNumpy()
        return raw.tobytes()

    tensors = []
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        dtype = type_names.get(t.Type(), f"type{t.Type()}")
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if any(d < 0 for d in shape):
            raise TfliteError(f"{name}: tensor {i} has a dynamic shape {shape}; only static shapes are supported")
        q = t.Quantization()
        quant = None
        if q is not None and q.ScaleLength() > 0:
            zps = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros(q.ScaleLength(), np.int64)
            quant = Quant(np.asarray(q.ScaleAsNumpy(), np.float32), np.asarray(zps, np.int64), q.QuantizedDimension())
        raw = buffer_data(t.Buffer())
        array = None
        if raw is not None:
            np_dtype = _DTYPES.get(dtype)
            if np_dtype is None:
                raise TfliteError(f"{name}: tensor {i} ({t.Name().decode(errors='replace')}) has unsupported type {dtype}")
            expected = int(np.prod(shape)) * np.dtype(np_dtype).itemsize
            if len(raw) != expected:
                raise TfliteError(f"{name}: tensor {i} holds {len(raw)} bytes of data, its shape {shape} "
                                  f"of {dtype} needs {expected} (corrupt file?)")
            array = np.frombuffer(raw, dtype=np_dtype).reshape(shape)
        tensors.append(Tensor(i, t.Name().decode(errors="replace"), shape, dtype.lower(), quant, array))

    operators = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if op.OpcodeIndex() >= model.OperatorCodesLength():
            raise TfliteError(f"{name}: operator {i} refers to opcode {op.OpcodeIndex()} which does not exist")
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        op_name = op_names.get(builtin, f"BUILTIN_{builtin}")
        if op_name == "CUSTOM":
            op_name = f"CUSTOM:{(code.CustomCode() or b'').decode(errors='replace')}"
        inputs = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
        outputs = [int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else []
        for x in inputs + outputs:
            if x >= len(tensors):
                raise TfliteError(f"{name}: operator {i} ({op_name}) refers to tensor {x}, the model has {len(tensors)}")
        operators.append(Operator(i, op_name, inputs, outputs, _read_options(schema, op, union_names)))

    inputs = [int(x) for x in graph.InputsAsNumpy()]
    outputs = [int(x) for x in graph.OutputsAsNumpy()]
    return Model(name, hashlib.sha256(data).hexdigest(), bytes(data), tensors, operators, inputs, outputs)
