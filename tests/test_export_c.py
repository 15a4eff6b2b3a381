"""`bowlsense export`: the generated C compiles (host gcc, Cortex-M4, Cortex-M0+), runs with the engine to
the same bits as tflite_micro, regenerates byte-identically, carries its banner, and the export refuses a
model.json that does not belong to the model."""
from __future__ import annotations

import dataclasses
import functools
import json
import re
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

from bowlsense.cli import main as cli_main
from bowlsense.export import ExportError, export_model
from bowlsense.frontend.config import DEFAULT_CONFIG
from bowlsense.manifest import Manifest, sha256_file
from bowlsense.nn import Engine
from bowlsense.nn import testing as T
from bowlsense.paths import REPO_ROOT

LABELS = ["eating", "speech", "dishes"]

DRIVER = r"""
#include <stdio.h>
#include <stdint.h>
#include "bs_model.h"
static uint8_t arena[BS_MODEL_ARENA_BYTES] __attribute__((aligned(16)));
int main(void) {
    static int8_t in[BS_MODEL_INPUT_SIZE];
    int8_t out[BS_MODEL_OUTPUT_SIZE];
    if (fread(in, 1, sizeof in, stdin) != sizeof in) return 2;
    if (bs_nn_check(&bs_model_graph, arena, sizeof arena) != BS_NN_OK) return 3;
    if (bs_nn_invoke(&bs_model_graph, arena, sizeof arena, in, out) != BS_NN_OK) return 4;
    if (((uintptr_t)bs_model_tflite_data() & 15u) != 0) return 5;
    fwrite(out, 1, sizeof out, stdout);
    printf("%u %s %s %d %d", (unsigned)bs_model_tflite_len(), bs_model_tflite_sha256(), bs_model_labels[1],
           bs_model_threshold_on_q[0], bs_model_threshold_off_q[0]);
    return 0;
}
"""


@functools.lru_cache(maxsize=None)
def small_student() -> bytes:
    return T.convert_int8(T.ds_cnn(num_labels=len(LABELS), width=8, blocks=4, seed=3), (96, 64, 1),
                          low=-7.0, high=4.0, n_calibration=4)


def write_model_dir(path: pathlib.Path, data: bytes) -> pathlib.Path:
    return T.write_model_dir(path, data, labels=LABELS, name="test-student")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model_dir = write_model_dir(tmp_path_factory.mktemp("model"), small_student())
    out = tmp_path_factory.mktemp("model_c")
    result = export_model(model_dir, out, progress=False)
    return model_dir, out, result


def test_export_writes_the_three_files_with_banner(exported):
    model_dir, out, result = exported
    assert sorted(p.name for p in result.files) == ["bs_model.h", "bs_model_graph.c", "bs_model_tflite.c"]
    sha = sha256_file(model_dir / "model.tflite")
    for p in result.files:
        text = p.read_text()
        head = text[:600]
        assert "GENERATED FILE, DO NOT EDIT" in head and "bowlsense export" in head and sha in head
        assert not re.search(r"\b\d{4}-\d{2}-\d{2}\b|\d{2}:\d{2}:\d{2}", head)  # no date or time
    h = (out / "bs_model.h").read_text()
    for name in ("BS_MODEL_ARENA_BYTES", "bs_model_tflite_data", "bs_model_tflite_len", "bs_model_tflite_sha256",
                 "extern const bs_nn_graph bs_model_graph", "bs_model_threshold_on_q", "BS_MODEL_FRONTEND_HASH"):
        assert name in h
    assert DEFAULT_CONFIG.hash in h


def test_export_regenerates_byte_identically(exported, tmp_path):
    model_dir, out, result = exported
    again = export_model(model_dir, tmp_path / "again", progress=False)
    for a, b in zip(result.files, again.files):
        assert a.read_bytes() == b.read_bytes(), a.name
    # Exporting into the same folder again changes nothing (so make does not rebuild).
    assert export_model(model_dir, out, progress=False, check=False).changed == []


def test_thresholds_in_int8_domain(exported):
    _, _, result = exported
    from bowlsense.export.model_c import threshold_q
    out = result.graph.output
    assert (out.scale, out.zero_point) == (np.float32(1 / 256), -128)
    # 0.5 is q = 0 exactly with scale 1/256 and zero point -128; 1.0 lies above 127 (never reached).
    assert threshold_q(0.5, out.scale, out.zero_point) == 0
    assert threshold_q(1.0, out.scale, out.zero_point) == 128
    assert threshold_q(0.0, out.scale, out.zero_point) == -128
    for p in (0.3, 0.35, 0.6, 0.999):
        q = threshold_q(p, out.scale, out.zero_point)
        assert out.scale * (q - out.zero_point) >= p > out.scale * (q - 1 - out.zero_point)


def test_streamed_evaluation_uses_the_exported_event_parameters(exported):
    """train/streamed.py replays the device's event rule on evaluation scores: its parameters must be the
    ones the firmware is built with, read back from the generated C."""
    from bowlsense.train.streamed import event_params
    model_dir, out, result = exported
    text = (out / "bs_model_graph.c").read_text()

    def array(name):
        return [int(v) for v in re.search(name + r"\[BS_MODEL_NUM_LABELS\] = \{([^}]*)\}", text).group(1).split(",")]
    m = Manifest.load(model_dir)
    params = event_params(m.labels, m.thresholds, m.privacy_labels, m.smoothing, m.output.scale, m.output.zero_point)
    assert [l.on_sum for l in params.labels] == array("bs_model_threshold_on_sum")
    assert [l.off_sum for l in params.labels] == array("bs_model_threshold_off_sum")
    off_q, privacy = array("bs_model_threshold_off_q"), array("bs_model_privacy")
    assert [l.privacy for l in params.labels] == [bool(p) for p in privacy] and any(privacy)
    assert [l.gate_q for l in params.labels if l.privacy] == [q for q, p in zip(off_q, privacy) if p]
    assert params.windows == m.smoothing.windows and params.min_event_windows == m.smoothing.min_event_windows


def _compile(out: pathlib.Path, exe: pathlib.Path, cc: str = "gcc", flags=()) -> None:
    sources = [str(out / "bs_model_graph.c"), str(out / "bs_model_tflite.c"), str(REPO_ROOT / "firmware/nn/bs_nn.c")]
    cmd = [cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", *flags, f"-I{out}", f"-I{REPO_ROOT / 'firmware/nn'}",
           *sources, "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def test_generated_c_runs_bit_exact_with_tflite_micro(exported, tmp_path):
    model_dir, out, result = exported
    (tmp_path / "driver.c").write_text(DRIVER)
    exe = tmp_path / "driver"
    shutil.copy(tmp_path / "driver.c", out / "driver_tmp.c")
    try:
        _compile(out, exe, flags=[str(out / "driver_tmp.c")])
    finally:
        (out / "driver_tmp.c").unlink()
    data = (model_dir / "model.tflite").read_bytes()
    oracle, engine = T.Oracle(data), Engine(result.graph)
    rng = np.random.default_rng(5)
    for i in range(5):
        x = rng.integers(-128, 128, size=(1, 96, 64, 1), dtype=np.int16).astype(np.int8)
        run = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, check=True)
        got = np.frombuffer(run.stdout[:len(LABELS)], dtype=np.int8)
        want = oracle.invoke(x).reshape(-1)
        np.testing.assert_array_equal(got, want, err_msg=f"input {i}")
        np.testing.assert_array_equal(engine.invoke(x).reshape(-1), want)
    length, sha, label, on_q, off_q = run.stdout[len(LABELS):].decode().split()
    assert int(length) == len(data) and sha == sha256_file(model_dir / "model.tflite") and label == "speech"
    assert int(on_q) == result.graph.output.zero_point + int(np.ceil(0.6 * 256))


@pytest.mark.parametrize("cpu", [["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"], ["-mcpu=cortex-m0plus"]])
def test_generated_c_and_engine_compile_for_cortex_m(exported, tmp_path, cpu):
    _, out, _ = exported
    for src in (out / "bs_model_graph.c", out / "bs_model_tflite.c", REPO_ROOT / "firmware/nn/bs_nn.c"):
        subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-O2", "-mthumb", *cpu, "-Wall", "-Wextra", "-Werror",
                        f"-I{out}", f"-I{REPO_ROOT / 'firmware/nn'}", "-c", str(src), "-o",
                        str(tmp_path / (src.stem + ".o"))], check=True, capture_output=True, text=True)


def test_export_refuses_mismatched_manifest(exported, tmp_path):
    model_dir, _, _ = exported
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    d = json.loads((bad / "model.json").read_text())
    d["tflite_sha256"] = "0" * 64
    (bad / "model.json").write_text(json.dumps(d))
    with pytest.raises(ExportError, match="tflite_sha256"):
        export_model(bad, tmp_path / "o1", progress=False)
    m = Manifest.load(model_dir / "model.json")
    other = dataclasses.replace(m.frontend, lower_hz=m.frontend.lower_hz + 5)
    d = m.to_dict()
    d["frontend"] = other.to_dict()
    d["frontend_hash"] = other.hash
    (bad / "model.json").write_text(json.dumps(d))
    with pytest.raises(ExportError, match="front end"):
        export_model(bad, tmp_path / "o2", progress=False)


def test_cli_export_reports_errors_and_succeeds(exported, tmp_path, capsys):
    model_dir, _, _ = exported
    assert cli_main(["export", str(model_dir), str(tmp_path / "out"), "--no-check"]) == 0
    assert (tmp_path / "out" / "bs_model.h").exists()
    assert "arena" in capsys.readouterr().out
    assert cli_main(["export", str(tmp_path / "missing"), str(tmp_path / "out2")]) == 1
    assert "model.tflite" in capsys.readouterr().err


def test_generated_c_and_engine_are_clean_under_asan_ubsan(exported, tmp_path):
    """Address and undefined-behaviour sanitizers over the engine with a generated model, on random and
    saturating inputs (signed overflow, out-of-bounds arena or weight reads would abort)."""
    model_dir, out, result = exported
    shutil.copy(_write_driver(tmp_path), out / "driver_san.c")
    exe = tmp_path / "driver_san"
    try:
        _compile(out, exe, flags=["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                                  str(out / "driver_san.c")])
    finally:
        (out / "driver_san.c").unlink()
    rng = np.random.default_rng(2)
    inputs = [np.full(96 * 64, -128, np.int8), np.full(96 * 64, 127, np.int8)] + \
        [rng.integers(-128, 128, size=96 * 64, dtype=np.int16).astype(np.int8) for _ in range(3)]
    engine = Engine(result.graph)
    for x in inputs:
        run = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True)
        assert run.returncode == 0, run.stderr.decode()[-3000:]
        np.testing.assert_array_equal(np.frombuffer(run.stdout[:len(LABELS)], np.int8),
                                      engine.invoke(x.reshape(1, 96, 64, 1)).reshape(-1))


def _write_driver(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "driver.c"
    path.write_text(DRIVER)
    return path
