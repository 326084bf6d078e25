"""Bone mappings from BEAT joint names to a target rig's bone names (no bpy).

A mapping is a JSON file:

    {"name": "mixamo", "label": "Mixamo", "description": "...",
     "bones": {"RArm": "mixamorig:RightArm", "RArm1": "mixamorig:RightForeArm", ...}}

Keys are BEAT joints (semges_core.motion.skeleton.BEAT_JOINTS), values are bone names;
each bone is driven by at most one joint. The built-in presets live in
`presets/*.json` beside this file; users save their own with `save_mapping`.
Mixamo names are matched whatever their namespace ("mixamorig:", "mixamorig1:"
or none), see `resolve_bones`.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from semges_core.fileio import atomic_write

from .errors import MappingError

PRESET_DIR = Path(__file__).resolve().parent / "presets"
BUILTIN_PRESETS: tuple[str, ...] = ("beat", "mixamo", "rigify_metarig", "rigify_fk", "rigify_deform")
# A preset is auto-detected when at least this fraction of its bones is present.
DETECT_THRESHOLD = 0.6


def _beat_joints() -> tuple[str, ...]:
    # semges_core.motion.skeleton is numpy-only (no torch), so this is safe inside Blender.
    from semges_core.motion.skeleton import BEAT_JOINTS

    return BEAT_JOINTS


@dataclass(frozen=True)
class BoneMapping:
    name: str
    bones: dict[str, str]  # BEAT joint -> target bone
    label: str = ""
    description: str = ""
    source: str = field(default="", compare=False)  # file it came from, for messages
    # Pose-bone custom properties to set and key with the motion, {bone: {property: value}}:
    # a generated Rigify rig must have its arms in FK ("IK_FK": 1.0) for FK keys to show.
    properties: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = self.source or self.name
        if not self.bones:
            raise MappingError(f"mapping {where!r} maps no bones")
        joints = set(_beat_joints())
        unknown = [j for j in self.bones if j not in joints]
        if unknown:
            raise MappingError(f"mapping {where!r}: {', '.join(unknown)} are not BEAT joints "
                               f"(keys must be BEAT joint names such as RArm, RArm1, RHand)")
        bad = [j for j, b in self.bones.items() if not isinstance(b, str) or not b.strip()]
        if bad:
            raise MappingError(f"mapping {where!r}: empty target bone for {', '.join(bad)}")
        seen: dict[str, str] = {}
        for j, b in self.bones.items():
            if b in seen:
                raise MappingError(f"mapping {where!r}: bone {b!r} is the target of both {seen[b]} and {j}")
            seen[b] = j

        for bone, values in self.properties.items():
            if not isinstance(values, Mapping) or not all(
                    isinstance(p, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                    for p, v in values.items()):
                raise MappingError(f"mapping {where!r}: \"properties\" of {bone!r} must map property names "
                                   "to numbers")

    def to_json(self) -> dict:
        out = {"name": self.name, "label": self.label, "description": self.description, "bones": dict(self.bones)}
        if self.properties:
            out["properties"] = {b: dict(v) for b, v in self.properties.items()}
        return out


def mapping_from_dict(data: Mapping, source: str = "") -> BoneMapping:
    if not isinstance(data, Mapping) or not isinstance(data.get("bones"), Mapping):
        raise MappingError(f"{source or 'mapping'}: expected a JSON object with a \"bones\" object "
                           "mapping BEAT joints to bone names")
    name = str(data.get("name") or Path(source).stem or "custom")
    properties = data.get("properties", {})
    if not isinstance(properties, Mapping):
        raise MappingError(f"{source or name}: \"properties\" must be an object of {{bone: {{property: number}}}}")
    return BoneMapping(name, dict(data["bones"]), str(data.get("label", name)), str(data.get("description", "")),
                       source, {str(b): dict(v) if isinstance(v, Mapping) else v for b, v in properties.items()})


def mapping_from_rows(rows: Iterable[tuple[str, str]], name: str = "custom", label: str = "",
                      description: str = "", source: str = "",
                      properties: Mapping[str, Mapping[str, float]] | None = None) -> BoneMapping:
    """A mapping from (BEAT joint, target bone) rows, e.g. the panel's; an empty target means unmapped."""
    bones = {joint: bone.strip() for joint, bone in rows if bone.strip()}
    return BoneMapping(name, bones, label or name, description, source or name,
                       {b: dict(v) for b, v in (properties or {}).items()})


def mapping_rows(mapping: BoneMapping, bone_names: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """The (BEAT joint, target bone) rows of `mapping`, in BEAT joint order.

    With an armature's bone_names, targets become the names the armature actually has
    (a Mixamo name under another namespace, see `resolve_bones`); missing ones stay as they are.
    """
    resolved = resolve_bones(mapping, bone_names)[0] if bone_names is not None else {}
    return [(j, resolved.get(j, mapping.bones[j])) for j in _beat_joints() if j in mapping.bones]


def load_mapping(path: str | Path) -> BoneMapping:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(f"{path}: mapping file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise MappingError(f"{path}: cannot read the mapping ({e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise MappingError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    return mapping_from_dict(data, str(path))


def save_mapping(path: str | Path, mapping: BoneMapping) -> None:
    with atomic_write(path) as f:
        json.dump(mapping.to_json(), f, indent=1)
        f.write("\n")


@functools.lru_cache(maxsize=None)
def builtin_mapping(name: str) -> BoneMapping:
    """A built-in preset (read once; treat it as read-only)."""
    if name not in BUILTIN_PRESETS:
        raise MappingError(f"unknown preset {name!r}; built-in presets: {', '.join(BUILTIN_PRESETS)}")
    return load_mapping(PRESET_DIR / f"{name}.json")


def get_mapping(preset: str | BoneMapping | Path) -> BoneMapping:
    """A built-in preset by name, a JSON file by path, or a mapping as it is."""
    if isinstance(preset, BoneMapping):
        return preset
    if isinstance(preset, Path) or str(preset).lower().endswith(".json"):
        return load_mapping(preset)
    return builtin_mapping(str(preset))


# ---------------------------------------------------------------------- matching names


def _namespace_free(name: str) -> str:
    return name.split(":", 1)[1] if ":" in name else name


def resolve_bones(mapping: BoneMapping, bone_names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """(joint -> actual bone name, missing target names) for an armature's bones.

    A name is used as is when the armature has it; a namespaced one ("mixamorig:Spine")
    also matches the same name under any other namespace or none ("mixamorig1:Spine",
    "Spine"), when exactly one bone does.
    """
    names = list(bone_names)
    present = set(names)
    by_base: dict[str, list[str]] = {}
    for n in names:
        by_base.setdefault(_namespace_free(n), []).append(n)
    resolved: dict[str, str] = {}
    missing: list[str] = []
    for joint, bone in mapping.bones.items():
        if bone in present:
            resolved[joint] = bone
            continue
        candidates = by_base.get(_namespace_free(bone), []) if ":" in bone else []
        if len(candidates) == 1:
            resolved[joint] = candidates[0]
        else:
            missing.append(bone)
    return resolved, missing


def detect_preset(bone_names: Iterable[str], presets: Iterable[str] = BUILTIN_PRESETS) -> str | None:
    """The built-in preset whose bones the armature has most of (at least DETECT_THRESHOLD), else None."""
    names = list(bone_names)
    best, best_score = None, 0.0
    for p in presets:
        mapping = builtin_mapping(p)
        resolved, _ = resolve_bones(mapping, names)
        score = len(resolved) / len(mapping.bones)
        if score > best_score:
            best, best_score = p, score
    return best if best_score >= DETECT_THRESHOLD else None


def detect_mapping(bone_names: Iterable[str], armature: str = "armature") -> BoneMapping:
    names = list(bone_names)
    preset = detect_preset(names)
    if preset is None:
        raise MappingError(f"{armature!r}: its bone names match none of the presets "
                           f"({', '.join(BUILTIN_PRESETS)}); pick one or load a custom mapping")
    return builtin_mapping(preset)
