"""Packaging: the extension zip builds and validates with Blender's own extension tool, installs
with bpy.ops.extensions.package_install_files into a throw-away user folder, registers under its
extension name and generates gestures from the installed copy (not this checkout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

bpy = pytest.importorskip("bpy")

from semges_blender.build_extension import build, manifest, run_tool  # noqa: E402
from test_blender_common import EXAMPLE_TG, EXAMPLE_WAV  # noqa: E402

pytestmark = pytest.mark.blender

INSTALL_SCRIPT = r"""
import json, os, sys
# Hide this checkout (an editable install) so only the installed extension can be imported.
sys.meta_path = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")
                 and not getattr(f, "__name__", "").startswith("__editable__")]
zip_path, bundle, wav, tg = sys.argv[-4:]
import bpy
out = {"install": sorted(bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                                   enable_on_install=True))}
import semges_blender, semges_core
from semges_blender.pipeline import demo_model_path
from semges_blender.preferences import preferences
from semges_blender.rigs import create_beat_armature
out["semges_blender"] = semges_blender.__file__
out["semges_core"] = semges_core.__file__
out["demo_model"] = demo_model_path().is_file()
out["prefs"] = preferences() is not None
rig = create_beat_armature("Rig")
s = bpy.context.scene.semges
s.audio_path, s.transcript_path, s.armature, s.model_path, s.device = wav, tg, rig, bundle, "cpu"
s.add_audio = False
out["generate"] = sorted(bpy.ops.semges.generate())
out["action"] = rig.animation_data.action.name
print("RESULT " + json.dumps(out))
sys.stdout.flush()
os._exit(0)  # Blender 4.2's bpy module may crash at exit with add-ons registered
"""


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory):
    return build(tmp_path_factory.mktemp("dist"))


def test_zip_builds_and_validates(extension_zip):
    m = manifest()
    assert m["schema_version"] == "1.0.0" and m["id"] == "semges" and m["blender_version_min"] == "4.2.0"
    assert "files" in m["permissions"]
    assert extension_zip.name == f"semges-{m['version']}.zip"
    names = zipfile.ZipFile(extension_zip).namelist()
    assert {"__init__.py", "blender_manifest.toml"} <= set(names)
    wheel = next(n for n in names if n.endswith(".whl"))
    with zipfile.ZipFile(extension_zip).open(wheel) as f, zipfile.ZipFile(f) as w:
        inside = set(w.namelist())
    assert {"semges_blender/__init__.py", "semges_blender/runner.py", "semges_blender/presets/mixamo.json",
            "semges_core/inference.py", "semges_core/assets/demo_model.safetensors"} <= inside
    assert not any("__pycache__" in n for n in inside)
    assert run_tool(["validate", str(extension_zip)]).returncode == 0


def test_installs_registers_and_generates(extension_zip, tiny_bundle, tmp_path):  # noqa: F811
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    env.pop("PYTHONPATH", None)
    run = subprocess.run([sys.executable, "-c", INSTALL_SCRIPT, str(extension_zip), str(tiny_bundle),
                          str(EXAMPLE_WAV), str(EXAMPLE_TG)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, run.stdout[-3000:] + run.stderr[-3000:]
    out = json.loads(line[len("RESULT "):])
    assert out["install"] == ["FINISHED"] and out["generate"] == ["FINISHED"] and out["action"] == "speech"
    ext_site = str(tmp_path / "user" / "extensions")
    assert out["semges_blender"].startswith(ext_site) and out["semges_core"].startswith(ext_site)
    assert out["demo_model"] and out["prefs"]
