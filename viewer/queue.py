"""The review queue: which detection is current, what comes next. Pure Python, no Qt.

Rows are the dicts that :func:`skysieve.ledger.review_queue` returns (the ``detections`` columns of
:data:`skysieve.schema.DETECTIONS`), most suspicious first. The queue only walks them; decisions are
made by the ledger and the changed row is put back with :meth:`ReviewQueue.replace`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["QueueFilter", "ReviewQueue"]


def _status(row: dict[str, Any]) -> str:
    return row.get("review_status") or "pending"


@dataclass(frozen=True)
class QueueFilter:
    """What the analyst wants to see; ``None`` means no restriction."""

    classes: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    site_id: str | None = None
    min_score: float | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`skysieve.ledger.review_queue`."""
        return {"classes": self.classes, "statuses": self.statuses, "site_id": self.site_id,
                "min_score": self.min_score}


class ReviewQueue:
    """An ordered list of detection rows and a cursor (``index``; -1 when empty)."""

    def __init__(self, rows: Sequence[dict[str, Any]] = ()) -> None:
        self.rows: list[dict[str, Any]] = list(rows)
        self._pos = {r["det_id"]: i for i, r in enumerate(self.rows)}
        self.index = 0 if self.rows else -1
        self._counts = Counter(_status(r) for r in self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def current(self) -> dict[str, Any] | None:
        return self.rows[self.index] if 0 <= self.index < len(self.rows) else None

    def position(self, det_id: str) -> int | None:
        """Index of ``det_id`` in the queue, or ``None`` if the filter hides it."""
        return self._pos.get(det_id)

    def select(self, index: int) -> dict[str, Any] | None:
        """Make row ``index`` current (clamped to the queue)."""
        if self.rows:
            self.index = min(max(int(index), 0), len(self.rows) - 1)
        return self.current

    def next(self) -> dict[str, Any] | None:
        return self.select(self.index + 1)

    def previous(self) -> dict[str, Any] | None:
        return self.select(self.index - 1)

    def upcoming(self) -> int | None:
        """Index :meth:`advance` would move to: the next undecided row below, else the next row."""
        for i in range(self.index + 1, len(self.rows)):
            if _status(self.rows[i]) == "pending":
                return i
        return self.index + 1 if self.index + 1 < len(self.rows) else None

    def advance(self) -> dict[str, Any] | None:
        """After a decision: the next undecided row below the current one, else simply the next row.

        This is the culling-tool step: decided rows stay in the list (their new status visible) but
        the cursor skips what someone already decided.
        """
        i = self.upcoming()
        return self.select(i) if i is not None else self.current

    def replace(self, row: dict[str, Any]) -> int | None:
        """Put a re-read row back in place (same ``det_id``); returns its index or ``None``."""
        i = self._pos.get(row["det_id"])
        if i is not None:
            self._counts[_status(self.rows[i])] -= 1
            self._counts[_status(row)] += 1
            self.rows[i] = row
        return i

    def counts(self) -> dict[str, int]:
        """Rows per review status (kept up to date by :meth:`replace`)."""
        return {k: v for k, v in self._counts.items() if v}
