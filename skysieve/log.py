"""Logging set-up for the command line (library modules only call ``logging.getLogger(__name__)``)."""

from __future__ import annotations

import logging
import os

__all__ = ["configure_logging"]


def configure_logging(verbosity: int = 0) -> None:
    """Console logging: warnings by default, info with -v, debug with -vv (or SKYSIEVE_LOG=DEBUG)."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    env = os.environ.get("SKYSIEVE_LOG")
    if env:
        level = getattr(logging, env.upper(), level)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("skysieve").setLevel(level)
    for noisy in ("rasterio", "PIL", "matplotlib", "ultralytics"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
