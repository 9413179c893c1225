"""Gradio app: generate with live latent sliders, interpolate, score images with the discriminator, project.

    python app.py                      # serves on GRADIO_SERVER_PORT (default 7860)
    GAN_MODEL_DIR=runs/pilot python app.py
    GAN_MODEL_REPO=owner/name python app.py

This file only lays out components and wires events; every computation is a typed function in
gan/app/.  Named API endpoints (see the README for a gradio_client example):
/generate, /interpolate, /interpolate_path, /score, /project, /directions.
"""

from __future__ import annotations

import html
import logging
import os
from typing import Any, Callable

import gradio as gr
import torch

from gan import latent as L
from gan.app import inputs
from gan.app.context import load_context
from gan.app.endpoints import inline_png, register_api, user_errors
from gan.app.game_tab import build_game_tab
from gan.app.generate import (View, class_reading, direction_groups, directions_markdown, export_view, generate_view,
                              make_view, random_seed, render_latent, slider_states, variations_grid, view_from_npy,
                              view_from_share)
from gan.app.inputs import AUTO_CLASS, RANDOM_CLASS, AppInputError, class_choices
from gan.app.interpolate import (MAX_FRAMES, Endpoint, PathResult, endpoint_from_seed, endpoint_from_state,
                                 endpoint_from_view, interpolate_path)
from gan.app.plots import directions_heatmap
from gan.app.model_tab import (class_metrics_markdown, metrics_markdown, model_asset, model_card_markdown,
                               model_summary_markdown)
from gan.app.project import DEFAULT_PROJECT_STEPS, project_input
from gan.app.project_tab import build_project_tab
from gan.app.score_tab import build_score_tab
from gan.app.scratch import DELETE_CACHE
from gan.app.scratch import png_file as _file
from gan.images import MAX_UPLOAD_BYTES
from gan.pretrained import ModelFormatError

log = logging.getLogger("gan.app")
torch.set_num_threads(int(os.environ.get("GAN_APP_THREADS", "1")))  # many small requests: 1 thread each

try:
    CTX = load_context()
except (ModelFormatError, OSError) as e:  # no usable model at all: say which and how to get one
    raise SystemExit(f"error: cannot load the model: {e}") from None
NAMES = CTX.direction_names
CHOICES = class_choices(CTX)
CONCURRENCY = int(os.environ.get("GAN_APP_CONCURRENCY", "4"))
HEAVY = dict(concurrency_limit=1, concurrency_id="heavy")  # projections: one at a time, sliders stay fast
DEFAULT_SEED = 42
CSS = """
.crisp img { image-rendering: pixelated; }
#gen-image img { max-height: 300px; }
#gen-right { position: sticky; top: 8px; align-self: flex-start; }
"""


# ---- Generate handlers -----------------------------------------------------------------------------
def _view(base: dict | None, seed: Any, cls: Any, trunc: Any, vals: tuple) -> View:
    """vals: the sliders' values in NAMES order, then the class morph's target and amount."""
    morph = list(vals[len(NAMES):]) + [None, 0.0]
    return make_view(CTX, seed, cls, trunc, list(vals[:len(NAMES)]), base=(base or {}).get("z"),
                     morph_to=morph[0], morph=morph[1], tuned=(base or {}).get("tuned"))


def _slider_updates(label: int | None) -> list[dict]:
    """Show only the sliders that act on the class, labelled with their effect on it; hidden ones go to 0."""
    return [gr.update(visible=v, label=lab, info=info) if v else gr.update(visible=False, value=0.0)
            for v, lab, info in slider_states(CTX, label)]


@user_errors
def on_class_sliders(base: dict | None, seed: Any, cls: Any):
    """The class shown changed (class, seed with 'random', a pinned latent): list the sliders acting on it."""
    label = (base or {}).get("label") if base else None
    if label is None:
        label = inputs.parse_class(CTX, cls, inputs.parse_seed(seed if seed is not None else DEFAULT_SEED))
    return _slider_updates(label)


@user_errors
def on_morph(base: dict | None, seed: Any, cls: Any, trunc: Any, *vals: Any):
    """The class morph moved: the image, and what the classifier reads as G's class input changes."""
    view = _view(base, seed, cls, trunc, vals)
    reading = class_reading(CTX, view)
    src = inputs.class_name(CTX, view.label)
    dst = inputs.class_name(CTX, view.morph_to) if view.morph_to is not None else src
    note = (f"G's class input: {1 - view.morph:.0%} {src} + {view.morph:.0%} {dst}. "
            f"The classifier reads: {reading or 'n/a'}.")
    return generate_view(CTX, view).image, note


def _base_note(base: dict | None) -> dict:
    if not base:
        return gr.update(value="", visible=False)
    tuned = (" with the copy of G tuned to it; its attribute sliders are fitted to this garment"
             if base.get("tuned") else "")
    return gr.update(value=f"Editing a pinned latent ({base.get('description', '')}){tuned}; the seed is ignored. "
                           f"Change the seed or roll the dice to go back to seeds.", visible=True)


@user_errors
def on_view(base: dict | None, seed: Any, cls: Any, trunc: Any, *vals: Any):
    """Image of the current Generate view (the live slider path: one small PNG, inline)."""
    return inline_png(generate_view(CTX, _view(base, seed, cls, trunc, vals)).image)


@user_errors
def on_seed(seed: Any, cls: Any, trunc: Any, *vals: Any):
    """A new seed: leave any pinned latent and render the seed."""
    if seed is None:  # the box is being edited: wait for a number
        return gr.skip(), gr.skip(), gr.skip()
    return None, _base_note(None), generate_view(CTX, _view(None, seed, cls, trunc, vals)).image


@user_errors
def on_dice(cls: Any, trunc: Any, *vals: Any):
    """Roll a random seed."""
    seed = random_seed()
    return seed, None, _base_note(None), generate_view(CTX, _view(None, seed, cls, trunc, vals)).image


@user_errors
def on_reset(base: dict | None, seed: Any, cls: Any):
    """Sliders and the class morph to 0, truncation to 1."""
    img = generate_view(CTX, _view(base, seed, cls, 1.0, ())).image
    return (*[0.0] * len(NAMES), 1.0, 0.0, img)


@user_errors
def on_variations(base: dict | None, seed: Any, cls: Any, trunc: Any, *vals: Any):
    """4x4 grid of nearby latents (the image box is hidden until it has them)."""
    return gr.update(value=_file(variations_grid(CTX, _view(base, seed, cls, trunc, vals))), visible=True)


@user_errors
def on_export(base: dict | None, seed: Any, cls: Any, trunc: Any, *vals: Any):
    """PNG, latent .npy and share string of the current view."""
    ex = export_view(CTX, _view(base, seed, cls, trunc, vals))
    shown = [gr.update(value=str(ex.png), visible=True), gr.update(value=str(ex.npy), visible=True)]
    if ex.query is None:
        return (*shown, gr.update(value="", visible=False), ex.note)
    return (*shown, gr.update(value=ex.query, visible=True), f"[Open this view]({'?' + ex.query}) · {ex.note}")


def _apply_view(view: View, notes: list[str], base: dict | None) -> tuple:
    cls = inputs.class_name(CTX, view.label) if CTX.conditional else None
    img = generate_view(CTX, view).image
    note = "Restored." + (" " + "; ".join(notes) if notes else "")
    return (view.seed, gr.update(value=cls) if CHOICES else gr.skip(), view.truncation,
            *[view.sliders.get(n, 0.0) for n in NAMES], base, _base_note(base), img, note)


@user_errors
def on_restore(text: str):
    """Restore a view from a pasted share string (query, URL or JSON)."""
    view, notes = view_from_share(CTX, text)
    return _apply_view(view, notes, None)


@user_errors
def on_load_npy(path: str | None):
    """Pin the latent of an uploaded .npy (written by 'Share & download')."""
    if not path:
        raise AppInputError("no .npy file uploaded")
    view = view_from_npy(CTX, path)
    base = {"z": view.base, "label": view.label, "description": f"from {os.path.basename(path)}"}
    return _apply_view(view, [], base)


def on_page_load(request: gr.Request):
    """Restore the view from the URL query (?seed=42&label=8&truncation=0.8&area=1.5), if there is one."""
    query = str(request.query_params) if request is not None else ""
    keys = {k for k in request.query_params.keys()} if request is not None else set()
    if not query or "seed" not in keys:
        return tuple(gr.skip() for _ in range(len(NAMES) + 7))
    try:
        view, notes = view_from_share(CTX, query)
        return _apply_view(view, notes, None)
    except Exception as e:  # noqa: BLE001 - a bad link must not break the page
        return (*[gr.skip() for _ in range(len(NAMES) + 6)], f"Could not restore the link: {html.escape(str(e))}")


# ---- endpoints (Generate/Project -> Interpolate) ---------------------------------------------------
def _endpoint_outputs(ep: Endpoint):
    return (ep.to_state(), "pinned", gr.update(value=_file(render_latent(CTX, ep.z, ep.label, scale=4)), visible=True),
            ep.description, gr.Tabs(selected="interpolate"))


@user_errors
def on_view_to_endpoint(base: dict | None, seed: Any, cls: Any, trunc: Any, *vals: Any):
    """Pin the current Generate view as an interpolation endpoint and switch to Interpolate."""
    return _endpoint_outputs(endpoint_from_view(CTX, _view(base, seed, cls, trunc, vals)))


def _mode_visibility(mode: str):
    return (gr.update(visible=mode == "seed"), gr.update(visible=mode == "image"), gr.update(visible=mode == "pinned"))


def _endpoint(mode: str, seed: Any, cls: Any, trunc: Any, upload: str | None, pinned: dict | None,
              progress: Callable[[int, int], None] | None) -> Endpoint:
    if mode == "seed":
        return endpoint_from_seed(CTX, seed, cls, trunc)
    if mode == "image":
        if not upload:
            raise AppInputError("endpoint mode is 'image' but no image was uploaded")
        return project_input(CTX, upload, cls if cls != RANDOM_CLASS else AUTO_CLASS,
                               steps=DEFAULT_PROJECT_STEPS, progress=progress).endpoint
    if mode == "pinned":
        return endpoint_from_state(CTX, pinned)
    raise AppInputError(f"endpoint mode {mode!r} is not one of seed, image, pinned")


@user_errors
def on_interpolate(mode_a, seed_a, cls_a, up_a, pin_a, mode_b, seed_b, cls_b, up_b, pin_b, trunc, method, frames,
                   mode_c="off", seed_c=3, cls_c=RANDOM_CLASS, up_c=None, pin_c=None, loop=False,
                   progress=gr.Progress()):
    """Interpolate A -> B (-> C) (-> A); frames, GIF, MP4 and per-frame scores."""
    def prog(tag: str) -> Callable[[int, int], None]:
        return lambda step, total: progress((step, total), desc=f"projecting endpoint {tag}")
    a = _endpoint(mode_a, seed_a, cls_a, trunc, up_a, pin_a, prog("A"))
    b = _endpoint(mode_b, seed_b, cls_b, trunc, up_b, pin_b, prog("B"))
    more = [] if mode_c == "off" else [_endpoint(mode_c, seed_c, cls_c, trunc, up_c, pin_c, prog("C"))]
    return _path_outputs(interpolate_path(CTX, a, b, frames, method, more=more, loop=bool(loop)))


def _path_outputs(r: PathResult) -> tuple:
    """The animation, the frames, the per-frame plot, the downloads (GIF and MP4) and the numbers of a path."""
    return str(r.gif), _file(r.strip), _file(r.plot), [str(f) for f in (r.gif, r.mp4) if f], r.summary(CTX)


FIRST_PATH = _path_outputs(interpolate_path(CTX, endpoint_from_seed(CTX, 1), endpoint_from_seed(CTX, 2)))  # on load


# ---- Project -> Generate / Interpolate ---------------------------------------------------------------
@user_errors
def on_project_to_generate(state: dict | None):
    """Open the projection in Generate with its tuned G, if any (the sliders then move the garment itself)."""
    ep = endpoint_from_state(CTX, state)
    base = {"z": ep.z.tolist(), "label": ep.label, "description": ep.description, "tuned": state.get("tuned")}
    view = View(seed=0, label=ep.label, truncation=1.0, base=base["z"], tuned=base["tuned"])
    return (*_apply_view(view, [], base), gr.Tabs(selected="generate"))


@user_errors
def on_state_to_endpoint(state: dict | None):
    """Pin the projected latent as an interpolation endpoint."""
    return _endpoint_outputs(endpoint_from_state(CTX, state))


# ---- layout --------------------------------------------------------------------------------------
with gr.Blocks(title="Fashion-MNIST GAN", delete_cache=DELETE_CACHE) as demo:
    gr.Markdown("# Fashion-MNIST GAN\nA DCGAN-family generator and its discriminator. Move the sliders, "
                "interpolate between garments, ask the discriminator whether an image looks real, find the "
                "latent of your own picture, or watch a GAN learn in the Game tab.\n\n"
                f"<sub>Serving: {CTX.source.description}"
                f"{' (⚠️ ' + CTX.source.warning + ')' if getattr(CTX.source, 'warning', None) else ''}"
                " · details in the Model tab</sub>", elem_id="serving")
    base_state = gr.State(None)
    pin_a, pin_b, pin_c = gr.State(None), gr.State(None), gr.State(None)
    with gr.Tabs() as tabs:
        # ---------------- Generate ----------------
        with gr.Tab("Generate", id="generate"):
            with gr.Row():
                with gr.Column(scale=1):
                    with gr.Row(equal_height=True):
                        seed = gr.Number(label="Seed", value=DEFAULT_SEED, precision=0, minimum=0,
                                         maximum=L.SEED_RANGE[1], scale=4, elem_id="seed")
                        dice = gr.Button("Random seed", scale=1, elem_id="dice")
                    cls = gr.Dropdown(CHOICES or ["-"], value=RANDOM_CLASS if CHOICES else "-", label="Class",
                                      visible=bool(CHOICES), info="'random' = the class the seed picks",
                                      elem_id="class")
                    trunc = gr.Slider(*L.TRUNCATION_RANGE, value=1.0, step=0.05, label="Truncation",
                                      info="< 1: more typical, less varied", elem_id="truncation", buttons=[])
                    by_name: dict[str, gr.Slider] = {}
                    first_label = inputs.parse_class(CTX, RANDOM_CLASS, DEFAULT_SEED) if CHOICES else None
                    first_states = dict(zip(NAMES, slider_states(CTX, first_label)))
                    if not NAMES:
                        gr.Markdown("_This model has no latent directions (directions.json); compute them with "
                                    "`fashion-gan directions MODEL_DIR`._")
                    for title, names, is_open in direction_groups(CTX):
                        with gr.Accordion(title, open=is_open):
                            for name in names:
                                i = NAMES.index(name)
                                shown, lab, info = first_states[name]
                                by_name[name] = gr.Slider(*L.SLIDER_RANGE, value=0.0, step=0.1, label=lab,
                                                          elem_id=f"dir-{i}", info=info, visible=shown, buttons=[])
                    sliders = [by_name[n] for n in NAMES]  # the order every handler's *vals follow
                    with gr.Accordion("Class morph (changes the class)", open=False, visible=bool(CHOICES)):
                        morph_to = gr.Dropdown(list(CTX.model.class_names) if CHOICES else ["-"],
                                               value=CTX.model.class_names[2 % max(len(CHOICES), 1)] if CHOICES
                                               else "-", label="Towards class", elem_id="morph-to")
                        morph_t = gr.Slider(0.0, 1.0, value=0.0, step=0.05, elem_id="morph-amount", buttons=[],
                                            label="Class morph: blends G's class input from the class above into "
                                                  "this one (0: unchanged, 1: the other class)")
                        morph_md = gr.Markdown(elem_id="morph-reading")
                    if NAMES:
                        with gr.Accordion("What the directions are", open=False):
                            gr.Markdown(directions_markdown(CTX))
                    reset = gr.Button("Reset sliders", elem_id="reset")
                with gr.Column(scale=1, elem_id="gen-right"):
                    first = generate_view(CTX, make_view(CTX, DEFAULT_SEED)).image
                    image = gr.Image(value=first, format="png", label="Generated (28x28, shown x8)", type="pil",
                                     interactive=False, buttons=["download"], elem_id="gen-image",
                                     elem_classes=["crisp"])
                    base_note = gr.Markdown(visible=False)
                    with gr.Row():
                        to_a = gr.Button("Use as endpoint A")
                        to_b = gr.Button("Use as endpoint B")
                        to_c = gr.Button("Use as endpoint C")
                    var_btn = gr.Button("Show 16 nearby variations")
                    grid = gr.Image(label="Nearby variations (top-left: current)", format="png", interactive=False,
                                    elem_classes=["crisp"], height=300, visible=False)
                    with gr.Accordion("Share & download", open=False):
                        export_btn = gr.Button("Make PNG, latent .npy and share link", elem_id="export-btn")
                        with gr.Row():
                            png_file = gr.File(label="PNG", interactive=False, visible=False)
                            npy_file = gr.File(label="latent .npy", interactive=False, visible=False)
                        share_box = gr.Textbox(label="Share string", buttons=["copy"], interactive=False, visible=False)
                        share_link = gr.Markdown()
                        restore_box = gr.Textbox(label="Restore a view", placeholder="seed=42&label=8&area=1.5 or JSON",
                                                 elem_id="restore-box")
                        restore_btn = gr.Button("Restore", elem_id="restore-btn")
                        restore_note = gr.Markdown()
                        npy_upload = gr.File(label="Load a latent .npy", file_types=[".npy"], type="filepath")
        # ---------------- Interpolate ----------------
        with gr.Tab("Interpolate", id="interpolate"):
            ends = []
            with gr.Row():
                for tag, pin, default_seed in (("A", pin_a, 1), ("B", pin_b, 2), ("C", pin_c, 3)):
                    with gr.Column():
                        off = ["off"] if tag == "C" else []  # C is an optional third stop: A -> B -> C
                        mode = gr.Radio([*off, "seed", "image", "pinned"], value="off" if off else "seed",
                                        label=f"Endpoint {tag} from" if not off else "Then on to C",
                                        elem_id=f"mode-{tag}")
                        with gr.Group(visible=not off) as g_seed:
                            e_seed = gr.Number(label=f"Seed {tag}", value=default_seed, precision=0, minimum=0,
                                               elem_id=f"seed-{tag}")
                            e_cls = gr.Dropdown(CHOICES or ["-"], value=RANDOM_CLASS if CHOICES else "-",
                                                label=f"Class {tag}", visible=bool(CHOICES), elem_id=f"class-{tag}")
                        with gr.Group(visible=False) as g_img:
                            e_up = gr.File(label=f"Image {tag} (projected to a latent)", file_types=["image"],
                                           type="filepath")
                        with gr.Group(visible=False) as g_pin:
                            e_prev = gr.Image(label=f"Pinned latent {tag}", interactive=False, height=120,
                                              visible=False, elem_classes=["crisp"], elem_id=f"pin-{tag}")
                            e_desc = gr.Markdown("_Nothing pinned yet: use 'Use as endpoint' in Generate or Project._")
                        mode.change(_mode_visibility, mode, [g_seed, g_img, g_pin], show_progress="hidden",
                                    api_visibility="private")
                        ends.append((mode, e_seed, e_cls, e_up, pin, e_prev, e_desc))
            with gr.Row():
                i_method = gr.Radio(["slerp", "lerp"], value="slerp", label="Path")
                i_frames = gr.Slider(2, MAX_FRAMES, value=16, step=1, label="Frames")
                i_trunc = gr.Slider(*L.TRUNCATION_RANGE, value=1.0, step=0.05, label="Truncation (seed endpoints)")
                i_loop = gr.Checkbox(False, label="Loop back to A", elem_id="interp-loop")
            i_btn = gr.Button("Interpolate", variant="primary", elem_id="interpolate-btn")
            # on load: the default path (seed 1 -> seed 2), computed once at start-up
            first_gif, first_strip, first_plot, first_files, first_numbers = FIRST_PATH
            with gr.Row():
                with gr.Column():
                    i_gif = gr.Image(first_gif, label="Animation", interactive=False, elem_id="interp-gif",
                                     elem_classes=["crisp"], height=300)
                    i_files = gr.File(first_files, label="Download: GIF and MP4", file_count="multiple",
                                      interactive=False, elem_id="interp-files")
                i_plot = gr.Image(first_plot, label="D's P(real) and the classifier's class probabilities per frame",
                                  interactive=False, show_label=False)
            i_strip = gr.Image(first_strip, label="Frames", interactive=False, elem_classes=["crisp"])
            with gr.Accordion("Per-frame numbers", open=False):
                i_json = gr.JSON(first_numbers, label="Per-frame numbers")
        # ---------------- Score ----------------
        with gr.Tab("Score", id="score"):
            build_score_tab(CTX)
        # ---------------- Project ----------------
        with gr.Tab("Project", id="project"):
            proj = build_project_tab(CTX, demo, CHOICES, HEAVY)
        # ---------------- Game ----------------
        with gr.Tab("Game", id="game"):
            build_game_tab(demo)
        # ---------------- Model ----------------
        with gr.Tab("Model", id="model"):
            gr.Markdown(model_summary_markdown(CTX), elem_id="model-summary")
            with gr.Row():
                for asset, label in (("samples.png", "Samples"), ("progress.gif", "Training progress")):
                    path = model_asset(CTX, asset)
                    if path is not None:
                        gr.Image(value=str(path), label=label, interactive=False, height=360)
            curves = model_asset(CTX, "curves.png")
            if curves is not None:
                gr.Image(value=str(curves), label="Training curves", interactive=False)
            with gr.Accordion("Metrics (eval.json)", open=True):
                gr.Markdown(metrics_markdown(CTX))
            per_class = class_metrics_markdown(CTX)
            if per_class:
                with gr.Accordion("Metrics per class", open=False):
                    gr.Markdown(per_class)
            heat = directions_heatmap(CTX.directions)
            if heat is not None:
                with gr.Accordion("How clean each slider is", open=True):
                    gr.Image(value=_file(heat), label="Measured change of every attribute at +3 (sd of real test "
                             "images) and share of samples that keep their class", interactive=False,
                             elem_id="directions-heatmap")
                    gr.Markdown("Each row is a slider of the Generate tab pushed to +3; a clean slider moves its own "
                                "attribute and little else. Re-measured on fresh seeds by `benchmarks/sliders.py`.")
            with gr.Accordion("Model card", open=True):
                gr.Markdown(model_card_markdown(CTX))
    # ---- wiring ----
    live = dict(trigger_mode="always_last", show_progress="hidden", api_visibility="private")
    view_inputs = [base_state, seed, cls, trunc, *sliders, morph_to, morph_t]
    for s in [trunc, *sliders]:
        s.input(on_view, view_inputs, image, postprocess=False, **live)
    cls.input(on_view, view_inputs, image, postprocess=False, **live)
    seed.input(on_seed, [seed, cls, trunc, *sliders, morph_to, morph_t], [base_state, base_note, image], **live)
    dice.click(on_dice, [cls, trunc, *sliders, morph_to, morph_t], [seed, base_state, base_note, image],
               show_progress="hidden", api_visibility="private")
    for trigger in (cls.change, seed.change, base_state.change):  # the class shown may have changed
        trigger(on_class_sliders, [base_state, seed, cls], sliders, show_progress="hidden", api_visibility="private")
    for trigger in (morph_t.input, morph_to.input):
        trigger(on_morph, view_inputs, [image, morph_md], **live)
    reset.click(on_reset, [base_state, seed, cls], [*sliders, trunc, morph_t, image], show_progress="hidden",
                api_visibility="private")
    var_btn.click(on_variations, view_inputs, grid, api_visibility="private")
    export_btn.click(on_export, view_inputs, [png_file, npy_file, share_box, share_link], api_visibility="private")
    restore_outputs = [seed, cls, trunc, *sliders, base_state, base_note, image, restore_note]
    restore_btn.click(on_restore, restore_box, restore_outputs, api_visibility="private")
    npy_upload.upload(on_load_npy, npy_upload, restore_outputs, api_visibility="private")
    demo.load(on_page_load, None, restore_outputs, api_visibility="private", show_progress="hidden")

    (mode_a, seed_a, cls_a, up_a, _, prev_a, desc_a), (mode_b, seed_b, cls_b, up_b, _, prev_b, desc_b) = ends[:2]
    mode_c, seed_c, cls_c, up_c, _, prev_c, desc_c = ends[2]
    to_a.click(on_view_to_endpoint, view_inputs, [pin_a, mode_a, prev_a, desc_a, tabs], api_visibility="private")
    to_b.click(on_view_to_endpoint, view_inputs, [pin_b, mode_b, prev_b, desc_b, tabs], api_visibility="private")
    to_c.click(on_view_to_endpoint, view_inputs, [pin_c, mode_c, prev_c, desc_c, tabs], api_visibility="private")
    heavy = HEAVY
    i_btn.click(on_interpolate, [mode_a, seed_a, cls_a, up_a, pin_a, mode_b, seed_b, cls_b, up_b, pin_b, i_trunc,
                                 i_method, i_frames, mode_c, seed_c, cls_c, up_c, pin_c, i_loop],
                [i_gif, i_strip, i_plot, i_files, i_json],
                api_visibility="private", **heavy)


    proj.edit.click(on_project_to_generate, proj.state, [*restore_outputs, tabs], api_visibility="private")
    proj.to_a.click(on_state_to_endpoint, proj.state, [pin_a, mode_a, prev_a, desc_a, tabs], api_visibility="private")
    proj.to_b.click(on_state_to_endpoint, proj.state, [pin_b, mode_b, prev_b, desc_b, tabs], api_visibility="private")

    register_api(CTX, heavy=heavy)  # /generate, /interpolate, /score, /project: gr.api, typed by signature

demo.queue(default_concurrency_limit=CONCURRENCY, max_size=int(os.environ.get("GAN_APP_QUEUE_SIZE", "256")))

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    # every REST call is a new session and Gradio keeps each one's state (~0.4 MiB here): a bound keeps memory flat
    demo.launch(max_file_size=MAX_UPLOAD_BYTES, css=CSS, footer_links=["api"], run_history=False,
                show_error=True, state_session_capacity=int(os.environ.get("GAN_APP_SESSIONS", "2000")))
