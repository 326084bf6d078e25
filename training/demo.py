"""Rebuild everything the repository ships for the demo, with one command:

    python -m training.demo            # SynthBEAT -> stage 1 -> stage 2 -> bundle, plus the example speech

1. SynthBEAT (default size, seed 0) into data/synthbeat;
2. both stages with configs/synthbeat_small.toml;
3. the bundle copied to semges_core/assets/demo_model.safetensors;
4. examples/speech.{wav,TextGrid,txt}: espeak-ng speech with exact word times.

The demo model is a demonstration trained on synthetic motion, not on BEAT.
`--examples-only` rewrites only the example speech.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from semges_core.speech.audio import write_wav
from semges_core.bundle import DEMO_BUNDLE
from semges_core.errors import SemgesError
from semges_core.fileio import atomic_write
from semges_core.formats.textgrid import write_textgrid

from .config import load_config
from .synthbeat.generate import SPEAKER_PRESETS, SynthConfig, generate, word_textgrid
from .synthbeat.speech import synthesize_speech

CONFIG = Path("configs/synthbeat_small.toml")
EXAMPLES = Path("examples")

# Keywords from every family; "gigantic", "soar" and "ponder" are held-out synonyms the
# demo model never heard in training.
EXAMPLE_SENTENCES = [
    "hello everyone and thank you for coming today",
    "I want to tell you about a gigantic idea",
    "the market will soar and prices will rise",
    "but small companies may fall behind over there",
    "so ponder this before you say no",
    "all of us can make it work together",
]


def make_examples(out_dir: Path = EXAMPLES) -> Path:
    style = SPEAKER_PRESETS[0]
    audio, words = synthesize_speech([s.split() for s in EXAMPLE_SENTENCES], style, seed=0)
    duration = len(audio) / 16000
    out_dir.mkdir(parents=True, exist_ok=True)
    write_wav(out_dir / "speech.wav", audio, 16000)
    write_textgrid(out_dir / "speech.TextGrid", word_textgrid(words, duration))
    with atomic_write(out_dir / "speech.txt") as f:
        f.write("\n".join(s.capitalize() + "." for s in EXAMPLE_SENTENCES) + "\n")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    from .stage1 import train_stage1
    from .stage2 import train_stage2

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples-only", action="store_true")
    parser.add_argument("--config", default=str(CONFIG))
    args = parser.parse_args(argv)
    try:
        make_examples()
        print(f"wrote {EXAMPLES}/speech.wav, .TextGrid and .txt")
        if args.examples_only:
            return 0
        config = load_config(args.config)
        t0 = time.perf_counter()
        generate(SynthConfig(root=Path(config.data.root), seed=0))
        train_stage1(config)
        bundle = train_stage2(config)
        DEMO_BUNDLE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundle, DEMO_BUNDLE)
        print(f"demo model: {DEMO_BUNDLE} ({DEMO_BUNDLE.stat().st_size / 1e6:.1f} MB) "
              f"in {(time.perf_counter() - t0) / 60:.1f} min")
    except SemgesError as e:
        print(f"demo: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
