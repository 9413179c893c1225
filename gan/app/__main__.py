"""python -m gan.app write-examples: the app's asset command line (see gan.app.cli)."""

import sys

from .cli import main

sys.exit(main())
