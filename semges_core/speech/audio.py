"""Reading speech audio into the one form the models take: float32 mono at a fixed rate.

Users bring whatever they recorded (44.1 kHz stereo, 24-bit FLAC, an OGG from a
phone), while HuBERT and the beat metrics want 16 kHz mono. Every failure is an
`AudioFileError` naming the file, so the command line and Blender can show it as is.

Only numpy is required. With `soundfile` installed every format libsndfile knows is
read; without it (Blender's own Python) a small RIFF reader here reads WAV files
(integer PCM of 8 to 32 bits, 32/64-bit float, plain or WAVE_FORMAT_EXTENSIBLE) and
other formats are refused with a message saying so. Resampling is a numpy port of
scipy's `resample_poly`, so neither scipy nor soundfile is needed at run time.
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from semges_core.errors import AudioFileError
from semges_core.fileio import atomic_path

try:
    import soundfile as sf
except (ImportError, OSError):  # not installed, or installed without its libsndfile
    sf = None

DEFAULT_SAMPLE_RATE = 16000
MIN_AUDIO_SECONDS = 0.1  # shorter clips hold less than two frames of the models' 15 fps

# soundfile raises its own classes for libsndfile failures, but a few problems
# (bad headers on some formats, I/O errors) surface as plain RuntimeError/OSError,
# as do I/O errors of the WAV reader.
_READ_ERRORS = (RuntimeError, OSError, ValueError, TypeError, EOFError)
_DECODE_ERRORS = _READ_ERRORS if sf is None else (sf.SoundFileError, *_READ_ERRORS)


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
                if _is_placeholder(chunk_size):
                    return None
                present = size - (offset + 8)
                return (chunk_size, present) if present < chunk_size else None
            offset += 8 + chunk_size + (chunk_size & 1)
    return None


def _is_placeholder(data_size: int) -> bool:
    """Streaming writers leave 0 or a huge placeholder when the length was unknown."""
    return data_size == 0 or data_size >= 0x7FFFF000


def _check_frames(path: Path, frames: int, rate: int, is_wav: bool) -> None:
    if frames <= 0 or rate <= 0:
        raise AudioFileError(path, "contains no audio samples")
    if is_wav:
        shortfall = _wav_data_shortfall(path)
        if shortfall is not None:
            promised, present = shortfall
            raise AudioFileError(
                path, f"truncated: the header promises {promised} bytes of samples, the file holds {present}"
            )


# ----------------------------------------------------------------------------- WAV without soundfile

_PCM, _FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
# The 14 bytes after the format code in every standard WAVE_FORMAT_EXTENSIBLE SubFormat GUID.
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_CODEC_NAMES = {0x0002: "MS ADPCM", 0x0006: "A-law", 0x0007: "µ-law", 0x0011: "IMA ADPCM",
                0x0031: "GSM 6.10", 0x0055: "MPEG layer 3"}
_NEEDS_SOUNDFILE = "this Python has no soundfile, convert it to WAV or install soundfile"


def _format_name(head: bytes) -> str | None:
    """The audio format a file's first bytes announce, when it is one the WAV reader cannot read."""
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "Ogg (Vorbis or Opus)"
    if head[:3] == b"ID3" or _is_mpeg_frame(head):
        return "MP3"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    if head[:4] in (b"RF64", b"BW64"):
        return "RF64 (64-bit WAV)"
    if head[:4] == b"RIFX":
        return "big-endian WAV (RIFX)"
    if head[:4] == b"riff":
        return "Sony Wave64"
    if head[:4] == b"caff":
        return "Core Audio (CAF)"
    if head[:4] == b".snd":
        return "Sun/NeXT audio (AU)"
    if head[:4] == b"wvpk":
        return "WavPack"
    return None


def _is_mpeg_frame(head: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, then no reserved version, layer, bitrate or rate."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate != 15 and rate != 3


@dataclass(frozen=True)
class _WavLayout:
    """Where a WAV file's samples are and how each is stored."""

    samplerate: int
    channels: int
    codec: int    # _PCM or _FLOAT
    width: int    # bytes per sample
    offset: int   # of the first sample byte
    frames: int


def _read_fmt(path: Path, body: bytes) -> tuple[int, int, int, int]:
    """(codec, channels, samplerate, width) from a fmt chunk, for the codecs decoded here."""
    if len(body) < 16:
        raise AudioFileError(path, "not a readable audio file (the WAV fmt chunk is cut short)")
    codec = int.from_bytes(body[0:2], "little")
    channels = int.from_bytes(body[2:4], "little")
    rate = int.from_bytes(body[4:8], "little")
    block_align = int.from_bytes(body[12:14], "little")
    bits = int.from_bytes(body[14:16], "little")
    if codec == _EXTENSIBLE:
        if len(body) < 40 or body[26:40] != _GUID_TAIL:
            raise AudioFileError(path, f"is a WAVE_FORMAT_EXTENSIBLE file of an unknown sub-format; {_NEEDS_SOUNDFILE}")
        codec = int.from_bytes(body[24:26], "little")
    if channels == 0 or rate == 0:
        raise AudioFileError(path, f"not a readable audio file (the WAV header gives {channels} channels at {rate} Hz)")
    if codec not in (_PCM, _FLOAT):
        name = _CODEC_NAMES.get(codec, f"format 0x{codec:04x}")
        raise AudioFileError(path, f"is a WAV file in {name}; {_NEEDS_SOUNDFILE}")
    # The sample container is what counts: 20-bit samples are stored in 3 bytes, 24-bit ones often in 4.
    width = block_align // channels
    if block_align != width * channels or width not in ((1, 2, 3, 4) if codec == _PCM else (4, 8)):
        kind = "integer" if codec == _PCM else "float"
        raise AudioFileError(
            path, f"is a WAV file of {bits}-bit {kind} samples in {block_align}-byte frames; {_NEEDS_SOUNDFILE}"
        )
    return codec, channels, rate, width


def _read_wav_layout(path: Path) -> _WavLayout:
    """Parse a RIFF WAVE header; AudioFileError for anything else, naming other formats."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            name = _format_name(head)
            if name is not None:
                raise AudioFileError(path, f"is {name}; {_NEEDS_SOUNDFILE}")
            raise AudioFileError(path, "not a readable audio file (not a RIFF WAVE file)")
        fmt, data = None, None
        offset = 12
        while offset + 8 <= size and data is None:
            f.seek(offset)
            chunk = f.read(8)
            chunk_size = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"fmt ":
                fmt = _read_fmt(path, f.read(min(chunk_size, 40)))
            elif chunk[:4] == b"data":
                present = size - (offset + 8)
                data = (offset + 8, present if _is_placeholder(chunk_size) else chunk_size)
            offset += 8 + chunk_size + (chunk_size & 1)
    if fmt is None:
        raise AudioFileError(path, "not a readable audio file (the WAV header has no fmt chunk before the samples)")
    if data is None:
        raise AudioFileError(path, "not a readable audio file (the WAV file has no data chunk)")
    codec, channels, rate, width = fmt
    return _WavLayout(rate, channels, codec, width, data[0], data[1] // (width * channels))


class _WavFile:
    """The part of `soundfile.SoundFile` this module uses, for WAV files, in numpy."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.layout = _read_wav_layout(path)
        self.frames = self.layout.frames
        self.samplerate = self.layout.samplerate

    def read_float32(self) -> np.ndarray:
        """All samples, (frames, channels) float32, scaled as libsndfile scales them."""
        lay = self.layout
        with open(self.path, "rb") as f:
            f.seek(lay.offset)
            raw = np.fromfile(f, dtype=np.uint8, count=lay.frames * lay.channels * lay.width)
        n = len(raw) // (lay.channels * lay.width)  # whole frames only
        raw = raw[: n * lay.channels * lay.width]
        if lay.codec == _FLOAT:
            return raw.view("<f4" if lay.width == 4 else "<f8").astype(np.float32).reshape(n, lay.channels)
        if lay.width == 1:  # 8-bit WAV is unsigned
            samples = raw.astype(np.float32)
            samples -= 128.0
            samples *= np.float32(1 / 128)
        elif lay.width == 3:  # put each 24-bit sample in the top bytes of an int32
            wide = np.zeros((len(raw) // 3, 4), np.uint8)
            wide[:, 1:] = raw.reshape(-1, 3)
            samples = wide.view("<i4").ravel().astype(np.float32)
            samples *= np.float32(2.0**-31)
        else:
            samples = raw.view(f"<i{lay.width}").astype(np.float32)
            samples *= np.float32(2.0 ** (1 - 8 * lay.width))  # full scale is 1.0, as libsndfile reads it
        return samples.reshape(n, lay.channels)

    def close(self) -> None:
        pass  # the file is opened only while reading

    def __enter__(self) -> "_WavFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------- reading


def _open(path: Path) -> "sf.SoundFile | _WavFile":
    """Open for reading, turning every way a file can fail to be audio into AudioFileError."""
    _check_file(path)
    if sf is None:
        try:
            wav = _WavFile(path)
        except OSError as e:  # permissions, a disk error
            raise AudioFileError(path, f"not a readable audio file ({e.strerror or e})") from e
        _check_frames(path, wav.frames, wav.samplerate, is_wav=True)
        return wav
    try:
        snd = sf.SoundFile(str(path))
    except _DECODE_ERRORS as e:
        raise AudioFileError(path, f"not a readable audio file ({_reason(e, path)})") from e
    try:
        _check_frames(path, snd.frames, snd.samplerate, is_wav=snd.format in ("WAV", "WAVEX"))
    except BaseException:
        snd.close()
        raise
    return snd


def _read_all(snd: "sf.SoundFile | _WavFile") -> np.ndarray:
    """(frames, channels) float32."""
    if isinstance(snd, _WavFile):
        return snd.read_float32()
    return snd.read(dtype="float32", always_2d=True)


def audio_duration(path: str | Path) -> float:
    """Length in seconds from the header alone, so indexing a dataset stays cheap."""
    path = Path(path)
    with _open(path) as snd:
        return snd.frames / snd.samplerate


def load_audio(path: str | Path, sample_rate: int = DEFAULT_SAMPLE_RATE, min_seconds: float = 0.0) -> np.ndarray:
    """Decode the file, average the channels and resample exactly.

    Returns float32 samples in [-1, 1], shape (n,). Polyphase resampling with the
    reduced ratio (44100 -> 16000 is 160/441) keeps the duration to within a sample.
    A recording shorter than `min_seconds` is an error (generation passes MIN_AUDIO_SECONDS).
    """
    path = Path(path)
    sample_rate = _check_rate(sample_rate)
    with _open(path) as snd:
        rate_in = int(snd.samplerate)
        if snd.frames < min_seconds * rate_in:
            raise AudioFileError(path, f"is {snd.frames / rate_in:.3f} s long; at least {min_seconds:g} s of speech "
                                       "is needed")
        try:
            data = _read_all(snd)  # (n, channels)
        except _DECODE_ERRORS as e:
            raise AudioFileError(
                path, f"cannot decode the audio, the file may be truncated or corrupt ({_reason(e, path)})"
            ) from e
    if data.shape[0] == 0:
        raise AudioFileError(path, "contains no audio samples")
    if not np.all(np.isfinite(data)):
        raise AudioFileError(path, "contains NaN or infinite samples")

    mono = data.mean(axis=1, dtype=np.float64)  # (n,)
    if rate_in != sample_rate:
        g = math.gcd(rate_in, sample_rate)
        mono = resample_poly(mono, sample_rate // g, rate_in // g)
    # Float files may exceed full scale and the resampling filter can overshoot a little.
    return np.clip(mono, -1.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- resampling

_BLOCK_BYTES = 1 << 23  # input windows copied for one matrix product: bounded memory on hours of audio
_MAX_KERNEL = 1 << 14   # entries of one phase group's matrix: more is mostly multiplying zeros


def _lowpass(up: int, down: int) -> tuple[np.ndarray, int]:
    """scipy's `firwin(2 * half + 1, 1 / max(up, down), window=("kaiser", 5.0))` and `half`."""
    rate = max(up, down)
    half = 10 * rate
    n = 2 * half + 1
    h = np.sinc(np.arange(-half, half + 1) / rate) / rate * np.kaiser(n, 5.0)
    return h / h.sum(), half


def resample_poly(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Resample 1-D `x` by up/down: `scipy.signal.resample_poly(x, up, down)` in numpy.

    Same filter (Kaiser-windowed sinc, beta 5, 20 * max(up, down) + 1 taps), same zero
    padding, same length ceil(len(x) * up / down); results agree with scipy's to about
    1e-15. Output i is sum_k x[k] * h[i * down + half - k * up]: for each of the `up`
    filter phases a handful of taps. The phases of one period of outputs (several periods
    when `down` is small) are laid side by side in a few small dense matrices, so the work
    is matrix products over blocks of input (BLAS), not a Python loop per sample; about
    as fast as scipy's C code (10 minutes of 44.1 kHz in about a second).
    """
    if isinstance(up, bool) or isinstance(down, bool) or int(up) != up or int(down) != down or up < 1 or down < 1:
        raise ValueError(f"up and down must be positive integers, got {up!r} and {down!r}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must have shape (n,), got {x.shape}")
    g = math.gcd(int(up), int(down))
    up, down = int(up) // g, int(down) // g
    if up == down == 1:
        return x.copy()
    h, half = _lowpass(up, down)
    h = h * up  # the zeros inserted when upsampling would otherwise lower the level by `up`
    n_in, n_out = len(x), -(-len(x) * up // down)
    taps = -(-len(h) // up)  # per phase
    phases = np.zeros(taps * up)
    phases[: len(h)] = h
    phases = phases.reshape(taps, up).T[:, ::-1]  # (up, taps): phases[p, s] = h[p + (taps - 1 - s) * up]

    # Output i uses phase (i * down + half) % up on x[q - taps + 1 : q + 1], q = (i * down + half) // up.
    # `periods` periods of `up` outputs make one row; its inputs start `periods * down` after the last row's.
    periods = max(1, -(-4 * taps // down))  # rows at least 4 filters long, so copying the windows costs little
    per_row = periods * up
    i = np.arange(per_row)
    j = i * down + half
    phase, start = j % up, j // up  # start indexes `padded`, where x begins at taps - 1
    rows = -(-n_out // per_row)
    stride = periods * down
    padded = np.zeros(max(start[-1] + stride * (rows - 1) + taps, taps - 1 + n_in))
    padded[taps - 1 : taps - 1 + n_in] = x

    y = np.empty((rows, per_row))  # (rows, outputs per row)
    # Split a row's outputs into groups whose matrices stay small: a wide one would mostly multiply zeros.
    group = per_row
    while group > 1 and group * ((start[group - 1] - start[0]) + taps) > _MAX_KERNEL:
        group = (group + 1) // 2
    for a in range(0, per_row, group):
        b = min(per_row, a + group)
        offset = start[a:b] - start[a]
        width = offset[-1] + taps
        kernel = np.zeros((width, b - a))  # (window, outputs): column o holds its phase at its offset
        kernel[offset[:, None] + np.arange(taps), np.arange(b - a)[:, None]] = phases[phase[a:b]]
        windows = sliding_window_view(padded[start[a] :], width)[::stride][:rows]  # (rows, window), a view
        chunk = max(1, _BLOCK_BYTES // (8 * width))
        for r in range(0, rows, chunk):
            y[r : r + chunk, a:b] = np.ascontiguousarray(windows[r : r + chunk]) @ kernel
    return y.ravel()[:n_out]


# ----------------------------------------------------------------------------- writing


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM WAV (what BEAT ships), replacing `path` only once complete.

    `samples` is float in [-1, 1] (clipped), shape (n,) or (n, channels). Without
    soundfile the samples are scaled by 32767 and rounded; libsndfile rounds a few
    differently, by at most one step of 1/32768.
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
    if sf is not None:  # as before soundfile became optional, so files stay byte for byte the same
        with atomic_path(path) as tmp:
            sf.write(str(tmp), data, sample_rate, subtype="PCM_16", format="WAV")
        return
    pcm = np.rint(data * 32767.0).astype("<i2")
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as out:
        out.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
