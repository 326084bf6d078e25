#!/usr/bin/env bash
# Sets up everything SemGes needs on a new Debian/Ubuntu machine, and does nothing
# that is already done: system packages (espeak-ng, sox), the main virtual
# environment .venv (PyTorch CPU, the project, test tools, Blender 5.0 as bpy),
# with --blender42 a second one with Blender 4.2 LTS for the extension tests, and with
# --stock two "stock Blender" ones, .venv-stock50 and .venv-stock42, that hold bpy and
# the numpy that Blender ships and nothing else: the extension tests install the built
# zip there, as in a fresh Blender.
set -euo pipefail
cd "$(dirname "$0")/.."

want_42=0
want_stock=0
for arg in "$@"; do
  case "$arg" in
    --blender42) want_42=1 ;;
    --stock) want_stock=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { printf '[setup] %s\n' "$*"; }

# System packages: espeak-ng makes real speech for the tests and SynthBEAT.
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v sox >/dev/null 2>&1 || missing+=(sox)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "setup.sh: Python 3.11 is required (bpy wheels exist for 3.11 only)" >&2; exit 1; }

# pip quietly, but show everything and stop when it fails.
pip_in() {
  local dir=$1; shift
  local log; log=$(mktemp)
  if ! "$dir/bin/python" -m pip install -q "$@" >"$log" 2>&1; then
    grep -v 'is ignored' "$log" >&2; rm -f "$log"
    echo "setup.sh: pip install $* failed" >&2; exit 1
  fi
  rm -f "$log"
}

# make_venv DIR STAMP_INPUT PIP_ARGS...: (re)install only when the inputs changed.
make_venv() {
  local dir=$1 key=$2; shift 2
  local stamp="$dir/.semges-setup"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
    return 0
  fi
  say "creating $dir"
  [ -d "$dir" ] || "$PY" -m venv "$dir"
  pip_in "$dir" --upgrade pip
  # The CPU build of PyTorch first: an unpinned torch would pull a multi-GB CUDA build.
  pip_in "$dir" torch==2.13.0
  pip_in "$dir" "$@"
  "$dir/bin/python" -c 'import torch, numpy' >/dev/null
  echo "$key" > "$stamp"
}

key=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
make_venv .venv "$key" -e '.[test]'
.venv/bin/python -c 'import bpy, semges_core' >/dev/null

if [ "$want_42" -eq 1 ]; then
  make_venv .venv-blender42 "$key" -e '.' 'bpy==4.2.23' 'pytest==9.2.0' 'hypothesis==6.170.17'
  .venv-blender42/bin/python -c 'import bpy, semges_core' >/dev/null
fi

# make_stock_venv DIR PIP_ARGS...: a venv like a stock Blender's Python, rebuilt from scratch
# whenever its pins change (so nothing left from older pins lingers).
make_stock_venv() {
  local dir=$1; shift
  local key="$*"
  local stamp="$dir/.semges-setup"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
    return 0
  fi
  say "creating $dir ($key)"
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  pip_in "$dir" "$@"
  # Stock means stock: a test that passes here must not lean on anything Blender lacks
  # (-I: this checkout, the current folder, must not count).
  "$dir/bin/python" -I -c '
import importlib.util, sys
import bpy, numpy
extra = [m for m in ("torch", "onnxruntime", "soundfile", "scipy", "librosa", "pocketsphinx", "pytest", "semges_core")
         if importlib.util.find_spec(m)]
sys.exit(f"not a stock Blender Python, it has {extra}" if extra else 0)' >/dev/null
  echo "$key" > "$stamp"
}

if [ "$want_stock" -eq 1 ]; then
  # numpy as each Blender release ships it (5.0: 1.26.4, 4.2 LTS: 1.24.3); bpy brings the rest
  # of what Blender bundles (requests, cython, zstandard).
  make_stock_venv .venv-stock50 'bpy==5.0.1' 'numpy==1.26.4'
  make_stock_venv .venv-stock42 'bpy==4.2.23' 'numpy==1.24.3'
fi
say "ready"
