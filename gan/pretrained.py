"""The published model: a generator (EMA weights) and its discriminator, loadable from a folder or the Hub.

A model is a folder (the same shape in a training run's output, in checkpoints/ and on the Hub):

    config.json                  GAN constructor arguments (format_version, generator, discriminator, ...)
    generator.safetensors        EMA generator weights
    discriminator.safetensors    discriminator weights
    README.md                    model card; plus samples, curves and metrics written by training

Loading never unpickles anything: weights are safetensors and the config is JSON.

    from gan import GAN
    model = GAN.from_pretrained("checkpoints")        # or "owner/name" on the Hub
    images = model.generate(16, seed=0, labels=3)     # (16, 1, 28, 28) in [-1, 1]
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
from huggingface_hub import ModelHubMixin, snapshot_download
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .fileio import atomic_path
from .models import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, generate

FORMAT_VERSION = 1
GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"


class ModelFormatError(ValueError):
    """A model folder is missing files, has a corrupted file, or comes from an incompatible version."""


class GAN(nn.Module, ModelHubMixin, library_name="pytorch", license="mit",
          tags=["gan", "pytorch", "image-generation", "dcgan", "fashion-mnist"]):
    """Generator + discriminator pair with Hub I/O (``save_pretrained``/``from_pretrained``/``push_to_hub``)."""

    def __init__(self, *, generator: dict, discriminator: dict, dataset: str = "fashion-mnist",
                 class_names: list[str] | None = None, format_version: int = FORMAT_VERSION) -> None:
        super().__init__()
        if format_version != FORMAT_VERSION:
            raise ModelFormatError(f"model format_version {format_version} is not supported by this code "
                                   f"(it reads version {FORMAT_VERSION}); upgrade the gan package or re-export the model")
        try:
            g_cfg, d_cfg = GeneratorConfig.from_dict(generator), DiscriminatorConfig.from_dict(discriminator)
        except (TypeError, ValueError) as e:
            raise ModelFormatError(f"invalid model config: {e}") from None
        self.generator = Generator(g_cfg)
        self.discriminator = Discriminator(d_cfg)
        self.dataset = dataset
        n = g_cfg.num_classes
        self.class_names = list(class_names) if class_names else [str(i) for i in range(n)]
        if n and len(self.class_names) != n:
            raise ModelFormatError(f"class_names has {len(self.class_names)} names but the generator has {n} classes")
        self.eval()

    @property
    def num_classes(self) -> int:
        return self.generator.cfg.num_classes

    @property
    def z_dim(self) -> int:
        return self.generator.cfg.z_dim

    def config(self) -> dict:
        """The JSON config (what config.json stores)."""
        from dataclasses import asdict
        return {"format_version": FORMAT_VERSION, "generator": asdict(self.generator.cfg),
                "discriminator": asdict(self.discriminator.cfg), "dataset": self.dataset,
                "class_names": self.class_names}

    def generate(self, n: int = 16, *, seed: int | None = 0, labels: torch.Tensor | list[int] | int | None = None,
                 truncation: float = 1.0) -> torch.Tensor:
        """n images (n, C, R, R) in [-1, 1]; the seed alone fixes the latents."""
        return generate(self.generator, n, seed=seed, labels=labels, truncation=truncation)

    def push_to_hub(self, repo_id: str, *, config: dict | None = None,
                    commit_message: str = "Push model using huggingface_hub.", private: bool | None = None,
                    token: str | None = None, branch: str | None = None, create_pr: bool | None = None,
                    allow_patterns: list[str] | str | None = None, ignore_patterns: list[str] | str | None = None,
                    delete_patterns: list[str] | str | None = None,
                    model_card_kwargs: dict | None = None) -> str:
        """Upload this model as a model folder (config, weights, model card) with gan.hub.push_folder; return its URL.

        The mixin's signature and meaning. ``model_card_kwargs`` may hold ``options`` (training options) and
        ``eval_results`` (an eval.json dict): they are written to the folder as training_options.json and
        eval.json and fill the card.  A trained folder with samples and curves is pushed with
        ``python -m gan.hub push DIR OWNER/NAME``.
        """
        import tempfile

        from huggingface_hub.utils import filter_repo_objects

        from .fileio import atomic_write_json
        from .hub import push_folder
        from .modelcard import write_model_card
        extra = dict(model_card_kwargs or {})
        options, results = extra.pop("options", None), extra.pop("eval_results", None)
        if extra:
            raise TypeError(f"model_card_kwargs accepts 'options' and 'eval_results', got {sorted(extra)}")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "model"
            folder.mkdir()
            if options:
                atomic_write_json(folder / "training_options.json", options)
            if results:
                atomic_write_json(folder / "eval.json", results)
            write_model_card(folder, model=self, options=options or {}, repo_id=repo_id)
            self.save_pretrained(folder, config=config)
            files = [p.name for p in folder.iterdir() if p.is_file()]
            for name in set(files) - set(filter_repo_objects(files, allow_patterns=allow_patterns,
                                                             ignore_patterns=ignore_patterns)):
                (folder / name).unlink()
            return push_folder(folder, repo_id, private=private, revision=branch, token=token,
                               commit_message=commit_message, create_pr=bool(create_pr),
                               delete_patterns=delete_patterns)

    # ---- ModelHubMixin hooks -------------------------------------------------------------------
    def _save_pretrained(self, save_directory: Path) -> None:
        save_directory = Path(save_directory)
        _atomic_save_file(_contiguous(self.generator.state_dict()), save_directory / GENERATOR_FILE)
        _atomic_save_file(_contiguous(self.discriminator.state_dict()), save_directory / DISCRIMINATOR_FILE)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None, cache_dir: str | Path | None,
                         force_download: bool, local_files_only: bool, token: str | bool | None,
                         map_location: str = "cpu", **model_kwargs) -> "GAN":
        if not model_kwargs:
            where = "" if os.path.isdir(model_id) else (" (not a local folder; as a Hub repo it is missing, "
                                                        "private without a token, or has no config.json)")
            raise ModelFormatError(f"{model_id}: config.json is missing or empty{where}; a model folder needs "
                                   f"config.json, {GENERATOR_FILE} and {DISCRIMINATOR_FILE}")
        model = cls(**model_kwargs)
        folder = Path(model_id) if os.path.isdir(model_id) else Path(snapshot_download(
            repo_id=model_id, revision=revision, cache_dir=cache_dir, force_download=force_download,
            local_files_only=local_files_only, token=token, allow_patterns=["*.json", "*.safetensors"]))
        load_weights(model.generator, folder / GENERATOR_FILE, map_location)
        load_weights(model.discriminator, folder / DISCRIMINATOR_FILE, map_location)
        model.eval()
        return model


def load_weights(module: nn.Module, path: Path, map_location: str = "cpu") -> None:
    """Strictly load a safetensors file into module; raise ModelFormatError naming the file on any mismatch."""
    if not path.is_file():
        raise ModelFormatError(f"{path.name} is missing from {path.parent}")
    try:
        state = load_file(str(path), device=map_location)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelFormatError(f"{path} is not a valid safetensors file (corrupted or truncated?): {e}") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise ModelFormatError(f"{path.name} does not match config.json: {' '.join(first[:3])[:400]}") from None


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def _atomic_save_file(state: dict[str, torch.Tensor], path: Path) -> None:
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
