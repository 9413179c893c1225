"""The Score tab's layout and events: upload, draw or click an example, and get the critic's verdict."""

from __future__ import annotations

from typing import Any

import gradio as gr

from .context import AppContext
from .endpoints import user_errors
from .examples import example_gallery, example_images
from .inputs import AppInputError
from .scratch import gallery_files
from .score import (MAX_SCORE_FILES, ScoreReport, auc_markdown, empty_score_table, score_inputs,
                    two_discriminators_markdown)


def _score_outputs(report: ScoreReport) -> tuple:
    return (gallery_files(report.seen), report.table, report.markdown, gallery_files(report.saliency),
            gallery_files(report.neighbours))


def build_score_tab(ctx: AppContext) -> None:
    """Lay out the Score tab inside the current gr.Tab and wire its events (UI only: /score is the API)."""

    @user_errors
    def on_score_files(files: list[str] | None):
        """Score uploaded image files."""
        return _score_outputs(score_inputs(ctx, files or []))

    @user_errors
    def on_score_sketch(value: Any):
        """Score the drawing on the sketch pad."""
        return _score_outputs(score_inputs(ctx, [value], names=["sketch"]))

    @user_errors
    def on_score_example(evt: gr.SelectData):
        """Score a clicked example image."""
        examples = example_images()
        if evt is None or not 0 <= evt.index < len(examples):
            raise AppInputError("unknown example")
        return _score_outputs(score_inputs(ctx, [examples[evt.index]]))

    auc = auc_markdown(ctx)
    gr.Markdown("Is an image a real Fashion-MNIST image or one this GAN generated? Each upload gets a "
                "verdict. Uploads are converted exactly as the training data was made (grayscale, dark "
                "background, cropped, 28x28). " + auc, elem_id="score-intro")
    with gr.Accordion("Two discriminators: why the game's D says 1/2 and what the critic is", open=False):
        gr.Markdown(two_discriminators_markdown(ctx), elem_id="score-explainer")
    with gr.Row():
        with gr.Column():
            with gr.Tabs():
                with gr.Tab("Upload"):
                    s_files = gr.File(label=f"One or more images (up to {MAX_SCORE_FILES})",
                                      file_count="multiple", file_types=["image"], type="filepath",
                                      elem_id="score-files")
                    s_btn = gr.Button("Score uploads", variant="primary", elem_id="score-btn")
                with gr.Tab("Draw"):
                    s_sketch = gr.Sketchpad(label="Draw a garment (pick the brush on the left)", canvas_size=(280, 280), type="numpy",
                                            brush=gr.Brush(colors=["#000000"], color_mode="fixed",
                                                           default_size=14))
                    s_sketch_btn = gr.Button("Score drawing", variant="primary")
            s_examples = gr.Gallery(value=example_gallery(), label="Examples: click one to score it",
                                    columns=5, height="auto", allow_preview=False, object_fit="contain",
                                    buttons=[], elem_id="score-examples")
        with gr.Column():
            s_md = gr.Markdown(elem_id="score-result")
            with gr.Row():
                s_seen = gr.Gallery(label="As the critic and the discriminator see it (28x28)", columns=2,
                                    height=260,
                                    allow_preview=False, buttons=[], elem_classes=["crisp"],
                                    object_fit="contain", elem_id="score-seen")
                s_sal = gr.Gallery(label="Saliency: what drives the verdict", columns=2, height=260,
                                   allow_preview=False, buttons=[], object_fit="contain")
            s_table = gr.Dataframe(value=empty_score_table(), label="Scores", interactive=False, wrap=True)
            s_nn = gr.Gallery(label="Nearest training images to the first image (pixel distance): "
                                    "the generator does not just copy its data", columns=4, height=280,
                              allow_preview=False, buttons=[], elem_classes=["crisp"], object_fit="contain")
    score_outs = [s_seen, s_table, s_md, s_sal, s_nn]
    s_btn.click(on_score_files, s_files, score_outs, api_visibility="private")
    s_sketch_btn.click(on_score_sketch, s_sketch, score_outs, api_visibility="private")
    s_examples.select(on_score_example, None, score_outs, api_visibility="private")
