"""Stick-figure pictures of a Motion, so a person can check a take or a generated gesture by eye.

Front view: the camera looks down -Z at a character facing +Z, so screen right is
+X and the character's right hand (-X) appears on the viewer's left. Bones are
drawn from each joint to its parent; hand bones (everything below a wrist) are
thinner so fingers stay readable. Figures are drawn on an Agg canvas of their
own, never through pyplot, so nothing global (backend, open figures) changes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib import animation
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from semges_core.errors import SemgesError
from semges_core.fileio import atomic_path
from semges_core.motion.kinematics import forward_kinematics
from semges_core.motion.clip import Motion
from semges_core.motion.skeleton import Skeleton

_RIGHT, _LEFT, _CENTRE = "#d62728", "#1f77b4", "#333333"
_BODY_WIDTH, _HAND_WIDTH = 3.0, 1.2
_WRISTS = ("hand", "wrist")  # name endings of a wrist joint, lower case


class PreviewError(SemgesError):
    """A preview cannot be written (unsupported format, missing ffmpeg, empty motion)."""


# --------------------------------------------------------------------------- public API


def render_frames_png(motion: Motion, path: str | Path, times: Sequence[float] | None = None, title: str = "") -> None:
    """A contact sheet of poses at `times` (seconds; default 8 spread over the take) in one PNG."""
    _require_frames(motion)
    if times is None:
        frames = np.unique(np.linspace(0, motion.n_frames - 1, min(8, motion.n_frames)).round().astype(int))
    else:
        frames = np.array([_frame_at(motion, t) for t in times], dtype=int)
        if len(frames) == 0:
            raise ValueError("times is empty; give at least one time or None for the default")
    positions = _positions(motion, frames)  # (N, J, 3)
    style = _BoneStyle(motion.skeleton)
    limits = _limits(positions)

    n = len(frames)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(2.8 * cols, 4.2 * rows + (0.4 if title else 0.0)), dpi=100)
    FigureCanvasAgg(fig)
    for k, frame in enumerate(frames):
        ax = fig.add_subplot(rows, cols, k + 1)
        _setup_axes(ax, limits)
        _Painter(ax, style).update(positions[k])
        _HandViews(ax, style).update(positions[k])
        ax.set_title(f"t = {frame / motion.fps:.2f} s", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")


def render_video(
    motion: Motion,
    path: str | Path,
    fps: int = 15,
    title: str = "",
    words: list[tuple[float, float, str]] | None = None,
) -> None:
    """An animated GIF (or MP4 when the path ends in .mp4 and ffmpeg exists) of the take.

    `words` are (start_s, end_s, word); the word being spoken is shown as a caption.
    """
    _require_frames(motion)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    path = Path(path)
    writer = _writer(path, fps)
    words = _check_words(words)

    # Output frame k shows time k / fps, the nearest source frame (no slerp: a preview).
    n_out = int(math.floor((motion.n_frames - 1) / motion.fps * fps + 1e-9)) + 1
    times = np.arange(n_out) / fps
    frames = np.minimum(np.round(times * motion.fps).astype(int), motion.n_frames - 1)
    positions = _positions(motion, frames)  # (N, J, 3)

    fig = Figure(figsize=(4.0, 5.4), dpi=72)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.1, 0.96, 0.8))
    _setup_axes(ax, _limits(positions))
    style = _BoneStyle(motion.skeleton)
    painter, hands = _Painter(ax, style), _HandViews(ax, style)
    if title:
        fig.text(0.5, 0.95, title, ha="center", va="center", fontsize=10)
    clock = fig.text(0.03, 0.04, "", fontsize=8, color="#666666")
    caption = fig.text(0.5, 0.04, "", ha="center", va="center", fontsize=14, weight="bold")

    with atomic_path(path) as tmp, writer.saving(fig, str(tmp), dpi=72):
        for k in range(n_out):
            painter.update(positions[k])
            hands.update(positions[k])
            clock.set_text(f"{times[k]:.2f} s")
            caption.set_text(_word_at(words, times[k]))
            writer.grab_frame()


# --------------------------------------------------------------------------- drawing


class _BoneStyle:
    """Per bone (joint -> parent): colour by side, thin lines for the hands; and where the hands are."""

    def __init__(self, skeleton: Skeleton) -> None:
        identity = np.tile([1.0, 0.0, 0.0, 0.0], (len(skeleton), 1))
        rest = forward_kinematics(skeleton, identity, skeleton.offsets[0])  # (J, 3)
        bones = [(j, p) for j, p in enumerate(skeleton.parents) if p >= 0]
        self.child = np.array([j for j, _ in bones], dtype=int)
        self.parent = np.array([p for _, p in bones], dtype=int)
        self.in_hand = np.array(_below_wrist(skeleton), dtype=bool)  # (J,)
        span = max(float(np.ptp(rest[:, 0])), 1e-6)
        self.colours = [
            _RIGHT if rest[j, 0] < -0.02 * span else _LEFT if rest[j, 0] > 0.02 * span else _CENTRE for j, _ in bones
        ]
        self.widths = [_HAND_WIDTH if self.in_hand[j] else _BODY_WIDTH for j, _ in bones]
        # Each wrist with fingers below it, right hand (screen left) first, and the hand's
        # rest-pose reach so a zoomed view can fit it.
        self.hands: list[tuple[int, np.ndarray, float]] = []
        for w in np.argsort(rest[:, 0]):
            members = np.array([j for j in range(len(skeleton)) if self.in_hand[j] and _descends(skeleton, j, w)])
            if skeleton.names[w].lower().endswith(_WRISTS) and len(members):
                reach = float(np.linalg.norm(rest[members] - rest[w], axis=1).max())
                self.hands.append((int(w), np.concatenate([[w], members]), reach))

    def bone_mask(self, joints: np.ndarray) -> np.ndarray:
        """Bones whose child joint is in `joints` (for a hand: the wrist's bone and the fingers)."""
        return np.isin(self.child, joints)


def _descends(skeleton: Skeleton, j: int, ancestor: int) -> bool:
    while j >= 0:
        if j == ancestor:
            return True
        j = skeleton.parents[j]
    return False


def _below_wrist(skeleton: Skeleton) -> list[bool]:
    """True for joints whose ancestors include a wrist (a joint named *Hand or *Wrist): the fingers."""
    wrist = [n.lower().endswith(_WRISTS) for n in skeleton.names]
    out = [False] * len(skeleton)
    for j, p in enumerate(skeleton.parents):
        out[j] = p >= 0 and (wrist[p] or out[p])
    return out


class _Painter:
    """The artists of one stick figure (or part of one) in one axes, updated in place."""

    def __init__(
        self,
        ax: Axes,
        style: _BoneStyle,
        bones: np.ndarray | None = None,
        dots: np.ndarray | None = None,
        dot_size: float = 4.0,
    ) -> None:
        self.bones = np.ones(len(style.child), bool) if bones is None else bones
        self.dots_at = ~style.in_hand if dots is None else dots  # finger dots would hide the fingers
        self.child, self.parent = style.child[self.bones], style.parent[self.bones]
        self.lines = LineCollection(
            [],
            colors=[c for c, keep in zip(style.colours, self.bones) if keep],
            linewidths=[w for w, keep in zip(style.widths, self.bones) if keep],
            capstyle="round",
        )
        ax.add_collection(self.lines)
        self.dots = ax.scatter([], [], s=dot_size, c="#111111", zorder=3)

    def update(self, pos: np.ndarray) -> None:
        xy = pos[:, :2]  # front view: (X, Y)
        self.lines.set_segments(np.stack([xy[self.parent], xy[self.child]], axis=1))  # (B, 2, 2)
        self.dots.set_offsets(xy[self.dots_at])


class _HandViews:
    """Zoomed front views of each hand along the bottom of an axes, following the wrist."""

    def __init__(self, ax: Axes, style: _BoneStyle) -> None:
        self.views = []
        n = len(style.hands)
        for k, (wrist, joints, reach) in enumerate(style.hands):
            inset = ax.inset_axes((k / max(n, 1) + 0.01, 0.0, 1 / max(n, 1) - 0.02, 0.3))
            _setup_axes(inset, (0, 1, 0, 1))
            inset.patch.set_alpha(0.85)
            inset.patch.set_facecolor("#f2f2f2")
            dots = np.zeros(len(style.in_hand), bool)
            dots[joints] = True
            painter = _Painter(inset, style, bones=style.bone_mask(joints), dots=dots, dot_size=2.0)
            self.views.append((inset, painter, joints, 0.75 * reach))

    def update(self, pos: np.ndarray) -> None:
        for inset, painter, joints, half in self.views:
            painter.update(pos)
            cx, cy = pos[joints, :2].mean(axis=0)
            inset.set_xlim(cx - half, cx + half)
            inset.set_ylim(cy - half, cy + half)


def _setup_axes(ax: Axes, limits: tuple[float, float, float, float]) -> None:
    x0, x1, y0, y1 = limits
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _limits(positions: np.ndarray) -> tuple[float, float, float, float]:
    """One window holding every drawn pose (panels and frames share a scale), with its
    bottom 30% left empty for the zoomed hands."""
    lo = positions[..., :2].reshape(-1, 2).min(axis=0)
    hi = positions[..., :2].reshape(-1, 2).max(axis=0)
    size = max(float((hi - lo).max()), 1.0)
    half_w = 0.54 * size
    cx = (lo[0] + hi[0]) / 2
    top = hi[1] + 0.04 * size
    bottom = lo[1] - 0.04 * size
    bottom -= (top - bottom) * 0.3 / 0.7
    return cx - half_w, cx + half_w, bottom, top


# --------------------------------------------------------------------------- helpers


def _require_frames(motion: Motion) -> None:
    if motion.n_frames == 0:
        raise PreviewError("the motion has no frames to draw")


def _frame_at(motion: Motion, t: float) -> int:
    t = float(t)
    last = (motion.n_frames - 1) / motion.fps
    if not 0.0 <= t <= last + 0.5 / motion.fps:
        raise ValueError(f"time {t:.3f} s is outside the motion (0 to {last:.3f} s)")
    return min(int(round(t * motion.fps)), motion.n_frames - 1)


def _positions(motion: Motion, frames: np.ndarray) -> np.ndarray:
    """World positions (N, J, 3) of only the frames drawn: long takes stay cheap."""
    return forward_kinematics(motion.skeleton, motion.rotations[frames], motion.root_positions[frames])


def _writer(path: Path, fps: int) -> animation.AbstractMovieWriter:
    suffix = path.suffix.lower()
    if suffix == ".gif":
        return animation.PillowWriter(fps=fps)
    if suffix == ".mp4":
        if not animation.writers.is_available("ffmpeg"):
            raise PreviewError(f"cannot write {path}: MP4 needs ffmpeg on PATH; install it or use a .gif path")
        return animation.FFMpegWriter(fps=fps)
    raise PreviewError(f"cannot write {path}: use a .gif or .mp4 file name")


def _check_words(words: list[tuple[float, float, str]] | None) -> list[tuple[float, float, str]]:
    out = []
    for item in words or []:
        start, end, word = item
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise ValueError(f"word {word!r} has an invalid interval ({start}, {end})")
        out.append((float(start), float(end), str(word)))
    return sorted(out)


def _word_at(words: list[tuple[float, float, str]], t: float) -> str:
    for start, end, word in words:
        if start <= t < end:
            return word
        if start > t:
            break
    return ""
