"""Hardware-in-the-loop harness: the backend is chosen on the command line, never in a test.

    pytest hil_tests                          # QEMU mps2-an386: builds the image if needed, boots it
    pytest hil_tests -m quick                 # the quick subset
    pytest hil_tests --port /dev/ttyACM0 --board nano33ble       # a real board (--baud 115200)
    pytest hil_tests --port socket://127.0.0.1:4321              # anything that speaks the protocol

One `dut` fixture (hil_support.Dut) for every test. At session start the harness checks the device's HELLO
against what the host has (front end hash, model sha256, labels, event parameters) and stops the run
with a clear message on a mismatch. Tests marked `hardware` (wall-clock time, microphone) need a real
board and are skipped on QEMU with that reason. Every run writes results.json and summary.md to
--hil-report (default build/hil).

QEMU is started through bowlsense.device.QemuDevice, which kills it on exit, error, Ctrl-C and SIGTERM,
and makes the kernel kill it if this process dies (PR_SET_PDEATHSIG); the session fixture closes it too.
"""
from __future__ import annotations

import pathlib

import pytest

from bowlsense import paths

HIL_DIR = pathlib.Path(__file__).resolve().parent
REPORT_KEY = pytest.StashKey["object"]()
QEMU_TARGETS = {  # machine -> (make target suffix, ELF)
    "mps2-an386": ("qemu", "qemu-mps2-an386"),
    "mps2-an500": ("m7", "cortex-m7"),
}


def pytest_addoption(parser):
    g = parser.getgroup("hil", "bowlsense hardware-in-the-loop suite (hil_tests/)")
    g.addoption("--port", default=None, metavar="URL",
                help="serial device of a real board (/dev/ttyACM0, COM3) or a pyserial URL "
                     "(socket://host:port); default: build and boot the QEMU image")
    g.addoption("--baud", type=int, default=115200, help="baud rate for --port (default 115200)")
    g.addoption("--board", default=None, metavar="NAME",
                help="name of the attached board, for the report (default: what HELLO says)")
    g.addoption("--machine", default="mps2-an386", choices=sorted(QEMU_TARGETS),
                help="QEMU machine when no --port is given (default mps2-an386, Cortex-M4F)")
    g.addoption("--hil-report", default=str(paths.REPO_ROOT / "build" / "hil"), metavar="DIR",
                help="folder for results.json and summary.md (default build/hil)")
    g.addoption("--hil-clips", type=int, default=2, metavar="N",
                help="verified clips per label in the accuracy check (default 2; speech: twice as many short "
                     "utterances)")
    g.addoption("--hil-model", default=str(paths.default_model_dir()), metavar="DIR",
                help="the model the device must be running (default models/default)")


def _is_hil(item) -> bool:
    return HIL_DIR in pathlib.Path(str(item.fspath)).resolve().parents


def pytest_configure(config):
    from hil_report import Report
    config.addinivalue_line("markers", "quick_variant: a smaller copy of a longer check, run only when the "
                                       "longer one is not (-m quick); deselected otherwise")
    config.stash[REPORT_KEY] = Report(pathlib.Path(config.getoption("--hil-report")))


@pytest.hookimpl(trylast=True)   # after -m / -k have deselected
def pytest_collection_modifyitems(config, items):
    # A quick variant only stands in for its full check when that one is not selected (-m quick).
    full = {item.name for item in items if _is_hil(item) and not item.get_closest_marker("quick_variant")}
    drop = [item for item in items if _is_hil(item) and item.get_closest_marker("quick_variant")
            and item.get_closest_marker("quick_variant").args[0] in full]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if item not in drop]
    if config.getoption("--port"):
        return
    skip = pytest.mark.skip(reason="needs a real board (--port): wall-clock time and microphones do not "
                                   "exist on QEMU")
    for item in items:
        if _is_hil(item) and item.get_closest_marker("hardware"):
            item.add_marker(skip)


# ---- outcomes into the report -----------------------------------------------------------------------

def _message(rep) -> str:
    if rep.passed:
        return ""
    lr = rep.longrepr
    if isinstance(lr, tuple):               # skip: (file, line, reason)
        return str(lr[2]).removeprefix("Skipped: ")
    crash = getattr(lr, "reprcrash", None)
    return crash.message if crash is not None else str(lr).strip().splitlines()[-1][:300]


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report):
    if not report.nodeid.startswith(HIL_DIR.name + "/") and f"/{HIL_DIR.name}/" not in report.nodeid:
        return
    rep_obj = _REPORT[0]
    if rep_obj is None:
        return
    name = report.nodeid.split("::", 1)[-1]
    if report.when == "call" or (report.when == "setup" and not report.passed):
        outcome = report.outcome if report.when == "call" else ("skipped" if report.skipped else "error")
        rep_obj.check(name, outcome, report.duration, _message(report))
    elif report.when == "teardown" and report.failed:
        rep_obj.check(name + " (teardown)", "error", report.duration, _message(report))


_REPORT: list = [None]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    _REPORT[0] = session.config.stash[REPORT_KEY]


def pytest_sessionfinish(session, exitstatus):
    report = session.config.stash.get(REPORT_KEY, None)
    if report is None or not report.checks:
        return  # no HIL test ran: leave earlier results alone
    folder = report.write()
    tr = session.config.pluginmanager.getplugin("terminalreporter")
    if tr is not None:
        tr.write_line(f"HIL results: {folder / 'results.json'} and {folder / 'summary.md'}")


# ---- the device ---------------------------------------------------------------------------------------

def _host_model(config):
    from hil_support import HostModel, NoModel
    try:
        return HostModel(pathlib.Path(config.getoption("--hil-model")))
    except NoModel:
        return None


def identity_problems(hello, model, frontend_hash: str) -> list[str]:
    """What differs between the device's HELLO and the host's front end / model (empty when none)."""
    problems = []
    if hello.frontend_hash != frontend_hash:
        problems.append(f"front end hash: device {hello.frontend_hash[:16]}..., host {frontend_hash[:16]}... "
                        "(the firmware was built from another front end configuration)")
    if model is None:
        if hello.model_present:
            problems.append(f"the device runs model {hello.model_sha256[:16]}... but the host has no model "
                            "to check it against (pass --hil-model DIR)")
        return problems
    if not hello.model_present:
        problems.append(f"the host has a model ({model.dir}) but the device runs none (firmware built before "
                        "model.json existed, or flashed without it)")
        return problems
    if hello.model_sha256 != model.tflite_sha256:
        problems.append(f"model sha256: device {hello.model_sha256[:16]}..., host model.tflite "
                        f"{model.tflite_sha256[:16]}...")
    if model.manifest.tflite_sha256 != model.tflite_sha256:
        problems.append(f"{model.dir}: model.json's tflite_sha256 does not match model.tflite")
    if hello.model_frontend_hash != model.manifest.frontend_hash:
        problems.append("the device's model was trained on another front end than the host model")
    if hello.label_names != model.labels:
        problems.append(f"labels: device {hello.label_names}, host {model.labels}")
    return problems


def build_qemu_image(machine: str, model_dir: pathlib.Path) -> pathlib.Path:
    """`make firmware-<target>` (a no-op when up to date) and the ELF's path. The default model builds
    into build/firmware as `make firmware-qemu` does; another --hil-model builds into build/hil/firmware
    with FW_MODEL pointing at it, so the suite can check any exported model."""
    import subprocess

    from bowlsense.device.launch import FIRMWARE_DIR, build_firmware
    target, folder = QEMU_TARGETS[machine]
    if model_dir.resolve() == paths.default_model_dir().resolve():
        build_firmware(target)
        return FIRMWARE_DIR / folder / "bowlsense.elf"
    build_rel = "build/hil/firmware"
    proc = subprocess.run(["make", "--no-print-directory", f"firmware-{target}", f"FW_MODEL={model_dir.resolve()}",
                           f"FW_BUILD={build_rel}"], cwd=paths.REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`make firmware-{target} FW_MODEL={model_dir}` failed:\n"
                           f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return paths.REPO_ROOT / build_rel / folder / "bowlsense.elf"


@pytest.fixture(scope="session")
def _hil_dut(request):
    from bowlsense.device import QemuDevice, open_device
    from bowlsense.frontend import FrontendConfig
    from hil_support import Dut

    config = request.config
    report = config.stash[REPORT_KEY]

    def stop(what: str, message: str):
        """End the run with a clear message, recorded in the report as a failed harness check."""
        report.check(f"harness: {what}", "failed", 0.0, message)
        pytest.exit(f"HIL: {message}", returncode=1)
    port = config.getoption("--port")
    if port:
        baud = config.getoption("--baud")

        def opener():
            return open_device(port=port, baudrate=baud, timeout=60.0)
        backend = "port"
    else:
        machine = config.getoption("--machine")
        try:
            elf = build_qemu_image(machine, pathlib.Path(config.getoption("--hil-model")))
        except RuntimeError as e:
            stop("build", f"could not build the QEMU image:\n{e}")

        def opener():
            return QemuDevice(elf=elf, machine=machine, build=False, timeout=60.0)
        backend = "qemu"
    try:
        dut = Dut(opener, backend, config.getoption("--board"), port)
    except Exception as e:  # noqa: BLE001 - any failure to reach the device ends the run, clearly
        stop("connect", f"could not reach the device ({backend}{' ' + port if port else ''}): "
                        f"{type(e).__name__}: {e}")
    try:
        hello = dut.hello
        model = _host_model(config)
        report.device = {
            "backend": backend, "port": port, "board": dut.board, "hello_board": hello.board,
            "machine": None if port else config.getoption("--machine"),
            "fw_version": hello.fw_version, "git_sha": hello.git_sha, "protocol_version": hello.protocol_version,
            "cycle_unit": hello.cycle_unit.name.lower(), "cycle_resolution": hello.cycle_resolution,
            "model_present": hello.model_present, "model_sha256": hello.model_sha256,
            "frontend_hash": hello.frontend_hash, "labels": hello.label_names,
        }
        problems = identity_problems(hello, model, FrontendConfig().hash)
        if problems:
            stop("identity", "the device does not run what the host expects; stopping.\n  - " +
                 "\n  - ".join(problems) +
                 ("\n  Rebuild with `make firmware-qemu`." if not port else "\n  Flash the current build."))
        if model is None:
            report.notes.append("no model on the host or the device: the model checks fail with that reason")
        yield dut
    finally:
        report.notes.append(f"device restarts during the run: {dut.reboots}")
        dut.close()


@pytest.fixture
def dut(_hil_dut):
    """The device under test, idle and with empty buffers (rebooted/reset first if it stopped answering)."""
    _hil_dut.ready()
    return _hil_dut


@pytest.fixture(scope="session")
def host_model(request, _hil_dut):
    """models/default as the host computes it. A check that needs a model fails, with the reason, when
    there is none: a missing model is not a pass."""
    model = _host_model(request.config)
    if model is None:
        pytest.fail(f"no model at {request.config.getoption('--hil-model')} (model.json + model.tflite, written "
                    "by `make model`): this check needs the default model, and the firmware was built "
                    "front-end only (HELLO: no model)", pytrace=False)
    return model


@pytest.fixture(scope="session")
def report(request):
    """hil_report.Report of this run: report.metric(...), report.section(...)."""
    return request.config.stash[REPORT_KEY]
