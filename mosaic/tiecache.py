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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from skysieve.atomic import atomic_path

__all__ = ["TieCache", "CACHE_DIR", "content_key", "stable_hash"]

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
                return {k: z[k] for k in z.files}
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
