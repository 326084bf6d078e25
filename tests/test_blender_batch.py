"""Batch use (real bpy): the documented command lines run as printed, the add-on preferences' runtime
is honoured (and `--python` overrides it), a run that would save nothing is refused, a folder's takes
follow one another on the SemGes track and are all kept, the art-direction flags reach the rig, and
the exit statuses."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

import semges_blender.batch as batch  # noqa: E402
from semges_blender.batch import find_inputs, run_batch  # noqa: E402
from semges_blender.keyframes import action_fcurves  # noqa: E402
from semges_blender.layers import semges_track  # noqa: E402
from semges_blender.rigs import create_beat_armature  # noqa: E402
from test_blender_common import EXAMPLE_TG, EXAMPLE_WAV, REPO, build_mixamo_rig  # noqa: E402

pytestmark = pytest.mark.blender

# `blender -b SCENE --python-expr EXPR -- ARGS` and `blender -b SCENE --python FILE -- ARGS` with the bpy
# module: Blender's start-up as a user who enabled the add-on and set an external Python in Edit >
# Preferences has it (the add-on enabled, its preferences filled; argv[1], empty for none: the 4.2 bpy
# module crashes reading a userpref.blend), the .blend opened, the expression or the script file, then
# Blender's exit with the script's status (os._exit: the 4.2 bpy module may crash while Python shuts
# down with add-ons registered).
BLENDER_B = r"""
import os, runpy, sys
import bpy  # first: it puts Blender's own modules (addon_utils) on the path
import addon_utils
external, scene, how, what = sys.argv[1:5]
if external:
    addon_utils.enable("semges_blender", default_set=True, handle_error=None)
    bpy.context.preferences.addons["semges_blender"].preferences.python_path = external
bpy.ops.wm.open_mainfile(filepath=scene)
code = 0
try:
    if how == "--python-expr":
        exec(what)
    else:
        runpy.run_path(what, run_name="__main__")
except SystemExit as e:
    code = e.code or 0
sys.stdout.flush()
os._exit(code)
"""


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


def documented_commands(text: str) -> list[str]:
    """The command lines printed in `text` (backslash continuations joined), in order."""
    joined = re.sub(r"\\\\?\n\s*", " ", text)  # `\\` + newline in a docstring, `\` + newline in Markdown
    return [ln.strip() for ln in joined.splitlines() if re.match(r"\s*(blender|python) ", ln)]


def shell_env(cwd: Path) -> dict[str, str]:
    """The environment a shell in `cwd` gives (Blender 4.2 resolves relative paths against $PWD)."""
    env = dict(os.environ, PWD=str(cwd))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def as_subprocess(command: str, external_python: str = "") -> list[str]:
    """A documented command line as this test runs it (the bpy module stands in for `blender -b`)."""
    argv = shlex.split(command)
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    assert argv[:2] == ["blender", "-b"], command
    scene, how, what, rest = argv[2], argv[3], argv[4], argv[5:]
    if how == "--python":
        assert what.endswith("semges_blender/batch.py")
        what = str(REPO / "semges_blender" / "batch.py")
    return [sys.executable, "-c", BLENDER_B, external_python, scene, how, what, *rest]


def saved_takes(path: Path, rig: str) -> list[tuple[str, int, int]]:
    bpy.ops.wm.open_mainfile(filepath=str(path))
    track = semges_track(bpy.data.objects[rig])
    return [(s.action.name, int(s.frame_start), int(s.frame_end)) for s in track.strips]


def test_documented_commands_run_as_printed_and_honour_the_preferences(tmp_path):
    """Each command of the module docstring (which docs/blender.md prints too), in a folder holding
    what it names, with the bundled demo model; the Blender forms use the preferences' external Python."""
    commands = documented_commands(batch.__doc__)
    assert len(commands) == 3
    doc = (REPO / "docs" / "blender.md").read_text(encoding="utf-8")
    assert commands == [c for c in documented_commands(doc) if "semges_blender.batch" in c or "batch.py" in c]

    build_mixamo_rig("Armature")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    shutil.copy(EXAMPLE_WAV, tmp_path / "speech.wav")
    shutil.copy(EXAMPLE_TG, tmp_path / "speech.TextGrid")
    (tmp_path / "takes").mkdir()
    for name in ("a", "b"):
        shutil.copy(EXAMPLE_WAV, tmp_path / "takes" / f"{name}.wav")
        shutil.copy(EXAMPLE_TG, tmp_path / "takes" / f"{name}.TextGrid")
    marker = tmp_path / "external_python_used"
    external = tmp_path / "external_python"
    external.write_text(f'#!/bin/sh\necho run >> "{marker}"\nexec "{sys.executable}" "$@"\n')
    external.chmod(0o755)
    env = shell_env(tmp_path)

    runs = []
    for command in commands:
        out = tmp_path / "out.blend"
        out.unlink(missing_ok=True)
        run = subprocess.run(as_subprocess(command, str(external)), cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
        log = run.stdout + run.stderr
        assert run.returncode == 0 and out.is_file(), f"{command}\n{log[-3000:]}"
        runs.append((saved_takes(out, "Armature"), marker.read_text().count("run") if marker.exists() else 0))

    (single, used1), (folder, used2), (module_folder, used3) = runs
    assert [t[:2] for t in single] == [("speech", 1)]
    assert used1 == 1, "the --python-expr form ran the generator in the preferences' external Python"
    (a, a0, a1), (b, b0, b1) = folder
    assert (a, b, a0) == ("a", "b", 1) and b0 == a1 + 1, "a folder's takes follow one another, each kept"
    assert used2 == 3, "the script form too (one worker per file)"
    assert module_folder == folder and used3 == 3, "the bpy module reads no preferences: Blender's own Python"

    # --python overrides the preferences.
    run = subprocess.run(as_subprocess(commands[0], str(external)) + ["--python", sys.executable], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert marker.read_text().count("run") == 3


def test_folder_in_a_subprocess_saves_and_exits_nonzero_on_failure(tmp_path, takes, tiny_bundle):  # noqa: F811
    create_beat_armature("Rig")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    shutil.copy(EXAMPLE_WAV, takes / "c.wav")
    shutil.copy(EXAMPLE_TG, takes / "c.TextGrid")
    out = tmp_path / "out.blend"
    cmd = [sys.executable, "-m", "semges_blender.batch", "--blend", str(tmp_path / "scene.blend"),
           "--audio", str(takes), "--model", str(tiny_bundle), "--device", "cpu", "--start-frame", "1001",
           "--save", str(out)]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "b.wav: no transcript beside it" in run.stdout and "2 of 3 done, 1 failed" in run.stdout
    strips = saved_takes(out, "Rig")
    assert [(s[0], s[1]) for s in strips] == [("a", 1001), ("c", strips[0][2] + 1)]
    rig = bpy.data.objects["Rig"]
    assert len(action_fcurves(bpy.data.actions["a"], rig)) == 4 * 51
    if bpy.app.version >= (5, 0, 0):  # the 4.2 bpy module is built without audio
        assert sorted(s.frame_start for s in bpy.context.scene.sequence_editor.strips) == [1001, strips[1][1]], \
            "the sound goes in by default, as in the panel, at each take's start"

    # Unusable arguments: status 2, nothing saved.
    bad = subprocess.run([sys.executable, "-m", "semges_blender.batch", "--blend", str(tmp_path / "scene.blend"),
                          "--audio", str(tmp_path / "nothing_here"), "--save", str(tmp_path / "x.blend")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "nothing_here: no such audio file or folder" in bad.stderr
    assert not (tmp_path / "x.blend").exists()


def test_refuses_to_run_without_save(tmp_path, takes, tiny_bundle):  # noqa: F811
    create_beat_armature("Rig")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    base = [sys.executable, "-m", "semges_blender.batch", "--blend", str(tmp_path / "scene.blend"),
            "--audio", str(takes / "a.wav"), "--model", str(tiny_bundle), "--device", "cpu"]
    run = subprocess.run(base, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "nothing would be saved: give --save OUT.blend" in run.stderr
    assert "done" not in run.stdout, "refused before generating anything"
    run = subprocess.run(base + ["--no-save"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "1 of 1 done" in run.stdout, run.stdout + run.stderr
    run = subprocess.run(base + ["--no-save", "--save", str(tmp_path / "x.blend")], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and "not allowed with argument" in run.stderr


def test_art_direction_flags_reach_the_rig(tiny_bundle):  # noqa: F811
    rig = create_beat_armature("Rig")
    args = ["--audio", str(EXAMPLE_WAV), "--model", str(tiny_bundle), "--device", "cpu", "--no-save",
            "--no-add-audio"]
    assert batch.main(args + ["--no-key-reduction"]) == 0
    dense = bpy.data.actions["speech"]
    n = len(action_fcurves(dense, rig)[0].keyframe_points)
    assert n > 800  # one key per frame: 33.8 s at 24 fps
    assert batch.main(args + ["--blend-mode", "add", "--influence", "0.5", "--intensity-arms", "0",
                              "--key-tolerance", "2", "--start-frame", str(n + 10)]) == 0
    light = bpy.data.actions["speech.001"]
    strip = next(s for s in semges_track(rig).strips if s.action == light)
    assert strip.blend_type == 'COMBINE' and strip.use_animated_influence
    assert max(k.co[1] for k in strip.fcurves.find("influence").keyframe_points) == pytest.approx(0.5)
    curves = {(fc.data_path, fc.array_index): fc for fc in action_fcurves(light, rig)}
    arm = [fc for (path, _), fc in curves.items() if '"RArm"' in path]
    fingers = [fc for (path, _), fc in curves.items() if '"RHandI1"' in path]
    assert arm and all(np.ptp([k.co[1] for k in fc.keyframe_points]) < 1e-5 for fc in arm), \
        "arms at 0%: the neutral pose, held"
    assert any(np.ptp([k.co[1] for k in fc.keyframe_points]) > 1e-3 for fc in fingers), "hands still move"
    assert sum(len(fc.keyframe_points) for fc in curves.values()) < 0.5 * len(curves) * n, "lighter keys"

    assert batch.main(args + ["--intensity-hands", "250"]) == 2  # not a percentage from 0 to 200
    assert batch.main(args + ["--influence", "2"]) == 2


def test_run_batch_as_a_function(takes, tiny_bundle):  # noqa: F811
    rig = create_beat_armature("Rig")
    bpy.context.scene.frame_start = 10
    (takes / "b.wav").unlink()
    shutil.copy(EXAMPLE_WAV, takes / "c.wav")
    shutil.copy(EXAMPLE_TG, takes / "c.TextGrid")
    logs = []
    items = run_batch(takes, preset="beat", model=str(tiny_bundle), device="cpu", add_audio=False, log=logs.append)
    assert [i.error for i in items] == [None, None]
    assert [i.result.action.name for i in items] == ["a", "c"]
    assert items[0].result.frame_start == 10, "from the scene's start"
    assert items[1].result.frame_start == items[0].result.frame_end + 1
    assert [s.action.name for s in semges_track(rig).strips] == ["a", "c"]
    assert rig.animation_data.action is None, "takes play as strips, over the rig's own animation"
    with pytest.raises(TypeError, match="unknown settings: colour"):
        run_batch(takes, colour="red")


def test_find_inputs(takes, tmp_path):
    items = find_inputs(takes)
    assert [(i.audio.name, i.transcript and i.transcript.name) for i in items] == [("a.wav", "a.TextGrid"),
                                                                                    ("b.wav", None)]
    assert find_inputs(takes / "a.wav")[0].transcript.name == "a.TextGrid"
    assert find_inputs(takes / "b.wav", EXAMPLE_TG)[0].transcript == EXAMPLE_TG
