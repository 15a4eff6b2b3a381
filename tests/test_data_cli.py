"""`bowlsense data import/check/verify/audit/demo` end to end on small real and synthetic datasets."""
from __future__ import annotations

import base64
import csv
import io
import os
import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from bowlsense.cli import main
from bowlsense.data import Dataset, load_audio
from bowlsense.data.audit import write_audit
from bowlsense.data.demo import make_demo
from bowlsense.manifest import sha256_file

REAL = {"eating": ["audio/kitchen20/0-160438-A-6.wav"], "speech": ["audio/speech/fsdd/0_george_0.wav",
        "audio/speech/fsdd/1_lucas_1.wav"], "bowl": ["audio/kitchen20/1-202768-A-18.wav"],
        "background": ["audio/noise/audiomentations/hens.ogg"]}


@pytest.fixture()
def src(tmp_path, shared_data_dir):
    """SRC/<label>/ folders of real clips (whatever Kitchen20 files exist for eating/bowl)."""
    ds = Dataset.load(shared_data_dir)
    root = tmp_path / "src"
    for label, wanted in REAL.items():
        picks = [c for c in ds.clips if c.path in wanted] or [c for c in ds.clips if c.labels == (label,)][:1]
        for c in picks[:2]:
            (root / label).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(c.abspath, root / label / os.path.basename(c.path))
    return root


def _rows(folder):
    with open(folder / "labels.csv", newline="") as f:
        return {r["path"]: r for r in csv.DictReader(f)}


def _run(capsys, *argv):
    rc = main(["data", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_import_is_unverified_and_idempotent(src, tmp_path, capsys):
    out = tmp_path / "ds"
    (src / "README.txt").write_text("not audio")
    rc, stdout, err = _run(capsys, "import", src, out)
    assert rc == 0, err
    rows = _rows(out)
    assert len(rows) == sum(1 for _ in src.rglob("*.*")) - 1
    for path, r in rows.items():
        assert r["verified"] == "no" and r["sha256"] == sha256_file(out / path)
        assert path.startswith(f"audio/{r['label']}/")
    assert "not inside a <label>/ folder" in err
    assert Dataset.load(out).verified().clips == []
    rc, stdout, _ = _run(capsys, "import", src, out)
    assert rc == 0 and "imported 0 clips" in stdout and _rows(out) == rows


def test_import_reports_broken_files_and_unknown_folders(src, tmp_path, capsys):
    (src / "speech" / "broken.wav").write_text("text, not audio")
    (src / "barking").mkdir()
    (src / "eating+speech").mkdir()
    shutil.copyfile(next((src / "speech").glob("0_*.wav")), src / "eating+speech" / "both.wav")
    rc, _, err = _run(capsys, "import", src, tmp_path / "ds")
    assert rc == 1
    assert "broken.wav" in err and "not a recognised audio file" in err
    assert "barking" in err and "not a label" in err
    rows = _rows(tmp_path / "ds")
    assert rows["audio/eating+speech/both.wav"]["label"] == "eating;speech"
    assert not any("broken" in p for p in rows)


@pytest.fixture()
def imported(src, tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["data", "import", str(src), str(out)]) == 0
    capsys.readouterr()
    return out


def test_check_clean_dataset_passes(imported, capsys):
    rc, stdout, err = _run(capsys, "check", imported)
    assert rc == 0, err
    assert re.search(r"^speech\s+0\s+2\s+0", stdout, re.M)  # 0 verified, 2 unverified


def test_check_names_every_problem(imported, capsys, tmp_path):
    ds = Dataset.load(imported)
    text = (imported / "labels.csv").read_text()
    speech = next(c for c in ds.clips if c.labels == ("speech",))
    eating = next(c for c in ds.clips if c.labels == ("eating",))
    # a file changed after import
    changed = next(c for c in ds.clips if c.labels == ("bowl",))
    data = bytearray(changed.abspath.read_bytes())
    data[-1] ^= 0x40
    changed.abspath.write_bytes(bytes(data))
    # a text file named .wav, a 1-sample clip, a missing file, a duplicate under another label
    (imported / "audio/speech/text.wav").write_text("hello")
    sf.write(str(imported / "audio/speech/one.wav"), np.array([5], np.int16), 16000, subtype="PCM_16")
    shutil.copyfile(eating.abspath, imported / "audio/speech/copy_of_eating.wav")
    extra = [
        f"audio/speech/text.wav,speech,no,{sha256_file(imported / 'audio/speech/text.wav')},t,,",
        f"audio/speech/one.wav,speech,no,{sha256_file(imported / 'audio/speech/one.wav')},t,,",
        "audio/speech/gone.wav,speech,no,,t,,",
        f"audio/speech/copy_of_eating.wav,speech,no,{eating.sha256},t,,",
        f"{speech.path},barking,no,{speech.sha256},t,,",
        f"{eating.path},background;eating,no,{eating.sha256},t,,",
    ]
    header, *body = text.splitlines()
    keep = [l for l in body if not l.startswith((speech.path + ",", eating.path + ","))]
    pad = [e + "," * (header.count(",") - e.count(",")) for e in extra]
    (imported / "labels.csv").write_text("\n".join([header, *keep, *pad]) + "\n")
    rc, stdout, err = _run(capsys, "check", imported)
    assert rc == 1
    expect = {
        changed.path: "sha256 mismatch",
        "audio/speech/text.wav": "not a recognised audio file",
        "audio/speech/one.wav": "too short",
        "audio/speech/gone.wav": "file not found",
        speech.path: "unknown label(s) barking",
        eating.path: "background means no event",
    }
    for path, what in expect.items():
        assert any(path in line and what in line for line in err.splitlines() if line.startswith("ERROR")), (path, what, err)
    assert any("conflicting labels" in l and "copy_of_eating.wav" in l for l in err.splitlines())
    assert re.search(r"\d+ errors", stdout)


def test_verify_records_who_and_when_and_rejects(imported, capsys):
    ds = Dataset.load(imported)
    speech = sorted(c.path for c in ds.clips if c.labels == ("speech",))
    bowl = next(c.path for c in ds.clips if c.labels == ("bowl",))
    before = _rows(imported)
    rc, stdout, err = _run(capsys, "verify", imported, *speech, "--by", "alice")
    assert rc == 0, err
    rows = _rows(imported)
    for p in speech:
        assert rows[p]["verified"] == "yes" and rows[p]["verified_by"] == "alice"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[p]["verified_at"])
    for p in before:
        if p not in speech:
            assert rows[p]["verified"] == "no" and rows[p]["label"] == before[p]["label"]
    rc, _, _ = _run(capsys, "verify", imported, str(imported / bowl), "--label", "bowl;eating", "--by", "bob")
    assert rc == 0 and _rows(imported)[bowl]["label"] == "bowl;eating"
    rc, _, _ = _run(capsys, "verify", imported, speech[0], "--reject", "--by", "carol")
    assert rc == 0
    row = _rows(imported)[speech[0]]
    assert (row["verified"], row["verified_by"]) == ("rejected", "carol")
    gate = Dataset.load(imported).verified()
    assert sorted(c.path for c in gate.clips) == sorted([speech[1], bowl]) and gate.left_out == len(before) - 2
    assert "1 rejected" in gate.summary()


def test_verify_is_all_or_nothing(imported, capsys):
    ds = Dataset.load(imported)
    good = ds.clips[0].path
    snapshot = (imported / "labels.csv").read_bytes()
    rc, _, err = _run(capsys, "verify", imported, good, "audio/nope.wav")
    assert rc == 1 and "audio/nope.wav" in err and "nothing was changed" in err
    rc, _, err = _run(capsys, "verify", imported, good, "--label", "barking")
    assert rc == 1 and "unknown label" in err
    # bytes changed since labelling: refused unless the person vouches for the new bytes
    clip = ds.clips[1]
    data = bytearray(clip.abspath.read_bytes())
    data[-1] ^= 0x01
    clip.abspath.write_bytes(bytes(data))
    rc, _, err = _run(capsys, "verify", imported, clip.path)
    assert rc == 1 and "sha256 mismatch" in err and clip.path in err
    assert (imported / "labels.csv").read_bytes() == snapshot
    rc, _, _ = _run(capsys, "verify", imported, clip.path, "--update-sha", "--by", "dan")
    assert rc == 0 and _rows(imported)[clip.path]["sha256"] == sha256_file(clip.abspath)
    # corrupt audio cannot be verified
    clip.abspath.write_text("garbage")
    rc, _, err = _run(capsys, "verify", imported, clip.path, "--update-sha")
    assert rc == 1 and "not a recognised audio file" in err


def test_verify_crash_mid_write_keeps_old_csv(imported, capsys, monkeypatch):
    snapshot = (imported / "labels.csv").read_bytes()

    def crash(*a, **k):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        main(["data", "verify", str(imported), Dataset.load(imported).clips[0].path, "--by", "x"])
    assert (imported / "labels.csv").read_bytes() == snapshot
    assert not [p for p in imported.iterdir() if p.name.endswith(".tmp")]


def test_audit_page_is_self_contained_and_sorted_by_disagreement(imported, tmp_path, capsys):
    out = tmp_path / "report.html"
    rc, stdout, err = _run(capsys, "audit", imported, "--out", out)
    assert rc == 0, err
    page = out.read_text()
    n = len(Dataset.load(imported).clips)
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(pngs) == n and len(re.findall(r'src="data:audio/flac;base64,', page)) == n
    assert not re.search(r'(src|href)="(https?:|//|/)', page)  # nothing fetched from anywhere
    import matplotlib.pyplot as plt
    img = plt.imread(io.BytesIO(base64.b64decode(pngs[0])), format="png")
    assert img.shape[0] == 128
    assert "<svg" in page and "verified" in page

    # A fake model that hears speech everywhere: non-speech clips disagree most, so they come first.
    ds = Dataset.load(imported)
    write_audit(imported, out, scorer=lambda pcm: {"speech": 0.9, "eating": 0.0},
                model_labels=["speech", "eating"])
    page = out.read_text()
    order = [m for m in re.findall(r'class=path>([^<]+)<', page)]
    speech = {c.path for c in ds.clips if "speech" in c.labels}
    first_speech = min(order.index(p) for p in speech)
    assert all(order.index(c.path) < first_speech for c in ds.clips if c.path not in speech)
    assert "disagreement 0.90" in page and "disagreement 0.10" in page


def _heldout_run(folder, windows_by_sha: dict) -> None:
    """A run folder whose scores.npz holds these single windows (clip sha256 -> rows of (eating, speech)
    scores), as `bowlsense crossval` writes it."""
    from bowlsense.train import evaluation
    from bowlsense.train.crossval import save_scores
    from bowlsense.train.examples import Windows
    from bowlsense.manifest import Threshold
    groups = [sha for sha, rows in windows_by_sha.items() for _ in rows]
    scores = np.array([r for rows in windows_by_sha.values() for r in rows], np.float32)
    n = len(groups)
    w = Windows(np.zeros((n, 96, 64), np.int16), np.zeros((n, 2), np.float32), ["single"] * n,
                [f"w{i}" for i in range(n)], np.full(n, np.nan, np.float32))
    folder.mkdir()
    save_scores(folder / "scores.npz", evaluation.EvalSet(("eating", "speech"), w, ["single"] * n, [""] * n),
                {"int8_student": scores}, {"eating": Threshold(0.5, 0.35), "speech": Threshold(0.35, 0.25)},
                np.array(groups), fold=np.zeros(n))


def test_audit_heldout_ranks_clips_by_a_crossval_runs_window_scores(imported, tmp_path, capsys):
    """--heldout RUN: each clip's scores are the run's scores of its windows (no model is run); the most
    confident window gives the clip's score and disagreement, the share of wrong windows breaks ties, and
    clips the run did not validate come last, marked."""
    ds = Dataset.load(imported)
    speech = [c for c in ds.clips if c.labels == ("speech",)]
    eating = next(c for c in ds.clips if c.labels == ("eating",))
    background = next(c for c in ds.clips if c.labels == ("background",))
    assert len(speech) >= 2, "the fixture's dataset has two speech clips"
    run = tmp_path / "run"
    _heldout_run(run, {
        speech[0].sha256: [[0.0, 0.2]],                         # speech missed: disagreement 0.8
        eating.sha256: [[0.9, 1.0], [0.8, 1.0]],                # eating caught; speech fires in every window
        background.sha256: [[1.0, 0.0], [0.0, 0.0], [0.2, 0.1]],  # eating fires in one window of three
        "f" * 64: [[0.0, 0.0]],                                  # a clip of another dataset: ignored
    })
    out = tmp_path / "r.html"
    rc, stdout, err = _run(capsys, "audit", imported, "--out", out, "--heldout", run)
    assert rc == 0, err
    assert f"3 of {len(ds.clips)} clips have held-out scores" in stdout
    page = out.read_text()
    order = re.findall(r'class=path>([^<]+)<', page)
    # eating and background both disagree 1.0 (a window at 1 where 0 is right): all of eating's windows are
    # wrong, one of background's three (so eating first, against the order of their paths); then speech
    # (0.8); then the clips without scores.
    assert background.path < eating.path and order[:3] == [eating.path, background.path, speech[0].path]
    assert "wrong in 2 of 2 windows" in page and "wrong in 1 of 3 windows" in page
    assert "eating 0.90" in page and "eating 0.80" not in page   # a clip's score: its most confident window
    assert page.count("no score</span>") == len(ds.clips) - 3
    assert "(int8 student, held out)" in page


def test_audit_heldout_refuses_a_run_of_other_clips_or_none(imported, tmp_path, capsys):
    run = tmp_path / "other"
    _heldout_run(run, {"f" * 64: [[0.0, 0.0]]})
    rc, _, err = _run(capsys, "audit", imported, "--out", tmp_path / "r.html", "--heldout", run)
    assert rc == 1 and "validated none of" in err and not (tmp_path / "r.html").exists()
    rc, _, err = _run(capsys, "audit", imported, "--out", tmp_path / "r.html", "--heldout", tmp_path / "nowhere")
    assert rc == 1 and "missing or unreadable" in err
    with pytest.raises(SystemExit):  # one source of scores at a time
        main(["data", "audit", str(imported), "--out", str(tmp_path / "r.html"), "--heldout", str(run),
              "--model", str(tmp_path)])
    assert "not allowed with" in capsys.readouterr().err


def test_audit_audio_is_what_training_hears(imported, tmp_path):
    out = tmp_path / "r.html"
    write_audit(imported, out)
    page = out.read_text()
    ds = Dataset.load(imported)
    first = re.search(r'class=path>([^<]+)<.*?data:audio/flac;base64,([^"]+)"', page, re.S)
    clip = next(c for c in ds.clips if c.path == first.group(1))
    pcm, rate = sf.read(io.BytesIO(base64.b64decode(first.group(2))), dtype="int16")
    assert rate == 16000 and np.array_equal(pcm, clip.load()[: len(pcm)])


def test_audit_model_that_cannot_load_fails_clearly(imported, tmp_path, capsys):
    rc, _, err = _run(capsys, "audit", imported, "--out", tmp_path / "r.html", "--model", tmp_path / "nomodel")
    assert rc == 1 and "nomodel" in err


def test_demo_is_deterministic_and_checks_clean(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    make_demo(a, per_class=4, seed=3)
    rc, stdout, err = _run(capsys, "demo", b, "--per-class", "4", "--seed", "3")
    assert rc == 0, err
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    rc, stdout, err = _run(capsys, "check", a)
    assert rc == 0, err
    ds = Dataset.load(a)
    assert sorted({c.labels[0] for c in ds.clips}) == ["background", "bowl", "drinking", "eating", "speech"]
    assert all(c.verified and "synthetic" in c.source for c in ds.clips)
    assert "synthetic" in (a / "README.md").read_text().lower()
    for c in ds.clips:
        pcm = load_audio(c.abspath)
        assert 1.4 * 16000 < len(pcm) and np.abs(pcm.astype(np.int32)).max() > 300
    # a different seed gives different audio; the babble fallback works without espeak-ng
    make_demo(tmp_path / "c", per_class=2, seed=4, use_espeak=False)
    c = Dataset.load(tmp_path / "c")
    assert all("babble" in x.source for x in c.clips if x.labels == ("speech",))
    assert (tmp_path / "c" / "audio/eating/demo_eating_000.wav").read_bytes() != (a / "audio/eating/demo_eating_000.wav").read_bytes()


def test_demo_refuses_to_overwrite_a_real_dataset(imported, capsys):
    rc, _, err = _run(capsys, "demo", imported)
    assert rc == 1 and "not a bowlsense demo" in err


def test_audit_with_model_goes_through_the_trained_predictor(imported, tmp_path, capsys, monkeypatch):
    """--model uses bowlsense.train.predict.load_model and the training patches; a clip's score per label
    is its most confident window."""
    import bowlsense.train.predict as predict

    seen = []

    class Manifest:
        labels = ["eating", "speech"]

    def model(patches):
        seen.append(patches.shape)
        scores = np.zeros((len(patches), 2), np.float32)
        scores[-1] = [0.25, 0.75]  # only the last window is confident
        return scores

    monkeypatch.setattr(predict, "load_model", lambda d: (Manifest, model))
    out = tmp_path / "r.html"
    rc, stdout, err = _run(capsys, "audit", imported, "--out", out, "--model", tmp_path)
    assert rc == 0, err
    assert len(seen) == len(Dataset.load(imported).clips)
    assert all(len(s) == 3 and s[0] >= 1 and s[1:] == (96, 64) for s in seen)
    page = out.read_text()
    assert "eating 0.25" in page and "speech 0.75" in page and "Sorted by disagreement" in page


def test_audit_says_clearly_when_the_predictor_is_missing(imported, tmp_path, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "bowlsense.train.predict", None)  # import fails
    rc, _, err = _run(capsys, "audit", imported, "--out", tmp_path / "r.html", "--model", tmp_path)
    assert rc == 1 and "bowlsense.train.predict" in err and "without --model" in err
