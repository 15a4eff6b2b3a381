"""`bowlsense` console script. One module per subcommand in this package; each defines

    HELP = "one line for the command list"
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int

and imports heavy dependencies (TensorFlow) inside run(), so `bowlsense --help` and the device
commands start fast.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from .. import __version__

# Order is the order shown in --help: the pipeline from data to device.
COMMANDS = ["data", "frontend", "train", "crossval", "compare", "thresholds", "evaluate", "predict", "export", "device", "flash", "demo"]


def _available():
    for name in COMMANDS:
        module_name = f"{__name__}.{name}"
        if importlib.util.find_spec(module_name) is not None:
            yield name, importlib.import_module(module_name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bowlsense",
        description="Train a privacy-preserving sound detector on verified clips and run it on a "
        "microcontroller.",
    )
    parser.add_argument("--version", action="version", version=f"bowlsense {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _available():
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
