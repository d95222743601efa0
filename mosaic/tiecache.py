"""Features and tie points kept on disk, so each photo is described once and each pair matched once per flight
(mostly: see the keys below).

Neighbouring cells share the photos along their border (a cell takes every photo whose footprint touches
it plus a margin), and a rerun after one photo changed needs every other pair again: without a store, the
same photos were decoded, described and matched once per cell. The store lives with the flight,
``flights/<flight_id>/.mosaic-cache/``:

- ``features/<key>.npz``: one photo's keypoints (native pixels) and SIFT descriptors; the key hashes the
  photo's content (sha256, else path, size and time) and the matching settings that shape features;
- ``ties/<key>.npz``: one pair's tie points, or none (a pair that did not match is remembered too); the key
  adds both photos' GPS poses (guided matching searches around them) and the pair settings.

Features are reduced to the resolution of the set of photos solved together (``gsd_m`` is in the key):
a cell that two flights share is solved with both flights' photos, at their common resolution, and where
that differs from a flight's own its photos are described, and their pairs matched, once more. A pair is
stored in its first photo's flight folder. Entries are written atomically (``.<key>.npz.<random>.tmp``,
then renamed: a killed write leaves a hidden ``.tmp`` that no ``*.npz`` pattern takes for an entry, and
that a later write of the same entry removes once ten minutes old), so processes mosaicking different cells at once may write
the same entry and a reader never sees half of one; an entry that cannot be read is recomputed.
Deleting the folder is always safe. It is hidden (a dot folder), so that ingesting the flight
folder again, when the photos live in the workspace, does not list it.

Old keys are never read again (a photo replaced, settings changed, a new version), so the store is pruned
after each ``skysieve mosaic`` (:func:`prune`): a read touches its entry, and entries unused for
``max_age_days`` go, then the least recently used until each flight's store is under ``max_bytes``; what
the run just used is kept whatever the size.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from skysieve.atomic import atomic_path

__all__ = ["TieCache", "CACHE_DIR", "CacheReport", "content_key", "prune", "stable_hash"]

#: np.load parses each array's header with ast.literal_eval, and CPython 3.11 (before 3.11.9, gh-106905)
#: can raise "SystemError: AST constructor recursion depth mismatch" when two threads parse at once:
#: the matching threads read the cache one at a time (reading is milliseconds; matching is not)
_LOAD_LOCK = threading.Lock()

log = logging.getLogger(__name__)

CACHE_DIR = ".mosaic-cache"
VERSION = 2  # bump when features or matching change for the same inputs (2: grey from the colour decode,
# thumbnails kept, FLANN seeded and 16 checks)
STALE_S = 600.0  # a temporary entry older than this (seconds) is a killed write's


def stable_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:32]


def content_key(photo) -> str:
    """What identifies a photo's pixels: its sha256, else its path with size and modification time."""
    if photo.sha256:
        return photo.sha256
    p = Path(photo.path)
    try:
        st = p.stat()
    except OSError:
        return f"{p}:missing"
    return f"{p}:{st.st_size}:{st.st_mtime_ns}"


@dataclass(frozen=True)
class TieCache:
    """The store under a workspace folder ``root`` (``flights/<flight_id>/.mosaic-cache/``)."""

    root: Path

    def _folder(self, photo, kind: str) -> Path:
        return Path(self.root) / "flights" / (photo.flight_id or "_") / CACHE_DIR / kind

    def feature_key(self, photo, gsd_m: float, settings) -> str:
        shape = {k: v for k, v in asdict(settings).items()
                 if k in ("max_features", "pixels_per_feature")}
        return stable_hash([VERSION, content_key(photo), round(gsd_m, 7), shape])

    def pair_key(self, key_i: str, key_j: str, photo_i, photo_j, settings) -> str:
        pair = {k: v for k, v in asdict(settings).items() if k not in ("threads", "min_overlap", "match_size_px")}
        return stable_hash([VERSION, key_i, key_j, repr(photo_i.pose), repr(photo_j.pose), repr(photo_i.camera),
                      repr(photo_j.camera), pair])

    def load(self, photo, kind: str, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key`` (``kind``: features or ties), or None."""
        path = self._folder(photo, kind) / f"{key}.npz"
        try:
            with _LOAD_LOCK, np.load(path) as z:
                out = {k: z[k] for k in z.files}
            with contextlib.suppress(OSError):  # last use, for pruning
                os.utime(path)
            return out
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:  # damaged: recompute it
            log.warning("mosaic cache entry %s unreadable (%s): recomputing", path, e)
            return None

    def save(self, photo, kind: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Store ``arrays`` under ``key``; a failure to write only costs the recomputation next time."""
        path = self._folder(photo, kind) / f"{key}.npz"
        for stale in path.parent.glob(f".{path.name}.*"):  # a killed write of this entry (or one under way)
            with contextlib.suppress(OSError):
                if time.time() - stale.stat().st_mtime > STALE_S:
                    stale.unlink()
        try:
            with atomic_path(path, suffix=".tmp") as tmp, open(tmp, "wb") as f:
                np.savez(f, **arrays)
        except OSError as e:
            log.warning("mosaic cache: cannot write %s (%s)", path, e)


MAX_AGE_DAYS = 30.0  # an entry unused this long is pruned
MAX_BYTES = 4 << 30  # a flight's store is pruned to this size (least recently used first)


@dataclass(frozen=True)
class CacheReport:
    """What :func:`prune` removed and kept, over every flight's store."""

    removed_files: int
    removed_bytes: int
    kept_files: int
    kept_bytes: int


def prune(root: str | Path, max_age_days: float = MAX_AGE_DAYS, max_bytes: int = MAX_BYTES,
          keep_since: float | None = None, now: float | None = None) -> CacheReport:
    """Prune ``flights/*/.mosaic-cache/`` under workspace ``root``: entries (any file) unused for
    ``max_age_days``, then the least recently used until a flight's store is under ``max_bytes``; entries
    used at or after ``keep_since`` (a run's start, epoch seconds) are kept whatever the size. Temporary files
    of writes go once :data:`STALE_S` old (a killed write's), never sooner (another process may be writing
    it). Empty folders are removed."""
    now = time.time() if now is None else now
    removed_files = removed_bytes = kept_files = kept_bytes = 0
    for store in sorted(Path(root).glob(f"flights/*/{CACHE_DIR}")):
        entries = []
        for path in store.rglob("*"):
            with contextlib.suppress(FileNotFoundError):
                if path.is_file():
                    st = path.stat()
                    entries.append((st.st_mtime, st.st_size, path))
        entries.sort(key=lambda e: e[0])  # least recently used first
        total = sum(size for _, size, _ in entries)
        for used, size, path in entries:
            if path.name.startswith(".") and path.name.endswith(".tmp"):  # a write: another process's, or killed
                go = now - used > STALE_S
            else:
                recent = keep_since is not None and used >= keep_since
                go = not recent and (now - used > max_age_days * 86400.0 or total > max_bytes)
            if go:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed_files += 1
                    removed_bytes += size
                total -= size
            else:
                kept_files += 1
                kept_bytes += size
        for folder in sorted([p for p in store.rglob("*") if p.is_dir()] + [store], key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty
    return CacheReport(removed_files, removed_bytes, kept_files, kept_bytes)
