"""Decode any supported audio file to 16 kHz mono int16, the same bytes on every run.

Why these choices:
- libsndfile (through soundfile) decodes WAV (8/16/24/32-bit int, float), FLAC, OGG/Vorbis and MP3
  without spawning processes, so decoding is deterministic and fast.
- soxr resamples with a proper anti-alias filter (naive decimation folds energy above 8 kHz into the
  band the front end looks at). Its output for a given input is fixed, and its length is pinned here to
  round(n * 16000 / rate) so callers can predict it.
- libsndfile quietly shortens a WAV whose data chunk was cut off; a truncated file is a broken upload,
  not a shorter clip, so the RIFF header is checked against the bytes actually present.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pathlib
import re
import struct

import numpy as np

SAMPLE_RATE = 16000
# One front end analysis window (25 ms at 16 kHz): anything shorter gives the model not a single frame.
MIN_SAMPLES = 400
MIN_RATE, MAX_RATE = 8000, 48000
EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


class AudioError(ValueError):
    """A file that cannot be used as a clip. str() names the file and what is wrong with it."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """What the file holds before conversion."""

    sample_rate: int
    channels: int
    frames: int
    format: str      # e.g. WAV, FLAC, OGG, MP3
    subtype: str     # e.g. PCM_16, PCM_24, FLOAT, VORBIS

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def _wav_data_truncated(data: bytes) -> str | None:
    """If `data` is a RIFF/WAVE file whose data chunk claims more bytes than the file holds, say so."""
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        return None
    fmt = "<I" if data[:4] == b"RIFF" else ">I"
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos:pos + 4]
        (size,) = struct.unpack(fmt, data[pos + 4:pos + 8])
        if chunk_id == b"data":
            # Writers that stream to a pipe cannot know the length and put a placeholder: 0, 0xFFFFFFFF
            # (also RF64), or a value near 2 GiB (espeak-ng --stdout writes 0x7FFFF000). Nothing to compare.
            if size == 0 or size >= 0x7FFF0000:
                return None
            have = len(data) - (pos + 8)
            if have < size:
                return f"truncated WAV: header promises {size} bytes of audio, file holds {have}"
            return None
        pos += 8 + size + (size & 1)  # chunks are word aligned
    return None


def _decode(path, data: bytes) -> tuple[np.ndarray, AudioInfo]:
    """bytes -> float64 (frames, channels) in [-1, 1] and the file's info; raises AudioError."""
    import soundfile as sf

    if len(data) == 0:
        raise AudioError(path, "empty file (0 bytes)")
    problem = _wav_data_truncated(data)
    if problem:
        raise AudioError(path, problem)
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            info = AudioInfo(f.samplerate, f.channels, f.frames, f.format, f.subtype)
            samples = f.read(dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        # libsndfile opens our in-memory copy, so its text starts "Error opening <_io.BytesIO object at
        # 0x...>:", which names nothing a user has; the file's path goes in front instead.
        reason = re.sub(r"(Error opening )?<_io\.BytesIO object[^>]*>:?", "", str(e)).strip() or type(e).__name__
        if "Format not recognised" in reason or "unknown format" in reason.lower():
            reason = "not a recognised audio file (WAV, FLAC, OGG or MP3 expected)"
        raise AudioError(path, f"cannot decode: {reason}") from None
    if 0 < info.frames < (1 << 62) and len(samples) < info.frames:
        raise AudioError(path, f"truncated: header promises {info.frames} frames, only {len(samples)} decode")
    if len(samples) == 0:
        raise AudioError(path, "no audio samples (empty clip)")
    if not MIN_RATE <= info.sample_rate <= MAX_RATE:
        raise AudioError(path, f"sample rate {info.sample_rate} Hz is outside the supported "
                               f"{MIN_RATE}-{MAX_RATE} Hz")
    if not np.all(np.isfinite(samples)):
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise AudioError(path, f"{bad} of {samples.size} samples are NaN or infinite")
    return samples, dataclasses.replace(info, frames=len(samples))


def _resampled_length(frames: int, rate: int) -> int:
    return (frames * SAMPLE_RATE + rate // 2) // rate


def _to_pcm16(path, samples: np.ndarray, info: AudioInfo) -> np.ndarray:
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if info.sample_rate != SAMPLE_RATE:
        import soxr

        want = _resampled_length(len(mono), info.sample_rate)
        mono = soxr.resample(mono, info.sample_rate, SAMPLE_RATE, quality="VHQ")
        # Pin the length: soxr's rounding is an implementation detail, ours is a contract.
        if len(mono) > want:
            mono = mono[:want]
        elif len(mono) < want:
            mono = np.concatenate([mono, np.zeros(want - len(mono))])
    if len(mono) < MIN_SAMPLES:
        raise AudioError(path, f"too short: {len(mono)} samples at 16 kHz ({len(mono) / 16:.1f} ms); "
                               f"at least {MIN_SAMPLES} ({MIN_SAMPLES / 16:.0f} ms) are needed")
    # Scale by 32768 so 16-bit input at 16 kHz comes back bit-exact; float input above 1.0 clips.
    return np.clip(np.rint(mono * 32768.0), -32768, 32767).astype(np.int16)


def read_bytes(path) -> bytes:
    try:
        return pathlib.Path(path).read_bytes()
    except FileNotFoundError:
        raise AudioError(path, "file not found") from None
    except IsADirectoryError:
        raise AudioError(path, "is a folder, not an audio file") from None
    except OSError as e:
        raise AudioError(path, f"cannot read: {e.strerror or e}") from None


def inspect_audio(path: str | os.PathLike) -> AudioInfo:
    """Decode the whole file and validate it (not only the header); no resampling."""
    _, info = _decode(path, read_bytes(path))
    return info


def decode_pcm16(path, data: bytes) -> tuple[np.ndarray, AudioInfo]:
    """Bytes already read (e.g. to hash them) -> 16 kHz mono int16 and the source's info."""
    samples, info = _decode(path, data)
    return _to_pcm16(path, samples, info), info


def load_audio(path: str | os.PathLike, expected_sha256: str | None = None) -> np.ndarray:
    """Any supported file -> 1-D int16 at 16 kHz, mono (channels averaged).

    With `expected_sha256`, the bytes are checked against it first: a file changed since it was
    labelled is not the clip a person verified. Raises AudioError naming the file on any problem."""
    data = read_bytes(path)
    if expected_sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256.lower():
            raise AudioError(path, f"sha256 mismatch: labels.csv has {expected_sha256[:12]}..., file is "
                                   f"{actual[:12]}... (the file changed after it was labelled)")
    return decode_pcm16(path, data)[0]


def write_wav(path: str | os.PathLike, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """int16 mono -> 16-bit PCM WAV (used by import, demo and tests)."""
    import soundfile as sf

    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16:
        raise ValueError(f"write_wav expects int16 samples, got {pcm.dtype}")
    sf.write(str(path), pcm, sample_rate, subtype="PCM_16", format="WAV")


def wav_bytes(pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """int16 mono -> the bytes of a 16-bit WAV file (for audio players in reports)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(pcm, dtype=np.int16), sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()
