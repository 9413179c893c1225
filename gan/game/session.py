"""A live game session: one mode (2-D toy or Fashion-MNIST), its caps and the metrics of every round.

The same object backs the headless CLI and one browser tab: `advance` plays rounds within a time budget
(one UI tick), `step_d` / `step_g` play a single update, and every call first checks the caps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Union

from gan.game.engine import Caps, Settings
from gan.game.fashion import FashionGame
from gan.game.plane import PlaneGame

Mode = Union[PlaneGame, FashionGame]
MAX_HISTORY = 50_000  # rows kept for the charts (the step cap keeps a session well below this)


@dataclass
class Tick:
    """What one call did: updates played and why it stopped early, if it did."""

    updates: int
    seconds: float
    stopped: str | None


class Session:
    """One trainer: a mode, its caps, and the per-update history that the charts and metrics.jsonl show."""

    def __init__(self, mode: Mode, caps: Caps | None = None, *, measure_every: int = 1):
        self.mode, self.caps = mode, caps or Caps()
        self.measure_every = max(1, measure_every)  # mode.measure() cost: JS is cheap, D's histograms are not
        self.started = time.monotonic()
        self.history: list[dict] = []
        self.stopped: str | None = None
        self.paused = False  # set from another thread (a page's Pause): advance() stops after the current round
        self.config: tuple | None = None  # what a page built this trainer for (mode, data, preset)
        self.charts_at = 0.0  # when a page last drew this session's charts (time.monotonic())
        self.record(measure=True)

    @property
    def kind(self) -> str:
        """'toy' or 'fashion'."""
        return self.mode.kind

    @property
    def game(self):
        """The underlying Game (players, optimisers, counters)."""
        return self.mode.game

    def record(self, *, measure: bool | None = None) -> dict:
        """Append the current reading (plus the mode's measurements when due) to the history."""
        g = self.game
        row = {**g.reading(), "time": round(time.monotonic() - self.started, 3)}
        if measure or (measure is None and g.rounds % self.measure_every == 0):
            row.update(self.mode.measure())
        self.history.append(row)
        if len(self.history) > MAX_HISTORY:
            del self.history[1:len(self.history) // 2:2]  # thin the older half, keep the first row
        return row

    def idle_seconds(self) -> float:
        """Seconds since the last update was played (or since the session began)."""
        return time.monotonic() - self.started - self.history[-1]["time"]

    def check_caps(self) -> str | None:
        """Set and return the stop reason once a cap is reached."""
        if self.stopped is None:
            self.stopped = self.caps.reason(self.game, self.started)
        return self.stopped

    def configure(self, settings: Settings) -> None:
        """Apply new settings (loss, learning rates, k, gamma) from the next update on."""
        self.game.configure(settings)

    def step_d(self) -> Tick:
        """One D update alone (G does not move)."""
        return self._single(self.game.step_d)

    def step_g(self) -> Tick:
        """One G update alone (D does not move)."""
        return self._single(self.game.step_g)

    def _single(self, fn) -> Tick:
        t0 = time.perf_counter()
        if self.check_caps():
            return Tick(0, 0.0, self.stopped)
        fn()
        self.record(measure=True)
        return Tick(1, time.perf_counter() - t0, None)

    def advance(self, *, seconds: float | None = None, rounds: int | None = None) -> Tick:
        """Play rounds (k D steps + 1 G step) until the time budget or round count is spent, or a cap hits."""
        if seconds is None and rounds is None:
            raise ValueError("advance needs seconds or rounds")
        t0, done, updates = time.perf_counter(), 0, 0
        while (rounds is None or done < rounds) and (seconds is None or time.perf_counter() - t0 < seconds):
            if self.check_caps() or self.paused:
                break
            self.game.play_round()
            updates += self.game.settings.k + 1
            done += 1
            self.record()
        return Tick(updates, time.perf_counter() - t0, self.stopped)

    def latest(self, key: str):
        """The most recent value of a metric in the history (None if never measured)."""
        for row in reversed(self.history):
            if key in row:
                return row[key]
        return None
