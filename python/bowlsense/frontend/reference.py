"""The golden reference: the front end's integer algorithm written again in numpy, vectorised over
frames and sharing nothing with the C code but the generated tables. The tests require C (through
cffi, any compiler, any -O level, Cortex-M under QEMU) == this, bit for bit.

It also checks the overflow argument of firmware/frontend/README.md as it goes: every value the C code
keeps in int32 is asserted to fit.
"""
from __future__ import annotations

import numpy as np

from .config import DEFAULT_CONFIG, FrontendConfig
from .tables import FFT_INPUT_BITS, LOG_FRAC_BITS, build_tables

MEL_EXPONENT_BASE = 50  # mel accumulators hold mel * 2**(50 - bit length of the peak sample)

INT32_LIMIT = 1 << 31


def _bit_length(x: np.ndarray) -> np.ndarray:
    """Bit length of non-negative integers (uint64), without going through float."""
    x = x.astype(np.uint64)
    n = np.zeros(x.shape, dtype=np.int64)
    for shift in (32, 16, 8, 4, 2, 1):
        big = x >= (np.uint64(1) << np.uint64(shift))
        n += np.where(big, shift, 0)
        x = np.where(big, x >> np.uint64(shift), x)
    return n + (x > 0)


def _round_shift(x: np.ndarray, shift) -> np.ndarray:
    """Round half up, then arithmetic shift (numpy's >> on int64 is arithmetic)."""
    shift = np.asarray(shift, dtype=np.int64)
    return (x + (np.int64(1) << (shift - 1))) >> shift


def _mul_q31(a, b):
    """round(a * b / 2**32), the semantics of SMMULR."""
    return (a * b + (1 << 31)) >> 32


def _mla_q31(acc, a, b):
    return (acc * (1 << 32) + a * b + (1 << 31)) >> 32


def _mls_q31(acc, a, b):
    return (acc * (1 << 32) - a * b + (1 << 31)) >> 32


def _check_int32(x: np.ndarray, what: str) -> None:
    if x.size and (x.max() >= INT32_LIMIT or x.min() < -INT32_LIMIT):
        raise AssertionError(f"{what} overflows int32: the overflow argument is broken")


def _magnitude(re: np.ndarray, im: np.ndarray, table: np.ndarray) -> np.ndarray:
    """|re + i im| to ~15 significant bits by the C code's 32-bit integer steps."""
    a, b = np.abs(re), np.abs(im)
    drop = np.maximum(_bit_length(a | b) - 15, 0)
    a, b = a >> drop, b >> drop
    n = a * a + b * b
    nz = n > 0
    up = (32 - _bit_length(n)) >> 1
    n = np.where(nz, n << (2 * up), 1 << 30)  # placeholder keeps the table index valid where n == 0
    i, frac = n >> 24, (n >> 8) & 0xFFFF
    lo, hi = table[i].astype(np.int64), table[i + 1].astype(np.int64)
    r = lo + (((hi - lo) * frac) >> 16)
    shift = drop - up
    out = np.where(shift >= 0, r << np.maximum(shift, 0),
                   (r + (np.int64(1) << np.maximum(-shift - 1, 0))) >> np.maximum(-shift, 0))
    return np.where(nz, out, 0)


def _log_q24(v: np.ndarray, exponent: np.ndarray, t) -> np.ndarray:
    v = v.astype(np.uint64)
    length = _bit_length(v)
    m = v << (64 - length).astype(np.uint64)
    idx = ((m >> np.uint64(55)) & np.uint64(0xFF)).astype(np.int64)
    frac = ((m >> np.uint64(31)) & np.uint64(0xFFFFFF)).astype(np.int64)
    lo = t.log_table[idx].astype(np.int64)
    hi = t.log_table[idx + 1].astype(np.int64)
    mant = lo + (((hi - lo) * frac) >> 24)
    return (length - 1 - exponent) * t.ln2_q24 + mant


def frames_of(pcm: np.ndarray, config: FrontendConfig = DEFAULT_CONFIG) -> np.ndarray:
    """(n_frames, window_samples) int64 view of the clip's complete windows."""
    n = 0 if len(pcm) < config.window_samples else 1 + (len(pcm) - config.window_samples) // config.hop_samples
    idx = np.arange(n)[:, None] * config.hop_samples + np.arange(config.window_samples)[None, :]
    return np.asarray(pcm, dtype=np.int64)[idx] if n else np.zeros((0, config.window_samples), np.int64)


def reference_logmel(pcm: np.ndarray, config: FrontendConfig = DEFAULT_CONFIG) -> np.ndarray:
    """int16 PCM -> (n_frames, num_mel) int16 log-mel in Q(output_frac_bits), as the C code computes it."""
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise ValueError("expected 1-D int16 PCM")
    t = build_tables(config)
    x = frames_of(pcm, config)
    n_frames = len(x)
    if n_frames == 0:
        return np.zeros((0, config.num_mel), dtype=np.int16)
    half = config.fft_size // 2

    # Block scaling, window: x * 2**(29 - bits) times the Q31 window, halved by the Q31 multiply.
    bits = _bit_length(np.abs(x).max(axis=1))[:, None]
    v = _mul_q31(x * (np.int64(1) << (FFT_INPUT_BITS + 1 - bits)), t.window.astype(np.int64))
    _check_int32(v, "windowed samples")
    v = np.pad(v, [(0, 0), (0, config.fft_size - config.window_samples)])

    # Half-size complex FFT of z = v[even] + i v[odd]: bit-reversed input, radix-2 stages that halve.
    zr = v[:, 0::2][:, np.argsort(t.bitrev)]
    zi = v[:, 1::2][:, np.argsort(t.bitrev)]
    size = 2
    while size <= half:
        h = size // 2
        starts = np.arange(0, half, size)
        j = np.arange(h)
        a_idx = (starts[:, None] + j[None, :]).ravel()
        b_idx = a_idx + h
        first = np.tile(j == 0, len(starts))  # twiddle 1: W b / 2 is b >> 1, no multiply
        tw = np.tile(j * (config.fft_size // size), len(starts))
        wr = t.twiddle_re[tw].astype(np.int64)
        wi = t.twiddle_im[tw].astype(np.int64)
        br, bi = zr[:, b_idx], zi[:, b_idx]
        tr = np.where(first, br >> 1, _mls_q31(_mul_q31(br, wr), bi, wi))
        ti = np.where(first, bi >> 1, _mla_q31(_mul_q31(br, wi), bi, wr))
        ar, ai = zr[:, a_idx] >> 1, zi[:, a_idx] >> 1
        zr = zr.copy()
        zi = zi.copy()
        zr[:, a_idx], zi[:, a_idx] = ar + tr, ai + ti
        zr[:, b_idx], zi[:, b_idx] = ar - tr, ai - ti
        _check_int32(zr, "FFT stage")
        _check_int32(zi, "FFT stage")
        size *= 2

    # Real spectrum of the bins the mel bands use: Y/2 = E/2 - i (W D)/2.
    k = np.arange(t.mel_bin_lo, t.mel_bin_hi)
    k1 = k % half
    k2 = (half - k) % half
    er, ei = zr[:, k1] + zr[:, k2], zi[:, k1] - zi[:, k2]
    dr, di = zr[:, k1] - zr[:, k2], zi[:, k1] + zi[:, k2]
    wr = t.twiddle_re[k].astype(np.int64)
    wi = t.twiddle_im[k].astype(np.int64)
    pr = _mls_q31(_mul_q31(dr, wr), di, wi)
    pi = _mla_q31(_mul_q31(dr, wi), di, wr)
    yr, yi = (er >> 1) + pi, (ei >> 1) - pr
    for part in (er, ei, dr, di, yr, yi):
        _check_int32(part, "spectrum split")
    mag = _magnitude(yr, yi, t.sqrt_table)

    # Mel bands as an exact integer matrix product.
    weights = np.zeros((config.num_bins, config.num_mel), dtype=np.uint64)
    for b in range(t.mel_bin_lo, t.mel_bin_hi):
        band = int(t.mel_band[b])
        if band < 0:
            continue
        weights[b, band] = t.mel_w0[b]
        if band + 1 < config.num_mel:
            weights[b, band + 1] = t.mel_w1[b]
    mel = mag.astype(np.uint64) @ weights[t.mel_bin_lo:t.mel_bin_hi]

    exponent = MEL_EXPONENT_BASE - bits
    offset = (np.uint64(t.log_offset_q63) + (np.uint64(1) << (62 - exponent).astype(np.uint64))) >> \
        (63 - exponent).astype(np.uint64)
    log = _log_q24(mel + offset, exponent, t)
    out = _round_shift(log, LOG_FRAC_BITS - config.output_frac_bits)
    return out.astype(np.int16)
