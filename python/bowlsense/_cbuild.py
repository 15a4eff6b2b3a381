"""Shared helpers for the cffi build scripts: each C library under firmware/ is compiled from its one
copy there into an out-of-line API extension (run by setup.py at install time, editable included)."""
from __future__ import annotations

import pathlib
import re

from cffi import FFI

ROOT = pathlib.Path(__file__).resolve().parents[2]


def cdef_from_header(path: pathlib.Path, opaque_structs: tuple[str, ...] = ()) -> str:
    """Headers under firmware/ are written so cffi can parse them once comments, preprocessor lines
    and the C++ guards are removed. Structs named in opaque_structs get a `...;` body so cffi asks the
    C compiler for their layout (their arrays are sized by enum constants)."""
    text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for name in opaque_structs:
        pattern = r"typedef struct \{[^}]*\}\s*" + name + ";"
        text, count = re.subn(pattern, f"typedef struct {{ ...; }} {name};", text)
        if count != 1:
            raise RuntimeError(f"{path}: struct {name} not found for cffi")
    return text


def make_ffibuilder(module: str, src_dirs: list[str], headers: list[str],
                    opaque_structs: tuple[str, ...] = ()) -> FFI:
    """An FFI that compiles every .c file in src_dirs (relative to the repo root) into `module`."""
    ffi = FFI()
    for header in headers:
        ffi.cdef(cdef_from_header(ROOT / header, opaque_structs))
    sources = [str(p.relative_to(ROOT)) for d in src_dirs for p in sorted((ROOT / d).glob("*.c"))]
    ffi.set_source(
        module,
        "\n".join(f'#include "{pathlib.Path(h).name}"' for h in headers),
        sources=sources,
        include_dirs=src_dirs,
        extra_compile_args=["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"],
    )
    return ffi
