"""The 3D View sidebar tab "SemGes": what goes in at the top, then sub-panels in an animator's order
(layer, intensity and keys, redo a stretch, takes), so a first generation needs none of them."""

from __future__ import annotations

from pathlib import Path

import bpy

from semges_core.errors import SemgesError

from .pipeline import demo_model_path, model_speakers
from .presets import detect_preset
from .takes import active_take, list_takes

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

        col = layout.column(heading="Variant")
        col.prop(s, "variation")
        col.prop(s, "seed")
        col.operator("semges.new_variant", icon='FILE_REFRESH')

        col = layout.column(heading="Keys")
        col.prop(s, "start_at")
        if s.start_at == 'FRAME':
            col.prop(s, "start_frame")
        col.prop(s, "scene_range")
        col.prop(s, "add_audio")

        layout.separator()
        row = layout.row()
        row.scale_y = 1.4
        row.operator("semges.generate", icon='ARMATURE_DATA')
        layout.operator("semges.apply_motion", icon='IMPORT')


class _SubPanel:
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "SemGes"
    bl_parent_id = "VIEW3D_PT_semges"

    def _layout(self):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        return layout


class VIEW3D_PT_semges_layer(_SubPanel, bpy.types.Panel):
    """How the take plays over the rig's own animation: a strip on its SemGes track."""

    bl_label = "Layer"
    bl_idname = "VIEW3D_PT_semges_layer"

    def draw(self, context) -> None:
        s = context.scene.semges
        col = self._layout().column()
        col.prop(s, "blend", expand=True)
        col.prop(s, "influence", slider=True)
        sub = col.column(align=True)
        sub.prop(s, "blend_in")
        sub.prop(s, "blend_out")
        col.operator("semges.layer_apply", icon='NLA')


class VIEW3D_PT_semges_intensity(_SubPanel, bpy.types.Panel):
    """Gesture size per body part, and how light the keys are."""

    bl_label = "Intensity and Keys"
    bl_idname = "VIEW3D_PT_semges_intensity"

    def draw(self, context) -> None:
        s = context.scene.semges
        layout = self._layout()
        col = layout.column(heading="Intensity", align=True)
        col.prop(s, "intensity_arms", slider=True)
        col.prop(s, "intensity_hands", slider=True)
        col.prop(s, "intensity_torso", slider=True)
        col = layout.column(heading="Lighter Keys")
        row = col.row(align=True)
        row.prop(s, "reduce_keys", text="")
        sub = row.row(align=True)
        sub.active = s.reduce_keys
        sub.prop(s, "key_tolerance", text="Tolerance (°)")


class VIEW3D_PT_semges_redo(_SubPanel, bpy.types.Panel):
    """Regenerate a stretch of the active take (e.g. one sentence) with the current settings."""

    bl_label = "Redo Range"
    bl_idname = "VIEW3D_PT_semges_redo"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context) -> None:
        s = context.scene.semges
        layout = self._layout()
        col = layout.column(align=True)
        col.prop(s, "redo_start")
        col.prop(s, "redo_end")
        row = layout.row(align=True)
        row.operator("semges.redo_use_preview", icon='PREVIEW_RANGE')
        row.operator("semges.redo_use_playhead", icon='TIME')
        row.prop(s, "redo_margin", text="±")
        layout.operator("semges.redo_range", icon='FILE_REFRESH')


class SEMGES_UL_takes(bpy.types.UIList):
    """The rig's SemGes takes (Actions tagged as takes), the one playing marked; Rename keeps strip and action
    names together, so names are not edited in the rows."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        active = _active_name(context)
        row = layout.row(align=True)
        row.label(text="", icon='PLAY' if item.name == active else 'ACTION')
        row.label(text=item.name)
        op = row.operator("semges.take_switch", text="", icon='CHECKMARK' if item.name == active else 'RADIOBUT_OFF',
                          emboss=False)
        op.take = item.name

    def filter_items(self, context, data, propname):
        actions = getattr(data, propname)
        names = set(_take_names(context))
        flags = [self.bitflag_filter_item if a.name in names else 0 for a in actions]
        if self.filter_name:
            pattern = self.filter_name.lower()
            flags = [f if pattern in a.name.lower() else 0 for f, a in zip(flags, actions)]
        return flags, []


def _take_names(context) -> list[str]:
    s = context.scene.semges
    if s.armature is None or s.armature.type != 'ARMATURE':
        return []
    return [t.name for t in list_takes(s.armature)]


def _active_name(context) -> str:
    s = context.scene.semges
    if s.armature is None or s.armature.type != 'ARMATURE':
        return ""
    take = active_take(s.armature)
    return take.name if take is not None else ""


class VIEW3D_PT_semges_takes(_SubPanel, bpy.types.Panel):
    """The rig's takes: switch, rename, delete; Bake merges the one playing into the rig's action."""

    bl_label = "Takes"
    bl_idname = "VIEW3D_PT_semges_takes"

    def draw(self, context) -> None:
        s = context.scene.semges
        layout = self.layout
        if s.armature is None:
            layout.label(text="Pick an armature to see its takes", icon='INFO')
            return
        row = layout.row()
        row.template_list("SEMGES_UL_takes", "", bpy.data, "actions", s, "take_index", rows=3)
        col = row.column(align=True)
        col.operator("semges.take_switch", text="", icon='CHECKMARK')
        col.operator("semges.take_rename", text="", icon='GREASEPENCIL')
        col.operator("semges.take_delete", text="", icon='X')
        layout.operator("semges.bake", icon='NLA_PUSHDOWN')


CLASSES = (VIEW3D_PT_semges, VIEW3D_PT_semges_layer, VIEW3D_PT_semges_intensity, VIEW3D_PT_semges_redo,
           SEMGES_UL_takes, VIEW3D_PT_semges_takes)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
