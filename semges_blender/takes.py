"""A rig's SemGes takes: generated Actions, tagged, listed, switched, renamed and deleted.

Every Generate makes a take, and takes the animator cannot see pile up as anonymous
fake-user actions. A take is an Action carrying the custom property `semges_take` (a
JSON string: audio, seed, variation, intensity, model, speaker, start frame, fps, rig,
mapping...), so the panel can list exactly the takes of one rig, say how each was
made, and play another one on the SemGes strip instead. Takes keep a fake user, so a
take that is not on a strip is still saved with the file, and it is listed rather than
forgotten; deleting one removes the action and every strip that plays it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import bpy

from semges_core.errors import SemgesError

from .layers import Journal, StripState, action_slot_for, semges_track, strip_under

META_KEY = "semges_take"


@dataclass
class TakeInfo:
    name: str
    action: bpy.types.Action
    active: bool  # the take `active_take` names
    frame_start: int
    frame_end: int
    meta: dict = field(default_factory=dict)


def take_meta(action: bpy.types.Action | None) -> dict:
    """The take's tag as a dict ({} for an action that is not a take, or a tag that does not parse)."""
    if action is None:
        return {}
    raw = action.get(META_KEY)
    if raw is None:
        return {}
    try:
        meta = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def is_take(action: bpy.types.Action) -> bool:
    return META_KEY in action.keys()


def tag_take(action: bpy.types.Action, meta: dict) -> None:
    _serial_meta = dict(meta)
    _serial_meta.setdefault("serial", 1 + max((take_meta(a).get("serial", 0) for a in bpy.data.actions
                                               if a is not action and is_take(a)), default=0))
    action[META_KEY] = json.dumps(_serial_meta, sort_keys=True, default=str)


def _takes_of(obj: bpy.types.Object) -> list[bpy.types.Action]:
    track = semges_track(obj)
    on_track = {s.action.name for s in track.strips if s.action is not None} if track is not None else set()
    out = [a for a in bpy.data.actions if is_take(a) and (take_meta(a).get("rig") == obj.name or a.name in on_track)]
    return sorted(out, key=lambda a: (take_meta(a).get("serial", 0), a.name))


def _take(obj: bpy.types.Object, name: str) -> bpy.types.Action:
    action = next((a for a in _takes_of(obj) if a.name == name), None)
    if action is None:
        raise SemgesError(f"{obj.name!r} has no SemGes take named {name!r}")
    return action


def _playing_strip(obj: bpy.types.Object):
    """The SemGes strip under the current frame, else None."""
    track = semges_track(obj)
    if track is None:
        return None
    return strip_under(track, bpy.context.scene.frame_current)


def active_take(obj: bpy.types.Object) -> bpy.types.Action | None:
    """The take of the SemGes strip under the current frame, else the last one generated."""
    strip = _playing_strip(obj)
    if strip is not None and strip.action is not None and is_take(strip.action):
        return strip.action
    all_takes = _takes_of(obj)
    return all_takes[-1] if all_takes else None


def list_takes(obj: bpy.types.Object) -> list[TakeInfo]:
    """Every take of `obj`, oldest first, on a strip or not."""
    current = active_take(obj)
    out = []
    for a in _takes_of(obj):
        lo, hi = a.frame_range
        out.append(TakeInfo(a.name, a, a == current, int(round(lo)), int(round(hi)), take_meta(a)))
    return out


def switch_take(obj: bpy.types.Object, name: str) -> bpy.types.NlaStrip:
    """Play take `name` on the active SemGes strip (under the current frame, else the last), from its start.

    The take shown before stays in the file (fake user) and in the list.
    """
    action = _take(obj, name)
    track = semges_track(obj)
    if track is None or not len(track.strips):
        raise SemgesError(f"{obj.name!r} has no SemGes strip to play take {name!r} on; generate first")
    strip = _playing_strip(obj) or track.strips[-1]
    if strip.action == action:
        return strip
    state = StripState.of(strip)
    journal = Journal()
    try:
        track.strips.remove(strip)
        journal.push(lambda: state.create(track))
        lo, hi = action.frame_range
        length = hi - lo
        for other in [s for s in track.strips if s.frame_start <= state.start + length and s.frame_end >= state.start]:
            other_state = StripState.of(other)
            track.strips.remove(other)
            journal.push(lambda st=other_state: st.create(track))
        state.name = action.name
        return state.create(track, action, action_slot_for(action, obj))
    except BaseException:
        journal.rollback()
        raise


def rename_take(obj: bpy.types.Object, old: str, new: str) -> str:
    """Rename a take (its action and the strips that play it); returns the new name."""
    new = new.strip()
    if not new:
        raise SemgesError("a take needs a name")
    action = _take(obj, old)
    if new != old and new in bpy.data.actions:
        raise SemgesError(f"an action named {new!r} already exists; pick another name")
    action.name = new
    track = semges_track(obj)
    for s in (track.strips if track is not None else []):
        if s.action == action:
            s.name = action.name
    return action.name


def delete_take(obj: bpy.types.Object, name: str) -> None:
    """Remove a take: every strip of `obj` that plays it, then the action itself."""
    action = _take(obj, name)
    anim = obj.animation_data
    if anim is not None:
        if anim.action == action:
            anim.action = None
        for t in anim.nla_tracks:
            for s in [s for s in t.strips if s.action == action]:
                t.strips.remove(s)
    bpy.data.actions.remove(action)
