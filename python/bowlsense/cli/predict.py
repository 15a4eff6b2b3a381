"""Score audio files with a trained model, window by window, through the int8 integer path the device uses.

Each file is cut into 0.96 s windows every 0.48 s (a file shorter than one window is centred in silence
and scored once). Output, one line per window:

  --format jsonl   {"file": "a.wav", "start_s": 0.48, "scores": {"eating": 0.91, "drinking": 0.0, ...}}
  --format tsv     a header "file<TAB>start_s<TAB>LABEL..." then one row per window (default)

Scores are the int8 model's outputs dequantized to probabilities in [0, 1], one per label of model.json.
This format is stable: evaluation scripts read it.

example:
  bowlsense predict models/default clip.wav --format jsonl
"""
from __future__ import annotations

import argparse
import json
import sys

HELP = "per-window scores for audio files (int8 model, device integer path)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="folder with model.tflite and model.json")
    parser.add_argument("audio", metavar="AUDIO", nargs="+", help="WAV/FLAC/OGG/MP3 files, any rate 8-48 kHz")
    parser.add_argument("--format", choices=("tsv", "jsonl"), default="tsv", help="output format (default tsv)")


def run(args: argparse.Namespace) -> int:
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ..data.audio import AudioError
    from ..train.predict import ModelDirError, load_model, predict_file
    try:
        manifest, model = load_model(args.model_dir)
    except (FileNotFoundError, ValueError, ModelDirError) as e:
        print(f"bowlsense predict: {e}", file=sys.stderr)
        return 2
    if not model.backend.startswith("bowlsense.nn"):
        print(f"bowlsense predict: int8 path: {model.backend}", file=sys.stderr)
    if args.format == "tsv":
        print("\t".join(["file", "start_s", *manifest.labels]))
    failed = 0
    for path in args.audio:
        try:
            for row in predict_file(manifest, model, path):
                if args.format == "jsonl":
                    print(json.dumps(row))
                else:
                    print("\t".join([row["file"], f"{row['start_s']:.2f}",
                                     *(f"{row['scores'][l]:.4f}" for l in manifest.labels)]))
        except AudioError as e:
            print(f"bowlsense predict: {e}", file=sys.stderr)
            failed += 1
    sys.stdout.flush()
    return 1 if failed else 0
