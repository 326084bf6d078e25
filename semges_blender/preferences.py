"""Add-on preferences: which Python runs the generator (Blender's own by default)."""

from __future__ import annotations

import sys

import bpy
from bpy.props import StringProperty

# The add-on's module name: "semges_blender" from a checkout, "bl_ext.<repo>.semges" as an
# extension; register() sets it before the class is registered.
ADDON_ID = __package__


class SemgesPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    python_path: StringProperty(
        name="External Python", subtype='FILE_PATH',
        description="Optional: a Python 3.11 with SemGes installed, to run the generator with PyTorch "
                    "(CUDA GPUs, HuBERT models). Empty: Blender's own Python with the bundled ONNX Runtime")

    def draw(self, context) -> None:
        from .worker import blender_python_has_runtime

        col = self.layout.column()
        col.prop(self, "python_path")
        if self.python_path:
            col.label(text="The generator runs in this Python (PyTorch or ONNX Runtime, whichever it has).",
                      icon='INFO')
        elif blender_python_has_runtime():
            col.label(text=f"The generator runs in Blender's own Python ({sys.executable}).", icon='CHECKMARK')
        else:
            col.label(text="The bundled ONNX Runtime is missing: install the SemGes zip for this platform "
                           "(see docs/blender.md).", icon='ERROR')
        col.operator("semges.check_runtime", icon='PLAY')


def _addon_names(addons) -> list[str]:
    """Where the add-on's preferences may live, best first: the name it registered under, then any
    enabled SemGes (an extension from any repository, or the package as a legacy add-on), so a script
    that imports this package beside the installed extension (batch) still finds the user's settings."""
    names = [SemgesPreferences.bl_idname, ADDON_ID]
    names += [k for k in addons.keys() if k == "semges" or k.endswith(".semges")]
    return list(dict.fromkeys(names))


def preferences(context=None) -> SemgesPreferences | None:
    """This add-on's preferences, or None when it was registered without being enabled (tests)."""
    context = context or bpy.context
    addons = context.preferences.addons
    for name in _addon_names(addons):
        addon = addons.get(name)
        prefs = getattr(addon, "preferences", None) if addon else None
        if prefs is not None and hasattr(prefs, "python_path"):
            return prefs
    return None


def python_path(context=None) -> str:
    prefs = preferences(context)
    return bpy.path.abspath(prefs.python_path) if prefs and prefs.python_path else ""


def register(addon_id: str | None = None) -> None:
    SemgesPreferences.bl_idname = addon_id or ADDON_ID
    bpy.utils.register_class(SemgesPreferences)


def unregister() -> None:
    bpy.utils.unregister_class(SemgesPreferences)
