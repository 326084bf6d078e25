"""`semges stats`: how a motion file compares with a real speaker, statistic by statistic.

A user with a model's output and a real capture (BVH, our `.npz`, or BEAT2's SMPL-X
`.npz`) gets one table with generated / reference ratios and whether each lies in the
human range; without a capture, the reference is the real speaker measured in issue 13,
so anyone can see whether a motion hangs its arms or moves like a person.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from semges_core.errors import InputFileError
from semges_core.evaluation.human_stats import (
    REAL_SPEAKER,
    REAL_SPEAKER_LABEL,
    STATS_FPS,
    at_stats_rate,
    compare,
    cut_to_shorter,
    format_table,
    motion_statistics,
)
from semges_core.fileio import atomic_write
from semges_core.motion.clip import Motion


def load_any_motion(path: str | Path) -> Motion:
    """A BVH, a SemGes `.npz` or a BEAT2 SMPL-X `.npz` (told apart by its arrays) as a Motion."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "file not found")
    suffix = path.suffix.lower()
    if suffix == ".bvh":
        from semges_core.formats.bvh import read_bvh

        return read_bvh(path)
    if suffix == ".npz":
        from semges_core.formats.npz import load_motion_npz
        from semges_core.formats.smplx import is_smplx_npz, read_smplx_npz

        return read_smplx_npz(path) if is_smplx_npz(path) else load_motion_npz(path)
    raise InputFileError(path, f"expected a .bvh or .npz motion file, not {suffix or 'a file without a suffix'!r}")


def _statistics(motion: Motion, path: Path) -> dict[str, float]:
    try:
        return motion_statistics(motion)
    except (KeyError, ValueError) as e:
        raise InputFileError(path, f"cannot measure this motion: {e.args[0] if e.args else e}") from None


def run_stats(motion_path: str | Path, reference_path: str | Path | None = None) -> dict:
    """Statistics of a motion file against a reference file (both cut to the shorter) or REAL_SPEAKER."""
    motion_path = Path(motion_path)
    motion = load_any_motion(motion_path)
    if reference_path is None:
        motion = at_stats_rate(motion)
        generated, reference, label = _statistics(motion, motion_path), dict(REAL_SPEAKER), REAL_SPEAKER_LABEL
    else:
        reference_path = Path(reference_path)
        ref_motion = load_any_motion(reference_path)
        for m, p in ((motion, motion_path), (ref_motion, reference_path)):
            _statistics(m, p)  # each file's own problem named before the two are cut to the shorter
        motion, ref_motion = cut_to_shorter(motion, ref_motion)
        generated, reference = _statistics(motion, motion_path), _statistics(ref_motion, reference_path)
        label = str(reference_path)
    return {"motion": str(motion_path), "reference": label, "fps": STATS_FPS,
            "seconds": motion.n_frames / STATS_FPS, "generated": generated, "reference_values": reference,
            "rows": compare(generated, reference)}


def _json_safe(x):
    """NaN and infinities as null, so the file is strict JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_json_safe(v) for v in x]
    return x


def _cmd_stats(args: argparse.Namespace, rest: list[str]) -> int:
    result = run_stats(args.motion, args.reference)
    rows = result["rows"]
    print(f"{result['motion']}: {result['seconds']:.1f} s at {STATS_FPS:g} fps, compared with {result['reference']}")
    print(format_table(rows, Path(args.motion).name, "real speaker" if args.reference is None
                       else Path(args.reference).name, style="plain" if args.plain else "markdown"))
    main_rows = [r for r in rows if r["key"] in REAL_SPEAKER]
    print(f"{sum(r['in_range'] for r in main_rows)} of {len(main_rows)} statistics human-like "
          "(ratio within [0.5, 2]; at-rest share within 0.25)")
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(_json_safe(result), f, indent=1)
            f.write("\n")
        print(f"wrote {args.json}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `semges stats` on the subcommands of `semges`."""
    p = sub.add_parser("stats", help="human-likeness statistics of a motion, with ratios to a real speaker")
    p.add_argument("motion", help="motion to measure: .bvh, SemGes .npz or BEAT2 SMPL-X .npz")
    p.add_argument("--reference", help="real motion to compare with (same formats; default: the real "
                                       "speaker measured in issue 13)")
    p.add_argument("--json", help="also write every value and ratio to this JSON file")
    p.add_argument("--plain", action="store_true", help="aligned plain text instead of a markdown table")
    p.set_defaults(func=_cmd_stats)
