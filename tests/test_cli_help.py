"""`bowlsense --help` and every command's --help: they work, and they do not import TensorFlow or Keras
(seconds of start-up, as the cli package promises; a module-level Keras import once slipped in through
train/pipeline.py and made every --help take 5 s)."""
from __future__ import annotations

import subprocess
import sys

from bowlsense.cli import COMMANDS

PROBE = """
import contextlib, io, sys
from bowlsense.cli import build_parser
parser = build_parser()
for argv in [["--help"]] + [[c, "--help"] for c in sys.argv[1:]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            parser.parse_args(argv)
        except SystemExit as e:
            assert e.code == 0, (argv, e.code)
    assert "usage: bowlsense" in out.getvalue(), argv
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print("heavy:", ",".join(heavy) or "none")
"""


def test_every_help_works_without_importing_tensorflow():
    done = subprocess.run([sys.executable, "-c", PROBE, *COMMANDS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "heavy: none"
