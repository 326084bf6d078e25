"""The panel's settings, stored on the scene (`scene.semges`): a schema with names, descriptions, limits."""

import json

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)

from .errors import MappingError
from .pipeline import GenerateOptions
from .presets import BUILTIN_PRESETS, BoneMapping, builtin_mapping, load_mapping, mapping_from_rows

PRESET_ITEMS = [("auto", "Auto-detect", "Pick the preset from the armature's bone names")] + [
    (p, builtin_mapping(p).label, builtin_mapping(p).description) for p in BUILTIN_PRESETS
] + [("custom", "Custom", "Your own mapping (BEAT joint -> bone name): the rows edited in the panel, "
                        "or without rows a mapping saved as JSON")]


def _is_armature(self, obj) -> bool:
    return obj.type == 'ARMATURE'


# Blender 4.2's bpy module crashes at exit once a PointerProperty with a poll callback was
# registered (see options_from_settings), so the armature picker filters only from 5.0 on;
# other objects are rejected with a message when generating.
_ARMATURE_ONLY = {"poll": _is_armature} if bpy.app.version >= (5, 0, 0) else {}


class SemgesMappingRow(bpy.types.PropertyGroup):
    """One row of the custom mapping; plain (no methods: see options_from_settings)."""

    joint: StringProperty(name="BEAT Joint", description="The BEAT joint that drives the bone")
    bone: StringProperty(name="Bone", description="The rig's bone this joint drives; empty to leave it unmapped")


class SemgesSettings(bpy.types.PropertyGroup):
    audio_path: StringProperty(name="Audio", subtype='FILE_PATH',
                               description="Speech recording: wav, flac, ogg (mp3 where supported)")
    transcript_source: EnumProperty(
        name="Transcript", default='FILE',
        items=[('FILE', "File", "A .TextGrid, .srt, .vtt, .json (timed words) or plain-text file"),
               ('TEXT', "Text Block", "A text block in this .blend (its name's suffix picks the format; "
                                     "plain text is aligned to the audio automatically)")])
    transcript_path: StringProperty(name="Transcript File", subtype='FILE_PATH',
                                    description="What is said: .TextGrid, .srt, .vtt, .json or plain text")
    transcript_text: PointerProperty(name="Text Block", type=bpy.types.Text,
                                     description="Text block holding the transcript")
    armature: PointerProperty(name="Armature", type=bpy.types.Object, **_ARMATURE_ONLY,
                              description="The rig that receives the gestures")
    preset: EnumProperty(name="Bone Mapping", items=PRESET_ITEMS, default="auto",
                         description="How BEAT's joints map onto the rig's bones")
    mapping_path: StringProperty(name="Mapping File", subtype='FILE_PATH',
                                 description="A custom bone mapping (.json), e.g. one saved with Save Mapping")
    mapping_rows: CollectionProperty(type=SemgesMappingRow, name="Custom Mapping",
                                     description="The custom mapping edited in the panel (preset Custom)")
    # The pose properties of the preset the rows came from, as JSON (BoneMapping.properties:
    # e.g. Rigify's IK/FK switches), so editing a preset's rows keeps what the rig needs.
    mapping_properties: StringProperty(name="Mapping Properties", default="{}", options={'HIDDEN'})
    show_mapping_rows: BoolProperty(name="Show Mapping", default=True,
                                    description="Show the custom mapping's rows")
    allow_missing: BoolProperty(name="Skip Missing Bones", default=False,
                                description="Key the bones the rig has and skip mapped bones it lacks, "
                                            "instead of stopping with their names")
    model_path: StringProperty(name="Model", subtype='FILE_PATH',
                               description="A SemGes model bundle (.safetensors); empty for the bundled demo model")
    speaker: StringProperty(name="Speaker", default="",
                            description="Speaker id or name known to the model; empty for its first speaker")
    device: EnumProperty(name="Device", default='auto',
                         items=[('auto', "Auto", "CUDA when available, else the CPU"),
                                ('cpu', "CPU", "Always the CPU"), ('cuda', "CUDA", "An NVIDIA GPU")])
    seed: IntProperty(name="Seed", default=0, min=0,
                      description="Which variant, when Variation is above 0: the same seed gives the same gestures")
    variation: FloatProperty(name="Variation", default=0.0, min=0.0, max=2.0, soft_max=1.0,
                             description="0: the model's most likely gestures (the seed does not matter). Above 0: "
                                         "other plausible gestures for the same speech, one variant per seed")
    start_at: EnumProperty(name="Start At", default='SCENE',
                           items=[('SCENE', "Scene Start", "The scene's start frame: the shot's first frame"),
                                  ('PLAYHEAD', "Playhead", "The current frame"),
                                  ('FRAME', "Frame", "The frame set below")],
                           description="Where the first key (and the sound) goes")
    start_frame: IntProperty(name="Start Frame", default=1, description="Frame of the first key (and of the sound), "
                             "when Start At is Frame")
    add_audio: BoolProperty(name="Add Audio to Sequencer", default=True,
                            description="Put the speech in the sequencer at the start frame so it plays with the keys")
    scene_range: EnumProperty(name="Frame Range", default='extend',
                              items=[('extend', "Extend", "Grow the scene's frame range to cover the keys"),
                                     ('fit', "Fit", "Set the scene's frame range to the keys"),
                                     ('keep', "Keep", "Leave the scene's frame range as it is")])

    # ---- the gesture layer (an NLA strip on the rig's "SemGes" track, over the rig's own animation)
    blend: EnumProperty(name="Blend", default='REPLACE',
                        items=[('REPLACE', "Replace", "The gestures replace the rig's own animation on the mapped "
                                                      "bones (by the influence)"),
                               ('ADD', "Add", "The gestures are added on top of the rig's own animation")],
                        description="How the gesture layer combines with the animation below it")
    influence: FloatProperty(name="Influence", default=1.0, min=0.0, max=1.0, subtype='FACTOR',
                             description="How much of the gesture layer shows: 0 none, 1 all of it")
    blend_in: IntProperty(name="Blend In", default=0, min=0, soft_max=100,
                          description="Frames over which the gesture layer fades in at the take's start")
    blend_out: IntProperty(name="Blend Out", default=0, min=0, soft_max=100,
                           description="Frames over which the gesture layer fades out at the take's end")

    # ---- art direction
    intensity_arms: FloatProperty(name="Arms", default=100.0, min=0.0, max=200.0, subtype='PERCENTAGE',
                                  precision=0, description="Size of the shoulder and arm gestures around the "
                                                           "neutral pose: 0% the neutral pose, 100% the model")
    intensity_hands: FloatProperty(name="Hands", default=100.0, min=0.0, max=200.0, subtype='PERCENTAGE',
                                   precision=0, description="Size of the finger motion around the neutral pose: "
                                                            "0% the neutral pose, 100% the model")
    intensity_torso: FloatProperty(name="Torso/Head", default=100.0, min=0.0, max=200.0, subtype='PERCENTAGE',
                                   precision=0, description="Size of the spine, neck and head motion around the "
                                                            "neutral pose: 0% the neutral pose, 100% the model")
    reduce_keys: BoolProperty(name="Lighter Keys", default=True,
                              description="Drop keys the curve can do without, keeping the motion within the "
                                          "tolerance (the report gives the count before and after)")
    key_tolerance: FloatProperty(name="Tolerance", default=0.5, min=0.01, max=10.0, soft_max=5.0, precision=2,
                                 description="Largest change of any bone's rotation, in degrees, that dropping keys "
                                             "may cause")

    # ---- redo a stretch of the active take
    redo_start: IntProperty(name="From", default=1, description="First frame of the stretch to regenerate")
    redo_end: IntProperty(name="To", default=100, description="Last frame of the stretch to regenerate")
    redo_margin: IntProperty(name="± Frames", default=30, min=1, soft_max=300,
                             description="Half width of the stretch Use Current Frame sets around the playhead")

    # ---- takes (the rig's SemGes actions): the list's highlighted row
    take_index: IntProperty(name="Take", default=0, options={'HIDDEN', 'SKIP_SAVE'})


def start_frame(s: SemgesSettings) -> int | None:
    """The panel's start: None for the scene's start (resolved when keying), else a frame."""
    if s.start_at == 'PLAYHEAD':
        return int(s.id_data.frame_current)
    if s.start_at == 'FRAME':
        return int(s.start_frame)
    return None


def options_from_settings(s: SemgesSettings, python: str = "", redo: bool = False) -> GenerateOptions:
    """The plain-function options that the scene's settings stand for (redo: regenerate the redo range
    of the active take instead of making a new take).

    A function, not a method: Blender 4.2's bpy module crashes at exit when a registered
    PropertyGroup has Python methods (or a PointerProperty a poll callback).
    """
    text = s.transcript_source == 'TEXT'
    return GenerateOptions(
        audio=s.audio_path, armature=s.armature.name if s.armature else "",
        transcript="" if text else s.transcript_path,
        text_block=(s.transcript_text.name if s.transcript_text else "") if text else "",
        preset=custom_mapping(s) if s.preset == "custom" else s.preset,
        model=s.model_path, speaker=s.speaker, device=s.device, seed=s.seed, variation=s.variation,
        start_frame=start_frame(s), add_audio=s.add_audio, allow_missing=s.allow_missing,
        scene_range=s.scene_range, python=python,
        blend=s.blend, influence=float(s.influence), blend_in=float(s.blend_in), blend_out=float(s.blend_out),
        intensity_arms=s.intensity_arms / 100.0, intensity_hands=s.intensity_hands / 100.0,
        intensity_torso=s.intensity_torso / 100.0, reduce_keys=s.reduce_keys, key_tolerance=float(s.key_tolerance),
        redo_range=redo_range(s) if redo else None)


def redo_range(s: SemgesSettings) -> tuple[int, int]:
    """The panel's stretch to regenerate, (first, last) frames, in order."""
    a, b = int(s.redo_start), int(s.redo_end)
    return (a, b) if a <= b else (b, a)


def rows_mapping(s: SemgesSettings, name: str = "custom") -> BoneMapping:
    """The mapping the panel's rows stand for (rows with an empty bone are unmapped)."""
    try:
        properties = json.loads(s.mapping_properties or "{}")
    except json.JSONDecodeError:
        properties = {}
    return mapping_from_rows([(r.joint, r.bone) for r in s.mapping_rows], name=name,
                             source="the panel's custom mapping",
                             properties=properties if isinstance(properties, dict) else {})


def custom_mapping(s: SemgesSettings) -> BoneMapping:
    """Preset Custom: the panel's rows, or, while there are none, the mapping file (mapping_path)."""
    if len(s.mapping_rows):
        return rows_mapping(s)
    if not s.mapping_path:
        raise MappingError("preset Custom has no mapping: fill its rows from a preset, load one, or pick another preset")
    return load_mapping(bpy.path.abspath(s.mapping_path))


def set_rows(s: SemgesSettings, rows, properties: dict | None = None) -> None:
    """Replace the panel's rows with (BEAT joint, bone) pairs, and the pose properties that go with them."""
    s.mapping_properties = json.dumps(properties or {})
    s.mapping_rows.clear()
    for joint, bone in rows:
        row = s.mapping_rows.add()
        row.joint, row.bone = joint, bone


CLASSES = (SemgesMappingRow, SemgesSettings)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.semges = PointerProperty(type=SemgesSettings)


def unregister() -> None:
    del bpy.types.Scene.semges
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
