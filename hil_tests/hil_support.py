"""What the HIL tests share: the device under test (`Dut`), what the host expects (`HostModel`), the
real clips and the streams built from them, and small helpers. Test files import this module; the
fixtures that hand these objects out live in conftest.py.

Nothing here decides pass or fail on its own: the tests compare device output against host computations
done independently (the C front end through cffi, the int8 engine through cffi, tflite_micro, the
Python mirror of the event logic).
"""
from __future__ import annotations

import functools
import importlib.util
import sys

import numpy as np

from bowlsense import paths
from bowlsense.device import DeviceError, DeviceTimeout
from bowlsense.device import protocol as P
from bowlsense.device.transport import TransportClosed

RATE = 16000
# The firmware issue's targets (issue 6), in the device's cycle unit (instructions on QEMU under
# -icount shift=0, counted as one cycle each on a 64 MHz Cortex-M4).
FRONTEND_GOAL_PER_HOP = 25_000
CORE_HZ = 64_000_000
LOOP_LOAD_MAX = 0.35
FLASH_MAX = 256 * 1024
RAM_MAX = 96 * 1024
WINDOW_HOP_S = P.WINDOW_HOP_SAMPLES / RATE


class DeviceGone(RuntimeError):
    """The device stopped answering and could not be brought back."""


# ---- the device under test ------------------------------------------------------------------------

class Dut:
    """One device for the whole session: QEMU booted by the harness, or whatever is on --port.

    Tests talk to `dut.client` (bowlsense.device.DeviceClient) or the shortcuts below. Before each test
    the `dut` fixture calls `ready()`, which leaves the device idle (no stream open, capture off, buffers
    empty) and, when it no longer answers, reboots QEMU or RESETs the board, so one failing test cannot
    take the rest of the suite down with it."""

    def __init__(self, opener, backend: str, board: str | None, port: str | None):
        self._opener = opener          # () -> launcher object with .client and .close()
        self.backend = backend         # "qemu" | "port"
        self.port = port
        self._board_option = board
        self.reboots = 0
        self._dev = None
        self.hello: P.Hello | None = None
        self.boot()

    # -- lifecycle ------------------------------------------------------------------------------------
    def boot(self) -> None:
        self.close()
        self._dev = self._opener()
        self.hello = self.client.hello()

    def close(self) -> None:
        dev, self._dev = self._dev, None
        if dev is not None:
            dev.close()

    @property
    def client(self):
        if self._dev is None:
            raise DeviceGone("the device is closed")
        return self._dev.client

    @property
    def is_qemu(self) -> bool:
        return self.backend == "qemu"

    @property
    def board(self) -> str:
        return self._board_option or (self.hello.board if self.hello else "?")

    @property
    def unit(self) -> str:
        return self.hello.cycle_unit.name.lower() if self.hello else "?"

    def ready(self) -> None:
        """Idle, capture off, nothing buffered; reboot/reset if the device does not answer."""
        try:
            self._make_idle()
            return
        except (DeviceTimeout, TransportClosed, DeviceError, DeviceGone, OSError):
            pass
        self.reboots += 1
        if self.is_qemu:
            self.boot()
        else:
            try:
                self.client.reset()
            except (DeviceTimeout, TransportClosed, DeviceError, OSError) as e:
                raise DeviceGone(f"{self.port}: the board does not answer and did not come back after "
                                 f"RESET ({e}); power-cycle it") from e
        self._make_idle()

    def _make_idle(self) -> None:
        c = self.client
        c.clear()
        if c.hello(timeout=10.0) != self.hello:
            raise DeviceGone("HELLO changed since the device was checked at boot")
        try:
            c.stream_stop()
        except DeviceError as e:
            if e.code != P.ErrorCode.WRONG_STATE:
                raise
        c.capture(False)
        c.clear()

    # -- shortcuts ------------------------------------------------------------------------------------
    def stats(self) -> P.Stats:
        return self.client.stats()

    def stream(self, pcm: np.ndarray, scores: bool = True, chunk: int = P.MAX_PCM_SAMPLES):
        """STREAM the PCM through the device's whole pipeline: (StreamResult, raw scores (windows,
        labels) int8 from the SCORES frames, checked to arrive once per window in order)."""
        res = self.client.stream(np.asarray(pcm, np.int16), scores=scores, chunk=chunk)
        raw = np.array([s.scores for s in res.scores], dtype=np.int8).reshape(len(res.scores), len(self.hello.labels))
        windows = [s.window for s in res.scores]
        if scores and self.hello.model_present and windows != list(range(res.counts.windows)):
            raise AssertionError(f"SCORES frames missing or out of order: got windows {windows[:12]}... "
                                 f"for {res.counts.windows} windows streamed")
        return res, raw


def stats_delta(before: P.Stats, after: P.Stats) -> dict:
    """Counter differences (cumulative fields only; sizes and high-water marks as read after)."""
    snapshot = {"cycle_unit", "stack_used_bytes", "stack_size_bytes", "static_ram_bytes", "flash_bytes",
                "arena_bytes", "app_state_bytes", "fe_cycles_max", "infer_cycles_max"}
    return {k: (after.values[k] if k in snapshot else after.values[k] - before.values[k])
            for k in after.values}


# ---- what the host expects ------------------------------------------------------------------------

class NoModel(RuntimeError):
    pass


class HostModel:
    """models/default as the host sees it: manifest, the int8 engine (bowlsense.nn, C via cffi), the
    tflite_micro oracle, and the input/output arithmetic of the host's predict path."""

    def __init__(self, model_dir):
        from bowlsense.manifest import Manifest, sha256_file
        self.dir = model_dir
        manifest_path = model_dir / "model.json"
        tflite = model_dir / "model.tflite"
        if not manifest_path.exists() or not tflite.exists():
            raise NoModel(f"no model at {model_dir} (model.json and model.tflite; `make model` writes them)")
        self.manifest = Manifest.load(manifest_path)
        self.tflite_path = tflite
        self.tflite_sha256 = sha256_file(tflite)
        self.labels = list(self.manifest.labels)

    @functools.cached_property
    def int8(self):
        """The predict path's model object (bowlsense.train.quantize.Int8Model, engine = bowlsense.nn)."""
        from bowlsense.train.predict import load_model
        _, model = load_model(self.dir)
        return model

    @functools.cached_property
    def engine(self):
        from bowlsense.nn import Engine
        return Engine.from_tflite(self.tflite_path)

    @functools.cached_property
    def oracle(self):
        from bowlsense.nn.oracle import Oracle
        return Oracle(self.tflite_path.read_bytes())

    def quantize(self, patches_q10: np.ndarray) -> np.ndarray:
        """int16 Q10 patches -> the model's int8 input (TFLite QUANTIZE arithmetic, as training does)."""
        from bowlsense.train.features import quantize_input
        q = self.manifest.input
        return quantize_input(patches_q10, q.scale, q.zero_point)

    def scores(self, patches_q10: np.ndarray) -> np.ndarray:
        """Raw int8 scores (n, labels) of the host engine for int16 Q10 patches: the computation of the
        predict path without its TensorFlow-backed loader (test_hil_scores checks the two agree)."""
        out = np.zeros((len(patches_q10), len(self.labels)), np.int8)
        shape = self.engine.input_shape
        for i, x in enumerate(self.quantize(patches_q10)):
            out[i] = np.asarray(self.engine.invoke(x.reshape(shape))).reshape(-1)
        return out

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        """Dequantized as the predict path does it (float32 arithmetic)."""
        q = self.manifest.output
        return (np.asarray(raw, np.float32) - q.zero_point) * np.float32(q.scale)

    def decisions(self, probabilities: np.ndarray) -> np.ndarray:
        """Per-window decision per label: probability >= the label's `on` threshold (the rule of
        bowlsense.train.evaluation)."""
        on = np.array([self.manifest.thresholds[l].on for l in self.labels], dtype=np.float64)
        return np.asarray(probabilities, dtype=np.float64) >= on


@functools.lru_cache(maxsize=1)
def frontend():
    from bowlsense.frontend import Frontend
    return Frontend()


def host_frames(pcm: np.ndarray) -> np.ndarray:
    fe = frontend()
    fe.reset()
    return fe.process(np.asarray(pcm, np.int16))


def host_patches(pcm: np.ndarray) -> np.ndarray:
    return frontend().patches(host_frames(pcm))


def predict_pcm(pcm: np.ndarray) -> np.ndarray:
    """The PCM the host's predict path actually scores for a clip: bowlsense.train.features.pcm_patches
    centres a clip shorter than one window in digital silence. The device scores what it is streamed,
    so the test streams this. Checked against pcm_patches itself so the two cannot drift apart."""
    from bowlsense.train.features import PATCH_SAMPLES, pcm_patches
    pcm = np.asarray(pcm, np.int16)
    out = pcm
    if len(pcm) < PATCH_SAMPLES:
        pad = PATCH_SAMPLES - len(pcm)
        out = np.concatenate([np.zeros(pad // 2, np.int16), pcm, np.zeros(pad - pad // 2, np.int16)])
    np.testing.assert_array_equal(host_patches(out), pcm_patches(pcm),
                                  err_msg="the HIL padding rule no longer matches bowlsense predict's")
    return out


# ---- real data ----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def verified_clips():
    """Verified clips of ../shared/data (the trust gate), in a fixed order: by label, then by sha256
    (an order unrelated to names or to how the data was collected)."""
    from bowlsense.data.dataset import Dataset
    root = paths.shared_data_dir()
    if not (root / "labels.csv").exists():
        raise FileNotFoundError(f"the HIL suite needs the real clips of ../shared/data at {root} "
                                "(set BOWLSENSE_SHARED to the shared/ folder)")
    clips, _ = Dataset.load(root).verified()
    return sorted(clips, key=lambda c: (c.labels, c.sha256))


def clips_with(label: str, n: int, max_s: float = 5.0, min_s: float = 0.0) -> list:
    """The first n verified single-label clips of `label` between min_s and max_s seconds long."""
    from bowlsense.data.audio import inspect_audio
    out = []
    for c in verified_clips():
        if c.labels == (label,) and min_s <= inspect_audio(c.abspath).duration_s <= max_s:
            out.append(c)
            if len(out) == n:
                break
    if len(out) < n:
        raise FileNotFoundError(f"../shared/data has only {len(out)} verified '{label}' clips of "
                                f"{min_s}-{max_s} s; the HIL suite needs {n}")
    return out


@functools.lru_cache(maxsize=256)
def _load(path: str, sha256: str) -> np.ndarray:
    from bowlsense.data.audio import load_audio
    pcm = load_audio(path, expected_sha256=sha256 or None)
    pcm.setflags(write=False)
    return pcm


def load_clip(clip) -> np.ndarray:
    return _load(str(clip.abspath), clip.sha256)


def mix(base: np.ndarray, over: np.ndarray, snr_db: float, at: int = 0) -> np.ndarray:
    """`over` added into `base` from sample `at`, scaled to snr_db (over-to-base, RMS), saturated."""
    out = base.astype(np.float64)
    over = over[:max(0, len(base) - at)].astype(np.float64)
    b_rms = np.sqrt(np.mean(base.astype(np.float64) ** 2)) + 1e-9
    o_rms = np.sqrt(np.mean(over ** 2)) + 1e-9
    out[at:at + len(over)] += over * (b_rms / o_rms) * 10 ** (snr_db / 20)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def fit(pcm: np.ndarray, n: int) -> np.ndarray:
    """Exactly n samples: cut, or padded with digital silence."""
    pcm = np.asarray(pcm, np.int16)[:n]
    return np.concatenate([pcm, np.zeros(n - len(pcm), np.int16)])


# ---- adversarial signals of the front end tests -----------------------------------------------------

def adversarial_signals(seconds: float) -> dict[str, np.ndarray]:
    """tests/frontend_signals.py's signals (one definition, shared with the host front end tests)."""
    mod = sys.modules.get("frontend_signals")
    if mod is None:
        path = paths.REPO_ROOT / "tests" / "frontend_signals.py"
        spec = importlib.util.spec_from_file_location("frontend_signals", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        sys.modules["frontend_signals"] = mod
    return mod.adversarial_signals(seconds)


# ---- device helpers ---------------------------------------------------------------------------------

ODD_CHUNKS = (1, 3, 159, 161, 7, 1021, 400, 17, 1024, 333, 2, 641)


def device_frames_odd_chunks(client, pcm: np.ndarray, chunks=ODD_CHUNKS, first_small: int = 600
                             ) -> tuple[np.ndarray, int, int]:
    """FEATURES over a signal cut into a cycle of odd chunk sizes (front end reset once, at the start).
    Sizes below 16 samples are used only within the first `first_small` samples, because every request
    costs a round trip. Returns (frames, front end cycles, requests)."""
    pcm = np.asarray(pcm, np.int16)
    out, cycles, pos, i, requests = [], 0, 0, 0, 0
    while pos < len(pcm) or requests == 0:
        size = chunks[i % len(chunks)]
        i += 1
        if size < 16 and pos >= first_small:
            continue
        piece = pcm[pos:pos + size]
        frames, c = client.features(piece, reset=requests == 0, chunk=max(1, len(piece)))
        out.append(frames)
        cycles += c
        pos += len(piece)
        requests += 1
    return np.concatenate(out), cycles, requests


def expected_windows(n_samples: int) -> int:
    frames = 0 if n_samples < 400 else 1 + (n_samples - 400) // 160
    return 0 if frames < P.PATCH_FRAMES else 1 + (frames - P.PATCH_FRAMES) // 48


def prf(pred: np.ndarray, truth: np.ndarray) -> dict:
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    tp = int(np.sum(pred & truth))
    fp = int(np.sum(pred & ~truth))
    fn = int(np.sum(~pred & truth))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "tp": tp, "fp": fp, "fn": fn, "support": int(truth.sum())}

