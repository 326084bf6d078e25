"""Generation in a process of its own: `python -m semges_blender.runner --audio ... --out motion.npz`.

Uses semges_core only (torch, no bpy); Blender starts it through `worker.py`, so a crash
or a long computation in the model runtime never takes Blender down or freezes it.

Protocol: one JSON object per line on stdout, nothing else there (anything libraries
print goes to stderr):

    {"progress": 0.4, "status": "generating window 3/8"}
    {"done": true, "out": "/tmp/x.npz", "frames": 720, "fps": 24.0, "seconds": 1.3, "words": 42}
    {"error": "speech.wav: file not found"}        (exit status 1; 2 for an unexpected crash)

The motion is written with `save_motion_npz` at the requested frame rate (resampled
by `Motion.resample`), atomically, so a cancelled run never leaves a partial file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Sequence

EXIT_ERROR = 1
EXIT_CRASH = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m semges_blender.runner", description=__doc__.splitlines()[0])
    p.add_argument("--audio", required=True)
    p.add_argument("--transcript", required=True, help="transcript file (any format semges_core reads)")
    p.add_argument("--transcript-label", help="the transcript file holds a Blender text block's text; "
                   "this is the block's name, used to pick the format and in messages")
    p.add_argument("--out", required=True, help="motion .npz to write")
    p.add_argument("--model", help="model bundle (default: the bundled demo model)")
    p.add_argument("--speaker", help="speaker id or name (default: the model's first)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of the written motion")
    return p


def run(args: argparse.Namespace, emit) -> dict:
    from semges_core.audio import load_audio
    from semges_core.bundle import default_bundle_path, load_bundle
    from semges_core.inference import generate
    from semges_core.motion_npz import save_motion_npz
    from semges_core.transcripts import load_transcript

    t0 = time.perf_counter()
    emit({"progress": 0.0, "status": "loading the model"})
    bundle = load_bundle(Path(args.model) if args.model else default_bundle_path())
    emit({"progress": 0.0, "status": "reading audio and transcript"})
    sr = bundle.audio_config.sample_rate
    audio = load_audio(args.audio, sr)
    if args.transcript_label:
        text = Path(args.transcript).read_text(encoding="utf-8")
        words = load_transcript(args.transcript_label, audio=audio, sample_rate=sr, text_block=text)
    else:
        words = load_transcript(args.transcript, audio=audio, sample_rate=sr)

    def progress(fraction: float, status: str) -> None:
        emit({"progress": round(0.05 + 0.9 * fraction, 4), "status": status})

    result = generate(bundle, audio, words, args.speaker, fps=args.fps, device=args.device,
                      precision=args.precision, seed=args.seed, progress=progress)
    emit({"progress": 0.97, "status": "writing the motion"})
    save_motion_npz(args.out, result.motion)
    return {"done": True, "out": str(args.out), "frames": result.motion.n_frames, "fps": result.motion.fps,
            "seconds": round(time.perf_counter() - t0, 3), "words": len(words), "audio_seconds": len(audio) / sr}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Our protocol owns stdout; whatever else prints goes to stderr.
    proto = sys.stdout
    sys.stdout = sys.stderr

    def emit(obj: dict) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    from semges_core.errors import SemgesError

    try:
        emit(run(args, emit))
        return 0
    except SemgesError as e:
        emit({"error": str(e)})
        return EXIT_ERROR
    except MemoryError:
        emit({"error": "out of memory while generating; try a shorter clip or another device"})
        return EXIT_CRASH
    except Exception as e:  # a bug or a broken runtime: one line for the user, the traceback on stderr
        traceback.print_exc()
        emit({"error": f"the generator crashed ({type(e).__name__}: {e})"})
        return EXIT_CRASH


if __name__ == "__main__":
    sys.exit(main())
