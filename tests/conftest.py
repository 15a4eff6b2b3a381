"""Shared fixtures. Data from ../shared is required where a test uses it: when it is missing the
test fails and says what it needs, it never passes quietly."""
from __future__ import annotations

import pytest

from bowlsense import paths


def _require(path, what):
    if not path.exists():
        pytest.fail(f"this test needs {what} at {path} (set BOWLSENSE_SHARED to the shared/ folder)")
    return path


@pytest.fixture(scope="session")
def shared_data_dir():
    return _require(paths.shared_data_dir() / "labels.csv", "the real clips of ../shared/data").parent


@pytest.fixture(scope="session")
def yamnet_dir():
    return _require(paths.shared_yamnet_dir() / "yamnet_int8_logmel_in.tflite",
                    "the pretrained YAMNet files of ../shared/yamnet").parent


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite committed golden vectors (tests/golden) from the current code")
