"""Operators: thin, they read `scene.semges` and call the plain functions of pipeline/keyframes/presets."""

from __future__ import annotations

import traceback
from pathlib import Path

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from semges_core.errors import SemgesError

from . import pipeline
from .keyframes import ApplyResult, apply_motion, resolve_mapping
from .preferences import python_path
from .properties import start_frame, custom_mapping, options_from_settings, rows_mapping, set_rows
from .presets import detect_preset, load_mapping, mapping_rows, save_mapping
from .source import SourceMotion
from .worker import GenerationJob, check_python, resolve_python


def _report_result(op: bpy.types.Operator, result: ApplyResult) -> None:
    op.report({'INFO'}, f"SemGes: action {result.action.name!r}, {len(result.bones)} bones "
                        f"({result.mapping}), frames {result.frame_start}-{result.frame_end}")
    for w in result.warnings:
        op.report({'WARNING'}, f"SemGes: {w}")



def _has_armature(context) -> bool:
    s = getattr(context.scene, "semges", None)
    return s is not None and s.armature is not None

class SEMGES_OT_generate(bpy.types.Operator):
    """Generate co-speech gestures for the audio and transcript and key them onto the armature as a new action"""

    bl_idname = "semges.generate"
    bl_label = "Generate Gestures"
    bl_options = {'REGISTER', 'UNDO'}

    _running = False  # one generation at a time

    @classmethod
    def poll(cls, context) -> bool:
        s = getattr(context.scene, "semges", None)
        if s is None or cls._running:
            return False
        if not (s.audio_path and s.armature):
            cls.poll_message_set("Set an audio file and a target armature")
            return False
        return True

    def execute(self, context):
        """Synchronous: background mode, scripts (EXEC_DEFAULT)."""
        settings = context.scene.semges
        try:
            result = pipeline.generate_gestures(options_from_settings(settings, python_path(context)), context.scene)
        except SemgesError as e:
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        _report_result(self, result)
        return {'FINISHED'}

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        return self._start_modal(context)

    def _start_modal(self, context):
        """Start the worker and poll it from a timer (`modal`); the UI stays live."""
        try:
            options = options_from_settings(context.scene.semges, python_path(context))
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
        _report_result(self, result)
        return {'FINISHED'}  # one undo step: everything finish() changed

    def cancel(self, context):  # Blender closes the window or loads a file while we run
        self._job.cancel()
        self._end(context)


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


CLASSES = (SEMGES_OT_generate, SEMGES_OT_apply_motion, SEMGES_OT_detect_preset, SEMGES_OT_save_mapping,
           SEMGES_OT_fill_mapping, SEMGES_OT_save_preset, SEMGES_OT_load_preset, SEMGES_OT_check_runtime)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
