"""The teacher: pretrained YAMNet with a new multi-label head, its top N blocks fine-tuned.

YAMNet's layers 1..(14 - N) stay frozen, so their output for each training window is computed once and
cached (float16); only the top N depthwise-separable blocks and the head train, on that cache. The head
is one sigmoid per label: several sounds can be present at once (speech while eating), and "background"
is no label active.
"""
from __future__ import annotations

import numpy as np

from . import yamnet
from .features import to_nats

TOTAL_LAYERS = len(yamnet.LAYER_DEFS)  # 14: the first convolution + 13 blocks


def frozen_layers(unfrozen_blocks: int) -> int:
    if not 0 <= unfrozen_blocks <= yamnet.NUM_BLOCKS:
        raise ValueError(f"unfrozen blocks must be 0..{yamnet.NUM_BLOCKS}, got {unfrozen_blocks}")
    return TOTAL_LAYERS - unfrozen_blocks


def build_frozen(weights: yamnet.YamnetWeights, unfrozen_blocks: int):
    """(96, 64) nats -> output of the last frozen layer."""
    import keras  # Keras 3 itself, whatever TF_USE_LEGACY_KERAS makes tf.keras mean
    last = frozen_layers(unfrozen_blocks)
    inp = keras.Input(shape=(yamnet.PATCH_FRAMES, yamnet.NUM_MEL), name="log_mel")
    x = keras.layers.Reshape((yamnet.PATCH_FRAMES, yamnet.NUM_MEL, 1))(inp)
    trunk = yamnet.build_trunk(1, last, weights.activation, name="yamnet_frozen")
    yamnet.assign(trunk, weights)
    trunk.trainable = False
    return keras.Model(inp, trunk(x), name="teacher_frozen")


# YAMNet's own AudioSet classes (yamnet_class_map.csv indices) closest to each of our labels. The new head
# starts as YAMNet's classifier for them (the mean of their logit weights) instead of from random weights,
# so fine-tuning starts from a detector that has seen AudioSet's variety of non-speech sounds rather than
# only the few hundred background windows of this dataset.
AUDIOSET_CLASSES = {
    "speech": (0, 1, 2, 3),          # Speech, Child speech, Conversation, Narration
    "eating": (49, 50, 493),         # Chewing/mastication, Biting, Crunch
    "drinking": (364, 438, 443),     # Water tap/faucet, Liquid, Pour
    "bowl": (358, 359, 436),         # Dishes/pots/pans, Cutlery/silverware, Chink/clink
}


def audioset_head(weights: yamnet.YamnetWeights, labels) -> tuple[np.ndarray, np.ndarray] | None:
    """(kernel (1024, n), bias (n)) for the head from YAMNet's logits layer, or None when any label has no
    AudioSet counterpart or the weights carry no classifier."""
    if any(l not in AUDIOSET_CLASSES for l in labels) or "logits" not in weights.kernels:
        return None
    k, b = weights.kernels["logits"], weights.biases["logits"]
    kernel = np.stack([k[:, list(AUDIOSET_CLASSES[l])].mean(axis=1) for l in labels], axis=1)
    bias = np.array([b[list(AUDIOSET_CLASSES[l])].mean() for l in labels], np.float32)
    return kernel.astype(np.float32), bias


def build_top(weights: yamnet.YamnetWeights, unfrozen_blocks: int, n_labels: int, dropout: float = 0.2,
              head_init: tuple[np.ndarray, np.ndarray] | None = None, mask: float = 0.0, anchor: float = 0.0):
    """Cached activations -> the unfrozen blocks (initialised from YAMNet) -> embedding -> sigmoid head
    (initialised from head_init = (kernel, bias) when given, see audioset_head).

    mask: while training, each time row and each frequency column of the cached activations is zeroed
    with this probability (SpecAugment's masks, on the frozen layers' output: the input itself is not
    seen again once its activations are cached). 0 builds the model without the masking layers.
    anchor: see anchor_to_pretrained (0: none)."""
    import keras  # Keras 3 itself, whatever TF_USE_LEGACY_KERAS makes tf.keras mean
    first = frozen_layers(unfrozen_blocks) + 1
    inp = keras.Input(shape=yamnet.layer_output_shape(first - 1), name="frozen_activations")
    x = inp
    if mask > 0:
        x = keras.layers.Dropout(mask, noise_shape=(None, x.shape[1], 1, 1), name="mask_time")(x)
        x = keras.layers.Dropout(mask, noise_shape=(None, 1, x.shape[2], 1), name="mask_frequency")(x)
    if unfrozen_blocks:
        blocks = yamnet.build_trunk(first, TOTAL_LAYERS, weights.activation, name="yamnet_top")
        yamnet.assign(blocks, weights)
        if anchor > 0:
            anchor_to_pretrained(blocks, anchor)
        x = blocks(x)
    x = keras.layers.GlobalAveragePooling2D(name="embedding")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    head = keras.layers.Dense(n_labels, activation="sigmoid", name="head")
    out = head(x)
    if head_init is not None:
        head.set_weights([np.asarray(head_init[0], np.float32), np.asarray(head_init[1], np.float32)])
    return keras.Model(inp, out, name="teacher_top")


def anchor_to_pretrained(layers, strength: float) -> None:
    """Add strength * sum((w - w0)^2) to the training loss for each trainable weight of `layers`, w0 its
    value now (the pretrained one): L2-SP (Li et al., 2018), weight decay towards the starting point
    instead of towards zero, so a fine-tune on a few hundred clips keeps what YAMNet learnt from
    AudioSet unless the data pays for the change.

    Keras adds a variable's regularizer to the loss of every training step (Layer.losses); it is not part
    of the saved weights, so a checkpoint resumes only into a model built with the same anchor (the
    checkpoint key holds it, train/pipeline.py)."""
    import keras
    if strength <= 0:
        raise ValueError(f"anchor strength must be positive, got {strength}")
    for v in layers.trainable_weights:
        start = keras.ops.convert_to_tensor(np.asarray(v.numpy(), np.float32))
        v.regularizer = lambda w, start=start: strength * keras.ops.sum(keras.ops.square(w - start))


def activations(frozen, patches_q10: np.ndarray, batch_size: int = 64, desc: str = "YAMNet frozen layers") -> np.ndarray:
    """Frozen-layer outputs for int16 Q10 patches, float16 (half the memory; the top trains in float32)."""
    from tqdm import tqdm
    out = None
    for start in tqdm(range(0, len(patches_q10), batch_size), desc=desc, unit="batch", leave=False):
        a = frozen(to_nats(patches_q10[start:start + batch_size]), training=False).numpy().astype(np.float16)
        if out is None:
            out = np.empty((len(patches_q10),) + a.shape[1:], np.float16)
        out[start:start + len(a)] = a
    if out is None:
        out = np.zeros((0,) + yamnet.layer_output_shape(frozen_layers(0)), np.float16)
    return out


def pretrained_embeddings(weights: yamnet.YamnetWeights, unfrozen_blocks: int, acts: np.ndarray,
                          batch_size: int = 256) -> np.ndarray:
    """YAMNet's own 1024-d embedding of each window (its pretrained top blocks, not the fine-tuned ones),
    from the cached frozen activations: (n, 1024) float32."""
    import keras
    top = build_top(weights, unfrozen_blocks, n_labels=1)
    embed = keras.Model(top.input, top.get_layer("embedding").output, name="yamnet_embedding")
    out = np.empty((len(acts), yamnet.EMBEDDING_SIZE), np.float32)
    for start in range(0, len(acts), batch_size):
        out[start:start + batch_size] = embed(acts[start:start + batch_size].astype(np.float32), training=False)
    return out


def what_yamnet_hears(model, patches_q10: np.ndarray, class_names: list[str], top: int = 2) -> list[tuple[str, float]]:
    """Pretrained YAMNet's (`yamnet.build_yamnet`) verdict on a clip, independent of our labels and of
    any model trained on them: its top AudioSet class in each window, the `top` most frequent with the
    share of windows they win (only classes that win a window). A clip labelled background where YAMNet
    hears Speech is worth a listen."""
    if len(patches_q10) == 0:
        return []
    winners = np.argmax(model(to_nats(patches_q10), training=False)[0].numpy(), axis=1)
    counts = np.bincount(winners, minlength=len(class_names))
    return [(class_names[i], float(counts[i] / len(winners))) for i in np.argsort(-counts, kind="stable")[:top]
            if counts[i]]


class Teacher:
    """Frozen part + fine-tuned top as one scorer: int16 Q10 patches -> (n, labels) probabilities."""

    def __init__(self, frozen, top):
        self.frozen, self.top = frozen, top
        self._compiled = None  # scores_from_nats's graph, traced on first use

    def scores_from_activations(self, acts: np.ndarray, batch_size: int = 256) -> np.ndarray:
        if len(acts) == 0:
            return np.zeros((0, self.top.output_shape[-1]), np.float32)
        return self.top.predict(acts.astype(np.float32), batch_size=batch_size, verbose=0).astype(np.float32)

    def __call__(self, patches_q10: np.ndarray) -> np.ndarray:
        return self.scores_from_activations(activations(self.frozen, patches_q10, desc="teacher"))

    def scores_from_nats(self, x: np.ndarray) -> np.ndarray:
        """One batch of float patches in nats, (n, 96, 64): the teacher's scores of exactly what the student is
        shown after augmentation and mixing (distill's live teacher).

        Called once per student batch, so it runs as one traced graph: calling the Keras models eagerly
        dispatches YAMNet layer by layer from Python, 2.5 times as slow for the same scores
        (`python -m bowlsense.train.bench --live-teacher`)."""
        if self._compiled is None:
            import tensorflow as tf
            spec = tf.TensorSpec((None, yamnet.PATCH_FRAMES, yamnet.NUM_MEL), tf.float32)
            self._compiled = tf.function(self.scores_eagerly, input_signature=[spec], reduce_retracing=True)
        return np.asarray(self._compiled(np.asarray(x, np.float32)), np.float32)

    def scores_eagerly(self, x):
        """scores_from_nats layer by layer, without the graph (the benchmark's baseline; the same numbers)."""
        return self.top(self.frozen(x, training=False), training=False)
