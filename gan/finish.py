"""Finishing a model folder: the post-training extras, then the model card, rendered once and last.

    from gan.finish import finish, render_card, publish
    finish("runs/x")                  # directions -> calibration -> critic -> detector -> card (train.py runs it)
    render_card("runs/x")             # the card alone, e.g. after `python -m gan.evaluate --write`
    publish("runs/x", "me/fashion-gan")   # name the repo in the card, then upload the folder

Each extra is optional and never fails a finished run: one that cannot be computed is reported with the
command that computes it later.  The card is rendered from what the folder holds at the end (config,
training options, eval.json, the critic's held-out metrics), so nothing has to re-render it afterwards.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Callable

from .modelcard import GENERATED, write_model_card
from .pretrained import GAN

# (name, the command that computes it for a folder); run in this order, each optional
EXTRAS = (("directions", "fashion-gan directions"),
          ("calibration", "python -m gan.scoring"),
          ("critic", "fashion-gan critic"),
          ("detector", "fashion-gan finish --only detector"),
          ("encoder", "fashion-gan finish --only encoder"))


def _writer(name: str) -> Callable[[Path], Path]:
    """The function that computes one extra for a folder (imported on use: each pulls in its own stack)."""
    if name == "directions":
        from .latent import write_directions
        return write_directions
    if name == "calibration":
        from .scoring.calibration import write_calibration
        return write_calibration
    if name == "critic":
        from .scoring.refine import write_critic
        return write_critic
    if name == "detector":
        from .scoring.detector_train import write_detector
        return write_detector
    if name == "encoder":
        from .latent.encoder_train import write_encoder
        return write_encoder
    raise ValueError(f"unknown extra {name!r}; one of {', '.join(n for n, _ in EXTRAS)}")


def finish(folder: str | Path, *, extras: tuple[str, ...] | None = None, log: Callable[[str], None] = print) -> Path:
    """Compute the extras (all by default; () for none) in order, then render the model card once; return it."""
    folder = Path(folder)
    names = [n for n, _ in EXTRAS] if extras is None else list(extras)
    commands = dict(EXTRAS)
    for name in names:
        write = _writer(name)
        try:
            write(folder)
        except Exception as e:  # extras: never fail a finished run over them
            log(f"warning: {name} not written ({type(e).__name__}: {str(e)[:160]}); run: {commands[name]} {folder}")
    try:
        return render_card(folder)
    except Exception as e:  # the card is documentation: never fail a finished run over it
        log(f"warning: model card not written ({type(e).__name__}: {str(e)[:160]}); "
            f"run: fashion-gan card {folder}")
        return folder / "README.md"


def critic_metrics(folder: str | Path) -> dict | None:
    """critic.json's contents when the folder has a usable, calibrated critic (else None), for the card."""
    from .scoring.critic import load_critic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a stale or broken critic is simply left out of the card
        critic = load_critic(folder)
    if critic is None or critic.calibration is None:
        return None
    return critic.info


def detector_info(folder: str | Path) -> dict | None:
    """detector.json's contents when the folder has a usable detector (else None), for the card."""
    from .scoring.detector import load_detector
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a stale or broken detector is simply left out of the card
        det = load_detector(folder)
    return det.info if det is not None else None


def render_card(folder: str | Path, *, repo_id: str | None = None, model: GAN | None = None) -> Path:
    """Render folder/README.md from its config, weights, training_options.json, eval.json and critic."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder} is not a model folder (no config.json)")
    model = model or GAN.from_pretrained(str(folder.resolve()))
    options = _read_json(folder / "training_options.json") or {}
    return write_model_card(folder, model=model, options=options, eval_results=_read_json(folder / "eval.json"),
                            repo_id=repo_id, critic=critic_metrics(folder), detector=detector_info(folder))


def publish(folder: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
            token: str | None = None) -> str:
    """Upload a finished folder to the Hub (gan.hub.push_folder) with a card that names repo_id; return the URL."""
    from .hub import check_repo_id, push_folder
    folder = Path(folder)
    readme = folder / "README.md"
    try:
        check_repo_id(repo_id)  # (push_folder reports a bad id)
        if (folder / "config.json").is_file() and (not readme.is_file() or
                                                   GENERATED in readme.read_text(encoding="utf-8")):
            render_card(folder, repo_id=repo_id)  # hand-written cards are left alone
    except Exception as e:  # noqa: BLE001 - the card is documentation: push it as it is
        log_warning(f"model card not refreshed ({type(e).__name__}: {str(e)[:160]}); pushing it as it is")
    return push_folder(folder, repo_id, private=private, revision=revision, token=token)


def log_warning(msg: str) -> None:
    """A warning line on stderr (the card and extras never stop a run or a push)."""
    import sys
    print(f"warning: {msg}", file=sys.stderr)


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
