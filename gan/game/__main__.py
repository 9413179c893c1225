"""`python -m gan.game`: see gan/game/cli.py."""

import sys

from gan.game.cli import main

sys.exit(main())
