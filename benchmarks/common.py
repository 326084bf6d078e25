"""What every benchmark shares: the long input, the paper-size model, machine facts, result files.

The benchmarks are scripts, not tests: they print numbers and write them to
`benchmarks/results/<name>.{json,md}` so a change in speed is visible in a diff.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# Where result files go; run_all --quick points it elsewhere so smoke runs never overwrite real numbers.
RESULTS = Path(os.environ.get("SEMGES_BENCHMARK_RESULTS") or REPO / "benchmarks" / "results")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from semges_core.formats.textgrid import Word  # noqa: E402


def long_input(seconds: float, tmp: Path) -> tuple[Path, list[Word]]:
    """The example speech repeated to `seconds` (a real 16 kHz wav), with its words shifted along."""
    from semges_core.speech.audio import load_audio, write_wav
    from semges_core.formats.textgrid import read_textgrid, words_from_textgrid

    audio = load_audio(REPO / "examples" / "speech.wav")
    words = words_from_textgrid(read_textgrid(REPO / "examples" / "speech.TextGrid"))
    period = len(audio) / 16000
    reps = int(np.ceil(seconds / period))
    wav = np.tile(audio, reps)[: int(seconds * 16000)]
    all_words = [Word(w.start + k * period, w.end + k * period, w.text) for k in range(reps) for w in words
                 if w.end + k * period <= seconds]
    path = tmp / f"input_{seconds:g}s.wav"
    write_wav(path, wav, 16000)
    return path, all_words


def random_hubert_base(directory: Path) -> Path:
    """A HuBERT-base-sized model with random weights: costs what the real one costs to run."""
    import torch
    from transformers import HubertConfig, HubertModel

    if not (directory / "config.json").exists():
        torch.manual_seed(0)
        HubertModel(HubertConfig()).save_pretrained(directory)
    return directory


def paper_bundle(tmp: Path) -> Path:
    """A paper-size bundle (12 x 256 fusion, 256 x 512 codebooks, HuBERT base) with random weights."""
    import torch

    from semges_core.speech.features import AudioFeatureConfig
    from semges_core.bundle import save_bundle
    from semges_core.model.generator import GeneratorConfig, SemGesGenerator
    from semges_core.model.vqvae import MotionVQVAE, VQVAEConfig
    from semges_core.motion.normalization import NormStats
    from semges_core.speech.word_vectors import TableVectors

    hubert = random_hubert_base(tmp / "hubert-base-random")
    torch.manual_seed(0)
    gen = SemGesGenerator(GeneratorConfig(audio_dim=768, text_dim=300, n_speakers=4),
                          MotionVQVAE(VQVAEConfig(input_dim=228)), MotionVQVAE(VQVAEConfig(input_dim=54)))
    words = TableVectors([f"w{i}" for i in range(1000)], np.random.default_rng(0).normal(size=(1000, 300)))
    path = tmp / "paper.safetensors"
    save_bundle(path, gen, AudioFeatureConfig(kind="hubert", hubert_path=str(hubert)), words,
                NormStats(np.zeros(282), np.ones(282)), [{"id": i, "name": f"s{i}"} for i in (2, 4, 6, 8)], 15.0, 34)
    return path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def machine(device: str = "cpu") -> dict:
    """The facts a reader needs to compare numbers: CPU, cores, memory, library versions, GPU."""
    import torch

    info = {"cpu": _cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "memory_gib": round(_memory_gib() or 0.0, 1), "python": platform.python_version(),
            "torch": torch.__version__, "os": platform.platform(terse=True), "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def machine_line(info: dict) -> str:
    gpu = f", GPU {info['gpu']}" if "gpu" in info else ""
    return (f"{info['cpu']}, {info['cores']} cores ({info['torch_threads']} torch threads), "
            f"{info['memory_gib']:g} GiB, Python {info['python']}, torch {info['torch']}, device {info['device']}{gpu}")


def reset_peak_rss() -> bool:
    """Make the kernel's peak-RSS counter (VmHWM) start again from now; False where it cannot."""
    try:
        Path(f"/proc/{os.getpid()}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_mib(field: str) -> float | None:
    """A memory line of /proc/self/status (Linux), in MiB."""
    try:
        for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    """Peak resident memory of this process (since start, or since `reset_peak_rss`)."""
    peak = _status_mib("VmHWM")
    if peak is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak


def rss_mib() -> float:
    rss = _status_mib("VmRSS")
    return float("nan") if rss is None else rss


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def write_result(name: str, data: dict, text: str) -> None:
    """benchmarks/results/<name>.json (numbers) and .md (the table a person reads)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(text.rstrip() + "\n")
