"""Generated gestures as a layer over the animator's work: the rig's "SemGes" NLA track.

Blender plays a rig's NLA tracks bottom to top and its active action above them all,
so a take assigned as the active action would hide whatever the animator keyed. A
take is therefore a strip on a track of its own, "SemGes", above the rig's other
tracks; its action holds only the mapped bones' channels, so everything else plays
as before. If the rig has an active action it is pushed down, unchanged (keys, slot,
blend type, influence and extrapolation carried over as Blender's own push-down does),
onto a new track named after the action, just under the gestures. Strips extrapolate
'NOTHING', so outside a take the animation underneath plays. Replace or Add: Add is
Blender's 'COMBINE', under which quaternions compose (lower @ take) and Euler angles add.

Blender computes a strip's influence from its blend-in/out whenever "animated
influence" is off, so an influence below 1 is written as an influence curve that
reproduces the linear blends scaled by it.

Every change goes through a `Journal` that undoes it in reverse, so a failure
anywhere leaves the rig's actions, tracks and strips as they were; `bake` merges the
layer back into an ordinary action when the animator asks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import bpy
import numpy as np

from semges_core.errors import SemgesError

TRACK_NAME = "SemGes"
BLENDS = {"REPLACE": "REPLACE", "ADD": "COMBINE"}
SLOTTED_ACTIONS = bpy.app.version >= (4, 4, 0)
_BONE_ROTATION = re.compile(r'^pose\.bones\["((?:[^"\\]|\\.)*)"\]\.(rotation_quaternion|rotation_euler|rotation_axis_angle)$')


class Journal:
    """Undo steps recorded as changes are made; `rollback` runs them newest first."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], object]] = []

    def push(self, undo: Callable[[], object]) -> None:
        self._undo.append(undo)

    def rollback(self) -> None:
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except Exception:  # keep undoing the rest; the original error is what the user sees
                pass


@dataclass(frozen=True)
class LayerSettings:
    """How the takes play over the animation: 'REPLACE' or 'ADD', influence 0-1, blend frames."""

    blend: str = "REPLACE"
    influence: float = 1.0
    blend_in: float = 0.0
    blend_out: float = 0.0

    def __post_init__(self) -> None:
        if self.blend not in BLENDS:
            raise ValueError(f"blend must be 'REPLACE' or 'ADD', got {self.blend!r}")
        if not (isinstance(self.influence, (int, float)) and 0.0 <= self.influence <= 1.0):
            raise ValueError(f"influence must lie in [0, 1], got {self.influence!r}")
        for name in ("blend_in", "blend_out"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a number of frames >= 0, got {v!r}")


@dataclass
class Placed:
    track: str
    strip: str
    pushed_down: str | None  # the active action moved onto a track of this name, if there was one


def check_layerable(obj: bpy.types.Object) -> None:
    """Refuse what cannot take a layer, before anything changes."""
    if obj is None or getattr(obj, "type", None) != 'ARMATURE':
        raise SemgesError(f"{getattr(obj, 'name', obj)!r} is not an armature object")
    anim = obj.animation_data
    if anim is not None and anim.use_tweak_mode:
        raise SemgesError(f"{obj.name!r} is in NLA tweak mode; leave it (Tab in the NLA editor) and try again")


def semges_track(obj: bpy.types.Object) -> bpy.types.NlaTrack | None:
    anim = obj.animation_data
    if anim is None:
        return None
    return next((t for t in anim.nla_tracks if t.name == TRACK_NAME), None)


def strip_under(track: bpy.types.NlaTrack, frame: float) -> bpy.types.NlaStrip | None:
    return next((s for s in track.strips if s.frame_start <= frame <= s.frame_end), None)


# ---------------------------------------------------------------------- strips


def _set_slot(strip: bpy.types.NlaStrip, slot) -> None:
    if slot is not None and hasattr(strip, "action_slot"):
        strip.action_slot = slot


def action_slot_for(action: bpy.types.Action, obj: bpy.types.Object):
    """The slot of `action` meant for `obj` (4.4+), else None."""
    if not SLOTTED_ACTIONS or not len(action.slots):
        return None
    return next((s for s in action.slots if s.target_id_type == 'OBJECT' and s.name_display == obj.name),
                next((s for s in action.slots if s.target_id_type in ('OBJECT', 'UNSPECIFIED')), action.slots[0]))


def apply_strip_settings(strip: bpy.types.NlaStrip, s: LayerSettings) -> None:
    strip.blend_type = BLENDS[s.blend]
    strip.extrapolation = 'NOTHING'
    strip.use_auto_blend = False
    strip.blend_in = s.blend_in
    strip.blend_out = s.blend_out
    if s.influence >= 1.0:
        strip.use_animated_influence = False  # Blender's own linear blend in/out, full influence
        return
    strip.use_animated_influence = True  # creates the "influence" curve
    fc = strip.fcurves.find("influence")
    fc.keyframe_points.clear()
    a, b = float(strip.frame_start), float(strip.frame_end)
    bi, bo = float(strip.blend_in), float(strip.blend_out)  # as Blender clamped them
    points = {a: 0.0 if bi > 0 else s.influence, a + bi: s.influence, b - bo: s.influence,
              b: 0.0 if bo > 0 else s.influence}
    for frame, value in sorted(points.items()):
        kp = fc.keyframe_points.insert(frame, value)
        kp.interpolation = 'LINEAR'
    fc.update()


def strip_layer_settings(strip: bpy.types.NlaStrip) -> LayerSettings:
    blend = "ADD" if strip.blend_type == 'COMBINE' else "REPLACE"
    influence = 1.0
    if strip.use_animated_influence:
        fc = strip.fcurves.find("influence")
        if fc is not None and len(fc.keyframe_points):
            influence = max(float(k.co[1]) for k in fc.keyframe_points)
    return LayerSettings(blend, min(max(influence, 0.0), 1.0), float(strip.blend_in), float(strip.blend_out))


@dataclass
class StripState:
    """Enough of a strip to put it back after removing it."""

    name: str
    start: float
    action: bpy.types.Action
    slot: object
    settings: LayerSettings
    mute: bool

    @classmethod
    def of(cls, strip: bpy.types.NlaStrip) -> StripState:
        return cls(strip.name, float(strip.frame_start), strip.action, getattr(strip, "action_slot", None),
                   strip_layer_settings(strip), bool(strip.mute))

    def create(self, track: bpy.types.NlaTrack, action: bpy.types.Action | None = None, slot=None) -> bpy.types.NlaStrip:
        action = action or self.action
        strip = track.strips.new(self.name, int(round(self.start)), action)
        _set_slot(strip, slot if action is not self.action or slot is not None else self.slot)
        apply_strip_settings(strip, self.settings)
        strip.mute = self.mute
        return strip


def new_take_strip(track: bpy.types.NlaTrack, action: bpy.types.Action, slot, start: int, end: int,
                   settings: LayerSettings, journal: Journal) -> bpy.types.NlaStrip:
    """A strip for `action` at `start`; strips of the track it would overlap are taken off (kept in the journal)."""
    for old in [s for s in track.strips if s.frame_start <= end and s.frame_end >= start]:
        state = StripState.of(old)
        track.strips.remove(old)
        journal.push(lambda st=state: st.create(track))
    strip = track.strips.new(action.name, int(start), action)
    journal.push(lambda: track.strips.remove(strip))
    _set_slot(strip, slot)
    apply_strip_settings(strip, settings)
    return strip


def _push_down(obj: bpy.types.Object, journal: Journal) -> str:
    """The active action onto a new top track of its own, as Blender's Push Down does; the action is unchanged."""
    anim = obj.animation_data
    action = anim.action
    slot = anim.action_slot if SLOTTED_ACTIONS else None
    track = anim.nla_tracks.new()
    journal.push(lambda: anim.nla_tracks.remove(track))
    track.name = action.name
    strip = track.strips.new(action.name, int(math.floor(action.frame_range[0])), action)
    _set_slot(strip, slot)
    strip.blend_type = anim.action_blend_type
    strip.extrapolation = anim.action_extrapolation
    if anim.action_influence < 1.0:
        strip.influence = anim.action_influence
        strip.use_animated_influence = True  # keyed at the current influence, as Blender does
    anim.action = None

    def restore():
        anim.action = action
        if slot is not None:
            anim.action_slot = slot
    journal.push(restore)
    return track.name


def _move_to_top(obj: bpy.types.Object, track: bpy.types.NlaTrack, journal: Journal) -> bpy.types.NlaTrack:
    """The SemGes track rebuilt above all others (the API cannot move tracks)."""
    anim = obj.animation_data
    states = [StripState.of(s) for s in track.strips]
    mute, solo, lock = track.mute, track.is_solo, track.lock
    anim.nla_tracks.remove(track)

    def restore():  # at the top again: the track pushed down under it is gone by then
        old = anim.nla_tracks.new()
        old.name, old.mute, old.lock = TRACK_NAME, mute, lock
        for st in states:
            st.create(old)
    journal.push(restore)
    new = anim.nla_tracks.new()
    journal.push(lambda: anim.nla_tracks.remove(new))
    new.name, new.mute, new.lock = TRACK_NAME, mute, lock
    for st in states:
        st.create(new)
    return new


def place_take(obj: bpy.types.Object, action: bpy.types.Action, slot, start: int, end: int,
               settings: LayerSettings, journal: Journal) -> Placed:
    """Play `action` from `start` on the SemGes track (created above all tracks, else reused)."""
    if obj.animation_data is None:
        obj.animation_data_create()
        journal.push(obj.animation_data_clear)
    anim = obj.animation_data
    pushed = _push_down(obj, journal) if anim.action is not None else None
    track = semges_track(obj)
    if track is not None and pushed is not None:
        track = _move_to_top(obj, track, journal)  # the gestures go over what was just pushed down
    if track is None:
        track = anim.nla_tracks.new()
        journal.push(lambda: anim.nla_tracks.remove(track))
        track.name = TRACK_NAME
    strip = new_take_strip(track, action, slot, start, end, settings, journal)
    if pushed is not None:
        from .takes import take_meta, tag_take
        tag_take(action, dict(take_meta(action), below=pushed))
    return Placed(track.name, strip.name, pushed)


# ---------------------------------------------------------------------- the panel's settings


def layer_settings(obj: bpy.types.Object) -> LayerSettings:
    """The settings of the take playing now (the strip under the current frame, else the last one)."""
    track = semges_track(obj)
    if track is None or not len(track.strips):
        return LayerSettings()
    strip = strip_under(track, bpy.context.scene.frame_current) or track.strips[-1]
    return strip_layer_settings(strip)


def set_layer(obj: bpy.types.Object, blend: str | None = None, influence: float | None = None,
              blend_in: float | None = None, blend_out: float | None = None) -> LayerSettings:
    """Change how every SemGes strip of `obj` plays ('REPLACE'|'ADD', influence, blend frames); None keeps a value."""
    track = semges_track(obj)
    if track is None or not len(track.strips):
        raise SemgesError(f"{obj.name!r} has no SemGes takes on its NLA track yet; generate first")
    out = None
    for strip in track.strips:
        cur = strip_layer_settings(strip)
        new = LayerSettings(cur.blend if blend is None else blend, cur.influence if influence is None else influence,
                            cur.blend_in if blend_in is None else blend_in,
                            cur.blend_out if blend_out is None else blend_out)
        apply_strip_settings(strip, new)
        out = out or new
    return out


# ---------------------------------------------------------------------- bake


def bone_rotation_paths(action: bpy.types.Action, obj: bpy.types.Object) -> dict[str, str]:
    """bone -> rotation property keyed in a take."""
    from .keyframes import action_fcurves

    out = {}
    for fc in action_fcurves(action, obj):
        m = _BONE_ROTATION.match(fc.data_path)
        if m:
            out[m.group(1).replace('\\"', '"').replace("\\\\", "\\")] = m.group(2)
    return out


def _curves(action: bpy.types.Action, obj: bpy.types.Object, slot):
    """find(path, index) and new(path, index, group) for `action`'s F-curves of `slot` (any API)."""
    if not SLOTTED_ACTIONS:
        if action.id_root == 'OBJECT' or not len(action.fcurves):
            action.id_root = 'OBJECT'
        return (lambda p, i: action.fcurves.find(p, index=i),
                lambda p, i, g: action.fcurves.new(p, index=i, action_group=g))
    from .keyframes import _FCurveSink

    if slot is None:
        sink = _FCurveSink(action, obj)
        return (lambda p, i: sink.bag.fcurves.find(p, index=i), sink.new), sink.slot
    layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
    kstrip = layer.strips[0] if len(layer.strips) else layer.strips.new(type='KEYFRAME')
    bag = kstrip.channelbag(slot, ensure=True)

    def new(p, i, g):
        fc = bag.fcurves.new(p, index=i)
        grp = next((x for x in bag.groups if x.name == g), None) or bag.groups.new(g)
        fc.group = grp
        return fc
    return (lambda p, i: bag.fcurves.find(p, index=i), new), slot


def _below_action(obj: bpy.types.Object, track: bpy.types.NlaTrack) -> tuple[bpy.types.NlaTrack | None, object]:
    """The pushed-down track under the SemGes one (named in a take's tag), with its strip."""
    from .takes import take_meta

    names = {take_meta(s.action).get("below") for s in track.strips if s.action is not None} - {None}
    for t in obj.animation_data.nla_tracks:
        if t.name in names and t != track and len(t.strips) == 1 and not t.mute:
            return t, t.strips[0]
    return None, None


def bake(obj: bpy.types.Object, scene: bpy.types.Scene | None = None,
         tolerance: float | None = None) -> dict:
    """Merge the gestures and the animation under them into a new active action; the takes stay.

    Evaluates the whole stack at every frame the SemGes strips cover and writes the mapped
    bones' rotations (each in its own mode) into a copy of the action underneath (the active
    one, else the one pushed down under the gestures; else a new action), over that range
    widened to the copy's neighbouring keys of those channels (else by one frame, which holds
    what plays there), so its curves play as before outside it.
    The copy becomes the active action, the SemGes track and the copied track are muted, so
    the rig plays the same and the originals survive. tolerance: key reduction in degrees
    (None: a key per frame). Returns a report of what was done.
    """
    from . import keyframes

    scene = scene or bpy.context.scene
    check_layerable(obj)
    track = semges_track(obj)
    strips = [s for s in track.strips if not s.mute and s.action is not None] if track is not None else []
    if not strips or track.mute:
        raise SemgesError(f"{obj.name!r} has no SemGes take playing to bake")
    anim = obj.animation_data
    a = int(math.floor(min(s.frame_start for s in strips)))
    b = int(math.ceil(max(s.frame_end for s in strips)))
    paths: dict[str, str] = {}
    for s in strips:
        paths.update(bone_rotation_paths(s.action, obj))
    bones = [n for n in paths if n in obj.pose.bones]
    under_track, under_strip = (None, None) if anim.action is not None else _below_action(obj, track)
    base = anim.action if anim.action is not None else (under_strip.action if under_strip is not None else None)
    base_slot = (anim.action_slot if anim.action is not None else getattr(under_strip, "action_slot", None)) \
        if SLOTTED_ACTIONS else None
    if base is not None:  # reach the base's neighbouring keys, so its curves play as before outside the range
        from .keyframes import action_fcurves, rotation_path

        wanted = {f'pose.bones["{bpy.utils.escape_identifier(n)}"].{rotation_path(obj.pose.bones[n].rotation_mode)}'
                  for n in bones}
        for fc in action_fcurves(base):
            if fc.data_path in wanted and len(fc.keyframe_points):
                co = np.zeros(2 * len(fc.keyframe_points), dtype=np.float32)
                fc.keyframe_points.foreach_get("co", co)
                t = co[0::2]
                if (t < a).any():
                    a = min(a, int(math.floor(t[t < a].max())))
                if (t > b).any():
                    b = max(b, int(math.ceil(t[t > b].min())))
    # A frame either side that the strips do not cover, holding what plays there, so the copy's
    # curves extrapolate the animation underneath, not the take's first or last pose.
    if a == int(math.floor(min(s.frame_start for s in strips))):
        a -= 1
    if b == int(math.ceil(max(s.frame_end for s in strips))):
        b += 1
    frame0 = scene.frame_current
    values = {n: [] for n in bones}
    try:
        for f in range(a, b + 1):
            scene.frame_set(f)
            for n in bones:
                pb = obj.pose.bones[n]
                mode = pb.rotation_mode
                values[n].append(tuple(pb.rotation_quaternion) if mode == 'QUATERNION' else
                                 tuple(pb.rotation_axis_angle) if mode == 'AXIS_ANGLE' else tuple(pb.rotation_euler))
    finally:
        scene.frame_set(frame0)

    journal = Journal()
    try:
        if base is not None:
            baked = base.copy()
            baked.name = f"{base.name} + SemGes"
        else:
            baked = bpy.data.actions.new(f"{obj.name} SemGes baked")
        journal.push(lambda: bpy.data.actions.remove(baked))
        baked.use_fake_user = False
        slot = None
        if SLOTTED_ACTIONS and base_slot is not None:
            slot = next((s for s in baked.slots if s.identifier == base_slot.identifier), None)
        found = _curves(baked, obj, slot)
        if SLOTTED_ACTIONS:
            (find, new), slot = found
        else:
            find, new = found
        frames = np.arange(a, b + 1, dtype=np.float64)
        n_keys = 0
        for n in bones:
            mode = obj.pose.bones[n].rotation_mode
            v = np.array(values[n], dtype=np.float64)
            if mode == 'QUATERNION':
                v = keyframes.quat_continuous(v)
            kept = keyframes.reduce_keys(v, lambda ch, m=mode: keyframes.channels_to_quats(ch, m), tolerance)
            path = f'pose.bones["{bpy.utils.escape_identifier(n)}"].{keyframes.rotation_path(mode)}'
            for i in range(v.shape[1]):
                fc = find(path, i)
                if fc is None:
                    fc = new(path, i, n)
                else:  # the range is replaced; keys outside it stay
                    for kp in reversed([kp for kp in fc.keyframe_points if a <= kp.co[0] <= b]):
                        fc.keyframe_points.remove(kp, fast=True)
                keyframes.write_keys(fc, frames[kept], v[kept, i], linear=bool(tolerance))
            n_keys += len(kept) * v.shape[1]
        old_action = anim.action
        old_slot = anim.action_slot if SLOTTED_ACTIONS else None
        protect = old_action is not None and not old_action.use_fake_user and old_action.users <= 1
        if protect:
            old_action.use_fake_user = True
            journal.push(lambda: setattr(old_action, "use_fake_user", False))

        def restore_active():
            anim.action = old_action
            if old_slot is not None:
                anim.action_slot = old_slot
        anim.action = baked
        journal.push(restore_active)
        if slot is not None:
            anim.action_slot = slot
        muted = []
        for t in (track, under_track):
            if t is not None and not t.mute:
                t.mute = True
                journal.push(lambda t=t: setattr(t, "mute", False))
                muted.append(t.name)
    except BaseException:
        journal.rollback()
        raise
    return {"action": baked.name, "from": base.name if base is not None else None, "frame_start": a,
            "frame_end": b, "bones": len(bones), "keys": n_keys, "muted_tracks": muted}
