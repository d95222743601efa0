"""Process pools for rendering: results in order, errors (also in a worker's initializer) raised to the caller."""

from __future__ import annotations

import pytest

from skysieve.datasets.parallel import default_workers, ordered_map
from skysieve.errors import DatasetError


def _double(x: int) -> int:
    return 2 * x


def _broken_init(path: str) -> None:
    raise DatasetError("world changed under the workers", path=path)


def test_results_come_in_order_with_and_without_processes():
    jobs = list(range(12))
    assert list(ordered_map(_double, jobs, 1)) == list(ordered_map(_double, jobs, 2)) == [2 * j for j in jobs]


def test_initializer_error_reaches_the_caller_instead_of_hanging():
    with pytest.raises(DatasetError, match="world changed"):
        list(ordered_map(_double, list(range(10)), 2, _broken_init, ("/nowhere",)))


def test_small_batches_stay_in_process():
    assert default_workers(3) == 1 and default_workers(100, cap=2) <= 2
