"""Latent-space tools: seeds, interpolation, sliders (directions), GAN inversion, sharing and media.

One module per concern:

* ``sampling``   latents of seeds, lerp / slerp, paths through two or more stops, rendering with embeddings
* ``attributes`` the garment attributes sliders are named after, each a documented function of the image
* ``effects``    what a move in z does: attribute changes in sd of real images, class retention
* ``principal``  GANSpace and SeFa directions
* ``boundaries`` InterFaceGAN boundary normals and the conditional direction between them
* ``fitting``    InterFaceGAN conditional, per-class attribute sliders; labels, scales, merging
* ``space``      where a slider moves: z, or z and G's class input
* ``directions`` the Directions container, apply_directions / apply_edit, files
* ``build``      write_directions(folder): compute a model folder's sliders and write them there
* ``projection`` GAN inversion by optimisation (find the z and class of an image)
* ``encoder``    the encoder (image -> z and class) and its files; ``encoder_train`` trains it
* ``inversion``  projection in three stages: encoder, refinement of z, pivotal tuning of a copy of G
* ``edits``      the sliders' moves on projected images, each with its own generator
* ``share``      share strings and latent .npy files
* ``media``      PNG, GIF and MP4
* ``cli``        ``python -m gan.latent directions DIR`` and ``python -m gan.latent attributes``
"""

import importlib
from typing import Any

# name -> submodule; imported on first use, so that `import gan.latent` stays light
_HOME = {
    "ATTRIBUTES": "attributes", "measure_attributes": "attributes",
    "Directions": "directions", "KIND_TITLES": "directions", "apply_directions": "directions",
    "apply_edit": "directions", "load_directions": "directions", "metric_classifier": "directions",
    "save_directions": "directions", "slider_info": "directions", "slug": "directions",
    "write_directions": "build", "InputSpace": "space",
    "Goals": "fitting", "compute_directions": "fitting",
    "make_gif": "media", "make_mp4": "media", "to_pil": "media", "to_png_bytes": "media",
    "ProjectionResult": "projection", "image_to_target": "projection", "project": "projection",
    "SEED_RANGE": "sampling", "SLIDER_RANGE": "sampling", "TRUNCATION_RANGE": "sampling",
    "blend_embedding": "sampling", "class_embedding": "sampling", "generator_of": "sampling",
    "interpolate": "sampling", "interpolate_conditioning": "sampling", "interpolate_stops": "sampling",
    "latent_for_seed": "sampling", "lerp": "sampling", "path_frames": "sampling", "render": "sampling",
    "render_path": "sampling", "slerp": "sampling",
    "load_latent_npy": "share", "parse_state": "share", "save_latent_npy": "share", "share_state": "share",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'gan.latent' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_HOME))


__all__ = sorted(_HOME)  # noqa: F822 (resolved by __getattr__)
