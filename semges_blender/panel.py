"""The 3D View sidebar tab "SemGes"."""

from __future__ import annotations

from pathlib import Path

import bpy

from semges_core.errors import SemgesError

from .pipeline import demo_model_path, model_speakers
from .presets import detect_preset

_speaker_cache: dict[tuple, str] = {}


def _speakers(path: str) -> str:
    """The speakers label for the model at path ("" = demo), cached by file time (draw runs often)."""
    try:
        p = Path(path) if path else demo_model_path()
        key = (str(p), p.stat().st_mtime)
    except (OSError, SemgesError):
        return "Model not found"
    if key not in _speaker_cache:
        try:
            _speaker_cache[key] = "Speakers: " + (", ".join(f"{sp['id']} {sp['name']}" for sp in model_speakers(p))
                                                   or "none listed")
        except SemgesError:
            _speaker_cache[key] = "Model is not a SemGes bundle"
    return _speaker_cache[key]


def _draw_custom_mapping(box, s) -> None:
    """Preset Custom: its rows (BEAT joint -> a bone of the armature), collapsible, and their operators."""
    row = box.row(align=True)
    row.prop(s, "show_mapping_rows", text=f"Custom Mapping ({len(s.mapping_rows)} rows)", emboss=False,
             icon='DISCLOSURE_TRI_DOWN' if s.show_mapping_rows else 'DISCLOSURE_TRI_RIGHT')
    row = box.row(align=True)
    row.operator("semges.fill_mapping", icon='PRESET')
    row.operator("semges.load_preset", text="Load", icon='IMPORT')
    row.operator("semges.save_preset", text="Save", icon='EXPORT')
    if not s.mapping_rows:
        box.label(text="No rows: the mapping file is used", icon='INFO')
        box.prop(s, "mapping_path")
        return
    if not s.show_mapping_rows:
        return
    col = box.column(align=True)
    col.use_property_split = False
    bones = s.armature.data if s.armature is not None and s.armature.type == 'ARMATURE' else None
    for r in s.mapping_rows:
        split = col.split(factor=0.35, align=True)
        split.label(text=r.joint)
        if bones is not None:
            split.prop_search(r, "bone", bones, "bones", text="")
        else:
            split.prop(r, "bone", text="")


class VIEW3D_PT_semges(bpy.types.Panel):
    bl_label = "SemGes Gestures"
    bl_idname = "VIEW3D_PT_semges"
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "SemGes"

    def draw(self, context) -> None:
        s = context.scene.semges
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False

        col = layout.column(heading="Speech")
        col.prop(s, "audio_path")
        col.prop(s, "transcript_source", expand=True)
        col.prop(s, "transcript_path" if s.transcript_source == 'FILE' else "transcript_text")

        col = layout.column(heading="Rig")
        col.prop(s, "armature")
        col.prop(s, "preset")
        if s.preset == "custom":
            _draw_custom_mapping(layout.box(), s)
        elif s.preset == "auto" and s.armature is not None:
            found = detect_preset([b.name for b in s.armature.data.bones])
            col.label(text=f"Detected: {found}" if found else "No preset fits: save and edit a mapping",
                      icon='CHECKMARK' if found else 'ERROR')
        col.prop(s, "allow_missing")
        row = col.row(align=True)
        row.operator("semges.detect_preset", icon='VIEWZOOM')
        row.operator("semges.save_mapping", icon='EXPORT')

        col = layout.column(heading="Model")
        col.prop(s, "model_path")
        if not s.model_path:
            col.label(text="Demo model (trained on synthetic data)", icon='INFO')
        col.prop(s, "speaker")
        known = _speakers(bpy.path.abspath(s.model_path))
        col.label(text=known, icon='ERROR' if known.startswith("Model") else 'USER')
        col.prop(s, "device")
        col.prop(s, "variation")
        col.prop(s, "seed")

        col = layout.column(heading="Keys")
        col.prop(s, "start_at")
        if s.start_at == 'FRAME':
            col.prop(s, "start_frame")
        col.prop(s, "scene_range")
        col.prop(s, "add_audio")

        layout.separator()
        layout.operator("semges.generate", icon='ARMATURE_DATA')
        layout.operator("semges.apply_motion", icon='IMPORT')


CLASSES = (VIEW3D_PT_semges,)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
