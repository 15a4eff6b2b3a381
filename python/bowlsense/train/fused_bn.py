"""Batch normalization that trains through TensorFlow's fused kernel.

Keras 3 normalizes a training batch with separate ops (moments, then scale and shift), and their gradients
are separate ops again: on these CPUs that was about 45% of a student training step. TensorFlow's fused
kernel (FusedBatchNormV3 and its gradient) does the same arithmetic in one pass each way.

Only training takes the fused path. Inference (`training=False`: validation, prediction, the TFLite
converter) is Keras's own code, so the exported model is the same graph as with Keras's layer. The weights
are the same four variables, so checkpoints move between the two. One difference is corrected here: the
fused kernel returns the batch variance with Bessel's correction, and Keras averages the uncorrected
variance into `moving_variance`. tests/test_train_units.py checks outputs, gradients and moving statistics
against Keras's layer.
"""
from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="bowlsense")
class FusedBatchNormalization(keras.layers.BatchNormalization):

    def _fusable(self, inputs, training, mask) -> bool:
        # The fused kernel normalizes the last axis of a 4-D float32 tensor, with both gamma and beta.
        return bool(training) and self.trainable and mask is None and not self.renorm and self.scale \
            and self.center and len(inputs.shape) == 4 and self.axis in (-1, 3) and inputs.dtype == tf.float32

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
        n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), variance.dtype)
        variance = variance * (n - 1.0) / n  # undo Bessel's correction: Keras tracks the biased variance
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs
