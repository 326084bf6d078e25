"""The `semges` command line.

Each subcommand parses its options and calls one library function; errors a user
can act on (`SemgesError`) are printed as one line with a non-zero exit code,
never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

from semges_core.errors import SemgesError

EXIT_USER_ERROR = 1
EXIT_INTERRUPTED = 130


def _plugin_commands() -> dict[str, object]:
    """Subcommands other packages add (`semges.commands` entry points: training adds synth and evaluate).

    The library never imports the training code; training plugs into the command line.
    """
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group="semges.commands")}


def _cmd_plugin(args: argparse.Namespace, rest: list[str]) -> int:
    ep = _plugin_commands().get(args.command)
    if ep is None:
        raise SemgesError(f"`semges {args.command}` needs the training package (install SemGes with its "
                          "training code: pip install -e . from the repository)")
    return ep.load()(rest) or 0


def _cmd_preview(args: argparse.Namespace, rest: list[str]) -> int:
    from semges_core.formats.bvh import read_bvh
    from semges_core.evaluation.preview import render_frames_png, render_video
    from semges_core.formats.textgrid import read_textgrid, words_from_textgrid

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
    from semges_core.data.dataset import DatasetConfig, load_cache

    speakers = [int(s) for s in args.speakers.split(",")] if args.speakers else None
    config = DatasetConfig(speakers=speakers)
    t0 = time.perf_counter()
    cache = load_cache(args.root, args.cache_dir, config)
    print(f"cache ready in {args.cache_dir} ({time.perf_counter() - t0:.1f} s): {cache.summary()}")
    return 0


def _cmd_generate(args: argparse.Namespace, rest: list[str]) -> int:
    from tqdm import tqdm

    from semges_core.bundle import default_bundle_path
    from semges_core.formats.bvh import write_bvh
    from semges_core.formats.npz import save_motion_npz
    from semges_core.inference import generate
    from semges_core.runtime import load_model
    from semges_core.speech.audio import MIN_AUDIO_SECONDS, load_audio
    from semges_core.speech.transcripts import load_timed_transcript

    out = Path(args.out)
    if out.suffix.lower() != ".bvh":
        raise SemgesError(f"{out}: the output must be a .bvh file (an .npz is written beside it)")
    npz = Path(args.npz) if args.npz else out.with_suffix(".npz")
    model = Path(args.model) if args.model else default_bundle_path()
    t0 = time.perf_counter()
    runtime = load_model(model, args.runtime, args.device, args.precision, hubert_path=args.hubert)
    sr = runtime.header.audio_config.sample_rate
    audio = load_audio(args.audio, sr, min_seconds=MIN_AUDIO_SECONDS)
    timed = load_timed_transcript(args.transcript, audio=audio, sample_rate=sr, language=args.language)
    words = timed.words
    print(f"{args.transcript}: {timed.note}")  # which aligner placed the words
    duration = len(audio) / sr
    load_s = time.perf_counter() - t0
    with tqdm(total=100, desc="generating", unit="%", disable=args.quiet, dynamic_ncols=True,
              bar_format="{l_bar}{bar}| {postfix}") as bar:
        def progress(fraction: float, status: str) -> None:
            bar.n = int(round(100 * fraction))
            bar.set_postfix_str(status)
            bar.refresh()

        result = generate(runtime, audio, words, args.speaker, fps=args.fps, seed=args.seed, progress=progress,
                          variation=args.variation)
    t = time.perf_counter()
    euler = result.motion.euler_degrees()
    write_bvh(out, result.motion, euler=euler)
    save_motion_npz(npz, result.motion, euler=euler)
    write_s = time.perf_counter() - t
    total = time.perf_counter() - t0  # the preview is extra, not part of generation
    if args.preview:
        from semges_core.evaluation.preview import render_video

        render_video(result.motion, args.preview, fps=15, title=out.stem,
                     words=[(w.start, w.end, w.text) for w in words])
    if args.timings:
        stages = {"load inputs": load_s, **result.timings, "export": write_s}
        print(f"  runtime {result.runtime} on {runtime.device}: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))
    print(f"{out}: {duration:.1f} s of speech, {result.motion.n_frames} frames at {args.fps:g} fps, "
          f"{len(words)} words, {total:.1f} s (real-time factor {total / duration:.3f})"
          + (f"; preview {args.preview}" if args.preview else ""))
    return 0


def _cmd_info(args: argparse.Namespace, rest: list[str]) -> int:
    from semges_core.bundle import bundle_info, default_bundle_path

    path = Path(args.bundle) if args.bundle else default_bundle_path()
    meta = bundle_info(path)
    g, a = meta["generator"], meta["audio"]
    speakers = ", ".join(f"{s['id']} ({s['name']})" for s in meta["speakers"])
    print(f"{path}: SemGes model bundle, format {meta['format']}")
    print(f"  speakers: {speakers}")
    print(f"  frame rate: {meta['fps']:g} fps, window {meta['window']} frames")
    audio = a["kind"] + (f" ({a['hubert_path']})" if a["kind"] == "hubert" else f" ({a['n_mels']} mel bands + onset + loudness)")
    print(f"  audio features: {audio}, {g['audio_dim']} dims")
    print(f"  word vectors: {len(meta['words'])} words x {g['text_dim']} dims from {meta.get('text_vectors', '?')}")
    print(f"  generator: {g['layers']} fusion layers, width {g['hidden']}, {g['heads']} heads")
    for part in ("hand", "body"):
        v = meta[part]
        print(f"  {part} prior: codebook {v['codebook_size']} x {v['code_dim']}, width {v['width']}, "
              f"{2 ** v['down_t']} frame(s) per code")
    graphs = meta.get("graphs")
    print(f"  ONNX graphs: {'yes, opset ' + str(graphs.get('opset')) + ' (runs without torch)' if graphs else 'no (torch only; add them with semges convert)'}")
    training = meta.get("training", {})
    if training:
        print(f"  trained: {training.get('steps', '?')} steps on {meta.get('dataset', '?')}")
    return 0


def _cmd_convert(args: argparse.Namespace, rest: list[str]) -> int:
    from semges_core.bundle import convert_bundle

    t0 = time.perf_counter()
    out = convert_bundle(args.bundle, args.out, hubert_path=args.hubert)
    print(f"wrote {out} with ONNX graphs ({out.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.0f} s); "
          "it now runs without torch")
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
    p.set_defaults(func=_cmd_plugin, passthrough=True)

    p = sub.add_parser(
        "evaluate",
        help="score model bundles on a dataset's test split (FGD, BC, Diversity, SRGR)",
        description="Options are those of `python -m training.evaluate --help`.",
        add_help=False,
    )
    p.set_defaults(func=_cmd_plugin, passthrough=True)

    p = sub.add_parser("generate", help="gestures for a speech recording and its transcript")
    p.add_argument("--audio", required=True, help="speech: wav, flac, ogg or mp3, any rate, mono or stereo")
    p.add_argument("--transcript", required=True,
                   help="what is said: .TextGrid, .srt, .vtt, .json (timed words) or plain text (aligned automatically)")
    p.add_argument("--out", required=True, help="output .bvh (BEAT skeleton); an .npz of rotations is written beside it")
    p.add_argument("--npz", help="where to write the .npz (default: beside the .bvh)")
    p.add_argument("--model", help="model bundle (default: the bundled demo model)")
    p.add_argument("--speaker", help="speaker id or name from the model (see `semges info`)")
    p.add_argument("--fps", type=float, default=30.0, help="output frame rate (default 30)")
    p.add_argument("--runtime", default="auto", choices=("auto", "onnx", "torch"),
                   help="auto: ONNX Runtime when the bundle carries graphs (no torch needed), else torch")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="auto: a CUDA GPU when the runtime has one")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"),
                   help="torch on CUDA only: auto uses bf16 where supported")
    p.add_argument("--seed", type=int, default=0, help="which variant, when --variation is above 0")
    p.add_argument("--variation", type=float, default=0.0,
                   help="0 (default): the model's most likely gestures; 0.1-1: sample other plausible ones, "
                        "a different variant per --seed")
    p.add_argument("--hubert", help="local HuBERT directory for bundles that use HuBERT features")
    p.add_argument("--language", default="en",
                   help="language of the transcript, e.g. en, en-GB, de (default en): English plain text and "
                        "subtitles are force-aligned, other languages placed by the energy aligner")
    p.add_argument("--preview", help="also render a stick-figure .gif of the result")
    p.add_argument("--timings", action="store_true", help="print the time of each stage")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("info", help="what a model bundle holds")
    p.add_argument("bundle", nargs="?", help="model bundle (default: the bundled demo model)")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("convert", help="add ONNX graphs to a bundle so it runs without torch (needs torch)")
    p.add_argument("bundle", help="model bundle to convert")
    p.add_argument("--out", help="where to write the converted bundle (default: replace the input)")
    p.add_argument("--hubert", help="local HuBERT directory, for bundles that use HuBERT features")
    p.set_defaults(func=_cmd_convert)

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

    from semges_core.speech.align_command import add_parser as add_align_parser

    add_align_parser(sub)

    from semges_core.evaluation.stats_command import add_parser as add_stats_parser

    add_stats_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line, like the errors (Python's default shows the source line that warned)."""
    print(f"semges: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Subcommands that forward their options to another tool's parser.
    if argv and argv[0] in ("synth", "evaluate"):
        args, rest = parser.parse_args(argv[:1]), argv[1:]
    else:
        args, rest = parser.parse_args(argv), []
    func: Callable[[argparse.Namespace, list[str]], int] = args.func
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return func(args, rest)
    except SemgesError as e:
        print(f"semges: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("semges: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
