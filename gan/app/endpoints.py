"""Gradio glue shared by app.py: the error wrapper, inline PNG payloads, and the named API endpoints.

The endpoints are registered with ``gr.api`` (no hidden components): Gradio derives each endpoint's
parameters and return values from the type hints below, so this module must not use
``from __future__ import annotations`` (string hints would collapse a tuple return into one output).

    /generate(seed, class_name, truncation, sliders) -> PNG   (batched: waiting requests share one pass of G)
    /interpolate(seed_a, seed_b, class_a, class_b, method, frames, truncation, more_seeds, more_classes, loop)
        -> GIF, PNG strip, PNG plot, dict
    /interpolate_path(seeds, classes, method, frames, truncation, loop) -> GIF, MP4, PNG strip, PNG plot, dict
    /directions() -> list of sliders (name, kind, label, range, classes, measured effects)
    /score(image) -> dict, PNG          /project(image, class_name, steps, method, budget_s) -> PNG, dict
    /noop(x) -> x                       (undocumented: the round trip benchmarks/app_latency.py and serve_load.py
                                         compare with)
"""

import base64
import functools
import html
import io
import logging
import os
from pathlib import Path
from typing import Any, Callable

import gradio as gr
from gradio import FileData
from PIL import Image

from ..images import ImageInputError
from .context import AppContext
from .batching import render_views
from .generate import directions_list, generate_view, make_view
from .inputs import AUTO_CLASS, RANDOM_CLASS, AppInputError
from .interpolate import endpoint_from_seed, interpolate_path
from .project import project_input
from .score import score_inputs
from .scratch import save_png, served_dir, served_root

log = logging.getLogger(__name__)
GENERATE_BATCH = int(os.environ.get("GAN_APP_GENERATE_BATCH", "16"))  # /generate's max_batch_size (1 = no batching)
GENERATE_CONCURRENCY = int(os.environ.get("GAN_APP_GENERATE_CONCURRENCY", "2"))  # /generate batches at once
_STATIC: set[Path] = set()  # folders this process registered with gr.set_static_paths


def user_errors(fn: Callable) -> Callable:
    """Turn bad input into a short gr.Error; any other failure becomes a generic gr.Error (logged)."""

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (AppInputError, ImageInputError) as e:
            raise gr.Error(html.escape(str(e), quote=False), print_exception=False) from None
        except Exception as e:  # noqa: BLE001 - nothing else may escape to the user
            log.exception("handler %s failed", fn.__name__)
            raise gr.Error(f"internal error ({type(e).__name__}); please try other inputs",
                           print_exception=False) from None

    return wrapped


def inline_png(image: Image.Image) -> dict:
    """gr.Image's payload (ImageData) for a PIL image, the PNG inline as a data: URL.

    Returned by events wired with ``postprocess=False`` (the live slider path): the image travels in the
    event's own response, so no cache file is written and the browser makes no second request.
    """
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return {"path": None, "url": url, "orig_name": "generated.png", "mime_type": "image/png"}


def png_result(image: Image.Image) -> FileData:
    """A PIL image as an API file result: a PNG in a fresh served folder (Gradio serves it without a copy)."""
    return FileData(path=str(save_png(image, folder=served_dir())), mime_type="image/png")


def serve_in_place() -> Path:
    """Register served_root() as a Gradio static path (once per process): the files png_result writes there are
    served as they are instead of being hashed and copied into Gradio's cache.  Outside it (say GAN_APP_SCRATCH
    changed later) a result is still correct: Gradio copies it as it copies any other file."""
    root = served_root()
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    if root not in _STATIC:
        gr.set_static_paths([root])  # extends Gradio's process-wide list
        _STATIC.add(root)
    return root


def uploaded(image: Any) -> tuple[str, str]:
    """(server path, original name) of a file sent with gradio_client.handle_file; else AppInputError.

    Only a FileData payload is accepted: Gradio checks that its path lies in the upload folder before
    the function runs, whereas a bare path string would name any file on the server.
    """
    if not image:
        raise AppInputError("no image file given")
    if not (isinstance(image, dict) and isinstance(image.get("path"), str)
            and (image.get("meta") or {}).get("_type") == "gradio.FileData"):
        raise AppInputError("image must be an uploaded file: pass handle_file(path) from gradio_client")
    return image["path"], image.get("orig_name") or os.path.basename(image["path"])


class Api:
    """The named API endpoints for one loaded model (methods, so gr.api reads their signatures)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @user_errors
    def generate(self, seed: int, class_name: str = RANDOM_CLASS, truncation: float = 1.0,
                 sliders: dict[str, float] | None = None) -> FileData:
        """One generated image (224x224 PNG, 28x28 upscaled x8) for a seed, class, truncation and slider values.

        Args:
            seed: whole number 0..2147483647; the seed alone fixes the latent (same seed, same image).
            class_name: a class name (e.g. "Bag"), its index, or "random" (the class the seed picks).
            truncation: 0..2; the latent is scaled by it (< 1: more typical, less varied).
            sliders: {direction name: value in -5..5}, e.g. {"area": 1.5}; names as in the Generate tab
                (or /directions). A non-zero slider that does not act on the class is an error naming the
                classes it acts on (see "classes" in /directions).
        Returns:
            the PNG file.
        """
        view = make_view(self.ctx, seed, class_name, truncation, sliders or {})
        return png_result(generate_view(self.ctx, view).image)

    def generate_batch(self, seed: list, class_name: list, truncation: list, sliders: list) -> tuple[list]:
        """/generate for a batch of requests (Gradio's ``batch=True``): one list per parameter, one forward pass."""
        views = [make_view(self.ctx, s, c, t, sl or {}) for s, c, t, sl in zip(seed, class_name, truncation, sliders)]
        return ([png_result(im) for im in render_views(self.ctx, views)],)

    def _stops(self, seeds: list, classes: list | None, truncation: float) -> list:
        """Endpoints of seeds[i] with classes[i] (default "random"; one class for all is repeated)."""
        seeds = list(seeds or [])
        classes = list(classes or [])
        if len(classes) == 1 and len(seeds) > 1:
            classes = classes * len(seeds)
        if classes and len(classes) != len(seeds):
            raise AppInputError(f"got {len(seeds)} seeds but {len(classes)} classes; give one class per seed, "
                                f"one for all, or none")
        classes = classes or [RANDOM_CLASS] * len(seeds)
        return [endpoint_from_seed(self.ctx, s, c, truncation) for s, c in zip(seeds, classes)]

    @user_errors
    def interpolate(self, seed_a: int, seed_b: int, class_a: str = RANDOM_CLASS, class_b: str = RANDOM_CLASS,
                    method: str = "slerp", frames: int = 16, truncation: float = 1.0,
                    more_seeds: list[int] | None = None, more_classes: list[str] | None = None,
                    loop: bool = False) -> tuple[FileData, FileData, FileData, dict]:
        """Interpolation from (seed_a, class_a) to (seed_b, class_b), then through more stops: GIF, strip, plot, scores.

        Args:
            seed_a: seed of the first endpoint.
            seed_b: seed of the second endpoint.
            class_a: class of the first endpoint (name, index or "random").
            class_b: class of the second endpoint; the class embedding blends linearly along the path.
            method: "slerp" or "lerp" for the latent path.
            frames: number of frames, 2..64, endpoints included.
            truncation: 0..2, applied to every seed latent.
            more_seeds: seeds of further stops after B (C, D, ...); none by default.
            more_classes: their classes (one per seed, one for all, or none for "random").
            loop: go back from the last stop to A (the GIF then loops seamlessly).
        Returns:
            the animated GIF, a PNG strip of the frames, a PNG plot, and per-frame numbers (t, d_logit, p_real,
            p_real_calibrated, predicted_class, predicted_prob, stops: the stop names, stop k at t = k).
        """
        r = self._path([seed_a, seed_b, *(more_seeds or [])], [class_a, class_b, *self._more(more_seeds, more_classes)],
                       method, frames, truncation, loop)
        gif = FileData(path=str(r.gif), mime_type="image/gif")
        return gif, png_result(r.strip), png_result(r.plot), r.summary(self.ctx)

    @staticmethod
    def _more(more_seeds: list | None, more_classes: list | None) -> list:
        n = len(more_seeds or [])
        classes = list(more_classes or [])
        if len(classes) == 1 and n > 1:
            classes *= n
        if classes and len(classes) != n:
            raise AppInputError(f"got {n} more_seeds but {len(classes)} more_classes")
        return classes or [RANDOM_CLASS] * n

    def _path(self, seeds: list, classes: list | None, method: str, frames: int, truncation: float, loop: bool):
        stops = self._stops(seeds, classes, truncation)
        if len(stops) < 2:
            raise AppInputError(f"a path needs at least 2 seeds, got {len(stops)}")
        return interpolate_path(self.ctx, stops[0], stops[1], frames, method, more=stops[2:], loop=bool(loop))

    @user_errors
    def interpolate_path(self, seeds: list[int], classes: list[str] | None = None, method: str = "slerp",
                         frames: int = 16, truncation: float = 1.0,
                         loop: bool = False) -> tuple[FileData, FileData, FileData, FileData, dict]:
        """A path through 2..8 seeds (A -> B -> C ..., optionally back to A): GIF, MP4, frame strip, plot, scores.

        Args:
            seeds: the stops' seeds, in order.
            classes: their classes (one per seed, one for all, or none for "random").
            method: "slerp" or "lerp" for the latent path.
            frames: frames in all, 2..64 (rounded so that every stop is a frame).
            truncation: 0..2, applied to every seed latent.
            loop: go back from the last stop to the first.
        Returns:
            the animated GIF, the same animation as an H.264 MP4, a PNG strip, a PNG plot, and per-frame numbers
            as for /interpolate.
        """
        r = self._path(seeds, classes, method, frames, truncation, loop)
        if r.mp4 is None:
            raise AppInputError("MP4 export needs PyAV on the server (pip install av); /interpolate gives the GIF")
        return (FileData(path=str(r.gif), mime_type="image/gif"), FileData(path=str(r.mp4), mime_type="video/mp4"),
                png_result(r.strip), png_result(r.plot), r.summary(self.ctx))

    def directions(self) -> list[dict]:
        """Every latent slider of the Generate tab, in its order: name, kind, label, range and measured effects.

        Returns:
            a list of dicts: name, kind ("attribute", "pca", "sefa" or "class"), label, description, range
            ([-5, 5]), measured_at (3), classes (the classes it acts on; None: every class), effects_sd
            (attribute -> mean change at +3 in sd of real test images), class_kept (share of samples whose
            class survives +3), strength_sd, and per_class: for each class it acts on, own_sd, largest_other
            ([attribute, sd]), class_kept and space ("z", or "z+class" where it also moves G's class input).
        """
        return directions_list(self.ctx)

    @user_errors
    def score(self, image: FileData) -> tuple[dict, FileData]:
        """Real or generated? The verdict on one image file: the critic's calibrated P(real), the game D's beside it.

        Args:
            image: an image file (PNG, JPEG, GIF, WebP, BMP or TIFF; at most 10 MB and 25 megapixels).
        Returns:
            a dict and the 28x28 input as the models see it.  The dict: verdict ("real" or "generated"), scorer
            ("critic", or "discriminator" when the model has no critic), p_real, logit, calibrated, p_real_raw,
            p_real_calibrated, percentile_real, percentile_fake (all of whoever answers); critic_p_real and
            critic_logit (the critic's); d_p_real and d_logit (the game D's); pred_name, pred_prob, ood,
            ood_reason, label_used, preprocessing, ...
        """
        path, name = uploaded(image)
        report = score_inputs(self.ctx, [path], names=[name], neighbours=False, saliency=False)
        return report.results[0], png_result(report.seen[0][0])

    @user_errors
    def project(self, image: FileData, class_name: str = AUTO_CLASS, steps: int | None = None,
                method: str = "auto", budget_s: float | None = None) -> tuple[FileData, dict]:
        """Project an image file into the latent space: the reconstruction and its latent, class and error.

        Args:
            image: an image file (as for /score).
            class_name: a class name or index, or "auto" to try the likeliest classes and keep the best.
            steps: steps of the z optimisation, 2..1000: the refinement after the encoder (default 10), or the
                whole optimisation for method "optimise" (default 150).
            method: "auto" (the best stage within budget_s), "encoder", "refine", "tune" (the encoder, a
                refinement of z, then a copy of G tuned to the image) or "optimise" (z alone, no encoder).
            budget_s: seconds of computation for "auto" (default 0.3, at most 30).
        Returns:
            the reconstruction (PNG) and a dict: label, class_name, loss, mse, rms (pixel RMS error as a fraction
            of the range), feature_distance, steps, seconds, candidates, z, preprocessing, method, stage (the last
            stage that ran), tuned, budget_s, and stages ({stage: {steps, seconds}}).
        """
        path, _ = uploaded(image)
        p = project_input(self.ctx, path, class_name, steps=steps, method=method, budget_s=budget_s, plot=False)
        return png_result(p.reconstruction), p.summary

    @staticmethod
    def noop(x: float = 0.0) -> float:
        """No-op round trip (undocumented; benchmarks/app_latency.py and serve_load.py compare with it)."""
        return x


def register_api(ctx: AppContext, *, heavy: dict[str, Any]) -> Api:
    """Register the named endpoints with gr.api inside the current gr.Blocks.

    heavy (a shared concurrency_id and limit) goes to every endpoint that can take seconds (/interpolate,
    /interpolate_path, /project), so they queue behind each other and never hold the workers the cheap
    endpoints use; /generate is batched in its own group, /score, /directions and the UI's events share the rest.
    """
    api = Api(ctx)
    serve_in_place()
    if GENERATE_BATCH > 1:  # concurrent requests share one forward pass; documented as one request
        gr.api(functools.wraps(api.generate)(user_errors(api.generate_batch)), api_name="generate", batch=True,
               max_batch_size=GENERATE_BATCH, concurrency_id="generate", concurrency_limit=GENERATE_CONCURRENCY)
    else:
        gr.api(api.generate, api_name="generate")
    gr.api(api.interpolate, api_name="interpolate", **heavy)
    gr.api(api.interpolate_path, api_name="interpolate_path", **heavy)
    gr.api(api.directions, api_name="directions")
    gr.api(api.score, api_name="score")
    gr.api(api.project, api_name="project", **heavy)
    gr.api(api.noop, api_name="noop", api_visibility="undocumented")
    return api
