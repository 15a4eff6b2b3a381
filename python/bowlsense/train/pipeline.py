"""`bowlsense train`: verified clips -> teacher fine-tune -> distilled student -> int8 -> report.

Every stage writes its result into a work folder keyed by the inputs (dataset, YAMNet weights, config);
running the same command again skips finished stages and resumes training from the last whole epoch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import shutil
import time
from typing import TYPE_CHECKING

import numpy as np

from .. import paths
from ..data.labels import EVENT_LABELS
from .examples import (PLAN_VERSION, Side, TrainingDataError, Windows, by_label, plan_augmented, plan_mixtures, plan_silence_crops,
                       plan_single, render)
from .student import StudentConfig

if TYPE_CHECKING:
    from . import evaluation


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    labels: tuple[str, ...] = EVENT_LABELS
    privacy_labels: tuple[str, ...] = ("speech",)
    seed: int = 0
    # Reseeds only the student's training (initial weights, batch order, augmentation draws); the split,
    # mixtures and teacher stay those of `seed`. Retraining with another student_seed measures how far
    # training randomness alone moves the figures. 0 keeps the draws the shipped models were trained with.
    student_seed: int = 0
    # Reseeds only the teacher's fine-tuning (head initialisation, dropout, batch order); the split, windows
    # and YAMNet's frozen layers stay those of `seed`. A teacher recipe change is judged against how far
    # this alone moves the teacher's figures. The student then distils the reseeded teacher.
    teacher_seed: int = 0
    val_fraction: float = 0.25
    # Cross-validation (bowlsense crossval): with folds >= 2 the validation side is fold `fold` of
    # group_folds instead of group_split's val_fraction.
    folds: int = 0
    fold: int = 0
    # training windows beyond the single-source ones (all from training clips)
    augmented: int = 1500
    augment_balanced: bool = True      # augmented windows drawn evenly over labels (and background)
    silence_crops: int = 600           # short background excerpts centred in silence (see examples.py)
    speech_mixtures: int = 2500        # speech over each other kind of sound, at speech_snr_db
    event_mixtures: int = 1500         # eating / bowl / drinking over background, at event_snr_db
    background_mixtures: int = 1000    # background over background, -10..+10 dB: dense scenes with no event
    # Speech mixtures down to -12 dB, not -20: far below the -10 dB the privacy target asks for, speech under
    # a blender is inaudible, and labelling such windows "speech" taught the teacher to hear speech in
    # kitchen noise (speech false positives 9.0% -> 5.7% on the validation split; -10 dB detection 0.91 -> 0.85).
    speech_snr_db: tuple[float, float] = (-12.0, 20.0)
    event_snr_db: tuple[float, float] = (-5.0, 15.0)
    unfrozen_blocks: int = 9           # of YAMNet's 13 (frozen: the first conv + 4 blocks, cached)
    head_prior: bool = False           # the new head starts as YAMNet's own classifier for similar classes
    teacher_mask: float = 0.0          # fine-tuning drops time rows and frequency columns of the cached activations
    # L2-SP (teacher.anchor_to_pretrained): A * sum((w - w_pretrained)^2) over the fine-tuned blocks. Under
    # 4-fold cross-validation (train/README.md) 3e-2 gave better teachers than 0 over two teacher seeds
    # (macro-F1 +0.043, false events on background -0.069), but students that only slid along the old
    # trade-off (two full runs: false events -0.028, eating at 0 dB under background -0.036), and on the
    # default split, over two student seeds, worse ones (macro-F1 -0.072, eating at 0 dB -0.095). Off.
    teacher_anchor: float = 0.0
    teacher_epochs: int = 6
    teacher_lr: float = 3e-4
    # Over training + transfer windows: the steps of 24 epochs without them. 24 with the live teacher, three
    # student seeds under 4-fold cross-validation (train/README.md): speech at -10 dB with at most 2% speech
    # false positives +0.051, events level at equal false events, for twice the student's time: not adopted.
    student_epochs: int = 12
    # Adam's peak rate (cosine decay over the epochs). 1e-3 and 1e-2 against it under 4-fold cross-validation
    # (train/README.md): 1e-3 worse beyond retraining noise (eating at 0 dB under background -0.12); 1e-2, over
    # two seeds, a slide towards firing more with a lower events trade-off (eating at 0 dB at equal false
    # events -0.05 to -0.09).
    student_lr: float = 3e-3
    distill_alpha: float = 0.5         # weight of the teacher's scores in the student's target
    # Weight of matching YAMNet's embedding (distill.py; 0: off). One run each, under 4-fold cross-validation
    # with the same teachers, 0.3 raised the int8 student's speech detection at -10 dB by +0.033 against 0;
    # but retraining the student alone (--student-seed) moves that figure by up to 0.049, and over three
    # student seeds each (`bowlsense compare`, train/README.md) every figure is within 0.011 of the term's, no interval
    # excluding 0. Off: it bought nothing measurable for an extra YAMNet pass over every training window.
    distill_embedding: float = 0.0
    # Softening of the teacher's logits in the student's target (distill.py; 1: its scores as they are).
    # On its training windows the teacher's scores are the labels to within 0.001, so at 1 the student
    # learns the labels alone. 3 against 1, under 4-fold cross-validation on the same teachers and over
    # three student seeds on the default split (train/README.md): int8 macro-F1 about +0.05, drinking's F1
    # 0.43 -> 0.61; at equal false events on background every eating figure is higher; the privacy
    # trade-off is unchanged, though at the default speech threshold speech at -10 dB reads 0.02-0.05 lower.
    # 2 and 5 measured level with 3 (three student seeds each, train/README.md).
    distill_temperature: float = 3.0
    # The privacy labels' own temperature (None: distill_temperature, like the other labels).
    privacy_temperature: float | None = None
    # (label, weight) pairs: how many times that label's terms count in the student's loss; a label not
    # named counts once. More of the student's gradient for one label (speech, whose misses leak audio)
    # without moving its target.
    label_weight: tuple[tuple[str, float], ...] = ()
    student_augment: bool = True       # gain + SpecAugment masks, drawn afresh every epoch
    # The teacher scores each student batch as augmented (distill.py: consistent teaching), and with
    # student_mix > 0 that fraction of each batch is first mixed pairwise on the features (distill.mix_pairs).
    # The price is a YAMNet pass per student batch (one traced graph, Teacher.scores_from_nats): a longer
    # student run (train/README.md, `make model`). Under 4-fold cross-validation, int8 student,
    # against the recipe without it (train/README.md): seed 0 on the earlier models/crossval teachers,
    # speech false positives -0.008, false events on background -0.028, macro-F1 +0.015, eating at 0 dB under
    # background -0.061; seed 1 on retrained teachers, macro-F1 +0.035 against the earlier models/crossval,
    # false events -0.028, speech false positives -0.009, eating at 0 dB +0.023; the two seeds' event sweeps
    # (`bowlsense thresholds`) sit on a better trade-off. Mixtures (student_mix 0.5) bought speech at -10 dB
    # +0.030 for macro-F1 -0.025 and eating at 0 dB -0.059: off.
    live_teacher: bool = True
    student_mix: float = 0.0
    # Transfer windows: this many more augmented and mixed windows from the training clips (the same kinds
    # and proportions as above, fresh draws) that only the student trains on, the teacher scoring them.
    # A student matches its teacher on the inputs it is shown; more of them is distillation's usual lever.
    # 9000 for 12 epochs against none for 24 (the same steps), student seeds 0-2 each on the default split
    # (`bowlsense compare`, train/README.md): eating caught at 0 dB under background +0.097 [+0.033, +0.152], beyond
    # either side's own spread; every other figure level.
    student_transfer: int = 9000
    # The teacher fine-tunes on the transfer windows too (its training windows and the student's transfer
    # windows, twice as many augmented and mixed draws), instead of only scoring them. Over two teacher
    # seeds under 4-fold cross-validation (train/README.md) every teacher figure stayed within the seeds'
    # own spread (eating at 0 dB under background +0.014 [-0.003, +0.034]), for a fine-tune twice as long: off.
    teacher_transfer: bool = False
    batch_size: int = 64
    eval_privacy: int = 60             # evaluation mixtures per (other kind, SNR) at +10/0/-10 dB
    eval_curve: int = 30               # per (other kind, SNR) at the other points of the privacy curve
    eval_eating_bg: int = 100          # eating over background at 0 dB
    threshold_on: float = 0.5
    threshold_off: float = 0.35
    # Privacy labels err on the side of privacy: missing speech leaks audio, a false alarm only pauses it.
    privacy_threshold_on: float = 0.35
    privacy_threshold_off: float = 0.25
    # (label, on) pairs: a label's own `on` threshold in place of threshold_on (its `off` keeps the ratio
    # threshold_off / threshold_on). Drinking and bowl have no target of their own, and every window where
    # they fire on background is a false event: under 4-fold cross-validation (models/crossval) each fold's
    # F1-best thresholds chosen on the other three folds' windows came out 0.55-0.75 for drinking and
    # 0.95-0.975 for bowl, and these two cut the int8 student's false events on background from 18.5% to
    # 14.3% of background windows (the same students retrained: 17.5% to 13.8%, 18.5% to 14.9%) at equal
    # eating figures, macro-F1 0.781 -> 0.795 (`bowlsense thresholds`, train/README.md). Eating keeps 0.5: its
    # targets are the ones a higher threshold would trade away.
    label_threshold: tuple[tuple[str, float], ...] = (("drinking", 0.75), ("bowl", 0.95))
    student: StudentConfig = StudentConfig()

    def label_temperatures(self) -> tuple[float, ...]:
        """The distillation temperature of each output, in label order."""
        privacy = self.distill_temperature if self.privacy_temperature is None else self.privacy_temperature
        return tuple(privacy if l in self.privacy_labels else self.distill_temperature for l in self.labels)

    def label_weights(self) -> tuple[float, ...]:
        """Each output's weight in the student's loss, in label order."""
        weights = dict(self.label_weight)
        return tuple(float(weights.get(l, 1.0)) for l in self.labels)

    @property
    def weighted(self) -> bool:
        """Whether some label's terms in the student's loss count more (or less) than the others'."""
        return any(w != 1.0 for w in self.label_weights())

    @property
    def tempered(self) -> bool:
        """Whether any label's teacher logits are softened (distill.tempered_loss) rather than used as scores."""
        return any(t != 1.0 for t in self.label_temperatures())

    @property
    def student_rng_seed(self) -> int:
        """Seed of everything random in the student's training (its draws with student_seed 0 are `seed`'s)."""
        return self._reseeded(self.student_seed)

    @property
    def teacher_rng_seed(self) -> int:
        """Seed of everything random in the teacher's fine-tuning (teacher_seed 0: `seed`'s draws)."""
        return self._reseeded(self.teacher_seed)

    def _reseeded(self, n: int) -> int:
        """`seed` for n = 0, else a seed of its own, far from the seeds a user passes for the split."""
        return self.seed + 1000 * n

    def thresholds(self) -> dict:
        """Each label's manifest Threshold: the privacy labels' or the event labels' defaults, or the
        label's own `on` from label_threshold with the `off` of the same ratio."""
        from ..manifest import Threshold
        own = dict(self.label_threshold)
        out = {}
        for label in self.labels:
            on, off = ((self.privacy_threshold_on, self.privacy_threshold_off) if label in self.privacy_labels
                       else (self.threshold_on, self.threshold_off))
            if label in own:
                on, off = own[label], own[label] * off / on
            out[label] = Threshold(on, round(off, 6))
        return out

    # What only decides from the scores, not how they are computed: left out of the work folder's name
    # (Run), so that rerunning with another threshold re-reports from the checkpoints instead of retraining.
    DECISION_ONLY = ("threshold_on", "threshold_off", "privacy_threshold_on", "privacy_threshold_off",
                     "label_threshold")

    def training_dict(self) -> dict:
        """to_dict without the DECISION_ONLY fields."""
        return {k: v for k, v in self.to_dict().items() if k not in self.DECISION_ONLY}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["student"] = self.student.to_dict()
        d["labels"], d["privacy_labels"] = list(self.labels), list(self.privacy_labels)
        return d


class RecipeError(ValueError):
    """Recipe options that cannot go together; the message names them and what to change."""


def check_recipe(config: TrainConfig) -> None:
    """Refuse combinations the pipeline does not support, before any work starts."""
    if config.distill_embedding > 0 and config.student_transfer:
        # The embedding term needs YAMNet's embedding of every student window; transfer windows have none.
        raise RecipeError("the embedding term (--distill-embedding) needs --student-transfer 0: transfer windows "
                          "carry no YAMNet embedding")
    if config.distill_embedding > 0 and config.tempered:
        raise RecipeError("the embedding term (--distill-embedding) needs --distill-temperature 1: the two "
                          "losses are not combined")
    if config.distill_embedding > 0 and config.weighted:
        raise RecipeError("the embedding term (--distill-embedding) needs every --label-weight at 1: the two "
                          "losses are not combined")
    if config.student_mix > 0 and not config.live_teacher:
        raise RecipeError("--student-mix needs the live teacher (drop --no-live-teacher): a mixture made during "
                          "training has no teacher score unless the teacher scores it then")
    if config.live_teacher and config.distill_embedding > 0:
        raise RecipeError("the embedding term (--distill-embedding) needs --no-live-teacher: the embedding of an "
                          "augmented or mixed window is not computed during training")
    if config.teacher_transfer and not config.student_transfer:
        raise RecipeError("--teacher-transfer trains the teacher on the transfer windows as well: it needs "
                          "--student-transfer N with N > 0")
    for option, pairs in (("--label-weight", config.label_weight), ("--threshold", config.label_threshold)):
        unknown = [l for l, _ in pairs if l not in config.labels]
        if unknown:
            raise RecipeError(f"{option} names {', '.join(unknown)}, not one of the labels "
                              f"({', '.join(config.labels)})")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _key(*parts) -> str:
    return _sha(json.dumps(parts, sort_keys=True, default=str))[:10]


class Run:
    """One training run: its inputs, work folder and timings."""

    def __init__(self, data_dir, out_dir, yamnet_source: str | None, config: TrainConfig,
                 work_dir=None, restart: bool = False):
        from . import weights as wl
        self.data_dir = pathlib.Path(data_dir)
        self.out_dir = pathlib.Path(out_dir)
        self.config = config
        self.yamnet_source = wl.resolve_source(yamnet_source)
        csv_path = self.data_dir / "labels.csv" if self.data_dir.is_dir() else self.data_dir
        csv_text = csv_path.read_text() if csv_path.exists() else ""
        src = pathlib.Path(self.yamnet_source)
        yamnet_id = f"{self.yamnet_source}:{src.stat().st_size if src.is_file() else ''}"
        key = _sha(json.dumps([_sha(csv_text), yamnet_id, config.training_dict()], sort_keys=True))[:16]
        self.work = pathlib.Path(work_dir) if work_dir else paths.cache_dir() / "train" / key
        if restart and self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.timings: dict[str, float] = {}

    def stage(self, name: str):
        run = self

        class _Timer:
            def __enter__(self):
                print(f"== {name}", flush=True)
                self.t, self.c = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                run.timings[name] = run.timings.get(name, 0.0) + time.perf_counter() - self.t
                cpu = run.timings.setdefault("cpu", {})
                cpu[name] = cpu.get(name, 0.0) + time.process_time() - self.c
        return _Timer()


def _save_windows(path: pathlib.Path, w: Windows) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, patches=w.patches, targets=w.targets, snr_db=w.snr_db,
             meta=np.array(json.dumps({"kind": w.kind, "lineage": w.lineage})))
    tmp.replace(path)


def _load_windows(path: pathlib.Path) -> Windows | None:
    if not path.exists():
        return None
    try:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            return Windows(z["patches"], z["targets"], meta["kind"], meta["lineage"], z["snr_db"])
    except Exception as e:
        print(f"warning: {path} is unreadable ({type(e).__name__}); rebuilding it", flush=True)
        return None


def split_sources(data_dir, config: TrainConfig) -> tuple[Side, Side, str]:
    """Trust gate, label checks, grouped split: each side's verified clips with the Sources that render
    them (sha256-checked on load)."""
    from ..data.dataset import Dataset
    from ..data.splits import group_folds, group_split
    dataset = Dataset.load(data_dir)
    gate = dataset.verified()
    if not gate.clips:
        raise TrainingDataError(
            f"{dataset.csv_path}: no verified clips ({gate.left_out} left out by the trust gate); training uses "
            "verified clips only: review them and mark them verified=yes (`bowlsense data verify`)")
    missing = [l for l in config.labels if not any(l in c.labels for c in gate.clips)]
    if missing:
        raise TrainingDataError(
            f"{dataset.csv_path}: no verified clips labelled {', '.join(missing)}; add and verify clips for "
            f"{'it' if len(missing) == 1 else 'them'}, or leave {'it' if len(missing) == 1 else 'them'} out "
            f"with --labels {','.join(l for l in config.labels if l not in missing) or '...'}")
    unknown = sorted({l for c in gate.clips for l in c.events if l not in config.labels})
    if unknown:
        raise TrainingDataError(f"{dataset.csv_path}: verified clips carry labels {unknown} that the model would "
                                f"not output ({', '.join(config.labels)}); pass --labels listing all of them")
    if config.folds:
        if not 0 <= config.fold < config.folds:
            raise ValueError(f"fold must be 0..{config.folds - 1}, got {config.fold}")
        split = group_folds(gate.clips, config.folds, config.seed)[config.fold]
    else:
        split = group_split(gate.clips, config.val_fraction, config.seed)
    folder = dataset.csv_path.parent
    return Side.of(split.train, folder), Side.of(split.val, folder), gate.summary()


def split_name(config: TrainConfig) -> str:
    """"" for the usual split, else which cross-validation fold (for reports)."""
    return f", fold {config.fold + 1} of {config.folds}" if config.folds else ""


def training_plans(train: Side, config: TrainConfig) -> list:
    """Which training examples to make (data-layer lineages, nothing rendered yet)."""
    labels, seed, clips = config.labels, config.seed, train.clips
    background = by_label(clips, "background")
    balance = tuple(labels) + ("background",) if config.augment_balanced else None
    plans = [plan_single(clips), plan_augmented(clips, config.augmented, seed, train.sources, balance=balance),
             plan_silence_crops(background, config.silence_crops, seed)]
    if "speech" in labels:
        speech = by_label(clips, "speech")
        non_speech = [c for c in clips if "speech" not in c.labels]
        plans.append(plan_mixtures(speech, non_speech, config.speech_snr_db, config.speech_mixtures, seed, "speech"))
    plans.append(plan_mixtures(background, background, (-10.0, 10.0), config.background_mixtures, seed,
                               "background"))
    for label in labels:
        if label != "speech":
            plans.append(plan_mixtures(by_label(clips, label), background, config.event_snr_db,
                                       config.event_mixtures // max(1, len(labels) - 1), seed, f"event:{label}"))
    return plans


def transfer_plans(train: Side, config: TrainConfig) -> list:
    """The student's extra windows (config.student_transfer): training_plans' augmented and mixed kinds,
    scaled to that many windows in all and drawn with another seed, so none repeats a teacher window."""
    kinds = ("augmented", "silence_crops", "speech_mixtures", "background_mixtures", "event_mixtures")
    total = sum(getattr(config, k) for k in kinds)
    scale = config.student_transfer / total if total else 0.0
    more = dataclasses.replace(config, seed=config.seed + TRANSFER_SEED_OFFSET,
                               **{k: round(getattr(config, k) * scale) for k in kinds})
    return [p for p in training_plans(train, more)[1:] if p.lineages]  # [0]: the single clips, already there


# Each trained model (the teacher's top, the student) is built right after seeding with its own seed.
# Keras draws initial weights and dropout seeds from Python's global `random`, and so does audiomentations
# (its should-apply and parameter draws, although the data layer fixes every value): seeded once at the
# start, a model built after the data stage depended on how many windows this process had rendered, and a
# run that found its windows in the feature cache trained another model than the run that rendered them
# (train/README.md, "Cached or rendered windows"). In the checkpoint key: teachers and students built the
# earlier way are not resumed as these.
MODEL_SEEDING = "built right after their own seed"

# Added to the seed of the transfer windows' draws: far from any seed a user passes for the split.
TRANSFER_SEED_OFFSET = 7919


def training_windows(train: Side, config: TrainConfig, cache=None) -> Windows:
    """Every training window, rendered (or read from the feature cache) by the data layer."""
    return render_plans(training_plans(train, config), train, config, cache, "training windows")


def render_plans(plans: list, side: Side, config: TrainConfig, cache, progress: str) -> Windows:
    return Windows.concat([render(p, side.sources, config.labels, cache, progress=progress) for p in plans])


def _frozen_activations(path: pathlib.Path, frozen, windows: Windows, what: str) -> np.ndarray:
    """YAMNet's frozen layers over `windows`, from `path` when a run computed them before, else computed
    and saved there (written whole, then renamed: a killed run leaves no half file)."""
    from . import teacher
    if path.exists():
        try:
            acts = np.load(path)
            if len(acts) == len(windows):
                print(f"YAMNet frozen layers: reusing the activations cached in {path.name}", flush=True)
                return acts
        except Exception:
            pass  # unreadable: computed again below
    acts = teacher.activations(frozen, windows.patches, desc=f"YAMNet frozen layers ({what})")
    tmp = path.with_name(f"{path.stem}.tmp.npy")
    np.save(tmp, acts)
    tmp.replace(path)
    print(f"YAMNet frozen layers: {len(acts)} {what} windows computed, cached in {path.name}", flush=True)
    return acts


def _windows_cached(path: pathlib.Path, build) -> Windows:
    """The windows saved at `path`, or build() saved there."""
    windows = _load_windows(path)
    if windows is None:
        windows = build()
        _save_windows(path, windows)
    return windows


@dataclasses.dataclass
class Trained:
    """What one training run measured: the metrics written into model.json, and the evaluation set with
    each model's scores on it (cross-validation pools these over folds)."""
    metrics: dict
    evalset: evaluation.EvalSet
    scores: dict[str, np.ndarray]   # teacher, float_student, int8_student: (windows, labels)
    thresholds: dict


def train(data_dir, out_dir, yamnet_source=None, config: TrainConfig = TrainConfig(), work_dir=None,
          restart: bool = False) -> dict:
    """The whole pipeline. Returns the metrics written into model.json."""
    return train_and_measure(data_dir, out_dir, yamnet_source, config, work_dir, restart).metrics


def train_and_measure(data_dir, out_dir, yamnet_source=None, config: TrainConfig = TrainConfig(), work_dir=None,
                      restart: bool = False) -> Trained:
    """The whole pipeline (see train), keeping what cross-validation needs."""
    t_start, cpu_start = time.perf_counter(), time.process_time()
    run = Run(data_dir, out_dir, yamnet_source, config, work_dir, restart)
    print(f"work folder: {run.work} (rerun the same command to resume)", flush=True)
    from . import distill, evaluation, fit, quantize, report, streamed, teacher
    from . import weights as wl
    from ..manifest import Manifest, Quantization, Smoothing, sha256_file, write_atomic
    from ..frontend import DEFAULT_CONFIG
    from ..data.cache import FeatureCache

    fit.set_seed(config.seed)
    # Each stage's files are named by what they depend on: a changed input never reuses a stale result.
    # A checkpoint's name includes its epoch count, because the learning-rate schedule and the weight
    # average span the whole run (fit.py): a run asked for more epochs trains anew beside the shorter one.
    wkey = _key(PLAN_VERSION, config.labels, config.val_fraction, config.folds, config.fold, config.augmented, config.silence_crops, config.speech_mixtures,
                config.event_mixtures, config.background_mixtures, config.speech_snr_db, config.event_snr_db, config.augment_balanced, config.seed)
    tkey = _key(wkey, config.unfrozen_blocks, config.teacher_lr, config.batch_size, config.head_prior)
    # Checkpoints also by the layer classes they were written with (pointwise.py); frozen activations not.
    from .pointwise import CHECKPOINT_FORMAT  # imports Keras: not at module level, so --help stays fast
    ckey = _key(tkey, CHECKPOINT_FORMAT, MODEL_SEEDING, config.teacher_epochs,
                *((config.teacher_seed,) if config.teacher_seed else ()),  # 0: as before
                *((("mask", config.teacher_mask),) if config.teacher_mask else ()),  # likewise
                *((("anchor", config.teacher_anchor),) if config.teacher_anchor else ()),  # likewise
                *((("teacher transfer", config.student_transfer),) if config.teacher_transfer else ()))
    skey = _key(ckey, config.student_epochs, config.student.to_dict(), config.student_lr, config.distill_alpha,
                config.batch_size, config.student_augment, config.distill_embedding, config.student_seed,
                *((config.student_transfer,) if config.student_transfer else ()),  # 0 keeps earlier checkpoints
                *((config.distill_temperature,) if config.distill_temperature != 1.0 else ()),  # 1 likewise
                *((("privacy", config.privacy_temperature),) if config.privacy_temperature is not None else ()),
                *((("label weights", config.label_weight),) if config.label_weight else ()),
                *((("live teacher", config.student_mix),) if config.live_teacher else ()))  # off: as before
    xkey = _key(wkey, config.student_transfer)
    check_recipe(config)
    # Weights first: a wrong --yamnet should stop the run before minutes of data preparation.
    w = wl.load(run.yamnet_source)
    with run.stage("data"):
        train_src, val_src, gate_summary = split_sources(data_dir, config)
        print(gate_summary, flush=True)
        print(f"split grouped by source: {len(train_src.clips)} training clips, {len(val_src.clips)} validation "
              "clips", flush=True)
        if not val_src.clips:
            raise TrainingDataError(f"{data_dir}: every label's clips come from a single source, so nothing is "
                                    "left to validate on; add clips from more recordings")
        cache = FeatureCache()
        train_w = _windows_cached(run.work / f"train_windows-{wkey}.npz",
                                  lambda: training_windows(train_src, config, cache))
        transfer_w = None
        if config.student_transfer:
            transfer_w = _windows_cached(
                run.work / f"transfer_windows-{xkey}.npz",
                lambda: render_plans(transfer_plans(train_src, config), train_src, config, cache, "transfer windows"))
        evalset = evaluation.build(val_src, config.labels, seed=config.seed + 1, n_privacy=config.eval_privacy,
                                   n_curve=config.eval_curve, n_eating_bg=config.eval_eating_bg, cache=cache)
        print(f"feature cache {cache.root}: {cache.hits} hits, {cache.misses} computed", flush=True)
        print(f"{len(train_w)} training windows, {len(evalset.windows)} evaluation windows"
              + (f", {len(transfer_w)} transfer windows for the student" if transfer_w else ""), flush=True)

    with run.stage("teacher"):
        frozen = teacher.build_frozen(w, config.unfrozen_blocks)
        acts = _frozen_activations(run.work / f"teacher_activations-{tkey}.npy", frozen, train_w, "training")
        transfer_acts = (_frozen_activations(run.work / f"transfer_activations-{_key(tkey, xkey)}.npy", frozen,
                                             transfer_w, "transfer") if config.teacher_transfer else None)
        eval_acts = teacher.activations(frozen, evalset.windows.patches, desc="YAMNet frozen layers (validation)")
        fit.set_seed(config.teacher_rng_seed)  # see MODEL_SEEDING
        head_init = teacher.audioset_head(w, config.labels) if config.head_prior else None
        if config.head_prior and head_init is None:
            print("head prior: not every label has AudioSet classes in teacher.AUDIOSET_CLASSES (or the YAMNet "
                  "weights carry no classifier); the head starts from random weights", flush=True)
        top = teacher.build_top(w, config.unfrozen_blocks, len(config.labels), head_init=head_init,
                                mask=config.teacher_mask, anchor=config.teacher_anchor)
        single = np.array(evalset.group) == "single"
        fit_acts, fit_targets = acts, train_w.targets
        if transfer_acts is not None:
            fit_acts = np.concatenate([acts, transfer_acts])
            fit_targets = np.concatenate([train_w.targets, transfer_w.targets])
        teacher_hist = fit.fit(top, fit_acts, fit_targets, epochs=config.teacher_epochs,
                               batch_size=config.batch_size, learning_rate=config.teacher_lr,
                               checkpoint=run.work / f"teacher-{ckey}", desc="teacher", seed=config.teacher_rng_seed,
                               val=(eval_acts[single].astype(np.float32), evalset.windows.targets[single]))
        tch = teacher.Teacher(frozen, top)
        soft = tch.scores_from_activations(acts)
        teacher_eval = tch.scores_from_activations(eval_acts)
        embedding = (teacher.pretrained_embeddings(w, config.unfrozen_blocks, acts)
                     if config.distill_embedding > 0 else None)
        del acts, eval_acts, fit_acts
        print(distill.teacher_beyond_labels(soft, train_w.targets, "training windows"), flush=True)
        if transfer_w is not None:
            transfer_soft = (tch(transfer_w.patches) if transfer_acts is None
                             else tch.scores_from_activations(transfer_acts))
            del transfer_acts
            print(distill.teacher_beyond_labels(transfer_soft, transfer_w.targets, "transfer windows"), flush=True)
            train_w = Windows.concat([train_w, transfer_w])
            soft = np.concatenate([soft, transfer_soft])

    with run.stage("student"):
        from .student import build_student, count_cost
        fit.set_seed(config.student_rng_seed)  # see MODEL_SEEDING
        student = build_student(len(config.labels), config.student)
        cost = count_cost(student)
        print(f"student: {cost['macs']:,} MACs/patch, {cost['weight_bytes']:,} bytes of int8 weights", flush=True)
        student_hist = distill.distill(student, train_w, soft, evalset, config, run.work / f"student-{skey}",
                                       embedding, teacher=tch)
        float_eval = distill.predict(student, evalset.windows.patches)

    with run.stage("int8"):
        flat = quantize.convert(student, train_w.patches[np.array(train_w.kind) == "single"], seed=config.seed)
        int8 = quantize.Int8Model(flat)
        print(f"int8 path: {int8.backend}", flush=True)
        int8_eval = int8(evalset.windows.patches)

    with run.stage("report"):
        thresholds = config.thresholds()
        scores = {"teacher": teacher_eval, "float_student": float_eval, "int8_student": int8_eval}
        measured = {name: evaluation.measure(evalset, s, thresholds) for name, s in scores.items()}
        run.out_dir.mkdir(parents=True, exist_ok=True)
        tflite_path = run.out_dir / "model.tflite"
        write_atomic(tflite_path, flat)
        q = quantize.details(flat)
        groups = evaluation.clip_groups(evalset)
        spread = {name: evaluation.intervals(evalset, s, thresholds, groups=groups, seed=config.seed)
                  for name, s in scores.items()}
        smoothing = Smoothing()  # what the device runs; the streamed figures apply the same
        events = streamed.event_params(config.labels, thresholds, config.privacy_labels, smoothing,
                                       q["output"]["scale"], q["output"]["zero_point"])
        metrics = {
            "summary": {k: evaluation.summary_row(v) for k, v in measured.items()},
            "interval_95": spread,
            "streamed": {name: streamed.measure_streamed(evalset, s, events, groups, q["output"]["scale"],
                                                         q["output"]["zero_point"]) for name, s in scores.items()},
            "interval_method": f"bootstrap over validation clips ({evaluation.BOOTSTRAP_RESAMPLES} resamples; a "
                               "mixture goes with its target clip)",
            "int8_minus_float": {k: _diff(evaluation.summary_row(measured["int8_student"]).get(k),
                                          evaluation.summary_row(measured["float_student"]).get(k))
                                 for k in evaluation.summary_row(measured["float_student"])},
            "targets": evaluation.TARGETS,
            "evaluated_on": f"grouped validation split of {data_dir} ({len(val_src.clips)} clips, "
                            f"{len(evalset.windows)} windows incl. mixtures), seed {config.seed}{split_name(config)}",
            "int8_path": int8.backend,
            # Which clips were held out, so `bowlsense evaluate --split val` measures the same ones.
            "split": {"seed": config.seed, "val_fraction": config.val_fraction, "folds": config.folds,
                      "fold": config.fold},
        }
        manifest = Manifest(
            labels=list(config.labels), privacy_labels=list(config.privacy_labels), thresholds=thresholds,
            smoothing=smoothing, frontend=DEFAULT_CONFIG,
            input=Quantization(q["input"]["scale"], q["input"]["zero_point"], q["input"]["shape"]),
            output=Quantization(q["output"]["scale"], q["output"]["zero_point"], q["output"]["shape"]),
            tflite_sha256=sha256_file(tflite_path), macs=cost["macs"], params=cost["params"],
            weight_bytes=cost["weight_bytes"], peak_ram_bytes=int8.arena_bytes, metrics=metrics,
        )
        manifest.validate()
        manifest.save(run.out_dir / "model.json")
        # Every model's scores on the validation windows, so `bowlsense compare` can set this run against
        # another later, window for window, without the data.
        from .crossval import save_scores
        save_scores(run.out_dir / "scores.npz", evalset, scores, thresholds, groups)
    run.timings["total"] = time.perf_counter() - t_start
    run.timings.setdefault("cpu", {})["total"] = time.process_time() - cpu_start
    report.write(run.out_dir, measured, {"teacher": teacher_hist, "student": student_hist}, manifest,
                 config, run.timings, gate_summary, evalset, q, cost, int8.backend, spread)
    for name in ("model.tflite", "model.json", "report.md"):
        (run.out_dir / name).chmod(0o644)  # written through a private temporary file: make them readable
    # Re-check what was written, as any consumer will read it.
    Manifest.load(run.out_dir / "model.json")
    quantize.check((run.out_dir / "model.tflite").read_bytes())
    return Trained(metrics, evalset, scores, thresholds)


def _diff(a, b):
    return None if a is None or b is None else float(a - b)


def peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

