"""Keying a retargeted motion onto an armature as a new Action, in bulk, with either animation API.

Blender up to 4.3 keeps F-curves on the Action (`action.fcurves`); 4.4 introduced
slotted actions (slot -> layer -> keyframe strip -> channelbag -> F-curves) and 5.0
removed `Action.fcurves`. `_FCurveSink` hides the difference. Keys are written with
`keyframe_points.add(n)` and one `foreach_set("co", ...)` per F-curve.

`apply_motion` checks everything (armature, mapping, bone names) and computes every
key before it touches the scene; if writing fails half-way, it removes the new action
and restores what it changed, so a failure leaves the scene as it was. Where
constraints move the bones between mapped ones and the root (a generated Rigify rig),
the keys are solved by Blender's own evaluation (`constrained`), and a mapping's pose
properties (Rigify's IK/FK switches) are set and keyed with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import bpy
import numpy as np

from .constrained import constrained_ancestors, solve_through_constraints
from .errors import MappingError, MissingBonesError
from .presets import BoneMapping, detect_mapping, get_mapping, resolve_bones
from .retarget import armature_targets, pose_quaternions, read_target_rig
from .source import SourceMotion

SLOTTED_ACTIONS = bpy.app.version >= (4, 4, 0)
SCENE_RANGES = ("keep", "extend", "fit")


@dataclass
class ApplyResult:
    action: bpy.types.Action
    mapping: str
    bones: list[str]  # bones keyed
    frame_start: int
    frame_end: int  # last keyed frame (inclusive)
    fps: float
    skipped: list[str] = field(default_factory=list)  # mapped bones the armature lacks (allow_missing)
    warnings: list[str] = field(default_factory=list)  # for the user, e.g. a sound strip that could not be added

    @property
    def n_frames(self) -> int:
        return self.frame_end - self.frame_start + 1


def scene_fps(scene: bpy.types.Scene) -> float:
    return scene.render.fps / scene.render.fps_base


def action_fcurves(action: bpy.types.Action, obj: bpy.types.Object | None = None) -> list[bpy.types.FCurve]:
    """The F-curves of an action: legacy list, or the channelbag of obj's slot (else of every slot)."""
    if not SLOTTED_ACTIONS:
        return list(action.fcurves)
    slots = list(action.slots)
    if obj is not None and obj.animation_data and obj.animation_data.action == action:
        slots = [obj.animation_data.action_slot] if obj.animation_data.action_slot else slots
    out = []
    for layer in action.layers:
        for strip in layer.strips:
            for slot in slots:
                bag = strip.channelbag(slot)
                if bag is not None:
                    out.extend(bag.fcurves)
    return out


class _FCurveSink:
    """Creates F-curves on a fresh action for one object, in whichever API this Blender has."""

    def __init__(self, action: bpy.types.Action, obj: bpy.types.Object) -> None:
        self.action = action
        self.slot = None
        if SLOTTED_ACTIONS:
            self.slot = action.slots.new(id_type='OBJECT', name=obj.name)
            try:
                from bpy_extras.anim_utils import action_ensure_channelbag_for_slot  # 5.0+
            except ImportError:  # 4.4 / 4.5: build the layer and strip ourselves
                action_ensure_channelbag_for_slot = None
            if action_ensure_channelbag_for_slot is not None:
                self.bag = action_ensure_channelbag_for_slot(action, self.slot)
            else:
                layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
                strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type='KEYFRAME')
                self.bag = strip.channelbag(self.slot, ensure=True)
            self._groups = {}
        else:
            action.id_root = 'OBJECT'
            self.bag = None

    def new(self, data_path: str, index: int, group: str) -> bpy.types.FCurve:
        if self.bag is None:
            return self.action.fcurves.new(data_path, index=index, action_group=group)
        fc = self.bag.fcurves.new(data_path, index=index)
        grp = self._groups.get(group)
        if grp is None:
            grp = self._groups[group] = self.bag.groups.new(group)
        fc.group = grp
        return fc

    def assign(self, obj: bpy.types.Object) -> None:
        obj.animation_data.action = self.action
        if self.slot is not None:
            obj.animation_data.action_slot = self.slot


def write_keys(fc: bpy.types.FCurve, frames: np.ndarray, values: np.ndarray) -> None:
    """All keys of one F-curve at once."""
    n = len(frames)
    fc.keyframe_points.add(n)
    co = np.empty(2 * n, dtype=np.float32)
    co[0::2] = frames
    co[1::2] = values
    fc.keyframe_points.foreach_set("co", co)
    fc.update()  # sort and compute the Bezier handles


def resolve_mapping(obj: bpy.types.Object, preset: str | BoneMapping | Path | None) -> BoneMapping:
    """The mapping for `obj`: a preset name, a JSON path, a BoneMapping, or None/"auto" to detect it."""
    names = [b.name for b in obj.data.bones]
    if preset is None or preset == "auto":
        return detect_mapping(names, obj.name)
    return get_mapping(preset)


def apply_motion(obj: bpy.types.Object, motion: SourceMotion, preset: str | BoneMapping | Path | None = "auto", *,
                 scene: bpy.types.Scene | None = None, start_frame: int = 1, action_name: str = "Gestures",
                 allow_missing: bool = False, scene_range: str = "extend",
                 on_solve_frame: Callable[[int, int], None] | None = None) -> ApplyResult:
    """Retarget `motion` onto armature `obj` and key it as a new Action named `action_name`.

    The motion is resampled (slerp) to the scene's frame rate and keyed from
    `start_frame`, one key per frame on `rotation_quaternion` of each mapped bone
    (whose rotation mode becomes QUATERNION). Earlier actions are kept: generated ones and
    the one replaced on the armature get a fake user, so saving the file keeps them.
    scene_range: "keep" the scene's frame range, "extend" it to cover the keys, or "fit" it to them.
    on_solve_frame(done, total): progress of solving through a rig's constraints (it may raise to cancel).
    """
    scene = scene or bpy.context.scene
    if obj is None or obj.type != 'ARMATURE':
        raise MappingError(f"{getattr(obj, 'name', obj)!r} is not an armature object")
    if scene_range not in SCENE_RANGES:
        raise ValueError(f"scene_range must be one of {SCENE_RANGES}, got {scene_range!r}")
    if motion.n_frames == 0:
        raise MappingError("the motion has no frames")
    mapping = resolve_mapping(obj, preset)
    bones, missing = resolve_bones(mapping, [b.name for b in obj.data.bones])
    missing_joints = [j for j in mapping.bones if j not in motion.names]
    if missing_joints:
        raise MappingError(f"the motion lacks joints {', '.join(missing_joints)} that mapping {mapping.name!r} uses")
    if missing and not allow_missing:
        raise MissingBonesError(obj.name, mapping.name, missing)
    if not bones:
        raise MissingBonesError(obj.name, mapping.name, missing)

    fps = scene_fps(scene)
    bpy.context.view_layer.update()  # matrix_world of an object moved by a script since the last redraw
    src = motion if abs(motion.fps - fps) < 1e-9 else motion.resample(fps)
    props = [(b, p, float(v)) for b, values in mapping.properties.items() if b in obj.pose.bones
             for p, v in values.items() if p in obj.pose.bones[b]]
    props_missing = [f"{b}[{p!r}]" for b, values in mapping.properties.items() for p in values
                     if b not in obj.pose.bones or p not in obj.pose.bones[b]]
    rig = read_target_rig(obj)
    if constrained_ancestors(obj, bones.values()):  # every key, before any change
        quats = solve_through_constraints(obj, rig, armature_targets(rig, src, bones), on_solve_frame, props)
    else:
        quats = pose_quaternions(rig, src, bones)
    frames = np.arange(src.n_frames, dtype=np.float64) + start_frame

    # ---- from here on the scene changes; undo it all on failure
    had_anim = obj.animation_data is not None
    old_action = obj.animation_data.action if had_anim else None
    old_slot = obj.animation_data.action_slot if (had_anim and SLOTTED_ACTIONS) else None
    old_modes = {name: obj.pose.bones[name].rotation_mode for name in quats}
    old_range = (scene.frame_start, scene.frame_end)
    old_props = [(b, p, obj.pose.bones[b][p]) for b, p, _ in props]
    # The action we replace would have no user left and be dropped on save: keep it.
    protect = old_action is not None and not old_action.use_fake_user and old_action.users <= 1
    action = bpy.data.actions.new(action_name)
    try:
        action.use_fake_user = True  # keep every generated take, assigned or not
        if protect:
            old_action.use_fake_user = True
        sink = _FCurveSink(action, obj)
        for name, q in quats.items():
            path = f'pose.bones["{bpy.utils.escape_identifier(name)}"].rotation_quaternion'
            for i in range(4):
                write_keys(sink.new(path, i, name), frames, q[:, i])
        for bone, prop, value in props:  # e.g. Rigify's arms to FK, keyed so the action carries it
            path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"]["{bpy.utils.escape_identifier(prop)}"]'
            write_keys(sink.new(path, 0, bone), frames[:1], np.array([value]))
            obj.pose.bones[bone][prop] = value
        for name in quats:
            obj.pose.bones[name].rotation_mode = 'QUATERNION'
        if obj.animation_data is None:
            obj.animation_data_create()
        sink.assign(obj)
        end = int(frames[-1])
        if scene_range == "fit":
            scene.frame_start, scene.frame_end = int(start_frame), end
        elif scene_range == "extend":
            scene.frame_start, scene.frame_end = min(scene.frame_start, int(start_frame)), max(scene.frame_end, end)
    except BaseException:
        for bone, prop, value in old_props:
            obj.pose.bones[bone][prop] = value
        for name, mode in old_modes.items():
            obj.pose.bones[name].rotation_mode = mode
        if had_anim:
            obj.animation_data.action = old_action
            if SLOTTED_ACTIONS and old_action is not None:
                obj.animation_data.action_slot = old_slot
        elif obj.animation_data is not None:
            obj.animation_data_clear()
        if protect:
            old_action.use_fake_user = False
        scene.frame_start, scene.frame_end = old_range
        bpy.data.actions.remove(action)
        raise
    warnings = [f"{len(missing)} mapped bone(s) missing and skipped: {', '.join(missing)}"] if missing else []
    if props_missing:
        warnings.append(f"mapping {mapping.name!r} sets properties this rig lacks: {', '.join(props_missing)}")
    return ApplyResult(action, mapping.name, list(quats), int(start_frame), end, fps, missing, warnings)
