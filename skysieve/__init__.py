"""skysieve: drone imagery to a suspect list of illegal small chemical workshops.

The core package holds the shell every stage shares: the survey workspace (folder + GeoPackage),
grid cells, known sites, settings, errors, logging and the command line. Stages live in the
subpackages ``skysieve.mosaic``, ``skysieve.detect``, ``skysieve.ledger``, ``skysieve.viewer`` and
``skysieve.datasets``.
"""

from __future__ import annotations

from skysieve.errors import SkysieveError
from skysieve.workspace import Workspace

__version__ = "0.1.0"
__all__ = ["SkysieveError", "Workspace", "__version__"]
