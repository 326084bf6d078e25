"""Export a trained generator (with its priors) as a model bundle for inference.

    python -m training.export_bundle --config configs/synthbeat_small.toml --out model.safetensors

takes the latest stage-2 checkpoint; `train_stage2` calls `export_bundle` itself at the end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semges_core.bundle import save_bundle
from semges_core.data.dataset import Cache
from semges_core.errors import SemgesError
from semges_core.model.generator import SemGesGenerator
from semges_core.formats.tensor_files import load_state, load_tensors, strip_prefix
from semges_core.speech.word_vectors import WordVectors, bake_vocabulary

from .config import TrainConfig, config_to_dict, load_config


def export_bundle(generator: SemGesGenerator, config: TrainConfig, cache: Cache, vectors: WordVectors,
                  out: str | Path, training: dict | None = None) -> Path:
    words = bake_vocabulary(vectors, config.stage2.text.bundle_vocabulary, cache.vocab)
    speakers = [{"id": i, "name": n} for i, n in zip(cache.speaker_ids, cache.speaker_names)]
    save_bundle(out, generator, config.stage2.audio, words, cache.stats["rot6d"], speakers,
                cache.config.fps, cache.config.window,
                extra={"text_vectors": config.stage2.text.vectors, "config": config_to_dict(config),
                       "training": training or {}, "dataset": str(config.data.root)},
                graphs=config.stage2.export_onnx)
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    from . import runtime
    from .checkpoint import latest_checkpoint
    from .stage1 import open_dataset
    from .stage2 import Stage2

    parser = argparse.ArgumentParser(description="Export the latest stage-2 checkpoint as a model bundle.")
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", required=True, help="bundle file to write (.safetensors)")
    args = parser.parse_args(argv)
    try:
        config: TrainConfig = load_config(args.config, args.set)
        rt = runtime.start("cpu", amp=False)
        cache = open_dataset(config, rt)
        st = Stage2(config, cache, rt)
        ckpt = latest_checkpoint(Path(config.stage2.out) / "checkpoints")
        if ckpt is None:
            raise SemgesError(f"{config.stage2.out}: no stage-2 checkpoint to export")
        tensors, _ = load_tensors(ckpt)
        load_state(st.generator, strip_prefix("model.generator.", tensors), ckpt, "generator")
        export_bundle(st.generator, config, cache, st.vectors, args.out, training={"checkpoint": str(ckpt)})
        print(f"wrote {args.out}")
    except SemgesError as e:
        print(f"export_bundle: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
