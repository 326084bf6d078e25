"""load_audio / audio_duration / write_wav on real files: espeak-ng speech and synthesized sines.

Every reading test runs twice: through soundfile, and through the module's own WAV
reader, as in a Python without soundfile (Blender's), where other formats are refused.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import semges_core.speech.audio as audio
from semges_core.speech.audio import audio_duration, load_audio, resample_poly, write_wav
from semges_core.errors import AudioFileError

sf = pytest.importorskip("soundfile", reason="the test files are written with soundfile")

SINE_HZ = 1000.0


def _sine(rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return amplitude * np.sin(2 * np.pi * SINE_HZ * t)


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


@pytest.fixture(params=["soundfile", "wav-reader"])
def reader(request, monkeypatch) -> str:
    """Which decoder load_audio uses: soundfile, or the numpy WAV reader used without it."""
    if request.param == "wav-reader":
        monkeypatch.setattr(audio, "sf", None)
    return request.param


def _refused_without_soundfile(path: Path, fmt: str) -> None:
    with pytest.raises(AudioFileError) as err:
        load_audio(path)
    assert err.value.path == path
    assert f"{path}: is {fmt}" in str(err.value) and "no soundfile" in str(err.value)


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


def test_espeak_speech_is_resampled_to_16k_mono(speech_wav: Path, reader: str) -> None:
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
    tmp_path: Path, fmt: str, subtype: str, rate: int, channels: int, reader: str
) -> None:
    path = tmp_path / f"sine.{fmt.lower()}"
    x = _write_sine(path, fmt, subtype, rate, channels)
    if reader == "wav-reader" and fmt != "WAV":
        return _refused_without_soundfile(path, "FLAC" if fmt == "FLAC" else "Ogg")
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == pytest.approx(len(x) * 16000 / rate, abs=1)
    assert audio_duration(path) == pytest.approx(1.0, abs=2e-3)
    assert _peak_hz(y, 16000) == pytest.approx(SINE_HZ, abs=1.0)
    rms = np.sqrt(np.mean(y[1000:-1000] ** 2))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.03)  # 8-bit and Vorbis are lossy, hence 3 %


def test_channels_are_averaged(tmp_path: Path, reader: str) -> None:
    x = _sine(16000)
    sf.write(str(tmp_path / "lr.wav"), np.stack([x, np.zeros_like(x)], axis=1), 16000, subtype="FLOAT")
    y = load_audio(tmp_path / "lr.wav")
    np.testing.assert_allclose(y, x / 2, atol=1e-6)


def test_16k_input_is_returned_unchanged(tmp_path: Path, reader: str) -> None:
    ints = (np.arange(-1600, 1600, dtype=np.int16) * 10).astype(np.int16)
    sf.write(str(tmp_path / "a.wav"), ints, 16000, subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(tmp_path / "a.wav"), ints.astype(np.float32) / 32768)


def test_other_target_rate_and_clipping_of_float_files(tmp_path: Path, reader: str) -> None:
    sf.write(str(tmp_path / "loud.wav"), 3 * _sine(44100), 44100, subtype="FLOAT")
    y = load_audio(tmp_path / "loud.wav", sample_rate=8000)
    assert len(y) == 8000
    assert np.abs(y).max() <= 1.0 and np.abs(y).max() > 0.99


def test_mp3_when_libsndfile_supports_it(tmp_path: Path, reader: str) -> None:
    path = tmp_path / "a.mp3"
    try:
        sf.write(str(path), _sine(44100), 44100, format="MP3", subtype="MPEG_LAYER_III")
    except Exception:
        pytest.skip("this libsndfile cannot write MP3")
    if reader == "wav-reader":
        return _refused_without_soundfile(path, "MP3")
    y = load_audio(path)
    assert _peak_hz(y, 16000) == pytest.approx(SINE_HZ, abs=1.0)


def test_write_wav_round_trip_is_16_bit_and_atomic(tmp_path: Path, reader: str) -> None:
    path = tmp_path / "sub" / "out.wav"
    x = np.clip(_sine(16000, 0.25, amplitude=1.2), -1, 1).astype(np.float32)
    write_wav(path, x * 1.1, 16000)  # over full scale: must be clipped, not wrapped
    info = sf.info(str(path))
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 16000, 1)
    np.testing.assert_allclose(load_audio(path), np.clip(x * 1.1, -1, 1), atol=1 / 32767 + 1e-6)
    assert np.abs(load_audio(path)).max() >= 32767 / 32768  # full scale, not wrapped
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
def test_bad_files_raise_audio_file_error_naming_the_file(
    tmp_path: Path, case: str, words: str, reader: str
) -> None:
    path = _bad_files(tmp_path)[case]
    if reader == "wav-reader" and case == "cut_flac":
        words = "is FLAC; this Python has no soundfile, convert it to WAV or install soundfile"
    with pytest.raises(AudioFileError) as err:
        load_audio(path)
    assert err.value.path == path
    assert str(path) in str(err.value) and words in str(err.value)
    if case != "cut_flac" or reader == "wav-reader":  # libsndfile finds broken FLAC frames only when decoding
        with pytest.raises(AudioFileError):
            audio_duration(path)


def test_bad_sample_rate_is_a_value_error(speech_wav: Path) -> None:
    with pytest.raises(ValueError):
        load_audio(speech_wav, sample_rate=0)


def test_nan_and_infinite_samples_are_refused(tmp_path: Path, reader: str) -> None:
    x = _sine(16000)
    x[100], x[200] = np.nan, np.inf
    sf.write(str(tmp_path / "nan.wav"), x, 16000, subtype="FLOAT")
    with pytest.raises(AudioFileError, match="contains NaN or infinite samples") as err:
        load_audio(tmp_path / "nan.wav")
    assert err.value.path == tmp_path / "nan.wav"


def test_too_short_for_min_seconds(tmp_path: Path, reader: str) -> None:
    sf.write(str(tmp_path / "blip.wav"), _sine(16000, 0.05), 16000, subtype="PCM_16")
    with pytest.raises(AudioFileError, match=r"is 0\.050 s long; at least 0\.1 s"):
        load_audio(tmp_path / "blip.wav", min_seconds=0.1)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
@pytest.mark.parametrize("fmt", ["WAV", "WAVEX"])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_wav_reader_decodes_exactly_as_soundfile(tmp_path: Path, subtype: str, fmt: str, channels: int) -> None:
    """The same float32 samples, bit for bit, from plain and WAVE_FORMAT_EXTENSIBLE headers."""
    rng = np.random.default_rng(channels)
    data = np.clip(rng.normal(0, 0.4, (3001, channels)), -1, 1)
    data[:4, 0] = [1.0, -1.0, 0.0, 2**-20]
    path = tmp_path / "x.wav"
    sf.write(str(path), data, 22050, format=fmt, subtype=subtype)
    expected, rate = sf.read(str(path), dtype="float32", always_2d=True)
    wav = audio._WavFile(path)
    assert (wav.frames, wav.samplerate, wav.layout.channels) == (len(expected), rate, channels)
    np.testing.assert_array_equal(wav.read_float32(), expected)


def test_wav_reader_skips_other_chunks_and_reads_streamed_headers(tmp_path: Path) -> None:
    """A LIST chunk before the samples, and a data size left at 0 by a writer that could not seek back."""
    pcm = (np.arange(-800, 800) * 20).astype("<i2")
    fmt = (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (16000).to_bytes(4, "little")
    fmt += (32000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    info = b"INFOISFT" + (5).to_bytes(4, "little") + b"test\x00\x00"  # odd size: a pad byte follows
    for data_size in (pcm.nbytes, 0, 0xFFFFFFFF):
        body = b"WAVE" + b"fmt " + (16).to_bytes(4, "little") + fmt + b"LIST" + len(info).to_bytes(4, "little")
        body += info + b"data" + data_size.to_bytes(4, "little") + pcm.tobytes()
        path = tmp_path / f"streamed{data_size}.wav"
        path.write_bytes(b"RIFF" + (len(body)).to_bytes(4, "little") + body)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(audio, "sf", None)
            np.testing.assert_array_equal(load_audio(path), pcm.astype(np.float32) / 32768)
            assert audio_duration(path) == pytest.approx(0.1)


@pytest.mark.parametrize("subtype, name", [("ULAW", "µ-law"), ("ALAW", "A-law"), ("IMA_ADPCM", "IMA ADPCM")])
def test_wav_reader_names_the_codecs_it_cannot_decode(tmp_path: Path, subtype: str, name: str, reader: str) -> None:
    path = tmp_path / "coded.wav"
    sf.write(str(path), _sine(16000), 16000, format="WAV", subtype=subtype)
    if reader == "soundfile":
        assert _peak_hz(load_audio(path), 16000) == pytest.approx(SINE_HZ, abs=1.0)
        return
    with pytest.raises(AudioFileError, match=f"is a WAV file in {name}; this Python has no soundfile"):
        load_audio(path)


@pytest.mark.parametrize("fmt, subtype, name", [("AIFF", "PCM_16", "AIFF"), ("RF64", "PCM_16", "RF64")])
def test_wav_reader_names_other_containers(tmp_path: Path, fmt: str, subtype: str, name: str) -> None:
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(str(path), _sine(16000), 16000, format=fmt, subtype=subtype)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(audio, "sf", None)
        _refused_without_soundfile(path, name)


def test_binary_junk_is_not_called_an_mp3(tmp_path: Path, reader: str) -> None:
    path = tmp_path / "junk.wav"
    path.write_bytes(bytes([0xFF, 0xFF, 0xFF, 0xFF]) + bytes(range(256)) * 4)
    with pytest.raises(AudioFileError, match="not a readable audio file"):
        load_audio(path)


# ----------------------------------------------------------------------------- resampling

RATIOS = [(16000, 44100), (16000, 48000), (16000, 22050), (16000, 8000), (8000, 44100), (44100, 16000),
          (48000, 44100), (16000, 44056), (3, 7), (5, 1)]


@pytest.mark.parametrize("up, down", RATIOS)
@pytest.mark.parametrize("n", [1, 2, 7, 441, 5000])
def test_resample_poly_matches_scipy(up: int, down: int, n: int) -> None:
    signal = pytest.importorskip("scipy.signal")
    x = np.random.default_rng(n).standard_normal(n)
    g = np.gcd(up, down)
    expected = signal.resample_poly(x, up // g, down // g)
    y = resample_poly(x, up, down)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)


def test_resample_poly_without_scipy_keeps_a_sine_and_removes_aliases() -> None:
    """What scipy's filter does, checked from first principles: unit gain, the band edge cut."""
    rate = 44100
    t = np.arange(rate) / rate
    y = resample_poly(np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 12000 * t), 16000, rate)
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y[2000:-2000] * np.hanning(12000))) / (12000 / 4)  # a unit sine reads 1
    freqs = np.fft.rfftfreq(12000, 1 / 16000)
    assert spectrum[np.argmin(np.abs(freqs - 1000))] == pytest.approx(1.0, abs=0.01)
    assert spectrum[np.argmin(np.abs(freqs - 4000))] < 1e-3  # 12 kHz would alias to 4 kHz


def test_resample_poly_rejects_bad_arguments() -> None:
    for up, down in [(0, 1), (1, -2), (1.5, 2), (True, 2)]:
        with pytest.raises(ValueError):
            resample_poly(np.zeros(10), up, down)
    with pytest.raises(ValueError):
        resample_poly(np.zeros((10, 2)), 1, 2)
    np.testing.assert_array_equal(resample_poly(np.arange(5.0), 3, 3), np.arange(5.0))
