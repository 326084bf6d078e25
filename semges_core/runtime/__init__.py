"""Running a model bundle: ONNX Runtime + numpy (no torch), or torch.

`load_model` picks one; both give a `GestureModel` that `semges_core.inference`
drives the same way, so windows, stitching and the motion maths exist once.
"""

from semges_core.runtime.model import GestureModel, load_model, RUNTIMES  # noqa: F401
