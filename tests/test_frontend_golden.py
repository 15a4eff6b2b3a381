"""Committed golden frames: a change to the front end's output bits must be deliberate.

The C library and the numpy reference are compared on every run; this file also pins their shared
output to vectors committed with a stamp (the front end config hash, which includes the algorithm
version). Regenerate only on purpose: `pytest tests/test_frontend_golden.py --update-golden`, after
bumping FrontendConfig.algorithm_version (models trained on the old bits must be retrained)."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

from bowlsense.frontend import DEFAULT_CONFIG, Frontend
from bowlsense.frontend.reference import reference_logmel
from frontend_signals import adversarial_signals

GOLDEN = pathlib.Path(__file__).parent / "golden" / "frontend_adversarial.npz"


def _signals():
    return adversarial_signals(0.25)


def test_frames_equal_the_committed_golden_vectors(request):
    fe = Frontend()
    current = {name: fe.process(pcm) for name, pcm in _signals().items()}
    if request.config.getoption("--update-golden"):
        for name, pcm in _signals().items():
            np.testing.assert_array_equal(current[name], reference_logmel(pcm))
        np.savez_compressed(GOLDEN, stamp=np.array(DEFAULT_CONFIG.hash), **current)
        pytest.fail(f"golden vectors rewritten to {GOLDEN}: review and commit them, then rerun without the flag")
    golden = np.load(GOLDEN)
    assert str(golden["stamp"]) == DEFAULT_CONFIG.hash, (
        "the front end config changed since the golden vectors were made: if the new output bits are "
        "intended, rerun with --update-golden and retrain the shipped model")
    assert sorted(k for k in golden.files if k != "stamp") == sorted(current)
    for name, frames in current.items():
        np.testing.assert_array_equal(frames, golden[name], err_msg=name)
