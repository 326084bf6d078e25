"""Packaging: one extension zip per platform builds and validates with Blender's own extension
tool and carries that platform's runtime wheels (onnxruntime, soundfile, pocketsphinx) and no
others; the Linux zip installs with bpy.ops.extensions.package_install_files into a throw-away
user folder of a stock Blender (bpy and its numpy, nothing else), where the add-on registers and
its runtime imports and runs; and it generates gestures from the installed copy (not this
checkout)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

import semges_blender.build_extension as build_extension  # noqa: E402
from semges_blender.build_extension import (  # noqa: E402
    MAX_ZIP_BYTES, PIP_PLATFORMS, RUNTIME_WHEELS, build, fetch_wheels, manifest, run_tool, zip_wheels)
from test_blender_common import EXAMPLE_TG, EXAMPLE_WAV, REPO  # noqa: E402

pytestmark = pytest.mark.blender

# Virtual environments like a stock Blender's Python (bpy and the numpy it ships, nothing
# else), made by `scripts/setup.sh --stock`.
STOCK_VENVS = {"5.0": REPO / ".venv-stock50", "4.2": REPO / ".venv-stock42"}
PINS = dict(req.split("==") for req in RUNTIME_WHEELS)


def host_platform() -> str:
    """This machine as Blender names platforms (`linux-x64`, `macos-arm64`, ...)."""
    system = {"linux": "linux", "darwin": "macos", "windows": "windows"}[platform.system().lower()]
    machine = {"x86_64": "x64", "amd64": "x64", "arm64": "arm64", "aarch64": "arm64"}[platform.machine().lower()]
    return f"{system}-{machine}"


def zip_manifest(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as z:
        return tomllib.loads(z.read("blender_manifest.toml").decode())


def wheel_of(wheels: list[str], name: str) -> str:
    found = [w for w in wheels if w.startswith(f"{name}-")]
    assert len(found) == 1, f"{name}: {found} in {wheels}"
    return found[0]


# Runs in a stock Blender Python: install the zip (argv[1]) into the user folder named by the
# environment, then run the caller's check (argv[2]) with `out` (a dict printed as JSON),
# `zip_path` and `args` (the rest of argv) in scope.
STOCK_PRELUDE = r"""
import json, os, sys
zip_path, check, args = sys.argv[1], sys.argv[2], sys.argv[3:]
import bpy
out = {"blender": bpy.app.version_string}
out["install"] = sorted(bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                                   enable_on_install=True))
out["enabled"] = "bl_ext.user_default.semges" in bpy.context.preferences.addons
exec(compile(check, "<check>", "exec"))
print("RESULT " + json.dumps(out))
sys.stdout.flush()
os._exit(0)  # Blender 4.2's bpy module may crash at exit with add-ons registered
"""


def run_in_stock_blender(version: str, zip_path: Path, check: str, *args: str, home: Path,
                         timeout: float = 300) -> dict:
    """Install `zip_path` into a fresh user folder under `home` with the stock Blender `version`
    ("5.0" or "4.2"), run `check` there (Python that fills the dict `out`) and return `out`.

    The process is isolated (`python -I`, no PYTHONPATH, run from `home`), so only what Blender
    and the extension bring can be imported: not this checkout, not the test venv."""
    venv = STOCK_VENVS[version]
    if not (venv / ".semges-setup").is_file():
        pytest.skip(f"{venv.name} is missing: run `bash scripts/setup.sh --stock`")
    user = home / "user"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BLENDER_"))}
    env.update(BLENDER_USER_RESOURCES=str(user), BLENDER_USER_CONFIG=str(user / "config"),
               BLENDER_USER_SCRIPTS=str(user / "scripts"), BLENDER_USER_EXTENSIONS=str(user / "extensions"),
               BLENDER_USER_DATAFILES=str(user / "datafiles"))
    run = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", STOCK_PRELUDE, str(zip_path), check, *args],
                         cwd=home, env=env, capture_output=True, text=True, timeout=timeout)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, f"exit {run.returncode}\n{run.stdout[-3000:]}{run.stderr[-3000:]}"
    out = json.loads(line[len("RESULT "):])
    assert out["install"] == ["FINISHED"] and out["enabled"], out
    return out


@pytest.fixture(scope="session")
def extension_zips(tmp_path_factory) -> dict[str, Path]:
    """{Blender platform: zip}, built once per session (wheels come from build/wheels/ or PyPI)."""
    return build(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def host_zip(extension_zips) -> Path:
    if host_platform() not in extension_zips:
        pytest.skip(f"no extension zip for this platform ({host_platform()})")
    return extension_zips[host_platform()]


def test_one_validated_zip_per_platform_within_size(extension_zips):
    m = manifest()
    assert m["schema_version"] == "1.0.0" and m["id"] == "semges" and m["blender_version_min"] == "4.2.0"
    assert "files" in m["permissions"]
    assert list(extension_zips) == m["platforms"] == ["linux-x64", "windows-x64", "macos-arm64", "macos-x64"]
    assert set(PIP_PLATFORMS) == set(m["platforms"])
    for plat, path in extension_zips.items():
        assert path.name == f"semges-{m['version']}-{plat.replace('-', '_')}.zip"
        assert path.stat().st_size <= MAX_ZIP_BYTES, f"{path.name}: {path.stat().st_size / 1e6:.1f} MB"
        generated = zip_manifest(path)["build"]["generated"]
        assert generated["platforms"] == [plat]
        assert sorted(Path(w).name for w in generated["wheels"]) == zip_wheels(path)
        assert run_tool(["validate", str(path)]).returncode == 0


def test_cached_wheels_are_reused_without_pip(extension_zips, monkeypatch):
    def no_pip(*args, **kwargs):
        raise AssertionError(f"pip ran although the wheels are cached: {args}")

    monkeypatch.setattr(build_extension.subprocess, "run", no_pip)
    for plat in extension_zips:
        assert sorted(w.name for w in fetch_wheels(plat)) == [
            w for w in zip_wheels(extension_zips[plat]) if not w.startswith("semges-")]


@pytest.mark.parametrize("plat", ["linux-x64", "windows-x64", "macos-arm64", "macos-x64"])
def test_each_zip_holds_its_own_runtime_wheels(extension_zips, plat):
    wheels = zip_wheels(extension_zips[plat])
    names = {w.split("-")[0].lower() for w in wheels}
    assert names == {"semges", "onnxruntime", "soundfile", "cffi", "typing_extensions", "pocketsphinx"}
    assert not names & {"numpy", "torch", "scipy", "librosa", "protobuf", "sympy", "coloredlogs", "flatbuffers"}
    tag = {"linux-x64": "x86_64", "windows-x64": "win_amd64", "macos-arm64": ("arm64", "universal2"),
           "macos-x64": ("x86_64", "universal2")}[plat]
    for name, version in PINS.items():
        wheel = wheel_of(wheels, name)
        assert wheel.startswith(f"{name}-{version}-"), wheel
        assert wheel.endswith(".whl") and (wheel.endswith("-any.whl") or wheel[:-4].endswith(tag)), wheel
        if plat == "linux-x64" and not wheel.endswith("-any.whl"):
            assert "manylinux" in wheel, wheel


def test_linux_zip_has_manylinux_onnxruntime_and_pocketsphinx(extension_zips):
    wheels = zip_wheels(extension_zips["linux-x64"])
    ort, sphinx = wheel_of(wheels, "onnxruntime"), wheel_of(wheels, "pocketsphinx")
    assert ort.startswith(f"onnxruntime-{PINS['onnxruntime']}-cp311-cp311-manylinux") and ort.endswith("_x86_64.whl")
    assert sphinx.startswith("pocketsphinx-5.1.1-cp311-cp311-manylinux") and sphinx.endswith("_x86_64.whl")
    with zipfile.ZipFile(extension_zips["linux-x64"]) as z:
        assert not any("torch" in n or "numpy" in n for n in z.namelist())


def test_semges_wheel_holds_the_packages_and_demo_model(extension_zips):
    with zipfile.ZipFile(extension_zips["linux-x64"]) as z:
        names = z.namelist()
        assert {"__init__.py", "blender_manifest.toml"} <= set(names)
        with z.open(next(n for n in names if Path(n).name.startswith("semges-"))) as f, zipfile.ZipFile(f) as w:
            inside = set(w.namelist())
    assert {"semges_blender/__init__.py", "semges_blender/runner.py", "semges_blender/presets/mixamo.json",
            "semges_core/inference.py", "semges_core/assets/demo_model.safetensors"} <= inside
    assert not any("__pycache__" in n for n in inside)


# Checks that the runtime the zip brings works inside the stock Blender: onnxruntime runs a
# model, soundfile reads the example speech, pocketsphinx loads its model; and that nothing
# came from elsewhere (torch is absent, every module lives in the user's extensions folder).
RUNTIME_CHECK = r"""
import importlib.util
import numpy as np
import onnxruntime, pocketsphinx, soundfile, semges_blender
model, wav = args
session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
out["ort_version"] = onnxruntime.__version__
out["y"] = session.run(None, {"x": np.array([[1.0, 2.0, 3.0]], np.float32)})[0].tolist()
audio, rate = soundfile.read(wav, dtype="float32")
out["wav"] = [rate, len(audio)]
pocketsphinx.Decoder(samprate=16000, loglevel="FATAL")
out["numpy"] = np.__version__
out["files"] = {m.__name__: m.__file__ for m in (onnxruntime, pocketsphinx, soundfile, semges_blender)}
out["generate_op"] = hasattr(bpy.ops.semges, "generate") and hasattr(bpy.context.scene, "semges")
out["torch"] = importlib.util.find_spec("torch") is not None
"""


@pytest.mark.parametrize("version", list(STOCK_VENVS))
def test_stock_blender_installs_zip_and_runs_the_runtime(host_zip, version, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    # y = tanh(x W + 1): IR 10 / opset 18, what semges_core.model.export writes.
    w = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["z"]),
         helper.make_node("Tanh", ["z"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.ones(4, np.float32), "b")])
    model = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), model)

    out = run_in_stock_blender(version, host_zip, RUNTIME_CHECK, str(model), str(EXAMPLE_WAV), home=tmp_path)
    assert out["blender"].startswith(version)
    assert out["ort_version"] == PINS["onnxruntime"]
    np.testing.assert_allclose(out["y"], np.tanh(np.array([[1.0, 2.0, 3.0]]) @ w + 1), atol=1e-6)
    assert out["wav"][0] > 0 and out["wav"][1] > 0
    assert out["numpy"] == {"5.0": "1.26.4", "4.2": "1.24.3"}[version]
    ext_site = str(tmp_path / "user" / "extensions")
    assert all(f.startswith(ext_site) for f in out["files"].values()), out["files"]
    assert out["generate_op"] and not out["torch"]


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
from semges_blender.takes import active_take
out["action"] = active_take(rig).name
print("RESULT " + json.dumps(out))
sys.stdout.flush()
os._exit(0)  # Blender 4.2's bpy module may crash at exit with add-ons registered
"""


def test_installs_registers_and_generates(host_zip, tiny_bundle, tmp_path):  # noqa: F811
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    env.pop("PYTHONPATH", None)
    run = subprocess.run([sys.executable, "-c", INSTALL_SCRIPT, str(host_zip), str(tiny_bundle),
                          str(EXAMPLE_WAV), str(EXAMPLE_TG)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, run.stdout[-3000:] + run.stderr[-3000:]
    out = json.loads(line[len("RESULT "):])
    assert out["install"] == ["FINISHED"] and out["generate"] == ["FINISHED"] and out["action"] == "speech"
    ext_site = str(tmp_path / "user" / "extensions")
    assert out["semges_blender"].startswith(ext_site) and out["semges_core"].startswith(ext_site)
    assert out["demo_model"] and out["prefs"]
