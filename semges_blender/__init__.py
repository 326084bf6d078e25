"""SemGes for Blender: speech and transcript in, co-speech gestures keyed onto your own rig.

Importing this package needs neither bpy nor torch, so the worker
(`python -m semges_blender.runner`) runs in Blender's own interpreter (numpy and the
ONNX Runtime wheel the extension ships) or in an external Python; the modules that use
bpy are imported by `register()`. Inside Blender, generation runs in that worker
process and the Blender side only reads its motion file, retargets and keys.

Modules: `source` (the worker's motion file as a `semges_core` Motion with Blender's
axes), `presets` (bone mappings), `retarget` (world-space retargeting maths),
`keyframes` (actions, both animation APIs), `constrained` (keys solved through a rig's
constraints), `layers` (the SemGes NLA track, bake), `takes` (list, switch, rename,
delete), `redo` (regenerating a stretch), `pipeline` (the plain functions operators and batch call),
`worker`/`runner` (the generation process), `properties`, `preferences`, `operators`,
`panel`, `batch`, `build_extension` (the per-platform zips).
"""

from __future__ import annotations

_MODULES = ("properties", "preferences", "operators", "panel")


def _modules():
    import importlib

    return [importlib.import_module(f".{name}", __name__) for name in _MODULES]


def register(addon_id: str | None = None) -> None:
    """Register the add-on; failures propagate (a half-registered add-on must be loud).

    addon_id: the module name Blender knows the add-on by (its preferences' bl_idname),
    e.g. "bl_ext.user_default.semges" when installed as an extension; defaults to this package.
    """
    for module in _modules():
        if module.__name__.endswith(".preferences"):
            module.register(addon_id)
        else:
            module.register()


def unregister() -> None:
    for module in reversed(_modules()):
        module.unregister()
