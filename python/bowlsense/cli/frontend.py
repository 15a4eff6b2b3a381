"""Inspect, measure and use the fixed-point log-mel front end.

  bowlsense frontend info                   configuration, hash, memory
  bowlsense frontend features CLIP.wav      log-mel frames as .npy and a spectrogram PNG
  bowlsense frontend fidelity               error vs YAMNet's float recipe on ../shared/data, and
                                            what the pretrained int8 YAMNet decides on both
  bowlsense frontend bench                  host throughput ratios, Cortex-M4 instructions per hop
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

HELP = "inspect, measure and use the fixed-point log-mel front end"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    sub.add_parser("info", help="configuration, hash and memory of the compiled front end")
    p = sub.add_parser("features", help="compute log-mel frames of audio files")
    p.add_argument("audio", nargs="+", type=pathlib.Path, help="audio files (any format bowlsense.data loads)")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("."), help="folder for .npy and .png")
    p = sub.add_parser("fidelity", help="fixed point vs YAMNet's float recipe on real clips")
    p.add_argument("--data", type=pathlib.Path, default=None, help="dataset folder (default ../shared/data)")
    p.add_argument("--yamnet", type=pathlib.Path, default=None,
                   help="yamnet_int8_logmel_in.tflite (default ../shared/yamnet)")
    p = sub.add_parser("bench", help="throughput ratios on the host, instructions per hop on Cortex-M4")
    p.add_argument("--no-tf", action="store_true", help="skip the tf.signal baseline")
    p.add_argument("--no-qemu", action="store_true", help="skip the Cortex-M4 measurement")


def run(args: argparse.Namespace) -> int:
    return {"info": _info, "features": _features, "fidelity": _fidelity, "bench": _bench}[args.verb](args)


def _info(args) -> int:
    from ..frontend import Frontend

    fe = Frontend()
    print(json.dumps({"config": fe.config.to_dict(), "hash": fe.config.hash, "state_bytes": fe.state_bytes,
                      "table_bytes": fe.table_bytes, "output": "int16 Q10 (value / 1024 = nats)"}, indent=2))
    return 0


def _features(args) -> int:
    import numpy as np

    from ..data.audio import AudioError, load_audio
    from ..frontend import Frontend
    from ..plots import save_spectrogram

    fe = Frontend()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.audio:
        try:
            pcm = load_audio(path)
        except AudioError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        frames = fe.process(pcm)
        np.save(args.out / f"{path.stem}.logmel.npy", frames)
        save_spectrogram(fe.to_float(frames), args.out / f"{path.stem}.logmel.png", title=path.name)
        print(f"{path}: {len(frames)} frames -> {args.out / (path.stem + '.logmel.npy')}, .png")
    return 0


def _fidelity(args) -> int:
    import csv

    from .. import paths
    from ..data.audio import load_audio
    from ..frontend.fidelity_report import fidelity_report

    data = args.data or paths.shared_data_dir()
    yamnet = args.yamnet or paths.shared_yamnet_dir() / "yamnet_int8_logmel_in.tflite"
    for need, what in ((data / "labels.csv", "a dataset folder with labels.csv (--data)"),
                       (yamnet, "yamnet_int8_logmel_in.tflite (--yamnet)")):
        if not need.exists():
            print(f"error: {need} not found: give {what}", file=sys.stderr)
            return 2
    rows = list(csv.DictReader(open(data / "labels.csv", newline="")))
    clips = [load_audio(data / r["path"]) for r in rows]
    report = fidelity_report(clips, yamnet, progress=True)
    print("\n".join(report.lines()))
    return 0


def _bench(args) -> int:
    from ..frontend.bench import report

    for line in report(with_tf=not args.no_tf, with_qemu=not args.no_qemu):
        print(line)
    return 0
