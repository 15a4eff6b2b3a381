"""Training and evaluation windows come from the data layer's planned examples: every window traces to
verified clips by sha256 and regenerates exactly from its lineage alone (fresh Sources, no cache)."""
from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from bowlsense.data import Dataset, FeatureCache, Lineage, Sources, multi_hot, regenerate_patch
from bowlsense.data.mixing import active_rms
from bowlsense.manifest import sha256_file
from bowlsense.train import evaluation
from bowlsense.train.examples import plan_mixtures, by_label
from bowlsense.train.pipeline import TrainConfig, split_sources, training_plans, training_windows, transfer_plans

LABELS = ("eating", "drinking", "bowl", "speech")
SMALL = TrainConfig(augmented=12, silence_crops=6, speech_mixtures=12, event_mixtures=9, background_mixtures=6)


@pytest.fixture(scope="module")
def real(shared_data_dir, tmp_path_factory):
    train, val, _ = split_sources(shared_data_dir, SMALL)
    cache = FeatureCache(tmp_path_factory.mktemp("features"))
    return train, val, cache


def _verified(shared_data_dir):
    ds = Dataset.load(shared_data_dir)
    return {c.sha256: c for c in ds.verified().clips}


def test_every_training_window_regenerates_exactly_from_its_lineage(real, shared_data_dir):
    train, _val, cache = real
    windows = training_windows(train, SMALL, cache)
    kinds = collections.Counter(windows.kind)
    assert kinds["mixture"] == 12 + 6 + 3 * 3 and kinds["augmented"] == 12 + 6 and kinds["single"] >= len(train.clips)
    verified = _verified(shared_data_dir)
    rirs = {sha256_file(p) for p in (shared_data_dir / "rir").iterdir()}
    train_shas = {c.sha256 for c in train.clips}
    # Regenerate through brand-new Sources (every verified clip, sha256-checked on load) and no cache.
    fresh = Sources(list(verified.values()), rir_dir=shared_data_dir / "rir")
    rng = np.random.default_rng(0)
    picks = set(rng.choice(len(windows), 40, replace=False).tolist())
    picks |= {windows.kind.index(k) for k in ("single", "augmented", "mixture")}
    picks |= {len(windows) - 1}
    for i in sorted(picks):
        origin = json.loads(windows.lineage[i])
        lin = Lineage(origin["recipe"])
        assert set(lin.parents) <= set(verified) | rirs, windows.describe(i)
        assert set(lin.clip_parents) <= train_shas, f"{windows.describe(i)}: a validation clip in training"
        assert np.array_equal(regenerate_patch(windows.lineage[i], fresh), windows.patches[i]), windows.describe(i)
        assert windows.targets[i].tolist() == multi_hot(lin.labels, LABELS).tolist()


def test_plans_are_deterministic_and_mixture_labels_are_unions(real):
    train, _val, _cache = real
    a = [l.key for p in training_plans(train, SMALL) for l in p.lineages]
    b = [l.key for p in training_plans(train, SMALL) for l in p.lineages]
    assert a == b and len(set(a)) == len(a)
    other_seed = [l.key for p in training_plans(train, TrainConfig(**{**SMALL.__dict__, "seed": 5}))
                  for l in p.lineages]
    assert len(set(a) & set(other_seed)) == len(train.clips)  # only the plain clips are shared
    for p in training_plans(train, SMALL):
        for lin in p.lineages:
            if lin.recipe["op"] == "mix":
                parts = [Lineage(lin.recipe[k]).labels for k in ("signal", "noise")]
                events = {l for labels in parts for l in labels if l != "background"}
                assert set(lin.labels) == (events or {"background"})


def test_transfer_windows_are_fresh_draws_from_training_clips_in_the_training_proportions(real):
    train, val, _cache = real
    # SMALL plans 12 + 6 augmented and 12 + 6 + 9 mixed windows; 90 transfer windows are twice that.
    config = TrainConfig(**{**SMALL.__dict__, "student_transfer": 90})
    taught = {l.key for p in training_plans(train, config) for l in p.lineages}
    extra = [l for p in transfer_plans(train, config) for l in p.lineages]
    assert len(extra) == 90 and not taught & {l.key for l in extra}
    ops = collections.Counter(l.recipe["op"] for l in extra)
    taught_ops = collections.Counter(l.recipe["op"] for p in training_plans(train, config)[1:] for l in p.lineages)
    assert {op: 2 * n for op, n in taught_ops.items()} == dict(ops)
    train_sha = {c.sha256 for c in train.clips}
    val_sha = {c.sha256 for c in val.clips}
    for lin in extra:
        assert set(lin.clip_parents) <= train_sha and not set(lin.parents) & val_sha
    assert transfer_plans(train, TrainConfig(**{**SMALL.__dict__, "student_transfer": 0})) == []


def test_evaluation_mixtures_are_at_the_stated_snr_and_regenerate(real, shared_data_dir):
    _train, val, cache = real
    speech = by_label(val.clips, "speech")
    eating = by_label(val.clips, "eating")
    planned = plan_mixtures(speech, eating, -10.0, 4, seed=1, tag="t")
    fresh = Sources(list(_verified(shared_data_dir).values()))
    for lin, snr in zip(planned.lineages, planned.snr_db):
        assert snr == -10.0 and lin.recipe["snr_db"] == -10.0 and set(lin.labels) == {"speech", "eating"}
        s = fresh.render(lin.recipe["signal"])
        n = fresh.render(lin.recipe["noise"])
        mixed = fresh.render(lin.recipe).astype(np.float64)
        # The mixture minus the (unscaled, unless peak-limited) speech is the scaled noise: its active RMS
        # is 10 dB above the speech's.
        assert len(s) == len(n) == len(mixed) == 15600
        residual = mixed - s
        if np.max(np.abs(mixed)) < 0.97 * 32767:  # no peak limiting: the SNR holds to int16 rounding
            got = 20 * np.log10(active_rms(s) / active_rms(residual))
            assert abs(got - -10.0) < 0.05, got
    ev = evaluation.build(val, LABELS, seed=1, n_privacy=2, n_curve=1, n_eating_bg=2, cache=cache)
    for i in [ev.group.index(g) for g in ("single", "privacy", "curve", "eating_bg")]:
        assert np.array_equal(regenerate_patch(ev.windows.lineage[i], fresh), ev.windows.patches[i])


def test_balanced_augmentation_draws_each_label_evenly(real):
    from bowlsense.train.examples import plan_augmented
    train, _val, _cache = real
    groups = LABELS + ("background",)
    n = 1000

    def counts(balance):
        planned = plan_augmented(train.clips, n, 3, train.sources, balance=balance)
        return collections.Counter(lin.labels[0] for lin in planned.lineages)
    plain, balanced = counts(None), counts(groups)
    share = {g: sum(g in c.labels or (g == "background" and not c.events) for c in train.clips) / len(train.clips)
             for g in groups}
    for g in groups:  # binomial, n = 1000: 5 standard deviations
        assert abs(balanced[g] - n / 5) < 5 * np.sqrt(n * 0.2 * 0.8), (g, balanced)
        assert abs(plain[g] - n * share[g]) < 5 * np.sqrt(n * share[g] * (1 - share[g])) + 1, (g, plain)
    assert plain["speech"] > 2 * balanced["speech"]  # the imbalance it removes is real in this dataset
