"""Watch the game: a GAN that trains live, on 2-D points or on Fashion-MNIST, with every number measured.

* ``engine``: one D step, one G step, k D steps per G step, the losses the seeds compare, and the caps;
* ``toy`` / ``plane``: the 2-D distributions, MLP players, D's heatmap, G's arrows and the JS estimate;
* ``fashion``: a small conv GAN that trains from scratch on the CPU, with D's read-out histograms;
* ``session``: one trainer with its caps and history (one per browser session, or one headless run);
* ``presets``: the seeds' lessons; ``render`` / ``frames``: the pictures; ``headless`` / ``cli``: the CLI.

No gradio here: the Game tab (gan/app/game_tab.py) wires these functions to the page.
"""

from gan.game.engine import OBJECTIVES, Caps, Game, GameError, Settings
from gan.game.presets import PRESETS, Preset, preset
from gan.game.session import Session, Tick

__all__ = ["OBJECTIVES", "Caps", "Game", "GameError", "Settings", "PRESETS", "Preset", "preset", "Session", "Tick"]
