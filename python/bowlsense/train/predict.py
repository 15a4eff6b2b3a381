"""Scores per 0.96 s window (hop 0.48 s) for audio files, with the int8 model through the integer path
the device uses: front end (C, Q10) -> int8 requantization with the model's input scale -> int8 engine ->
output dequantized with the model's output scale.

Windows: window k of a file starts at k x 0.48 s and spans 0.96 s; only whole windows are scored, except
that a file shorter than one window is centred in silence and scored once (start 0.0).
"""
from __future__ import annotations

import pathlib
from typing import Iterator

from .features import HOP_S, pcm_patches


class ModelDirError(ValueError):
    pass


def load_model(model_dir):
    """(Manifest, Int8Model) from MODEL_DIR, after checking the tflite against the manifest."""
    from ..frontend import DEFAULT_CONFIG
    from ..manifest import Manifest, sha256_file
    from .quantize import Int8Model
    model_dir = pathlib.Path(model_dir)
    manifest = Manifest.load(model_dir)
    tflite = model_dir / "model.tflite"
    if not tflite.exists():
        raise ModelDirError(f"{tflite}: missing (train a model with `bowlsense train`)")
    if sha256_file(tflite) != manifest.tflite_sha256:
        raise ModelDirError(f"{tflite}: sha256 differs from model.json's tflite_sha256; the two files do not "
                            "belong together (retrain, or copy both from the same run)")
    if manifest.frontend_hash != DEFAULT_CONFIG.hash:
        raise ModelDirError(f"{model_dir}: trained on front end {manifest.frontend_hash[:12]}, this build computes "
                            f"{DEFAULT_CONFIG.hash[:12]}; retrain the model (`make model`)")
    model = Int8Model(tflite.read_bytes())
    if abs(model.input_q["scale"] - manifest.input.scale) > 1e-9 or model.input_q["zero_point"] != manifest.input.zero_point:
        raise ModelDirError(f"{model_dir}: model.json's input quantization does not match model.tflite")
    return manifest, model


def predict_file(manifest, model, path) -> Iterator[dict]:
    """One dict per window: {"file", "start_s", "scores": {label: probability}}."""
    from ..data.audio import load_audio
    patches = pcm_patches(load_audio(path))
    scores = model(patches)
    for k, row in enumerate(scores):
        yield {"file": str(path), "start_s": round(k * HOP_S, 2),
               "scores": {label: round(float(v), 4) for label, v in zip(manifest.labels, row)}}
