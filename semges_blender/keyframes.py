"""Keying a retargeted motion onto an armature as a take: an Action layered over the rig's animation.

Blender up to 4.3 keeps F-curves on the Action (`action.fcurves`); 4.4 introduced
slotted actions (slot -> layer -> keyframe strip -> channelbag -> F-curves) and 5.0
removed `Action.fcurves`. `_FCurveSink` hides the difference. Keys are written with
`keyframe_points.add(n)` and one `foreach_set("co", ...)` per F-curve.

Generated gestures must never cost the animator their work, so the take is not made
the rig's active action: `layers` places it as a strip on the rig's own "SemGes" NLA
track, above the animation it plays over. Every mapped bone is keyed in the rotation
mode it already has (Euler bones get continuous Euler keys in their own order), and
keys are thinned within a tolerance in degrees (`semges_core.motion.key_reduction`)
and written LINEAR, so what plays stays within that tolerance of one key per frame.

`apply_motion` checks everything (armature, mapping, bone names) and computes every
key before it touches the scene; if anything fails half-way, a journal undoes each
change in reverse (new action, NLA tracks and strips, the pushed-down action, pose
properties, frame range), so a failure leaves the scene as it was. Where constraints
move the bones between mapped ones and the root (a generated Rigify rig), the keys
are solved by Blender's own evaluation (`constrained`), and a mapping's pose
properties (Rigify's IK/FK switches) are set and keyed with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import bpy
import numpy as np

from semges_core.motion.art_direction import Intensity, scale_intensity
from semges_core.motion.clip import _continuous_euler
from semges_core.motion.key_reduction import reduce_keys
from semges_core.motion.rotations import (
    euler_to_quat,
    quat_continuous,
    quat_normalize,
    quat_to_axis_angle,
)

from .constrained import constrained_ancestors, solve_through_constraints
from .errors import MappingError, MissingBonesError
from .presets import BoneMapping, detect_mapping, get_mapping, resolve_bones
from .retarget import armature_targets, pose_quaternions, read_target_rig
from .source import SourceMotion

SLOTTED_ACTIONS = bpy.app.version >= (4, 4, 0)
SCENE_RANGES = ("keep", "extend", "fit")
DEFAULT_TOLERANCE_DEG = 0.5
_AXIS = {"X": 0, "Y": 1, "Z": 2}


@dataclass
class ApplyResult:
    action: bpy.types.Action  # the take
    mapping: str
    bones: list[str]  # bones keyed
    frame_start: int
    frame_end: int  # last keyed frame (inclusive)
    fps: float
    skipped: list[str] = field(default_factory=list)  # mapped bones the armature lacks (allow_missing)
    warnings: list[str] = field(default_factory=list)  # for the user, e.g. a sound strip that could not be added
    keys_before: int = 0  # keys one per frame per channel would have taken
    keys_after: int = 0  # keys written after reduction
    track: str = ""  # the NLA track the take plays on
    strip: str = ""  # its strip there
    pushed_down: str | None = None  # the rig's active action, moved onto an NLA track of its own
    notes: list[str] = field(default_factory=list)  # information, e.g. which aligner placed the words

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


def write_keys(fc: bpy.types.FCurve, frames: np.ndarray, values: np.ndarray, linear: bool = False) -> None:
    """All keys of one F-curve at once (added to any it has); linear: LINEAR interpolation."""
    n = len(frames)
    first = len(fc.keyframe_points)
    fc.keyframe_points.add(n)
    co = np.empty(2 * n, dtype=np.float32)
    co[0::2] = frames
    co[1::2] = values
    if first == 0:
        fc.keyframe_points.foreach_set("co", co)
        if linear:
            fc.keyframe_points.foreach_set("interpolation", np.ones(n, dtype=np.int32))  # 'LINEAR'
    else:  # appended to existing keys: set the new ones only
        for k in range(n):
            kp = fc.keyframe_points[first + k]
            kp.co = co[2 * k], co[2 * k + 1]
            if linear:
                kp.interpolation = 'LINEAR'
    fc.update()  # sort and compute the Bezier handles


# ---------------------------------------------------------------------- each bone's own rotation mode


def rotation_path(mode: str) -> str:
    """The pose-bone property a rotation mode keys."""
    return {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}.get(mode, "rotation_euler")


def channels_to_quats(channels: np.ndarray, mode: str) -> np.ndarray:
    """(N, C) channel values as Blender plays them in `mode` -> quaternions (N, 4)."""
    ch = np.asarray(channels, dtype=np.float64)
    if mode == "QUATERNION":
        return quat_normalize(ch)
    if mode == "AXIS_ANGLE":  # Blender normalises the axis; a zero axis is no rotation
        axis = ch[:, 1:]
        norm = np.linalg.norm(axis, axis=-1, keepdims=True)
        half = 0.5 * ch[:, :1]
        q = np.concatenate([np.cos(half), np.sin(half) * axis / np.maximum(norm, 1e-30)], -1)
        return np.where(norm > 1e-12, q, np.array([1.0, 0.0, 0.0, 0.0]))
    order = mode[::-1]  # Blender's 'XYZ' applies X first: R = Rz Ry Rx, semges_core's order "ZYX"
    return euler_to_quat(ch[:, [_AXIS[c] for c in order]], order, degrees=False)


def quats_to_channels(q: np.ndarray, mode: str, seed: np.ndarray | None = None) -> np.ndarray:
    """Quaternions (T, 4) -> channel values (T, C) in `mode`, continuous over time.

    seed: the channel values just before (or at) the first frame; the result continues
    from them (quaternion sign, Euler branch and turns, axis-angle axis direction).
    """
    q = np.asarray(q, dtype=np.float64)
    if seed is not None:
        q = np.concatenate([channels_to_quats(np.asarray(seed, np.float64)[None], mode), q])
    if mode == "QUATERNION":
        out = quat_continuous(q)
        if seed is not None and np.dot(out[0], seed) < 0:
            out = -out
    elif mode == "AXIS_ANGLE":
        out = _axis_angle_channels(q, seed)
    else:
        out = _euler_channels(q, mode, seed)
    return out[1:] if seed is not None else out


def _euler_channels(q: np.ndarray, mode: str, seed: np.ndarray | None) -> np.ndarray:
    order = mode[::-1]
    cols = [_AXIS[c] for c in order]
    e = _continuous_euler(q[:, None], [order])[:, 0]  # (T, 3) degrees, in `order`, no jumps
    if seed is not None:  # the same rotations on the branch and turn that continue the seed's angles
        s = np.degrees(np.asarray(seed, np.float64)[cols])
        alt = e + np.array([180.0, 0.0, 180.0])
        alt[:, 1] = 180.0 - e[:, 1]
        best = None
        for cand in (e, alt):
            cand = cand + 360.0 * np.round((s - cand[0]) / 360.0)
            if best is None or np.abs(cand[0] - s).sum() < np.abs(best[0] - s).sum():
                best = cand
        e = best
    out = np.empty_like(e)
    out[:, cols] = np.radians(e)
    return out


def _axis_angle_channels(q: np.ndarray, seed: np.ndarray | None) -> np.ndarray:
    aa = quat_to_axis_angle(q)  # (T, 3), angle in [0, pi]
    angle = np.linalg.norm(aa, axis=-1)
    axis = np.full_like(aa, np.nan)
    moving = angle > 1e-9
    axis[moving] = aa[moving] / angle[moving, None]
    if seed is not None and not moving[0]:
        n = np.linalg.norm(seed[1:])
        axis[0] = seed[1:] / n if n > 1e-12 else (0.0, 1.0, 0.0)
    # Where there is no rotation the axis is free: keep the previous one (Blender's default: +Y).
    idx = np.where(np.isnan(axis[:, 0]), 0, np.arange(len(axis)))
    np.maximum.accumulate(idx, out=idx)
    axis = axis[idx]
    axis[np.isnan(axis[:, 0])] = (0.0, 1.0, 0.0)
    # (angle, axis) and (-angle, -axis) are one rotation: keep the axis from flipping between frames.
    flip = np.concatenate([[1.0], np.sign(np.sum(axis[1:] * axis[:-1], -1) + 1e-30)])
    sign = np.cumprod(flip)
    if seed is not None and np.dot(axis[0], seed[1:]) < 0:
        sign = -sign
    return np.concatenate([(sign * angle)[:, None], sign[:, None] * axis], -1)


@dataclass
class BoneKeys:
    """One bone's keys: frames (K,) and values (K, C) of the channels of its rotation mode."""

    bone: str
    mode: str
    frames: np.ndarray
    values: np.ndarray
    dense: int  # frames it had before reduction

    @property
    def path(self) -> str:
        return f'pose.bones["{bpy.utils.escape_identifier(self.bone)}"].{rotation_path(self.mode)}'


def bone_keys(bone: str, mode: str, quats: np.ndarray, frames: np.ndarray, tolerance: float | None,
              seed: np.ndarray | None = None) -> BoneKeys:
    """Keys for one bone's rotations (T, 4) at `frames`, in `mode`, reduced within `tolerance` degrees."""
    values = quats_to_channels(quats, mode, seed)
    kept = reduce_keys(values, lambda ch: channels_to_quats(ch, mode), tolerance)
    return BoneKeys(bone, mode, np.asarray(frames, np.float64)[kept], values[kept], len(frames))


def write_bone_keys(new_fcurve: Callable[[str, int, str], bpy.types.FCurve], bk: BoneKeys, linear: bool) -> None:
    for i in range(bk.values.shape[1]):
        write_keys(new_fcurve(bk.path, i, bk.bone), bk.frames, bk.values[:, i], linear)


def resolve_mapping(obj: bpy.types.Object, preset: str | BoneMapping | Path | None) -> BoneMapping:
    """The mapping for `obj`: a preset name, a JSON path, a BoneMapping, or None/"auto" to detect it."""
    names = [b.name for b in obj.data.bones]
    if preset is None or preset == "auto":
        return detect_mapping(names, obj.name)
    return get_mapping(preset)


@dataclass
class Retargeted:
    """Everything computed from a motion for one rig, before the scene changes."""

    mapping: BoneMapping
    quats: dict[str, np.ndarray]  # bone -> (T, 4) pose rotation_quaternion
    frames: np.ndarray  # (T,) scene frames
    fps: float
    props: list[tuple[str, str, float]]
    missing: list[str]
    warnings: list[str]


def retarget_motion(obj: bpy.types.Object, motion: SourceMotion, preset, scene: bpy.types.Scene, start_frame: int,
                    allow_missing: bool = False, intensity: Intensity | None = None,
                    on_solve_frame: Callable[[int, int], None] | None = None) -> Retargeted:
    """Check the rig and mapping and compute every bone's rotations; nothing in the scene changes."""
    if obj is None or obj.type != 'ARMATURE':
        raise MappingError(f"{getattr(obj, 'name', obj)!r} is not an armature object")
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
    if intensity is not None and not intensity.is_identity:
        src = scale_intensity(src, intensity)  # around the clip's own mean pose, before retargeting
    props = [(b, p, float(v)) for b, values in mapping.properties.items() if b in obj.pose.bones
             for p, v in values.items() if p in obj.pose.bones[b]]
    props_missing = [f"{b}[{p!r}]" for b, values in mapping.properties.items() for p in values
                     if b not in obj.pose.bones or p not in obj.pose.bones[b]]
    rig = read_target_rig(obj)
    if constrained_ancestors(obj, bones.values()):
        quats = solve_through_constraints(obj, rig, armature_targets(rig, src, bones), on_solve_frame, props)
    else:
        quats = pose_quaternions(rig, src, bones)
    frames = np.arange(src.n_frames, dtype=np.float64) + int(start_frame)
    warnings = [f"{len(missing)} mapped bone(s) missing and skipped: {', '.join(missing)}"] if missing else []
    if props_missing:
        warnings.append(f"mapping {mapping.name!r} sets properties this rig lacks: {', '.join(props_missing)}")
    return Retargeted(mapping, quats, frames, fps, props, list(missing), warnings)


def apply_motion(obj: bpy.types.Object, motion: SourceMotion, preset: str | BoneMapping | Path | None = "auto", *,
                 scene: bpy.types.Scene | None = None, start_frame: int = 1, action_name: str = "Gestures",
                 allow_missing: bool = False, scene_range: str = "extend",
                 on_solve_frame: Callable[[int, int], None] | None = None,
                 blend: str = "REPLACE", influence: float = 1.0, blend_in: float = 0.0, blend_out: float = 0.0,
                 key_tolerance: float | None = DEFAULT_TOLERANCE_DEG, intensity: Intensity | None = None,
                 meta: dict | None = None) -> ApplyResult:
    """Retarget `motion` onto armature `obj` and lay it over the rig's animation as a take.

    The motion is resampled (slerp) to the scene's frame rate, scaled by `intensity`
    (arms, hands, torso) and keyed from `start_frame` into a new Action named
    `action_name`, in each mapped bone's own rotation mode (never changed), reduced
    within `key_tolerance` degrees (None or 0: a key per frame). The action plays as a
    strip on the rig's "SemGes" NLA track (`layers.place_take`): `blend` 'REPLACE' or
    'ADD', `influence`, `blend_in`/`blend_out` frames; a rig's active action is pushed
    down onto a track of its own and keeps playing underneath. The take is tagged
    (`takes`) with `meta` and keeps a fake user.
    scene_range: "keep" the scene's frame range, "extend" it to cover the keys, or "fit" it to them.
    on_solve_frame(done, total): progress of solving through a rig's constraints (it may raise to cancel).
    """
    from . import layers, takes

    scene = scene or bpy.context.scene
    if scene_range not in SCENE_RANGES:
        raise ValueError(f"scene_range must be one of {SCENE_RANGES}, got {scene_range!r}")
    if obj is None or getattr(obj, "type", None) != 'ARMATURE':
        raise MappingError(f"{getattr(obj, 'name', obj)!r} is not an armature object")
    settings = layers.LayerSettings(blend, influence, blend_in, blend_out)  # checked before any change
    layers.check_layerable(obj)
    rt = retarget_motion(obj, motion, preset, scene, start_frame, allow_missing, intensity, on_solve_frame)
    keyed = [bone_keys(name, obj.pose.bones[name].rotation_mode, q, rt.frames, key_tolerance)
             for name, q in rt.quats.items()]
    linear = bool(key_tolerance)
    start, end = int(rt.frames[0]), int(rt.frames[-1])

    # ---- from here on the scene changes; the journal undoes it all on failure
    journal = layers.Journal()
    try:
        action = bpy.data.actions.new(action_name)
        journal.push(lambda: bpy.data.actions.remove(action))
        action.use_fake_user = True  # takes are listed and kept, on a strip or not
        sink = _FCurveSink(action, obj)
        for bk in keyed:
            write_bone_keys(sink.new, bk, linear)
        for bone, prop, _value in rt.props:  # e.g. Rigify's arms to FK, keyed so the take carries it
            path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"]["{bpy.utils.escape_identifier(prop)}"]'
            write_keys(sink.new(path, 0, bone), rt.frames[:1], np.array([_value]))
        info = dict(meta or {})
        info.update(start_frame=start, fps=rt.fps, rig=obj.name, mapping=rt.mapping.name, bones=list(rt.quats),
                    key_tolerance=key_tolerance or 0.0)
        takes.tag_take(action, info)
        for bone, prop, value in rt.props:
            old = obj.pose.bones[bone][prop]
            obj.pose.bones[bone][prop] = value
            journal.push(lambda b=bone, p=prop, v=old: obj.pose.bones[b].__setitem__(p, v))
        placed = layers.place_take(obj, action, sink.slot, start, end, settings, journal)
        old_range = (scene.frame_start, scene.frame_end)
        journal.push(lambda: (setattr(scene, "frame_start", old_range[0]), setattr(scene, "frame_end", old_range[1])))
        if scene_range == "fit":
            scene.frame_start, scene.frame_end = start, end
        elif scene_range == "extend":
            scene.frame_start, scene.frame_end = min(scene.frame_start, start), max(scene.frame_end, end)
    except BaseException:
        journal.rollback()
        raise
    keys_before = sum(bk.dense * bk.values.shape[1] for bk in keyed)
    keys_after = sum(len(bk.frames) * bk.values.shape[1] for bk in keyed)
    return ApplyResult(action, rt.mapping.name, list(rt.quats), start, end, rt.fps, rt.missing, rt.warnings,
                       keys_before, keys_after, placed.track, placed.strip, placed.pushed_down)
