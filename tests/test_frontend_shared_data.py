"""The front end on every real clip of ../shared/data (converted to 16 kHz): C == numpy integer
reference bit for bit, and fidelity to YAMNet's float recipe within the issue's limits, including the
decisions of the pretrained int8 YAMNet."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from bowlsense.data.audio import load_audio
from bowlsense.frontend import Frontend
from bowlsense.frontend.fidelity_report import fidelity_report
from bowlsense.frontend.reference import reference_logmel


@pytest.fixture(scope="module")
def clips(shared_data_dir):
    rows = list(csv.DictReader(open(shared_data_dir / "labels.csv", newline="")))
    assert len(rows) > 300, "expected the full ../shared/data set"
    return {r["path"]: load_audio(shared_data_dir / r["path"]) for r in rows}


def test_every_real_clip_is_bit_exact_with_the_reference(clips):
    fe = Frontend()
    mismatched = [path for path, pcm in clips.items() if not np.array_equal(fe.process(pcm), reference_logmel(pcm))]
    assert not mismatched, f"C and numpy reference differ on {len(mismatched)} clips, e.g. {mismatched[:3]}"


def test_fidelity_on_real_clips(clips, yamnet_dir):
    report = fidelity_report(clips.values(), yamnet_dir / "yamnet_int8_logmel_in.tflite")
    print("\n" + "\n".join(report.lines()))
    assert report.windows > 100_000
    assert report.mean_abs_error_nats <= 0.02
    assert report.p999_abs_error_nats <= 0.25
    assert report.decisive_patches > 500  # 994 of 2411 on the full set
    assert report.top1_agreement_decisive >= 0.99
    assert report.mean_max_score_diff <= 0.05
