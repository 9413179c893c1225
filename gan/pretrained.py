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
from huggingface_hub import ModelCard, ModelHubMixin, snapshot_download
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .fileio import atomic_path, atomic_write_json, sha256_file
from .models import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, generate

FORMAT_VERSION = 1
GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
SHORT_CARD = """---
{{ card_data }}
---

# A {{ kind }} trained on {{ dataset }}

A generator G(z) and its discriminator D(x) (Goodfellow et al., 2014; DCGAN family), as `config.json` and
safetensors. G maps a {{ z_dim }}-dimensional latent to an image {{ shape }} in [-1, 1].
{%- if classes %} Classes: {{ classes }}.{% endif %}

```python
from gan import GAN   # the fashion-gan package
model = GAN.from_pretrained("{{ repo }}")
images = model.generate(16, seed=0)
```
"""


class ModelFormatError(ValueError):
    """A model folder is missing files, has a corrupted file, or comes from an incompatible version."""


class GAN(nn.Module, ModelHubMixin, library_name="pytorch", license="mit",
          tags=["gan", "pytorch", "image-generation", "dcgan", "fashion-mnist"]):
    """Generator + discriminator pair with Hub I/O (``save_pretrained``/``from_pretrained``/``push_to_hub``).

    ``push_to_hub`` is the mixin's: config, weights and the short card below.  A trained folder, with its
    samples, metrics and full card, is published with ``fashion-gan push DIR OWNER/NAME`` (gan.finish.publish).
    """

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

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        """The mixin's card hook: a short card from the config (``save_pretrained`` / ``push_to_hub`` write it).

        A trained folder gets the full card (metrics, training, critic) from gan.finish; this one says what
        the model is and how to load it.  ``kwargs`` may name ``repo_id`` for the usage line.
        """
        cfg = self.generator.cfg
        card = ModelCard.from_template(self._hub_mixin_info.model_card_data, template_str=SHORT_CARD,
                                       repo=kwargs.get("repo_id") or "OWNER/NAME", dataset=self.dataset,
                                       kind="class-conditional GAN" if self.num_classes else "GAN",
                                       classes=", ".join(self.class_names) if self.num_classes else "",
                                       shape=f"({cfg.channels}, {cfg.resolution}, {cfg.resolution})",
                                       z_dim=cfg.z_dim)
        return card

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


def load_weights(module: nn.Module, path: Path, map_location: str = "cpu", *,
                 extra: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Strictly load a safetensors file into module; raise ModelFormatError naming the file on any mismatch.

    Tensors named in `extra` (stored beside the module's state by save_tied_weights) are taken out first
    and returned, those present."""
    if not path.is_file():
        raise ModelFormatError(f"{path.name} is missing from {path.parent}")
    try:
        state = load_file(str(path), device=map_location)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelFormatError(f"{path} is not a valid safetensors file (corrupted or truncated?): {e}") from None
    out = {k: state.pop(k) for k in extra if k in state}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise ModelFormatError(f"{path.name} does not match config.json: {' '.join(first[:3])[:400]}") from None
    return out


def save_tied_weights(module: nn.Module, folder: Path, weights_name: str, meta_name: str, meta: dict,
                      extra: dict[str, torch.Tensor] | None = None) -> Path:
    """An extra of a model folder (critic, detector, encoder): write folder/weights_name (safetensors,
    atomically: the module's float32 state and any `extra` tensors as they are), then folder/meta_name: meta
    plus the weights' file name and SHA-256, by which its loader refuses weights that meta does not describe.
    Returns the JSON path."""
    weights = Path(folder) / weights_name
    state = {k: v.float() for k, v in _contiguous(module.state_dict()).items()}
    state.update(_contiguous(extra or {}))
    _atomic_save_file(state, weights)
    return atomic_write_json(Path(folder) / meta_name,
                             {**meta, "weights": weights_name, "weights_sha256": sha256_file(weights)})


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def _atomic_save_file(state: dict[str, torch.Tensor], path: Path) -> None:
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
