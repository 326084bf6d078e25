#!/usr/bin/env bash
# Sets up everything SemGes needs on a new Debian/Ubuntu machine, and does nothing
# that is already done: system packages (espeak-ng, sox), the main virtual
# environment .venv (PyTorch CPU, the project, test tools, Blender 5.0 as bpy)
# and, with --blender42, a second one with Blender 4.2 LTS for the extension tests.
set -euo pipefail
cd "$(dirname "$0")/.."

want_42=0
for arg in "$@"; do
  case "$arg" in
    --blender42) want_42=1 ;;
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
say "ready"
