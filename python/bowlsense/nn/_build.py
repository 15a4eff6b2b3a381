"""cffi build of the int8 engine, compiled from firmware/nn (the one copy the firmware also builds)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from _cbuild import make_ffibuilder  # noqa: E402

ffibuilder = make_ffibuilder(
    "bowlsense.nn._nn_cffi",
    src_dirs=["firmware/nn"],
    headers=["firmware/nn/bs_nn.h"],
)
