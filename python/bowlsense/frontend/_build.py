"""cffi build of the C front end, compiled from firmware/frontend (the one copy; never forked)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from _cbuild import make_ffibuilder  # noqa: E402

ffibuilder = make_ffibuilder(
    "bowlsense.frontend._frontend_cffi",
    src_dirs=["firmware/frontend"],
    headers=["firmware/frontend/bs_frontend.h"],
    opaque_structs=("bs_frontend_state",),
)
