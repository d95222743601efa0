"""Running independent render jobs on the machine's cores (two here), in order, or in-process for one."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from skysieve.cpus import usable_cpus

__all__ = ["ordered_map", "default_workers", "cv2_threads"]

T = TypeVar("T")

_INIT_ERROR: list[BaseException] = []


@contextlib.contextmanager
def cv2_threads(n: int = 1) -> Iterator[None]:
    """Run OpenCV with ``n`` threads inside the block, then restore the caller's setting.

    Some OpenCV float kernels round differently depending on how rows are split between threads (one
    grey level on a few pixels); rendering single-threaded keeps the output bytes the same in every
    process, whatever the caller (or a library such as ultralytics) set. Parallelism comes from processes.
    """
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def default_workers(n_jobs: int, cap: int = 2) -> int:
    """Processes worth starting for ``n_jobs`` jobs: none extra for a handful, else up to ``cap`` cores."""
    return 1 if n_jobs < 8 else max(1, min(cap, usable_cpus(), n_jobs))


def _safe_init(initializer: Callable[..., None], initargs: tuple) -> None:
    # an exception escaping a pool initializer makes the pool respawn workers forever: keep it for the jobs
    try:
        initializer(*initargs)
    except BaseException as e:  # re-raised by every job of this worker
        _INIT_ERROR.append(e)


def _run(pair: tuple[Callable[[Any], Any], Any]) -> Any:
    if _INIT_ERROR:
        raise _INIT_ERROR[0]
    func, job = pair
    return func(job)


def ordered_map(func: Callable[[Any], T], jobs: Sequence[Any], workers: int,
                initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> Iterator[T]:
    """``func(job)`` for each job, yielded in job order. ``workers > 1`` uses a spawned process pool whose
    processes first run ``initializer(*initargs)`` (e.g. rebuild a scene); else everything runs here.
    An error in the initializer or a job is raised here, in the caller."""
    if workers <= 1 or len(jobs) < 2:
        if initializer is not None:
            initializer(*initargs)
        for job in jobs:
            yield func(job)
        return
    ctx = mp.get_context("spawn")
    init = (_safe_init, (initializer, initargs)) if initializer is not None else (None, ())
    with ctx.Pool(workers, initializer=init[0], initargs=init[1]) as pool:
        yield from pool.imap(_run, [(func, job) for job in jobs], chunksize=1)
