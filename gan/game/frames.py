"""What a session looks like now: the main picture (D's plane or the sample grid), charts, histograms."""

from __future__ import annotations

from PIL import Image

from gan.game.fashion import GRID_SIDE
from gan.game.render import charts_image, grid_frame, histograms_image, plane_image, side_by_side
from gan.game.session import Session
from gan.visualize import grid_image


def caption(session: Session) -> str:
    """One line: round, update counts and the latest read-outs."""
    r = session.history[-1]
    text = f"round {r['round']} · D updates {r['d_steps']} · G updates {r['g_steps']}"
    js = session.latest("js")
    return text + (f" · JS {js:.3f} bits" if js is not None else "")


def main_image(session: Session) -> Image.Image:
    """D's heatmap with points and arrows (toy), or G's fixed-noise grid (Fashion-MNIST)."""
    if session.kind == "toy":
        return plane_image(session.mode.view(), caption(session))
    grid = grid_image(session.mode.samples(), GRID_SIDE, scale=3)
    return grid_frame(grid, caption(session))


def charts(session: Session) -> Image.Image:
    """Loss, read-out, value and JS / gradient charts of the whole history."""
    return charts_image(session.history, session.kind, session.game.settings.loss)


def histograms(session: Session) -> Image.Image | None:
    """D(x) and D(G(z)) histograms over time (Fashion-MNIST only)."""
    return histograms_image(session.history) if session.kind == "fashion" else None


def render_frame(session: Session) -> Image.Image:
    """One frame of the headless GIF: the main picture beside the charts (and histograms below them)."""
    right = charts(session)
    hist = histograms(session)
    if hist is not None:
        stacked = Image.new("RGB", (max(right.width, hist.width), right.height + hist.height), "white")
        stacked.paste(right, (0, 0))
        stacked.paste(hist, (0, right.height))
        right = stacked
    return side_by_side(main_image(session), right)
