"""Generation in a process of its own: `python -m semges_blender.runner --audio ... --out motion.npz`.

Uses semges_core only (no bpy): ONNX Runtime and numpy when the bundle carries graphs
(what a stock Blender's own Python runs), else torch. Blender starts it through
`worker.py`, so a crash or a long computation in the model runtime never takes Blender
down or freezes it.

Protocol: one JSON object per line on stdout, nothing else there (anything libraries
print goes to stderr):

    {"progress": 0.4, "status": "generating window 3/8"}
    {"done": true, "out": "/tmp/x.npz", "frames": 720, "fps": 24.0, "seconds": 1.3, "words": 42,
     "alignment": "aligned 42 words with pocketsphinx forced alignment",
     "warnings": ["talk.txt: 900 words in 30.0 s of speech is faster than anyone speaks; ..."]}

"alignment" says how the words got their times (which aligner ran, or that the file
gave them), a line for Blender's report, as `semges generate` prints it.
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
import warnings
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
    p.add_argument("--runtime", default="auto", choices=("auto", "onnx", "torch"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variation", type=float, default=0.0)
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of the written motion")
    p.add_argument("--language", default="en", help="language of the transcript (en: forced alignment; "
                   "others: the energy aligner)")
    return p


def _read_inputs(args: argparse.Namespace, sample_rate: int):
    """The audio at `sample_rate` and its TimedTranscript; SemgesError naming the file when either is bad."""
    from semges_core.speech.audio import MIN_AUDIO_SECONDS, load_audio
    from semges_core.speech.transcripts import load_timed_transcript

    audio = load_audio(args.audio, sample_rate, min_seconds=MIN_AUDIO_SECONDS)
    if args.transcript_label:
        text = Path(args.transcript).read_text(encoding="utf-8")
        timed = load_timed_transcript(args.transcript_label, audio=audio, sample_rate=sample_rate, text_block=text,
                                      language=args.language)
    else:
        timed = load_timed_transcript(args.transcript, audio=audio, sample_rate=sample_rate, language=args.language)
    return audio, timed


def run(args: argparse.Namespace, emit) -> dict:
    from semges_core.speech.audio import DEFAULT_SAMPLE_RATE

    t0 = time.perf_counter()
    # Audio and transcript first: a bad file is reported in a moment, not after the model
    # runtime has loaded. Warnings (a transcript that looks wrong for the
    # audio) go back to Blender with the result.
    emit({"progress": 0.0, "status": "reading audio and transcript"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        audio, timed = _read_inputs(args, DEFAULT_SAMPLE_RATE)

        from semges_core.bundle import default_bundle_path
        from semges_core.formats.npz import save_motion_npz
        from semges_core.inference import generate
        from semges_core.runtime import load_model

        emit({"progress": 0.02, "status": "loading the model"})
        model = load_model(Path(args.model) if args.model else default_bundle_path(), args.runtime, args.device,
                           args.precision)
        sr = model.header.audio_config.sample_rate
        if sr != DEFAULT_SAMPLE_RATE:  # a model with another front-end rate: read both again at it
            audio, timed = _read_inputs(args, sr)
    words = timed.words

    def progress(fraction: float, status: str) -> None:
        emit({"progress": round(0.05 + 0.9 * fraction, 4), "status": status})

    result = generate(model, audio, words, args.speaker, fps=args.fps, seed=args.seed, progress=progress,
                      variation=args.variation)
    emit({"progress": 0.97, "status": "writing the motion"})
    save_motion_npz(args.out, result.motion, with_euler=False)  # Blender reads quaternions
    ours = [w for w in caught if w.category.__module__.startswith("semges_core")]  # not the libraries' chatter
    shown = list(dict.fromkeys(str(w.message) for w in ours))
    return {"done": True, "out": str(args.out), "frames": result.motion.n_frames, "fps": result.motion.fps,
            "seconds": round(time.perf_counter() - t0, 3), "words": len(words), "audio_seconds": len(audio) / sr,
            "alignment": timed.note,
            "runtime": result.runtime, "device": model.device, "peak_rss_mib": _peak_rss_mib(),
            "warnings": shown}


def _peak_rss_mib() -> float | None:
    """This process's peak resident memory (what the worker cost), where the OS tells.

    Linux: VmHWM of this process's own memory. getrusage's ru_maxrss is not used there: it
    survives exec, so a worker started by Blender (vfork + exec) would report Blender's own peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


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
