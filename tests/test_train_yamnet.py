"""The Keras YAMNet and its weight loaders: checked against the real pretrained TFLite file, and against an
unfolded reference network (conv, batch norm, ReLU) for the h5 and TF Hub / SavedModel loaders."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")  # a hard dependency of bowlsense; never missing in CI

from bowlsense.train import weights as wl  # noqa: E402
from bowlsense.train import yamnet  # noqa: E402


def _tflite_logits(path, patch):
    """Run the pretrained TFLite file with reference kernels; read its int8 logits before the LOGISTIC."""
    it = tf.lite.Interpreter(str(path), experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF,
                             experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], patch[None].astype(np.float32))
    it.invoke()
    scores = it.get_tensor(it.get_output_details()[0]["index"])[0]
    fc = [op for op in it._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"][0]
    detail = [d for d in it.get_tensor_details() if d["index"] == fc["outputs"][0]][0]
    q = detail["quantization_parameters"]
    logits = (it.get_tensor(detail["index"])[0].astype(np.float64) - q["zero_points"][0]) * q["scales"][0]
    return scores, logits


def _same_top5(ours_logits, ref_logits):
    """Our top 5 equal the reference's, where the reference's int8 logits may tie at the 5th place."""
    ours = list(np.argsort(-ours_logits)[:5])
    fifth = np.sort(ref_logits)[-5]
    strictly_above = set(np.flatnonzero(ref_logits > fifth))
    assert strictly_above <= set(ours), (ours, sorted(strictly_above))
    assert all(ref_logits[i] >= fifth for i in ours), (ours, ref_logits[ours], fifth)


@pytest.fixture(scope="module")
def coral(yamnet_dir):
    path = yamnet_dir / wl.CORAL_TFLITE
    w = wl.load(str(path))
    return path, w, yamnet.build_yamnet(w)


def test_tflite_loader_matches_pretrained_file_on_coral_patch(coral, yamnet_dir):
    path, w, model = coral
    assert w.activation == "relu6"  # Coral trained/quantized with ReLU6 (activation range exactly [0, 6])
    patch = np.fromfile(yamnet_dir / "coral_test_logmel_f32.bin", "<f4").reshape(96, 64)
    scores, emb, logits = (t.numpy()[0] for t in model(patch[None]))
    ref_scores, ref_logits = _tflite_logits(path, patch)
    assert emb.shape == (1024,)
    _same_top5(logits, ref_logits)
    assert np.max(np.abs(scores - ref_scores)) <= 0.05
    names = yamnet.load_class_names(yamnet_dir / "yamnet_class_map.csv")
    assert names[int(np.argmax(scores))] == "Speech"  # Coral's test clip is speech


def test_tflite_loader_matches_on_real_clips(coral, shared_data_dir):
    """Real clips through the project's own front end: same top 5 as the TFLite file, scores within 0.05."""
    from bowlsense.train import features
    path, _w, model = coral
    rows = ["audio/speech/speech_commands/three_3c257192_nohash_0.wav", "audio/kitchen20/2-353612-A-16.wav",
            "audio/kitchen20/6-L-Assiettes.3gp-B-18.wav"]
    for row in rows:
        patches = features.clip_patches(shared_data_dir / row)
        assert len(patches) >= 1, row
        patch = features.to_nats(patches[0])
        scores, _e, logits = (t.numpy()[0] for t in model(patch[None]))
        ref_scores, ref_logits = _tflite_logits(path, patch)
        _same_top5(logits, ref_logits)
        assert np.max(np.abs(scores - ref_scores)) <= 0.05, row


# -- unfolded reference network with YAMNet's variable names --------------------------------------------

def _random_unfolded(seed=0):
    """Random YAMNet weights in Google's unfolded form: {variable path: array}."""
    rng = np.random.default_rng(seed)
    named = {}
    for spec in yamnet.conv_specs():
        if spec.kind == "dense":
            named["logits/kernel"] = rng.normal(0, 0.05, spec.kernel_shape).astype(np.float32)
            named["logits/bias"] = rng.normal(0, 0.1, spec.bias_shape).astype(np.float32)
            continue
        fan_in = np.prod(spec.kernel_shape[:3]) if spec.kind != "depthwise" else 9
        key = "depthwise_kernel" if spec.kind == "depthwise" else "kernel"
        named[f"{spec.yamnet_name}/{key}"] = rng.normal(0, 1.5 / np.sqrt(fan_in), spec.kernel_shape).astype(np.float32)
        n = spec.bias_shape[0]
        named[f"{spec.yamnet_name}/bn/beta"] = rng.normal(0, 0.2, n).astype(np.float32)
        named[f"{spec.yamnet_name}/bn/moving_mean"] = rng.normal(0, 0.2, n).astype(np.float32)
        named[f"{spec.yamnet_name}/bn/moving_variance"] = rng.uniform(0.5, 2.0, n).astype(np.float32)
    return named


def _reference_forward(named, patch):
    """YAMNet as Google wrote it (conv without bias, batch norm, ReLU), in plain TensorFlow ops."""
    x = tf.constant(patch[None, :, :, None], tf.float32)
    for i, (kind, stride, _f) in enumerate(yamnet.LAYER_DEFS, start=1):
        parts = [("conv", "kernel")] if kind == "conv" else [("depthwise_conv", "depthwise_kernel"),
                                                             ("pointwise_conv", "kernel")]
        for part, key in parts:
            k = named[f"layer{i}/{part}/{key}"]
            if part == "depthwise_conv":
                x = tf.nn.depthwise_conv2d(x, k, [1, stride, stride, 1], "SAME")
            else:
                x = tf.nn.conv2d(x, k, stride if part == "conv" else 1, "SAME")
            bn = f"layer{i}/{part}/bn/"
            x = tf.nn.batch_normalization(x, named[bn + "moving_mean"], named[bn + "moving_variance"],
                                          named[bn + "beta"], None, 1e-4)
            x = tf.nn.relu(x)
    emb = tf.reduce_mean(x, axis=[1, 2])
    return (tf.matmul(emb, named["logits/kernel"]) + named["logits/bias"]).numpy()[0]


@pytest.fixture(scope="module")
def unfolded():
    named = _random_unfolded()
    patch = np.random.default_rng(1).uniform(-7, 3, (96, 64)).astype(np.float32)
    return named, patch, _reference_forward(named, patch)


def _check_folded(w, patch, ref_logits):
    assert w.activation == "relu"
    logits = yamnet.build_yamnet(w)(patch[None])[2].numpy()[0]
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-3, atol=1e-3 * np.abs(ref_logits).max())


def test_h5_loader_folds_batch_norm(tmp_path, unfolded):
    import h5py
    named, patch, ref = unfolded
    path = tmp_path / "yamnet.h5"
    with h5py.File(path, "w") as f:  # Keras 2 layout: <layer name>/<weight name>:0, '/' nesting groups
        for key, value in named.items():
            layer = key.rsplit("/", 1)[0]
            layer = layer[: -len("/bn")] + "/bn" if layer.endswith("/bn") else layer
            f.create_dataset(f"{layer}/{key}:0", data=value)
    _check_folded(wl.load(str(path)), patch, ref)


class _Module(tf.Module):
    def __init__(self, named):
        super().__init__()
        self.vars = [tf.Variable(v, name=k) for k, v in named.items()]


def test_hub_loader_savedmodel_dir_and_cached_handle(tmp_path, unfolded, monkeypatch):
    named, patch, ref = unfolded
    saved = tmp_path / "yamnet_savedmodel"
    tf.saved_model.save(_Module(named), str(saved))
    _check_folded(wl.load(str(saved)), patch, ref)
    # A handle resolves offline to $TFHUB_CACHE_DIR/<sha1 of the handle>/.
    handle = "https://tfhub.dev/google/yamnet/1"
    cache = tmp_path / "hub_cache"
    tf.saved_model.save(_Module(named), str(cache / hashlib.sha1(handle.encode()).hexdigest()))
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    monkeypatch.setenv(wl.ENV_VAR, handle)
    _check_folded(wl.load(None), patch, ref)


def test_missing_and_wrong_weights_say_what_to_do(tmp_path, monkeypatch):
    import h5py
    monkeypatch.delenv(wl.ENV_VAR, raising=False)
    monkeypatch.setenv("BOWLSENSE_SHARED", str(tmp_path / "nowhere"))
    with pytest.raises(wl.YamnetWeightsError, match="--yamnet"):
        wl.load(None)
    with pytest.raises(wl.YamnetWeightsError, match="no such file"):
        wl.load(str(tmp_path / "missing.tflite"))
    # A TFLite file that is not YAMNet.
    small = tf.keras.Sequential([tf.keras.Input((8,)), tf.keras.layers.Dense(3)])
    bad = tmp_path / "not_yamnet.tflite"
    bad.write_bytes(tf.lite.TFLiteConverter.from_keras_model(small).convert())
    with pytest.raises(wl.YamnetWeightsError, match="not a YAMNet network"):
        wl.load(str(bad))
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(wl.YamnetWeightsError, match="not a readable TFLite"):
        wl.load(str(garbage))
    # An h5 with YAMNet's names but one layer of the wrong width.
    named = _random_unfolded()
    named["layer5/pointwise_conv/kernel"] = named["layer5/pointwise_conv/kernel"][..., :100]
    for k in ("beta", "moving_mean", "moving_variance"):
        named[f"layer5/pointwise_conv/bn/{k}"] = named[f"layer5/pointwise_conv/bn/{k}"][:100]
    path = tmp_path / "wrong.h5"
    with h5py.File(path, "w") as f:
        for key, value in named.items():
            f.create_dataset(key, data=value)
    with pytest.raises(wl.YamnetWeightsError, match="layer5/pointwise_conv"):
        wl.load(str(path))


def test_audioset_head_starts_as_yamnets_own_classifier(coral, yamnet_dir):
    """With the head from audioset_head, the teacher's logit for a label is the mean of YAMNet's logits for
    that label's AudioSet classes (looked up by name here, not by the index table under test)."""
    from bowlsense.train import teacher
    _path, w, model = coral
    labels = ("eating", "drinking", "bowl", "speech")
    names = yamnet.load_class_names(yamnet_dir / "yamnet_class_map.csv")
    by_name = {"speech": ["Speech", "Child speech, kid speaking", "Conversation", "Narration, monologue"],
               "eating": ["Chewing, mastication", "Biting", "Crunch"],
               "drinking": ["Water tap, faucet", "Liquid", "Pour"],
               "bowl": ["Dishes, pots, and pans", "Cutlery, silverware", "Chink, clink"]}
    top = teacher.build_top(w, 0, len(labels), head_init=teacher.audioset_head(w, labels))
    frozen = teacher.build_frozen(w, 0)
    patch = np.fromfile(yamnet_dir / "coral_test_logmel_f32.bin", "<f4").reshape(96, 64)
    rng = np.random.default_rng(0)
    patches = np.stack([patch, patch + rng.normal(0, 0.5, patch.shape).astype(np.float32)])
    _scores, _emb, logits = (t.numpy() for t in model(patches))
    acts = frozen(patches, training=False).numpy()
    got = top(acts, training=False).numpy()
    for k, label in enumerate(labels):
        idx = [names.index(n) for n in by_name[label]]
        want = 1 / (1 + np.exp(-logits[:, idx].mean(axis=1)))
        assert np.allclose(got[:, k], want, atol=1e-4), label
    assert teacher.audioset_head(w, ("eating", "barking")) is None  # no counterpart: a fresh head


def test_pretrained_embeddings_from_cached_activations_equal_the_whole_network(coral, yamnet_dir):
    from bowlsense.train import teacher
    _, w, model = coral
    patches = np.random.default_rng(2).uniform(-7, 3, (3, 96, 64)).astype(np.float32)
    patches[0] = np.fromfile(yamnet_dir / "coral_test_logmel_f32.bin", "<f4").reshape(96, 64)
    whole = model(patches)[1].numpy()
    acts = teacher.build_frozen(w, 9)(patches).numpy()
    got = teacher.pretrained_embeddings(w, 9, acts, batch_size=2)
    np.testing.assert_allclose(got, whole, rtol=1e-4, atol=1e-4 * np.abs(whole).max())


def test_what_yamnet_hears_counts_each_windows_top_class(coral, yamnet_dir):
    from bowlsense.train import teacher
    _, _, model = coral
    names = wl.class_names(str(yamnet_dir / wl.CORAL_TFLITE))
    assert len(names) == 521 and names[0] == "Speech"
    speech = np.fromfile(yamnet_dir / "coral_test_logmel_f32.bin", "<f4").reshape(96, 64)
    silence = np.full((96, 64), np.log(0.001), np.float32)  # the front end's floor
    q10 = np.round(np.stack([speech, speech, silence]) * 1024).astype(np.int16)
    heard = teacher.what_yamnet_hears(model, q10, names)
    assert heard == [("Speech", pytest.approx(2 / 3)), ("Silence", pytest.approx(1 / 3))]
    assert teacher.what_yamnet_hears(model, q10[:2], names) == [("Speech", 1.0)]  # no class that won nothing
    assert teacher.what_yamnet_hears(model, q10[:0], names) == []


def test_teacher_mask_drops_whole_rows_and_columns_while_training_only(coral):
    """--teacher-mask: in training, each time row and each frequency column of the cached activations is
    zeroed with probability P (the rest scaled by 1/(1-P) per mask, as dropout does); at inference the
    model is the unmasked one with the same weights."""
    import keras

    from bowlsense.train import teacher
    _path, w, _model = coral
    p = 0.3
    masked = teacher.build_top(w, 9, 4, mask=p)
    plain = teacher.build_top(w, 9, 4)
    plain.set_weights(masked.get_weights())
    shape = masked.input.shape[1:]
    rng = np.random.default_rng(0)
    acts = rng.uniform(0, 6, size=(3,) + tuple(shape)).astype(np.float32)
    assert np.allclose(masked(acts, training=False).numpy(), plain(acts, training=False).numpy(), atol=1e-6)

    upto = keras.Model(masked.input, masked.get_layer("mask_frequency").output)
    out = upto(np.ones((400,) + tuple(shape), np.float32), training=True).numpy()[..., 0]
    rows_dropped = (out == 0).all(axis=2)      # (n, time rows)
    cols_dropped = (out == 0).all(axis=1)      # (n, frequency columns)
    zero_by_rule = rows_dropped[:, :, None] | cols_dropped[:, None, :]
    assert np.array_equal(out == 0, zero_by_rule)           # nothing zeroed but whole rows and columns
    assert np.allclose(out[~zero_by_rule], 1 / (1 - p) ** 2)  # the kept cells, scaled by both masks
    # Whether a row is dropped, seen through the columns: a row counts as dropped when every column is
    # zero, which also happens when all columns are dropped (p^8 per row, negligible).
    assert abs(rows_dropped.mean() - p) < 0.05 and abs(cols_dropped.mean() - p) < 0.05


def test_teacher_anchor_pulls_the_fine_tuned_blocks_towards_yamnet(coral):
    """--teacher-anchor A (L2-SP): the training loss gains A * sum((w - w0)^2) over the unfrozen blocks'
    weights, zero at YAMNet's own weights; the new head is not anchored. Trained on the same batches, an
    anchored top ends nearer YAMNet than a free one."""
    import keras

    from bowlsense.train import teacher
    _path, w, _model = coral
    strength = 0.5
    anchored = teacher.build_top(w, 2, 4, anchor=strength)
    assert float(sum(anchored.losses)) == 0.0
    blocks = anchored.get_layer("yamnet_top")
    kernel = blocks.trainable_weights[0]
    start = kernel.numpy()
    kernel.assign(start + 0.01)
    assert float(sum(anchored.losses)) == pytest.approx(strength * 1e-4 * start.size, rel=1e-3)
    kernel.assign(start)
    head = anchored.get_layer("head").kernel
    head.assign(head.numpy() + 1.0)
    assert float(sum(anchored.losses)) == 0.0

    free = teacher.build_top(w, 2, 4)
    free.set_weights(anchored.get_weights())
    shape = (8,) + tuple(anchored.input.shape[1:])
    rng = np.random.default_rng(0)
    batches = [(rng.uniform(0, 6, shape).astype(np.float32), rng.integers(0, 2, (8, 4)).astype(np.float32))
               for _ in range(10)]
    yamnet_weights = [v.numpy() for v in blocks.trainable_weights]

    def drift(model):
        for x, y in batches:
            model.train_on_batch(x, y)
        now = model.get_layer("yamnet_top").trainable_weights
        return sum(float(np.sum((v.numpy() - w0) ** 2)) for v, w0 in zip(now, yamnet_weights))

    for model in (anchored, free):
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss=keras.losses.BinaryCrossentropy())
    free_drift, anchored_drift = drift(free), drift(anchored)
    assert 0 < anchored_drift < 0.5 * free_drift
    with pytest.raises(ValueError, match="positive"):
        teacher.anchor_to_pretrained(blocks, 0.0)
