"""Batch use: a folder of audio files in one run, the saved .blend, exit statuses (real bpy)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

bpy = pytest.importorskip("bpy")

from semges_blender.batch import find_inputs, run_batch  # noqa: E402
from semges_blender.keyframes import action_fcurves  # noqa: E402
from semges_blender.rigs import create_beat_armature  # noqa: E402
from test_blender_common import EXAMPLE_TG, EXAMPLE_WAV, REPO  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.fixture(autouse=True)
def empty_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield
    bpy.ops.wm.read_factory_settings(use_empty=True)


@pytest.fixture
def takes(tmp_path):
    folder = tmp_path / "takes"
    folder.mkdir()
    shutil.copy(EXAMPLE_WAV, folder / "a.wav")
    shutil.copy(EXAMPLE_TG, folder / "a.TextGrid")
    shutil.copy(EXAMPLE_WAV, folder / "b.wav")  # no transcript: fails, the others go on
    return folder


def test_folder_in_a_subprocess_saves_and_exits_nonzero_on_failure(tmp_path, takes, tiny_bundle):  # noqa: F811
    create_beat_armature("Rig")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    out = tmp_path / "out.blend"
    cmd = [sys.executable, "-m", "semges_blender.batch", "--blend", str(tmp_path / "scene.blend"),
           "--audio", str(takes), "--model", str(tiny_bundle), "--device", "cpu", "--save", str(out)]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "b.wav: no transcript beside it" in run.stdout and "1 of 2 done, 1 failed" in run.stdout
    bpy.ops.wm.open_mainfile(filepath=str(out))
    rig = bpy.data.objects["Rig"]
    assert rig.animation_data.action.name == "a"
    assert len(action_fcurves(rig.animation_data.action, rig)) == 4 * 51

    # Unusable arguments: status 2, nothing saved.
    bad = subprocess.run([sys.executable, "-m", "semges_blender.batch", "--blend", str(tmp_path / "scene.blend"),
                          "--audio", str(tmp_path / "nothing_here"), "--save", str(tmp_path / "x.blend")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "nothing_here: no such audio file or folder" in bad.stderr
    assert not (tmp_path / "x.blend").exists()


def test_run_batch_as_a_function(takes, tiny_bundle):  # noqa: F811
    create_beat_armature("Rig")
    (takes / "b.wav").unlink()
    shutil.copy(EXAMPLE_WAV, takes / "c.wav")
    shutil.copy(EXAMPLE_TG, takes / "c.TextGrid")
    logs = []
    items = run_batch(takes, preset="beat", model=str(tiny_bundle), device="cpu", start_frame=10, log=logs.append)
    assert [i.error for i in items] == [None, None]
    assert [i.result.action.name for i in items] == ["a", "c"]
    assert bpy.data.objects["Rig"].animation_data.action.name == "c"
    assert all(i.result.frame_start == 10 for i in items)


def test_find_inputs(takes, tmp_path):
    items = find_inputs(takes)
    assert [(i.audio.name, i.transcript and i.transcript.name) for i in items] == [("a.wav", "a.TextGrid"),
                                                                                    ("b.wav", None)]
    assert find_inputs(takes / "a.wav")[0].transcript.name == "a.TextGrid"
    assert find_inputs(takes / "b.wav", EXAMPLE_TG)[0].transcript == EXAMPLE_TG
