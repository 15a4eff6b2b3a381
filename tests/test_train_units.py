"""Small, hand-checkable pieces of training: input quantization, student budgets, metrics, checkpoints.
(How training windows are planned and regenerated: test_train_lineage.py.)"""
from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from bowlsense.manifest import Threshold
from bowlsense.train import evaluation, examples, features


def test_quantize_input_is_tflite_quantize_arithmetic():
    # scale 0.5 nats: Q10 values chosen so x / scale lands on .5 ties, both signs.
    q10 = np.array([0, 256, -256, 512, 1280, -1280, 1023], np.int16)
    got = features.quantize_input(q10, 0.5, -3)
    # x = q10 / 1024; x / 0.5 = 0, 0.5, -0.5, 1, 2.5, -2.5, 1.998; ties go away from zero; + zero point -3.
    assert got.tolist() == [-3, -2, -4, -2, 0, -6, -1]
    assert got.dtype == np.int8
    # Out of the int8 range: clamped.
    assert features.quantize_input(np.array([32767, -32768], np.int16), 0.1, 0).tolist() == [127, -128]


def test_quantize_input_matches_the_engine_edge():
    """Same bits as bowlsense.nn's float QUANTIZE edge (TFLite's arithmetic) on every int16 value."""
    nn = pytest.importorskip("bowlsense.nn.fixedpoint")
    q10 = np.arange(-32768, 32768, dtype=np.int64).astype(np.int16)
    scale, zp = 15.0 / 255.0, -9
    x = features.to_nats(q10)
    want = np.clip(nn.round_half_away_f32(x / np.float32(scale)).astype(np.float64) + zp, -128, 127).astype(np.int8)
    assert np.array_equal(features.quantize_input(q10, scale, zp), want)


def test_student_budgets_and_cost_count():
    pytest.importorskip("tensorflow")
    from bowlsense.train.student import BudgetError, StudentConfig, build_student, count_cost
    cfg = StudentConfig(stem_filters=4, blocks=((2, 8),))
    m = build_student(2, cfg)
    cost = count_cost(m)
    # stem: 48x32 outputs x 4 ch x 9 taps; dw: 24x16 x 4 x 9; pw: 24x16 x 8 x 4; dense: 8 x 2
    assert cost["macs"] == 48 * 32 * 4 * 9 + 24 * 16 * 4 * 9 + 24 * 16 * 8 * 4 + 8 * 2
    assert cost["weight_bytes"] == 9 * 4 + 9 * 4 + 4 * 8 + 8 * 2
    with pytest.raises(BudgetError, match="MACs"):
        build_student(2, StudentConfig(stem_filters=4, blocks=((2, 8),), max_macs=1000))
    with pytest.raises(BudgetError, match="bytes"):
        build_student(2, StudentConfig(stem_filters=4, blocks=((2, 8),), max_weight_bytes=100))


def _evalset(targets, group, other, snr):
    n = len(targets)
    w = examples.Windows(np.zeros((n, 96, 64), np.int16), np.array(targets, np.float32), ["x"] * n,
                         [f"w{i}" for i in range(n)], np.array(snr, np.float32))
    return evaluation.EvalSet(("eating", "speech"), w, group, other)


def test_measure_counts_by_hand():
    nan = np.nan
    es = _evalset(
        targets=[[1, 0], [1, 0], [0, 0], [0, 0], [0, 1], [0, 1], [0, 1], [1, 0]],
        group=["single", "single", "single", "single", "single", "privacy", "privacy", "eating_bg"],
        other=["", "", "", "", "", "eating", "background", "background"],
        snr=[nan, nan, nan, nan, nan, 0.0, 0.0, 0.0])
    scores = np.array([[0.9, 0.1], [0.2, 0.0], [0.6, 0.0], [0.1, 0.7], [0.0, 0.8], [0.0, 0.6], [0.0, 0.3],
                       [0.7, 0.0]])
    m = evaluation.measure(es, scores, {"eating": Threshold(0.5, 0.3), "speech": Threshold(0.5, 0.3)})
    # eating on single windows: tp=1 (w0), fn=1 (w1), fp=1 (w2)
    assert m["per_class"]["eating"]["tp"] == 1 and m["per_class"]["eating"]["fn"] == 1
    assert m["per_class"]["eating"]["precision"] == pytest.approx(0.5)
    # speech: tp=1 (w4), fp=1 (w3)
    assert m["per_class"]["speech"]["f1"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert m["background_false_event"] == pytest.approx(1.0)  # both background windows fire something
    assert m["speech_detect"]["+0dB"]["all"] == pytest.approx(0.5)
    assert m["speech_detect"]["+0dB"]["eating"] == pytest.approx(1.0)
    assert m["speech_detect"]["+0dB"]["background"] == pytest.approx(0.0)
    # speech-free windows: w0, w1, w2, w3, w7 -> one false positive (w3)
    assert m["speech_false_positive"] == pytest.approx(1 / 5)
    assert m["eating_detect_alone"] == pytest.approx(0.5)
    assert m["eating_detect_0dB_under_background"] == pytest.approx(1.0)
    classes, mat = evaluation.confusion(scores[:5], es.windows.targets[:5], ["eating", "speech"], np.array([0.5, 0.5]))
    assert classes == ["eating", "speech", "background"]
    assert mat.tolist() == [[1, 0, 1], [0, 1, 0], [1, 1, 0]]


def test_corrupt_checkpoint_names_the_file(tmp_path):
    pytest.importorskip("tensorflow")
    from bowlsense.train import fit
    from bowlsense.train.student import StudentConfig, build_student
    model = build_student(2, StudentConfig(stem_filters=4, blocks=((2, 8),)))
    x = np.zeros((4, 96, 64, 1), np.float32)
    y = np.zeros((4, 2), np.float32)
    ck = tmp_path / "ck"
    h = fit.fit(model, x, y, epochs=1, batch_size=2, learning_rate=1e-3, checkpoint=ck, desc="t", seed=0)
    assert len(h["loss"]) == 1
    # A finished run asked again is reused as it is (history and all).
    assert fit.fit(model, x, y, epochs=1, batch_size=2, learning_rate=1e-3, checkpoint=ck, desc="t", seed=0) == h
    # A run of another length is refused, not continued: its learning-rate schedule and weight average
    # span the whole run.
    with pytest.raises(fit.CheckpointError, match=r"ck belongs to a run of 1 epochs, this one asks for 2"):
        fit.fit(model, x, y, epochs=2, batch_size=2, learning_rate=1e-3, checkpoint=ck, desc="t", seed=0)
    (ck / "model.weights.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(fit.CheckpointError, match=r"ck.*corrupt.*delete that folder"):
        fit.fit(model, x, y, epochs=1, batch_size=2, learning_rate=1e-3, checkpoint=ck, desc="t", seed=0)


def test_an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    """The checkpoint holds the optimizer's moments and the dropout layers' random state as well as the
    weights, so stopping after epoch 2 and running again ends with exactly the weights (and history) of a
    run that was never stopped. Before, a resumed run started a fresh Adam and fresh dropout draws."""
    pytest.importorskip("tensorflow")
    import keras

    from bowlsense.train import fit

    class Stop(Exception):
        pass

    def build():
        fit.set_seed(3)  # as a rerun of `bowlsense train` does before building its models
        inp = keras.Input((8,))
        h = keras.layers.Dropout(0.3)(keras.layers.Dense(16, activation="relu")(inp))
        return keras.Model(inp, keras.layers.Dense(2, activation="sigmoid")(h))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 8)).astype(np.float32)
    y = (x[:, :2] > 0).astype(np.float32)

    def noisy(xb, yb, draws):
        return xb + draws.normal(scale=0.1, size=xb.shape).astype(np.float32), yb

    made = []

    def stop_in_epoch_3(xb, yb, draws):  # 48 windows in batches of 16: batch 7 opens epoch 3
        made.append(1)
        if len(made) == 7:
            raise Stop()
        return noisy(xb, yb, draws)

    kwargs = dict(epochs=4, batch_size=16, learning_rate=1e-2, desc="t", seed=0)
    whole = build()
    h_whole = fit.fit(whole, x, y, checkpoint=tmp_path / "whole", augment=noisy, **kwargs)

    with pytest.raises(Stop):
        fit.fit(build(), x, y, checkpoint=tmp_path / "resumed", augment=stop_in_epoch_3, **kwargs)
    assert json.loads((tmp_path / "resumed" / "state.json").read_text())["epoch"] == 2
    resumed = build()
    h_resumed = fit.fit(resumed, x, y, checkpoint=tmp_path / "resumed", augment=noisy, **kwargs)
    assert h_resumed == h_whole
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        assert np.array_equal(a, b)


def test_prefetched_batches_are_the_batches_made_in_turn():
    """fit.batches with prefetch makes batch k + 1 in a worker thread while batch k is used, from the same
    rng draws in the same order: the same batches as without it, and an augment error still reaches fit."""
    import threading

    from bowlsense.train import fit
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    y = np.arange(10, dtype=np.float32)[:, None]
    order = np.random.default_rng(1).permutation(10)
    calls = []
    second_call = threading.Event()

    def augment(xb, yb, rng):
        calls.append(threading.current_thread().name)
        if len(calls) == 2:
            second_call.set()
        return xb + rng.normal(size=xb.shape), yb * 2

    in_turn = list(fit.batches(x, y, order, 4, augment, np.random.default_rng(5), prefetch=False))
    calls.clear()
    second_call.clear()
    ahead = fit.batches(x, y, order, 4, augment, np.random.default_rng(5), prefetch=True)
    first = next(ahead)
    # The second batch is made while the first is in use, in the worker, not when the caller asks for it.
    assert second_call.wait(timeout=10), "batch 2 was not made ahead"
    prefetched = [first] + list(ahead)
    assert len(in_turn) == len(prefetched) == 3 and [len(b[0]) for b in prefetched] == [4, 4, 2]
    for (xa, ya), (xb, yb) in zip(in_turn, prefetched):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    assert all(name.startswith("next-batch") for name in calls)
    # Each batch holds its own windows (order's slice) and its own draws: none repeats another.
    assert not np.array_equal(prefetched[0][0][:2], prefetched[1][0][:2])

    def broken(xb, yb, rng):
        raise ValueError("augment failed")
    with pytest.raises(ValueError, match="augment failed"):
        list(fit.batches(x, y, order, 4, broken, np.random.default_rng(5), prefetch=True))


def test_fit_returns_the_average_of_the_second_half_of_epochs(tmp_path):
    pytest.importorskip("tensorflow")
    from bowlsense.train import fit
    from bowlsense.train.student import StudentConfig, build_student
    cfg = StudentConfig(stem_filters=4, blocks=((2, 8),))
    model = build_student(2, cfg)
    rng = np.random.default_rng(0)
    x = rng.uniform(-7, 3, (8, 96, 64, 1)).astype(np.float32)
    y = rng.integers(0, 2, (8, 2)).astype(np.float32)
    start = model.get_weights()

    def raw_weights(ck):
        m = build_student(2, cfg)
        m.load_weights(str(ck / "model.weights.h5"))  # what the last epoch itself ended with
        return m.get_weights()

    class Stop(Exception):
        pass

    made = []

    def stop_in_epoch_4(xb, yb, draws):  # 8 windows in batches of 4: batch 7 opens epoch 4
        made.append(1)
        if len(made) == 7:
            raise Stop()
        return xb, yb

    kwargs = dict(epochs=4, batch_size=4, learning_rate=1e-2, desc="t", seed=0)
    stopped = build_student(2, cfg)
    stopped.set_weights(start)
    with pytest.raises(Stop):
        fit.fit(stopped, x, y, checkpoint=tmp_path / "stopped", augment=stop_in_epoch_4, **kwargs)
    w3 = raw_weights(tmp_path / "stopped")
    # epochs=4 averages from epoch index 2: epochs 3 and 4
    fit.fit(model, x, y, checkpoint=tmp_path / "ck", augment=lambda xb, yb, draws: (xb, yb), **kwargs)
    w4 = raw_weights(tmp_path / "ck")
    assert any(not np.array_equal(a, b) for a, b in zip(w3, w4))
    for got, a, b in zip(model.get_weights(), w3, w4):
        np.testing.assert_allclose(got, (a + b) / 2, rtol=1e-6, atol=1e-7)


def _graph_ops(fn, spec) -> set:
    import tensorflow as tf
    return {op.type for op in tf.function(fn).get_concrete_function(spec).graph.get_operations()}


def test_pointwise_conv_trains_as_a_matrix_product_and_infers_as_conv2d():
    """PointwiseConv2D: in training a MatMul (no Conv2D op in the traced step) computing what Conv2D does,
    outputs and gradients to float rounding; in inference Conv2D's own code, the same bits."""
    tf = pytest.importorskip("tensorflow")
    import keras
    from bowlsense.train.pointwise import PointwiseConv2D
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 6, (8, 6, 4, 48)).astype(np.float32))
    upstream = tf.constant(rng.normal(size=(8, 6, 4, 32)).astype(np.float32))
    layer = PointwiseConv2D(32, activation="relu")
    plain = keras.layers.Conv2D(32, 1, activation="relu")
    layer.build(x.shape)
    plain.build(x.shape)
    layer.set_weights([w + rng.normal(0, 0.1, w.shape).astype(np.float32) for w in layer.get_weights()])
    plain.set_weights(layer.get_weights())
    results = []
    for model in (plain, layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(model(x, training=True) * upstream)
        results.append([loss.numpy()] + [g.numpy() for g in tape.gradient(loss, [x, *model.trainable_weights])])
    for name, want, got in zip(["loss", "d/dx", "d/dkernel", "d/dbias"], *results):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()), err_msg=name)
    spec = tf.TensorSpec(x.shape, tf.float32)
    training_ops = _graph_ops(lambda t: layer(t, training=True), spec)
    assert any("MatMul" in op for op in training_ops) and not any(op.startswith("Conv2D") for op in training_ops)
    assert any(op.startswith("Conv2D") for op in _graph_ops(lambda t: layer(t, training=False), spec))
    assert np.array_equal(layer(x, training=False).numpy(), plain(x, training=False).numpy())
    with pytest.raises(ValueError, match="1x1, stride 1"):
        PointwiseConv2D(8, strides=2)


def test_teacher_top_takes_the_same_training_step_either_way():
    """YAMNet's top blocks (random weights) with their pointwise convolutions trained as matrix products or
    through Conv2D: the same loss and gradients for one step, to float rounding."""
    tf = pytest.importorskip("tensorflow")
    from bowlsense.train import yamnet
    from bowlsense.train.pointwise import train_as_matmul
    first = 11
    top = yamnet.build_trunk(first, len(yamnet.LAYER_DEFS), "relu6")
    rng = np.random.default_rng(2)
    x = tf.constant(rng.uniform(0, 6, (4,) + yamnet.layer_output_shape(first - 1)).astype(np.float32))
    results = []
    for matmul in (False, True):
        assert train_as_matmul(top, matmul) == len(yamnet.LAYER_DEFS) - first + 1
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(top(x, training=True)))
        results.append([loss.numpy()] + [g.numpy() for g in tape.gradient(loss, top.trainable_weights)])
    for want, got in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()))


def test_training_bench_times_both_ways(yamnet_dir, capsys):
    pytest.importorskip("tensorflow")
    from bowlsense.train import bench
    assert bench.main(["--steps", "1", "--rounds", "1", "--batch-size", "4",
                       "--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")]) == 0
    out = capsys.readouterr().out
    assert "Conv2D:" in out and "PointwiseConv2D:" in out and "x as fast" in out


def _clip_evalset(per_clip: dict[str, list[int]]):
    """Single windows of eating clips; per_clip maps a clip name to its windows' eating targets."""
    targets, groups = [], []
    for clip, ts in per_clip.items():
        targets += [[t, 0] for t in ts]
        groups += [clip] * len(ts)
    n = len(targets)
    return _evalset(targets, ["single"] * n, [""] * n, [np.nan] * n), np.array(groups)


def test_bootstrap_intervals_resample_clips_not_windows():
    thresholds = {"eating": Threshold(0.5, 0.3), "speech": Threshold(0.5, 0.3)}
    # Ten eating clips of ten windows; clip c0 is missed entirely, every other window is caught.
    es, groups = _clip_evalset({f"c{i}": [1] * 10 for i in range(10)})
    scores = np.zeros((100, 2))
    scores[10:, 0] = 0.9
    m = evaluation.measure(es, scores, thresholds)
    assert m["eating_detect_alone"] == pytest.approx(0.9)
    ci = evaluation.intervals(es, scores, thresholds, groups=groups, n=400, seed=1)
    lo, hi = ci["eating_detect_alone"]
    # Whole clips move together: drawing c0 zero times gives 1.0, drawing it three times gives 0.7.
    assert lo <= 0.75 and hi == pytest.approx(1.0)
    # Were the windows independent (each its own group), 10 misses in 100 would hardly leave 0.8..0.97.
    ci_w = evaluation.intervals(es, scores, thresholds, groups=np.arange(100), n=400, seed=1)
    assert ci_w["eating_detect_alone"][0] > lo and ci_w["eating_detect_alone"][1] < 1.0
    # A model right on every window has nothing to resample away.
    perfect = np.zeros((100, 2))
    perfect[:, 0] = 0.9
    assert evaluation.intervals(es, perfect, thresholds, groups=groups, n=50)["eating_detect_alone"] == [1.0, 1.0]


def test_macro_f1_skips_a_label_that_has_no_windows_and_no_alarms():
    thresholds = {"eating": Threshold(0.5, 0.3), "speech": Threshold(0.5, 0.3)}
    es, _ = _clip_evalset({"c0": [1, 1, 0, 0]})
    scores = np.array([[0.9, 0.0], [0.9, 0.0], [0.1, 0.0], [0.1, 0.0]])
    # No speech window and no speech alarm: macro-F1 is eating's alone, not the mean with an undefined 0.
    assert evaluation.measure(es, scores, thresholds)["macro_f1"] == pytest.approx(1.0)
    scores[2, 1] = 0.9  # a speech false alarm: now speech's F1 of 0 is real and counts
    assert evaluation.measure(es, scores, thresholds)["macro_f1"] == pytest.approx(0.5)


def test_crossval_pools_folds_window_for_window():
    from bowlsense.train.crossval import pool
    from bowlsense.train.pipeline import Trained
    thresholds = {"eating": Threshold(0.5, 0.3), "speech": Threshold(0.5, 0.3)}
    nan = np.nan
    a = _evalset([[1, 0], [0, 0], [0, 1]], ["single", "single", "privacy"], ["", "", "eating"], [nan, nan, 0.0])
    b = _evalset([[1, 0], [1, 0]], ["single", "eating_bg"], ["", "background"], [nan, 0.0])
    sa = np.array([[0.9, 0.0], [0.7, 0.0], [0.0, 0.9]])  # eating: tp, fp; speech under eating: caught
    sb = np.array([[0.1, 0.0], [0.8, 0.0]])              # eating: fn; eating under background: caught
    folds = [Trained({}, a, {"teacher": sa, "int8_student": sa / 2}, thresholds),
             Trained({}, b, {"teacher": sb, "int8_student": sb / 2}, thresholds)]
    evalset, scores = pool(folds)
    assert evalset.group == ["single", "single", "privacy", "single", "eating_bg"]
    assert evalset.other == ["", "", "eating", "", "background"]
    assert np.array_equal(scores["int8_student"], np.concatenate([sa, sb]) / 2)
    m = evaluation.measure(evalset, scores["teacher"], thresholds)
    # Counted over both folds at once: eating tp 1 (a0), fp 1 (a1), fn 1 (b0).
    e = m["per_class"]["eating"]
    assert (e["tp"], e["fp"], e["fn"]) == (1, 1, 1)
    assert m["eating_detect_alone"] == pytest.approx(0.5)
    assert m["eating_detect_0dB_under_background"] == pytest.approx(1.0)
    assert m["speech_detect"]["+0dB"]["all"] == pytest.approx(1.0)
    other_labels = evaluation.EvalSet(("eating",), b.windows, b.group, b.other)
    with pytest.raises(ValueError, match="different labels"):
        pool([folds[0], Trained({}, other_labels, {"teacher": sb}, thresholds)])


def test_time_max_student_runs_on_the_int8_engine_bit_exact_with_tflite_micro():
    from tflite_micro.python.tflite_micro import runtime

    from bowlsense.train import quantize
    from bowlsense.train.student import StudentConfig, build_student
    cfg = StudentConfig(stem_filters=8, blocks=((2, 16), (2, 16)), pool="time_max")
    model = build_student(3, cfg)
    rng = np.random.default_rng(0)
    patches = rng.integers(-7000, 2000, size=(40, 96, 64)).astype(np.int16)  # Q10 nats
    flat = quantize.convert(model, patches)
    ops = set(quantize.details(flat)["ops"])
    assert {"AVERAGE_POOL_2D", "MAX_POOL_2D"} <= ops and "MEAN" not in ops
    int8 = quantize.Int8Model(flat)
    assert int8.backend == "bowlsense.nn.Engine"
    reference = runtime.Interpreter.from_bytes(flat)
    for p in patches[:8]:
        x = features.quantize_input(p, int8.input_q["scale"], int8.input_q["zero_point"])
        ours = int8.invoke_int8(x)
        reference.set_input(x.reshape(int8.input_q["shape"]).astype(np.int8), 0)
        reference.invoke()
        assert np.array_equal(ours, np.asarray(reference.get_output(0)).reshape(-1))
    with pytest.raises(ValueError, match="pool"):
        build_student(3, StudentConfig(pool="median"))


def test_student_dropout_acts_in_training_and_leaves_no_trace_in_the_export():
    from bowlsense.train import quantize
    from bowlsense.train.student import StudentConfig, build_student
    plain_cfg = StudentConfig(stem_filters=8, blocks=((2, 16), (2, 16)))
    dropped_cfg = StudentConfig(stem_filters=8, blocks=((2, 16), (2, 16)), dropout=0.5)
    assert "dropout" not in plain_cfg.to_dict()  # checkpoint keys and manifests as before the option
    assert StudentConfig.from_dict(dropped_cfg.to_dict()) == dropped_cfg
    plain, dropped = build_student(3, plain_cfg), build_student(3, dropped_cfg)
    dropped.set_weights(plain.get_weights())
    rng = np.random.default_rng(0)
    patches = rng.integers(-7000, 2000, size=(40, 96, 64)).astype(np.int16)  # Q10 nats
    x = features.to_nats(patches[:4])[..., None]
    assert np.allclose(dropped(x, training=False), plain(x, training=False))
    assert not np.allclose(dropped(x, training=True), plain(x, training=True))
    flat_plain, flat_dropped = quantize.convert(plain, patches), quantize.convert(dropped, patches)
    assert quantize.details(flat_dropped)["ops"] == quantize.details(flat_plain)["ops"]
    a, b = quantize.Int8Model(flat_plain), quantize.Int8Model(flat_dropped)
    for p in patches[:8]:
        q = features.quantize_input(p, a.input_q["scale"], a.input_q["zero_point"])
        assert np.array_equal(a.invoke_int8(q), b.invoke_int8(q))


def test_paired_differences_against_a_baseline_on_the_same_windows(tmp_path):
    from bowlsense.train.crossval import BaselineError, check_same_windows, load_scores, paired_differences, save_scores
    thresholds = {"eating": Threshold(0.5, 0.3), "speech": Threshold(0.5, 0.3)}
    # Twenty eating clips of five windows. The baseline misses clips c0-c5 entirely; the new run misses
    # only c0 and c1: better on exactly four clips, the same on the rest.
    es, groups = _clip_evalset({f"c{i}": [1] * 5 for i in range(20)})
    base = np.zeros((100, 2))
    base[30:, 0] = 0.9
    new = np.zeros((100, 2))
    new[10:, 0] = 0.9
    save_scores(tmp_path / "scores.npz", es, {"int8_student": base}, thresholds, groups)
    loaded = load_scores(tmp_path)
    assert np.array_equal(loaded["scores"]["int8_student"], base) and loaded["labels"] == ("eating", "speech")
    check_same_windows(loaded, es)
    d = paired_differences(es, [{"int8_student": new}], [loaded["scores"]], thresholds, groups, seed=0)["int8_student"]
    assert d["eating_detect_alone"]["difference"] == pytest.approx(0.9 - 0.7)
    lo, hi = d["eating_detect_alone"]["interval_95"]
    assert 0 < lo <= 0.2 <= hi  # every resample that draws a changed clip improves; none gets worse
    same = paired_differences(es, [{"int8_student": base}], [loaded["scores"]], thresholds, groups, seed=0)
    assert same["int8_student"]["eating_detect_alone"] == {"difference": 0.0, "interval_95": [0.0, 0.0]}
    # Two runs against two baselines: each side is its mean, and each side says how far apart its runs are.
    two = paired_differences(es, [{"int8_student": new}, {"int8_student": base}], [{"int8_student": base}] * 2,
                             thresholds, groups, seed=0)["int8_student"]["eating_detect_alone"]
    assert two["difference"] == pytest.approx((0.9 + 0.7) / 2 - 0.7)
    assert two["runs_spread"] == pytest.approx(0.2) and two["retraining_spread"] == 0.0
    other, _ = _clip_evalset({f"c{i}": [1] * 5 for i in range(20)})
    other.windows.lineage[7] = "a window the baseline never scored"
    with pytest.raises(BaselineError, match="other evaluation windows"):
        check_same_windows(loaded, other)
    with pytest.raises(BaselineError, match="earlier `bowlsense crossval` or `bowlsense train` run"):
        load_scores(tmp_path / "nowhere")


def test_compare_finished_runs_from_their_scores_alone(tmp_path, capsys):
    from bowlsense.cli import main
    from bowlsense.train.crossval import save_scores
    thresholds = {"eating": Threshold(0.5, 0.3), "speech": Threshold(0.5, 0.3)}
    es, groups = _clip_evalset({f"c{i}": [1] * 5 for i in range(20)})
    caught = {}  # a run that catches every window from clip k on: eating caught alone (100 - 5k) / 100
    for k in (0, 2, 4, 6):
        scores = np.zeros((100, 2))
        scores[5 * k:, 0] = 0.9
        caught[k] = tmp_path / f"run{k}"
        caught[k].mkdir()
        save_scores(caught[k] / "scores.npz", es, {"int8_student": scores, "teacher": scores}, thresholds, groups)
    out = tmp_path / "cmp"
    assert main(["compare", str(caught[0]), str(caught[2]), "--baseline", str(caught[4]), "--baseline",
                 str(caught[6]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "compare.json").read_text())
    d = result["against_baseline"]["int8_student"]["eating_detect_alone"]
    # (1.0 + 0.9) / 2 - (0.8 + 0.7) / 2; each side's runs 0.1 apart; every resample favours the runs.
    assert d["difference"] == pytest.approx(0.2)
    assert d["runs_spread"] == pytest.approx(0.1) and d["retraining_spread"] == pytest.approx(0.1)
    assert 0 < d["interval_95"][0] <= 0.2 <= d["interval_95"][1]
    assert result["clips"] == 20 and result["windows"] == 100
    assert "| eating_detect_alone | +0.200 [" in printed and "runs 0.100 apart; baselines 0.100 apart" in printed
    assert "mean of 2 run(s) minus mean of 2 baseline(s)" in (out / "compare.md").read_text()
    # What cannot be compared stops with a message: other windows, other thresholds, no saved windows.
    other_es, _ = _clip_evalset({f"c{i}": [1] * 5 for i in range(20)})
    other_es.windows.lineage[3] = "elsewhere"
    bad = {}
    for name, e, t in (("windows", other_es, thresholds), ("thresholds", es, {**thresholds, "eating": Threshold(0.6, 0.3)})):
        bad[name] = tmp_path / name
        bad[name].mkdir()
        save_scores(bad[name] / "scores.npz", e, {"int8_student": np.zeros((100, 2))}, t, groups)
    old = tmp_path / "old"
    old.mkdir()
    np.savez(old / "scores.npz", lineage=np.array(es.windows.lineage), labels=np.array(es.labels),
             scores_int8_student=np.zeros((100, 2)))
    for run, message in ((bad["windows"], "other evaluation windows"), (bad["thresholds"], "other thresholds"),
                         (tmp_path / "nowhere", "missing or unreadable")):
        assert main(["compare", str(caught[0]), "--baseline", str(run)]) == 2
        assert message in capsys.readouterr().err
    # A run that is not there is named as what it is, not as a baseline.
    assert main(["compare", str(tmp_path / "nowhere"), "--baseline", str(caught[0])]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'nowhere' / 'scores.npz'} is missing or unreadable" in err and "baseline /" not in err
    assert main(["compare", str(old), "--baseline", str(caught[0])]) == 2
    assert "predates saved evaluation windows" in capsys.readouterr().err
    assert main(["compare", str(caught[0]), "--baseline", str(caught[2]), "--model", "float_student"]) == 2
    assert "no float_student scores" in capsys.readouterr().err


def test_clips_most_wrong_ranks_clips_by_wrong_windows():
    from bowlsense.data.dataset import Clip
    from bowlsense.train.crossval import clips_most_wrong
    thresholds = {"eating": Threshold(0.5, 0.3), "speech": Threshold(0.5, 0.3)}
    es, groups = _clip_evalset({"a": [1, 1, 1, 1], "b": [0, 0, 0], "c": [1, 1]})
    scores = np.array([[0.9, 0.0], [0.1, 0.0], [0.9, 0.0], [0.9, 0.0],   # a: one eating window missed
                       [0.0, 0.8], [0.0, 0.9], [0.7, 0.0],               # b: speech twice, eating once
                       [0.9, 0.0], [0.9, 0.0]])                          # c: right
    clips = {"a": Clip("audio/a.wav", ("eating",), "yes", note="chewing"), "b": Clip("audio/b.wav", ("background",), "yes")}
    worst = clips_most_wrong(es, scores, thresholds, groups, clips)
    assert [w["path"] for w in worst] == ["audio/b.wav", "audio/a.wav"]  # c has nothing wrong: not listed
    assert worst[0]["wrong"] == 3 and worst[0]["false"] == {"speech": 2, "eating": 1} and worst[0]["missed"] == {}
    assert worst[1]["wrong"] == 1 and worst[1]["missed"] == {"eating": 1} and worst[1]["note"] == "chewing"


def test_embedding_loss_is_cross_entropy_plus_weighted_squared_error():
    pytest.importorskip("tensorflow")
    from bowlsense.train.distill import scores_and_embedding_loss
    y_true = np.array([[1.0, 0.0, 0.5, -1.0, 2.0], [0.0, 1.0, 0.0, 1.0, 0.0]], np.float32)
    y_pred = np.array([[0.9, 0.2, 0.0, 0.0, 1.0], [0.3, 0.6, 1.0, 1.0, 0.0]], np.float32)
    p, t = y_pred[:, :2], y_true[:, :2]
    bce = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    mse = np.mean((y_true[:, 2:] - y_pred[:, 2:]) ** 2)  # (0.25 + 1 + 1 + 1 + 0 + 0) / 6
    got = float(scores_and_embedding_loss(2, 0.3)(y_true, y_pred))
    assert got == pytest.approx(bce + 0.3 * mse, rel=1e-5)


def test_tempered_distillation_loss_by_hand():
    pytest.importorskip("tensorflow")
    from bowlsense.train.distill import logits, tempered_loss
    labels = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    teacher = np.array([[0.99, 0.2], [0.05, 0.7]], np.float32)
    student = np.array([[0.8, 0.1], [0.3, 0.6]], np.float32)
    y_true = np.concatenate([labels, logits(teacher)], axis=1)
    np.testing.assert_allclose(y_true[:, 2:], np.log(teacher / (1 - teacher)), rtol=1e-5)

    def xent(t, p):
        return -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))

    # T = 1 is cross-entropy against alpha * teacher + (1 - alpha) * label: the untempered recipe.
    assert float(tempered_loss(2, 0.5, 1.0)(y_true, student)) == pytest.approx(
        xent(0.5 * teacher + 0.5 * labels, student), rel=1e-5)
    # T = 3: both sides' logits divided by 3 before the sigmoid, that term weighted alpha * 9.
    soften = lambda p: 1 / (1 + np.exp(-np.log(p / (1 - p)) / 3))  # noqa: E731
    want = 0.3 * 9 * xent(soften(teacher), soften(student)) + 0.7 * xent(labels, student)
    assert float(tempered_loss(2, 0.3, 3.0)(y_true, student)) == pytest.approx(want, rel=1e-5)
    # One temperature per label: the first at 3, the second (say, speech) at 1, each term weighted by its T^2.
    t = np.array([3.0, 1.0])
    soften_each = lambda p: 1 / (1 + np.exp(-np.log(p / (1 - p)) / t))  # noqa: E731
    per_label = -(soften_each(teacher) * np.log(soften_each(student))
                  + (1 - soften_each(teacher)) * np.log(1 - soften_each(student)))
    want = 0.3 * np.mean(t * t * per_label) + 0.7 * xent(labels, student)
    assert float(tempered_loss(2, 0.3, (3.0, 1.0))(y_true, student)) == pytest.approx(want, rel=1e-5)
    # A label weight (say, speech's 2) multiplies both of that label's terms, its target unchanged.
    w = np.array([1.0, 2.0])
    want = (0.3 * np.mean(w * t * t * per_label)
            - 0.7 * np.mean(w * (labels * np.log(student) + (1 - labels) * np.log(1 - student))))
    assert float(tempered_loss(2, 0.3, (3.0, 1.0), (1.0, 2.0))(y_true, student)) == pytest.approx(want, rel=1e-5)


def test_feature_mixtures_add_magnitudes_in_power_and_take_both_labels():
    from bowlsense.train.distill import LOG_FLOOR, mix_pairs
    rng = np.random.default_rng(0)
    floor = np.exp(LOG_FLOOR)
    mags = rng.uniform(0.0, 20.0, (6, 96, 64, 1))
    x = np.log(mags + floor).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
    mixed, mixed_labels = mix_pairs(x, labels, 0.5, np.random.default_rng(1))
    changed = np.flatnonzero((mixed != x).any(axis=(1, 2, 3)))
    assert len(changed) == 3  # half the batch; the other windows and their labels as they were
    kept = np.setdiff1d(np.arange(6), changed)
    np.testing.assert_array_equal(mixed[kept], x[kept])
    np.testing.assert_array_equal(mixed_labels[kept], labels[kept])
    for i in changed:
        # Which partner at which gain: the only (j, g) with sqrt(a^2 + (g b_j)^2) = the mixture's magnitude.
        m = np.exp(mixed[i].astype(np.float64)) - floor
        fits = []
        for j in set(range(6)) - {i}:
            g2 = np.median((m ** 2 - mags[i] ** 2) / mags[j] ** 2)
            if np.allclose(m, np.sqrt(mags[i] ** 2 + g2 * mags[j] ** 2), rtol=1e-3, atol=1e-3):
                fits.append((j, 10 * np.log10(g2)))
        assert len(fits) == 1, fits
        j, gain_db = fits[0]
        assert -6.0 - 1e-3 <= gain_db <= 6.0 + 1e-3
        np.testing.assert_array_equal(mixed_labels[i], np.maximum(labels[i], labels[j]))
    # A silent partner (the front end's floor everywhere) leaves a window as it was.
    pair = np.concatenate([x[:1], np.full((1, 96, 64, 1), LOG_FLOOR, np.float32)])
    out, _ = mix_pairs(pair, labels[:2], 1.0, np.random.default_rng(2))
    np.testing.assert_allclose(out[0], pair[0], atol=1e-5)


def test_live_teacher_scores_exactly_what_the_student_is_shown():
    from bowlsense.train.distill import live_teacher_batches, logits

    class Teacher:  # a stand-in whose scores depend on every input value
        seen = []

        def scores_from_nats(self, x):
            self.seen.append(x.copy())
            s = 1 / (1 + np.exp(-np.stack([x.mean(axis=(1, 2)), x.std(axis=(1, 2))], axis=1)))
            return s.astype(np.float32)

    teacher = Teacher()
    rng = np.random.default_rng(0)
    x = rng.uniform(-6.9, 3.0, (8, 96, 64, 1)).astype(np.float32)
    labels = np.eye(2, dtype=np.float32)[[0, 1] * 4]
    y = np.concatenate([labels, np.zeros((8, 2), np.float32)], axis=1)  # stale teacher columns
    shown, targets = live_teacher_batches(teacher, 2, mix=0.5, augment=True)(x, y, rng)
    assert not np.array_equal(shown, x)
    np.testing.assert_array_equal(teacher.seen[-1], shown[..., 0])
    np.testing.assert_allclose(targets[:, 2:], logits(teacher.scores_from_nats(shown[..., 0])), rtol=1e-6)
    assert ((targets[:, :2] == 0) | (targets[:, :2] == 1)).all() and (targets[:, :2] >= labels).all()
    assert (targets[:, :2].sum(axis=1) == 2).sum() >= 1  # some mixtures of an eating and a drinking window


def test_live_teacher_graph_scores_what_the_eager_layers_score():
    """Teacher.scores_from_nats runs as one traced graph (the speed-up of the live teacher); its scores are
    the Keras models' own eager scores, for any batch size."""
    import keras

    from bowlsense.train.teacher import Teacher
    keras.utils.set_random_seed(0)
    inp = keras.Input((96, 64))
    frozen = keras.Model(inp, keras.layers.Conv2D(4, 3, activation="relu")(keras.layers.Reshape((96, 64, 1))(inp)))
    acts = keras.Input(frozen.output.shape[1:])
    top = keras.Model(acts, keras.layers.Dense(2, activation="sigmoid")(keras.layers.GlobalAveragePooling2D()(acts)))
    teacher = Teacher(frozen, top)
    rng = np.random.default_rng(0)
    for n in (64, 7):
        x = rng.uniform(-7.0, 8.0, (n, 96, 64)).astype(np.float32)
        scores = teacher.scores_from_nats(x)
        assert scores.shape == (n, 2) and scores.dtype == np.float32 and 0 < scores.std()
        np.testing.assert_allclose(scores, np.asarray(teacher.scores_eagerly(x)), rtol=1e-5, atol=1e-7)


def test_teacher_beyond_labels_counts_by_hand():
    from bowlsense.train.distill import teacher_beyond_labels
    scores = np.array([[0.9, 0.1], [0.2, 0.7], [1.0, 0.0]])
    labels = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    # gaps 0.1, 0.1 | 0.8, 0.3 | 0, 0: mean 1.3 / 6; only the second window has a gap over 0.5
    line = teacher_beyond_labels(scores, labels, "training windows")
    assert line == ("teacher on the training windows: scores 0.2167 from the labels on average, "
                    "33.3% of windows on the other side of 0.5")


def test_embedding_probe_trains_the_student_and_stays_out_of_the_export(tmp_path):
    pytest.importorskip("tensorflow")
    from bowlsense.train import distill, fit
    from bowlsense.train.student import StudentConfig, build_student
    cfg = StudentConfig(stem_filters=4, blocks=((2, 8),))
    rng = np.random.default_rng(0)
    # An "embedding" a pooled convolutional student can learn: each patch's level and spread.
    level, spread = rng.uniform(-4, 0, 64), rng.uniform(0.5, 3, 64)
    x = (level[:, None, None, None] + spread[:, None, None, None] * rng.uniform(-1, 1, (64, 96, 64, 1)))
    x = x.astype(np.float32)
    emb = distill.standardise(np.stack([level, spread], axis=1))
    y = np.concatenate([rng.integers(0, 2, (64, 2)).astype(np.float32), emb], axis=1)

    def trained_with(weight):
        import keras
        keras.utils.set_random_seed(0)
        student = build_student(2, cfg)
        trained = distill.with_embedding_probe(student, 2)
        assert trained.output_shape == (None, 4) and student.output_shape == (None, 2)
        # Batches of 8 for 20 epochs: enough steps for batch norm's moving statistics to settle.
        fit.fit(trained, x, y, epochs=20, batch_size=8, learning_rate=1e-2, checkpoint=tmp_path / f"ck{weight}",
                desc="t", seed=0, loss=distill.scores_and_embedding_loss(2, weight), val=(x[:8], y[:8, :2]))
        return student, trained, float(np.mean((trained.predict(x, verbose=0)[:, 2:] - emb) ** 2))

    _, _, untaught = trained_with(0.0)   # the probe gets no gradient: it stays a random projection
    student, trained, taught = trained_with(1.0)
    assert taught < 0.7 * untaught, (taught, untaught)  # measured: 0.54 against 1.01
    # The student is the same layers: its scores are the training model's first columns.
    np.testing.assert_allclose(student.predict(x[:4], verbose=0), trained.predict(x[:4], verbose=0)[:, :2],
                               rtol=1e-5, atol=1e-6)
    assert all("probe" not in layer.name for layer in student.layers)


def test_streamed_figures_follow_the_device_event_rule_by_hand():
    from bowlsense.train import streamed
    thresholds = {"eating": Threshold(0.5, 0.35), "speech": Threshold(0.35, 0.25)}
    params = streamed.event_params(("eating", "speech"), thresholds, ("speech",))  # 3-window moving average
    hi, lo = 0.9, 0.0  # int8 102 and -128
    clips = {  # clip: (eating target, speech target, eating scores, speech scores)
        "bg": (0, 0, [lo, lo, lo, hi, hi, hi, hi, lo, lo, lo], [lo] * 10),
        "eat2": (1, 0, [hi, hi], [lo, lo]),     # sums -154, 76: on at window 1, so reported
        "eat1": (1, 0, [hi], [lo]),             # one window cannot lift a 3-window mean to 0.5
        "talk": (0, 1, [lo] * 4, [hi] * 4),     # speech caught: the gate holds every window
        "missed": (0, 1, [hi] * 5, [lo] * 5),   # speech missed under an eating event: the gate lets it out
    }
    targets, lineage, scores, groups = [], [], [], []
    for name, (eat, talk, es, ss) in clips.items():
        for k in reversed(range(len(es))):  # stored out of order: streams are put back in window order
            targets.append([eat, talk])
            lineage.append(json.dumps({"recipe": name, "window": k}))
            scores.append([es[k], ss[k]])
            groups.append(name)
    n = len(targets)
    w = examples.Windows(np.zeros((n, 96, 64), np.int16), np.array(targets, np.float32), ["single"] * n, lineage,
                         np.full(n, np.nan, np.float32))
    es = evaluation.EvalSet(("eating", "speech"), w, ["single"] * n, [""] * n)
    got = streamed.measure_streamed(es, np.array(scores), params, np.array(groups))
    # bg: sums at windows 3..8 are -154, 76, 306, 306, 76, -154: on at 4 (mean 0.60 >= 0.5), off at 8
    # (0.30 < 0.35), so windows 4-7 are inside one event.
    assert got["background_in_false_event"] == pytest.approx(4 / 10)
    assert got["false_events_per_hour"] == pytest.approx(1 / (10 * 0.48 / 3600))
    assert got["clips_reported"] == {"eating": 0.5, "speech": 0.5}  # talk reaches a speech event at window 1
    # talk: 4 windows held. missed: window 0 dropped (no event open yet), 1-3 sent, the last held.
    assert got["speech_held"] == pytest.approx(5 / 9) and got["speech_sent"] == pytest.approx(3 / 9)
    assert np.array_equal(streamed.to_int8(np.array([0.0, 0.9, 127.5 / 256 + 0.5])), [-128, 102, 127])


def test_compare_measures_each_run_at_its_own_thresholds_when_asked(tmp_path, capsys):
    """The same scores saved at two thresholds: refused by default, and with --own-thresholds each side is
    measured at its own, so the difference is what the change of threshold alone does."""
    from bowlsense.cli import main
    from bowlsense.train.crossval import save_scores
    es, groups = _clip_evalset({f"c{i}": [1] * 5 for i in range(20)})
    scores = np.zeros((100, 2))
    scores[:50, 0], scores[50:, 0] = 0.6, 0.9  # clips c0-c9 at 0.6, c10-c19 at 0.9
    runs = {}
    for name, on in (("low", 0.5), ("high", 0.7)):
        runs[name] = tmp_path / name
        runs[name].mkdir()
        save_scores(runs[name] / "scores.npz", es, {"int8_student": scores},
                    {"eating": Threshold(on, on * 0.7), "speech": Threshold(0.35, 0.25)}, groups)
    assert main(["compare", str(runs["high"]), "--baseline", str(runs["low"])]) == 2
    assert "--own-thresholds measures each run at its own" in capsys.readouterr().err
    out = tmp_path / "cmp"
    assert main(["compare", str(runs["high"]), "--baseline", str(runs["low"]), "--own-thresholds",
                 "--out", str(out)]) == 0
    assert "each run at its own thresholds" in capsys.readouterr().out
    d = json.loads((out / "compare.json").read_text())["against_baseline"]["int8_student"]
    # At 0.7 the 50 windows scored 0.6 are missed; at 0.5 every window is caught.
    assert d["eating_detect_alone"]["difference"] == pytest.approx(0.5 - 1.0)
    assert d["eating_detect_alone"]["interval_95"][1] < 0


def test_compare_reads_the_trade_off_at_equal_false_alarms(tmp_path, capsys):
    """At equal false alarms, a change of threshold alone changes nothing (the sweep moves the threshold
    anyway) while the figures at the run's thresholds move; scores that separate better read higher."""
    from bowlsense.cli import main
    from bowlsense.train import operating
    from bowlsense.train.crossval import save_scores
    # 20 background clips of one window each and 20 windows of eating mixed at 0 dB under background.
    es = _evalset([[0, 0]] * 20 + [[1, 0]] * 20, ["single"] * 20 + ["eating_bg"] * 20,
                  [""] * 20 + ["background"] * 20, [np.nan] * 20 + [0.0] * 20)
    groups = np.array([f"c{i}" for i in range(40)])
    background = np.linspace(0.02, 0.97, 20)      # background window k fires from a threshold below it
    eating = np.linspace(0.3, 0.99, 20)
    plain = np.zeros((40, 2))
    plain[:20, 0], plain[20:, 0] = background, eating
    quieter = plain.copy()
    quieter[:20, 0] = background / 2             # the same eating, background scored lower: a better model
    runs = {}
    for name, scores, on in (("low", plain, 0.5), ("high", plain, 0.8), ("better", quieter, 0.5)):
        runs[name] = tmp_path / name
        runs[name].mkdir()
        save_scores(runs[name] / "scores.npz", es, {"int8_student": scores},
                    {"eating": Threshold(on, on * 0.7), "speech": Threshold(0.35, 0.25)}, groups)
    # By hand: with at most 2 of 20 background windows firing (10%), the threshold must exceed the third
    # highest background score, 0.87; the grid's first such is 0.9, where eating scores 0.9..0.99 (3 of 20)
    # are caught. Halved, the background's third highest is 0.435: at 0.45, 15 of 20 eating windows.
    thresholds = {"eating": Threshold(0.5, 0.35), "speech": Threshold(0.35, 0.25)}
    assert operating.trade_off(es, plain, thresholds)[
        "eating_detect_0dB_under_background at background_false_event <= 0.1"] == pytest.approx(3 / 20)
    assert operating.trade_off(es, quieter, thresholds)[
        "eating_detect_0dB_under_background at background_false_event <= 0.1"] == pytest.approx(15 / 20)
    out = tmp_path / "cmp"
    assert main(["compare", str(runs["high"]), "--baseline", str(runs["low"]), "--own-thresholds",
                 "--out", str(out)]) == 0
    result = json.loads((out / "compare.json").read_text())
    assert result["against_baseline"]["int8_student"]["background_false_event"]["difference"] < 0
    curves = result["at_equal_false_alarms"]["int8_student"]
    events = {k: v for k, v in curves.items() if k.startswith("eating")}
    assert len(events) == len(operating.BUDGETS["events"])
    assert all(v["difference"] == 0.0 for v in events.values())
    # No speech windows here: the privacy sweep has nothing to read, and says so rather than guess.
    assert all(v["difference"] is None for k, v in curves.items() if k.startswith("speech"))
    assert main(["compare", str(runs["better"]), "--baseline", str(runs["low"]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| eating_detect_0dB_under_background at background_false_event <= 0.1 | 0.750 | 0.150 | +0.600 |" in printed
    curves = json.loads((out / "compare.json").read_text())["at_equal_false_alarms"]["int8_student"]
    assert all(v["difference"] >= 0 for k, v in curves.items() if k.startswith("eating"))


SHIPPED_MODEL = pathlib.Path(__file__).resolve().parents[1] / "models" / "default"


def test_int8_model_reads_its_edges_as_tflite_does():
    """Int8Model takes its input and output quantization from the project's flatbuffer reader; it must
    read what tf.lite.Interpreter reads (quantize.details), bit for bit, or predict's scores would move."""
    pytest.importorskip("tensorflow")
    from bowlsense.train import quantize
    flatbuffer = (SHIPPED_MODEL / "model.tflite").read_bytes()
    model = quantize.Int8Model(flatbuffer)
    assert model.backend == "bowlsense.nn.Engine"
    want = quantize.details(flatbuffer)
    assert model.input_q == want["input"]
    assert model.output_q == want["output"]


def test_loading_a_model_for_predict_does_not_import_tensorflow():
    """`bowlsense predict`, `evaluate` and `data audit --model` run the int8 model through the C engine:
    importing TensorFlow for them cost about 4 s of every call (README, Speed and memory)."""
    import subprocess
    import sys
    code = ("import sys; from bowlsense.train.predict import load_model; "
            f"load_model({str(SHIPPED_MODEL)!r}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
