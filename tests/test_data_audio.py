"""Loading: every format and rate to 16 kHz mono int16, deterministically; broken files are refused
with an error that names them."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from bowlsense.data import AudioError, inspect_audio, load_audio

REAL = {
    # file under ../shared/data/audio: (rate, channels) as published
    "speech/fsdd/0_george_0.wav": (8000, 1),
    "kitchen20/0-158737-A-0.wav": (44100, 1),
    "speech/vctk/p286_011.wav": (48000, 1),
    "noise/audiomentations/hens.ogg": (44100, 2),
    "noise/audiomentations/sheep.ogg": (44100, 1),
    "speech/speech_commands/yes_1000ms.wav": (16000, 1),
}


def expected_length(frames: int, rate: int) -> int:
    # duration preserved, rounded to the nearest 16 kHz sample
    return int(round(frames * 16000 / rate))


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_formats_load_to_expected_length_twice_identically(shared_data_dir, name):
    path = shared_data_dir / "audio" / name
    info = sf.info(str(path))
    assert (info.samplerate, info.channels) == REAL[name]
    a = load_audio(path)
    b = load_audio(path)
    assert a.dtype == np.int16 and a.ndim == 1
    assert len(a) == expected_length(info.frames, info.samplerate)
    assert a.tobytes() == b.tobytes()
    assert np.abs(a.astype(np.int32)).max() > 100  # real sound came through, not silence


def test_same_bytes_in_a_fresh_process(shared_data_dir):
    paths = [str(shared_data_dir / "audio" / n) for n in sorted(REAL)]
    here = [hashlib.sha256(load_audio(p).tobytes()).hexdigest() for p in paths]
    code = ("import sys, json, hashlib\nfrom bowlsense.data import load_audio\n"
            "print(json.dumps([hashlib.sha256(load_audio(p).tobytes()).hexdigest() for p in sys.argv[1:]]))")
    out = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == here


def test_16k_int16_is_bit_exact(shared_data_dir):
    path = shared_data_dir / "audio/speech/speech_commands/yes_1000ms.wav"
    raw, rate = sf.read(str(path), dtype="int16")
    assert rate == 16000
    assert np.array_equal(load_audio(path), raw)


def test_stereo_is_averaged(tmp_path):
    t = np.arange(16000) / 16000
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    right = np.zeros_like(left)
    sf.write(str(tmp_path / "st.wav"), np.stack([left, right], axis=1), 16000, subtype="PCM_24")
    pcm = load_audio(tmp_path / "st.wav").astype(np.float64) / 32768
    assert np.max(np.abs(pcm - left / 2)) < 2e-4  # 24-bit input, int16 output: rounding only


FORMATS = [("WAV", "PCM_16", ".wav"), ("WAV", "PCM_24", ".wav"), ("WAV", "PCM_32", ".wav"),
           ("WAV", "FLOAT", ".wav"), ("WAV", "DOUBLE", ".wav"), ("FLAC", "PCM_16", ".flac"),
           ("OGG", "VORBIS", ".ogg"), ("MP3", "MPEG_LAYER_III", ".mp3")]


@pytest.mark.parametrize("fmt,subtype,ext", FORMATS)
@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_format_matrix_tone_survives(tmp_path, fmt, subtype, ext, rate, channels):
    n = rate  # one second
    t = np.arange(n) / rate
    tone = 0.3 * np.sin(2 * np.pi * 1000 * t)
    data = np.stack([tone] * channels, axis=1) if channels == 2 else tone
    path = tmp_path / f"tone{ext}"
    sf.write(str(path), data, rate, format=fmt, subtype=subtype)
    pcm = load_audio(path)
    frames = sf.info(str(path)).frames
    assert len(pcm) == expected_length(frames, rate)
    x = pcm.astype(np.float64) / 32768
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    peak_hz = np.argmax(spectrum) * 16000 / len(x)
    assert abs(peak_hz - 1000) < 5
    mid = x[len(x) // 4: 3 * len(x) // 4]
    rms = np.sqrt(np.mean(mid ** 2))
    assert abs(rms - 0.3 / np.sqrt(2)) < 0.02
    assert load_audio(path).tobytes() == pcm.tobytes()


def test_resampler_filters_aliases(tmp_path):
    """A 12 kHz tone at 48 kHz is above the 8 kHz Nyquist of 16 kHz: it must vanish, not fold to 4 kHz
    as naive decimation would make it."""
    t = np.arange(48000) / 48000
    sf.write(str(tmp_path / "hi.wav"), 0.5 * np.sin(2 * np.pi * 12000 * t), 48000, subtype="FLOAT")
    pcm = load_audio(tmp_path / "hi.wav").astype(np.float64)
    assert np.sqrt(np.mean(pcm[1000:-1000] ** 2)) < 2.0  # from ~11585 LSB RMS to rounding noise


# -- broken inputs ------------------------------------------------------------------------------

def _truncated(tmp_path, shared_data_dir):
    data = (shared_data_dir / "audio/speech/fsdd/0_george_0.wav").read_bytes()
    p = tmp_path / "truncated.wav"
    p.write_bytes(data[: len(data) // 2])
    return p


def _text(tmp_path, _):
    p = tmp_path / "notes.wav"
    p.write_text("this is not audio\n")
    return p


def _empty(tmp_path, _):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    return p


def _nan(tmp_path, _):
    p = tmp_path / "nan.wav"
    x = np.full(16000, np.nan, dtype=np.float32)
    sf.write(str(p), x, 16000, subtype="FLOAT")
    return p


def _some_inf(tmp_path, _):
    p = tmp_path / "inf.wav"
    x = np.zeros(16000, dtype=np.float32)
    x[1234] = np.inf
    sf.write(str(p), x, 16000, subtype="FLOAT")
    return p


def _one_sample(tmp_path, _):
    p = tmp_path / "one.wav"
    sf.write(str(p), np.array([1000], dtype=np.int16), 16000, subtype="PCM_16")
    return p


def _header_only(tmp_path, _):
    p = tmp_path / "header_only.wav"
    sf.write(str(p), np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    return p


def _short(tmp_path, _):
    p = tmp_path / "short.wav"
    sf.write(str(p), np.ones(100, dtype=np.int16), 8000, subtype="PCM_16")  # 200 samples at 16 kHz
    return p


def _rate_96k(tmp_path, _):
    p = tmp_path / "hires.wav"
    sf.write(str(p), np.zeros(96000, dtype=np.int16), 96000, subtype="PCM_16")
    return p


def _folder(tmp_path, _):
    p = tmp_path / "folder.wav"
    p.mkdir()
    return p


def _missing(tmp_path, _):
    return tmp_path / "missing.wav"


def _no_data_chunk(tmp_path, _):
    p = tmp_path / "no_data.wav"
    p.write_bytes(b"RIFF\x04\x00\x00\x00WAVE")  # a WAV header and nothing after it
    return p


BROKEN = {
    _truncated: "truncated", _text: "not a recognised audio file", _empty: "empty",
    _nan: "NaN", _some_inf: "NaN or infinite", _one_sample: "too short", _header_only: "no audio samples",
    _short: "too short", _rate_96k: "sample rate 96000", _folder: "folder", _missing: "not found",
    _no_data_chunk: "No 'data' chunk",
}


@pytest.mark.parametrize("make", list(BROKEN), ids=lambda f: f.__name__.strip("_"))
def test_broken_files_raise_audio_error_naming_the_file(tmp_path, shared_data_dir, make):
    path = make(tmp_path, shared_data_dir)
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert str(path) in str(err.value)
    assert BROKEN[make] in str(err.value)
    assert "object at 0x" not in str(err.value)  # libsndfile's text names our in-memory buffer: not for users
    assert isinstance(err.value, ValueError)


def test_truncated_flac_is_refused(tmp_path):
    p = tmp_path / "cut.flac"
    rng = np.random.default_rng(0)
    sf.write(str(p), (rng.standard_normal(32000) * 3000).astype(np.int16), 16000, format="FLAC")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="cut.flac"):
        load_audio(p)


def test_sha_mismatch_is_refused(shared_data_dir):
    path = shared_data_dir / "audio/speech/fsdd/0_george_0.wav"
    with pytest.raises(AudioError, match="sha256 mismatch"):
        load_audio(path, expected_sha256="0" * 64)


def test_inspect_reports_source_format(shared_data_dir):
    info = inspect_audio(shared_data_dir / "rir/audiomentations_rir48000.wav")
    assert (info.sample_rate, info.channels, info.subtype) == (48000, 1, "PCM_24")
