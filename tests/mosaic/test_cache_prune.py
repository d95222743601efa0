"""The per-flight feature and tie store does not grow for ever: ``skysieve mosaic`` prunes what no run uses."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from ortho_scene import grid_shots, make_ground, make_workspace

from skysieve.camera import Camera
from skysieve.cli import main
from skysieve.mosaic.photos import Photo
from skysieve.mosaic.tiecache import TieCache, prune

DAY = 86400.0


def _entry(cache: TieCache, flight: str, key: str, age_days: float, kb: int = 64) -> Path:
    photo = Photo(f"{flight}/A.JPG", f"/nowhere/{flight}/A.JPG", Camera(400, 300, 400.0), None, "ab" * 32, flight)
    cache.save(photo, "features", key, {"desc": np.zeros(kb * 1024, np.uint8)})
    path = cache._folder(photo, "features") / f"{key}.npz"
    t = time.time() - age_days * DAY
    os.utime(path, (t, t))
    return path


def test_unused_entries_go_by_age_then_least_recently_used_first_and_a_read_counts_as_use(tmp_path: Path) -> None:
    cache = TieCache(tmp_path)
    old = _entry(cache, "f1", "old", 40)
    read_old = _entry(cache, "f1", "read", 40)
    mid = _entry(cache, "f1", "mid", 5)
    new = _entry(cache, "f1", "new", 1)
    other = _entry(cache, "f2", "other", 2)
    killed = old.parent / ".half.npz.x1.tmp"  # a killed write's temporary
    killed.write_bytes(b"PK half")
    os.utime(killed, (time.time() - 3600,) * 2)
    photo = Photo("f1/A.JPG", "/nowhere/f1/A.JPG", Camera(400, 300, 400.0), None, "ab" * 32, "f1")
    assert cache.load(photo, "features", "read") is not None  # used today: no longer 40 days old
    size = new.stat().st_size

    report = prune(tmp_path, max_age_days=30, max_bytes=10 * size)
    assert not old.exists() and not killed.exists()
    assert read_old.exists() and mid.exists() and new.exists() and other.exists()
    assert (report.removed_files, report.kept_files) == (2, 4)
    assert report.removed_bytes == size + len(b"PK half")

    # over the size: the least recently used go first, per flight (the entry read today is the most recent);
    # f2's store is small and untouched
    report = prune(tmp_path, max_age_days=30, max_bytes=int(1.5 * size))
    assert not mid.exists() and not new.exists() and read_old.exists() and other.exists()
    assert report.removed_files == 2 and report.kept_bytes == 2 * size

    # what the current run used stays, whatever the size; an emptied store leaves no empty folders
    report = prune(tmp_path, max_age_days=30, max_bytes=0, keep_since=time.time() - 1.5 * DAY)
    assert read_old.exists() and not other.exists() and report.kept_files == 1
    assert not (tmp_path / "flights" / "f2" / ".mosaic-cache").exists()


def test_skysieve_mosaic_prunes_stale_entries_and_keeps_what_it_used(tmp_path: Path, capsys) -> None:
    cam = Camera(400, 300, 400.0)
    shots = grid_shots(cam, 30.0, 18, 20, 2, 1, 9.0, 9.0, gps_sigma_m=0.5, seed=1)
    ws = make_workspace(tmp_path / "ws", make_ground(60.0, 0.05, seed=3), shots)
    for k, s in enumerate(shots):
        ws.gpkg.update("images", "image_id = ?", (s.image_id,), {"sha256": f"{k:064x}"})
    stale = _entry(TieCache(ws.root), "f1", "from-an-older-version", 45)
    assert main(["mosaic", str(ws.root), "--workers", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["status"] for c in out["cells"]] == ["built"]
    assert not stale.exists() and out["cache"]["removed_files"] == 1
    store = ws.flight_dir("f1") / ".mosaic-cache"
    used = sorted(p.name for p in store.rglob("*.npz"))
    assert len(used) >= 3 and out["cache"]["kept_files"] >= 3  # two photos' features, their pair
    # a run that used them yesterday still keeps them under a tiny size cap: a rerun needs them
    assert main(["mosaic", str(ws.root), "--workers", "1", "--force", "--cache-gb", "0", "--json"]) == 0
    assert sorted(p.name for p in store.rglob("*.npz")) == used


def test_a_flight_solution_read_from_the_cache_counts_as_used(tmp_path: Path) -> None:
    import skysieve.mosaic.solve as solve

    shots = grid_shots(Camera(400, 300, 400.0), 30.0, 18, 20, 2, 1, 9.0, 9.0, gps_sigma_m=0.5, seed=1)
    ws = make_workspace(tmp_path / "ws", make_ground(60.0, 0.05, seed=3), shots)
    assert main(["mosaic", str(ws.root), "--workers", "1"]) == 0
    [path] = (ws.flight_dir("f1") / ".mosaic-cache" / "solve").glob("*.json")
    old = time.time() - 40 * DAY
    os.utime(path, (old, old))
    solve._read(path)  # what a rebuilt cell does with a cached solution
    assert time.time() - path.stat().st_mtime < DAY
    prune(ws.root)
    assert path.exists()


def test_a_write_under_way_is_never_pruned_whatever_the_size(tmp_path: Path) -> None:
    cache = TieCache(tmp_path)
    entry = _entry(cache, "f1", "old", 40)
    writing = entry.parent / ".new.npz.x7.tmp"  # another process's write, not yet renamed into place
    writing.write_bytes(b"PK part")
    report = prune(tmp_path, max_age_days=30, max_bytes=0)
    assert writing.exists() and not entry.exists()
    assert (report.removed_files, report.kept_files, report.kept_bytes) == (1, 1, len(b"PK part"))
