"""How close the fixed-point front end is to YAMNet's float recipe, and whether YAMNet notices.

Two figures over a set of 16 kHz clips:
- feature error in nats against the float64 recipe (fidelity.float_logmel): mean and 99.9th percentile;
- decisions: ../shared/yamnet/yamnet_int8_logmel_in.tflite fed our features vs fed the float reference,
  top-1 AudioSet class agreement on the decisive patches (reference top-1 leads the runner-up by at least
  DECISIVE_MARGIN; near-ties flip under any rounding) and the mean over patches of the largest absolute
  score difference.
Used by `bowlsense frontend fidelity` and tests/test_frontend_shared_data.py.
"""
from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from . import Frontend, patches
from .fidelity import float_logmel

DECISIVE_MARGIN = 0.1


@dataclasses.dataclass
class FidelityReport:
    windows: int
    mean_abs_error_nats: float
    p999_abs_error_nats: float
    max_abs_error_nats: float
    patches: int
    decisive_patches: int
    top1_agreement_decisive: float
    mean_max_score_diff: float

    def lines(self) -> list[str]:
        return [
            f"feature windows            {self.windows}",
            f"mean |error| (nats)        {self.mean_abs_error_nats:.5f}   (goal <= 0.02)",
            f"99.9th pct |error| (nats)  {self.p999_abs_error_nats:.5f}   (goal <= 0.25)",
            f"max |error| (nats)         {self.max_abs_error_nats:.5f}",
            f"YAMNet patches             {self.patches} ({self.decisive_patches} decisive, margin >= {DECISIVE_MARGIN})",
            f"top-1 agreement, decisive  {100 * self.top1_agreement_decisive:.2f}%   (goal >= 99%)",
            f"mean max |score diff|      {self.mean_max_score_diff:.4f}   (goal <= 0.05)",
        ]


class YamnetScorer:
    """Coral's int8 YAMNet (float log-mel in, 521 scores out) through the TFLite interpreter."""

    def __init__(self, tflite_path: str | pathlib.Path):
        import tensorflow as tf

        self._interp = tf.lite.Interpreter(model_path=str(tflite_path), num_threads=1)
        self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        if list(self._in["shape"]) != [1, 96, 64] or self._out["shape"][-1] != 521:
            raise ValueError(f"{tflite_path}: expected YAMNet with [1,96,64] log-mel input and 521 outputs")

    def __call__(self, patch_nats: np.ndarray) -> np.ndarray:
        self._interp.set_tensor(self._in["index"], patch_nats[None].astype(np.float32))
        self._interp.invoke()
        return self._interp.get_tensor(self._out["index"])[0].copy()


def fidelity_report(clips, yamnet_tflite, progress: bool = False) -> FidelityReport:
    """clips: iterable of 16 kHz int16 arrays."""
    from tqdm import tqdm

    fe = Frontend()
    scorer = YamnetScorer(yamnet_tflite)
    errors, agree, decisive, diffs, n_patches = [], 0, 0, [], 0
    for pcm in tqdm(list(clips), desc="fidelity", unit="clip", disable=not progress):
        ours = fe.process(pcm)
        ref = float_logmel(pcm)
        errors.append(np.abs(fe.to_float(ours).astype(np.float64) - ref).ravel())
        for p_ours, p_ref in zip(patches(fe.to_float(ours)), patches(ref)):
            s_ours, s_ref = scorer(p_ours), scorer(p_ref)
            n_patches += 1
            diffs.append(float(np.abs(s_ours - s_ref).max()))
            top2 = np.sort(s_ref)[-2:]
            if top2[1] - top2[0] >= DECISIVE_MARGIN:
                decisive += 1
                agree += int(s_ours.argmax() == s_ref.argmax())
    err = np.concatenate(errors) if errors else np.zeros(1)
    return FidelityReport(
        windows=int(err.size // 64),
        mean_abs_error_nats=float(err.mean()),
        p999_abs_error_nats=float(np.percentile(err, 99.9)),
        max_abs_error_nats=float(err.max()),
        patches=n_patches,
        decisive_patches=decisive,
        top1_agreement_decisive=agree / decisive if decisive else float("nan"),
        mean_max_score_diff=float(np.mean(diffs)) if diffs else float("nan"),
    )
