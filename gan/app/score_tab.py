"""The Score tab's layout and events: upload, draw or click an example, and get the verdict.

On load the tab shows two examples already scored (a real test image and one of this model's samples),
scored once at start-up; an upload is scored as soon as it arrives.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr

from .context import AppContext
from .endpoints import user_errors
from .examples import example_gallery, example_images
from .inputs import AppInputError
from .score import MAX_SCORE_FILES, ScoreReport, auc_markdown, score_inputs, two_discriminators_markdown
from .score_table import empty_score_table, table_legend
from .scratch import gallery_files

log = logging.getLogger(__name__)


def _score_outputs(report: ScoreReport) -> tuple:
    """(seen, table, markdown, saliency, neighbours); a gallery with nothing to show is hidden."""
    def gallery(items: list) -> dict:
        return gr.update(value=gallery_files(items), visible=bool(items))
    return (gallery(report.seen), gr.update(value=report.table, visible=True), report.markdown,
            gallery(report.saliency), gallery(report.neighbours))


def first_examples() -> list[str]:
    """The examples scored on load: the first real test image and the first of this model's samples."""
    paths = example_images()
    picks = [next((p for p in paths if Path(p).name.startswith(kind)), None) for kind in ("real_", "generated_")]
    return [p for p in picks if p]


def first_report(ctx: AppContext) -> ScoreReport | None:
    """The on-load result of the tab (None without examples, or when they cannot be scored)."""
    examples = first_examples()
    if not examples:
        return None
    try:
        return score_inputs(ctx, examples)
    except Exception as e:  # noqa: BLE001 - the tab still works without its first result
        log.warning("the Score tab's examples could not be scored: %s", e)
        return None


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
    gr.Markdown("Is an image a real Fashion-MNIST image, or did a generator (this GAN or another) make it? Each "
                "upload gets a verdict. An image already in the data set's format (28x28 grayscale, or a "
                "pixel-repeated copy of one) is read exactly as it is; anything else is converted as the data "
                "set was made (grayscale, dark background, cropped, 28x28). " + auc, elem_id="score-intro")
    with gr.Accordion("Two discriminators: why the game's D says 1/2 and what the critic is", open=False):
        gr.Markdown(two_discriminators_markdown(ctx), elem_id="score-explainer")
    first = first_report(ctx)
    seen, sal, nn = (first.seen, first.saliency, first.neighbours) if first else ([], [], [])
    with gr.Row():
        with gr.Column():
            with gr.Tabs():
                with gr.Tab("Upload"):
                    s_files = gr.File(label=f"One or more images (up to {MAX_SCORE_FILES})",
                                      file_count="multiple", file_types=["image"], type="filepath",
                                      elem_id="score-files")
                    s_btn = gr.Button("Score again", elem_id="score-btn")
                with gr.Tab("Draw"):
                    s_sketch = gr.Sketchpad(label="Draw a garment (pick the brush on the left)", canvas_size=(280, 280),
                                            type="numpy", brush=gr.Brush(colors=["#000000"], color_mode="fixed",
                                                                         default_size=14))
                    s_sketch_btn = gr.Button("Score drawing", variant="primary")
            s_examples = gr.Gallery(value=example_gallery(), label="Examples: click one to score it",
                                    columns=5, height="auto", allow_preview=False, object_fit="contain",
                                    buttons=[], elem_id="score-examples")
        with gr.Column():
            s_md = gr.Markdown(first.markdown if first else "_Upload, draw or click an example to score it._",
                               elem_id="score-result")
            with gr.Row():
                s_seen = gr.Gallery(gallery_files(seen), label="As the critic and the discriminator see it (28x28)",
                                    columns=2, height=260, allow_preview=False, buttons=[], elem_classes=["crisp"],
                                    object_fit="contain", elem_id="score-seen", visible=bool(seen))
                s_sal = gr.Gallery(gallery_files(sal), label="Saliency: what drives the verdict", columns=2, height=260,
                                   allow_preview=False, buttons=[], object_fit="contain", elem_id="score-saliency",
                                   visible=bool(sal))
            s_nn = gr.Gallery(gallery_files(nn), label="Nearest training images to the first image (pixel distance): "
                                                    "the generator does not just copy its data", columns=4, height=280,
                              allow_preview=False, buttons=[], elem_classes=["crisp"], object_fit="contain",
                              elem_id="score-neighbours", visible=bool(nn))
    # the whole width: every column reads without scrolling; the legend explains the short headers
    s_table = gr.Dataframe(first.table if first else empty_score_table(), label="Scores", interactive=False,
                           elem_id="score-table", visible=first is not None, max_chars=40)
    gr.Markdown(table_legend(), elem_id="score-legend")
    score_outs = [s_seen, s_table, s_md, s_sal, s_nn]
    s_files.upload(on_score_files, s_files, score_outs, api_visibility="private")  # scored as soon as it arrives
    s_btn.click(on_score_files, s_files, score_outs, api_visibility="private")
    s_sketch_btn.click(on_score_sketch, s_sketch, score_outs, api_visibility="private")
    s_examples.select(on_score_example, None, score_outs, api_visibility="private")
