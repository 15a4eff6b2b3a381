"""Generate the front end's const tables (window, twiddles, mel weights, sqrt seeds, log) from
FrontendConfig. Float math happens here, once, on the host; the C runtime only reads integers, so the
device never depends on its libm for bit-exactness.

    python -m bowlsense.frontend.tables --write    # rewrite firmware/frontend/bs_frontend_tables.c
    python -m bowlsense.frontend.tables --check    # exit 1 if the checked-in file is stale

The numpy integer reference (reference.py) reads the same arrays through `build_tables()`.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys

import numpy as np

from .. import __version__
from ..paths import REPO_ROOT
from .config import DEFAULT_CONFIG, FrontendConfig

TABLES_C = REPO_ROOT / "firmware" / "frontend" / "bs_frontend_tables.c"

# Fixed-point formats shared by the C code and the numpy reference (documented in firmware/frontend/README.md).
WINDOW_FRAC_BITS = 31      # Hann window, int32 Q31 (Q15 would add noise comparable to the int16 input's)
TWIDDLE_FRAC_BITS = 31     # FFT twiddles, int32 Q31; +1.0 is stored as 2**31 - 1 (see q31())
MEL_WEIGHT_FRAC_BITS = 15  # mel weights, uint16, 1.0 == 32768
LOG_FRAC_BITS = 24         # natural log table and ln(2), int32
LOG_TABLE_BITS = 8         # log table: ln(1 + i/256), i = 0..256
SQRT_TABLE_BITS = 8        # sqrt table indexed by the top 8 bits of a normalised 32-bit value, interpolated
FFT_INPUT_BITS = 28        # block scaling keeps |windowed sample| < 2**28; the FFT halves every stage


def hz_to_mel(hz):
    """HTK mel scale, as tf.signal uses it."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def mel_weight_matrix(config: FrontendConfig = DEFAULT_CONFIG) -> np.ndarray:
    """float64 (num_bins, num_mel) matrix equal to tf.signal.linear_to_mel_weight_matrix (DC row zero)."""
    nyquist = config.sample_rate_hz / 2.0
    linear_hz = np.linspace(0.0, nyquist, config.num_bins)[1:]
    bins_mel = hz_to_mel(linear_hz)[:, None]
    edges = np.linspace(hz_to_mel(config.lower_hz), hz_to_mel(config.upper_hz), config.num_mel + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    lower_slopes = (bins_mel - lower) / (center - lower)
    upper_slopes = (upper - bins_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(lower_slopes, upper_slopes))
    return np.pad(weights, [[1, 0], [0, 0]])


def q31(x) -> np.ndarray:
    """Round to Q31 int32. +1.0 does not fit and becomes 2**31 - 1 (an error of 5e-10); -1.0 fits."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * 2.0 ** 31), -2 ** 31, 2 ** 31 - 1).astype(np.int32)


def periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


@dataclasses.dataclass(frozen=True)
class Tables:
    window: np.ndarray          # int32 [window_samples], Q31
    twiddle_re: np.ndarray      # int32 [fft_size/2 + 1]: cos(2 pi k / fft_size) in Q31
    twiddle_im: np.ndarray      # int32 [fft_size/2 + 1]: -sin(2 pi k / fft_size) in Q31
    bitrev: np.ndarray          # uint8 [fft_size/2]: bit reversal of the half-size complex FFT
    mel_bin_lo: int             # first FFT bin with a non-zero mel weight
    mel_bin_hi: int             # one past the last
    mel_band: np.ndarray        # int8 [num_bins]: first band the bin feeds (-1: none)
    mel_w0: np.ndarray          # uint16 [num_bins]: weight into mel_band
    mel_w1: np.ndarray          # uint16 [num_bins]: weight into mel_band + 1 (0 if none)
    sqrt_table: np.ndarray      # uint32 [257]: sqrt(i * 2**24); read for i in 64..256
    log_table: np.ndarray       # int32 [257]: ln(1 + i/256) in Q24
    ln2_q24: int
    log_offset_q63: int         # round(log_offset * 2**63)
    config_hash: str

    def flash_bytes(self) -> int:
        arrays = [self.window, self.twiddle_re, self.twiddle_im, self.bitrev, self.mel_band,
                  self.mel_w0, self.mel_w1, self.sqrt_table, self.log_table]
        return sum(a.nbytes for a in arrays) + 65  # + the hash string


def build_tables(config: FrontendConfig = DEFAULT_CONFIG) -> Tables:
    if config.fft_size & (config.fft_size - 1) or config.fft_size < config.window_samples:
        raise ValueError("fft_size must be a power of two at least window_samples")
    half = config.fft_size // 2
    window = q31(periodic_hann(config.window_samples))

    k = np.arange(half + 1)
    angle = 2.0 * np.pi * k / config.fft_size
    twiddle_re = q31(np.cos(angle))
    twiddle_im = q31(-np.sin(angle))

    bits = half.bit_length() - 1
    bitrev = np.array([int(format(i, f"0{bits}b")[::-1], 2) for i in range(half)], dtype=np.uint8)

    weights = mel_weight_matrix(config)
    band = np.full(config.num_bins, -1, dtype=np.int8)
    w0 = np.zeros(config.num_bins, dtype=np.uint16)
    w1 = np.zeros(config.num_bins, dtype=np.uint16)
    nonzero_bins = []
    for b in range(config.num_bins):
        nz = np.flatnonzero(weights[b] > 0)
        if len(nz) == 0:
            continue
        # HTK triangles overlap pairwise: a bin feeds at most two adjacent bands. The C loop relies on it.
        if len(nz) > 2 or (len(nz) == 2 and nz[1] != nz[0] + 1):
            raise ValueError(f"bin {b} feeds bands {nz}: not two adjacent bands")
        nonzero_bins.append(b)
        band[b] = nz[0]
        w0[b] = round(weights[b, nz[0]] * (1 << MEL_WEIGHT_FRAC_BITS))
        if len(nz) == 2:
            w1[b] = round(weights[b, nz[1]] * (1 << MEL_WEIGHT_FRAC_BITS))
    inside = band[min(nonzero_bins):max(nonzero_bins) + 1].astype(int)
    # The C mel loop keeps two running sums: every bin in range feeds a band, and the band index
    # rises by at most one from one bin to the next.
    if (inside < 0).any() or (np.diff(inside) < 0).any() or (np.diff(inside) > 1).any():
        raise ValueError("mel bands are not contiguous over the FFT bins: the C mel loop cannot run them")
    if (w1[min(nonzero_bins):max(nonzero_bins) + 1][inside == config.num_mel - 1] != 0).any():
        raise ValueError("a bin feeds a band past the last one")
    sqrt_table = np.round(np.sqrt(np.arange((1 << SQRT_TABLE_BITS) + 1) * 2.0 ** 24)).astype(np.uint32)
    log_table = np.round(np.log1p(np.arange((1 << LOG_TABLE_BITS) + 1) / (1 << LOG_TABLE_BITS))
                         * (1 << LOG_FRAC_BITS)).astype(np.int32)
    return Tables(
        window=window, twiddle_re=twiddle_re, twiddle_im=twiddle_im, bitrev=bitrev,
        mel_bin_lo=min(nonzero_bins), mel_bin_hi=max(nonzero_bins) + 1,
        mel_band=band, mel_w0=w0, mel_w1=w1, sqrt_table=sqrt_table, log_table=log_table,
        ln2_q24=round(np.log(2.0) * (1 << LOG_FRAC_BITS)),
        log_offset_q63=round(config.log_offset * 2.0 ** 63),
        config_hash=config.hash,
    )


def _c_array(ctype: str, name: str, values, per_line: int = 12) -> str:
    vals = [str(int(v)) for v in np.asarray(values).ravel()]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    body = ",\n    ".join(lines)
    return f"const {ctype} {name}[{len(vals)}] = {{\n    {body}\n}};\n"


def render_c(config: FrontendConfig = DEFAULT_CONFIG) -> str:
    t = build_tables(config)
    source = config.canonical_json()
    banner = (
        "/*\n"
        " * GENERATED FILE - DO NOT EDIT.\n"
        f" * Generator: bowlsense.frontend.tables (bowlsense {__version__}); "
        "regenerate with `make tables`.\n"
        f" * Input: FrontendConfig {source}\n"
        f" * Input sha256: {hashlib.sha256(source.encode()).hexdigest()}\n"
        " */\n"
    )
    parts = [
        banner,
        '#include "bs_frontend_tables.h"\n',
        f'const char bs_frontend_tables_config_hash[65] = "{t.config_hash}";\n',
        f"const int32_t bs_frontend_tables_mel_bin_lo = {t.mel_bin_lo};\n",
        f"const int32_t bs_frontend_tables_mel_bin_hi = {t.mel_bin_hi};\n",
        f"const int32_t bs_frontend_tables_ln2_q24 = {t.ln2_q24};\n",
        f"const uint64_t bs_frontend_tables_log_offset_q63 = {t.log_offset_q63}ULL;\n",
        "\n/* Periodic Hann window, Q31 (1.0 stored as 2^31 - 1). */\n",
        _c_array("int32_t", "bs_frontend_tables_window", t.window, 8),
        "\n/* exp(-2 pi i k / FFT_SIZE), k = 0..FFT_SIZE/2, Q31 (1.0 stored as 2^31 - 1), interleaved\n"
        " * re, im so one double-word load fetches a twiddle. */\n",
        _c_array("int32_t", "bs_frontend_tables_twiddle", np.stack([t.twiddle_re, t.twiddle_im], axis=1), 8),
        "\n/* Bit reversal for the FFT_SIZE/2-point complex FFT. */\n",
        _c_array("uint8_t", "bs_frontend_tables_bitrev", t.bitrev, 16),
        "\n/* Mel: each bin feeds band mel_band[k] with weight w0 and band + 1 with w1 (Q15). */\n",
        _c_array("int8_t", "bs_frontend_tables_mel_band", t.mel_band, 16),
        _c_array("uint16_t", "bs_frontend_tables_mel_w0", t.mel_w0),
        _c_array("uint16_t", "bs_frontend_tables_mel_w1", t.mel_w1),
        "\n/* sqrt(i * 2^24), i = 0..256: interpolated for values in [2^30, 2^32) (i >= 64). */\n",
        _c_array("uint32_t", "bs_frontend_tables_sqrt", t.sqrt_table, 8),
        "\n/* ln(1 + i / 256), i = 0..256, Q24. */\n",
        _c_array("int32_t", "bs_frontend_tables_log", t.log_table, 8),
        f"\nconst uint32_t bs_frontend_tables_bytes = {t.flash_bytes()}u;\n",
    ]
    return "".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help=f"rewrite {TABLES_C.relative_to(REPO_ROOT)}")
    group.add_argument("--check", action="store_true", help="exit 1 if the checked-in tables are stale")
    args = parser.parse_args(argv)
    text = render_c()
    if args.write:
        TABLES_C.write_text(text)
        print(f"wrote {TABLES_C} ({build_tables().flash_bytes()} bytes of tables)")
        return 0
    current = TABLES_C.read_text() if TABLES_C.exists() else ""
    if current != text:
        print(f"{TABLES_C} is stale: run `make tables`", file=sys.stderr)
        return 1
    print(f"{TABLES_C} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
