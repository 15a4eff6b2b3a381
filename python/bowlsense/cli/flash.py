"""Put the firmware on a device.

  --board qemu            build the QEMU image (Cortex-M4F, mps2-an386), boot it, check HELLO, and keep
                          it running until Ctrl-C; other commands reach it with --port socket://...
  --board nano33ble       Arduino Nano 33 BLE Sense (nRF52840, PDM microphone)
  --board pico            Raspberry Pi Pico (RP2040)
  --board nucleo_l4r5zi   ST NUCLEO-L4R5ZI (STM32L4R5)
                          real boards: `pio run -e BOARD -t upload` on toolchain/platformio (PlatformIO
                          downloads the board's toolchain on first use, so this needs internet)

examples:
  bowlsense flash --board qemu
  bowlsense flash --board nano33ble --upload-port /dev/ttyACM0
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

from .. import paths

HELP = "build and flash the firmware (QEMU or a real board through PlatformIO)"
BOARDS = {"qemu": "QEMU mps2-an386 (Cortex-M4F)", "nano33ble": "Arduino Nano 33 BLE Sense",
          "pico": "Raspberry Pi Pico", "nucleo_l4r5zi": "NUCLEO-L4R5ZI"}
PIO_DIR = paths.REPO_ROOT / "toolchain" / "platformio"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--board", required=True, choices=sorted(BOARDS),
                        help="target: " + ", ".join(f"{k} ({v})" for k, v in BOARDS.items()))
    parser.add_argument("--upload-port", help="real boards: serial/USB port for the upload")
    parser.add_argument("--check", action="store_true",
                        help="qemu: boot, print HELLO and stop instead of staying up")
    parser.add_argument("--machine", default="mps2-an386", choices=["mps2-an386", "mps2-an500"],
                        help="qemu: the emulated board")


def run(args: argparse.Namespace) -> int:
    if args.board == "qemu":
        return _qemu(args)
    pio = shutil.which("pio") or shutil.which("platformio")
    venv_pio = paths.REPO_ROOT / ".venv" / "bin" / "pio"
    if pio is None and venv_pio.exists():
        pio = str(venv_pio)
    if pio is None:
        print("bowlsense flash: PlatformIO is not installed; `pip install platformio` (it is in the dev "
              "extras: pip install -e .[dev])", file=sys.stderr)
        return 1
    print("exporting the model for the board build (make firmware-model) ...", flush=True)
    if subprocess.call(["make", "--no-print-directory", "firmware-model"], cwd=paths.REPO_ROOT) != 0:
        return 1
    cmd = [pio, "run", "-d", str(PIO_DIR), "-e", args.board, "-t", "upload"]
    if args.upload_port:
        cmd += ["--upload-port", args.upload_port]
    print("running: " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd)
    if rc != 0:
        print(f"bowlsense flash: PlatformIO failed (exit {rc}). It downloads the {BOARDS[args.board]} "
              "platform and toolchain on first use, which needs internet access.", file=sys.stderr)
    return rc


def _qemu(args) -> int:
    from ..device import QemuDevice
    print("building the QEMU image (make firmware-qemu) ...", flush=True)
    try:
        dev = QemuDevice(machine=args.machine)
    except (FileNotFoundError, RuntimeError, ConnectionError, TimeoutError) as e:
        print(f"bowlsense flash: {e}", file=sys.stderr)
        return 1
    with dev:
        h = dev.hello()
        print(f"booted {h.board} on {args.machine}: firmware {h.fw_version} (git {h.git_sha}), "
              f"model {h.model_sha256[:12] or 'NONE'}")
        if args.check:
            return 0
        dev.client.close()  # free the serial socket for other clients
        dev.client = None
        print(f"running; talk to it with --port {dev.url}   (Ctrl-C stops QEMU)", flush=True)
        try:
            return_code = dev.proc.wait()
        except KeyboardInterrupt:
            print("stopping QEMU")
            return 0
        print(f"QEMU exited with code {return_code}", file=sys.stderr)
        return 1
