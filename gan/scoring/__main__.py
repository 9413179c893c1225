"""python -m gan.scoring DIR: calibrate the game discriminator (see gan.scoring.cli)."""

import sys

from .cli import main

sys.exit(main())
