#!/usr/bin/env bash
# Sets up (see setup.sh) and runs the main job: gestures for the example speech
# (examples/speech.wav + its TextGrid) with the bundled demo model. Outputs go to
# outputs/demo/: gestures.bvh (BEAT skeleton, 30 fps; import it in Blender or any
# BVH tool), gestures.npz (joint rotations) and preview.gif (a stick figure with
# the words as captions).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MPLBACKEND=Agg
out=outputs/demo
mkdir -p "$out"
.venv/bin/semges generate \
  --audio examples/speech.wav --transcript examples/speech.TextGrid \
  --out "$out/gestures.bvh" --preview "$out/preview.gif" --timings
echo
echo "Outputs in $out/: gestures.bvh, gestures.npz, preview.gif"
