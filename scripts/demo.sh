#!/usr/bin/env bash
# Sets up (see setup.sh) and runs the main job. Until the demo model lands, the main
# job makes a SynthBEAT take (espeak-ng speech, word timings, gestures in BEAT's BVH)
# and renders a preview of it. Everything is written under outputs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MPLBACKEND=Agg
out=outputs/demo
rm -rf "$out/synthbeat"
.venv/bin/semges synth --out "$out/synthbeat" --speakers 1 --takes-per-speaker 1 --take-seconds 20 --fps 30 --seed 0
bvh=$(find "$out/synthbeat" -name '*.bvh' | sort | head -n 1)
.venv/bin/semges preview "$bvh" --out "$out/preview.gif" --png "$out/preview.png"
echo
echo "Outputs in $out/:"
echo "  $bvh (and its .wav, .TextGrid, .txt, .csv)"
echo "  $out/preview.gif  (stick figure with the spoken words)"
echo "  $out/preview.png  (contact sheet of poses)"
