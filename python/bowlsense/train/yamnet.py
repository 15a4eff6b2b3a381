"""YAMNet's published architecture in Keras, with batch norm folded into the convolutions.

YAMNet (google-research/models, research/audioset/yamnet) is a MobileNet v1: one 3x3 convolution and
13 depthwise-separable blocks over a 96x64 log-mel patch, global average pooling to a 1024-d embedding
and a 521-way logistic classifier. Every pretrained copy available offline has batch norm already
folded into the convolution biases, and loaders of unfolded weights (yamnet.h5, SavedModel) fold it
themselves, so the network here is conv + bias + activation throughout. That is also the form the
fine-tuned top blocks train in.

Layer names follow YAMNet's (`layer1/conv`, `layer2/depthwise_conv`, ...) with '/' written as '_'
because Keras 3 rejects '/' in layer names.
"""
from __future__ import annotations

import dataclasses

import numpy as np

PATCH_FRAMES = 96
NUM_MEL = 64
EMBEDDING_SIZE = 1024
NUM_CLASSES = 521
NUM_BLOCKS = 13  # depthwise-separable blocks after the first convolution

# (kind, stride, filters) as in YAMNet's _YAMNET_LAYER_DEFS; every kernel is 3x3.
LAYER_DEFS = [
    ("conv", 2, 32),
    ("separable", 1, 64),
    ("separable", 2, 128),
    ("separable", 1, 128),
    ("separable", 2, 256),
    ("separable", 1, 256),
    ("separable", 2, 512),
    ("separable", 1, 512),
    ("separable", 1, 512),
    ("separable", 1, 512),
    ("separable", 1, 512),
    ("separable", 1, 512),
    ("separable", 2, 1024),
    ("separable", 1, 1024),
]


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """One weight-carrying layer of YAMNet: its Keras name, YAMNet name and folded shapes."""
    name: str            # Keras layer name, e.g. layer2_depthwise_conv
    yamnet_name: str     # YAMNet's name, e.g. layer2/depthwise_conv
    kind: str            # conv | depthwise | pointwise | dense
    layer: int           # 1..14 (15 for the classifier)
    kernel_shape: tuple  # Keras layout
    bias_shape: tuple


def conv_specs() -> list[ConvSpec]:
    """Every weight-carrying layer in network order, with its Keras-layout shapes."""
    specs = []
    channels = 1
    for i, (kind, _stride, filters) in enumerate(LAYER_DEFS, start=1):
        if kind == "conv":
            specs.append(ConvSpec(f"layer{i}_conv", f"layer{i}/conv", "conv", i,
                                  (3, 3, channels, filters), (filters,)))
        else:
            specs.append(ConvSpec(f"layer{i}_depthwise_conv", f"layer{i}/depthwise_conv", "depthwise", i,
                                  (3, 3, channels, 1), (channels,)))
            specs.append(ConvSpec(f"layer{i}_pointwise_conv", f"layer{i}/pointwise_conv", "pointwise", i,
                                  (1, 1, channels, filters), (filters,)))
        channels = filters
    specs.append(ConvSpec("logits", "logits", "dense", len(LAYER_DEFS) + 1,
                          (EMBEDDING_SIZE, NUM_CLASSES), (NUM_CLASSES,)))
    return specs


@dataclasses.dataclass
class YamnetWeights:
    """Folded float32 weights in Keras layout, keyed by Keras layer name, plus where they came from.

    activation: 'relu' for Google's float YAMNet, 'relu6' for Coral's int8 TFLite (trained that way)."""
    kernels: dict[str, np.ndarray]
    biases: dict[str, np.ndarray]
    activation: str
    source: str

    def check(self) -> None:
        """Every layer present with YAMNet's shape; raises ValueError naming the first mismatch."""
        for spec in conv_specs():
            for what, table, shape in (("kernel", self.kernels, spec.kernel_shape),
                                       ("bias", self.biases, spec.bias_shape)):
                if spec.name not in table:
                    raise ValueError(f"{self.source}: no {what} for YAMNet layer {spec.yamnet_name}")
                got = tuple(np.shape(table[spec.name]))
                if got != tuple(shape):
                    raise ValueError(
                        f"{self.source}: YAMNet layer {spec.yamnet_name} {what} has shape {got}, "
                        f"expected {tuple(shape)}: this is not YAMNet's architecture")


def _activation(activation: str):
    import keras  # Keras 3 itself, whatever TF_USE_LEGACY_KERAS makes tf.keras mean
    if activation == "relu6":
        return keras.layers.ReLU(max_value=6.0)
    if activation == "relu":
        return keras.layers.ReLU()
    raise ValueError(f"unknown activation {activation!r} (relu or relu6)")


def _block(x, i: int, activation: str):
    """YAMNet layer i (1-based, LAYER_DEFS) applied to x."""
    import keras  # Keras 3 itself, whatever TF_USE_LEGACY_KERAS makes tf.keras mean
    from .pointwise import PointwiseConv2D
    kind, stride, filters = LAYER_DEFS[i - 1]
    if kind == "conv":
        x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", name=f"layer{i}_conv")(x)
        return keras.layers.Activation(_activation(activation), name=f"layer{i}_conv_act")(x)
    x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", name=f"layer{i}_depthwise_conv")(x)
    x = keras.layers.Activation(_activation(activation), name=f"layer{i}_depthwise_conv_act")(x)
    x = PointwiseConv2D(filters, name=f"layer{i}_pointwise_conv")(x)
    return keras.layers.Activation(_activation(activation), name=f"layer{i}_pointwise_conv_act")(x)


def layer_output_shape(layer: int) -> tuple[int, int, int]:
    """(h, w, c) after YAMNet layer `layer` (0 = the input patch)."""
    h, w, c = PATCH_FRAMES, NUM_MEL, 1
    for kind, stride, filters in LAYER_DEFS[:layer]:
        h, w, c = -(-h // stride), -(-w // stride), filters
    return h, w, c


def build_trunk(first: int = 1, last: int = len(LAYER_DEFS), activation: str = "relu", name: str = "yamnet_trunk"):
    """Layers first..last as a Keras model: input = output of layer first-1, output = output of `last`."""
    import keras  # Keras 3 itself, whatever TF_USE_LEGACY_KERAS makes tf.keras mean
    inp = keras.Input(shape=layer_output_shape(first - 1), name=f"{name}_in")
    x = inp
    for i in range(first, last + 1):
        x = _block(x, i, activation)
    return keras.Model(inp, x, name=name)


def build_yamnet(weights: YamnetWeights | None = None, activation: str | None = None):
    """The whole network: (96, 64) log-mel patch in nats -> (scores[521], embedding[1024], logits[521])."""
    import keras  # Keras 3 itself, whatever TF_USE_LEGACY_KERAS makes tf.keras mean
    activation = activation or (weights.activation if weights else "relu")
    inp = keras.Input(shape=(PATCH_FRAMES, NUM_MEL), name="log_mel")
    x = keras.layers.Reshape((PATCH_FRAMES, NUM_MEL, 1), name="add_channel")(inp)
    for i in range(1, len(LAYER_DEFS) + 1):
        x = _block(x, i, activation)
    emb = keras.layers.GlobalAveragePooling2D(name="embedding")(x)
    logits = keras.layers.Dense(NUM_CLASSES, name="logits")(emb)
    scores = keras.layers.Activation("sigmoid", name="scores")(logits)
    model = keras.Model(inp, [scores, emb, logits], name="yamnet")
    if weights is not None:
        assign(model, weights)
    return model


def assign(model, weights: YamnetWeights) -> None:
    """Copy folded weights into every layer of `model` that has a YAMNet name."""
    weights.check()
    names = {layer.name for layer in model.layers}
    for spec in conv_specs():
        if spec.name in names:
            model.get_layer(spec.name).set_weights([weights.kernels[spec.name], weights.biases[spec.name]])


def load_class_names(class_map_csv) -> list[str]:
    import csv
    with open(class_map_csv, newline="") as f:
        return [row["display_name"] for row in csv.DictReader(f)]
