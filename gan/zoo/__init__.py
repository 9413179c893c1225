"""A zoo of small generators of other families, kept as samples: what the Score tab's detector learns from
and is measured on (``gan.scoring.detector``).  ``python -m gan.zoo`` trains every family and writes the
samples; ``load_zoo`` reads them."""

from .families import FAMILIES, SEALED, Family
from .store import SEALED_DIR, ZOO_DIR, ZooMissing, ZooSamples, load_zoo

__all__ = ["FAMILIES", "SEALED", "SEALED_DIR", "Family", "ZOO_DIR", "ZooMissing", "ZooSamples", "load_zoo"]
