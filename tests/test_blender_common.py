"""Shared helpers of the Blender-extension tests (no tests here): inputs, test rigs, measurements.

Imported by the other tests/test_blender_*.py modules (pytest puts tests/ on sys.path).
Nothing here imports bpy at import time, so the worker tests run without Blender too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_WAV = REPO / "examples" / "speech.wav"
EXAMPLE_TG = REPO / "examples" / "speech.TextGrid"

# Upper-arm and forearm of each side as (BEAT joint from, BEAT joint to).
ARM_SEGMENTS = (("RArm", "RArm1"), ("RArm1", "RHand"), ("LArm", "LArm1"), ("LArm1", "LHand"))


def gesture_motion(fps: float = 30.0, seconds: float = 3.0):
    """A SynthBEAT motion with clear arm movement: a "big" (arms spread) then an "up" gesture."""
    from training.synthbeat.events import GestureEvent, SpeakerStyle
    from training.synthbeat.gestures import synthesize_motion

    style = SpeakerStyle(2, "scott", "en-us+m3", 160, 50, "right", amplitude=1.0, tempo=1.0, posture=0.5)
    events = [GestureEvent("big", 0.3, 0.8, 1.5, 1.0, "big"), GestureEvent("up", 1.6, 2.1, 2.8, 1.0, "up")]
    return synthesize_motion(events, seconds, fps, style, 0)


def angle_deg(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    c = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def direction_errors(obj, source, bones: dict[str, str], frames, start_frame: int = 1,
                     segments=ARM_SEGMENTS, turn: np.ndarray | None = None) -> np.ndarray:
    """Angles (len(frames), len(segments)) in degrees between target and source segment directions.

    A segment (a, b) runs from joint a to joint b; on the target from the head of a's bone
    to the head of b's bone, in world space after scene.frame_set; on the source from the
    forward-kinematics positions converted to Blender axes (and turned by `turn`).
    `source` must be at the scene's frame rate.
    """
    import bpy

    from semges_blender.source import BEAT_TO_BLENDER

    pos = source.world_positions() @ BEAT_TO_BLENDER.T  # (T, J, 3)
    if turn is not None:
        pos = pos @ turn.T
    W = obj.matrix_world
    out = np.zeros((len(frames), len(segments)))
    for r, f in enumerate(frames):
        bpy.context.scene.frame_set(f)
        k = f - start_frame
        for c, (a, b) in enumerate(segments):
            tgt = np.array(W @ obj.pose.bones[bones[b]].head) - np.array(W @ obj.pose.bones[bones[a]].head)
            src = pos[k, source.index(b)] - pos[k, source.index(a)]
            out[r, c] = angle_deg(tgt, src)
    return out


def _rot(axis: str, deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return {"X": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "Y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "Z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


MIXAMO_FINGERS = {"I": "Index", "M": "Middle", "R": "Ring", "P": "Pinky", "T": "Thumb"}


def mixamo_joints(arm_down_deg: float = 45.0, elbow_bend_deg: float = 15.0,
                  without: tuple[str, ...] = ()) -> dict[str, tuple]:
    """A Mixamo-named rig laid out on BEAT's proportions (Blender axes, metres), in an A-pose.

    Arms hang `arm_down_deg` below horizontal from the shoulder joint and the forearms bend
    `elbow_bend_deg` forward, so the rest pose differs from BEAT's T-pose.
    """
    from semges_core.motion.skeleton import BEAT_SKELETON as sk

    from semges_blender.rigs import skeleton_rest_positions
    from semges_blender.source import BEAT_TO_BLENDER

    P = {n: p for n, p in zip(sk.names, skeleton_rest_positions(sk.names, sk.parents, sk.offsets)
                              @ BEAT_TO_BLENDER.T * 0.01)}
    for side, sign in (("R", 1.0), ("L", -1.0)):
        arm = [n for n in sk.names if n.startswith(side + "Arm1") or n.startswith(side + "Hand")]
        pivot = P[side + "Arm"].copy()
        for n in arm:  # swing the arm down about the forward axis (Y), at the shoulder joint
            P[n] = pivot + _rot("Y", -sign * arm_down_deg) @ (P[n] - pivot)
        elbow = P[side + "Arm1"].copy()
        for n in [n for n in arm if n.startswith(side + "Hand")]:  # bend the elbow forward (-Y)
            P[n] = elbow + _rot("Z", sign * elbow_bend_deg) @ (P[n] - elbow)
    ns = "mixamorig:"
    j = {ns + "Hips": (P["Hips"], None, None), ns + "Spine": (P["Spine"], ns + "Hips", None),
         ns + "Spine1": (P["Spine2"], ns + "Spine", None), ns + "Spine2": (P["Spine3"], ns + "Spine1", None),
         ns + "Neck": (P["Neck"], ns + "Spine2", None), ns + "Head": (P["Head"], ns + "Neck", None),
         ns + "HeadTop_End": (P["HeadEnd"], ns + "Head", None)}
    for s, word in (("R", "Right"), ("L", "Left")):
        j[f"{ns}{word}Shoulder"] = (P[s + "Shoulder"], ns + "Spine2", None)
        j[f"{ns}{word}Arm"] = (P[s + "Arm"], f"{ns}{word}Shoulder", None)
        j[f"{ns}{word}ForeArm"] = (P[s + "Arm1"], f"{ns}{word}Arm", None)
        j[f"{ns}{word}Hand"] = (P[s + "Hand"], f"{ns}{word}ForeArm", None)
        for f, fname in MIXAMO_FINGERS.items():
            parent = f"{ns}{word}Hand"
            for i in (1, 2, 3, 4):
                bone = f"{ns}{word}Hand{fname}{i}"
                j[bone] = (P[f"{s}Hand{f}{i}"], parent, None)
                parent = bone
    return {k: v for k, v in j.items() if k not in without}


def build_mixamo_rig(name: str = "Mixamo", fbx_style: bool = True, without: tuple[str, ...] = (), seed: int = 0):
    """The A-pose Mixamo rig with random bone rolls. fbx_style: bones Y-up in armature space, the
    object rotated +90 degrees about X and scaled 0.01 (as Blender's FBX importer brings Mixamo in)."""
    from semges_blender.rigs import create_armature_from_joints

    joints = mixamo_joints(without=without)
    if fbx_style:  # armature space Y-up in centimetres: the inverse of the object transform
        to_arm = _rot("X", -90.0) * 100.0
        joints = {k: (to_arm @ h, p, None if t is None else to_arm @ t) for k, (h, p, t) in joints.items()}
    rng = np.random.default_rng(seed)
    rolls = {k: float(rng.uniform(-np.pi, np.pi)) for k in joints}
    obj = create_armature_from_joints(name, joints, rolls=rolls)
    if fbx_style:
        obj.rotation_euler = (np.pi / 2, 0.0, 0.0)
        obj.scale = (0.01, 0.01, 0.01)
    return obj


@pytest.fixture(scope="module", autouse=True)
def registered_addon():
    """The extension registered for a whole test module (import in modules that need the panel)."""
    import semges_blender

    semges_blender.register()
    yield
    semges_blender.unregister()


@pytest.fixture(autouse=True)
def scene_at_30fps():
    """An empty factory scene at 30 fps around every test."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = 30
    yield
    bpy.ops.wm.read_factory_settings(use_empty=True)
