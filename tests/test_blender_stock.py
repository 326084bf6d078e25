"""A stock Blender generates: the Linux zip installed into a fresh profile of a Python that has
only `bpy` (and Blender's numpy), no torch, scipy, librosa, and no external Python set.

The Generate operator and the documented batch form both key a rig from speech and a
transcript; poses are read back at frames, so the keys are known to play. Runs under
Blender 5.0.1 and 4.2.23 (the stock venvs `scripts/setup.sh --stock` makes).
"""

from __future__ import annotations

import pytest

from test_blender_common import EXAMPLE_TG, EXAMPLE_WAV
from test_blender_extension import STOCK_VENVS, extension_zips, host_zip, run_in_stock_blender  # noqa: F401

pytestmark = pytest.mark.slow

GENERATE_AND_BATCH = r"""
import math, sys
import numpy as np
from pathlib import Path
from semges_blender.preferences import python_path
from semges_blender.rigs import create_beat_armature
from semges_blender.batch import main as batch_main
from semges_blender.takes import active_take
wav, tg, txt, home = args
out["python_path"] = python_path()

def arm_angles(rig, bone, frames):
    '''The bone's world-space direction at each frame, as evaluated by Blender.'''
    scene = bpy.context.scene
    dirs = []
    for f in frames:
        scene.frame_set(f)
        m = rig.matrix_world @ rig.pose.bones[bone].matrix
        v = np.array(m.col[1][:3])
        dirs.append(v / np.linalg.norm(v))
    return [math.degrees(math.acos(min(1.0, abs(float(dirs[0] @ d))))) for d in dirs[1:]]

# 1. The panel's Generate Gestures operator (synchronous in background mode), demo model, TextGrid.
rig = create_beat_armature("Rig")
s = bpy.context.scene.semges
s.audio_path, s.transcript_path, s.armature = wav, tg, rig
s.add_audio = False
out["generate"] = sorted(bpy.ops.semges.generate())
action = active_take(rig)  # a strip on the SemGes track, not the active action
out["action"] = action.name
out["moves"] = max(arm_angles(rig, "RArm1", [1, 60, 200, 400, 700]))
out["heavy"] = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "scipy", "librosa"})

# 2. The documented batch form, on a saved scene, with a plain-text transcript (aligned here).
blend = str(Path(home) / "scene.blend")
saved = str(Path(home) / "out.blend")
bpy.ops.wm.save_as_mainfile(filepath=blend)
out["batch_exit"] = batch_main(["--blend", blend, "--audio", wav, "--transcript", txt, "--armature", "Rig",
                                "--save", saved])
bpy.ops.wm.open_mainfile(filepath=saved)
rig = bpy.data.objects["Rig"]
out["batch_actions"] = sorted(a.name for a in bpy.data.actions)
out["batch_moves"] = max(arm_angles(rig, "LArm1", [1, 60, 200, 400, 700]) +
                         arm_angles(rig, "RArm1", [1, 60, 200, 400, 700]))
"""


@pytest.mark.parametrize("version", list(STOCK_VENVS))
def test_stock_blender_generates_from_the_panel_and_in_batch(host_zip, version, tmp_path):  # noqa: F811
    txt = tmp_path / "speech.txt"
    from semges_core.formats.textgrid import read_textgrid, words_from_textgrid

    txt.write_text(" ".join(w.text for w in words_from_textgrid(read_textgrid(EXAMPLE_TG))), encoding="utf-8")
    out = run_in_stock_blender(version, host_zip, GENERATE_AND_BATCH, str(EXAMPLE_WAV), str(EXAMPLE_TG), str(txt),
                               str(tmp_path), home=tmp_path, timeout=600)
    assert out["blender"].startswith(version)
    assert out["python_path"] == ""  # no external Python: Blender's own runs the bundled runtime
    assert out["generate"] == ["FINISHED"] and out["action"] == "speech"
    assert out["moves"] > 5.0, out  # the forearm really turns between frames
    assert out["heavy"] == []
    assert out["batch_exit"] == 0
    assert "speech" in out["batch_actions"]
    assert out["batch_moves"] > 5.0
