"""A 1x1 convolution that trains as a matrix multiplication.

A pointwise convolution is a matrix product over the channel axis. At the teacher's small maps and many
channels (YAMNet's top blocks: 6x4 and 3x2 positions, 512 and 1024 channels) TensorFlow's CPU Conv2D
trains about three times slower than MatMul does (`python -m bowlsense.train.bench`); at the student's
larger maps and few channels the two are equally fast, so the student keeps Keras's Conv2D.

PointwiseConv2D is Keras's Conv2D with the same kernel, bias and activation; only a training step
(`training=True`) takes the matrix path. Inference (frozen activations, scoring, validation) is Conv2D's
own code. Keras names variables in a weights file after layer classes, so checkpoints written with Conv2D
layers do not load into these: train/pipeline.py keys checkpoints by CHECKPOINT_FORMAT.
"""
from __future__ import annotations

import keras

# Part of every checkpoint's key (train/pipeline.py). 2: pointwise convolutions are PointwiseConv2D.
CHECKPOINT_FORMAT = 2


@keras.saving.register_keras_serializable(package="bowlsense")
class PointwiseConv2D(keras.layers.Conv2D):
    """Conv2D(filters, 1): 1x1 kernel, stride 1, channels last, no groups (enforced at construction)."""

    # False: train through Conv2D's own code too (the baseline of the bench and the tests). Read when the
    # training step is traced, so set it on a layer before its model's first step.
    train_as_matmul = True

    def __init__(self, filters: int, **kwargs):
        kwargs.setdefault("kernel_size", 1)
        super().__init__(filters, **kwargs)
        if (self.kernel_size != (1, 1) or self.strides != (1, 1) or self.dilation_rate != (1, 1)
                or self.groups != 1 or self.data_format != "channels_last"):
            raise ValueError("PointwiseConv2D is a 1x1, stride 1, channels-last convolution without groups")

    def call(self, inputs, training=None):
        if not (training and self.train_as_matmul):
            return super().call(inputs)
        outputs = keras.ops.matmul(inputs, self.kernel[0, 0])
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs



def train_as_matmul(model, on: bool) -> int:
    """Set train_as_matmul on every PointwiseConv2D in model (nested models included); returns how many."""
    count = 0
    for layer in model.layers:
        if isinstance(layer, PointwiseConv2D):
            layer.train_as_matmul = on
            count += 1
        elif hasattr(layer, "layers"):
            count += train_as_matmul(layer, on)
    return count
