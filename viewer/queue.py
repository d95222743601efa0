"""The review queue: which detection is current, what comes next. Pure Python, no Qt.

Rows are the dicts that :func:`skysieve.ledger.review_queue` returns (the ``detections`` columns of
:data:`skysieve.schema.DETECTIONS`), most suspicious first. The queue only walks them; decisions are
made by the ledger and the changed row is put back with :meth:`ReviewQueue.replace`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["QueueFilter", "ReviewQueue"]


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

    def advance(self) -> dict[str, Any] | None:
        """After a decision: the next undecided row below the current one, else simply the next row.

        This is the culling-tool step: decided rows stay in the list (their new status visible) but
        the cursor skips what someone already decided.
        """
        for i in range(self.index + 1, len(self.rows)):
            if self.rows[i].get("review_status", "pending") == "pending":
                return self.select(i)
        return self.next()

    def replace(self, row: dict[str, Any]) -> int | None:
        """Put a re-read row back in place (same ``det_id``); returns its index or ``None``."""
        i = self._pos.get(row["det_id"])
        if i is not None:
            self.rows[i] = row
        return i

    def counts(self) -> dict[str, int]:
        """Rows per review status."""
        out: dict[str, int] = {}
        for r in self.rows:
            s = r.get("review_status") or "pending"
            out[s] = out.get(s, 0) + 1
        return out
