"""Operating points (train/operating.py, `bowlsense thresholds`): each figure as the thresholds move,
checked against counts done by hand on small evaluation sets whose scores are chosen here."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bowlsense.train import evaluation, examples, operating

NAN = np.nan
THRESHOLDS = {"eating": {"on": 0.5, "off": 0.35}, "speech": {"on": 0.35, "off": 0.25}}


def _evalset(rows):
    """rows: (eating target, speech target, group, other, snr)."""
    n = len(rows)
    targets = np.array([[r[0], r[1]] for r in rows], np.float32)
    w = examples.Windows(np.zeros((n, 96, 64), np.int16), targets, ["x"] * n, [f"w{i}" for i in range(n)],
                         np.array([r[4] for r in rows], np.float32))
    return evaluation.EvalSet(("eating", "speech"), w, [r[2] for r in rows], [r[3] for r in rows])


# Five eating windows scored 0.1 .. 0.9, five background windows scored 0.2 .. 0.6 for eating,
# two eating-over-background mixtures scored 0.3 and 0.8, four speech mixtures at -10 dB.
EATING = [0.1, 0.3, 0.5, 0.7, 0.9]
BACKGROUND = [0.2, 0.3, 0.4, 0.5, 0.6]
ROWS = ([(1, 0, "single", "", NAN)] * 5 + [(0, 0, "single", "", NAN)] * 5 + [(1, 0, "eating_bg", "background", 0.0)] * 2
        + [(0, 1, "privacy", "background", -10.0)] * 4)
SCORES = np.array([[e, 0.0] for e in EATING] + [[b, 0.0] for b in BACKGROUND] + [[0.3, 0.0], [0.8, 0.0]]
                  + [[0.0, s] for s in (0.2, 0.4, 0.6, 0.8)])


def test_event_sweep_counts_by_hand():
    rows = {r["on"]: r for r in operating.sweep(_evalset(ROWS), SCORES, THRESHOLDS, "events", grid=(0.25, 0.5, 0.65))}
    # on 0.25: eating 0.3,0.5,0.7,0.9 caught (4/5); background 0.3..0.6 fire (4/5); mixtures 0.3, 0.8 (2/2)
    assert rows[0.25]["eating_detect_alone"] == pytest.approx(4 / 5)
    assert rows[0.25]["background_false_event"] == pytest.approx(4 / 5)
    assert rows[0.25]["eating_detect_0dB_under_background"] == pytest.approx(1.0)
    # on 0.5: 0.5, 0.7, 0.9 (3/5); background 0.5, 0.6 (2/5); mixture 0.8 only
    assert rows[0.5]["eating_detect_alone"] == pytest.approx(3 / 5)
    assert rows[0.5]["background_false_event"] == pytest.approx(2 / 5)
    assert rows[0.5]["eating_detect_0dB_under_background"] == pytest.approx(1 / 2)
    # on 0.65: 0.7, 0.9; no background window; eating F1 = 2*1*0.4/1.4 and speech has no single windows
    assert rows[0.65]["background_false_event"] == 0.0
    assert rows[0.65]["macro_f1"] == pytest.approx(2 * 0.4 / 1.4)
    # The event sweep leaves speech at its own threshold: speech figures are not in it.
    assert "speech_detect_-10dB" not in rows[0.5]


def test_privacy_sweep_moves_only_speech():
    rows = operating.sweep(_evalset(ROWS), SCORES, THRESHOLDS, "privacy", grid=(0.3, 0.7))
    assert [r["speech_detect_-10dB"] for r in rows] == [pytest.approx(3 / 4), pytest.approx(1 / 4)]
    # Speech never fires on the 12 speech-free windows, whatever its threshold.
    assert all(r["speech_false_positive"] == 0.0 for r in rows)
    assert "eating_detect_alone" not in rows[0]


def test_verdict_names_the_thresholds_that_meet_every_target_or_says_none_does():
    separable = np.array([[0.9, 0.0]] * 5 + [[0.1, 0.0]] * 5 + [[0.9, 0.0]] * 2 + [[0.0, 0.9]] * 4)
    ev = _evalset(ROWS)
    rows = operating.sweep(ev, separable, THRESHOLDS, "events", grid=(0.05, 0.5, 0.95))
    # on 0.05 lets every background window fire; 0.5 separates; at 0.95 nothing is caught.
    assert operating.verdict(rows, "teacher") == "every target met at on = 0.5"
    rows = operating.sweep(ev, SCORES, THRESHOLDS, "events", grid=(0.25, 0.5, 0.65))
    assert operating.verdict(rows, "teacher").startswith("no threshold meets every target")
    # macro-F1's absolute target is the teacher's: a student row is not held to it.
    row = {"on": 0.5, "macro_f1": 0.5, "background_false_event": 0.0}
    assert operating.meets(row, "teacher") == {"macro_f1": False, "background_false_event": True}
    assert operating.meets(row, "int8_student") == {"background_false_event": True}


def test_thresholds_command_writes_tables_and_plot(tmp_path, capsys):
    from bowlsense.cli import main
    from bowlsense.train.crossval import save_scores
    ev = _evalset(ROWS)
    groups = [f"clip{i}" for i in range(len(ROWS))]
    (tmp_path / "run").mkdir()
    save_scores(tmp_path / "run" / "scores.npz", ev,
                {"teacher": SCORES, "int8_student": SCORES}, THRESHOLDS, groups)
    assert main(["thresholds", str(tmp_path / "run"), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "## teacher, events" in printed and "## int8_student, privacy" in printed
    saved = json.loads((tmp_path / "out" / "thresholds.json").read_text())
    events = saved["models"]["teacher"]["events"]["rows"]
    assert [r["on"] for r in events] == list(operating.GRID)
    assert next(r for r in events if r["on"] == 0.5)["eating_detect_alone"] == pytest.approx(3 / 5)
    assert (tmp_path / "out" / "thresholds.png").stat().st_size > 10_000
    # A model the run does not hold, and a folder with no run, stop with a message.
    assert main(["thresholds", str(tmp_path / "run"), "--model", "float_student"]) == 2
    assert "holds no float_student scores" in capsys.readouterr().err
    assert main(["thresholds", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "missing or unreadable" in err and "baseline" not in err


# Two folds of speech-free single windows and speech at -10 dB, scores off the grid's points.
FOLDED_ROWS = ([(0, 0, "single", "", NAN)] * 3 + [(0, 1, "privacy", "background", -10.0)] * 2) * 2
FOLDED_SCORES = np.array([[0.0, s] for s in (0.12, 0.32, 0.62, 0.42, 0.82)]     # fold 0
                         + [[0.0, s] for s in (0.22, 0.22, 0.22, 0.32, 0.62)])  # fold 1
FOLD = np.array([0] * 5 + [1] * 5)


def test_cross_fitted_threshold_is_chosen_on_the_other_fold_by_hand():
    got = operating.cross_fitted(_evalset(FOLDED_ROWS), FOLDED_SCORES, THRESHOLDS, FOLD, "privacy")
    # Fold 0's threshold from fold 1's windows: no false alarm from 0.25 up (speech-free at 0.22), both
    # speech windows (0.32, 0.62) caught up to 0.3, the higher of the ties. Fold 1's from fold 0's: no false
    # alarm from 0.65 up (0.62), 0.82 caught up to 0.8.
    assert got["chosen"] == [0.3, 0.8]
    # Measured where they were not chosen: fold 0 at 0.3 fires on 0.32 and 0.62 and catches 0.42 and 0.82;
    # fold 1 at 0.8 fires on nothing and catches nothing.
    assert got["speech_false_positive"] == pytest.approx(2 / 6)
    assert got["speech_detect_-10dB"] == pytest.approx(2 / 4)


def test_choose_falls_back_to_the_fewest_false_alarms():
    rows = [{"on": 0.3, "speech_false_positive": 0.10, "speech_detect_-10dB": 0.9},
            {"on": 0.6, "speech_false_positive": 0.05, "speech_detect_-10dB": 0.7},
            {"on": 0.9, "speech_false_positive": 0.05, "speech_detect_-10dB": 0.6}]
    assert operating.choose(rows, "privacy") == 0.6  # no row within 2%: fewest alarms, then best detection
    rows[0]["speech_false_positive"] = 0.01
    assert operating.choose(rows, "privacy") == 0.3


def test_thresholds_command_chooses_on_other_folds_for_a_crossval_run(tmp_path, capsys):
    from bowlsense.cli import main
    from bowlsense.train.crossval import save_scores
    (tmp_path / "run").mkdir()
    save_scores(tmp_path / "run" / "scores.npz", _evalset(FOLDED_ROWS), {"teacher": FOLDED_SCORES,
                "int8_student": FOLDED_SCORES}, THRESHOLDS, [f"clip{i}" for i in range(10)], fold=FOLD)
    assert main(["thresholds", str(tmp_path / "run"), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "## Thresholds chosen on other recordings" in printed and "chosen elsewhere (0.3, 0.8)" in printed
    saved = json.loads((tmp_path / "out" / "thresholds.json").read_text())["models"]["int8_student"]["privacy"]
    # At the run's own 0.35: 0.62 fires (1 of 6), 0.42, 0.82 and 0.62 caught (3 of 4).
    assert saved["at_run"]["speech_false_positive"] == pytest.approx(1 / 6)
    assert saved["at_run"]["speech_detect_-10dB"] == pytest.approx(3 / 4)
    assert saved["chosen_elsewhere"]["speech_detect_-10dB"] == pytest.approx(2 / 4)


# Labels eating, bowl and speech over two folds: two bowl and two background windows each, eating and speech
# never present and never firing, so bowl's threshold alone decides every figure.
OWN_LABELS = ("eating", "bowl", "speech")
OWN_THRESHOLDS = {"eating": {"on": 0.5, "off": 0.35}, "bowl": {"on": 0.5, "off": 0.35}, "speech": {"on": 0.35, "off": 0.25}}
OWN_BOWL = [1, 1, 0, 0] * 2
OWN_SCORES = np.array([[0.0, s, 0.0] for s in (0.62, 0.82, 0.42, 0.72,    # fold 0: bowl, bowl, bg, bg
                                               0.52, 0.92, 0.32, 0.55)])  # fold 1
OWN_FOLD = np.array([0] * 4 + [1] * 4)


def _own_evalset():
    n = len(OWN_BOWL)
    targets = np.array([[0, b, 0] for b in OWN_BOWL], np.float32)
    w = examples.Windows(np.zeros((n, 96, 64), np.int16), targets, ["x"] * n, [f"w{i}" for i in range(n)],
                         np.full(n, NAN, np.float32))
    return evaluation.EvalSet(OWN_LABELS, w, ["single"] * n, [""] * n)


def test_own_thresholds_are_chosen_by_f1_on_the_other_fold_by_hand():
    assert operating.own_labels(OWN_LABELS, ("speech",)) == ["bowl"]
    got = operating.cross_fitted_own(_own_evalset(), OWN_SCORES, OWN_THRESHOLDS, OWN_FOLD)
    # Fold 0's from fold 1 (bowl 0.52, 0.92; background 0.32, 0.55): F1 is best, 0.8 (2 caught, 1 false),
    # from 0.35 to 0.5: the higher tie, 0.5. Fold 1's from fold 0 (bowl 0.62, 0.82; background 0.42, 0.72):
    # 0.8 from 0.45 to 0.6: 0.6.
    assert got["chosen"] == {"bowl": [0.5, 0.6]}
    # Measured where not chosen: fold 0 at 0.5 catches both and fires on 0.72; fold 1 at 0.6 catches 0.92
    # only and fires on nothing. Background: 1 of 4 fires; bowl's F1 2*3 / (2*3 + 1 + 1).
    assert got["background_false_event"] == pytest.approx(1 / 4)
    assert got["macro_f1"] == pytest.approx(6 / 8)
    assert got["eating_detect_alone"] is None  # no eating window to catch


def test_thresholds_command_reports_the_own_thresholds_of_a_crossval_run(tmp_path, capsys):
    from bowlsense.cli import main
    from bowlsense.train.crossval import save_scores
    (tmp_path / "run").mkdir()
    save_scores(tmp_path / "run" / "scores.npz", _own_evalset(), {"teacher": OWN_SCORES, "int8_student": OWN_SCORES},
                OWN_THRESHOLDS, [f"clip{i}" for i in range(len(OWN_BOWL))], fold=OWN_FOLD)
    assert main(["thresholds", str(tmp_path / "run"), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "## bowl: each its own threshold, chosen on other recordings" in printed
    assert "chosen elsewhere (bowl 0.5, 0.6)" in printed
    assert "`--threshold bowl=0.5`" in printed  # the lower of the two middle choices: a point of the grid
    own = json.loads((tmp_path / "out" / "thresholds.json").read_text())["own"]["int8_student"]
    # At the run's 0.5 for both folds: 0.72 and 0.55 fire (2 of 4); 0.52 ... 0.92 all caught, F1 2*4 / (2*4 + 2).
    assert own["at_run"]["background_false_event"] == pytest.approx(2 / 4)
    assert own["at_run"]["macro_f1"] == pytest.approx(8 / 10)
    assert own["chosen_elsewhere"]["background_false_event"] == pytest.approx(1 / 4)
    # The events tables name the run's thresholds of the swept labels, each by name once they differ.
    assert "| the run's (0.5) |" in printed
    differ = {"thresholds": {**OWN_THRESHOLDS, "bowl": {"on": 0.95, "off": 0.665}}, "privacy_labels": ["speech"]}
    assert operating._run_ons(differ, "events") == "eating 0.5, bowl 0.95"
