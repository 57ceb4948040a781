"""The ``tia2v`` command line: synth, prepare, train, generate, sample, eval, download, serve.

Bad input ends in one line naming the file and the problem, exit code 2; an internal error
exits 1. ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from pathlib import Path

from tia2v.config import PRESETS, ExperimentConfig, resolve_config, to_yaml
from tia2v.errors import InputError, TrainingError

logger = logging.getLogger("tia2v")

SYNTH_EXAMPLE = """example:
  tia2v synth data/toy --train 512 --test 64 --seed 0
writes data/toy/{train,test}/{mp4,wav,txt,meta}/<id>.* (16 frames at 8 fps, 64x64, audio 16 kHz)"""

PREPARE_EXAMPLE = """examples:
  tia2v prepare data/toy --check                       # validate every clip, report all problems
  tia2v prepare data/toy --config demo                 # write the embedding cache for this config
  tia2v prepare data/toy --config demo                 # write the embedding cache for this config
  tia2v prepare datasets/post_URMP --check --config paper-urmp"""

TRAIN_EXAMPLE = f"""examples:
  tia2v train content --config tiny --set data.root=data/toy --dry-run
  tia2v train motion --config demo --set train.init_from=runs/demo-content
  tia2v train refiner --config demo --set train.run_dir=runs/demo-refiner
  tia2v train distill --config checkpoints/demo/config.yaml \
      --set distill.teacher=checkpoints/demo --set train.run_dir=runs/demo-student
presets: {", ".join(PRESETS)}"""


GENERATE_EXAMPLE = """example:
  tia2v generate --text "a red circle moving left on a blue background" \\
      --image examples/first.png --audio examples/beats.wav -o out/demo.mp4
  (model: checkpoints/demo; 25 DPM-Solver++ steps; writes out/demo.mp4 with the audio muxed
   and out/demo.json with every setting)"""

SAMPLE_EXAMPLE = """example:
  tia2v sample --model runs/demo-motion/model --data data/toy --num 48 -o out/samples
writes out/samples/{real,fake,audio,txt}/<id>.* (+ meta/ for toy-VAT): what tia2v eval reads"""


CONVERT_EXAMPLE = """example:
  tia2v convert-original --content model420000.pt --config paper-urmp \\
      --set encoders.text_path=clip-vit-large-patch14 \\
      --set encoders.image_path=clip-vit-large-patch14 -o models/original-content
writes a model folder (config.yaml, content.safetensors, model card with the source's sha256)
and prints what happened to every key"""

SERVE_EXAMPLE = """example:
  tia2v serve --model checkpoints/demo --port 7860 --concurrency 2
then open http://127.0.0.1:7860 (needs pip install 'tia2v[serve]'; --host 0.0.0.0 to share)"""

EVAL_EXAMPLE = """examples:
  tia2v eval --real out/samples/real --fake out/samples/fake -o out/report.json --plot out/plots
  tia2v eval --real R --fake F --i3d i3d_torchscript.pt --inception inception-2015-12-05.pt \\
      --clip openai/clip-vit-base-patch32 -o report.json
writes report.json and report.md; metrics without their network say what to download"""


DEVICE_HELP = "cpu, cuda, cuda:1, ... (default: cuda if available)"


def _download_example() -> str:
    from tia2v.assets import ASSETS

    rows = "\n".join(f"  {name:<10} {asset.what}" for name, asset in ASSETS.items())
    return f"""files:
{rows}
examples:
  tia2v download beats clip            # the paper presets' encoders, found from any folder
  tia2v download i3d inception clip-b32 --to /data/weights
writes into $TIA2V_HOME (default ~/.cache/tia2v) and prints the flag that uses each file"""


def _add_sampling_args(parser: argparse.ArgumentParser) -> None:
    from tia2v.sampling.registry import SAMPLERS

    parser.add_argument(
        "--model", default="checkpoints/demo", help="model folder (default checkpoints/demo)"
    )
    parser.add_argument("--steps", type=int, help="sampler steps (default: the model config's)")
    parser.add_argument("--sampler", choices=list(SAMPLERS), help="default: the model config's")
    parser.add_argument("--guidance-text", type=float)
    parser.add_argument("--guidance-image", type=float)
    parser.add_argument("--guidance-audio", type=float)
    parser.add_argument(
        "--guidance-min-noise", type=float, help="no guidance below t = this·T (model default)"
    )
    parser.add_argument(
        "--eta", type=float, help="fresh noise per ddim / dpm++ step, 0: ODE (model default)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help=DEVICE_HELP)


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help=f"preset ({', '.join(PRESETS)}) or YAML file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.lr=2e-4 (repeatable)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tia2v", description="Text + image + audio to video diffusion."
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=example,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    synth = add(
        "synth",
        "Synthesise a toy-VAT data set (one shape drifting and pulsing on the beats).",
        SYNTH_EXAMPLE,
    )
    synth.add_argument("out_dir", type=Path)
    synth.add_argument("--train", type=int, default=64, help="training clips (default 64)")
    synth.add_argument("--test", type=int, default=16, help="test clips (default 16)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--size", type=int, default=64, help="frame size in pixels (default 64)")
    synth.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    synth.add_argument("--fps", type=float, default=8.0, help="frames per second (default 8)")

    prepare = add(
        "prepare",
        "Validate a VAT folder, or cache its frames and frozen embeddings.",
        PREPARE_EXAMPLE,
    )
    prepare.add_argument("data_dir", type=Path)
    prepare.add_argument(
        "--check", action="store_true", help="validate every clip and report problems"
    )
    prepare.add_argument("--device", help=f"{DEVICE_HELP}; runs the frozen encoders")
    _add_config_args(prepare)

    train = add(
        "train",
        "Train the content, motion or refiner (SHR) model, or distil a few-step student.",
        TRAIN_EXAMPLE,
    )
    train.add_argument("stage", choices=["content", "motion", "refiner", "distill"])
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run exactly")
    _add_config_args(train)

    generate = add(
        "generate", "Generate a video from text, a first frame and audio.", GENERATE_EXAMPLE
    )
    generate.add_argument("--text", help="prompt (omit for the null text condition)")
    generate.add_argument("--image", help="first frame (png/jpg); omit for no first-frame lock")
    generate.add_argument("--audio", help="wav/flac/mp3 or a video's audio; omit for a silent clip")
    generate.add_argument("-o", "--output", required=True, type=Path, help="output .mp4")
    generate.add_argument(
        "--overwrite", action="store_true", help="replace an existing output (kept by default)"
    )
    generate.add_argument("--long", action="store_true", help="as long as the audio: chained clips")
    generate.add_argument(
        "--fps", type=float, help="frames per second (default: the rate the model was trained at)"
    )
    generate.add_argument("--refine", action="store_true", help="SHR refiner: 2x resolution")
    generate.add_argument(
        "--strength", type=float, help="refiner strength in [0, 1] (default 0.375)"
    )
    _add_sampling_args(generate)

    sample = add("sample", "Generate for the clips of a data set, for tia2v eval.", SAMPLE_EXAMPLE)
    sample.add_argument("--data", required=True, type=Path, help="VAT folder")
    sample.add_argument("--split", default="test")
    sample.add_argument("--num", type=int, help="number of clips (default: all)")
    sample.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    sample.add_argument(
        "--overwrite", action="store_true", help="write into a folder that holds samples"
    )
    sample.add_argument("--refine", action="store_true", help="SHR refiner: 2x resolution")
    sample.add_argument(
        "--batch-size", type=int, default=1, help="clips per network call (default 1)"
    )
    _add_sampling_args(sample)

    convert = add(
        "convert-original",
        "Convert an original TIA2V content checkpoint into a tia2v model folder.",
        CONVERT_EXAMPLE,
    )
    convert.add_argument("--content", required=True, type=Path, help="original content .pt")
    convert.add_argument(
        "--motion", type=Path, help="original motion .pt (refused: it cannot be reproduced)"
    )
    convert.add_argument("-o", "--output", type=Path, help="model folder (default: beside .pt)")
    _add_config_args(convert)

    from tia2v.assets import ASSETS

    download = add(
        "download",
        "Fetch the official pretrained files the paper setting uses.",
        _download_example(),
    )
    download.add_argument("names", nargs="+", choices=list(ASSETS), metavar="NAME")
    download.add_argument("--to", type=Path, help="folder (default: $TIA2V_HOME or ~/.cache/tia2v)")
    download.add_argument(
        "--mirror", help="base URL serving <mirror>/<NAME>/<file> instead of the official ones"
    )

    serve = add("serve", "Serve the web demo (Gradio) on this machine.", SERVE_EXAMPLE)
    serve.add_argument("--model", default="checkpoints/demo", help="model folder")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: local only)")
    serve.add_argument("--port", type=int, default=7860)
    serve.add_argument("--concurrency", type=int, default=1, help="requests generated at once")
    serve.add_argument("--max-queue", type=int, default=16, help="waiting requests beyond those")
    serve.add_argument("--examples", type=Path, default=Path("examples"), help="example row")
    serve.add_argument("--device", help=DEVICE_HELP)

    from tia2v.metrics import ALL_METRICS, I3D_HINT, INCEPTION_HINT

    evaluate = add(
        "eval", "Score generated videos against real ones (the paper's metrics).", EVAL_EXAMPLE
    )
    evaluate.add_argument("--real", required=True, type=Path)
    evaluate.add_argument("--fake", required=True, type=Path)
    evaluate.add_argument(
        "--metrics", nargs="+", default=list(ALL_METRICS), choices=ALL_METRICS, metavar="M"
    )
    evaluate.add_argument(
        "-o", "--output", required=True, type=Path, help="report .json (a .md is written beside it)"
    )
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing report")
    evaluate.add_argument("--plot", type=Path, help="folder for PNG charts")
    evaluate.add_argument(
        "--audio",
        type=Path,
        help="folder of <id>.wav for AV-Align's onsets (default: audio/ beside --fake; "
        "else each mp4's own track)",
    )
    evaluate.add_argument("--i3d", help=f"FVD network: {I3D_HINT}")
    evaluate.add_argument("--inception", help=f"FID network: {INCEPTION_HINT}")
    evaluate.add_argument(
        "--fd-net", help="any TorchScript image network: reported as fd_<file name>"
    )
    evaluate.add_argument("--clip", help="CLIP folder or Hugging Face id (CLIP-text, consistency)")
    evaluate.add_argument("--clap", help="CLAP folder or Hugging Face id (audio-text score)")
    evaluate.add_argument("--wav2clip", help="wav2clip checkpoint ResNet_CX.ckpt (CLIP-audio)")
    evaluate.add_argument(
        "--audioclip",
        help="AudioCLIP-Full-Training.pt: CLIP-audio with AudioCLIP (clip_audio_audioclip)",
    )
    evaluate.add_argument("--device", help=DEVICE_HELP)
    return parser


def _eval(args: argparse.Namespace) -> int:
    import json

    from tia2v.metrics.evaluate import Networks, evaluate, markdown

    _writable_output(args.output, ".json", args.overwrite, [args.output.with_suffix(".md")])
    nets = Networks(
        args.i3d, args.inception, args.fd_net, args.clip, args.clap, args.wav2clip, args.audioclip
    )
    from tia2v.device import resolve_device

    report = evaluate(
        args.real,
        args.fake,
        args.metrics,
        nets,
        progress=not args.quiet,
        audio_dir=args.audio,
        device=resolve_device(args.device),
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1))
    args.output.with_suffix(".md").write_text(markdown(report))
    if args.plot:
        from tia2v.metrics.plots import plot_report

        plot_report(report, args.plot)
    print(markdown(report), end="")
    return 0


def _download(args: argparse.Namespace) -> int:
    from tia2v.assets import ASSETS, asset_dir
    from tia2v.download import download

    folder = args.to or asset_dir()
    for name in dict.fromkeys(args.names):
        path, sums = download(name, folder, args.mirror, progress=not args.quiet)
        if not sums:
            print(f"{name}: {path} is already there")
        for file, digest in sums.items():
            print(f"{name}: wrote {file} (sha256 {digest})")
        print(f"  use: {ASSETS[name].use.format(path=path)}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        import gradio  # noqa: F401
    except ImportError as exc:
        raise InputError("tia2v serve needs Gradio: pip install 'tia2v[serve]'") from exc
    import socket

    from tia2v.device import resolve_device
    from tia2v.model_folder import read_config
    from tia2v.serve import serve

    if args.concurrency < 1 or args.max_queue < 1:
        raise InputError("--concurrency and --max-queue must be >= 1")
    if not 0 < args.port < 65536:
        raise InputError(f"--port {args.port}: not a port number")
    read_config(Path(args.model))  # a model folder, or one clear error
    with socket.socket() as probe:
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            raise InputError(
                f"--host {args.host} --port {args.port}: cannot listen there ({exc.strerror})"
            ) from exc
    examples = args.examples if (args.examples / "prompt.txt").is_file() else None
    print(f"tia2v serve: http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    serve(
        args.model,
        args.host,
        args.port,
        args.concurrency,
        args.max_queue,
        examples=examples,
        device=str(resolve_device(args.device)),
    )
    return 0


def _pipeline_options(args: argparse.Namespace) -> dict:
    """The sampling flags of generate and sample, as TIA2VPipeline keyword arguments."""
    given = {"text": args.guidance_text, "image": args.guidance_image, "audio": args.guidance_audio}
    return {
        "num_inference_steps": args.steps,
        "sampler": args.sampler,
        "guidance": {k: v for k, v in given.items() if v is not None},
        "guidance_min_noise": args.guidance_min_noise,
        "eta": args.eta,
        "refine": args.refine,
    }


def _writable_output(path: Path, suffix: str, overwrite: bool, companions=()) -> None:
    """Checks ``-o`` before any work: the right extension, not a folder, not an existing file
    (unless ``overwrite``), in a folder that exists or can be made and can be written."""
    if path.suffix.lower() != suffix:
        raise InputError(f"-o {path}: the output must end in {suffix}")
    if path.is_dir():
        raise InputError(f"-o {path}: is a folder; give a file name ending in {suffix}")
    existing = [p for p in (path, *companions) if p.exists()]
    if existing and not overwrite:
        raise InputError(f"-o {path}: {existing[0]} exists (--overwrite replaces it)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"-o {path}: cannot create {path.parent} ({exc.strerror})") from exc
    if not os.access(path.parent, os.W_OK):
        raise InputError(f"-o {path}: {path.parent} is not writable")


def _generate(args: argparse.Namespace) -> int:
    from tia2v.pipeline import TIA2VPipeline

    if args.text is None and args.image is None and args.audio is None:
        raise InputError("give at least one of --text, --image, --audio")
    _writable_output(args.output, ".mp4", args.overwrite, [args.output.with_suffix(".json")])
    start = time.perf_counter()
    pipe = TIA2VPipeline.from_pretrained(args.model, args.device)
    out = pipe(
        text=args.text,
        image=args.image,
        audio=args.audio,
        seed=args.seed,
        long=args.long,
        fps=args.fps,
        strength=args.strength,
        progress=not args.quiet,
        **_pipeline_options(args),
    )
    path = out.save(args.output)
    seconds = time.perf_counter() - start
    sound = "with sound" if out.audio is not None else "silent"
    ran = f"{out.settings['sampler']}, {out.settings['steps']} steps"
    print(
        f"wrote {path} ({len(out.frames)} frames, {out.fps:g} fps, {sound}; {ran}) "
        f"in {seconds:.1f} s"
    )
    return 0


def _sample(args: argparse.Namespace) -> int:
    from tia2v.pipeline.dataset import sample_dataset

    if args.output.is_file():
        raise InputError(f"-o {args.output}: is a file; give a folder")
    if any((args.output / "fake").glob("*.mp4")) and not args.overwrite:
        raise InputError(f"-o {args.output}: already holds samples (--overwrite writes over them)")
    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size}: must be >= 1")
    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"-o {args.output}: cannot create it ({exc.strerror})") from exc

    written = sample_dataset(
        args.model,
        args.data,
        args.output,
        split=args.split,
        num=args.num,
        seed=args.seed,
        batch_size=args.batch_size,
        progress=not args.quiet,
        device=args.device,
        **_pipeline_options(args),
    )
    print(f"wrote {written} real/fake pairs to {args.output}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from tia2v.data.synth import synthesize

    if args.train < 0 or args.test < 0:
        raise InputError("--train and --test must be >= 0")
    if args.size < 8 or args.frames < 2 or not (math.isfinite(args.fps) and args.fps > 0):
        raise InputError("--size must be >= 8, --frames >= 2 and --fps a number > 0")
    start = time.perf_counter()
    try:
        counts = synthesize(
            args.out_dir,
            args.train,
            args.test,
            args.seed,
            args.size,
            args.frames,
            args.fps,
            progress=not args.quiet,
        )
    except OSError as exc:
        raise InputError(f"{args.out_dir}: cannot write there ({exc.strerror})") from exc
    seconds = time.perf_counter() - start
    print(
        f"wrote {counts['train']} train + {counts['test']} test clips to {args.out_dir} "
        f"({args.frames} frames, {args.fps:g} fps, {args.size}x{args.size}) in {seconds:.1f} s"
    )
    return 0


def _prepare(args: argparse.Namespace, cfg: ExperimentConfig) -> int:
    from tia2v.data.cache import build_cache
    from tia2v.data.check import check_folder, format_table

    if args.check:
        checked, problems = check_folder(args.data_dir, cfg.data, progress=not args.quiet)
        if problems:
            print(format_table(problems))
            print(f"{len(problems)} problem(s) in {args.data_dir} ({checked} clips decoded)")
            return 2
        print(f"{args.data_dir}: {checked} clips, no problems")
        return 0
    start = time.perf_counter()
    from tia2v.device import resolve_device

    device = resolve_device(args.device)
    cache, written, reused = build_cache(args.data_dir, cfg, not args.quiet, device)
    frozen = ", ".join(cache.manifest["encoders"]) or "none (all trainable)"
    print(
        f"embedding cache {cache.dir}: {written} clips written, {reused} already there "
        f"in {time.perf_counter() - start:.1f} s; frozen encoders cached: {frozen}"
    )
    return 0


def _train(args: argparse.Namespace, cfg: ExperimentConfig) -> int:
    from tia2v.training.loop import train

    run_dir = train(cfg, args.stage, args.resume, progress=not args.quiet)
    if os.environ.get("RANK", "0") == "0":
        print(f"run {run_dir}: {args.stage} model exported to {run_dir / 'model'}")
    return 0


def _resolve(args: argparse.Namespace) -> ExperimentConfig:
    """The command's config; a resumed run keeps its own config (``--set`` still applies)."""
    if getattr(args, "resume", None):
        from tia2v.training.checkpoint import find_checkpoint

        if args.config:
            raise InputError("--resume continues a run with its saved config; drop --config")
        checkpoint = find_checkpoint(args.resume)
        # The run continues in the folder given, even a copy whose config names another.
        run = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else None
        run_dir = [f"train.run_dir={run}"] if run is not None else []
        return resolve_config(str(checkpoint / "config.yaml"), [*run_dir, *args.overrides])
    return resolve_config(args.config, args.overrides)


def run(args: argparse.Namespace) -> int:
    simple = {
        "synth": _synth,
        "generate": _generate,
        "sample": _sample,
        "eval": _eval,
        "download": _download,
        "serve": _serve,
    }
    if args.command in simple:
        return simple[args.command](args)
    cfg = _resolve(args)
    if args.dry_run:
        print(to_yaml(cfg), end="")
        return 0
    if args.command == "prepare":
        return _prepare(args, cfg)
    if args.command == "convert-original":
        from tia2v.convert_original import convert

        out = args.output or args.content.with_suffix("")
        print(convert(args.content, cfg, out, args.motion))
        print(f"wrote {out}: the original content model as a tia2v model folder")
        return 0
    return _train(args, cfg)


def entry() -> None:
    """The ``tia2v`` program: ``main``, then, after ``generate``, an immediate exit. Once the
    video is written nothing is left to do, and the interpreter's clean-up after torch costs
    about 0.7 s on 2 CPU cores: a fifth of a demo video."""
    args = build_parser().parse_args()
    code = execute(args)
    if args.command == "generate":
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> int:
    """Runs one command line; returns its exit code."""
    return execute(build_parser().parse_args(argv))


def execute(args: argparse.Namespace) -> int:
    # transformers' weight-loading reports (UNEXPECTED keys …) only with --debug; set either
    # way, so that an environment inherited from another tia2v call does not decide
    verbosity = logging.WARNING if args.debug else logging.ERROR
    os.environ["TRANSFORMERS_VERBOSITY"] = logging.getLevelName(verbosity).lower()
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.set_verbosity(verbosity)
    if args.quiet:  # read by huggingface_hub and transformers when they are first imported
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        if "transformers" in sys.modules:  # already imported (main called in-process)
            sys.modules["transformers"].utils.logging.disable_progress_bar()
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return run(args)
    except InputError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except TrainingError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if args.debug:
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc} (a tia2v bug: please report it with "
            "the output of the same command with --debug)",
            file=sys.stderr,
        )
        return 1
