"""Gestures for one audio file or a folder of them, without the UI (background Blender or the bpy module).

Blender (the extension installed, or from a checkout with the script path):

    blender -b scene.blend --python-expr "from semges_blender.batch import main; main()" -- \\
        --audio speech.wav --transcript speech.TextGrid --armature Armature --preset mixamo --save out.blend
    blender -b scene.blend --python /path/to/semges_blender/batch.py -- --audio takes/ --armature Armature --save out.blend

Python with the bpy module:

    python -m semges_blender.batch --blend scene.blend --audio takes/ --armature Armature --save out.blend

Why a module of its own: a render farm or a script has no panel, yet it must get what the
panel gives: the same defaults (sound in the sequencer, the scene's start frame, lighter
keys), the runtime chosen in the add-on preferences (read from Blender's preferences the
way the operators read them; `--python` overrides), and nothing lost silently: a run that
would save nothing is refused unless `--no-save` says so. A folder of audio files makes
one take per file (named after it), placed one after another on the timeline, each kept as
its own strip on the rig's SemGes track; each file's transcript is the file beside it with
the same name and a transcript suffix (or in --transcript, a folder). Failures are reported
per file and the others still run; the exit status is 0 when all succeeded, 1 when any
failed, 2 for unusable arguments. Also callable as `run_batch(...)`.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from .pipeline import GenerateOptions, generate_gestures, resolve_start  # noqa: E402

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
TRANSCRIPT_SUFFIXES = (".TextGrid", ".textgrid", ".srt", ".vtt", ".json", ".txt")
EXIT_FAILED = 1
EXIT_USAGE = 2
# Options run_batch fills in itself, per file.
_PER_FILE = {"audio", "armature", "transcript", "text_block", "start_frame", "action_name", "redo_range"}


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


def batch_options(**settings) -> GenerateOptions:
    """GenerateOptions for every file of a batch: the panel's defaults, `settings` on top.

    python "" (the default): the add-on preferences' external Python when one is set, else Blender's own.
    """
    fields = {f.name for f in dataclasses.fields(GenerateOptions)}
    unknown = sorted(set(settings) - (fields - _PER_FILE))
    if unknown:
        raise TypeError(f"run_batch() got unknown settings: {', '.join(unknown)}")
    if not settings.get("python"):
        from .preferences import python_path

        settings["python"] = python_path()
    return GenerateOptions(audio="", armature="", **settings)


def run_batch(audio: str | Path, transcript: str | Path | None = None, armature: str | None = None, *,
              start_frame: int | None = None, save: str | Path | None = None, log=print,
              **settings) -> list[BatchItem]:
    """Generate and key every input, one take after another from `start_frame` (default: the scene's
    start); save the .blend at the end if asked and anything was keyed.

    settings: any GenerateOptions field (preset, model, speaker, device, seed, variation, add_audio,
    blend, influence, intensity_arms, reduce_keys, key_tolerance, python, ...); defaults as in the panel.
    """
    base = batch_options(**settings)
    items = find_inputs(audio, transcript)
    name = _pick_armature(armature)
    scene = bpy.context.scene
    frame = resolve_start(start_frame, scene)
    for item in items:
        if item.transcript is None:
            item.error = f"{item.audio}: no transcript beside it ({', '.join(TRANSCRIPT_SUFFIXES)})"
            log(f"semges: error: {item.error}")
            continue
        options = dataclasses.replace(base, audio=str(item.audio), armature=name, transcript=str(item.transcript),
                                      start_frame=frame)
        try:
            item.result = generate_gestures(options, scene)
        except SemgesError as e:
            item.error = str(e)
            log(f"semges: error: {e}")
            continue
        r = item.result
        frame = r.frame_end + 1  # the next take starts where this one ends
        log(f"{item.audio.name}: take {r.action.name!r} on {name!r} ({r.mapping}, {len(r.bones)} bones), "
            f"frames {r.frame_start}-{r.frame_end}" + _keys_note(r))
        for w in r.warnings:
            log(f"semges: warning: {w}")
    if save and any(i.result for i in items):
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(save).resolve()))
        log(f"saved {save}")
    elif save:
        log(f"nothing was keyed: {save} not saved")
    return items


def _keys_note(result: ApplyResult) -> str:
    before, after = getattr(result, "keys_before", None), getattr(result, "keys_after", None)
    return f", {after} keys (from {before})" if before and after is not None and after != before else ""


def _percent(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 200.0:
        raise argparse.ArgumentTypeError(f"must be a percentage from 0 to 200, got {text}")
    return value / 100.0


def _factor(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {text}")
    return value


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
                   help="frame of the first key (default: the scene's start frame); the takes of a folder follow "
                        "one another from there")
    p.add_argument("--add-audio", action=argparse.BooleanOptionalAction, default=True,
                   help="put the speech in the sequencer at each take's start (default: yes, as the panel)")
    p.add_argument("--allow-missing", action="store_true", help="skip mapped bones the rig lacks")
    p.add_argument("--scene-range", default="extend", choices=("keep", "extend", "fit"))
    p.add_argument("--blend-mode", default="REPLACE", type=str.upper, choices=("REPLACE", "ADD"),
                   help="how the gestures layer over the rig's own animation (default: replace, on the mapped bones)")
    p.add_argument("--influence", type=_factor, default=1.0, help="the gesture layer's influence, 0 to 1 (default 1)")
    p.add_argument("--blend-in", type=float, default=0.0, help="frames the layer fades in over (default 0)")
    p.add_argument("--blend-out", type=float, default=0.0, help="frames the layer fades out over (default 0)")
    for part, what in (("arms", "shoulders, arms"), ("hands", "fingers"), ("torso", "spine, neck, head")):
        p.add_argument(f"--intensity-{part}", type=_percent, default=1.0, metavar="PERCENT",
                       help=f"gesture size of the {what}, 0-200%% around the neutral pose (default 100)")
    p.add_argument("--key-tolerance", type=float, default=0.5, metavar="DEGREES",
                   help="key reduction keeps the motion within this many degrees (default 0.5)")
    p.add_argument("--no-key-reduction", dest="reduce_keys", action="store_false",
                   help="keep one key per frame on every channel")
    p.add_argument("--python", default="", help="external Python for the generator (default: the add-on "
                   "preferences' setting, else Blender's own Python with the bundled ONNX Runtime)")
    save = p.add_mutually_exclusive_group()
    save.add_argument("--save", metavar="OUT.blend", help="save the .blend here afterwards (required, or --no-save)")
    save.add_argument("--no-save", action="store_true", help="run without saving (a dry run of the generation)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as e:
        return _exit(int(e.code or 0) and EXIT_USAGE)
    if not args.save and not args.no_save:
        print("semges: error: nothing would be saved: give --save OUT.blend to keep the takes, "
              "or --no-save to run without saving", file=sys.stderr)
        return _exit(EXIT_USAGE)
    try:
        if args.blend:
            bpy.ops.wm.open_mainfile(filepath=args.blend)
        items = run_batch(args.audio, args.transcript, args.armature, start_frame=args.start_frame, save=args.save,
                          preset=args.preset, model=args.model, speaker=args.speaker, device=args.device,
                          seed=args.seed, variation=args.variation, add_audio=args.add_audio,
                          allow_missing=args.allow_missing, scene_range=args.scene_range, python=args.python,
                          **_layer_options(args))
    except SemgesError as e:
        print(f"semges: error: {e}", file=sys.stderr)
        return _exit(EXIT_USAGE)
    except RuntimeError as e:  # bpy.ops failures (opening or saving a .blend)
        print(f"semges: error: {str(e).strip()}", file=sys.stderr)
        return _exit(EXIT_USAGE)
    failed = [i for i in items if i.error]
    print(f"semges: {len(items) - len(failed)} of {len(items)} done" + (f", {len(failed)} failed" if failed else ""))
    return _exit(EXIT_FAILED if failed else 0)


def _layer_options(args: argparse.Namespace) -> dict:
    """The art-direction flags as GenerateOptions fields (--blend is the .blend to open, so the layer's
    blend type is --blend-mode)."""
    return dict(blend=args.blend_mode, influence=args.influence, blend_in=args.blend_in, blend_out=args.blend_out,
                intensity_arms=args.intensity_arms, intensity_hands=args.intensity_hands,
                intensity_torso=args.intensity_torso, reduce_keys=args.reduce_keys, key_tolerance=args.key_tolerance)


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
