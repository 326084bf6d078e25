"""Reading and writing BVH motion files (BEAT's mocap format).

The hierarchy is parsed token by token so every mistake can name its line; the
MOTION block (BEAT: ~70 000 frames x 228 channels) is parsed by numpy in one
pass, and lines are looked at one by one only to explain an error.

Each joint's rotation order comes from its own CHANNELS line and is kept in
`Skeleton.rotation_orders`, so a file is written back with the orders it was
read with. Root position channels are the root's world position (as Blender's
importer reads them); other joints may only carry position channels that
repeat their OFFSET, since `Motion` has no per-joint translation.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

import numpy as np

from semges_core.errors import BVHFormatError
from semges_core.fileio import atomic_write
from semges_core.motion.clip import Motion
from semges_core.motion.skeleton import Skeleton

# Position channels that differ from the joint's OFFSET by more than this (cm)
# would need per-joint translation, which Motion cannot hold.
_OFFSET_TOLERANCE = 1e-3

_CHANNELS = {f"{axis}{kind}": (kind, axis) for kind in ("position", "rotation") for axis in "xyz"}
_CHANNEL_LIST = "Xposition, Yposition, Zposition, Xrotation, Yrotation, Zrotation"

_FRAMES_RE = re.compile(r"^\s*Frames\s*:\s*(\S+)\s*$", re.IGNORECASE)
_FRAME_TIME_RE = re.compile(r"^\s*Frame\s+Time\s*:\s*(\S+)\s*$", re.IGNORECASE)


@dataclass
class _Column:
    """What one MOTION column holds: joint index, 'position' or 'rotation', axis letter."""

    joint: int
    kind: str
    axis: str


@dataclass
class _Header:
    skeleton: Skeleton
    columns: list[_Column]
    n_frames: int
    fps: float
    frames_line: int  # line of "Frames: N"
    first_data_line: int  # line number of the first frame line
    data_offset: int  # byte offset of the first frame line


# --------------------------------------------------------------------------- public API


def read_bvh(path: str | Path) -> Motion:
    """Read a BVH file into a Motion (rotations from each joint's own channel order)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise BVHFormatError(path, f"cannot read the file: {e.strerror or e}") from None
    _check_utf8(path, raw)
    header = _parse_header(path, io.BytesIO(raw))
    data = _parse_frames(path, raw[header.data_offset :], header)  # (T, C)
    return _build_motion(path, header, data)


def read_bvh_header(path: str | Path) -> tuple[Skeleton, int, float]:
    """The skeleton, frame count and frame rate, without reading the frames (for indexing)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            header = _parse_header(path, f)
    except OSError as e:
        raise BVHFormatError(path, f"cannot read the file: {e.strerror or e}") from None
    return header.skeleton, header.n_frames, header.fps


def write_bvh(path: str | Path, motion: Motion, precision: int = 4, euler: np.ndarray | None = None) -> None:
    """Write `motion` as BVH, each joint in its skeleton rotation order; atomic.

    `euler`: the motion's `euler_degrees()`, when the caller has them already.
    """
    skeleton = motion.skeleton
    for name in skeleton.names:
        if not name or any(c.isspace() or c in "{}" for c in name):
            raise ValueError(f"joint name {name!r} cannot be written to BVH (empty, braces or whitespace)")
    if precision < 0:
        raise ValueError(f"precision must be >= 0, got {precision}")
    euler = motion.euler_degrees() if euler is None else euler  # (T, J, 3) in each joint's order
    # An explicit width: reshape(0, -1) cannot infer one for a motion without frames.
    values = np.concatenate([motion.root_positions, euler.reshape(motion.n_frames, 3 * len(skeleton))], axis=1)  # (T, 3 + 3J)
    if not np.all(np.isfinite(values)):
        raise ValueError("motion holds non-finite root positions or rotations; refusing to write BVH")
    hierarchy = _hierarchy_text(skeleton, precision)
    with atomic_write(path) as f:
        f.write(hierarchy)
        f.write(f"MOTION\nFrames: {motion.n_frames}\nFrame Time: {1.0 / motion.fps:.8f}\n")
        _write_frames(f, values, precision)


# --------------------------------------------------------------------------- writing


def _write_frames(f: TextIO, values: np.ndarray, precision: int) -> None:
    """One line per frame; rows are formatted in chunks so memory stays flat on long takes."""
    row_format = " ".join([f"%.{precision}f"] * values.shape[1]) + "\n"
    for start in range(0, len(values), 1024):
        f.write("".join(row_format % tuple(row) for row in values[start : start + 1024]))


def _fmt(v: np.ndarray | tuple[float, ...], precision: int) -> str:
    return " ".join(f"{float(x):.{precision}f}" for x in v)


def _end_site(skeleton: Skeleton, j: int) -> np.ndarray:
    """The leaf's End Site: the skeleton's own, else a short continuation of the bone."""
    if skeleton.end_sites[j] is not None:
        return np.asarray(skeleton.end_sites[j], dtype=np.float64)
    bone = skeleton.offsets[j]
    length = float(np.linalg.norm(bone))
    return bone * 0.3 if length > 1e-6 else np.array([0.0, 1.0, 0.0])


def _hierarchy_text(skeleton: Skeleton, precision: int) -> str:
    # Blender's importer expects "{" and every OFFSET/CHANNELS on lines of their own.
    lines = ["HIERARCHY"]
    children = [skeleton.children(j) for j in range(len(skeleton))]

    # A stack rather than recursion, so that a skeleton of any depth read from a file writes back.
    stack = [(0, 0, False)]  # (joint, depth, closing)
    while stack:
        j, depth, closing = stack.pop()
        pad = "\t" * depth
        if closing:
            if not children[j]:
                lines.extend(
                    [f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET {_fmt(_end_site(skeleton, j), precision)}",
                     f"{pad}\t}}"]
                )
            lines.append(f"{pad}}}")
            continue
        kind = "ROOT" if j == 0 else "JOINT"
        rotations = " ".join(f"{axis}rotation" for axis in skeleton.rotation_orders[j])
        channels = f"CHANNELS 6 Xposition Yposition Zposition {rotations}" if j == 0 else f"CHANNELS 3 {rotations}"
        lines.extend(
            [f"{pad}{kind} {skeleton.names[j]}", f"{pad}{{", f"{pad}\tOFFSET {_fmt(skeleton.offsets[j], precision)}",
             f"{pad}\t{channels}"]
        )
        stack.append((j, depth, True))
        stack.extend((c, depth + 1, False) for c in reversed(children[j]))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- header


def _check_utf8(path: Path, raw: bytes) -> None:
    if not raw.strip():
        raise BVHFormatError(path, "the file is empty; expected a BVH file starting with HIERARCHY", line=1)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise BVHFormatError(path, f"the file is not UTF-8 text (byte 0x{raw[e.start]:02x})", line=line) from None


class _Lines:
    """Numbered, decoded lines of a binary stream, remembering how many bytes were consumed."""

    def __init__(self, path: Path, stream: BinaryIO) -> None:
        self.path = path
        self.stream = stream
        self.number = 0  # 1-based number of the last line returned
        self.offset = 0  # bytes consumed so far

    def next(self) -> str | None:
        raw = self.stream.readline()
        if not raw:
            return None
        self.number += 1
        self.offset += len(raw)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BVHFormatError(self.path, "the file is not UTF-8 text", line=self.number) from None


class _Tokens:
    """Whitespace-separated tokens of the hierarchy, stopping at the MOTION line."""

    def __init__(self, lines: _Lines) -> None:
        self.lines = lines
        self.buffer: list[str] = []
        self.line = 0  # line of the last token returned (or of the place the stream ended)
        self.motion_line: int | None = None
        self.ended = False
        self._buffer_line = 0

    def _fill(self) -> bool:
        while not self.buffer:
            if self.ended:
                return False
            text = self.lines.next()
            if text is None:
                self.ended = True
                self.line = max(self.lines.number, 1)
                return False
            words = text.split()
            if words and words[0].upper() == "MOTION":
                self.ended = True
                self.motion_line = self.lines.number
                self.line = self.lines.number
                if len(words) > 1:
                    raise BVHFormatError(self.lines.path, "expected 'MOTION' alone on its line", line=self.line)
                return False
            self.buffer = words[::-1]
            self._buffer_line = self.lines.number
        return True

    def peek(self) -> str | None:
        return self.buffer[-1] if self._fill() else None

    def take(self, expected: str) -> str:
        """The next token; `expected` describes it for the error if there is none."""
        if not self._fill():
            where = "the MOTION line" if self.motion_line is not None else "the end of the file"
            raise BVHFormatError(self.lines.path, f"expected {expected}, reached {where}", line=self.line)
        self.line = self._buffer_line
        return self.buffer.pop()

    def error(self, message: str) -> BVHFormatError:
        return BVHFormatError(self.lines.path, message, line=self.line)


class _HierarchyParser:
    def __init__(self, tokens: _Tokens) -> None:
        self.t = tokens
        self.names: list[str] = []
        self.parents: list[int] = []
        self.offsets: list[tuple[float, float, float]] = []
        self.orders: list[str] = []
        self.end_sites: list[tuple[float, float, float] | None] = []
        self.columns: list[_Column] = []
        self.joint_lines: list[int] = []

    def parse(self) -> None:
        first = self.t.take("'HIERARCHY'")
        if first.upper() != "HIERARCHY":
            raise self.t.error(f"expected 'HIERARCHY' at the start of a BVH file, found {first!r}")
        root = self.t.take("'ROOT'")
        if root.upper() != "ROOT":
            raise self.t.error(f"expected 'ROOT' after HIERARCHY, found {root!r}")
        self._joints()
        extra = self.t.peek()
        if extra is not None:
            self.t.take("")
            if extra.upper() == "ROOT":
                raise self.t.error("a second ROOT: only files with one skeleton are supported")
            if extra == "}":
                raise self.t.error("unbalanced '}': the ROOT joint is already closed")
            raise self.t.error(f"expected 'MOTION' after the hierarchy, found {extra!r}")
        if self.t.motion_line is None:
            raise self.t.error("missing MOTION section: the file ends after the hierarchy")

    def _number(self, what: str) -> float:
        tok = self.t.take(what)
        try:
            value = float(tok)
        except ValueError:
            raise self.t.error(f"expected {what}, found {tok!r}") from None
        if not np.isfinite(value):
            raise self.t.error(f"expected {what}, found {tok!r}")
        return value

    def _offset(self, owner: str) -> tuple[float, float, float]:
        tok = self.t.take(f"'OFFSET' in {owner}")
        if tok.upper() != "OFFSET":
            raise self.t.error(f"expected 'OFFSET x y z' in {owner}, found {tok!r}")
        x, y, z = (self._number(f"a number for {owner}'s OFFSET") for _ in range(3))
        return (x, y, z)

    def _expect(self, token: str, context: str) -> None:
        tok = self.t.take(f"{token!r} {context}")
        if tok != token:
            raise self.t.error(f"expected {token!r} {context}, found {tok!r}")

    def _open_joint(self, parent: int) -> tuple[int, str, int]:
        """A joint's name, '{', OFFSET and CHANNELS; (index, name, line of its '{')."""
        name = self.t.take("a joint name")
        if name in ("{", "}"):
            raise self.t.error(f"expected a joint name, found {name!r}")
        if name in self.names:
            raise self.t.error(f"joint name {name!r} appears twice")
        j = len(self.names)
        self.names.append(name)
        self.parents.append(parent)
        self.joint_lines.append(self.t.line)
        self._expect("{", f"after joint {name!r}")
        open_line = self.t.line
        self.offsets.append(self._offset(f"joint {name!r}"))
        self.orders.append(self._channels(j, name))
        self.end_sites.append(None)
        return j, name, open_line

    def _joints(self) -> None:
        """The ROOT and everything inside it; a stack of open joints, so any nesting depth reads."""
        open_joints = [self._open_joint(parent=-1)]
        while open_joints:
            j, name, open_line = open_joints[-1]
            if self.t.peek() is None:
                raise BVHFormatError(
                    self.t.lines.path,
                    f"expected '}}' closing joint {name!r} (opened at line {open_line}) before "
                    + ("MOTION" if self.t.motion_line is not None else "the end of the file"),
                    line=self.t.line,
                )
            tok = self.t.take("")
            key = tok.upper()
            if key == "JOINT":
                open_joints.append(self._open_joint(parent=j))
            elif key == "END":
                site = self.t.take("'Site' after 'End'")
                if site.upper() != "SITE":
                    raise self.t.error(f"expected 'End Site', found 'End {site}'")
                if self.end_sites[j] is not None:
                    raise self.t.error(f"joint {name!r} has a second End Site")
                self._expect("{", "after 'End Site'")
                self.end_sites[j] = self._offset(f"the End Site of {name!r}")
                self._expect("}", f"closing the End Site of {name!r}")
            elif tok == "}":
                open_joints.pop()
            else:
                raise self.t.error(f"expected 'JOINT', 'End Site' or '}}' inside joint {name!r}, found {tok!r}")

    def _channels(self, j: int, name: str) -> str:
        tok = self.t.take(f"'CHANNELS' in joint {name!r}")
        if tok.upper() != "CHANNELS":
            raise self.t.error(f"expected 'CHANNELS n ...' after the OFFSET of joint {name!r}, found {tok!r}")
        count_tok = self.t.take("the number of channels")
        count = _whole_number(count_tok)
        if count is None:
            raise self.t.error(f"expected the number of channels after CHANNELS, found {count_tok[:20]!r}")
        if count > len(_CHANNELS):
            raise self.t.error(f"joint {name!r} has {count_tok[:20]} channels; a joint has at most {len(_CHANNELS)}")
        seen: list[tuple[str, str]] = []
        for _ in range(count):
            ch = self.t.take(f"{count} channel names after 'CHANNELS {count}'")
            kind_axis = _CHANNELS.get(ch.lower())
            if kind_axis is None:
                raise self.t.error(
                    f"unknown channel {ch!r} in joint {name!r} (expected {count} of {_CHANNEL_LIST})"
                )
            if kind_axis in seen:
                raise self.t.error(f"channel {ch!r} is listed twice for joint {name!r}")
            seen.append(kind_axis)
            self.columns.append(_Column(j, *kind_axis))
        rot_axes = "".join(axis.upper() for kind, axis in seen if kind == "rotation")
        pos_axes = [axis for kind, axis in seen if kind == "position"]
        if len(rot_axes) not in (0, 3) or len(pos_axes) not in (0, 3):
            raise self.t.error(
                f"joint {name!r} must have all three rotation channels (or none) and all three "
                f"position channels (or none); found {count_tok} channels"
            )
        # A joint without rotation channels never rotates; any order describes that.
        return rot_axes or "ZXY"


def _parse_header(path: Path, stream: BinaryIO) -> _Header:
    lines = _Lines(path, stream)
    tokens = _Tokens(lines)
    parser = _HierarchyParser(tokens)
    parser.parse()

    frames_text = _next_nonblank(lines)
    if frames_text is None:
        raise BVHFormatError(path, "expected 'Frames: N' after MOTION, reached the end of the file", line=lines.number)
    m = _FRAMES_RE.match(frames_text)
    n_frames = _whole_number(m.group(1)) if m else None
    if n_frames is None:
        found = frames_text.strip()
        found = found if len(found) <= 40 else found[:40] + "..."
        raise BVHFormatError(path, f"expected 'Frames: N' after MOTION, found {found!r}", line=lines.number)
    frames_line = lines.number

    time_text = _next_nonblank(lines)
    if time_text is None:
        raise BVHFormatError(path, "expected 'Frame Time: seconds' after Frames, reached the end of the file",
                             line=lines.number)
    m = _FRAME_TIME_RE.match(time_text)
    frame_time = _float_or_none(m.group(1)) if m else None
    if frame_time is None:
        raise BVHFormatError(path, f"expected 'Frame Time: seconds' after Frames, found {time_text.strip()!r}",
                             line=lines.number)
    if not (np.isfinite(frame_time) and frame_time > 0):
        raise BVHFormatError(path, f"Frame Time must be a positive number of seconds, got {m.group(1)}",
                             line=lines.number)
    if not np.isfinite(1.0 / frame_time):  # 1e-320 s: a frame rate beyond any float
        raise BVHFormatError(path, f"Frame Time {m.group(1)} s is too small to give a frame rate", line=lines.number)

    skeleton = _skeleton(path, parser)
    return _Header(
        skeleton=skeleton,
        columns=parser.columns,
        n_frames=n_frames,
        fps=_fps(frame_time),
        frames_line=frames_line,
        first_data_line=lines.number + 1,
        data_offset=lines.offset,
    )


def _next_nonblank(lines: _Lines) -> str | None:
    while (text := lines.next()) is not None:
        if text.strip():
            return text
    return None


def _whole_number(text: str) -> int | None:
    """A count written in ASCII digits; None otherwise, or past 18 digits (int() refuses over 4300)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _fps(frame_time: float) -> float:
    """1 / frame_time, snapped to a whole number when the file only rounded it (0.008333 -> 120)."""
    fps = 1.0 / frame_time
    whole = round(fps)
    if whole > 0 and abs(fps - whole) <= 1e-4 * fps:
        return float(whole)
    return fps


def _skeleton(path: Path, p: _HierarchyParser) -> Skeleton:
    try:
        return Skeleton(
            names=tuple(p.names),
            parents=tuple(p.parents),
            offsets=np.array(p.offsets, dtype=np.float64),
            rotation_orders=tuple(p.orders),
            end_sites=tuple(p.end_sites),
        )
    except ValueError as e:
        raise BVHFormatError(path, f"invalid hierarchy: {e}", line=p.joint_lines[0]) from None


# --------------------------------------------------------------------------- frames


def _parse_frames(path: Path, block: bytes, header: _Header) -> np.ndarray:
    """The MOTION rows (T, C), checking every line's value count without a per-value Python loop."""
    n_cols = len(header.columns)
    buf = np.frombuffer(block, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    # Line k spans [starts[k], ends[k]); a final line without "\n" still counts.
    ends = np.append(newlines, len(buf)) if (len(buf) and buf[-1] != 10) else newlines
    starts = np.concatenate([[0], ends[:-1] + 1]) if len(ends) else np.zeros(0, dtype=np.int64)

    # Bytes up to 32 (space, tab, CR, LF, other controls) separate values. Only byte-sized
    # temporaries here: a BEAT take is ~130 MB of text.
    space = buf <= 32
    token_start = ~space
    token_start[1:] &= space[:-1]
    # Line k's segment [starts[k], starts[k + 1]) always holds at least its own newline.
    per_line = np.add.reduceat(token_start, starts, dtype=np.int64) if len(starts) else np.zeros(0, np.int64)
    del space, token_start

    # Trailing blank lines are allowed; the frame lines are everything before them.
    nonblank = np.flatnonzero(per_line)
    n_lines = int(nonblank[-1]) + 1 if len(nonblank) else 0
    first = header.first_data_line
    # Value counts first: a stray blank or short line is a clearer message than a count mismatch.
    bad = np.flatnonzero(per_line[: min(n_lines, header.n_frames)] != n_cols)
    if len(bad):
        k = int(bad[0])
        raise BVHFormatError(
            path,
            f"frame line has {int(per_line[k])} values, expected {n_cols} (one per channel in the hierarchy)",
            line=first + k,
        )
    if n_lines < header.n_frames:
        raise BVHFormatError(
            path,
            f"'Frames: {header.n_frames}' but only {n_lines} frame line(s) follow",
            line=header.frames_line,
        )
    if n_lines > header.n_frames:
        raise BVHFormatError(
            path,
            f"more frame lines than 'Frames: {header.n_frames}' declares (first extra line here)",
            line=first + header.n_frames,
        )
    if n_lines == 0:
        return np.zeros((0, n_cols))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        values = np.fromstring(block[: ends[n_lines - 1]], dtype=np.float64, sep=" ")
    if values.size != n_lines * n_cols or not np.all(np.isfinite(values)):
        _raise_bad_value(path, block, first)
    return values.reshape(n_lines, n_cols)


def _raise_bad_value(path: Path, block: bytes, first_line: int) -> None:
    """Slow path, only for a broken file: find the first value that is not a finite number."""
    for k, line in enumerate(block.split(b"\n")):
        for tok in line.split():
            try:
                ok = np.isfinite(float(tok))
            except ValueError:
                ok = False
            if not ok:
                text = tok.decode("utf-8", errors="replace")
                raise BVHFormatError(path, f"expected a number in the frame data, found {text!r}", line=first_line + k)
    raise BVHFormatError(path, "the frame data could not be parsed as numbers", line=first_line)


def _build_motion(path: Path, header: _Header, data: np.ndarray) -> Motion:
    skeleton = header.skeleton
    n_frames, n_joints = len(data), len(skeleton)
    euler = np.zeros((n_frames, n_joints, 3))
    root = np.tile(skeleton.offsets[0], (n_frames, 1))
    positions: dict[int, np.ndarray] = {}
    for c, col in enumerate(header.columns):
        if col.kind == "rotation":
            k = skeleton.rotation_orders[col.joint].index(col.axis.upper())
            euler[:, col.joint, k] = data[:, c]
        else:
            axis = "xyz".index(col.axis)
            if col.joint == 0:
                root[:, axis] = data[:, c]
            else:
                positions.setdefault(col.joint, np.zeros((n_frames, 3)))[:, axis] = data[:, c]
    for j, pos in positions.items():
        off = np.abs(pos - skeleton.offsets[j]).max(axis=1)  # (T,)
        bad = np.flatnonzero(off > _OFFSET_TOLERANCE)
        if len(bad):
            t = int(bad[0])
            raise BVHFormatError(
                path,
                f"joint {skeleton.names[j]!r} has position channels that move it away from its OFFSET "
                f"(by {off[t]:.4g} cm in frame {t}); per-joint translation is not supported, only the root may move",
                line=header.first_data_line + t,
            )
    return Motion.from_euler(skeleton, header.fps, root, euler)

