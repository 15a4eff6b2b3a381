"""Scores bit-exact: the raw int8 scores INFER returns for a 96x64 log-mel patch equal the host's int8
engine (bowlsense.nn, C via cffi, the engine `bowlsense predict` runs) and TensorFlow Lite Micro's
reference kernels (tflite_micro) on the same patch, for real patches and patches at the front end's
extremes. The device quantizes the int16 patch itself, so its input quantization is checked too."""
from __future__ import annotations

import numpy as np
import pytest

from hil_support import clips_with, host_patches, load_clip, predict_pcm


def _patches() -> list[tuple[str, np.ndarray]]:
    out = []
    for label, n in (("eating", 1), ("bowl", 1), ("speech", 2), ("background", 1)):
        for clip in clips_with(label, n, min_s=0.0 if label == "speech" else 2.0):
            p = host_patches(predict_pcm(load_clip(clip)))
            out.append((f"{clip.path}#0", p[0]))
            if len(p) > 2:
                out.append((f"{clip.path}#{len(p) // 2}", p[len(p) // 2]))
    rng = np.random.default_rng(5)
    out += [("all -32768", np.full((96, 64), -32768, np.int16)), ("all 32767", np.full((96, 64), 32767, np.int16)),
            ("random int16", rng.integers(-32768, 32768, (96, 64), dtype=np.int64).astype(np.int16))]
    return out


@pytest.mark.quick
def test_scores_device_equals_host_engine_equals_tflite_micro(dut, host_model, report):
    cycles = []
    for name, patch in _patches():
        x = host_model.quantize(patch[None])[0]
        engine = np.asarray(host_model.engine.invoke(x.reshape(host_model.engine.input_shape))).reshape(-1)
        oracle = np.asarray(host_model.oracle.invoke(x)).reshape(-1)
        predict = host_model.int8.int8_scores(patch[None])[0]     # bowlsense predict's model object
        device, c = dut.client.infer(patch)
        cycles.append(c)
        assert engine.dtype == oracle.dtype == device.dtype == np.int8
        np.testing.assert_array_equal(engine, oracle, err_msg=f"{name}: host engine != tflite_micro")
        np.testing.assert_array_equal(predict, engine, err_msg=f"{name}: predict path != host engine")
        np.testing.assert_array_equal(host_model.scores(patch[None])[0], engine)
        np.testing.assert_array_equal(device, engine, err_msg=f"{name}: device != host engine")
    print(f"\n{len(cycles)} patches: device == host engine == tflite_micro; INFER {np.mean(cycles):,.0f} "
          f"{dut.unit} per patch")
    report.metric("infer_request_per_patch", round(float(np.mean(cycles))), dut.unit,
                  note="INFER requests (inference alone, as the device times it)")
