"""Accuracy on the device: verified clips of ../shared/data streamed through the device's whole pipeline
give the same per-window decisions as `bowlsense predict` on the host (identical, not close), and so the
same metrics. The host side is the predict path itself (bowlsense.train.predict.predict_file: front end,
input requantization, int8 engine, probabilities as the CLI prints them); a window's decision for a
label is probability >= the label's `on` threshold, as in bowlsense.train.evaluation.

Per-window truth is the clip's verified label (background: no label), so the metrics say how well the
model does on these clips; the check is that device and host agree, window for window."""
from __future__ import annotations

import numpy as np

from bowlsense.data.labels import BACKGROUND

from hil_support import clips_with, host_patches, load_clip, predict_pcm, prf


def _selection(labels, per_label: int) -> list:
    clips = []
    for label in list(labels) + [BACKGROUND]:
        short = label == "speech"          # speech clips are short utterances, padded to one window
        clips += clips_with(label, 2 * per_label if short else per_label, max_s=5.0, min_s=0.0 if short else 1.0)
    return clips


def test_accuracy_device_decisions_identical_to_predict(dut, host_model, report, request):
    from bowlsense.train.predict import predict_file
    m = host_model.manifest
    labels = host_model.labels
    per_label = request.config.getoption("--hil-clips")
    clips = _selection(labels, per_label)
    dev_dec, host_dec, truth, mismatches = [], [], [], []
    for clip in clips:
        rows = list(predict_file(m, host_model.int8, clip.abspath))
        pcm = predict_pcm(load_clip(clip))
        res, raw = dut.stream(pcm)
        assert len(raw) == len(rows) == res.counts.windows, (
            f"{clip.path}: device scored {len(raw)} windows, predict {len(rows)}")
        np.testing.assert_array_equal(raw, host_model.int8.int8_scores(host_patches(pcm)),
                                      err_msg=f"{clip.path}: device raw scores differ from the predict path's")
        # the device's scores, turned into probabilities exactly as `bowlsense predict` prints them
        dev_prob = np.array([[round(float(v), 4) for v in row] for row in host_model.int8.dequantize(raw)])
        host_prob = np.array([[r["scores"][l] for l in labels] for r in rows])
        d, h = host_model.decisions(dev_prob), host_model.decisions(host_prob)
        for w in np.flatnonzero((d != h).any(axis=1)):
            mismatches.append(f"{clip.path} window {w}: device {d[w].astype(int)} host {h[w].astype(int)}")
        dev_dec.append(d)
        host_dec.append(h)
        truth.append(np.tile([l in clip.events for l in labels], (len(rows), 1)))
    dev_dec, host_dec, truth = np.concatenate(dev_dec), np.concatenate(host_dec), np.concatenate(truth)
    dev_metrics = {l: prf(dev_dec[:, i], truth[:, i]) for i, l in enumerate(labels)}
    host_metrics = {l: prf(host_dec[:, i], truth[:, i]) for i, l in enumerate(labels)}
    exact = float(np.mean((dev_dec == truth).all(axis=1)))
    report.section("accuracy", {
        "clips": len(clips), "windows": int(len(truth)), "identical": not mismatches,
        "window_exact_match": exact, "macro_f1": float(np.mean([v["f1"] for v in dev_metrics.values()])),
        "per_label": dev_metrics, "clip_paths": [c.path for c in clips],
    })
    report.metric("accuracy_window_exact_match", round(exact, 4), "", note=f"{len(truth)} windows of {len(clips)} clips")
    print(f"\n{len(clips)} clips, {len(truth)} windows; per label (device): " +
          ", ".join(f"{l} P {v['precision']:.2f} R {v['recall']:.2f} F1 {v['f1']:.2f}" for l, v in dev_metrics.items()))
    assert not mismatches, f"{len(mismatches)} windows decided differently:\n" + "\n".join(mismatches[:10])
    assert dev_metrics == host_metrics
