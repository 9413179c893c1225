"""The `fashion-gan` command: one entry point, a subcommand per job; each calls one library function.

    fashion-gan train [train.py's options]        # train and write a model folder
    fashion-gan app [--model-dir DIR | --model-repo OWNER/NAME] [--port N]
    fashion-gan sample --model DIR --n 10000 --out samples.npz
    fashion-gan evaluate --model DIR [--write]
    fashion-gan finish DIR [--only directions,calibration,critic]   # the extras, then the card
    fashion-gan directions DIR                    # the latent sliders alone (gan.latent.cli)
    fashion-gan critic DIR [--steps N]            # the critic alone (gan.scoring.refine)
    fashion-gan card DIR [--repo OWNER/NAME]      # re-render the model card
    fashion-gan push DIR OWNER/NAME [--private] [--revision BRANCH]
    fashion-gan resolve                           # which model the app would serve
    fashion-gan space OWNER/NAME [--dry-run]      # deploy the app and the model to a Hugging Face Space
    fashion-gan classifier train [--epochs N]     # retrain the metric classifier (package data)

`python -m gan COMMAND` is the same command without installing the package (gan/__main__.py).
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from pathlib import Path

PROG = "fashion-gan"


def hub_main(argv: list[str] | None = None, prog: str = PROG) -> int:
    """`push` a model folder to the Hub, or `resolve` which model the app would load."""
    from .finish import publish
    from .hub import PushError, resolve_model, source_from_env
    p = argparse.ArgumentParser(prog=prog, description=hub_main.__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    push = sub.add_parser("push", help="upload a finished model folder to a Hub repo")
    _push_arguments(push)
    res = sub.add_parser("resolve", help="print which model the app would load (GAN_MODEL_* settings by default)")
    _resolve_arguments(res)
    args = p.parse_args(argv)
    if args.command == "push":
        try:
            url = publish(args.folder, args.repo_id, private=args.private, revision=args.revision)
        except PushError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"pushed {args.folder} to {url}")
        return 0
    source = (resolve_model(args.repo, args.revision, args.local_dir) if (args.repo or args.local_dir)
              else source_from_env())
    print(f"{source.kind}: {source.description}\nfolder: {source.folder}")
    if source.warning:
        print(f"warning: {source.warning}", file=sys.stderr)
    return 0


def _push_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="model folder (config.json + generator/discriminator safetensors)")
    p.add_argument("repo_id", metavar="OWNER/NAME", help="Hub model repo (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.add_argument("--revision", metavar="BRANCH", default=None, help="branch to push to (created if missing)")


def _resolve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", default=None)
    p.add_argument("--revision", default=None)
    p.add_argument("--local-dir", default=None)


def card_main(argv: list[str] | None = None, prog: str = f"{PROG} card") -> int:
    """Re-render the model card of an existing model folder."""
    from .finish import render_card
    p = argparse.ArgumentParser(prog=prog, description=card_main.__doc__)
    p.add_argument("folder", help="model folder (config.json, safetensors, training_options.json, eval.json)")
    p.add_argument("--repo", metavar="OWNER/NAME", default=None, help="Hub repo named in the usage snippet")
    args = p.parse_args(argv)
    try:
        path = render_card(args.folder, repo_id=args.repo)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def finish_main(argv: list[str] | None = None, prog: str = f"{PROG} finish") -> int:
    """Compute a model folder's post-training extras (sliders, calibration, critic, detector), then render its card."""
    from .finish import EXTRAS, finish
    names = [n for n, _ in EXTRAS]
    p = argparse.ArgumentParser(prog=prog, description=finish_main.__doc__)
    p.add_argument("folder", help="a finished model folder")
    p.add_argument("--only", default=",".join(names), help=f"comma-separated extras (default: {','.join(names)}; "
                                                           f"'' for the card alone)")
    args = p.parse_args(argv)
    only = tuple(n.strip() for n in args.only.split(",") if n.strip())
    unknown = [n for n in only if n not in names]
    if unknown:
        print(f"error: unknown extra(s) {', '.join(unknown)}; choose from {', '.join(names)}", file=sys.stderr)
        return 2
    if not (Path(args.folder) / "config.json").is_file():
        print(f"error: {args.folder} is not a finished model folder (no config.json)", file=sys.stderr)
        return 2
    print(f"wrote {finish(args.folder, extras=only)}")
    return 0


def app_main(argv: list[str] | None = None, prog: str = f"{PROG} app") -> int:
    """Serve the Gradio app (the checkout's app.py, or the installed one) on the chosen model."""
    p = argparse.ArgumentParser(prog=prog, description=app_main.__doc__)
    p.add_argument("--model-dir", default=None, help="a local model folder (sets GAN_MODEL_DIR)")
    p.add_argument("--model-repo", default=None, metavar="OWNER/NAME", help="a Hub model repo (sets GAN_MODEL_REPO)")
    p.add_argument("--port", type=int, default=None, help="port (sets GRADIO_SERVER_PORT; default 7860)")
    args = p.parse_args(argv)
    for var, value in (("GAN_MODEL_DIR", args.model_dir), ("GAN_MODEL_REPO", args.model_repo),
                       ("GRADIO_SERVER_PORT", args.port)):
        if value is not None:
            os.environ[var] = str(value)
    script = app_script()
    if script is None:
        print("error: app.py was not found (neither beside the gan package nor installed); "
              "run from a checkout, or install with `pip install fashion-gan[app]`", file=sys.stderr)
        return 2
    runpy.run_path(str(script), run_name="__main__")
    return 0


def app_script() -> Path | None:
    """app.py: beside the package in a checkout, else the copy installed as the top-level module `app`."""
    beside = Path(__file__).resolve().parent.parent / "app.py"
    if beside.is_file():
        return beside
    import importlib.util
    spec = importlib.util.find_spec("app")
    return Path(spec.origin) if spec and spec.origin and Path(spec.origin).name == "app.py" else None


def classifier_main(argv: list[str] | None = None, prog: str = f"{PROG} classifier") -> int:
    """Retrain the metric classifier (its weights and JSON ship in gan/assets/classifier/)."""
    from .classifier import DEFAULT_PATH, ClassifierConfig, train_classifier
    p = argparse.ArgumentParser(prog=prog, description=classifier_main.__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the metric classifier on Fashion-MNIST")
    t.add_argument("--out", default=str(DEFAULT_PATH),
                   help="weights file (default: the shipped one, gan/assets/classifier/classifier.safetensors)")
    t.add_argument("--epochs", type=int, default=12, help="training epochs (default: 12)")
    t.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128)")
    t.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: 3e-3)")
    t.add_argument("--data-dir", default=None, help="folder with the Fashion-MNIST IDX files (default: auto)")
    t.add_argument("--limit", type=int, default=None, help="use only the first N training images (smoke runs)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    t.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's, i.e. OMP_NUM_THREADS)")
    t.add_argument("--widths", default="16,32,64", help="conv channels per stage (default: 16,32,64)")
    t.add_argument("--convs", default="1,2,1", help="3x3 convs per stage (default: 1,2,1)")
    args = p.parse_args(argv)
    try:
        train_classifier(out=args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         data_dir=args.data_dir, seed=args.seed, limit=args.limit, threads=args.threads,
                         cfg=ClassifierConfig(widths=_ints(args.widths), convs=_ints(args.convs)))
    except (ValueError, OSError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"expected comma-separated integers like 32,64,96, got {text!r}") from None


def _commands() -> dict[str, tuple[str, object]]:
    """subcommand -> (help, function(argv, prog) -> exit status)."""
    def train(argv, prog):  # noqa: ANN001, ANN202
        from .train.cli import main
        return main(argv, prog=prog)

    def sample(argv, prog):  # noqa: ANN001, ANN202
        from .sample import main
        return main(argv)

    def evaluate(argv, prog):  # noqa: ANN001, ANN202
        from .evaluate import main
        return main(argv)

    def push(argv, prog):  # noqa: ANN001, ANN202
        return hub_main(["push", *argv], prog=prog.rsplit(" ", 1)[0])

    def resolve(argv, prog):  # noqa: ANN001, ANN202
        return hub_main(["resolve", *argv], prog=prog.rsplit(" ", 1)[0])

    def space(argv, prog):  # noqa: ANN001, ANN202
        from .space import main
        return main(argv, prog=prog)

    def directions(argv, prog):  # noqa: ANN001, ANN202
        from .latent.cli import directions_main
        return directions_main(argv, prog=prog)

    def critic(argv, prog):  # noqa: ANN001, ANN202
        from .scoring.refine import main
        return main(argv, prog=prog)

    return {"train": ("train a GAN and write a model folder (train.py's options)", train),
            "app": ("serve the Gradio app", app_main),
            "sample": ("write samples of a model to .npz", sample),
            "evaluate": ("FID, KID, precision/recall and more for a model or samples", evaluate),
            "finish": ("compute a folder's sliders, calibration and critic, then its card", finish_main),
            "directions": ("compute a folder's latent sliders alone", directions),
            "critic": ("refine a folder's critic (real or generated?) alone", critic),
            "card": ("re-render a folder's model card", card_main),
            "push": ("upload a finished model folder to the Hugging Face Hub", push),
            "resolve": ("print which model the app would serve", resolve),
            "space": ("deploy the app and a model to a Hugging Face Space", space),
            "classifier": ("retrain the metric classifier (FID features; ships with the package)", classifier_main)}


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    """fashion-gan COMMAND [options]: dispatch to the subcommand."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _commands()
    usage = "\n".join(f"  {name:<10} {text}" for name, (text, _) in commands.items())
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {prog} COMMAND [options]   ({prog} COMMAND --help for a command's options)\n\n"
              f"commands:\n{usage}")
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from . import __version__
        print(f"{PROG} {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"error: unknown command {name!r}; choose one of {', '.join(commands)}", file=sys.stderr)
        return 2
    return int(commands[name][1](rest, f"{prog} {name}") or 0)


if __name__ == "__main__":
    sys.exit(main())
