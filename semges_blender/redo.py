"""Regenerating one stretch of a take (another seed, another intensity) without touching the rest.

Directors keep most of a take and ask for one sentence again. `redo_range` retargets a
new motion for the same speech, takes its frames [a, b], and cross-fades them into the
take: a slerp from what the take plays now to the new rotations, with smoothstep
weights that are 0 at a and b (`art_direction.crossfade_weights`), so the stretch joins
its neighbours without a jump. Each border's fade is as long as the largest gap between
the old and the new pose inside it needs (`fade_frames_for`: at least 6 frames, at most half
the stretch), so a new stretch whose arm is far from where the take had it, or moves away
right after the border, swings over, not whips. Only keys inside [a, b] are replaced: keys outside stay
bit for bit, and the new border keys hold exactly what the take played there, so with
linear keys the curve outside [a, b] plays as before too. Each bone keeps its rotation
mode, its Euler branch and its quaternion sign continue from the key before, and key
reduction runs again inside the range only.
"""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

from semges_core.errors import SemgesError
from semges_core.motion.art_direction import Intensity, crossfade, crossfade_weights, fade_frames_for
from semges_core.motion.key_reduction import geodesic_deg
from semges_core.motion.key_reduction import reduce_keys

from .keyframes import action_fcurves, channels_to_quats, quats_to_channels, retarget_motion, write_keys
from .layers import Journal, bone_rotation_paths
from .source import SourceMotion
from .takes import tag_take, take_meta

_MODE_OF_PATH = {"rotation_quaternion": "QUATERNION", "rotation_axis_angle": "AXIS_ANGLE"}


@dataclass
class RedoResult:
    action: bpy.types.Action
    frame_start: int
    frame_end: int
    bones: list[str]
    keys_before: int  # keys inside the range before
    keys_after: int  # keys inside the range now
    warnings: list[str]


def _curve_state(fc: bpy.types.FCurve) -> tuple:
    n = len(fc.keyframe_points)
    arrays = {}
    for prop in ("co", "handle_left", "handle_right"):
        a = np.zeros(2 * n, dtype=np.float32)
        fc.keyframe_points.foreach_get(prop, a)
        arrays[prop] = a
    kinds = [(k.interpolation, k.handle_left_type, k.handle_right_type) for k in fc.keyframe_points]
    return arrays, kinds


def _restore_curve(fc: bpy.types.FCurve, state: tuple) -> None:
    arrays, kinds = state
    fc.keyframe_points.clear()
    fc.keyframe_points.add(len(kinds))
    for prop, a in arrays.items():
        fc.keyframe_points.foreach_set(prop, a)
    for kp, (interp, hl, hr) in zip(fc.keyframe_points, kinds):
        kp.interpolation, kp.handle_left_type, kp.handle_right_type = interp, hl, hr
    fc.update()


def _keep_outside_handles(fc: bpy.types.FCurve, old_state: tuple, a: int, b: int) -> None:
    """Put back the handles of the keys outside [a, b] that `fc.update()` recomputed around the new keys.

    Auto handles depend on the neighbouring keys, so writing the range moves the handles of
    the keys beside it (and, by rounding, a few more); the keys outside must stay bit for bit.
    """
    arrays, _ = old_state
    old_x = arrays["co"][0::2]
    old_out = (old_x < a) | (old_x > b)
    new = _curve_state(fc)[0]
    new_x = new["co"][0::2]
    new_out = (new_x < a) | (new_x > b)
    if old_out.sum() != new_out.sum():  # cannot happen: only keys inside were removed
        return
    for prop in ("handle_left", "handle_right"):
        h_new, h_old = new[prop].reshape(-1, 2), arrays[prop].reshape(-1, 2)
        h_new[new_out] = h_old[old_out]
        fc.keyframe_points.foreach_set(prop, h_new.ravel())


def redo_range(obj: bpy.types.Object, take_action: bpy.types.Action, new_motion: SourceMotion, frame_a: int,
               frame_b: int, fade_frames: int | None = None, *, preset=None, scene: bpy.types.Scene | None = None,
               intensity: Intensity | None = None, key_tolerance: float | None | str = "take",
               start_frame: int | None = None, meta: dict | None = None) -> RedoResult:
    """Replace the take's keys in [frame_a, frame_b] with `new_motion`, cross-faded over `fade_frames`
    (None: per border, as long as the turn there needs, 6 frames at least; always at most half the range).

    new_motion: the whole speech again (e.g. another seed), aligned with the take's start frame
    (its tag's, unless `start_frame` is given); preset: the mapping (default: the take's);
    key_tolerance: degrees for key reduction inside the range ("take": as the take was made).
    """
    scene = scene or bpy.context.scene
    info = take_meta(take_action)
    if frame_a > frame_b:
        raise SemgesError(f"the range to redo is empty: {frame_a}-{frame_b}")
    lo, hi = (int(round(v)) for v in take_action.frame_range)
    if frame_a < lo or frame_b > hi:
        raise SemgesError(f"frames {frame_a}-{frame_b} lie outside take {take_action.name!r} ({lo}-{hi})")
    if key_tolerance == "take":
        key_tolerance = info.get("key_tolerance") or None
    start = int(info.get("start_frame", lo)) if start_frame is None else int(start_frame)
    paths = bone_rotation_paths(take_action, obj)
    rt = retarget_motion(obj, new_motion, preset or info.get("mapping", "auto"), scene, start, allow_missing=True,
                         intensity=intensity)
    if rt.frames[-1] < frame_b:
        raise SemgesError(f"the new motion ends at frame {int(rt.frames[-1])}, before the range's end {frame_b}")
    frames = np.arange(frame_a, frame_b + 1, dtype=np.float64)
    n = len(frames)
    curves = {}
    for fc in action_fcurves(take_action, obj):
        curves[(fc.data_path, fc.array_index)] = fc
    found = []
    for bone, prop in paths.items():
        if bone not in rt.quats or bone not in obj.pose.bones:
            continue
        mode = _MODE_OF_PATH.get(prop) or (obj.pose.bones[bone].rotation_mode
                                           if obj.pose.bones[bone].rotation_mode not in _MODE_OF_PATH.values()
                                           else "XYZ")
        path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"].{prop}'
        fcs = [curves.get((path, i)) for i in range(4 if prop != "rotation_euler" else 3)]
        if any(fc is None for fc in fcs):
            continue
        old = np.array([[fc.evaluate(f) for fc in fcs] for f in frames], dtype=np.float64)  # (n, C)
        new_q = rt.quats[bone][(frames - start).astype(int)]
        found.append((bone, mode, fcs, old, channels_to_quats(old, mode), new_q))
    longest = (n - 1) // 2 if n > 2 else 0
    if fade_frames is None:
        # How far apart the old and the new pose are, per frame (the largest bone). A fade sized
        # for the border alone is too short when the two part right after it, so each side's
        # fade grows until it covers the largest gap inside it.
        gap = np.zeros(n)
        for _, _, _, _, oq, nq in found:
            gap = np.maximum(gap, np.asarray(geodesic_deg(oq, nq), dtype=np.float64))
        fades = []
        for side in (gap, gap[::-1]):
            f = min(fade_frames_for(float(side[0]), rt.fps), longest)
            while True:
                wider = min(fade_frames_for(float(side[: f + 1].max()), rt.fps), longest)
                if wider <= f:
                    break
                f = wider
            fades.append(f)
    else:
        fades = [min(int(fade_frames), longest)] * 2
    w = crossfade_weights(n, *fades)
    plans = []
    for bone, mode, fcs, old, old_q, new_q in found:
        q = crossfade(old_q, new_q, w)
        values = quats_to_channels(q, mode, seed=old[0])
        values[w == 0.0] = old[w == 0.0]  # the borders hold exactly what played there
        kept = reduce_keys(values, lambda ch, m=mode: channels_to_quats(ch, m), key_tolerance)
        plans.append((bone, fcs, values, kept))
    if not plans:
        raise SemgesError(f"take {take_action.name!r} keys none of the bones the mapping drives on {obj.name!r}")

    journal = Journal()
    keys_before = keys_after = 0
    try:
        for bone, fcs, values, kept in plans:
            for i, fc in enumerate(fcs):
                state = _curve_state(fc)
                journal.push(lambda fc=fc, st=state: _restore_curve(fc, st))
                inside = [kp for kp in fc.keyframe_points if frame_a <= kp.co[0] <= frame_b]
                keys_before += len(inside)
                linear = bool(key_tolerance) or any(kp.interpolation == 'LINEAR' for kp in inside)
                for kp in reversed(inside):
                    fc.keyframe_points.remove(kp, fast=True)
                write_keys(fc, frames[kept], values[kept, i], linear)
                _keep_outside_handles(fc, state, frame_a, frame_b)
                keys_after += len(kept)
        redone = list(info.get("redone", []))
        redone.append(dict(meta or {}, frame_start=int(frame_a), frame_end=int(frame_b), fade_frames=[int(f) for f in fades]))
        tag_take(take_action, dict(info, redone=redone))
    except BaseException:
        journal.rollback()
        raise
    return RedoResult(take_action, int(frame_a), int(frame_b), [p[0] for p in plans], keys_before, keys_after,
                      list(rt.warnings))
