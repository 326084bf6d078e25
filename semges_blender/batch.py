"""Gestures for one audio file or a folder of them, without the UI (background Blender or the bpy module).

Blender (the extension installed, or from a checkout with the script path):

    blender -b scene.blend --python-expr "from semges_blender.batch import main; main()" -- \\
        --audio speech.wav --transcript speech.TextGrid --armature Armature --preset mixamo --save out.blend
    blender -b scene.blend --python /path/to/semges_blender/batch.py -- --audio takes/ --armature Armature --save out.blend

Python with the bpy module:

    python -m semges_blender.batch --blend scene.blend --audio takes/ --armature Armature --save out.blend

A folder of audio files makes one action per file (named after it); each file's transcript
is the file beside it with the same name and a transcript suffix (or in --transcript, a
folder). Failures are reported per file and the others still run; the exit status is 0
when all succeeded, 1 when any failed, 2 for unusable arguments. Also callable as
`run_batch(...)`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):  # run as a script file: `blender --python .../semges_blender/batch.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "semges_blender"

import bpy  # noqa: E402

from semges_core.errors import SemgesError  # noqa: E402

from .keyframes import ApplyResult  # noqa: E402
from .pipeline import GenerateOptions, generate_gestures  # noqa: E402

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
TRANSCRIPT_SUFFIXES = (".TextGrid", ".textgrid", ".srt", ".vtt", ".json", ".txt")
EXIT_FAILED = 1
EXIT_USAGE = 2


@dataclass
class BatchItem:
    audio: Path
    transcript: Path | None
    result: ApplyResult | None = None
    error: str | None = None


def find_inputs(audio: str | Path, transcript: str | Path | None = None) -> list[BatchItem]:
    """(audio, transcript) pairs: one file, or every audio file of a folder with its transcript beside it."""
    audio = Path(audio)
    if not audio.exists():
        raise SemgesError(f"{audio}: no such audio file or folder")
    if audio.is_dir():
        files = sorted(p for p in audio.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise SemgesError(f"{audio}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder")
        folder = Path(transcript) if transcript else audio
        if not folder.is_dir():
            raise SemgesError(f"{folder}: with a folder of audio, --transcript must be a folder too")
        return [BatchItem(f, _sibling_transcript(folder, f.stem)) for f in files]
    if transcript is None:
        return [BatchItem(audio, _sibling_transcript(audio.parent, audio.stem))]
    return [BatchItem(audio, Path(transcript))]


def _sibling_transcript(folder: Path, stem: str) -> Path | None:
    for suffix in TRANSCRIPT_SUFFIXES:
        p = folder / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def _pick_armature(name: str | None) -> str:
    if name:
        return name
    arms = [o.name for o in bpy.context.scene.objects if o.type == 'ARMATURE']
    if len(arms) != 1:
        raise SemgesError(f"--armature is needed: the scene has {len(arms)} armatures"
                          + (f" ({', '.join(arms)})" if arms else ""))
    return arms[0]


def run_batch(audio: str | Path, transcript: str | Path | None = None, armature: str | None = None, *,
              preset: str = "auto", model: str = "", speaker: str = "", device: str = "auto", seed: int = 0,
              variation: float = 0.0,
              start_frame: int | None = None, add_audio: bool = False, allow_missing: bool = False,
              scene_range: str = "extend", python: str = "", save: str | Path | None = None,
              log=print) -> list[BatchItem]:
    """Generate and key every input; save the .blend at the end if asked and anything was keyed.

    python "": the add-on preferences' external Python when one is set, else Blender's own.
    """
    if not python:
        from .preferences import python_path

        python = python_path()
    items = find_inputs(audio, transcript)
    name = _pick_armature(armature)
    for item in items:
        if item.transcript is None:
            item.error = f"{item.audio}: no transcript beside it ({', '.join(TRANSCRIPT_SUFFIXES)})"
            log(f"semges: error: {item.error}")
            continue
        options = GenerateOptions(audio=str(item.audio), armature=name, transcript=str(item.transcript),
                                  preset=preset, model=model, speaker=speaker, device=device, seed=seed, variation=variation,
                                  start_frame=start_frame, add_audio=add_audio, allow_missing=allow_missing,
                                  scene_range=scene_range, python=python)
        try:
            item.result = generate_gestures(options)
        except SemgesError as e:
            item.error = str(e)
            log(f"semges: error: {e}")
            continue
        r = item.result
        log(f"{item.audio.name}: action {r.action.name!r} on {name!r} ({r.mapping}, {len(r.bones)} bones), "
            f"frames {r.frame_start}-{r.frame_end}")
        for w in r.warnings:
            log(f"semges: warning: {w}")
    if save and any(i.result for i in items):
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(save).resolve()))
        log(f"saved {save}")
    return items


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="semges_blender.batch", description="Co-speech gestures onto a rig, in batch.")
    p.add_argument("--blend", help="open this .blend first (the bpy module; Blender takes it on its own command line)")
    p.add_argument("--audio", required=True, help="an audio file, or a folder of them")
    p.add_argument("--transcript", help="the transcript (default: beside the audio, same name); a folder for a folder")
    p.add_argument("--armature", help="target armature object (default: the scene's only armature)")
    p.add_argument("--preset", default="auto", help="auto, beat, mixamo, rigify_metarig, rigify_fk, rigify_deform or a .json")
    p.add_argument("--model", default="", help="model bundle (default: the demo model)")
    p.add_argument("--speaker", default="")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--seed", type=int, default=0, help="which variant, when --variation is above 0")
    p.add_argument("--variation", type=float, default=0.0, help="0: most likely gestures; above 0: a variant per seed")
    p.add_argument("--start-frame", type=int, default=None,
                   help="frame of the first key (default: the scene's start frame)")
    p.add_argument("--add-audio", action="store_true", help="also put the speech in the sequencer")
    p.add_argument("--allow-missing", action="store_true", help="skip mapped bones the rig lacks")
    p.add_argument("--scene-range", default="extend", choices=("keep", "extend", "fit"))
    p.add_argument("--python", default="", help="external Python for the generator (default: the add-on "
                   "preferences' setting, else Blender's own Python with the bundled ONNX Runtime)")
    p.add_argument("--save", help="save the .blend here afterwards")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as e:
        return _exit(int(e.code or 0) and EXIT_USAGE)
    try:
        if args.blend:
            bpy.ops.wm.open_mainfile(filepath=args.blend)
        items = run_batch(args.audio, args.transcript, args.armature, preset=args.preset, model=args.model,
                          speaker=args.speaker, device=args.device, seed=args.seed, variation=args.variation, start_frame=args.start_frame,
                          add_audio=args.add_audio, allow_missing=args.allow_missing,
                          scene_range=args.scene_range, python=args.python, save=args.save)
    except SemgesError as e:
        print(f"semges: error: {e}", file=sys.stderr)
        return _exit(EXIT_USAGE)
    except RuntimeError as e:  # bpy.ops failures (opening or saving a .blend)
        print(f"semges: error: {str(e).strip()}", file=sys.stderr)
        return _exit(EXIT_USAGE)
    failed = [i for i in items if i.error]
    print(f"semges: {len(items) - len(failed)} of {len(items)} done" + (f", {len(failed)} failed" if failed else ""))
    return _exit(EXIT_FAILED if failed else 0)


def _exit(code: int) -> int:
    """Inside Blender a script's return value is ignored: leave with the code when in background mode."""
    if bpy.app.background and not _is_module_build() and code:
        sys.stdout.flush()
        sys.exit(code)
    return code


def _is_module_build() -> bool:
    """bpy imported as a Python module (no Blender executable): the caller handles the exit status."""
    return not bpy.app.binary_path


if __name__ == "__main__":
    sys.exit(main())
