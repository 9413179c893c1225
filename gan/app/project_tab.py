"""The Project tab's layout and events: upload or click an example, see its projection, then edit it in Generate.

The tab opens with the projection of a real test garment, computed once at start-up. A projection whose
last stage tuned a copy of G keeps that copy in ``gan.app.tuned.TUNED`` under a random key that only the
session's gr.State holds; closing the page drops the session's copies (``demo.unload``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import gradio as gr

from .context import AppContext
from .endpoints import user_errors
from .inputs import AUTO_CLASS, AppInputError
from .project import DEFAULT_PROJECT_STEPS, MAX_PROJECT_STEPS, Projection, model_encoder, project_input
from .project_examples import project_examples
from .scratch import png_file
from .tuned import TUNED

log = logging.getLogger(__name__)
START_EXAMPLE = "real_dress"  # the example the tab shows on load
METHOD_CHOICES = [("auto: the best within the time budget", "auto"), ("encoder alone", "encoder"),
                  ("encoder + refinement of z", "refine"), ("encoder + refinement + tuned G", "tune"),
                  ("optimisation of z (no encoder)", "optimise")]


@dataclass
class ProjectTab:
    """What the other tabs link to: the projection's state and the buttons that hand it over."""

    state: gr.State
    edit: gr.Button
    to_a: gr.Button
    to_b: gr.Button


def projection_state(p: Projection, session: str | None) -> dict:
    """The gr.State form of a projection: its endpoint, and the key of its tuned G (kept for session)."""
    state = p.endpoint.to_state()
    state["tuned"] = TUNED.put(session, p.generator) if p.generator is not None else None
    return state


def _outputs(p: Projection, session: str | None) -> tuple:
    return (png_file(p.target), png_file(p.reconstruction), png_file(p.plot) if p.plot else None, p.markdown,
            projection_state(p, session))


def startup_projection(ctx: AppContext) -> tuple | None:
    """The tab's first result: the projection of a real example garment (None when there is no example)."""
    examples = [p for p, _ in project_examples()]
    if not examples:
        return None
    first = next((p for p in examples if START_EXAMPLE in p), examples[0])
    try:
        return _outputs(project_input(ctx, first, AUTO_CLASS, budget_s=30.0), None)
    except Exception as e:  # noqa: BLE001 - an example must never stop the app
        log.warning("start-up projection failed: %s", e)
        return None


def _method_info(ctx: AppContext) -> str:
    if model_encoder(ctx) is None:
        return "This model has no encoder: 'auto' optimises z, then tunes a copy of G."
    return "'auto' runs the encoder, refines z and tunes a copy of G, as far as the time budget allows."


def build_project_tab(ctx: AppContext, demo: gr.Blocks, choices: list[str], heavy: dict[str, Any]) -> ProjectTab:
    """Lay out the Project tab inside the current gr.Tab and wire its own events (UI only: /project is the API)."""

    @user_errors
    def on_project(upload: str | None, cls: Any, method: Any, steps: Any, request: gr.Request,
                   progress=gr.Progress()):
        """Project an uploaded image."""
        if not upload:
            raise AppInputError("no image uploaded: choose a file first")
        p = project_input(ctx, upload, cls, method=method, steps=steps,
                          progress=lambda s, t: progress((s, t), desc="projecting"))
        return _outputs(p, getattr(request, "session_hash", None) or "anonymous")

    @user_errors
    def on_example(evt: gr.SelectData, cls: Any, method: Any, steps: Any, request: gr.Request):
        """Project a clicked example image."""
        examples = project_examples()
        if evt is None or not 0 <= evt.index < len(examples):
            raise AppInputError("unknown example")
        p = project_input(ctx, examples[evt.index][0], cls, method=method, steps=steps)
        return _outputs(p, getattr(request, "session_hash", None) or "anonymous")

    def on_unload(request: gr.Request) -> None:
        """The page closed: forget the session's tuned generators."""
        TUNED.drop_session(getattr(request, "session_hash", None))

    first = startup_projection(ctx) or (None, None, None, "", None)
    gr.Markdown("Find the latent (and class) whose generated image matches your garment: an encoder gives it in "
                "one pass, a short optimisation refines it, and a copy of G tuned to your image (pivotal tuning) "
                "makes the match nearly exact. **Edit in Generate** then moves your garment with the sliders.")
    with gr.Row():
        with gr.Column():
            up = gr.File(label="Image to project", file_types=["image"], type="filepath", elem_id="proj-file")
            cls = gr.Dropdown([AUTO_CLASS, *ctx.model.class_names] if choices else [AUTO_CLASS], value=AUTO_CLASS,
                              label="Class", visible=bool(choices), info="'auto' tries the likeliest classes")
            method = gr.Dropdown(METHOD_CHOICES, value="auto", label="Method", info=_method_info(ctx),
                                 elem_id="proj-method")
            steps = gr.Slider(2, MAX_PROJECT_STEPS, value=DEFAULT_PROJECT_STEPS, step=1, elem_id="proj-steps",
                              label="Steps of the z optimisation (refinement, or the whole optimisation)")
            btn = gr.Button("Project", variant="primary", elem_id="proj-btn")
            md = gr.Markdown(first[3], elem_id="proj-result")
            gallery = gr.Gallery(value=project_examples(), label="Examples: click one to project it", columns=6,
                                 height=150, allow_preview=False, object_fit="contain", buttons=[],
                                 elem_id="proj-examples")
        with gr.Column():
            with gr.Row():
                target = gr.Image(first[0], label="Target (as D sees it)", interactive=False, elem_classes=["crisp"],
                                  elem_id="proj-target")
                recon = gr.Image(first[1], label="Reconstruction", interactive=False, elem_classes=["crisp"],
                                 elem_id="proj-recon")
            plot = gr.Image(first[2], label="Loss per step", interactive=False)
            with gr.Row():
                edit = gr.Button("Edit in Generate", elem_id="proj-edit")
                to_a = gr.Button("Use as endpoint A")
                to_b = gr.Button("Use as endpoint B")
    state = gr.State(first[4])
    outs = [target, recon, plot, md, state]
    btn.click(on_project, [up, cls, method, steps], outs, api_visibility="private", **heavy)
    gallery.select(on_example, [cls, method, steps], outs, api_visibility="private", **heavy)
    demo.unload(on_unload)
    return ProjectTab(state, edit, to_a, to_b)
