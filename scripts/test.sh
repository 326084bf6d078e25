#!/usr/bin/env bash
# Sets up (see setup.sh) and runs the whole test suite: everything under Blender 5.0,
# then the tests that touch Blender again under Blender 4.2 LTS (the older animation API).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --blender42 --stock
export PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg
echo "== tests (Python $(.venv/bin/python -c 'import sys;print(sys.version.split()[0])'), Blender $(.venv/bin/python -c 'import bpy;print(bpy.app.version_string)' 2>/dev/null))"
.venv/bin/python -m pytest -q "$@"
echo "== Blender-facing tests under Blender $(.venv-blender42/bin/python -c 'import bpy;print(bpy.app.version_string)' 2>/dev/null)"
.venv-blender42/bin/python -m pytest -q -m blender "$@"
