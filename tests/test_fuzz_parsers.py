"""Fuzzing every file reader: any bytes on disk give a result that holds together, or our own error naming the file.

Three sources of input for each reader: files built from the format's grammar with odd
values (nan, huge, negative, wrong counts), real valid files mutated (truncated, lines
dropped or repeated, bytes flipped, junk inserted, re-encoded), and raw bytes. A reader
passes when it returns something that satisfies the format's invariants or raises its
`InputFileError` subclass with this path (and a line inside the file when it gives one);
any other exception, or a slow example (the deadline), is a bug. Inputs stay small, so
the whole file runs in well under a minute; `derandomize` makes every run test the
same examples. Inputs that once broke a reader are kept as `@example`s.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import tempfile
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from semges_core.speech.alignment import AlignmentWarning
from semges_core.formats.annotations import SEMANTIC_TYPES, EMOTIONS, read_emotion, read_semantic
from semges_core.formats.bvh import read_bvh, read_bvh_header, write_bvh
from semges_core.errors import AnnotationError, BVHFormatError, InputFileError, TranscriptError
from semges_core.motion.clip import Motion
from semges_core.motion.skeleton import Skeleton
from semges_core.formats.textgrid import Interval, IntervalTier, PointTier, TextGrid, read_textgrid, words_from_textgrid, write_textgrid
from semges_core.speech.transcripts import load_transcript, read_json_words, read_plain_text, read_srt, read_vtt

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def fuzz(max_examples: int) -> settings:
    """A bounded, reproducible budget; the deadline catches hangs (inputs are a few KB at most)."""
    return settings(max_examples=max_examples, deadline=timedelta(seconds=2), derandomize=True, database=None)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Module-scoped: hypothesis runs many examples per test, each overwriting its file here.
    return tmp_path_factory.mktemp("fuzz")


def last_line(data: bytes) -> int:
    """The highest line number an error about `data` may give (CR, LF and CRLF all end lines)."""
    return data.count(b"\n") + data.count(b"\r") + 1


def outcome(path: Path, data: bytes, read: Callable, error: type[InputFileError]):
    """`read(path)` on `data`: its result, or None after checking that the error is ours and names the file."""
    path.write_bytes(data)
    try:
        return read(path)
    except error as err:
        assert err.path == path, str(err)
        assert str(err).startswith(f"{path}"), str(err)
        assert err.line is None or 1 <= err.line <= last_line(data), f"line {err.line}: {err}"
        assert err.message.strip()
        return None


# ----------------------------------------------------------------------------- shared strategies

# Number spellings that trip parsers: non-finite, overflowing, underflowing, Unicode digits,
# Python-only syntax, half numbers, and integers too long for int() (over 4300 digits).
ODD_NUMBERS = [
    "0", "-0", "1", "-1", "0.5", "1e308", "-1e308", "1e309", "1e-320", "nan", "NaN", "inf", "-inf",
    "Infinity", "1_0", "0x10", "1e", ".", "-", "+", "²", "٣", "1,5", "1.5.5", "9" * 30, "9" * 400, "9" * 5000,
]
ODD_BYTES = [
    b"{", b"}", b'"', b'""', b"\x00", b"\xff", b"\xfe", b"\xc3", b"\r", b"\n", b"\t", b"nan", b"-->", b"<", b">",
    b"=", b"[", b"]", b"!", b"\xef\xbb\xbf", b" " * 40, b"9" * 400, b"\xe2\x80\xa8",
]
BOMS = [b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"]

# Mostly ordinary numbers, so that deeper parts of a file get reached too.
plain_number = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(-1e4, 1e4, allow_nan=False).map(lambda x: f"{x:.4f}"),
)
number = st.one_of(plain_number, plain_number, plain_number, st.sampled_from(ODD_NUMBERS),
                   st.floats().map(repr))


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A valid file after up to four random edits: the ways files really get damaged, and some more."""
    data = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(
            ["truncate", "delete line", "repeat line", "swap lines", "flip", "insert", "encoding", "line ends"]
        ))
        lines = data.split(b"\n")
        if op == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif op == "delete line":
            del lines[draw(st.integers(0, len(lines) - 1))]
            data = b"\n".join(lines)
        elif op == "repeat line":
            k = draw(st.integers(0, len(lines) - 1))
            data = b"\n".join(lines[:k] + [lines[k]] * draw(st.integers(2, 3)) + lines[k + 1 :])
        elif op == "swap lines":
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
        elif op == "flip" and data:
            k = draw(st.integers(0, len(data) - 1))
            data = data[:k] + bytes([data[k] ^ draw(st.integers(1, 255))]) + data[k + 1 :]
        elif op == "insert":
            k = draw(st.integers(0, len(data)))
            junk = draw(st.one_of(st.sampled_from(ODD_BYTES), st.binary(min_size=1, max_size=8)))
            data = data[:k] + junk + data[k:]
        elif op == "encoding":
            text = data.decode("utf-8", errors="replace")
            codec = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "latin-1", "utf-8-sig", "bom"]))
            if codec == "bom":
                data = draw(st.sampled_from(BOMS)) + data
            else:
                data = text.encode(codec, errors="replace")
        elif op == "line ends":
            data = data.replace(b"\n", draw(st.sampled_from([b"\r\n", b"\r", b"\n\n"])))
    return data


# ----------------------------------------------------------------------------- BVH


def check_motion(motion: Motion) -> None:
    sk = motion.skeleton
    J, T = len(sk), motion.n_frames
    assert J >= 1 and len(sk.names) == len(set(sk.names)) == J
    assert sk.parents[0] == -1 and all(0 <= p < j for j, p in enumerate(sk.parents) if j)
    assert np.all(np.isfinite(sk.offsets)) and sk.offsets.shape == (J, 3)
    assert all(sorted(order) == ["X", "Y", "Z"] for order in sk.rotation_orders)
    assert math.isfinite(motion.fps) and motion.fps > 0
    assert motion.rotations.shape == (T, J, 4) and motion.root_positions.shape == (T, 3)
    assert np.all(np.isfinite(motion.rotations)) and np.all(np.isfinite(motion.root_positions))
    np.testing.assert_allclose(np.linalg.norm(motion.rotations, axis=-1), 1.0, atol=1e-6)


def read_bvh_checked(path: Path) -> Motion:
    """read_bvh, and the header reader agreeing with it."""
    motion = read_bvh(path)
    skeleton, n_frames, fps = read_bvh_header(path)
    assert skeleton.names == motion.skeleton.names and skeleton.rotation_orders == motion.skeleton.rotation_orders
    assert (n_frames, fps) == (motion.n_frames, motion.fps)
    check_motion(motion)
    return motion


AXES_CHANNELS = [f"{a}{kind}" for kind in ("position", "rotation") for a in "XYZ"]


@st.composite
def bvh_grammar(draw: st.DrawFn) -> bytes:
    """A BVH file from the grammar: a small random tree, random channel orders, odd counts and values."""
    n_joints = draw(st.integers(1, 5))
    parents = [-1] + [draw(st.integers(0, k - 1)) for k in range(1, n_joints)]
    columns = 0
    lines: list[str] = ["HIERARCHY"]

    def channels(j: int) -> str:
        nonlocal columns
        rot = draw(st.permutations(AXES_CHANNELS[3:]))
        pos = draw(st.permutations(AXES_CHANNELS[:3]))
        shape = draw(st.sampled_from(["rot", "rot", "rot", "pos+rot", "none", "odd"]))
        if j > 0 and shape == "pos+rot" and draw(st.booleans()):
            shape = "rot"  # non-root translation only works when it repeats the OFFSET
        names = {"rot": rot, "pos+rot": pos + rot, "none": [], "odd": draw(
            st.lists(st.sampled_from(AXES_CHANNELS + ["Wrotation", "xrotation", "Xposition"]), max_size=7)
        )}[shape]
        count = str(len(names))
        if draw(st.integers(0, 9)) == 0:
            count = draw(st.sampled_from(["7", "2", "-3", "three", "²", "9" * 30, "9" * 5000, ""]))
        columns += len(names)
        return " ".join(["CHANNELS", count, *names])

    def joint(j: int, depth: int) -> None:
        pad = "\t" * depth
        name = draw(st.sampled_from([f"j{j}"] * 8 + ["j0", "{", "}", "End"]))
        lines.extend([f"{pad}{'ROOT' if j == 0 else 'JOINT'} {name}", f"{pad}{{"])
        offset = [draw(number) for _ in range(3)] if draw(st.integers(0, 4)) == 0 else ["0", "10", "0"]
        lines.append(f"{pad}\tOFFSET {' '.join(offset)}")
        lines.append(f"{pad}\t{channels(j)}")
        kids = [c for c in range(n_joints) if parents[c] == j]
        for c in kids:
            joint(c, depth + 1)
        if not kids and draw(st.booleans()):
            lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET 0 {draw(number)} 0", f"{pad}\t}}"])
        lines.append(f"{pad}}}")

    joint(0, 0)
    n_frames = draw(st.integers(0, 4))
    declared = str(n_frames) if draw(st.integers(0, 4)) else draw(st.sampled_from(ODD_NUMBERS + ["5", "0"]))
    frame_time = draw(st.sampled_from(["0.0333333", "0.008333", "0.1"])) if draw(st.booleans()) else draw(number)
    lines += ["MOTION", f"Frames: {declared}", f"Frame Time: {frame_time}"]
    for _ in range(n_frames):
        width = columns if draw(st.integers(0, 7)) else columns + draw(st.sampled_from([-1, 1]))
        values = [draw(plain_number) if draw(st.integers(0, 9)) else draw(number) for _ in range(max(width, 0))]
        lines.append(" ".join(values))
    return ("\n".join(lines) + "\n").encode()


@functools.cache
def bvh_seeds() -> list[bytes]:
    """Files write_bvh makes: one joint; a small tree in mixed rotation orders, with and without End Sites."""
    skeleton = Skeleton(
        names=("Hips", "Spine", "Head", "Arm"),
        parents=(-1, 0, 1, 1),
        offsets=np.array([[0, 90, 0], [0, 10, 0], [0, 20, 0], [-15, 5, 0]], dtype=float),
        rotation_orders=("ZXY", "XYZ", "YZX", "ZYX"),
        end_sites=(None, None, (0.0, 8.0, 0.0), None),
    )
    rng = np.random.default_rng(0)
    seeds = []
    with tempfile.TemporaryDirectory() as d:
        for sk, n in [(skeleton, 3), (dataclasses.replace(skeleton, names=("Hips",), parents=(-1,),
                                                        offsets=skeleton.offsets[:1], rotation_orders=("ZXY",),
                                                        end_sites=(None,)), 2)]:
            euler = rng.uniform(-80, 80, (n, len(sk), 3))
            motion = Motion.from_euler(sk, 30.0, sk.offsets[0] + rng.normal(0, 5, (n, 3)), euler)
            write_bvh(Path(d) / "seed.bvh", motion, precision=3)
            seeds.append((Path(d) / "seed.bvh").read_bytes())
    return seeds


DEEP_BVH = (
    "HIERARCHY\nROOT j\n{\nOFFSET 0 0 0\nCHANNELS 3 Zrotation Xrotation Yrotation\n"
    + "".join(f"JOINT j{k}\n{{\nOFFSET 0 1 0\nCHANNELS 0\n" for k in range(3000))
    + "}\n" * 3001 + "MOTION\nFrames: 1\nFrame Time: 0.1\n0 0 0\n"
).encode()
TINY_BVH = "HIERARCHY\nROOT a\n{\nOFFSET 0 0 0\nCHANNELS 3 Xrotation Yrotation Zrotation\n}\nMOTION\n"


@fuzz(250)
@given(data=st.one_of(bvh_grammar(), bvh_grammar().flatmap(lambda b: mutated([b]))))
@example(data=(TINY_BVH + "Frames: 1\nFrame Time: 1e-320\n0 0 0\n").encode())  # fps overflowed to inf
@example(data=TINY_BVH.replace("CHANNELS 3", "CHANNELS ²").encode())  # "²".isdigit(), int("²") fails
@example(data=(TINY_BVH + "Frames: ²\nFrame Time: 0.1\n0 0 0\n").encode())
@example(data=(TINY_BVH + f"Frames: {'9' * 5000}\nFrame Time: 0.1\n0 0 0\n").encode())  # int() digit limit
@example(data=TINY_BVH.replace("CHANNELS 3", "CHANNELS " + "9" * 5000).encode())
@example(data=DEEP_BVH)  # 3000 nested joints: RecursionError
def test_bvh_grammar(workdir: Path, data: bytes) -> None:
    outcome(workdir / "fuzz.bvh", data, read_bvh_checked, BVHFormatError)


@fuzz(200)
@given(data=st.builds(bvh_seeds).flatmap(mutated))
def test_bvh_mutations(workdir: Path, data: bytes) -> None:
    outcome(workdir / "fuzz.bvh", data, read_bvh_checked, BVHFormatError)


@fuzz(100)
@given(data=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: b"HIERARCHY\nROOT a\n{\n" + b)))
def test_bvh_random_bytes(workdir: Path, data: bytes) -> None:
    outcome(workdir / "fuzz.bvh", data, read_bvh_checked, BVHFormatError)


@st.composite
def motions(draw: st.DrawFn) -> Motion:
    n = draw(st.integers(1, 6))
    # Depth-first order, as BVH lists joints: each joint hangs off the previous one or an ancestor of it
    # (write_bvh writes depth-first, so other orders come back reordered).
    parents = [-1]
    for k in range(1, n):
        chain = [k - 1]
        while parents[chain[-1]] != -1:
            chain.append(parents[chain[-1]])
        parents.append(draw(st.sampled_from(chain)))
    parents = tuple(parents)
    orders = tuple(draw(st.permutations("XYZ")) for _ in range(n))
    coord = st.floats(-200, 200, allow_nan=False)
    offsets = np.array(draw(st.lists(st.tuples(coord, coord, coord), min_size=n, max_size=n)))
    skeleton = Skeleton(tuple(f"j{k}" for k in range(n)), parents, offsets, tuple("".join(o) for o in orders))
    T = draw(st.integers(0, 4))
    angle = st.floats(-179, 179, allow_nan=False)
    euler = np.array(draw(st.lists(angle, min_size=T * n * 3, max_size=T * n * 3))).reshape(T, n, 3)
    root = np.array(draw(st.lists(coord, min_size=T * 3, max_size=T * 3))).reshape(T, 3)
    fps = draw(st.sampled_from([24.0, 25.0, 30.0, 60.0, 120.0]))
    return Motion.from_euler(skeleton, fps, root, euler)


@fuzz(60)
@given(motion=motions())
def test_bvh_round_trip(workdir: Path, motion: Motion) -> None:
    path = workdir / "rt.bvh"
    write_bvh(path, motion, precision=6)
    back = read_bvh_checked(path)
    assert back.skeleton.names == motion.skeleton.names and back.skeleton.parents == motion.skeleton.parents
    assert back.skeleton.rotation_orders == motion.skeleton.rotation_orders
    assert (back.n_frames, back.fps) == (motion.n_frames, motion.fps)
    np.testing.assert_allclose(back.skeleton.offsets, motion.skeleton.offsets, atol=1e-5)
    np.testing.assert_allclose(back.root_positions, motion.root_positions, atol=1e-5)
    if motion.n_frames:
        np.testing.assert_allclose(back.positions(), motion.positions(), atol=1e-3)


def test_deeply_nested_bvh_reads_and_writes_back(workdir: Path) -> None:
    path = workdir / "deep.bvh"
    path.write_bytes(DEEP_BVH)
    motion = read_bvh(path)
    assert len(motion.skeleton) == 3001 and motion.skeleton.parents[-1] == 2999
    write_bvh(path, motion)
    assert read_bvh(path).skeleton.parents == motion.skeleton.parents


# ----------------------------------------------------------------------------- TextGrid


def check_textgrid(path: Path) -> TextGrid:
    """read_textgrid's result holds together, survives write/read, and yields valid words or a clear error."""
    tg = read_textgrid(path)
    for lo, hi in [(tg.xmin, tg.xmax)] + [(t.xmin, t.xmax) for t in tg.tiers]:
        assert math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi
    for tier in tg.tiers:
        if isinstance(tier, IntervalTier):
            spans = sorted((iv.xmin, iv.xmax) for iv in tier.intervals)
            assert all(math.isfinite(a) and 0 <= a <= b for a, b in spans)
            assert all(b[0] >= a[1] - 1e-6 for a, b in zip(spans, spans[1:]))  # no overlaps
        else:
            assert isinstance(tier, PointTier)
            assert all(math.isfinite(p.time) and p.time >= 0 for p in tier.points)
    copy = path.with_name("copy.TextGrid")
    write_textgrid(copy, tg)
    assert read_textgrid(copy) == tg
    try:
        words = words_from_textgrid(tg, path)
    except TranscriptError as err:
        assert err.path == path and str(err).startswith(str(path))
    else:
        if words:  # a tier of pauses only has no words; load_transcript refuses that with a message
            check_words_invariants(words)
    return tg


def tg_text(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


@st.composite
def textgrid_grammar(draw: st.DrawFn) -> bytes:
    """Long or short format, counts mostly right, times mostly ordered, some values odd."""
    long = draw(st.booleans())
    out: list[str] = ['File type = "ooTextFile"', f'Object class = {tg_text(draw(st.sampled_from(["TextGrid"] * 5 + ["Sound", "TextGrid x"])))}', ""]

    def value(label: str, text: str) -> None:
        out.append(f"{label} = {text} " if long else text)

    def time_text(t: float) -> str:
        return repr(t) if draw(st.integers(0, 11)) else draw(number)

    label_text = st.one_of(st.sampled_from(["", "hello", "world", 'say ""hi""', "two\nlines", "! not a comment",
                                            "xmin = 3", "café", "\u2028"]),
                           st.text(st.characters(codec="utf-8", exclude_characters='\r"'), max_size=6))
    end = draw(st.floats(0, 100))
    value("xmin", time_text(0.0))
    value("xmax", time_text(end))
    n_tiers = draw(st.integers(0, 3))
    out.append("tiers? <exists> " if n_tiers or draw(st.booleans()) else "tiers? <absent> ")
    value("size", str(n_tiers) if draw(st.integers(0, 7)) else draw(st.sampled_from(ODD_NUMBERS)))
    if long:
        out.append("item []: ")
    for k in range(1, n_tiers + 1):
        if long:
            out.append(f"    item [{k}]:")
        interval = draw(st.booleans())
        value("class", tg_text("IntervalTier" if interval else "TextTier"))
        value("name", tg_text(draw(st.sampled_from(["words", "phones", "Word", "x"]))))
        value("xmin", time_text(0.0))
        value("xmax", time_text(end))
        n = draw(st.integers(0, 5))
        cuts = sorted(draw(st.lists(st.floats(0, end), min_size=n + 1, max_size=n + 1)))
        if draw(st.integers(0, 5)) == 0:
            cuts = draw(st.lists(st.floats(-5, end + 5), min_size=n + 1, max_size=n + 1))  # overlaps, disorder
        size = str(n) if draw(st.integers(0, 7)) else str(n + draw(st.sampled_from([-1, 1])))
        out.append(f"        {'intervals' if interval else 'points'}: size = {size} " if long else size)
        for i in range(n):
            if long:
                out.append(f"        {'intervals' if interval else 'points'} [{i + 1}]:")
            if interval:
                value("xmin", time_text(cuts[i]))
                value("xmax", time_text(cuts[i + 1]))
                value("text", tg_text(draw(label_text)))
            else:
                value("number", time_text(cuts[i]))
                value("mark", tg_text(draw(label_text)))
    text = "\n".join(out) + "\n"
    return text.encode("utf-16") if draw(st.integers(0, 5)) == 0 else text.encode()


@functools.cache
def textgrid_seeds() -> list[bytes]:
    full = (EXAMPLES / "speech.TextGrid").read_bytes()
    # Up to the fifth interval, closed by hand, so mutations land on structure, not just the tail.
    head = full[: full.index(b"intervals [5]:")].replace(b"intervals: size = 97", b"intervals: size = 4")
    short_lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "0", "2.3", "<exists>", "2",
                   '"IntervalTier"', '"words"', "0", "2.3", "2", "0", "0.5", '""', "0.5", "2.3", '"hi ""there"""',
                   '"TextTier"', '"bell"', "0", "2.3", "1", "1.5", '"ding"']
    short = ("\n".join(short_lines) + "\n").encode()
    return [full, head, short, short.decode().encode("utf-16")]


OVERLAPPING_TG = ('File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n2\n<exists>\n1\n"IntervalTier"\n'
                  '"words"\n0\n2\n2\n0\n1.5\n"a"\n1\n2\n"b"\n')


@fuzz(250)
@given(data=st.one_of(textgrid_grammar(), textgrid_grammar().flatmap(lambda b: mutated([b]))))
@example(data=('File type = "ooTextFile"\nObject class = "TextGrid"\n0\n1\n<exists>\n' + "9" * 5000 + "\n").encode())
@example(data=OVERLAPPING_TG.encode())
@example(data=('File type = "ooTextFile"\nObject class = "TextGrid"\n"' + "\n" * 3000 + '"\n').encode())
def test_textgrid_grammar(workdir: Path, data: bytes) -> None:
    outcome(workdir / "fuzz.TextGrid", data, check_textgrid, TranscriptError)


@fuzz(200)
@given(data=st.builds(textgrid_seeds).flatmap(mutated))
def test_textgrid_mutations(workdir: Path, data: bytes) -> None:
    outcome(workdir / "fuzz.TextGrid", data, check_textgrid, TranscriptError)


@fuzz(100)
@given(data=st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda b: b'File type = "ooTextFile"\nObject class = "TextGrid"\n' + b),
    st.binary(max_size=300).map(lambda b: b"\xff\xfe" + b),
))
def test_textgrid_random_bytes(workdir: Path, data: bytes) -> None:
    outcome(workdir / "fuzz.TextGrid", data, check_textgrid, TranscriptError)


# ----------------------------------------------------------------------------- transcripts


def check_words_invariants(words: list, duration: float | None = None) -> None:
    assert words
    for w in words:
        assert w.text and w.text == w.text.strip()
        assert math.isfinite(w.start) and math.isfinite(w.end) and 0 <= w.start <= w.end
        assert duration is None or w.end <= duration
    for a, b in zip(words, words[1:]):
        assert a.start <= b.start and a.end <= b.start + 1e-9


def timestamp(seconds: float, hours: bool, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return (f"{h:02d}:" if hours or h else "") + f"{m:02d}:{s:02d}{sep}{ms:03d}"


ODD_TIMESTAMPS = ["99:99:99,999", "00:00:01", "1:2:3.4567", "-00:00:01,000", "٠٠:٠١:٠٢,٠٠٠", "00:00:0x,000",
                  "9" * 400 + ":00:00,000", "9" * 5000 + ":00:00,000", "", "-->", "00:60.000"]
CUE_WORDS = ["hello", "there,", "<i>", "</i>", "[music]", "(laughs)", "JOHN:", "-", "&amp;", "♪", "<00:00:01.500>",
             "{\\an8}", "42", "<c.loud>", "<v Roger>", "NOTE", "WEBVTT", "-->", "1", "", "café", "[", "(", "<"]
cue_line = st.lists(st.one_of(st.sampled_from(CUE_WORDS), st.text(max_size=5)), max_size=6).map(" ".join)


@st.composite
def cue_timing(draw: st.DrawFn, sep: str) -> str:
    a, b = sorted(draw(st.lists(st.floats(0, 8000), min_size=2, max_size=2)))
    if draw(st.integers(0, 9)) == 0:
        a, b = b, a
    hours = draw(st.booleans())
    start, end = timestamp(a, hours, sep), timestamp(b, hours, sep)
    if draw(st.integers(0, 7)) == 0:
        start = draw(st.sampled_from(ODD_TIMESTAMPS))
    arrow = draw(st.sampled_from(["-->"] * 8 + ["->", "--->", " --> "]))
    return f"{start} {arrow} {end}" + draw(st.sampled_from(["", "", " align:start position:0%", " X1:100"]))


@st.composite
def srt_grammar(draw: st.DrawFn) -> bytes:
    out = []
    for k in range(1, draw(st.integers(0, 4)) + 1):
        if draw(st.integers(0, 4)):
            out.append(str(k))
        out.append(draw(cue_timing(",")))
        out += draw(st.lists(cue_line, max_size=3))
        out.append("")
    return "\n".join(out).encode()


@st.composite
def vtt_grammar(draw: st.DrawFn) -> bytes:
    out = [draw(st.sampled_from(["WEBVTT", "WEBVTT - title", "WEBVTT\nKind: captions", "\ufeffWEBVTT", "1"])), ""]
    for k in range(draw(st.integers(0, 4))):
        block = draw(st.sampled_from(["cue"] * 4 + ["NOTE", "STYLE"]))
        if block != "cue":
            out += [f"{block} something", draw(cue_line), ""]
            continue
        if draw(st.booleans()):
            out.append(f"id{k}")
        out.append(draw(cue_timing(".")))
        out += [line for line in draw(st.lists(cue_line, max_size=3)) if line]
        out.append("")
    return "\n".join(out).encode()


json_time = st.one_of(
    st.floats(0, 100), st.floats(0, 100), st.floats(), st.integers(-5, 10**3), st.just(10**400), st.none(),
    st.booleans(), st.text(max_size=3),
)


@st.composite
def json_word(draw: st.DrawFn) -> dict:
    item = {}
    if draw(st.integers(0, 9)):
        item[draw(st.sampled_from(["word", "word", "text"]))] = draw(st.one_of(cue_line, st.integers(), st.none()))
    for key in ("start", "end"):
        if draw(st.integers(0, 5)):
            item[key] = draw(json_time)
    if draw(st.booleans()):
        item["score"] = draw(st.floats(0, 1))
    return item


any_json = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["word", "text", "start", "end", "words", "segments", "word_segments"]), inner, max_size=4
    ),
    max_leaves=8,
)


@st.composite
def json_grammar(draw: st.DrawFn) -> bytes:
    words = st.lists(json_word(), max_size=4)
    segment = st.builds(lambda w, s, e, t: {k: v for k, v in [("words", w), ("start", s), ("end", e), ("text", t)]
                                          if v is not None},
                        st.one_of(st.none(), words), json_time, json_time, st.one_of(st.none(), cue_line))
    shape = draw(st.sampled_from(["list", "words", "word_segments", "segments", "any"]))
    data = {
        "list": words,
        "words": words.map(lambda w: {"words": w}),
        "word_segments": words.map(lambda w: {"word_segments": w}),
        "segments": st.lists(segment, max_size=3).map(lambda s: {"segments": s}),
        "any": any_json,
    }[shape]
    return json.dumps(draw(data), allow_nan=True).encode()


def transcript_seeds() -> dict[str, bytes]:
    return {
        ".srt": b"1\n00:00:01,000 --> 00:00:03,000\n<i>Hello</i> there, my\nfriend.\n\n2\n"
                b"00:00:03,500 --> 00:00:05,250\n[MUSIC] JOHN: Yes.\n- Really?\n",
        ".vtt": b"WEBVTT\n\nNOTE a comment\n\nintro\n00:01.000 --> 00:02.000 align:start\n<v Roger>Hello &amp; welcome\n\n"
                b"00:00:02.000 --> 00:00:04.000\nI <00:00:02.500>said <00:00:03.000>yes\n",
        ".json": json.dumps({"segments": [{"start": 0.5, "end": 1.2, "text": " hi there", "words": [
            {"word": "hi", "start": 0.5, "end": 0.8}, {"word": "1999"}, {"word": "there", "start": 0.9, "end": 1.2}]},
            {"start": 2.0, "end": 3.0, "text": "bye"}]}).encode(),
        ".txt": b"Hello there. It's 1999, isn't it?\n",
    }


def load_checked(path: Path) -> list:
    words = load_transcript(path)
    check_words_invariants(words)
    return words


def read_by_suffix(path: Path) -> list:
    """The format's own reader (load_transcript sniffs .txt, and plain text needs audio)."""
    reader = {".srt": read_srt, ".vtt": read_vtt, ".json": read_json_words}.get(path.suffix)
    if reader is None:
        assert read_plain_text(path).strip()
        return []
    words = reader(path)
    check_words_invariants(words)
    return words


def both_readers(path: Path) -> None:
    read_by_suffix(path)
    load_checked(path)


HUGE_HOURS = ("1\n" + "9" * 400 + ":00:01,000 --> 00:00:02,000\nhi\n").encode()


@fuzz(250)
@given(suffix_data=st.one_of(
    st.tuples(st.just(".srt"), srt_grammar()), st.tuples(st.just(".vtt"), vtt_grammar()),
    st.tuples(st.just(".json"), json_grammar()),
    st.tuples(st.just(".txt"), st.one_of(srt_grammar(), vtt_grammar(), json_grammar())),  # sniffed
))
@example(suffix_data=(".srt", HUGE_HOURS))  # int + float overflowed
@example(suffix_data=(".srt", HUGE_HOURS.replace(b"9" * 400, b"9" * 5000)))  # int() digit limit
@example(suffix_data=(".vtt", b"WEBVTT\n\n00:01.000 --> 00:02.000\na <" + b"9" * 400 + b":00:01.500> b\n"))
@example(suffix_data=(".json", b"[" * 100_000))  # RecursionError
@example(suffix_data=(".txt", b"[" * 100_000))
@example(suffix_data=(".json", b'[{"word": "a", "start": 1' + b"0" * 400 + b', "end": 1}]'))  # float(int) overflow
@example(suffix_data=(".json", b'[{"word": "a", "start": 1' + b"0" * 5000 + b', "end": 1}]'))  # int() digit limit
@example(suffix_data=(".json", b'{"segments": [{"start": 1' + b"0" * 400 + b', "words": [{"word": "a"}]}]}'))
@example(suffix_data=(".json", b'{"segments": [{"start": 1, "end": 0.5, "words": [{"word": "a"}]}]}'))
def test_transcript_grammar(workdir: Path, suffix_data: tuple[str, bytes]) -> None:
    suffix, data = suffix_data
    outcome(workdir / f"fuzz{suffix}", data, both_readers, TranscriptError)


@fuzz(250)
@given(suffix_data=st.sampled_from(sorted(transcript_seeds().items())).flatmap(
    lambda kv: st.tuples(st.just(kv[0]), mutated([kv[1]]))
))
def test_transcript_mutations(workdir: Path, suffix_data: tuple[str, bytes]) -> None:
    suffix, data = suffix_data
    outcome(workdir / f"fuzz{suffix}", data, both_readers, TranscriptError)


@fuzz(100)
@given(suffix=st.sampled_from([".srt", ".vtt", ".json", ".txt", ".TextGrid"]), data=st.binary(max_size=300))
def test_transcript_random_bytes(workdir: Path, suffix: str, data: bytes) -> None:
    outcome(workdir / f"fuzz{suffix}", data, load_checked, TranscriptError)


SR = 16000
# 1.5 s: a burst of buzz-like speech in faint noise, so the aligner has something to place words on.
AUDIO = np.random.default_rng(0).normal(0, 1e-3, int(1.5 * SR)).astype(np.float32)
AUDIO[4000:16000] += 0.3 * np.sign(np.sin(2 * np.pi * 150 * np.arange(12000) / SR)).astype(np.float32)


@fuzz(60)
@given(suffix_data=st.one_of(
    st.tuples(st.just(".srt"), srt_grammar()), st.tuples(st.just(".vtt"), vtt_grammar()),
    st.tuples(st.just(".json"), json_grammar()),
    st.tuples(st.just(".txt"), st.lists(cue_line, max_size=4).map(lambda ls: "\n".join(ls).encode())),
))
def test_transcript_with_audio(workdir: Path, suffix_data: tuple[str, bytes]) -> None:
    suffix, data = suffix_data

    def load(path: Path) -> list:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AlignmentWarning)  # many words in 0.8 s of speech, as expected
            words = load_transcript(path, audio=AUDIO, sample_rate=SR)
        check_words_invariants(words, duration=len(AUDIO) / SR)
        return words

    outcome(workdir / f"fuzz{suffix}", data, load, TranscriptError)


# ----------------------------------------------------------------------------- BEAT annotations

SEMANTIC_LABELS = [f"{i:02d}_{name}" for i, name in SEMANTIC_TYPES.items()] + [
    "habit", "need_cut", "beat", "7_iconic_h", "07_iconic_x", "99", "42", "", "ICONIC_H", "07iconic_h", "١_beat_align",
    "9" * 5000 + "_beat_align", "9" * 5000, "0" * 5000 + "7_iconic_h",
]
EMOTION_LABELS = [f"{i:02d}_{name}" for i, name in enumerate(EMOTIONS)] + [
    "00_netural", "netural", "name", "08_disgust", "9" * 5000 + "_anger", "9" * 5000, "",
]


@st.composite
def annotation_grammar(draw: st.DrawFn, semantic: bool) -> bytes:
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        a, b = sorted(draw(st.lists(st.floats(0, 100), min_size=2, max_size=2)))
        cells = [draw(st.sampled_from(SEMANTIC_LABELS if semantic else EMOTION_LABELS)),
                 f"{a:.3f}", f"{b:.3f}", f"{b - a:.3f}", draw(st.sampled_from(["0.1", "1.0", "0", "0.7"]))]
        if draw(st.integers(0, 3)) == 0:
            cells[draw(st.integers(1, 4))] = draw(number)
        if semantic and draw(st.booleans()):
            cells.append(draw(cue_line))
        if draw(st.integers(0, 7)) == 0:
            cells = cells[: draw(st.integers(0, len(cells)))]
        sep = draw(st.sampled_from(["\t", "\t", "  "])) if semantic else draw(st.sampled_from([",", ", "]))
        rows.append(sep.join(cells))
    return "".join(row + draw(st.sampled_from(["\n", "\r\n", "\n\n"])) for row in rows).encode()


def check_semantic(path: Path) -> list:
    segments = read_semantic(path)
    for s in segments:
        assert SEMANTIC_TYPES[s.type_id] == s.type_name
        assert all(math.isfinite(x) for x in (s.start, s.end, s.score)) and 0 <= s.start <= s.end
        assert "\n" not in s.keywords and s.keywords == s.keywords.strip()
    return segments


def check_emotion(path: Path) -> list:
    segments = read_emotion(path)
    for s in segments:
        assert EMOTIONS[s.emotion_id] == s.label
        assert all(math.isfinite(x) for x in (s.start, s.end, s.score)) and 0 <= s.start <= s.end
    return segments


SEMANTIC_SEED = (b"01_beat_align\t0\t3.119\t3.119\t0.1\n07_iconic_h\t3.119\t4.785\t1.666\t0.7\trelaxing\n"
                 b"habit\t5\t6\t1\t0.3\tscratching the head\n")
EMOTION_SEED = b"name,start,end,duration,score\n00_netural,0,63.908,63.908,0\n03_sadness,63.908,70,6.092,0.5\n"


@fuzz(200)
@given(data=st.one_of(annotation_grammar(semantic=True), st.builds(lambda: [SEMANTIC_SEED]).flatmap(mutated),
                      st.binary(max_size=200)))
@example(data=b"9" * 5000 + b"_beat_align\t0\t1\t1\t0.1\n")  # int() digit limit
@example(data=b"9" * 5000 + b"\t0\t1\t1\t0.1\n")
def test_semantic_annotations(workdir: Path, data: bytes) -> None:
    outcome(workdir / "fuzz.txt", data, check_semantic, AnnotationError)


@fuzz(150)
@given(data=st.one_of(annotation_grammar(semantic=False), st.builds(lambda: [EMOTION_SEED]).flatmap(mutated),
                      st.binary(max_size=200)))
@example(data=b"9" * 5000 + b"_anger,0,1,1,0\n")
def test_emotion_annotations(workdir: Path, data: bytes) -> None:
    outcome(workdir / "fuzz.csv", data, check_emotion, AnnotationError)


# ----------------------------------------------------------------------------- named cases


def expect_error(path: Path, data: bytes, read: Callable, error: type[InputFileError], *fragments: str) -> InputFileError:
    path.write_bytes(data)
    with pytest.raises(error) as info:
        read(path)
    err = info.value
    assert err.path == path and str(err).startswith(str(path))
    for fragment in fragments:
        assert fragment in err.message, str(err)
    return err


def test_textgrid_overlapping_intervals_name_tier_times_and_line(tmp_path: Path) -> None:
    path = tmp_path / "overlap.TextGrid"
    err = expect_error(path, OVERLAPPING_TG.encode(), read_textgrid, TranscriptError, "'words'", "overlap", "1.5")
    assert err.line == 16  # the second interval's xmin
    with pytest.raises(TranscriptError, match="overlap"):
        load_transcript(path)


@pytest.mark.parametrize(
    "old, new, fragment, line",
    [
        ("\n0\n2\n<exists>", "\n-1\n2\n<exists>", "negative", 4),  # the TextGrid starts before 0
        ('"words"\n0\n2\n2\n0\n1.5', '"words"\n0\n2\n2\n-0.5\n1', "negative", 13),
        ('"words"\n0\n2\n2\n0\n1.5', '"words"\n0\n2\n2\n0\n-1.5', "ends before it starts", 14),
        ("\n0\n2\n<exists>", "\n0\n-2\n<exists>", "ends before it starts", 5),
    ],
)
def test_textgrid_negative_or_reversed_times(tmp_path: Path, old: str, new: str, fragment: str, line: int) -> None:
    text = OVERLAPPING_TG.replace('"a"\n1\n2', '"a"\n1.5\n2')  # no overlap: only the edited time is wrong
    assert old in text
    path = tmp_path / "bad.TextGrid"
    err = expect_error(path, text.replace(old, new).encode(), read_textgrid, TranscriptError, fragment)
    assert err.line == line, str(err)


@pytest.mark.parametrize("suffix", [".txt", ".srt", ".vtt", ".json", ".TextGrid"])
@pytest.mark.parametrize("content", [b"", b" \n\t\r\n  "], ids=["empty", "whitespace"])
def test_empty_transcripts_are_refused_clearly(tmp_path: Path, suffix: str, content: bytes) -> None:
    path = tmp_path / f"empty{suffix}"
    expect_error(path, content, load_transcript, TranscriptError, "empty" if not content else "whitespace")
    expect_error(path, content, lambda p: load_transcript(p, audio=AUDIO), TranscriptError)
    reader = {".srt": read_srt, ".vtt": read_vtt, ".json": read_json_words, ".TextGrid": read_textgrid,
              ".txt": read_plain_text}[suffix]
    expect_error(path, content, reader, TranscriptError)


@pytest.mark.parametrize("suffix", [".txt", ".srt", ".vtt", ".json"])
def test_latin1_transcripts_name_the_line(tmp_path: Path, suffix: str) -> None:
    text = {".txt": "Hello\ncaf\xe9\n", ".srt": "1\n00:00:01,000 --> 00:00:02,000\ncaf\xe9\n",
            ".vtt": "WEBVTT\n\n00:01.000 --> 00:02.000\ncaf\xe9\n", ".json": '[{"word": "caf\xe9", "start": 0, "end": 1}]'}
    path = tmp_path / f"latin1{suffix}"
    err = expect_error(path, text[suffix].encode("latin-1"), load_transcript, TranscriptError, "not valid UTF-8")
    assert err.line == text[suffix].count("\n", 0, text[suffix].index("\xe9")) + 1


def huge_words(n_bytes: int) -> list[str]:
    """About `n_bytes` of text as words (5 bytes a word with its space, on average)."""
    vocab = np.array(["the", "gesture", "of", "a", "hand,", "moves", "1999", "quickly.", "über", "and"])
    return vocab[np.random.default_rng(0).integers(0, len(vocab), n_bytes // 5)].tolist()


@pytest.mark.parametrize("suffix, megabytes", [(".txt", 5), (".srt", 2), (".vtt", 2), (".json", 2), (".TextGrid", 2)])
def test_huge_transcripts_take_bounded_time(tmp_path: Path, suffix: str, megabytes: int) -> None:
    """A million words (the wrong file, a book) read in linear time: seconds, not minutes.

    Plain text is the literal 5 MB of words; the timed formats hold about 2 MB of words
    (3-5 MB of file) to keep the suite quick. The bound is loose for a shared CI machine;
    anything quadratic would take minutes.
    """
    words = huge_words(megabytes * 1_000_000)
    path = tmp_path / f"huge{suffix}"
    if suffix == ".txt":
        path.write_text(" ".join(words) + "\n", encoding="utf-8")
    elif suffix in (".srt", ".vtt"):
        cues = [" ".join(words[k : k + 12]) for k in range(0, len(words), 12)]
        sep = "," if suffix == ".srt" else "."
        body = "".join(f"{k + 1}\n{timestamp(k, True, sep)} --> {timestamp(k + 1, True, sep)}\n{c}\n\n"
                       for k, c in enumerate(cues))
        path.write_text(("WEBVTT\n\n" if suffix == ".vtt" else "") + body, encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps([{"word": w, "start": k * 0.3, "end": k * 0.3 + 0.25}
                                    for k, w in enumerate(words[: len(words) // 8])]), encoding="utf-8")
    else:
        intervals = [Interval(k * 0.3, (k + 1) * 0.3, w) for k, w in enumerate(words[: len(words) // 10])]
        write_textgrid(path, TextGrid(0, intervals[-1].xmax, [IntervalTier("words", 0, intervals[-1].xmax, intervals)]))
    assert path.stat().st_size > megabytes * 800_000
    start = time.perf_counter()
    audio = AUDIO if suffix == ".txt" else None
    if audio is not None:  # a million words for 1.5 s of audio: refused, and quickly
        with pytest.raises(TranscriptError, match="longer than its audio"):
            load_transcript(path, audio=audio, sample_rate=SR)
    else:
        check_words_invariants(load_transcript(path, audio=audio, sample_rate=SR), duration=None)
    elapsed = time.perf_counter() - start
    assert elapsed < 15.0, f"{path.stat().st_size / 1e6:.1f} MB took {elapsed:.1f} s"
