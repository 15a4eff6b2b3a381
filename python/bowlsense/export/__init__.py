"""`bowlsense export`: turn model.tflite + model.json into the C the firmware compiles.

    result = export_model("models/default", "build/model_c")

Checks that the two files belong together (tflite sha256, front end hash, quantization, labels), lowers
the model with bowlsense.nn (refusing what the engine cannot run, naming the operator), writes
bs_model.h, bs_model_graph.c and bs_model_tflite.c (see firmware/nn/README.md), and re-checks the
result: the lowered graph run by the C engine must equal tflite_micro on a few inputs.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np

from ..frontend.config import DEFAULT_CONFIG
from ..manifest import Manifest, sha256_file, write_atomic
from ..nn.lower import Graph, lower
from ..nn.tflite import load
from .model_c import graph_c, header, tflite_c

OUTPUT_FILES = ("bs_model.h", "bs_model_graph.c", "bs_model_tflite.c")


class ExportError(ValueError):
    """model.tflite and model.json do not belong together, or the model cannot be exported."""


@dataclasses.dataclass
class ExportResult:
    files: list[pathlib.Path]
    graph: Graph
    manifest: Manifest
    changed: list[pathlib.Path]      # files whose content changed (others were left untouched)


def check_manifest(manifest: Manifest, graph: Graph, tflite_path: pathlib.Path, manifest_path: pathlib.Path) -> None:
    if manifest.tflite_sha256 != graph.tflite_sha256:
        raise ExportError(f"{manifest_path}: tflite_sha256 {manifest.tflite_sha256[:12]}... does not match "
                          f"{tflite_path} ({graph.tflite_sha256[:12]}...): the two files are not from the same run")
    if manifest.frontend_hash != DEFAULT_CONFIG.hash:
        raise ExportError(f"{manifest_path}: the model was trained with front end {manifest.frontend_hash[:12]}, "
                          f"the firmware's front end is {DEFAULT_CONFIG.hash[:12]}; retrain or rebuild the front end")
    if graph.output.size != len(manifest.labels):
        raise ExportError(f"{tflite_path}: {graph.output.size} outputs, {manifest_path} lists {len(manifest.labels)} labels")
    for what, q, t in (("input", manifest.input, graph.input), ("output", manifest.output, graph.output)):
        if np.float32(q.scale) != np.float32(t.scale) or int(q.zero_point) != t.zero_point:
            raise ExportError(f"{manifest_path}: {what} quantization {q.scale}/{q.zero_point} differs from the "
                              f"model's int8 {what} {t.scale}/{t.zero_point}")


def self_check(graph: Graph, tflite_path: pathlib.Path, n: int = 3) -> None:
    """The lowered graph on the C engine must equal tflite_micro (the check export re-runs every time)."""
    from ..nn.engine import Engine
    from ..nn.oracle import Oracle
    engine, oracle = Engine(graph), Oracle(tflite_path)
    rng = np.random.default_rng(0)
    for i in range(n):
        if graph.input_float is not None:
            x = rng.uniform(-8, 4, size=graph.input_shape).astype(np.float32)
            got, want = engine.invoke_float(x), oracle.invoke(x)
        else:
            x = rng.integers(-128, 128, size=graph.input_shape, dtype=np.int16).astype(np.int8)
            got, want = engine.invoke(x), oracle.invoke(x)
        if not np.array_equal(got.reshape(-1), np.asarray(want).reshape(-1)):
            raise ExportError(f"{tflite_path}: self-check failed: engine and tflite_micro differ on input {i}")


def export_model(model_dir: str | os.PathLike, out_dir: str | os.PathLike, check: bool = True,
                 progress: bool = True) -> ExportResult:
    model_dir, out_dir = pathlib.Path(model_dir), pathlib.Path(out_dir)
    tflite_path, manifest_path = model_dir / "model.tflite", model_dir / "model.json"
    if not tflite_path.exists():
        raise ExportError(f"{tflite_path}: not found (MODEL_DIR must hold model.tflite and model.json)")
    manifest = Manifest.load(manifest_path)
    model = load(tflite_path)
    graph = lower(model)
    check_manifest(manifest, graph, tflite_path, manifest_path)
    if check:
        self_check(graph, tflite_path)
    inputs = [("model.tflite", model.sha256), ("model.json", sha256_file(manifest_path))]
    texts = {
        "bs_model.h": header(manifest, graph, len(model.data), inputs),
        "bs_model_graph.c": graph_c(manifest, graph, inputs, progress=progress),
        "bs_model_tflite.c": tflite_c(model.data, model.sha256, inputs),
    }
    files, changed = [], []
    for name, text in texts.items():
        path = out_dir / name
        # Leave identical files untouched so make does not rebuild the firmware for nothing.
        if not path.exists() or path.read_text() != text:
            write_atomic(path, text)
            changed.append(path)
        files.append(path)
    return ExportResult(files, graph, manifest, changed)
