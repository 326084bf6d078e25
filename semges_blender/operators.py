"""Operators: thin, they read `scene.semges` and call the plain functions of pipeline/keyframes/presets."""

from __future__ import annotations

import dataclasses
import traceback
from pathlib import Path

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from semges_core.errors import SemgesError

from . import pipeline
from .keyframes import ApplyResult, apply_motion, resolve_mapping
from .layers import apply_strip_settings, bake, semges_track, set_layer, strip_layer_settings
from .preferences import python_path
from .properties import start_frame, custom_mapping, options_from_settings, rows_mapping, set_rows
from .presets import detect_preset, load_mapping, mapping_rows, save_mapping
from .source import SourceMotion
from .takes import active_take, delete_take, list_takes, rename_take, switch_take, take_meta
from .worker import GenerationJob, check_python, resolve_python


def _report_result(op: bpy.types.Operator, result: ApplyResult) -> None:
    before, after = getattr(result, "keys_before", None), getattr(result, "keys_after", None)
    keys = f", {after} keys (from {before})" if before and after is not None and after != before else ""
    op.report({'INFO'}, f"SemGes: take {result.action.name!r}, {len(result.bones)} bones "
                        f"({result.mapping}), frames {result.frame_start}-{result.frame_end}{keys}")
    for note in getattr(result, "notes", []):
        op.report({'INFO'}, f"SemGes: {note}")
    for w in result.warnings:
        op.report({'WARNING'}, f"SemGes: {w}")


def _has_armature(context) -> bool:
    s = getattr(context.scene, "semges", None)
    return s is not None and s.armature is not None


def _generating() -> bool:
    """A generation (Generate, New Variant or Redo Range) is running: one at a time, they share the worker."""
    return any(cls._running for cls in GENERATORS)


class _Generation:
    """Generate Gestures and the operators that run the same way with other options (New Variant, Redo Range):
    synchronous in background mode and scripts (`execute`), else a modal operator polling the worker, with
    progress, status text and Esc. Everything a successful run changes is one undo step; a failure, Esc or
    an error in the worker leave the scene (and the panel's settings) as they were."""

    bl_options = {'REGISTER', 'UNDO'}

    _running = False  # this operator's run is in progress

    @classmethod
    def poll(cls, context) -> bool:
        s = getattr(context.scene, "semges", None)
        if s is None or _generating():
            return False
        if not (s.audio_path and s.armature):
            cls.poll_message_set("Set an audio file and a target armature")
            return False
        return True

    def _options(self, context) -> pipeline.GenerateOptions:
        return options_from_settings(context.scene.semges, python_path(context))

    def _succeeded(self, context) -> None:
        """Settings to keep once the run has keyed (New Variant: the seed it used)."""

    def execute(self, context):
        """Synchronous: background mode, scripts (EXEC_DEFAULT)."""
        try:
            result = pipeline.generate_gestures(self._options(context), context.scene)
        except SemgesError as e:
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        self._succeeded(context)
        _report_result(self, result)
        return {'FINISHED'}

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        try:
            options = self._options(context)
        except SemgesError as e:
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        return self._start_modal(context, options)

    def _start_modal(self, context, options: pipeline.GenerateOptions | None = None):
        """Start the worker and poll it from a timer (`modal`); the UI stays live."""
        try:
            options = options or options_from_settings(context.scene.semges, python_path(context))
            self._prepared = pipeline.prepare(options, context.scene)
            self._job = GenerationJob(self._prepared.request, self._prepared.python).start()
        except SemgesError as e:
            if getattr(self, "_prepared", None) is not None:
                self._prepared.cleanup()
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.progress_begin(0, 100)
        type(self)._running = True
        self._status(context, "starting")
        wm.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def _status(self, context, text: str | None) -> None:
        if context.workspace is not None:
            context.workspace.status_text_set(None if text is None else f"SemGes: {text}  (Esc to cancel)")

    def _solving(self, context, done: int, total: int) -> None:
        """Progress while a constrained rig (Rigify) is keyed, a few seconds a minute of motion."""
        if done % 100 == 0 or done == total:
            context.window_manager.progress_update(int(100 * done / total))
            self._status(context, f"keying through the rig's constraints, frame {done}/{total}")

    def _end(self, context) -> None:
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        self._status(context, None)
        self._prepared.cleanup()
        type(self)._running = False

    def modal(self, context, event):
        if event.type == 'ESC':
            self._job.cancel()
            self._end(context)
            self.report({'WARNING'}, "SemGes: generation cancelled; nothing was changed")
            return {'CANCELLED'}
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        state = self._job.poll()
        context.window_manager.progress_update(int(100 * state.progress))
        self._status(context, f"{state.status} ({int(100 * state.progress)}%)")
        if not state.finished:
            return {'PASS_THROUGH'}
        try:
            if state.error or state.cancelled:
                raise SemgesError(state.error or "generation was cancelled")
            result = pipeline.finish(self._prepared, state.result, context.scene,
                                     on_solve_frame=lambda done, total: self._solving(context, done, total))
        except SemgesError as e:
            self._end(context)
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        except Exception as e:  # a bug: end the modal cleanly (timer, progress), show it, keep the traceback
            self._end(context)
            traceback.print_exc()
            self.report({'ERROR'}, f"SemGes: unexpected error ({type(e).__name__}: {e}); see the console")
            return {'CANCELLED'}
        self._end(context)
        if hasattr(self, "_succeeded"):
            self._succeeded(context)
        _report_result(self, result)
        return {'FINISHED'}  # one undo step: everything finish() changed

    def cancel(self, context):  # Blender closes the window or loads a file while we run
        self._job.cancel()
        self._end(context)


class SEMGES_OT_generate(_Generation, bpy.types.Operator):
    """Generate co-speech gestures for the audio and transcript and key them onto the armature as a new take,
    on the rig's SemGes track above its own animation"""

    bl_idname = "semges.generate"
    bl_label = "Generate Gestures"
    bl_options = {'REGISTER', 'UNDO'}


# Variation New Variant sets when it is 0 (where every seed gives the same gestures).
VARIANT_VARIATION = 0.3


class SEMGES_OT_new_variant(_Generation, bpy.types.Operator):
    """Generate again with the next seed: other plausible gestures for the same speech, as a new take
    (sets Variation to 0.3 when it is 0, where every seed gives the same gestures)"""

    bl_idname = "semges.new_variant"
    bl_label = "New Variant"
    bl_options = {'REGISTER', 'UNDO'}

    def _options(self, context) -> pipeline.GenerateOptions:
        s = context.scene.semges
        self._seed = s.seed + 1
        self._variation = s.variation if s.variation > 0 else VARIANT_VARIATION
        return dataclasses.replace(options_from_settings(s, python_path(context)), seed=self._seed,
                                   variation=self._variation, action_name="")

    def _succeeded(self, context) -> None:
        s = context.scene.semges
        s.seed, s.variation = self._seed, self._variation


class SEMGES_OT_redo_range(_Generation, bpy.types.Operator):
    """Regenerate frames From-To of the active take with the current settings (seed, variation, intensity),
    cross-faded at both ends; keys outside the range stay as they are"""

    bl_idname = "semges.redo_range"
    bl_label = "Redo Range"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context) -> bool:
        if not super().poll(context):
            return False
        s = context.scene.semges
        if _active_take(s.armature) is None:
            cls.poll_message_set("The armature has no active SemGes take: generate one first")
            return False
        return True

    def _options(self, context) -> pipeline.GenerateOptions:
        s = context.scene.semges
        take = _active_take(s.armature)
        made_from = take_meta(take).get("audio") if take is not None else None
        if made_from and Path(bpy.path.abspath(s.audio_path)).resolve() != Path(made_from).resolve():
            raise SemgesError(f"take {take.name!r} was made from {made_from}, but the panel's audio is "
                              f"{bpy.path.abspath(s.audio_path)}: set the audio (and its transcript) the take was "
                              "made from, or switch to a take of this audio")
        return options_from_settings(s, python_path(context), redo=True)


GENERATORS = (SEMGES_OT_generate, SEMGES_OT_new_variant, SEMGES_OT_redo_range)


class SEMGES_OT_apply_motion(bpy.types.Operator, ImportHelper):
    """Key a motion .npz written by `semges generate` (or a previous run) onto the target armature"""

    bl_idname = "semges.apply_motion"
    bl_label = "Apply Motion File"
    bl_options = {'REGISTER', 'UNDO'}

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={'HIDDEN'})

    @classmethod
    def poll(cls, context) -> bool:
        return _has_armature(context)

    def execute(self, context):
        s = context.scene.semges
        try:
            result = apply_motion(s.armature, SourceMotion.from_npz(self.filepath), options_from_settings(s).preset,
                                  scene=context.scene,
                                  start_frame=pipeline.resolve_start(start_frame(s), context.scene),
                                  action_name=Path(self.filepath).stem, allow_missing=s.allow_missing,
                                  scene_range=s.scene_range)
        except SemgesError as e:
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        _report_result(self, result)
        return {'FINISHED'}


class SEMGES_OT_detect_preset(bpy.types.Operator):
    """Pick the bone-mapping preset that fits the target armature's bone names"""

    bl_idname = "semges.detect_preset"
    bl_label = "Detect Preset"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context) -> bool:
        return _has_armature(context)

    def execute(self, context):
        s = context.scene.semges
        preset = detect_preset([b.name for b in s.armature.data.bones])
        if preset is None:
            self.report({'ERROR'}, f"{s.armature.name!r}: no preset fits its bone names; save one and edit it")
            return {'CANCELLED'}
        s.preset = preset
        self.report({'INFO'}, f"SemGes: {s.armature.name!r} looks like {preset}")
        return {'FINISHED'}


class SEMGES_OT_save_mapping(bpy.types.Operator, ExportHelper):
    """Save the current (or detected) bone mapping as JSON, to edit and load as a custom mapping"""

    bl_idname = "semges.save_mapping"
    bl_label = "Save Mapping"
    bl_options = {'REGISTER', 'UNDO'}  # it switches the panel to the saved file

    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={'HIDDEN'})

    @classmethod
    def poll(cls, context) -> bool:
        return _has_armature(context)

    def execute(self, context):
        s = context.scene.semges
        try:
            mapping = resolve_mapping(s.armature, custom_mapping(s) if s.preset == "custom" else s.preset)
            save_mapping(self.filepath, mapping)
        except SemgesError as e:
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        s.mapping_path = self.filepath
        s.mapping_rows.clear()  # Custom without rows uses the file: the one just saved, to edit
        s.preset = "custom"
        self.report({'INFO'}, f"SemGes: saved {mapping.name} to {self.filepath}; edit it, it is now the mapping used")
        return {'FINISHED'}


class SEMGES_OT_fill_mapping(bpy.types.Operator):
    """Fill the custom mapping's rows from the chosen (or auto-detected) preset, to start editing from it"""

    bl_idname = "semges.fill_mapping"
    bl_label = "Fill from Preset"
    bl_options = {'REGISTER', 'UNDO'}

    preset: StringProperty(name="Preset", default="",
                           description="A built-in preset; empty for the panel's preset (auto-detected for Custom)")

    @classmethod
    def poll(cls, context) -> bool:
        return _has_armature(context)

    def execute(self, context):
        s = context.scene.semges
        preset = self.preset or (s.preset if s.preset != "custom" else "auto")
        try:
            mapping = resolve_mapping(s.armature, preset)
        except SemgesError as e:
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        set_rows(s, mapping_rows(mapping, [b.name for b in s.armature.data.bones]), mapping.properties)
        s.preset = "custom"
        self.report({'INFO'}, f"SemGes: {len(s.mapping_rows)} rows from {mapping.name}; edit them, they are now "
                              "the mapping used")
        return {'FINISHED'}


class SEMGES_OT_save_preset(bpy.types.Operator, ExportHelper):
    """Save the custom mapping's rows as a JSON preset"""

    bl_idname = "semges.save_preset"
    bl_label = "Save Preset"

    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={'HIDDEN'})

    @classmethod
    def poll(cls, context) -> bool:
        s = getattr(context.scene, "semges", None)
        return s is not None and len(s.mapping_rows) > 0

    def execute(self, context):
        s = context.scene.semges
        try:
            mapping = rows_mapping(s, name=Path(self.filepath).stem)
            save_mapping(self.filepath, mapping)
        except (SemgesError, OSError) as e:
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        self.report({'INFO'}, f"SemGes: saved {len(mapping.bones)} bones to {self.filepath}")
        return {'FINISHED'}


class SEMGES_OT_load_preset(bpy.types.Operator, ImportHelper):
    """Load a JSON preset into the custom mapping's rows"""

    bl_idname = "semges.load_preset"
    bl_label = "Load Preset"
    bl_options = {'REGISTER', 'UNDO'}

    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={'HIDDEN'})

    @classmethod
    def poll(cls, context) -> bool:
        return getattr(context.scene, "semges", None) is not None

    def execute(self, context):
        s = context.scene.semges
        try:
            mapping = load_mapping(self.filepath)
        except SemgesError as e:
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        set_rows(s, mapping_rows(mapping), mapping.properties)
        s.preset = "custom"
        self.report({'INFO'}, f"SemGes: loaded {mapping.name} ({len(s.mapping_rows)} rows)")
        return {'FINISHED'}


def _active_take(obj):
    """The rig's active SemGes take (its Action), or None (no rig, no take)."""
    if obj is None or obj.type != 'ARMATURE':
        return None
    return active_take(obj)


def _take_names(obj) -> list[str]:
    if obj is None or obj.type != 'ARMATURE':
        return []
    return [t.name for t in list_takes(obj)]


class _TakeOperator:
    """Switch, rename, delete: on the take named `take`, else on the row highlighted in the Takes list."""

    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context) -> bool:
        s = getattr(context.scene, "semges", None)
        if s is None or s.armature is None:
            return False
        if not _take_names(s.armature):
            cls.poll_message_set("The armature has no SemGes takes")
            return False
        return True

    def _take(self, context) -> str:
        s = context.scene.semges
        names = _take_names(s.armature)
        if self.take:
            if self.take not in names:
                raise SemgesError(f"{s.armature.name!r} has no SemGes take {self.take!r} "
                                  f"(its takes: {', '.join(names) or 'none'})")
            return self.take
        highlighted = bpy.data.actions[s.take_index].name if 0 <= s.take_index < len(bpy.data.actions) else ""
        if highlighted not in names:
            raise SemgesError("pick a take in the Takes list first")
        return highlighted

    def execute(self, context):
        s = context.scene.semges
        try:
            message = self._apply(context, s.armature, self._take(context))
        except SemgesError as e:
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        self.report({'INFO'}, f"SemGes: {message}")
        return {'FINISHED'}


class SEMGES_OT_take_switch(_TakeOperator, bpy.types.Operator):
    """Make this take the one that plays on the rig's SemGes track"""

    bl_idname = "semges.take_switch"
    bl_label = "Switch to Take"
    bl_options = {'REGISTER', 'UNDO'}

    take: StringProperty(name="Take", default="", description="The take; empty for the one picked in the list")

    def _apply(self, context, obj, name) -> str:
        switch_take(obj, name)
        return f"take {name!r} is playing on {obj.name!r}"


class SEMGES_OT_take_rename(_TakeOperator, bpy.types.Operator):
    """Rename a take (its action and its strip on the SemGes track)"""

    bl_idname = "semges.take_rename"
    bl_label = "Rename Take"
    bl_options = {'REGISTER', 'UNDO'}

    take: StringProperty(name="Take", default="", description="The take; empty for the one picked in the list")
    new_name: StringProperty(name="New Name", default="", description="The take's new name")

    def invoke(self, context, event):
        try:
            self.new_name = self.new_name or self._take(context)
        except SemgesError as e:
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        return context.window_manager.invoke_props_dialog(self)

    def draw(self, context) -> None:
        self.layout.prop(self, "new_name")

    def _apply(self, context, obj, name) -> str:
        new = self.new_name.strip()
        if not new:
            raise SemgesError("a take needs a name: the new name is empty")
        return f"take {name!r} renamed to {rename_take(obj, name, new)!r}"


class SEMGES_OT_take_delete(_TakeOperator, bpy.types.Operator):
    """Delete a take: its action and its strip on the SemGes track (Undo brings it back)"""

    bl_idname = "semges.take_delete"
    bl_label = "Delete Take"
    bl_options = {'REGISTER', 'UNDO'}

    take: StringProperty(name="Take", default="", description="The take; empty for the one picked in the list")

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def _apply(self, context, obj, name) -> str:
        delete_take(obj, name)
        return f"take {name!r} deleted"


class SEMGES_OT_bake(bpy.types.Operator):
    """Merge the gesture layer (the active take, blended as set) into the rig's own action, keyed on the mapped
    bones; the SemGes track is muted and the originals are kept"""

    bl_idname = "semges.bake"
    bl_label = "Bake Gestures"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context) -> bool:
        s = getattr(context.scene, "semges", None)
        if s is None or s.armature is None:
            return False
        if _active_take(s.armature) is None:
            cls.poll_message_set("The armature has no active SemGes take to bake")
            return False
        return True

    def execute(self, context):
        s = context.scene.semges
        try:
            done = bake(s.armature, context.scene, tolerance=s.key_tolerance if s.reduce_keys else None)
        except SemgesError as e:
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        muted = ", ".join(done.get("muted_tracks", [])) or "none"
        self.report({'INFO'}, f"SemGes: baked frames {done['frame_start']}-{done['frame_end']} of {done['bones']} "
                              f"bones into action {done['action']!r} ({done['keys']} keys); muted tracks: {muted}")
        return {'FINISHED'}


class SEMGES_OT_layer_apply(bpy.types.Operator):
    """Play the rig's takes with the Layer settings now (Blend, Influence, Blend In/Out), without generating again"""

    bl_idname = "semges.layer_apply"
    bl_label = "Apply to Takes"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context) -> bool:
        s = getattr(context.scene, "semges", None)
        if s is None or s.armature is None or s.armature.type != 'ARMATURE':
            return False
        track = semges_track(s.armature)
        if track is None or not len(track.strips):
            cls.poll_message_set("The armature has no SemGes takes on its track yet")
            return False
        return True

    def execute(self, context):
        s = context.scene.semges
        track = semges_track(s.armature)
        before = [(strip, strip_layer_settings(strip)) for strip in track.strips]
        try:
            set_layer(s.armature, s.blend, float(s.influence), float(s.blend_in), float(s.blend_out))
        except (SemgesError, ValueError) as e:
            for strip, settings in before:  # as they were
                apply_strip_settings(strip, settings)
            self.report({'ERROR'}, f"SemGes: {e}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"SemGes: {len(before)} take strip(s) on {s.armature.name!r} now play "
                              f"{s.blend.lower()} at influence {s.influence:.2f}")
        return {'FINISHED'}


class SEMGES_OT_redo_use_preview(bpy.types.Operator):
    """Set the redo range to the scene's preview range (or its frame range when there is no preview range)"""

    bl_idname = "semges.redo_use_preview"
    bl_label = "Use Preview Range"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        scene, s = context.scene, context.scene.semges
        if scene.use_preview_range:
            s.redo_start, s.redo_end = scene.frame_preview_start, scene.frame_preview_end
        else:
            s.redo_start, s.redo_end = scene.frame_start, scene.frame_end
        return {'FINISHED'}


class SEMGES_OT_redo_use_playhead(bpy.types.Operator):
    """Set the redo range to the current frame ± the frames set beside it"""

    bl_idname = "semges.redo_use_playhead"
    bl_label = "Use Current Frame"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        scene, s = context.scene, context.scene.semges
        s.redo_start, s.redo_end = scene.frame_current - s.redo_margin, scene.frame_current + s.redo_margin
        return {'FINISHED'}


class SEMGES_OT_check_runtime(bpy.types.Operator):
    """Check that the generator's Python (Blender's own, or the external one set here) can run the model"""

    bl_idname = "semges.check_runtime"
    bl_label = "Check Runtime"

    def invoke(self, context, event):
        """The check starts a Python process: it runs on a thread, polled by a timer, so the UI never waits."""
        import threading

        try:
            python = resolve_python(python_path(context))
        except SemgesError as e:
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        self._python, self._answer = python, []
        self._thread = threading.Thread(target=lambda: self._answer.append(check_python(python, refresh=True)),
                                        daemon=True)
        self._thread.start()
        self._timer = context.window_manager.event_timer_add(0.1, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        if event.type != 'TIMER' or not self._answer:
            return {'PASS_THROUGH'}
        context.window_manager.event_timer_remove(self._timer)
        return self._report(*self._answer[0])

    def execute(self, context):
        """Background mode and scripts: wait for the answer (nothing to freeze there)."""
        try:
            python = resolve_python(python_path(context))
        except SemgesError as e:
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        self._python = python
        return self._report(*check_python(python, refresh=True))

    def _report(self, ok: bool, detail: str):
        if not ok:
            self.report({'ERROR'}, f"SemGes: {self._python} cannot run the generator: {detail}")
            return {'CANCELLED'}
        what = "ONNX Runtime" if detail == "onnx" else "PyTorch"
        self.report({'INFO'}, f"SemGes: the generator runs in {self._python} with {what}")
        return {'FINISHED'}


CLASSES = (SEMGES_OT_generate, SEMGES_OT_new_variant, SEMGES_OT_redo_range, SEMGES_OT_take_switch,
           SEMGES_OT_take_rename, SEMGES_OT_take_delete, SEMGES_OT_bake, SEMGES_OT_layer_apply, SEMGES_OT_redo_use_preview,
           SEMGES_OT_redo_use_playhead, SEMGES_OT_apply_motion, SEMGES_OT_detect_preset, SEMGES_OT_save_mapping,
           SEMGES_OT_fill_mapping, SEMGES_OT_save_preset, SEMGES_OT_load_preset, SEMGES_OT_check_runtime)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
