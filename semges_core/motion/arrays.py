"""numpy or torch, one spelling: how the motion maths is written once for both.

The maths in `rotations`, `kinematics` and `normalization` runs on numpy alone in
Blender's own Python and on torch tensors (any dtype and device, with gradients) in
training. `namespace(x)` gives the operations for x's kind: the module itself where
numpy and torch spell an operation alike, a method where they differ. torch is never
imported here, only recognised in sys.modules when a tensor comes in.

`array_function` converts a function's array arguments to one kind. For numpy it also
works through a long leading batch axis in blocks, spread over a few threads: a chain
of some fifty element-wise operations then runs on temporaries that stay in the CPU
cache instead of page-faulting a fresh full-size array at every step, and numpy
releases the GIL inside each operation, so the cores torch would have used are used.
Every such function is independent per batch element, so blocks change no result.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

# Values (of the largest argument) per block, and threads for the blocks (the caller's included).
BLOCK = 1 << 16
WORKERS = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def is_tensor(a: Any) -> bool:
    """True for a torch tensor; looks torch up in sys.modules, so checking never imports it."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(a, torch.Tensor)


class Namespace:
    """numpy or torch: the module itself for the operations both spell alike, methods for the rest.

    The methods also hold what differs in substance: torch needs guards so that a
    discarded branch (sqrt or atan2 at 0) leaves no NaN gradient; numpy needs none
    and is faster spelt out per component over a short last axis.
    """

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self.is_torch = xp is not np
        # Same name, same positional signature in both: stack(xs, axis), where(c, a, b), argmax(x, axis), ...
        for name in ("stack", "concatenate", "where", "sqrt", "sin", "cos", "arccos", "arctan2", "deg2rad",
                     "rad2deg", "sinc", "abs", "ones_like", "zeros_like", "argmax", "broadcast_to",
                     "broadcast_shapes", "cumsum", "finfo", "float64"):
            setattr(self, name, getattr(xp, name))

    def dot(self, a, b):
        """Sum of a * b over the last axis, kept as size 1."""
        if self.is_torch:
            return (a * b).sum(-1, keepdim=True)
        return _component_sum(a * b)

    def norm(self, x):
        """Euclidean norm over the last axis, kept as size 1 (torch's has gradient 0 at 0, not NaN)."""
        if self.is_torch:
            return self.xp.linalg.vector_norm(x, dim=-1, keepdim=True)
        return np.sqrt(_component_sum(x * x))

    def scale(self, x, s):
        """x (..., n) times s (..., 1), broadcast.

        numpy loops over the last axis innermost, so a plain x * s runs n-long inner
        loops; one multiply per component into the result's columns is several times faster.
        """
        if self.is_torch:
            return x * s
        out = np.empty(np.broadcast_shapes(x.shape, s.shape), dtype=np.result_type(x, s))
        for i in range(x.shape[-1]):
            np.multiply(x[..., i], s[..., 0], out=out[..., i])
        return out

    def negate_where(self, x, negative):
        """x with its sign flipped where `negative` (..., 1)."""
        if self.is_torch:
            return self.xp.where(negative, -x, x)
        return self.scale(x, 1.0 - 2.0 * negative)

    def clamp(self, x, lo=None, hi=None):
        if self.is_torch:
            return self.xp.clamp(x, lo, hi)
        x = x if lo is None else np.maximum(x, lo)  # np.clip costs several times more
        return x if hi is None else np.minimum(x, hi)

    def safe_sqrt(self, x):
        """sqrt(max(x, 0)) whose gradient at 0 is 0 rather than inf (which becomes NaN downstream)."""
        if not self.is_torch:
            return np.sqrt(np.maximum(x, 0.0))
        xp = self.xp
        positive = x > 0
        return xp.where(positive, xp.sqrt(xp.where(positive, x, xp.ones_like(x))), xp.zeros_like(x))

    def safe_atan2(self, y, x, unused):
        """atan2, evaluated at (0, 1) where `unused` so a discarded atan2(0, 0) leaves no NaN gradient."""
        if not self.is_torch:
            return np.arctan2(y, x)
        xp = self.xp
        return xp.arctan2(xp.where(unused, xp.zeros_like(y), y), xp.where(unused, xp.ones_like(x), x))

    def take_along(self, x, idx, axis: int):
        return self.xp.take_along_dim(x, idx, axis) if self.is_torch else np.take_along_axis(x, idx, axis)

    def cross(self, a, b):
        """Cross product over the last axis."""
        if self.is_torch:
            return self.xp.linalg.cross(a, b, dim=-1)
        a0, a1, a2, b0, b1, b2 = a[..., 0], a[..., 1], a[..., 2], b[..., 0], b[..., 1], b[..., 2]
        return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], -1)  # np.cross is slower

    def asarray(self, a, like):
        """`a` as an array of `like`'s kind, floating dtype (the default float for integer `like`) and device."""
        if self.is_torch:
            dtype = like.dtype if like.is_floating_point() else self.xp.get_default_dtype()
            if not is_tensor(a):
                a = np.ascontiguousarray(a)  # torch rejects numpy's negative strides
            return self.xp.as_tensor(a, dtype=dtype, device=like.device)
        dtype = like.dtype if np.issubdtype(like.dtype, np.floating) else np.float64
        return np.asarray(a, dtype=dtype)


def _component_sum(x: np.ndarray) -> np.ndarray:
    """x.sum(-1, keepdims=True) for a short last axis, a few times faster than numpy's reduction."""
    total = x[..., 0:1]
    for i in range(1, x.shape[-1]):
        total = total + x[..., i : i + 1]
    return total


NUMPY = Namespace(np)


@functools.cache
def _torch_namespace(torch: Any) -> Namespace:
    return Namespace(torch)


def namespace(*arrays: Any) -> Namespace:
    """torch's operations if any of `arrays` is a tensor, else numpy's."""
    for a in arrays:
        if is_tensor(a):
            return _torch_namespace(sys.modules["torch"])
    return NUMPY


# --------------------------------------------------------------------------- conversion and blocks


def array_function(*core: int, blocks: bool = True) -> Callable:
    """Let an implementation take numpy or torch; its first len(core) arguments are arrays.

    `core[i]` is how many trailing axes are argument i's own (1 for (..., 3) vectors,
    2 for (..., 3, 3) matrices); the axes before them are batch axes. If any array is
    a tensor, the others become tensors of its dtype and device and tensors come back.
    Otherwise everything becomes float64 numpy and, with `blocks`, a long leading batch
    axis is processed in blocks (see the module docstring).
    """

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            arrays, rest = args[: len(core)], args[len(core):]
            ref = next((a for a in arrays if is_tensor(a)), None)
            if ref is not None:
                ns = namespace(ref)
                return fn(*[ns.asarray(a, ref) for a in arrays], *rest, **kwargs)
            arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
            plan = _block_plan(arrays, core) if blocks and not getattr(_state, "in_block", False) else None
            if plan is None:
                return fn(*arrays, *rest, **kwargs)
            return _run_blocks(functools.partial(fn, **kwargs), arrays, rest, plan)

        return wrapper

    return decorate


_state = threading.local()  # in_block: this thread runs a block, so nested calls do not split again
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _block_plan(arrays: list[np.ndarray], core: tuple[int, ...]) -> tuple[int, list[bool], int] | None:
    """(rows per block, which arrays to slice, rows in all) for the leading batch axis; None: all at once.

    Only arrays with the most batch axes have the leading one (the rest broadcast
    from the right); of those, one of length 1 broadcasts and is passed whole.
    """
    batch = [a.ndim - c for a, c in zip(arrays, core)]
    most = max(batch)
    if most < 1:
        return None
    sliced = [b == most and a.shape[0] != 1 for a, b in zip(arrays, batch)]
    lengths = {a.shape[0] for a, cut in zip(arrays, sliced) if cut}
    if len(lengths) != 1:
        return None  # nothing to slice, or shapes that cannot broadcast (the function says so)
    n = lengths.pop()
    if n < 2:
        return None
    per_row = max(a.size // n for a, cut in zip(arrays, sliced) if cut)
    rows = max(1, BLOCK // max(per_row, 1))
    return (rows, sliced, n) if n > 2 * rows else None


def _run_blocks(fn: Callable, arrays: list[np.ndarray], rest: tuple, plan: tuple[int, list[bool], int]):
    rows, sliced, n = plan

    def run(start: int):
        _state.in_block = True
        try:
            return fn(*[a[start : start + rows] if cut else a for a, cut in zip(arrays, sliced)], *rest)
        finally:
            _state.in_block = False

    try:
        parts = _parallel_map(run, range(0, n, rows))
    except ValueError:
        return fn(*arrays, *rest)  # raise again, naming the caller's shapes rather than a block's
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate(p, 0) for p in zip(*parts))
    return np.concatenate(parts, 0)


def _parallel_map(run: Callable, items: range) -> list:
    """[run(i) for i in items] on up to WORKERS threads, this one among them; the first error is raised."""
    helpers = min(WORKERS, len(items)) - 1
    if helpers <= 0:
        return [run(i) for i in items]
    results: list = [None] * len(items)
    todo = iter(range(len(items)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                k = next(todo, None)
            if k is None:
                return
            results[k] = run(items[k])

    futures = [_executor().submit(work) for _ in range(helpers)]
    try:
        work()
    finally:
        for f in futures:
            f.exception()  # wait, so no helper still runs on our arrays
    for f in futures:
        if f.exception() is not None:
            raise f.exception()
    return results


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(1, WORKERS - 1), thread_name_prefix="semges-motion")
        return _pool


def _forget_pool() -> None:
    """In a forked child: the parent's pool threads do not exist there, and waiting on them would hang."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)
