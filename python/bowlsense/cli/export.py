"""Write the C the firmware compiles for a trained model.

Reads MODEL_DIR/model.tflite and MODEL_DIR/model.json, checks they belong together (tflite sha256, front
end hash, quantization, labels), refuses ops/types the int8 engine cannot run (naming the operator), and
writes into OUT_DIR:

  bs_model.h          labels, thresholds (int8 domain), smoothing, quantization, hashes, arena size
  bs_model_graph.c    the model as a bs_nn_graph (weights, biases, multipliers, static memory plan)
  bs_model_tflite.c   the .tflite flatbuffer, 16-byte aligned, with accessors

Every file carries a banner with the inputs' sha256 and no date: exporting again gives identical bytes.
Before writing, the lowered model runs on the C engine and must equal tflite_micro bit for bit.

example: bowlsense export models/default build/model_c
"""
from __future__ import annotations

import argparse
import sys

HELP = "write C model files (graph for the int8 engine + aligned .tflite) for the firmware"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="folder with model.tflite and model.json")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder for bs_model.h, bs_model_graph.c, bs_model_tflite.c")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the engine-vs-tflite_micro self-check (not recommended)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> int:
    from ..export import ExportError, export_model
    from ..nn import TfliteError, UnsupportedModelError
    try:
        result = export_model(args.model_dir, args.out_dir, check=not args.no_check, progress=not args.quiet)
    except (ExportError, TfliteError, UnsupportedModelError, FileNotFoundError, ValueError) as e:
        print(f"bowlsense export: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        g = result.graph
        print(f"exported {args.model_dir} -> {args.out_dir}: {len(g.layers)} layers, {g.macs():,} MACs, "
              f"arena {g.arena_bytes:,} bytes, labels {', '.join(result.manifest.labels)}")
        for path in result.files:
            state = "written" if path in result.changed else "unchanged"
            print(f"  {path} ({state})")
    return 0
