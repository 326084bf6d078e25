"""Reading speech audio into the one form the models take: float32 mono at a fixed rate.

Users bring whatever they recorded (44.1 kHz stereo, 24-bit FLAC, an OGG from a
phone), while HuBERT and the beat metrics want 16 kHz mono. Every failure is an
`AudioFileError` naming the file, so the command line and Blender can show it as is.
"""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from semges_core.errors import AudioFileError
from semges_core.fileio import atomic_path

DEFAULT_SAMPLE_RATE = 16000
MIN_AUDIO_SECONDS = 0.1  # shorter clips hold less than two frames of the models' 15 fps

# soundfile raises its own classes for libsndfile failures, but a few problems
# (bad headers on some formats, I/O errors) surface as plain RuntimeError/OSError.
_SOUNDFILE_ERRORS = (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError, EOFError)


def _check_file(path: Path) -> None:
    """Give a clearer message than libsndfile's for the two commonest mistakes."""
    if not path.exists():
        raise AudioFileError(path, "no such file")
    if path.is_dir():
        raise AudioFileError(path, "is a directory, expected an audio file")
    if path.stat().st_size == 0:
        raise AudioFileError(path, "is empty (0 bytes)")


def _check_rate(sample_rate: int) -> int:
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    return int(sample_rate)


def _reason(e: BaseException, path: Path) -> str:
    """libsndfile's own words, without soundfile's repetition of the file name."""
    text = str(e).strip() or type(e).__name__
    return text.replace(f"Error opening {str(path)!r}: ", "")


def _wav_data_shortfall(path: Path) -> tuple[int, int] | None:
    """(promised, present) data bytes when a RIFF WAV's data chunk runs past the file end.

    libsndfile silently reads whatever is left of a cut-off WAV, so a download or copy
    that stopped half-way would otherwise pass as a shorter recording.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk = f.read(8)
            chunk_size = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                # Streaming writers leave 0 or a huge placeholder when the length was unknown.
                if chunk_size == 0 or chunk_size >= 0x7FFFF000:
                    return None
                present = size - (offset + 8)
                return (chunk_size, present) if present < chunk_size else None
            offset += 8 + chunk_size + (chunk_size & 1)
    return None


def _open(path: Path) -> sf.SoundFile:
    """Open for reading, turning every way a file can fail to be audio into AudioFileError."""
    _check_file(path)
    try:
        snd = sf.SoundFile(str(path))
    except _SOUNDFILE_ERRORS as e:
        raise AudioFileError(path, f"not a readable audio file ({_reason(e, path)})") from e
    try:
        if snd.frames <= 0 or snd.samplerate <= 0:
            raise AudioFileError(path, "contains no audio samples")
        if snd.format in ("WAV", "WAVEX"):
            shortfall = _wav_data_shortfall(path)
            if shortfall is not None:
                promised, present = shortfall
                raise AudioFileError(
                    path,
                    f"truncated: the header promises {promised} bytes of samples, the file holds {present}",
                )
    except BaseException:
        snd.close()
        raise
    return snd


def audio_duration(path: str | Path) -> float:
    """Length in seconds from the header alone, so indexing a dataset stays cheap."""
    path = Path(path)
    with _open(path) as snd:
        return snd.frames / snd.samplerate


def load_audio(path: str | Path, sample_rate: int = DEFAULT_SAMPLE_RATE, min_seconds: float = 0.0) -> np.ndarray:
    """Decode any format libsndfile knows, average the channels and resample exactly.

    Returns float32 samples in [-1, 1], shape (n,). Polyphase resampling with the
    reduced ratio (44100 -> 16000 is 160/441) keeps the duration to within a sample
    and needs no extra dependency. A recording shorter than `min_seconds` is an error
    (generation passes MIN_AUDIO_SECONDS).
    """
    path = Path(path)
    sample_rate = _check_rate(sample_rate)
    with _open(path) as snd:
        rate_in = int(snd.samplerate)
        if snd.frames < min_seconds * rate_in:
            raise AudioFileError(path, f"is {snd.frames / rate_in:.3f} s long; at least {min_seconds:g} s of speech "
                                       "is needed")
        try:
            data = snd.read(dtype="float32", always_2d=True)  # (n, channels)
        except _SOUNDFILE_ERRORS as e:
            raise AudioFileError(
                path, f"cannot decode the audio, the file may be truncated or corrupt ({_reason(e, path)})"
            ) from e
    if data.shape[0] == 0:
        raise AudioFileError(path, "contains no audio samples")
    if not np.all(np.isfinite(data)):
        raise AudioFileError(path, "contains NaN or infinite samples")

    mono = data.mean(axis=1, dtype=np.float64)  # (n,)
    if rate_in != sample_rate:
        g = gcd(rate_in, sample_rate)
        mono = resample_poly(mono, sample_rate // g, rate_in // g)
    # Float files may exceed full scale and the resampling filter can overshoot a little.
    return np.clip(mono, -1.0, 1.0).astype(np.float32)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM WAV (what BEAT ships), replacing `path` only once complete.

    `samples` is float in [-1, 1] (clipped), shape (n,) or (n, channels).
    """
    sample_rate = _check_rate(sample_rate)
    data = np.asarray(samples)
    if data.ndim not in (1, 2):
        raise ValueError(f"samples must have shape (n,) or (n, channels), got {data.shape}")
    if not np.issubdtype(data.dtype, np.floating):
        raise ValueError(f"samples must be floating point in [-1, 1], got dtype {data.dtype}")
    if not np.all(np.isfinite(data)):
        raise ValueError("samples contain NaN or infinite values")
    data = np.clip(data, -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, sample_rate, subtype="PCM_16", format="WAV")
