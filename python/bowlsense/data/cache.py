"""Front end features cached on disk, keyed by what determines them.

key = sha256(Lineage.audio_key + front end config hash). audio_key hashes the recipe without paths and
labels: the parent clips by sha256 and every transform parameter and seed (see lineage.py), so equal
keys mean equal samples (a clip moved or relabelled keeps its features), and a front end whose
configuration (or integer algorithm version) changed gets new keys: old entries are never read again. Files live under <cache_dir>/features/<front end hash[:16]>/, so `prune()` can drop
whole stale front ends at once.

Each entry is an .npy of the int16 frames (n_frames, num_mel) the C front end computed from the rendered
samples (centred in silence when shorter than one 0.96 s patch, so every example gives at least one
patch, as pad_centred documents); writes are
atomic (temp file + rename), so a crash or two concurrent trainers cannot leave a half-written entry.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from .lineage import Lineage, Sources, canonical_json


def pad_centred(pcm: np.ndarray, length: int) -> np.ndarray:
    """A clip shorter than one patch, centred in digital silence (as a short sound reaches the device
    between quiet); longer clips unchanged."""
    pcm = np.asarray(pcm, dtype=np.int16)
    if len(pcm) >= length:
        return pcm
    pad = length - len(pcm)
    return np.concatenate([np.zeros(pad // 2, np.int16), pcm, np.zeros(pad - pad // 2, np.int16)])


class FeatureCache:
    def __init__(self, root: str | os.PathLike | None = None, frontend=None):
        """root: defaults to bowlsense.paths.cache_dir() / "features". frontend: a
        bowlsense.frontend.Frontend (created on first use when None)."""
        if root is None:
            from .. import paths
            root = paths.cache_dir() / "features"
        self.root = pathlib.Path(root)
        self._frontend = frontend
        self._own_frontend = frontend is None
        self.hits = 0
        self.misses = 0

    @property
    def frontend(self):
        if self._frontend is None:
            from ..frontend import Frontend
            self._frontend = Frontend()
        return self._frontend

    @property
    def pad_to(self) -> int:
        """Samples in one model patch: shorter examples are centred in silence to this length."""
        c = self.frontend.config
        return c.window_samples + (c.patch_frames - 1) * c.hop_samples

    @property
    def frontend_hash(self) -> str:
        return self.frontend.config.hash

    def key(self, lineage: Lineage) -> str:
        text = canonical_json({"samples": lineage.audio_key, "frontend": self.frontend_hash,
                               "pad_to": self.pad_to})
        return hashlib.sha256(text.encode()).hexdigest()

    def path(self, lineage: Lineage) -> pathlib.Path:
        k = self.key(lineage)
        return self.root / self.frontend_hash[:16] / k[:2] / f"{k}.npy"

    def get(self, lineage: Lineage) -> np.ndarray | None:
        p = self.path(lineage)
        try:
            frames = np.load(p, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (ValueError, OSError, EOFError):
            p.unlink(missing_ok=True)  # unreadable entry: recompute rather than fail training
            return None
        if frames.dtype != np.int16 or frames.ndim != 2 or frames.shape[1] != self.frontend.config.num_mel:
            p.unlink(missing_ok=True)
            return None
        return frames

    def put(self, lineage: Lineage, frames: np.ndarray) -> None:
        frames = np.asarray(frames)
        if frames.dtype != np.int16 or frames.ndim != 2:
            raise ValueError(f"cache entries are (n, num_mel) int16 frames, got {frames.dtype} {frames.shape}")
        p = self.path(lineage)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, frames, allow_pickle=False)
            os.replace(tmp, p)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def frames(self, lineage: Lineage, sources: Sources) -> np.ndarray:
        """The example's front end frames: from the cache, or rendered, computed and stored."""
        cached = self.get(lineage)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        return self._compute(lineage, sources, self.frontend)

    def frames_many(self, lineages: Sequence[Lineage], sources: Sources, workers: int | None = None,
                    progress: str | None = None) -> list[np.ndarray]:
        """frames() of every lineage, in order, the missing ones rendered and computed on `workers` threads
        (default: the CPUs this process may use). Rendering (numpy, scipy, audiomentations' resamplers) and
        the C front end (cffi) release the GIL for most of their time, so threads overlap where it matters;
        each thread has its own front end state. The result is the same bits as frames() one by one.
        progress: a progress bar's description, shown while missing examples are computed."""
        out = [self.get(lin) for lin in lineages]
        todo = [i for i, f in enumerate(out) if f is None]
        self.hits += len(out) - len(todo)
        self.misses += len(todo)
        if workers is None:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if not self._own_frontend:
            workers = 1  # a front end given to us is one state, which threads must not share
        if not todo:
            return out
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc=progress, unit="example", leave=False, mininterval=2.0,
                   disable=progress is None)
        try:
            if workers <= 1 or len(todo) < 2:
                for i in todo:
                    out[i] = self._compute(lineages[i], sources, self.frontend)
                    bar.update()
                return out
            config, local = self.frontend.config, threading.local()

            def compute(lin: Lineage) -> np.ndarray:
                if not hasattr(local, "frontend"):
                    from ..frontend import Frontend
                    local.frontend = Frontend(config)
                return self._compute(lin, sources, local.frontend)
            pool = ThreadPoolExecutor(max_workers=workers)
            try:
                for i, frames in zip(todo, pool.map(compute, [lineages[i] for i in todo])):
                    out[i] = frames
                    bar.update()
            finally:
                # On an error or Ctrl-C, drop the examples not yet started instead of rendering them all;
                # what finished is in the cache already.
                pool.shutdown(wait=True, cancel_futures=True)
            return out
        finally:
            bar.close()

    def _compute(self, lineage: Lineage, sources: Sources, frontend) -> np.ndarray:
        frames = frontend.process(pad_centred(sources.render(lineage.recipe), self.pad_to))
        self.put(lineage, frames)
        return frames

    def prune(self) -> int:
        """Delete entries made by other front end configurations; returns how many folders went."""
        if not self.root.is_dir():
            return 0
        current = self.frontend_hash[:16]
        stale = [d for d in self.root.iterdir() if d.is_dir() and d.name != current]
        for d in stale:
            shutil.rmtree(d, ignore_errors=True)
        return len(stale)
