"""The Game tab: a GAN trains live in the page, on 2-D points or on Fashion-MNIST (see docs/game.md).

Bounded by design, since a Space is shared:
* one trainer per browser session, held in a gr.State whose delete callback drops it when the session ends;
* training happens only inside a tick of a gr.Timer (no loop on the server): each tick plays rounds for at
  most TICK_TRAIN_SECONDS, then draws one frame; a closed page sends no more ticks, so training stops;
* every training event shares one concurrency group ("game", GAN_GAME_CONCURRENCY workers, default 1), apart
  from the default group that serves /generate, so a tick never holds a /generate worker; its work runs on
  as many dedicated threads at nice GAN_GAME_NICE (10), so with torch at one thread per request the game
  yields the CPU to /generate and the sliders instead of sharing it evenly;
* caps on updates and wall time per session (GAN_GAME_MAX_STEPS, GAN_GAME_MAX_SECONDS);
* the players are new small models: nothing here reads or writes the shipped model.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from gan.app.endpoints import inline_png
from gan.data import DataError
from gan.game.engine import MAX_K, MAX_LR, OBJECTIVES, Caps, GameError, Settings
from gan.game.frames import charts, histograms, main_image
from gan.game.headless import RunOptions, make_session
from gan.game.presets import PRESETS, preset
from gan.game.session import Session
from gan.game.toy import ToyError, points_from_sketch
from gan.images import ImageInputError, from_editor

log = logging.getLogger(__name__)

TICK_SECONDS = 0.25  # the timer's period; a tick that fires while the last one runs is dropped (trigger "once")
TICK_TRAIN_SECONDS = 1.0  # training time per tick; drawing the frame follows
CHARTS_EVERY_SECONDS = 3.0  # while playing, the charts (the slowest pictures) are redrawn at most this often
GAME_CONCURRENCY = int(os.environ.get("GAN_GAME_CONCURRENCY", "1"))
CAPS = Caps(max_steps=int(os.environ.get("GAN_GAME_MAX_STEPS", "20000")),
            max_seconds=float(os.environ.get("GAN_GAME_MAX_SECONDS", "900")))
MAX_LIVE = int(os.environ.get("GAN_GAME_MAX_LIVE", "32"))  # trainers held in memory across all sessions
IDLE_EVICT_SECONDS = 300.0  # when MAX_LIVE is reached, trainers idle this long make room (their page may be gone)
STATE_TTL_SECONDS = 1800  # a page's trainer is deleted this long after its last event
MODES = {"2-D toy": "toy", "Fashion-MNIST": "fashion"}
DATA_LABELS = {"ring": "ring of 8 Gaussians", "grid": "3x3 grid of Gaussians", "moons": "two moons",
               "drawn": "my drawing"}
GAME = dict(concurrency_limit=GAME_CONCURRENCY, concurrency_id="game", api_visibility="private")

GAME_NICE = int(os.environ.get("GAN_GAME_NICE", "10"))  # the game's threads yield the CPU to every other request


def _lower_priority() -> None:
    """Run this thread at nice GAME_NICE (Linux schedules threads by their own nice value)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), GAME_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: the concurrency limit still bounds the game
        pass


# every game event runs on these threads, at low priority; the Gradio worker that received it only waits
_workers = ThreadPoolExecutor(max_workers=GAME_CONCURRENCY, thread_name_prefix="game", initializer=_lower_priority)
_live: dict[str, Session] = {}  # page (Gradio session hash) -> its one trainer; bounds all pages together
_live_lock = threading.Lock()


CLOSED = "stopped: the page was closed"


def _release(session: Session | None) -> None:
    """gr.State's delete callback: the page is gone, so its trainer stops for good and is freed."""
    if isinstance(session, Session):
        session.stopped = CLOSED
        with _live_lock:
            for key in [k for k, v in _live.items() if v is session]:
                del _live[key]


def on_unload(request: gr.Request) -> None:
    """demo.unload: the page closed; its trainer stops now (the State itself is freed later by Gradio)."""
    with _live_lock:
        session = _live.pop(getattr(request, "session_hash", None) or "", None)
    if session is not None:
        session.stopped = CLOSED


def live_sessions() -> int:
    """How many trainers the server holds now."""
    with _live_lock:
        return len(_live)


def _settings(kind: str, loss: str, lr_d: Any, lr_g: Any, k: Any, gamma: Any) -> Settings:
    base = PRESETS["default"].settings(kind)
    try:
        return base.changed(loss=loss, lr_d=float(lr_d), lr_g=float(lr_g), k=int(k), gamma=float(gamma))
    except (TypeError, ValueError) as e:
        raise GameError(str(e)) from None


def _points(sketch: Any) -> list | None:
    image = from_editor(sketch)
    if image is None:
        raise ToyError("data 'my drawing' needs a drawing: draw a few strokes on the pad first")
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, "white")
    gray = np.asarray(Image.alpha_composite(white, rgba).convert("L"), dtype=np.float32)
    return points_from_sketch(gray).tolist()


def _new_session(mode: str, data: str, preset_name: str, sketch: Any, settings: Settings,
                 request: gr.Request | None) -> Session:
    kind = MODES[mode]
    page = getattr(request, "session_hash", None) or f"anonymous-{threading.get_ident()}"
    with _live_lock:
        if len(_live) >= MAX_LIVE:
            for key, old in list(_live.items()):
                if old.idle_seconds() > IDLE_EVICT_SECONDS:
                    old.stopped = f"stopped: idle for {IDLE_EVICT_SECONDS / 60:.0f} minutes (press Reset to start over)"
                    del _live[key]
        if len(_live) >= MAX_LIVE and page not in _live:
            raise GameError(f"the server already runs {MAX_LIVE} games; please try again in a few minutes")
    opts = RunOptions(data="fashion-mnist" if kind == "fashion" else data, settings=settings,
                      nets=preset(preset_name).nets, caps=CAPS,
                      points=_points(sketch) if kind == "toy" and data == "drawn" else None)
    session = make_session(opts)
    session.config = (mode, data, preset_name)  # what the trainer was built for
    session.paused = True  # a new game waits for Play; a tick queued before it was made must not train it
    with _live_lock:
        old = _live.get(page)
        if old is not None and old is not session:
            old.stopped = "stopped: replaced by a new game on this page"
        _live[page] = session  # one trainer per page
    return session


def _readout(session: Session | None, note: str = "") -> str:
    if session is None:
        return "_Press Play, Step D or Step G to start a game._" + (f"\n\n{note}" if note else "")
    r = session.history[-1]
    cells = [("round", r["round"]), ("D updates", r["d_steps"]), ("G updates", r["g_steps"])]
    for key, label in (("d_loss", "D loss"), ("g_loss", "G loss"), ("d_real", "mean D(x)"),
                       ("d_fake", "mean D(G(z))"), ("value", "V(D, G)"), ("g_grad", "G gradient norm")):
        if key in r:
            cells.append((label, f"{r[key]:.4f}"))
    js = session.latest("js")
    if js is not None:
        cells.append(("JS (bits)", f"{js:.4f}"))
    table = ("| " + " | ".join(c[0] for c in cells) + " |\n|" + "---|" * len(cells) + "\n| "
             + " | ".join(str(c[1]) for c in cells) + " |")
    status = session.stopped or note
    return table + (f"\n\n**{status}**" if status else "")


def _frame(session: Session | None, note: str = "", *, charts_due: bool = True) -> tuple:
    """(main image, charts, histograms, read-out) of a session, images inline; charts only when due."""
    if session is None:
        return None, None, gr.update(visible=False), _readout(None, note)
    if not charts_due:  # the picture and the numbers every tick; the slower charts every CHARTS_EVERY_SECONDS
        return inline_png(main_image(session)), gr.skip(), gr.skip(), _readout(session, note)
    session.charts_at = time.monotonic()
    hist = histograms(session)
    return (inline_png(main_image(session)), inline_png(charts(session)),
            gr.update(value=inline_png(hist), visible=True) if hist is not None else gr.update(visible=False),
            _readout(session, note))


def _session_for(state: Session | None, mode: str, data: str, preset_name: str, sketch: Any,
                 settings: Settings, request: gr.Request | None) -> Session:
    """The page's trainer, made on first use (or when mode/data/preset changed); settings applied."""
    if state is None or state.config != (mode, data, preset_name) or state.stopped == CLOSED:
        _release(state)
        state = _new_session(mode, data, preset_name, sketch, settings, request)
    state.configure(settings)
    return state


def _guard(fn):
    """Bad settings or missing data become a note in the read-out; the timer stops; nothing crashes."""
    @functools.wraps(fn)  # keeps fn's signature: Gradio passes gr.Request by it
    def wrapped(state, *args):
        try:
            return _workers.submit(fn, state, *args).result()
        except (GameError, ToyError, DataError, ImageInputError) as e:
            return (state, gr.Timer(active=False), *_frame(state if isinstance(state, Session) else None,
                                                          f"⚠️ {e}"))
        except Exception as e:  # noqa: BLE001 - a failure must not take the page down
            log.exception("game handler %s failed", fn.__name__)
            return (state, gr.Timer(active=False), *_frame(None, f"⚠️ internal error ({type(e).__name__})"))
    return wrapped


@_guard
def on_play(state, mode, data, preset_name, sketch, loss, lr_d, lr_g, k, gamma, request: gr.Request):
    """Start (or resume) training: the timer ticks from now on."""
    s = _session_for(state, mode, data, preset_name, sketch,
                     _settings(MODES[mode], loss, lr_d, lr_g, k, gamma), request)
    s.paused = False
    return (s, gr.Timer(active=s.check_caps() is None), *_frame(s))


@_guard
def on_tick(state, mode, data, preset_name, sketch, loss, lr_d, lr_g, k, gamma, request: gr.Request):
    """One timer tick: play rounds for TICK_TRAIN_SECONDS with the current controls, then draw."""
    s = _session_for(state, mode, data, preset_name, sketch,
                     _settings(MODES[mode], loss, lr_d, lr_g, k, gamma), request)
    tick = s.advance(seconds=TICK_TRAIN_SECONDS)  # plays nothing once Pause was clicked, even while it runs
    # never re-activate the timer here: a tick still running when Pause is clicked must not undo the pause
    due = tick.stopped is not None or s.paused or time.monotonic() - s.charts_at >= CHARTS_EVERY_SECONDS
    running = tick.stopped is None and not s.paused
    return (s, gr.skip() if running else gr.Timer(active=False), *_frame(s, charts_due=due))


def _one_update(player: str) -> Any:
    """The Step D / Step G handler: one update of that player alone (pauses the game)."""

    @_guard
    def on_step(state, mode, data, preset_name, sketch, loss, lr_d, lr_g, k, gamma, request: gr.Request):
        s = _session_for(state, mode, data, preset_name, sketch,
                         _settings(MODES[mode], loss, lr_d, lr_g, k, gamma), request)
        s.paused = True
        (s.step_d if player == "d" else s.step_g)()
        return (s, gr.Timer(active=False), *_frame(s))

    on_step.__name__ = on_step.__qualname__ = f"on_step_{player}"
    return on_step


on_step_d, on_step_g = _one_update("d"), _one_update("g")


@_guard
def on_reset(state, mode, data, preset_name, sketch, loss, lr_d, lr_g, k, gamma, request: gr.Request):
    """A fresh game with the current controls (paused)."""
    _release(state)
    s = _new_session(mode, data, preset_name, sketch,
                     _settings(MODES[mode], loss, lr_d, lr_g, k, gamma), request)
    return (s, gr.Timer(active=False), *_frame(s))


def on_pause(state):
    """Stop the timer and the game: a tick that is running stops after its current round, and one still queued
    plays nothing (outside the game's queue, so it is not stuck behind them); the game keeps its state."""
    if isinstance(state, Session):
        state.paused = True
    return gr.Timer(active=False)


def _preset_controls(preset_name: str, mode: str) -> tuple:
    p = preset(preset_name)
    s = p.settings(MODES[mode])
    return (s, (s.loss, s.lr_d, s.lr_g, s.k, s.gamma, f"**{p.title}.** {p.lesson_for(MODES[mode])}"))


def on_preset(state, mode, data, preset_name, sketch, loss, lr_d, lr_g, k, gamma, request: gr.Request):
    """A preset fills the controls, shows its lesson and starts a fresh game (paused), in one event."""
    settings, controls = _preset_controls(preset_name, mode)
    return (*controls, *_fresh(state, mode, data, preset_name, sketch, settings, request))


def on_mode(state, mode, data, preset_name, sketch, loss, lr_d, lr_g, k, gamma, request: gr.Request):
    """Switch between the toy and Fashion-MNIST: the preset's settings for that mode, a fresh game."""
    settings, controls = _preset_controls(preset_name, mode)
    return (gr.update(visible=MODES[mode] == "toy"), *controls,
            *_fresh(state, mode, data, preset_name, sketch, settings, request))


def on_data(state, mode, data, preset_name, sketch, loss, lr_d, lr_g, k, gamma, request: gr.Request):
    """Another toy distribution: a fresh game; the drawing pad shows for 'my drawing'."""
    pad = gr.update(visible=data == "drawn", open=data == "drawn")
    if data == "drawn" and not _has_drawing(sketch):  # nothing drawn yet: wait for the drawing
        _release(state)
        return (pad, None, gr.Timer(active=False),
                *_frame(None, "Draw some strokes on the pad, then press Reset or Play."))
    return (pad, *on_reset(state, mode, data, preset_name, sketch, loss, lr_d, lr_g, k, gamma, request))


def _has_drawing(sketch: Any) -> bool:
    try:
        _points(sketch)
        return True
    except (ToyError, ImageInputError):
        return False


@_guard
def _fresh(state, mode, data, preset_name, sketch, settings: Settings, request: gr.Request | None):
    _release(state)
    s = _new_session(mode, data, preset_name, sketch, settings, request)
    return (s, gr.Timer(active=False), *_frame(s))


INTRO = """D learns to tell real from generated; G learns to fool D. At the optimum, D(x) = 1/2 everywhere.
Watch it happen: in the **2-D toy** the background is D's verdict over the plane (green: "real", purple:
"generated"), the dots are real and generated points, and the arrows show where G's loss pushes its points.
In **Fashion-MNIST** a small GAN learns garments from scratch on this server's CPU. **Step D** and **Step G**
play a single update of one player; the controls apply from the next update, even while playing.
Each page runs its own game, up to {steps:,} updates or {minutes:.0f} minutes."""


@functools.lru_cache(maxsize=1)
def starting_position() -> tuple[Image.Image | None, Image.Image | None]:
    """(main image, charts) of the default game before its first update, drawn once per process: what the tab
    shows on load (Play then starts from this very position: a new game is seeded the same way)."""
    try:
        opts = RunOptions(data="ring", settings=PRESETS["default"].settings("toy"), nets=preset("default").nets,
                          caps=CAPS)
        session = make_session(opts)
        return main_image(session), charts(session)
    except Exception as e:  # noqa: BLE001 - a preview must not keep the app from starting
        log.warning("no starting position for the Game tab: %s", e)
        return None, None


def build_game_tab(demo: gr.Blocks | None = None) -> None:
    """Lay out the Game tab inside the current gr.Tab and wire its events (demo: stop a page's game on unload)."""
    if demo is not None:
        demo.unload(on_unload)
    state = gr.State(None, time_to_live=STATE_TTL_SECONDS, delete_callback=_release)
    timer = gr.Timer(TICK_SECONDS, active=False)
    gr.Markdown(INTRO.format(steps=CAPS.max_steps, minutes=CAPS.max_seconds / 60), elem_id="game-intro")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            mode = gr.Radio(list(MODES), value="2-D toy", label="Mode", elem_id="game-mode")
            data = gr.Dropdown([(v, k) for k, v in DATA_LABELS.items()], value="ring", label="Data (2-D toy)",
                               elem_id="game-data")
            with gr.Accordion("Draw your own data (choose 'my drawing')", open=False, visible=False) as pad_box:
                pad = gr.Sketchpad(label="Draw strokes: each dark pixel becomes a data point", canvas_size=(240, 240),
                                   type="numpy", brush=gr.Brush(colors=["#000000"], color_mode="fixed",
                                                                default_size=6))
            pre = gr.Dropdown([(p.title, n) for n, p in PRESETS.items()], value="default", label="Lesson (preset)",
                              elem_id="game-preset")
            lesson = gr.Markdown(f"**{PRESETS['default'].title}.** {PRESETS['default'].lesson_for('toy')}",
                                 elem_id="game-lesson")
            d0 = PRESETS["default"].toy
            loss = gr.Dropdown([(v, k) for k, v in OBJECTIVES.items()], value=d0.loss, label="Loss",
                               elem_id="game-loss")
            with gr.Row():
                lr_d = gr.Number(d0.lr_d, label="lr D", minimum=1e-6, maximum=MAX_LR, step=1e-4, elem_id="game-lr-d")
                lr_g = gr.Number(d0.lr_g, label="lr G", minimum=1e-6, maximum=MAX_LR, step=1e-4, elem_id="game-lr-g")
            with gr.Row():
                k = gr.Slider(1, MAX_K, value=d0.k, step=1, label="k: D steps per G step", elem_id="game-k")
                gamma = gr.Number(d0.gamma, label="R1 / R2 weight", minimum=0, maximum=100, step=0.05,
                                  elem_id="game-gamma")
            with gr.Row():
                play = gr.Button("Play", variant="primary", elem_id="game-play")
                pause = gr.Button("Pause", elem_id="game-pause")
            with gr.Row():
                step_d = gr.Button("Step D", elem_id="game-step-d")
                step_g = gr.Button("Step G", elem_id="game-step-g")
                reset = gr.Button("Reset", elem_id="game-reset")
        with gr.Column(scale=2):
            first_main, first_charts = starting_position()
            readout = gr.Markdown(_readout(None, "The pictures show the starting position: D has learned nothing yet."
                                           if first_main is not None else ""), elem_id="game-readout")
            with gr.Row():
                main = gr.Image(first_main, label="The game now", interactive=False, elem_id="game-main",
                                height=380, buttons=["download"])
                chart = gr.Image(first_charts, label="Charts", interactive=False, elem_id="game-charts", height=380,
                                 buttons=["download"])
            hist = gr.Image(label="D's read-out over time", interactive=False, visible=False, elem_id="game-hist",
                            buttons=["download"])
    _wire(state, timer, mode, data, pad, pad_box, pre, lesson, [loss, lr_d, lr_g, k, gamma],
          dict(play=play, pause=pause, step_d=step_d, step_g=step_g, reset=reset), [main, chart, hist, readout])


def _wire(state, timer, mode, data, pad, pad_box, pre, lesson, controls: list, buttons: dict, views: list) -> None:
    """Events of the tab: the heavy ones share the 'game' concurrency group and draw inline PNGs."""
    inputs = [state, mode, data, pre, pad, *controls]
    outputs = [state, timer, *views]
    heavy = dict(postprocess=False, show_progress="hidden", **GAME)
    buttons["play"].click(on_play, inputs, outputs, **heavy)
    timer.tick(on_tick, inputs, outputs, trigger_mode="once", **heavy)
    buttons["step_d"].click(on_step_d, inputs, outputs, **heavy)
    buttons["step_g"].click(on_step_g, inputs, outputs, **heavy)
    buttons["reset"].click(on_reset, inputs, outputs, **heavy)
    buttons["pause"].click(on_pause, state, timer, api_visibility="private", show_progress="hidden")
    # one event each, in the same queue as Play: a Play clicked right after a switch runs after it
    pre.input(on_preset, inputs, [*controls, lesson, *outputs], **heavy)
    mode.input(on_mode, inputs, [data, *controls, lesson, *outputs], **heavy)
    data.input(on_data, inputs, [pad_box, *outputs], **heavy)
