"""bowlsense's data layer: audio anyone can audit, and nothing else, reaches training.

Typical training use (every name below is exported here):

    ds = Dataset.load(folder)                       # folder with labels.csv
    gate = ds.verified()                            # the trust gate: verified clips only
    print(gate.summary())                           # "... left out 13 unverified ..." (print it!)
    split = group_split(gate.clips, val_fraction=0.2, seed=0)   # grouped by source recording
    sources = Sources(split.train, rir_dir=paths.shared_data_dir() / "rir")
    plans = plan_examples(split.train, sources, seed=0, augment_per_clip=2, mixtures=300)
    cache = FeatureCache()
    for lin in plans:
        frames = cache.frames(lin, sources)         # int16 (n, 64) from the C front end
        target = multi_hot(lin.labels, labels)      # labels: event labels, no "background"
    # or all at once, as model inputs, each patch traceable and regenerable:
    batch = patch_set(plans, sources, labels, cache, max_windows=8)   # .patches .targets .origin
    assert (regenerate_patch(batch.origin[0], sources) == batch.patches[0]).all()

Modules:
    audio      load_audio(path) -> int16 16 kHz mono (soundfile + soxr, deterministic), AudioError,
               inspect_audio, write_wav, wav_bytes
    labels     EVENT_LABELS, PRODUCT_LABELS, BACKGROUND, parse_labels, union, multi_hot
    dataset    Clip, Dataset (labels.csv), TrustGate, DatasetError
    splits     group_key(clip), group_split(clips, val_fraction, seed) -> Split(train, val),
               group_folds(clips, k, seed) -> k Splits for cross-validation
    lineage    Lineage (recipe JSON, .labels, .parents, .key), Sources, regenerate, TrustError
    mixing     active_rms, mix_pcm, convolve_rir: the sample-level operations
    mixtures   plan_mixtures, mixture: verified clip + verified clip at -10..+10 dB, labels = union
    augment    AugmentConfig (documented ranges), plan_augment, augment
    excerpt    plan_place: a recipe fitted into n samples (one model window) at a drawn position
    plan       plan_examples: clips -> deterministic list of lineages; patch_set: lineages -> model
               inputs + targets + per-patch origin; regenerate_patch
    cache      FeatureCache keyed by (recipe incl. parents' sha256 and parameters, front end hash)
    check      check_dataset(folder) -> problems and per-label summary
    verify     verify_clips / reject_clips (atomic labels.csv rewrite)
    importer   import_folders: <label>/*.wav -> dataset folder (unverified)
    audit      write_audit(folder, out_html, scorer=None): self-contained HTML report
    demo       make_demo(out): deterministic synthetic dataset

There is deliberately no way to let unverified clips through: Sources, clip_recipe and plan_mixtures
refuse them, and Clip.load() refuses a file whose bytes no longer match the sha256 in labels.csv.
"""
from __future__ import annotations

from .audio import SAMPLE_RATE, AudioError, AudioInfo, inspect_audio, load_audio, wav_bytes, write_wav
from .augment import DEFAULT_AUGMENT, AugmentConfig, augment, plan_augment
from .cache import FeatureCache
from .excerpt import plan_place
from .dataset import REJECTED, UNVERIFIED, VERIFIED, Clip, Dataset, DatasetError, TrustGate
from .labels import BACKGROUND, EVENT_LABELS, PRODUCT_LABELS, events, multi_hot, parse_labels, union
from .lineage import Lineage, Sources, TrustError, clip_recipe, regenerate
from .mixtures import SNR_DB_RANGE, mixture, plan_mixtures
from .plan import PatchSet, patch_set, plan_examples, regenerate_patch
from .splits import Split, group_folds, group_key, group_split

__all__ = [
    "SAMPLE_RATE", "AudioError", "AudioInfo", "inspect_audio", "load_audio", "wav_bytes", "write_wav",
    "DEFAULT_AUGMENT", "AugmentConfig", "augment", "plan_augment", "FeatureCache",
    "REJECTED", "UNVERIFIED", "VERIFIED", "Clip", "Dataset", "DatasetError", "TrustGate",
    "BACKGROUND", "EVENT_LABELS", "PRODUCT_LABELS", "events", "multi_hot", "parse_labels", "union",
    "Lineage", "Sources", "TrustError", "clip_recipe", "regenerate",
    "plan_place", "SNR_DB_RANGE", "mixture", "plan_mixtures", "plan_examples", "PatchSet", "patch_set", "regenerate_patch", "Split", "group_folds", "group_key", "group_split",
]
