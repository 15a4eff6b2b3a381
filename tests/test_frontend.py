"""The front end through cffi: API contract, streaming, bit-exactness against the numpy reference,
fidelity against YAMNet's float recipe on hand-checkable signals, memory limits."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bowlsense.frontend import DEFAULT_CONFIG, Frontend, FrontendConfig, patches, to_float
from bowlsense.frontend import tables
from bowlsense.frontend.fidelity import float_logmel
from bowlsense.frontend.reference import reference_logmel
from frontend_signals import adversarial_signals

SIGNALS = adversarial_signals()


@pytest.fixture(scope="module")
def fe():
    return Frontend()


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_c_equals_numpy_reference_on_adversarial_signals(fe, name):
    pcm = SIGNALS[name]
    c = fe.process(pcm)
    ref = reference_logmel(pcm)
    assert c.dtype == np.int16 and c.shape == (1 + (len(pcm) - 400) // 160, 64)
    np.testing.assert_array_equal(c, ref)


@pytest.mark.parametrize("chunk", [1, 7, 160, 399, 400, 1000, None])
def test_chunking_gives_identical_frames(fe, chunk):
    pcm = SIGNALS["white_noise"][:7919]  # not a multiple of the hop
    whole = fe.process(pcm)
    fe.reset()
    step = chunk or len(pcm)
    parts = [fe.push(pcm[i:i + step]) for i in range(0, len(pcm), step)]
    fe.reset()
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_frames_come_out_once_the_first_window_is_full(fe):
    fe.reset()
    assert fe.push(np.zeros(399, np.int16)).shape == (0, 64)
    assert fe.push(np.zeros(1, np.int16)).shape == (1, 64)
    assert fe.push(np.zeros(159, np.int16)).shape == (0, 64)
    assert fe.push(np.zeros(1, np.int16)).shape == (1, 64)
    fe.reset()  # history forgotten: a full window is needed again
    assert fe.push(np.zeros(399, np.int16)).shape == (0, 64)
    fe.reset()


def test_silence_is_the_log_floor(fe):
    frames = fe.process(np.zeros(1600, np.int16))
    # every band of silence is ln(0.001) to within one output LSB
    assert np.all(np.abs(to_float(frames) - np.log(0.001)) <= 1 / 1024)


def test_tone_lands_in_the_right_band(fe):
    t = np.arange(16000) / 16000
    frames = to_float(fe.process((10000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)))
    centers = tables.mel_weight_matrix().argmax(axis=0) * 8000 / 256  # band peak frequency
    assert abs(centers[frames.mean(axis=0).argmax()] - 1000) < 60


@pytest.mark.parametrize("name", ["white_noise", "sweep", "clipped_sine", "impulses", "quiet_noise"])
def test_fidelity_against_float_yamnet_recipe(fe, name):
    err = np.abs(to_float(fe.process(SIGNALS[name])) - float_logmel(SIGNALS[name]))
    assert err.mean() < 0.02, err.mean()
    assert np.percentile(err, 99.9) < 0.25


def test_input_validation(fe):
    with pytest.raises(ValueError, match="int16"):
        fe.process(np.zeros(1000, np.float32))
    with pytest.raises(ValueError, match="1-D"):
        fe.process(np.zeros((2, 1000), np.int16))
    with pytest.raises(ValueError, match="16000 Hz"):
        fe.process(np.zeros(1000, np.int16), sample_rate=44100)
    assert fe.process(np.zeros(0, np.int16)).shape == (0, 64)


def test_patches_are_96_frames_at_hop_48():
    frames = np.arange(200 * 64, dtype=np.int16).reshape(200, 64)
    p = patches(frames)
    assert p.shape == (3, 96, 64)  # starts at 0, 48, 96 (144 + 96 > 200)
    np.testing.assert_array_equal(p[1], frames[48:144])
    assert patches(frames[:95]).shape == (0, 96, 64)
    with pytest.raises(ValueError):
        patches(np.zeros((100, 63), np.int16))


def test_config_hash_is_stable_and_shared_with_c(fe):
    ffi, lib = fe._ffi, fe._lib
    assert ffi.string(lib.bs_frontend_config_hash()).decode() == DEFAULT_CONFIG.hash
    # same config, new interpreter: same hash (no dependence on process state or dict order)
    other = subprocess.run([sys.executable, "-c", "from bowlsense.frontend import FrontendConfig as C; print(C().hash)"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert other == DEFAULT_CONFIG.hash
    assert FrontendConfig(upper_hz=7000).hash != DEFAULT_CONFIG.hash
    assert FrontendConfig.from_dict(DEFAULT_CONFIG.to_dict()) == DEFAULT_CONFIG


def test_mismatched_config_is_refused():
    with pytest.raises(ValueError, match="does not match the compiled tables"):
        Frontend(FrontendConfig(algorithm_version=99))


def test_checked_in_tables_are_generated_from_the_config():
    assert tables.main(["--check"]) == 0
    assert tables.render_c() == tables.render_c()  # byte-stable: no dates, no dict-order effects


def test_mel_tables_match_the_float_matrix():
    t = tables.build_tables()
    dense = np.zeros((257, 64))
    for k in range(257):
        if t.mel_band[k] >= 0:
            dense[k, t.mel_band[k]] = t.mel_w0[k] / 32768
            if t.mel_band[k] + 1 < 64:
                dense[k, t.mel_band[k] + 1] = t.mel_w1[k] / 32768
    np.testing.assert_allclose(dense, tables.mel_weight_matrix(), atol=1 / 65536)


def test_memory_limits(fe):
    assert fe.state_bytes <= 6 * 1024, f"state + scratch {fe.state_bytes} B over 6 KiB"
    assert fe.table_bytes <= 12 * 1024, f"tables {fe.table_bytes} B over 12 KiB"
    assert fe.table_bytes == tables.build_tables().flash_bytes()
