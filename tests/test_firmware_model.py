"""The whole device pipeline with a real int8 model on the emulated Cortex-M4F: a small DS-CNN student
(random weights, built here with Keras and converted to full int8) is exported with `bowlsense export`,
linked into the QEMU image, and checked against the host:
  - INFER: raw int8 scores == the host engine on the same quantized patch (bowlsense.nn.Engine);
  - STREAM: per-window scores == host front end -> patches -> quantize_input -> engine, for a stream of
    real clips; events == bowlsense.device.events.simulate_events on those scores;
  - CAPTURE: the snippets the device lets out are exactly the windows simulate_capture allows, hold the
    stream's own samples, and the suppressed/dropped counts match.
Thresholds are set from the host's own scores (medians), so events and privacy suppressions do occur."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from bowlsense.device import HostDevice, QemuDevice
from bowlsense.device.events import EventParams, simulate_capture, simulate_events
from bowlsense.device import protocol as P
from bowlsense.frontend import Frontend
from bowlsense.paths import REPO_ROOT

pytestmark = pytest.mark.slow
LABELS = ["eating", "speech", "bowl"]
BUILD_REL = "build/firmware-test-model"
BUILD = REPO_ROOT / BUILD_REL


def host_scores(engine, patches_q10, scale, zp):
    from bowlsense.train.features import quantize_input
    q = quantize_input(patches_q10, scale, zp)
    return np.stack([engine.invoke(x[..., None][None]).reshape(-1) for x in q]) if len(q) else np.zeros((0, 3))


@pytest.fixture(scope="module")
def stream_pcm(shared_data_dir):
    from bowlsense.data.audio import load_audio
    rows = [r.split(",") for r in (shared_data_dir / "labels.csv").read_text().splitlines()[1:]]
    parts = []
    for label in ("eating", "speech", "bowl", "speech", "eating"):
        path = [r[0] for r in rows if r[1] == label][len(parts)]
        parts.append(load_audio(shared_data_dir / path)[:16000 * 3])
    return np.concatenate(parts)


def varied_student(pcm):
    """conv -> ReLU -> global average -> dense -> sigmoid, with the dense layer scaled and centred on the
    stream's own features so each label's score swings across 0.5 (random weights alone give nearly
    constant outputs, which would exercise no events)."""
    from bowlsense.nn import testing as T
    K = T.keras()
    K.utils.set_random_seed(5)
    L = K.layers
    inp = K.Input((96, 64, 1))
    x = L.GlobalAveragePooling2D()(L.Conv2D(8, 5, strides=3, activation="relu")(inp))
    logits = L.Dense(3)(x)
    model = K.Model(inp, L.Activation("sigmoid")(logits))
    fe = Frontend()
    feats = fe.to_float(fe.patches(fe.process(pcm)))[..., None]
    z = K.Model(inp, logits).predict(feats, verbose=0)
    dense = model.layers[-2]
    w, b = dense.get_weights()
    gain = 3.0 / np.maximum(z.std(axis=0), 1e-6)
    dense.set_weights([w * gain, (b - np.median(z, axis=0)) * gain])
    return model


@pytest.fixture(scope="module")
def model(tmp_path_factory, stream_pcm):
    from bowlsense.frontend.config import DEFAULT_CONFIG
    from bowlsense.manifest import Manifest, Quantization, Smoothing, Threshold, sha256_file
    from bowlsense.nn import Engine, lower
    from bowlsense.nn import testing as T
    from bowlsense.nn.tflite import parse

    data = T.convert_int8(varied_student(stream_pcm), (96, 64, 1), low=-7.0, high=4.0, n_calibration=8)
    g = lower(parse(data))
    engine = Engine(g)
    fe = Frontend()
    scores = host_scores(engine, fe.patches(fe.process(stream_pcm)), g.input.scale, g.input.zero_point)
    # thresholds at the medians of the host's own scores: each label is on about half the time
    med = np.median(scores, axis=0).astype(int)
    print("\nhost score range per label:", scores.min(axis=0), scores.max(axis=0), "median", med)
    prob = lambda q: float((q - g.output.zero_point) * g.output.scale)  # noqa: E731
    thresholds = {lab: Threshold(prob(med[i] + 1), prob(med[i] - 1)) for i, lab in enumerate(LABELS)}
    d = tmp_path_factory.mktemp("student")
    (d / "model.tflite").write_bytes(data)
    Manifest(labels=LABELS, privacy_labels=["speech"], thresholds=thresholds,
             smoothing=Smoothing(windows=2, min_event_windows=2), frontend=DEFAULT_CONFIG,
             input=Quantization(g.input.scale, g.input.zero_point, [1, 96, 64, 1]),
             output=Quantization(g.output.scale, g.output.zero_point, [1, 3]),
             tflite_sha256=sha256_file(d / "model.tflite"), name="test-student").save(d / "model.json")
    proc = subprocess.run(["make", "--no-print-directory", "firmware-qemu", "firmware-host-asan", f"FW_MODEL={d}",
                           f"FW_BUILD={BUILD_REL}"],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return d, g, engine, scores


@pytest.fixture(scope="module")
def dev(model):
    with QemuDevice(elf=BUILD / "qemu-mps2-an386" / "bowlsense.elf", build=False) as d:
        yield d


def test_hello_reports_model(dev, model):
    from bowlsense.export.model_c import threshold_q
    from bowlsense.manifest import Manifest, sha256_file
    d, g, _, _ = model
    h = dev.hello()
    m = Manifest.load(d)
    assert h.model_present and h.label_names == LABELS
    assert h.model_sha256 == sha256_file(d / "model.tflite")
    assert h.model_frontend_hash == h.frontend_hash == Frontend().config.hash
    assert (h.smoothing_windows, h.min_event_windows) == (2, 2)
    for lab, info in zip(LABELS, h.labels):
        on = threshold_q(m.thresholds[lab].on, g.output.scale, g.output.zero_point)
        off = threshold_q(m.thresholds[lab].off, g.output.scale, g.output.zero_point)
        assert (info.on_sum, info.off_sum, info.gate_q, info.privacy) == (2 * on, 2 * off, off, lab == "speech")


def test_infer_bit_exact(dev, model, stream_pcm):
    _, g, engine, _ = model
    fe = Frontend()
    patches = fe.patches(fe.process(stream_pcm))[::7]
    expected = host_scores(engine, patches, g.input.scale, g.input.zero_point)
    cycles = []
    for patch, want in zip(patches, expected):
        got, c = dev.infer(patch)
        np.testing.assert_array_equal(got, want)
        cycles.append(c)
    # adversarial patches: the front end's extremes saturate the input quantization
    for fill in (-32768, 32767, 0):
        patch = np.full((96, 64), fill, np.int16)
        got, _ = dev.infer(patch)
        np.testing.assert_array_equal(got, host_scores(engine, patch[None], g.input.scale, g.input.zero_point)[0])
    print(f"\ninference: {np.mean(cycles):,.0f} instructions per patch ({g.macs():,} MACs, "
          f"{np.mean(cycles) / g.macs():.2f} instructions/MAC)")


def test_stream_scores_events_and_capture(dev, model, stream_pcm):
    _, _, _, scores = model
    h = dev.hello()
    params = EventParams.from_hello(h)
    dev.capture(True)
    before = dev.stats()
    result = dev.stream(stream_pcm, scores=True, chunk=1000)
    after = dev.stats()
    dev.capture(False)
    got = np.array([s.scores for s in result.scores])
    assert [s.window for s in result.scores] == list(range(len(scores)))
    np.testing.assert_array_equal(got, scores)
    expected_events = simulate_events(params, scores)
    assert result.events == expected_events
    assert any(e.kind == "end" for e in expected_events)
    gate = simulate_capture(params, scores)
    assert gate.sent and gate.suppressed, "thresholds at the medians must both pass and block windows"
    windows = sorted({c.window for c in result.audio})
    assert windows == gate.sent
    delta = {k: after.values[k] - before.values[k] for k in ("capture_sent", "capture_suppressed", "capture_dropped")}
    assert delta == {"capture_sent": len(gate.sent), "capture_suppressed": len(gate.suppressed),
                     "capture_dropped": len(gate.dropped)}
    for w in windows:
        parts = sorted((c for c in result.audio if c.window == w), key=lambda c: c.first_sample)
        first = parts[0].first_sample
        assert first == w * P.WINDOW_HOP_SAMPLES + P.WINDOW_SAMPLES // 2 - h.snippet_samples // 2
        pcm = np.frombuffer(b"".join(c.samples for c in parts), "<i2")
        np.testing.assert_array_equal(pcm, stream_pcm[first:first + h.snippet_samples])
    per_s = after.loop_cycles_per_audio_second
    print(f"\nstream: {len(scores)} windows, {len(result.ended)} events, {len(gate.sent)} snippets sent, "
          f"{len(gate.suppressed)} suppressed; whole loop {per_s:,.0f} instructions per s of audio "
          f"({per_s / 64e6:.1%} of 64 MHz); stack high-water {after.stack_used_bytes} B")


def test_host_asan_build_with_model_matches(model, stream_pcm):
    """The same pipeline with the model, natively under ASan/UBSan: same scores, events and snippets."""
    _, _, _, scores = model
    dev = HostDevice(binary=BUILD / "host-asan" / "bowlsense-fw", build=False)
    with dev:
        params = EventParams.from_hello(dev.hello())
        dev.capture(True)
        result = dev.stream(stream_pcm, scores=True, chunk=777)
        stats = dev.stats()
    np.testing.assert_array_equal(np.array([s.scores for s in result.scores]), scores)
    assert result.events == simulate_events(params, scores)
    assert sorted({c.window for c in result.audio}) == simulate_capture(params, scores).sent
    assert stats.internal_errors == 0
    assert dev.returncode == 0, dev.stderr_text
    assert "runtime error" not in dev.stderr_text and "Sanitizer" not in dev.stderr_text, dev.stderr_text
