"""load_audio / audio_duration / write_wav on real files: espeak-ng speech and synthesized sines."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from semges_core.audio import audio_duration, load_audio, write_wav
from semges_core.errors import AudioFileError

SINE_HZ = 1000.0


def _sine(rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return amplitude * np.sin(2 * np.pi * SINE_HZ * t)


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(path), "Gestures follow the meaning of what we say."],
        check=True,
        capture_output=True,
    )
    return path


def test_espeak_speech_is_resampled_to_16k_mono(speech_wav: Path) -> None:
    info = sf.info(str(speech_wav))
    assert info.samplerate != 16000  # espeak-ng speaks at 22.05 kHz, so resampling is exercised
    y = load_audio(speech_wav)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) / 16000 - audio_duration(speech_wav)) < 1 / 16000 + 1e-9
    assert audio_duration(speech_wav) == pytest.approx(info.frames / info.samplerate)
    assert np.abs(y).max() <= 1.0
    assert np.sqrt(np.mean(y**2)) > 0.01  # it is speech, not silence


WAV_CASES = [
    (rate, subtype, channels)
    for rate in (44100, 48000, 22050)
    for subtype in ("PCM_U8", "PCM_16", "PCM_24")
    for channels in (1, 2)
]
OTHER_CASES = [("FLAC", "PCM_16", rate, 2) for rate in (44100, 48000, 22050)]
OTHER_CASES += [("FLAC", "PCM_24", 48000, 1), ("OGG", "VORBIS", 44100, 1), ("OGG", "VORBIS", 22050, 2)]


def _write_sine(path: Path, fmt: str, subtype: str, rate: int, channels: int) -> np.ndarray:
    x = _sine(rate)
    data = np.stack([x] * channels, axis=1) if channels > 1 else x
    sf.write(str(path), data, rate, format=fmt, subtype=subtype)
    return x


@pytest.mark.parametrize(
    "fmt, subtype, rate, channels",
    [("WAV", s, r, c) for r, s, c in WAV_CASES] + OTHER_CASES,
)
def test_sine_keeps_duration_frequency_and_level(
    tmp_path: Path, fmt: str, subtype: str, rate: int, channels: int
) -> None:
    path = tmp_path / f"sine.{fmt.lower()}"
    x = _write_sine(path, fmt, subtype, rate, channels)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == pytest.approx(len(x) * 16000 / rate, abs=1)
    assert audio_duration(path) == pytest.approx(1.0, abs=2e-3)
    assert _peak_hz(y, 16000) == pytest.approx(SINE_HZ, abs=1.0)
    rms = np.sqrt(np.mean(y[1000:-1000] ** 2))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.03)  # 8-bit and Vorbis are lossy, hence 3 %


def test_channels_are_averaged(tmp_path: Path) -> None:
    x = _sine(16000)
    sf.write(str(tmp_path / "lr.wav"), np.stack([x, np.zeros_like(x)], axis=1), 16000, subtype="FLOAT")
    y = load_audio(tmp_path / "lr.wav")
    np.testing.assert_allclose(y, x / 2, atol=1e-6)


def test_16k_input_is_returned_unchanged(tmp_path: Path) -> None:
    ints = (np.arange(-1600, 1600, dtype=np.int16) * 10).astype(np.int16)
    sf.write(str(tmp_path / "a.wav"), ints, 16000, subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(tmp_path / "a.wav"), ints.astype(np.float32) / 32768)


def test_other_target_rate_and_clipping_of_float_files(tmp_path: Path) -> None:
    sf.write(str(tmp_path / "loud.wav"), 3 * _sine(44100), 44100, subtype="FLOAT")
    y = load_audio(tmp_path / "loud.wav", sample_rate=8000)
    assert len(y) == 8000
    assert np.abs(y).max() <= 1.0 and np.abs(y).max() > 0.99


def test_mp3_when_libsndfile_supports_it(tmp_path: Path) -> None:
    path = tmp_path / "a.mp3"
    try:
        sf.write(str(path), _sine(44100), 44100, format="MP3", subtype="MPEG_LAYER_III")
    except Exception:
        pytest.skip("this libsndfile cannot write MP3")
    y = load_audio(path)
    assert _peak_hz(y, 16000) == pytest.approx(SINE_HZ, abs=1.0)


def test_write_wav_round_trip_is_16_bit_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.wav"
    x = np.clip(_sine(16000, 0.25, amplitude=1.2), -1, 1).astype(np.float32)
    write_wav(path, x * 1.1, 16000)  # over full scale: must be clipped, not wrapped
    info = sf.info(str(path))
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 16000, 1)
    np.testing.assert_allclose(load_audio(path), np.clip(x * 1.1, -1, 1), atol=1 / 32767 + 1e-6)
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.wav"]  # no temporary left behind

    write_wav(path, np.stack([x, -x], axis=1), 48000)  # replaces the earlier file
    assert sf.info(str(path)).channels == 2
    with pytest.raises(ValueError):
        write_wav(path, np.array([0.0, np.nan]), 16000)
    with pytest.raises(ValueError):
        write_wav(path, x, 0)


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    sf.write(str(tmp_path / "good.wav"), _sine(44100), 44100, subtype="PCM_16")
    good = (tmp_path / "good.wav").read_bytes()
    sf.write(str(tmp_path / "good.flac"), _sine(44100), 44100, subtype="PCM_16")
    flac = (tmp_path / "good.flac").read_bytes()
    files = {
        "missing": tmp_path / "missing.wav",
        "directory": tmp_path / "adir.wav",
        "empty": tmp_path / "empty.wav",
        "text": tmp_path / "notes.wav",
        "cut_data": tmp_path / "cut_data.wav",
        "cut_header": tmp_path / "cut_header.wav",
        "no_samples": tmp_path / "no_samples.wav",
        "cut_flac": tmp_path / "cut.flac",
    }
    files["directory"].mkdir()
    files["empty"].write_bytes(b"")
    files["text"].write_text("This is a transcript, not audio.\n" * 20)
    files["cut_data"].write_bytes(good[: len(good) // 2])
    files["cut_header"].write_bytes(good[:30])
    sf.write(str(files["no_samples"]), np.zeros(0), 16000, subtype="PCM_16")  # a header and nothing else
    files["cut_flac"].write_bytes(flac[: len(flac) // 2])
    return files


@pytest.mark.parametrize(
    "case, words",
    [
        ("missing", "no such file"),
        ("directory", "directory"),
        ("empty", "empty"),
        ("text", "not a readable audio file"),
        ("cut_data", "truncated"),
        ("cut_header", "not a readable audio file"),
        ("no_samples", "no audio samples"),
        ("cut_flac", "truncated or corrupt"),
    ],
)
def test_bad_files_raise_audio_file_error_naming_the_file(tmp_path: Path, case: str, words: str) -> None:
    path = _bad_files(tmp_path)[case]
    with pytest.raises(AudioFileError) as err:
        load_audio(path)
    assert err.value.path == path
    assert str(path) in str(err.value) and words in str(err.value)
    if case != "cut_flac":  # only decoding finds the broken FLAC frames; the header is fine
        with pytest.raises(AudioFileError):
            audio_duration(path)


def test_bad_sample_rate_is_a_value_error(speech_wav: Path) -> None:
    with pytest.raises(ValueError):
        load_audio(speech_wav, sample_rate=0)
