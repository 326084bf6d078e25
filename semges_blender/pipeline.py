"""From the panel's settings to keys on the rig: the plain functions the operators and batch call.

    options = GenerateOptions(audio="speech.wav", transcript="speech.TextGrid", armature="Armature")
    result = generate_gestures(options)          # synchronous: worker process, then keys

The modal operator uses the same steps one by one: `prepare` (check everything that can
be checked in Blender before the worker starts, so a bad rig fails at once), the worker
(`worker.GenerationJob`), then `finish` (read the motion, key it, add the sound strip).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bpy

from semges_core.errors import InputFileError, SemgesError
from semges_core.fileio import refuse_pickles

from .errors import MissingBonesError
from .keyframes import ApplyResult, apply_motion, resolve_mapping, scene_fps
from .layers import LayerSettings
from .presets import BoneMapping, resolve_bones
from .source import SourceMotion
from .worker import GenerationRequest, generate_motion_file, resolve_python

def demo_model_path() -> Path:
    """The demo bundle shipped inside semges_core (found without importing torch)."""
    spec = importlib.util.find_spec("semges_core")
    if spec is None or not spec.origin:
        raise SemgesError("semges_core is not installed; reinstall the SemGes extension")
    return Path(spec.origin).parent / "assets" / "demo_model.safetensors"


def model_speakers(path: str | Path | None) -> list[dict]:
    """The speakers a model bundle knows, read from its safetensors header (no torch)."""
    path = Path(path) if path else demo_model_path()
    refuse_pickles(path)
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if not 0 < n < 100_000_000:
                raise ValueError("header size out of range")
            header = json.loads(f.read(n))
        meta = json.loads(header.get("__metadata__", {}).get("semges", "null")) or {}
        return list(meta.get("speakers", []))
    except FileNotFoundError:
        raise InputFileError(path, "model file not found") from None
    except (OSError, ValueError, UnicodeDecodeError, AttributeError) as e:
        raise InputFileError(path, f"not a SemGes model bundle ({e})") from None


@dataclass
class GenerateOptions:
    """Everything one generation needs; the panel's settings map onto it one to one."""

    audio: str
    armature: str
    transcript: str = ""  # a transcript file...
    text_block: str = ""  # ...or the name of a Blender text block (used when set)
    preset: str | BoneMapping = "auto"  # auto, a built-in preset, a .json mapping, or a mapping (the panel's rows)
    model: str = ""  # "" = the demo model
    speaker: str = ""
    device: str = "auto"
    seed: int = 0
    variation: float = 0.0  # 0: the model's most likely gestures; above 0: a variant per seed
    start_frame: int | None = None  # None: the scene's start frame (the shot's first frame)
    add_audio: bool = True
    allow_missing: bool = False
    scene_range: str = "extend"
    python: str = ""  # external Python for the worker ("" = Blender's own, with the bundled ONNX Runtime)
    runtime: str = "auto"  # auto (ONNX Runtime when the bundle has graphs), onnx or torch
    action_name: str = ""  # "" = the audio file's name without its suffix
    blend: str = "REPLACE"  # how the take plays over the rig's animation: REPLACE or ADD
    influence: float = 1.0  # 0-1
    blend_in: float = 0.0  # frames
    blend_out: float = 0.0
    reduce_keys: bool = True  # thin the keys within key_tolerance
    key_tolerance: float = 0.5  # degrees
    intensity_arms: float = 1.0  # 0-2 (0-200%), around the clip's mean pose
    intensity_hands: float = 1.0
    intensity_torso: float = 1.0  # spine, neck and head
    redo_range: tuple[int, int] | None = None  # set: finish() redoes these frames of the active take


@dataclass
class Prepared:
    request: GenerationRequest
    python: str
    workdir: Path
    options: GenerateOptions
    scene_name: str

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def _abs(path: str) -> Path:
    return Path(bpy.path.abspath(path)) if path else Path()


def _preset(preset: str | BoneMapping) -> str | BoneMapping:
    """A .json path made absolute (Blender's // prefix); names and mappings as they are."""
    if isinstance(preset, str) and preset.lower().endswith(".json"):
        return str(_abs(preset))
    return preset


def prepare(options: GenerateOptions, scene: bpy.types.Scene | None = None) -> Prepared:
    """Check inputs and rig, resolve the worker's Python, write a text block out; nothing in the scene changes."""
    scene = scene or bpy.context.scene
    if not options.audio:
        raise SemgesError("no audio file is set")
    audio = _abs(options.audio)
    if not audio.is_file():
        raise InputFileError(audio, "audio file not found")
    if audio.stat().st_size == 0:
        raise InputFileError(audio, "audio file is empty (0 bytes)")
    obj = bpy.data.objects.get(options.armature) if options.armature else None
    if obj is None or obj.type != 'ARMATURE':
        raise SemgesError(f"target armature {options.armature!r} not found" if options.armature
                          else "no target armature is set")
    mapping = resolve_mapping(obj, _preset(options.preset))
    _, missing = resolve_bones(mapping, [b.name for b in obj.data.bones])
    if missing and not options.allow_missing:
        raise MissingBonesError(obj.name, mapping.name, missing)
    model = _abs(options.model) if options.model else demo_model_path()
    if not model.is_file():
        raise InputFileError(model, "model file not found")
    model_speakers(model)  # its header must read (no torch; a pickle or a text file fails here)
    try:
        LayerSettings(options.blend, options.influence, options.blend_in, options.blend_out)  # valid, or fail now
    except ValueError as e:
        raise SemgesError(str(e)) from None
    _intensity(options)
    if options.redo_range is not None:
        from .takes import active_take

        a, b = options.redo_range
        if a > b:
            raise SemgesError(f"the range to redo is empty: {a}-{b}")
        if active_take(obj) is None:
            raise SemgesError(f"{obj.name!r} has no SemGes take to redo frames {a}-{b} of; generate one first")
    python = resolve_python(options.python)

    workdir = Path(tempfile.mkdtemp(prefix="semges_"))
    label = ""
    if options.text_block:
        text = bpy.data.texts.get(options.text_block)
        if text is None:
            shutil.rmtree(workdir, ignore_errors=True)
            raise SemgesError(f"text block {options.text_block!r} not found")
        content = text.as_string()
        if not content.strip():
            shutil.rmtree(workdir, ignore_errors=True)
            raise SemgesError(f"text block {text.name!r} is {'empty' if not content else 'only whitespace'}, "
                              "expected the words that are spoken")
        transcript = workdir / "transcript.txt"
        transcript.write_text(content, encoding="utf-8")
        label = text.name
    else:
        if not options.transcript:
            shutil.rmtree(workdir, ignore_errors=True)
            raise SemgesError("no transcript is set (a file or a text block)")
        transcript = _abs(options.transcript)
        if not transcript.is_file():
            shutil.rmtree(workdir, ignore_errors=True)
            raise InputFileError(transcript, "transcript file not found")
        if transcript.stat().st_size == 0:
            shutil.rmtree(workdir, ignore_errors=True)
            raise InputFileError(transcript, "transcript file is empty (0 bytes), expected the words that are spoken")
    request = GenerationRequest(audio=str(audio), transcript=str(transcript), out=str(workdir / "motion.npz"),
                                model=str(model), speaker=options.speaker, device=options.device,
                                seed=options.seed, variation=options.variation, fps=scene_fps(scene),
                                runtime=options.runtime,
                                transcript_label=label)
    return Prepared(request, python, workdir, options, scene.name)


def finish(prepared: Prepared, worker_result: dict, scene: bpy.types.Scene | None = None,
           on_solve_frame=None) -> ApplyResult:
    """Key the worker's motion onto the rig (and add the sound); the scene is unchanged if this fails.

    on_solve_frame(done, total): progress while keys are solved through the rig's constraints.
    """
    scene = scene or bpy.data.scenes.get(prepared.scene_name) or bpy.context.scene
    o = prepared.options
    obj = bpy.data.objects.get(o.armature)
    if obj is None or obj.type != 'ARMATURE':
        raise SemgesError(f"target armature {o.armature!r} is gone")
    motion = SourceMotion.from_npz(worker_result["out"])
    preset = _preset(o.preset)
    name = o.action_name or Path(prepared.request.audio).stem
    start = resolve_start(o.start_frame, scene)
    tolerance = o.key_tolerance if o.reduce_keys else None
    meta = {"audio": prepared.request.audio, "seed": o.seed, "variation": o.variation,
            "intensity": {"arms": o.intensity_arms, "hands": o.intensity_hands, "torso": o.intensity_torso},
            "model": prepared.request.model, "speaker": o.speaker,
            "transcript": f"text block {o.text_block}" if o.text_block else str(_abs(o.transcript))}
    if o.redo_range is not None:
        result = _redo(obj, motion, o, preset, scene, tolerance, meta)
        start = result.frame_start
    else:
        result = apply_motion(obj, motion, preset, scene=scene, start_frame=start, action_name=name,
                              allow_missing=o.allow_missing, scene_range=o.scene_range,
                              on_solve_frame=on_solve_frame, blend=o.blend, influence=o.influence,
                              blend_in=o.blend_in, blend_out=o.blend_out, key_tolerance=tolerance,
                              intensity=_intensity(o), meta=meta)
    result.warnings[:0] = [str(w) for w in worker_result.get("warnings", [])]  # e.g. a doubtful transcript
    if worker_result.get("alignment"):  # which aligner placed the words (plain text, subtitles)
        result.notes.append(str(worker_result["alignment"]))
    if o.add_audio:
        try:
            add_sound_strip(scene, prepared.request.audio, start)
        except RuntimeError as e:  # e.g. a Blender built without audio (the 4.2 bpy module)
            result.warnings.append(f"the sound strip was not added ({str(e).removeprefix('Error: ').strip()})")
    return result


def _intensity(o: GenerateOptions):
    from semges_core.motion.art_direction import Intensity

    try:
        return Intensity(o.intensity_arms, o.intensity_hands, o.intensity_torso)
    except ValueError as e:
        raise SemgesError(str(e)) from None


def _redo(obj, motion, o: GenerateOptions, preset, scene, tolerance, meta) -> ApplyResult:
    """Frames o.redo_range of the active take regenerated from `motion`; reported as an ApplyResult."""
    from .redo import redo_range
    from .takes import active_take, take_meta

    take = active_take(obj)
    if take is None:
        raise SemgesError(f"{obj.name!r} has no SemGes take to redo; generate one first")
    a, b = (int(v) for v in o.redo_range)
    r = redo_range(obj, take, motion, a, b, preset=preset, scene=scene, intensity=_intensity(o),
                   key_tolerance=tolerance, meta=meta)
    info = take_meta(take)
    return ApplyResult(take, info.get("mapping", ""), r.bones, int(info.get("start_frame", a)),
                       int(round(take.frame_range[1])), scene_fps(scene), [], list(r.warnings),
                       r.keys_before, r.keys_after)


def resolve_start(start_frame: int | None, scene: bpy.types.Scene) -> int:
    """The first keyed frame: as given, else the scene's start (a shot at 1001 starts at 1001)."""
    return int(scene.frame_start) if start_frame is None else int(start_frame)


def generate_gestures(options: GenerateOptions, scene: bpy.types.Scene | None = None, on_progress=None,
                      timeout: float | None = None) -> ApplyResult:
    """The whole run, synchronously (background mode, batch, scripts)."""
    scene = scene or bpy.context.scene
    prepared = prepare(options, scene)
    try:
        out = generate_motion_file(prepared.request, prepared.python, timeout=timeout, on_progress=on_progress)
        return finish(prepared, out, scene)
    finally:
        prepared.cleanup()


def _strips(scene: bpy.types.Scene):
    ed = scene.sequence_editor or scene.sequence_editor_create()
    return ed.strips if hasattr(ed, "strips") else ed.sequences  # 5.0 renamed sequences to strips


def add_sound_strip(scene: bpy.types.Scene, audio: str, frame_start: int):
    """The speech in the sequencer at the first keyed frame (once: an identical strip is reused)."""
    strips = _strips(scene)
    path = str(Path(audio).resolve())
    for s in strips:
        if s.type == 'SOUND' and s.sound and bpy.path.abspath(s.sound.filepath) == path and s.frame_start == frame_start:
            return s
    used = {s.channel for s in strips if s.frame_final_start < frame_start + 1 and s.frame_final_end > frame_start}
    channel = next(c for c in range(1, 129) if c not in used)
    return strips.new_sound(Path(audio).stem, path, channel, frame_start)
