"""Where things live: the repository, ../shared (real data and YAMNet weights), caches."""
from __future__ import annotations

import os
import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def shared_dir() -> pathlib.Path:
    """../shared beside the checkout, or $BOWLSENSE_SHARED."""
    return pathlib.Path(os.environ.get("BOWLSENSE_SHARED", REPO_ROOT.parent / "shared")).resolve()


def shared_data_dir() -> pathlib.Path:
    return shared_dir() / "data"


def shared_yamnet_dir() -> pathlib.Path:
    return shared_dir() / "yamnet"


def cache_dir() -> pathlib.Path:
    """Feature and activation caches: $BOWLSENSE_CACHE, else .cache/ in the repository."""
    path = pathlib.Path(os.environ.get("BOWLSENSE_CACHE", REPO_ROOT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_model_dir() -> pathlib.Path:
    return REPO_ROOT / "models" / "default"
