"""Generation in a worker process (real subprocesses, a tiny random model): progress lines, the
result .npz, one-line errors, cancelling, a crashing runtime, and which Python runs it."""

from __future__ import annotations

import os
import stat
import sys
import time

import numpy as np
import pytest

from semges_blender.errors import RuntimeNotFound, WorkerError
from semges_blender.source import SourceMotion
from semges_blender.worker import GenerationJob, GenerationRequest, check_python, generate_motion_file, resolve_python
from test_blender_common import EXAMPLE_TG, EXAMPLE_WAV


def request(tmp_path, bundle, **kw) -> GenerationRequest:
    args = dict(audio=str(EXAMPLE_WAV), transcript=str(EXAMPLE_TG), out=str(tmp_path / "motion.npz"),
                model=str(bundle), speaker="ben", device="cpu", seed=1, fps=24.0)
    args.update(kw)
    return GenerationRequest(**args)


def test_worker_generates_with_progress(tmp_path, tiny_bundle):  # noqa: F811
    seen = []
    job = GenerationJob(request(tmp_path, tiny_bundle), sys.executable).start()
    result = job.wait(timeout=120, on_progress=lambda p, s: seen.append((p, s)))
    motion = SourceMotion.from_npz(result["out"])
    assert result["fps"] == 24.0 and motion.fps == 24.0 and motion.n_frames == result["frames"]
    assert abs(motion.n_frames / 24.0 - result["audio_seconds"]) < 0.2
    progress = [p for p, _ in seen]
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(seen) >= 2
    statuses = [e["status"] for e in job.state.events if "status" in e]
    assert any(s.startswith("generating window") for s in statuses) and len(statuses) >= 5
    assert np.isfinite(motion.rotations).all()


def test_worker_error_is_one_clear_message(tmp_path, tiny_bundle):  # noqa: F811
    with pytest.raises(WorkerError) as e:
        generate_motion_file(request(tmp_path, tiny_bundle, audio=str(tmp_path / "missing.wav")), sys.executable,
                             timeout=120)
    msg = str(e.value)
    assert "missing.wav" in msg and "\n" not in msg and "Traceback" not in msg
    with pytest.raises(WorkerError, match="unknown speaker 'zed'"):
        generate_motion_file(request(tmp_path, tiny_bundle, speaker="zed"), sys.executable, timeout=120)
    assert not (tmp_path / "motion.npz").exists()


def test_text_block_transcript(tmp_path, tiny_bundle):  # noqa: F811
    """A Blender text block's text travels as a file plus the block's name (which picks the format)."""
    text = tmp_path / "block.txt"
    text.write_text(EXAMPLE_TG.read_text(encoding="utf-8"), encoding="utf-8")
    result = generate_motion_file(request(tmp_path, tiny_bundle, transcript=str(text),
                                          transcript_label="speech.TextGrid"), sys.executable, timeout=120)
    assert result["words"] > 10
    assert result["alignment"] == f"{result['words']} words timed as written in speech.TextGrid"


def test_plain_text_result_says_which_aligner_ran(tmp_path, tiny_bundle):  # noqa: F811
    """The worker's result carries the aligner's line for Blender's report, as `semges generate` prints it."""
    pytest.importorskip("pocketsphinx")
    text = EXAMPLE_WAV.with_suffix(".txt")
    english = generate_motion_file(request(tmp_path, tiny_bundle, transcript=str(text)), sys.executable, timeout=120)
    assert english["alignment"] == f"aligned {english['words']} words with pocketsphinx forced alignment"
    assert english["warnings"] == []
    german = generate_motion_file(request(tmp_path, tiny_bundle, transcript=str(text), language="de"),
                                  sys.executable, timeout=120)
    assert german["alignment"] == (f"aligned {german['words']} words with the energy aligner (no phonetic model "
                                   "for language 'de'; words placed by speech energy only)")


def test_cancel_terminates_the_worker(tmp_path, tiny_bundle):  # noqa: F811
    job = GenerationJob(request(tmp_path, tiny_bundle), sys.executable).start()
    time.sleep(0.3)
    job.cancel()
    assert job.process.poll() is not None
    state = job.poll()
    assert state.cancelled and state.result is None
    assert not (tmp_path / "motion.npz").exists()
    with pytest.raises(WorkerError, match="cancelled"):
        job.wait()


def fake_python(tmp_path, body: str):
    path = tmp_path / "fake_python"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.mark.skipif(os.name != "posix", reason="uses a shell script as a fake interpreter")
def test_a_crashing_runtime_does_not_take_the_caller_down(tmp_path, tiny_bundle):  # noqa: F811
    crash = fake_python(tmp_path, 'echo \'{"progress": 0.1, "status": "loading"}\'\n'
                                  'echo "Fatal Python error: Segmentation fault" >&2\nkill -SEGV $$')
    job = GenerationJob(request(tmp_path, tiny_bundle), crash).start()
    with pytest.raises(WorkerError) as e:
        job.wait(timeout=30)
    assert "SIGSEGV" in str(e.value) and "Segmentation fault" in str(e.value)
    assert job.state.progress == 0.1


@pytest.mark.skipif(os.name != "posix", reason="uses a shell script as a fake interpreter")
def test_python_resolution(tmp_path, tiny_bundle):  # noqa: F811
    """Blender's own interpreter by default; a configured one is used as it is, checked only by
    whether the file exists (no process on the main thread): what it lacks, its worker says."""
    assert resolve_python("") == sys.executable
    with pytest.raises(RuntimeNotFound, match="no such file"):
        resolve_python(str(tmp_path / "nope" / "python3"))
    no_numpy = fake_python(tmp_path, "echo \"ModuleNotFoundError: No module named 'numpy'\" >&2; exit 1")
    assert resolve_python(no_numpy) == no_numpy
    with pytest.raises(WorkerError, match="No module named 'numpy'"):
        generate_motion_file(request(tmp_path, tiny_bundle), no_numpy, timeout=30)
    assert resolve_python(sys.executable) == sys.executable


def test_check_python_names_the_runtime(tmp_path):
    ok, runtime = check_python(sys.executable, refresh=True)
    assert ok and runtime == "onnx"  # this venv has both; the bundled runtime comes first
    ok, why = check_python(str(tmp_path / "missing"), refresh=True)
    assert not ok and "no such file" in why


def test_worker_runs_onnx_by_default_and_torch_when_asked(tmp_path, tiny_bundle):  # noqa: F811
    onnx = generate_motion_file(request(tmp_path, tiny_bundle, out=str(tmp_path / "a.npz")), sys.executable,
                                timeout=120)
    torch = generate_motion_file(request(tmp_path, tiny_bundle, out=str(tmp_path / "b.npz"), runtime="torch"),
                                 sys.executable, timeout=120)
    assert onnx["runtime"] == "onnx" and torch["runtime"] == "torch"
    a, b = SourceMotion.from_npz(onnx["out"]), SourceMotion.from_npz(torch["out"])
    assert a.rotations.shape == b.rotations.shape
