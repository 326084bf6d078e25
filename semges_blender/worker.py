"""Running `semges_blender.runner` in a separate process and following it (no bpy, no torch).

`GenerationJob` starts the runner with `subprocess.Popen`, reads its JSON progress
lines on a thread, and is polled (the operator's timer) or waited for (background
mode, batch). Cancelling terminates the process. Whatever goes wrong comes back as
one `WorkerError` message: the runner's own error line, or, when the process died
(out of memory, a crash in a native library), its exit status and the last line it wrote.

Which Python runs it (`resolve_python`): an external Python configured by the user
(the add-on preference: for torch, CUDA or HuBERT bundles) when there is one, else
Blender's own interpreter (`sys.executable`), which runs the bundled model with the
ONNX Runtime wheel the extension ships. Nothing is checked synchronously here: a
Python that cannot run the generator says so through the worker's own error line.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RuntimeNotFound, WorkerError

CHECK_CODE = ("import numpy, semges_core.inference, semges_core.runtime.model as m; "
              "print('onnx' if m._has('onnxruntime') else ('torch' if m._has('torch') else 'none'))")
_checked: dict[str, tuple[bool, str]] = {}


def package_paths() -> list[str]:
    """Folders holding the semges_blender and semges_core packages (the worker's PYTHONPATH)."""
    here = Path(__file__).resolve().parent.parent
    paths = [str(here)]
    spec = importlib.util.find_spec("semges_core")
    if spec is not None and spec.origin:
        core = str(Path(spec.origin).resolve().parent.parent)
        if core not in paths:
            paths.append(core)
    return paths


def _own_python(python: str) -> bool:
    try:
        return Path(python).resolve() == Path(sys.executable).resolve()
    except OSError:
        return False


def worker_env(python: str = "") -> dict[str, str]:
    """The worker's environment: our packages on PYTHONPATH; for Blender's own interpreter, all of
    Blender's import path too (the extension's wheels, onnxruntime among them, live in a
    site-packages folder Blender adds at start-up, which a child interpreter would not know)."""
    env = dict(os.environ)
    extra = package_paths()
    if not python or _own_python(python):
        extra += [p for p in sys.path if p and p not in extra and os.path.isdir(p)]
    if env.get("PYTHONPATH"):
        extra.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(extra)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONNOUSERSITE"] = "1"  # the user's own site-packages must not shadow Blender's numpy
    env.setdefault("MPLBACKEND", "Agg")
    return env


def check_python(python: str, timeout: float = 120.0, refresh: bool = False) -> tuple[bool, str]:
    """Whether `python` can run the generator (cached unless `refresh`); (ok, runtime or reason).

    Starts a process and waits for it: call it from a thread (the Check Runtime operator
    does), never on Blender's main thread.
    """
    if python in _checked and not refresh:
        return _checked[python]
    if not Path(python).is_file():
        result = (False, f"{python}: no such file")
    else:
        try:
            out = subprocess.run([python, "-c", CHECK_CODE], env=worker_env(python), capture_output=True,
                                 text=True, timeout=timeout)
            lines = (out.stderr or out.stdout).strip().splitlines()
            answer = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
            ok = out.returncode == 0 and answer in ("onnx", "torch")
            if ok:
                result = (True, answer)
            elif out.returncode == 0:
                result = (False, "it has neither onnxruntime nor torch")
            else:
                result = (False, lines[-1] if lines else f"exit status {out.returncode}")
        except (OSError, subprocess.TimeoutExpired) as e:
            result = (False, f"{python}: {e}")
    _checked[python] = result
    return result


def blender_python_has_runtime() -> bool:
    """Blender's own interpreter can import a model runtime (a module lookup, no import, no process)."""
    return importlib.util.find_spec("numpy") is not None and any(
        importlib.util.find_spec(m) is not None for m in ("onnxruntime", "torch"))


def resolve_python(configured: str = "") -> str:
    """The interpreter for the worker: the configured external one, else Blender's own."""
    configured = (configured or "").strip()
    if configured and not Path(configured).is_file():  # a file test, not a process: cheap on the main thread
        raise RuntimeNotFound(f"the external Python set in the SemGes preferences does not exist: {configured}: "
                              "no such file (clear the setting to use Blender's own Python)")
    return configured or sys.executable


@dataclass
class GenerationRequest:
    audio: str
    transcript: str
    out: str
    model: str = ""
    speaker: str = ""
    device: str = "auto"
    seed: int = 0
    variation: float = 0.0
    fps: float = 30.0
    precision: str = "auto"
    runtime: str = "auto"
    transcript_label: str = ""  # set when `transcript` holds a text block's text
    language: str = "en"        # of the transcript: "en" is force-aligned, others placed by the energy aligner

    def argv(self) -> list[str]:
        args = ["--audio", str(self.audio), "--transcript", str(self.transcript), "--out", str(self.out),
                "--device", self.device, "--seed", str(int(self.seed)),
                "--variation", repr(float(self.variation)), "--fps", repr(float(self.fps)),
                "--precision", self.precision, "--runtime", self.runtime]
        if self.model:
            args += ["--model", str(self.model)]
        if str(self.speaker).strip():
            args += ["--speaker", str(self.speaker).strip()]
        if self.transcript_label:
            args += ["--transcript-label", self.transcript_label]
        if self.language and self.language != "en":
            args += ["--language", self.language]
        return args


@dataclass
class JobState:
    progress: float = 0.0
    status: str = "starting"
    result: dict | None = None
    error: str | None = None
    cancelled: bool = False
    events: list[dict] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None or self.cancelled


class GenerationJob:
    def __init__(self, request: GenerationRequest, python: str) -> None:
        self.request = request
        self.python = python
        self.state = JobState()
        self.process: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self._stderr: collections.deque = collections.deque(maxlen=40)
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> GenerationJob:
        cmd = [self.python, "-m", "semges_blender.runner", *self.request.argv()]
        try:
            self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                            text=True, encoding="utf-8", errors="replace", bufsize=1,
                                            env=worker_env(self.python))
        except OSError as e:
            raise WorkerError(f"cannot start the generator with {self.python}: {e}") from None
        for stream, sink in ((self.process.stdout, self._lines.put), (self.process.stderr, self._stderr.append)):
            t = threading.Thread(target=_pump, args=(stream, sink), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def poll(self) -> JobState:
        """Take in what the worker said since the last poll; never blocks."""
        s = self.state
        if s.finished:
            return s
        self._drain()
        if not s.finished and self.process is not None and self.process.poll() is not None:
            for t in self._threads:  # the pipes close right after the exit: read the last lines
                t.join(timeout=5)
            self._drain()
            if not s.finished:
                s.error = self._death_message(self.process.returncode)
        return s

    def _drain(self) -> None:
        s = self.state
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                self._stderr.append(line)
                continue
            if not isinstance(msg, dict):
                continue
            s.events.append(msg)
            if "progress" in msg:
                s.progress = float(msg["progress"])
                s.status = str(msg.get("status", s.status))
            if msg.get("error"):
                s.error = str(msg["error"])
            elif msg.get("done"):
                s.result = msg
                s.progress, s.status = 1.0, "done"

    def _death_message(self, code: int) -> str:
        last = next((ln.strip() for ln in reversed(self._stderr) if ln.strip()), "")
        if code is not None and code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with status {code} without a result"
        return f"the generator process {how}; Blender is unaffected" + (f" (last output: {last})" if last else "")

    def cancel(self) -> None:
        """Stop the worker (terminate, then kill) and remove any output; the job ends cancelled."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=3)
        if self.state.result is None:
            self.state.cancelled = True
            self.state.status = "cancelled"
            Path(self.request.out).unlink(missing_ok=True)

    def wait(self, timeout: float | None = None, on_progress=None, interval: float = 0.05) -> dict:
        """Block until the worker ends (background mode, batch); its result, or WorkerError."""
        t0 = time.monotonic()
        last = None
        while True:
            s = self.poll()
            if on_progress is not None and (s.progress, s.status) != last:
                last = (s.progress, s.status)
                on_progress(s.progress, s.status)
            if s.finished:
                break
            if timeout is not None and time.monotonic() - t0 > timeout:
                self.cancel()
                raise WorkerError(f"generation took longer than {timeout:g} s and was stopped")
            time.sleep(interval)
        if s.error:
            raise WorkerError(s.error)
        if s.cancelled:
            raise WorkerError("generation was cancelled")
        return s.result


def _pump(stream, sink) -> None:
    try:
        for line in stream:
            sink(line.rstrip("\n"))
    finally:
        stream.close()


def generate_motion_file(request: GenerationRequest, python: str, timeout: float | None = None,
                         on_progress=None) -> dict:
    """Run the worker to the end (synchronously) and return its result line."""
    return GenerationJob(request, python).start().wait(timeout=timeout, on_progress=on_progress)
