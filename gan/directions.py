"""Kept for ``python -m gan.directions DIR`` (documented before the move): the code is in gan.latent.directions."""

import sys

from .latent.directions import *  # noqa: F401,F403
from .latent.directions import main

if __name__ == "__main__":
    sys.exit(main())
