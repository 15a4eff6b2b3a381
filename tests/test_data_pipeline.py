"""Trust gate, grouped splits, mixtures, lineage and the feature cache, on real clips."""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from bowlsense.data import (AugmentConfig, Clip, Dataset, FeatureCache, Lineage, Sources, TrustError,
                            clip_recipe, group_folds, group_key, group_split, load_audio, mixture, multi_hot,
                            patch_set, plan_augment, plan_examples, plan_mixtures, regenerate,
                            regenerate_patch, union)
from bowlsense.data.cache import pad_centred
from bowlsense.data.mixing import active_rms, mix_pcm

# A handful of real clips per label, copied into a temporary dataset so tests can plant things in it.
PICK = {
    "speech": ["audio/speech/fsdd/0_george_0.wav", "audio/speech/fsdd/1_jackson_2.wav",
               "audio/speech/speech_commands/yes_1000ms.wav", "audio/speech/vctk/p286_011.wav"],
    "eating": None, "bowl": None, "drinking": None,
    "background": ["audio/noise/audiomentations/hens.ogg", "audio/kitchen20/0-158737-A-0.wav",
                   "audio/noise/silence_1000ms.wav"],
}


@pytest.fixture(scope="module")
def real(shared_data_dir):
    return Dataset.load(shared_data_dir)


@pytest.fixture()
def small(tmp_path, real):
    """A dataset folder with ~14 verified real clips and one planted unverified speech clip."""
    chosen = []
    for label, paths in PICK.items():
        rows = [c for c in real.clips if c.verified and c.labels == (label,)]
        rows = [c for c in rows if c.path in paths] if paths else rows[:3]
        chosen.extend(rows)
    out = []
    for c in chosen:
        dst = tmp_path / c.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(c.abspath, dst)
        out.append(dataclasses.replace(c, root=tmp_path))
    # The plant: real speech, loud and labelled like the rest, but nobody verified it.
    planted = tmp_path / "audio/planted/unverified_speech.wav"
    planted.parent.mkdir(parents=True)
    shutil.copyfile(real.root / "audio/speech/fsdd/3_lucas_1.wav", planted)
    sha = hashlib.sha256(planted.read_bytes()).hexdigest()
    out.append(Clip("audio/planted/unverified_speech.wav", ("speech",), "no", sha, "planted", "", "", root=tmp_path))
    ds = Dataset(tmp_path, out)
    ds.save()
    return Dataset.load(tmp_path), sha


# -- trust gate -------------------------------------------------------------------------------------

def test_real_trust_gate_counts(real):
    clips, left_out = real.verified()
    assert left_out == sum(1 for c in real.clips if not c.verified) == 13
    assert all(c.verified for c in clips) and len(clips) + left_out == len(real.clips)
    assert "left out 13 unverified" in real.verified().summary()


def test_planted_unverified_clip_never_reaches_a_training_batch(small, tmp_path):
    ds, planted_sha = small
    gate = ds.verified()
    assert gate.left_out == 1 and gate.left_out_clips[0].sha256 == planted_sha
    split = group_split(gate.clips, 0.3, seed=1)
    sources = Sources(split.train)
    plans = plan_examples(split.train, sources, seed=3, augment_per_clip=2, mixtures=20,
                          config=AugmentConfig(noise_p=1.0))
    planted_pcm = load_audio(tmp_path / "audio/planted/unverified_speech.wav")
    cache = FeatureCache(tmp_path / "cache")
    assert not any(planted_sha in lin.parents for lin in plans)
    batch = patch_set(plans, sources, cache=cache, max_windows=None)
    assert len(batch) >= len(plans) and cache.misses == len({lin.audio_key for lin in plans})
    assert not any(planted_sha in o for o in batch.origin)
    fe = cache.frontend
    planted_patches = fe.patches(fe.process(pad_centred(planted_pcm, cache.pad_to)))
    flat = {p.tobytes() for p in batch.patches}
    assert len(planted_patches) and not any(p.tobytes() in flat for p in planted_patches)
    # the check above can see a clip when it is there: the verified speech clips' patches are in the batch
    verified_speech = next(c for c in split.train if c.labels == ("speech",))
    own = fe.patches(fe.process(pad_centred(verified_speech.load(), cache.pad_to)))
    assert all(p.tobytes() in flat for p in own)
    # and every way in refuses it outright
    planted = next(c for c in ds.clips if c.sha256 == planted_sha)
    with pytest.raises(TrustError, match="unverified_speech.wav"):
        Sources(ds.clips)
    with pytest.raises(TrustError, match="unverified_speech.wav"):
        clip_recipe(planted)
    with pytest.raises(TrustError, match="unverified_speech.wav"):
        plan_mixtures(ds.clips, 3, seed=0)
    with pytest.raises(TrustError):
        regenerate(Lineage({"op": "clip", "sha256": planted_sha, "path": planted.path, "labels": ["speech"]}),
                   sources)


def test_changed_file_is_refused_after_verification(small):
    ds, _ = small
    clip = next(c for c in ds.clips if c.verified and c.path.endswith(".wav"))
    data = bytearray(clip.abspath.read_bytes())
    data[-2:] = b"\x00\x40"  # one sample changed
    clip.abspath.write_bytes(bytes(data))
    with pytest.raises(Exception, match="sha256 mismatch"):
        Sources([clip]).clip_pcm(clip.sha256)


# -- splits ---------------------------------------------------------------------------------------

def test_group_keys_follow_recordings(real):
    by_path = {c.path: c for c in real.clips}
    g = lambda p: group_key(by_path[p])
    # Kitchen20: one recording cut into several takes / folds / classes stays one group
    assert g("audio/kitchen20/0-149276-A-14.wav") == g("audio/kitchen20/0-149276-B-12.wav")
    assert g("audio/kitchen20/5-J2-couvert(1).mp4-A-15.wav") == g("audio/kitchen20/6-J2-couvert(1).mp4-C-15.wav")
    assert g("audio/kitchen20/0-158737-A-0.wav") != g("audio/kitchen20/1-202718-A-0.wav")
    # FSDD speaker, Speech Commands speaker hash
    assert g("audio/speech/fsdd/0_george_0.wav") == g("audio/speech/fsdd/7_george_3.wav")
    assert g("audio/speech/fsdd/0_george_0.wav") != g("audio/speech/fsdd/0_lucas_0.wav")
    assert g("audio/speech/speech_commands/eight_0a196374_nohash_0.wav") == \
        g("audio/speech/speech_commands/three_0a196374_nohash_0.wav")
    # a long background recording is its own group
    assert g("audio/noise/speech_commands/white_noise.wav") != g("audio/noise/speech_commands/pink_noise.wav")


def test_explicit_group_column_wins(real):
    a, b = real.clips[0], real.clips[1]
    assert group_key(dataclasses.replace(a, group="x")) == group_key(dataclasses.replace(b, group="x"))


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_split_never_shares_a_group_and_covers_labels(real, seed):
    clips = real.verified().clips
    train, val = group_split(clips, 0.2, seed)
    assert not {group_key(c) for c in train} & {group_key(c) for c in val}
    assert sorted(c.path for c in train + val) == sorted(c.path for c in clips)
    for label in ("speech", "eating", "bowl", "drinking", "background"):
        n = sum(label in c.labels for c in clips)
        n_val = sum(label in c.labels for c in val)
        assert 0 < n_val < n, label
        assert abs(n_val / n - 0.2) < 0.15, (label, n_val, n)
    assert group_split(clips, 0.2, seed) == (train, val)  # deterministic


@pytest.mark.parametrize("k", [2, 4])
def test_folds_validate_every_clip_once_and_never_share_a_group(real, k):
    clips = real.verified().clips
    folds = group_folds(clips, k, seed=0)
    assert len(folds) == k
    validated = [c.path for f in folds for c in f.val]
    # every verified clip of ../shared/data belongs to a label with several recordings: all are validated once
    assert sorted(validated) == sorted(c.path for c in clips)
    for f in folds:
        assert not {group_key(c) for c in f.train} & {group_key(c) for c in f.val}
        assert sorted(c.path for c in f.train + f.val) == sorted(c.path for c in clips)
        for label in ("speech", "eating", "bowl", "drinking", "background"):
            n = sum(label in c.labels for c in clips)
            n_val = sum(label in c.labels for c in f.val)
            assert abs(n_val - n / k) <= max(2, 0.1 * n), (label, n_val, n)  # each fold gets about 1/k
    assert group_folds(clips, k, seed=0) == folds  # deterministic


def test_folds_keep_groups_whole_and_leave_single_group_labels_in_training():
    def clip(name, label, group):
        return Clip(f"audio/{name}.wav", (label,), "yes", group=group)
    clips = ([clip(f"e{i}", "eating", f"meal{i // 3}") for i in range(9)]      # 3 meals of 3 clips
             + [clip(f"b{i}", "bowl", f"bowl{i}") for i in range(4)]         # 4 one-clip groups
             + [clip(f"d{i}", "drinking", "tap") for i in range(5)])         # one recording only
    folds = group_folds(clips, 2, seed=3)
    for f in folds:
        meals = collections.Counter(c.group for c in f.val if c.labels == ("eating",))
        assert all(n == 3 for n in meals.values())  # a meal is validated whole or not at all
        assert not any(c.labels == ("drinking",) for c in f.val)  # nothing independent to validate it on
        assert sum(c.labels == ("bowl",) for c in f.val) == 2
    assert sorted(len([c for c in f.val if c.labels == ("eating",)]) for f in folds) == [3, 6]
    with pytest.raises(ValueError, match="at least 2 folds"):
        group_folds(clips, 1)


# -- mixtures ---------------------------------------------------------------------------------------

def test_mixture_labels_are_union_of_parents(real):
    clips = real.verified().clips
    first = {lab: next(c for c in clips if c.labels == (lab,)) for lab in ("speech", "eating", "bowl", "background")}
    assert mixture(first["speech"], first["eating"], 1).labels == ("speech", "eating")
    assert mixture(first["speech"], first["background"], 2).labels == ("speech",)
    assert mixture(first["bowl"], first["eating"], 3).labels == ("bowl", "eating")
    assert mixture(first["background"], first["background"], 4).labels == ("background",)
    lin = mixture(first["speech"], first["bowl"], 5)
    assert list(multi_hot(lin.labels, ("eating", "drinking", "bowl", "speech"))) == [0, 0, 1, 1]
    for m in plan_mixtures(clips, 40, seed=9):
        parents = [c for c in clips if c.sha256 in m.clip_parents]
        assert set(m.labels) == set(union(*[p.labels for p in parents]))
        assert "speech" in m.labels and -10 <= m.recipe["snr_db"] <= 10


def test_mix_hits_the_drawn_snr():
    rng = np.random.default_rng(0)
    s = (rng.standard_normal(8000) * 1000).astype(np.int16)
    n = (rng.standard_normal(16000) * 300).astype(np.int16)
    for snr in (-10.0, 0.0, 7.5):
        y = mix_pcm(s, n, snr, 16000, 0.25, 0.0).astype(np.float64)
        # recover the noise part: everything outside the signal's span is noise only
        off = int(np.floor(0.25 * (16000 - 8000 + 1)))
        noise_only = np.concatenate([y[:off], y[off + 8000:]])
        measured = 20 * np.log10(active_rms(s) / active_rms(noise_only))  # the level definition mixing uses
        assert np.max(np.abs(y)) < 31000  # not peak-limited, so the level is the drawn one
        assert abs(measured - snr) < 0.2


def _active_rms_frame_by_frame(pcm, frame=400):
    """active_rms as its docstring defines it, one frame at a time (the form it had before it was vectorised)."""
    x = np.asarray(pcm, dtype=np.float64)
    if len(x) == 0:
        return 0.0
    energies = np.array([np.mean(np.square(seg)) for seg in np.array_split(x, max(1, len(x) // frame))])
    return float(np.sqrt(np.mean(energies[energies >= np.median(energies)])))


@pytest.mark.parametrize("frame", [1, 3, 400, 401])
def test_active_rms_is_the_frame_by_frame_level_to_the_last_bit(real, frame):
    # Bit for bit, not approximately: a mixture's gain comes from these levels, and the feature cache keys
    # a mixture by its recipe, so a level that moved in the last bit would silently change cached examples.
    rng = np.random.default_rng(frame)
    signals = [np.clip(rng.standard_normal(n) * scale, -32768, 32767).astype(np.int16)
               for n in (1, 2, 399, 400, 401, 799, 16000, 16003, 123457) for scale in (3, 3000, 30000)]
    signals += [c.load() for c in real.verified().clips[::40]]
    for x in signals:
        assert active_rms(x, frame) == _active_rms_frame_by_frame(x, frame), len(x)


# -- lineage ----------------------------------------------------------------------------------------

ALL_ON = AugmentConfig(time_stretch_p=1.0, pitch_p=1.0, rir_p=1.0, noise_p=1.0)


def _lineages(real, shared_data_dir):
    clips = [c for c in real.verified().clips if c.path in
             {p for v in PICK.values() if v for p in v}] + \
            [next(c for c in real.clips if c.verified and c.labels == ("eating",))]
    sources = Sources(clips, rir_dir=shared_data_dir / "rir")
    out = [Lineage(plan_augment(clip_recipe(c), 100 + i, sources, ALL_ON)) for i, c in enumerate(clips)]
    mixes = plan_mixtures(clips, 4, seed=5)
    out += mixes + [Lineage(plan_augment(m.recipe, 200 + i, sources, ALL_ON)) for i, m in enumerate(mixes)]
    return clips, sources, out


def test_lineage_regenerates_exact_samples(real, shared_data_dir):
    clips, sources, lineages = _lineages(real, shared_data_dir)
    rendered = [sources.render(l.recipe) for l in lineages]
    assert any(l.recipe.get("rir") and l.recipe.get("noise") for l in lineages)
    fresh = Sources(clips, rir_dir=shared_data_dir / "rir")
    for lin, pcm in zip(reversed(lineages), reversed(rendered)):  # other order, other cache state
        again = regenerate(Lineage.from_json(lin.to_json()), fresh)
        assert again.dtype == np.int16 and np.array_equal(again, pcm), lin.describe()
    # in a fresh interpreter too: nothing depends on global random state or warm caches
    payload = json.dumps({"clips": [c.path for c in clips], "root": str(real.root),
                          "rir": str(shared_data_dir / "rir"), "lineages": [l.to_json() for l in lineages]})
    code = """
import sys, json, hashlib
from bowlsense.data import Dataset, Sources, regenerate
p = json.loads(sys.stdin.read())
ds = Dataset.load(p["root"])
src = Sources([c for c in ds.clips if c.path in set(p["clips"])], rir_dir=p["rir"])
print(json.dumps([hashlib.sha256(regenerate(l, src).tobytes()).hexdigest() for l in p["lineages"]]))
"""
    out = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [hashlib.sha256(p.tobytes()).hexdigest() for p in rendered]


def test_rendering_leaves_the_global_random_state_as_it_found_it(real, shared_data_dir, tmp_path):
    """audiomentations draws from Python's global `random` as it applies a transform, even one built to
    compute a recorded value, and Keras draws initial weights from the same generator: rendering must put
    it back, or a model trained after rendering depends on how many windows were rendered first."""
    import random

    from audiomentations import Gain
    random.seed(3)
    before = random.getstate()
    Gain(min_gain_db=1.0, max_gain_db=1.0, p=1.0)(np.zeros(160, np.float32), 16000)
    assert random.getstate() != before  # why the guard exists: a fixed-value transform still draws
    _clips, sources, lineages = _lineages(real, shared_data_dir)
    random.seed(3)
    np.random.seed(3)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    for lin in lineages:
        sources.render(lin.recipe)
    assert random.getstate() == python_state
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), numpy_state))
    FeatureCache(tmp_path).frames_many(lineages, sources, workers=4)  # renders on threads at once
    assert random.getstate() == python_state
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), numpy_state))


def test_lineage_records_parents_and_parameters(real, shared_data_dir):
    clips, sources, lineages = _lineages(real, shared_data_dir)
    aug = lineages[0].recipe
    for k in ("seed", "time_stretch_rate", "pitch_semitones", "gain_db"):
        assert isinstance(aug[k], (int, float))
    assert aug["rir"]["sha256"] in lineages[0].parents and aug["noise"]["sha256"] in lineages[0].parents
    assert lineages[0].clip_parents == (clips[0].sha256,)
    assert lineages[0].labels == clips[0].labels or clips[0].labels == ("background",)
    # same seed, same plan; different seed, different plan
    assert plan_augment(clip_recipe(clips[0]), 100, sources, ALL_ON) == aug
    assert plan_augment(clip_recipe(clips[0]), 101, sources, ALL_ON) != aug


def test_plan_is_deterministic_and_keeps_every_clip(real):
    verified = real.verified().clips
    clips = verified[:20] + [c for c in verified if "speech" in c.labels][:10]
    sources = Sources(clips)
    a = plan_examples(clips, sources, seed=4, augment_per_clip=2, mixtures=10)
    b = plan_examples(clips, sources, seed=4, augment_per_clip=2, mixtures=10)
    assert [l.key for l in a] == [l.key for l in b]
    assert len(a) == 30 * 3 + 10
    counts = collections.Counter(l.clip_parents[0] for l in a[:90])
    assert set(counts.values()) == {3}


# -- feature cache ----------------------------------------------------------------------------------

class _OtherFrontend:
    """Stands in for a front end built with a different configuration."""

    def __init__(self, real_frontend):
        from bowlsense.frontend import FrontendConfig
        self.config = FrontendConfig(algorithm_version=real_frontend.config.algorithm_version + 1)
        self._real = real_frontend
        self.calls = 0

    def process(self, pcm):
        self.calls += 1
        return self._real.process(pcm)


def test_feature_cache_hits_and_invalidates_on_frontend_change(real, tmp_path):
    from bowlsense.frontend import Frontend

    clips = real.verified().clips[:4]
    sources = Sources(clips)
    plans = plan_examples(clips, sources, seed=0, augment_per_clip=1)
    fe = Frontend()
    cache = FeatureCache(tmp_path, frontend=fe)
    first = [cache.frames(l, sources) for l in plans]
    assert (cache.hits, cache.misses) == (0, len(plans))
    again = [cache.frames(l, sources) for l in plans]
    assert cache.hits == len(plans)
    for a, b, lin in zip(first, again, plans):
        assert a.dtype == np.int16 and np.array_equal(a, b)
        assert np.array_equal(a, fe.process(sources.render(lin.recipe)))
    other = _OtherFrontend(fe)
    changed = FeatureCache(tmp_path, frontend=other)
    [changed.frames(l, sources) for l in plans]
    assert changed.misses == len(plans) and other.calls == len(plans)
    assert changed.prune() == 1 and cache.get(plans[0]) is None
    # the same audio under another path and label keeps its features; other audio does not share them
    moved = Lineage({**plans[0].recipe, "path": "elsewhere/x.wav", "labels": ["bowl"]})
    assert moved.key != plans[0].key and changed.key(moved) == changed.key(plans[0])
    assert len({changed.key(l) for l in plans}) == len(plans)
    # a corrupt entry is recomputed, not trusted
    p = changed.path(plans[0])
    p.write_bytes(b"garbage")
    assert np.array_equal(changed.frames(plans[0], sources), first[0])


def test_threaded_feature_cache_computes_the_same_bits_as_one_at_a_time(real, shared_data_dir, tmp_path):
    clips, sources, lineages = _lineages(real, shared_data_dir)
    serial = FeatureCache(tmp_path / "serial")
    expected = [serial.frames(l, sources) for l in lineages]
    threaded = FeatureCache(tmp_path / "threaded")
    half = len(lineages) // 2
    threaded.frames_many(lineages[:half], sources, workers=2)    # some already cached, some not
    got = threaded.frames_many(lineages, sources, workers=2, progress="features")
    assert (threaded.hits, threaded.misses) == (half, len(lineages))
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.dtype == np.int16 and np.array_equal(a, b)
    # the entries the threads wrote read back as the same bits
    again = FeatureCache(tmp_path / "threaded")
    assert all(np.array_equal(again.get(l), e) for l, e in zip(lineages, expected))


def test_patch_set_targets_and_origins_regenerate(real, shared_data_dir, tmp_path):
    clips, sources, lineages = _lineages(real, shared_data_dir)
    labels = ("eating", "drinking", "bowl", "speech")
    batch = patch_set(lineages, sources, labels, FeatureCache(tmp_path), max_windows=3)
    assert batch.patches.dtype == np.int16 and batch.patches.shape[1:] == (96, 64)
    assert batch.targets.shape == (len(batch), 4) and len(batch.origin) == len(batch)
    # every example gives 1..3 patches, short ones too (centred in silence)
    per_example = collections.Counter(json.dumps(json.loads(o)["recipe"], sort_keys=True) for o in batch.origin)
    assert len(per_example) == len({l.key for l in lineages}) and set(per_example.values()) <= {1, 2, 3}
    fresh = Sources(clips, rir_dir=shared_data_dir / "rir")
    for i in range(0, len(batch), 3):
        o = json.loads(batch.origin[i])
        assert np.array_equal(regenerate_patch(batch.origin[i], fresh), batch.patches[i])
        assert list(batch.targets[i]) == list(multi_hot(Lineage(o["recipe"]).labels, labels))


def test_planted_clip_never_reaches_the_trainers_batches(small, tmp_path):
    """The same plant, through bowlsense.train's own data stage (split_sources + training_windows)."""
    from bowlsense.train.pipeline import TrainConfig, split_sources, training_windows, transfer_plans

    ds, planted_sha = small
    planted_path = "audio/planted/unverified_speech.wav"
    config = TrainConfig(seed=2, augmented=30, speech_mixtures=30, event_mixtures=30, student_transfer=200)
    train, val, summary = split_sources(tmp_path, config)
    assert "left out 1 unverified" in summary
    assert planted_path not in {c.path for c in train.clips + val.clips}
    windows = training_windows(train, config, FeatureCache(tmp_path / "c"))
    assert len(windows) and not any(planted_path in l or planted_sha in l for l in windows.lineage)
    # Nor the student's transfer windows (drawn from the same training side).
    transfer = [l for p in transfer_plans(train, config) for l in p.lineages]
    assert len(transfer) > 150 and not any(planted_sha in l.parents for l in transfer)
    fe = FeatureCache(tmp_path / "c").frontend
    planted = fe.patches(fe.process(pad_centred(load_audio(tmp_path / planted_path), 15600)))
    flat = {p.tobytes() for p in windows.patches}
    assert not any(p.tobytes() in flat for p in planted)
    seen = next(c for c in train.clips if c.labels == ("speech",))  # positive control: a verified clip is there
    assert all(p.tobytes() in flat for p in fe.patches(fe.process(pad_centred(seen.load(), 15600))))


def test_data_bench_builds_the_same_patches_on_one_thread_and_on_all(shared_data_dir, capsys):
    from bowlsense.data import bench
    assert bench.main([str(shared_data_dir), "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "identical patches: True" in out and "threads" in out


def test_threaded_feature_cache_reports_a_failing_example_and_keeps_the_finished_ones(real, shared_data_dir, tmp_path):
    clips, sources, lineages = _lineages(real, shared_data_dir)
    broken = Lineage({**clip_recipe(clips[0]), "sha256": "0" * 64})  # a clip no source holds
    cache = FeatureCache(tmp_path)
    with pytest.raises(TrustError, match="not a verified clip"):
        cache.frames_many(lineages[1:4] + [broken] + lineages[4:], sources, workers=2)
    assert all(cache.get(l) is not None for l in lineages[1:4])  # computed before the failure, kept
