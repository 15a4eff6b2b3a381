"""The student: a depthwise-separable CNN small enough for a Cortex-M4, on the same 96x64 patches.

conv 3x3 stride 2 -> blocks of (depthwise 3x3, pointwise 1x1), each with batch norm (folded into the
convolutions by the TFLite converter) and ReLU -> pooling -> dense -> sigmoid. Pooling is either a
global average (`pool="mean"`, MEAN) or an average over frequency then a maximum over time
(`pool="time_max"`: AVERAGE_POOL_2D, MAX_POOL_2D, RESHAPE), which lets a short sound in one part of the
window (a crunch, a clink) decide the window instead of being averaged with the silence around it. Every
op lowers to one the int8 engine runs: CONV_2D, DEPTHWISE_CONV_2D, MEAN, AVERAGE_POOL_2D, MAX_POOL_2D,
RESHAPE, FULLY_CONNECTED, LOGISTIC.

Budgets are checked when the model is built: int8 weight bytes (one byte per weight after quantization)
and multiply-accumulates per patch.
"""
from __future__ import annotations

import dataclasses

from .yamnet import NUM_MEL, PATCH_FRAMES


@dataclasses.dataclass(frozen=True)
class StudentConfig:
    stem_filters: int = 24
    # (stride, filters) per depthwise-separable block
    blocks: tuple[tuple[int, int], ...] = ((2, 48), (1, 48), (2, 96), (1, 96), (2, 128), (1, 128))
    max_weight_bytes: int = 64 * 1024
    max_macs: int = 6_000_000
    pool: str = "mean"   # mean | time_max (see the module docstring)
    # Dropout on the pooled features before the dense head, while training only: the exported model has
    # no trace of it (the TFLite converter drops it, like batch norm's training statistics). 0.3 measured
    # level with none over two student seeds under 4-fold cross-validation (train/README.md): off.
    dropout: float = 0.0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["blocks"] = [list(b) for b in self.blocks]
        if not self.dropout:
            del d["dropout"]  # as configs were written before it existed: checkpoint keys and manifests unchanged
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "StudentConfig":
        d = dict(d)  # a config written before `pool` existed means "mean"
        d["blocks"] = tuple(tuple(b) for b in d["blocks"])
        return cls(**d)


class BudgetError(ValueError):
    """The student is bigger than its weight or MAC budget."""


def build_student(n_labels: int, config: StudentConfig = StudentConfig()):
    """float model: (96, 64, 1) nats -> (n_labels,) probabilities."""
    import keras  # Keras 3 itself, whatever TF_USE_LEGACY_KERAS makes tf.keras mean
    L = keras.layers
    inp = keras.Input(shape=(PATCH_FRAMES, NUM_MEL, 1), name="log_mel")
    x = L.Conv2D(config.stem_filters, 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)
    for i, (stride, filters) in enumerate(config.blocks, start=1):
        x = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"block{i}_dw")(x)
        x = L.BatchNormalization(name=f"block{i}_dw_bn")(x)
        x = L.ReLU(name=f"block{i}_dw_relu")(x)
        x = L.Conv2D(filters, 1, use_bias=False, name=f"block{i}_pw")(x)
        x = L.BatchNormalization(name=f"block{i}_pw_bn")(x)
        x = L.ReLU(name=f"block{i}_pw_relu")(x)
    if config.pool == "mean":
        x = L.GlobalAveragePooling2D(name="pool")(x)
    elif config.pool == "time_max":
        _, frames, bands, _ = x.shape
        x = L.AveragePooling2D((1, bands), name="pool_frequency")(x)
        x = L.MaxPooling2D((frames, 1), name="pool_time")(x)
        # Reshape to a fixed size, not Flatten: Flatten's converted form computes the shape at run time
        # (SHAPE, STRIDED_SLICE, PACK), which the engine does not run.
        x = L.Reshape((x.shape[-1],), name="pool")(x)
    else:
        raise ValueError(f"student pool must be 'mean' or 'time_max', got {config.pool!r}")
    if config.dropout:
        x = L.Dropout(config.dropout, name="dropout")(x)
    out = L.Dense(n_labels, activation="sigmoid", name="scores")(x)
    model = keras.Model(inp, out, name="student")
    cost = count_cost(model)
    if cost["weight_bytes"] > config.max_weight_bytes:
        raise BudgetError(f"student has {cost['weight_bytes']} bytes of int8 weights, over the budget of "
                          f"{config.max_weight_bytes}; use fewer filters")
    if cost["macs"] > config.max_macs:
        raise BudgetError(f"student needs {cost['macs']:,} MACs per patch, over the budget of "
                          f"{config.max_macs:,}; use fewer filters or earlier strides")
    return model


def count_cost(model) -> dict:
    """MACs per patch and int8 weight bytes (kernels; biases are int32 and counted apart)."""
    import keras  # Keras 3 itself, whatever TF_USE_LEGACY_KERAS makes tf.keras mean
    macs = weights = bias_bytes = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            k = layer.kernel.shape  # (kh, kw, channels, multiplier)
            _, h, w, c = layer.output.shape
            macs += h * w * c * k[0] * k[1]
            weights += int(k[0] * k[1] * k[2] * k[3])
            bias_bytes += 4 * c
        elif isinstance(layer, keras.layers.Conv2D):
            k = layer.kernel.shape
            _, h, w, c = layer.output.shape
            macs += h * w * c * k[0] * k[1] * k[2]
            weights += int(k[0] * k[1] * k[2] * k[3])
            bias_bytes += 4 * c
        elif isinstance(layer, keras.layers.Dense):
            k = layer.kernel.shape
            macs += k[0] * k[1]
            weights += int(k[0] * k[1])
            bias_bytes += 4 * k[1]
    return {"macs": int(macs), "weight_bytes": int(weights), "bias_bytes": int(bias_bytes),
            "params": int(model.count_params())}
