"""tflite_micro's Python interpreter as the oracle the engine is checked against (TFLite Micro's
reference kernels), plus reading its arena size from print_allocations()."""
from __future__ import annotations

import os
import re
import sys
import tempfile

import numpy as np


class Oracle:
    """tflite_micro's interpreter (TFLite Micro reference kernels) on one model."""

    def __init__(self, model: bytes | str | os.PathLike):
        from tflite_micro.python.tflite_micro import runtime
        if isinstance(model, (bytes, bytearray)):
            self.interp = runtime.Interpreter.from_bytes(bytes(model))
        else:
            self.interp = runtime.Interpreter.from_file(str(model))
        self.input_details = self.interp.get_input_details(0)

    def invoke(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x).reshape(self.input_details["shape"])
        self.interp.set_input(x.astype(self.input_details["dtype"]), 0)
        self.interp.invoke()
        return self.interp.get_output(0).copy()

    def arena_used_bytes(self) -> int:
        """The arena TFLite Micro needs for this model (print_allocations(), which writes to C stderr)."""
        text = capture_c_stderr(self.interp.print_allocations)
        m = re.search(r"\[RecordingMicroAllocator\] Arena allocation total (\d+) bytes", text)
        if not m:
            raise RuntimeError(f"could not read the arena size from print_allocations():\n{text}")
        return int(m.group(1))


def capture_c_stderr(fn) -> str:
    """Run fn() and return what C code wrote to file descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode(errors="replace")
