"""python -m gan COMMAND: the fashion-gan command without installing the package (see gan.cli)."""

import sys

from .cli import main

sys.exit(main(prog="python -m gan"))
