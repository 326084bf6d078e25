"""Keyframing a 60-second, 30 fps gesture clip onto a 47-bone rig, next to Blender's own BVH importer.

    python benchmarks/keyframing.py [--seconds 60] [--repeats 3]

Runs inside real Blender (the `bpy` module of whichever venv runs it; run it with
both `.venv` and `.venv-blender42` to compare 5.0 and 4.2). The clip is the demo
model's output for the example speech, reduced to the 47 upper-body joints the
model generates (a 47-joint skeleton rooted at Spine, exact because the joints
left out stay at rest). The same motion goes both ways:
- Blender: `bpy.ops.import_anim.bvh` of the 47-joint BVH (parse, build the
  armature, key every bone), with its default Euler channels and with quaternions;
- ours: read the motion `.npz` the worker hands to Blender, retarget it onto the
  armature the importer made, and key it (`semges_blender.keyframes.apply_motion`).
Both then pose the rig; the benchmark checks they agree. Then the full clip goes onto a
generated Rigify rig's FK controls, whose keys are solved through its constraints. Writes
benchmarks/results/keyframing_blender<major>.<minor>.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, long_input, machine, machine_line, markdown_table, write_result  # noqa: E402

import bpy  # noqa: E402

from semges_blender.keyframes import apply_motion  # noqa: E402
from semges_blender.presets import BoneMapping  # noqa: E402
from semges_blender.source import SourceMotion  # noqa: E402
from semges_core.motion.rotations import matrix_to_quat  # noqa: E402
from semges_core.motion.skeleton import UPPER_BODY_JOINTS, Skeleton  # noqa: E402

CHECK_BONES = ("RHand", "LHand", "RHandI3", "LHandT3", "Neck1")


def upper_body_motion(seconds: float, tmp: Path):
    """The demo model's gestures for `seconds` of speech, on the 47-joint upper-body skeleton."""
    from semges_core.speech.audio import load_audio
    from semges_core.bundle import default_bundle_path, load_bundle
    from semges_core.inference import generate
    from semges_core.motion.clip import Motion

    wav, words = long_input(seconds, tmp)
    full = generate(load_bundle(default_bundle_path()), load_audio(wav), words, fps=30.0, device="cpu").motion
    src = SourceMotion.from_motion(full)
    sk = full.skeleton
    keep = [j for j, n in enumerate(sk.names) if n in UPPER_BODY_JOINTS]  # BEAT order: parents first

    def kept_parent(j: int) -> int:
        p = sk.parents[j]
        while p >= 0 and p not in keep:
            p = sk.parents[p]
        return p

    parents = [keep.index(kept_parent(j)) if kept_parent(j) >= 0 else -1 for j in keep]
    rest = src.rest_positions()
    offsets = np.array([rest[j] if parents[i] < 0 else rest[j] - rest[keep[parents[i]]] for i, j in enumerate(keep)])
    glob = src.world_rotations()  # (T, J, 3, 3)
    local = np.stack([glob[:, j] if parents[i] < 0 else np.swapaxes(glob[:, keep[parents[i]]], -1, -2) @ glob[:, j]
                      for i, j in enumerate(keep)], axis=1)
    has_child = {parents[i] for i in range(len(keep))}
    # A joint whose children were all left out becomes a leaf: BVH wants an End Site there.
    ends = tuple(None if i in has_child else (sk.end_sites[j] or tuple(sk.offsets[sk.parents.index(j)]))
                 for i, j in enumerate(keep))
    skeleton = Skeleton(tuple(sk.names[j] for j in keep), tuple(parents), offsets,
                        tuple(sk.rotation_orders[j] for j in keep), ends)
    root = src.world_positions()[:, keep[0]]
    motion = Motion(skeleton, 30.0, root, matrix_to_quat(local))
    err = np.abs(motion.positions() - full.positions()[:, keep]).max()
    assert err < 1e-3, f"the 47-joint clip must pose like the full one; differs by {err} cm"
    return motion, full


def head_positions(obj, frames) -> np.ndarray:
    scene = bpy.context.scene
    world = np.array(obj.matrix_world)
    out = []
    for f in frames:
        scene.frame_set(int(f))
        heads = np.array([tuple(obj.pose.bones[n].head) for n in CHECK_BONES])
        out.append(heads @ world[:3, :3].T + world[:3, 3])
    return np.array(out)


def fresh_scene() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0


def import_bvh(path: Path, rotate_mode: str) -> tuple[float, object]:
    t = time.perf_counter()
    result = bpy.ops.import_anim.bvh(filepath=str(path), target="ARMATURE", global_scale=0.01, frame_start=1,
                                     use_fps_scale=False, update_scene_fps=False, update_scene_duration=True,
                                     rotate_mode=rotate_mode, axis_forward="-Z", axis_up="Y")
    seconds = time.perf_counter() - t
    assert result == {"FINISHED"}, result
    return seconds, bpy.context.view_layer.objects.active


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--repeats", type=int, default=3, help="runs of each; the median is reported")
    args = p.parse_args(argv)
    from semges_core.formats.bvh import write_bvh
    from semges_core.formats.npz import save_motion_npz

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        motion, full = upper_body_motion(args.seconds, tmp)
        bvh, npz = tmp / "gestures47.bvh", tmp / "gestures47.npz"
        write_bvh(bvh, motion)
        save_motion_npz(npz, motion)
        mapping = BoneMapping("upper_body_47", {n: n for n in motion.skeleton.names})
        n_bones, n_frames = len(motion.skeleton), motion.n_frames
        frames = np.linspace(1, n_frames, 7).round()
        times: dict[str, list[float]] = {"import_anim.bvh (Euler, default)": [], "import_anim.bvh (quaternion)": [],
                                         "SemGes apply_motion": []}
        worst = 0.0
        for _ in range(args.repeats):
            for mode, key in (("NATIVE", "import_anim.bvh (Euler, default)"), ("QUATERNION", "import_anim.bvh (quaternion)")):
                fresh_scene()
                seconds, obj = import_bvh(bvh, mode)
                times[key].append(seconds)
            imported = head_positions(obj, frames)
            t = time.perf_counter()
            result = apply_motion(obj, SourceMotion.from_npz(npz), mapping, start_frame=1, action_name="SemGes",
                                  key_tolerance=None)  # a key per frame, as the importer writes
            times["SemGes apply_motion"].append(time.perf_counter() - t)
            assert len(result.bones) == n_bones and result.n_frames == n_frames
            worst = max(worst, float(np.abs(head_positions(obj, frames) - imported).max()))
        rigify = []  # a generated Rigify rig: FK controls, keys solved through its constraints
        for _ in range(args.repeats):
            fresh_scene()
            bpy.ops.preferences.addon_enable(module="rigify")
            bpy.ops.object.armature_human_metarig_add()
            bpy.ops.pose.rigify_generate()
            rig = bpy.context.view_layer.objects.active
            t = time.perf_counter()
            rig_result = apply_motion(rig, SourceMotion.from_motion(full), "rigify_fk", action_name="SemGes",
                                      key_tolerance=None)
            rigify.append(time.perf_counter() - t)
        fresh_scene()
    med = {k: statistics.median(v) for k, v in times.items()}
    rigify_s = statistics.median(rigify)
    ours = med["SemGes apply_motion"]
    version = ".".join(str(v) for v in bpy.app.version[:2])
    info = machine("cpu") | {"blender": bpy.app.version_string}
    rows = [[k, f"{v:.3f}", f"{v / ours:.2f}"] for k, v in med.items()]
    text = (f"Keying a {args.seconds:g}-second, 30 fps clip ({n_frames} frames) onto a {n_bones}-bone rig in Blender "
            f"{bpy.app.version_string} (bpy module, background), median of {args.repeats}, on {machine_line(info)}. "
            f"Both leave the rig in the same pose (largest difference {worst * 1000:.3f} mm at {len(frames)} frames).\n\n"
            + markdown_table(["method", "seconds", "time / SemGes"], rows)
            + f"\n\nThe same clip on a generated Rigify rig ({len(rig_result.bones)} FK controls, keys solved through "
              f"the rig's constraints by Blender's evaluation): {rigify_s:.2f} s.")
    print(text)
    write_result(f"keyframing_blender{version}", {"machine": info, "seconds": args.seconds, "frames": n_frames,
                                                  "bones": n_bones, "median_seconds": med, "all_seconds": times,
                                                  "max_pose_difference_m": worst, "rigify_fk_seconds": rigify_s,
                                                  "rigify_fk_bones": len(rig_result.bones)}, text)
    if "rigify" in sys.modules and bpy.app.version < (4, 3, 0):
        # The 4.2 bpy module crashes while Python shuts down once Rigify has been enabled;
        # the results are written, so leave without that teardown.
        sys.stdout.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
