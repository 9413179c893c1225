"""python -m gan.zoo: train the zoo's families and write their samples (see gan.zoo.cli)."""

import sys

from .cli import main

sys.exit(main())
