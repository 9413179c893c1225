"""python -m gan.latent COMMAND: the latent tools' command lines (see gan.latent.cli)."""

import sys

from .cli import main

sys.exit(main())
