"""Turning timed annotations into one label per motion frame.

The networks see one text vector, one semantic weight and one emotion per frame, so
every annotation meets the motion here, under one rule: frame t stands for the instant
t / fps and takes the label of the interval [start, end) that contains that instant.
Times are compared in seconds (not start * fps against t) so that a boundary written
as 0.2 s falls exactly on frame 3 at 15 fps.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from semges_core.formats.textgrid import Word


class _Semantic(Protocol):
    type_id: int
    start: float
    end: float
    score: float


class _Emotion(Protocol):
    emotion_id: int
    start: float
    end: float


def _frame_times(n_frames: int, fps: float) -> np.ndarray:
    if isinstance(n_frames, bool) or int(n_frames) != n_frames or n_frames < 0:
        raise ValueError(f"n_frames must be a non-negative integer, got {n_frames!r}")
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    return np.arange(int(n_frames), dtype=np.float64) / float(fps)  # (T,)


def _frame_ranges(starts: np.ndarray, ends: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last frame whose time lies in [start, end), per interval."""
    return np.searchsorted(times, starts, side="left"), np.searchsorted(times, ends, side="left")


def word_index_per_frame(words: Sequence[Word], n_frames: int, fps: float) -> np.ndarray:
    """Index into `words` of the word spoken at each frame, -1 in pauses; int32 (T,)."""
    times = _frame_times(n_frames, fps)
    out = np.full(times.shape, -1, dtype=np.int32)
    if not words:
        return out
    starts = np.array([w.start for w in words], dtype=np.float64)
    ends = np.array([w.end for w in words], dtype=np.float64)
    order = np.lexsort((ends, starts))  # by start, then end, so zero-length words come first
    starts, ends = starts[order], ends[order]
    if np.any(ends < starts):
        bad = int(np.argmax(ends < starts))
        raise ValueError(f"word {words[order[bad]]!r} ends before it starts")
    if np.any(starts[1:] < ends[:-1] - 1e-6):
        k = int(np.argmax(starts[1:] < ends[:-1] - 1e-6))
        raise ValueError(f"words overlap: {words[order[k]]!r} and {words[order[k + 1]]!r}")
    # The last word starting at or before each frame's time, if that frame is before its end.
    k = np.searchsorted(starts, times, side="right") - 1  # (T,)
    inside = (k >= 0) & (times < ends[np.maximum(k, 0)])
    out[inside] = order[k[inside]]
    return out


def words_per_frame(words: Sequence[Word], n_frames: int, fps: float) -> list[str | None]:
    """The word spoken at each frame, None in pauses."""
    index = word_index_per_frame(words, n_frames, fps)
    return [words[i].text if i >= 0 else None for i in index.tolist()]


def semantic_per_frame(
    segments: Sequence[_Semantic], n_frames: int, fps: float
) -> tuple[np.ndarray, np.ndarray]:
    """(score float32 (T,), type_id int16 (T,)); 0 outside every segment.

    Where segments overlap the highest score wins (the earlier segment on a tie), so a
    frame inside an iconic gesture is not weakened by a beat gesture around it.
    """
    times = _frame_times(n_frames, fps)
    score = np.zeros(times.shape, dtype=np.float32)
    type_id = np.zeros(times.shape, dtype=np.int16)
    if not segments:
        return score, type_id
    starts = np.array([s.start for s in segments], dtype=np.float64)
    ends = np.array([s.end for s in segments], dtype=np.float64)
    scores = np.array([s.score for s in segments], dtype=np.float64)
    first, last = _frame_ranges(starts, ends, times)
    # Paint in ascending score so the best segment is painted last; among equal scores,
    # the earliest in the list goes last. One slice per segment, never a loop over frames.
    for k in np.lexsort((-np.arange(len(segments)), scores)):
        score[first[k] : last[k]] = scores[k]
        type_id[first[k] : last[k]] = segments[k].type_id
    return score, type_id


def emotion_per_frame(
    segments: Sequence[_Emotion], n_frames: int, fps: float, default: int = 0
) -> np.ndarray:
    """Emotion id per frame, int16 (T,); `default` where no segment covers the frame.

    A take normally carries a single emotion segment; if segments overlap, the later one
    in the list wins.
    """
    times = _frame_times(n_frames, fps)
    out = np.full(times.shape, default, dtype=np.int16)
    if not segments:
        return out
    starts = np.array([s.start for s in segments], dtype=np.float64)
    ends = np.array([s.end for s in segments], dtype=np.float64)
    first, last = _frame_ranges(starts, ends, times)
    for k, seg in enumerate(segments):
        out[first[k] : last[k]] = seg.emotion_id
    return out
