"""The motion maths and the Blender side's reader run on numpy alone, as in Blender's own Python.

A fresh interpreter refuses torch, scipy and librosa (an import hook raises ImportError for
them, as if they were not installed), imports semges_core.motion, the .npz format and the
Blender side's source and retarget modules, does a rotation round trip, forward kinematics,
a resample, normalisation and an .npz round trip, and then none of the three may be loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

from test_blender_common import REPO

BLOCKED = ("torch", "scipy", "librosa")

CODE = """
import importlib.abc, json, sys, tempfile
from pathlib import Path

BLOCKED = {blocked!r}
attempts = []


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ImportError(f"{{name}} is blocked in this test")
        return None


sys.meta_path.insert(0, Refuse())

import numpy as np

import semges_core.motion.clip
import semges_core.motion.kinematics
import semges_core.motion.normalization
import semges_core.motion.rotations as rot
import semges_core.motion.skeleton
import semges_blender.retarget
import semges_blender.source
from semges_core.formats.npz import load_motion_npz, save_motion_npz
from semges_core.motion.clip import Motion
from semges_core.motion.kinematics import forward_kinematics
from semges_core.motion.normalization import NormStats
from semges_core.motion.skeleton import BEAT_SKELETON
from semges_blender.source import SourceMotion

rng = np.random.default_rng(0)
angles = rng.uniform(-80, 80, (200, 3))
R = rot.euler_to_matrix(angles, "ZXY")
assert np.allclose(rot.matrix_to_euler(R, "ZXY"), angles, atol=1e-9)
assert np.allclose(rot.quat_to_matrix(rot.matrix_to_quat(R)), R, atol=1e-12)
assert np.allclose(rot.rot6d_to_matrix(rot.matrix_to_rot6d(R)), R, atol=1e-12)

pose = rng.normal(size=(90, 282))
motion = Motion.from_upper_body_rot6d(pose, 30.0)
pos = forward_kinematics(BEAT_SKELETON, motion.rotations, motion.root_positions)
assert pos.shape == (90, len(BEAT_SKELETON), 3) and pos.dtype == np.float64 and np.isfinite(pos).all()
at_24 = motion.resample(24.0)
assert at_24.n_frames == 72 and np.allclose(np.linalg.norm(at_24.rotations, axis=-1), 1.0)

stats = NormStats.from_arrays([pose])
assert np.allclose(stats.denormalize(stats.normalize(pose)), pose)

with tempfile.TemporaryDirectory() as tmp:
    save_motion_npz(Path(tmp) / "m.npz", motion)
    src = SourceMotion.from_npz(Path(tmp) / "m.npz")
    assert np.allclose(load_motion_npz(Path(tmp) / "m.npz").rotations, motion.rotations, atol=1e-6)
assert np.allclose(src.resample(24.0).world_positions(), at_24.positions(), atol=1e-3)

print(json.dumps({{"loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
                  "attempts": attempts}}))
"""


def test_motion_maths_run_without_torch_scipy_librosa():
    code = CODE.format(blocked=BLOCKED)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["loaded"] == [], result
