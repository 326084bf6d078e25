"""The `semges` command line.

Each subcommand parses its options and calls one library function; errors a user
can act on (`SemgesError`) are printed as one line with a non-zero exit code,
never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from .errors import SemgesError

EXIT_USER_ERROR = 1
EXIT_INTERRUPTED = 130


def _cmd_synth(args: argparse.Namespace, rest: list[str]) -> int:
    # SynthBEAT is a data tool that lives with the training code; import it only here.
    from training.synthbeat.generate import main as synth_main

    return synth_main(rest) or 0


def _cmd_preview(args: argparse.Namespace, rest: list[str]) -> int:
    from .bvh import read_bvh
    from .preview import render_frames_png, render_video
    from .textgrid import read_textgrid, words_from_textgrid

    bvh = Path(args.bvh)
    motion = read_bvh(bvh)
    transcript = Path(args.transcript) if args.transcript else bvh.with_suffix(".TextGrid")
    words = None
    if transcript.exists():
        words = [(w.start, w.end, w.text) for w in words_from_textgrid(read_textgrid(transcript), path=transcript)]
    elif args.transcript:
        raise SemgesError(f"{transcript}: transcript not found")
    t0 = time.perf_counter()
    render_video(motion, args.out, fps=args.fps, title=bvh.stem, words=words)
    print(f"wrote {args.out} ({motion.duration:.1f} s of motion, {time.perf_counter() - t0:.1f} s to render)")
    if args.png:
        render_frames_png(motion, args.png, title=bvh.stem)
        print(f"wrote {args.png}")
    return 0


def _cmd_cache(args: argparse.Namespace, rest: list[str]) -> int:
    from .dataset import DatasetConfig, load_cache

    speakers = [int(s) for s in args.speakers.split(",")] if args.speakers else None
    config = DatasetConfig(speakers=speakers)
    t0 = time.perf_counter()
    cache = load_cache(args.root, args.cache_dir, config)
    print(f"cache ready in {args.cache_dir} ({time.perf_counter() - t0:.1f} s): {cache.summary()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semges", description="SemGes co-speech gesture generation.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "synth",
        help="generate SynthBEAT, a synthetic dataset in BEAT's format",
        description="Options are those of `python -m training.synthbeat.generate --help`.",
        add_help=False,
    )
    p.set_defaults(func=_cmd_synth, passthrough=True)

    p = sub.add_parser("preview", help="render a BVH take as a stick-figure animation")
    p.add_argument("bvh", help="a BVH file (BEAT skeleton or any other)")
    p.add_argument("--out", required=True, help="output .gif (or .mp4 when ffmpeg is installed)")
    p.add_argument("--png", help="also write a contact sheet of poses to this .png")
    p.add_argument("--transcript", help="TextGrid whose words are shown (default: the BVH's sibling)")
    p.add_argument("--fps", type=int, default=15, help="frame rate of the preview (default 15)")
    p.set_defaults(func=_cmd_preview)

    p = sub.add_parser("cache", help="index a BEAT-format dataset and build its training-window cache")
    p.add_argument("root", help="dataset root (BEAT or SynthBEAT)")
    p.add_argument("--cache-dir", required=True, help="where the cache is written")
    p.add_argument("--speakers", help="comma-separated speaker ids (default: all)")
    p.set_defaults(func=_cmd_cache)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Subcommands that forward their options to another tool's parser.
    if argv and argv[0] == "synth":
        args, rest = parser.parse_args(argv[:1]), argv[1:]
    else:
        args, rest = parser.parse_args(argv), []
    func: Callable[[argparse.Namespace, list[str]], int] = args.func
    try:
        return func(args, rest)
    except SemgesError as e:
        print(f"semges: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("semges: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
