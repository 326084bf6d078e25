"""Stick-figure previews: real images with something drawn on them, and clear errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semges_core.motion.clip import Motion
from semges_core.evaluation.preview import PreviewError, render_frames_png, render_video
from semges_core.motion.skeleton import BEAT_SKELETON


def waving_motion(seconds: float = 2.0, fps: float = 30.0) -> Motion:
    """Arms swing and fingers curl, so consecutive frames differ visibly."""
    n = int(seconds * fps)
    t = np.arange(n) / fps
    euler = np.zeros((n, len(BEAT_SKELETON), 3))  # ZXY degrees
    for name, sign in (("RArm", 1), ("LArm", -1)):
        euler[:, BEAT_SKELETON.index(name), 0] = sign * 50 * np.sin(2 * np.pi * 0.8 * t)
    for j, name in enumerate(BEAT_SKELETON.names):
        if "Hand" in name and name[-1] in "123":
            euler[:, j, 0] = 40 * (1 - np.cos(2 * np.pi * 1.5 * t))
    root = np.tile(BEAT_SKELETON.offsets[0], (n, 1))
    return Motion.from_euler(BEAT_SKELETON, fps, root, euler)


def _colours(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB")).reshape(-1, 3)


def _has_drawing(img: Image.Image) -> bool:
    """Background plus the red (right) and blue (left) limbs."""
    px = _colours(img).astype(int)
    red = ((px[:, 0] > 150) & (px[:, 1] < 100) & (px[:, 2] < 100)).sum()
    blue = ((px[:, 2] > 130) & (px[:, 0] < 100)).sum()
    return len(np.unique(px, axis=0)) > 3 and red > 20 and blue > 20


def test_contact_sheet_png(tmp_path: Path) -> None:
    path = tmp_path / "sheet.png"
    render_frames_png(waving_motion(), path, title="waving")
    assert os.listdir(tmp_path) == ["sheet.png"]  # no temporary file left behind
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.width > 600 and img.height > 400
        assert _has_drawing(img)


def test_contact_sheet_at_chosen_times(tmp_path: Path) -> None:
    path = tmp_path / "two.png"
    render_frames_png(waving_motion(), path, times=[0.0, 1.0])
    with Image.open(path) as img:
        assert _has_drawing(img)
    with pytest.raises(ValueError, match="outside the motion"):
        render_frames_png(waving_motion(), tmp_path / "bad.png", times=[5.0])


def test_gif_has_one_frame_per_output_time(tmp_path: Path) -> None:
    motion = waving_motion(seconds=1.0, fps=30.0)  # 30 frames: 0 .. 0.967 s
    path = tmp_path / "take.gif"
    render_video(motion, path, fps=10, title="waving", words=[(0.0, 0.5, "hello"), (0.5, 1.0, "there")])
    with Image.open(path) as img:
        assert img.format == "GIF"
        assert img.n_frames == 10
        frames = []
        for k in range(img.n_frames):
            img.seek(k)
            frames.append(np.asarray(img.convert("RGB")))
    assert _has_drawing(Image.fromarray(frames[0]))
    assert not np.array_equal(frames[0], frames[5]), "the figure should move between frames"


def test_caption_shows_the_current_word(tmp_path: Path) -> None:
    motion = Motion.rest(BEAT_SKELETON, 4, 30.0)
    plain, captioned = tmp_path / "plain.gif", tmp_path / "word.gif"
    render_video(motion, plain, fps=30)
    render_video(motion, captioned, fps=30, words=[(0.05, 1.0, "gesture")])
    with Image.open(plain) as a, Image.open(captioned) as b:
        a0, b0 = np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB"))  # t = 0: no word yet
        a.seek(2)
        b.seek(2)
        a2, b2 = np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB"))  # t = 0.067 s: "gesture"
    assert np.array_equal(a0, b0)
    assert not np.array_equal(a2, b2)


def test_mp4_needs_ffmpeg(tmp_path: Path) -> None:
    path = tmp_path / "take.mp4"
    motion = waving_motion(seconds=0.5)
    if shutil.which("ffmpeg") is None:
        with pytest.raises(PreviewError, match="ffmpeg"):
            render_video(motion, path)
        assert not path.exists()
    else:
        render_video(motion, path)
        assert path.stat().st_size > 1000


def test_unusable_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PreviewError, match=r"\.gif or \.mp4"):
        render_video(waving_motion(0.5), tmp_path / "take.avi")
    with pytest.raises(PreviewError, match="no frames"):
        render_frames_png(Motion.rest(BEAT_SKELETON, 0, 30.0), tmp_path / "empty.png")
    with pytest.raises(ValueError, match="invalid interval"):
        render_video(waving_motion(0.5), tmp_path / "w.gif", words=[(1.0, 0.5, "backwards")])
    assert os.listdir(tmp_path) == []
