"""Bad inputs to the Generate Gestures operator, one table: each row a real file (or text block) taking
its own path (checked in Blender before the worker starts, or by the worker: audio, transcript file,
text block, model bundle), and what the user must get.

An error row must cancel with one error report naming the file, and leave the scene exactly as it
was: no new action, the rig's previous action with its keys, the frame range, no sequencer strips.
A sensible row must finish with a new action of round(seconds * fps) keyed frames. The table in
tests/test_bad_inputs.py (the command line) has every row of the requirement; this one covers each
of them too, several sensible audio formats in one file where one file can hold them.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

bpy = pytest.importorskip("bpy")

from semges_blender.keyframes import action_fcurves  # noqa: E402
from semges_blender.takes import active_take  # noqa: E402
from semges_blender.rigs import create_beat_armature  # noqa: E402
from test_bad_inputs import (  # noqa: E402
    BUNDLE_FORMAT, CLIP_S, EXAMPLE_TG, EXAMPLE_TXT, Maker, Pickled, _cut_wav, _huge_text, _k48, _stereo, textgrid,
)

from test_blender_common import registered_addon, scene_at_30fps  # noqa: E402,F401  (fixtures)

pytestmark = pytest.mark.blender

FPS = 30
PREVIOUS_KEYS = {1: 0.1, 10: 0.4, 20: -0.2}  # frame: value of the previous take's one curve


@dataclass(frozen=True)
class BRow:
    id: str
    make: Callable[[Maker], dict]  # settings to change: audio, transcript (a path) or text (name, content), model
    error: tuple[str, ...] = ()     # words the error report must hold; empty: FINISHED expected
    names: str = ""                 # the setting whose file the error must name ("" for a text block's name)
    seconds: float = CLIP_S         # a success's audio length, for the keyed frame count
    warning: tuple[str, ...] = ()   # words a success's warning report must hold
    marker: bool = False            # the input holds a pickle: its marker file must never appear


def _clip(m: Maker, name: str, samples: np.ndarray, rate: int, subtype: str) -> dict:
    return {"audio": m.wav(name, samples, rate, subtype), "transcript": m.clip_words()}


def _bundle(m: Maker, name: str, **edit) -> dict:
    return {"model": m.bundle(name, **edit)}


ROWS = [
    # --- checked in Blender before the worker starts
    BRow("audio_missing", lambda m: {"audio": m.dir / "nowhere.wav"}, ("audio file not found",), "audio"),
    BRow("audio_empty", lambda m: {"audio": m.file("empty.wav", b"")}, ("empty (0 bytes)",), "audio"),
    BRow("transcript_file_empty", lambda m: {"transcript": m.file("empty.txt", b"")}, ("empty (0 bytes)",),
         "transcript"),
    BRow("text_block_empty", lambda m: {"text": ("words.txt", "")}, ("'words.txt' is empty",)),
    BRow("text_block_whitespace", lambda m: {"text": ("words.txt", "  \n\t\n")}, ("only whitespace",)),
    BRow("bundle_is_a_pickle", lambda m: {"model": m.file("model.safetensors", pickle.dumps(
        Pickled(m.marker)))}, ("is a Python pickle", "never unpickles"), "model", marker=True),
    # --- audio, in the worker
    BRow("audio_truncated_data", lambda m: {"audio": _cut_wav(m, "cut.wav", lambda b: b[: len(b) // 2])},
         ("truncated",), "audio"),
    BRow("audio_text_renamed_wav", lambda m: {"audio": m.file("notes.wav", "Meeting notes.\n" * 40)},
         ("not a readable audio file",), "audio"),
    BRow("audio_8bit_48khz_stereo", lambda m: _clip(m, "u8.wav", _stereo(_k48(m.clip())), 48000, "PCM_U8")),
    BRow("audio_24bit_0.2s", lambda m: {"audio": m.wav("s24.wav", m.speech()[0][8000:11200], 16000, "PCM_24"),
                                        "text": ("hello.json", '[{"word": "hello", "start": 0.0, "end": 0.2}]')},
         seconds=0.2),
    BRow("audio_silent", lambda m: _clip(m, "silent.wav", np.zeros_like(m.clip()), 16000, "PCM_16")),
    # --- transcripts, in the worker
    BRow("transcript_not_utf8", lambda m: {"transcript": m.file("latin1.txt", "Ça va, café?\n".encode("latin-1"))},
         ("not valid UTF-8",), "transcript"),
    BRow("text_block_from_non_utf8_file", lambda m: {"text_file": m.file("latin1.txt", " ".join(
                                                         EXAMPLE_TXT.read_text().split()[:8]).replace(  # the 6-s clip holds 8 words
                                                         "everyone", "café").encode("latin-1"))}),
    BRow("transcript_huge", lambda m: {"transcript": m.file("huge.txt", _huge_text(3.0))},
         ("transcript is longer than its audio",), "transcript"),
    BRow("transcript_past_audio_end", lambda m: {"audio": m.wav("first10s.wav", m.clip(10.0), 16000),
                                                 "transcript": EXAMPLE_TG},
         ("transcript is longer than its audio",), "transcript"),
    BRow("textgrid_overlapping_text_block", lambda m: {"text": ("words.TextGrid", textgrid(
        [(0.0, 0.5, ""), (0.5, 1.4, "hello"), (1.1, 2.0, "world")]))}, ("overlap", "words.TextGrid")),
    BRow("textgrid_negative_time", lambda m: {"transcript": m.file("negative.TextGrid", textgrid(
        [(-0.5, -0.2, ""), (-0.2, 0.8, "hello"), (0.8, 2.0, "world")], xmin=-0.5))}, ("negative time",),
         "transcript"),
    # --- model bundles, in the worker
    BRow("bundle_missing_tensor", lambda m: _bundle(m, "no_tensor.safetensors", tensors_fn=lambda t: {
        k: v for k, v in t.items() if k != "generator.to_hand.weight"}), ("missing to_hand.weight",), "model"),
    BRow("bundle_wrong_shape", lambda m: _bundle(m, "bad_shape.safetensors", tensors_fn=lambda t: {
        **t, "generator.to_hand.bias": torch.zeros(3)}), ("shape of to_hand.bias",), "model"),
    BRow("bundle_newer_format", lambda m: _bundle(m, "newer.safetensors", meta_fn=lambda meta: {
        **meta, "format": BUNDLE_FORMAT + 1}), ("is newer than this SemGes reads",), "model"),
]


# ----------------------------------------------------------------------------- the scene


def _rig_with_a_previous_take():
    """A BEAT rig whose action holds keys the user made, in a scene with its own frame range."""
    rig = create_beat_armature()
    pb = rig.pose.bones["RArm"]
    pb.rotation_mode = 'XYZ'
    for frame, value in PREVIOUS_KEYS.items():
        pb.rotation_euler[0] = value
        pb.keyframe_insert("rotation_euler", index=0, frame=frame)
    rig.animation_data.action.name = "previous take"
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end, scene.frame_current = 1, 48, 7
    return rig


def _strips(scene) -> int:
    ed = scene.sequence_editor
    return 0 if ed is None else len(ed.strips if hasattr(ed, "strips") else ed.sequences)


def _state(rig) -> dict:
    scene = bpy.context.scene
    action = rig.animation_data.action
    keys = {(fc.data_path, fc.array_index): [tuple(k.co) for k in fc.keyframe_points]
            for fc in action_fcurves(action, rig)}
    return {"actions": sorted(a.name for a in bpy.data.actions), "action": action.name, "keys": keys,
            "range": (scene.frame_start, scene.frame_end, scene.frame_current), "strips": _strips(scene),
            "objects": sorted(o.name for o in bpy.data.objects), "texts": sorted(t.name for t in bpy.data.texts)}


def _apply(row: BRow, m: Maker, rig, tiny_bundle: Path) -> dict[str, str]:
    """Point the panel at the good inputs, then at the row's; the row's file paths by setting."""
    inputs = {"audio": m.wav("clip.wav", m.clip(), 16000), "transcript": m.clip_words(), "model": tiny_bundle,
              **row.make(m)}
    s = bpy.context.scene.semges
    s.armature = rig
    s.audio_path = str(inputs["audio"])
    s.model_path = str(inputs["model"])
    s.device, s.seed, s.start_at, s.start_frame, s.add_audio = 'cpu', 0, 'FRAME', 1, True
    if "text" in inputs or "text_file" in inputs:
        if "text_file" in inputs:  # Blender decodes the file itself when it loads it as a text block
            text = bpy.data.texts.load(str(inputs["text_file"]))
        else:
            name, content = inputs["text"]
            text = bpy.data.texts.new(name)
            text.from_string(content)
        s.transcript_source, s.transcript_text = 'TEXT', text
    else:
        s.transcript_source, s.transcript_path = 'FILE', str(inputs["transcript"])
    return {k: str(v) for k, v in inputs.items() if isinstance(v, Path)}


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_in_blender(row: BRow, tiny_bundle, tmp_path, capfd):
    m = Maker(tmp_path, tiny_bundle)
    rig = _rig_with_a_previous_take()
    paths = _apply(row, m, rig, tiny_bundle)
    before = _state(rig)
    capfd.readouterr()
    if row.error:
        with pytest.raises(RuntimeError) as info:  # an ERROR report: bpy.ops raises it, the operator cancelled
            bpy.ops.semges.generate()
        message = str(info.value)
        assert "Traceback" not in message + "".join(capfd.readouterr())
        assert message.startswith("Error: ") and len(message.strip().splitlines()) == 1, message
        if row.names:
            assert paths[row.names] in message, f"the error does not name the {row.names} file: {message}"
        for word in row.error:
            assert word in message, f"{word!r} not in: {message}"
        assert _state(rig) == before, "the scene changed"
    else:
        assert bpy.ops.semges.generate() == {'FINISHED'}
        printed = capfd.readouterr().out
        action = active_take(rig)
        assert action.name != "previous take"
        assert rig.animation_data.nla_tracks["previous take"].strips[0].action.name == "previous take", \
            "the previous take is pushed down and keeps playing under the new one"
        curves = action_fcurves(action, rig)
        frames = np.array([k.co[0] for k in curves[0].keyframe_points])
        values = np.array([k.co[1] for fc in curves for k in fc.keyframe_points])
        assert frames[0] == 1 and frames[-1] == round(row.seconds * FPS), frames[[0, -1]]
        assert np.isfinite(values).all()
        warnings = [line for line in printed.splitlines() if line.startswith("Warning: SemGes: ")]
        warnings = [w for w in warnings if "sound strip" not in w]  # the 4.2 bpy module has no audio
        if row.warning:
            assert len(warnings) == 1 and all(w in warnings[0] for w in row.warning), printed
        else:
            assert warnings == [], printed
    if row.marker:
        assert not m.marker.exists(), "a pickle in the model was executed"
