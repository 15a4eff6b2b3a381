"""Lower a parsed .tflite model to the bs_nn graph: one layer per operator, with everything the C
kernels need precomputed on the host (folded biases, per-channel multipliers and shifts, resolved
padding, lookup tables), then a static memory plan for the activations.

Anything the engine cannot run exactly is refused here, naming the operator index and op.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from . import fixedpoint as fp
from .plan import plan_arena
from .tflite import Model, Operator, Tensor

SUPPORTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "AVERAGE_POOL_2D",
                 "MAX_POOL_2D", "ADD", "RESHAPE", "LOGISTIC", "SOFTMAX", "QUANTIZE", "DEQUANTIZE",
                 "SPLIT (one output)")

# bs_nn_op codes (bs_nn.h)
OP_CODES = {"CONV_2D_S8": 1, "DEPTHWISE_CONV_2D_S8": 2, "FULLY_CONNECTED_S8": 3, "MEAN_S8": 4,
            "AVERAGE_POOL_2D_S8": 5, "MAX_POOL_2D_S8": 6, "ADD_S8": 7, "RESHAPE": 8, "LUT_S8": 9,
            "SOFTMAX_S8": 10}

INT_FIELDS = ("kernel_h", "kernel_w", "stride_h", "stride_w", "dilation_h", "dilation_w", "pad_top",
              "pad_left", "depth_multiplier", "act_min", "act_max", "input_offset", "input2_offset",
              "output_offset", "left_shift", "input_multiplier", "input_shift", "input2_multiplier",
              "input2_shift", "output_multiplier", "output_shift", "diff_min")
ARRAY_FIELDS = {"weights": np.int8, "bias": np.int32, "multiplier": np.int32, "shift": np.int32,
                "lut": np.int8, "exp_lut": np.int32, "weights16": np.int16, "requant": np.int32}

# BS_NN_COL_MAX in bs_nn.c: CONV_2D filters (kernel_h x kernel_w x C) of at most this many taps get their
# weights packed as int16 for the two-channel x two-pixel kernel (pack_conv_weights16).
COL_MAX = 256
DW_MAX_TAPS = 64      # BS_NN_DW_MAX_TAPS
PATCH_MAX = 1024      # BS_NN_PATCH_MAX


class UnsupportedModelError(ValueError):
    """The model uses something the bs_nn engine does not run (op, dtype, quantization...)."""


@dataclasses.dataclass
class GTensor:
    name: str
    h: int
    w: int
    c: int
    zero_point: int
    scale: float
    source: int                 # tensor index in the .tflite
    offset: int = 0             # arena offset, set by the planner

    @property
    def size(self) -> int:
        return self.h * self.w * self.c


@dataclasses.dataclass
class Layer:
    op: str                     # key of OP_CODES
    source_index: int           # operator index in the .tflite
    source_op: str              # TFLite op name
    input: int
    output: int
    input2: int = -1
    scratch: int = -1           # scratch tensor (in-place or fused depthwise ring), set by the planner
    fused: bool = False         # CONV_2D run inside the next (depthwise) layer, set by the planner
    ints: dict = dataclasses.field(default_factory=dict)
    arrays: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class FloatEdge:
    """A float32 model input followed by QUANTIZE, or an output produced by DEQUANTIZE."""
    scale: float
    zero_point: int


@dataclasses.dataclass
class Graph:
    tensors: list[GTensor]
    layers: list[Layer]
    input_tensor: int
    output_tensor: int
    input_shape: tuple[int, ...]     # the .tflite model's input shape
    output_shape: tuple[int, ...]
    input_float: FloatEdge | None    # set when the .tflite input is float32 (QUANTIZE edge)
    output_float: FloatEdge | None   # set when the .tflite output is float32 (DEQUANTIZE edge)
    arena_bytes: int = 0
    tflite_sha256: str = ""

    @property
    def input(self) -> GTensor:
        return self.tensors[self.input_tensor]

    @property
    def output(self) -> GTensor:
        return self.tensors[self.output_tensor]

    def layer_macs(self, layer: "Layer") -> int:
        ti, to = self.tensors[layer.input], self.tensors[layer.output]
        k = layer.ints.get("kernel_h", 1) * layer.ints.get("kernel_w", 1)
        if layer.op == "CONV_2D_S8":
            return to.size * k * ti.c
        if layer.op == "DEPTHWISE_CONV_2D_S8":
            return to.size * k
        if layer.op == "FULLY_CONNECTED_S8":
            return to.size * ti.size
        return 0

    def macs(self) -> int:
        return sum(self.layer_macs(layer) for layer in self.layers)


def device_arrays(layer: "Layer") -> dict:
    """The arrays a device build carries for a layer: the int8 weights are left out where the packed
    weights16 replace them (bs_nn.h: every kernel can run from weights16 alone)."""
    arrays = dict(layer.arrays)
    if "weights16" in arrays:
        arrays.pop("weights", None)
    return arrays


def pack_conv_weights16(w: np.ndarray) -> np.ndarray:
    """CONV_2D weights [OC][K] (int8) in the layout bs_nn's two-channel kernel reads (bs_nn.h, weights16):
    K padded with zeros to a multiple of 4 (kp); for each pair of channels (2j, 2j + 1) a block of 2 x kp
    int16, per group of 4 taps t0..t3: a_t0, a_t2, a_t1, a_t3, b_t0, b_t2, b_t1, b_t3 (a = channel 2j,
    b = 2j + 1), the order SXTB16 gives an input word, so each 32-bit word feeds one SMLAD; an odd last
    channel alone: a_t0, a_t2, a_t1, a_t3 per group."""
    oc, k = w.shape
    kp = (k + 3) // 4 * 4
    padded = np.zeros((oc, kp), np.int16)
    padded[:, :k] = w
    groups = padded.reshape(oc, kp // 4, 4)[:, :, [0, 2, 1, 3]]   # (oc, groups, 4)
    pairs = oc // 2
    out = [groups[:2 * pairs].reshape(pairs, 2, kp // 4, 4).transpose(0, 2, 1, 3).reshape(-1)]
    if oc % 2:
        out.append(groups[-1].reshape(-1))
    return np.concatenate(out).astype(np.int16)


def pack_depthwise_weights16(w: np.ndarray) -> np.ndarray:
    """DEPTHWISE_CONV_2D weights [taps][OC] (int8, multiplier 1, OC a multiple of 4) as bs_nn's weights16:
    per group of 4 channels c0..c3 and per tap t, w_t(c0), w_t(c2), w_t(c1), w_t(c3) (int16): SXTB16's order
    of an input word, and each group's taps one contiguous run."""
    taps, oc = w.shape
    g = w.astype(np.int16).reshape(taps, oc // 4, 4)[:, :, [0, 2, 1, 3]]   # (taps, groups, 4)
    return np.ascontiguousarray(g.transpose(1, 0, 2)).reshape(-1)


def unpack_depthwise_weights16(packed: np.ndarray, taps: int, oc: int) -> np.ndarray:
    """Inverse of pack_depthwise_weights16 (for tests): [taps][OC] int8."""
    g = packed.reshape(oc // 4, taps, 4)[:, :, [0, 2, 1, 3]]
    return np.ascontiguousarray(g.transpose(1, 0, 2)).reshape(taps, oc).astype(np.int8)


def unpack_conv_weights16(packed: np.ndarray, oc: int, k: int) -> np.ndarray:
    """Inverse of pack_conv_weights16 (for tests): [OC][K] int8."""
    kp = (k + 3) // 4 * 4
    pairs = oc // 2
    head = packed[:2 * pairs * kp].reshape(pairs, kp // 4, 2, 4).transpose(0, 2, 1, 3).reshape(2 * pairs, kp // 4, 4)
    groups = [head]
    if oc % 2:
        groups.append(packed[2 * pairs * kp:].reshape(1, kp // 4, 4))
    g = np.concatenate(groups)[:, :, [0, 2, 1, 3]].reshape(oc, kp)
    return g[:, :k].astype(np.int8)


def _hwc(shape: tuple[int, ...], what: str) -> tuple[int, int, int]:
    """NHWC with batch 1; lower ranks get leading 1s."""
    if not shape:
        return 1, 1, 1
    if shape[0] != 1 and len(shape) > 1:
        raise UnsupportedModelError(f"{what}: batch {shape[0]} (shape {list(shape)}); only batch 1 is supported")
    dims = list(shape[1:]) if len(shape) > 1 else list(shape)
    if len(dims) > 3:
        raise UnsupportedModelError(f"{what}: rank {len(shape)} tensors are not supported")
    dims = [1] * (3 - len(dims)) + dims
    return dims[0], dims[1], dims[2]


class _Lowering:
    def __init__(self, model: Model):
        self.model = model
        self.tensors: list[GTensor] = []
        self.map: dict[int, int] = {}
        self.layers: list[Layer] = []

    # -- helpers ---------------------------------------------------------------------------------
    def where(self, op: Operator) -> str:
        return f"{self.model.path}: operator {op.index} ({op.op})"

    def act_tensor(self, op: Operator, index: int) -> int:
        """Graph tensor for an int8 activation tensor of the .tflite (created on first use)."""
        if index in self.map:
            return self.map[index]
        t = self.model.tensors[index]
        self.check_int8(op, t)
        if t.data is not None:
            raise UnsupportedModelError(f"{self.where(op)}: constant tensor {index} ({t.name}) used as an "
                                        f"activation is not supported")
        h, w, c = _hwc(t.shape, f"{self.where(op)}, tensor {index} ({t.name})")
        self.tensors.append(GTensor(t.name, h, w, c, t.zero_point, t.scale, index))
        self.map[index] = len(self.tensors) - 1
        return self.map[index]

    def check_int8(self, op: Operator, t: Tensor) -> None:
        if t.dtype != "int8":
            raise UnsupportedModelError(f"{self.where(op)}: tensor {t.index} ({t.name}) is {t.dtype}; the engine "
                                        f"runs int8 activations only (quantize the model to full int8)")
        if t.quant is None:
            raise UnsupportedModelError(f"{self.where(op)}: tensor {t.index} ({t.name}) has no quantization parameters")
        if t.quant.per_channel:
            raise UnsupportedModelError(f"{self.where(op)}: activation tensor {t.index} ({t.name}) is per-channel "
                                        f"quantized; activations must be per-tensor")

    def const(self, op: Operator, position: int, dtype: str, required: bool = True) -> Tensor | None:
        if position >= len(op.inputs) or op.inputs[position] < 0:
            if required:
                raise UnsupportedModelError(f"{self.where(op)}: input {position} is missing")
            return None
        t = self.model.tensors[op.inputs[position]]
        if t.data is None:
            raise UnsupportedModelError(f"{self.where(op)}: input {position} ({t.name}) must be a constant")
        if t.dtype != dtype:
            raise UnsupportedModelError(f"{self.where(op)}: {t.name} is {t.dtype}, expected {dtype}")
        return t

    def activation(self, op: Operator, out: GTensor) -> dict:
        act = op.options.get("FusedActivationFunction", "NONE")
        try:
            lo, hi = fp.activation_range(act, out.scale, out.zero_point)
        except ValueError:
            raise UnsupportedModelError(f"{self.where(op)}: fused activation {act} is not supported "
                                        f"(NONE, RELU, RELU6, RELU_N1_TO_1 are)") from None
        return {"act_min": lo, "act_max": hi}

    def padding(self, op: Operator, in_size: int, out_size: int, k: int, stride: int, dilation: int,
                axis: str) -> int:
        eff = (k - 1) * dilation + 1
        pad = op.options.get("Padding", "VALID")
        if pad == "SAME":
            expected = (in_size + stride - 1) // stride
        elif pad == "VALID":
            expected = (in_size + stride - eff) // stride
        else:
            raise UnsupportedModelError(f"{self.where(op)}: padding {pad} is not supported")
        if expected != out_size:
            raise UnsupportedModelError(f"{self.where(op)}: output {axis} {out_size} does not match {pad} padding "
                                        f"(expected {expected})")
        total = max((out_size - 1) * stride + eff - in_size, 0)
        return total // 2

    def weights_per_channel(self, op: Operator, w: Tensor, channels: int, axis: int) -> np.ndarray:
        q = w.quant
        if q is None:
            raise UnsupportedModelError(f"{self.where(op)}: weights {w.name} are not quantized")
        if np.any(q.zero_points != 0):
            raise UnsupportedModelError(f"{self.where(op)}: weights {w.name} have non-zero zero points; the int8 "
                                        f"spec requires symmetric weights")
        if len(q.scales) != channels:
            raise UnsupportedModelError(f"{self.where(op)}: weights {w.name} are per-tensor quantized "
                                        f"({len(q.scales)} scale for {channels} output channels); per-channel "
                                        f"weights are required (convert with the default int8 converter)")
        if channels > 1 and q.axis != axis:
            raise UnsupportedModelError(f"{self.where(op)}: weights {w.name} quantized along dimension {q.axis}, "
                                        f"expected {axis}")
        return q.scales

    def bias(self, op: Operator, position: int, channels: int) -> np.ndarray:
        b = self.const(op, position, "int32", required=False)
        if b is None:
            return np.zeros(channels, np.int64)
        if b.size != channels:
            raise UnsupportedModelError(f"{self.where(op)}: bias has {b.size} values for {channels} channels")
        return b.data.reshape(-1).astype(np.int64)

    @staticmethod
    def fold(bias: np.ndarray, weight_sums: np.ndarray, input_offset: int) -> np.ndarray:
        folded = bias + input_offset * weight_sums
        return (((folded + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)).astype(np.int32)

    def add(self, layer: Layer) -> None:
        self.layers.append(layer)

    # -- ops ---------------------------------------------------------------------------------------
    def conv(self, op: Operator, depthwise: bool) -> None:
        x = self.act_tensor(op, op.inputs[0])
        y = self.act_tensor(op, op.outputs[0])
        ti, to = self.tensors[x], self.tensors[y]
        w = self.const(op, 1, "int8")
        if len(w.shape) != 4:
            raise UnsupportedModelError(f"{self.where(op)}: weights must be 4-D, got {list(w.shape)}")
        o = op.options
        if depthwise:
            _, kh, kw, oc = w.shape
            if oc != to.c or oc % ti.c != 0:
                raise UnsupportedModelError(f"{self.where(op)}: {oc} output channels for {ti.c} input channels")
            dm = oc // ti.c
            scales = self.weights_per_channel(op, w, oc, 3)
            weights = np.ascontiguousarray(w.data.reshape(kh, kw, oc))
            sums = weights.astype(np.int64).sum(axis=(0, 1))
        else:
            oc, kh, kw, ic = w.shape
            if ic != ti.c:
                raise UnsupportedModelError(f"{self.where(op)}: grouped convolution ({ic} filter channels, "
                                            f"{ti.c} input channels) is not supported")
            if oc != to.c:
                raise UnsupportedModelError(f"{self.where(op)}: weights have {oc} filters, output has {to.c} channels")
            dm = 1
            scales = self.weights_per_channel(op, w, oc, 0)
            weights = np.ascontiguousarray(w.data)
            sums = weights.astype(np.int64).reshape(oc, -1).sum(axis=1)
        sh, sw = o["StrideH"], o["StrideW"]
        dh, dw = o.get("DilationHFactor", 1) or 1, o.get("DilationWFactor", 1) or 1
        if (dh, dw) != (1, 1):
            # The kernels implement dilation, but no converter path here produces a dilated int8 conv to
            # verify it against TFLite Micro, so it is refused rather than trusted.
            raise UnsupportedModelError(f"{self.where(op)}: dilation {dh}x{dw} is not supported")
        pad_top = self.padding(op, ti.h, to.h, kh, sh, dh, "height")
        pad_left = self.padding(op, ti.w, to.w, kw, sw, dw, "width")
        mult, shift = self.per_channel_multipliers(ti.scale, scales, to.scale)
        input_offset = -ti.zero_point
        ints = dict(kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw,
                    pad_top=pad_top, pad_left=pad_left, depth_multiplier=dm, input_offset=input_offset,
                    output_offset=to.zero_point, **self.activation(op, to))
        arrays = dict(weights=weights.reshape(-1), bias=self.fold(self.bias(op, 2, oc), sums, input_offset),
                      multiplier=mult, shift=shift)
        # the packed int16 layout the Cortex-M kernels read, where they have one: the device build gets it
        # alone (device_arrays), the host Engine both (its portable kernels read the int8 weights)
        if not depthwise and kh * kw * ic <= COL_MAX:
            arrays["weights16"] = pack_conv_weights16(weights.reshape(oc, -1))
        elif depthwise and dm == 1 and oc % 4 == 0 and kh * kw <= DW_MAX_TAPS and ti.c <= PATCH_MAX:
            arrays["weights16"] = pack_depthwise_weights16(weights.reshape(kh * kw, oc))
        table = fp.requant_table(mult, shift, to.zero_point)
        if table is not None:
            arrays["requant"] = table.reshape(-1)
        self.add(Layer("DEPTHWISE_CONV_2D_S8" if depthwise else "CONV_2D_S8", op.index, op.op, x, y,
                       ints=ints, arrays=arrays))

    @staticmethod
    def per_channel_multipliers(input_scale, filter_scales, output_scale):
        # TFLite PopulateConvolutionQuantizationParams: double(input) * double(filter) / double(output).
        pairs = [fp.quantize_multiplier(float(np.float32(input_scale)) * float(np.float32(s))
                                        / float(np.float32(output_scale))) for s in filter_scales]
        return np.array([p[0] for p in pairs], np.int32), np.array([p[1] for p in pairs], np.int32)

    def fully_connected(self, op: Operator) -> None:
        x = self.act_tensor(op, op.inputs[0])
        y = self.act_tensor(op, op.outputs[0])
        ti, to = self.tensors[x], self.tensors[y]
        w = self.const(op, 1, "int8")
        if op.options.get("WeightsFormat", 0) != 0:
            raise UnsupportedModelError(f"{self.where(op)}: shuffled weights format is not supported")
        if len(w.shape) != 2 or w.shape[1] != ti.size or w.shape[0] != to.size:
            raise UnsupportedModelError(f"{self.where(op)}: weights {list(w.shape)} do not map {ti.size} inputs "
                                        f"to {to.size} outputs")
        oc = w.shape[0]
        q = w.quant
        if q is None or np.any(q.zero_points != 0):
            raise UnsupportedModelError(f"{self.where(op)}: weights must be symmetric int8 (zero point 0)")
        if len(q.scales) == 1:
            # TFLite GetQuantizedConvolutionMultipler: the input x filter product is taken in float32.
            real = float(np.float32(ti.scale) * np.float32(q.scales[0])) / float(np.float32(to.scale))
            m, s = fp.quantize_multiplier(real)
            mult, shift = np.full(oc, m, np.int32), np.full(oc, s, np.int32)
        elif len(q.scales) == oc:
            mult, shift = self.per_channel_multipliers(ti.scale, q.scales, to.scale)
        else:
            raise UnsupportedModelError(f"{self.where(op)}: {len(q.scales)} weight scales for {oc} outputs")
        weights = np.ascontiguousarray(w.data)
        input_offset = -ti.zero_point
        sums = weights.astype(np.int64).sum(axis=1)
        ints = dict(input_offset=input_offset, output_offset=to.zero_point, **self.activation(op, to))
        arrays = dict(weights=weights.reshape(-1), bias=self.fold(self.bias(op, 2, oc), sums, input_offset),
                      multiplier=mult, shift=shift)
        self.add(Layer("FULLY_CONNECTED_S8", op.index, op.op, x, y, ints=ints, arrays=arrays))

    def mean(self, op: Operator) -> None:
        src = self.model.tensors[op.inputs[0]]
        x = self.act_tensor(op, op.inputs[0])
        y = self.act_tensor(op, op.outputs[0])
        ti, to = self.tensors[x], self.tensors[y]
        axes = self.const(op, 1, "int32")
        rank = len(src.shape)
        resolved = sorted({int(a) % rank for a in axes.data.reshape(-1)}) if rank else []
        if rank != 4 or resolved != [1, 2]:
            raise UnsupportedModelError(f"{self.where(op)}: MEAN over axes {list(axes.data.reshape(-1))} of a rank-{rank} "
                                        f"tensor; only the spatial mean (axes 1 and 2 of NHWC) is supported")
        if to.size != ti.c:
            raise UnsupportedModelError(f"{self.where(op)}: output shape does not match a spatial mean")
        # TFLite QuantizedMeanOrSum folds 1/count into the input/output multiplier.
        m, s = fp.quantize_multiplier(float(np.float32(ti.scale)) / float(np.float32(to.scale)))
        count = ti.h * ti.w
        shift = min(count.bit_length() - 1, 32, 31 + s)
        ints = dict(input_offset=-ti.zero_point, output_offset=to.zero_point,
                    output_multiplier=(m << shift) // count, output_shift=s - shift)
        self.add(Layer("MEAN_S8", op.index, op.op, x, y, ints=ints))

    def pool(self, op: Operator, is_max: bool) -> None:
        x = self.act_tensor(op, op.inputs[0])
        y = self.act_tensor(op, op.outputs[0])
        ti, to = self.tensors[x], self.tensors[y]
        if ti.c != to.c:
            raise UnsupportedModelError(f"{self.where(op)}: pooling changes the channel count")
        if ti.scale != to.scale or ti.zero_point != to.zero_point:
            raise UnsupportedModelError(f"{self.where(op)}: input and output quantization differ; TFLite pooling "
                                        f"requires them equal")
        o = op.options
        kh, kw, sh, sw = o["FilterHeight"], o["FilterWidth"], o["StrideH"], o["StrideW"]
        ints = dict(kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw,
                    pad_top=self.padding(op, ti.h, to.h, kh, sh, 1, "height"),
                    pad_left=self.padding(op, ti.w, to.w, kw, sw, 1, "width"), **self.activation(op, to))
        self.add(Layer("MAX_POOL_2D_S8" if is_max else "AVERAGE_POOL_2D_S8", op.index, op.op, x, y, ints=ints))

    def add_op(self, op: Operator) -> None:
        a = self.act_tensor(op, op.inputs[0])
        b = self.act_tensor(op, op.inputs[1])
        y = self.act_tensor(op, op.outputs[0])
        ta, tb, to = self.tensors[a], self.tensors[b], self.tensors[y]
        if self.model.tensors[op.inputs[0]].shape != self.model.tensors[op.inputs[1]].shape or ta.size != to.size:
            raise UnsupportedModelError(f"{self.where(op)}: broadcasting ADD is not supported (shapes "
                                        f"{list(self.model.tensors[op.inputs[0]].shape)} and "
                                        f"{list(self.model.tensors[op.inputs[1]].shape)})")
        left_shift = 20
        sa, sb, so = (float(np.float32(t.scale)) for t in (ta, tb, to))
        twice_max = 2 * max(sa, sb)
        m1, s1 = fp.quantize_multiplier(sa / twice_max)
        m2, s2 = fp.quantize_multiplier(sb / twice_max)
        mo, so_ = fp.quantize_multiplier(twice_max / ((1 << left_shift) * so))
        ints = dict(input_offset=-ta.zero_point, input2_offset=-tb.zero_point, output_offset=to.zero_point,
                    left_shift=left_shift, input_multiplier=m1, input_shift=s1, input2_multiplier=m2,
                    input2_shift=s2, output_multiplier=mo, output_shift=so_, **self.activation(op, to))
        self.add(Layer("ADD_S8", op.index, op.op, a, y, input2=b, ints=ints))

    def reshape(self, op: Operator, data_input: int = 0) -> None:
        x = self.act_tensor(op, op.inputs[data_input])
        y = self.act_tensor(op, op.outputs[0])
        ti, to = self.tensors[x], self.tensors[y]
        if ti.size != to.size:
            raise UnsupportedModelError(f"{self.where(op)}: reshape from {ti.size} to {to.size} elements")
        if ti.scale != to.scale or ti.zero_point != to.zero_point:
            raise UnsupportedModelError(f"{self.where(op)}: {op.op} changes quantization parameters")
        self.add(Layer("RESHAPE", op.index, op.op, x, y))

    def logistic(self, op: Operator) -> None:
        x = self.act_tensor(op, op.inputs[0])
        y = self.act_tensor(op, op.outputs[0])
        ti, to = self.tensors[x], self.tensors[y]
        if to.zero_point != -128 or np.float32(to.scale) != np.float32(1 / 256):
            raise UnsupportedModelError(f"{self.where(op)}: int8 LOGISTIC output must have scale 1/256 and zero "
                                        f"point -128, got {to.scale} / {to.zero_point}")
        self.add(Layer("LUT_S8", op.index, op.op, x, y, arrays=dict(lut=fp.logistic_lut(ti.scale, ti.zero_point))))

    def softmax(self, op: Operator) -> None:
        x = self.act_tensor(op, op.inputs[0])
        y = self.act_tensor(op, op.outputs[0])
        ti, to = self.tensors[x], self.tensors[y]
        if to.zero_point != -128 or np.float32(to.scale) != np.float32(1 / 256):
            raise UnsupportedModelError(f"{self.where(op)}: int8 SOFTMAX output must have scale 1/256 and zero "
                                        f"point -128, got {to.scale} / {to.zero_point}")
        lut = fp.softmax_exp_lut(op.options.get("Beta", 1.0), ti.scale)
        self.add(Layer("SOFTMAX_S8", op.index, op.op, x, y, arrays=dict(exp_lut=lut)))

    def requantize(self, op: Operator) -> None:
        x = self.act_tensor(op, op.inputs[0])
        y = self.act_tensor(op, op.outputs[0])
        ti, to = self.tensors[x], self.tensors[y]
        lut = fp.requantize_lut(ti.scale, ti.zero_point, to.scale, to.zero_point)
        self.add(Layer("LUT_S8", op.index, op.op, x, y, arrays=dict(lut=lut)))

    # -- driver ------------------------------------------------------------------------------------
    def run(self) -> Graph:
        m = self.model
        if len(m.inputs) != 1 or len(m.outputs) != 1:
            raise UnsupportedModelError(f"{m.path}: {len(m.inputs)} inputs and {len(m.outputs)} outputs; the engine "
                                        f"runs single-input, single-output models")
        ops = list(m.operators)
        if not ops:
            raise UnsupportedModelError(f"{m.path}: the model has no operators")
        input_float = output_float = None
        model_in, model_out = m.tensors[m.inputs[0]], m.tensors[m.outputs[0]]
        core_in, core_out = m.inputs[0], m.outputs[0]
        if model_in.dtype == "float32":
            first = ops[0]
            if first.op != "QUANTIZE" or first.inputs[0] != m.inputs[0]:
                raise UnsupportedModelError(f"{self.where(first)}: reads the float32 model input {model_in.name}, "
                                            f"which is not followed by QUANTIZE; the engine runs int8 only")
            q = m.tensors[first.outputs[0]]
            self.check_int8(first, q)
            input_float = FloatEdge(q.scale, q.zero_point)
            core_in = first.outputs[0]
            ops = ops[1:]
        if model_out.dtype == "float32":
            last = ops[-1] if ops else None
            if last is None or last.op != "DEQUANTIZE" or last.outputs[0] != m.outputs[0]:
                producer = next((o for o in m.operators if m.outputs[0] in o.outputs), None)
                where = self.where(producer) if producer else m.path
                raise UnsupportedModelError(f"{where}: writes the float32 model output {model_out.name}, which is "
                                            f"not produced by DEQUANTIZE; the engine runs int8 only")
            q = m.tensors[last.inputs[0]]
            self.check_int8(last, q)
            output_float = FloatEdge(q.scale, q.zero_point)
            core_out = last.inputs[0]
            ops = ops[:-1]
        first_op = ops[0] if ops else m.operators[0]
        self.act_tensor(first_op, core_in)
        for op in ops:
            handler = {
                "CONV_2D": lambda o: self.conv(o, False),
                "DEPTHWISE_CONV_2D": lambda o: self.conv(o, True),
                "FULLY_CONNECTED": self.fully_connected,
                "MEAN": self.mean,
                "AVERAGE_POOL_2D": lambda o: self.pool(o, False),
                "MAX_POOL_2D": lambda o: self.pool(o, True),
                "ADD": self.add_op,
                "RESHAPE": self.reshape,
                "LOGISTIC": self.logistic,
                "SOFTMAX": self.softmax,
                "QUANTIZE": self.requantize,
            }.get(op.op)
            if op.op == "SPLIT" and len(op.outputs) == 1:
                handler = lambda o: self.reshape(o, data_input=1)  # noqa: E731 - a 1-way split is a copy
            if handler is None:
                where = "in the middle of the graph" if op.op in ("QUANTIZE", "DEQUANTIZE") else ""
                raise UnsupportedModelError(
                    f"{self.where(op)}: op not supported by the bowlsense int8 engine {where}".rstrip()
                    + f" (supported: {', '.join(SUPPORTED_OPS)})")
            if op.op == "QUANTIZE" and m.tensors[op.inputs[0]].dtype != "int8":
                raise UnsupportedModelError(f"{self.where(op)}: QUANTIZE from {m.tensors[op.inputs[0]].dtype} is only "
                                            f"supported at the model input")
            handler(op)
        if core_out not in self.map:
            self.act_tensor(ops[-1] if ops else first_op, core_out)
        graph = Graph(self.tensors, self.layers, self.map[core_in], self.map[core_out],
                      tuple(model_in.shape), tuple(model_out.shape), input_float, output_float,
                      tflite_sha256=m.sha256)
        plan_arena(graph)
        return graph


def lower(model: Model) -> Graph:
    return _Lowering(model).run()
