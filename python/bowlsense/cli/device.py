"""Talk to the firmware over its serial protocol (firmware/proto/PROTOCOL.md).

Without --port the QEMU image (Cortex-M4F, mps2-an386) is built if needed, booted for the command and
stopped afterwards. With --port, a board or an already running device: /dev/ttyACM0, COM3, or
socket://127.0.0.1:PORT (e.g. what `bowlsense flash --board qemu` prints).

examples:
  bowlsense device info
  bowlsense device features clip.wav --out frames.npy     # device log-mel, checked against the host's
  bowlsense device infer clip.wav                         # raw int8 scores per 0.96 s window
  bowlsense device listen kitchen.wav --realtime          # stream audio, print events as they happen
  bowlsense device bench                                  # instructions per stage, load, memory
  bowlsense device info --port /dev/ttyACM0 --baud 115200
"""
from __future__ import annotations

import argparse
import json
import sys
import time

HELP = "talk to the firmware: info, features, infer, listen, bench (QEMU unless --port)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--port", help="serial port or URL (default: boot the QEMU image)")
    common.add_argument("--baud", type=int, default=115200, help="baud rate for real serial ports")
    common.add_argument("--machine", default="mps2-an386", choices=["mps2-an386", "mps2-an500"],
                        help="QEMU machine when no --port is given")
    common.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each reply")
    common.add_argument("--elf", help="boot this QEMU image as it is (e.g. one built with another FW_MODEL/"
                                      "FW_BUILD) instead of building build/firmware's")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = sub.add_parser("info", parents=[common], help="HELLO: firmware, board, model, labels, clock")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("features", parents=[common], help="log-mel frames computed on the device")
    p.add_argument("audio", help="audio file (any format the data layer reads)")
    p.add_argument("--out", help="save the (n, 64) int16 frames as .npy")
    p.add_argument("--chunk", type=int, default=1024, help="samples per request (1..1024)")
    p.add_argument("--no-check", action="store_true", help="skip the comparison with the host front end")

    p = sub.add_parser("infer", parents=[common], help="raw int8 scores per window, computed on the device")
    p.add_argument("audio", help="audio file")
    p.add_argument("--max-windows", type=int, default=0, help="stop after N windows (0: all)")
    p.add_argument("--json", action="store_true", help="one JSON line per window")

    p = sub.add_parser("listen", parents=[common], help="stream audio through the device, print events live")
    p.add_argument("audio", nargs="*", help="audio files, streamed one after another")
    p.add_argument("--mic", type=float, metavar="SECONDS", help="boards with a microphone: listen to it for "
                   "SECONDS instead of streaming files")
    p.add_argument("--realtime", action="store_true", help="pace the stream at 16 kHz (default: as fast "
                   "as the link goes)")
    p.add_argument("--capture", action="store_true", help="opt-in capture mode: save the snippets the "
                   "privacy gate lets out")
    p.add_argument("--capture-dir", default="captures", help="where --capture writes WAV snippets")
    p.add_argument("--scores", action="store_true", help="also print each window's raw scores")

    p = sub.add_parser("bench", parents=[common], help="instructions/cycles per stage, real-time load, memory")
    p.add_argument("audio", nargs="?", help="audio to stream (default: 10 s of deterministic noise)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the default noise stream")
    p.add_argument("--clock-mhz", type=float, default=64.0, help="CPU clock for the load figure")
    p.add_argument("--json", action="store_true", help="print JSON")


def _open(args):
    from ..device import open_device
    if not args.port:
        print(f"booting the QEMU image on {args.machine} ...", file=sys.stderr)
    return open_device(port=args.port, baudrate=args.baud, machine=args.machine, timeout=args.timeout,
                       elf=args.elf)


def _load(path):
    from ..data.audio import load_audio
    return load_audio(path)


def _unit(hello) -> str:
    return {0: "cycles", 1: "instructions", 2: "ns"}[int(hello.cycle_unit)]


def run(args: argparse.Namespace) -> int:
    try:
        with _open(args) as dev:
            return {"info": _info, "features": _features, "infer": _infer, "listen": _listen,
                    "bench": _bench}[args.verb](dev, args)
    except (FileNotFoundError, ValueError, RuntimeError, ConnectionError, TimeoutError) as e:
        print(f"bowlsense device {args.verb}: {e}", file=sys.stderr)
        return 1


def _info(dev, args) -> int:
    import dataclasses
    h = dev.hello()
    if args.json:
        d = dataclasses.asdict(h)
        d["cycle_unit"] = _unit(h)
        print(json.dumps(d, indent=2))
        return 0
    print(f"board          {h.board}")
    print(f"firmware       {h.fw_version} (git {h.git_sha}), protocol v{h.protocol_version}, "
          f"max payload {h.max_payload} B")
    print(f"clock          {h.core_clock_hz / 1e6:g} MHz; counter in {_unit(h)} (resolution {h.cycle_resolution})")
    print(f"front end      {h.frontend_hash}")
    if not h.model_present:
        print("model          NONE: this firmware was built without a model (front end only)")
        return 0
    print(f"model          sha256 {h.model_sha256} (trained on front end {h.model_frontend_hash[:12]})")
    print(f"smoothing      {h.smoothing_windows} windows, events of >= {h.min_event_windows} windows")
    for lab in h.labels:
        print(f"  {lab.name:<12} on_sum {lab.on_sum:>6}  off_sum {lab.off_sum:>6}"
              + (f"  privacy gate at raw >= {lab.gate_q}" if lab.privacy else ""))
    return 0


def _features(dev, args) -> int:
    import numpy as np
    pcm = _load(args.audio)
    frames, cycles = dev.features(pcm, chunk=args.chunk)
    h = dev.hello()
    print(f"{len(frames)} frames from {len(pcm) / 16000:.2f} s; front end {cycles / max(len(frames), 1):.0f} "
          f"{_unit(h)} per hop")
    if args.out:
        np.save(args.out, frames)
        print(f"wrote {args.out}")
    if not args.no_check:
        from ..frontend import Frontend
        host = Frontend().process(pcm)
        same = host.shape == frames.shape and bool((host == frames).all())
        print("bit-exact with the host front end" if same else
              f"DIFFERENT from the host front end ({int((host != frames).sum())} values differ)")
        return 0 if same else 1
    return 0


def _infer(dev, args) -> int:
    from ..frontend import Frontend
    h = dev.hello()
    if not h.model_present:
        print("this firmware has no model (built before `bowlsense export`); nothing to infer", file=sys.stderr)
        return 1
    fe = Frontend()
    patches = fe.patches(fe.process(_load(args.audio)))
    if args.max_windows:
        patches = patches[:args.max_windows]
    for k, patch in enumerate(patches):
        scores, cycles = dev.infer(patch)
        if args.json:
            print(json.dumps({"window": k, "start_s": round(k * 0.48, 2), "cycles": cycles,
                              "unit": _unit(h), "scores": dict(zip(h.label_names, map(int, scores)))}))
        else:
            text = "  ".join(f"{n}={int(s):4d}" for n, s in zip(h.label_names, scores))
            print(f"{k * 0.48:7.2f} s  {text}   ({cycles} {_unit(h)})")
    return 0


def _listen(dev, args) -> int:
    from ..device.protocol import MsgType, WindowScores
    h = dev.hello()
    if not h.model_present:
        print("note: this firmware has no model, so no events will come (front end only)", file=sys.stderr)
    names = h.label_names

    def show(ev):
        name = names[ev.label] if ev.label < len(names) else str(ev.label)
        if ev.kind == "begin":
            print(f"[{ev.start_s:8.2f} s] {name} started (peak so far {ev.peak})", flush=True)
        else:
            print(f"[{ev.end_s:8.2f} s] {name} ended: {ev.start_s:.2f}-{ev.end_s:.2f} s, peak {ev.peak}",
                  flush=True)

    if not args.audio and not args.mic:
        print("bowlsense device listen: give audio files, or --mic SECONDS on a board with a microphone",
              file=sys.stderr)
        return 2
    if args.capture:
        dev.capture(True)
    if args.mic:
        print(f"listening to the microphone for {args.mic:g} s", flush=True)
        from ..device import DeviceError
        try:
            result = dev.listen_mic(args.mic, scores=args.scores, on_event=show)
        except DeviceError as e:
            if getattr(e.code, "name", "") == "BAD_ARG":
                print(f"bowlsense device listen: {h.board} has no microphone; stream files instead",
                      file=sys.stderr)
                return 1
            raise
        print(f"  {result.counts.windows} windows, {len(result.ended)} events", flush=True)
        if args.capture:
            _save_captures(result.audio, args.capture_dir, "mic")
    for path in args.audio:
        pcm = _load(path)
        print(f"streaming {path} ({len(pcm) / 16000:.1f} s{', real time' if args.realtime else ''})", flush=True)
        if args.scores:
            def on_frame(frame):
                if frame.type == MsgType.SCORES:
                    s = WindowScores.parse(frame.payload)
                    print(f"  window {s.window}: " + " ".join(f"{n}={v}" for n, v in zip(names, s.scores)))
            dev.on_frame = on_frame
        t0 = time.monotonic()
        result = dev.stream(pcm, scores=args.scores, realtime=args.realtime, on_event=show)
        dev.on_frame = None
        print(f"  {result.counts.windows} windows, {len(result.ended)} events, "
              f"{len(pcm) / 16000 / max(time.monotonic() - t0, 1e-9):.1f}x real time", flush=True)
        if args.capture:
            _save_captures(result.audio, args.capture_dir, path)
    if args.capture:
        dev.capture(False)
        s = dev.stats()
        print(f"capture: {s.capture_sent} windows sent, {s.capture_suppressed} suppressed by the privacy "
              f"gate, {s.capture_dropped} dropped (no event)")
    return 0


def _save_captures(chunks, out_dir, source) -> None:
    import pathlib
    import numpy as np
    from ..data.audio import write_wav
    by_window: dict[int, list] = {}
    for c in chunks:
        by_window.setdefault(c.window, []).append(c)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for w, parts in sorted(by_window.items()):
        parts.sort(key=lambda c: c.first_sample)
        pcm = np.frombuffer(b"".join(c.samples for c in parts), dtype="<i2").astype(np.int16)
        path = out / f"{pathlib.Path(source).stem}_w{w:05d}.wav"
        write_wav(path, pcm)
    if by_window:
        print(f"  wrote {len(by_window)} snippets to {out}/")


def _bench(dev, args) -> int:
    import numpy as np
    h = dev.hello()
    if args.audio:
        pcm = _load(args.audio)
        source = args.audio
    else:
        rng = np.random.default_rng(0)
        pcm = (rng.standard_normal(int(args.seconds * 16000)) * 3000).astype(np.int16)
        source = f"{args.seconds:g} s of deterministic noise"
    before = dev.stats()
    t0 = time.monotonic()
    result = dev.stream(pcm)
    wall = time.monotonic() - t0
    s = dev.stats()
    unit = _unit(h)
    d = lambda k: s.values[k] - before.values[k]  # noqa: E731 - this run only
    hops, infers = d("fe_hops"), d("infer_count")
    audio_s = d("stream_samples") / 16000
    loop = d("loop_cycles_total")
    report = {
        "device": h.board, "git_sha": h.git_sha, "model_sha256": h.model_sha256 or None, "unit": unit,
        "audio": source, "audio_seconds": audio_s, "windows": result.counts.windows,
        "frontend_per_hop": d("fe_cycles_total") / hops if hops else None,
        "frontend_max_hop": s.fe_cycles_max,
        "quantize_per_hop": d("quant_cycles_total") / hops if hops else None,
        "inference_per_patch": d("infer_cycles_total") / infers if infers else None,
        "inference_max": s.infer_cycles_max if infers else None,
        "post_per_window": d("post_cycles_total") / infers if infers else None,
        "loop_per_audio_second": loop / audio_s if audio_s else None,
        "load_at_clock": (loop / audio_s) / (args.clock_mhz * 1e6) if audio_s else None,
        "clock_mhz": args.clock_mhz,
        "flash_bytes": s.flash_bytes, "static_ram_bytes": s.static_ram_bytes,
        "stack_used_bytes": s.stack_used_bytes, "stack_size_bytes": s.stack_size_bytes,
        "arena_bytes": s.arena_bytes, "link_seconds": wall,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"device {h.board} (git {h.git_sha}); counts in {unit}"
          + (" (QEMU -icount shift=0: 1 instruction = 1 ns; resolution 40)" if unit == "instructions" else ""))
    print(f"streamed {source}: {audio_s:.2f} s, {result.counts.windows} windows")
    print(f"  front end        {report['frontend_per_hop']:>12,.0f} {unit}/hop (max {s.fe_cycles_max:,}; target <= 25,000)")
    print(f"  quantize to int8 {report['quantize_per_hop']:>12,.0f} {unit}/hop")
    if infers:
        print(f"  inference        {report['inference_per_patch']:>12,.0f} {unit}/patch (max {s.infer_cycles_max:,})")
        print(f"  smoothing + gate {report['post_per_window']:>12,.0f} {unit}/window")
    else:
        print("  inference        (no model in this firmware)")
    if report["loop_per_audio_second"] is not None:
        print(f"  whole loop       {report['loop_per_audio_second']:>12,.0f} {unit} per second of audio = "
              f"{report['load_at_clock']:.1%} of a {args.clock_mhz:g} MHz core (target < 35%)")
    if s.flash_bytes:
        print(f"  flash {s.flash_bytes:,} B (<= 262,144); RAM {s.static_ram_bytes:,} B static + "
              f"{s.stack_used_bytes:,} B stack high-water = {s.static_ram_bytes + s.stack_used_bytes:,} B "
              f"(<= 98,304); model arena {s.arena_bytes:,} B")
    return 0
