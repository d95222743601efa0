"""Progress bars for long work: shown on a terminal, silent in pipes, tests and logs."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["progress"]
T = TypeVar("T")


def _enabled() -> bool:
    if os.environ.get("SKYSIEVE_PROGRESS") == "0":
        return False
    return sys.stderr.isatty() or os.environ.get("SKYSIEVE_PROGRESS") == "1"


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Iterate ``items`` with a tqdm bar on stderr when it is a terminal."""
    if not _enabled():
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, total=total, unit=unit, dynamic_ncols=True, leave=False)
