"""Build the Blender extension zip: `python -m semges_blender.build_extension [--out dist]`.

Blender loads an extension as a package (`bl_ext.<repo>.semges`) whose root holds
`__init__.py` and `blender_manifest.toml`; the Python modules it needs beyond that ship as
wheels that Blender installs into the extension's own site-packages. So the zip is:

    blender_manifest.toml       (the repository's, as it is)
    __init__.py                 (registers semges_blender under the extension's name)
    wheels/semges-<version>-py3-none-any.whl   (semges_blender + semges_core + the demo model)

torch and the other inference dependencies are not in it (see docs/blender.md). The zip
is built and validated with Blender's own extension tool (`blender_ext.py`, which ships in
the bpy module and Blender under scripts/addons_core/bl_pkg/cli), the same code as
`blender --command extension build` and `validate`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("semges_blender", "semges_core")
PACKAGE_DATA = {"semges_core": ("assets/*.safetensors", "assets/*.json"), "semges_blender": ("presets/*.json",)}

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
                          timeout=300)


def build(out_dir: str | Path = REPO / "dist") -> Path:
    """Stage and build `<id>-<version>.zip` in out_dir, then validate it; returns the zip."""
    m = manifest()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel_rel = [w for w in m.get("wheels", []) if Path(w).name.startswith("semges-")]
    if len(wheel_rel) != 1:
        raise ValueError("blender_manifest.toml must list exactly one semges-*.whl wheel")
    with tempfile.TemporaryDirectory(prefix="semges_ext_") as tmp:
        stage = Path(tmp) / "semges"
        stage.mkdir()
        (stage / "blender_manifest.toml").write_bytes((REPO / "blender_manifest.toml").read_bytes())
        (stage / "__init__.py").write_text(SHIM, encoding="utf-8")
        wheel = build_wheel(stage / Path(wheel_rel[0]).parent, m["version"])
        if wheel.name != Path(wheel_rel[0]).name:
            raise ValueError(f"the manifest names {wheel_rel[0]} but the wheel built is {wheel.name}")
        target = out_dir / f"{m['id']}-{m['version']}.zip"
        res = run_tool(["build", "--source-dir", str(stage), "--output-filepath", str(target)])
        if res.returncode != 0 or not target.is_file():
            raise RuntimeError(f"extension build failed:\n{res.stdout}{res.stderr}")
    res = run_tool(["validate", str(target)])
    if res.returncode != 0:
        raise RuntimeError(f"extension validation failed:\n{res.stdout}{res.stderr}")
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m semges_blender.build_extension", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "dist"), help="output folder (default: dist/)")
    args = p.parse_args(argv)
    try:
        zip_path = build(args.out)
    except (RuntimeError, ValueError, FileNotFoundError) as e:
        print(f"semges: error: {e}", file=sys.stderr)
        return 1
    print(f"built and validated {zip_path} ({zip_path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
