"""Build the Blender extension zips: `python -m semges_blender.build_extension [--out dist]`.

Blender loads an extension as a package (`bl_ext.<repo>.semges`) whose root holds
`__init__.py` and `blender_manifest.toml`; the Python modules it needs beyond that ship as
wheels that Blender installs into the extensions' own site-packages. Compiled wheels differ
per platform, so there is one zip per platform (`semges-<version>-linux_x64.zip`, ...):

    blender_manifest.toml       (the repository's, plus the runtime wheels; Blender's tool
                                 appends each zip's own `platforms` and `wheels`)
    __init__.py                 (registers semges_blender under the extension's name)
    wheels/semges-<version>-py3-none-any.whl   (semges_blender + semges_core + the demo model)
    wheels/onnxruntime-..., soundfile-..., pocketsphinx-...   (that platform's RUNTIME_WHEELS)

The runtime wheels come unmodified from PyPI (`pip download`, cached in build/wheels/ and
reused); docs/runtime-wheels.md says why these and no others. Staging, splitting and
validation are done by Blender's own extension tool (`blender_ext.py`, which ships in the bpy
module and Blender under scripts/addons_core/bl_pkg/cli), the same code as
`blender --command extension build --split-platforms` and `validate`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("semges_blender", "semges_core")
PACKAGE_DATA = {"semges_core": ("assets/*.safetensors", "assets/*.json"), "semges_blender": ("presets/*.json",)}
WHEEL_CACHE = REPO / "build" / "wheels"
MAX_ZIP_BYTES = 100 * 1000 * 1000

# What Blender's own Python lacks (it has numpy, so numpy is never shipped). Each is tested
# with `pip install --no-deps` next to Blender's numpy; their other declared dependencies are
# left out because nothing we call imports them: onnxruntime's coloredlogs, flatbuffers,
# packaging, protobuf and sympy serve only its tools/quantization/transformers helpers, cffi
# needs pycparser only to compile cdefs (soundfile's are precompiled), and pocketsphinx
# imports sounddevice only to record from a microphone.
RUNTIME_WHEELS = (
    "onnxruntime==1.19.2",       # the last release with wheels for macOS 11 (docs/runtime-wheels.md)
    "soundfile==0.14.0",         # reads flac/ogg/mp3 (libsndfile inside); wav works without it
    "cffi==2.1.1",               # soundfile's binding to libsndfile
    "typing_extensions==4.16.0",  # imported by soundfile 0.14
    "pocketsphinx==5.1.1",       # aligns plain-text transcripts to the audio
)

# Blender platform -> the wheel platform tags pip may pick for it: those that the oldest system
# Blender 4.2 LTS .. 5.x runs on accepts (glibc 2.28, macOS 11). pip widens a macOS tag to
# older versions and universal2 by itself, but not a manylinux one, hence the list.
PIP_PLATFORMS = {
    "linux-x64": tuple(f"manylinux_2_{m}_x86_64" for m in range(28, 4, -1)) + ("manylinux2014_x86_64",),
    "windows-x64": ("win_amd64",),
    "macos-arm64": ("macosx_11_0_arm64",),
    "macos-x64": ("macosx_11_0_x86_64",),
}

SHIM = '''"""SemGes for Blender (extension entry point): registers the semges_blender package from this extension's wheel."""


def register():
    import semges_blender

    semges_blender.register(__package__)


def unregister():
    import semges_blender

    semges_blender.unregister()
'''


def manifest(path: Path = REPO / "blender_manifest.toml") -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)


def package_files(root: Path = REPO) -> list[tuple[Path, str]]:
    """(file, name in the wheel) for the Python sources and package data of PACKAGES."""
    out = []
    for pkg in PACKAGES:
        base = root / pkg
        files = {p for p in base.rglob("*.py") if "__pycache__" not in p.parts}
        for pattern in PACKAGE_DATA.get(pkg, ()):
            files |= set(base.glob(pattern))
        out += [(p, p.relative_to(root).as_posix()) for p in sorted(files)]
    return out


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(out_dir: Path, version: str, root: Path = REPO) -> Path:
    """A pure-Python wheel of semges_blender + semges_core (+ data); no dependencies declared."""
    name = f"semges-{version}-py3-none-any.whl"
    dist_info = f"semges-{version}.dist-info"
    meta = {
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: semges\nVersion: {version}\n"
                                 "Summary: SemGes co-speech gestures: library and Blender extension\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: semges_blender.build_extension\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for src, arc in package_files(root):
            data = src.read_bytes()
            z.writestr(arc, data)
            record.append(f"{arc},{_record_hash(data)},{len(data)}")
        for arc, text in meta.items():
            data = text.encode()
            z.writestr(arc, data)
            record.append(f"{arc},{_record_hash(data)},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        z.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return path


def _wheel_prefix(requirement: str) -> str:
    """`typing-extensions==4.16.0` -> `typing_extensions-4.16.0-`, how its wheel's file name starts."""
    name, sep, version = requirement.partition("==")
    if not sep or not version:
        raise ValueError(f"{requirement!r}: runtime wheels must be pinned as name==version")
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-"


def cached_wheels(platform: str, cache: Path = WHEEL_CACHE) -> dict[str, Path | None]:
    """requirement -> its wheel for `platform` in the cache, or None when not downloaded yet."""
    folder = cache / platform
    files = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    out: dict[str, Path | None] = {}
    for req in RUNTIME_WHEELS:
        found = [f for f in files if f.name.lower().startswith(_wheel_prefix(req))]
        if len(found) > 1:
            raise RuntimeError(f"{folder}: several wheels for {req} ({', '.join(f.name for f in found)}); "
                               "delete the folder to download again")
        out[req] = found[0] if found else None
    return out


def fetch_wheels(platform: str, cache: Path = WHEEL_CACHE) -> list[Path]:
    """RUNTIME_WHEELS for one Blender platform, downloaded from PyPI into the cache once."""
    if platform not in PIP_PLATFORMS:
        raise ValueError(f"no wheel platform tags for Blender platform {platform!r}; known: {', '.join(PIP_PLATFORMS)}")
    missing = [req for req, path in cached_wheels(platform, cache).items() if path is None]
    if missing:
        cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
               "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
               *(f"--platform={tag}" for tag in PIP_PLATFORMS[platform]), "-d", str(cache / platform), *missing]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            raise RuntimeError(f"pip could not download {', '.join(missing)} for {platform}:\n"
                               f"{res.stdout[-2000:]}{res.stderr[-3000:]}")
    wheels = cached_wheels(platform, cache)
    if None in wheels.values():  # pip succeeded yet left no wheel under the pinned name
        raise RuntimeError(f"{cache / platform}: no wheel for {[r for r, p in wheels.items() if p is None]}")
    return list(wheels.values())


def blender_ext_tool() -> tuple[Path, Path | None]:
    """Blender's extension command-line tool and its valid-tags file, from the bpy module."""
    import bpy

    scripts = Path(bpy.utils.system_resource('SCRIPTS'))
    tool = scripts / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    tags = scripts / "modules" / "_bpy_internal" / "extensions" / "tags.py"
    if not tool.is_file():
        raise FileNotFoundError(f"{tool}: Blender's extension tool is missing from this bpy")
    return tool, tags if tags.is_file() else None


def run_tool(args: list[str]) -> subprocess.CompletedProcess:
    tool, tags = blender_ext_tool()
    extra = [f"--valid-tags={tags}"] if tags and args[0] in ("build", "validate") else []
    return subprocess.run([sys.executable, str(tool), *args[:1], *extra, *args[1:]], capture_output=True, text=True,
                          timeout=600)


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def staged_manifest(text: str, wheels: list[str]) -> str:
    """The repository's manifest with `wheels` listing every platform's wheels (Blender's tool
    then writes each zip's own subset into a `[build.generated]` table)."""
    new, n = re.subn(r"^wheels\s*=\s*\[[^\]]*\]", lambda _: f"wheels = {_toml_list(wheels)}", text, flags=re.M)
    if n != 1:
        raise ValueError("blender_manifest.toml must have one `wheels = [...]` line")
    return new


def zip_wheels(zip_path: Path) -> list[str]:
    """File names of the wheels inside an extension zip."""
    with zipfile.ZipFile(zip_path) as z:
        return sorted(Path(n).name for n in z.namelist() if n.endswith(".whl"))


def build(out_dir: str | Path = REPO / "dist", cache: str | Path = WHEEL_CACHE) -> dict[str, Path]:
    """Build `<id>-<version>-<platform>.zip` for each platform of the manifest into out_dir and
    validate them; returns {Blender platform: zip}."""
    m = manifest()
    out_dir, cache = Path(out_dir).resolve(), Path(cache).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel_rel = list(m.get("wheels", []))
    if len(wheel_rel) != 1 or not Path(wheel_rel[0]).name.startswith("semges-"):
        raise ValueError("blender_manifest.toml must list one wheel, semges-*.whl (the build adds the runtime wheels)")
    platforms = list(m.get("platforms", []))
    if not platforms or set(platforms) - set(PIP_PLATFORMS):
        raise ValueError(f"blender_manifest.toml must list `platforms`, each one of {', '.join(PIP_PLATFORMS)}")
    runtime = {p: fetch_wheels(p, cache) for p in platforms}
    with tempfile.TemporaryDirectory(prefix="semges_ext_") as tmp:
        stage = Path(tmp) / "semges"
        wheel_dir = stage / Path(wheel_rel[0]).parent
        wheel_dir.mkdir(parents=True)
        (stage / "__init__.py").write_text(SHIM, encoding="utf-8")
        wheel = build_wheel(wheel_dir, m["version"])
        if wheel.name != Path(wheel_rel[0]).name:
            raise ValueError(f"the manifest names {wheel_rel[0]} but the wheel built is {wheel.name}")
        names = {w.name: w for wheels in runtime.values() for w in wheels}  # universal2 wheels serve two platforms
        for name, src in names.items():
            shutil.copyfile(src, wheel_dir / name)
        folder = wheel_rel[0].rpartition("/")[0]  # "./wheels", written the manifest's way
        listed = [wheel_rel[0]] + [f"{folder}/{n}" for n in sorted(names)]
        text = (REPO / "blender_manifest.toml").read_text(encoding="utf-8")
        (stage / "blender_manifest.toml").write_text(staged_manifest(text, listed), encoding="utf-8")
        for old in out_dir.glob(f"{m['id']}-{m['version']}-*.zip"):
            old.unlink()  # a platform dropped from the manifest must not leave its old zip behind
        res = run_tool(["build", "--split-platforms", "--source-dir", str(stage), "--output-dir", str(out_dir)])
        if res.returncode != 0:
            raise RuntimeError(f"extension build failed:\n{res.stdout}{res.stderr}")
    zips = {p: out_dir / f"{m['id']}-{m['version']}-{p.replace('-', '_')}.zip" for p in platforms}
    for platform, path in zips.items():
        if not path.is_file():
            raise RuntimeError(f"extension build made no {path.name}:\n{res.stdout}{res.stderr}")
        res = run_tool(["validate", str(path)])
        if res.returncode != 0:
            raise RuntimeError(f"extension validation failed for {path.name}:\n{res.stdout}{res.stderr}")
        want = sorted([wheel.name] + [w.name for w in runtime[platform]])
        if zip_wheels(path) != want:  # Blender's tool filters wheels by their tags: catch a mismatch here
            raise RuntimeError(f"{path.name} holds {zip_wheels(path)}, expected {want}")
        if path.stat().st_size > MAX_ZIP_BYTES:
            raise RuntimeError(f"{path.name} is {path.stat().st_size / 1e6:.1f} MB, over {MAX_ZIP_BYTES / 1e6:.0f} MB")
    return zips


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m semges_blender.build_extension", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "dist"), help="output folder (default: dist/)")
    p.add_argument("--wheel-cache", default=str(WHEEL_CACHE),
                   help="where downloaded runtime wheels are kept and reused (default: build/wheels/)")
    args = p.parse_args(argv)
    try:
        zips = build(args.out, args.wheel_cache)
    except (RuntimeError, ValueError, FileNotFoundError, subprocess.SubprocessError) as e:
        print(f"semges: error: {e}", file=sys.stderr)
        return 1
    for platform, path in zips.items():
        print(f"built and validated {path} ({path.stat().st_size / 1e6:.1f} MB, {platform})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
