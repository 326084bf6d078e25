"""The bundled demo model: it loads, runs the example, and meaning drives its gestures.

The example speech says "a gigantic idea"; "gigantic" is a held-out synonym the model
never saw in training. Keeping the audio fixed and swapping only that word isolates
what the words do: big-family words must spread the arms, small-family words bring the
hands together, "up"-family words raise a hand above the head.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semges_core.speech.audio import load_audio
from semges_core.bundle import bundle_info, default_bundle_path, load_bundle
from semges_core.evaluation.human_stats import REAL_SPEAKER, STATISTICS, compare, motion_statistics
from semges_core.inference import generate, window_starts
from semges_core.formats.textgrid import Word, read_textgrid, words_from_textgrid

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo():
    bundle = load_bundle(default_bundle_path())
    audio = load_audio(REPO / "examples" / "speech.wav")
    words = words_from_textgrid(read_textgrid(REPO / "examples" / "speech.TextGrid"))
    return bundle, audio, words


def _pose_at_word(demo, replacement: str) -> dict[str, float]:
    bundle, audio, words = demo
    i = next(k for k, w in enumerate(words) if w.text == "gigantic")
    w = words[i]
    swapped = words[:i] + [Word(w.start, w.end, replacement)] + words[i + 1:]
    motion = generate(bundle, audio, swapped, speaker=2, fps=15).motion
    pos = motion.positions()
    sk = motion.skeleton
    r, l, head = sk.index("RHand"), sk.index("LHand"), sk.index("Head")
    t = int(round((w.start + 0.4 * (w.end - w.start)) * 15))  # SynthBEAT strokes land at 40% of the word
    seg = slice(t - 3, t + 4)
    return {"separation": float(np.abs(pos[seg, r, 0] - pos[seg, l, 0]).max()),
            "height": float(max(pos[seg, r, 1].max(), pos[seg, l, 1].max()) - pos[seg, head, 1].mean())}


def test_demo_bundle_describes_itself():
    info = bundle_info(default_bundle_path())
    assert info["fps"] == 15.0 and len(info["speakers"]) == 4
    assert {"gigantic", "soar", "big", "tiny"} <= set(info["words"])
    assert info["audio"]["kind"] == "melonset", "the demo needs no downloaded weights"


def test_unseen_synonym_gets_the_big_family_gesture(demo):
    gigantic = _pose_at_word(demo, "gigantic")
    big = _pose_at_word(demo, "big")
    tiny = _pose_at_word(demo, "tiny")
    neutral = _pose_at_word(demo, "table")
    assert gigantic["separation"] > 100.0, gigantic   # arms spread: wrists over a metre apart
    assert abs(gigantic["separation"] - big["separation"]) < 25.0
    assert tiny["separation"] < 40.0 and neutral["separation"] < 80.0


def test_unseen_synonym_soar_gets_the_up_family_gesture(demo):
    """In GloVe "soar"'s nearest words are its antonyms ("plummet", "plunge"); the "up" family
    trains on four verbs (rise, climb, surge, skyrocket) so it is not outnumbered by "down"'s
    (demo v2 with two of them put "soar" 38 cm below the head)."""
    neutral = _pose_at_word(demo, "table")
    soar = _pose_at_word(demo, "soar")  # also held out, from the "up" family
    assert soar["height"] > 15.0 > neutral["height"], (soar, neutral)


@pytest.fixture(scope="module")
def example_motion(demo):
    bundle, audio, words = demo
    return generate(bundle, audio, words, speaker="ava", fps=15).motion


def test_example_output_moves_like_the_real_speaker(example_motion):
    """Issue 13's table: every row within [0.5, 2]x of the real speaker, both wrists near their
    median position at most 25% of the time (v1: 0.60, arms hanging at the sides)."""
    stats = motion_statistics(example_motion)
    rows = {r["key"]: r for r in compare(stats, REAL_SPEAKER)}
    missed = [s.key for s in STATISTICS if not rows[s.key]["in_range"]]
    assert not missed, {k: (round(rows[k]["generated"], 2), rows[k]["ratio"]) for k in missed}
    assert stats["wrists_at_rest_share"] <= 0.25


def test_example_output_uses_the_left_hand_enough(example_motion):
    """The non-dominant hand joins one-handed gestures in SynthBEAT v2.1 (a "support" copy tied to
    the gesture, not a random move the model averaged away): demo v2 had 0.52, v2.1 has 0.58."""
    ratio = motion_statistics(example_motion)["left_right_activity"] / REAL_SPEAKER["left_right_activity"]
    assert 0.5 <= ratio <= 2.0, ratio


def test_example_output_moves_torso_and_head(example_motion):
    """Torso, neck and head are generated: they move over the take (v1 kept them at ~0.1 deg/s)."""
    stats = motion_statistics(example_motion)
    for key in ("spine_speed", "neck_speed", "head_speed"):
        assert stats[key] >= 0.5 * REAL_SPEAKER[key], (key, stats[key])
    sk, q = example_motion.skeleton, example_motion.rotations
    for joint in ("Spine", "Neck", "Neck1"):  # the torso and head joints the model generates
        r = q[:, sk.index(joint)]
        from_mean = np.degrees(2 * np.arccos(np.clip(np.abs(r @ r.mean(0) / np.linalg.norm(r.mean(0))), 0, 1)))
        assert np.percentile(from_mean, 90) > 1.0, joint  # not a constant pose


def test_example_runs_without_seams(demo):
    bundle, audio, words = demo
    result = generate(bundle, audio, words, speaker="ava", fps=15)
    pos = result.motion.positions()
    step = np.linalg.norm(np.diff(pos, axis=0), axis=-1).max(axis=1)  # largest joint move per frame
    n = result.motion.n_frames
    border = sorted({s + k for s in window_starts(n, 34)[1:] for k in range(0, 4) if s + k < len(step)})
    inside = np.setdiff1d(np.arange(len(step)), border)
    # Moves across window overlaps are of the same size as moves inside windows.
    assert np.median(step[border]) <= 2.0 * np.median(step[inside]) + 0.5
    assert step[border].max() <= 1.5 * step[inside].max()
