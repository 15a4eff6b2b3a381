"""`bowlsense demo`'s own pieces: the terminal summary, live output of the commands it runs, stopping with
a message when one fails, and the self-contained report. (The whole demo trains a model for minutes;
it is run end to end by `make demo`, not here.)"""
from __future__ import annotations

import json

import pytest

from bowlsense.cli import demo

SUMMARY = {
    "teacher": {"macro_f1": 0.91, "speech_detect_+10dB": 1.0, "speech_false_positive": 0.031},
    "float_student": {"macro_f1": 0.88, "speech_detect_+10dB": 0.995, "speech_false_positive": 0.02},
    "int8_student": {"macro_f1": 0.87, "speech_detect_+10dB": 0.99, "speech_false_positive": 0.025},
}
TARGETS = {"teacher_macro_f1": 0.95, "student_macro_f1_gap": 0.03, "speech_detect_+10dB": 0.99,
           "speech_false_positive": 0.02}


@pytest.fixture()
def model_dir(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (d / "model.json").write_text(json.dumps({"metrics": {"evaluated_on": "a test split", "summary": SUMMARY,
                                                          "targets": TARGETS}}))
    return d


def _row(text, key):
    rows = [line.split() for line in text.splitlines() if line.split()[:1] == [key]]
    assert len(rows) == 1, f"expected one row for {key} in:\n{text}"
    return rows[0]


def test_summary_is_one_row_per_metric_with_each_model_and_its_target(model_dir):
    text = demo.summary(model_dir)
    assert "a test split" in text
    assert _row(text, "macro_f1")[1:4] == ["0.910", "0.880", "0.870"]
    assert _row(text, "speech_detect_+10dB")[1:6] == ["1.000", "0.995", "0.990", ">=", "0.99"]
    # lower is better for false positives: the target reads "<="
    assert _row(text, "speech_false_positive")[4:6] == ["<=", "0.02"]
    # metrics the model does not report are left out, not shown as zeros
    assert "eating_detect_alone" not in text


def test_summary_shows_the_int8_interval_when_the_model_has_one(model_dir):
    metrics = json.loads((model_dir / "model.json").read_text())["metrics"]
    metrics["interval_95"] = {"int8_student": {"macro_f1": [0.8, 0.93]}}
    (model_dir / "model.json").write_text(json.dumps({"metrics": metrics}))
    text = demo.summary(model_dir)
    assert _row(text, "macro_f1")[-4:] == ["int8", "95%", "interval", "0.80-0.93"]
    assert "interval" not in " ".join(_row(text, "speech_detect_+10dB"))  # none recorded: nothing shown


def test_summary_adds_the_device_figures_from_bench(model_dir):
    bench = ("device qemu (git abc)\nstreamed 10 s\n  front end   40,000 instructions/hop\n"
             "  flash 99,000 B (<= 262,144)\n")
    text = demo.summary(model_dir, bench)
    assert "front end   40,000 instructions/hop" in text and "flash 99,000 B" in text
    assert "streamed 10 s" not in text  # only the figure lines, not the preamble


def test_captured_command_output_is_shown_and_returned(capsys):
    # `bowlsense --help` is a real command that succeeds without hardware or data
    out = demo._bowlsense("--help", capture=True)
    shown = capsys.readouterr().out
    assert "usage:" in out and out in shown


def test_a_failing_command_stops_the_demo_saying_how_to_continue():
    with pytest.raises(SystemExit) as stop:
        demo._bowlsense("no-such-command", capture=True)
    assert "failed" in str(stop.value) and "run the demo again" in str(stop.value)


def test_report_is_one_self_contained_page(model_dir, tmp_path):
    (model_dir / "report.md").write_text("# training report\n<script>")
    (model_dir / "curves.png").write_bytes(b"\x89PNG fake")
    out = demo.write_report(tmp_path, model_dir, tmp_path / "data", "test data", "[0.48 s] eating started\n",
                            "  front end 1 instructions/hop\n", 90.0)
    page = out.read_text()
    assert "data:image/png;base64," in page and "src='curves.png'" not in page
    assert "&lt;script&gt;" in page  # report text is escaped, not injected
    assert "eating started" in page and "1.5 min" in page
