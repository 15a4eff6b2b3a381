"""Small matplotlib helpers shared by reports (Agg backend: no display needed)."""
from __future__ import annotations

import pathlib

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_spectrogram(logmel_nats: np.ndarray, path: pathlib.Path, title: str = "", hop_s: float = 0.01) -> None:
    """(frames, bands) log-mel in nats -> PNG with time in seconds and mel band index."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 2.6), dpi=100)
    im = ax.imshow(np.asarray(logmel_nats).T, origin="lower", aspect="auto", cmap="magma",
                   extent=[0, len(logmel_nats) * hop_s, 0, logmel_nats.shape[1]] if len(logmel_nats) else None)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel band")
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, label="ln(mel + 0.001)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
