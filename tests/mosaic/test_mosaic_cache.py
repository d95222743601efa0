"""The per-flight caches (features, ties, solution) against photos that come and go, reruns with --force,
and processes that solve the same flight at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ortho_scene import grid_shots, make_ground, make_workspace

from skysieve.camera import Camera
from skysieve.mosaic.ortho import MosaicSettings, mosaic_cell

CELL = "E576000N5188000"
CAM = Camera(400, 300, 400.0)  # 30 m up: 7.5 cm/px


@pytest.fixture(scope="module")
def ground():
    return make_ground(80.0, 0.05, seed=3)


def _workspace(root: Path, ground, n: int = 6, sha256: bool = True):
    """A 3 x 2 flight; ``sha256``: rows carry a content hash as ingest records it (the caches key on it)."""
    shots = grid_shots(CAM, 30.0, 18, 20, 3, 2, 9.0, 9.0, gps_sigma_m=0.5, seed=1)[:n]
    ws = make_workspace(root, ground, shots)
    if sha256:
        for k, s in enumerate(shots):
            ws.gpkg.update("images", "image_id = ?", (s.image_id,), {"sha256": f"{k:064x}"})
    return ws, [s.image_id for s in shots]


def _solutions(ws) -> list[Path]:
    return sorted((ws.flight_dir("f1") / ".mosaic-cache" / "solve").glob("*.json"))


def test_a_photo_unreadable_once_is_used_when_it_is_back(tmp_path: Path, ground) -> None:
    ws, ids = _workspace(tmp_path / "ws", ground)
    photo = ws.flight_dir("f1") / Path(ids[0]).name
    good = photo.read_bytes()
    photo.write_bytes(b"")  # an upload not started yet: the sha256 ingest recorded stays
    first = mosaic_cell(ws.root, CELL)
    assert first["status"] == "built" and ids[0] not in first["images_used"]
    assert first["images_unreadable"] == [ids[0]]
    assert not _solutions(ws)  # a solution missing a photo is not kept
    photo.write_bytes(good)
    again = mosaic_cell(ws.root, CELL)  # no --force: the cell knows it lacked a photo
    assert again["status"] == "built" and again["images_used"] == ids
    assert again["images_unreadable"] == [] and again["images_flagged"] == []
    assert len(_solutions(ws)) == 1
    assert mosaic_cell(ws.root, CELL)["status"] == "skipped"


def test_a_photo_deleted_after_the_flight_was_solved_is_flagged_and_the_cell_goes_on(tmp_path: Path, ground) -> None:
    ws, ids = _workspace(tmp_path / "ws", ground)
    assert mosaic_cell(ws.root, CELL)["images_used"] == ids
    (ws.flight_dir("f1") / Path(ids[2]).name).unlink()
    # another output block size: the cell is rebuilt from the cached flight solution, which still places the photo
    report = mosaic_cell(ws.root, CELL, MosaicSettings(window_px=256))
    assert report["status"] == "built" and report["images_used"] == ids[:2] + ids[3:]
    [flag] = report["images_flagged"]
    assert flag["image_id"] == ids[2] and "cannot read" in flag["reason"] and "restore" in flag["reason"]
    # --force solves the flight again: matching reports the missing file although its features are cached
    forced = mosaic_cell(ws.root, CELL, force=True)
    assert forced["images_unreadable"] == [ids[2]] and "missing" in forced["images_flagged"][0]["reason"]
    assert forced["photos_solved_together"] == len(ids) - 1


def test_force_solves_the_flight_again_and_replaces_its_cached_solution(tmp_path: Path, ground) -> None:
    ws, _ = _workspace(tmp_path / "ws", ground, n=4)
    mosaic_cell(ws.root, CELL)
    [path] = _solutions(ws)
    stored = json.loads(path.read_text())
    for p in stored["placements"].values():
        p["shift_m"] = 99.0  # what a run before a fix of the adjustment might have left
    path.write_text(json.dumps(stored))
    assert mosaic_cell(ws.root, CELL, MosaicSettings(window_px=256))["max_shift_from_gps_m"] == 99.0
    forced = mosaic_cell(ws.root, CELL, force=True)
    assert forced["max_shift_from_gps_m"] < 5.0
    assert all(p["shift_m"] < 5.0 for p in json.loads(path.read_text())["placements"].values())


def test_pairs_served_from_the_tie_cache_do_not_hold_descriptor_indexes(tmp_path: Path, ground) -> None:
    import os

    from skysieve.mosaic.matching import MatchSettings, match_photos
    from skysieve.mosaic.photos import photo_from_row
    from skysieve.mosaic.tiecache import TieCache

    ws, ids = _workspace(tmp_path / "ws", ground, sha256=False)
    photos = sorted((photo_from_row(r) for r in ws.gpkg.select("images")), key=lambda p: p.image_id)
    one_thread = MatchSettings(threads=1)  # pairs go by their second photo: one index at a time
    first = match_photos(photos, one_thread, cache=TieCache(ws.root))
    assert first.max_indexes == 1 and first.ties
    changed = Path(photos[1].path)  # a photo in the middle of the first line, in pairs with most others
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    again = match_photos(photos, one_thread, cache=TieCache(ws.root))
    assert again.pairs_tried == first.pairs_tried and len(again.ties) == len(first.ties)
    assert again.max_indexes == 1  # was one per photo the changed one is paired with, held to the end


@pytest.mark.slow
def test_parallel_rerun_of_current_cells_matches_nothing(tmp_path: Path, ground) -> None:
    import shutil

    import shapely

    from skysieve.mosaic.ortho import build_mosaics

    ws, _ = _workspace(tmp_path / "ws", ground, n=4)
    ws.cells_touching(shapely.box(576150.0, 5188050.0, 576160.0, 5188060.0))  # a second cell, no photo in it
    first = {r["cell_id"]: r["status"] for r in build_mosaics(ws, workers=1)}
    assert first[CELL] == "built" and len(first) == 1
    cache = ws.flight_dir("f1") / ".mosaic-cache"
    shutil.rmtree(cache)
    # two worker processes: the flights of out-of-date cells are solved first, here none
    again = build_mosaics(ws, cells=[CELL, "E576100N5188000"], workers=2)
    assert sorted(r["status"] for r in again) == ["empty", "skipped"]
    assert not cache.exists()  # no photo described, no pair matched, no flight solved


def test_a_flight_solved_by_two_processes_at_once_gives_both_the_first_published_solution(
        tmp_path: Path, ground, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    import skysieve.mosaic.solve as solve
    from skysieve.atomic import write_json

    ws, _ = _workspace(tmp_path / "ws", ground, n=4)
    real_solve = solve._solve
    published: list[tuple[Path, float]] = []

    def solve_while_another_process_publishes(root, photos, *args):
        ours = real_solve(root, photos, *args)
        # the other process (its own FLANN and MAGSAC draws) finishes first and publishes its solution
        theirs = replace(ours, placements={k: replace(p, shift_m=p.shift_m + 0.25) for k, p in ours.placements.items()})
        path = solve._path(Path(root), photos, solve._key(photos, *args))
        write_json(path, theirs.to_json())
        published.append((path, max(p.shift_m for p in theirs.placements.values())))
        return ours

    monkeypatch.setattr(solve, "_solve", solve_while_another_process_publishes)
    report = mosaic_cell(ws.root, CELL)
    [(path, their_max_shift)] = published
    stored = solve.FlightSolution.from_json(json.loads(path.read_text()))
    assert report["max_shift_from_gps_m"] == pytest.approx(their_max_shift, abs=1e-4)  # not this process's
    assert max(p.shift_m for p in stored.placements.values()) == pytest.approx(their_max_shift)  # kept
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left


def test_an_ortho_of_the_first_format_is_rebuilt(tmp_path: Path, ground, monkeypatch: pytest.MonkeyPatch) -> None:
    import skysieve.mosaic.ortho as ortho

    ws, _ = _workspace(tmp_path / "ws", ground, n=2)
    with monkeypatch.context() as m:
        m.setattr(ortho, "FORMAT_VERSION", 1)  # per-cell solutions, alpha band
        assert mosaic_cell(ws.root, CELL)["format_version"] == 1
    again = mosaic_cell(ws.root, CELL)
    assert again["status"] == "built" and again["format_version"] == ortho.FORMAT_VERSION > 1


def test_a_killed_cache_write_leaves_nothing_an_npz_pattern_takes_and_a_later_write_removes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import time

    import numpy as np

    import skysieve.mosaic.tiecache as tiecache
    from skysieve.mosaic.photos import Photo

    cache = tiecache.TieCache(tmp_path)
    photo = Photo("f1/A.JPG", str(tmp_path / "A.JPG"), CAM, None, "ab" * 32, "f1")
    folder = tmp_path / "flights" / "f1" / ".mosaic-cache" / "ties"
    folder.mkdir(parents=True)
    stale = folder / ".k1.npz.x1y2.npz"  # what a write killed before this fix left (and a kill now leaves as .tmp)
    stale.write_bytes(b"PK half a zip")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    written: list[str] = []
    real_savez = np.savez

    def savez_noting_its_file(f, **arrays):
        written.append(f.name)
        real_savez(f, **arrays)

    monkeypatch.setattr(tiecache.np, "savez", savez_noting_its_file)
    cache.save(photo, "ties", "k1", {"uv_i": np.ones((3, 2)), "uv_j": np.ones((3, 2))})
    [tmp] = written
    assert Path(tmp).name.startswith(".k1.npz.") and not Path(tmp).match("*.npz")  # a kill here: no *.npz
    assert [p.name for p in folder.iterdir()] == ["k1.npz"]  # the old temporary is gone
    assert cache.load(photo, "ties", "k1")["uv_i"].shape == (3, 2)


def test_two_runs_on_the_same_photos_give_the_same_mosaic(tmp_path: Path) -> None:
    import numpy as np
    import rasterio

    from skysieve.mosaic.ortho import build_mosaics

    ground = make_ground(80.0, 0.05, seed=5)
    shots = grid_shots(CAM, 30.0, 18, 20, 4, 3, 9.0, 9.0, gps_sigma_m=1.5, seed=2)
    runs = []
    for name in ("a", "b"):  # two workspaces: nothing is read from the other's caches
        ws = make_workspace(tmp_path / name, ground, shots)
        [report] = build_mosaics(ws, workers=1)
        [solution] = _solutions(ws)
        with rasterio.open(report["ortho"]) as ds:
            runs.append((json.loads(solution.read_text())["placements"], ds.read(), ds.read_masks(1), report))
    (pa, ia, ma, ra), (pb, ib, mb, rb) = runs
    assert ra["pairs_matched"] >= 10 and ra["tie_points"] == rb["tie_points"]
    assert pa == pb  # placements and gains to the last digit
    assert np.array_equal(ma, mb) and np.array_equal(ia, ib)
