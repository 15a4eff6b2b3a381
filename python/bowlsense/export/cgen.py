"""Small C text helpers for generated files: banner, identifiers, arrays and exact float literals."""
from __future__ import annotations

import re

import numpy as np

from .. import __version__

GENERATOR = "bowlsense export"


def banner(filename: str, inputs: list[tuple[str, str]]) -> str:
    """Opening comment of a generated file. No date or path, so regeneration is byte-identical."""
    lines = [f" * {filename}: GENERATED FILE, DO NOT EDIT.",
             f" * Generator: {GENERATOR} (bowlsense {__version__}, python/bowlsense/export).",
             " * Inputs:"]
    lines += [f" *   {name} sha256 {sha}" for name, sha in inputs]
    lines.append(" * Regenerate with `bowlsense export MODEL_DIR OUT_DIR`.")
    return "/*\n" + "\n".join(lines) + "\n */\n"


def c_string(text: str) -> str:
    """A C string literal (ASCII; anything else escaped)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode())
    return '"' + "".join(out) + '"'


def c_comment(text: str) -> str:
    """Text safe inside /* */."""
    return re.sub(r"\*/", "* /", text).replace("\n", " ")


def c_float(value: float) -> str:
    """Exact float32 literal (C99 hex float)."""
    v = float(np.float32(value))
    if v == 0.0:
        return "0.0f"
    return f"{v.hex()}f"


def c_array_body(values: np.ndarray, per_line: int = 24, indent: str = "    ") -> str:
    flat = np.asarray(values).reshape(-1)
    if flat.size == 0:
        return indent + "0"
    items = flat.astype(np.int64).tolist()
    lines = []
    for i in range(0, len(items), per_line):
        lines.append(indent + ", ".join(map(str, items[i:i + per_line])) + ",")
    return "\n".join(lines)


def c_int32(v: int) -> str:
    """An int32 value as a C expression that is int32 on every target (INT32_MIN needs care)."""
    v = int(v)
    if v == -(1 << 31):
        return "INT32_MIN"
    return str(v)


def hex_bytes_body(data: bytes, per_line: int = 16, indent: str = "    ") -> str:
    lines = []
    for i in range(0, len(data), per_line):
        chunk = data[i:i + per_line]
        lines.append(indent + ", ".join(f"0x{b:02x}" for b in chunk) + ",")
    return "\n".join(lines)
