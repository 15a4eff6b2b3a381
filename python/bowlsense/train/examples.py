"""Training and evaluation windows from verified clips: single-source windows, augmented copies and
mixtures whose labels are known by construction (the union of their parents' labels).

Every window carries its lineage (which clips, which gains and SNR), so a report can say what a number
was measured on. Augmentation and mixing happen after the grouped split, from one side's clips only.

SNR convention for a mixture of `target` (e.g. speech) over `other` (e.g. eating): 10 log10 of the
target's mean power over the samples where the target is placed, divided by the other's mean power over
the same samples. So "speech at -10 dB under chewing" means the chewing is 10 dB louder than the speech
while the speech lasts, whatever silence surrounds a short utterance.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..data.labels import BACKGROUND, multi_hot
from .features import HOP_SAMPLES, PATCH_SAMPLES, pcm_patches


class TrainingDataError(ValueError):
    """The dataset cannot train or evaluate the requested labels; the message says what to do."""


@dataclasses.dataclass
class Source:
    """One verified clip loaded as 16 kHz int16."""
    path: str
    labels: tuple[str, ...]
    group: str
    pcm: np.ndarray

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(l for l in self.labels if l != BACKGROUND)


@dataclasses.dataclass
class Windows:
    """A batch of model inputs with targets and lineage. patches: (n, 96, 64) int16 Q10."""
    patches: np.ndarray
    targets: np.ndarray          # (n, n_labels) float32 multi-hot
    kind: list[str]              # single | augmented | mixture
    lineage: list[str]           # human-readable origin of each window
    snr_db: np.ndarray           # NaN for single-source windows

    @classmethod
    def empty(cls, n_labels: int) -> "Windows":
        return cls(np.zeros((0, 96, 64), np.int16), np.zeros((0, n_labels), np.float32), [], [],
                   np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.patches)

    @staticmethod
    def concat(parts: list["Windows"]) -> "Windows":
        parts = [p for p in parts if len(p)]
        return Windows(np.concatenate([p.patches for p in parts]), np.concatenate([p.targets for p in parts]),
                       sum((p.kind for p in parts), []), sum((p.lineage for p in parts), []),
                       np.concatenate([p.snr_db for p in parts]))

    def select(self, mask) -> "Windows":
        idx = np.flatnonzero(mask)
        return Windows(self.patches[idx], self.targets[idx], [self.kind[i] for i in idx],
                       [self.lineage[i] for i in idx], self.snr_db[idx])


def single_windows(sources: list[Source], labels) -> Windows:
    """Every 0.96 s window of every clip (short clips centred in one window), labelled like its clip."""
    parts = []
    for s in sources:
        p = pcm_patches(s.pcm)
        t = np.repeat(multi_hot(s.labels, labels)[None], len(p), axis=0)
        parts.append(Windows(p, t, ["single"] * len(p), [s.path] * len(p), np.full(len(p), np.nan, np.float32)))
    return Windows.concat(parts) if parts else Windows.empty(len(labels))


def _window(pcm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random PATCH_SAMPLES stretch of pcm (or pcm centred in silence when shorter), as float64."""
    x = pcm.astype(np.float64)
    if len(x) >= PATCH_SAMPLES:
        start = int(rng.integers(0, len(x) - PATCH_SAMPLES + 1))
        return x[start:start + PATCH_SAMPLES]
    out = np.zeros(PATCH_SAMPLES)
    start = (PATCH_SAMPLES - len(x)) // 2
    out[start:start + len(x)] = x
    return out


def _extent(pcm: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, slice]:
    """A target placed in one window: (window, the samples it occupies). Short clips go at a random offset."""
    x = pcm.astype(np.float64)
    if len(x) >= PATCH_SAMPLES:
        return _window(pcm, rng), slice(0, PATCH_SAMPLES)
    start = int(rng.integers(0, PATCH_SAMPLES - len(x) + 1))
    out = np.zeros(PATCH_SAMPLES)
    out[start:start + len(x)] = x
    return out, slice(start, start + len(x))


def _to_int16(x: np.ndarray) -> np.ndarray:
    # Keep headroom rather than clip: a mixture that would clip is scaled down as a whole (a microphone
    # with AGC would do the same), so the mixture's SNR is what was asked for.
    peak = np.max(np.abs(x)) if len(x) else 0.0
    if peak > 32000:
        x = x * (32000 / peak)
    return np.rint(x).astype(np.int16)


def mix_parts(target: np.ndarray, other: np.ndarray, snr_db: float, rng: np.random.Generator):
    """The two scaled components of one mixture window and where the target sits: (target, other, slice)."""
    t, where = _extent(target, rng)
    o = _window(other, rng)
    p_t = np.mean(t[where] ** 2)
    p_o = np.mean(o[where] ** 2)
    if p_t > 0 and p_o > 0:
        t = t * np.sqrt(p_o / p_t * 10 ** (snr_db / 10))
    return t, o, where


def mix(target: np.ndarray, other: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """One window of `target` over `other` at snr_db (see the module doc), as int16 PCM of one patch."""
    t, o, _ = mix_parts(target, other, snr_db, rng)
    return _to_int16(t + o)


def mixtures(targets: list[Source], others: list[Source], labels, snrs, n: int,
             rng: np.random.Generator, kind: str = "mixture") -> Windows:
    """n windows, each a random target clip over a random other clip at an SNR drawn from `snrs`
    (a list of values, or a (low, high) tuple for a uniform draw)."""
    if not targets or not others or n <= 0:
        return Windows.empty(len(labels))
    pcm, tg, lin, snr_out = [], [], [], []
    for _ in range(n):
        t = targets[int(rng.integers(len(targets)))]
        o = others[int(rng.integers(len(others)))]
        snr = float(rng.uniform(*snrs)) if isinstance(snrs, tuple) else float(snrs[int(rng.integers(len(snrs)))])
        pcm.append(mix(t.pcm, o.pcm, snr, rng))
        tg.append(np.maximum(multi_hot(t.labels, labels), multi_hot(o.labels, labels)))
        lin.append(f"{t.path} @ {snr:+.1f} dB over {o.path}")
        snr_out.append(snr)
    patches = np.stack([pcm_patches(x)[0] for x in pcm])
    return Windows(patches, np.stack(tg), [kind] * n, lin, np.array(snr_out, np.float32))


def augmented(sources: list[Source], labels, n: int, rng: np.random.Generator, rirs=()) -> Windows:
    """n windows of random clips with a random offset, gain (-20..+6 dB) and, for a third, a room impulse
    response. Labels are unchanged: none of these can add or remove an event."""
    if not sources or n <= 0:
        return Windows.empty(len(labels))
    patches, tg, lin = [], [], []
    for _ in range(n):
        s = sources[int(rng.integers(len(sources)))]
        x = _window(s.pcm, rng) if len(s.pcm) >= PATCH_SAMPLES else _extent(s.pcm, rng)[0]
        how = []
        if len(rirs) and rng.random() < 1 / 3:
            k = int(rng.integers(len(rirs)))
            x = np.convolve(x, rirs[k])[:PATCH_SAMPLES]
            how.append(f"rir{k}")
        gain_db = float(rng.uniform(-20, 6))
        peak = np.max(np.abs(x)) or 1.0
        x = x * min(10 ** (gain_db / 20), 32000 / peak)
        how.append(f"{gain_db:+.1f} dB")
        patches.append(pcm_patches(_to_int16(x))[0])
        tg.append(multi_hot(s.labels, labels))
        lin.append(f"{s.path} ({', '.join(how)})")
    return Windows(np.stack(patches), np.stack(tg), ["augmented"] * n, lin, np.full(n, np.nan, np.float32))


def silence_padded(sources: list[Source], labels, n: int, rng: np.random.Generator) -> Windows:
    """n windows of a short random excerpt (0.25-0.9 s) of a background clip centred in digital silence.

    Short clips (spoken digits, commands) reach the model centred in silence, and nothing else would;
    without these windows a model learns "a sound surrounded by silence is speech". Only background clips
    are cut this way: an excerpt of background is still background, while an excerpt of an eating clip
    may hold no chewing at all."""
    if not sources or n <= 0:
        return Windows.empty(len(labels))
    patches, tg, lin = [], [], []
    for _ in range(n):
        s = sources[int(rng.integers(len(sources)))]
        length = min(len(s.pcm), int(rng.uniform(0.25, 0.9) * 16000))
        start = int(rng.integers(0, len(s.pcm) - length + 1))
        x, _ = _extent(s.pcm[start:start + length], rng)
        patches.append(pcm_patches(_to_int16(x))[0])
        tg.append(multi_hot(s.labels, labels))
        lin.append(f"{s.path} [{start / 16000:.2f} s + {length / 16000:.2f} s in silence]")
    return Windows(np.stack(patches), np.stack(tg), ["augmented"] * n, lin, np.full(n, np.nan, np.float32))


def load_rirs(data_dir) -> list[np.ndarray]:
    """Room impulse responses from DATA_DIR/rir (if any), 16 kHz, normalised to unit energy."""
    import pathlib

    from ..data.audio import EXTENSIONS, load_audio
    folder = pathlib.Path(data_dir) / "rir"
    out = []
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        if path.suffix.lower() in EXTENSIONS:
            h = load_audio(path).astype(np.float64)
            h = h[np.argmax(np.abs(h)):][:8000]  # from the direct path, at most 0.5 s
            out.append(h / (np.sqrt(np.sum(h ** 2)) or 1.0))
    return out


def by_label(sources: list[Source], label: str) -> list[Source]:
    if label == BACKGROUND:
        return [s for s in sources if not s.events]
    return [s for s in sources if label in s.labels]


def hop_count(n_samples: int) -> int:
    return 0 if n_samples < PATCH_SAMPLES else 1 + (n_samples - PATCH_SAMPLES) // HOP_SAMPLES
