"""`bowlsense train | evaluate | predict` end to end on a tiny synthetic dataset (with the real pretrained
YAMNet as the teacher), plus the bad-input cases. Accuracy is not the point here (two epochs on a handful
of clips); the contracts are: files written and re-checkable, the manifest matching the .tflite, the int8
path bit-identical to TFLite Micro, predict's output format, resume and clear errors."""
from __future__ import annotations

import csv
import hashlib
import json
import re

import numpy as np
import pytest

pytest.importorskip("tensorflow")  # a hard dependency of bowlsense; never missing in CI

from bowlsense.cli import main  # noqa: E402
from bowlsense.data.audio import write_wav  # noqa: E402
from bowlsense.manifest import Manifest, sha256_file  # noqa: E402

SR = 16000


def _sound(kind: str, rng: np.random.Generator, seconds: float) -> np.ndarray:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    x = rng.normal(0, 0.003, n)  # a quiet room
    if kind == "eating":  # crunchy broadband bursts
        for start in rng.uniform(0, seconds - 0.1, int(seconds * 6)):
            i = int(start * SR)
            x[i:i + 800] += rng.normal(0, 0.3, 800) * np.hanning(800)
    elif kind == "drinking":  # lapping: low noise modulated at 5 Hz
        x += np.convolve(rng.normal(0, 0.2, n), np.ones(12) / 12, "same") * (1 + np.sin(2 * np.pi * 5 * t))
    elif kind == "bowl":  # metal clinks: decaying high partials
        for start in rng.uniform(0, seconds - 0.4, int(seconds * 2)):
            i = int(start * SR)
            tt = np.arange(6000) / SR
            x[i:i + 6000] += 0.4 * np.exp(-tt * 12) * (np.sin(2 * np.pi * 2900 * tt) + np.sin(2 * np.pi * 4100 * tt))
    elif kind == "speech":  # a voiced, pitch-gliding harmonic tone with syllable envelope
        f0 = 120 + 40 * np.sin(2 * np.pi * 1.5 * t)
        phase = 2 * np.pi * np.cumsum(f0) / SR
        x += 0.2 * sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)) ** 2
    elif kind == "background":
        x += np.cumsum(rng.normal(0, 0.01, n)) * 0.05
    return np.clip(x * 32767, -32768, 32767).astype(np.int16)


def make_dataset(root, per_label: int = 3, verified: str = "yes", labels=("eating", "drinking", "bowl", "speech",
                                                                          "background")):
    rng = np.random.default_rng(0)
    rows = []
    (root / "audio").mkdir(parents=True)
    for label in labels:
        for k in range(per_label):
            path = root / "audio" / f"{label}_{k}.wav"
            write_wav(path, _sound(label, rng, 0.7 if label == "speech" else 2.0))
            rows.append({"path": f"audio/{path.name}", "label": label, "verified": verified,
                         "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                         "source": f"synthetic, speaker s{k}" if label == "speech" else "synthetic",
                         "license": "CC0", "note": "", "group": f"{label}{k}"})
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory, yamnet_dir):
    """One quick run, from a feature cache of its own that starts empty: it renders every window (the
    cached-features test below depends on that), and the module's later runs find them there."""
    root = tmp_path_factory.mktemp("train")
    data = make_dataset(root / "data")
    out, work = root / "model", root / "work"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BOWLSENSE_CACHE", str(root / "cache"))
        rc = main(["train", str(data), "--out", str(out), "--quick", "--work", str(work),
                   "--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")])
        assert rc == 0
        yield data, out, work


def test_train_writes_a_consistent_model_dir(trained):
    _data, out, _work = trained
    for name in ("model.tflite", "model.json", "report.md", "training_curves.png", "per_class.png", "confusion.png",
                 "privacy.png"):
        assert (out / name).stat().st_size > 0, name
    m = Manifest.load(out)
    assert m.labels == ["eating", "drinking", "bowl", "speech"]
    assert m.privacy_labels == ["speech"]
    assert m.tflite_sha256 == sha256_file(out / "model.tflite")
    assert m.input.dtype == "int8" and m.input.shape == [1, 96, 64, 1]
    assert m.output.shape == [1, 4]
    # The int8 input covers the front end's pinned range, whatever the data held.
    lo, hi = m.input.scale * (-128 - m.input.zero_point), m.input.scale * (127 - m.input.zero_point)
    assert abs(lo - -7.0) < 0.1 and abs(hi - 8.0) < 0.1
    assert 0 < m.macs <= 6_000_000 and 0 < m.weight_bytes <= 64 * 1024
    for model in ("teacher", "float_student", "int8_student"):
        assert "macro_f1" in m.metrics["summary"][model]
        # Every headline figure carries a clip-bootstrap interval, ordered low to high.
        spread = m.metrics["interval_95"][model]
        assert set(spread) == {k for k, v in m.metrics["summary"][model].items() if v is not None}
        assert all(0.0 <= lo <= hi <= 1.0 for lo, hi in spread.values())
    assert "int8_minus_float" in m.metrics
    # What the device would report, each validation clip streamed through its event rule.
    for model, figures in m.metrics["streamed"].items():
        assert 0.0 <= figures["background_in_false_event"] <= 1.0 and figures["false_events_per_hour"] >= 0.0
        assert 0.0 <= figures["speech_held"] <= 1.0 and 0.0 <= figures["speech_sent"] <= 1.0 - figures["speech_held"]
        assert set(figures["clips_reported"]) == set(m.labels)
    report = (out / "report.md").read_text()
    assert "teacher" in report and "int8" in report and "privacy.png" in report
    assert "## As the device reports it" in report and "| speech windows the privacy gate lets out (leaked) |" in report
    assert "95% intervals from a bootstrap over the" in report


def test_int8_model_uses_only_engine_ops(trained):
    from bowlsense.train.quantize import ENGINE_OPS, details
    ops = details((trained[1] / "model.tflite").read_bytes())["ops"]
    assert set(ops) <= ENGINE_OPS
    assert "CONV_2D" in ops and "DEPTHWISE_CONV_2D" in ops and "LOGISTIC" in ops


def test_predict_jsonl_is_the_int8_path_bit_for_bit(trained, capsys):
    """predict's scores are the int8 outputs of TFLite Micro's own interpreter on the same int8 input."""
    from tflite_micro.python.tflite_micro import runtime

    from bowlsense.data.audio import load_audio
    from bowlsense.train.features import pcm_patches, quantize_input
    data, out, _ = trained
    clip = data / "audio" / "eating_0.wav"  # 2.0 s -> 3 windows at 0, 0.48, 0.96 s
    short = data / "audio" / "speech_0.wav"  # 0.7 s -> one window, centred in silence
    capsys.readouterr()
    assert main(["predict", str(out), str(clip), str(short), "--format", "jsonl"]) == 0
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [(l["file"], l["start_s"]) for l in lines] == [(str(clip), 0.0), (str(clip), 0.48), (str(clip), 0.96),
                                                          (str(short), 0.0)]
    m = Manifest.load(out)
    assert all(list(l["scores"]) == m.labels for l in lines)
    interp = runtime.Interpreter.from_bytes((out / "model.tflite").read_bytes())
    patches = pcm_patches(load_audio(clip))
    for line, patch in zip(lines, patches):
        interp.set_input(quantize_input(patch, m.input.scale, m.input.zero_point).reshape(1, 96, 64, 1), 0)
        interp.invoke()
        q = interp.get_output(0).reshape(-1).astype(np.float32)
        want = (q - m.output.zero_point) * np.float32(m.output.scale)
        assert [line["scores"][l] for l in m.labels] == [round(float(v), 4) for v in want]


def test_predict_tsv_and_bad_audio(trained, capsys, tmp_path):
    _data, out, _ = trained
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    capsys.readouterr()
    rc = main(["predict", str(out), str(bad)])
    captured = capsys.readouterr()
    assert rc == 1
    assert captured.out.splitlines()[0] == "file\tstart_s\teating\tdrinking\tbowl\tspeech"
    assert str(bad) in captured.err


def test_evaluate_writes_the_same_metrics(trained, capsys):
    data, out, _ = trained
    eval_dir = out.parent / "eval"
    capsys.readouterr()
    assert main(["evaluate", str(out), str(data), "--out", str(eval_dir)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert {"macro_f1", "speech_false_positive", "speech_detect_+0dB"} <= set(row)
    assert json.loads((eval_dir / "evaluation.json").read_text())["summary"] == row
    assert (eval_dir / "evaluation.md").exists() and (eval_dir / "privacy.png").exists()


def test_rerun_reuses_finished_stages_and_more_epochs_train_a_new_student(trained, yamnet_dir, tmp_path, capsys):
    """Run again, a finished run reuses its windows, teacher and student. Asked for one more student epoch,
    it trains a new student beside the first: the learning-rate schedule and the weight average span the
    whole run, so the 2-epoch student's checkpoint is no start for a 3-epoch one (before, it was continued
    on a schedule it had not been trained on)."""
    import shutil
    data, out, work = trained
    work2 = tmp_path / "work"
    shutil.copytree(work, work2)
    (student_dir,) = work2.glob("student-*")
    state = json.loads((student_dir / "state.json").read_text())
    assert state["epoch"] == 2 and state["epochs"] == 2
    yamnet = ["--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")]
    capsys.readouterr()
    assert main(["train", str(data), "--out", str(tmp_path / "same"), "--quick", "--work", str(work2), *yamnet]) == 0
    printed = capsys.readouterr().out
    assert "teacher epoch" not in printed and "student epoch" not in printed
    assert "teacher: finished in an earlier run" in printed and "student: finished in an earlier run" in printed
    assert (tmp_path / "same" / "model.tflite").read_bytes() == (out / "model.tflite").read_bytes()

    assert main(["train", str(data), "--out", str(tmp_path / "longer"), "--quick", "--work", str(work2),
                 "--student-epochs", "3", *yamnet]) == 0
    printed = capsys.readouterr().out
    assert "teacher epoch" not in printed and "teacher: finished in an earlier run" in printed
    assert "reusing the activations cached" in printed
    assert "student epoch 1/3" in printed and "student epoch 3/3" in printed
    assert json.loads((student_dir / "state.json").read_text()) == state  # the first student untouched
    (longer,) = set(work2.glob("student-*")) - {student_dir}
    assert json.loads((longer / "state.json").read_text())["epochs"] == 3


def test_a_run_on_cached_features_trains_the_model_of_the_run_that_rendered_them(trained, yamnet_dir, tmp_path,
                                                                                 capsys):
    """The fixture rendered every window (audiomentations drawing from Python's global random state as it
    went, which Keras also draws initial weights from); this run, in a new work folder, finds every window in
    the feature cache and renders nothing. The two must train the same networks, or a model could only be
    reproduced from a cache in the state its first run found."""
    data, out, _work = trained
    capsys.readouterr()
    rc = main(["train", str(data), "--out", str(tmp_path / "m"), "--quick", "--work", str(tmp_path / "work"),
               "--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")])
    assert rc == 0
    assert re.search(r"feature cache .*: \d+ hits, 0 computed", capsys.readouterr().out)
    first, second = np.load(out / "scores.npz"), np.load(tmp_path / "m" / "scores.npz")
    assert np.array_equal(first["scores_teacher"], second["scores_teacher"])
    assert (tmp_path / "m" / "model.tflite").read_bytes() == (out / "model.tflite").read_bytes()


def retrain_student(trained, yamnet_dir, tmp_path, capsys, *options):
    """`bowlsense train --quick OPTIONS` in a copy of the module's work folder (which keeps exactly one
    student for the resume test): checks that the finished teacher was reused, its figures to the last digit,
    and a second, different student trained. Returns the copied work folder and what was printed."""
    import shutil
    data, out, work = trained
    work2 = tmp_path / "work"
    shutil.copytree(work, work2)
    capsys.readouterr()
    rc = main(["train", str(data), "--out", str(tmp_path / "m"), "--quick", "--work", str(work2), *options,
               "--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "teacher: finished in an earlier run" in printed and "student epoch 1/2" in printed
    assert len(list(work2.glob("student-*"))) == 2
    first, second = Manifest.load(out), Manifest.load(tmp_path / "m")
    assert second.metrics["summary"]["teacher"] == first.metrics["summary"]["teacher"]
    assert (tmp_path / "m" / "model.tflite").read_bytes() != (out / "model.tflite").read_bytes()
    return work2, printed


def test_student_seed_retrains_the_student_alone(trained, yamnet_dir, tmp_path, capsys):
    """--student-seed draws a new student on the same split, windows and teacher: the teacher's figures
    are those of the first run to the last digit, the student is another network."""
    _data, out, _work = trained
    retrain_student(trained, yamnet_dir, tmp_path, capsys, "--student-seed", "1")
    first, second = Manifest.load(out), Manifest.load(tmp_path / "m")
    # The two runs compare window for window from their scores.npz: the teacher is the same network (no
    # difference in any figure), the students' differences are those of their manifests.
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "m"), "--baseline", str(out), "--model", "teacher",
                 "--out", str(tmp_path / "cmp")]) == 0
    compared = json.loads((tmp_path / "cmp" / "compare.json").read_text())["against_baseline"]
    assert compared["teacher"] and all(d["difference"] == 0.0 for d in compared["teacher"].values())
    for figure, d in compared["int8_student"].items():
        expected = second.metrics["summary"]["int8_student"][figure] - first.metrics["summary"]["int8_student"][figure]
        assert abs(d["difference"] - expected) < 1e-9, figure


def test_teacher_seed_retrains_the_teacher_on_the_same_windows(trained, yamnet_dir, tmp_path, capsys):
    """--teacher-seed fine-tunes a new teacher from the same windows and cached frozen activations: the
    teacher is another network (its validation scores differ), nothing upstream of it is recomputed."""
    import shutil
    data, out, work = trained
    work2 = tmp_path / "work"
    shutil.copytree(work, work2)
    capsys.readouterr()
    rc = main(["train", str(data), "--out", str(tmp_path / "m"), "--quick", "--work", str(work2), "--teacher-seed", "1",
               "--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "reusing the activations cached" in printed and "teacher epoch 1/2" in printed
    assert len(list(work2.glob("teacher-*"))) == 2 and len(list(work2.glob("train_windows-*"))) == 1
    first, second = np.load(out / "scores.npz"), np.load(tmp_path / "m" / "scores.npz")
    assert np.array_equal(first["targets"], second["targets"])  # the same evaluation windows
    assert np.abs(first["scores_teacher"] - second["scores_teacher"]).max() > 1e-3


def test_student_transfer_windows_train_the_student_alone(trained, yamnet_dir, tmp_path, capsys):
    """--student-transfer N renders N more windows from the training clips, scored by the finished teacher,
    for the student only: the teacher is reused untouched."""
    import shutil
    data, out, work = trained
    work2 = tmp_path / "work"
    shutil.copytree(work, work2)
    capsys.readouterr()
    rc = main(["train", str(data), "--out", str(tmp_path / "m"), "--quick", "--work", str(work2),
               "--student-transfer", "40", "--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")])
    assert rc == 0
    printed = capsys.readouterr().out
    # Each kind's share is rounded (event mixtures split over three labels), so the count is near 40.
    n = int(re.search(r", (\d+) transfer windows for the student", printed).group(1))
    assert 36 <= n <= 40
    assert "teacher: finished in an earlier run" in printed and "student epoch 1/2" in printed
    assert len(list(work2.glob("transfer_windows-*.npz"))) == 1 and len(list(work2.glob("student-*"))) == 2
    first, second = Manifest.load(out), Manifest.load(tmp_path / "m")
    assert second.metrics["summary"]["teacher"] == first.metrics["summary"]["teacher"]
    # How much the teacher says beyond the labels, on both kinds of the student's windows.
    assert re.search(r"teacher on the training windows: scores 0\.\d{4} from the labels", printed)
    assert re.search(r"teacher on the transfer windows: scores 0\.\d{4} from the labels", printed)


def test_teacher_transfer_fine_tunes_the_teacher_on_the_transfer_windows_too(trained, yamnet_dir, tmp_path, capsys):
    """--teacher-transfer: the transfer windows go through YAMNet's frozen layers once (cached beside the
    training windows' activations) and the teacher fine-tunes on both, so a new teacher is trained from the
    same initial weights on more windows; without transfer windows the option is refused before any work."""
    import shutil
    data, out, work = trained
    work2 = tmp_path / "work"
    shutil.copytree(work, work2)
    yamnet = ["--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")]
    capsys.readouterr()
    rc = main(["train", str(data), "--out", str(tmp_path / "n"), "--quick", "--work", str(work2), "--teacher-transfer",
               *yamnet])
    assert rc == 2 and "needs --student-transfer N with N > 0" in capsys.readouterr().err
    rc = main(["train", str(data), "--out", str(tmp_path / "m"), "--quick", "--work", str(work2),
               "--student-transfer", "40", "--teacher-transfer", *yamnet])
    assert rc == 0
    printed = capsys.readouterr().out
    n = int(re.search(r", (\d+) transfer windows for the student", printed).group(1))
    assert "reusing the activations cached" in printed and f"YAMNet frozen layers: {n} transfer windows computed" in printed
    assert len(np.load(next(work2.glob("transfer_activations-*.npy")))) == n
    assert "teacher epoch 1/2" in printed and len(list(work2.glob("teacher-*"))) == 2
    teacher_state = [json.loads((d / "state.json").read_text()) for d in work2.glob("teacher-*")]
    assert sorted(len(t["history"]["loss"]) for t in teacher_state) == [2, 2]
    first, second = np.load(out / "scores.npz"), np.load(tmp_path / "m" / "scores.npz")
    assert np.abs(first["scores_teacher"] - second["scores_teacher"]).max() > 1e-3
    # rerun: the teacher and both activation files are reused, nothing is recomputed
    rc = main(["train", str(data), "--out", str(tmp_path / "m2"), "--quick", "--work", str(work2),
               "--student-transfer", "40", "--teacher-transfer", *yamnet])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "teacher: finished in an earlier run" in printed and "windows computed" not in printed


def test_distill_temperature_retrains_the_student_alone(trained, yamnet_dir, tmp_path, capsys):
    """--distill-temperature 1 (the untempered recipe) trains another student from the same finished teacher;
    the embedding term is refused with a tempered target, transfer windows or a label weight, and a weight for
    a label the run does not have is refused, before any work starts."""
    data, _out, _work = trained
    work2, _ = retrain_student(trained, yamnet_dir, tmp_path, capsys, "--distill-temperature", "1")
    yamnet = ["--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")]
    for extra, message in ((["--distill-embedding", "0.3"], "needs --distill-temperature 1"),
                           (["--distill-embedding", "0.3", "--distill-temperature", "1", "--student-transfer", "40"],
                            "needs --student-transfer 0"),
                           (["--distill-embedding", "0.3", "--distill-temperature", "1", "--student-transfer", "0",
                             "--label-weight", "speech=2"], "needs every --label-weight at 1"),
                           (["--label-weight", "barking=2"], "names barking, not one of the labels")):
        rc = main(["train", str(data), "--out", str(tmp_path / "n"), "--quick", "--work", str(work2), *extra, *yamnet])
        assert rc == 2 and message in capsys.readouterr().err
    assert len(list(work2.glob("student-*"))) == 2 and not (tmp_path / "n").exists()


def test_live_teacher_is_the_default_and_can_be_turned_off(trained, yamnet_dir, tmp_path, capsys):
    """The fixture's student was taught live (the default); --no-live-teacher trains another student from
    the same finished teacher with each window scored once beforehand, and --student-mix one with mixtures.
    A mix without the live teacher, and the live teacher with the embedding term, are refused before any
    work starts, each naming the option that resolves it."""
    data, out, _work = trained

    def recipe(model):
        return (model / "report.md").read_text()  # its Configuration block lists every field of the recipe

    assert "live_teacher: True" in recipe(out)
    work2, _ = retrain_student(trained, yamnet_dir, tmp_path, capsys, "--no-live-teacher")
    assert "live_teacher: False" in recipe(tmp_path / "m")
    yamnet = ["--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")]
    rc = main(["train", str(data), "--out", str(tmp_path / "mix"), "--quick", "--work", str(work2),
               "--student-mix", "0.5", *yamnet])
    assert rc == 0 and len(list(work2.glob("student-*"))) == 3
    assert "student_mix: 0.5" in recipe(tmp_path / "mix")
    for extra, message in ((["--no-live-teacher", "--student-mix", "0.5"], "drop --no-live-teacher"),
                           (["--distill-embedding", "0.3", "--distill-temperature", "1", "--student-transfer", "0"],
                            "--distill-embedding) needs --no-live-teacher")):
        capsys.readouterr()
        rc = main(["train", str(data), "--out", str(tmp_path / "n"), "--quick", "--work", str(work2), *extra, *yamnet])
        assert rc == 2 and message in capsys.readouterr().err
    assert len(list(work2.glob("student-*"))) == 3 and not (tmp_path / "n").exists()


def test_threshold_changes_the_decisions_alone(trained, yamnet_dir, tmp_path, capsys):
    """--threshold LABEL=ON rewrites the model's thresholds from the finished checkpoints: nothing retrains,
    the int8 model is the same bytes, and only the named labels' thresholds move (each `off` at the default
    ratio, 0.35 / 0.5 for event labels). A label the model lacks is refused before any work starts."""
    import shutil
    data, _out, work = trained
    work2 = tmp_path / "work"
    shutil.copytree(work, work2)  # its student may have trained longer than the fixture's model (resume test)
    yamnet = ["--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")]
    for name, options in (("m0", []), ("m", ["--threshold", "eating=0.6", "--threshold", "bowl=0.8"])):
        capsys.readouterr()
        rc = main(["train", str(data), "--out", str(tmp_path / name), "--quick", "--work", str(work2), *options, *yamnet])
        assert rc == 0
        printed = capsys.readouterr().out
        assert "teacher: finished in an earlier run" in printed and "student: finished in an earlier run" in printed
    assert len(list(work2.glob("student-*"))) == 1
    assert (tmp_path / "m" / "model.tflite").read_bytes() == (tmp_path / "m0" / "model.tflite").read_bytes()
    before, after = Manifest.load(tmp_path / "m0").thresholds, Manifest.load(tmp_path / "m").thresholds
    assert (after["eating"].on, after["eating"].off) == (0.6, pytest.approx(0.42))
    assert (after["bowl"].on, after["bowl"].off) == (0.8, pytest.approx(0.56))
    assert after["drinking"] == before["drinking"] and after["speech"] == before["speech"]
    rc = main(["train", str(data), "--out", str(tmp_path / "n"), "--quick", "--work", str(work2),
               "--threshold", "barking=0.5", *yamnet])
    assert rc == 2 and "--threshold names barking, not one of the labels" in capsys.readouterr().err
    assert not (tmp_path / "n").exists()


def test_default_work_folder_ignores_the_thresholds(tmp_path, monkeypatch):
    """The default work folder is named by what the scores depend on, so a rerun with other thresholds finds
    the same checkpoints; any other recipe change names another folder."""
    from bowlsense.train.pipeline import Run, TrainConfig
    monkeypatch.setenv("BOWLSENSE_CACHE", str(tmp_path / "cache"))
    yamnet = str(tmp_path / "yamnet.tflite")

    def work(**changes):
        return Run(tmp_path, tmp_path / "out", yamnet, TrainConfig(**changes)).work
    assert work() == work(label_threshold=(("bowl", 0.6),), threshold_on=0.4, privacy_threshold_on=0.2)
    assert work() != work(student_epochs=3)


def test_corrupt_checkpoint_stops_with_what_to_do(trained, yamnet_dir, tmp_path, capsys):
    import shutil
    data, _out, work = trained
    broken = tmp_path / "work"
    shutil.copytree(work, broken)
    for student_dir in broken.glob("student-*"):
        (student_dir / "model.weights.h5").write_bytes(b"\x00" * 100)
    capsys.readouterr()
    rc = main(["train", str(data), "--out", str(tmp_path / "m"), "--quick", "--work", str(broken),
               "--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "student" in err and "corrupt" in err and "--restart" in err


def test_no_verified_clips(tmp_path, yamnet_dir, capsys):
    data = make_dataset(tmp_path / "d", per_label=1, verified="no")
    rc = main(["train", str(data), "--out", str(tmp_path / "m"), "--quick",
               "--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")])
    err = capsys.readouterr().err
    assert rc == 2 and "no verified clips" in err and "verified=yes" in err


def test_label_without_clips(tmp_path, yamnet_dir, capsys):
    data = make_dataset(tmp_path / "d", per_label=1, labels=("eating", "bowl", "speech", "background"))
    rc = main(["train", str(data), "--out", str(tmp_path / "m"), "--quick",
               "--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")])
    err = capsys.readouterr().err
    assert rc == 2 and "no verified clips labelled drinking" in err and "--labels eating,bowl,speech" in err


def test_wrong_yamnet_file(tmp_path, capsys):
    data = make_dataset(tmp_path / "d", per_label=1)
    bad = tmp_path / "yamnet.tflite"
    bad.write_bytes(b"\x00" * 64)
    rc = main(["train", str(data), "--out", str(tmp_path / "m"), "--quick", "--yamnet", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2 and str(bad) in err and "--yamnet" in err


def test_crossval_validates_every_clip_once(tmp_path, yamnet_dir, capsys, monkeypatch):
    monkeypatch.setenv("BOWLSENSE_CACHE", str(tmp_path / "cache"))  # fresh checkpoints: train every fold here
    data = make_dataset(tmp_path / "data")  # 5 labels x 3 clips, each clip its own recording
    out = tmp_path / "cv"
    rc = main(["crossval", str(data), "--out", str(out), "--folds", "2", "--quick",
               "--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")])
    assert rc == 0
    summary = json.loads((out / "crossval.json").read_text())
    assert summary["validated_clips"] == 15 and sum(summary["validated_per_fold"]) == 15
    assert min(summary["validated_per_fold"]) >= 5  # each fold holds at least one clip of every label
    assert len(summary["per_fold"]) == 2
    for name in ("teacher", "float_student", "int8_student"):
        assert set(summary["interval_95"][name]) <= set(summary["pooled"][name])
        eating = summary["pooled_per_class"][name]["eating"]
        assert eating["support"] > 0 and eating["tp"] + eating["fn"] == eating["support"]
    # The fold models differ (different training clips), and each says which fold it is.
    models = [(out / f"fold-{f}" / "model.tflite").read_bytes() for f in (1, 2)]
    assert models[0] != models[1]
    for f in (1, 2):
        manifest = Manifest.load(out / f"fold-{f}" / "model.json")
        assert f"fold {f} of 2" in manifest.metrics["evaluated_on"]
    text = (out / "crossval.md").read_text()
    assert "## Pooled" in text and "| 2 |" in text and "## Clips most often wrong" in text
    assert "## As the device reports it" in text and set(summary["streamed"]) == {"teacher", "float_student",
                                                                                  "int8_student"}
    for c in summary["clips_most_wrong"]:  # named by their labels.csv path, each wrong somewhere
        assert (data / c["path"]).exists() and 0 < c["wrong"] <= c["windows"]
        # pretrained YAMNet's second opinion (the class map sits beside the weights in ../shared/yamnet)
        shares = [share for _, share in c["yamnet_hears"]]
        assert c["yamnet_hears"] and 0 < sum(shares) <= 1 + 1e-9 and shares == sorted(shares, reverse=True)
    assert "| YAMNet hears |" in text
    for png in ("folds.png", "per_class.png", "confusion.png", "privacy.png"):
        assert (out / png).stat().st_size > 1000
    assert "15 clips validated over 2 folds" in capsys.readouterr().out
    # The report's audit command ranks every clip the run validated by its held-out scores.
    assert f"--heldout {out}" in text
    assert main(["data", "audit", str(data), "--out", str(tmp_path / "audit.html"), "--heldout", str(out)]) == 0
    assert f"{summary['validated_clips']} of " in capsys.readouterr().out
    # scores.npz records the fold that validated each window: the folds hold disjoint clips, as counted
    # in crossval.json, and `bowlsense thresholds` chooses each fold's thresholds on the other fold.
    with np.load(out / "scores.npz") as z:
        fold, clip, single = z["fold"], z["clip"], z["group"] == "single"
    assert [len(set(clip[single & (fold == f)])) for f in (0, 1)] == summary["validated_per_fold"]
    assert not set(clip[fold == 0]) & set(clip[fold == 1])
    assert main(["thresholds", str(out)]) == 0
    assert "## Thresholds chosen on other recordings" in capsys.readouterr().out
    # `evaluate --split val` finds the fold's own held-out clips from model.json: the single-window figures
    # match the fold's report exactly (the mixtures differ: --quick builds fewer of them).
    # (fold 1 holds two of each label's three recordings: not what the default split would hold out)
    assert main(["evaluate", str(out / "fold-1"), str(data), "--split", "val", "--out", str(tmp_path / "ev")]) == 0
    row = json.loads(capsys.readouterr().out)
    reported = Manifest.load(out / "fold-1" / "model.json").metrics["summary"]["int8_student"]
    for key in ("macro_f1", "background_false_event", "eating_detect_alone"):
        assert row[key] == pytest.approx(reported[key]), key
    from bowlsense.train import evaluation
    from bowlsense.train.pipeline import TrainConfig, split_sources
    _, held_out, _ = split_sources(data, TrainConfig(folds=2, fold=0))
    expected = evaluation.build(held_out, TrainConfig().labels, n_privacy=1, n_curve=1, n_eating_bg=1)
    single = np.array(expected.group) == "single"
    evaluated = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    details = evaluated["details"]
    assert 0.0 <= evaluated["streamed"]["background_in_false_event"] <= 1.0
    assert [details["per_class"][l]["support"] for l in TrainConfig().labels] == \
        expected.windows.targets[single].sum(axis=0).astype(int).tolist()
    assert details["single_windows"] == int(single.sum())
    # evaluate --baseline: the paired difference of two models is exactly the difference of their own
    # figures on the same windows (here every verified clip), and zero against itself.
    rows = {}
    for f in (1, 2):
        assert main(["evaluate", str(out / f"fold-{f}"), str(data), "--out", str(tmp_path / f"all-{f}")]) == 0
        rows[f] = json.loads(capsys.readouterr().out)
    for base, expect in ((2, lambda k: rows[1][k] - rows[2][k]), (1, lambda k: 0.0)):
        assert main(["evaluate", str(out / "fold-1"), str(data), "--out", str(tmp_path / "cmp"),
                     "--baseline", str(out / f"fold-{base}")]) == 0
        assert "against " in capsys.readouterr().err
        diffs = json.loads((tmp_path / "cmp" / "against_baseline.json").read_text())["int8_student"]
        assert set(diffs) == {k for k, v in rows[1].items() if v is not None}
        for key, d in diffs.items():
            assert d["difference"] == pytest.approx(expect(key), abs=1e-12), key
            assert d["interval_95"][0] <= d["interval_95"][1]
    # A baseline measured at other thresholds is refused: one set of thresholds measures both.
    import shutil
    other = tmp_path / "other-thresholds"
    shutil.copytree(out / "fold-2", other)
    manifest = json.loads((other / "model.json").read_text())
    manifest["thresholds"]["eating"]["on"] = 0.6
    (other / "model.json").write_text(json.dumps(manifest))
    assert main(["evaluate", str(out / "fold-1"), str(data), "--out", str(tmp_path / "cmp"),
                 "--baseline", str(other)]) == 2
    assert "other thresholds" in capsys.readouterr().err
    # The same recipe again, against the first run as its baseline: it resumes every fold from the
    # checkpoints, scores the same windows identically, and every paired difference is exactly 0.
    again = tmp_path / "cv-again"
    assert main(["crossval", str(data), "--out", str(again), "--folds", "2", "--quick", "--baseline", str(out),
                 "--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")]) == 0
    compared = json.loads((again / "crossval.json").read_text())["against_baseline"]
    assert set(compared) == {"teacher", "float_student", "int8_student"}
    assert all(r == {"difference": 0.0, "interval_95": [0.0, 0.0]} for rows in compared.values() for r in rows.values())
    assert "## Against the baseline" in (again / "crossval.md").read_text()
    # Several baselines (one recipe retrained with other student seeds): the baseline is their mean, and
    # the report says how far apart they are. A second "run" that never fires (all scores 0) has known
    # figures: nothing detected, nothing falsely reported, F1 0.
    silent = tmp_path / "cv-silent"
    silent.mkdir()
    with np.load(out / "scores.npz") as z:
        np.savez(silent / "scores.npz", **{k: (np.zeros_like(z[k]) if k.startswith("scores_") else z[k]) for k in z.files})
    both = tmp_path / "cv-both"
    assert main(["crossval", str(data), "--out", str(both), "--folds", "2", "--quick", "--baseline", str(out),
                 "--baseline", str(silent), "--yamnet", str(yamnet_dir / "yamnet_int8_logmel_in.tflite")]) == 0
    first = json.loads((out / "crossval.json").read_text())["pooled"]["int8_student"]
    compared = json.loads((both / "crossval.json").read_text())["against_baseline"]["int8_student"]
    assert set(compared) == {k for k, v in first.items() if v is not None}
    for key, d in compared.items():  # this run equals the first baseline: this - mean = (first - 0) / 2
        assert d["difference"] == pytest.approx(first[key] / 2, abs=1e-12), key
        assert d["retraining_spread"] == pytest.approx(first[key], abs=1e-12), key
    assert " apart" in (both / "crossval.md").read_text()
    capsys.readouterr()
    assert main(["crossval", str(data), "--out", str(tmp_path / "x"), "--folds", "2", "--quick",
                 "--baseline", str(tmp_path / "ev")]) == 2
    assert "earlier `bowlsense crossval` or `bowlsense train` run" in capsys.readouterr().err


def test_crossval_needs_two_folds(tmp_path, capsys):
    rc = main(["crossval", str(tmp_path), "--out", str(tmp_path / "cv"), "--folds", "1"])
    assert rc == 2 and "--folds must be at least 2" in capsys.readouterr().err


# A value other than the default for every recipe option (add_recipe_arguments): a new option must be
# listed here, and test_every_recipe_option_changes_the_config then checks it reaches TrainConfig.
RECIPE_OPTION_VALUES = {
    "yamnet": None,  # where the weights are, not how to train: it reaches train(), not the config
    "labels": ["--labels", "eating,speech"], "seed": ["--seed", "1"], "student_seed": ["--student-seed", "1"],
    "teacher_seed": ["--teacher-seed", "1"], "unfrozen_blocks": ["--unfrozen-blocks", "3"],
    "event_snr": ["--event-snr", "0,15"], "speech_snr": ["--speech-snr=-8,20"], "head_prior": ["--head-prior"],
    "teacher_lr": ["--teacher-lr", "1e-4"], "teacher_mask": ["--teacher-mask", "0.2"],
    "teacher_anchor": ["--teacher-anchor", "1e-3"], "teacher_epochs": ["--teacher-epochs", "3"],
    "student_epochs": ["--student-epochs", "5"], "student_lr": ["--student-lr", "1e-2"],
    "max_macs": ["--max-macs", "5000000"], "max_weight_bytes": ["--max-weight-bytes", "40000"],
    "distill_alpha": ["--distill-alpha", "0.9"], "distill_embedding": ["--distill-embedding", "0.3"],
    "distill_temperature": ["--distill-temperature", "2"], "privacy_temperature": ["--privacy-temperature", "1"],
    "label_weight": ["--label-weight", "speech=2"], "threshold": ["--threshold", "eating=0.6"],
    "student_transfer": ["--student-transfer", "500"], "teacher_transfer": ["--teacher-transfer"],
    "live_teacher": ["--no-live-teacher"], "student_mix": ["--student-mix", "0.5"],
    "student_blocks": ["--student-blocks", "2:32,1:64"], "student_stem": ["--student-stem", "16"],
    "student_pool": ["--student-pool", "time_max"], "student_dropout": ["--student-dropout", "0.3"],
    "quick": ["--quick"],
}


def test_every_recipe_option_changes_the_config(tmp_path):
    import argparse

    from bowlsense.cli import build_parser
    from bowlsense.cli.train import add_recipe_arguments, config_from_args
    from bowlsense.train.pipeline import TrainConfig
    recipe = argparse.ArgumentParser()
    add_recipe_arguments(recipe)
    options = {a.dest for a in recipe._actions if a.dest != "help"}
    assert options == set(RECIPE_OPTION_VALUES), "list each new recipe option in RECIPE_OPTION_VALUES"
    for command in ("train", "crossval"):
        base = [command, str(tmp_path), "--out", str(tmp_path / "o")]
        assert config_from_args(build_parser().parse_args(base)) == TrainConfig()
        for dest, argv in RECIPE_OPTION_VALUES.items():
            if argv is not None:
                cfg = config_from_args(build_parser().parse_args(base + argv))
                assert cfg != TrainConfig(), f"{argv} did not reach the config"


def test_recipe_options_reach_the_config(tmp_path, capsys):
    from bowlsense.cli import build_parser
    from bowlsense.cli.train import config_from_args
    from bowlsense.train.pipeline import TrainConfig
    for command in ("train", "crossval"):
        args = build_parser().parse_args([command, str(tmp_path), "--out", str(tmp_path / "o"), "--distill-alpha", "0.9",
                                          "--student-pool", "time_max", "--seed", "3",
                                          "--student-seed", "2", "--student-blocks", "2:32,1:64", "--student-stem", "16",
                                          "--student-transfer", "500", "--teacher-seed", "4", "--teacher-transfer",
                                          "--event-snr", "0,15", "--speech-snr=-8,20", "--head-prior",
                                          "--teacher-lr", "1e-4", "--teacher-mask", "0.2", "--distill-temperature", "3",
                                          "--privacy-temperature", "1", "--label-weight", "speech=2"])
        cfg = config_from_args(args)
        assert (cfg.distill_alpha, cfg.student.pool, cfg.seed, cfg.student_seed) == (0.9, "time_max", 3, 2)
        assert cfg.teacher_seed == 4 and cfg.teacher_rng_seed == 4003
        assert cfg.student_transfer == 500 and cfg.teacher_transfer
        assert cfg.event_snr_db == (0.0, 15.0) and cfg.speech_snr_db == (-8.0, 20.0) and cfg.head_prior
        assert cfg.teacher_mask == 0.2
        assert cfg.teacher_lr == 1e-4 and cfg.distill_temperature == 3.0 and cfg.privacy_temperature == 1.0
        assert cfg.label_temperatures() == (3.0, 3.0, 3.0, 1.0)  # eating, drinking, bowl, speech
        assert cfg.label_weights() == (1.0, 1.0, 1.0, 2.0) and cfg.weighted
        assert cfg.student.blocks == ((2, 32), (1, 64)) and cfg.student.stem_filters == 16
    # --threshold adds to the default own thresholds or replaces one; --labels keeps those of its labels.
    defaults = dict(TrainConfig().label_threshold)
    args = build_parser().parse_args(["train", str(tmp_path), "--out", str(tmp_path / "o"), "--threshold", "eating=0.6",
                                      "--threshold", f"bowl={defaults['bowl'] / 2:g}"])
    assert dict(config_from_args(args).label_threshold) == {**defaults, "eating": 0.6, "bowl": defaults["bowl"] / 2}
    args = build_parser().parse_args(["train", str(tmp_path), "--out", str(tmp_path / "o"), "--labels", "eating,speech"])
    assert config_from_args(args).label_threshold == ()
    for bad, message in (("bowl", "expected LABEL=THRESHOLD"), ("bowl=0", "more than 0 and at most 1"),
                         ("bowl=1.5", "more than 0 and at most 1")):
        with pytest.raises(SystemExit) as e:
            main(["train", str(tmp_path), "--out", str(tmp_path / "o"), "--threshold", bad])
        assert e.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train", str(tmp_path), "--out", str(tmp_path / "o"), "--distill-alpha", "1.5"])
    assert e.value.code == 2 and "between 0 and 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train", str(tmp_path), "--out", str(tmp_path / "o"), "--student-transfer", "-5"])
    assert e.value.code == 2 and "must be 0 or more" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train", str(tmp_path), "--out", str(tmp_path / "o"), "--teacher-lr", "0"])
    assert e.value.code == 2 and "more than 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train", str(tmp_path), "--out", str(tmp_path / "o"), "--distill-temperature", "0.5"])
    assert e.value.code == 2 and "1 or more" in capsys.readouterr().err
    for bad, message in (("speech", "expected LABEL=WEIGHT"), ("speech=x", "expected LABEL=WEIGHT"),
                         ("speech=0", "more than 0")):
        with pytest.raises(SystemExit) as e:
            main(["train", str(tmp_path), "--out", str(tmp_path / "o"), "--label-weight", bad])
        assert e.value.code == 2 and message in capsys.readouterr().err
    for bad in ("5", "15,0", "a,b"):
        with pytest.raises(SystemExit) as e:
            main(["train", str(tmp_path), "--out", str(tmp_path / "o"), f"--event-snr={bad}"])
        assert e.value.code == 2 and "--event-snr" in capsys.readouterr().err
    for bad in ("0.6", "-0.1", "x"):
        with pytest.raises(SystemExit) as e:
            main(["train", str(tmp_path), "--out", str(tmp_path / "o"), "--teacher-mask", bad])
        assert e.value.code == 2 and "--teacher-mask" in capsys.readouterr().err
    for bad in ("0", "-3", "x"):
        with pytest.raises(SystemExit) as e:
            main(["train", str(tmp_path), "--out", str(tmp_path / "o"), "--student-stem", bad])
        assert e.value.code == 2 and "--student-stem" in capsys.readouterr().err
    for bad in ("2x48", "3:48", "2:0"):
        with pytest.raises(SystemExit) as e:
            main(["train", str(tmp_path), "--out", str(tmp_path / "o"), "--student-blocks", bad])
        assert e.value.code == 2 and "--student-blocks" in capsys.readouterr().err
