"""Front end benchmarks, printed as ratios measured side by side in the same run (medians of repeats):

- host throughput of the C front end through cffi on a long clip, against the float64 numpy reference
  and against tf.signal (stft + mel matrix + log), in multiples of real time;
- Cortex-M4 instructions per 10 ms hop under QEMU with -icount shift=0 (exact and repeatable).
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from . import Frontend
from .config import DEFAULT_CONFIG
from .fidelity import float_logmel


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tf_signal_logmel(pcm: np.ndarray):
    """YAMNet's recipe in TensorFlow, as the baseline a training pipeline would otherwise use; held to
    one thread like the C code."""
    import tensorflow as tf

    if tf.config.threading.get_intra_op_parallelism_threads() != 1:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialised in this process: measure as configured
            pass

    c = DEFAULT_CONFIG
    x = tf.constant(pcm.astype(np.float32) / 32768.0)
    stft = tf.signal.stft(x, c.window_samples, c.hop_samples, c.fft_size, window_fn=tf.signal.hann_window,
                          pad_end=False)
    mel = tf.signal.linear_to_mel_weight_matrix(c.num_mel, c.num_bins, c.sample_rate_hz, c.lower_hz, c.upper_hz)
    return tf.math.log(tf.matmul(tf.abs(stft), mel) + c.log_offset).numpy()


def host_throughput(seconds: float = 60.0, repeats: int = 5, with_tf: bool = True) -> dict:
    rng = np.random.default_rng(0)
    pcm = np.clip(rng.normal(0, 4000, int(seconds * DEFAULT_CONFIG.sample_rate_hz)), -32768, 32767).astype(np.int16)
    fe = Frontend()
    fe.process(pcm[:16000])  # warm up
    results = {"audio_seconds": seconds, "c_cffi_s": _median_seconds(lambda: fe.process(pcm), repeats),
               "numpy_float64_s": _median_seconds(lambda: float_logmel(pcm), repeats)}
    if with_tf:
        tf_signal_logmel(pcm[:16000])  # build the graph once
        results["tf_signal_s"] = _median_seconds(lambda: tf_signal_logmel(pcm), repeats)
    return results


def cortex_m4_instructions_per_hop(seconds: float = 2.0) -> np.ndarray:
    import pathlib
    import tempfile

    from . import cortexm

    rng = np.random.default_rng(1)
    pcm = np.clip(rng.normal(0, 4000, int(seconds * 16000)), -32768, 32767).astype(np.int16)
    with tempfile.TemporaryDirectory() as tmp:
        elf = cortexm.build_elf("cortex-m4f", pathlib.Path(tmp) / "fe.elf")
        _, instructions = cortexm.run_elf(elf, pcm, chunk=DEFAULT_CONFIG.hop_samples)
    return instructions


# Front end functions by stage, for the per-stage breakdown (the M4 build's names; others fall in "other").
STAGES = (
    ("history + peak (block OR)", ("copy16_abs_or_m4", "copy16_m4", "copy_samples", "append_samples", "abs_or",
                                   "abs_or_c")),
    ("window + FFT stages 1-2", ("window_and_stages_1_2_m4", "window_and_stages_1_2_c", "window_and_stages_1_2")),
    ("FFT stages 3-8", ("stages_3_4", "stages_5_6", "stages_7_8", "fft_stages_3_to_8")),
    ("split + magnitude", ("spectrum_magnitude_m4", "spectrum_magnitude_c", "spectrum_magnitude", "magnitude")),
    ("mel sums", ("mel_sums_m4", "mel_sums_c", "mel_sums")),
    ("log", ("log_mel_m4", "log_mel_c", "log_mel", "log_q24")),
    ("calls", ("bs_frontend_process", "bs_frontend_compute_frame", "compute_frame", "bs_frontend_frames_for",
               "valid_state")),
)


def cortex_m4_stage_breakdown(hops: int = 6) -> list[tuple[str, float]]:
    """Instructions per hop by stage on Cortex-M4 (-O2), from an instruction trace of `hops` frames of noise."""
    import pathlib
    import tempfile

    from . import cortexm

    rng = np.random.default_rng(1)
    c = DEFAULT_CONFIG
    pcm = np.clip(rng.normal(0, 4000, c.window_samples + (hops - 1) * c.hop_samples), -32768, 32767).astype(np.int16)
    with tempfile.TemporaryDirectory() as tmp:
        elf = cortexm.build_elf("cortex-m4f", pathlib.Path(tmp) / "fe.elf")
        counts = cortexm.profile_elf(elf, pcm, chunk=c.hop_samples)
    rows = []
    for stage, names in STAGES:
        rows.append((stage, sum(counts.get(n, 0) for n in names) / hops))
    return rows


def report(with_tf: bool = True, with_qemu: bool = True, with_stages: bool = True) -> list[str]:
    lines = []
    r = host_throughput(with_tf=with_tf)
    secs = r["audio_seconds"]
    lines.append(f"host, one core, {secs:.0f} s clip (median of 5):")
    lines.append(f"  C front end via cffi   {r['c_cffi_s'] * 1e3:8.1f} ms  {secs / r['c_cffi_s']:8.0f}x real time  (goal >= 1000x)")
    lines.append(f"  numpy float64 recipe   {r['numpy_float64_s'] * 1e3:8.1f} ms  {secs / r['numpy_float64_s']:8.0f}x real time"
                 f"  C is {r['numpy_float64_s'] / r['c_cffi_s']:.1f}x faster")
    if "tf_signal_s" in r:
        lines.append(f"  tf.signal recipe       {r['tf_signal_s'] * 1e3:8.1f} ms  {secs / r['tf_signal_s']:8.0f}x real time"
                     f"  C is {r['tf_signal_s'] / r['c_cffi_s']:.1f}x faster (goal >= 20x)")
    if with_qemu:
        instr = cortex_m4_instructions_per_hop()
        lines.append(f"Cortex-M4 (QEMU mps2-an386, -icount shift=0, -O2): median {int(np.median(instr)):,} "
                     f"instructions per 10 ms hop, max {int(instr.max()):,} (goal <= 25,000)")
        lines.append(f"  = {np.median(instr) * 100 / 64e6 * 100:.1f}% of a 64 MHz Cortex-M4 at one instruction per cycle")
        if with_stages:
            lines.append("  by stage (instruction trace, QEMU -singlestep -d exec):")
            for stage, n in cortex_m4_stage_breakdown():
                lines.append(f"    {stage:26s} {n:8,.0f}")
    return lines
