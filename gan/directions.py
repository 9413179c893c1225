"""Kept for ``python -m gan.directions DIR`` (documented before the move): the code is in gan.latent."""

import sys

from .latent.build import write_directions  # noqa: F401
from .latent.cli import directions_main as main
from .latent.directions import *  # noqa: F401,F403

if __name__ == "__main__":
    sys.exit(main(prog="python -m gan.directions"))
